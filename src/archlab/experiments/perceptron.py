"""Experiment ``perceptron``: what can Rosenblatt's perceptron learn, how fast, and how does it compare?

Questions from the seeds, each answered by a measurement with the scratch perceptron
(:class:`archlab.scratch.models.ScratchPerceptron`, trained by the perceptron rule):

1. Linear separability: AND and OR are learned (mistakes reach zero); XOR is not, and its
   decision boundary shows why: no line separates (0,0),(1,1) from (0,1),(1,0).
2. Noise: two Gaussian classes drawn closer together: accuracy falls, and the rule never stops
   making mistakes once the classes overlap (Novikoff's bound needs a margin).
3. Learning rate: from zero weights the rule is invariant to lr (weights scale, decisions do not);
   from random weights lr matters.
4. Epochs: mistakes per epoch on separable and on noisy data.
5. Multi-class: one unit per class on iris.
6. Training time against data size (one epoch is linear in N).
7. Against logistic regression and a linear SVM from scikit-learn on the same splits.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from archlab.registry import register_experiment

GATES = {
    "AND": np.array([0, 0, 0, 1]),
    "OR": np.array([0, 1, 1, 1]),
    "XOR": np.array([0, 1, 1, 0]),
}
CORNERS = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)


def train_rule(x: np.ndarray, y: np.ndarray, epochs: int, lr: float = 1.0, init_scale: float = 0.0,
               seed: int = 0, shuffle: bool = True) -> tuple[Any, list[int]]:
    """A perceptron trained by the rule for ``epochs``; returns it and the mistakes per epoch."""
    from archlab.scratch.models import ScratchPerceptron

    k = int(y.max()) + 1
    model = ScratchPerceptron(x.shape[1], max(k, 2))
    rng = np.random.default_rng(seed)
    if init_scale:
        model.weight.data[...] = rng.normal(0, init_scale, model.weight.shape)
        model.bias.data[...] = rng.normal(0, init_scale, model.bias.shape)
    mistakes = []
    for _ in range(epochs):
        order = rng.permutation(len(x)) if shuffle else np.arange(len(x))
        mistakes.append(model.rule_step(x[order], y[order], lr))
    return model, mistakes


def predict(model: Any, x: np.ndarray) -> np.ndarray:
    return np.argmax(x @ model.weight.data.T + model.bias.data, axis=1)


def blobs(n: int, distance: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two unit-variance Gaussian classes whose centres are ``distance`` apart."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    x = rng.standard_normal((n, 2)) + np.where(y[:, None] == 1, distance / 2, -distance / 2) * np.array([1.0, 0.0])
    return x, y


def _boundary_panel(ax: Any, model: Any, x: np.ndarray, y: np.ndarray, title: str) -> None:
    lo, hi = x.min(axis=0) - 0.5, x.max(axis=0) + 0.5
    gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], 200), np.linspace(lo[1], hi[1], 200))
    z = predict(model, np.c_[gx.ravel(), gy.ravel()]).reshape(gx.shape)
    ax.contourf(gx, gy, z, levels=[-0.5, 0.5, 1.5], colors=["#cfe2f3", "#f4cccc"], alpha=0.8)
    ax.scatter(x[:, 0], x[:, 1], c=np.where(y == 1, "C3", "C0"), s=60, edgecolors="k", zorder=3)
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])


@register_experiment("perceptron", family="scratch",
                     description="The perceptron: separability, noise, lr, epochs, multi-class, scaling, vs sklearn")
def perceptron(out_dir: Path, quick: bool = False) -> dict[str, Any]:
    from archlab.report.experiment import write_experiment_report
    from archlab.viz._mpl import new_figure, save_figure

    epochs = 20 if quick else 50
    results: dict[str, Any] = {}
    figures = []

    # 1. logic gates
    fig = new_figure(9, 3)
    gates = {}
    for i, (name, y) in enumerate(GATES.items()):
        model, mistakes = train_rule(CORNERS, y, epochs, shuffle=False)
        acc = float((predict(model, CORNERS) == y).mean())
        gates[name] = {"mistakes_per_epoch": mistakes, "final_accuracy": acc,
                       "converged_epoch": next((e for e, m in enumerate(mistakes, 1) if m == 0), None)}
        _boundary_panel(fig.add_subplot(1, 3, i + 1), model, CORNERS, y,
                        f"{name}: accuracy {acc:.2f}, {mistakes[-1]} mistakes in the last epoch")
    figures.append(("Decision boundaries after training by the perceptron rule", save_figure(fig, out_dir / "gates.png")))
    results["gates"] = gates

    # 2 + 4. noise and epochs
    distances = [10.0, 6.0, 3.0, 1.0, 0.0]
    noise_rows, curves = [], {}
    for d in distances:
        x, y = blobs(400, d)
        model, mistakes = train_rule(x, y, epochs)
        acc = float((predict(model, x) == y).mean())
        curves[d] = mistakes
        noise_rows.append({"centre distance": d, "train accuracy": round(acc, 3),
                           "mistakes in last epoch": mistakes[-1],
                           "converged": "yes" if mistakes[-1] == 0 else "no"})
    fig = new_figure(6.5, 3.6)
    ax = fig.add_subplot(111)
    for d, m in curves.items():
        ax.plot(range(1, epochs + 1), m, label=f"distance {d:g}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("mistakes (of 400)")
    ax.set_yscale("symlog")
    ax.legend(fontsize=8)
    ax.set_title("Mistakes per epoch: two Gaussian classes, closer and closer")
    figures.append(("Noise and epochs", save_figure(fig, out_dir / "noise_epochs.png")))
    results["noise"] = noise_rows

    # 3. learning rate
    x, y = blobs(400, 4.0, seed=1)
    lr_rows = []
    for lr in (0.01, 0.1, 1.0, 10.0):
        _, m0 = train_rule(x, y, epochs, lr=lr)
        _, m1 = train_rule(x, y, epochs, lr=lr, init_scale=1.0)
        lr_rows.append({"lr": lr, "mistakes from zero init": sum(m0), "mistakes from random init": sum(m1)})
    results["learning_rate"] = lr_rows

    # 5. multi-class on iris; 7. against scikit-learn
    from sklearn.datasets import load_breast_cancer, load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import LinearSVC

    compare = []
    sets = {"iris (3 classes)": load_iris(return_X_y=True), "breast cancer": load_breast_cancer(return_X_y=True),
            "blobs d=2 (overlapping)": blobs(1000, 2.0, seed=2)}
    for name, (xs, ys) in sets.items():
        xtr, xte, ytr, yte = train_test_split(xs, ys, test_size=0.3, random_state=0, stratify=ys)
        scaler = StandardScaler().fit(xtr)
        xtr, xte = scaler.transform(xtr), scaler.transform(xte)
        t0 = time.perf_counter()
        model, _ = train_rule(xtr, ytr, epochs)
        t_p = time.perf_counter() - t0
        row = {"dataset": name, "perceptron": round(float((predict(model, xte) == yte).mean()), 3)}
        for label, clf in (("logistic regression", LogisticRegression(max_iter=2000)), ("linear SVM", LinearSVC())):
            t0 = time.perf_counter()
            clf.fit(xtr, ytr)
            row[label] = round(float(clf.score(xte, yte)), 3)
            row[f"{label} s"] = round(time.perf_counter() - t0, 4)
        row["perceptron s"] = round(t_p, 4)
        compare.append(row)
    results["compare"] = compare

    # 6. time against data size
    sizes = [500, 1000, 2000, 4000] if quick else [1000, 2000, 4000, 8000, 16000]
    size_rows = []
    for n in sizes:
        x, y = blobs(n, 1.0, seed=3)
        t0 = time.perf_counter()
        train_rule(x, y, 5)
        size_rows.append({"N": n, "seconds per epoch": round((time.perf_counter() - t0) / 5, 5)})
    results["scaling"] = size_rows
    fig = new_figure(5, 3.4)
    ax = fig.add_subplot(111)
    ax.plot([r["N"] for r in size_rows], [r["seconds per epoch"] for r in size_rows], "o-")
    ax.set_xlabel("training examples N")
    ax.set_ylabel("seconds per epoch")
    ax.set_title("One epoch of the perceptron rule is linear in N")
    figures.append(("Training time against data size", save_figure(fig, out_dir / "scaling.png")))

    xor_fails = gates["XOR"]["final_accuracy"] < 1.0 and min(gates["XOR"]["mistakes_per_epoch"]) > 0
    and_or = [g for g in ("AND", "OR") if gates[g]["converged_epoch"] is not None]
    best_other = max(compare, key=lambda r: max(r["logistic regression"], r["linear SVM"]) - r["perceptron"])
    conclusions = (
        f"- {' and '.join(and_or)} converged (zero mistakes from epoch "
        f"{', '.join(str(gates[g]['converged_epoch']) for g in and_or)}); XOR "
        f"{'never did: at least ' + str(min(gates['XOR']['mistakes_per_epoch'])) + ' mistake(s) in every epoch' if xor_fails else 'converged (unexpected)'}.\n"
        f"- Separated classes converge; once they overlap (distance {noise_rows[-2]['centre distance']:g} and less) the "
        f"rule keeps making mistakes every epoch ({noise_rows[-1]['mistakes in last epoch']} in the last epoch at distance 0).\n"
        f"- From zero weights every learning rate made the same mistakes "
        f"({', '.join(str(r['mistakes from zero init']) for r in lr_rows)}): the rule only rescales the weights. "
        f"From random weights they differ ({', '.join(str(r['mistakes from random init']) for r in lr_rows)}).\n"
        f"- An epoch costs {size_rows[-1]['seconds per epoch'] / size_rows[0]['seconds per epoch']:.1f}x more at "
        f"N={size_rows[-1]['N']} than at N={size_rows[0]['N']} ({size_rows[-1]['N'] // size_rows[0]['N']}x the data).\n"
        f"- The largest gap to a margin-based linear model was on {best_other['dataset']}: perceptron "
        f"{best_other['perceptron']:.3f}, logistic regression {best_other['logistic regression']:.3f}, linear SVM "
        f"{best_other['linear SVM']:.3f}; the perceptron stops at any separating line, not the widest one."
    )
    report = write_experiment_report(
        out_dir, "The perceptron",
        "Rosenblatt's perceptron, trained by the perceptron rule (NumPy, `archlab.scratch`), on logic gates, "
        "Gaussian classes with increasing overlap, iris and breast cancer, against scikit-learn's logistic "
        "regression and linear SVM on the same standardised 70/30 splits.",
        figures=figures,
        tables=[("Noise: two Gaussian classes", noise_rows), ("Learning rate (total mistakes over all epochs)", lr_rows),
                ("Test accuracy and fit time against scikit-learn", compare), ("Time against data size", size_rows)],
        conclusions=conclusions,
    )
    return {"report": str(report), **results}
