"""Datasets for generative models: the 2-D ring of Gaussians, paired and unpaired digit translation.

``ring``: a mixture of ``modes`` (8) Gaussians with std 0.02 whose means sit evenly on a circle of
radius 2 (Metz et al. 2017, "Unrolled Generative Adversarial Networks", figure 1; Gulrajani et
al. 2017's toy "8 Gaussians"), the standard picture of mode collapse. x float32 (N, 2), y = the
index of the mode each point was drawn from (so a classifier, or a mode count, can use it).
Kind ``tabular`` with no standardisation: the raw coordinates.

``edges2digits`` (paired, for Pix2Pix, Isola et al. 2017): x = an edge map of a digit image, y = the
image itself, both float32 (N, 1, S, S) in [0, 1]. The edges are the Sobel gradient magnitude
thresholded at ``threshold`` times its per-image maximum (a binary map). Kind ``image_pair``.

``unpaired_digits`` (for CycleGAN, Zhu et al. 2017): domain A = digit images, domain B = other digit
images changed by ``transform``: ``"invert"`` (1 - x) or ``"thicken"`` (a 3x3 grey dilation, i.e.
a max filter). On the training split the two domains come from disjoint halves of the images,
each shuffled independently, so no row of x has its own translation in y; the test split is
paired (y = transform(x)) so a translation can be scored against the truth. Kind
``image_unpaired``, both float32 (N, 1, S, S) in [0, 1].

The digit sources: ``"digits"`` (scikit-learn's 8x8, embedded) or ``"mnist"`` (28x28, from the
data root). ``image_size`` resizes (bilinear, antialiased) first, e.g. 32 for a U-Net that halves
the image five times. The image kinds are stored as float in [0, 1] (the engine's image transform
does not apply to them); a classifier asked to train on them gets a clear error from ``build_task``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F

from archlab.data.base import ArraySplit, DataBundle, DatasetInfo
from archlab.registry import register_dataset
from archlab.utils import ArchlabError

__all__ = ["make_ring", "edge_map", "thicken", "ring", "edges2digits", "unpaired_digits"]


def make_ring(n_samples: int, modes: int = 8, radius: float = 2.0, std: float = 0.02,
              generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``n_samples`` points (N, 2) of the ring mixture and their mode indices (N,) (modes equally likely)."""
    y = torch.randint(0, modes, (n_samples,), generator=generator)
    angle = 2 * math.pi * y.double() / modes
    centers = radius * torch.stack([torch.cos(angle), torch.sin(angle)], 1)  # (N, 2)
    x = centers + std * torch.randn(n_samples, 2, generator=generator, dtype=torch.float64)
    return x.float(), y


def ring_centers(modes: int = 8, radius: float = 2.0) -> torch.Tensor:
    """The means of the ring's modes (modes, 2), mode k at angle 2 pi k / modes."""
    angle = 2 * math.pi * torch.arange(modes, dtype=torch.float64) / modes
    return (radius * torch.stack([torch.cos(angle), torch.sin(angle)], 1)).float()


def edge_map(images: torch.Tensor, threshold: float = 0.25) -> torch.Tensor:
    """Binary Sobel edges of images (N, 1, H, W) in [0, 1]: |grad| > threshold * its per-image max."""
    kx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
    kernels = torch.stack([kx, kx.t()])[:, None]  # (2, 1, 3, 3): d/dx, d/dy
    grad = F.conv2d(F.pad(images.float(), (1, 1, 1, 1), mode="replicate"), kernels)  # (N, 2, H, W)
    mag = grad.pow(2).sum(1, keepdim=True).sqrt()  # (N, 1, H, W)
    peak = mag.flatten(1).amax(1).clamp_min(1e-8)[:, None, None, None]
    return (mag > threshold * peak).float()


def thicken(images: torch.Tensor) -> torch.Tensor:
    """A 3x3 grey dilation (max filter) of images (N, C, H, W): strokes one pixel thicker each side."""
    return F.max_pool2d(images, 3, stride=1, padding=1)


def _digit_images(source: str, root: Path, download: bool, image_size: int | None,
                  data_seed: int) -> tuple[ArraySplit, ArraySplit, str]:
    """(train, test) splits of digit images as float32 (N, 1, S, S) in [0, 1], and a source note."""
    if source == "digits":
        from archlab.data.embedded import digits

        bundle = digits(root, download, data_seed=data_seed)
    elif source == "mnist":
        from archlab.data.vision import mnist

        bundle = mnist(root, download)
    else:
        raise ArchlabError(f"source must be 'digits' (8x8, embedded) or 'mnist' (28x28), got {source!r}")

    def prep(split: ArraySplit) -> ArraySplit:
        x = split.x.float() / 255.0  # (N, 1, H, W)
        if image_size is not None and image_size != x.shape[-1]:
            x = F.interpolate(x, size=(image_size, image_size), mode="bilinear", antialias=True,
                              align_corners=False).clamp(0, 1)
        return ArraySplit(x, split.y)

    return prep(bundle.train), prep(bundle.test), bundle.info.source


def _check_size(image_size: int | None) -> None:
    if image_size is not None and image_size < 4:
        raise ArchlabError(f"image_size must be >= 4 (or null for the source's own size), got {image_size}")


