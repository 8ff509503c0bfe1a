"""ResNet experiments: the degradation problem (plain against residual), and ResNet-18 against VGG.

Two experiments (family ``cnn``), each writing ``report.html`` with figures, a results table and
conclusions computed from the numbers. The full versions train on MNIST on one CPU thread in under
ten minutes; ``quick=True`` uses the embedded 8x8 ``digits`` and a few steps (seconds).

``resnet_vs_plain``  plain and residual networks of 10, 18 and 34 layers (CIFAR stem, base width 16),
                     the same number of SGD steps each: training-loss curves, the gradient norm of
                     every layer at initialisation and after training, and the test accuracy.
``resnet_vs_vgg``    ResNet-18 against VGG-11 and VGG-16 (batch norm) on 32x32 inputs: parameters,
                     FLOPs, activation memory and measured time per training step at full width,
                     and the accuracy after the same short training at a quarter of the width.

The depth of a network of basic blocks counts its weight layers on the main path: the stem
convolution, two 3x3 convolutions per block and the classifier,

    depth = 2 + 2 * sum(layers)         (bottleneck blocks: 2 + 3 * sum(layers))

so ``layers = (2, 2, 2, 2)`` is the 18-layer network and ``(3, 4, 6, 3)`` the 34-layer one; the
1x1 projection shortcuts are not counted (as in the paper).

Why shortcuts help the gradient. A residual stage computes ``x_{l+1} = x_l + F(x_l)``, so from
any block L back to block l::

    dLoss/dx_l = dLoss/dx_L * (I + d/dx_l sum_{i=l}^{L-1} F(x_i))

The identity term carries the gradient of the top straight to every lower block; a plain network
(``x_{l+1} = F(x_l)``) only has the product of its L - l Jacobians, whose norm can shrink (or grow)
geometrically with depth (He et al. 2016b, Eq. 4-5). With batch normalisation the plain network's
gradients do not vanish at initialisation (He et al. 2016a, Sec. 4.1; the per-layer gradient norms
here check it): they rather grow towards the input (Yang et al. 2019). The deep plain network is
still harder to optimise: its training loss ends higher than that of the shallower plain network,
the degradation problem. The "final" training loss of a run is the mean of its logged training loss
over the second half of the steps (single mini-batch losses are too noisy to compare).

References:
    K. He, X. Zhang, S. Ren, J. Sun, "Deep residual learning for image recognition", CVPR 2016,
    https://arxiv.org/abs/1512.03385 (Fig. 1 and 4: plain-18/34 against ResNet-18/34)
    K. He, X. Zhang, S. Ren, J. Sun, "Identity mappings in deep residual networks", ECCV 2016,
    https://arxiv.org/abs/1603.05027 (the gradient through identity shortcuts, Eq. 4-5)
    G. Yang, J. Pennington, V. Rao, J. Sohl-Dickstein, S. S. Schoenholz, "A mean field theory of batch
    normalization", ICLR 2019, https://arxiv.org/abs/1902.08129 (gradient explosion in deep BN nets)
    D. Balduzzi et al., "The shattered gradients problem: if resnets are the answer, then what is
    the question?", ICML 2017, https://arxiv.org/abs/1702.08591
    K. Simonyan, A. Zisserman, "Very deep convolutional networks for large-scale image
    recognition", ICLR 2015, https://arxiv.org/abs/1409.1556
    S. Ioffe, C. Szegedy, "Batch normalization: accelerating deep network training by reducing
    internal covariate shift", ICML 2015, https://arxiv.org/abs/1502.03167

Deviations from the paper:
    - He et al. trained on ImageNet (and CIFAR-10) for many epochs; here the networks see 200
      mini-batches of MNIST (12,800 images) at a quarter of the paper's width (16 planes in the
      first stage) with the CIFAR stem, so that all six networks train in a few CPU minutes. The
      degradation shows early in training, which is where these curves stop; the final numbers are
      one seed each.
    - The paper compared plain and residual nets with zero-padding shortcuts (option A) at 18/34
      layers; here the residual nets use projections (option B, archlab's default). Both the plain
      and the residual nets use batch normalisation, as in the paper.
    - ``resnet_vs_vgg`` adapts VGG to 32x32 inputs the usual CIFAR way (global pooling of the
      1x1 last map, ``pool_size=1``, and 512-unit hidden layers instead of 4096) and pads MNIST's
      28x28 digits with 2 zero pixels a side (as LeNet-5 did). The accuracy comparison trains the
      three networks at a quarter of their width (ResNet ``width=16``, VGG ``width_div=4`` and
      128 hidden units) for the same 300 Adam steps on the same batches; costs are at full width.
      VGG's dropout is off (``dropout=0``), as the ResNet has none: over so short a budget the
      paper's 0.5 only slows VGG down (VGG-16-BN at 1/4 width reached 69% test accuracy with it and
      89% without, on one trial). The linear layers keep torchvision's N(0, 0.01) initialisation,
      which makes narrow VGGs start slowly (small gradients reach the convolutions through the
      three small-weight layers of the classifier).
"""

from __future__ import annotations

import math
import shutil
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from archlab.registry import register_experiment

__all__ = [
    "network_depth",
    "weight_layers",
    "gradient_norms",
    "train_run",
    "accuracy",
    "pad_to",
    "resolve_root",
    "prepare_images",
    "num_threads",
    "skip_test_callback",
]

#: 3x3/1x1 convolutions per block on the main path (the depth counts them).
BLOCK_CONVS = {"basic": 2, "bottleneck": 3}

