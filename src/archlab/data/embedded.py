"""Offline datasets: scikit-learn's bundled tables and small generated 2-D problems.

Nothing here downloads anything, and each loads in well under a second, so every example and
test can run without a network:

* ``iris``, ``wine``, ``breast_cancer``: scikit-learn's bundled tables (tabular).
* ``digits``: scikit-learn's 1797 8x8 handwritten digits as **images** (1x8x8 uint8, the
  0..16 grey levels scaled to 0..255): what LeNet-5 trains on in the quick demos. MLPs flatten
  images, so the same dataset serves them.
* ``xor``, ``moons``, ``circles``, ``spirals``: generated 2-D classification problems for
  perceptrons, MLPs and decision-boundary plots (seeded by ``data_seed``).

Tabular ``x`` is ``float32`` (N, F), standardised with the training split's mean and std
(kept in ``bundle.feature_stats`` for raw inputs at prediction time; ``standardize=False`` keeps
the raw values); ``y`` is ``int64`` (N,). Every dataset has a fixed,
seeded, stratified train/test split (``test_split=0.2``, ``data_seed=0``), so the test set is the
same in every run; ``load_dataset`` carves the validation set from train.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from archlab.data.base import ArraySplit, DataBundle, DatasetInfo
from archlab.data.vision import channel_stats
from archlab.registry import register_dataset
from archlab.utils import ArchlabError

__all__ = ["stratified_split", "make_xor", "make_moons", "make_circles", "make_spirals"]


def stratified_split(y: np.ndarray, test_split: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded stratified (train_index, test_index): ``test_split`` of every class goes to test."""
    if not 0.0 < test_split < 1.0:
        raise ArchlabError(f"test_split must be between 0 and 1 (exclusive), got {test_split}")
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        n_test = round(len(idx) * test_split)
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    # Shuffle across classes too, so a split is never sorted by label.
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))


def _tabular_bundle(
    name: str,
    x: np.ndarray,
    y: np.ndarray,
    *,
    class_names: list[str],
    feature_names: list[str],
    source: str,
    test_split: float,
    data_seed: int,
    standardize: bool,
) -> DataBundle:
    """Split, standardise (with train statistics) and wrap a table: x (N, F), y (N,)."""
    tr, te = stratified_split(y, test_split, data_seed)
    x = np.asarray(x, dtype=np.float64)
    stats = None
    if standardize:
        mean = x[tr].mean(axis=0)
        std = x[tr].std(axis=0)
        std[std < 1e-12] = 1.0  # constant columns stay 0 rather than NaN
        x = (x - mean) / std
        stats = (torch.from_numpy(mean.astype(np.float32)), torch.from_numpy(std.astype(np.float32)))
    xt = torch.from_numpy(x.astype(np.float32))
    yt = torch.from_numpy(np.asarray(y, dtype=np.int64))
    train = ArraySplit(xt[torch.from_numpy(tr)], yt[torch.from_numpy(tr)])
    test = ArraySplit(xt[torch.from_numpy(te)], yt[torch.from_numpy(te)])
    info = DatasetInfo(
        name=name, kind="tabular", input_shape=(x.shape[1],), num_classes=len(class_names),
        class_names=list(class_names), feature_names=list(feature_names), source=source,
    )
    return DataBundle(info, train, None, test, feature_stats=stats)


# --------------------------------------------------------------------------------------------
# scikit-learn's bundled datasets
# --------------------------------------------------------------------------------------------


def _sklearn_table(name: str, loader_name: str, test_split: float, data_seed: int, standardize: bool) -> DataBundle:
    import sklearn.datasets

    d = getattr(sklearn.datasets, loader_name)()
    return _tabular_bundle(
        name, d.data, d.target, class_names=[str(n) for n in d.target_names],
        feature_names=[str(n) for n in d.feature_names], source=f"scikit-learn {loader_name}",
        test_split=test_split, data_seed=data_seed, standardize=standardize,
    )


@register_dataset("iris", family="tabular", size="150", description="Fisher's iris: 4 features, 3 species")
def iris(root: Path | None = None, download: bool = True, *, test_split: float = 0.2, data_seed: int = 0,
         standardize: bool = True) -> DataBundle:
    """Iris (Fisher 1936): 150 flowers, 4 measurements, 3 species. x float32 (N, 4)."""
    return _sklearn_table("iris", "load_iris", test_split, data_seed, standardize)


