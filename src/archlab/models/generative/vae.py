"""Autoencoders and variational autoencoders: AE, denoising AE, VAE (MLP and convolutional), beta-VAE.

    P. Vincent, H. Larochelle, Y. Bengio, P.-A. Manzagol, "Extracting and Composing Robust
    Features with Denoising Autoencoders", ICML 2008. https://doi.org/10.1145/1390156.1390294
    D. P. Kingma, M. Welling, "Auto-Encoding Variational Bayes", ICLR 2014.
    https://arxiv.org/abs/1312.6114
    I. Higgins et al., "beta-VAE: Learning Basic Visual Concepts with a Constrained Variational
    Framework", ICLR 2017. https://openreview.net/forum?id=Sy2fzU9gl
    Y. Burda, R. Grosse, R. Salakhutdinov, "Importance Weighted Autoencoders", ICLR 2016.
    https://arxiv.org/abs/1509.00519

Autoencoder (Vincent et al. 2008): a deterministic code ``z = f(x~)`` of a (denoising: corrupted)
input ``x~`` and a reconstruction ``g(z)`` trained against the clean ``x``::

    x~ = x * m, m_i ~ Bernoulli(1 - nu)           # masking noise: a fraction nu of pixels set to 0
    x~ = x + sigma * e, e ~ N(0, I)               # or additive Gaussian noise (option)
    L  = - sum_i [x_i log g_i + (1 - x_i) log(1 - g_i)]      # cross-entropy, nats per example

VAE (Kingma & Welling 2014): a Gaussian encoder q(z|x) = N(mu(x), diag sigma^2(x)), prior
p(z) = N(0, I) and a decoder p(x|z); with the reparameterisation z = mu + sigma * eps,
eps ~ N(0, I), the evidence lower bound (eq. 10) is differentiable in the encoder's outputs::

    ELBO(x) = E_q[log p(x|z)] - KL(q(z|x) || p(z))                       <= log p(x)
    KL      = 1/2 sum_j (mu_j^2 + sigma_j^2 - 1 - log sigma_j^2)         # closed form (appendix B)
    loss    = recon + beta * KL,  recon = -log p(x|z) (one sample of z)  # beta = 1: -ELBO

``likelihood="bernoulli"`` (the paper's MNIST model): x is binarised and p(x|z) = prod Bernoulli
(logits from the decoder). Training uses dynamic binarisation: each time an image is seen its
pixels are fresh Bernoulli draws x_b ~ Bernoulli(x). ``likelihood="gaussian"`` (the paper's
Frey-face model, appendix C.2): x in [0, 1] as is and p(x|z) = N(mu(z), diag sigma^2(z)) with the
decoder giving mean and log-variance. beta-VAE (Higgins et al. 2017) weights the KL by beta > 1
for more disentangled codes; the reported ``elbo`` stays the true bound (beta = 1).

Log-likelihood (Burda et al. 2016, eq. 8): with K samples z_k ~ q(z|x),
``log p(x) ~= log (1/K) sum_k p(x, z_k) / q(z_k|x)``, a lower bound that tightens as K grows
(K = 1 is the ELBO). :meth:`VAE.log_likelihood` returns it in nats per example.

Evaluation protocol (binarised MNIST): the test images are binarised ONCE with a fixed seed,
``xb = binarize(x_test, torch.Generator().manual_seed(0))``, and the bound is computed on ``xb``
(binary inputs are used as they are). A non-binary batch given in eval mode (or to
:meth:`VAE.log_likelihood`) is binarised with a generator seeded by ``config.eval_seed``, per
batch: the same batches in the same order give the same numbers. The other evaluation noise
comes from seeded generators too (the z draws from ``eval_seed + 1``, so a batch binarised
beforehand with ``eval_seed`` gives the same numbers; the denoising corruption from ``eval_seed``),
so validation losses are deterministic; training uses the global RNG.

Architectures: ``arch="mlp"`` has ``num_layers`` hidden layers of ``hidden_dim`` units in the
encoder and the decoder (the paper: one layer of 500 tanh units on MNIST); ``arch="conv"``
halves the image with 4x4 stride-2 convolutions (``hidden_channels``, doubling) down to at most
7x7 (8 -> 4, 16 -> 4, 28 -> 7, 32 -> 4), then a linear layer of ``hidden_dim`` units; the decoder
mirrors it with transposed convolutions.

Registered: ``autoencoder``, ``denoising_autoencoder`` (masking noise 25%), ``vae``, ``conv_vae``.

Deviations from the paper:
    - The autoencoder's activation is ``activation`` (default ``"tanh"``, as the VAE) rather than
      Vincent et al.'s sigmoid hidden units; decoder weights are not tied to the encoder's.
    - ``Autoencoder.sample`` decodes draws from a Gaussian fitted to the training codes (running
      per-dimension mean and variance, momentum 0.01): an autoencoder has no prior of its own.
    - ``likelihood="gaussian"`` clamps the decoder's log-variance to [-7, 4] (``logvar_min``,
      ``logvar_max``): on [0, 1] images a free variance collapses on the constant background.
    - ``binarize=False`` (not the paper's protocol) feeds the grey levels to the Bernoulli
      likelihood as soft targets; the number is then not a likelihood of any discrete data.
    - ``arch="conv"`` is not in Kingma & Welling (a DCGAN-like encoder/decoder pair, ReLU, no
      normalisation).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from archlab.models.generative.base import GenerativeMethod
from archlab.registry import register_model

__all__ = ["VAE", "Autoencoder", "VAEConfig", "binarize", "gaussian_kl"]

_LOG_2PI = math.log(2.0 * math.pi)


def binarize(x: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Stochastic binarisation: pixels in [0, 1] -> independent Bernoulli(x) draws in {0., 1.}.

    Args:
        x: values in [0, 1], any shape.
        generator: a seeded ``torch.Generator`` on ``x``'s device (evaluation: binarise the test
            set once with ``torch.Generator().manual_seed(0)``); None uses the global RNG.
    """
    return torch.bernoulli(x.clamp(0.0, 1.0), generator=generator)


