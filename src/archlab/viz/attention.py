"""Attention heat maps: which source tokens each output token looked at.

``weights[i, j]`` is the attention of output position i on source position j (rows sum to 1 over
the real source tokens). A seq2seq decoder gives one (T_out, T_src) matrix per sentence
(``Seq2Seq.last_attention[b]``, or ``Seq2SeqTask.translate_with_attention``); a Transformer gives
one per head, (H, T_out, T_src), drawn as one panel per head. Source tokens run along x, output
tokens down y, as in Bahdanau et al. 2015, Figure 3.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from archlab.viz._mpl import new_figure, save_figure, style, to_numpy

__all__ = ["plot_attention", "plot_attention_grid"]


def _short(tokens: Sequence[str] | None, n: int, width: int = 12) -> list[str]:
    labels = [str(t) for t in (tokens or [])][:n]
    labels += [str(i) for i in range(len(labels), n)]
    return [t if len(t) <= width else t[: width - 1] + "…" for t in labels]


def _panel(ax: Any, w: np.ndarray, src: list[str], out: list[str], annotate: bool, title: str | None) -> Any:
    im = ax.imshow(w, cmap="Greys", vmin=0.0, vmax=max(float(w.max(initial=0.0)), 1e-9), aspect="auto",
                   interpolation="nearest")
    t_out, t_src = w.shape
    if t_src <= 60:
        ax.set_xticks(range(t_src), src, rotation=90)
    if t_out <= 60:
        ax.set_yticks(range(t_out), out)
    ax.xaxis.tick_top()
    ax.xaxis.set_label_position("top")
    if annotate:
        for i in range(t_out):
            for j in range(t_src):
                if w[i, j] >= 0.1:
                    ax.text(j, i, f"{w[i, j]:.1f}", ha="center", va="center", fontsize=7,
                            color="white" if w[i, j] > 0.5 * w.max() else "black")
    for s in ax.spines.values():
        s.set_visible(False)
    if title:
        ax.set_title(title, pad=4)
    return im


def _check(weights: Any) -> np.ndarray:
    w = np.asarray(to_numpy(weights), dtype=np.float64)
    if w.ndim == 2:
        w = w[None]
    if w.ndim != 3:
        raise ValueError(f"expected attention weights (T_out, T_src) or (heads, T_out, T_src), got shape {w.shape}")
    if not np.isfinite(w).all():
        raise ValueError("attention weights contain NaN or infinite values")
    return w


def plot_attention(
    weights: Any,
    source_tokens: Sequence[str] | None,
    output_tokens: Sequence[str] | None,
    path: str | Path,
    *,
    title: str | None = None,
    head_titles: Sequence[str] | None = None,
    annotate: bool | None = None,
) -> Path:
    """Heat map of attention weights: source tokens on x (top), output tokens on y.

    Args:
        weights: (T_out, T_src), or (heads, T_out, T_src) for one panel per head.
        source_tokens: x labels (default positions); cut or completed to T_src.
        output_tokens: y labels (default positions); cut or completed to T_out.
        path: where the PNG goes.
        title: figure title.
        head_titles: a title per panel (default "head i" when there are several).
        annotate: write weights >= 0.1 in the cells (default: when the matrix has <= 20x20 cells).

    Returns:
        ``path``.
    """
    w = _check(weights)
    heads, t_out, t_src = w.shape
    src = _short(source_tokens, t_src)
    out = _short(output_tokens, t_out)
    annotate = (t_out <= 20 and t_src <= 20) if annotate is None else annotate
    cols = min(heads, 4)
    rows = math.ceil(heads / cols)
    cell = 0.32
    pw, ph = max(2.5, t_src * cell + 1.2), max(2.0, t_out * cell + 1.2)
    with style():
        fig = new_figure(pw * cols + 0.8, ph * rows + (0.4 if title else 0.0))
        axes = fig.subplots(rows, cols, squeeze=False)
        im = None
        for h in range(rows * cols):
            ax = axes[h // cols][h % cols]
            if h >= heads:
                ax.set_visible(False)
                continue
            name = head_titles[h] if head_titles is not None and h < len(head_titles) else (
                f"head {h}" if heads > 1 else None)
            im = _panel(ax, w[h], src, out, annotate, name)
        if im is not None:
            fig.colorbar(im, ax=axes, fraction=0.046, pad=0.04, shrink=0.8).set_label("attention weight")
        if title:
            fig.suptitle(title)
        return save_figure(fig, path)


def plot_attention_grid(
    examples: Sequence[dict[str, Any]],
    path: str | Path,
    *,
    ncols: int = 2,
    title: str | None = None,
) -> Path:
    """Several sentences' heat maps in one figure.

    Args:
        examples: dicts with ``attention`` (T_out, T_src), ``source_tokens``, ``output_tokens`` and
            optionally ``title`` (what ``Seq2SeqTask.translate_with_attention`` returns).
        path: where the PNG goes.
        ncols: panels per row.
        title: figure title.
    """
    if not examples:
        raise ValueError("plot_attention_grid needs at least one example")
    mats = [_check(e["attention"])[0] for e in examples]
    n = len(mats)
    cols = max(1, min(ncols, n))
    rows = math.ceil(n / cols)
    cell = 0.32
    pw = max(2.5, max(m.shape[1] for m in mats) * cell + 1.2)
    ph = max(2.0, max(m.shape[0] for m in mats) * cell + 1.2)
    with style():
        fig = new_figure(pw * cols, ph * rows + (0.4 if title else 0.0))
        axes = fig.subplots(rows, cols, squeeze=False)
        for i in range(rows * cols):
            ax = axes[i // cols][i % cols]
            if i >= n:
                ax.set_visible(False)
                continue
            e, m = examples[i], mats[i]
            _panel(ax, m, _short(e.get("source_tokens"), m.shape[1]), _short(e.get("output_tokens"), m.shape[0]),
                   m.shape[0] <= 20 and m.shape[1] <= 20, e.get("title"))
        if title:
            fig.suptitle(title)
        return save_figure(fig, path)
