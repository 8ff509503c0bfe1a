"""Batched image transforms that run on the training device.

Images stay ``uint8`` (N, C, H, W) in memory; :class:`~archlab.data.base.TensorLoader` hands each
batch (B, C, H, W), already on the device, to a transform built here. Every random transform draws
per-sample parameters for the whole batch at once (no Python loop over samples) from the
**global CPU torch generator**, then moves them to the batch's device. So:

* ``torch.manual_seed(s)`` makes augmentation reproducible, and a resumed run that restores the
  RNG state (the engine's checkpoints do) sees the same crops and flips;
* the same seed gives the same augmentation on CPU and GPU (all but the values of
  :class:`RandomErasing`'s random fill; see the deviations below).

Typical training pipeline for CIFAR (Compose order matters)::

    ToFloat() -> RandomCrop(padding=4) -> RandomHorizontalFlip() -> Normalize(mean, std) -> Cutout(16)

Cutout comes after normalisation as in DeVries & Taylor (2017), so the erased square is 0 in
normalised units, the dataset mean. :class:`RandomErasing` also comes after it, so its random fill
is N(0, 1) in normalised units, like the data.

The papers behind the newer augmentations (mixup and CutMix change the labels too, so they are
batch functions that the classification task calls, not transforms; see
:mod:`archlab.tasks.classification`):

* **Random Erasing**: Z. Zhong, L. Zheng, G. Kang, S. Li, Y. Yang, "Random Erasing Data
  Augmentation", AAAI 2020, https://arxiv.org/abs/1708.04896. With probability ``p`` per image,
  a rectangle of area ``S_e = s * H * W`` (``s ~ U(0.02, 0.33)``) and aspect ratio ``r = H_e / W_e``
  is filled with random values: ``H_e = sqrt(S_e * r)``, ``W_e = sqrt(S_e / r)``.
* **mixup**: H. Zhang, M. Cisse, Y. N. Dauphin, D. Lopez-Paz, "mixup: Beyond Empirical Risk
  Minimization", ICLR 2018, https://arxiv.org/abs/1710.09412. ``lam ~ Beta(alpha, alpha)``,
  ``x~ = lam * x_i + (1 - lam) * x_j`` with ``j`` a permutation of the batch, and the loss
  ``lam * L(f(x~), y_i) + (1 - lam) * L(f(x~), y_j)`` (equal to the loss on mixed one-hot labels
  for cross-entropy).
* **CutMix**: S. Yun, D. Han, S. J. Oh, S. Chun, J. Choe, Y. Yoo, "CutMix: Regularization Strategy
  to Train Strong Classifiers with Localizable Features", ICCV 2019, https://arxiv.org/abs/1905.04899.
  ``lam ~ Beta(alpha, alpha)``; a box of side ratio ``sqrt(1 - lam)`` at a uniform centre, clipped
  at the borders, is pasted from ``x_j`` into ``x_i``, and ``lam`` is reset to the true kept area
  ``1 - box_area / (H * W)``; the loss mixes the labels with that ``lam`` as in mixup.

Deviations from the paper:

* Random Erasing draws the aspect ratio log-uniformly in [0.3, 3.3] (the paper: uniform in
  [r1, 1/r1]), so tall and wide boxes are equally likely, as in the common implementations; a
  box that does not fit is redrawn up to 10 times (then the image is left as is), and its
  position is uniform over the places where it fits (the paper draws the corner over the whole
  image and rejects boxes that cross the border, which favours small boxes a little). The fill
  is per-pixel N(0, 1) in normalised units (the paper: uniform in [0, 255] before
  normalisation), or a constant. The noise comes from a generator on the batch's device seeded
  from the global CPU generator: reproducible under ``torch.manual_seed`` and across resumes,
  but the noise values (not the boxes) differ between CPU and GPU.
* mixup and CutMix draw one ``lam`` and one box per batch (as both papers' reference code does),
  not one per sample.
"""

from __future__ import annotations

import math
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
    "RandomErasing",
    "Resize",
    "Identity",
    "build_transform",
    "mixup_batch",
    "cutmix_batch",
    "cutmix_box",
    "sample_lam",
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


