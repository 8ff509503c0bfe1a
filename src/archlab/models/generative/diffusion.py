"""DDPM: denoising diffusion probabilistic models, with a small U-Net and DDIM sampling.

    J. Ho, A. Jain, P. Abbeel, "Denoising Diffusion Probabilistic Models", NeurIPS 2020.
    https://arxiv.org/abs/2006.11239
    A. Nichol, P. Dhariwal, "Improved Denoising Diffusion Probabilistic Models", ICML 2021
    (cosine schedule, respaced sampling). https://arxiv.org/abs/2102.09672
    J. Song, C. Meng, S. Ermon, "Denoising Diffusion Implicit Models", ICLR 2021 (DDIM).
    https://arxiv.org/abs/2010.02502

A fixed forward process adds Gaussian noise over T steps (Ho eq. 2) with variances beta_1..beta_T::

    q(x_t | x_{t-1}) = N(sqrt(1 - beta_t) x_{t-1}, beta_t I)                 # one step (q_step)
    q(x_t | x_0)     = N(sqrt(abar_t) x_0, (1 - abar_t) I),  abar_t = prod_{s<=t} (1 - beta_s)   (eq. 4)
    x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps,  eps ~ N(0, I)            # closed form (q_sample)

A network eps_theta(x_t, t) learns to predict the noise; the "simple" loss (eq. 14) is
``E_{t ~ U{1..T}, x_0, eps} || eps - eps_theta(x_t, t) ||^2``. Sampling runs the chain backwards
(Algorithm 2, ancestral sampling)::

    x_T ~ N(0, I)
    x_{t-1} = 1/sqrt(alpha_t) (x_t - beta_t / sqrt(1 - abar_t) eps_theta(x_t, t)) + sigma_t z,  sigma_t^2 = beta_t

written here through the predicted clean image ``x0_hat = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t)``
and the posterior ``q(x_{t-1} | x_t, x0_hat)`` (eq. 6-7; the same mean). DDIM (Song et al. eq. 12)
takes a subsequence tau of the steps and, with eta = 0, is deterministic given x_T::

    x_prev = sqrt(abar_prev) x0_hat + sqrt(1 - abar_prev - sigma^2) eps + sigma z
    sigma  = eta sqrt((1 - abar_prev) / (1 - abar_t)) sqrt(1 - abar_t / abar_prev)

Schedules: ``linear`` (Ho: beta from 1e-4 to 0.02, T = 1000) and ``cosine`` (Nichol & Dhariwal
eq. 17: ``abar_t = f(t) / f(0)``, ``f(t) = cos((t/T + s) / (1 + s) * pi/2)^2``, s = 0.008,
``beta_t = 1 - abar_t / abar_{t-1}`` clipped to 0.999).

Indexing: arrays and the ``t`` arguments are 0-based step indices, index i = paper step t = i + 1
(``alphas_cumprod[0]`` is abar_1, ``alphas_cumprod[T - 1]`` is abar_T).

The network is a small version of Ho et al.'s U-Net (PixelCNN++ backbone): a sinusoidal timestep
embedding through a 2-layer MLP, residual blocks (GroupNorm, SiLU, 3x3 conv, the time embedding
added after the first conv, dropout), a stride-2 conv to go down, nearest upsampling + conv to go
up, skip connections concatenated on the way up, and one self-attention block at the lowest
resolution. Sized for 8x8, 16x16, 28x28 and 32x32 images (any size works: the upsampling follows the
skip's size, so 28 -> 14 -> 7 -> 14 -> 28).

Data: ``forward`` receives images in [0, 1] and maps them to [-1, 1] (:func:`to_signed`);
``sample`` returns images in [0, 1].

Deviations from the paper:
    - The U-Net is much smaller than Ho et al.'s (35.7M parameters on CIFAR-10: 128 base channels,
      multipliers (1, 2, 2, 2), 2 residual blocks per level, attention at 16x16 and in the middle).
      Defaults: 32 base channels, multipliers (1, 2, 2), 1 residual block per level, attention only in
      the middle (``attention=False`` removes it). GroupNorm uses up to ``num_groups`` = 32 groups (fewer
      when a layer has fewer channels).
    - Ho et al. keep an exponential moving average of the weights (decay 0.9999) for sampling; here that is
      the engine's ``train.ema_decay`` option, off unless set.
    - ``clip_denoised=True`` (default) clamps x0_hat to [-1, 1] at each sampling step, as the authors'
      released code does; the paper's Algorithm 2 has no clamp (``clip_denoised=False`` gives it exactly).
    - ``variance="beta"`` (default, sigma_t^2 = beta_t, Ho's CIFAR-10 choice) or ``"posterior"``
      (sigma_t^2 = beta~_t = beta_t (1 - abar_{t-1}) / (1 - abar_t), the other choice in the paper).
    - Sampling with fewer steps than T: ``method="ddpm"`` runs the ancestral sampler on the respaced chain
      (Nichol & Dhariwal section 4: beta'_i = 1 - abar_{tau_i} / abar_{tau_{i-1}}); the subsequence tau is
      evenly spaced from T down to 1 (rounded), for both DDPM and DDIM.
    - ``zero_init=True`` (default, as the authors' code) zero-initialises the last conv of each residual
      block, of the attention block and of the output; the registry walk's tiny config turns it off so
      that every parameter gets a gradient at initialisation.
    - In eval mode ``forward`` draws t and eps from a generator seeded 0 (the same draws every call), so
      the validation loss of one epoch compares with the next; in training mode it uses the global RNG.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from archlab.models.common import check_image_input
from archlab.models.generative.base import GenerativeMethod, to_signed, to_unit
from archlab.registry import register_model

__all__ = [
    "DDPM",
    "DDPMConfig",
    "UNet",
    "cosine_alpha_bar",
    "cosine_betas",
    "linear_betas",
    "timestep_embedding",
]


# --------------------------------------------------------------------------- noise schedules

def linear_betas(timesteps: int, beta_start: float = 1e-4, beta_end: float = 0.02) -> Tensor:
    """Ho et al.'s linear schedule: ``beta_t`` evenly spaced from ``beta_start`` to ``beta_end`` (float64, (T,))."""
    return torch.linspace(beta_start, beta_end, timesteps, dtype=torch.float64)