def is_binary(x: Tensor) -> bool:
    """True when every value is exactly 0 or 1."""
    return bool(((x == 0) | (x == 1)).all())


def gaussian_kl(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(mu, diag exp(logvar)) || N(0, I)) summed over the last dimension, closed form (B,)."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(-1)


def _activation(name: str) -> nn.Module:
    return {"tanh": nn.Tanh(), "relu": nn.ReLU(), "elu": nn.ELU(), "softplus": nn.Softplus()}[name]


@dataclass
class VAEConfig:
    """Options of :class:`VAE` and :class:`Autoencoder` (defaults: Kingma & Welling's MNIST VAE).

    Attributes:
        in_channels: image channels C (filled from the dataset).
        image_size: image side H = W (filled from the dataset); conv: 8, 16, 28 or 32 (or any even
            size that halves down to <= 7 pixels).
        latent_dim: size of the code z.
        hidden_dim: width of the MLP hidden layers (conv: the linear layer after the convolutions).
        num_layers: MLP hidden layers in the encoder and in the decoder (each).
        activation: ``tanh`` (the paper), ``relu``, ``elu`` or ``softplus``; conv nets use ReLU.
        arch: ``mlp`` or ``conv`` (see the module docstring).
        hidden_channels: conv: channels of the first convolution (doubling per halving).
        likelihood: ``bernoulli`` (binarised images, logits) or ``gaussian`` (mean, log-variance).
        binarize: bernoulli: binarise the inputs (dynamic in training, seeded in eval).
        beta: weight of the KL term (Higgins et al.; 1 = the ELBO).
        variational: False gives a plain (deterministic) autoencoder.
        noise: autoencoder input corruption: ``none``, ``masking`` (Vincent et al.) or ``gaussian``.
        noise_level: masking: fraction of pixels set to 0; gaussian: noise std.
        recon_loss: autoencoder reconstruction: ``bce`` (cross-entropy, Vincent et al.) or ``mse``.
        logvar_min: gaussian likelihood: lower clamp of the decoder log-variance.
        logvar_max: gaussian likelihood: upper clamp of the decoder log-variance.
        eval_seed: seed of every random draw made in eval mode (deterministic validation).
    """

    in_channels: int = 1
    image_size: int = 28
    latent_dim: int = 20
    hidden_dim: int = 500
    num_layers: int = 1
    activation: Literal["tanh", "relu", "elu", "softplus"] = "tanh"
    arch: Literal["mlp", "conv"] = "mlp"
    hidden_channels: int = 32
    likelihood: Literal["bernoulli", "gaussian"] = "bernoulli"
    binarize: bool = True
    beta: float = 1.0
    variational: bool = True
    noise: Literal["none", "masking", "gaussian"] = "none"
    noise_level: float = 0.25
    recon_loss: Literal["bce", "mse"] = "bce"
    logvar_min: float = -7.0
    logvar_max: float = 4.0
    eval_seed: int = 0

    TINY: ClassVar[dict[str, Any]] = {"image_size": 8, "latent_dim": 3, "hidden_dim": 16, "hidden_channels": 4}

    def __post_init__(self) -> None:
        if min(self.in_channels, self.image_size, self.latent_dim, self.hidden_dim, self.hidden_channels) < 1:
            raise ValueError("in_channels, image_size, latent_dim, hidden_dim and hidden_channels must be >= 1")
        if self.num_layers < 0:
            raise ValueError(f"num_layers must be >= 0, got {self.num_layers}")
        if self.beta < 0:
            raise ValueError(f"beta must be >= 0, got {self.beta}")
        if not 0.0 <= self.noise_level < (1.0 if self.noise == "masking" else math.inf):
            raise ValueError(f"noise_level={self.noise_level} out of range for noise={self.noise!r}")
        if self.arch == "conv":
            _conv_plan(self.image_size)  # raises with advice for sizes that do not halve cleanly
        if self.logvar_min >= self.logvar_max:
            raise ValueError("logvar_min must be < logvar_max")


