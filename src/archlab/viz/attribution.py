"""What a CNN looks at: Grad-CAM, Grad-CAM++, gradient saliency, SmoothGrad and input x gradient.

References:
    R. R. Selvaraju, M. Cogswell, A. Das, R. Vedantam, D. Parikh, D. Batra, "Grad-CAM: visual
    explanations from deep networks via gradient-based localization", ICCV 2017,
    https://arxiv.org/abs/1610.02391
    A. Chattopadhay, A. Sarkar, P. Howlader, V. N. Balasubramanian, "Grad-CAM++: generalized
    gradient-based visual explanations for deep convolutional networks", WACV 2018,
    https://arxiv.org/abs/1710.11063
    K. Simonyan, A. Vedaldi, A. Zisserman, "Deep inside convolutional networks: visualising image
    classification models and saliency maps", ICLR workshop 2014, https://arxiv.org/abs/1312.6034
    D. Smilkov, N. Thorat, B. Kim, F. Viégas, M. Wattenberg, "SmoothGrad: removing noise by adding
    noise", ICML workshop 2017, https://arxiv.org/abs/1706.03825
    A. Shrikumar, P. Greenside, A. Shcherbina, A. Kundaje, "Not just a black box: learning important
    features through propagating activation differences", 2016, https://arxiv.org/abs/1605.01713
    (input x gradient)

The math. y^c is the score (logit) of class c for image x; A^k (k = 1..K) the feature maps of a
convolutional layer, (h, w) in size::

    Grad-CAM     alpha_k^c = 1/(h w) sum_ij dy^c / dA^k_ij            (global-average-pooled gradients)
                 L^c       = ReLU(sum_k alpha_k^c A^k)                 (h, w), upsampled to (H, W)
    Grad-CAM++   a^kc_ij   = g^2 / (2 g^2 + sum_ab A^k_ab g^3),  g = dy^c / dA^k_ij
                 alpha_k^c = sum_ij a^kc_ij ReLU(g)                    (the exp(y^c) form of the paper)
    saliency     M_ij      = max_channel |dy^c / dx_ij|                (Simonyan et al.)
    SmoothGrad   M_ij      = max_channel |1/n sum_{t=1..n} dy^c / dx (x + eps_t)|,
                 eps_t ~ N(0, (noise (max x - min x))^2)               (per image)
    input x gradient  M_ij = max_channel |x_ij dy^c / dx_ij|

The Grad-CAM layer is ``layer`` if given, else the model's ``cam_layer`` attribute (the archlab
vision models set it: ``"layer4"`` for ResNet, ``"features"`` for VGG), else the last
convolution whose output is larger than 1x1, or the activation (and norm) right after it. A model
whose ``cam_layer`` is None (a ViT: tokens, not a feature map) gets a clear error that points to
:func:`saliency`.

Every function leaves the model as it found it: forward hooks removed, each module's train/eval
flag restored, and no ``.grad`` written on any parameter (gradients are taken with
:func:`torch.autograd.grad` with respect to the input or the hooked activation only).

torch is imported inside the functions, so importing :mod:`archlab.viz` stays light.

Deviations from the paper:
    - Grad-CAM maps are min-max normalised per image after upsampling (the paper shows them as
      heat maps without fixing a scale); a map that is zero everywhere (no positive evidence for
      the class) stays zero.
    - Grad-CAM++ keeps the paper's closed form for the exponential of the score, with the
      denominator's zeros mapped to weight 0.
    - SmoothGrad averages the raw gradients, then takes the channel-wise max of the absolute
      value, as for the vanilla saliency map.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from archlab.viz._mpl import new_figure, save_figure, style, to_numpy

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from torch import nn

__all__ = [
    "METHODS",
    "attribute",
    "explain_run",
    "find_cam_layer",
    "grad_cam",
    "plot_attribution",
    "saliency",
]

#: Every method of :func:`attribute` (and ``archlab explain --method``).
METHODS = ("gradcam", "gradcam++", "saliency", "smoothgrad", "input_x_gradient")
SaliencyMethod = Literal["gradient", "smoothgrad", "input_x_gradient"]


# ----------------------------------------------------------------------------------------------
# helpers


@contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    """Eval mode inside; each module's own training flag restored after (mixed modes included)."""
    modes = {m: m.training for m in model.modules()}
    try:
        model.eval()
        yield
    finally:
        for m, mode in modes.items():
            m.training = mode