def cosine_alpha_bar(timesteps: int, s: float = 0.008) -> Tensor:
    """Nichol & Dhariwal eq. 17: ``abar_t = f(t) / f(0)``, ``f(t) = cos((t/T + s)/(1 + s) pi/2)^2``, t = 0..T.

    Returns:
        (T + 1,) float64: abar_0 = 1 ... abar_T = 0 (before any clipping of the betas).
    """
    t = torch.arange(timesteps + 1, dtype=torch.float64) / timesteps
    f = torch.cos((t + s) / (1 + s) * math.pi / 2) ** 2
    return f / f[0]


def cosine_betas(timesteps: int, s: float = 0.008, max_beta: float = 0.999) -> Tensor:
    """The cosine schedule's ``beta_t = 1 - abar_t / abar_{t-1}``, clipped to ``max_beta`` (float64, (T,))."""
    abar = cosine_alpha_bar(timesteps, s)
    return (1 - abar[1:] / abar[:-1]).clamp(max=max_beta)


def timestep_embedding(t: Tensor, dim: int, max_period: float = 10000.0) -> Tensor:
    """Ho et al.'s sinusoidal embedding of the step: ``[sin(t w_k), cos(t w_k)]``, w_k = max_period^(-k/(dim/2-1)).

    Args:
        t: (B,) step indices (int or float).
        dim: embedding width (even).

    Returns:
        (B, dim) float32 (the sines, then the cosines, as the authors' ``get_timestep_embedding``).
    """
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32)
                      / max(half - 1, 1))  # (dim/2,)
    args = t.float()[:, None] * freqs[None]  # (B, dim/2)
    emb = torch.cat([args.sin(), args.cos()], dim=1)  # (B, 2 * (dim/2))
    return F.pad(emb, (0, dim % 2))  # (B, dim)


# --------------------------------------------------------------------------- config