def _conv_plan(image_size: int) -> int:
    """How many stride-2 halvings take ``image_size`` down to <= 7 pixels (8->4, 28->7, 32->4)."""
    n, s = 0, image_size
    while s > 7:
        if s % 2:
            raise ValueError(f"arch='conv' needs an image size that halves to <= 7 pixels (8, 16, 28, 32...), "
                             f"got {image_size}; use arch='mlp' or resize the images")
        s //= 2
        n += 1
    return n


def _mlp(sizes: list[int], act: str) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(_activation(act))
    return nn.Sequential(*layers)


class Encoder(nn.Module):
    """x (B, C, H, W) -> features (B, out_dim): an MLP or a stride-2 conv stack + linear layer."""

    def __init__(self, cfg: VAEConfig, out_dim: int) -> None:
        super().__init__()
        c, s = cfg.in_channels, cfg.image_size
        if cfg.arch == "mlp":
            self.net = nn.Sequential(nn.Flatten(), _mlp([c * s * s] + [cfg.hidden_dim] * cfg.num_layers + [out_dim],
                                                        cfg.activation))
            return
        layers: list[nn.Module] = []
        ch = cfg.hidden_channels
        for _ in range(_conv_plan(s)):
            layers += [nn.Conv2d(c, ch, 4, stride=2, padding=1), nn.ReLU()]
            c, ch, s = ch, ch * 2, s // 2
        layers += [nn.Flatten(), nn.Linear(c * s * s, cfg.hidden_dim), nn.ReLU(), nn.Linear(cfg.hidden_dim, out_dim)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class Decoder(nn.Module):
    """z (B, latent_dim) -> (B, out_channels, H, W) (logits, or mean and log-variance channels)."""

    def __init__(self, cfg: VAEConfig, out_channels: int) -> None:
        super().__init__()
        self.out_channels, self.size = out_channels, cfg.image_size
        s = cfg.image_size
        if cfg.arch == "mlp":
            self.net = _mlp([cfg.latent_dim] + [cfg.hidden_dim] * cfg.num_layers + [out_channels * s * s],
                            cfg.activation)
            return
        n = _conv_plan(s)
        ch = cfg.hidden_channels * 2 ** (n - 1)
        s0 = s // 2**n
        layers: list[nn.Module] = [nn.Linear(cfg.latent_dim, cfg.hidden_dim), nn.ReLU(),
                                   nn.Linear(cfg.hidden_dim, ch * s0 * s0), nn.ReLU(),
                                   nn.Unflatten(1, (ch, s0, s0))]  # (B, ch, s0, s0)
        for i in range(n):
            last = i == n - 1
            out = out_channels if last else ch // 2
            layers.append(nn.ConvTranspose2d(ch, out, 4, stride=2, padding=1))  # doubles H and W
            if not last:
                layers.append(nn.ReLU())
            ch = out
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z).view(z.shape[0], self.out_channels, self.size, self.size)  # (B, C', H, W)


