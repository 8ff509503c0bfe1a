"""Batched image transforms that run on the training device.

Images stay ``uint8`` (N, C, H, W) in memory; :class:`~archlab.data.base.TensorLoader` hands each
batch (B, C, H, W), already on the device, to a transform built here. Every random transform draws
per-sample parameters for the whole batch at once (no Python loop over samples) from the
**global CPU torch generator**, then moves them to the batch's device. So:

* ``torch.manual_seed(s)`` makes augmentation reproducible, and a resumed run that restores the
  RNG state (the engine's checkpoints do) sees the same crops and flips;
* the same seed gives the same augmentation on CPU and GPU.

Typical training pipeline for CIFAR (Compose order matters)::

    ToFloat() -> RandomCrop(padding=4) -> RandomHorizontalFlip() -> Normalize(mean, std) -> Cutout(16)

Cutout comes after normalisation as in DeVries & Taylor (2017), so the erased square is 0 in
normalised units, the dataset mean.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F

from archlab.data.base import DatasetInfo

__all__ = [
    "Compose",
    "ToFloat",
    "Normalize",
    "RandomCrop",
    "RandomHorizontalFlip",
    "Cutout",
    "Resize",
    "Identity",
    "build_transform",
]

Transform = Callable[[torch.Tensor], torch.Tensor]


def _pair(size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(size, int):
        return size, size
    h, w = size
    return int(h), int(w)


def _check_images(x: torch.Tensor, who: str) -> None:
    if x.dim() != 4:
        raise ValueError(f"{who} expects a batch of images (B, C, H, W), got shape {tuple(x.shape)}")


class Identity:
    """Returns its input (tabular data, or evaluation without normalisation)."""

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def __repr__(self) -> str:
        return "Identity()"


class Compose:
    """Apply ``transforms`` in order."""

    def __init__(self, transforms: Sequence[Transform]) -> None:
        self.transforms = list(transforms)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        for t in self.transforms:
            x = t(x)
        return x

    def __repr__(self) -> str:
        inner = ", ".join(repr(t) for t in self.transforms)
        return f"Compose([{inner}])"


class ToFloat:
    """``uint8`` in 0..255 -> float in [0, 1] (x / 255); float input passes through (cast to ``dtype``).

    Args:
        dtype: the floating dtype wanted.
    """

    def __init__(self, dtype: torch.dtype = torch.float32) -> None:
        self.dtype = dtype

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype == torch.uint8:
            return x.to(self.dtype).div_(255.0)
        return x.to(self.dtype)

    def __repr__(self) -> str:
        return f"ToFloat({self.dtype})"


class Normalize:
    """``(x - mean[c]) / std[c]`` per channel, on float images (B, C, H, W).

    Args:
        mean, std: one value per channel (in the units of x, [0, 1] after :class:`ToFloat`).
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        if len(mean) != len(std):
            raise ValueError(f"mean has {len(mean)} channels but std has {len(std)}")
        if any(s <= 0 for s in std):
            raise ValueError(f"std must be positive, got {tuple(std)}")
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)
        self._cache: dict[Any, tuple[torch.Tensor, torch.Tensor]] = {}

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        _check_images(x, "Normalize")
        if x.shape[1] != len(self.mean):
            raise ValueError(f"Normalize has {len(self.mean)} channels, the batch has {x.shape[1]}")
        if not x.is_floating_point():
            raise TypeError("Normalize needs float images; put ToFloat() before it")
        key = (x.device, x.dtype)
        if key not in self._cache:
            m = torch.tensor(self.mean, device=x.device, dtype=x.dtype).view(1, -1, 1, 1)
            s = torch.tensor(self.std, device=x.device, dtype=x.dtype).view(1, -1, 1, 1)
            self._cache[key] = (m, s)
        m, s = self._cache[key]
        return (x - m) / s

    def __repr__(self) -> str:
        return f"Normalize(mean={self.mean}, std={self.std})"


class RandomCrop:
    """Zero-pad by ``padding`` on every side, then crop a random ``size`` window per sample.

    Vectorised: per-sample offsets index the padded batch with broadcast index grids.

    Args:
        size: output (H, W) or one int; None keeps the input size (the usual "pad 4, crop 32").
        padding: zeros added on each side before cropping.

    Shapes: (B, C, H, W) -> (B, C, size_h, size_w).
    """

    def __init__(self, size: int | Sequence[int] | None = None, padding: int = 0) -> None:
        self.size = None if size is None else _pair(size)
        self.padding = int(padding)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        _check_images(x, "RandomCrop")
        b, _, h, w = x.shape
        th, tw = self.size or (h, w)
        p = self.padding
        if p > 0:
            x = F.pad(x, (p, p, p, p))
        hp, wp = h + 2 * p, w + 2 * p
        if th > hp or tw > wp:
            raise ValueError(f"RandomCrop size {(th, tw)} is larger than the padded image {(hp, wp)}")
        # Offsets from the global CPU generator (device-independent, restored with RNG state).
        oy = torch.randint(0, hp - th + 1, (b,)).to(x.device)
        ox = torch.randint(0, wp - tw + 1, (b,)).to(x.device)
        rows = (oy[:, None] + torch.arange(th, device=x.device))[:, :, None]  # (B, th, 1)
        cols = (ox[:, None] + torch.arange(tw, device=x.device))[:, None, :]  # (B, 1, tw)
        batch = torch.arange(b, device=x.device)[:, None, None]  # (B, 1, 1)
        out = x.permute(0, 2, 3, 1)[batch, rows, cols]  # (B, th, tw, C)
        return out.permute(0, 3, 1, 2).contiguous()  # (B, C, th, tw)

    def __repr__(self) -> str:
        return f"RandomCrop(size={self.size}, padding={self.padding})"


