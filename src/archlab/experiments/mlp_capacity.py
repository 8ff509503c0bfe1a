"""Experiment ``mlp-width-depth``: how do width and depth change what an MLP learns, and what it costs?

The same data (scikit-learn's digits, archlab's split), optimizer (Adam 1e-3, 40 epochs) and seed;
only the architecture changes: one hidden layer of 4 to 512 units, then 1 to 8 hidden layers of
64 units (scratch engine, ReLU, He init). We report test accuracy, parameters and training time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from archlab.registry import register_experiment


@register_experiment("mlp-width-depth", family="scratch",
                     description="MLP width (4-512 units) and depth (1-8 layers): accuracy, parameters, time")
def mlp_width_depth(out_dir: Path, quick: bool = False) -> dict[str, Any]:
    from archlab.experiments.common import digits_arrays
    from archlab.report.experiment import write_experiment_report
    from archlab.scratch.engine import evaluate_arrays, train_classifier
    from archlab.scratch.models import ScratchMLP, ScratchMLPConfig
    from archlab.viz._mpl import new_figure, save_figure

    d = digits_arrays()
    epochs = 15 if quick else 40
    widths = (4, 16, 64) if quick else (4, 16, 64, 256, 512)
    depths = (1, 2, 4) if quick else (1, 2, 4, 8)

    def run(hidden: tuple[int, ...]) -> dict[str, Any]:
        model = ScratchMLP(ScratchMLPConfig(in_features=64, num_classes=10, hidden_dims=hidden, init="kaiming_uniform"))
        hist = train_classifier(model, d["x_train"], d["y_train"], epochs=epochs, batch_size=32, lr=1e-3)
        te = evaluate_arrays(model, d["x_test"], d["y_test"])
        return {"hidden": "x".join(map(str, hidden)), "params": model.num_parameters(),
                "train acc": round(hist["train_acc"][-1], 4), "test acc": round(te["acc"], 4),
                "seconds": round(hist["seconds"], 2)}

    width_rows = [run((w,)) for w in widths]
    depth_rows = [run((64,) * k) for k in depths]
    fig = new_figure(11, 3.6)
    ax1, ax2 = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    ax1.semilogx(widths, [r["test acc"] for r in width_rows], "o-", label="test")
    ax1.semilogx(widths, [r["train acc"] for r in width_rows], "s--", label="train")
    ax1.set(xlabel="hidden units (1 layer)", ylabel="accuracy", title="Width")
    ax1.legend(fontsize=8)
    ax2.plot(depths, [r["test acc"] for r in depth_rows], "o-", label="test")
    ax2.plot(depths, [r["train acc"] for r in depth_rows], "s--", label="train")
    ax2.set(xlabel="hidden layers of 64", ylabel="accuracy", title="Depth")
    ax2.legend(fontsize=8)
    png = save_figure(fig, out_dir / "width_depth.png")
    best_w = max(width_rows, key=lambda r: r["test acc"])
    best_d = max(depth_rows, key=lambda r: r["test acc"])
    conclusions = (
        f"Width: test accuracy went from {width_rows[0]['test acc']:.3f} with {widths[0]} units to "
        f"{best_w['test acc']:.3f} at {best_w['hidden']} units ({best_w['params']:,} parameters); time grew from "
        f"{width_rows[0]['seconds']:.2f} s to {width_rows[-1]['seconds']:.2f} s. Depth: the best test accuracy was "
        f"{best_d['test acc']:.3f} with {best_d['hidden']}; on 1,300 digits extra layers add parameters and time "
        f"({depth_rows[-1]['seconds']:.2f} s at {depths[-1]} layers) more than accuracy."
    )
    report = write_experiment_report(out_dir, "MLP width and depth", __doc__.split("\n\n", 1)[1],
                                     figures=[("Accuracy against width and depth", png)],
                                     tables=[("Width", width_rows), ("Depth", depth_rows)], conclusions=conclusions)
    return {"report": str(report), "width": width_rows, "depth": depth_rows}