def _prepare_input(model: nn.Module, x: Any) -> torch.Tensor:
    """``x`` as a detached float batch (B, C, H, W) on the model's device and dtype."""
    import torch

    xt = x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
    if xt.dim() == 3:
        xt = xt.unsqueeze(0)
    if xt.dim() != 4:
        raise ValueError(f"expected images (B, C, H, W) or one image (C, H, W), got shape {tuple(xt.shape)}")
    param = next(model.parameters(), None)
    device = param.device if param is not None else xt.device
    dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
    return xt.detach().to(device=device, dtype=dtype)


def _check_logits(logits: Any, batch: int) -> torch.Tensor:
    import torch

    if not isinstance(logits, torch.Tensor) or logits.dim() != 2 or logits.shape[0] != batch:
        shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise ValueError(
            f"attribution needs a classifier returning logits (B, num_classes); the model returned {shape}"
        )
    return logits


def _targets(target: Any, logits: torch.Tensor) -> torch.Tensor:
    """(B,) class indices: the predicted class (None), one class for all (int), or one per image."""
    import torch

    b, k = logits.shape
    if target is None:
        t = logits.argmax(dim=1)
    else:
        t = torch.as_tensor(target, device=logits.device).long().reshape(-1)
        if t.numel() == 1:
            t = t.expand(b)
        if t.numel() != b:
            raise ValueError(
                f"target has {t.numel()} entries for a batch of {b}: give one class or one per image"
            )
    if bool(((t < 0) | (t >= k)).any()):
        raise ValueError(f"target classes must be in 0..{k - 1}, got {t.tolist()}")
    return t


