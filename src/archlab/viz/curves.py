"""Learning curves from a run's ``metrics.jsonl``.

Each line of ``metrics.jsonl`` is one JSON object with a ``split`` ("train", "val", "test", ...)
and numeric metrics (``loss``, ``acc``, ``lr``...) besides the bookkeeping keys ``step``,
``epoch`` and ``time``. :func:`plot_learning_curves` draws one panel per metric (loss first,
accuracy second, the rest after), with epochs on the x axis: the noisy per-step training values
faint and a smoothed line over them, validation as a line with markers, and test as stars.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.ticker import MaxNLocator

from archlab.engine.loggers import read_metrics  # the writer owns the format
from archlab.viz._mpl import new_figure, save_figure, style

__all__ = ["ema", "epoch_means", "metric_series", "plot_learning_curves", "read_metrics"]

BOOKKEEPING = frozenset({"step", "epoch", "time", "split", "global_step", "timestamp"})
_SPLIT_COLORS = {"train": "C0", "val": "C1", "test": "C2"}
_TITLES = {"loss": "loss", "acc": "accuracy", "lr": "learning rate"}


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def metric_series(
    records: Iterable[Mapping[str, Any]], x: str = "auto"
) -> tuple[str, dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]]:
    """Group records into ``{metric: {split: (xs, ys)}}``.

    Args:
        records: metric records (dicts).
        x: ``"epoch"``, ``"step"`` or ``"auto"`` (epoch when every record has one, else step,
            else the record's position).

    A key written with a split prefix (``"val/acc"``) is filed under that split.

    Returns:
        The x key used and the series.
    """
    records = [r for r in records if isinstance(r, Mapping)]
    if x == "auto":
        if records and all(_is_number(r.get("epoch")) for r in records):
            x = "epoch"
        elif records and all(_is_number(r.get("step")) for r in records):
            x = "step"
        else:
            x = "index"
    points: dict[str, dict[str, list[tuple[float, float]]]] = defaultdict(lambda: defaultdict(list))
    for i, rec in enumerate(records):
        xv = rec.get(x, i) if x != "index" else i
        if not _is_number(xv):
            continue
        split = str(rec.get("split", "train"))
        for key, value in rec.items():
            if key in BOOKKEEPING or not _is_number(value):
                continue
            s, name = key.split("/", 1) if "/" in key else (split, key)
            points[name][s].append((float(xv), float(value)))
    series = {
        name: {
            s: (np.array([p[0] for p in pts]), np.array([p[1] for p in pts])) for s, pts in by_split.items()
        }
        for name, by_split in points.items()
    }
    return x, series


def ema(values: np.ndarray, weight: float) -> np.ndarray:
    """Debiased exponential moving average (TensorBoard's smoothing): ``weight`` in [0, 1)."""
    out = np.empty(len(values), dtype=float)
    acc, norm = 0.0, 0.0
    for i, v in enumerate(values):
        acc = weight * acc + (1 - weight) * v
        norm = weight * norm + (1 - weight)
        out[i] = acc / norm
    return out


def epoch_means(xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean of ``ys`` per epoch: bins are ``[e, e+1)``; each mean sits at the mean x of its bin."""
    bins = np.floor(xs + 1e-9)
    keys = np.unique(bins)
    return (
        np.array([xs[bins == k].mean() for k in keys]),
        np.array([ys[bins == k].mean() for k in keys]),
    )


def _is_schedule(name: str) -> bool:
    """Values set by a schedule (learning rate, momentum...), not measured: never smoothed."""
    return name in ("lr", "momentum", "weight_decay") or name.startswith("lr_") or name.endswith("_lr")


def _order(names: Iterable[str]) -> list[str]:
    first = ["loss", "acc"]
    names = list(names)
    head = [n for n in first if n in names]
    losses = sorted(n for n in names if n not in head and "loss" in n)
    rest = sorted(n for n in names if n not in head and n not in losses)
    return head + losses + rest


def plot_learning_curves(
    records: Iterable[Mapping[str, Any]] | str | Path,
    path: str | Path,
    *,
    title: str | None = None,
    smoothing: str = "ema",
    x: str = "auto",
    metrics: list[str] | None = None,
    max_panels: int = 9,
) -> Path:
    """Plot every numeric metric of a run, one panel each, splits overlaid.

    Args:
        records: the records, or the path of a ``metrics.jsonl`` file.
        path: where the PNG goes.
        title: figure title.
        smoothing: how the per-step training values are smoothed when there are several per
            epoch: ``"ema"`` (a smoothed line over the faint raw values), ``"epoch"`` (one mean
            per epoch) or ``"none"``.
        x: the x axis: ``"epoch"``, ``"step"`` or ``"auto"``.
        metrics: the metrics to draw, in order (default: all; loss and accuracy first).
        max_panels: at most this many panels.

    Returns:
        ``path``.

    Raises:
        ValueError: there is no numeric metric to plot.
    """
    if isinstance(records, (str, Path)):
        records = read_metrics(records)
    if smoothing not in ("ema", "epoch", "none"):
        raise ValueError(f"smoothing must be 'ema', 'epoch' or 'none', not {smoothing!r}")
    xkey, series = metric_series(records, x=x)
    names = [m for m in metrics if m in series] if metrics is not None else _order(series)
    names = names[:max_panels]
    if not names:
        raise ValueError("no numeric metric to plot in the metric records")

    ncols = min(len(names), 3 if len(names) > 4 else 2 if len(names) > 1 else 1)
    nrows = math.ceil(len(names) / ncols)
    with style():
        fig = new_figure(4.6 * ncols, 3.2 * nrows)
        axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
        for ax, name in zip(axes, names, strict=False):
            _draw_panel(ax, name, series[name], xkey, smoothing)
        for ax in axes[len(names) :]:
            ax.set_visible(False)
        if title:
            fig.suptitle(title)
        return save_figure(fig, path)


def _draw_panel(
    ax: Any, name: str, by_split: dict[str, tuple[np.ndarray, np.ndarray]], xkey: str, smoothing: str
) -> None:
    known = ["train", "val", "test"]
    splits = sorted(by_split, key=lambda s: (known.index(s) if s in known else len(known), s))
    extra = iter(f"C{i}" for i in range(3, 10))
    all_y = []
    for split in splits:
        xs, ys = by_split[split]
        order = np.argsort(xs, kind="stable")
        xs, ys = xs[order], ys[order]
        all_y.append(ys)
        color = _SPLIT_COLORS.get(split) or next(extra, "C9")
        if split == "test":
            ax.plot(xs, ys, "*", color=color, markersize=11, label=f"test ({ys[-1]:.4g})", zorder=5)
            continue
        n_epochs = max(1, len(np.unique(np.floor(xs + 1e-9)))) if xkey == "epoch" else max(1, len(xs) // 20)
        per_epoch = len(xs) / n_epochs
        noisy = not _is_schedule(name)
        if split == "train" and noisy and smoothing != "none" and per_epoch > 2 and len(xs) > 4:
            ax.plot(xs, ys, "-", color=color, alpha=0.25, linewidth=0.8)
            if smoothing == "epoch" and xkey == "epoch":
                sx, sy = epoch_means(xs, ys)
                ax.plot(sx, sy, "o-", color=color, markersize=3, label="train (epoch mean)")
            else:
                # an averaging window of about a third of an epoch: smooth, yet lagging little
                weight = float(np.clip(1 - 3 / (per_epoch + 1), 0.0, 0.95))
                ax.plot(xs, ema(ys, weight), "-", color=color, linewidth=1.6, label="train (smoothed)")
        else:
            marker = "o-" if len(xs) <= 60 else "-"
            ax.plot(
                xs,
                ys,
                marker,
                color=color,
                markersize=3.5,
                linewidth=1.4,
                label=split,
                drawstyle="steps-post" if not noisy and len(xs) > 60 else "default",
            )
    ax.set_title(_TITLES.get(name, name))
    ax.set_xlabel(xkey)
    if xkey in ("epoch", "step", "index"):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ys_all = np.concatenate(all_y) if all_y else np.array([])
    if _is_schedule(name):
        pos = ys_all[ys_all > 0]
        if len(pos) and pos.max() / pos.min() > 50:
            ax.set_yscale("log")
    ax.grid(True, alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="best", frameon=False)