class RandomErasing:
    """Erase a random rectangle in each image with probability ``p`` (Zhong et al., 2020).

    Per image: area fraction ``s ~ U(scale)``, aspect ratio ``r = h / w`` log-uniform in ``ratio``,
    ``h = round(sqrt(s * H * W * r))``, ``w = round(sqrt(s * H * W / r))``; a box that does not fit
    in the image is redrawn (up to ``attempts`` draws, all made at once), then its top-left
    corner is uniform over the positions where it fits. Vectorised over the batch; the per-image
    parameters come from the global CPU generator (see the module docstring).

    Args:
        p: probability that an image is erased.
        scale: (min, max) area of the box as a fraction of the image.
        ratio: (min, max) aspect ratio h / w of the box.
        fill: ``"random"`` (per-pixel N(0, 1) values, in normalised units after :class:`Normalize`)
            or a constant (0 is the dataset mean after :class:`Normalize`).
        attempts: box draws per image before giving up on that image.

    Shapes: (B, C, H, W) float -> (B, C, H, W).
    """

    def __init__(
        self,
        p: float = 0.5,
        scale: tuple[float, float] = (0.02, 0.33),
        ratio: tuple[float, float] = (0.3, 3.3),
        fill: str | float = "random",
        attempts: int = 10,
    ) -> None:
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"RandomErasing p must be in [0, 1], got {p}")
        if not 0.0 < scale[0] <= scale[1] <= 1.0:
            raise ValueError(f"RandomErasing scale must satisfy 0 < min <= max <= 1, got {tuple(scale)}")
        if not 0.0 < ratio[0] <= ratio[1]:
            raise ValueError(f"RandomErasing ratio must satisfy 0 < min <= max, got {tuple(ratio)}")
        if isinstance(fill, str) and fill != "random":
            raise ValueError(f"RandomErasing fill must be 'random' or a number, got {fill!r}")
        if attempts < 1:
            raise ValueError(f"RandomErasing attempts must be >= 1, got {attempts}")
        self.p = float(p)
        self.scale = (float(scale[0]), float(scale[1]))
        self.ratio = (float(ratio[0]), float(ratio[1]))
        self.fill = fill if isinstance(fill, str) else float(fill)
        self.attempts = int(attempts)

    def boxes(self, b: int, h: int, w: int) -> tuple[torch.Tensor, ...]:
        """Per-image ``(erase, top, left, height, width)``, each (B,), on the CPU.

        ``erase`` is False for images not chosen (probability 1 - p) and for those whose every
        draw failed to fit; their other entries are then meaningless.
        """
        k = self.attempts
        area = torch.empty(b, k).uniform_(*self.scale) * (h * w)  # (B, K) target areas in pixels
        log_r = torch.empty(b, k).uniform_(math.log(self.ratio[0]), math.log(self.ratio[1]))
        r = log_r.exp()  # (B, K) aspect ratios h / w
        eh = (area * r).sqrt().round().long()  # (B, K)
        ew = (area / r).sqrt().round().long()
        fits = (eh >= 1) & (ew >= 1) & (eh <= h) & (ew <= w)  # (B, K)
        first = fits.float().argmax(dim=1, keepdim=True)  # (B, 1): the first draw that fits
        eh, ew = eh.gather(1, first).squeeze(1), ew.gather(1, first).squeeze(1)  # (B,)
        erase = (torch.rand(b) < self.p) & fits.any(dim=1)
        eh, ew = torch.where(erase, eh, 1), torch.where(erase, ew, 1)
        top = (torch.rand(b) * (h - eh + 1)).long().clamp_(max=h - eh)
        left = (torch.rand(b) * (w - ew + 1)).long().clamp_(max=w - ew)
        return erase, top, left, eh, ew

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        _check_images(x, "RandomErasing")
        if not x.is_floating_point():
            raise TypeError("RandomErasing needs float images; put it after ToFloat() and Normalize()")
        b, _, h, w = x.shape
        erase, top, left, eh, ew = (t.to(x.device) for t in self.boxes(b, h, w))
        # The seed of the fill noise is drawn even when nothing is erased: the global generator
        # then advances by the same amount on every batch.
        noise_seed = int(torch.randint(0, 2**62, (1,)).item()) if self.fill == "random" else 0
        ys = torch.arange(h, device=x.device)[None, :]  # (1, H)
        xs = torch.arange(w, device=x.device)[None, :]  # (1, W)
        in_y = (ys >= top[:, None]) & (ys < (top + eh)[:, None])  # (B, H)
        in_x = (xs >= left[:, None]) & (xs < (left + ew)[:, None])  # (B, W)
        hole = in_y[:, None, :, None] & in_x[:, None, None, :] & erase[:, None, None, None]  # (B, 1, H, W)
        if self.fill == "random":
            g = torch.Generator(device=x.device).manual_seed(noise_seed)
            noise = torch.randn(x.shape, generator=g, device=x.device, dtype=x.dtype)  # (B, C, H, W)
            return torch.where(hole, noise, x)
        return x.masked_fill(hole, self.fill)

    def __repr__(self) -> str:
        return f"RandomErasing(p={self.p}, scale={self.scale}, ratio={self.ratio}, fill={self.fill!r})"


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