#: ``resnet_vs_plain``: blocks per stage of the networks compared (depths 10, 18, 34), and budgets.
PLAIN_FULL = {
    "dataset": "mnist",
    "stages": ((1, 1, 1, 1), (2, 2, 2, 2), (3, 4, 6, 3)),
    "width": 16,
    "steps": 200,
    "batch_size": 64,
    "lr": 0.05,
    "log_every": 10,
    "probe": 256,
    "n_test": 2000,
}
PLAIN_QUICK = {
    "dataset": "digits",
    "stages": ((1, 1, 1, 1), (2, 2, 2, 2)),
    "width": 8,
    "steps": 30,
    "batch_size": 32,
    "lr": 0.05,
    "log_every": 3,
    "probe": 64,
    "n_test": None,
}

#: ``resnet_vs_vgg``: (label, model, full-width options, the same network at a quarter of the width).
VGG_MODELS: tuple[tuple[str, str, dict[str, Any], dict[str, Any]], ...] = (
    ("ResNet-18", "resnet18_cifar", {}, {"width": 16}),
    (
        "VGG-11-BN",
        "vgg11_bn",
        {"pool_size": 1, "hidden_dim": 512, "dropout": 0.0},
        {"pool_size": 1, "hidden_dim": 128, "width_div": 4, "dropout": 0.0},
    ),
    (
        "VGG-16-BN",
        "vgg16_bn",
        {"pool_size": 1, "hidden_dim": 512, "dropout": 0.0},
        {"pool_size": 1, "hidden_dim": 128, "width_div": 4, "dropout": 0.0},
    ),
)
VGG_FULL = {"dataset": "mnist", "steps": 300, "batch_size": 64, "lr": 1e-3, "time_batch": 32, "time_steps": 3}
VGG_QUICK = {"dataset": "digits", "steps": 15, "batch_size": 32, "lr": 1e-3, "time_batch": 4, "time_steps": 1}


# --------------------------------------------------------------------------------------------------
# Shared pieces
# --------------------------------------------------------------------------------------------------


def network_depth(layers: Sequence[int], block: str = "basic") -> int:
    """Weight layers on the main path of a ResNet (or plain net): stem conv + block convs + fc."""
    if block not in BLOCK_CONVS:
        raise ValueError(f"block must be one of {sorted(BLOCK_CONVS)}, got {block!r}")
    return 2 + BLOCK_CONVS[block] * sum(int(n) for n in layers)


def weight_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The convolutions and linear layers on the main path, input to output (projections left out)."""
    return [
        (name, m)
        for name, m in model.named_modules()
        if isinstance(m, (nn.Conv2d, nn.Linear)) and "downsample" not in name.split(".")
    ]


def gradient_norms(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> list[float]:
    """L2 norm of the loss gradient w.r.t. each main-path layer's weight, on one batch.

    The model runs in training mode (batch statistics, as during training); its batch-norm buffers
    and existing gradients are restored afterwards, so a probe does not change the training run.
    """
    was = model.training
    buffers = {k: v.detach().clone() for k, v in model.named_buffers()}
    saved = {p: p.grad for p in model.parameters()}
    for p in model.parameters():
        p.grad = None
    model.train()
    try:
        F.cross_entropy(model(x), y).backward()
        norms = [
            float(m.weight.grad.norm()) if m.weight.grad is not None else 0.0 for _, m in weight_layers(model)
        ]
    finally:
        for p, g in saved.items():
            p.grad = g
        with torch.no_grad():
            for k, v in model.named_buffers():
                v.copy_(buffers[k])
        model.train(was)
    return norms


@torch.no_grad()
def accuracy(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 500
) -> tuple[float, float]:
    """(accuracy, mean cross-entropy) of ``model`` in eval mode on prepared inputs ``x`` (N, C, H, W)."""
    was = model.training
    model.eval()
    correct, loss = 0, 0.0
    try:
        for i in range(0, len(x), batch_size):
            logits = model(x[i : i + batch_size])
            correct += int((logits.argmax(1) == y[i : i + batch_size]).sum())
            loss += float(F.cross_entropy(logits, y[i : i + batch_size], reduction="sum"))
    finally:
        model.train(was)
    return correct / max(len(x), 1), loss / max(len(x), 1)


def pad_to(x: torch.Tensor, size: int) -> torch.Tensor:
    """Images (B, C, H, W) brought to ``size`` x ``size``: zero-padded when smaller by an even margin
    (MNIST 28 -> 32, as LeNet-5), else resized bilinearly (digits 8 -> 32)."""
    from archlab.data.transforms import Resize

    h = x.shape[-1]
    if h == size:
        return x
    if h < size and (size - h) % 2 == 0 and size - h <= h // 2:
        p = (size - h) // 2
        return F.pad(x, (p, p, p, p))  # (B, C, size, size); 0 is the background of uint8 digits
    return Resize(size)(x)


def resolve_root(dataset: str, root: str | None) -> str | None:
    """The data folder for ``dataset``: ``root``, else for MNIST the shared folder when present."""
    if root or dataset != "mnist":
        return root
    from archlab.experiments.cnn_design import mnist_root

    return mnist_root(None)


def _arrays(dataset: str, root: str | None) -> tuple[Any, dict[str, torch.Tensor]]:
    """(info, {"x_train", "y_train", "x_test", "y_test"}): the raw uint8 images and labels, no val split."""
    from archlab.data import load_dataset

    b = load_dataset(dataset, root, val_split=0.0)
    return b.info, {"x_train": b.train.x, "y_train": b.train.y, "x_test": b.test.x, "y_test": b.test.y}


def prepare_images(info: Any, x: torch.Tensor) -> torch.Tensor:
    """uint8 images -> the float, normalised inputs the models train on (archlab's eval transform)."""
    from archlab.data.transforms import build_transform

    return build_transform(info)(x)


@contextmanager
def num_threads(n: int | None) -> Iterator[None]:
    """Run with ``n`` torch CPU threads (None: leave them), then restore the process's setting."""
    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _history(records: list[dict[str, Any]]) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"step": [], "loss": [], "acc": []}
    for r in records:
        if r.get("split") == "train" and "loss" in r:
            out["step"].append(int(r["step"]))
            out["loss"].append(float(r["loss"]))
            out["acc"].append(float(r.get("acc", math.nan)))
    return out


