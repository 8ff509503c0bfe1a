"""What a CNN learned: first-layer filters and the feature maps of one input.

* :func:`plot_filters` draws the weights (O, I, kh, kw) of the first :class:`torch.nn.Conv2d`:
  each filter min-max normalised on its own; RGB when I == 3, otherwise one grey tile per input
  channel (rows are filters, columns input channels).
* :func:`plot_feature_maps` runs one image through the model with forward hooks on every
  ``nn.Conv2d`` and draws the first channels of each layer's output (before the activation).

torch is imported inside the functions, so importing :mod:`archlab.viz` stays light.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from archlab.viz._mpl import new_figure, save_figure, style, to_numpy

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from torch import nn

__all__ = [
    "collect_feature_maps",
    "find_conv_layers",
    "first_conv_weight",
    "plot_feature_maps",
    "plot_filters",
]


def find_conv_layers(model: nn.Module) -> list[tuple[str, nn.Conv2d]]:
    """The ``(qualified name, module)`` of every ``nn.Conv2d`` in ``model``, in registration order."""
    from torch import nn

    return [(name, m) for name, m in model.named_modules() if isinstance(m, nn.Conv2d)]


def first_conv_weight(model_or_weight: Any) -> np.ndarray:
    """The first ``nn.Conv2d``'s weight (O, I, kh, kw) as float32 NumPy, from a model or a weight tensor."""
    if hasattr(model_or_weight, "named_modules"):
        convs = find_conv_layers(model_or_weight)
        if not convs:
            raise ValueError(f"{type(model_or_weight).__name__} has no nn.Conv2d layer: no filters to plot")
        model_or_weight = convs[0][1].weight
    w = to_numpy(model_or_weight).astype(np.float32)
    if w.ndim != 4:
        raise ValueError(f"expected a conv weight (O, I, kh, kw), got shape {w.shape}")
    return w


def _minmax(a: np.ndarray) -> np.ndarray:
    lo, hi = float(a.min()), float(a.max())
    return (a - lo) / (hi - lo) if hi > lo else np.full_like(a, 0.5)


