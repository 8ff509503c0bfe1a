"""Experiment ``activations-gradients``: why deep sigmoid networks stop learning, and what fixes it.

Backpropagation multiplies, layer by layer, by ``W_l^T diag(act'(a_l))``. With sigmoid
(``act' <= 1/4``) and small weights each factor shrinks the gradient, so the first layers of a deep
network receive almost none (the vanishing gradient; Hochreiter 1991, Glorot & Bengio 2010);
with large weights the product can explode. We measure, at initialisation, the gradient norm of
every layer's weight matrix for MLPs of depth 2 to 20 (width 64, scratch engine, cross-entropy on
one batch of digits), for sigmoid, tanh and ReLU, with a naive N(0, 0.01^2) init, Xavier/Glorot
(Glorot & Bengio 2010) and He/Kaiming (He et al. 2015) init, and with batch normalisation
(Ioffe & Szegedy 2015).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from archlab.registry import register_experiment

ACTS = ("sigmoid", "tanh", "relu")
INITS = ("naive", "xavier_normal", "kaiming_normal")


def layer_grad_norms(activation: str, init: str, depth: int, batch_norm: bool, x: np.ndarray, y: np.ndarray,
                     seed: int = 0) -> list[float]:
    """Gradient norm of each Linear weight (input side first) after one backward at initialisation."""
    from archlab.scratch import functional as F
    from archlab.scratch.autograd import Tensor
    from archlab.scratch.models import ScratchMLP, ScratchMLPConfig

    cfg = ScratchMLPConfig(in_features=x.shape[1], num_classes=10, hidden_dims=(64,) * depth, activation=activation,
                           init="xavier_normal" if init == "naive" else init, batch_norm=batch_norm, seed=seed)
    model = ScratchMLP(cfg)
    weights = [p for n, p in model.named_parameters() if p.data.ndim == 2]
    if init == "naive":
        rng = np.random.default_rng(seed)
        for w in weights:
            w.data[...] = rng.normal(0.0, 0.01, w.data.shape)
    model.train()
    loss = F.cross_entropy(model(Tensor(x)), y)
    loss.backward()
    return [float(np.linalg.norm(w.grad)) for w in weights]


@register_experiment("activations-gradients", family="scratch",
                     description="Vanishing/exploding gradients: per-layer gradient norm vs depth, activation, init, batch norm")
def activations_gradients(out_dir: Path, quick: bool = False) -> dict[str, Any]:
    from archlab.experiments.common import digits_arrays
    from archlab.report.experiment import write_experiment_report
    from archlab.viz._mpl import new_figure, save_figure

    d = digits_arrays()
    x, y = d["x_train"][:256], d["y_train"][:256]
    depths = (2, 5, 10) if quick else (2, 5, 10, 20)
    deep = depths[-1]
    profiles: dict[str, list[float]] = {}
    rows = []
    for act in ACTS:
        for init in INITS:
            for bn in (False, True):
                norms = layer_grad_norms(act, init, deep, bn, x, y)
                key = f"{act} / {init}{' / BN' if bn else ''}"
                profiles[key] = norms
                rows.append({"activation": act, "init": init, "batch norm": bn,
                             "first-layer grad": f"{norms[0]:.2e}", "last-layer grad": f"{norms[-1]:.2e}",
                             "first / last": f"{norms[0] / max(norms[-1], 1e-300):.2e}"})
    by_depth: dict[str, list[float]] = {}
    for act in ACTS:
        for init in ("xavier_normal", "kaiming_normal"):
            by_depth[f"{act} / {init}"] = [layer_grad_norms(act, init, dep, False, x, y)[0] for dep in depths]

    fig = new_figure(11, 3.8)
    for i, act in enumerate(ACTS):
        ax = fig.add_subplot(1, 3, i + 1)
        for key, norms in profiles.items():
            if key.startswith(act + " /"):
                ax.semilogy(range(1, len(norms) + 1), np.maximum(norms, 1e-30), label=key.split(" / ", 1)[1],
                            ls="--" if key.endswith("BN") else "-")
        ax.set_title(f"{act}, depth {deep}")
        ax.set_xlabel("layer (1 = input side)")
        ax.set_ylabel("gradient norm" if i == 0 else "")
        ax.legend(fontsize=7)
    profile_png = save_figure(fig, out_dir / "grad_per_layer.png")
    fig = new_figure(6, 3.8)
    ax = fig.add_subplot(111)
    for key, norms in by_depth.items():
        ax.semilogy(depths, np.maximum(norms, 1e-30), "o-", label=key)
    ax.set_xlabel("depth (hidden layers)")
    ax.set_ylabel("first-layer gradient norm")
    ax.legend(fontsize=7)
    depth_png = save_figure(fig, out_dir / "first_layer_vs_depth.png")

    def ratio(key: str) -> float:
        n = profiles[key]
        return n[0] / max(n[-1], 1e-300)

    sig, rel = ratio("sigmoid / xavier_normal"), ratio("relu / kaiming_normal")
    conclusions = (
        f"At depth {deep}, with Xavier init, the first layer of the sigmoid network gets "
        f"{ratio('sigmoid / xavier_normal'):.1e} times the gradient of the last; ReLU with He init gets {rel:.2g} times: "
        f"its gradients keep their size through the depth. With the naive N(0, 0.01^2) init every activation vanishes "
        f"(sigmoid first/last {ratio('sigmoid / naive'):.1e}, ReLU {ratio('relu / naive'):.1e}). Batch normalisation "
        f"rescues sigmoid (first/last {ratio('sigmoid / xavier_normal / BN'):.2g}) because it re-centres every layer's "
        f"input where the sigmoid's slope is largest."
    )
    report = write_experiment_report(
        out_dir, "Activations and vanishing gradients",
        __doc__.split("\n\n", 1)[1],
        figures=[("Gradient norm of each layer's weights at initialisation", profile_png),
                 ("First-layer gradient norm against depth", depth_png)],
        tables=[(f"Depth {deep}: first- and last-layer gradient norms", rows)],
        conclusions=conclusions,
    )
    return {"report": str(report), "profiles": profiles, "by_depth": by_depth, "depths": list(depths),
            "sigmoid_ratio": sig, "relu_ratio": rel}