def train_run(
    out_dir: str | Path,
    name: str,
    model: str,
    dataset: str,
    *,
    options: dict[str, Any] | None = None,
    overrides: dict[str, Any] | None = None,
    root: str | None = None,
    threads: int | None = None,
    callbacks: list[Any] | None = None,
) -> dict[str, Any]:
    """Train one sub-run with :func:`archlab.train` into ``out_dir/runs/name`` (replaced if present).

    No recipe applies (the run starts from archlab's defaults, then ``overrides``), so a recipe
    shipped for the model and dataset cannot change an experiment's budget behind its back.

    Args:
        out_dir: the experiment's folder.
        name: the run's folder name.
        model, dataset: registered names.
        options: model options (``{"width": 16}`` -> ``model.width``).
        overrides: dotted config keys (``{"train.max_steps": 200}``).
        root: ``data.root``.
        threads: torch CPU threads for the run (restored afterwards).
        callbacks: :class:`archlab.engine.Callback` objects.

    Returns:
        ``{"name", "run_dir", "test_acc", "test_loss", "params", "seconds" (wall, incl. loading and
        evaluation), "train_seconds", "steps", "epochs", "n_train", "history" ({"step", "loss",
        "acc"} of the training log), "model" (the trained module, on the CPU, eval mode)}``.
    """
    import archlab
    from archlab.config import RunConfig

    runs = Path(out_dir) / "runs"
    if (runs / name).exists():
        shutil.rmtree(runs / name)  # metrics.jsonl appends: start afresh
    ovs: dict[str, Any] = {
        "model.name": model, "data.name": dataset, "run.out_dir": str(runs), "run.name": name,
        "run.report": False, "system.progress": False, "system.tensorboard": False,
    }  # fmt: skip
    if root:
        ovs["data.root"] = root
    ovs.update({f"model.{k}": list(v) if isinstance(v, tuple) else v for k, v in (options or {}).items()})
    ovs.update(overrides or {})
    with num_threads(threads):
        t0 = time.perf_counter()
        run = archlab.train(model, dataset, config=RunConfig(), overrides=ovs, callbacks=callbacks)
        seconds = time.perf_counter() - t0
    m, s = run.metrics, run.summary
    net = run.model.cpu().eval()
    return {
        "name": name, "run_dir": str(run.path),
        "test_acc": float(m.get("test/acc", math.nan)), "test_loss": float(m.get("test/loss", math.nan)),
        "params": sum(p.numel() for p in net.parameters()), "seconds": seconds,
        "train_seconds": float(s.get("train_time_s", math.nan)), "steps": int(s.get("steps", 0)),
        "epochs": int(s.get("epochs", 0)), "n_train": len(run.bundle.train) if run.bundle is not None else 0,
        "history": _history(run.history), "model": net,
    }  # fmt: skip


def skip_test_callback() -> Any:
    """A callback that drops the trainer's test loader when training starts.

    The experiments measure the test accuracy themselves with :func:`accuracy` (once, on the
    images they choose) instead of letting every sub-run evaluate the whole test split twice (final
    metrics and saved predictions), which for these small networks costs as much as training.
    """
    from archlab.engine.trainer import Callback

    class SkipTest(Callback):
        def on_fit_start(self, trainer: Any) -> None:
            trainer.test_loader = None

    return SkipTest()


def _gradient_probe(x: torch.Tensor, y: torch.Tensor, skip_test: bool) -> Any:
    """A callback that records :func:`gradient_norms` at the start and the end of training.

    With ``skip_test`` it also drops the trainer's test loader: the experiment measures the test
    accuracy itself, on a fixed subset, instead of twice on the whole test split (final metrics
    and saved predictions), which would take as long as the training of these small networks.
    """
    from archlab.engine.trainer import Callback

    class GradientProbe(Callback):
        def __init__(self) -> None:
            self.at_init: list[float] = []
            self.after: list[float] = []

        def _norms(self, trainer: Any) -> list[float]:
            model = trainer.task.model
            device = next(model.parameters()).device
            return gradient_norms(model, x.to(device), y.to(device))

        def on_fit_start(self, trainer: Any) -> None:
            self.at_init = self._norms(trainer)
            if skip_test:
                trainer.test_loader = None

        def on_fit_end(self, trainer: Any) -> None:
            self.after = self._norms(trainer)

    return GradientProbe()


def _tail_mean(values: Sequence[float], share: float = 0.5) -> float:
    """Mean of the last ``share`` of a curve (at least one point): a less noisy final value."""
    if not values:
        return math.nan
    k = max(1, int(round(len(values) * share)))
    return float(np.mean(values[-k:]))


def _tail_se(values: Sequence[float], share: float = 0.5) -> float:
    """Standard error of :func:`_tail_mean` (the spread of the points it averages / sqrt(n))."""
    k = max(1, int(round(len(values) * share)))
    tail = np.asarray(values[-k:], dtype=float)
    return float(tail.std(ddof=1) / math.sqrt(len(tail))) if len(tail) > 1 else math.inf


# --------------------------------------------------------------------------------------------------
# resnet_vs_plain
# --------------------------------------------------------------------------------------------------


