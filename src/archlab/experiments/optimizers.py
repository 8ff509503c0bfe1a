"""Experiment ``optimizers``: how do SGD, momentum, Nesterov, Adagrad, RMSprop, Adam and AdamW move?

The seeds ask what each optimizer does differently and when it matters. Two views, both with the
from-scratch optimizers of :mod:`archlab.scratch.optim` (checked against ``torch.optim`` to 1e-12):

1. **Paths on 2-D test functions** (analytic gradients, a 2-parameter object): the Rosenbrock
   valley (ill-conditioned, curved), Beale's function (flat plateaus, steep walls) and the saddle
   ``x^2 - y^2``. For Rosenbrock and Beale every optimizer runs from the same start at each
   learning rate of a grid, and the figure shows its best run (lowest final loss); the saddle
   runs all optimizers at one learning rate from just beside the saddle point and counts the
   steps to escape.
2. **Training a small MLP** (64-64-10, ReLU, hand-written forward and backward in NumPy) on the
   embedded ``digits`` set with every optimizer: same initial weights, same mini-batches; each at
   its customary learning rate (the full run also tries 1/3x, 3x and 10x and keeps the lowest
   final training loss).

The conclusions are computed from the numbers the run produced.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from archlab.registry import register_experiment
from archlab.scratch import optim as so

OPTIMIZERS = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw")
LABELS = {
    "sgd": "SGD",
    "momentum": "SGD + momentum 0.9",
    "nesterov": "Nesterov 0.9",
    "adagrad": "Adagrad",
    "rmsprop": "RMSprop",
    "adam": "Adam",
    "adamw": "AdamW (wd 0.01)",
}
COLORS = {
    "sgd": "#1f77b4",
    "momentum": "#ff7f0e",
    "nesterov": "#2ca02c",
    "adagrad": "#d62728",
    "rmsprop": "#9467bd",
    "adam": "#8c564b",
    "adamw": "#e377c2",
}
#: Dashed lines for the variants that would hide their parent (Nesterov ~ momentum, AdamW ~ Adam).
STYLES = {"nesterov": "--", "adamw": "--"}
LR_GRID = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1, 1.0)
#: Learning rates for the MLP, the usual starting points of each method; the full run also tries
#: a third, three and ten times each, and keeps the one with the lowest final training loss.
MLP_LRS = {"sgd": 0.1, "momentum": 0.01, "nesterov": 0.01, "adagrad": 0.03, "rmsprop": 1e-3,
           "adam": 1e-3, "adamw": 1e-3}
MLP_LR_FACTORS = (1 / 3, 1.0, 3.0, 10.0)


def make_optimizer(name: str, params: list[Any], lr: float) -> so.Optimizer:
    """The optimizer called ``name`` (one of :data:`OPTIMIZERS`) with the experiment's settings."""
    if name == "sgd":
        return so.SGD(params, lr=lr)
    if name == "momentum":
        return so.SGD(params, lr=lr, momentum=0.9)
    if name == "nesterov":
        return so.SGD(params, lr=lr, momentum=0.9, nesterov=True)
    if name == "adagrad":
        return so.Adagrad(params, lr=lr)
    if name == "rmsprop":
        return so.RMSprop(params, lr=lr)
    if name == "adam":
        return so.Adam(params, lr=lr)
    if name == "adamw":
        return so.AdamW(params, lr=lr, weight_decay=0.01)
    raise ValueError(f"unknown optimizer {name!r}; choose from {', '.join(OPTIMIZERS)}")


# --------------------------------------------------------------------------------------------------
# Part 1: 2-D test functions
# --------------------------------------------------------------------------------------------------


def _rosenbrock(x, y):
    return (1 - x) ** 2 + 100 * (y - x**2) ** 2


def _rosenbrock_grad(x, y):
    return np.array([-2 * (1 - x) - 400 * x * (y - x**2), 200 * (y - x**2)])


def _beale(x, y):
    return (1.5 - x + x * y) ** 2 + (2.25 - x + x * y**2) ** 2 + (2.625 - x + x * y**3) ** 2