def _logits(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    import torch

    with torch.no_grad(), _eval_mode(model):
        return _check_logits(model(x), len(x)).float()


def find_cam_layer(model: nn.Module, x: Any = None) -> str:
    """The module Grad-CAM uses: ``model.cam_layer``, else the last convolution's (activation) output.

    Without a ``cam_layer`` attribute, one forward pass of ``x`` (default: the model's example
    input) records the leaf modules in call order; the last convolution (an ``nn.Conv2d``, or a
    module with a ``kernel_size`` and a ``weight``) whose output is larger than 1x1 is taken,
    then moved on to the last of the modules that run right after it with an output of the same
    shape (its norm and activation), as Grad-CAM uses rectified feature maps.

    Raises:
        ValueError: ``cam_layer`` is None (a ViT) or the model has no convolution; the message
            points to :func:`saliency`.
    """
    import torch
    from torch import nn

    hint = (
        "use saliency(model, x, method='gradient' | 'smoothgrad' | 'input_x_gradient') instead "
        "(archlab explain RUN --method saliency)"
    )
    name = getattr(model, "model_name", type(model).__name__)
    if hasattr(model, "cam_layer"):
        layer = model.cam_layer
        if layer is None:
            raise ValueError(f"{name} has no convolutional feature map for Grad-CAM (cam_layer=None); {hint}")
        if str(layer) not in dict(model.named_modules()):
            raise ValueError(f"{name}.cam_layer={layer!r} names no module of the model")
        return str(layer)

    def is_conv(m: nn.Module) -> bool:
        return isinstance(m, nn.Conv2d) or (
            hasattr(m, "kernel_size") and isinstance(getattr(m, "weight", None), torch.Tensor)
        )

    if not any(is_conv(m) for m in model.modules()):
        raise ValueError(f"{name} has no convolution, so Grad-CAM has no feature map to weigh; {hint}")
    if x is None:
        from archlab.inspect import example_input

        x = example_input(model)
    x = _prepare_input(model, x)[:1]
    calls: list[tuple[str, nn.Module, tuple[int, ...] | None]] = []

    def hook(n: str):
        def fn(m: nn.Module, _args: Any, out: Any) -> None:
            calls.append((n, m, tuple(out.shape) if isinstance(out, torch.Tensor) else None))

        return fn

    leaves = [(n, m) for n, m in model.named_modules() if n and not any(True for _ in m.children())]
    handles = [m.register_forward_hook(hook(n)) for n, m in leaves]
    try:
        with torch.no_grad(), _eval_mode(model):
            model(x)
    finally:
        for h in handles:
            h.remove()
    spatial = [
        i
        for i, (_, m, s) in enumerate(calls)
        if is_conv(m) and s is not None and len(s) == 4 and s[-1] * s[-2] > 1
    ]
    if not spatial:
        raise ValueError(f"{name} has no convolution with a spatial output (> 1x1) for this input; {hint}")
    i = spatial[-1]
    shape = calls[i][2]
    while i + 1 < len(calls) and calls[i + 1][2] == shape and not is_conv(calls[i + 1][1]):
        i += 1
    return calls[i][0]


# ----------------------------------------------------------------------------------------------
# attribution


def grad_cam(
    model: nn.Module,
    x: Any,
    target: Any = None,
    layer: str | None = None,
    *,
    plus: bool = False,
) -> torch.Tensor:
    """Grad-CAM heat maps (Selvaraju et al. 2017), or Grad-CAM++ with ``plus=True``.

    Args:
        model: a classifier returning logits (B, num_classes).
        x: model-ready images (B, C, H, W) or one image (C, H, W), normalised as in training.
        target: the class to explain: None (the predicted class), one int for every image, or
            one class per image.
        layer: dotted name of the module whose output A (B, K, h, w) is weighed; default
            :func:`find_cam_layer`. A module that runs several times uses its last call.
        plus: Grad-CAM++ weights instead of averaged gradients.

    Returns:
        (B, H, W) float32 CPU tensor in [0, 1], bilinearly upsampled to the input size and
        min-max normalised per image.
    """
    import torch
    import torch.nn.functional as F

    x = _prepare_input(model, x)
    name = layer if layer is not None else find_cam_layer(model, x)
    modules = dict(model.named_modules())
    if name not in modules:
        raise ValueError(f"no module named {name!r}; e.g. {[n for n in modules if n][-10:]}")
    acts: list[torch.Tensor] = []

    def hook(_m: nn.Module, _args: Any, out: Any) -> None:
        acts.append(out[0] if isinstance(out, (tuple, list)) else out)

    handle = modules[name].register_forward_hook(hook)
    try:
        with torch.enable_grad(), _eval_mode(model):
            xg = x.clone().requires_grad_(True)  # so the graph exists even for frozen weights
            logits = _check_logits(model(xg), len(x))
            tgt = _targets(target, logits)
            if not acts:
                raise ValueError(f"module {name!r} did not run in the forward pass")
            a = acts[-1]
            if not isinstance(a, torch.Tensor) or a.dim() != 4:
                shape = tuple(a.shape) if isinstance(a, torch.Tensor) else type(a).__name__
                raise ValueError(
                    f"Grad-CAM needs a feature map (B, C, h, w) but {name!r} outputs {shape} (tokens?); "
                    "use saliency(model, x) instead, or pass layer= a convolutional module"
                )
            score = logits.gather(1, tgt[:, None]).sum()
            (g,) = torch.autograd.grad(score, a)
    finally:
        handle.remove()
    a, g = a.detach().float(), g.float()  # (B, K, h, w)
    if plus:
        g2, g3 = g.pow(2), g.pow(3)
        denom = 2 * g2 + a.sum(dim=(2, 3), keepdim=True) * g3
        coef = torch.where(denom != 0, g2 / torch.where(denom != 0, denom, torch.ones_like(denom)), 0.0)
        weights = (coef * F.relu(g)).sum(dim=(2, 3))  # (B, K)
    else:
        weights = g.mean(dim=(2, 3))  # (B, K)
    cam = F.relu((weights[:, :, None, None] * a).sum(dim=1, keepdim=True))  # (B, 1, h, w)
    cam = F.interpolate(cam, size=tuple(x.shape[-2:]), mode="bilinear", align_corners=False)[
        :, 0
    ]  # (B, H, W)
    return _normalise(cam).cpu()


def _normalise(m: torch.Tensor) -> torch.Tensor:
    """Per-image min-max to [0, 1]; a constant map becomes zeros."""
    flat = m.flatten(1)
    lo, hi = flat.min(dim=1).values, flat.max(dim=1).values
    span = (hi - lo)[:, None, None]
    out = (m - lo[:, None, None]) / span.clamp_min(1e-12)
    return out.where(span > 1e-12, 0.0).float()


def _input_grad(model: nn.Module, x: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
    import torch

    xg = x.clone().requires_grad_(True)
    with torch.enable_grad():
        logits = _check_logits(model(xg), len(x))
        (g,) = torch.autograd.grad(logits.gather(1, tgt[:, None]).sum(), xg)
    return g


def saliency(
    model: nn.Module,
    x: Any,
    target: Any = None,
    method: SaliencyMethod = "gradient",
    samples: int = 25,
    noise: float = 0.15,
    *,
    seed: int | None = None,
) -> torch.Tensor:
    """Gradient saliency maps: vanilla (Simonyan et al.), SmoothGrad or input x gradient.

    Args:
        model: a classifier returning logits (B, num_classes).
        x: model-ready images (B, C, H, W) or one image (C, H, W).
        target: None (the predicted class on the clean image), one int, or one class per image.
        method: ``gradient``, ``smoothgrad`` or ``input_x_gradient``.
        samples: noisy copies averaged by SmoothGrad.
        noise: SmoothGrad's noise level: sigma = noise * (max - min) of each image.
        seed: seed of SmoothGrad's noise (a private generator); None draws from torch's global
            generator (so ``torch.manual_seed`` makes it reproducible too).

    Returns:
        (B, H, W) float32 CPU tensor, the channel-wise max of the absolute attribution (not
        normalised: equal maps mean equal gradients).
    """
    import torch

    if method not in ("gradient", "smoothgrad", "input_x_gradient"):
        raise ValueError(f"method must be 'gradient', 'smoothgrad' or 'input_x_gradient', got {method!r}")
    if method == "smoothgrad" and (samples < 1 or noise < 0):
        raise ValueError(
            f"smoothgrad needs samples >= 1 and noise >= 0, got samples={samples}, noise={noise}"
        )
    x = _prepare_input(model, x)
    with _eval_mode(model):
        with torch.no_grad():
            tgt = _targets(target, _check_logits(model(x), len(x)))
        if method == "smoothgrad":
            gen = torch.Generator(device=x.device).manual_seed(seed) if seed is not None else None
            sigma = noise * (x.amax(dim=(1, 2, 3)) - x.amin(dim=(1, 2, 3)))  # (B,)
            g = torch.zeros_like(x)
            for _ in range(samples):
                eps = torch.randn(x.shape, generator=gen, device=x.device, dtype=x.dtype)
                g += _input_grad(model, x + eps * sigma[:, None, None, None], tgt)
            g /= samples
        else:
            g = _input_grad(model, x, tgt)
            if method == "input_x_gradient":
                g = g * x
    return g.abs().amax(dim=1).float().cpu()  # (B, H, W)


def attribute(
    model: nn.Module,
    x: Any,
    method: str = "gradcam",
    target: Any = None,
    *,
    layer: str | None = None,
    samples: int = 25,
    noise: float = 0.15,
    seed: int | None = 0,
) -> torch.Tensor:
    """One entry point for every method of :data:`METHODS`: (B, H, W) maps.

    ``gradcam``/``gradcam++`` call :func:`grad_cam` (``layer`` applies); ``saliency`` (the
    vanilla gradient), ``smoothgrad`` and ``input_x_gradient`` call :func:`saliency`.
    """
    if method in ("gradcam", "gradcam++"):
        return grad_cam(model, x, target, layer, plus=method == "gradcam++")
    if method in ("saliency", "gradient"):
        return saliency(model, x, target, "gradient")
    if method in ("smoothgrad", "input_x_gradient"):
        return saliency(model, x, target, method, samples, noise, seed=seed)  # type: ignore[arg-type]
    raise ValueError(f"unknown attribution method {method!r}; one of {', '.join(METHODS)}")


# ----------------------------------------------------------------------------------------------
# plot


def plot_attribution(
    images: Any,
    maps: Any,
    path: str | Path,
    titles: Sequence[str] | None = None,
    *,
    title_colors: Sequence[str] | None = None,
    title: str | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    show_input: bool = True,
    alpha: float = 0.5,
    cmap: str = "jet",
    ncols: int = 8,
) -> Path:
    """A grid of images with their heat maps laid over them.

    Args:
        images: (N, C, H, W) or (N, H, W): uint8 pixels, floats in [0, 1], or normalised model
            inputs (give ``mean``/``std`` to undo the normalisation).
        maps: (N, h, w) attributions (any scale): each is min-max scaled for display and
            stretched over its image.
        path: where the PNG goes.
        titles: one title per image (e.g. ``"true 3\\npred 8"``).
        title_colors: one colour per title (e.g. red for a wrong prediction).
        title: figure title.
        mean: per-channel mean of normalised float images.
        std: per-channel std of normalised float images.
        show_input: draw each image alone above its overlay.
        alpha: opacity of the heat map.
        cmap: matplotlib colour map of the heat map.
        ncols: images per row.

    Returns:
        ``path``.
    """
    from archlab.viz.classification import to_display_image

    imgs = to_numpy(images)
    if imgs.ndim == 3:
        imgs = imgs[:, None]
    hm = to_numpy(maps).astype(np.float32)
    if hm.ndim == 4 and hm.shape[1] == 1:
        hm = hm[:, 0]
    if imgs.ndim != 4 or hm.ndim != 3 or len(imgs) != len(hm):
        raise ValueError(f"expected images (N, C, H, W) and maps (N, h, w), got {imgs.shape} and {hm.shape}")
    n = len(imgs)
    if n == 0:
        raise ValueError("no images to plot")
    if titles is not None and len(titles) != n:
        raise ValueError(f"{len(titles)} titles for {n} images")
    ncols = max(1, min(ncols, n))
    grid_rows = math.ceil(n / ncols)
    per = 2 if show_input else 1
    title_lines = max((str(t).count("\n") + 1 for t in titles), default=0) if titles is not None else 0
    pad = 0.16 * title_lines + 0.1  # room above each block for its titles, in tile heights
    with style():
        # A plain grid spec, no constrained layout: that would cost more than the attribution itself.
        height = 1.25 * (per + pad) * grid_rows + 0.5
        fig = new_figure(1.25 * ncols + 0.8, height, layout=None)
        ratios = [pad, *([1.0] * per)] * grid_rows
        gs = fig.add_gridspec(
            len(ratios), ncols, height_ratios=ratios, left=0.02, right=0.9, bottom=0.02,
            top=1 - 0.5 / height if title else 0.98, wspace=0.06, hspace=0.04,
        )  # fmt: skip
        mappable = None
        for k in range(n):
            r, c = divmod(k, ncols)
            disp = to_display_image(imgs[k], mean, std)
            h, w = disp.shape[:2]
            m = hm[k]
            lo, hi = float(m.min()), float(m.max())
            m = (m - lo) / (hi - lo) if hi > lo else np.zeros_like(m)
            grey_cmap = "gray" if disp.ndim == 2 else None
            tiles = [fig.add_subplot(gs[r * (per + 1) + 1 + i, c]) for i in range(per)]
            for ax in tiles:
                ax.set_axis_off()
                ax.imshow(disp, cmap=grey_cmap, vmin=0, vmax=1, interpolation="nearest")
            mappable = tiles[-1].imshow(
                m, cmap=cmap, alpha=alpha, vmin=0, vmax=1, extent=(-0.5, w - 0.5, h - 0.5, -0.5),
                interpolation="nearest" if m.shape == (h, w) else "bilinear",
            )  # fmt: skip
            if titles is not None:
                color = title_colors[k] if title_colors is not None else None
                tiles[0].set_title(titles[k], fontsize=8, **({"color": color} if color else {}))
        if mappable is not None:
            cax = fig.add_axes((0.92, 0.25, 0.015, 0.5))
            fig.colorbar(mappable, cax=cax, label="relative attribution")
        if title:
            fig.suptitle(title)
        return save_figure(fig, path)


# ----------------------------------------------------------------------------------------------
# runs


def explain_run(
    target: str | Path,
    *,
    method: str = "gradcam",
    split: str = "test",
    indices: Sequence[int] | None = None,
    count: int = 8,
    layer: str | None = None,
    out: str | Path | None = None,
    weights: str = "final",
) -> dict[str, Any]:
    """Attribution maps for images of a trained run's dataset, as ``archlab explain RUN`` draws them.

    Args:
        target: a run folder (or a checkpoint) of an image classification run.
        method: one of :data:`METHODS`.
        split: ``train``, ``val`` or ``test``.
        indices: which images of the split; default the first ``count``.
        count: how many images when ``indices`` is not given.
        layer: the Grad-CAM layer (default: the model's ``cam_layer`` or last convolution).
        out: the PNG's path; default ``RUN/figures/explain_METHOD_SPLIT.png``.
        weights: ``final``, ``last`` or ``best`` (see :func:`archlab.load_run`).

    Returns:
        ``{"path": Path, "method": str, "rows": [{"index", "true", "pred", "prob", "correct"}]}``.

    Raises:
        ArchlabError: not an image classification run, an unknown split, indices out of range,
            or a method the model cannot take (Grad-CAM on a model without feature maps).
    """
    import torch
    from torch import nn

    from archlab.api import load_run
    from archlab.data.transforms import build_transform
    from archlab.utils import ArchlabError

    if method not in METHODS:
        raise ArchlabError(f"unknown method {method!r}; one of {', '.join(METHODS)}")
    run = load_run(target, weights=weights)
    info = run.bundle.info
    if info.kind != "image" or not isinstance(run.model, nn.Module):
        raise ArchlabError(
            f"explain needs a PyTorch image classifier; {run.path} is a {info.kind!r} run of "
            f"{run.config.model.name!r}"
        )
    splits = run.bundle.splits()
    if split not in splits:
        raise ArchlabError(
            f"dataset {run.config.data.name!r} has no {split!r} split; use one of {list(splits)}"
        )
    part = splits[split]
    n = len(part)
    idx = [int(i) for i in indices] if indices else list(range(min(max(count, 1), n)))
    bad = [i for i in idx if not 0 <= i < n]
    if bad:
        raise ArchlabError(f"indices {bad} are outside the {split} split's 0..{n - 1}")
    raw = part.x[torch.as_tensor(idx)]  # (N, C, H, W) as stored
    y = part.y[torch.as_tensor(idx)].long()
    x = build_transform(info, run.config.data, train=False)(raw)
    model = run.model
    try:
        probs = _logits(model, _prepare_input(model, x)).softmax(dim=1).cpu()
        maps = attribute(model, x, method, layer=layer)
    except ValueError as err:
        raise ArchlabError(str(err)) from None
    names = list(info.class_names or [])

    def label(c: int) -> str:
        return names[c] if c < len(names) else str(c)

    pred = probs.argmax(dim=1)
    rows = [
        {
            "index": i,
            "true": label(int(t)),
            "pred": label(int(p)),
            "prob": round(float(probs[k, p]), 4),
            "correct": bool(int(p) == int(t)),
        }
        for k, (i, t, p) in enumerate(zip(idx, y, pred))
    ]
    path = Path(out) if out else run.path / "figures" / f"explain_{method.replace('+', 'p')}_{split}.png"
    plot_attribution(
        raw,
        maps,
        path,
        titles=[f"#{r['index']} true {r['true']}\npred {r['pred']} {r['prob']:.2f}" for r in rows],
        title_colors=[None if r["correct"] else "red" for r in rows],  # type: ignore[misc]
        title=f"{method} for {run.config.model.name} on {run.config.data.name} ({split})",
    )
    return {"path": path, "method": method, "rows": rows}