@register_dataset("wine", family="tabular", size="178", description="UCI wine: 13 chemical features, 3 cultivars")
def wine(root: Path | None = None, download: bool = True, *, test_split: float = 0.2, data_seed: int = 0,
         standardize: bool = True) -> DataBundle:
    """UCI wine recognition: 178 wines, 13 features, 3 cultivars. x float32 (N, 13)."""
    return _sklearn_table("wine", "load_wine", test_split, data_seed, standardize)


@register_dataset("breast_cancer", family="tabular", size="569",
                  description="Wisconsin breast cancer: 30 features, malignant/benign")
def breast_cancer(root: Path | None = None, download: bool = True, *, test_split: float = 0.2, data_seed: int = 0,
                  standardize: bool = True) -> DataBundle:
    """Wisconsin diagnostic breast cancer: 569 samples, 30 features, 2 classes. x float32 (N, 30)."""
    return _sklearn_table("breast_cancer", "load_breast_cancer", test_split, data_seed, standardize)


@register_dataset("digits", family="image", size="1797",
                  description="scikit-learn's 8x8 handwritten digits as 1x8x8 images, 10 classes")
def digits(root: Path | None = None, download: bool = True, *, test_split: float = 0.2, data_seed: int = 0) -> DataBundle:
    """scikit-learn's digits (UCI optdigits test set) as images.

    x uint8 (N, 1, 8, 8): the 0..16 grey levels scaled to 0..255; mean/std from train images.
    Train 1437 / test 360 with the default split.
    """
    from sklearn.datasets import load_digits

    d = load_digits()
    images = np.rint(d.images * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)[:, None]  # (N, 1, 8, 8)
    target = d.target.astype(np.int64)
    tr, te = stratified_split(target, test_split, data_seed)
    x, y = torch.from_numpy(images), torch.from_numpy(target)
    train = ArraySplit(x[torch.from_numpy(tr)], y[torch.from_numpy(tr)])
    test = ArraySplit(x[torch.from_numpy(te)], y[torch.from_numpy(te)])
    mean, std = channel_stats(train.x)
    info = DatasetInfo(
        name="digits", kind="image", input_shape=(1, 8, 8), num_classes=10,
        class_names=[str(i) for i in range(10)], mean=mean, std=std, source="scikit-learn load_digits",
    )
    return DataBundle(info, train, None, test)


# --------------------------------------------------------------------------------------------
# Generated 2-D problems
# --------------------------------------------------------------------------------------------


def _check(n_samples: int, noise: float, classes: int = 2) -> None:
    if n_samples < 5 * classes:
        raise ArchlabError(f"n_samples must be at least {5 * classes}, got {n_samples}")
    if noise < 0:
        raise ArchlabError(f"noise must be >= 0, got {noise}")


def _per_class(n_samples: int, classes: int) -> list[int]:
    """Class sizes that add up to n_samples (the first ones get the remainder)."""
    base, extra = divmod(n_samples, classes)
    return [base + (k < extra) for k in range(classes)]