class _AEBase(GenerativeMethod):
    """Shared input checks, eval-mode generator and decoding of the two autoencoders."""

    config: VAEConfig
    decoder: Decoder

    def _check(self, x: Tensor) -> None:
        shape = self.data_shape()
        if x.dim() != 4 or tuple(x.shape[1:]) != shape:
            raise ValueError(f"{type(self).__name__} expects images (B, {', '.join(map(str, shape))}) in [0, 1], "
                             f"got {tuple(x.shape)}; set model.in_channels / model.image_size to the data")

    def _eval_generator(self, x: Tensor, offset: int = 0) -> torch.Generator | None:
        """None in training (global RNG); a generator seeded with ``eval_seed + offset`` in eval mode.

        Binarisation uses ``eval_seed`` and the z draws ``eval_seed + 1``, so a batch binarised
        beforehand with ``eval_seed`` gives the same numbers as the grey batch.
        """
        if self.training:
            return None
        return torch.Generator(device=x.device).manual_seed(self.config.eval_seed + offset)

    def _randn(self, shape: tuple[int, ...], like: Tensor, g: torch.Generator | None) -> Tensor:
        return torch.randn(shape, generator=g, device=like.device, dtype=like.dtype)

    def _decoder_params(self, z: Tensor) -> tuple[Tensor, Tensor | None]:
        """Decoder output split into (logits or mean, log-variance or None)."""
        out = self.decoder(z)
        if self.config.likelihood == "gaussian":
            c = self.config.in_channels
            mean, logvar = torch.sigmoid(out[:, :c]), out[:, c:]
            return mean, logvar.clamp(self.config.logvar_min, self.config.logvar_max)
        return out, None

    def decode(self, z: Tensor) -> Tensor:
        """Codes (B, latent_dim) -> images (B, C, H, W) in [0, 1] (Bernoulli means / Gaussian means)."""
        a, logvar = self._decoder_params(z)
        return a if logvar is not None else torch.sigmoid(a)

    def reconstruct(self, x: Tensor) -> Tensor:
        """decode(encode(x)): (B, C, H, W) in [0, 1]."""
        return self.decode(self.encode(x))

    def interpolate(self, x_a: Tensor, x_b: Tensor, steps: int = 8, *, spherical: bool = False) -> Tensor:
        """Decode codes on the line (or great circle) from encode(x_a) to encode(x_b).

        Args:
            x_a, x_b: one image each, (C, H, W) or (1, C, H, W), in [0, 1].
            steps: number of points including both ends.
            spherical: slerp (White 2016) instead of linear interpolation.

        Returns:
            (steps, C, H, W) images in [0, 1].
        """
        za, zb = self.encode(x_a.reshape(1, *self.data_shape())), self.encode(x_b.reshape(1, *self.data_shape()))
        t = torch.linspace(0.0, 1.0, steps, device=za.device, dtype=za.dtype)[:, None]  # (S, 1)
        if spherical:
            cos = F.cosine_similarity(za, zb).clamp(-1 + 1e-7, 1 - 1e-7)
            omega = torch.acos(cos)
            z = (torch.sin((1 - t) * omega) * za + torch.sin(t * omega) * zb) / torch.sin(omega)
        else:
            z = (1 - t) * za + t * zb  # (S, latent_dim)
        return self.decode(z)

    def _recon_nll(self, x: Tensor, a: Tensor, logvar: Tensor | None) -> Tensor:
        """-log p(x|z) per example (B,), summed over pixels."""
        if logvar is not None:  # Gaussian: a is the mean
            return 0.5 * ((x - a).pow(2) / logvar.exp() + logvar + _LOG_2PI).flatten(1).sum(1)
        return F.binary_cross_entropy_with_logits(a, x, reduction="none").flatten(1).sum(1)