@dataclass
class DDPMConfig:
    """Options of :class:`DDPM` (defaults: Ho et al.'s process, a small U-Net for 28x28 digits).

    Attributes:
        in_channels: image channels C (filled from the dataset).
        image_size: image side H = W (filled from the dataset); any size >= 1 works.
        base_channels: width of the first U-Net level; level l has ``base_channels * channel_mults[l]``.
        channel_mults: one multiplier per resolution; len(channel_mults) - 1 stride-2 downsamplings.
        num_res_blocks: residual blocks per level on the way down (one more on the way up, as Ho).
        attention: one self-attention block in the middle (lowest resolution).
        num_groups: GroupNorm groups (at most; fewer when a layer has fewer channels).
        dropout: in the residual blocks (Ho: 0.1 on CIFAR-10).
        zero_init: zero-initialise each block's last conv and the output conv (the authors' code).
        timesteps: T, the length of the diffusion chain (Ho: 1000).
        schedule: ``linear`` (Ho) or ``cosine`` (Nichol & Dhariwal).
        beta_start: linear schedule's beta_1.
        beta_end: linear schedule's beta_T.
        cosine_s: cosine schedule's offset s.
        variance: reverse-step variance: ``beta`` (sigma^2 = beta_t) or ``posterior`` (beta~_t).
        clip_denoised: clamp the predicted x_0 to [-1, 1] while sampling (the authors' code).
        sample_steps: steps :meth:`DDPM.sample` takes by default; None = T.
        sample_method: the default sampler, ``ddpm`` (ancestral) or ``ddim``.
        eta: DDIM's eta (0: deterministic; 1: the DDPM posterior variance).
    """

    in_channels: int = 1
    image_size: int = 28
    base_channels: int = 32
    channel_mults: tuple[int, ...] = (1, 2, 2)
    num_res_blocks: int = 1
    attention: bool = True
    num_groups: int = 32
    dropout: float = 0.1
    zero_init: bool = True
    timesteps: int = 1000
    schedule: Literal["linear", "cosine"] = "linear"
    beta_start: float = 1e-4
    beta_end: float = 0.02
    cosine_s: float = 0.008
    variance: Literal["beta", "posterior"] = "beta"
    clip_denoised: bool = True
    sample_steps: int | None = None
    sample_method: Literal["ddpm", "ddim"] = "ddpm"
    eta: float = 0.0

    TINY: ClassVar[dict[str, Any]] = {"image_size": 8, "base_channels": 8, "channel_mults": (1, 2),
                                      "num_groups": 4, "dropout": 0.0, "zero_init": False, "timesteps": 20}

    def __post_init__(self) -> None:
        if min(self.in_channels, self.image_size, self.base_channels, self.num_res_blocks, self.num_groups) < 1:
            raise ValueError("in_channels, image_size, base_channels, num_res_blocks and num_groups must be >= 1")
        if not self.channel_mults or min(self.channel_mults) < 1:
            raise ValueError(f"channel_mults must be a non-empty list of positive ints, got {self.channel_mults}")
        if self.timesteps < 1:
            raise ValueError(f"timesteps must be >= 1, got {self.timesteps}")
        if not 0.0 < self.beta_start <= self.beta_end < 1.0:
            raise ValueError(f"need 0 < beta_start <= beta_end < 1, got {self.beta_start}, {self.beta_end}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.sample_steps is not None and not 1 <= self.sample_steps <= self.timesteps:
            raise ValueError(f"sample_steps must be in [1, timesteps={self.timesteps}] or null, "
                             f"got {self.sample_steps}")
        if self.eta < 0:
            raise ValueError(f"eta must be >= 0, got {self.eta}")


# --------------------------------------------------------------------------- U-Net

def _groups(channels: int, num_groups: int) -> int:
    """The largest group count <= num_groups that divides channels."""
    g = min(num_groups, channels)
    while channels % g:
        g -= 1
    return g


class ResBlock(nn.Module):
    """GroupNorm -> SiLU -> conv3x3 (+ time embedding) -> GroupNorm -> SiLU -> dropout -> conv3x3, plus a skip."""

    def __init__(self, in_channels: int, out_channels: int, time_dim: int, *, num_groups: int = 32,
                 dropout: float = 0.0, zero_init: bool = True) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(_groups(in_channels, num_groups), in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.time_proj = nn.Linear(time_dim, out_channels)
        self.norm2 = nn.GroupNorm(_groups(out_channels, num_groups), out_channels)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.skip = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()
        if zero_init:
            nn.init.zeros_(self.conv2.weight)
            nn.init.zeros_(self.conv2.bias)

    def forward(self, x: Tensor, temb: Tensor) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x)))  # (B, C_out, H, W)
        h = h + self.time_proj(F.silu(temb))[:, :, None, None]  # (B, C_out, 1, 1) broadcast over H, W
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return self.skip(x) + h


