"""RealNVP: a normalizing flow of affine coupling layers with an exact log-likelihood.

    L. Dinh, J. Sohl-Dickstein, S. Bengio, "Density estimation using Real NVP", ICLR 2017.
    https://arxiv.org/abs/1605.08803
    D. P. Kingma, P. Dhariwal, "Glow: Generative Flow with Invertible 1x1 Convolutions",
    NeurIPS 2018 (act-norm; reports 1.05 bits/dim on MNIST). https://arxiv.org/abs/1807.03039

A flow maps data v to a code z = f(v) through invertible layers with tractable Jacobians; with
the prior p(z) = N(0, I) the change of variables gives the exact density (eq. 3)::

    log p(v) = log p(z) + sum_layers log |det d f_l / d input_l|

Affine coupling (eq. 7-9): a binary mask b keeps part of the input and transforms the rest with
a scale and a shift computed from the kept part only, so the Jacobian is triangular::

    y = b * x + (1 - b) * (x * exp(s(b * x)) + t(b * x))
    log |det| = sum_i (1 - b_i) s_i(b * x)
    x = b * y + (1 - b) * (y - t(b * y)) * exp(-s(b * y))            # inverse, as cheap

s and t come from one residual CNN (``num_blocks`` blocks of ``hidden_channels``); the scale is
bounded, ``s = scale * tanh(s_raw)`` with a learned per-channel ``scale`` (the paper's code).
Masks: checkerboard (b = 1 where (i + j) is even, alternating parity layer to layer) and channel
(b = the first or the second half of the channels, alternating). Squeeze turns (C, H, W) into
(4C, H/2, W/2) (each 2x2 block into 4 channels). Multi-scale architecture (section 3.6): each of
``num_scales`` scales is 3 checkerboard couplings, squeeze, 3 channel couplings, then half of the
channels are factored out (sent to z directly); the last scale is 4 checkerboard couplings. Batch
normalisation (section 3.7) follows every coupling: y = (x - mu) / sqrt(var + eps) * exp(g) + beta
with log |det| = H W sum_c (g_c - 1/2 log(var_c + eps)), batch statistics in training and running
averages in eval mode and in the inverse.

Data (section 4.1): images x in [0, 1] (= k / 255, k in {0..255}) are dequantised,
y = (k + u) / 256 with u ~ U[0, 1)^D, and moved to logit space with alpha = 0.05::

    p = alpha + (1 - 2 alpha) y,   v = logit(p) = log p - log(1 - p)
    log |dv/dy| = sum_i [log(1 - 2 alpha) - log p_i - log(1 - p_i)]

so log p(y) = log p(v) + log |dv/dy| is the density of y in [0, 1)^D, and in the discrete-data
convention of the paper (the density of x in [0, 256)^D, a bound on the probability of the
8-bit image) ``NLL = -log p(y) + D log 256`` nats and ``bits/dim = NLL / (D ln 2)``
(:func:`archlab.models.generative.measures.bits_per_dim`, re-exported here). ``forward``
returns both, means over the batch; :meth:`RealNVP.log_likelihood` returns -NLL per example
(with K > 1 dequantisation draws it returns the tighter importance-weighted
log (1/K) sum_k 256^-D p(y_k)). In eval mode the noise u comes from a generator seeded with
``eval_seed`` (deterministic validation).

Deviations from the paper:
    - Multi-scale depth: ``num_scales`` scales (default 2 for 28x28: 1x28x28 -> 4x14x14 ->
      8x7x7) before the final 4 checkerboard couplings. The paper has no MNIST model; its
      CIFAR-10 model has 3 scales (32 -> 4 after squeezes). Image sides must be divisible by
      2 ** num_scales.
    - The residual s/t network has no batch or weight normalisation inside (the paper uses both);
      its last convolution starts at 1/100 of its default initialisation so the flow starts near
      the identity (zero would give the inner layers no gradient at step 0).
    - Constant ``hidden_channels`` at every scale (the paper doubles them after each squeeze).
    - ``norm="actnorm"`` (Glow's per-channel affine with data-dependent initialisation on the
      first training batch) or ``"none"`` instead of the paper's batch normalisation.
    - The s/t network sees the masked input only (no mask channel).
    - No L2 weight decay on the scales (paper: 5e-5); give it in the optimizer if wanted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor, nn

from archlab.models.generative.base import GenerativeMethod
from archlab.models.generative.measures import bits_per_dim  # NLL / (D ln 2), the one home of the conversion
from archlab.registry import register_model

__all__ = ["RealNVP", "RealNVPConfig", "bits_per_dim"]

_LOG_2PI = math.log(2.0 * math.pi)


@dataclass
class RealNVPConfig:
    """Options of :class:`RealNVP`.

    Attributes:
        in_channels: image channels C (filled from the dataset).
        image_size: image side H = W (filled from the dataset); divisible by 2 ** num_scales.
        hidden_channels: feature maps of the s/t residual networks.
        num_blocks: residual blocks per s/t network (paper: 8).
        num_scales: multi-scale levels before the final checkerboard couplings.
        alpha: the logit transform's margin (paper: 0.05).
        norm: ``batchnorm`` after each coupling (paper), ``actnorm`` (Glow) or ``none``.
        bn_momentum: batch norm running-average momentum.
        eval_seed: seed of the dequantisation noise in eval mode.
    """

    in_channels: int = 1
    image_size: int = 28
    hidden_channels: int = 64
    num_blocks: int = 8
    num_scales: int = 2
    alpha: float = 0.05
    norm: Literal["batchnorm", "actnorm", "none"] = "batchnorm"
    bn_momentum: float = 0.05
    eval_seed: int = 0

    TINY: ClassVar[dict[str, Any]] = {"image_size": 8, "hidden_channels": 4, "num_blocks": 1, "num_scales": 1}

    def __post_init__(self) -> None:
        if min(self.in_channels, self.image_size, self.hidden_channels) < 1 or self.num_blocks < 0:
            raise ValueError("in_channels, image_size, hidden_channels must be >= 1 and num_blocks >= 0")
        if self.num_scales < 0 or self.image_size % (2**self.num_scales):
            raise ValueError(f"image_size={self.image_size} must be divisible by 2 ** num_scales "
                             f"(num_scales={self.num_scales}); lower num_scales (28x28: at most 2)")
        if not 0.0 < self.alpha < 0.5:
            raise ValueError(f"alpha must be in (0, 0.5), got {self.alpha}")


# ---- layers: each maps x -> (y, log|det| per example (B,)) and has an exact inverse ------------


class STNet(nn.Module):
    """Residual CNN giving the coupling's (s, t): s = scale * tanh(s_raw), both (B, out_c, H, W)."""

    def __init__(self, in_c: int, out_c: int, hidden: int, num_blocks: int) -> None:
        super().__init__()
        self.inp = nn.Conv2d(in_c, hidden, 3, padding=1)
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.ReLU(), nn.Conv2d(hidden, hidden, 3, padding=1),
                          nn.ReLU(), nn.Conv2d(hidden, hidden, 3, padding=1)) for _ in range(num_blocks))
        self.out = nn.Conv2d(hidden, 2 * out_c, 3, padding=1)
        with torch.no_grad():  # start near the identity map
            self.out.weight.mul_(0.01)
            self.out.bias.zero_()
        self.scale = nn.Parameter(torch.ones(out_c, 1, 1))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        h = self.inp(x)
        for block in self.blocks:
            h = h + block(h)
        s, t = self.out(torch.relu(h)).chunk(2, dim=1)
        return self.scale * torch.tanh(s), t