def _beale_grad(x, y):
    a, b, c = 1.5 - x + x * y, 2.25 - x + x * y**2, 2.625 - x + x * y**3
    return np.array([
        2 * a * (y - 1) + 2 * b * (y**2 - 1) + 2 * c * (y**3 - 1),
        2 * a * x + 4 * b * x * y + 6 * c * x * y**2,
    ])


def _saddle(x, y):
    return x**2 - y**2


def _saddle_grad(x, y):
    return np.array([2 * x, -2 * y])


@dataclass(frozen=True)
class TestFunction:
    """A 2-D objective with its analytic gradient, start, minimum and plotting window."""

    name: str
    title: str
    f: Callable[[Any, Any], Any]
    grad: Callable[[float, float], np.ndarray]
    start: tuple[float, float]
    minimum: tuple[float, float] | None
    xlim: tuple[float, float]
    ylim: tuple[float, float]
    log_contours: bool
    lrs: tuple[float, ...] = field(default=LR_GRID)


FUNCTIONS = (
    TestFunction("rosenbrock", "Rosenbrock (1-x)^2 + 100(y-x^2)^2", _rosenbrock, _rosenbrock_grad,
                 (-1.5, 2.0), (1.0, 1.0), (-2.0, 2.0), (-1.0, 3.0), True),
    TestFunction("beale", "Beale's function", _beale, _beale_grad,
                 (1.0, 1.5), (3.0, 0.5), (-1.0, 4.5), (-1.5, 2.5), True),
    TestFunction("saddle", "Saddle x^2 - y^2", _saddle, _saddle_grad,
                 (1.0, 1e-3), None, (-1.5, 1.5), (-1.5, 1.5), False, (1e-2,)),
)
#: The saddle counts as escaped once |y| reaches this (the start is at |y| = 1e-3).
ESCAPE_Y = 1.0


