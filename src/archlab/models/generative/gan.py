"""GANs: the original GAN, DCGAN, WGAN, WGAN-GP and the conditional GAN, with mode-collapse remedies.

    I. Goodfellow et al., "Generative Adversarial Nets", NeurIPS 2014, https://arxiv.org/abs/1406.2661
    A. Radford, L. Metz, S. Chintala, "Unsupervised Representation Learning with Deep Convolutional
    Generative Adversarial Networks" (DCGAN), ICLR 2016, https://arxiv.org/abs/1511.06434
    M. Arjovsky, S. Chintala, L. Bottou, "Wasserstein GAN", ICML 2017, https://arxiv.org/abs/1701.07875
    I. Gulrajani et al., "Improved Training of Wasserstein GANs" (WGAN-GP), NeurIPS 2017,
    https://arxiv.org/abs/1704.00028
    M. Mirza, S. Osindero, "Conditional Generative Adversarial Nets", 2014, https://arxiv.org/abs/1411.1784
    T. Miyato, M. Koyama, "cGANs with Projection Discriminator", ICLR 2018, https://arxiv.org/abs/1802.05637
    T. Salimans et al., "Improved Techniques for Training GANs" (minibatch discrimination), NeurIPS 2016,
    https://arxiv.org/abs/1606.03498
    L. Metz, B. Poole, D. Pfau, J. Sohl-Dickstein, "Unrolled Generative Adversarial Networks", ICLR 2017,
    https://arxiv.org/abs/1611.02163

A generator G maps noise z ~ N(0, I) (B, latent_dim) to data; a discriminator D scores data. The
two play (Goodfellow eq. 1)::

    min_G max_D  E_x[log sigma(D(x))] + E_z[log(1 - sigma(D(G(z))))]          D(.) a logit

    loss_d = softplus(-D(x)).mean() + softplus(D(G(z))).mean()               (the BCE of real vs fake)
    loss_g = softplus(-D(G(z))).mean()        "non_saturating": -log sigma(D(G(z))) (the paper's advice, sec. 3)
    loss_g = -softplus(D(G(z))).mean()        "minimax": log(1 - sigma(D(G(z)))), the game as written

WGAN (Arjovsky et al., Algorithm 1) trains a critic f (no sigmoid) to estimate the Wasserstein-1
distance, W ~ E_x[f(x)] - E_z[f(G(z))], keeping f roughly K-Lipschitz by clipping every critic
weight to [-c, c] after each critic step (c = 0.01), with n_critic = 5 critic steps per generator
step and RMSprop (lr 5e-5)::

    loss_d = f(G(z)).mean() - f(x).mean()          loss_g = -f(G(z)).mean()

WGAN-GP (Gulrajani et al., Algorithm 1) replaces clipping by a penalty on the critic's gradient
norm at random interpolates between real and fake samples (lambda = 10, n_critic = 5, Adam lr 1e-4,
betas (0, 0.9), no batch norm in the critic: layer norm here)::

    x_hat = eps * x + (1 - eps) * G(z),  eps ~ U[0, 1] per example
    loss_d = f(G(z)).mean() - f(x).mean() + lambda * ((||grad_x_hat f(x_hat)||_2 - 1) ** 2).mean()

(:func:`gradient_penalty`). The conditional GAN (Mirza & Osindero) gives both players the class y:
G(z, e_G(y)) with a label embedding concatenated to z, and D(x, e_D(y)) with an embedding
concatenated to the input (the MLP's input vector, or broadcast as extra image channels for the
DCGAN body). ``projection=True`` is Miyato & Koyama's discriminator instead:
D(x, y) = psi(phi(x)) + <e(y), phi(x)>, the inner product of a class embedding with D's features.

Mode-collapse remedies (for the 2-D ring of 8 Gaussians): ``minibatch_discrimination=True``
appends Salimans et al.'s minibatch features to D's (see
:class:`~archlab.models.generative.nets.MinibatchDiscrimination`); ``unroll_steps=k`` trains G
against D after k look-ahead updates of D, differentiating through them (Metz et al., eq. 6-7)::

    theta_D^0 = theta_D,   theta_D^{i+1} = theta_D^i - eta * d loss_d(theta_D^i, G) / d theta_D^i
    loss_g = loss_g(theta_D^k, G)        (the real D is then updated from theta_D^0 as usual)

Data: the methods receive images in [0, 1] and train on x * 2 - 1 (G ends with tanh); tabular
data (the ring) is used as is (G ends with a linear layer). ``sample`` returns images in [0, 1].
Validation (eval mode) draws its noise from a generator seeded with ``eval_seed``, so the
validation losses of two epochs (and two builds) see the same z.

Registered: ``gan`` (MLP), ``gan_ring`` / ``gan_unrolled`` / ``gan_minibatch`` (Metz et al.'s 2-D
sizes), ``dcgan``, ``wgan``, ``wgan_gp``, ``wgan_gp_ring`` (Gulrajani et al.'s toy sizes),
``cgan`` (MLP), ``cdcgan`` (DCGAN networks, concatenated labels), ``cgan_projection`` (DCGAN
networks, projection discriminator).

Deviations from the paper:
    - Noise is z ~ N(0, I) for every variant (Goodfellow and DCGAN drew uniform noise).
    - ``gan`` uses LeakyReLU MLPs trained with Adam 2e-4, betas (0.5, 0.999) (DCGAN's settings);
      Goodfellow used maxout, dropout and SGD with momentum. ``loss="minimax"`` gives the paper's
      saturating generator loss; the default is the non-saturating one the paper recommends.
    - WGAN: Algorithm 1's n_critic = 5 throughout (the authors' code also ran 100 critic steps for
      the first 25 generator steps and every 500th); each critic step takes its own real batch.
    - WGAN-GP's critic uses layer norm (GroupNorm with one group on feature maps), which the paper
      recommends as the drop-in for batch norm. ``wgan_gp_ring`` follows the authors' toy script
      (gan_toy.py: 3 ReLU layers of 512, noise dim 2, lambda 0.1, Adam betas (0.5, 0.9)).
    - The conditional generator always concatenates a learned label embedding to z (Miyato & Koyama
      used conditional batch norm in G and spectral norm in D; ``cgan_projection`` uses batch norm
      in D). Mirza & Osindero mapped one-hot labels through a hidden layer; a learned embedding is
      the same linear map.
    - Unrolled GAN: the k look-ahead steps are plain gradient steps with ``unroll_lr`` on the
      same real and fake batch (Metz et al. unrolled D's own Adam update); validation (and any
      call without gradients) reports the plain, not unrolled, generator loss.
    - Minibatch discrimination is computed within the real batch and within the fake batch
      separately (each is one call of D), and the sum over the batch includes j = i, as the paper
      writes it.
    - Gradient clipping, EMA, schedules etc. come from the engine's ``train`` section; the
      optimizer settings come from the model's config (``lr_g``, ``lr_d``, ``betas``,
      ``optimizer``) unless the run sets ``train.lr`` (see ``AdversarialTask``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from archlab.models.generative.base import GenerativeMethod, to_signed, to_unit
from archlab.models.generative.nets import (
    DCGANDiscriminator,
    DCGANGenerator,
    MinibatchDiscrimination,
    MLPDiscriminator,
    MLPGenerator,
)
from archlab.registry import register_model

__all__ = ["GAN", "GANConfig", "CGANConfig", "Generator", "Discriminator", "gradient_penalty"]


@dataclass
class GANConfig:
    """Options of :class:`GAN` (defaults: Goodfellow's GAN on MNIST with MLP networks).

    Attributes:
        in_channels: image channels (filled from the dataset).
        image_size: image side (filled from the dataset); None for tabular data.
        in_features: features of one sample (filled from the dataset; image datasets give C*H*W,
            and any other value means tabular data, e.g. 2 for the ring).
        latent_dim: size of the noise z.
        net: ``"mlp"``, ``"dcgan"`` (images only) or ``"auto"`` (DCGAN for images, MLP for tabular data).
        hidden_dim: MLP width.
        num_layers: MLP hidden layers (generator and discriminator each).
        base_channels: DCGAN width (see :mod:`archlab.models.generative.nets`).
        d_norm: discriminator normalisation: ``"batch"``, ``"layer"`` or ``"none"``.
        loss: ``"non_saturating"``, ``"minimax"`` (Goodfellow) or ``"wasserstein"`` (WGAN critic).
        d_steps: discriminator (critic) steps per generator step (WGAN: 5).
        clip: WGAN weight clipping c (critic weights clamped to [-c, c] after each step); None = off.
        gp_weight: WGAN-GP's lambda (0 = no gradient penalty).
        minibatch_discrimination: append Salimans et al.'s minibatch features to D's features.
        mbd_kernels, mbd_dim: their number of kernels B and kernel size C.
        unroll_steps: Metz et al.'s k (0 = not unrolled).
        unroll_lr: step size of the unrolled look-ahead updates.
        optimizer: ``"adam"`` or ``"rmsprop"`` (both players).
        lr_g, lr_d: learning rates of the generator and the discriminator.
        betas: Adam's betas.
        eval_seed: seed of the noise in eval mode (validation losses).
    """

    in_channels: int = 1
    image_size: int | None = 28
    in_features: int = 784
    latent_dim: int = 100
    net: Literal["auto", "mlp", "dcgan"] = "mlp"
    hidden_dim: int = 256
    num_layers: int = 2
    base_channels: int = 64
    d_norm: Literal["batch", "layer", "none"] = "none"
    loss: Literal["non_saturating", "minimax", "wasserstein"] = "non_saturating"
    d_steps: int = 1
    clip: float | None = None
    gp_weight: float = 0.0
    minibatch_discrimination: bool = False
    mbd_kernels: int = 50
    mbd_dim: int = 5
    unroll_steps: int = 0
    unroll_lr: float = 5e-3
    optimizer: Literal["adam", "rmsprop"] = "adam"
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    eval_seed: int = 0

    TINY: ClassVar[dict[str, Any]] = {"image_size": 8, "in_features": 64, "latent_dim": 8, "hidden_dim": 16,
                                      "base_channels": 8, "mbd_kernels": 4, "mbd_dim": 3}

    def __post_init__(self) -> None:
        if min(self.in_channels, self.in_features, self.latent_dim, self.hidden_dim, self.num_layers,
               self.base_channels, self.d_steps, self.mbd_kernels, self.mbd_dim) < 1:
            raise ValueError("in_channels, in_features, latent_dim, hidden_dim, num_layers, base_channels, d_steps, "
                             "mbd_kernels and mbd_dim must be >= 1")
        if self.clip is not None and not self.clip > 0:
            raise ValueError(f"clip must be > 0 (WGAN: 0.01) or null for no clipping, got {self.clip}")
        if self.gp_weight < 0 or self.unroll_steps < 0:
            raise ValueError("gp_weight and unroll_steps must be >= 0")
        if (self.clip is not None or self.gp_weight > 0) and self.loss != "wasserstein":
            raise ValueError(f"clip and gp_weight constrain a WGAN critic; set loss='wasserstein' (got {self.loss!r})")

    @property
    def is_image(self) -> bool:
        """True for image data (C, H, W); False for tabular (in_features,)."""
        return self.image_size is not None and self.in_features == self.in_channels * self.image_size ** 2


@dataclass
class CGANConfig(GANConfig):
    """Options of the conditional GAN: :class:`GANConfig` plus the classes.

    Attributes:
        num_classes: number of classes (filled from the dataset).
        embed_dim: size of the label embeddings concatenated to z (and to D's input unless ``projection``).
        projection: Miyato & Koyama's projection discriminator instead of input concatenation.
    """

    num_classes: int = 10
    embed_dim: int = 32
    projection: bool = False

    TINY: ClassVar[dict[str, Any]] = {**GANConfig.TINY, "embed_dim": 4}

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.num_classes < 1 or self.embed_dim < 1:
            raise ValueError("num_classes and embed_dim must be >= 1")


def gradient_penalty(critic: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor,
                     eps: Tensor | None = None) -> Tensor:
    """WGAN-GP's penalty ``E[(||grad_x_hat critic(x_hat)||_2 - 1)^2]`` on random interpolates.

    ``x_hat = eps * real + (1 - eps) * fake`` with one ``eps ~ U[0, 1]`` per example (Gulrajani et
    al., Algorithm 1, lines 6-8); the gradient is taken with ``create_graph=True`` so the penalty
    trains the critic. Works under ``torch.no_grad()`` too (validation): grad mode is enabled inside.

    Args:
        critic: ``x (B, ...) -> scores (B,)`` (or (B, 1)).
        real: a real batch (B, ...).
        fake: a generated batch of the same shape (detached here).
        eps: interpolation weights (B,) or broadcastable to ``real``; None draws U[0, 1].

    Returns:
        the penalty, a scalar (without lambda).
    """
    b = real.shape[0]
    if eps is None:
        eps = torch.rand(b, device=real.device, dtype=real.dtype)
    eps = eps.reshape(b, *([1] * (real.dim() - 1)))  # (B, 1, ..., 1)
    with torch.enable_grad():
        x_hat = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)  # (B, ...)
        scores = critic(x_hat)
        (grad,) = torch.autograd.grad(scores.sum(), x_hat, create_graph=True)  # (B, ...)
        norm = grad.flatten(1).norm(2, dim=1)  # (B,)
        return ((norm - 1.0) ** 2).mean()


class Generator(nn.Module):
    """z (B, latent_dim) [+ labels] -> data in the working range ([-1, 1] images or raw features)."""

    def __init__(self, cfg: GANConfig, net: str, num_classes: int | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        cond_dim = cfg.embed_dim if num_classes else 0
        self.embed = nn.Embedding(num_classes, cond_dim) if num_classes else None
        if net == "dcgan":
            self.net: nn.Module = DCGANGenerator(cfg.latent_dim, cfg.in_channels, cfg.image_size, cfg.base_channels,
                                                 cond_dim=cond_dim)
        else:
            self.net = MLPGenerator(cfg.latent_dim, cfg.in_features, cfg.hidden_dim, cfg.num_layers,
                                    out_activation="tanh" if cfg.is_image else "none", cond_dim=cond_dim)

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        cond = self.embed(y) if self.embed is not None else None  # (B, E)
        out = self.net(z, cond)
        if self.cfg.is_image:
            out = out.reshape(-1, self.cfg.in_channels, self.cfg.image_size, self.cfg.image_size)  # (B, C, H, W)
        return out


class Discriminator(nn.Module):
    """data (B, ...) [+ labels] -> one logit / critic value per example (B,).

    body features phi(x) (B, F) [-> minibatch discrimination (B, F + K)] -> linear head psi,
    plus Miyato & Koyama's projection <e(y), phi> when ``projection``.
    """

    def __init__(self, cfg: GANConfig, net: str, num_classes: int | None = None, projection: bool = False) -> None:
        super().__init__()
        self.projection = bool(num_classes) and projection
        cond_dim = cfg.embed_dim if num_classes and not self.projection else 0
        self.embed = nn.Embedding(num_classes, cond_dim) if cond_dim else None
        if net == "dcgan":
            self.body: nn.Module = DCGANDiscriminator(cfg.in_channels, cfg.image_size, cfg.base_channels,
                                                      norm=cfg.d_norm, cond_dim=cond_dim)
        else:
            self.body = MLPDiscriminator(cfg.in_features, cfg.hidden_dim, cfg.num_layers, norm=cfg.d_norm,
                                         cond_dim=cond_dim)
        width = self.body.out_features
        self.mbd = MinibatchDiscrimination(width, cfg.mbd_kernels, cfg.mbd_dim) if cfg.minibatch_discrimination else None
        if self.mbd is not None:
            width = self.mbd.out_features
        self.head = nn.Linear(width, 1)
        self.proj = nn.Embedding(num_classes, width) if self.projection else None
        if self.proj is not None:
            nn.init.normal_(self.proj.weight, 0.0, 0.02)

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        cond = self.embed(y) if self.embed is not None else None  # (B, E)
        h = self.body.features(x, cond)  # (B, F)
        if self.mbd is not None:
            h = self.mbd(h)  # (B, F + K)
        out = self.head(h).squeeze(1)  # (B,)
        if self.proj is not None:
            out = out + (self.proj(y) * h).sum(1)  # <e(y), phi(x)>
        return out


class GAN(GenerativeMethod):
    """A generator and a discriminator (critic) with the GAN / WGAN / WGAN-GP losses; see the module docstring.

    Args:
        config: a :class:`GANConfig` (or :class:`CGANConfig` for the conditional GAN).
    """

    task = "adversarial"

    def __init__(self, config: GANConfig) -> None:
        super().__init__()
        self.config = cfg = config
        net = cfg.net
        if net == "auto":
            net = "dcgan" if cfg.is_image else "mlp"
        if net == "dcgan" and not cfg.is_image:
            raise ValueError(f"DCGAN networks need image data (in_channels x image_size x image_size = in_features), "
                             f"got image_size={cfg.image_size}, in_features={cfg.in_features}; use net='mlp' (or the "
                             f"gan / wgan_gp variants) for tabular data such as the ring")
        num_classes = getattr(cfg, "num_classes", None)
        self.conditional = num_classes is not None
        self.d_steps = cfg.d_steps
        self.generator = Generator(cfg, net, num_classes)
        self.discriminator = Discriminator(cfg, net, num_classes, getattr(cfg, "projection", False))

    # ---- helpers ------------------------------------------------------------------------------
    def _prep(self, x: Tensor) -> Tensor:
        """Data in [0, 1] (images) -> the working range [-1, 1]; tabular data as is."""
        return to_signed(x) if self.config.is_image else x

    def _labels(self, y: Tensor | None, n: int) -> Tensor | None:
        if not self.conditional:
            return None
        if y is None:
            raise ValueError(f"{getattr(self, 'model_name', 'this conditional GAN')} needs class labels y (B,)")
        return y[:n].long()

    def _noise(self, n: int, device: torch.device, generator: torch.Generator | None = None) -> Tensor:
        if generator is None and not self.training:
            # Eval mode: a fixed z, so validation losses compare across epochs and builds.
            generator = torch.Generator(device=device).manual_seed(self.config.eval_seed)
        return torch.randn(n, self.config.latent_dim, device=device, generator=generator)  # (n, L)

    def _d_terms(self, d_real: Tensor, d_fake: Tensor) -> Tensor:
        if self.config.loss == "wasserstein":
            return d_fake.mean() - d_real.mean()
        return F.softplus(-d_real).mean() + F.softplus(d_fake).mean()  # BCE: real -> 1, fake -> 0

    def _g_term(self, d_fake: Tensor) -> Tensor:
        loss = self.config.loss
        if loss == "wasserstein":
            return -d_fake.mean()
        if loss == "minimax":
            return -F.softplus(d_fake).mean()  # log(1 - sigma(D(G(z))))
        return F.softplus(-d_fake).mean()  # -log sigma(D(G(z)))

    # ---- the adversarial contract -------------------------------------------------------------
    def discriminator_loss(self, x: Tensor, y: Tensor | None = None) -> dict[str, Tensor]:
        """D's (critic's) loss on a real batch x (B, ...) and as many fakes (G's output detached)."""
        real = self._prep(x)
        y = self._labels(y, len(x))
        with torch.no_grad():
            fake = self.generator(self._noise(len(x), x.device), y)
        d_real = self.discriminator(real, y)  # (B,)
        d_fake = self.discriminator(fake, y)  # (B,)
        loss = self._d_terms(d_real, d_fake)
        out: dict[str, Tensor] = {}
        if self.config.loss == "wasserstein":
            out["wasserstein"] = (d_real.mean() - d_fake.mean()).detach()
            if self.config.gp_weight > 0:
                eps = None
                if not self.training:
                    g = torch.Generator(device=x.device).manual_seed(self.config.eval_seed + 1)
                    eps = torch.rand(len(x), device=x.device, generator=g)
                gp = gradient_penalty(lambda v: self.discriminator(v, y), real, fake, eps)
                loss = loss + self.config.gp_weight * gp
                out["gp"] = gp.detach()
        else:
            out["d_real"] = torch.sigmoid(d_real).mean().detach()
            out["d_fake"] = torch.sigmoid(d_fake).mean().detach()
        return {"loss": loss, **out}

    def generator_loss(self, x: Tensor, y: Tensor | None = None) -> dict[str, Tensor]:
        """G's loss on len(x) fakes (x gives the batch size, the device and, unrolled, D's real batch)."""
        y = self._labels(y, len(x))
        fake = self.generator(self._noise(len(x), x.device), y)
        if self.config.unroll_steps > 0 and self.training and torch.is_grad_enabled():
            d_fake = self._unrolled_scores(self._prep(x), fake, y)
        else:
            d_fake = self.discriminator(fake, y)
        return {"loss": self._g_term(d_fake)}

    def _unrolled_scores(self, real: Tensor, fake: Tensor, y: Tensor | None) -> Tensor:
        """D(fake) under theta_D^k: k differentiable gradient steps of D from its current weights."""
        from torch.func import functional_call

        params = dict(self.discriminator.named_parameters())
        buffers = dict(self.discriminator.named_buffers())
        for _ in range(self.config.unroll_steps):
            state = {**params, **buffers}
            loss = self._d_terms(functional_call(self.discriminator, state, (real, y)),
                                 functional_call(self.discriminator, state, (fake, y)))
            grads = torch.autograd.grad(loss, list(params.values()), create_graph=True)
            params = {k: p - self.config.unroll_lr * g for (k, p), g in zip(params.items(), grads)}
        return functional_call(self.discriminator, {**params, **buffers}, (fake, y))

    def generator_parameters(self) -> list[nn.Parameter]:
        return list(self.generator.parameters())

    def discriminator_parameters(self) -> list[nn.Parameter]:
        return list(self.discriminator.parameters())

    @torch.no_grad()
    def after_discriminator_step(self) -> None:
        """WGAN: clamp every critic weight to [-c, c]."""
        c = self.config.clip
        if c is not None:
            for p in self.discriminator.parameters():
                p.clamp_(-c, c)

    def optimizer_settings(self) -> dict[str, dict[str, Any]]:
        cfg = self.config
        settings = []
        for lr in (cfg.lr_g, cfg.lr_d):
            s: dict[str, Any] = {"name": cfg.optimizer, "lr": lr}
            if cfg.optimizer == "adam":
                s["betas"] = tuple(cfg.betas)
            settings.append(s)
        return {"generator": settings[0], "discriminator": settings[1]}

    def forward(self, x: Tensor, y: Tensor | None = None) -> dict[str, Tensor]:
        """Both losses on one batch: ``{"loss_d", "loss_g", "loss" = loss_d + loss_g, metrics}``."""
        d = self.discriminator_loss(x, y)
        g = self.generator_loss(x, y)
        out = {k: v for k, v in d.items() if k != "loss"}
        return {"loss": d["loss"] + g["loss"], "loss_d": d["loss"], "loss_g": g["loss"], **out}

    # ---- sampling -----------------------------------------------------------------------------
    @torch.no_grad()
    def sample(self, n: int, *, y: Tensor | None = None, generator: torch.Generator | None = None) -> Tensor:
        """n samples: images in [0, 1] (n, C, H, W) or raw features (n, D); labels y (n,) if conditional."""
        device = self.device
        if self.conditional:
            if y is None:
                y = torch.randint(0, int(self.config.num_classes), (n,), generator=generator,
                                  device=generator.device if generator is not None else device)
            y = y.to(device).long()
            if y.shape != (n,):
                raise ValueError(f"y must hold one label per sample, shape ({n},), got {tuple(y.shape)}")
        z = torch.randn(n, self.config.latent_dim, generator=generator,
                        device=generator.device if generator is not None else device).to(device)
        out = self.generator(z, y)
        return to_unit(out) if self.config.is_image else out


# ---- registered variants ----------------------------------------------------------------------
_RING = {"in_features": 2, "image_size": None, "hidden_dim": 128, "latent_dim": 256, "lr_g": 1e-4, "lr_d": 1e-4}


@register_model("gan", family="generative", config=GANConfig)
def gan(cfg: GANConfig) -> GAN:
    """Goodfellow et al.'s GAN with MLP networks (non-saturating loss; loss='minimax' for the game as written)."""
    return GAN(cfg)


@register_model("gan_ring", family="generative", config=GANConfig, **_RING)
def gan_ring(cfg: GANConfig) -> GAN:
    """A plain GAN sized for the 2-D ring of 8 Gaussians (Metz et al.'s 128-wide MLPs, latent 256)."""
    return GAN(cfg)


@register_model("gan_unrolled", family="generative", config=GANConfig, unroll_steps=5, **_RING)
def gan_unrolled(cfg: GANConfig) -> GAN:
    """Unrolled GAN (Metz et al. 2017): G trained against D after 5 differentiable look-ahead steps."""
    return GAN(cfg)


@register_model("gan_minibatch", family="generative", config=GANConfig, minibatch_discrimination=True, **_RING)
def gan_minibatch(cfg: GANConfig) -> GAN:
    """A ring-sized GAN whose discriminator has minibatch discrimination (Salimans et al. 2016)."""
    return GAN(cfg)


@register_model("dcgan", family="generative", config=GANConfig, net="dcgan", d_norm="batch")
def dcgan(cfg: GANConfig) -> GAN:
    """DCGAN (Radford et al. 2016): strided (transposed) convolutions, batch norm, Adam 2e-4 (0.5, 0.999)."""
    return GAN(cfg)


@register_model("wgan", family="generative", config=GANConfig, net="auto", d_norm="batch", loss="wasserstein",
                clip=0.01, d_steps=5, optimizer="rmsprop", lr_g=5e-5, lr_d=5e-5)
def wgan(cfg: GANConfig) -> GAN:
    """WGAN (Arjovsky et al. 2017): DCGAN critic, weight clipping c=0.01, 5 critic steps, RMSprop 5e-5."""
    return GAN(cfg)


@register_model("wgan_gp", family="generative", config=GANConfig, net="auto", d_norm="layer", loss="wasserstein",
                gp_weight=10.0, d_steps=5, lr_g=1e-4, lr_d=1e-4, betas=(0.0, 0.9))
def wgan_gp(cfg: GANConfig) -> GAN:
    """WGAN-GP (Gulrajani et al. 2017): gradient penalty 10 on interpolates, layer-norm critic, Adam 1e-4 (0, 0.9)."""
    return GAN(cfg)


@register_model("wgan_gp_ring", family="generative", config=GANConfig, net="mlp", d_norm="none", loss="wasserstein",
                gp_weight=0.1, d_steps=5, lr_g=1e-4, lr_d=1e-4, betas=(0.5, 0.9), in_features=2, image_size=None,
                hidden_dim=512, num_layers=3, latent_dim=2)
def wgan_gp_ring(cfg: GANConfig) -> GAN:
    """WGAN-GP sized as the authors' 8-Gaussians toy (3 ReLU layers of 512, noise 2, lambda 0.1)."""
    return GAN(cfg)


@register_model("cgan", family="generative", config=CGANConfig)
def cgan(cfg: CGANConfig) -> GAN:
    """Conditional GAN (Mirza & Osindero 2014): MLPs, label embeddings concatenated to z and to D's input."""
    return GAN(cfg)


@register_model("cdcgan", family="generative", config=CGANConfig, net="dcgan", d_norm="batch")
def cdcgan(cfg: CGANConfig) -> GAN:
    """A conditional DCGAN: label embedding concatenated to z and broadcast as extra input channels of D."""
    return GAN(cfg)


@register_model("cgan_projection", family="generative", config=CGANConfig, net="dcgan", d_norm="batch",
                projection=True)
def cgan_projection(cfg: CGANConfig) -> GAN:
    """A conditional DCGAN with Miyato & Koyama's projection discriminator (2018)."""
    return GAN(cfg)