class CheckerboardCoupling(nn.Module):
    """Affine coupling with the spatial mask b_ij = [(i + j) % 2 == parity] (all channels)."""

    def __init__(self, channels: int, parity: int, hidden: int, num_blocks: int) -> None:
        super().__init__()
        self.parity = parity
        self.net = STNet(channels, channels, hidden, num_blocks)

    def mask(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        i = torch.arange(h, device=x.device)[:, None] + torch.arange(w, device=x.device)[None, :]
        return ((i % 2) == self.parity).to(x.dtype)[None, None]  # (1, 1, H, W)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        b = self.mask(x)
        s, t = self.net(x * b)
        s, t = s * (1 - b), t * (1 - b)
        return x * b + (1 - b) * (x * s.exp() + t), s.flatten(1).sum(1)

    def inverse(self, y: Tensor) -> Tensor:
        b = self.mask(y)
        s, t = self.net(y * b)
        return y * b + (1 - b) * ((y - t) * (-s).exp())


class ChannelCoupling(nn.Module):
    """Affine coupling with a channel mask: one half of the channels transforms the other."""

    def __init__(self, channels: int, flip: bool, hidden: int, num_blocks: int) -> None:
        super().__init__()
        if channels % 2:
            raise ValueError(f"a channel coupling needs an even channel count, got {channels}")
        self.flip = flip
        self.net = STNet(channels // 2, channels // 2, hidden, num_blocks)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        xa, xb = x.chunk(2, dim=1)  # (B, C/2, H, W) each
        if self.flip:
            xa, xb = xb, xa
        s, t = self.net(xa)
        yb = xb * s.exp() + t
        y = torch.cat([yb, xa] if self.flip else [xa, yb], dim=1)
        return y, s.flatten(1).sum(1)

    def inverse(self, y: Tensor) -> Tensor:
        ya, yb = y.chunk(2, dim=1)
        if self.flip:
            ya, yb = yb, ya
        s, t = self.net(ya)
        xb = (yb - t) * (-s).exp()
        return torch.cat([xb, ya] if self.flip else [ya, xb], dim=1)


class FlowBatchNorm(nn.Module):
    """Batch normalisation as a flow layer (RealNVP section 3.7); inverse uses the running averages."""

    def __init__(self, channels: int, momentum: float = 0.05, eps: float = 1e-4) -> None:
        super().__init__()
        self.momentum, self.eps = momentum, eps
        self.log_gamma = nn.Parameter(torch.zeros(channels))
        self.beta = nn.Parameter(torch.zeros(channels))
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_var", torch.ones(channels))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if self.training:
            mean, var = x.mean((0, 2, 3)), x.var((0, 2, 3), unbiased=False)
            with torch.no_grad():
                self.running_mean.lerp_(mean, self.momentum)
                self.running_var.lerp_(var, self.momentum)
        else:
            mean, var = self.running_mean, self.running_var
        inv_std = (var + self.eps).rsqrt()
        y = (x - mean[:, None, None]) * (inv_std * self.log_gamma.exp())[:, None, None] + self.beta[:, None, None]
        logdet = (self.log_gamma + inv_std.log()).sum() * x.shape[2] * x.shape[3]
        return y, logdet.expand(x.shape[0])

    def inverse(self, y: Tensor) -> Tensor:
        std = (self.running_var + self.eps).sqrt()
        return (y - self.beta[:, None, None]) * (std * (-self.log_gamma).exp())[:, None, None] \
            + self.running_mean[:, None, None]


class ActNorm(nn.Module):
    """Glow's act-norm: y = (x + loc) * exp(log_scale) per channel, initialised from the first batch."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.loc = nn.Parameter(torch.zeros(channels))
        self.log_scale = nn.Parameter(torch.zeros(channels))
        self.register_buffer("initialized", torch.tensor(0.0))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if self.training and not bool(self.initialized):
            with torch.no_grad():  # zero mean, unit variance per channel on the first batch
                self.loc.copy_(-x.mean((0, 2, 3)))
                self.log_scale.copy_(-(x.std((0, 2, 3), unbiased=False) + 1e-6).log())
                self.initialized.fill_(1.0)
        y = (x + self.loc[:, None, None]) * self.log_scale.exp()[:, None, None]
        return y, (self.log_scale.sum() * x.shape[2] * x.shape[3]).expand(x.shape[0])

    def inverse(self, y: Tensor) -> Tensor:
        return y * (-self.log_scale).exp()[:, None, None] - self.loc[:, None, None]


class Squeeze(nn.Module):
    """(B, C, H, W) -> (B, 4C, H/2, W/2): each 2x2 spatial block becomes 4 channels (log|det| = 0)."""

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        b, c, h, w = x.shape
        y = x.view(b, c, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 2, 4).reshape(b, 4 * c, h // 2, w // 2)
        return y, x.new_zeros(b)

    def inverse(self, y: Tensor) -> Tensor:
        b, c4, h, w = y.shape
        c = c4 // 4
        return y.view(b, c, 2, 2, h, w).permute(0, 1, 4, 2, 5, 3).reshape(b, c, 2 * h, 2 * w)


class FactorOut(nn.Module):
    """Marker: the first half of the channels leaves the flow here (multi-scale architecture)."""


# ---- the model --------------------------------------------------------------------------------


class RealNVP(GenerativeMethod):
    """Multi-scale RealNVP on images in [0, 1] with dequantisation and the logit transform.

    Args:
        config: a :class:`RealNVPConfig`.
    """

    has_likelihood = True

    def __init__(self, config: RealNVPConfig) -> None:
        super().__init__()
        self.config = config
        cfg = config
        c, s = cfg.in_channels, cfg.image_size
        layers: list[nn.Module] = []
        self._z_shapes: list[tuple[int, int, int]] = []  # factored-out pieces, then the final one

        def add(layer: nn.Module, channels: int) -> None:
            layers.append(layer)
            if cfg.norm == "batchnorm":
                layers.append(FlowBatchNorm(channels, cfg.bn_momentum))
            elif cfg.norm == "actnorm":
                layers.append(ActNorm(channels))

        for _ in range(cfg.num_scales):
            for i in range(3):
                add(CheckerboardCoupling(c, i % 2, cfg.hidden_channels, cfg.num_blocks), c)
            layers.append(Squeeze())
            c, s = 4 * c, s // 2
            for i in range(3):
                add(ChannelCoupling(c, bool(i % 2), cfg.hidden_channels, cfg.num_blocks), c)
            layers.append(FactorOut())
            self._z_shapes.append((c // 2, s, s))
            c //= 2
        for i in range(4):
            add(CheckerboardCoupling(c, i % 2, cfg.hidden_channels, cfg.num_blocks), c)
        self._z_shapes.append((c, s, s))
        self.layers = nn.ModuleList(layers)

    # -- shapes and checks --
    @property
    def num_dims(self) -> int:
        """D = C H W."""
        c, s = self.config.in_channels, self.config.image_size
        return c * s * s

    def _check(self, x: Tensor) -> None:
        shape = self.data_shape()
        if x.dim() != 4 or tuple(x.shape[1:]) != shape:
            raise ValueError(f"RealNVP expects images (B, {', '.join(map(str, shape))}) in [0, 1], got "
                             f"{tuple(x.shape)}; set model.in_channels / model.image_size to the data")

    # -- preprocessing: dequantisation and logit transform --
    def dequantize(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """x = k / 255 in [0, 1] -> y = (k + u) / 256, u ~ U[0, 1) (the paper's uniform dequantisation)."""
        k = (x * 255.0).round().clamp(0.0, 255.0)
        u = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        return (k + u) / 256.0

    def preprocess(self, y: Tensor) -> tuple[Tensor, Tensor]:
        """y in [0, 1) -> v = logit(alpha + (1 - 2 alpha) y) and log|dv/dy| per example (B,)."""
        a = self.config.alpha
        p = a + (1 - 2 * a) * y
        v = p.log() - (-p).log1p()
        logdet = (math.log(1 - 2 * a) - p.log() - (-p).log1p()).flatten(1).sum(1)
        return v, logdet

    def postprocess(self, v: Tensor) -> Tensor:
        """The inverse of :meth:`preprocess`: v -> y = (sigmoid(v) - alpha) / (1 - 2 alpha)."""
        a = self.config.alpha
        return (torch.sigmoid(v) - a) / (1 - 2 * a)

    # -- the flow --
    def flow_forward(self, v: Tensor) -> tuple[Tensor, Tensor]:
        """v (B, C, H, W) -> z (B, D) (factored-out pieces then the last one, flattened), log|det| (B,)."""
        zs: list[Tensor] = []
        logdet = v.new_zeros(v.shape[0])
        for layer in self.layers:
            if isinstance(layer, FactorOut):
                z, v = v.chunk(2, dim=1)
                zs.append(z.flatten(1))
                continue
            v, ld = layer(v)
            logdet = logdet + ld
        zs.append(v.flatten(1))
        return torch.cat(zs, dim=1), logdet  # (B, D), (B,)

    def inverse(self, z: Tensor) -> Tensor:
        """z (B, D) -> v (B, C, H, W): the exact inverse of :meth:`flow_forward` (running statistics)."""
        sizes = [c * h * w for c, h, w in self._z_shapes]
        pieces = list(z.split(sizes, dim=1))
        v = pieces.pop().view(z.shape[0], *self._z_shapes[-1])
        shapes = self._z_shapes[:-1]
        for layer in reversed(self.layers):
            if isinstance(layer, FactorOut):
                v = torch.cat([pieces.pop().view(z.shape[0], *shapes.pop()), v], dim=1)
            else:
                v = layer.inverse(v)
        return v

    def log_prob_y(self, y: Tensor) -> Tensor:
        """log p(y) (B,): the density of dequantised data y in [0, 1)^D, preprocessing included."""
        v, ld_pre = self.preprocess(y)
        z, ld_flow = self.flow_forward(v)
        log_pz = -0.5 * (z.pow(2) + _LOG_2PI).sum(1)
        return log_pz + ld_flow + ld_pre

    def _generator(self, x: Tensor) -> torch.Generator | None:
        if self.training:
            return None
        return torch.Generator(device=x.device).manual_seed(self.config.eval_seed)

    def forward(self, x: Tensor, y: Tensor | None = None) -> dict[str, Tensor]:
        """``{"loss": NLL (nats per example, discrete convention), "bpd": bits per dim}``, batch means."""
        self._check(x)
        nll = -self.log_prob_y(self.dequantize(x, self._generator(x))) + self.num_dims * math.log(256.0)
        loss = nll.mean()
        return {"loss": loss, "bpd": bits_per_dim(loss, self.num_dims)}

    @torch.no_grad()
    def log_likelihood(self, x: Tensor, *, num_samples: int = 1) -> Tensor:
        """log P(x) in nats per example (B,), discrete-data convention (-NLL of :meth:`forward`).

        With K = ``num_samples`` dequantisation draws u_k: log (1/K) sum_k p(y_k) 256^-D, a lower
        bound on the log-probability of the 8-bit image that tightens with K (K = 1: the usual
        figure). Draws come from a generator seeded with ``config.eval_seed``. Call in eval mode
        (batch norm then uses its running averages).
        """
        self._check(x)
        if num_samples < 1:
            raise ValueError(f"num_samples must be >= 1, got {num_samples}")
        g = torch.Generator(device=x.device).manual_seed(self.config.eval_seed)
        lp = torch.stack([self.log_prob_y(self.dequantize(x, g)) for _ in range(num_samples)])  # (K, B)
        return torch.logsumexp(lp, 0) - math.log(num_samples) - self.num_dims * math.log(256.0)

    @torch.no_grad()
    def sample(self, n: int, *, y: Tensor | None = None, generator: torch.Generator | None = None,
               temperature: float = 1.0) -> Tensor:
        """Draw z ~ N(0, T^2 I), invert the flow and the logit transform: (n, C, H, W) in [0, 1]."""
        z = temperature * torch.randn((n, self.num_dims), generator=generator, device=self.device)
        return self.postprocess(self.inverse(z)).clamp(0.0, 1.0)


@register_model("realnvp", family="generative", config=RealNVPConfig)
def realnvp(config: RealNVPConfig) -> RealNVP:
    """RealNVP (Dinh et al. 2017): multi-scale affine couplings, exact log-likelihood, bits/dim."""
    return RealNVP(config)