@register_experiment(
    "resnet_vs_plain",
    family="cnn",
    description="Plain vs residual nets of 10/18/34 layers: the degradation problem and gradient norms",
)
def resnet_vs_plain(
    out_dir: Path,
    quick: bool = False,
    *,
    dataset: str | None = None,
    data_root: str | None = None,
    stages: Sequence[Sequence[int]] | None = None,
    width: int | None = None,
    steps: int | None = None,
    batch_size: int | None = None,
    lr: float | None = None,
    seed: int = 0,
    threads: int | None = 1,
) -> dict[str, Any]:
    """Plain and residual networks of several depths, the same SGD steps each (He et al. 2016, Fig. 4).

    Args:
        out_dir: the experiment's folder.
        quick: digits, two depths, 30 steps (a smoke test).
        dataset: ``mnist`` (full default) or ``digits`` (quick default).
        data_root: the folder holding ``mnist/`` (default: the shared data folder).
        stages: blocks per stage of each depth, e.g. ``[(2, 2, 2, 2), (3, 4, 6, 3)]``.
        width: planes of the first stage.
        steps, batch_size, lr: the SGD budget (momentum 0.9, weight decay 1e-4, constant lr).
        seed: initialisation and batch order (the same for every network).
        threads: torch CPU threads (1: fastest for these small nets on a shared machine).
    """
    from archlab.viz._mpl import new_figure, save_figure

    t0 = time.perf_counter()
    c = dict(PLAIN_QUICK if quick else PLAIN_FULL)
    ds = dataset or c["dataset"]
    stages = [tuple(int(n) for n in s) for s in (stages or c["stages"])]
    stages.sort(key=network_depth)
    width, steps = int(width or c["width"]), int(steps or c["steps"])
    batch_size, lr = int(batch_size or c["batch_size"]), float(lr or c["lr"])
    root = resolve_root(ds, data_root)
    info, d = _arrays(ds, root)
    g = torch.Generator().manual_seed(seed)
    probe_idx = torch.randperm(len(d["x_train"]), generator=g)[: c["probe"]]
    x_probe, y_probe = prepare_images(info, d["x_train"][probe_idx]), d["y_train"][probe_idx]
    n_test = c["n_test"] if ds == "mnist" else None
    test_idx = (
        torch.randperm(len(d["x_test"]), generator=g)[:n_test] if n_test else torch.arange(len(d["x_test"]))
    )
    x_test, y_test = prepare_images(info, d["x_test"][test_idx]), d["y_test"][test_idx]

    overrides = {
        "train.max_steps": steps, "train.epochs": math.ceil(steps / max(1, len(d["x_train"]) // batch_size)),
        "train.batch_size": batch_size, "train.optimizer": "sgd", "train.lr": lr, "train.momentum": 0.9,
        "train.weight_decay": 1e-4, "train.schedule": "constant", "train.seed": seed,
        "train.log_every": c["log_every"], "data.val_split": 0.0,
    }  # fmt: skip
    runs, rows = [], []
    for layers in stages:
        depth = network_depth(layers)
        for residual in (False, True):
            label = f"{'ResNet' if residual else 'plain'}-{depth}"
            probe = _gradient_probe(x_probe, y_probe, skip_test=True)
            r = train_run(
                out_dir,
                label,
                "resnet18_cifar",
                ds,
                root=root,
                threads=threads,
                callbacks=[probe],
                options={"width": width, "layers": layers, "residual": residual},
                overrides=overrides,
            )
            with num_threads(threads):
                r["test_acc"], r["test_loss"] = accuracy(r["model"], x_test, y_test)
            r.update(
                label=label,
                depth=depth,
                layers=list(layers),
                residual=residual,
                grad_init=probe.at_init,
                grad_final=probe.after,
                final_loss=_tail_mean(r["history"]["loss"]),
                final_loss_se=_tail_se(r["history"]["loss"]),
                final_acc=_tail_mean(r["history"]["acc"]),
            )
            r.pop("model")
            runs.append(r)
            rows.append({
                "network": label, "depth": depth, "blocks per stage": "-".join(map(str, layers)),
                "shortcuts": "yes" if residual else "no", "params": r["params"],
                "final train loss": round(r["final_loss"], 4), "final train acc": round(r["final_acc"], 4),
                "test acc": round(r["test_acc"], 4), "|grad| first layer (init)": f"{r['grad_init'][0]:.3g}",
                "|grad| last conv (init)": f"{r['grad_init'][-2]:.3g}",
                "first / last conv (init)": round(r["grad_init"][0] / r["grad_init"][-2], 2),
                "|grad| first layer (trained)": f"{r['grad_final'][0]:.3g}", "train s": round(r["train_seconds"], 1),
            })  # fmt: skip

    by = {(r["depth"], r["residual"]): r for r in runs}
    depths = sorted({r["depth"] for r in runs})

    # Figure 1: training loss, plain (left) and residual (right), one line per depth (the paper's Fig. 4).
    fig = new_figure(11, 4)
    axes = [fig.add_subplot(1, 2, i + 1) for i in range(2)]
    for ax, residual in zip(axes, (False, True)):
        for i, depth in enumerate(depths):
            h = by[(depth, residual)]["history"]
            ax.plot(h["step"], h["loss"], color=f"C{i}", label=f"{depth} layers")
        ax.set(
            xlabel="step",
            ylabel="training loss (mean of the logging window)",
            yscale="log",
            title=("ResNet (with shortcuts)" if residual else "plain (no shortcuts)"),
        )
        ax.legend()
    ymin = min(a.get_ylim()[0] for a in axes)
    ymax = max(a.get_ylim()[1] for a in axes)
    for ax in axes:
        ax.set_ylim(ymin, ymax)
    curves_png = save_figure(fig, out_dir / "loss_curves.png")

    # Figure 2: gradient norm of every layer, at initialisation and after training.
    fig = new_figure(11, 4)
    for k, (key, title) in enumerate((("grad_init", "at initialisation"), ("grad_final", "after training"))):
        ax = fig.add_subplot(1, 2, k + 1)
        for i, depth in enumerate(depths):
            for residual, style in ((False, "--"), (True, "-")):
                norms = by[(depth, residual)][key]
                ax.plot(
                    range(1, len(norms) + 1),
                    norms,
                    style,
                    color=f"C{i}",
                    marker=".",
                    label=f"{'ResNet' if residual else 'plain'}-{depth}",
                )
        ax.set(
            xlabel="layer (1 = stem convolution, last = fc)",
            ylabel="||dLoss/dW||",
            yscale="log",
            title=f"Gradient norm per layer, {title}",
        )
        if k == 0:
            ax.legend(fontsize=7, ncol=2)
    grads_png = save_figure(fig, out_dir / "gradient_norms.png")

    # Figure 3: against depth, the first layer's gradient norm and the final training loss.
    fig = new_figure(11, 4)
    ax1, ax2 = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    for residual, style, name, color in ((False, "--o", "plain", "C0"), (True, "-o", "ResNet", "C1")):
        ax1.plot(
            depths,
            [by[(dp, residual)]["grad_init"][0] for dp in depths],
            style,
            color=color,
            label=f"{name}, init",
        )
        trained = [by[(dp, residual)]["grad_final"][0] for dp in depths]
        ax1.plot(depths, trained, style, color=color, alpha=0.4, mfc="none", label=f"{name}, trained")
        ax2.plot(depths, [by[(dp, residual)]["final_loss"] for dp in depths], style, color=color, label=name)
    ax1.set(
        xlabel="depth (weight layers)",
        ylabel="||dLoss/dW|| of the stem convolution",
        yscale="log",
        title="Gradient reaching the first layer",
        xticks=depths,
    )
    ax2.set(
        xlabel="depth (weight layers)",
        ylabel=f"training loss (mean over steps {steps // 2}-{steps})",
        yscale="log",
        title="Final training loss against depth",
        xticks=depths,
    )
    ax1.legend(fontsize=8)
    ax2.legend()
    depth_png = save_figure(fig, out_dir / "depth.png")

    deg = _degradation(by, depths)
    intro = (
        "Does a deeper network train at least as well as a shallower one? It could: the extra layers could "
        "learn the identity. He et al. (2016) found that without shortcuts the 34-layer network ends with a "
        "*higher training* error than the 18-layer one (not overfitting: an optimisation difficulty), and that "
        "identity shortcuts remove it. We train plain and residual networks of several depths for the same "
        "number of steps and compare their training loss, and the gradient that reaches each layer.\n\n"
        f"Setup: `resnet18_cifar` with `width={width}` and `layers` set per depth (`residual=false` for the plain "
        f"nets: the same layers without shortcuts); {'MNIST (28x28)' if ds == 'mnist' else ds}, "
        f"{steps} steps of SGD (batch {batch_size}, lr {lr}, momentum 0.9, weight decay 1e-4), the same "
        f"initialisation seed and batch order for every network. Depth = 2 + 2 x (number of blocks). Gradient "
        f"norms are measured on a fixed batch of {len(x_probe)} training images; the test accuracy on "
        f"{len(x_test):,} test images. The final training loss and accuracy are the means of the logged values over "
        f"the second half of the steps."
        + (" **Quick mode**: a smoke test, too short for the numbers to mean much." if quick else "")
    )
    report = _write(
        out_dir,
        "Plain against residual networks: the degradation problem",
        intro,
        [
            ("Training loss: plain networks (left) and ResNets (right)", curves_png),
            ("Gradient norm of each layer's weights", grads_png),
            ("First-layer gradient and final training loss against depth", depth_png),
        ],
        [("Networks after training", rows)],
        deg["text"],
    )
    return {
        "report": str(report),
        "seconds": time.perf_counter() - t0,
        "rows": rows,
        "runs": runs,
        "depths": depths,
        "degradation": {k: v for k, v in deg.items() if k != "text"},
        "setup": {
            "dataset": ds,
            "width": width,
            "steps": steps,
            "batch_size": batch_size,
            "lr": lr,
            "stages": [list(s) for s in stages],
            "quick": quick,
            "n_test": len(x_test),
        },
    }


def _degradation(
    by: dict[tuple[int, bool], dict[str, Any]], depths: list[int], tol: float = 0.1
) -> dict[str, Any]:
    """Does the deepest plain net end with a higher training loss than the next shallower one, and does
    the deepest ResNet? Plus the conclusion's text.

    "Higher" means by more than ``tol`` (relative) and by more than two standard errors of the
    difference (each final loss is a mean of logging windows; their spread gives its standard error).
    """
    deep, shallow = depths[-1], depths[-2] if len(depths) > 1 else depths[-1]

    def compare(residual: bool) -> tuple[bool, float, float]:
        a, b = by[(deep, residual)], by[(shallow, residual)]
        diff = a["final_loss"] - b["final_loss"]
        se = math.hypot(a["final_loss_se"], b["final_loss_se"])
        worse = a["final_loss"] > (1 + tol) * b["final_loss"] and diff > 2 * se
        return worse, a["final_loss"] / b["final_loss"], diff / se if se > 0 else math.inf

    (plain_worse, ratio_p, z_p), (res_worse, ratio_r, z_r) = compare(False), compare(True)
    p_d, p_s = by[(deep, False)], by[(shallow, False)]
    r_d, r_s = by[(deep, True)], by[(shallow, True)]
    lines = [
        f"- **Plain nets**: the {deep}-layer network ends at training loss {p_d['final_loss']:.4f} against "
        f"{p_s['final_loss']:.4f} for {shallow} layers ({ratio_p:.2f}x, {z_p:.1f} standard errors): "
        + (
            "deeper is **worse**: the degradation problem, although the deeper net could represent the "
            "shallower one (its extra layers would only have to learn the identity)."
            if plain_worse
            else f"not worse by more than {tol:.0%} and two standard errors at this budget."
        ),
        f"- **ResNets**: {r_d['final_loss']:.4f} at {deep} layers against {r_s['final_loss']:.4f} at {shallow} "
        f"({ratio_r:.2f}x, {z_r:.1f} standard errors): "
        + ("deeper is worse here too." if res_worse else "the deeper residual net is not worse."),
        f"- Going from {shallow} to {deep} layers multiplies the final training loss by {ratio_p:.2f} without "
        f"shortcuts and by {ratio_r:.2f} with them. At {deep} layers the shortcuts change the final training loss "
        f"from {p_d['final_loss']:.4f} to {r_d['final_loss']:.4f}, and the test accuracy from {p_d['test_acc']:.4f} "
        f"to {r_d['test_acc']:.4f}.",
    ]
    g_p = [by[(dp, False)]["grad_init"][0] for dp in depths]
    g_r = [by[(dp, True)]["grad_init"][0] for dp in depths]
    ratio = g_p[-1] / g_p[0] if g_p[0] > 0 else math.nan
    spread_p = p_d["grad_init"][0] / p_d["grad_init"][-2]
    spread_r = r_d["grad_init"][0] / r_d["grad_init"][-2]
    if ratio < 0.5:
        trend = (
            "the plain nets' first-layer gradient **shrinks** with depth: the signal from the loss fades on "
            "its way down (vanishing gradients)"
        )
    elif ratio > 2.0:
        trend = (
            "the plain nets' first-layer gradient **grows** with depth: with batch normalisation the "
            "gradients of a deep plain net do not vanish at initialisation but explode towards the input "
            "(Yang et al. 2019), an equally ill-conditioned start; He et al. (2016) also found healthy, "
            "non-vanishing gradient norms in their batch-normalised plain nets"
        )
    else:
        trend = "the plain nets' first-layer gradient stays within a factor 2 across depths"
    lines.append(
        f"- Gradient at initialisation: the stem convolution of the plain nets receives a gradient of norm "
        f"{', '.join(f'{v:.3g}' for v in g_p)} at depths {', '.join(map(str, depths))} "
        f"({ratio:.2f}x from the shallowest to the deepest), the ResNets' stems "
        f"{', '.join(f'{v:.3g}' for v in g_r)}: {trend}. Within the {deep}-layer nets the first layer's gradient is "
        f"{spread_p:.3g}x the last convolution's without shortcuts and {spread_r:.3g}x with them"
        + (
            ": the shortcuts keep the gradient more uniform across depth."
            if abs(math.log(spread_r)) < abs(math.log(spread_p))
            else "."
        )
    )
    if plain_worse and not res_worse:
        answer = (
            "The deepest plain network trains worse than the shallower plain one while the residual one does not: "
            "the shortcuts remove the degradation."
        )
    elif plain_worse:
        answer = (
            "Both the deepest plain network and the deepest ResNet train worse than their shallower versions at "
            f"this budget, the plain one by far more ({ratio_p:.2f}x against {ratio_r:.2f}x the loss): the shortcuts "
            "reduce the degradation; longer training lets the deeper ResNet catch up (He et al. 2016, Fig. 4)."
        )
    else:
        answer = (
            "The deepest plain network does not train worse than the shallower one at this budget "
            f"({ratio_p:.2f}x the loss; ResNets {ratio_r:.2f}x): no degradation to remove here."
        )
    return {
        "plain_degrades": plain_worse,
        "residual_degrades": res_worse,
        "deep": deep,
        "shallow": shallow,
        "plain_loss_ratio": ratio_p,
        "residual_loss_ratio": ratio_r,
        "text": answer + "\n\n" + "\n".join(lines),
    }


def _write(
    out_dir: Path,
    title: str,
    intro: str,
    figures: list[tuple[str, Path]],
    tables: list[tuple[str, list[dict[str, Any]]]],
    conclusions: str,
) -> Path:
    from archlab.report.experiment import write_experiment_report

    return write_experiment_report(
        out_dir, title, intro, figures=figures, tables=tables, conclusions=conclusions
    )


# --------------------------------------------------------------------------------------------------
# resnet_vs_vgg
# --------------------------------------------------------------------------------------------------


def _step_seconds(model: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int) -> float:
    """Median wall time of one Adam training step (forward, backward, update) after a warm-up step."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    times = []
    for i in range(steps + 1):
        t = time.perf_counter()
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if i > 0:  # the first step sets up kernels and optimizer state
            times.append(time.perf_counter() - t)
    return float(np.median(times))


def _train_same_batches(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int, batch_size: int, lr: float, seed: int
) -> dict[str, Any]:
    """Adam on the batches drawn by ``seed`` (the same for every model): loss per step and time per step."""
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    losses, t0 = [], time.perf_counter()
    for _ in range(steps):
        idx = torch.randint(0, len(x), (batch_size,), generator=g)
        loss = F.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return {"loss": losses, "s_per_step": (time.perf_counter() - t0) / max(steps, 1)}


@register_experiment(
    "resnet_vs_vgg",
    family="cnn",
    description="ResNet-18 vs VGG-11/16 (BN) at 32 px: parameters, FLOPs, memory, step time, accuracy",
)
def resnet_vs_vgg(
    out_dir: Path,
    quick: bool = False,
    *,
    dataset: str | None = None,
    data_root: str | None = None,
    steps: int | None = None,
    batch_size: int | None = None,
    seed: int = 0,
    threads: int | None = 1,
) -> dict[str, Any]:
    """ResNet-18 against VGG-11-BN and VGG-16-BN on 32x32 inputs: costs at full width, accuracy at 1/4 width.

    Args:
        out_dir: the experiment's folder.
        quick: digits resized to 32 px, 15 steps, timing on a batch of 4 (a smoke test).
        dataset: ``mnist`` (full default; padded to 32 px) or ``digits``.
        data_root: the folder holding ``mnist/``.
        steps, batch_size: the identical Adam budget of the accuracy comparison.
        seed: initialisation and batch order (the same for every network).
        threads: torch CPU threads (for the timings too).
    """
    from archlab.inspect import info as model_info
    from archlab.registry import create_model
    from archlab.viz._mpl import new_figure, save_figure

    t0 = time.perf_counter()
    c = dict(VGG_QUICK if quick else VGG_FULL)
    ds = dataset or c["dataset"]
    steps, batch_size = int(steps or c["steps"]), int(batch_size or c["batch_size"])
    root = resolve_root(ds, data_root)
    info, d = _arrays(ds, root)
    size, channels = 32, int(info.input_shape[0])
    n_classes = int(info.num_classes)
    x_train, y_train = prepare_images(info, pad_to(d["x_train"], size)), d["y_train"]
    x_test, y_test = prepare_images(info, pad_to(d["x_test"], size)), d["y_test"]
    shape = (channels, size, size)

    rows, cost, curves = [], [], {}
    with num_threads(threads):
        for label, name, full_opts, narrow_opts in VGG_MODELS:
            torch.manual_seed(seed)
            net = create_model(
                name, in_channels=channels, num_classes=n_classes, image_size=size, **full_opts
            )
            mi = model_info(net, input_shape=shape)
            xb = torch.randn(c["time_batch"], *shape, generator=torch.Generator().manual_seed(seed))
            yb = torch.randint(
                0, n_classes, (c["time_batch"],), generator=torch.Generator().manual_seed(seed)
            )
            step_s = _step_seconds(net, xb, yb, c["time_steps"])
            del net
            torch.manual_seed(seed)
            small = create_model(
                name, in_channels=channels, num_classes=n_classes, image_size=size, **narrow_opts
            )
            small_params = sum(p.numel() for p in small.parameters())
            h = _train_same_batches(small, x_train, y_train, steps, batch_size, c["lr"], seed)
            test_acc, test_loss = accuracy(small, x_test, y_test)
            curves[label] = h["loss"]
            entry = {
                "label": label,
                "model": name,
                "params": mi.total_params,
                "flops": mi.flops,
                "activation_bytes": mi.activation_bytes,
                "step_seconds": step_s,
                "narrow_params": small_params,
                "narrow_s_per_step": h["s_per_step"],
                "test_acc": test_acc,
                "test_loss": test_loss,
                "final_train_loss": _tail_mean(h["loss"]),
            }
            cost.append(entry)
            rows.append(
                {
                    "network": label,
                    "params (full)": f"{mi.total_params:,}",
                    "MFLOPs / image": f"{mi.flops / 1e6:.1f}",
                    "activations / image (MB)": f"{mi.activation_bytes / 2**20:.2f}",
                    f"ms / train step (batch {c['time_batch']}, full)": f"{1000 * step_s:.0f}",
                    "params (1/4 width)": f"{small_params:,}",
                    "ms / step (1/4 width)": f"{1000 * h['s_per_step']:.0f}",
                    "final train loss (1/4 width)": round(entry["final_train_loss"], 4),
                    "test acc (1/4 width)": round(test_acc, 4),
                }
            )

    labels = [e["label"] for e in cost]
    fig = new_figure(14, 3.6)
    panels = [
        ("parameters (M)", [e["params"] / 1e6 for e in cost]),
        ("GFLOPs per image (forward)", [e["flops"] / 1e9 for e in cost]),
        ("activations per image (MB)", [e["activation_bytes"] / 2**20 for e in cost]),
        (f"ms per training step (batch {c['time_batch']})", [1000 * e["step_seconds"] for e in cost]),
    ]
    for i, (title, vals) in enumerate(panels):
        ax = fig.add_subplot(1, 4, i + 1)
        ax.bar(range(len(labels)), vals, color=[f"C{k}" for k in range(len(labels))])
        ax.set_xticks(range(len(labels)), labels, rotation=15)
        ax.set_title(title)
        for k, v in enumerate(vals):
            ax.annotate(f"{v:.3g}", (k, v), ha="center", va="bottom", fontsize=8)
    cost_png = save_figure(fig, out_dir / "cost.png")

    fig = new_figure(11, 4)
    ax1, ax2 = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    win = max(1, steps // 20)
    for i, (label, losses) in enumerate(curves.items()):
        smooth = np.convolve(losses, np.ones(win) / win, mode="valid")
        ax1.plot(np.arange(win, len(losses) + 1), smooth, color=f"C{i}", label=label)
    ax1.set(
        xlabel="step",
        ylabel=f"training loss (moving mean of {win})",
        yscale="log",
        title="Training at 1/4 width, identical batches",
    )
    ax1.legend()
    accs = [e["test_acc"] for e in cost]
    ax2.bar(range(len(labels)), accs, color=[f"C{k}" for k in range(len(labels))])
    ax2.set_xticks(range(len(labels)), labels)
    lo = max(0.0, min(accs) - 0.05)
    ax2.set(ylim=(lo, min(1.0, max(accs) + 0.02)), ylabel="test accuracy", title=f"After {steps} steps")
    for k, v in enumerate(accs):
        ax2.annotate(f"{v:.4f}", (k, v), ha="center", va="bottom", fontsize=8)
    acc_png = save_figure(fig, out_dir / "accuracy.png")

    imagenet: dict[str, int] = {}
    if not quick:  # the paper's setting, for contrast: ImageNet stems at 224 px (forward FLOPs only)
        for label, name in (("ResNet-18", "resnet18"), ("VGG-16", "vgg16")):
            with num_threads(threads):
                imagenet[label] = model_info(create_model(name), input_shape=(3, 224, 224)).flops
    res = next(e for e in cost if e["label"].startswith("ResNet"))
    vggs = [e for e in cost if e is not res]
    best = max(cost, key=lambda e: e["test_acc"])
    # Training costs about 3 forward passes (forward, and the two products of backward).
    rate = {e["label"]: 3 * e["flops"] * c["time_batch"] / e["step_seconds"] / 1e9 for e in cost}
    same_order = [e["label"] for e in sorted(cost, key=lambda e: e["flops"])] == [
        e["label"] for e in sorted(cost, key=lambda e: e["step_seconds"])
    ]
    lines = [
        f"- **Size**: ResNet-18 has {res['params'] / 1e6:.2f}M parameters, "
        + ", ".join(f"{v['label']} {v['params'] / 1e6:.2f}M" for v in vggs)
        + "; at 32 px with 512-unit hidden layers VGG's weights sit in its convolutions, not in the classifier.",
        "- **Compute**: ResNet-18 needs "
        + f"{res['flops'] / 1e9:.3g} GFLOPs per image, "
        + ", ".join(
            f"{v['label']} {v['flops'] / 1e9:.3g} (ResNet-18 / it: {res['flops'] / v['flops']:.2f}x)"
            for v in vggs
        )
        + ": with the CIFAR stem ResNet-18's first stage (four 64-channel convolutions) runs at the full 32x32, "
        "where VGG pools after one or two convolutions."
        + (
            f" With ImageNet stems at 224x224 (3 channels, 1000 classes) the balance turns: ResNet-18 "
            f"{imagenet['ResNet-18'] / 1e9:.3g} GFLOPs against VGG-16 {imagenet['VGG-16'] / 1e9:.3g} "
            "(the paper's point: a ResNet is cheaper than a VGG of similar depth; archlab counts 2 FLOPs per "
            "multiply-add, the paper's 1.8 and 15.3 billion FLOPs are multiply-adds)."
            if imagenet
            else ""
        ),
        f"- **Memory**: activations of one forward pass per image: ResNet-18 {res['activation_bytes'] / 2**20:.2f} MB, "
        + ", ".join(f"{v['label']} {v['activation_bytes'] / 2**20:.2f} MB" for v in vggs)
        + ".",
        f"- **Measured time per training step** (batch {c['time_batch']}, full width): ResNet-18 "
        f"{1000 * res['step_seconds']:.0f} ms, "
        + ", ".join(f"{v['label']} {1000 * v['step_seconds']:.0f} ms" for v in vggs)
        + (": the same order as the FLOPs" if same_order else ": not the order of the FLOPs")
        + f", at {', '.join(f'{k} {v:.0f}' for k, v in rate.items())} GFLOP/s (taking a training step as 3 forward "
        "passes): FLOPs are a fair first guess of the time, memory traffic and kernel efficiency decide the rest.",
        f"- **Accuracy** after {steps} identical Adam steps at a quarter of the width: "
        + ", ".join(f"{e['label']} {e['test_acc']:.4f}" for e in cost)
        + f". Best: {best['label']}.",
    ]
    intro = (
        "Which costs more, and which learns faster: a ResNet or a VGG of comparable depth? The costs "
        "(parameters, FLOPs and activation memory from `archlab.inspect.info`, and the wall time of one Adam "
        f"step, median of {c['time_steps']} after a warm-up) are measured at full width on {size}x{size} "
        f"single-channel inputs. The accuracy comparison trains each network at a quarter of its width "
        f"(ResNet `width=16`, VGG `width_div=4` and 128 hidden units: the same relative shrink) for {steps} "
        f"Adam steps (lr {c['lr']}, batch {batch_size}) on the same batches, "
        + ("MNIST zero-padded from 28 to 32 px" if ds == "mnist" else f"{ds} resized to {size} px")
        + f", and reports the accuracy on all {len(x_test):,} test images. VGG is adapted to 32 px: global pooling "
        "of its 1x1 last map (`pool_size=1`), 512-unit hidden layers and no dropout (the ResNet has none). The "
        "final training loss is the mean over the second half of the steps."
        + (" **Quick mode**: a smoke test." if quick else "")
    )
    report = _write(
        out_dir,
        "ResNet-18 against VGG-11 and VGG-16",
        intro,
        [("Costs at full width", cost_png), ("Training at a quarter of the width", acc_png)],
        [("Networks", rows)],
        "\n".join(lines),
    )
    return {
        "report": str(report),
        "seconds": time.perf_counter() - t0,
        "rows": rows,
        "cost": cost,
        "curves": curves,
        "best": best["label"],
        "imagenet_flops": imagenet,
        "setup": {
            "dataset": ds,
            "steps": steps,
            "batch_size": batch_size,
            "image_size": size,
            "time_batch": c["time_batch"],
            "quick": quick,
        },
    }
