"""Experiment ``mlp-activations``: which activation lets an MLP learn the two spirals?

The seeds ask how the activation function changes what an MLP learns and how fast. We train the
same 3-hidden-layer MLP (64 units, Adam, same seed and data) with each activation on the
embedded two-spirals set and compare validation accuracy through training and at the end.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from archlab.registry import register_experiment

ACTIVATIONS = ("sigmoid", "tanh", "relu", "leaky_relu", "elu", "gelu")


@register_experiment("mlp-activations", family="mlp",
                     description="Sigmoid vs tanh vs ReLU-family activations in an MLP on two spirals")
def mlp_activations(out_dir: Path, quick: bool = False, epochs: int | None = None) -> dict[str, Any]:
    import archlab
    from archlab.report.experiment import write_experiment_report
    from archlab.viz._mpl import new_figure, save_figure

    epochs = epochs or (15 if quick else 60)
    activations = ACTIVATIONS[:3] if quick else ACTIVATIONS
    rows, curves = [], {}
    for act in activations:
        t0 = time.perf_counter()
        run = archlab.train("mlp", "spirals", overrides={
            "model.hidden_dims": [64, 64, 64], "model.activation": act, "train.epochs": epochs, "train.lr": 3e-3,
            "train.batch_size": 64, "run.out_dir": str(out_dir / "runs"), "run.name": act, "run.report": False,
            "system.progress": False, "system.tensorboard": False,
        })
        val = [(r["epoch"], r["acc"]) for r in run.history if r["split"] == "val"]
        curves[act] = val
        reach = next((e for e, a in val if a >= 0.95), None)
        rows.append({"activation": act, "val acc": round(run.metrics.get("val/acc", float("nan")), 4),
                     "test acc": round(run.metrics.get("test/acc", float("nan")), 4),
                     "epochs to 95% val": reach if reach is not None else "never",
                     "seconds": round(time.perf_counter() - t0, 1)})
    fig = new_figure(6.5, 3.8)
    ax = fig.add_subplot(111)
    for act, val in curves.items():
        ax.plot([e for e, _ in val], [a for _, a in val], label=act)
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation accuracy")
    ax.set_title("MLP 3x64 on two spirals")
    ax.legend(fontsize=8)
    curve_png = save_figure(fig, out_dir / "val_accuracy.png")
    best = max(rows, key=lambda r: r["test acc"])
    slow = [r["activation"] for r in rows if r["epochs to 95% val"] == "never"]
    conclusions = (
        f"**{best['activation']}** reached the best test accuracy ({best['test acc']:.3f}). "
        + (f"Never reaching 95% validation accuracy in {epochs} epochs: {', '.join(slow)}. " if slow else "")
        + "Saturating activations (sigmoid, and tanh to a lesser degree) pass small gradients back "
          "through three layers, so the same budget of steps buys less progress; the ReLU family keeps "
          "unit gradients for active units and bends the decision boundary faster."
    )
    report = write_experiment_report(
        out_dir, "MLP activations on two spirals",
        f"Same MLP (3 hidden layers of 64), same data, seed and optimizer (Adam, lr 3e-3, {epochs} epochs); "
        "only the activation changes. Data: the embedded two-spirals set.",
        figures=[("Validation accuracy by epoch", curve_png)],
        tables=[("Results", rows)],
        conclusions=conclusions,
    )
    return {"report": str(report), "rows": rows}
