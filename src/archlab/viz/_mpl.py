"""Shared matplotlib plumbing for :mod:`archlab.viz`: a headless backend, one style, capped sizes.

Figures are built as :class:`matplotlib.figure.Figure` objects (not through ``pyplot``'s global
figure manager), saved, then closed, so plotting from a training process or a web server neither
opens windows nor leaks memory. The Agg backend is selected only when ``pyplot`` has not been
imported yet: switching the backend of a notebook that already uses pyplot would close its figures.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import matplotlib

if "matplotlib.pyplot" not in sys.modules:
    matplotlib.use("Agg")

import numpy as np
from matplotlib.figure import Figure

__all__ = ["MAX_INCHES", "STYLE", "new_figure", "save_figure", "style", "to_numpy"]

#: Readable defaults for every archlab figure.
STYLE: dict[str, Any] = {
    "font.size": 10,
    "axes.titlesize": 10,
    "axes.labelsize": 10,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "legend.fontsize": 9,
    "figure.titlesize": 12,
    "axes.grid": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
}

#: No figure side is larger than this (inches); with ``DPI`` it caps images at ~1400 px.
MAX_INCHES = 14.0
DPI = 100


@contextmanager
def style() -> Iterator[None]:
    with matplotlib.rc_context(STYLE):
        yield


def new_figure(width: float, height: float, **kwargs: Any) -> Figure:
    """A detached figure of at most ``MAX_INCHES`` per side (aspect ratio kept)."""
    scale = min(1.0, MAX_INCHES / max(width, height, 1e-6))
    kwargs.setdefault("layout", "constrained")
    return Figure(figsize=(max(width * scale, 1.0), max(height * scale, 1.0)), **kwargs)


def save_figure(fig: Figure, path: str | Path, dpi: int = DPI) -> Path:
    """Save ``fig`` as PNG (parents created), release it and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fig.savefig(path, dpi=dpi, format="png", facecolor="white", bbox_inches="tight", pad_inches=0.1)
    finally:
        fig.clear()
        # A detached Figure is not registered with pyplot; nothing else holds it after this.
    return path


def to_numpy(x: Any) -> np.ndarray:
    """A NumPy array from a NumPy array, a torch tensor (any device/dtype) or a sequence."""
    if hasattr(x, "detach"):  # a torch tensor; no torch import needed
        x = x.detach()
        if getattr(x, "is_floating_point", lambda: False)() and str(x.dtype) in (
            "torch.bfloat16",
            "torch.float16",
        ):
            x = x.float()
        return x.cpu().numpy()
    return np.asarray(x)