@register_dataset("ring", family="tabular", size="10000",
                  description="generated ring of 8 Gaussians (radius 2, std 0.02): 2-D mode-collapse test")
def ring(root: Path | None = None, download: bool = True, *, n_samples: int = 10000, modes: int = 8,
         radius: float = 2.0, std: float = 0.02, test_split: float = 0.2, data_seed: int = 0) -> DataBundle:
    """The ring mixture: x float32 (N, 2) raw coordinates, y = mode index (N,).

    Args:
        n_samples: points in all (train + test).
        modes: Gaussians on the circle (8).
        radius: radius of the circle of means (2).
        std: standard deviation of each Gaussian (0.02).
        test_split: fraction held out as test.
        data_seed: seed of the draw.
    """
    if modes < 1 or n_samples < 10 or radius <= 0 or std < 0:
        raise ArchlabError(f"ring: need modes >= 1, n_samples >= 10, radius > 0, std >= 0; got modes={modes}, "
                           f"n_samples={n_samples}, radius={radius}, std={std}")
    if not 0.0 < test_split < 1.0:
        raise ArchlabError(f"ring: test_split must be in (0, 1), got {test_split}")
    x, y = make_ring(n_samples, modes, radius, std, torch.Generator().manual_seed(data_seed))
    n_test = max(1, int(round(n_samples * test_split)))
    info = DatasetInfo(name="ring", kind="tabular", input_shape=(2,), num_classes=modes,
                       class_names=[str(k) for k in range(modes)], feature_names=["x1", "x2"],
                       source=f"generated: {modes} Gaussians, radius {radius}, std {std}")
    return DataBundle(info, ArraySplit(x[n_test:], y[n_test:]), None, ArraySplit(x[:n_test], y[:n_test]))


@register_dataset("edges2digits", family="image_pair", size="1797",
                  description="paired: Sobel edge maps -> digit images (Pix2Pix), from digits or MNIST")
def edges2digits(root: Path | None = None, download: bool = True, *,
                 source: Literal["digits", "mnist"] = "digits", image_size: int | None = None,
                 threshold: float = 0.25, data_seed: int = 0) -> DataBundle:
    """Paired edge maps and digits: x = edges float32 (N, 1, S, S) in {0, 1}, y = the image in [0, 1].

    Args:
        source: ``"digits"`` (8x8, embedded) or ``"mnist"`` (28x28).
        image_size: resize to this side first (None: the source's own).
        threshold: edge threshold, a fraction of each image's largest gradient magnitude.
        data_seed: seed of the digits' train/test split.
    """
    _check_size(image_size)
    if not 0.0 < threshold < 1.0:
        raise ArchlabError(f"edges2digits: threshold must be in (0, 1), got {threshold}")
    train, test, note = _digit_images(source, Path(root) if root is not None else Path("."), download,
                                      image_size, data_seed)
    side = train.x.shape[-1]
    info = DatasetInfo(name="edges2digits", kind="image_pair", input_shape=(1, side, side),
                       source=f"{note}: Sobel edges (threshold {threshold}) -> images, {side}x{side}")
    return DataBundle(info, ArraySplit(edge_map(train.x, threshold), train.x), None,
                      ArraySplit(edge_map(test.x, threshold), test.x))


@register_dataset("unpaired_digits", family="image_unpaired", size="1797",
                  description="unpaired: digits -> inverted or thickened digits (CycleGAN), from digits or MNIST")
def unpaired_digits(root: Path | None = None, download: bool = True, *,
                    source: Literal["digits", "mnist"] = "digits", transform: Literal["invert", "thicken"] = "invert",
                    image_size: int | None = None, data_seed: int = 0) -> DataBundle:
    """Two digit domains: x = domain A images, y = domain B images, float32 (N, 1, S, S) in [0, 1].

    Train: A and B from disjoint halves of the training images, independently shuffled (unpaired).
    Test: paired, y = transform(x), to score translations against the truth.

    Args:
        source: ``"digits"`` (8x8, embedded) or ``"mnist"`` (28x28).
        transform: ``"invert"`` (1 - x) or ``"thicken"`` (3x3 max filter).
        image_size: resize to this side first (None: the source's own).
        data_seed: seed of the halves and the shuffles (and of the digits' train/test split).
    """
    _check_size(image_size)
    if transform not in ("invert", "thicken"):
        raise ArchlabError(f"unpaired_digits: transform must be 'invert' or 'thicken', got {transform!r}")
    fn = (lambda t: 1.0 - t) if transform == "invert" else thicken
    train, test, note = _digit_images(source, Path(root) if root is not None else Path("."), download,
                                      image_size, data_seed)
    g = torch.Generator().manual_seed(data_seed)
    perm = torch.randperm(len(train), generator=g)
    half = len(train) // 2
    a, b = perm[:half], perm[half:2 * half]
    b = b[torch.randperm(half, generator=g)]  # B shuffled independently of A
    side = train.x.shape[-1]
    info = DatasetInfo(name="unpaired_digits", kind="image_unpaired", input_shape=(1, side, side),
                       source=f"{note}: A = digits, B = {transform}ed digits (unpaired train, paired test), "
                              f"{side}x{side}")
    return DataBundle(info, ArraySplit(train.x[a], fn(train.x[b])), None, ArraySplit(test.x, fn(test.x)))