def plot_filters(
    model_or_weight: Any,
    path: str | Path,
    *,
    max_filters: int = 64,
    max_channels: int = 8,
    title: str | None = None,
) -> Path:
    """Grid of the first conv layer's filters.

    Args:
        model_or_weight: a model (its first ``nn.Conv2d`` is used) or a weight (O, I, kh, kw).
        path: where the PNG goes.
        max_filters: at most this many filters (RGB or single-channel layers); with other
            channel counts at most ``max_filters // 4`` rows.
        max_channels: at most this many input channels per filter (grey layout).
        title: figure title.

    Returns:
        ``path``.
    """
    w = first_conv_weight(model_or_weight)
    o, i, kh, kw = w.shape
    default_title = f"first-layer filters ({o}×{i}×{kh}×{kw})"
    with style():
        if i in (1, 3):
            n = min(o, max_filters)
            ncols = min(n, 8)
            nrows = math.ceil(n / ncols)
            fig = new_figure(1.1 * ncols + 0.2, 1.1 * nrows + 0.5)
            axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
            for f, ax in enumerate(axes):
                ax.set_axis_off()
                if f >= n:
                    continue
                tile = _minmax(w[f])
                if i == 3:
                    ax.imshow(tile.transpose(1, 2, 0), interpolation="nearest")
                else:
                    ax.imshow(tile[0], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        else:
            n = min(o, max(1, max_filters // 4))
            c = min(i, max_channels)
            fig = new_figure(0.9 * c + 0.8, 0.9 * n + 0.5)
            axes = fig.subplots(n, c, squeeze=False)
            for f in range(n):
                tile = _minmax(w[f])
                for ch in range(c):
                    ax = axes[f, ch]
                    ax.imshow(tile[ch], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
                    ax.set_xticks([])
                    ax.set_yticks([])
                    for spine in ax.spines.values():
                        spine.set_visible(False)
                    if f == 0:
                        ax.set_title(f"in {ch}", fontsize=8)
                    if ch == 0:
                        ax.set_ylabel(f"out {f}", fontsize=8)
        fig.suptitle(title or default_title)
        return save_figure(fig, path)


def collect_feature_maps(
    model: nn.Module, x: torch.Tensor, layers: list[str] | None = None
) -> list[tuple[str, torch.Tensor]]:
    """Outputs of each ``nn.Conv2d`` (or of the named ``layers``) for input ``x`` (B, C, H, W).

    The model runs in eval mode without gradients; its training mode is restored afterwards and
    the hooks are always removed. The input is moved to the model's device and dtype.

    Returns:
        ``(name, output)`` pairs on the CPU in float32, in execution order.
    """
    import torch

    named = dict(model.named_modules())
    if layers is None:
        targets = find_conv_layers(model)
    else:
        missing = [n for n in layers if n not in named]
        if missing:
            raise ValueError(
                f"no layer named {missing}; conv layers: {[n for n, _ in find_conv_layers(model)]}"
            )
        targets = [(n, named[n]) for n in layers]
    outputs: list[tuple[str, torch.Tensor]] = []

    def hook(name: str):
        def fn(_module: Any, _inp: Any, out: Any) -> None:
            if isinstance(out, torch.Tensor):
                outputs.append((name, out.detach().float().cpu()))

        return fn

    param = next(model.parameters(), None)
    if param is not None:
        x = x.to(device=param.device, dtype=param.dtype if param.is_floating_point() else x.dtype)
    handles = [m.register_forward_hook(hook(n)) for n, m in targets]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return outputs


def plot_feature_maps(
    model: nn.Module,
    x: Any,
    path: str | Path,
    *,
    max_channels: int = 8,
    max_layers: int = 8,
    layers: list[str] | None = None,
    image: Any = None,
    title: str | None = None,
) -> Path:
    """The first ``max_channels`` channels of each conv layer's output for one input.

    Args:
        model: the network.
        x: one model-ready input (C, H, W) or (1, C, H, W) (float, normalised as in training).
        path: where the PNG goes.
        max_channels: channels per layer.
        max_layers: at most this many layers, evenly spaced from first to last (layers whose
            output is 1x1 are left out).
        layers: names of the layers to hook (default: every ``nn.Conv2d``).
        image: the input for display (uint8 (C, H, W) or an array in [0, 1]); default ``x``
            min-max scaled.
        title: figure title.

    Returns:
        ``path``.
    """
    import torch

    from archlab.viz.classification import to_display_image

    xt = x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
    if xt.dim() == 3:
        xt = xt.unsqueeze(0)
    if xt.dim() != 4 or xt.shape[0] != 1:
        raise ValueError(f"expected one image (C, H, W) or (1, C, H, W), got shape {tuple(xt.shape)}")
    # 1x1 outputs (a conv used as a dense layer, e.g. LeNet's C5) show nothing spatial: skipped.
    maps = [
        (n, o)
        for n, o in collect_feature_maps(model, xt.float(), layers)
        if o.dim() == 4 and o.shape[-1] * o.shape[-2] > 1
    ]
    if not maps:
        raise ValueError(f"{type(model).__name__} produced no spatial conv outputs for this input")
    if len(maps) > max_layers:
        keep = np.unique(np.linspace(0, len(maps) - 1, max_layers).round().astype(int))
        maps = [maps[k] for k in keep]
    ncols = 1 + max(min(max_channels, o.shape[1]) for _, o in maps)
    nrows = len(maps)
    if image is None:
        disp = _minmax(xt[0].detach().float().cpu().numpy())
        disp = disp.transpose(1, 2, 0) if disp.shape[0] == 3 else disp[0]
    else:
        disp = to_display_image(image)
    with style():
        fig = new_figure(1.25 * ncols + 0.6, 1.3 * nrows + 0.5)
        axes = fig.subplots(nrows, ncols, squeeze=False)
        for r, (name, out) in enumerate(maps):
            fm = out[0].numpy()
            ax0 = axes[r, 0]
            if r == 0:
                ax0.imshow(disp, cmap="gray" if disp.ndim == 2 else None, interpolation="nearest")
                ax0.set_title("input", fontsize=8)
            ax0.set_xticks([])
            ax0.set_yticks([])
            for s in ax0.spines.values():
                s.set_visible(r == 0)
            ax0.set_ylabel(
                f"{_short(name)}\n{fm.shape[0]}×{fm.shape[1]}×{fm.shape[2]}",
                fontsize=8,
                rotation=0,
                ha="right",
                va="center",
            )
            for c in range(1, ncols):
                ax = axes[r, c]
                ax.set_axis_off()
                if c - 1 < fm.shape[0]:
                    ax.imshow(_minmax(fm[c - 1]), cmap="viridis", vmin=0, vmax=1, interpolation="nearest")
                    if r == 0:
                        ax.set_title(f"ch {c - 1}", fontsize=8)
        fig.suptitle(title or "feature maps (conv outputs, before activation)")
        return save_figure(fig, path)


def _short(s: str, n: int = 18) -> str:
    return s if len(s) <= n else "…" + s[-(n - 1) :]