def make_xor(n_samples: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Points uniform in [-1, 1]^2, label = (x1 > 0) XOR (x2 > 0), then Gaussian noise on x."""
    x = rng.uniform(-1.0, 1.0, size=(n_samples, 2))
    y = ((x[:, 0] > 0) ^ (x[:, 1] > 0)).astype(np.int64)
    return x + noise * rng.standard_normal(x.shape), y


def make_moons(n_samples: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaving half circles (as scikit-learn's make_moons), Gaussian noise on x."""
    n0, n1 = _per_class(n_samples, 2)
    t0, t1 = np.linspace(0, math.pi, n0), np.linspace(0, math.pi, n1)
    upper = np.stack([np.cos(t0), np.sin(t0)], 1)
    lower = np.stack([1 - np.cos(t1), 0.5 - np.sin(t1)], 1)
    x = np.concatenate([upper, lower])
    y = np.repeat([0, 1], [n0, n1])
    return x + noise * rng.standard_normal(x.shape), y


def make_circles(
    n_samples: int, noise: float, rng: np.random.Generator, factor: float = 0.5
) -> tuple[np.ndarray, np.ndarray]:
    """A circle of radius 1 (class 0) around one of radius ``factor`` (class 1), noise on x."""
    n0, n1 = _per_class(n_samples, 2)
    t0 = np.linspace(0, 2 * math.pi, n0, endpoint=False)
    t1 = np.linspace(0, 2 * math.pi, n1, endpoint=False)
    x = np.concatenate([np.stack([np.cos(t0), np.sin(t0)], 1), factor * np.stack([np.cos(t1), np.sin(t1)], 1)])
    y = np.repeat([0, 1], [n0, n1])
    return x + noise * rng.standard_normal(x.shape), y


def make_spirals(
    n_samples: int, noise: float, rng: np.random.Generator, classes: int = 2, turns: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """``classes`` interleaved spiral arms: arm k at angle 2*pi*k/classes + 2*pi*turns*r, radius r.

    The arms wind ``turns`` times from the centre to radius 1; noise is Gaussian on x.
    """
    xs, ys = [], []
    for k, n in enumerate(_per_class(n_samples, classes)):
        r = np.linspace(0.05, 1.0, n)
        theta = 2 * math.pi * k / classes + 2 * math.pi * turns * r
        xs.append(np.stack([r * np.sin(theta), r * np.cos(theta)], 1))
        ys.append(np.full(n, k))
    x = np.concatenate(xs)
    return x + noise * rng.standard_normal(x.shape), np.concatenate(ys)


def _generated(name: str, x: np.ndarray, y: np.ndarray, classes: int, test_split: float, data_seed: int,
               standardize: bool) -> DataBundle:
    return _tabular_bundle(
        name, x, y, class_names=[str(k) for k in range(classes)], feature_names=["x1", "x2"], source="generated",
        test_split=test_split, data_seed=data_seed, standardize=standardize,
    )


@register_dataset("xor", family="tabular", size="1000", description="generated XOR: 2 features, 2 classes")
def xor(root: Path | None = None, download: bool = True, *, n_samples: int = 1000, noise: float = 0.1,
        test_split: float = 0.2, data_seed: int = 0, standardize: bool = True) -> DataBundle:
    """XOR of the signs of two uniform features: the problem a single perceptron cannot solve.

    Args:
        n_samples: points in all (train + test).
        noise: std of Gaussian noise added to the points (labels come from the clean points).
        test_split, data_seed, standardize: see the module docstring.
    """
    _check(n_samples, noise)
    x, y = make_xor(n_samples, noise, np.random.default_rng(data_seed))
    return _generated("xor", x, y, 2, test_split, data_seed, standardize)


@register_dataset("moons", family="tabular", size="1000", description="generated two moons: 2 features, 2 classes")
def moons(root: Path | None = None, download: bool = True, *, n_samples: int = 1000, noise: float = 0.1,
          test_split: float = 0.2, data_seed: int = 0, standardize: bool = True) -> DataBundle:
    """Two interleaving half moons. x float32 (N, 2).

    Args:
        n_samples: points in all. noise: std of Gaussian noise on the points.
    """
    _check(n_samples, noise)
    x, y = make_moons(n_samples, noise, np.random.default_rng(data_seed))
    return _generated("moons", x, y, 2, test_split, data_seed, standardize)


@register_dataset("circles", family="tabular", size="1000", description="generated concentric circles: 2 classes")
def circles(root: Path | None = None, download: bool = True, *, n_samples: int = 1000, noise: float = 0.05,
            factor: float = 0.5, test_split: float = 0.2, data_seed: int = 0, standardize: bool = True) -> DataBundle:
    """A circle inside another. x float32 (N, 2).

    Args:
        n_samples: points in all. noise: std of Gaussian noise. factor: inner radius (outer is 1).
    """
    _check(n_samples, noise)
    if not 0 < factor < 1:
        raise ArchlabError(f"circles: factor must be between 0 and 1, got {factor}")
    x, y = make_circles(n_samples, noise, np.random.default_rng(data_seed), factor)
    return _generated("circles", x, y, 2, test_split, data_seed, standardize)


@register_dataset("spirals", family="tabular", size="1000", description="generated interleaved spirals: 2 or 3 arms")
def spirals(root: Path | None = None, download: bool = True, *, n_samples: int = 1000, noise: float = 0.05,
            classes: int = 2, turns: float = 1.0, test_split: float = 0.2, data_seed: int = 0,
            standardize: bool = True) -> DataBundle:
    """Interleaved spiral arms, one class per arm. x float32 (N, 2).

    Args:
        n_samples: points in all. noise: std of Gaussian noise.
        classes: number of arms (2 or 3 are the usual problems).
        turns: how many times each arm winds around the centre.
    """
    if classes < 2:
        raise ArchlabError(f"spirals: classes must be at least 2, got {classes}")
    _check(n_samples, noise, classes)
    x, y = make_spirals(n_samples, noise, np.random.default_rng(data_seed), classes, turns)
    return _generated("spirals", x, y, classes, test_split, data_seed, standardize)
