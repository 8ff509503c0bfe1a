"""Experiment ``regularization``: how much does each remedy close the gap between train and validation?

An MLP (64-256-256-10) trained on only 300 of scikit-learn's digits overfits: training accuracy
reaches 100% while validation lags. We train the same network (scratch engine, Adam, same seed)
with no regularization, an L1 penalty ``lambda * sum|w|``, an L2 penalty ``lambda * sum w^2``
(weight decay; Krogh & Hertz 1992), dropout (Srivastava et al. 2014), batch normalisation (Ioffe &
Szegedy 2015) and early stopping on the validation loss (best weights restored), and compare the
train/validation gap and the test accuracy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from archlab.registry import register_experiment

VARIANTS = {
    "none": {},
    "L1 (1e-4)": {"l1": 1e-4},
    "L2 (1e-3)": {"l2": 1e-3},
    "dropout 0.5": {"dropout": 0.5},
    "batch norm": {"batch_norm": True},
    "early stopping (patience 10)": {"patience": 10},
}


@register_experiment("regularization", family="scratch",
                     description="None, L1, L2, dropout, batch norm, early stopping: the train/validation gap")
def regularization(out_dir: Path, quick: bool = False) -> dict[str, Any]:
    from archlab.experiments.common import digits_arrays
    from archlab.report.experiment import write_experiment_report
    from archlab.scratch.engine import evaluate_arrays, train_classifier
    from archlab.scratch.models import ScratchMLP, ScratchMLPConfig
    from archlab.viz._mpl import new_figure, save_figure

    d = digits_arrays(train_size=300)
    epochs = 40 if quick else 100
    rows, curves = [], {}
    for name, v in VARIANTS.items():
        model = ScratchMLP(ScratchMLPConfig(in_features=64, num_classes=10, hidden_dims=(256, 256),
                                            dropout=v.get("dropout", 0.0), batch_norm=v.get("batch_norm", False)))
        hist = train_classifier(model, d["x_train"], d["y_train"], d["x_val"], d["y_val"], epochs=epochs,
                                batch_size=32, lr=1e-3, l1=v.get("l1", 0.0), l2=v.get("l2", 0.0),
                                patience=v.get("patience"))
        tr = evaluate_arrays(model, d["x_train"], d["y_train"])
        va = evaluate_arrays(model, d["x_val"], d["y_val"])
        te = evaluate_arrays(model, d["x_test"], d["y_test"])
        curves[name] = hist
        rows.append({"regularization": name, "train acc": round(tr["acc"], 4), "val acc": round(va["acc"], 4),
                     "gap (train - val) acc": round(tr["acc"] - va["acc"], 4), "train loss": round(tr["loss"], 4),
                     "val loss": round(va["loss"], 4), "gap val - train loss": round(va["loss"] - tr["loss"], 4),
                     "test acc": round(te["acc"], 4), "epochs": hist["epochs"]})
    fig = new_figure(11, 3.8)
    ax1, ax2 = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    for name, h in curves.items():
        e = range(1, h["epochs"] + 1)
        ax1.plot(e, h["val_loss"], label=name)
        ax2.plot(e, [a - b for a, b in zip(h["train_acc"], h["val_acc"])], label=name)
    ax1.set(xlabel="epoch", ylabel="validation loss", yscale="log", title="Validation loss")
    ax2.set(xlabel="epoch", ylabel="train acc - val acc", title="Generalisation gap")
    ax1.legend(fontsize=7)
    png = save_figure(fig, out_dir / "regularization.png")
    none = next(r for r in rows if r["regularization"] == "none")
    best = min(rows, key=lambda r: r["gap val - train loss"])
    top = max(rows, key=lambda r: r["test acc"])
    conclusions = (
        f"Without regularization the network fits the 300 training digits (train accuracy {none['train acc']:.3f}) "
        f"and its validation loss ends {none['gap val - train loss']:.3f} above the training loss. The smallest loss gap "
        f"came with {best['regularization']} ({best['gap val - train loss']:.3f}); the best test accuracy with "
        f"{top['regularization']} ({top['test acc']:.3f}, against {none['test acc']:.3f} without)."
    )
    report = write_experiment_report(out_dir, "Regularization", __doc__.split("\n\n", 1)[1],
                                     figures=[("Validation loss and train/validation gap by epoch", png)],
                                     tables=[("After training", rows)], conclusions=conclusions)
    return {"report": str(report), "rows": rows}