def build_transform(info: DatasetInfo, section: Any = None, train: bool = False, normalize: bool = True) -> Transform:
    """The batch transform for a dataset, from the ``data`` section of a run config.

    Images: :class:`ToFloat`; when ``train``, the augmentations the section asks for
    (``random_crop_padding`` -> :class:`RandomCrop`, ``hflip`` -> :class:`RandomHorizontalFlip`);
    :class:`Normalize` with the dataset's mean/std; then, train only, ``cutout`` ->
    :class:`Cutout` and ``random_erasing`` (a probability) -> :class:`RandomErasing`.
    Tabular data is already standardised float32: :class:`Identity`. (mixup and CutMix mix
    labels too: the classification task applies them, see :func:`mixup_batch`.)

    Args:
        info: the dataset's description (kind, mean, std).
        section: an :class:`archlab.config.DataSection` (or anything with its augmentation
            fields); None means no augmentation.
        train: add the random augmentations.
        normalize: apply :class:`Normalize` (False: images stay in [0, 1], as generative tasks want).

    Returns:
        ``fn(x) -> x`` on a batch (B, C, H, W) on any device.

    Raises:
        ValueError: ``random_erasing`` outside [0, 1].
    """
    if info.kind != "image":
        return Identity()
    steps: list[Transform] = [ToFloat()]
    pad = int(getattr(section, "random_crop_padding", 0) or 0)
    hflip = bool(getattr(section, "hflip", False))
    cutout = int(getattr(section, "cutout", 0) or 0)
    erasing = float(getattr(section, "random_erasing", 0.0) or 0.0)
    if not 0.0 <= erasing <= 1.0:
        raise ValueError(f"data.random_erasing is a probability in [0, 1], got {erasing}")
    if train and pad > 0:
        steps.append(RandomCrop(None, padding=pad))
    if train and hflip:
        steps.append(RandomHorizontalFlip(0.5))
    if normalize and info.mean is not None and info.std is not None:
        steps.append(Normalize(info.mean, info.std))
    if train and cutout > 0:
        steps.append(Cutout(cutout))
    if train and erasing > 0:
        steps.append(RandomErasing(erasing))
    return Compose(steps)


# --------------------------------------------------------------------------------------------
# Batch mixing (labels change too): mixup and CutMix
# --------------------------------------------------------------------------------------------


def sample_lam(alpha: float) -> float:
    """``lam ~ Beta(alpha, alpha)`` drawn with torch from the global CPU generator."""
    if not alpha > 0:
        raise ValueError(f"the Beta(alpha, alpha) of mixup/CutMix needs alpha > 0, got {alpha}")
    a = torch.tensor(float(alpha), dtype=torch.float64)
    return float(torch.distributions.Beta(a, a).sample())


def mixup_batch(
    x: torch.Tensor, y: torch.Tensor, alpha: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]:
    """mixup (Zhang et al., 2018): blend the batch with a shuffled copy of itself.

    ``lam ~ Beta(alpha, alpha)`` and a permutation ``j`` of the batch (global CPU generator);
    ``x_mixed = lam * x + (1 - lam) * x[j]``. Train on
    ``lam * L(f(x_mixed), y_a) + (1 - lam) * L(f(x_mixed), y_b)``.

    Args:
        x: float inputs (B, ...): images (B, C, H, W) or feature vectors (B, F).
        y: integer labels (B,).
        alpha: the Beta parameter (> 0); 0.2 to 1 is usual.

    Returns:
        ``(x_mixed, y_a, y_b, lam)``: ``y_a = y``, ``y_b = y[j]``, ``lam`` a float.
    """
    if not x.is_floating_point():
        raise TypeError("mixup_batch needs float inputs (normalised images or features)")
    lam = sample_lam(alpha)
    perm = torch.randperm(x.shape[0]).to(x.device)  # (B,)
    mixed = x * lam + x[perm] * (1.0 - lam)
    return mixed, y, y[perm], lam


def cutmix_box(h: int, w: int, lam: float) -> tuple[int, int, int, int]:
    """The CutMix box ``(y0, y1, x0, x1)`` for ``lam``: sides ``sqrt(1 - lam) * (H, W)`` at a
    uniform centre (global CPU generator), clipped at the borders."""
    cut = math.sqrt(1.0 - lam)
    ch, cw = int(h * cut), int(w * cut)
    cy = int(torch.randint(0, h, (1,)).item())
    cx = int(torch.randint(0, w, (1,)).item())
    y0, y1 = max(cy - ch // 2, 0), min(cy + ch // 2, h)
    x0, x1 = max(cx - cw // 2, 0), min(cx + cw // 2, w)
    return y0, y1, x0, x1


def cutmix_batch(
    x: torch.Tensor, y: torch.Tensor, alpha: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]:
    """CutMix (Yun et al., 2019): paste a box from a shuffled copy of the batch into each image.

    ``lam ~ Beta(alpha, alpha)``; the box (one for the whole batch) has sides ``sqrt(1 - lam)``
    times the image's, a uniform centre and is clipped at the borders; then ``lam`` is corrected
    to the fraction of each image that was kept, ``1 - box_area / (H * W)``.

    Args:
        x: images (B, C, H, W) (any dtype; the input is not modified).
        y: integer labels (B,).
        alpha: the Beta parameter (> 0); 1 in the paper.

    Returns:
        ``(x_mixed, y_a, y_b, lam)`` as :func:`mixup_batch`, with the corrected ``lam``.
    """
    _check_images(x, "cutmix_batch")
    b, _, h, w = x.shape
    lam = sample_lam(alpha)
    perm = torch.randperm(b).to(x.device)  # (B,)
    y0, y1, x0, x1 = cutmix_box(h, w, lam)
    mixed = x.clone()
    mixed[:, :, y0:y1, x0:x1] = x[perm, :, y0:y1, x0:x1]
    lam = 1.0 - (y1 - y0) * (x1 - x0) / (h * w)
    return mixed, y, y[perm], lam