def run_path(fn: TestFunction, optimizer: str, lr: float, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions (steps+1, 2) and losses of ``optimizer`` on ``fn`` from ``fn.start``.

    Stops early if the iterate leaves the plane (non-finite or beyond 1e6) or, on the saddle,
    once |y| >= 2 (the loss is unbounded below there).
    """
    p = so.ArrayParam(np.array(fn.start, dtype=np.float64), name="xy")
    opt = make_optimizer(optimizer, [p], lr)
    path = [p.data.copy()]
    with np.errstate(over="ignore", invalid="ignore"):
        for _ in range(steps):
            p.grad = fn.grad(*p.data)
            opt.step()
            path.append(p.data.copy())
            if not np.all(np.isfinite(p.data)) or np.abs(p.data).max() > 1e6:
                break
            if fn.minimum is None and abs(p.data[1]) >= 2 * ESCAPE_Y:
                break
        arr = np.array(path)
        return arr, np.asarray(fn.f(arr[:, 0], arr[:, 1]), dtype=np.float64)


def _diverged(path: np.ndarray) -> bool:
    return not np.all(np.isfinite(path[-1])) or np.abs(path[-1]).max() > 1e6


def paths_on_functions(steps: int) -> dict[str, dict[str, Any]]:
    """Run every optimizer on every test function; for each, keep the best learning rate's run."""
    out: dict[str, dict[str, Any]] = {}
    for fn in FUNCTIONS:
        per_opt: dict[str, Any] = {}
        for name in OPTIMIZERS:
            sweep: dict[float, float] = {}
            best = None
            for lr in fn.lrs:
                path, loss = run_path(fn, name, lr, steps)
                final = float(loss[-1]) if not _diverged(path) else math.inf
                sweep[lr] = final
                if best is None or final < best[2]:
                    best = (lr, path, final, loss)
            lr, path, final, loss = best
            result: dict[str, Any] = {"lr": lr, "path": path, "loss": loss, "final_loss": final,
                                      "sweep": sweep, "steps_run": len(path) - 1}
            if fn.minimum is not None:
                result["distance"] = float(np.linalg.norm(path[-1] - np.array(fn.minimum)))
                hit = np.nonzero(loss < 1e-4)[0]
                result["steps_to_1e-4"] = int(hit[0]) if hit.size else None
            else:
                hit = np.nonzero(np.abs(path[:, 1]) >= ESCAPE_Y)[0]
                result["steps_to_escape"] = int(hit[0]) if hit.size else None
            per_opt[name] = result
        out[fn.name] = per_opt
    return out


def _plot_paths(fn: TestFunction, results: dict[str, Any], path_png: Path) -> Path:
    from archlab.viz._mpl import new_figure, save_figure

    fig = new_figure(7.0, 5.6)
    ax = fig.add_subplot(111)
    xs = np.linspace(*fn.xlim, 300)
    ys = np.linspace(*fn.ylim, 300)
    X, Y = np.meshgrid(xs, ys)
    Z = fn.f(X, Y)
    if fn.log_contours:  # a log scale shows the valley floor that linear levels flatten out
        Z = np.log10(np.maximum(Z, 1e-3))
    cs = ax.contourf(X, Y, Z, levels=30, cmap="Greys", alpha=0.45)
    ax.contour(X, Y, Z, levels=30, colors="grey", linewidths=0.3)
    if not fn.log_contours:
        ax.contour(X, Y, Z, levels=[0], colors="grey", linewidths=0.8, linestyles="--")
    fig.colorbar(cs, ax=ax, shrink=0.8, label="log10 loss" if fn.log_contours else "loss")
    for name, r in results.items():
        path = r["path"]
        label = f"{LABELS[name]} (lr {r['lr']:g})"
        ax.plot(path[:, 0], path[:, 1], STYLES.get(name, "-"), color=COLORS[name], lw=1.3, label=label, alpha=0.9)
        ax.plot(path[-1, 0], path[-1, 1], "o", color=COLORS[name], ms=4)
    ax.plot(*fn.start, "k^", ms=8, label="start")
    if fn.minimum is not None:
        ax.plot(*fn.minimum, "k*", ms=13, label="minimum")
    else:
        ax.plot(0, 0, "kx", ms=9, label="saddle point")
    ax.set_xlim(*fn.xlim)
    ax.set_ylim(*fn.ylim)
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.set_title(fn.title)
    ax.legend(fontsize=7, loc="best")
    return save_figure(fig, path_png)


def _plot_losses(paths: dict[str, dict[str, Any]], path_png: Path) -> Path:
    from archlab.viz._mpl import new_figure, save_figure

    fig = new_figure(13.0, 3.8)
    for i, fn in enumerate(FUNCTIONS):
        ax = fig.add_subplot(1, len(FUNCTIONS), i + 1)
        for name, r in paths[fn.name].items():
            loss = r["loss"]
            if fn.minimum is not None:
                ax.semilogy(np.maximum(loss, 1e-30), STYLES.get(name, "-"), color=COLORS[name], label=LABELS[name])
            else:
                ax.plot(np.abs(r["path"][:, 1]), STYLES.get(name, "-"), color=COLORS[name], label=LABELS[name])
        ax.set_xlabel("step")
        if fn.minimum is not None:
            ax.set_ylabel("loss")
            ax.set_title(f"{fn.name}: loss at the best lr")
        else:
            ax.set_yscale("log")
            ax.axhline(ESCAPE_Y, color="k", lw=0.6, ls="--")
            ax.set_ylabel("|y| (distance along the escape direction)")
            ax.set_title(f"saddle: escape at lr {fn.lrs[0]:g}")
    fig.axes[0].legend(fontsize=7)
    return save_figure(fig, path_png)


def _plot_sweeps(paths: dict[str, dict[str, Any]], path_png: Path) -> Path:
    from archlab.viz._mpl import new_figure, save_figure

    fns = [fn for fn in FUNCTIONS if len(fn.lrs) > 1]
    fig = new_figure(10.0, 3.8)
    for i, fn in enumerate(fns):
        ax = fig.add_subplot(1, len(fns), i + 1)
        for name, r in paths[fn.name].items():
            lrs = sorted(r["sweep"])
            vals = [r["sweep"][lr] for lr in lrs]
            ok = [(lr, v) for lr, v in zip(lrs, vals) if math.isfinite(v)]
            ax.loglog([a for a, _ in ok], [max(b, 1e-30) for _, b in ok], "o" + STYLES.get(name, "-"), ms=3,
                      color=COLORS[name], label=LABELS[name])
        ax.set_xlabel("learning rate")
        ax.set_ylabel("final loss (diverged runs left out)")
        ax.set_title(f"{fn.name}: sensitivity to the learning rate")
    fig.axes[0].legend(fontsize=7)
    return save_figure(fig, path_png)


# --------------------------------------------------------------------------------------------------
# Part 2: a NumPy MLP on digits
# --------------------------------------------------------------------------------------------------


class NumpyMLP:
    """A 2-layer ReLU MLP with softmax cross-entropy, forward and backward written out in NumPy.

    ``logits = relu(x W1 + b1) W2 + b2``; the parameters are :class:`~archlab.scratch.optim.ArrayParam`
    objects, so any scratch optimizer can train them. Kept self-contained (no autograd) on purpose:
    the experiment is about the optimizers.

    Args:
        in_features: input size F.
        hidden_dim: hidden units H.
        num_classes: classes C.
        seed: seed of the He-initialised weights.
    """

    def __init__(self, in_features: int, hidden_dim: int, num_classes: int, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.w1 = so.ArrayParam(rng.normal(0.0, math.sqrt(2.0 / in_features), (in_features, hidden_dim)), "w1")
        self.b1 = so.ArrayParam(np.zeros(hidden_dim), "b1")
        self.w2 = so.ArrayParam(rng.normal(0.0, math.sqrt(1.0 / hidden_dim), (hidden_dim, num_classes)), "w2")
        self.b2 = so.ArrayParam(np.zeros(num_classes), "b2")

    def parameters(self) -> list[so.ArrayParam]:
        return [self.w1, self.b1, self.w2, self.b2]

    def forward(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        z = x @ self.w1.data + self.b1.data  # (B, H)
        h = np.maximum(z, 0.0)
        return z, h, h @ self.w2.data + self.b2.data  # logits (B, C)

    @staticmethod
    def _loss(logits: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray, float]:
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))  # (B, C)
        loss = -float(log_p[np.arange(len(y)), y].mean())
        acc = float((logits.argmax(axis=1) == y).mean())
        return loss, np.exp(log_p), acc

    def loss_and_backward(self, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        """Mean cross-entropy and accuracy on ``(x, y)``; sets every parameter's ``.grad``."""
        z, h, logits = self.forward(x)
        loss, probs, acc = self._loss(logits, y)
        d_logits = probs
        d_logits[np.arange(len(y)), y] -= 1.0
        d_logits /= len(y)  # (B, C)
        self.w2.grad = h.T @ d_logits
        self.b2.grad = d_logits.sum(axis=0)
        d_z = (d_logits @ self.w2.data.T) * (z > 0)  # (B, H)
        self.w1.grad = x.T @ d_z
        self.b1.grad = d_z.sum(axis=0)
        return loss, acc

    def evaluate(self, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        """Mean cross-entropy and accuracy, without touching gradients."""
        loss, _, acc = self._loss(self.forward(x)[2], y)
        return loss, acc


def load_digits_arrays(seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The embedded ``digits`` set as float64 (N, 64) standardised features and int labels."""
    from archlab.data import load_dataset

    bundle = load_dataset("digits", val_split=0.1, seed=seed)
    mean, std = bundle.info.mean[0], bundle.info.std[0]
    out = {}
    for split in ("train", "val", "test"):
        part = getattr(bundle, split)
        x = part.x.numpy().reshape(len(part.y), -1).astype(np.float64) / 255.0  # (N, 1, 8, 8) -> (N, 64)
        out[split] = ((x - mean) / std, part.y.numpy().astype(np.int64))
    return out


def train_mlp(
    data: dict[str, tuple[np.ndarray, np.ndarray]],
    make_opt: Callable[[list[so.ArrayParam]], so.Optimizer],
    epochs: int,
    *,
    hidden_dim: int = 64,
    batch_size: int = 64,
    seed: int = 0,
    make_scheduler: Callable[[so.Optimizer], so.LRScheduler] | None = None,
) -> dict[str, Any]:
    """Train a fresh :class:`NumpyMLP` (same init and batch order for the same ``seed``).

    The scheduler, if any, is stepped after every optimizer step.

    Returns:
        ``{"train_loss": [...], "train_acc": [...], "val_loss": [...], "val_acc": [...]}`` with
        one entry per epoch plus the initial one (epoch 0, before training), ``"batch_loss"``
        and ``"lr"`` per step, and the final ``"test_loss"``, ``"test_acc"``.
    """
    x, y = data["train"]
    model = NumpyMLP(x.shape[1], hidden_dim, int(y.max()) + 1, seed=seed)
    opt = make_opt(model.parameters())
    sched = make_scheduler(opt) if make_scheduler is not None else None
    rng = np.random.default_rng(seed + 1)
    hist: dict[str, list[float]] = {k: [] for k in ("train_loss", "train_acc", "val_loss", "val_acc",
                                                    "batch_loss", "lr")}

    def record() -> None:
        for split in ("train", "val"):
            loss, acc = model.evaluate(*data[split])
            hist[f"{split}_loss"].append(loss)
            hist[f"{split}_acc"].append(acc)

    record()
    for _ in range(epochs):
        order = rng.permutation(len(y))
        for start in range(0, len(y), batch_size):
            idx = order[start:start + batch_size]
            hist["lr"].append(float(opt.param_groups[0]["lr"]))
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                loss, _ = model.loss_and_backward(x[idx], y[idx])
                opt.step()
            hist["batch_loss"].append(loss)
            if sched is not None:
                sched.step()
        record()
    test_loss, test_acc = model.evaluate(*data["test"])
    return {**hist, "test_loss": test_loss, "test_acc": test_acc}


def _plot_mlp(runs: dict[str, dict[str, Any]], path_png: Path, title: str) -> Path:
    from archlab.viz._mpl import new_figure, save_figure

    fig = new_figure(12.0, 3.8)
    panels = [("train_loss", "training loss", True), ("val_loss", "validation loss", True),
              ("val_acc", "validation accuracy", False)]
    for i, (key, label, log) in enumerate(panels):
        ax = fig.add_subplot(1, 3, i + 1)
        for name, run in runs.items():
            (ax.semilogy if log else ax.plot)(run[key], STYLES.get(name, "-"), color=COLORS.get(name),
                                              label=LABELS.get(name, name))
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
    fig.axes[0].legend(fontsize=7)
    fig.suptitle(title)
    return save_figure(fig, path_png)


# --------------------------------------------------------------------------------------------------
# The experiment
# --------------------------------------------------------------------------------------------------


def _fmt(v: float | None, spec: str = ".3g") -> str | float:
    if v is None:
        return "never"
    if not math.isfinite(v):
        return "diverged"
    return float(format(v, spec))


def _conclusions(paths: dict[str, dict[str, Any]], mlp: dict[str, dict[str, Any]], mlp_epochs: int) -> str:
    lines = []
    for fn in FUNCTIONS:
        res = paths[fn.name]
        if fn.minimum is not None:
            best = min(res, key=lambda n: (res[n]["final_loss"], res[n]["distance"]))
            worst = max(res, key=lambda n: res[n]["final_loss"])
            lines.append(
                f"- **{fn.name}**: closest to the minimum: **{LABELS[best]}** (loss {res[best]['final_loss']:.2g}, "
                f"distance {res[best]['distance']:.2g}, lr {res[best]['lr']:g}); furthest: {LABELS[worst]} "
                f"(loss {res[worst]['final_loss']:.2g}, distance {res[worst]['distance']:.2g})."
            )
        else:
            esc = {n: r["steps_to_escape"] for n, r in res.items()}
            order = sorted(esc, key=lambda n: esc[n] if esc[n] is not None else math.inf)
            text = ", ".join(f"{LABELS[n]} {esc[n] if esc[n] is not None else 'never'}" for n in order)
            lines.append(f"- **saddle** (lr {fn.lrs[0]:g}, steps until |y| >= {ESCAPE_Y:g}): {text}.")
    ros = paths["rosenbrock"]
    sgd, mom = ros["sgd"]["sweep"], ros["momentum"]["sweep"]
    shared = [lr for lr in sgd if math.isfinite(sgd[lr]) and math.isfinite(mom[lr])]
    wins = sum(mom[lr] < sgd[lr] for lr in shared)
    lines.append(
        f"- Momentum beat plain SGD on Rosenbrock at {wins} of the {len(shared)} learning rates where both "
        "stayed finite: the velocity builds up along the gently sloping valley floor, where the "
        "gradient is small, while the oscillations across the steep walls cancel out."
    )
    sad = paths["saddle"]
    adaptive = [n for n in ("adagrad", "rmsprop", "adam") if sad[n]["steps_to_escape"] is not None and (
        sad["sgd"]["steps_to_escape"] is None or sad[n]["steps_to_escape"] < sad["sgd"]["steps_to_escape"])]
    if adaptive:
        lines.append(
            f"- Near the saddle the gradient along y is tiny (2|y|), so plain SGD creeps away "
            f"geometrically; {', '.join(LABELS[n] for n in adaptive)} divide by the gradient's own scale "
            "and take full-size steps from the start, escaping sooner."
        )
    for fname in ("rosenbrock", "beale"):
        a, w = paths[fname]["adam"], paths[fname]["adamw"]
        if w["distance"] > 10 * max(a["distance"], 1e-12):
            lines.append(
                f"- On {fname}, AdamW stops {w['distance']:.2g} from the minimum where Adam gets to "
                f"{a['distance']:.2g}: decoupled weight decay keeps pulling the point toward the origin, so "
                "its resting point is not the loss's minimum (on a network that pull is the regularisation)."
            )
            break
    final = {n: r["train_loss"][-1] for n, r in mlp.items()}
    order = sorted(final, key=final.get)
    acc = {n: r["test_acc"] for n, r in mlp.items()}
    lines.append(
        f"- **MLP on digits** ({mlp_epochs} epochs): lowest final training loss {LABELS[order[0]]} "
        f"({final[order[0]]:.3g}), highest {LABELS[order[-1]]} ({final[order[-1]]:.3g}); test accuracy "
        f"from {min(acc.values()):.3f} ({LABELS[min(acc, key=acc.get)]}) to {max(acc.values()):.3f} "
        f"({LABELS[max(acc, key=acc.get)]})."
    )
    spread = max(acc.values()) - min(acc.values())
    lines.append(
        f"\nOn the MLP the seven test accuracies span {100 * spread:.1f} points"
        + (", far less than the orders of magnitude between the same optimizers on the 2-D functions: "
           "with a learning rate suited to each, the choice of optimizer matters much less on this "
           "well-conditioned problem than on a narrow curved valley." if spread < 0.05 else
           ": on this problem the choice of optimizer changes the result noticeably.")
    )
    return "\n".join(lines)


@register_experiment("optimizers", family="scratch",
                     description="SGD, momentum, Nesterov, Adagrad, RMSprop, Adam, AdamW: paths on "
                                 "Rosenbrock/Beale/saddle and an MLP on digits (NumPy optimizers)")
def optimizers(out_dir: Path, quick: bool = False, steps: int | None = None,
               epochs: int | None = None) -> dict[str, Any]:
    """Run the experiment, write ``out_dir/report.html`` and return the numbers behind it.

    Args:
        out_dir: the experiment's folder.
        quick: fewer steps and epochs (a few seconds).
        steps: optimizer steps on each 2-D function (default 2000, quick 600).
        epochs: MLP epochs (default 30, quick 8).

    Returns:
        ``{"report", "seconds", "functions": {fn: {opt: {lr, final_loss, distance | steps_to_escape,
        sweep, ...}}}, "mlp": {opt: {train_loss, val_acc, test_acc, ...}}, "rows_functions",
        "rows_mlp"}``.
    """
    from archlab.report.experiment import write_experiment_report

    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    steps = steps or (600 if quick else 2000)
    epochs = epochs or (8 if quick else 30)

    paths = paths_on_functions(steps)
    figures = []
    for fn in FUNCTIONS:
        png = _plot_paths(fn, paths[fn.name], out_dir / f"paths_{fn.name}.png")
        cap = (f"{fn.title}: each optimizer's path at its best learning rate of the grid" if len(fn.lrs) > 1
               else f"{fn.title}: paths from beside the saddle point at lr {fn.lrs[0]:g}")
        figures.append((cap, png))
    figures.append(("Loss (or escape distance) by step", _plot_losses(paths, out_dir / "path_losses.png")))
    figures.append(("Final loss against learning rate", _plot_sweeps(paths, out_dir / "lr_sensitivity.png")))

    data = load_digits_arrays()
    mlp: dict[str, dict[str, Any]] = {}
    factors = (1.0,) if quick else MLP_LR_FACTORS
    for name in OPTIMIZERS:
        sweep: dict[float, float] = {}
        for factor in factors:
            lr = float(f"{MLP_LRS[name] * factor:.3g}")
            run = train_mlp(data, lambda ps, name=name, lr=lr: make_optimizer(name, ps, lr), epochs)
            final = run["train_loss"][-1] if math.isfinite(run["train_loss"][-1]) else math.inf
            sweep[lr] = final
            if name not in mlp or final < mlp[name]["train_loss"][-1]:
                mlp[name] = {**run, "lr_used": lr}
        mlp[name]["lr_sweep"] = sweep
    figures.append(("MLP 64-64-10 on digits: the same weights and batches for every optimizer",
                    _plot_mlp(mlp, out_dir / "mlp_curves.png", "NumPy MLP on digits")))

    rows_fn = []
    for fn in FUNCTIONS:
        for name, r in paths[fn.name].items():
            row: dict[str, Any] = {"function": fn.name, "optimizer": LABELS[name], "lr": r["lr"],
                                   "steps": r["steps_run"], "final loss": _fmt(r["final_loss"])}
            if fn.minimum is not None:
                row["distance to minimum"] = _fmt(r["distance"])
                hit = r["steps_to_1e-4"]
                row["steps to loss < 1e-4"] = hit if hit is not None else "never"
            else:
                row["steps to escape"] = r["steps_to_escape"] if r["steps_to_escape"] is not None else "never"
            rows_fn.append(row)
    rows_mlp = [{"optimizer": LABELS[n], "lr": r["lr_used"], "final train loss": round(r["train_loss"][-1], 4),
                 "val acc": round(r["val_acc"][-1], 4), "test acc": round(r["test_acc"], 4)}
                for n, r in mlp.items()]

    fn_lines = ", ".join(f"{fn.name} from {fn.start}" for fn in FUNCTIONS)
    intro = (
        "Which optimizer goes where, and why? Part 1 runs the from-scratch optimizers of "
        "`archlab.scratch.optim` on three 2-D functions with analytic gradients "
        f"({fn_lines}; {steps} steps). On Rosenbrock and Beale each optimizer tries every learning rate "
        f"of {list(LR_GRID)} and the figures show its best run (lowest final loss); diverged runs are "
        f"discarded. The saddle uses lr {FUNCTIONS[2].lrs[0]:g} for all and counts steps until |y| >= "
        f"{ESCAPE_Y:g}. Momentum is 0.9 for SGD and Nesterov; AdamW's weight decay 0.01; the rest are "
        "torch's defaults.\n\n"
        f"Part 2 trains a 64-64-10 ReLU MLP (NumPy, hand-written backward) on the embedded digits set for "
        f"{epochs} epochs, batch 64, the same initial weights and batch order for every optimizer, each at its "
        + ("customary learning rate (table)." if quick else
           "customary learning rate, a third, three or ten times it, whichever ends with the lowest "
           "training loss (table).")
    )
    report = write_experiment_report(
        out_dir, "Optimizers: paths on test functions and an MLP", intro, figures=figures,
        tables=[("2-D test functions (best learning rate per optimizer)", rows_fn),
                ("MLP on digits", rows_mlp)],
        conclusions=_conclusions(paths, mlp, epochs),
    )
    seconds = time.perf_counter() - t0
    return {
        "report": str(report),
        "seconds": seconds,
        "functions": {fn: {n: {k: v for k, v in r.items() if k not in ("path", "loss")} | {
            "final_point": r["path"][-1].tolist()} for n, r in res.items()} for fn, res in paths.items()},
        "paths": {fn: {n: r["path"] for n, r in res.items()} for fn, res in paths.items()},
        "mlp": mlp,
        "rows_functions": rows_fn,
        "rows_mlp": rows_mlp,
    }
