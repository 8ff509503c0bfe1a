"""Classification plots: the confusion matrix and the worst-classified examples.

Both start from a model's ``logits`` (N, K) and the ``targets`` (N,) of one split (NumPy arrays or
torch tensors). The helpers that do the arithmetic (:func:`confusion_matrix`,
:func:`per_sample_loss`, :func:`worst_indices`, :func:`class_metrics`) are separate from the
plotting so they can be tested and reused in tables.

Images are shown as stored: ``uint8`` (N, C, H, W) pixels are divided by 255. Float images are
taken to be normalised with ``mean``/``std`` when those are given (and are de-normalised),
otherwise to be in [0, 1] (or [0, 255] when their maximum says so).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from archlab.viz._mpl import new_figure, save_figure, style, to_numpy

__all__ = [
    "as_predictions",
    "class_metrics",
    "confusion_matrix",
    "per_sample_loss",
    "plot_confusion_matrix",
    "plot_worst_examples",
    "softmax",
    "to_display_image",
    "worst_examples_table",
    "worst_indices",
]


# ----------------------------------------------------------------------------------------------
# arithmetic


def as_predictions(logits_or_preds: Any) -> np.ndarray:
    """Predicted classes: the argmax of logits (N, K), or the labels themselves when given (N,)."""
    a = to_numpy(logits_or_preds)
    if a.ndim == 2:
        return a.argmax(axis=1).astype(np.int64)
    if a.ndim == 1:
        return a.astype(np.int64)
    raise ValueError(f"expected logits (N, K) or predicted labels (N,), got shape {a.shape}")


def confusion_matrix(targets: Any, preds: Any, num_classes: int | None = None) -> np.ndarray:
    """Counts ``cm[i, j]`` of samples of true class ``i`` predicted as ``j``.

    Args:
        targets: true labels (N,).
        preds: predicted labels (N,) or logits (N, K).
        num_classes: K (default: the logits' width, else one more than the largest label).

    Returns:
        An int64 (K, K) matrix whose rows sum to each class's support.
    """
    t = to_numpy(targets).astype(np.int64).ravel()
    p_raw = to_numpy(preds)
    p = as_predictions(p_raw)
    if len(t) != len(p):
        raise ValueError(f"{len(t)} targets but {len(p)} predictions")
    if num_classes is None:
        num_classes = p_raw.shape[1] if p_raw.ndim == 2 else 0
        num_classes = max(num_classes, int(t.max(initial=-1)) + 1, int(p.max(initial=-1)) + 1)
    if len(t) and (t.min() < 0 or t.max() >= num_classes or p.min() < 0 or p.max() >= num_classes):
        raise ValueError(
            f"labels must lie in [0, {num_classes}); got targets {t.min()}..{t.max()}, "
            f"predictions {p.min()}..{p.max()}"
        )
    return np.bincount(t * num_classes + p, minlength=num_classes * num_classes).reshape(
        num_classes, num_classes
    )


def class_metrics(cm: np.ndarray, class_names: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Per-class support, precision and recall from a confusion matrix (NaN where undefined)."""
    cm = np.asarray(cm)
    names = _names(class_names, len(cm))
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    diag = np.diag(cm)
    rows = []
    for i in range(len(cm)):
        rows.append(
            {
                "class": names[i],
                "support": int(support[i]),
                "precision": float(diag[i] / predicted[i]) if predicted[i] else float("nan"),
                "recall": float(diag[i] / support[i]) if support[i] else float("nan"),
            }
        )
    return rows


def softmax(logits: Any) -> np.ndarray:
    """Row-wise softmax in float64 (stable)."""
    z = to_numpy(logits).astype(np.float64)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def per_sample_loss(logits: Any, targets: Any) -> np.ndarray:
    """Cross-entropy of each sample: ``logsumexp(z) - z[y]`` (N,)."""
    z = to_numpy(logits).astype(np.float64)
    t = to_numpy(targets).astype(np.int64).ravel()
    if z.ndim != 2 or len(z) != len(t):
        raise ValueError(f"expected logits (N, K) and targets (N,), got {z.shape} and {t.shape}")
    m = z.max(axis=1, keepdims=True)
    lse = (m + np.log(np.exp(z - m).sum(axis=1, keepdims=True))).ravel()
    return lse - z[np.arange(len(t)), t]


def worst_indices(logits: Any, targets: Any, k: int = 16) -> np.ndarray:
    """Indices of the ``k`` samples with the highest loss, highest first (ties: lower index first)."""
    loss = per_sample_loss(logits, targets)
    order = np.argsort(-loss, kind="stable")
    return order[: max(0, min(k, len(order)))]


def worst_examples_table(
    logits: Any,
    targets: Any,
    k: int = 16,
    *,
    x: Any = None,
    class_names: Sequence[str] | None = None,
    feature_names: Sequence[str] | None = None,
    max_features: int = 8,
) -> list[dict[str, Any]]:
    """Rows describing the worst-classified samples: index, true, pred, p(pred), p(true), loss.

    With tabular inputs ``x`` (N, F) the first ``max_features`` feature values are added.
    """
    z = to_numpy(logits)
    t = to_numpy(targets).astype(np.int64).ravel()
    idx = worst_indices(z, t, k)
    probs = softmax(z[idx]) if len(idx) else np.zeros((0, z.shape[1]))
    loss = per_sample_loss(z[idx], t[idx]) if len(idx) else np.zeros(0)
    names = _names(class_names, z.shape[1])
    xa = to_numpy(x) if x is not None else None
    rows = []
    for r, i in enumerate(idx):
        pred = int(probs[r].argmax())
        row: dict[str, Any] = {
            "index": int(i),
            "true": names[t[i]],
            "pred": names[pred],
            "p(pred)": float(probs[r, pred]),
            "p(true)": float(probs[r, t[i]]),
            "loss": float(loss[r]),
        }
        if xa is not None and xa.ndim == 2:
            fnames = list(feature_names or [])
            for j in range(min(max_features, xa.shape[1])):
                key = fnames[j] if j < len(fnames) else f"x{j}"
                row[key] = float(xa[i, j])
        rows.append(row)
    return rows


def _names(class_names: Sequence[str] | None, k: int) -> list[str]:
    names = [str(c) for c in (class_names or [])][:k]
    return names + [str(i) for i in range(len(names), k)]


def to_display_image(
    img: Any, mean: Sequence[float] | None = None, std: Sequence[float] | None = None
) -> np.ndarray:
    """One image (C, H, W) or (H, W) as floats in [0, 1]: (H, W, 3) for RGB, else (H, W).

    ``uint8`` pixels are divided by 255 (they are never normalised in memory). Float pixels are
    de-normalised with ``mean``/``std`` when given, else scaled down by 255 if they exceed 1.5.
    Images with 2 or more than 3 channels show their first channel.
    """
    a = to_numpy(img)
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3:
        raise ValueError(f"expected an image (C, H, W) or (H, W), got shape {a.shape}")
    if a.dtype == np.uint8:
        out = a.astype(np.float32) / 255.0
    else:
        out = a.astype(np.float32)
        if mean is not None and std is not None:
            m = np.asarray(mean, dtype=np.float32).reshape(-1, 1, 1)
            s = np.asarray(std, dtype=np.float32).reshape(-1, 1, 1)
            if m.shape[0] in (1, out.shape[0]) and s.shape[0] in (1, out.shape[0]):
                out = out * s + m
        elif out.size and out.max() > 1.5:
            out = out / 255.0
    out = np.clip(out, 0.0, 1.0)
    if out.shape[0] == 3:
        return out.transpose(1, 2, 0)
    return out[0]


# ----------------------------------------------------------------------------------------------
# plots


def plot_confusion_matrix(
    logits: Any,
    targets: Any,
    path: str | Path,
    *,
    class_names: Sequence[str] | None = None,
    num_classes: int | None = None,
    title: str | None = None,
    annotate: bool | None = None,
) -> Path:
    """Confusion matrix: colour is the row-normalised fraction, text the counts.

    Args:
        logits: logits (N, K) or predicted labels (N,); or a (K, K) count matrix with ``targets=None``.
        targets: true labels (N,), or None when ``logits`` is already a confusion matrix.
        path: where the PNG goes.
        class_names: axis labels (default ``0..K-1``).
        num_classes: K when it cannot be read from the logits.
        title: figure title (default: "Confusion matrix (accuracy X%)").
        annotate: write the count in each cell (default: when K <= 20).

    Returns:
        ``path``.
    """
    if targets is None:
        cm = np.asarray(to_numpy(logits), dtype=np.int64)
        if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
            raise ValueError(f"without targets, expected a (K, K) confusion matrix, got {cm.shape}")
    else:
        cm = confusion_matrix(targets, logits, num_classes)
    k = len(cm)
    names = _names(class_names, k)
    total = cm.sum()
    acc = np.trace(cm) / total if total else float("nan")
    rows = cm.sum(axis=1, keepdims=True)
    frac = np.divide(cm, rows, out=np.zeros(cm.shape, dtype=float), where=rows > 0)
    annotate = k <= 20 if annotate is None else annotate
    side = float(np.clip(0.45 * k + 2.5, 4.5, 12.0))
    with style():
        fig = new_figure(side + 1.2, side)
        ax = fig.add_subplot()
        im = ax.imshow(frac, cmap="Blues", vmin=0.0, vmax=1.0, interpolation="nearest")
        cbar = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
        cbar.set_label("fraction of the true class")
        if k <= 40:
            labels = [n if len(n) <= 14 else n[:13] + "…" for n in names]
            ax.set_xticks(
                range(k),
                labels,
                rotation=45 if max(map(len, labels), default=0) > 2 else 0,
                ha="right" if max(map(len, labels), default=0) > 2 else "center",
            )
            ax.set_yticks(range(k), labels)
        if annotate:
            fs = 9 if k <= 10 else 7
            for i in range(k):
                for j in range(k):
                    if cm[i, j]:
                        ax.text(
                            j,
                            i,
                            str(cm[i, j]),
                            ha="center",
                            va="center",
                            fontsize=fs,
                            color="white" if frac[i, j] > 0.5 else "black",
                        )
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        for s in ax.spines.values():
            s.set_visible(False)
        ax.set_title(title or f"Confusion matrix (accuracy {100 * acc:.2f}%, n={total})")
        return save_figure(fig, path)


def plot_worst_examples(
    x: Any,
    logits: Any,
    targets: Any,
    path: str | Path,
    *,
    k: int = 16,
    class_names: Sequence[str] | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    feature_names: Sequence[str] | None = None,
    title: str | None = None,
) -> Path:
    """The ``k`` highest-loss samples: image thumbnails titled "true / pred (p)", or a table.

    Args:
        x: the inputs of the split, in the order of ``logits``: images (N, C, H, W) (uint8 or
            float) or tabular rows (N, F).
        logits: logits (N, K).
        targets: true labels (N,).
        path: where the PNG goes.
        k: how many examples.
        class_names: names for the labels.
        mean, std: per-channel normalisation of float images (to undo it for display).
        feature_names: column names of tabular rows.
        title: figure title.

    Returns:
        ``path``.
    """
    xa = to_numpy(x)
    z = to_numpy(logits)
    t = to_numpy(targets).astype(np.int64).ravel()
    if len(xa) != len(z) or len(z) != len(t):
        raise ValueError(f"x, logits and targets differ in length: {len(xa)}, {len(z)}, {len(t)}")
    if xa.ndim == 2:
        return _plot_worst_table(xa, z, t, path, k, class_names, feature_names, title)
    if xa.ndim not in (3, 4):
        raise ValueError(f"expected images (N, C, H, W) or rows (N, F), got shape {xa.shape}")
    idx = worst_indices(z, t, k)
    names = _names(class_names, z.shape[1])
    probs = softmax(z[idx]) if len(idx) else np.zeros((0, z.shape[1]))
    n = len(idx)
    ncols = min(max(n, 1), 8)
    nrows = max(1, math.ceil(n / ncols))
    with style():
        fig = new_figure(1.75 * ncols, 2.0 * nrows + (0.4 if title else 0))
        axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
        for r, ax in enumerate(axes):
            ax.set_axis_off()
            if r >= n:
                continue
            i = idx[r]
            img = to_display_image(xa[i], mean, std)
            ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=1, interpolation="nearest")
            pred = int(probs[r].argmax())
            ax.set_title(
                f"true {_short(names[t[i]])}\npred {_short(names[pred])} ({probs[r, pred]:.2f})",
                fontsize=8,
                color="firebrick" if pred != t[i] else "black",
            )
        if title:
            fig.suptitle(title)
        return save_figure(fig, path)


