"""Measures of generative models: FID-MNIST, classifier-judged class accuracy and coverage, modes
recovered on the ring of Gaussians, bits per dimension.

**Frechet distance** between two Gaussians N(mu_1, S_1) and N(mu_2, S_2) (Dowson & Landau 1982;
the 2-Wasserstein distance between them, squared)::

    d^2 = ||mu_1 - mu_2||^2 + tr(S_1) + tr(S_2) - 2 tr((S_1 S_2)^(1/2))

:func:`frechet_distance` computes ``tr((S_1 S_2)^(1/2))`` as ``sum_i sqrt(lambda_i)`` with lambda_i
the eigenvalues of the symmetric PSD matrix ``S_1^(1/2) S_2 S_1^(1/2)`` (similar to S_1 S_2, so it
has the same spectrum), which needs only symmetric eigendecompositions and no complex square root.
In one dimension ``d^2 = (m_1 - m_2)^2 + (s_1 - s_2)^2``.

**FID-MNIST** (:func:`fid_mnist`): Heusel et al. (2017)'s recipe (fit a Gaussian to the features of
each image set, report their Frechet distance) with the 128-unit penultimate layer of a small
archlab MNIST classifier (the *judge*, a ``simple_cnn``) in place of Inception-v3's 2048-unit pool
layer. **Not comparable with Inception FID** or with any other "MNIST FID" (different network,
features and scale); compare FID-MNIST values only with each other, at the same number of images
(FID is biased upwards at small N; Chong & Forsyth 2020): use >= 2000 images per set where you can,
10000 for results. 8x8 ``digits`` images get their own judge (:data:`JUDGES`), so the same function
gives an "FID-digits" on them. For scale (committed judges): the two halves of the MNIST test set
(5000 images each) are at FID-MNIST 11.3 from each other, uniform noise at 3406; the two halves of
the digits test split (180 each) at FID-digits 8.5, noise at 218.

**Judges** (:func:`load_judge`): one classifier per image shape, trained once by
:func:`train_judge` (seeded, CPU) and shipped in ``assets/`` (safetensors + a JSON record with the
test accuracy). Images go in as floats in [0, 1] (uint8 0..255 is accepted and scaled), the range
every generative method's ``sample`` returns.

* :func:`class_accuracy`: the share of samples that the judge assigns to the class they were
  generated for (conditional GANs: "judged the intended class").
* :func:`class_coverage`: how evenly the samples spread over the classes: ``coverage`` = share of
  the K classes that receive at least ``min_share`` of the samples (default 1%, a tenth of the
  uniform share for K = 10); ``entropy`` = H(p) / log K of the judged-class histogram p (1 when
  every class is equally frequent, 0 when all samples are judged one class: mode collapse).

**Ring of Gaussians** (:func:`ring_modes`): Metz et al. (2017) train GANs on a mixture of 8 2-D
Gaussians on a circle and count the modes the generator covers. Following Srivastava et al.
(2017, VEEGAN), a sample is *high quality* when it lies within 3 standard deviations of its
nearest mode centre; a mode is *recovered* when it receives at least ``min_share`` of all samples
as high-quality samples (Lin et al. 2018, PacGAN, call a mode lost when fewer than 20 of 2500
samples, 0.8%, land there; ``min_share=0`` gives "at least one sample").

**Bits per dimension** (:func:`bits_per_dim`): ``nll / (D ln 2)`` for a negative log-likelihood in
nats of D-dimensional data; for 8-bit images the density must be that of the pixel values in
[0, 256) (pass ``levels=256`` when the NLL is of the data scaled to [0, 1], which adds
``D log 256`` nats).

References:
    M. Heusel, H. Ramsauer, T. Unterthiner, B. Nessler, S. Hochreiter, "GANs trained by a two
    time-scale update rule converge to a local Nash equilibrium", NeurIPS 2017,
    https://arxiv.org/abs/1706.08500 (FID)
    D. C. Dowson, B. V. Landau, "The Frechet distance between multivariate normal distributions",
    J. Multivariate Analysis 12(3), 1982, https://doi.org/10.1016/0047-259X(82)90077-X
    M. J. Chong, D. Forsyth, "Effectively unbiased FID and Inception Score and where to find
    them", CVPR 2020, https://arxiv.org/abs/1911.07023
    L. Metz, B. Poole, D. Pfau, J. Sohl-Dickstein, "Unrolled generative adversarial networks",
    ICLR 2017, https://arxiv.org/abs/1611.02163
    A. Srivastava, L. Valkov, C. Russell, M. U. Gutmann, C. Sutton, "VEEGAN: reducing mode
    collapse in GANs using implicit variational learning", NeurIPS 2017, https://arxiv.org/abs/1705.07761
    Z. Lin, A. Khetan, G. Fanti, S. Oh, "PacGAN: the power of two samples in generative
    adversarial networks", NeurIPS 2018, https://arxiv.org/abs/1712.04086
    L. Theis, A. van den Oord, M. Bethge, "A note on the evaluation of generative models",
    ICLR 2016, https://arxiv.org/abs/1511.01844 (bits per dimension of discrete data)

Deviations from the papers:
    - FID's feature network is the archlab judge, not Inception-v3 (see above): the numbers are on
      their own scale.
    - The judges are trained with random +-2 pixel translations (MNIST) so that slightly
      off-centre samples are still judged by their shape.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from archlab.utils import ArchlabError

__all__ = [
    "ASSETS",
    "JUDGES",
    "Judge",
    "JudgeSpec",
    "bits_per_dim",
    "class_accuracy",
    "class_coverage",
    "feature_stats",
    "fid_mnist",
    "frechet_distance",
    "judge_for",
    "judge_predict",
    "load_judge",
    "ring_modes",
    "train_judge",
]

#: Where the judges' weights and records live (shipped as package data).
ASSETS = Path(__file__).resolve().parent / "assets"


@dataclass(frozen=True)
class JudgeSpec:
    """How a judge is built and trained (``simple_cnn`` options and training settings).

    Attributes:
        dataset: archlab dataset it is trained on (its train split; tested on its test split).
        image_size: square image side it judges.
        channels: ``simple_cnn`` block channels (Conv3x3-BN-ReLU-MaxPool each).
        hidden_dim: width of the penultimate layer: the FID features.
        dropout: dropout before the head's linear layers.
        epochs: training epochs (Adam, cosine learning rate to 0).
        batch_size: training batch size.
        lr: peak learning rate.
        weight_decay: AdamW weight decay.
        shift: random translation of up to this many pixels in training (0: none).
    """

    dataset: str
    image_size: int
    channels: tuple[int, ...]
    hidden_dim: int
    dropout: float = 0.0
    epochs: int = 4
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 1e-4
    shift: int = 0
    model_options: dict[str, Any] = field(default_factory=dict)


#: The judges, by name. ``mnist`` judges 1x28x28 images, ``digits`` 1x8x8 images.
JUDGES: dict[str, JudgeSpec] = {
    "mnist": JudgeSpec("mnist", 28, (16, 32, 64), 128, dropout=0.1, epochs=4, shift=2),
    "digits": JudgeSpec("digits", 8, (32, 64), 64, dropout=0.2, epochs=20, batch_size=64, lr=2e-3),
}


class Judge(nn.Module):
    """A trained classifier used to measure samples: logits and penultimate-layer features.

    Args:
        net: a ``SimpleCNN`` with a hidden head layer.
        name: the judge's name in :data:`JUDGES`.
        record: the training record (test accuracy...), as in the JSON beside the weights.

    Shapes:
        x: (B, 1, S, S) in [0, 1] float (uint8 0..255 is scaled), S the judge's image side.
    """

    def __init__(self, net: nn.Module, name: str, record: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.net = net
        self.name = name
        self.record = dict(record or {})

    def _prepare(self, x: Tensor) -> Tensor:
        side = self.net.image_size
        if x.ndim == 3:
            x = x.unsqueeze(1)  # (B, H, W) -> (B, 1, H, W)
        if x.ndim != 4 or tuple(x.shape[1:]) != (1, side, side):
            raise ArchlabError(
                f"the {self.name!r} judge takes (B, 1, {side}, {side}) images, got {tuple(x.shape)}"
            )
        if x.dtype == torch.uint8:
            x = x.float() / 255.0
        return x.float().to(next(self.net.parameters()).device)

    def features(self, x: Tensor) -> Tensor:
        """(B, hidden_dim) penultimate activations (after the ReLU): the FID features."""
        net = self.net
        h = net.pool(net.forward_features(self._prepare(x)))  # (B, C * H' * W')
        return net.head[:-1](h)  # (B, hidden_dim)

    def forward(self, x: Tensor) -> Tensor:
        """(B, 10) logits."""
        return self.net(self._prepare(x))


def _build_net(spec: JudgeSpec) -> nn.Module:
    import archlab.models  # noqa: F401  (registers simple_cnn)
    from archlab.registry import create_model

    return create_model(
        "simple_cnn", in_channels=1, num_classes=10, image_size=spec.image_size, channels=spec.channels,
        head="flatten", hidden_dim=spec.hidden_dim, dropout=spec.dropout, **spec.model_options,
    )  # fmt: skip


def _asset_paths(name: str, out_dir: Path | None = None) -> tuple[Path, Path]:
    d = Path(out_dir) if out_dir is not None else ASSETS
    return d / f"{name}_judge.safetensors", d / f"{name}_judge.json"


@lru_cache(maxsize=4)
def _load_cached(name: str) -> Judge:
    from safetensors.torch import load_file

    if name not in JUDGES:
        raise ArchlabError(f"no judge named {name!r}; the judges are: {', '.join(JUDGES)}")
    weights, record_path = _asset_paths(name)
    if not weights.is_file():
        raise ArchlabError(
            f"the {name!r} judge's weights {weights} are missing; train them with "
            f"`python -m archlab.models.generative.measures train-judge {name}`"
        )
    net = _build_net(JUDGES[name])
    net.load_state_dict(load_file(str(weights)))
    record = json.loads(record_path.read_text()) if record_path.is_file() else {}
    judge = Judge(net, name, record).eval()
    for p in judge.parameters():
        p.requires_grad_(False)
    return judge


def load_judge(name: str = "mnist") -> Judge:
    """The committed judge ``name`` (``"mnist"`` or ``"digits"``), in eval mode, on the CPU (cached)."""
    return _load_cached(name)


def judge_for(images: Tensor | np.ndarray) -> Judge:
    """The judge for images of this shape: 28x28 -> ``mnist``, 8x8 -> ``digits``."""
    shape = tuple(images.shape)
    side = shape[-1] if len(shape) >= 3 else None
    for name, spec in JUDGES.items():
        if side == spec.image_size and shape[-2] == side and (len(shape) == 3 or shape[-3] == 1):
            return load_judge(name)
    sides = ", ".join(f"1x{s.image_size}x{s.image_size} ({n})" for n, s in JUDGES.items())
    raise ArchlabError(f"no judge for images of shape {shape}: there are judges for {sides}")


def _as_tensor(x: Tensor | np.ndarray) -> Tensor:
    return x if isinstance(x, Tensor) else torch.as_tensor(np.asarray(x))


@torch.no_grad()
def _batched(fn: Any, images: Tensor, batch_size: int) -> Tensor:
    return torch.cat([fn(images[i : i + batch_size]).float().cpu() for i in range(0, len(images), batch_size)])


def judge_predict(images: Tensor | np.ndarray, *, judge: Judge | None = None, batch_size: int = 500) -> Tensor:
    """(N,) int64 class the judge assigns to each image (images (N, 1, S, S) in [0, 1])."""
    images = _as_tensor(images)
    judge = judge or judge_for(images)
    return _batched(judge, images, batch_size).argmax(-1)


# ----------------------------------------------------------------------------------------------
# Frechet distance and FID-MNIST


def _sqrt_psd(a: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric PSD matrix (negative round-off eigenvalues set to 0)."""
    w, v = np.linalg.eigh((a + a.T) / 2)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def frechet_distance(mu1: Any, sigma1: Any, mu2: Any, sigma2: Any) -> float:
    """Squared Frechet (2-Wasserstein) distance between N(mu1, sigma1) and N(mu2, sigma2).

    ``||mu1 - mu2||^2 + tr(sigma1) + tr(sigma2) - 2 tr((sigma1 sigma2)^(1/2))``, with the last
    trace from the eigenvalues of ``sigma1^(1/2) sigma2 sigma1^(1/2)`` (see the module docstring),
    in float64. Equal Gaussians give 0; a tiny negative round-off result is returned as 0.

    Args:
        mu1, mu2: (D,) means (NumPy arrays, tensors or sequences; scalars for D = 1).
        sigma1, sigma2: (D, D) covariance matrices (variances for D = 1).
    """
    m1, m2 = (np.atleast_1d(np.asarray(_np(m), dtype=np.float64)) for m in (mu1, mu2))
    s1, s2 = (np.atleast_2d(np.asarray(_np(s), dtype=np.float64)) for s in (sigma1, sigma2))
    if m1.shape != m2.shape or s1.shape != s2.shape or s1.shape != (m1.size, m1.size):
        raise ValueError(
            f"frechet_distance needs means (D,) and covariances (D, D) of one D; got means "
            f"{m1.shape}, {m2.shape} and covariances {s1.shape}, {s2.shape}"
        )
    if not (np.isfinite(m1).all() and np.isfinite(m2).all() and np.isfinite(s1).all() and np.isfinite(s2).all()):
        raise ValueError("frechet_distance got non-finite means or covariances (NaN samples?)")
    r1 = _sqrt_psd(s1)
    lam = np.linalg.eigvalsh(r1 @ s2 @ r1)  # the spectrum of sigma1 sigma2
    tr_covmean = float(np.sqrt(np.clip(lam, 0.0, None)).sum())
    d = float(((m1 - m2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2.0 * tr_covmean)
    return max(d, 0.0)


def _np(x: Any) -> Any:
    return x.detach().cpu().double().numpy() if isinstance(x, Tensor) else x


def feature_stats(images: Tensor | np.ndarray, *, judge: Judge | None = None,
                  batch_size: int = 500) -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and covariance (D, D) (float64) of the judge's features of ``images``.

    Compute the real data's statistics once and pass them to :func:`frechet_distance` when
    comparing many models against the same test set.
    """
    images = _as_tensor(images)
    if len(images) < 2:
        raise ValueError(f"feature statistics need at least 2 images, got {len(images)}")
    judge = judge or judge_for(images)
    feats = _batched(judge.features, images, batch_size).double().numpy()  # (N, D)
    return feats.mean(0), np.cov(feats, rowvar=False)


def fid_mnist(images_a: Tensor | np.ndarray, images_b: Tensor | np.ndarray, *, judge: Judge | None = None,
              batch_size: int = 500) -> float:
    """FID-MNIST: the Frechet distance between Gaussians fitted to judge features of two image sets.

    NOT comparable with Inception FID (see the module docstring); compare values computed with the
    same judge and the same number of images only.

    Args:
        images_a, images_b: (N, 1, 28, 28) images in [0, 1] (or uint8); 8x8 images use the
            ``digits`` judge. Use thousands of images per set: the estimate is biased upwards at small N.
        judge: a :class:`Judge`; default chosen from the image shape (:func:`judge_for`).
        batch_size: images per forward pass.
    """
    images_a, images_b = _as_tensor(images_a), _as_tensor(images_b)
    if tuple(images_a.shape[1:]) != tuple(images_b.shape[1:]):
        raise ValueError(f"fid_mnist compares images of one shape, got {tuple(images_a.shape)} and "
                         f"{tuple(images_b.shape)}")
    judge = judge or judge_for(images_a)
    return frechet_distance(*feature_stats(images_a, judge=judge, batch_size=batch_size),
                            *feature_stats(images_b, judge=judge, batch_size=batch_size))


# ----------------------------------------------------------------------------------------------
# class accuracy and coverage


def class_accuracy(images: Tensor | np.ndarray, intended_labels: Tensor | np.ndarray, *,
                   judge: Judge | None = None) -> float:
    """Share of ``images`` the judge assigns to their intended class (conditional generation).

    Args:
        images: (N, 1, S, S) samples in [0, 1].
        intended_labels: (N,) the class each sample was generated for.
    """
    labels = _as_tensor(intended_labels).long().flatten().cpu()
    if len(labels) != len(images):
        raise ValueError(f"class_accuracy got {len(images)} images and {len(labels)} labels")
    if len(labels) == 0:
        raise ValueError("class_accuracy needs at least one image")
    return float((judge_predict(images, judge=judge) == labels).float().mean())


def class_coverage(images: Tensor | np.ndarray, *, min_share: float = 0.01, num_classes: int = 10,
                   judge: Judge | None = None) -> dict[str, Any]:
    """How the judged classes of ``images`` spread over the ``num_classes`` classes.

    Args:
        images: (N, 1, S, S) samples in [0, 1].
        min_share: a class is covered when at least this share of the samples is judged to be it.
        num_classes: K.

    Returns:
        ``coverage`` (share of the K classes covered), ``classes_covered`` (count), ``entropy``
        (H(p) / log K of the judged-class histogram, in [0, 1]) and ``histogram`` (the K shares p).
    """
    pred = judge_predict(images, judge=judge)
    if len(pred) == 0:
        raise ValueError("class_coverage needs at least one image")
    p = torch.bincount(pred, minlength=num_classes).double() / len(pred)  # (K,)
    nz = p[p > 0]
    entropy = float(-(nz * nz.log()).sum() / math.log(num_classes))
    covered = int((p >= min_share).sum()) if min_share > 0 else int((p > 0).sum())
    return {"coverage": covered / num_classes, "classes_covered": covered, "entropy": entropy,
            "histogram": [float(v) for v in p]}


# ----------------------------------------------------------------------------------------------
# the ring of Gaussians, bits per dimension


def ring_modes(samples: Tensor | np.ndarray, centers: Tensor | np.ndarray, std: float, *,
               min_share: float = 0.01, radius_stds: float = 3.0) -> dict[str, Any]:
    """Modes of a Gaussian mixture recovered by ``samples`` (Metz et al. 2017; VEEGAN's criteria).

    A sample is high quality when within ``radius_stds`` standard deviations of its nearest
    centre; a mode is recovered when at least ``min_share`` of all samples (and at least one) are
    high-quality samples nearest to it.

    Args:
        samples: (N, 2) generated points (any dimension D works).
        centers: (K, D) mode centres.
        std: the modes' standard deviation.
        min_share: share of all samples a mode needs (0: one sample is enough).
        radius_stds: the high-quality radius, in standard deviations (3 in VEEGAN).

    Returns:
        ``modes`` (recovered count), ``num_modes`` (K), ``high_quality`` (share of samples within
        the radius of a centre) and ``per_mode`` (high-quality sample count per mode).
    """
    x = _as_tensor(samples).double().cpu()
    c = _as_tensor(centers).double().cpu()
    if x.ndim != 2 or c.ndim != 2 or x.shape[1] != c.shape[1]:
        raise ValueError(f"ring_modes needs samples (N, D) and centers (K, D), got {tuple(x.shape)} and "
                         f"{tuple(c.shape)}")
    if len(x) == 0:
        raise ValueError("ring_modes needs at least one sample")
    finite = torch.isfinite(x).all(1)  # a NaN sample is never high quality
    dist = torch.cdist(x.nan_to_num(nan=float("inf")), c)  # (N, K)
    nearest_d, nearest = dist.min(1)  # (N,), (N,)
    good = finite & (nearest_d <= radius_stds * std)
    per_mode = torch.bincount(nearest[good], minlength=len(c))  # (K,)
    need = max(1, math.ceil(min_share * len(x)))
    return {"modes": int((per_mode >= need).sum()), "num_modes": len(c),
            "high_quality": float(good.double().mean()), "per_mode": [int(v) for v in per_mode]}


def bits_per_dim(nll_nats: Any, num_dims: int, *, levels: int | None = None) -> Any:
    """Bits per dimension of a negative log-likelihood: ``nll / (D ln 2)``.

    Args:
        nll_nats: NLL per example in nats (a float, array or tensor).
        num_dims: D, e.g. 784 for 1x28x28 images.
        levels: if the NLL is of the data scaled to [0, 1] by ``x / levels`` (e.g. 256 for 8-bit
            pixels), add ``D log(levels)`` to express it on the integer scale, as published
            bits-per-dim figures are (Theis et al. 2016). None: the NLL is already on that scale.
    """
    if num_dims < 1:
        raise ValueError(f"num_dims must be >= 1, got {num_dims}")
    nll = nll_nats + (num_dims * math.log(levels) if levels else 0.0)
    return nll / (num_dims * math.log(2.0))


# ----------------------------------------------------------------------------------------------
# training the judges


def _shift_batch(x: Tensor, shift: int, g: torch.Generator) -> Tensor:
    """Translate each image by up to ``shift`` pixels (integer offsets, zero fill)."""
    if shift <= 0:
        return x
    b, _, h, w = x.shape
    padded = F.pad(x, (shift, shift, shift, shift))  # (B, C, H + 2s, W + 2s)
    dy = torch.randint(0, 2 * shift + 1, (b,), generator=g)
    dx = torch.randint(0, 2 * shift + 1, (b,), generator=g)
    rows = (dy[:, None] + torch.arange(h))[:, :, None]  # (B, H, 1)
    cols = (dx[:, None] + torch.arange(w))[:, None, :]  # (B, 1, W)
    idx = torch.arange(b)[:, None, None]
    return padded.permute(0, 2, 3, 1)[idx, rows, cols].permute(0, 3, 1, 2)  # (B, C, H, W)


@torch.no_grad()
def _accuracy(net: nn.Module, x: Tensor, y: Tensor, batch_size: int = 1000) -> float:
    net.eval()
    pred = torch.cat([net(x[i : i + batch_size].float() / 255.0).argmax(-1) for i in range(0, len(x), batch_size)])
    return float((pred == y).float().mean())


def train_judge(name: str = "mnist", *, root: str | Path | None = None, out_dir: str | Path | None = None,
                seed: int = 0, epochs: int | None = None, verbose: bool = True) -> dict[str, Any]:
    """Train the judge ``name`` on its dataset's train split and save it (weights + JSON record).

    Seeded and on the CPU: the same seed, torch version and thread count give the same weights.
    AdamW with a cosine learning rate (no warm-up), cross-entropy, the spec's random shifts.

    Args:
        name: a key of :data:`JUDGES`.
        root: data folder holding the dataset (default: :func:`archlab.utils.find_data_root`).
        out_dir: where to write ``<name>_judge.safetensors`` / ``.json`` (default: the package's
            ``assets/``, where :func:`load_judge` reads them).
        seed: seed of the initialisation, the batch order and the shifts.
        epochs: overrides the spec's epochs.
        verbose: print one line per epoch.

    Returns:
        the record written to the JSON file (spec, test accuracy, wall time, sizes).
    """
    from safetensors.torch import save_file

    from archlab.data import load_dataset
    from archlab.utils import find_data_root

    if name not in JUDGES:
        raise ArchlabError(f"no judge named {name!r}; the judges are: {', '.join(JUDGES)}")
    spec = JUDGES[name]
    epochs = spec.epochs if epochs is None else epochs
    if root is None and spec.dataset == "mnist":
        root = find_data_root("mnist")
    bundle = load_dataset(spec.dataset, root, val_split=0.0, download=False)
    x_tr, y_tr = bundle.train.x, bundle.train.y
    x_te, y_te = bundle.test.x, bundle.test.y

    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    net = _build_net(spec)
    opt = torch.optim.AdamW(net.parameters(), lr=spec.lr, weight_decay=spec.weight_decay)
    steps_per_epoch = math.ceil(len(x_tr) / spec.batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs * steps_per_epoch)
    start = time.perf_counter()
    history = []
    for epoch in range(epochs):
        net.train()
        perm = torch.randperm(len(x_tr), generator=g)
        total, count = 0.0, 0
        for i in range(0, len(x_tr), spec.batch_size):
            idx = perm[i : i + spec.batch_size]
            xb = _shift_batch(x_tr[idx].float() / 255.0, spec.shift, g)  # (B, 1, S, S) in [0, 1]
            loss = F.cross_entropy(net(xb), y_tr[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total, count = total + loss.item() * len(idx), count + len(idx)
        acc = _accuracy(net, x_te, y_te)
        history.append({"epoch": epoch + 1, "train_loss": total / count, "test_accuracy": acc,
                        "elapsed_s": round(time.perf_counter() - start, 1)})
        if verbose:
            print(f"[{name} judge] epoch {epoch + 1}/{epochs} loss {total / count:.4f} test acc {acc:.4f} "
                  f"({time.perf_counter() - start:.0f}s)", flush=True)

    weights, record_path = _asset_paths(name, out_dir)
    weights.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous() for k, v in net.state_dict().items()}
    save_file(state, str(weights), metadata={"judge": name, "seed": str(seed)})
    weights.chmod(0o644)  # package data: readable by every user of an installed archlab
    spec_dict = asdict(spec)
    spec_dict["epochs"] = epochs
    record = {
        "judge": name,
        "model": "simple_cnn",
        "spec": spec_dict,
        "seed": seed,
        "train_size": len(x_tr),
        "test_size": len(x_te),
        "test_accuracy": history[-1]["test_accuracy"],
        "history": history,
        "parameters": sum(p.numel() for p in net.parameters()),
        "weights_bytes": weights.stat().st_size,
        "wall_s": round(time.perf_counter() - start, 1),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }
    record_path.write_text(json.dumps(record, indent=2) + "\n")
    if out_dir is None or Path(out_dir).resolve() == ASSETS:
        _load_cached.cache_clear()
    return record


def main(argv: list[str] | None = None) -> None:
    """``python -m archlab.models.generative.measures train-judge mnist|digits [--root DIR]``."""
    parser = argparse.ArgumentParser(prog="python -m archlab.models.generative.measures")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("train-judge", help="train a judge and write its weights into assets/")
    p.add_argument("name", choices=sorted(JUDGES))
    p.add_argument("--root", default=None, help="data folder (default: found like the benchmarks do)")
    p.add_argument("--out-dir", default=None, help="where to write the weights (default: assets/)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=None)
    args = parser.parse_args(argv)
    record = train_judge(args.name, root=args.root, out_dir=args.out_dir, seed=args.seed, epochs=args.epochs)
    print(json.dumps({k: record[k] for k in ("judge", "test_accuracy", "parameters", "weights_bytes", "wall_s")}))


if __name__ == "__main__":
    main()