class VAE(_AEBase):
    """Variational autoencoder with a Gaussian encoder, N(0, I) prior and Bernoulli/Gaussian decoder.

    Args:
        config: a :class:`VAEConfig` (``variational=True``).
    """

    has_likelihood = True

    def __init__(self, config: VAEConfig) -> None:
        super().__init__()
        self.config = config
        out_c = config.in_channels * (2 if config.likelihood == "gaussian" else 1)
        self.encoder = Encoder(config, 2 * config.latent_dim)  # mean and log-variance
        self.decoder = Decoder(config, out_c)

    def _prepare(self, x: Tensor, g: torch.Generator | None) -> Tensor:
        """Bernoulli likelihood: binarise (binary input is kept as is); Gaussian: x unchanged."""
        if self.config.likelihood == "bernoulli" and self.config.binarize and not is_binary(x):
            return binarize(x, g)
        return x

    def posterior(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """q(z|x): mean and log-variance, each (B, latent_dim)."""
        mu, logvar = self.encoder(x).chunk(2, dim=1)
        return mu, logvar

    def encode(self, x: Tensor) -> Tensor:
        """Latent means (B, latent_dim) of images in [0, 1] (not binarised: grey levels are fine here)."""
        self._check(x)
        return self.posterior(x)[0]

    def forward(self, x: Tensor, y: Tensor | None = None) -> dict[str, Tensor]:
        """``{"loss": recon + beta KL, "recon", "kl", "elbo"}``, means over the batch, nats per example."""
        self._check(x)
        x = self._prepare(x, self._eval_generator(x))
        g = self._eval_generator(x, offset=1)
        mu, logvar = self.posterior(x)  # (B, L) each
        z = mu + (0.5 * logvar).exp() * self._randn(tuple(mu.shape), mu, g)  # reparameterisation
        recon = self._recon_nll(x, *self._decoder_params(z)).mean()
        kl = gaussian_kl(mu, logvar).mean()
        return {"loss": recon + self.config.beta * kl, "recon": recon, "kl": kl, "elbo": -(recon + kl)}

    @torch.no_grad()
    def log_likelihood(self, x: Tensor, *, num_samples: int = 64, chunk_size: int = 64) -> Tensor:
        """Importance-weighted estimate of log p(x) (Burda et al.), nats per example (B,).

        ``log (1/K) sum_k p(x|z_k) p(z_k) / q(z_k|x)``, z_k ~ q(z|x): a lower bound on log p(x) that
        grows with K (K = 1: the ELBO). Papers report K = 5000. For binarised MNIST pass the test
        set binarised once with a fixed seed (:func:`binarize`); a non-binary x is binarised here
        with a generator seeded by ``config.eval_seed``; the z draws use ``eval_seed + 1``
        (deterministic).

        Args:
            x: (B, C, H, W) binarised images (or [0, 1] images, see above).
            num_samples: K.
            chunk_size: samples evaluated at once (memory: B * chunk_size decoder passes).
        """
        self._check(x)
        if num_samples < 1:
            raise ValueError(f"num_samples must be >= 1, got {num_samples}")
        x = self._prepare(x, torch.Generator(device=x.device).manual_seed(self.config.eval_seed))
        g = torch.Generator(device=x.device).manual_seed(self.config.eval_seed + 1)
        b = x.shape[0]
        mu, logvar = self.posterior(x)  # (B, L)
        std = (0.5 * logvar).exp()
        log_w = []
        for start in range(0, num_samples, chunk_size):
            k = min(chunk_size, num_samples - start)
            eps = self._randn((k, *mu.shape), mu, g)  # (k, B, L)
            z = mu + std * eps
            log_q = -0.5 * (eps.pow(2) + logvar + _LOG_2PI).sum(-1)  # (k, B)
            log_pz = -0.5 * (z.pow(2) + _LOG_2PI).sum(-1)
            a, lv = self._decoder_params(z.reshape(k * b, -1))  # (k B, C', H, W)
            xs = x.unsqueeze(0).expand(k, *x.shape).reshape(k * b, *x.shape[1:])
            log_px = -self._recon_nll(xs, a, lv).view(k, b)
            log_w.append(log_px + log_pz - log_q)
        return torch.logsumexp(torch.cat(log_w, 0), 0) - math.log(num_samples)

    @torch.no_grad()
    def sample(self, n: int, *, y: Tensor | None = None, generator: torch.Generator | None = None,
               binary: bool = False) -> Tensor:
        """Decode z ~ N(0, I): (n, C, H, W) Bernoulli means in [0, 1] (``binary=True``: a Bernoulli draw)."""
        z = torch.randn((n, self.config.latent_dim), generator=generator, device=self.device)
        out = self.decode(z)
        return binarize(out, generator) if binary else out


class Autoencoder(_AEBase):
    """Deterministic (optionally denoising) autoencoder: code z = f(x~), reconstruction of x.

    Args:
        config: a :class:`VAEConfig` with ``variational=False``.
    """

    def __init__(self, config: VAEConfig, momentum: float = 0.01) -> None:
        super().__init__()
        self.config, self.momentum = config, momentum
        self.encoder = Encoder(config, config.latent_dim)
        self.decoder = Decoder(config, config.in_channels * (2 if config.likelihood == "gaussian" else 1))
        # Running statistics of the training codes: sample() draws from N(code_mean, code_var).
        self.register_buffer("code_mean", torch.zeros(config.latent_dim))
        self.register_buffer("code_var", torch.ones(config.latent_dim))

    def encode(self, x: Tensor) -> Tensor:
        """Codes (B, latent_dim) of clean images in [0, 1]."""
        self._check(x)
        return self.encoder(x)

    def corrupt(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Vincent et al.'s corruption q_D(x~|x): masking (zero a fraction nu) or additive Gaussian."""
        if self.config.noise == "masking":
            keep = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype) >= self.config.noise_level
            return x * keep
        if self.config.noise == "gaussian":
            return x + self.config.noise_level * self._randn(tuple(x.shape), x, generator)
        return x

    def forward(self, x: Tensor, y: Tensor | None = None) -> dict[str, Tensor]:
        """``{"loss": reconstruction of the clean x from the corrupted x~ (nats or squared error per example)}``."""
        self._check(x)
        z = self.encoder(self.corrupt(x, self._eval_generator(x)))  # (B, L)
        if self.training:
            with torch.no_grad():
                self.code_mean.lerp_(z.mean(0), self.momentum)
                self.code_var.lerp_(z.var(0, unbiased=False), self.momentum)
        a, logvar = self._decoder_params(z)
        if self.config.recon_loss == "mse":
            mean = a if logvar is not None else torch.sigmoid(a)
            recon = (mean - x).pow(2).flatten(1).sum(1).mean()
        else:
            recon = self._recon_nll(x, a, logvar).mean()
        return {"loss": recon, "recon": recon}

    @torch.no_grad()
    def sample(self, n: int, *, y: Tensor | None = None, generator: torch.Generator | None = None) -> Tensor:
        """Decode draws from N(code_mean, diag code_var) (the training codes' running statistics)."""
        eps = torch.randn((n, self.config.latent_dim), generator=generator, device=self.device)
        return self.decode(self.code_mean + self.code_var.sqrt() * eps)


# ---- registered variants ----------------------------------------------------------------------


@register_model("autoencoder", family="generative", config=VAEConfig, variational=False)
def autoencoder(config: VAEConfig) -> Autoencoder:
    """Autoencoder: MLP encoder/decoder, deterministic code, cross-entropy reconstruction."""
    return _build(config, variational=False)


@register_model("denoising_autoencoder", family="generative", config=VAEConfig, variational=False,
                noise="masking", noise_level=0.25)
def denoising_autoencoder(config: VAEConfig) -> Autoencoder:
    """Denoising autoencoder (Vincent et al. 2008): masking noise (25% of pixels zeroed)."""
    return _build(config, variational=False)


@register_model("vae", family="generative", config=VAEConfig)
def vae(config: VAEConfig) -> VAE:
    """VAE (Kingma & Welling 2014): MLP, Gaussian q(z|x), Bernoulli decoder on binarised images."""
    return _build(config, variational=True)


@register_model("conv_vae", family="generative", config=VAEConfig, arch="conv", activation="relu",
                latent_dim=32, hidden_dim=256)
def conv_vae(config: VAEConfig) -> VAE:
    """Convolutional VAE: stride-2 conv encoder, transposed-conv decoder, Bernoulli likelihood."""
    return _build(config, variational=True)


def _build(config: VAEConfig, *, variational: bool) -> VAE | Autoencoder:
    if config.variational != variational:
        kind = "vae / conv_vae" if config.variational else "autoencoder / denoising_autoencoder"
        raise ValueError(f"variational={config.variational} does not fit this model; use {kind}")
    return VAE(config) if variational else Autoencoder(config)