class RandomHorizontalFlip:
    """Mirror each image left-right with probability ``p`` (independently per sample)."""

    def __init__(self, p: float = 0.5) -> None:
        self.p = float(p)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        _check_images(x, "RandomHorizontalFlip")
        flip = (torch.rand(x.shape[0]) < self.p).to(x.device)  # (B,)
        return torch.where(flip[:, None, None, None], x.flip(-1), x)

    def __repr__(self) -> str:
        return f"RandomHorizontalFlip(p={self.p})"


class Cutout:
    """Zero a ``size`` x ``size`` square at a random centre in each image (DeVries & Taylor, 2017).

    The centre is uniform over the image and the square is clipped at the borders, as in the
    paper, so squares near an edge erase less.

    Args:
        size: side of the square, in pixels.

    Shapes: (B, C, H, W) -> (B, C, H, W).
    """

    def __init__(self, size: int) -> None:
        if size <= 0:
            raise ValueError(f"Cutout size must be positive, got {size}")
        self.size = int(size)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        _check_images(x, "Cutout")
        b, _, h, w = x.shape
        cy = torch.randint(0, h, (b,)).to(x.device)
        cx = torch.randint(0, w, (b,)).to(x.device)
        y0, x0 = cy - self.size // 2, cx - self.size // 2
        ys = torch.arange(h, device=x.device)[None, :]  # (1, H)
        xs = torch.arange(w, device=x.device)[None, :]  # (1, W)
        in_y = (ys >= y0[:, None]) & (ys < (y0 + self.size)[:, None])  # (B, H)
        in_x = (xs >= x0[:, None]) & (xs < (x0 + self.size)[:, None])  # (B, W)
        hole = in_y[:, None, :, None] & in_x[:, None, None, :]  # (B, 1, H, W)
        return x.masked_fill(hole, 0)

    def __repr__(self) -> str:
        return f"Cutout(size={self.size})"


class Resize:
    """Bilinear resize of the batch (``F.interpolate``, ``align_corners=False``, antialiased
    when shrinking). ``uint8`` input comes back ``uint8`` (rounded).

    Args:
        size: output (H, W) or one int for a square.

    Shapes: (B, C, H, W) -> (B, C, size_h, size_w).
    """

    def __init__(self, size: int | Sequence[int]) -> None:
        self.size = _pair(size)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        _check_images(x, "Resize")
        if tuple(x.shape[-2:]) == self.size:
            return x
        shrink = self.size[0] < x.shape[-2] or self.size[1] < x.shape[-1]
        y = F.interpolate(x.float() if not x.is_floating_point() else x, size=self.size, mode="bilinear",
                          align_corners=False, antialias=shrink)
        if x.dtype == torch.uint8:
            return y.round_().clamp_(0, 255).to(torch.uint8)
        return y.to(x.dtype)

    def __repr__(self) -> str:
        return f"Resize(size={self.size})"


def build_transform(info: DatasetInfo, section: Any = None, train: bool = False) -> Transform:
    """The batch transform for a dataset, from the ``data`` section of a run config.

    Images: :class:`ToFloat`; when ``train``, the augmentations the section asks for
    (``random_crop_padding`` -> :class:`RandomCrop`, ``hflip`` -> :class:`RandomHorizontalFlip`);
    :class:`Normalize` with the dataset's mean/std; then ``cutout`` -> :class:`Cutout` (train only).
    Tabular data is already standardised float32: :class:`Identity`.

    Args:
        info: the dataset's description (kind, mean, std).
        section: an :class:`archlab.config.DataSection` (or anything with its augmentation
            fields); None means no augmentation.
        train: add the random augmentations.

    Returns:
        ``fn(x) -> x`` on a batch (B, C, H, W) on any device.
    """
    if info.kind != "image":
        return Identity()
    steps: list[Transform] = [ToFloat()]
    pad = int(getattr(section, "random_crop_padding", 0) or 0)
    hflip = bool(getattr(section, "hflip", False))
    cutout = int(getattr(section, "cutout", 0) or 0)
    if train and pad > 0:
        steps.append(RandomCrop(None, padding=pad))
    if train and hflip:
        steps.append(RandomHorizontalFlip(0.5))
    if info.mean is not None and info.std is not None:
        steps.append(Normalize(info.mean, info.std))
    if train and cutout > 0:
        steps.append(Cutout(cutout))
    return Compose(steps)
