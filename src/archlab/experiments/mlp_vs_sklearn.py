"""Experiment ``mlp-vs-sklearn``: the scratch MLP against scikit-learn's MLPClassifier, same split.

Both train a 64-100-10 ReLU network with Adam (lr 1e-3, batch 32, the same number of epochs,
L2 1e-4 as scikit-learn's default ``alpha``) on archlab's digits split, standardised; we compare
test accuracy and wall time. scikit-learn's ``alpha`` is ``0.5 * alpha * ||W||^2 / n_samples``
per batch, not a per-batch mean; the scratch run uses ``l2 = alpha / (2 * n_train)`` to match.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any

from archlab.registry import register_experiment


@register_experiment("mlp-vs-sklearn", family="scratch",
                     description="Scratch MLP against scikit-learn's MLPClassifier: accuracy and time")
def mlp_vs_sklearn(out_dir: Path, quick: bool = False) -> dict[str, Any]:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    from archlab.experiments.common import digits_arrays
    from archlab.report.experiment import write_experiment_report
    from archlab.scratch.engine import evaluate_arrays, train_classifier
    from archlab.scratch.models import ScratchMLP, ScratchMLPConfig

    d = digits_arrays()
    epochs = 20 if quick else 60
    rows = []
    for seed in (0, 1, 2):
        model = ScratchMLP(ScratchMLPConfig(in_features=64, num_classes=10, hidden_dims=(100,), seed=seed))
        t0 = time.perf_counter()
        train_classifier(model, d["x_train"], d["y_train"], epochs=epochs, batch_size=32, lr=1e-3,
                         l2=1e-4 / (2 * len(d["x_train"])), seed=seed)
        t_s = time.perf_counter() - t0
        acc_s = evaluate_arrays(model, d["x_test"], d["y_test"])["acc"]
        clf = MLPClassifier(hidden_layer_sizes=(100,), solver="adam", learning_rate_init=1e-3, batch_size=32,
                            max_iter=epochs, alpha=1e-4, random_state=seed, n_iter_no_change=epochs + 1)
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf.fit(d["x_train"], d["y_train"])
        t_k = time.perf_counter() - t0
        rows.append({"seed": seed, "scratch acc": round(acc_s, 4), "sklearn acc": round(clf.score(d["x_test"], d["y_test"]), 4),
                     "scratch s": round(t_s, 2), "sklearn s": round(t_k, 2)})
    mean = {k: sum(r[k] for r in rows) / len(rows) for k in ("scratch acc", "sklearn acc", "scratch s", "sklearn s")}
    conclusions = (
        f"Over 3 seeds the scratch MLP reached {mean['scratch acc']:.3f} test accuracy in {mean['scratch s']:.2f} s and "
        f"scikit-learn's MLPClassifier {mean['sklearn acc']:.3f} in {mean['sklearn s']:.2f} s: the same network, "
        f"optimizer and budget give the same accuracy within {abs(mean['scratch acc'] - mean['sklearn acc']):.3f}."
    )
    report = write_experiment_report(out_dir, "Scratch MLP against scikit-learn", __doc__.split("\n\n", 1)[1],
                                     tables=[("Test accuracy and training time", rows)], conclusions=conclusions)
    return {"report": str(report), "rows": rows, "mean": mean}