class AttentionBlock(nn.Module):
    """Single-head self-attention over the H*W positions, with a residual connection (Ho et al.)."""

    def __init__(self, channels: int, *, num_groups: int = 32, zero_init: bool = True) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(_groups(channels, num_groups), channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj = nn.Conv2d(channels, channels, 1)
        if zero_init:
            nn.init.zeros_(self.proj.weight)
            nn.init.zeros_(self.proj.bias)

    def forward(self, x: Tensor) -> Tensor:
        B, C, H, W = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(B, 3, C, H * W).transpose(-1, -2).unbind(1)  # 3 x (B, HW, C)
        h = F.scaled_dot_product_attention(q, k, v)  # (B, HW, C)
        h = h.transpose(-1, -2).reshape(B, C, H, W)  # (B, C, H, W)
        return x + self.proj(h)


class Downsample(nn.Module):
    """A stride-2 3x3 conv (H -> ceil(H / 2))."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x)


class Upsample(nn.Module):
    """Nearest-neighbour upsampling to the skip's size, then a 3x3 conv."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: Tensor, size: tuple[int, int]) -> Tensor:
        return self.conv(F.interpolate(x, size=size, mode="nearest"))


class UNet(nn.Module):
    """The noise predictor eps_theta(x_t, t): a small version of Ho et al.'s U-Net.

    Args:
        in_channels: image channels (output has the same).
        base_channels: width of the first level.
        channel_mults: width multiplier per level (len - 1 downsamplings).
        num_res_blocks: residual blocks per level going down (one more going up).
        attention: a self-attention block between the two middle residual blocks.
        num_groups: GroupNorm groups (at most).
        dropout: in the residual blocks.
        zero_init: zero-initialise the last conv of each block and the output conv.

    Shapes:
        x: (B, C, H, W), t: (B,) step indices. Returns (B, C, H, W).
    """

    def __init__(self, in_channels: int = 1, base_channels: int = 32, channel_mults: tuple[int, ...] = (1, 2, 2),
                 num_res_blocks: int = 1, *, attention: bool = True, num_groups: int = 32, dropout: float = 0.0,
                 zero_init: bool = True) -> None:
        super().__init__()
        self.base_channels = base_channels
        time_dim = 4 * base_channels
        self.time_mlp = nn.Sequential(nn.Linear(base_channels, time_dim), nn.SiLU(), nn.Linear(time_dim, time_dim))
        kw: dict[str, Any] = {"num_groups": num_groups, "dropout": dropout, "zero_init": zero_init}
        self.conv_in = nn.Conv2d(in_channels, base_channels, 3, padding=1)

        self.down = nn.ModuleList()
        skips, ch = [base_channels], base_channels
        for level, mult in enumerate(channel_mults):
            for _ in range(num_res_blocks):
                self.down.append(ResBlock(ch, base_channels * mult, time_dim, **kw))
                ch = base_channels * mult
                skips.append(ch)
            if level != len(channel_mults) - 1:
                self.down.append(Downsample(ch))
                skips.append(ch)

        self.mid1 = ResBlock(ch, ch, time_dim, **kw)
        self.mid_attn = (AttentionBlock(ch, num_groups=num_groups, zero_init=zero_init) if attention
                         else nn.Identity())
        self.mid2 = ResBlock(ch, ch, time_dim, **kw)

        self.up = nn.ModuleList()
        for level in reversed(range(len(channel_mults))):
            for _ in range(num_res_blocks + 1):
                self.up.append(ResBlock(ch + skips.pop(), base_channels * channel_mults[level], time_dim, **kw))
                ch = base_channels * channel_mults[level]
            if level != 0:
                self.up.append(Upsample(ch))

        self.norm_out = nn.GroupNorm(_groups(ch, num_groups), ch)
        self.conv_out = nn.Conv2d(ch, in_channels, 3, padding=1)
        if zero_init:
            nn.init.zeros_(self.conv_out.weight)
            nn.init.zeros_(self.conv_out.bias)

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        temb = self.time_mlp(timestep_embedding(t, self.base_channels))  # (B, 4 * base)
        h = self.conv_in(x)  # (B, base, H, W)
        hs = [h]
        for block in self.down:
            h = block(h, temb) if isinstance(block, ResBlock) else block(h)
            hs.append(h)
        h = self.mid2(self.mid_attn(self.mid1(h, temb)), temb)  # lowest resolution
        for block in self.up:
            if isinstance(block, ResBlock):
                h = block(torch.cat([h, hs.pop()], dim=1), temb)  # (B, C + C_skip, h, w) -> (B, C', h, w)
            else:
                h = block(h, size=hs[-1].shape[-2:])  # up to the next skip's size
        return self.conv_out(F.silu(self.norm_out(h)))  # (B, C, H, W)


# --------------------------------------------------------------------------- the method

class DDPM(GenerativeMethod):
    """Denoising diffusion with epsilon prediction, ancestral (DDPM) and DDIM sampling.

    Args:
        config: a :class:`DDPMConfig`.

    Buffers (float32, (T,), index i = paper step i + 1): ``betas``, ``alphas_cumprod``.
    """

    task = "generative"

    def __init__(self, config: DDPMConfig) -> None:
        super().__init__()
        self.config = c = config
        self.unet = UNet(c.in_channels, c.base_channels, tuple(c.channel_mults), c.num_res_blocks,
                         attention=c.attention, num_groups=c.num_groups, dropout=c.dropout, zero_init=c.zero_init)
        if c.schedule == "linear":
            betas = linear_betas(c.timesteps, c.beta_start, c.beta_end)
        else:
            betas = cosine_betas(c.timesteps, c.cosine_s)
        self.register_buffer("betas", betas.float(), persistent=False)
        self.register_buffer("alphas_cumprod", torch.cumprod(1 - betas, 0).float(), persistent=False)

    @property
    def timesteps(self) -> int:
        return self.config.timesteps

    def _coef(self, values: Tensor, t: Tensor, like: Tensor) -> Tensor:
        return values[t].to(like.dtype).reshape(-1, *([1] * (like.dim() - 1)))  # (B, 1, 1, 1)

    # ---- the forward process ------------------------------------------------------------------
    def q_sample(self, x0: Tensor, t: Tensor, noise: Tensor | None = None) -> Tensor:
        """The closed form ``x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps`` (Ho eq. 4).

        Args:
            x0: clean images in the working range [-1, 1], (B, C, H, W).
            t: (B,) 0-based step indices in [0, T) (index i is paper step i + 1).
            noise: eps, same shape as x0; None draws it.
        """
        noise = torch.randn_like(x0) if noise is None else noise
        abar = self._coef(self.alphas_cumprod, t, x0)
        return abar.sqrt() * x0 + (1 - abar).sqrt() * noise

    def q_step(self, x_prev: Tensor, t: Tensor, noise: Tensor | None = None) -> Tensor:
        """One forward step ``x_t = sqrt(1 - beta_t) x_{t-1} + sqrt(beta_t) eps`` (Ho eq. 2); t as q_sample."""
        noise = torch.randn_like(x_prev) if noise is None else noise
        beta = self._coef(self.betas, t, x_prev)
        return (1 - beta).sqrt() * x_prev + beta.sqrt() * noise

    def forward(self, x: Tensor, y: Tensor | None = None) -> dict[str, Tensor]:
        """The simple loss ``|| eps - eps_theta(x_t, t) ||^2`` at a uniform random step per image.

        Args:
            x: images in [0, 1], (B, C, H, W).
            y: ignored (unconditional).
        """
        check_image_input(self, x, self.config.in_channels)
        x0 = to_signed(x)  # (B, C, H, W) in [-1, 1]
        g = None if self.training else torch.Generator(device=x.device).manual_seed(0)
        t = torch.randint(0, self.timesteps, (x.shape[0],), generator=g, device=x.device)  # (B,)
        noise = torch.randn(x0.shape, generator=g, device=x.device, dtype=x0.dtype)
        eps = self.unet(self.q_sample(x0, t, noise), t)
        return {"loss": F.mse_loss(eps, noise)}

    # ---- the reverse process ------------------------------------------------------------------
    def sampling_timesteps(self, steps: int | None = None) -> Tensor:
        """The step indices the sampler visits, increasing: all T, or ``steps`` evenly spaced from 0 to T - 1."""
        T = self.timesteps
        steps = steps or self.config.sample_steps or T
        if not 1 <= steps <= T:
            raise ValueError(f"steps must be in [1, T={T}], got {steps}")
        if steps == 1:
            return torch.tensor([T - 1])
        return torch.linspace(0, T - 1, steps, dtype=torch.float64).round().long()  # strictly increasing

    def _reverse(self, x: Tensor, seq: Tensor, *, method: str, eta: float, clip: bool,
                 generator: torch.Generator | None, callback: Any = None) -> Tensor:
        """Run the reverse chain from x = x_{seq[-1]} down to x_0 (working range)."""
        if method not in ("ddpm", "ddim"):
            raise ValueError(f"method must be 'ddpm' or 'ddim', got {method!r}")
        abar_all = self.alphas_cumprod
        n = x.shape[0]
        for i in reversed(range(len(seq))):
            t = int(seq[i])
            a_t = abar_all[t]
            a_prev = abar_all[int(seq[i - 1])] if i > 0 else torch.ones((), device=x.device)
            eps = self.unet(x, torch.full((n,), t, device=x.device, dtype=torch.long))  # (n, C, H, W)
            x0_hat = (x - (1 - a_t).sqrt() * eps) / a_t.sqrt()
            if clip:
                x0_hat = x0_hat.clamp(-1.0, 1.0)
                # the noise consistent with the clamped x_0 (else DDIM mixes a clamped x_0 with the raw eps)
                eps = (x - a_t.sqrt() * x0_hat) / (1 - a_t).sqrt()
            if method == "ddim":
                sigma = eta * ((1 - a_prev) / (1 - a_t) * (1 - a_t / a_prev)).sqrt()
                x = a_prev.sqrt() * x0_hat + (1 - a_prev - sigma**2).clamp(min=0).sqrt() * eps
                if i > 0 and eta > 0:
                    x = x + sigma * torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
            else:
                beta = 1 - a_t / a_prev  # beta_t of the (respaced) chain
                mean = (a_prev.sqrt() * beta / (1 - a_t)) * x0_hat + ((1 - beta).sqrt() * (1 - a_prev) / (1 - a_t)) * x
                x = mean
                if i > 0:
                    var = beta if self.config.variance == "beta" else beta * (1 - a_prev) / (1 - a_t)
                    x = x + var.sqrt() * torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
            if callback is not None:
                callback(i, x, x0_hat)
        return x

    @torch.no_grad()
    def sample(self, n: int, *, y: Tensor | None = None, generator: torch.Generator | None = None,
               steps: int | None = None, method: Literal["ddpm", "ddim"] | None = None, eta: float | None = None,
               noise: Tensor | None = None, clip_denoised: bool | None = None) -> Tensor:
        """Draw ``n`` images in [0, 1] by running the reverse chain (in eval mode).

        Args:
            n: how many.
            y: ignored (unconditional).
            generator: seeded noise (on the model's device).
            steps: sampler steps; None = ``config.sample_steps`` or T.
            method: ``ddpm`` (ancestral) or ``ddim``; None = ``config.sample_method``.
            eta: DDIM's eta; None = ``config.eta``.
            noise: x_T, (n, C, H, W); None draws it from ``generator``.
            clip_denoised: clamp x0_hat to [-1, 1]; None = ``config.clip_denoised``.

        Returns:
            (n, C, H, W) in [0, 1].
        """
        c = self.config
        x = self._initial_noise(n, generator, noise)
        was_training = self.training
        self.eval()
        try:
            x = self._reverse(x, self.sampling_timesteps(steps), method=method or c.sample_method,
                              eta=c.eta if eta is None else eta,
                              clip=c.clip_denoised if clip_denoised is None else clip_denoised, generator=generator)
        finally:
            self.train(was_training)
        return to_unit(x)

    def _initial_noise(self, n: int, generator: torch.Generator | None, noise: Tensor | None) -> Tensor:
        shape = (n, *self.data_shape())
        if noise is None:
            return torch.randn(shape, generator=generator, device=self.device)
        if tuple(noise.shape) != shape:
            raise ValueError(f"noise must have shape {shape} (x_T for n={n} images), got {tuple(noise.shape)}")
        return noise.to(self.device)

    @torch.no_grad()
    def trajectory(self, x0: Tensor | None = None, *, n: int = 8, num_frames: int = 10, steps: int | None = None,
                   method: Literal["ddpm", "ddim"] | None = None, eta: float | None = None,
                   generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """Snapshots of the forward (noising) and reverse (denoising) processes, for the step-by-step picture.

        The reverse chain starts from x_T ~ N(0, I) (``n`` images) and is recorded at ``num_frames``
        evenly spaced sampler steps, from x_T to x_0. The forward chain runs the single steps q_step from
        ``x0`` (images in [0, 1]; None: the reverse chain's final samples) to x_T, recorded at
        ``num_frames`` evenly spaced t from 0 (the clean image) to T.

        Returns:
            ``forward`` (F, B, C, H, W) and ``forward_t`` (F,) paper steps t (0 = clean);
            ``reverse`` (F, n, C, H, W) x_t, ``reverse_x0`` (F, n, C, H, W) the predicted x_0 at the same steps,
            and ``reverse_t`` (F,) the paper step t of each frame (T for the noise, 0 for the output).
            Images in [0, 1] (x_t clamped from [-1, 1]); F = num_frames (fewer when the chain has fewer
            steps than frames).
        """
        if num_frames < 2:
            raise ValueError(f"num_frames must be >= 2 (the first and last step), got {num_frames}")
        c = self.config
        was_training = self.training
        self.eval()
        try:
            seq = self.sampling_timesteps(steps)
            x = self._initial_noise(n, generator, None)
            keep = set(torch.linspace(0, len(seq), num_frames).round().long().tolist())  # loop counts to record
            frames, frames_x0, ts = [to_unit(x)], [to_unit(x)], [self.timesteps]
            done = [0]

            def record(i: int, x_now: Tensor, x0_hat: Tensor) -> None:
                done[0] += 1
                if done[0] in keep:
                    frames.append(to_unit(x_now))
                    frames_x0.append(to_unit(x0_hat))
                    ts.append(int(seq[i - 1]) + 1 if i > 0 else 0)

            out = self._reverse(x, seq, method=method or c.sample_method, eta=c.eta if eta is None else eta,
                                clip=c.clip_denoised, generator=generator, callback=record)
            frames_x0[0] = frames_x0[1]  # nothing predicted yet at x_T: show the first prediction
            start = to_signed(x0.to(self.device)) if x0 is not None else out
            t_keep = sorted(set(torch.linspace(0, self.timesteps, num_frames).round().long().tolist()))
            fwd, xt = [], start
            for t in range(self.timesteps + 1):
                if t > 0:
                    noise = torch.randn(xt.shape, generator=generator, device=xt.device, dtype=xt.dtype)
                    xt = self.q_step(xt, torch.full((xt.shape[0],), t - 1, device=xt.device), noise)
                if t in t_keep:
                    fwd.append(to_unit(xt))
        finally:
            self.train(was_training)
        return {"forward": torch.stack(fwd), "forward_t": torch.tensor(t_keep),
                "reverse": torch.stack(frames), "reverse_x0": torch.stack(frames_x0),
                "reverse_t": torch.tensor(ts)}


@register_model("ddpm", family="generative", config=DDPMConfig)
def ddpm(cfg: DDPMConfig) -> DDPM:
    """DDPM (Ho et al. 2020): epsilon-predicting U-Net, linear/cosine schedule, DDPM and DDIM sampling."""
    return DDPM(cfg)