def _short(s: str, n: int = 12) -> str:
    return s if len(s) <= n else s[: n - 1] + "…"


def _plot_worst_table(
    xa: np.ndarray,
    z: np.ndarray,
    t: np.ndarray,
    path: str | Path,
    k: int,
    class_names: Sequence[str] | None,
    feature_names: Sequence[str] | None,
    title: str | None,
) -> Path:
    rows = worst_examples_table(
        z, t, k, x=xa, class_names=class_names, feature_names=feature_names, max_features=6
    )
    cols = list(rows[0]) if rows else ["index", "true", "pred", "p(pred)", "loss"]
    cells = [[f"{v:.3g}" if isinstance(v, float) else str(v) for v in (row[c] for c in cols)] for row in rows]
    with style():
        fig = new_figure(min(0.9 * len(cols) + 0.5, 14), 0.26 * (len(rows) + 1) + 0.6)
        ax = fig.add_subplot()
        ax.set_axis_off()
        if cells:
            table = ax.table(
                cellText=cells,
                colLabels=[_short(c, 10) for c in cols],
                cellLoc="right",
                bbox=[0.0, 0.0, 1.0, 1.0],
            )
            table.auto_set_font_size(False)
            table.set_fontsize(8)
            for (r, _c), cell in table.get_celld().items():
                cell.set_edgecolor("#cccccc")
                if r == 0:
                    cell.set_facecolor("#eef1f4")
        else:
            ax.text(0.5, 0.5, "no samples", ha="center", va="center")
        ax.set_title(title or f"{len(rows)} highest-loss samples")
        return save_figure(fig, path)
