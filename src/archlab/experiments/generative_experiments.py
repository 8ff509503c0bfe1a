"""Generative-model experiments: mode collapse, the two learning rates, batch size, latent size,
beta in the VAE, GAN against VAE against diffusion, and the stability of DCGAN and WGAN-GP.

Seven experiments (family ``generative``), each writing ``report.html`` with figures, result tables
and conclusions computed from the numbers. The models are archlab's (:mod:`archlab.models.generative`)
trained with plain loops over their own losses (:func:`train_adversarial`, :func:`train_single`):
the same alternation as :class:`archlab.tasks.generative.AdversarialTask` (``d_steps`` critic
steps, each on its own real batch, then one generator step), without the engine's per-epoch
bookkeeping, which dominates runs of a few seconds. Every model trains on one CPU thread;
``quick=True`` shrinks every budget to a smoke test of seconds.

``gan-mode-collapse``       the 2-D ring of 8 Gaussians (std 0.02, radius 2): a plain GAN, the
                            unrolled GAN, minibatch discrimination and WGAN-GP, same MLP sizes,
                            several seeds: modes recovered and the share of high-quality samples
                            (:func:`~archlab.models.generative.measures.ring_modes`), scatter plots
                            through training.
``gan-lr-ratio``            generator : discriminator learning rates 1:1, 1:2, 1:4 (TTUR-style, the
                            discriminator faster) and 4:1 on the ring.
``gan-batch-size``          batch sizes 16 to 1024 at a fixed number of generator steps on the ring.
``latent-dim``              the MLP VAE on the 8x8 digits with latent sizes 2 to 32: ELBO,
                            reconstruction, KL, importance-weighted NLL, FID-digits and class
                            coverage of the samples.
``vae-beta``                beta-VAE, beta = 0.5, 1, 4, 8: reconstruction against KL, active units,
                            the latent codes, samples.
``gan-vs-vae-vs-diffusion`` DCGAN, a convolutional VAE and DDPM on the 8x8 digits: FID-digits, class
                            coverage, diversity, distance to the nearest training image, training
                            and sampling time.
``dcgan-vs-wgan-gp-seeds``  DCGAN and WGAN-GP on the 8x8 digits over several seeds: FID-digits through
                            training, its spread at the end, runs that diverge or collapse.

Measured wall times of the full runs (one torch thread, a 2-core machine shared with other jobs, load
3-4): ``gan-mode-collapse`` 407 s, ``gan-vs-vae-vs-diffusion`` 328 s; the others are budgeted from
per-step timings (``gan-lr-ratio`` and ``gan-batch-size`` about 2-3 minutes, ``latent-dim`` and
``vae-beta`` about 1 minute, ``dcgan-vs-wgan-gp-seeds`` about 6 minutes) but were not run in full.
The quick versions take 1-5 s each.

Measures (:mod:`archlab.models.generative.measures`): *FID-digits* is the Frechet distance between
Gaussians fitted to the 64-unit penultimate features of archlab's 8x8 digits classifier (the
``digits`` judge): the FID-MNIST recipe on 8x8 images, **not comparable with Inception FID** nor
with FID-MNIST, and biased upwards at the few hundred images used here: compare values within a
report only. Each image report also gives the FID of held-out real digits (the floor at that N).

References:
    I. Goodfellow et al., "Generative adversarial nets", NeurIPS 2014, https://arxiv.org/abs/1406.2661
    L. Metz, B. Poole, D. Pfau, J. Sohl-Dickstein, "Unrolled generative adversarial networks", ICLR 2017,
    https://arxiv.org/abs/1611.02163 (the ring of 8 Gaussians, figure 1)
    T. Salimans et al., "Improved techniques for training GANs", NeurIPS 2016, https://arxiv.org/abs/1606.03498
    I. Gulrajani et al., "Improved training of Wasserstein GANs", NeurIPS 2017, https://arxiv.org/abs/1704.00028
    M. Heusel et al., "GANs trained by a two time-scale update rule converge to a local Nash
    equilibrium", NeurIPS 2017, https://arxiv.org/abs/1706.08500 (TTUR, FID)
    A. Brock, J. Donahue, K. Simonyan, "Large scale GAN training for high fidelity natural image
    synthesis", ICLR 2019, https://arxiv.org/abs/1809.11096 (batch size)
    D. P. Kingma, M. Welling, "Auto-encoding variational Bayes", ICLR 2014, https://arxiv.org/abs/1312.6114
    I. Higgins et al., "beta-VAE: learning basic visual concepts with a constrained variational
    framework", ICLR 2017, https://openreview.net/forum?id=Sy2fzU9gl
    Y. Burda, R. Grosse, R. Salakhutdinov, "Importance weighted autoencoders", ICLR 2016,
    https://arxiv.org/abs/1509.00519 (IWAE bound, active units)
    J. Ho, A. Jain, P. Abbeel, "Denoising diffusion probabilistic models", NeurIPS 2020,
    https://arxiv.org/abs/2006.11239
    M. Lucic et al., "Are GANs created equal? A large-scale study", NeurIPS 2018,
    https://arxiv.org/abs/1711.10337 (spread over seeds)

Deviations from the paper:
    - Everything is small so that each experiment fits ten CPU minutes: a few thousand generator
      steps where the papers ran 25k-100k, networks of width 128 on the ring (Metz et al.: 128;
      Gulrajani et al.: 512), 8x8 digits instead of MNIST or CIFAR-10, 3-4 seeds.
    - On the ring every variant uses the same MLPs (2 hidden layers of 128, noise of 16 dimensions)
      and the same Adam learning rate (``RING["lr"]``, higher than the papers' 1e-4 to fit the
      budget); WGAN-GP keeps the authors' toy settings otherwise (lambda 0.1, 5 critic steps,
      betas (0.5, 0.9)). Minibatch discrimination uses 8 kernels of size 4 (the model's default,
      50 x 5, costs 0.25-0.5 s per step at batch 256 on one CPU thread: the backward pass of
      ``torch.cdist`` with p = 1 dominates).
    - Training is a plain loop (see above), not ``archlab.train``: same losses and alternation,
      sampled batches with replacement, no validation passes, no checkpoints.
    - FID is computed on the ``digits`` judge's features with a few hundred images (see above).
    - DDPM samples with DDIM without clamping the predicted x_0 (``clip_denoised=False``, as Song et
      al.'s equation 12): ``DDPM.sample(method="ddim")`` with the clamp keeps the network's raw eps
      next to the clamped x_0, which on these short runs turns the samples grey (FID-digits 252
      against 102 without the clamp after 600 steps).
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from archlab.experiments.common import quick_note
from archlab.experiments.resnet_experiments import num_threads
from archlab.registry import register_experiment

__all__ = [
    "RING",
    "digits_images",
    "digits_judge",
    "image_measures",
    "ring_data",
    "train_adversarial",
    "train_single",
    "make_model",
    "active_units",
    "nearest_distance",
    "mean_pairwise_distance",
]

#: The ring experiments' shared settings: one MLP size for every variant, Adam at ``lr``.
RING: dict[str, Any] = {"hidden_dim": 128, "num_layers": 2, "latent_dim": 16, "lr": 1e-3, "decay": False,
                        "std": 0.02, "n_train": 10000, "n_eval": 2500}  # fmt: skip
#: The variants of ``gan-mode-collapse``: registered model and its own options.
RING_VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "GAN": ("gan_ring", {}),
    "unrolled GAN (k=5)": ("gan_unrolled", {"unroll_steps": 5}),
    "minibatch discrimination": ("gan_minibatch", {"mbd_kernels": 8, "mbd_dim": 4}),
    "WGAN-GP": ("wgan_gp_ring", {}),
}
MC_FULL: dict[str, Any] = {"seeds": (0, 1, 2), "steps": 1500, "batch_size": 128, "snapshots": 4}
MC_QUICK: dict[str, Any] = {"seeds": (0,), "steps": 12, "batch_size": 64, "snapshots": 2, "n_eval": 400,
                            "n_train": 1000}  # fmt: skip
#: ``gan-lr-ratio``: (generator, discriminator) multipliers of ``base_lr``.
LR_FULL: dict[str, Any] = {"ratios": ((1, 1), (1, 2), (1, 4), (4, 1)), "base_lr": 5e-4, "seeds": (0, 1),
                           "steps": 1500, "batch_size": 256}  # fmt: skip
LR_QUICK: dict[str, Any] = {"ratios": ((1, 1), (1, 4)), "base_lr": 5e-4, "seeds": (0,), "steps": 12,
                            "batch_size": 64, "n_eval": 400, "n_train": 1000}  # fmt: skip
#: ``gan-batch-size``: batch sizes at a fixed number of generator steps.
BS_FULL: dict[str, Any] = {"batch_sizes": (16, 64, 256, 1024), "seeds": (0, 1), "steps": 1500}
BS_QUICK: dict[str, Any] = {"batch_sizes": (16, 64), "seeds": (0,), "steps": 12, "n_eval": 400,
                            "n_train": 1000}  # fmt: skip
#: The VAEs on the digits: the MLP VAE (Bernoulli likelihood, dynamic binarisation).
VAE_OPTIONS: dict[str, Any] = {"hidden_dim": 256, "num_layers": 1, "activation": "tanh"}
LD_FULL: dict[str, Any] = {"latent_dims": (2, 4, 8, 16, 32), "steps": 3000, "batch_size": 64, "lr": 1e-3,
                           "iwae_k": 200, "n_samples": 1000}  # fmt: skip
LD_QUICK: dict[str, Any] = {"latent_dims": (2, 8), "steps": 20, "batch_size": 64, "lr": 1e-3, "iwae_k": 8,
                            "n_samples": 200}  # fmt: skip
BETA_FULL: dict[str, Any] = {"betas": (0.5, 1.0, 4.0, 8.0), "latent_dim": 8, "steps": 3000, "batch_size": 64,
                             "lr": 1e-3, "n_samples": 1000}  # fmt: skip
BETA_QUICK: dict[str, Any] = {"betas": (1.0, 4.0), "latent_dim": 8, "steps": 20, "batch_size": 64, "lr": 1e-3,
                              "n_samples": 200}  # fmt: skip
#: ``gan-vs-vae-vs-diffusion``: each method's model, options and budget on the 8x8 digits.
VS_FULL: dict[str, Any] = {
    "methods": {
        "DCGAN": ("dcgan", {"latent_dim": 32, "base_channels": 64}, {"steps": 3000, "batch_size": 64}),
        "VAE (conv)": ("conv_vae", {"latent_dim": 16, "hidden_dim": 256, "hidden_channels": 32},
                       {"steps": 3000, "batch_size": 64, "lr": 1e-3}),
        "DDPM": ("ddpm", {"base_channels": 16, "channel_mults": (1, 2), "dropout": 0.0, "timesteps": 1000},
                 {"steps": 3000, "batch_size": 64, "lr": 1e-3}),
    },
    "n_samples": 500, "ddim_steps": 50,
}  # fmt: skip
VS_QUICK: dict[str, Any] = {
    "methods": {
        "DCGAN": ("dcgan", {"latent_dim": 16, "base_channels": 16}, {"steps": 10, "batch_size": 32}),
        "VAE (conv)": ("conv_vae", {"latent_dim": 8, "hidden_dim": 32, "hidden_channels": 8},
                       {"steps": 10, "batch_size": 32, "lr": 1e-3}),
        "DDPM": ("ddpm", {"base_channels": 8, "channel_mults": (1, 2), "num_groups": 4, "dropout": 0.0,
                          "timesteps": 100}, {"steps": 10, "batch_size": 32, "lr": 1e-3}),
    },
    "n_samples": 200, "ddim_steps": 10,
}  # fmt: skip
#: ``dcgan-vs-wgan-gp-seeds``: both on DCGAN-shaped networks (WGAN-GP: layer-norm critic).
SEEDS_FULL: dict[str, Any] = {
    "methods": {"DCGAN": ("dcgan", {"latent_dim": 32, "base_channels": 64}),
                "WGAN-GP": ("wgan_gp", {"latent_dim": 32, "base_channels": 64})},
    "seeds": (0, 1, 2, 3), "steps": 1200, "batch_size": 64, "evals": 6, "n_samples": 500,
}  # fmt: skip
SEEDS_QUICK: dict[str, Any] = {
    "methods": {"DCGAN": ("dcgan", {"latent_dim": 16, "base_channels": 16}),
                "WGAN-GP": ("wgan_gp", {"latent_dim": 16, "base_channels": 16})},
    "seeds": (0,), "steps": 6, "batch_size": 32, "evals": 2, "n_samples": 200,
}  # fmt: skip
#: A run "collapsed" when its samples cover fewer than this share of the 10 classes.
COLLAPSE_COVERAGE = 0.5


# --------------------------------------------------------------------------------------------------
# Shared pieces: data, judge, measures, training loops
# --------------------------------------------------------------------------------------------------


def make_model(name: str, seed: int, info: Any = None, **options: Any) -> nn.Module:
    """``create_model(name, info, **options)`` with the torch seed set first (seeded initialisation);
    ``info`` (a ``DatasetInfo``) fills the data-dependent fields (channels, image size, features)."""
    import archlab.models  # noqa: F401  (registers the generative family)
    from archlab.registry import create_model

    torch.manual_seed(seed)
    return create_model(name, info, **options)


def ring_data(n: int, seed: int = 0, std: float = 0.02) -> tuple[Tensor, Tensor]:
    """``n`` points of the ring of 8 Gaussians (n, 2) and the mode centres (8, 2)."""
    from archlab.data.generative_data import make_ring, ring_centers

    x, _ = make_ring(n, std=std, generator=torch.Generator().manual_seed(seed))
    return x, ring_centers()


def digits_images(seed: int = 0) -> dict[str, Any]:
    """The 8x8 digits as float images in [0, 1]: ``x_train`` (N, 1, 8, 8) (train + validation
    splits of ``load_dataset("digits")``), ``y_train``, ``x_test``, ``y_test`` (the fixed test set),
    and ``info`` (the dataset's ``DatasetInfo``, for :func:`make_model`)."""
    from archlab.data import load_dataset

    b = load_dataset("digits", val_split=0.1, seed=seed)
    xs, ys = [b.train.x], [b.train.y]
    if b.val is not None:
        xs.append(b.val.x)
        ys.append(b.val.y)
    return {"x_train": torch.cat(xs).float() / 255.0, "y_train": torch.cat(ys).long(),
            "x_test": b.test.x.float() / 255.0, "y_test": b.test.y.long(), "info": b.info}


def digits_judge() -> Any:
    """The ``digits`` judge (:func:`~archlab.models.generative.measures.load_judge`, cached): its committed
    weights, or a clear error saying how to train them."""
    from archlab.models.generative.measures import load_judge

    return load_judge("digits")


def mean_pairwise_distance(x: Tensor, max_items: int = 500) -> float:
    """Mean Euclidean distance between distinct items (the first ``max_items``): a diversity measure."""
    f = x[:max_items].flatten(1).double()
    d = torch.cdist(f, f)
    n = len(f)
    return float(d.sum() / max(n * (n - 1), 1))


def nearest_distance(x: Tensor, reference: Tensor, max_items: int = 500) -> float:
    """Mean distance from each item of ``x`` to its nearest neighbour in ``reference`` (memorisation check)."""
    return float(torch.cdist(x[:max_items].flatten(1).double(), reference.flatten(1).double()).min(1)[0].mean())


def image_measures(samples: Tensor, real_stats: tuple[np.ndarray, np.ndarray], train: Tensor) -> dict[str, float]:
    """FID-digits against ``real_stats``, judged-class coverage and entropy, diversity, nearest-train distance."""
    from archlab.models.generative.measures import class_coverage, feature_stats, frechet_distance

    judge = digits_judge()
    samples = samples.detach().float().cpu().clamp(0, 1)
    if not torch.isfinite(samples).all():
        return {"fid": math.nan, "coverage": 0.0, "entropy": 0.0, "diversity": math.nan, "nn_train": math.nan}
    cov = class_coverage(samples, judge=judge)
    return {
        "fid": frechet_distance(*feature_stats(samples, judge=judge), *real_stats),
        "coverage": cov["coverage"], "entropy": cov["entropy"],
        "diversity": mean_pairwise_distance(samples), "nn_train": nearest_distance(samples, train),
    }  # fmt: skip


def _real_reference(data: dict[str, Tensor]) -> dict[str, Any]:
    """Test-set feature statistics, and the measures of held-out real images (the floor at this N)."""
    from archlab.models.generative.measures import feature_stats

    stats = feature_stats(data["x_test"], judge=digits_judge())
    n = len(data["x_test"])
    real = image_measures(data["x_train"][-n:], stats, data["x_train"][:-n])
    return {"stats": stats, "real": real}


def train_adversarial(
    model: Any,
    x: Tensor,
    *,
    steps: int,
    batch_size: int,
    seed: int = 0,
    lr_g: float | None = None,
    lr_d: float | None = None,
    log_every: int = 10,
    callback: Callable[[int], None] | None = None,
    callback_at: Sequence[int] = (),
    decay: bool = False,
) -> dict[str, Any]:
    """Train an adversarial method for ``steps`` generator steps with its own optimizers.

    Each generator step follows ``model.d_steps`` critic steps, each on its own batch drawn (with
    replacement) from ``x``, with ``after_discriminator_step`` after each (WGAN clipping), as
    :class:`~archlab.tasks.generative.AdversarialTask` does. A non-finite loss stops the run before
    its backward pass (``diverged`` True).

    Args:
        model: a ``GenerativeMethod`` with ``task == "adversarial"``.
        x: the training data ((N, ...) in [0, 1], or ring points).
        steps: generator steps.
        batch_size: examples per critic and per generator step.
        seed: seed of the batches and of the noise (global torch RNG).
        lr_g, lr_d: learning rates (None: the model's ``optimizer_settings``).
        log_every: record the losses every this many generator steps.
        callback: called with the generator step count at each step of ``callback_at`` (0 = before training).
        decay: decay both learning rates linearly to 0 over the ``steps`` generator steps.

    Returns:
        ``{"steps" (logged step numbers), "loss_d", "loss_g", "seconds", "diverged", "steps_done"}``.
    """
    from archlab.tasks.generative import make_optimizer

    settings = model.optimizer_settings()
    opt_g = make_optimizer(model.generator_parameters(), {**settings["generator"], **({"lr": lr_g} if lr_g else {})})
    opt_d = make_optimizer(model.discriminator_parameters(),
                           {**settings["discriminator"], **({"lr": lr_d} if lr_d else {})})
    scheds = ([torch.optim.lr_scheduler.LambdaLR(o, lambda i: max(0.0, 1.0 - i / steps)) for o in (opt_g, opt_d)]
              if decay else [])
    g = torch.Generator().manual_seed(seed + 1000)
    torch.manual_seed(seed + 2000)
    log: dict[str, list[float]] = {"steps": [], "loss_d": [], "loss_g": []}
    at = set(callback_at)
    diverged, done = False, 0
    model.train()
    t0 = time.perf_counter()
    if callback is not None and 0 in at:
        model.eval()
        callback(0)
        model.train()
    for step in range(1, steps + 1):
        for _ in range(max(int(model.d_steps), 1)):
            xb = x[torch.randint(0, len(x), (batch_size,), generator=g)]
            d = model.discriminator_loss(xb)
            if not torch.isfinite(d["loss"]):
                diverged = True
                break
            opt_d.zero_grad(set_to_none=True)
            d["loss"].backward()
            opt_d.step()
            model.after_discriminator_step()
        if diverged:
            break
        gl = model.generator_loss(xb)
        if not torch.isfinite(gl["loss"]):
            diverged = True
            break
        opt_g.zero_grad(set_to_none=True)
        gl["loss"].backward()
        opt_g.step()
        for sch in scheds:
            sch.step()
        done = step
        if step % log_every == 0 or step == steps:
            log["steps"].append(step)
            log["loss_d"].append(float(d["loss"].detach()))
            log["loss_g"].append(float(gl["loss"].detach()))
        if callback is not None and step in at:
            model.eval()
            callback(step)
            model.train()
    model.eval()
    return {**log, "seconds": time.perf_counter() - t0, "diverged": diverged, "steps_done": done}


def train_single(
    model: Any, x: Tensor, *, steps: int, batch_size: int, lr: float, seed: int = 0, log_every: int = 10
) -> dict[str, Any]:
    """Minimise ``model(x)["loss"]`` (VAE, DDPM...) with Adam for ``steps`` steps on batches drawn from ``x``.

    Returns:
        ``{"steps", "loss" (logged), "seconds", "diverged"}``.
    """
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    g = torch.Generator().manual_seed(seed + 1000)
    torch.manual_seed(seed + 2000)
    log: dict[str, list[float]] = {"steps": [], "loss": []}
    diverged = False
    model.train()
    t0 = time.perf_counter()
    for step in range(1, steps + 1):
        out = model(x[torch.randint(0, len(x), (batch_size,), generator=g)])
        if not torch.isfinite(out["loss"]):
            diverged = True
            break
        opt.zero_grad(set_to_none=True)
        out["loss"].backward()
        opt.step()
        if step % log_every == 0 or step == steps:
            log["steps"].append(step)
            log["loss"].append(float(out["loss"].detach()))
    model.eval()
    return {**log, "seconds": time.perf_counter() - t0, "diverged": diverged}


@torch.no_grad()
def active_units(model: Any, x: Tensor, threshold: float = 0.01) -> int:
    """Burda et al.'s active units: latent dimensions whose posterior mean varies over the data
    (``Cov_x(E_q[z|x]) > threshold``)."""
    mu = model.encode(x)  # (N, L)
    return int((mu.var(0) > threshold).sum())


@torch.no_grad()
def _vae_eval(model: Any, x: Tensor, iwae_k: int = 0) -> dict[str, float]:
    """Test ELBO, reconstruction and KL (nats per image, seeded binarisation), and the IWAE NLL when iwae_k > 0."""
    model.eval()
    out = model(x)
    res = {"elbo": float(out["elbo"]), "recon": float(out["recon"]), "kl": float(out["kl"])}
    if iwae_k:
        res["nll"] = float(-model.log_likelihood(x, num_samples=iwae_k).mean())
    return res


def _sample(model: Any, n: int, seed: int, **kwargs: Any) -> Tensor:
    model.eval()
    return model.sample(n, generator=torch.Generator().manual_seed(seed), **kwargs).float().cpu()


def _write(out_dir: Path, title: str, intro: str, figures: list[tuple[str, Path]],
           tables: list[tuple[str, list[dict[str, Any]]]], conclusions: str) -> Path:
    from archlab.report.experiment import write_experiment_report

    return write_experiment_report(out_dir, title, intro, figures=figures, tables=tables, conclusions=conclusions)


def _r(v: float, k: int = 3) -> float | str:
    return "NaN" if v is None or not math.isfinite(v) else round(float(v), k)


def _mean(values: Sequence[float]) -> float:
    vals = [v for v in values if math.isfinite(v)]
    return statistics.fmean(vals) if vals else math.nan


def _std(values: Sequence[float]) -> float:
    vals = [v for v in values if math.isfinite(v)]
    return statistics.pstdev(vals) if len(vals) > 1 else 0.0 if vals else math.nan


def _trend(a: float, b: float, tol: float = 0.02) -> str:
    """'rises from a to b', 'falls from a to b' or 'stays near a' (relative tolerance ``tol``)."""
    if abs(b - a) <= tol * max(abs(a), abs(b), 1e-9):
        return f"stays near {a:.1f}"
    return f"{'rises' if b > a else 'falls'} from {a:.1f} to {b:.1f}"


def _result(report: Path, t0: float, c0: float, rows: list[dict[str, Any]], setup: dict[str, Any],
            quick: bool, **extra: Any) -> dict[str, Any]:
    return {"report": str(report), "seconds": time.perf_counter() - t0, "cpu_seconds": time.process_time() - c0,
            "rows": rows, "setup": {**setup, "quick": quick}, **extra}  # fmt: skip


# ---- figures -------------------------------------------------------------------------------------


def _ring_grid(panels: dict[str, dict[str, Tensor]], centers: Tensor, std: float, real: Tensor,
               path: Path, title: str) -> Path:
    """Rows of ring scatter plots (``{row: {column title: points (N, 2)}}``), each titled with its modes."""
    from matplotlib.patches import Circle

    from archlab.models.generative.measures import ring_modes
    from archlab.viz._mpl import new_figure, save_figure, style

    rows = list(panels)
    ncol = max(len(v) for v in panels.values())
    c = centers.numpy()
    span = float(np.abs(c).max()) * 1.5
    with style():
        fig = new_figure(2.4 * ncol + 0.8, 2.5 * len(rows) + 0.3)
        axes = fig.subplots(len(rows), ncol, squeeze=False)
        for i, row in enumerate(rows):
            for j in range(ncol):
                ax = axes[i][j]
                ax.set_xticks([])
                ax.set_yticks([])
                items = list(panels[row].items())
                if j >= len(items):
                    ax.axis("off")
                    continue
                name, pts = items[j]
                p = pts.detach().float().numpy()[:1500]
                ax.scatter(real[:800, 0], real[:800, 1], s=2, color="0.8")
                ax.scatter(p[:, 0], p[:, 1], s=2, alpha=0.4, color="tab:blue")
                for cx, cy in c:
                    ax.add_patch(Circle((cx, cy), 3 * std, fill=False, color="tab:red", lw=0.6))
                m = ring_modes(pts, centers, std)
                ax.set_title(f"{name}\n{m['modes']}/8 modes, {m['high_quality']:.0%} HQ", fontsize=8)
                ax.set_xlim(-span, span)
                ax.set_ylim(-span, span)
                ax.set_aspect("equal")
                if j == 0:
                    ax.set_ylabel(row, fontsize=8)
        fig.suptitle(title)
        return save_figure(fig, path)


def _image_rows(rows: dict[str, Tensor], path: Path, title: str, nrow: int = 16) -> Path:
    """One row of sample images (a grid) per label."""
    from archlab.viz._mpl import new_figure, save_figure, style
    from archlab.viz.generative import make_grid

    with style():
        fig = new_figure(0.5 * nrow + 1.5, 0.75 * len(rows) * max(1, math.ceil(32 / nrow)) + 0.6)
        axes = fig.subplots(len(rows), 1, squeeze=False)[:, 0]
        for ax, (name, imgs) in zip(axes, rows.items()):
            ax.imshow(make_grid(imgs[:32].clamp(0, 1), nrow=nrow), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_ylabel(name, rotation=0, ha="right", va="center", fontsize=9)
        fig.suptitle(title)
        return save_figure(fig, path)


def _loss_curves(curves: dict[str, dict[str, Any]], path: Path, title: str) -> Path:
    """Discriminator and generator losses against generator steps, one colour per run."""
    from archlab.viz._mpl import new_figure, save_figure, style

    with style():
        fig = new_figure(10, 3.6)
        axes = fig.subplots(1, 2)
        for i, (name, log) in enumerate(curves.items()):
            for ax, key in zip(axes, ("loss_d", "loss_g")):
                ax.plot(log["steps"], log[key], color=f"C{i}", lw=1, label=name)
        for ax, key in zip(axes, ("discriminator (critic) loss", "generator loss")):
            ax.set(xlabel="generator step", ylabel=key)
        axes[0].legend(fontsize=7)
        fig.suptitle(title)
        return save_figure(fig, path)


def _strip(groups: dict[str, list[float]], path: Path, ylabel: str, title: str, ref: float | None = None) -> Path:
    """One column of points (one per seed) and its mean per group."""
    from archlab.viz._mpl import new_figure, save_figure, style

    with style():
        fig = new_figure(1.6 * len(groups) + 2.5, 3.6)
        ax = fig.add_subplot()
        for i, vals in enumerate(groups.values()):
            xs = np.full(len(vals), i) + np.linspace(-0.12, 0.12, len(vals)) if len(vals) > 1 else [i]
            ax.scatter(xs, vals, color=f"C{i}", zorder=3)
            ax.hlines(_mean(vals), i - 0.25, i + 0.25, color=f"C{i}", lw=2)
        if ref is not None:
            ax.axhline(ref, color="0.5", ls=":", lw=1)
        ax.set_xticks(range(len(groups)), list(groups), fontsize=8)
        ax.set(ylabel=ylabel, title=title)
        return save_figure(fig, path)


# --------------------------------------------------------------------------------------------------
# The ring: gan-mode-collapse, gan-lr-ratio, gan-batch-size
# --------------------------------------------------------------------------------------------------


def _ring_run(name: str, options: dict[str, Any], x: Tensor, centers: Tensor, *, seed: int, steps: int,
              batch_size: int, n_eval: int, std: float, lr_g: float | None = None, lr_d: float | None = None,
              snapshots: int = 0) -> dict[str, Any]:
    """Train one ring GAN; its modes and high-quality share at the end (and at snapshot steps)."""
    from archlab.models.generative.measures import ring_modes

    net = {k: RING[k] for k in ("hidden_dim", "num_layers", "latent_dim")}
    lr = RING["lr"]
    model = make_model(name, seed, **{**net, "lr_g": lr, "lr_d": lr, **options})
    snaps: dict[str, Tensor] = {}
    at = [round(steps * k / max(snapshots - 1, 1)) for k in range(snapshots)] if snapshots else []

    def snap(step: int) -> None:
        snaps[f"step {step}"] = _sample(model, n_eval, seed=0)

    log = train_adversarial(model, x, steps=steps, batch_size=batch_size, seed=seed, lr_g=lr_g, lr_d=lr_d,
                            log_every=max(steps // 100, 1), callback=snap if at else None, callback_at=at,
                            decay=RING["decay"])
    pts = _sample(model, n_eval, seed=0)
    m = ring_modes(pts, centers, std)
    return {"modes": m["modes"], "high_quality": m["high_quality"], "samples": pts, "snapshots": snaps,
            "log": log, "seconds": log["seconds"], "diverged": log["diverged"]}  # fmt: skip


def _ring_setup(c: dict[str, Any]) -> tuple[Tensor, Tensor, int, float]:
    std = RING["std"]
    x, centers = ring_data(c.get("n_train", RING["n_train"]), seed=0, std=std)
    return x, centers, c.get("n_eval", RING["n_eval"]), std


def _ring_sweep(variants: dict[Any, dict[str, Any]], data: tuple[Tensor, Tensor, int, float], *,
                seeds: Sequence[int], steps: int, threads: int | None, snapshots: int = 0,
                ) -> tuple[dict[Any, list[dict[str, Any]]], dict[Any, list[int]], dict[Any, list[float]]]:
    """Every variant (``{label: _ring_run keywords: name (default gan_ring), options, batch_size, lr_g...}``)
    on every seed (snapshots through training for the first seed): the runs, their modes and HQ shares."""
    x, centers, n_eval, std = data
    runs: dict[Any, list[dict[str, Any]]] = {}
    with num_threads(threads):
        for label, kw in variants.items():
            kw = dict(kw)
            name, options = kw.pop("name", "gan_ring"), kw.pop("options", {})
            runs[label] = [_ring_run(name, options, x, centers, seed=s, steps=steps, n_eval=n_eval, std=std,
                                     snapshots=snapshots if s == seeds[0] else 0, **kw) for s in seeds]
    modes = {k: [r["modes"] for r in rs] for k, rs in runs.items()}
    hq = {k: [r["high_quality"] for r in rs] for k, rs in runs.items()}
    return runs, modes, hq


def _final_rings(runs: dict[Any, list[dict[str, Any]]], seeds: Sequence[int], data: tuple[Tensor, Tensor, int, float],
                 path: Path, title: str, column: Callable[[Any], str] = str) -> Path:
    """One row of final ring samples per seed, one column per variant."""
    x, centers, _, std = data
    return _ring_grid({f"seed {s}": {column(k): rs[i]["samples"] for k, rs in runs.items()} for i, s in enumerate(seeds)},
                      centers, std, x, path, title)


def _ring_intro() -> str:
    return (f"Data: {RING['n_train']:,} points of the ring of 8 Gaussians (radius 2, std {RING['std']}; Metz et al. "
            "2017). Every network is an MLP with 2 hidden layers of "
            f"{RING['hidden_dim']} units and {RING['latent_dim']}-dimensional noise. Measures on "
            f"{RING['n_eval']:,} samples (`ring_modes`): a sample is *high quality* (HQ) within 3 std of a mode "
            "centre; a mode is *recovered* when at least 1% of the samples are high-quality samples near it.")


@register_experiment(
    "gan-mode-collapse",
    family="generative",
    description="Ring of 8 Gaussians: GAN vs unrolled GAN vs minibatch discrimination vs WGAN-GP, modes recovered",
)
def gan_mode_collapse(out_dir: Path, quick: bool = False, *, seeds: Sequence[int] | None = None,
                      steps: int | None = None, threads: int | None = 1) -> dict[str, Any]:
    """Modes recovered on the ring by four GAN variants over several seeds.

    Args:
        out_dir: the experiment's folder.
        quick: one seed, a dozen steps (a smoke test).
        seeds: training seeds (default 0, 1, 2).
        steps: generator steps per run (default 1500).
        threads: torch CPU threads.
    """
    t0, c0 = time.perf_counter(), time.process_time()
    c = dict(MC_QUICK if quick else MC_FULL)
    seeds = tuple(seeds or c["seeds"])
    steps = int(steps or c["steps"])
    data = _ring_setup(c)
    x, centers, _, std = data
    variants = {label: {"name": name, "options": opts, "batch_size": c["batch_size"]}
                for label, (name, opts) in RING_VARIANTS.items()}
    runs, modes, hq = _ring_sweep(variants, data, seeds=seeds, steps=steps, threads=threads,
                                  snapshots=c["snapshots"])
    rows = [{"variant": k, "seed": s, "modes (of 8)": r["modes"], "high quality": _r(r["high_quality"]),
             "diverged": r["diverged"], "final loss_d": _r(r["log"]["loss_d"][-1] if r["log"]["loss_d"] else math.nan),
             "final loss_g": _r(r["log"]["loss_g"][-1] if r["log"]["loss_g"] else math.nan),
             "train s": round(r["seconds"], 1)}
            for k, rs in runs.items() for s, r in zip(seeds, rs)]  # fmt: skip
    summary = {k: {"modes": modes[k], "hq": hq[k], "s": _mean([r["seconds"] for r in rs])} for k, rs in runs.items()}
    summary_rows = [{"variant": k, "mean modes": _r(_mean(v["modes"]), 2), "min modes": min(v["modes"]),
                     "max modes": max(v["modes"]), "runs with all 8": sum(m == 8 for m in v["modes"]),
                     "mean HQ share": _r(_mean(v["hq"])), "train s per run": round(v["s"], 1)}
                    for k, v in summary.items()]  # fmt: skip

    training = _ring_grid({k: rs[0]["snapshots"] for k, rs in runs.items()}, centers, std, x,
                          out_dir / "ring_training.png", f"Samples through training (seed {seeds[0]})")
    finals = _final_rings(runs, seeds, data, out_dir / "ring_final.png", "Final samples, every seed")
    modes_png = _strip({k: [float(m) for m in v["modes"]] for k, v in summary.items()}, out_dir / "ring_modes.png",
                       "modes recovered (of 8)", f"Modes per seed ({len(seeds)} seeds)", ref=8)
    losses = _loss_curves({k: rs[0]["log"] for k, rs in runs.items()}, out_dir / "ring_losses.png",
                          f"Losses, seed {seeds[0]}")

    best = max(summary, key=lambda k: (_mean(summary[k]["modes"]), _mean(summary[k]["hq"])))
    gan = summary["GAN"]
    wgan = summary["WGAN-GP"]
    lines = [
        ("- **No variant recovered a mode** at this budget: the generators have not reached the ring yet.\n"
         if max(max(v["modes"]) for v in summary.values()) == 0 else "")
        + f"- **Most modes**: {best}, {_mean(summary[best]['modes']):.1f} of 8 on average over {len(seeds)} seed(s) "
        f"(range {min(summary[best]['modes'])}-{max(summary[best]['modes'])}). The plain GAN recovered "
        f"{', '.join(map(str, gan['modes']))} modes, WGAN-GP {', '.join(map(str, wgan['modes']))}.",
        "- "
        + ("**WGAN-GP recovered all 8 modes in every run**" if min(wgan["modes"]) == 8 else
           f"**WGAN-GP did not recover all 8 modes in every run** (minimum {min(wgan['modes'])}) at this budget of "
           f"{steps} generator steps")
        + (f"; the plain GAN did in {sum(m == 8 for m in gan['modes'])} of {len(seeds)}." if gan["modes"] else "."),
        "- **Quality against coverage**: "
        + "; ".join(f"{k}: {_mean(v['hq']):.0%} high-quality samples" for k, v in summary.items())
        + ". A collapsed generator puts almost all its samples on one or two modes (high quality, low coverage); "
        + (f"here at most {max(_mean(v['hq']) for v in summary.values()):.0%} of the samples lie within 3 std "
           f"({3 * std:g}) of a mode: the generators spread along the ring and have not yet tightened onto the modes, "
           "so the mode count measures precision as much as coverage (see the final samples)."
           if max(_mean(v["hq"]) for v in summary.values()) < 0.5 else
           "the ring figure through training shows whether a variant hops from mode to mode or spreads out."),
        "- **Cost**: " + ", ".join(f"{k} {v['s']:.1f} s" for k, v in summary.items())
        + " per run; the unrolled GAN differentiates through its look-ahead steps and WGAN-GP takes 5 critic steps "
        "with a double-backward penalty per generator step.",
    ]
    intro = ("Which remedies against mode collapse work on the ring of 8 Gaussians? A plain GAN (non-saturating "
             "loss), the unrolled GAN (Metz et al.: G trained against D after 5 differentiable look-ahead steps), "
             "minibatch discrimination (Salimans et al.) and WGAN-GP (Gulrajani et al.: lambda 0.1, 5 critic steps, "
             "as their toy script), each for "
             f"{steps} generator steps of batch {c['batch_size']} with Adam at {RING['lr']}, seeds "
             f"{', '.join(map(str, seeds))}. " + _ring_intro() + quick_note(quick))
    report = _write(out_dir, "Mode collapse on the ring of 8 Gaussians", intro,
                    [("Samples through training (seed 0); red circles: 3 std around each mode", training),
                     ("Final samples of every run", finals), ("Modes recovered per seed", modes_png),
                     ("Losses", losses)],
                    [("Per run", rows), ("Per variant", summary_rows)], "\n".join(lines))  # fmt: skip
    return _result(report, t0, c0, rows, {**c, "seeds": seeds, "steps": steps, "ring": RING}, quick,
                   summary_rows=summary_rows, modes={k: v["modes"] for k, v in summary.items()},
                   high_quality={k: v["hq"] for k, v in summary.items()})


@register_experiment(
    "gan-lr-ratio",
    family="generative",
    description="Generator : discriminator learning-rate ratio (1:1, 1:2, 1:4, 4:1) of a GAN on the ring",
)
def gan_lr_ratio(out_dir: Path, quick: bool = False, *, seeds: Sequence[int] | None = None,
                 steps: int | None = None, threads: int | None = 1) -> dict[str, Any]:
    """A plain ring GAN with the two players' learning rates in several ratios.

    Args:
        out_dir: the experiment's folder.
        quick: two ratios, one seed, a dozen steps.
        seeds: training seeds (default 0, 1).
        steps: generator steps per run (default 1500).
        threads: torch CPU threads.
    """
    t0, c0 = time.perf_counter(), time.process_time()
    c = dict(LR_QUICK if quick else LR_FULL)
    seeds = tuple(seeds or c["seeds"])
    steps = int(steps or c["steps"])
    data = _ring_setup(c)
    base = c["base_lr"]
    variants = {f"G:D = {rg}:{rd}": {"batch_size": c["batch_size"], "lr_g": base * rg, "lr_d": base * rd}
                for rg, rd in c["ratios"]}
    runs, modes, hq = _ring_sweep(variants, data, seeds=seeds, steps=steps, threads=threads)
    rows = [{"ratio G:D": k, "lr_g": base * rg, "lr_d": base * rd, "seed": s, "modes (of 8)": r["modes"],
             "high quality": _r(r["high_quality"]), "diverged": r["diverged"],
             "final loss_d": _r(r["log"]["loss_d"][-1] if r["log"]["loss_d"] else math.nan),
             "train s": round(r["seconds"], 1)}
            for (k, rs), (rg, rd) in zip(runs.items(), c["ratios"]) for s, r in zip(seeds, rs)]  # fmt: skip
    summary_rows = [{"ratio G:D": k, "mean modes": _r(_mean(modes[k]), 2), "mean HQ share": _r(_mean(hq[k])),
                     "min modes": min(modes[k]), "max modes": max(modes[k])} for k in runs]  # fmt: skip
    rings = _final_rings(runs, seeds, data, out_dir / "lr_ratio_rings.png", "Final samples per learning-rate ratio")
    losses = _loss_curves({k: rs[0]["log"] for k, rs in runs.items()}, out_dir / "lr_ratio_losses.png",
                          f"Losses, seed {seeds[0]}")
    modes_png = _strip({k: [float(v) for v in m] for k, m in modes.items()}, out_dir / "lr_ratio_modes.png",
                       "modes recovered (of 8)", "Modes per seed", ref=8)
    best = max(runs, key=lambda k: (_mean(modes[k]), _mean(hq[k])))
    worst = min(runs, key=lambda k: (_mean(modes[k]), _mean(hq[k])))
    d_faster = [k for (k, (rg, rd)) in zip(runs, c["ratios"]) if rd > rg]
    g_faster = [k for (k, (rg, rd)) in zip(runs, c["ratios"]) if rg > rd]
    lines = [
        f"- **Best ratio**: {best} ({_mean(modes[best]):.1f} modes, {_mean(hq[best]):.0%} high quality); worst: "
        f"{worst} ({_mean(modes[worst]):.1f} modes, {_mean(hq[worst]):.0%}).",
        "- **A faster discriminator (TTUR)**: "
        + (f"the ratios with D faster ({', '.join(d_faster)}) average {_mean([_mean(modes[k]) for k in d_faster]):.1f} "
           "modes" if d_faster else "not measured")
        + (f", the ones with G faster ({', '.join(g_faster)}) {_mean([_mean(modes[k]) for k in g_faster]):.1f}."
           if g_faster else ".")
        + " Heusel et al. prove that with separate learning rates, the discriminator on the faster time scale, GAN "
        "training converges to a local Nash equilibrium; a generator that outruns its discriminator chases a "
        "stale critic, which is what mode hopping looks like.",
        f"- One seed-to-seed range per ratio is in the table; with {len(seeds)} seed(s) a difference of one mode is "
        "within the noise.",
    ]
    intro = (f"Does the ratio of the two learning rates matter? A plain GAN (`gan_ring`) with Adam (betas 0.5, 0.999) "
             f"at lr_g = {base} x g and lr_d = {base} x d for the ratios g:d = "
             f"{', '.join(f'{a}:{b}' for a, b in c['ratios'])}, {steps} generator steps of batch {c['batch_size']}, "
             f"seeds {', '.join(map(str, seeds))}. " + _ring_intro() + quick_note(quick))
    report = _write(out_dir, "GAN learning-rate ratio on the ring", intro,
                    [("Final samples", rings), ("Modes per seed", modes_png), ("Losses", losses)],
                    [("Per run", rows), ("Per ratio", summary_rows)], "\n".join(lines))
    return _result(report, t0, c0, rows, {**c, "seeds": seeds, "steps": steps}, quick, summary_rows=summary_rows,
                   modes=modes, high_quality=hq)


@register_experiment(
    "gan-batch-size",
    family="generative",
    description="GAN batch size (16 to 1024) on the ring at a fixed number of generator steps",
)
def gan_batch_size(out_dir: Path, quick: bool = False, *, seeds: Sequence[int] | None = None,
                   steps: int | None = None, threads: int | None = 1) -> dict[str, Any]:
    """A plain ring GAN trained with several batch sizes for the same number of steps.

    Args:
        out_dir: the experiment's folder.
        quick: two batch sizes, one seed, a dozen steps.
        seeds: training seeds (default 0, 1).
        steps: generator steps per run (default 1500).
        threads: torch CPU threads.
    """
    t0, c0 = time.perf_counter(), time.process_time()
    c = dict(BS_QUICK if quick else BS_FULL)
    seeds = tuple(seeds or c["seeds"])
    steps = int(steps or c["steps"])
    data = _ring_setup(c)
    runs, modes, hq = _ring_sweep({bs: {"batch_size": bs} for bs in c["batch_sizes"]}, data, seeds=seeds, steps=steps,
                                  threads=threads)
    rows = [{"batch size": bs, "seed": s, "modes (of 8)": r["modes"], "high quality": _r(r["high_quality"]),
             "diverged": r["diverged"], "ms per step": _r(1000 * r["seconds"] / max(r["log"]["steps_done"], 1), 2),
             "train s": round(r["seconds"], 1)} for bs, rs in runs.items() for s, r in zip(seeds, rs)]  # fmt: skip
    ms = {bs: _mean([1000 * r["seconds"] / max(r["log"]["steps_done"], 1) for r in rs]) for bs, rs in runs.items()}
    summary_rows = [{"batch size": bs, "mean modes": _r(_mean(modes[bs]), 2), "mean HQ share": _r(_mean(hq[bs])),
                     "ms per step": _r(ms[bs], 2), "examples seen (D)": bs * steps} for bs in runs]  # fmt: skip
    rings = _final_rings(runs, seeds, data, out_dir / "batch_rings.png", "Final samples per batch size",
                         column=lambda bs: f"batch {bs}")
    from archlab.viz._mpl import new_figure, save_figure, style

    with style():
        fig = new_figure(10, 3.6)
        a1, a2 = fig.subplots(1, 2)
        bss = list(runs)
        a1.plot(bss, [_mean(modes[b]) for b in bss], "o-", label="modes (mean)")
        a1.set(xscale="log", xlabel="batch size", ylabel="modes recovered (of 8)", title="Coverage")
        a1b = a1.twinx()
        a1b.plot(bss, [_mean(hq[b]) for b in bss], "s--", color="C1", label="HQ share")
        a1b.set_ylabel("high-quality share")
        a2.plot(bss, [ms[b] for b in bss], "o-", color="C2")
        a2.set(xscale="log", yscale="log", xlabel="batch size", ylabel="ms per generator step", title="Cost")
        curve = save_figure(fig, out_dir / "batch_modes.png")
    best = max(runs, key=lambda b: (_mean(modes[b]), _mean(hq[b])))
    small, large = min(runs), max(runs)
    lines = [
        f"- **Most modes**: batch {best} ({_mean(modes[best]):.1f} of 8, {_mean(hq[best]):.0%} high quality). Batch "
        f"{small}: {_mean(modes[small]):.1f} modes; batch {large}: {_mean(modes[large]):.1f}.",
        f"- **Cost**: {ms[small]:.1f} ms per step at batch {small}, {ms[large]:.1f} ms at batch {large} "
        f"({ms[large] / max(ms[small], 1e-9):.1f}x for {large // small}x the examples): on these tiny MLPs the "
        "per-step overhead dominates, so a larger batch is almost free per step.",
        "- A larger batch gives the discriminator a better estimate of both distributions (Brock et al. found "
        "bigger batches help GANs most); a small batch gives noisy gradients that can keep the generator hopping "
        "between modes. At a fixed number of steps the large batches also saw more data.",
    ]
    intro = (f"Does the batch size matter for a GAN? `gan_ring` (Adam {RING['lr']}) for {steps} generator steps "
             f"with batch sizes {', '.join(map(str, c['batch_sizes']))}, seeds {', '.join(map(str, seeds))}. "
             + _ring_intro() + quick_note(quick))
    report = _write(out_dir, "GAN batch size on the ring", intro,
                    [("Final samples", rings), ("Modes, quality and cost against batch size", curve)],
                    [("Per run", rows), ("Per batch size", summary_rows)], "\n".join(lines))
    return _result(report, t0, c0, rows, {**c, "seeds": seeds, "steps": steps}, quick, summary_rows=summary_rows,
                   modes={str(k): v for k, v in modes.items()})


# --------------------------------------------------------------------------------------------------
# VAEs on the digits: latent-dim, vae-beta
# --------------------------------------------------------------------------------------------------


def _measure_intro(ref: dict[str, Any], n: int) -> str:
    return (
        f"Sample measures ({n} samples): **FID-digits**, the Frechet distance of the `digits` judge's 64 "
        "penultimate features against the test set (the FID-MNIST recipe on 8x8 images: NOT comparable with "
        "Inception FID, biased upwards at small N; held-out real digits score "
        f"{ref['real']['fid']:.2f}, the floor here); **coverage**, the share of the 10 classes that get at "
        "least 1% of the samples (judged), and the normalised **entropy** of the judged classes (1 = uniform).")


@register_experiment(
    "latent-dim",
    family="generative",
    description="VAE latent dimension (2 to 32) on the 8x8 digits: ELBO, IWAE NLL, FID-digits, class coverage",
)
def latent_dim(out_dir: Path, quick: bool = False, *, latent_dims: Sequence[int] | None = None,
               steps: int | None = None, threads: int | None = 1) -> dict[str, Any]:
    """The MLP VAE with several latent sizes.

    Args:
        out_dir: the experiment's folder.
        quick: latent sizes 2 and 8, 20 steps.
        latent_dims: the sizes (default 2, 4, 8, 16, 32).
        steps: Adam steps per model (default 3000, about 150 epochs).
        threads: torch CPU threads.
    """
    t0, c0 = time.perf_counter(), time.process_time()
    c = dict(LD_QUICK if quick else LD_FULL)
    dims = tuple(latent_dims or c["latent_dims"])
    steps = int(steps or c["steps"])
    data = digits_images()
    with num_threads(threads):
        ref = _real_reference(data)
        runs = {}
        for L in dims:
            model = make_model("vae", 0, data["info"], latent_dim=L, **VAE_OPTIONS)
            log = train_single(model, data["x_train"], steps=steps, batch_size=c["batch_size"], lr=c["lr"])
            ev = _vae_eval(model, data["x_test"], c["iwae_k"])
            samples = _sample(model, c["n_samples"], seed=0)
            runs[L] = {"log": log, **ev, **image_measures(samples, ref["stats"], data["x_train"]),
                       "samples": samples, "active": active_units(model, data["x_test"])}
    rows = [{"latent dim": L, "test ELBO": _r(r["elbo"], 2), "recon (nats)": _r(r["recon"], 2),
             "KL (nats)": _r(r["kl"], 2), f"IWAE NLL (K={c['iwae_k']})": _r(r["nll"], 2),
             "active units": r["active"], "FID-digits": _r(r["fid"], 2), "coverage": _r(r["coverage"], 2),
             "class entropy": _r(r["entropy"], 3), "train s": round(r["log"]["seconds"], 1)}
            for L, r in runs.items()]  # fmt: skip
    from archlab.viz._mpl import new_figure, save_figure, style

    with style():
        fig = new_figure(11, 3.6)
        a1, a2, a3 = fig.subplots(1, 3)
        a1.plot(dims, [runs[L]["recon"] for L in dims], "o-", label="reconstruction -log p(x|z)")
        a1.plot(dims, [runs[L]["kl"] for L in dims], "s-", label="KL(q || p)")
        a1.plot(dims, [runs[L]["nll"] for L in dims], "^-", label=f"IWAE NLL (K={c['iwae_k']})")
        a1.set(xscale="log", xlabel="latent dim", ylabel="nats per image", title="Likelihood terms (test)")
        a1.legend(fontsize=7)
        a2.plot(dims, [runs[L]["fid"] for L in dims], "o-", color="C3")
        a2.axhline(ref["real"]["fid"], color="0.5", ls=":", label="real digits")
        a2.set(xscale="log", xlabel="latent dim", ylabel="FID-digits", title="Sample quality")
        a2.legend(fontsize=7)
        a3.plot(dims, [runs[L]["active"] for L in dims], "o-", color="C4", label="active units")
        a3.plot(dims, dims, ":", color="0.5", label="latent dim")
        a3.set(xscale="log", yscale="log", xlabel="latent dim", ylabel="units", title="Active units")
        a3.legend(fontsize=7)
        metrics_png = save_figure(fig, out_dir / "latent_dim_metrics.png")
    samples_png = _image_rows({f"L={L}": runs[L]["samples"] for L in dims}, out_dir / "latent_dim_samples.png",
                              "VAE samples (Bernoulli means) per latent dimension")
    best_nll = min(dims, key=lambda L: runs[L]["nll"])
    best_fid = min(dims, key=lambda L: runs[L]["fid"])
    lines = [
        f"- **Likelihood**: the IWAE NLL is lowest at latent dim {best_nll} ({runs[best_nll]['nll']:.1f} nats); at "
        f"L = {dims[0]} it is {runs[dims[0]]['nll']:.1f}, at L = {dims[-1]} {runs[dims[-1]]['nll']:.1f}. "
        f"From the smallest code to the largest the reconstruction term "
        f"{_trend(runs[dims[0]]['recon'], runs[dims[-1]]['recon'])} and the KL "
        f"{_trend(runs[dims[0]]['kl'], runs[dims[-1]]['kl'])} (nats per image).",
        "- **Active units**: " + ", ".join(f"{runs[L]['active']}/{L}" for L in dims) + ". "
        + ("Past some size the VAE leaves extra dimensions unused (their posterior equals the prior, KL 0): "
           "the KL penalty prunes them, so a larger latent costs little."
           if any(runs[L]["active"] < L for L in dims) else "Every dimension is used at these sizes."),
        f"- **Samples**: FID-digits is lowest at L = {best_fid} ({runs[best_fid]['fid']:.2f}; real digits "
        f"{ref['real']['fid']:.2f}); class coverage " + ", ".join(str(_r(runs[L]["coverage"], 2)) for L in dims) + ". "
        "A tiny code blurs the digits together; a big one has unused directions and a prior that covers "
        "regions the decoder never saw (the 'holes' in the aggregate posterior).",
    ]
    intro = (f"How large should the code be? The MLP VAE (`vae`: {VAE_OPTIONS['hidden_dim']} tanh units, Bernoulli "
             "decoder, dynamic binarisation; Kingma & Welling) on the 8x8 digits "
             f"({len(data['x_train'])} training images), latent dim {', '.join(map(str, dims))}, {steps} Adam steps "
             f"of batch {c['batch_size']} at lr {c['lr']} each. Test measures on the {len(data['x_test'])} test "
             "images binarised with a fixed seed: ELBO, its reconstruction and KL terms, the importance-weighted "
             f"NLL with K = {c['iwae_k']} (Burda et al.), active units (posterior mean variance > 0.01). "
             + _measure_intro(ref, c["n_samples"]) + quick_note(quick))
    report = _write(out_dir, "VAE latent dimension on the digits", intro,
                    [("Test likelihood, FID-digits and active units against the latent dimension", metrics_png),
                     ("Samples", samples_png)],
                    [("Per latent dimension", rows),
                     ("Held-out real digits (reference)", [{k: _r(v, 3) for k, v in ref["real"].items()}])],
                    "\n".join(lines))  # fmt: skip
    return _result(report, t0, c0, rows, {**c, "latent_dims": dims, "steps": steps}, quick,
                   reference=ref["real"], runs={L: {k: v for k, v in r.items() if k not in ("samples", "log")}
                                                for L, r in runs.items()})  # fmt: skip


@register_experiment(
    "vae-beta",
    family="generative",
    description="beta-VAE (beta 0.5, 1, 4, 8) on the 8x8 digits: reconstruction vs KL, latent codes, samples",
)
def vae_beta(out_dir: Path, quick: bool = False, *, betas: Sequence[float] | None = None,
             steps: int | None = None, threads: int | None = 1) -> dict[str, Any]:
    """The MLP VAE with the KL term weighted by beta (Higgins et al.).

    Args:
        out_dir: the experiment's folder.
        quick: beta 1 and 4, 20 steps.
        betas: the weights (default 0.5, 1, 4, 8).
        steps: Adam steps per model (default 3000).
        threads: torch CPU threads.
    """
    t0, c0 = time.perf_counter(), time.process_time()
    c = dict(BETA_QUICK if quick else BETA_FULL)
    betas = tuple(float(b) for b in (betas or c["betas"]))
    steps = int(steps or c["steps"])
    data = digits_images()
    codes: dict[float, np.ndarray] = {}
    with num_threads(threads):
        ref = _real_reference(data)
        runs = {}
        for b in betas:
            model = make_model("vae", 0, data["info"], latent_dim=c["latent_dim"], beta=b,
                               **VAE_OPTIONS)
            log = train_single(model, data["x_train"], steps=steps, batch_size=c["batch_size"], lr=c["lr"])
            ev = _vae_eval(model, data["x_test"])
            samples = _sample(model, c["n_samples"], seed=0)
            with torch.no_grad():
                codes[b] = model.encode(data["x_test"]).double().numpy()
                recon = model.reconstruct(data["x_test"][:16])
            runs[b] = {"log": log, **ev, **image_measures(samples, ref["stats"], data["x_train"]),
                       "samples": samples, "recon_images": recon, "active": active_units(model, data["x_test"])}
    rows = [{"beta": b, "recon (nats)": _r(r["recon"], 2), "KL (nats)": _r(r["kl"], 2),
             "ELBO (beta=1)": _r(r["elbo"], 2), "beta-weighted loss": _r(r["recon"] + b * r["kl"], 2),
             "active units": f"{r['active']}/{c['latent_dim']}", "FID-digits": _r(r["fid"], 2),
             "coverage": _r(r["coverage"], 2), "train s": round(r["log"]["seconds"], 1)}
            for b, r in runs.items()]  # fmt: skip
    from archlab.viz._mpl import new_figure, save_figure, style

    with style():
        fig = new_figure(4.5, 3.8)
        ax = fig.add_subplot()
        ax.plot([runs[b]["kl"] for b in betas], [runs[b]["recon"] for b in betas], "o-")
        for b in betas:
            ax.annotate(f"beta={b:g}", (runs[b]["kl"], runs[b]["recon"]), fontsize=8, xytext=(4, 4),
                        textcoords="offset points")
        ax.set(xlabel="KL(q(z|x) || p(z)) (nats, test)", ylabel="reconstruction -log p(x|z) (nats)",
               title="Rate against distortion")
        trade_png = save_figure(fig, out_dir / "beta_tradeoff.png")
    with style():
        import matplotlib

        cmap = matplotlib.colormaps["tab10"]
        fig = new_figure(3.2 * len(betas), 3.4)
        axes = fig.subplots(1, len(betas), squeeze=False)[0]
        labels = data["y_test"].numpy()
        for ax, b in zip(axes, betas):
            z = codes[b] - codes[b].mean(0)
            _, s, vt = np.linalg.svd(z, full_matrices=False)
            p = z @ vt[:2].T
            for k in range(10):
                m = labels == k
                ax.scatter(p[m, 0], p[m, 1], s=4, color=cmap(k), label=str(k))
            share = (s[:2] ** 2).sum() / max((s**2).sum(), 1e-12)
            ax.set_title(f"beta = {b:g} (PC1-2: {share:.0%} of variance)", fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[-1].legend(fontsize=6, markerscale=2, ncols=2)
        latent_png = save_figure(fig, out_dir / "beta_latents.png")
    rows_img = {"test": data["x_test"][:16]}
    for b in betas:
        rows_img[f"recon b={b:g}"] = runs[b]["recon_images"]
    for b in betas:
        rows_img[f"sample b={b:g}"] = runs[b]["samples"][:16]
    samples_png = _image_rows(rows_img, out_dir / "beta_samples.png", "Reconstructions and samples per beta", nrow=16)
    lo, hi = betas[0], betas[-1]
    best_fid = min(betas, key=lambda b: runs[b]["fid"])
    lines = [
        f"- **Rate against distortion**: from beta = {lo:g} to {hi:g} the KL falls from {runs[lo]['kl']:.1f} to "
        f"{runs[hi]['kl']:.1f} nats and the reconstruction error rises from {runs[lo]['recon']:.1f} to "
        f"{runs[hi]['recon']:.1f} nats: beta moves the model along the rate-distortion curve (Alemi et al. 2018). "
        f"The true ELBO (beta = 1 weighting) is best at beta = {max(betas, key=lambda b: runs[b]['elbo']):g}.",
        "- **Active units**: " + ", ".join(f"beta {b:g}: {runs[b]['active']}" for b in betas) + f" of {c['latent_dim']}. "
        "A strong KL weight switches dimensions off (their posterior becomes the prior); the ones left carry the "
        "coarsest factors, the disentangling pressure Higgins et al. describe.",
        "- **Samples**: FID-digits " + ", ".join(f"{_r(runs[b]['fid'], 2)} (beta {b:g})" for b in betas) + "; best at "
        f"beta {best_fid:g}. "
        + ("A low beta keeps more information in the code and the decoder's samples stay sharp here; when beta "
           "switches units off, the decoder ignores the code and every sample is the same blurred average digit "
           "(class coverage " + ", ".join(f"{runs[b]['coverage']:.0%}" for b in betas) + ")."
           if best_fid == lo else
           "A low beta lets the aggregate posterior drift from the prior, so prior samples land in regions the "
           "decoder never saw; a high beta gives blurry but prior-consistent samples."),
    ]
    intro = (f"What does beta trade? The MLP VAE (`vae`, latent dim {c['latent_dim']}, {VAE_OPTIONS['hidden_dim']} "
             f"tanh units, Bernoulli decoder) on the 8x8 digits with loss = recon + beta KL for beta = "
             f"{', '.join(f'{b:g}' for b in betas)}, {steps} Adam steps of batch {c['batch_size']} at lr {c['lr']}. "
             "Test reconstruction and KL in nats per image (binarised with a fixed seed); the latent codes (posterior "
             "means of the test images) projected on their first two principal components. "
             + _measure_intro(ref, c["n_samples"]) + quick_note(quick))
    report = _write(out_dir, "beta-VAE on the digits", intro,
                    [("Reconstruction against KL", trade_png), ("Test codes, coloured by digit", latent_png),
                     ("Reconstructions and samples", samples_png)],
                    [("Per beta", rows)], "\n".join(lines))
    return _result(report, t0, c0, rows, {**c, "betas": betas, "steps": steps}, quick, reference=ref["real"],
                   runs={b: {k: v for k, v in r.items() if k not in ("samples", "log", "recon_images")}
                         for b, r in runs.items()})  # fmt: skip


# --------------------------------------------------------------------------------------------------
# gan-vs-vae-vs-diffusion, dcgan-vs-wgan-gp-seeds
# --------------------------------------------------------------------------------------------------


@register_experiment(
    "gan-vs-vae-vs-diffusion",
    family="generative",
    description="DCGAN vs conv VAE vs DDPM on the 8x8 digits: FID-digits, coverage, diversity, train/sample time",
)
def gan_vs_vae_vs_diffusion(out_dir: Path, quick: bool = False, *, threads: int | None = 1) -> dict[str, Any]:
    """Three families on the same data, measured the same way.

    Args:
        out_dir: the experiment's folder.
        quick: tiny networks, ten steps each.
        threads: torch CPU threads.
    """
    t0, c0 = time.perf_counter(), time.process_time()
    c = dict(VS_QUICK if quick else VS_FULL)
    data = digits_images()
    n = c["n_samples"]
    runs: dict[str, dict[str, Any]] = {}
    with num_threads(threads):
        ref = _real_reference(data)
        for label, (name, opts, budget) in c["methods"].items():
            model = make_model(name, 0, data["info"], **opts)
            if getattr(model, "task", "") == "adversarial":
                log = train_adversarial(model, data["x_train"], steps=budget["steps"],
                                        batch_size=budget["batch_size"])
            else:
                log = train_single(model, data["x_train"], steps=budget["steps"], batch_size=budget["batch_size"],
                                   lr=budget["lr"])
            # DDIM as Song et al. wrote it: no clamp of x0_hat (clamping it while keeping the network's eps
            # drives the samples to grey; see the module docstring).
            kwargs = {"steps": c["ddim_steps"], "method": "ddim", "clip_denoised": False} if name == "ddpm" else {}
            ts = time.perf_counter()
            samples = _sample(model, n, seed=0, **kwargs)
            sample_s = time.perf_counter() - ts
            runs[label] = {"log": log, "samples": samples, "sample_ms": 1000 * sample_s / n,
                           "params": sum(p.numel() for p in model.parameters()),
                           **image_measures(samples, ref["stats"], data["x_train"])}
    real = ref["real"]
    rows = [{"method": k, "parameters": r["params"], "FID-digits": _r(r["fid"], 2), "coverage": _r(r["coverage"], 2),
             "class entropy": _r(r["entropy"], 3), "diversity (mean pairwise L2)": _r(r["diversity"], 3),
             "nearest-train L2": _r(r["nn_train"], 3), "train s": round(r["log"]["seconds"], 1),
             "sample ms / image": _r(r["sample_ms"], 3), "diverged": r["log"]["diverged"]}
            for k, r in runs.items()]  # fmt: skip
    rows.append({"method": "real digits (held out)", "parameters": 0, "FID-digits": _r(real["fid"], 2),
                 "coverage": _r(real["coverage"], 2), "class entropy": _r(real["entropy"], 3),
                 "diversity (mean pairwise L2)": _r(real["diversity"], 3), "nearest-train L2": _r(real["nn_train"], 3),
                 "train s": 0.0, "sample ms / image": 0.0, "diverged": False})  # fmt: skip
    samples_png = _image_rows({"real": data["x_test"], **{k: r["samples"] for k, r in runs.items()}},
                              out_dir / "samples_side_by_side.png", "32 samples per method (seed 0)")
    from archlab.viz._mpl import new_figure, save_figure, style

    names = list(runs)
    with style():
        fig = new_figure(11, 3.6)
        axes = fig.subplots(1, 3)
        for ax, (key, label) in zip(axes, (("fid", "FID-digits (lower is better)"),
                                           ("diversity", "mean pairwise L2 (diversity)"),
                                           ("sample_ms", "sampling ms per image (log)"))):
            ax.bar(names, [runs[k][key] for k in names], color=[f"C{i}" for i in range(len(names))])
            if key in ("fid", "diversity"):
                ax.axhline(real[key], color="0.4", ls=":", label="real digits")
                ax.legend(fontsize=7)
            if key == "sample_ms":
                ax.set_yscale("log")
            ax.set_title(label, fontsize=9)
            ax.tick_params(axis="x", labelsize=7)
        bars_png = save_figure(fig, out_dir / "quality_time.png")
    best = min(names, key=lambda k: runs[k]["fid"] if math.isfinite(runs[k]["fid"]) else math.inf)
    fastest = min(names, key=lambda k: runs[k]["sample_ms"])
    slowest = max(names, key=lambda k: runs[k]["sample_ms"])
    div_close = min(names, key=lambda k: abs(runs[k]["diversity"] - real["diversity"]))
    lines = [
        f"- **Quality**: lowest FID-digits {best} ({runs[best]['fid']:.2f}); "
        + ", ".join(f"{k} {runs[k]['fid']:.2f}" for k in names if k != best)
        + f"; held-out real digits {real['fid']:.2f}. Class coverage: "
        + ", ".join(f"{k} {runs[k]['coverage']:.0%}" for k in names) + ".",
        "- **Diversity**: mean pairwise distance " + ", ".join(f"{k} {runs[k]['diversity']:.2f}" for k in names)
        + f" against {real['diversity']:.2f} for real digits; closest to the data: {div_close}. "
        + (f"Below the data's: {', '.join(k for k in names if runs[k]['diversity'] < 0.8 * real['diversity'])} "
           "(samples too alike: blurred averages, or a generator that covers part of the data). "
           if any(runs[k]["diversity"] < 0.8 * real["diversity"] for k in names) else "")
        + (f"Above it: {', '.join(k for k in names if runs[k]['diversity'] > 1.2 * real['diversity'])} (noisy samples)."
           if any(runs[k]["diversity"] > 1.2 * real["diversity"] for k in names) else ""),
        "- **Time**: training " + ", ".join(f"{k} {runs[k]['log']['seconds']:.0f} s" for k in names) + "; sampling "
        + ", ".join(f"{k} {runs[k]['sample_ms']:.3f} ms" for k in names) + f" per image. {slowest} is "
        f"{runs[slowest]['sample_ms'] / max(runs[fastest]['sample_ms'], 1e-9):.0f}x slower than {fastest}: "
        f"diffusion runs its network once per sampler step ({c['ddim_steps']} DDIM steps here, 1000 for "
        "ancestral DDPM) where a GAN or VAE decoder runs once.",
        "- **Memorisation check**: mean distance from a sample to its nearest training image "
        + ", ".join(f"{k} {runs[k]['nn_train']:.2f}" for k in names)
        + f" (held-out real digits: {real['nn_train']:.2f}); a value far below the real one would mean copying.",
    ]
    budgets = "; ".join(f"{k}: `{n_}` {o}, {b['steps']} steps of batch {b['batch_size']}"
                        for k, (n_, o, b) in c["methods"].items())
    intro = ("GANs, VAEs and diffusion models on the same data and the same measures: the 8x8 digits "
             f"({len(data['x_train'])} training images). {budgets} (Adam; the GAN with DCGAN's 2e-4, betas "
             f"(0.5, 0.999)). DDPM samples with DDIM ({c['ddim_steps']} steps, eta 0, no clamp of the predicted x_0). Time: wall seconds on one "
             "thread of a shared machine. **Diversity**: mean pairwise L2 distance between samples; "
             "**nearest-train L2**: mean distance from a sample to its closest training image. "
             + _measure_intro(ref, n) + quick_note(quick))
    report = _write(out_dir, "GAN vs VAE vs diffusion on the digits", intro,
                    [("Samples", samples_png), ("Quality, diversity and sampling cost", bars_png)],
                    [("Per method", rows)], "\n".join(lines))
    return _result(report, t0, c0, rows, {k: v for k, v in c.items() if k != "methods"} | {
        "methods": {k: [n_, o, b] for k, (n_, o, b) in c["methods"].items()}}, quick, reference=real,
        runs={k: {kk: vv for kk, vv in r.items() if kk not in ("samples", "log")} for k, r in runs.items()})


@register_experiment(
    "dcgan-vs-wgan-gp-seeds",
    family="generative",
    description="DCGAN vs WGAN-GP across seeds on the 8x8 digits: FID-digits spread, divergence and collapse counts",
)
def dcgan_vs_wgan_gp_seeds(out_dir: Path, quick: bool = False, *, seeds: Sequence[int] | None = None,
                           steps: int | None = None, threads: int | None = 1) -> dict[str, Any]:
    """Stability of DCGAN and WGAN-GP over seeds.

    Args:
        out_dir: the experiment's folder.
        quick: one seed, a few steps, tiny networks.
        seeds: training seeds (default 0-3).
        steps: generator steps per run (default 1200).
        threads: torch CPU threads.
    """
    t0, c0 = time.perf_counter(), time.process_time()
    c = dict(SEEDS_QUICK if quick else SEEDS_FULL)
    seeds = tuple(seeds or c["seeds"])
    steps = int(steps or c["steps"])
    data = digits_images()
    n = c["n_samples"]
    at = [round(steps * (k + 1) / c["evals"]) for k in range(c["evals"])]
    runs: dict[str, list[dict[str, Any]]] = {}
    with num_threads(threads):
        ref = _real_reference(data)
        for label, (name, opts) in c["methods"].items():
            runs[label] = []
            for s in seeds:
                model = make_model(name, s, data["info"], **opts)
                curve: list[tuple[int, float]] = []

                def evaluate(step: int, model: Any = model, curve: list = curve) -> None:
                    curve.append((step, image_measures(_sample(model, n, seed=0), ref["stats"],
                                                       data["x_train"])["fid"]))

                log = train_adversarial(model, data["x_train"], steps=steps, batch_size=c["batch_size"], seed=s,
                                        callback=evaluate, callback_at=at)
                samples = _sample(model, n, seed=0)
                final = image_measures(samples, ref["stats"], data["x_train"])
                collapsed = final["coverage"] < COLLAPSE_COVERAGE
                runs[label].append({"seed": s, "log": log, "curve": curve, "samples": samples, **final,
                                    "collapsed": collapsed})
    rows = [{"method": k, "seed": r["seed"], "FID-digits": _r(r["fid"], 2), "coverage": _r(r["coverage"], 2),
             "class entropy": _r(r["entropy"], 3), "diverged (NaN)": r["log"]["diverged"],
             "collapsed (coverage < 50%)": r["collapsed"], "train s": round(r["log"]["seconds"], 1)}
            for k, rs in runs.items() for r in rs]  # fmt: skip
    fids = {k: [r["fid"] for r in rs] for k, rs in runs.items()}
    summary_rows = [{"method": k, "mean FID": _r(_mean(fids[k]), 2), "std FID": _r(_std(fids[k]), 2),
                     "best": _r(min(fids[k]), 2), "worst": _r(max(fids[k]), 2),
                     "diverged": sum(r["log"]["diverged"] for r in rs), "collapsed": sum(r["collapsed"] for r in rs),
                     "runs": len(rs), "train s per run": round(_mean([r["log"]["seconds"] for r in rs]), 1)}
                    for k, rs in runs.items()]  # fmt: skip
    from archlab.viz._mpl import new_figure, save_figure, style

    with style():
        fig = new_figure(6.5, 3.8)
        ax = fig.add_subplot()
        for i, (k, rs) in enumerate(runs.items()):
            for j, r in enumerate(rs):
                if r["curve"]:
                    xs, ys = zip(*r["curve"])
                    ax.plot(xs, ys, "o-", color=f"C{i}", lw=1, ms=3, alpha=0.8, label=k if j == 0 else None)
        ax.axhline(ref["real"]["fid"], color="0.5", ls=":", label="real digits")
        ax.set(xlabel="generator step", ylabel="FID-digits", yscale="log", title="FID-digits through training, per seed")
        ax.legend(fontsize=8)
        curves_png = save_figure(fig, out_dir / "fid_curves.png")
    spread_png = _strip(fids, out_dir / "final_fid.png", "final FID-digits", f"Final FID per seed ({len(seeds)} seeds)",
                        ref=ref["real"]["fid"])
    samples_png = _image_rows({f"{k} s{r['seed']}": r["samples"] for k, rs in runs.items() for r in rs},
                              out_dir / "seed_samples.png", "Final samples per method and seed")
    names = list(runs)
    stable = min(names, key=lambda k: _std(fids[k]) if math.isfinite(_std(fids[k])) else math.inf)
    lines = [
        "- **Final quality**: " + "; ".join(f"{k} mean FID-digits {_mean(fids[k]):.2f} (std {_std(fids[k]):.2f}, "
                                            f"range {min(fids[k]):.2f}-{max(fids[k]):.2f})" for k in names)
        + f"; real digits {ref['real']['fid']:.2f}.",
        (f"- **Spread**: the smaller seed-to-seed spread (std of the final FID) is {stable}'s. Lucic et al. found "
         "that with enough seeds and tuning most GAN losses reach similar FIDs; the difference is mostly in how "
         "often a run fails." if len(seeds) > 1 else "- **Spread**: one seed only, no spread to compare."),
        "- **Failures**: " + "; ".join(
            f"{k}: {sum(r['log']['diverged'] for r in runs[k])} diverged (NaN), "
            f"{sum(r['collapsed'] for r in runs[k])} collapsed (< {COLLAPSE_COVERAGE:.0%} of the classes)"
            for k in names) + f" of {len(seeds)} run(s) each.",
        "- **Cost**: " + ", ".join(f"{k} {_mean([r['log']['seconds'] for r in runs[k]]):.0f} s per run" for k in names)
        + " (WGAN-GP: 5 critic steps with the gradient penalty's double backward per generator step).",
    ]
    intro = (f"How stable are DCGAN and WGAN-GP across seeds? Both on DCGAN-shaped networks for the 8x8 digits "
             f"(`dcgan`: batch-norm discriminator, Adam 2e-4 (0.5, 0.999); `wgan_gp`: layer-norm critic, lambda 10, "
             f"5 critic steps, Adam 1e-4 (0, 0.9)), {steps} generator steps of batch {c['batch_size']}, seeds "
             f"{', '.join(map(str, seeds))}; FID-digits measured {c['evals']} times during training. A run "
             f"*diverged* when a loss became NaN, *collapsed* when its samples cover fewer than "
             f"{COLLAPSE_COVERAGE:.0%} of the classes. " + _measure_intro(ref, n) + quick_note(quick))
    report = _write(out_dir, "DCGAN vs WGAN-GP across seeds", intro,
                    [("FID-digits through training", curves_png), ("Final FID-digits per seed", spread_png),
                     ("Final samples", samples_png)],
                    [("Per run", rows), ("Per method", summary_rows)], "\n".join(lines))
    return _result(report, t0, c0, rows, {**{k: v for k, v in c.items() if k != "methods"}, "seeds": seeds,
                                          "steps": steps}, quick, summary_rows=summary_rows, fids=fids,
                   reference=ref["real"])
