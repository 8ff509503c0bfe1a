"""Image-to-image translation: Pix2Pix (paired) and CycleGAN (unpaired).

    P. Isola, J.-Y. Zhu, T. Zhou, A. A. Efros, "Image-to-Image Translation with Conditional
    Adversarial Networks", CVPR 2017 (Pix2Pix). https://arxiv.org/abs/1611.07004
    J.-Y. Zhu, T. Park, P. Isola, A. A. Efros, "Unpaired Image-to-Image Translation using
    Cycle-Consistent Adversarial Networks", ICCV 2017 (CycleGAN). https://arxiv.org/abs/1703.10593
    X. Mao et al., "Least Squares Generative Adversarial Networks", ICCV 2017 (LSGAN loss).
    https://arxiv.org/abs/1611.04076

**Pix2Pix** learns a map G: x -> y from aligned pairs (x, y) with a conditional GAN whose
discriminator sees the input and an output side by side, plus an L1 term (Isola eq. 1-4)::

    L_cGAN(G, D) = E[log D(x, y)] + E[log(1 - D(x, G(x)))]
    L_L1(G)      = E[|| y - G(x) ||_1]
    G* = arg min_G max_D L_cGAN(G, D) + lambda L_L1(G),   lambda = 100

G is a U-Net (an encoder-decoder whose layer i is concatenated to layer n - i), D a PatchGAN: a
fully convolutional net whose output is one real/fake logit per (overlapping) image patch, averaged.
The generator minimises ``-log D(x, G(x))`` (the non-saturating form) and D's loss is halved.

**CycleGAN** learns G: A -> B and F: B -> A from unpaired sets, each with its own discriminator (D_B
judges G's outputs against real B, D_A judges F's against real A), a least-squares GAN loss, the
cycle-consistency loss and an identity loss (Zhu eq. 2-3 and section 5.2)::

    L_GAN(G, D_B)  = E_b[(D_B(b) - 1)^2] + E_a[D_B(G(a))^2]            # D minimises; G minimises E[(D_B(G(a)) - 1)^2]
    L_cyc(G, F)    = E_a[|| F(G(a)) - a ||_1] + E_b[|| G(F(b)) - b ||_1]
    L_identity     = E_b[|| G(b) - b ||_1] + E_a[|| F(a) - a ||_1]
    L = L_GAN(G, D_B) + L_GAN(F, D_A) + lambda L_cyc + 0.5 lambda L_identity,   lambda = 10

The generators are ResNet-style (7x7 conv, two stride-2 convs, residual blocks, two transposed
convs, 7x7 conv, tanh; instance norm, reflection padding), the discriminators PatchGANs. Each
discriminator is updated on a history of 50 generated images (:class:`ImagePool`, Shrivastava et
al. 2017) rather than only the latest ones, which damps oscillation.

Batches (both methods are ``task = "adversarial"``; the AdversarialTask calls
``discriminator_loss(x, y)`` and ``generator_loss(x, y)``): images in [0, 1], (B, C, H, W), mapped
to [-1, 1] inside (:func:`to_signed`).

- Pix2Pix: ``x`` = input image (e.g. an edge map), ``y`` = its paired target image (the contract's
  label slot carries the target).
- CycleGAN: ``x`` = a domain-A image, ``y`` = a domain-B image, unpaired (any two batches).

``translate(x)`` maps inputs (domain A for CycleGAN; ``direction="b2a"`` for F) to outputs in [0, 1].
Both papers train with Adam, lr 2e-4, betas (0.5, 0.999) (:meth:`optimizer_settings`); CycleGAN
keeps the rate for 100 epochs and decays it linearly to 0 over the next 100 (the engine's schedule).

Deviations from the paper:
    - Scaled down for 8x8 to 32x32 images. Pix2Pix's U-Net has ``ceil(log2(image_size))`` stride-2
      levels down to a 1x1 bottleneck (the paper: 8 levels for 256x256) with widths
      ``base_channels * min(2^i, 8)`` (paper: base 64); images whose side is not a power of two are
      padded with -1 (black) to the next one (28 -> 32) and the output is cropped back.
    - The PatchGAN has ``disc_layers`` = 1 stride-2 layer by default: 16x16 receptive fields, about half a
      28x28 image (the paper's 70x70 discriminator has 3 on 256x256 images, about a quarter of the side).
    - CycleGAN's generators have ``base_channels`` = 32 and ``num_res_blocks`` = 3 (the paper: 64 and 6
      blocks for 128x128 images, 9 for 256x256); images need a side divisible by 4.
    - Pix2Pix runs the generator at test time as in training (dropout on, batch statistics in the batch
      norms: the paper's section 3.3); ``train_mode_inference=False`` gives the usual eval behaviour
      (no dropout, running statistics). The registry walk's tiny config turns it off.
    - Convolutions followed by a normalisation have no bias (a per-channel bias is cancelled by the
      norm); the authors' code keeps one before instance norm.
    - Weights are initialised from N(0, 0.02) (both papers), norm scales from N(1, 0.02).
    - ``forward`` (validation and the registry walk) computes both losses on fresh generator outputs
      without the image pool; the pool is used by ``discriminator_loss`` in training mode only.
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
from archlab.models.generative.nets import dcgan_init
from archlab.registry import register_model

__all__ = [
    "CycleGAN",
    "CycleGANConfig",
    "ImagePool",
    "PatchDiscriminator",
    "Pix2Pix",
    "Pix2PixConfig",
    "ResnetGenerator",
    "UNetGenerator",
]


# --------------------------------------------------------------------------- networks

class _Dropout(nn.Module):
    """Dropout that stays on in eval mode when ``always`` (Pix2Pix's test-time noise)."""

    def __init__(self, p: float, always: bool) -> None:
        super().__init__()
        self.p, self.always = p, always

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout(x, self.p, training=self.training or self.always)


class UNetGenerator(nn.Module):
    """Pix2Pix's U-Net: stride-2 4x4 convs down to 1x1, transposed convs up, encoder i concatenated to decoder i.

    Encoder level i: conv4x4/2 -> BatchNorm (not on the first and the innermost level) -> LeakyReLU(0.2).
    Decoder level i: transposed conv4x4/2 -> BatchNorm -> dropout (the three innermost levels) -> ReLU,
    then concatenated with encoder level i - 1; the last transposed conv outputs ``out_channels`` through tanh.

    Args:
        in_channels: input image channels.
        out_channels: output image channels.
        num_levels: stride-2 levels (the input side must be divisible by 2^num_levels).
        base_channels: width of the first level; level i has ``base_channels * min(2^i, 8)``.
        dropout: dropout rate in the three innermost decoder levels (paper: 0.5).
        train_mode_inference: dropout and batch statistics also in eval mode (the paper).

    Shapes:
        x: (B, in_channels, H, W) -> (B, out_channels, H, W) in [-1, 1].
    """

    def __init__(self, in_channels: int, out_channels: int, num_levels: int, base_channels: int = 64, *,
                 dropout: float = 0.5, train_mode_inference: bool = True) -> None:
        super().__init__()
        if num_levels < 2:
            raise ValueError(f"num_levels must be >= 2, got {num_levels}")
        widths = [base_channels * min(2**i, 8) for i in range(num_levels)]
        track = not train_mode_inference  # no running statistics: batch statistics in train and eval

        def bn(c: int) -> nn.Module:
            return nn.BatchNorm2d(c, track_running_stats=track)

        self.encoder = nn.ModuleList()
        c_in = in_channels
        for i, c in enumerate(widths):
            norm = 0 < i < num_levels - 1
            self.encoder.append(nn.Sequential(
                nn.Conv2d(c_in, c, 4, stride=2, padding=1, bias=not norm),
                bn(c) if norm else nn.Identity(),
                nn.LeakyReLU(0.2),
            ))
            c_in = c
        self.decoder = nn.ModuleList()
        for i in reversed(range(1, num_levels)):  # decoder level i outputs encoder level i - 1's size
            c_in = widths[i] if i == num_levels - 1 else 2 * widths[i]
            inner = num_levels - 1 - i < 3
            self.decoder.append(nn.Sequential(
                nn.ConvTranspose2d(c_in, widths[i - 1], 4, stride=2, padding=1, bias=False),
                bn(widths[i - 1]),
                _Dropout(dropout, train_mode_inference) if inner and dropout > 0 else nn.Identity(),
                nn.ReLU(),
            ))
        self.out = nn.ConvTranspose2d(2 * widths[0], out_channels, 4, stride=2, padding=1)
        dcgan_init(self)

    def forward(self, x: Tensor) -> Tensor:
        skips = []
        h = x
        for block in self.encoder:
            h = block(h)  # (B, c_i, H / 2^(i+1), W / 2^(i+1))
            skips.append(h)
        skips.pop()  # the bottleneck is not concatenated to itself
        for block in self.decoder:
            h = torch.cat([block(h), skips.pop()], dim=1)  # (B, 2 c_{i-1}, ...)
        return torch.tanh(self.out(h))  # (B, out_channels, H, W)


class PatchDiscriminator(nn.Module):
    """PatchGAN: conv4x4/2 -> LReLU, ``num_layers - 1`` more conv4x4/2 -> norm -> LReLU, conv4x4/1 -> norm -> LReLU,
    conv4x4/1 -> 1 logit per patch.

    ``num_layers=3`` is the paper's 70x70 discriminator; 1 gives 16x16 patches, 2 gives 34x34.

    Args:
        in_channels: input channels (Pix2Pix: input + output channels side by side).
        base_channels: width of the first layer (paper: 64); doubles per layer up to 8x.
        num_layers: stride-2 layers.
        norm: ``batch`` (Pix2Pix) or ``instance`` (CycleGAN).

    Shapes:
        x: (B, in_channels, H, W) -> (B, 1, H', W') logits (no sigmoid).
    """

    def __init__(self, in_channels: int, base_channels: int = 64, num_layers: int = 3, *,
                 norm: Literal["batch", "instance"] = "batch") -> None:
        super().__init__()

        def make_norm(c: int) -> nn.Module:
            return nn.BatchNorm2d(c) if norm == "batch" else nn.InstanceNorm2d(c)

        layers: list[nn.Module] = [nn.Conv2d(in_channels, base_channels, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
        c = base_channels
        for i in range(1, num_layers + 1):
            c_next = base_channels * min(2**i, 8)
            stride = 2 if i < num_layers else 1
            layers += [nn.Conv2d(c, c_next, 4, stride=stride, padding=1, bias=False), make_norm(c_next),
                       nn.LeakyReLU(0.2)]
            c = c_next
        layers.append(nn.Conv2d(c, 1, 4, stride=1, padding=1))
        self.net = nn.Sequential(*layers)
        dcgan_init(self)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)  # (B, 1, H', W')


class _ResidualBlock(nn.Module):
    """reflect-pad -> conv3x3 -> InstanceNorm -> ReLU -> reflect-pad -> conv3x3 -> InstanceNorm, plus x."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3, bias=False), nn.InstanceNorm2d(channels), nn.ReLU(),
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3, bias=False), nn.InstanceNorm2d(channels),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.net(x)


class ResnetGenerator(nn.Module):
    """CycleGAN's generator: c7s1-k, d2k, d4k, R4k x num_res_blocks, u2k, uk, c7s1-C (Johnson et al.'s network).

    Args:
        in_channels: image channels (input and output).
        base_channels: k (paper: 64).
        num_res_blocks: residual blocks at 1/4 resolution (paper: 6 for 128x128, 9 for 256x256).

    Shapes:
        x: (B, C, H, W), H and W divisible by 4 -> (B, C, H, W) in [-1, 1].
    """

    def __init__(self, in_channels: int, base_channels: int = 64, num_res_blocks: int = 9) -> None:
        super().__init__()
        k = base_channels

        def norm_relu(c: int) -> list[nn.Module]:
            return [nn.InstanceNorm2d(c), nn.ReLU()]

        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(in_channels, k, 7, bias=False), *norm_relu(k)]
        layers += [nn.Conv2d(k, 2 * k, 3, stride=2, padding=1, bias=False), *norm_relu(2 * k)]  # H/2
        layers += [nn.Conv2d(2 * k, 4 * k, 3, stride=2, padding=1, bias=False), *norm_relu(4 * k)]  # H/4
        layers += [_ResidualBlock(4 * k) for _ in range(num_res_blocks)]
        layers += [nn.ConvTranspose2d(4 * k, 2 * k, 3, stride=2, padding=1, output_padding=1, bias=False),
                   *norm_relu(2 * k)]  # H/2
        layers += [nn.ConvTranspose2d(2 * k, k, 3, stride=2, padding=1, output_padding=1, bias=False),
                   *norm_relu(k)]  # H
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(k, in_channels, 7), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        dcgan_init(self)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class ImagePool:
    """A history of generated images for the discriminator (Shrivastava et al. 2017; CycleGAN section 4).

    Until ``size`` images are stored, each query image is stored and returned. Once full, each image is,
    with probability 1/2, swapped for a random stored one (the stored one is returned, the new one takes
    its place), otherwise returned as is. ``size=0`` disables the pool. Not part of the state dict.

    Args:
        size: how many images to keep (paper: 50).
    """

    def __init__(self, size: int = 50) -> None:
        self.size = size
        self.images: list[Tensor] = []

    def query(self, images: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Return a batch of the same shape: new images and/or images from the history (all detached)."""
        images = images.detach()
        if self.size == 0:
            return images
        out = []
        for image in images:
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
            elif torch.rand((), generator=generator).item() < 0.5:
                j = int(torch.randint(0, self.size, (), generator=generator))
                out.append(self.images[j])
                self.images[j] = image.clone()
            else:
                out.append(image)
        return torch.stack(out)


def _bce(logits: Tensor, real: bool) -> Tensor:
    target = torch.ones_like(logits) if real else torch.zeros_like(logits)
    return F.binary_cross_entropy_with_logits(logits, target)


def _lsgan(pred: Tensor, real: bool) -> Tensor:
    return ((pred - (1.0 if real else 0.0)) ** 2).mean()


def _check_pair(model: nn.Module, x: Tensor, y: Tensor | None, c_x: int, c_y: int, what: str) -> None:
    name = getattr(model, "model_name", type(model).__name__)
    if y is None or not torch.is_tensor(y) or y.dim() != 4:
        raise ValueError(f"{name} needs image batches (x, y): {what}; got y="
                         f"{None if y is None else tuple(y.shape)}. Train it on a paired/unpaired image dataset")
    check_image_input(model, x, c_x)
    check_image_input(model, y, c_y)


_ADAM = {"name": "adam", "lr": 2e-4, "betas": (0.5, 0.999)}


# --------------------------------------------------------------------------- Pix2Pix

@dataclass
class Pix2PixConfig:
    """Options of :class:`Pix2Pix` (defaults: the paper's losses, networks scaled down for small images).

    Attributes:
        in_channels: input image channels (filled from the dataset).
        out_channels: target image channels; None = in_channels.
        image_size: image side (filled from the dataset); padded to a power of two inside.
        base_channels: U-Net width (paper: 64).
        disc_channels: PatchGAN width (paper: 64).
        disc_layers: PatchGAN stride-2 layers (paper: 3, 70x70 patches; 1: 16x16).
        dropout: U-Net decoder dropout (paper: 0.5).
        l1_weight: lambda on the L1 term (paper: 100).
        train_mode_inference: dropout and batch statistics at test time too (the paper).
    """

    in_channels: int = 1
    out_channels: int | None = None
    image_size: int = 28
    base_channels: int = 32
    disc_channels: int = 32
    disc_layers: int = 1
    dropout: float = 0.5
    l1_weight: float = 100.0
    train_mode_inference: bool = True

    TINY: ClassVar[dict[str, Any]] = {"image_size": 8, "base_channels": 4, "disc_channels": 4,
                                      "train_mode_inference": False}

    def __post_init__(self) -> None:
        if min(self.in_channels, self.image_size, self.base_channels, self.disc_channels, self.disc_layers) < 1:
            raise ValueError("in_channels, image_size, base_channels, disc_channels and disc_layers must be >= 1")
        if self.image_size < 4:
            raise ValueError(f"image_size must be >= 4 for the U-Net's two levels, got {self.image_size}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")


class Pix2Pix(GenerativeMethod):
    """Paired translation x -> y: U-Net generator, conditional PatchGAN, GAN + lambda L1 loss.

    Batches: ``x`` the input images, ``y`` the paired target images, both (B, C, H, W) in [0, 1].
    """

    task = "adversarial"

    def __init__(self, config: Pix2PixConfig) -> None:
        super().__init__()
        self.config = c = config
        self.out_channels = c.out_channels or c.in_channels
        levels = max(2, math.ceil(math.log2(c.image_size)))
        self.padded_size = 2**levels
        self.generator = UNetGenerator(c.in_channels, self.out_channels, levels, c.base_channels, dropout=c.dropout,
                                       train_mode_inference=c.train_mode_inference)
        self.discriminator = PatchDiscriminator(c.in_channels + self.out_channels, c.disc_channels, c.disc_layers,
                                                norm="batch")

    def data_shape(self) -> tuple[int, ...]:
        return (self.out_channels, self.config.image_size, self.config.image_size)

    def example_input(self, batch_size: int = 2, seed: int = 0) -> tuple[Tensor, Tensor]:
        """(input images, target images), uniform in [0, 1]."""
        g = torch.Generator().manual_seed(seed)
        s = self.config.image_size
        return (torch.rand(batch_size, self.config.in_channels, s, s, generator=g),
                torch.rand(batch_size, self.out_channels, s, s, generator=g))

    def generate(self, x: Tensor) -> Tensor:
        """G on working-range inputs: (B, C_in, H, W) in [-1, 1] -> (B, C_out, H, W) in [-1, 1]."""
        H, W = x.shape[-2:]
        ph, pw = self.padded_size - H, self.padded_size - W
        if ph < 0 or pw < 0:
            raise ValueError(f"{type(self).__name__} was built for image_size={self.config.image_size}, got {H}x{W}; "
                             f"build it with image_size={max(H, W)}")
        xp = F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2), value=-1.0)  # black border to 2^levels
        out = self.generator(xp)  # (B, C_out, 2^L, 2^L)
        return out[..., ph // 2: ph // 2 + H, pw // 2: pw // 2 + W]

    def translate(self, x: Tensor) -> Tensor:
        """Input images in [0, 1] -> translated images in [0, 1] (B, C_out, H, W)."""
        check_image_input(self, x, self.config.in_channels)
        return to_unit(self.generate(to_signed(x)))

    def sample(self, n: int, *, y: Tensor | None = None, generator: torch.Generator | None = None) -> Tensor:
        raise NotImplementedError("pix2pix translates input images and has no prior to sample from: "
                                  "call translate(x) on a batch of input images")

    def _d(self, x: Tensor, out: Tensor) -> Tensor:
        return self.discriminator(torch.cat([x, out], dim=1))  # (B, 1, H', W') patch logits

    def discriminator_loss(self, x: Tensor, y: Tensor | None = None) -> dict[str, Tensor]:
        """``(BCE(D(x, y), 1) + BCE(D(x, G(x)), 0)) / 2`` with G(x) detached. x: inputs, y: targets, in [0, 1]."""
        _check_pair(self, x, y, self.config.in_channels, self.out_channels, "x = inputs, y = paired targets")
        xs, ys = to_signed(x), to_signed(y)
        with torch.no_grad():
            fake = self.generate(xs)
        real_logits, fake_logits = self._d(xs, ys), self._d(xs, fake)
        loss = 0.5 * (_bce(real_logits, True) + _bce(fake_logits, False))
        return {"loss": loss, "d_real": torch.sigmoid(real_logits).mean(), "d_fake": torch.sigmoid(fake_logits).mean()}

    def generator_loss(self, x: Tensor, y: Tensor | None = None) -> dict[str, Tensor]:
        """``BCE(D(x, G(x)), 1) + lambda * mean|G(x) - y|`` (L1 in the [-1, 1] range). x: inputs, y: targets."""
        _check_pair(self, x, y, self.config.in_channels, self.out_channels, "x = inputs, y = paired targets")
        xs, ys = to_signed(x), to_signed(y)
        fake = self.generate(xs)
        gan = _bce(self._d(xs, fake), True)
        l1 = (fake - ys).abs().mean()
        return {"loss": gan + self.config.l1_weight * l1, "loss_gan": gan, "l1": l1}

    def forward(self, x: Tensor, y: Tensor | None = None) -> dict[str, Tensor]:
        """Both players' losses on one generator pass: ``{"loss_d", "loss_g", "loss", "l1"}``."""
        _check_pair(self, x, y, self.config.in_channels, self.out_channels, "x = inputs, y = paired targets")
        xs, ys = to_signed(x), to_signed(y)
        fake = self.generate(xs)
        loss_d = 0.5 * (_bce(self._d(xs, ys), True) + _bce(self._d(xs, fake.detach()), False))
        l1 = (fake - ys).abs().mean()
        loss_g = _bce(self._d(xs, fake), True) + self.config.l1_weight * l1
        return {"loss_d": loss_d, "loss_g": loss_g, "loss": loss_d + loss_g, "l1": l1}

    def generator_parameters(self) -> list[nn.Parameter]:
        return list(self.generator.parameters())

    def discriminator_parameters(self) -> list[nn.Parameter]:
        return list(self.discriminator.parameters())

    def optimizer_settings(self) -> dict[str, dict[str, Any]]:
        """Adam, lr 2e-4, betas (0.5, 0.999) for both (Isola et al. section 3.3)."""
        return {"generator": dict(_ADAM), "discriminator": dict(_ADAM)}


# --------------------------------------------------------------------------- CycleGAN

@dataclass
class CycleGANConfig:
    """Options of :class:`CycleGAN` (defaults: the paper's losses, networks scaled down for small images).

    Attributes:
        in_channels: image channels of both domains (filled from the dataset).
        image_size: image side, divisible by 4 (filled from the dataset).
        base_channels: generator width k (paper: 64).
        num_res_blocks: generator residual blocks (paper: 6 or 9).
        disc_channels: PatchGAN width (paper: 64).
        disc_layers: PatchGAN stride-2 layers (paper: 3; 1 gives 16x16 patches).
        cycle_weight: lambda (paper: 10).
        identity_weight: identity loss weight as a fraction of lambda (paper: 0.5; 0 disables it).
        pool_size: image pool size (paper: 50; 0 disables it).
    """

    in_channels: int = 1
    image_size: int = 28
    base_channels: int = 32
    num_res_blocks: int = 3
    disc_channels: int = 32
    disc_layers: int = 1
    cycle_weight: float = 10.0
    identity_weight: float = 0.5
    pool_size: int = 50

    TINY: ClassVar[dict[str, Any]] = {"image_size": 8, "base_channels": 4, "num_res_blocks": 1, "disc_channels": 4}

    def __post_init__(self) -> None:
        if min(self.in_channels, self.image_size, self.base_channels, self.disc_channels, self.disc_layers) < 1:
            raise ValueError("in_channels, image_size, base_channels, disc_channels and disc_layers must be >= 1")
        if self.image_size % 4:
            raise ValueError(f"image_size must be divisible by 4 (two stride-2 levels), got {self.image_size}; "
                             f"resize or pad the images")
        if self.num_res_blocks < 0 or self.pool_size < 0:
            raise ValueError("num_res_blocks and pool_size must be >= 0")


class CycleGAN(GenerativeMethod):
    """Unpaired translation A <-> B: generators G: A -> B, F: B -> A, discriminators D_A, D_B (LSGAN).

    Batches: ``x`` domain-A images, ``y`` domain-B images (unpaired), both (B, C, H, W) in [0, 1].
    """

    task = "adversarial"

    def __init__(self, config: CycleGANConfig) -> None:
        super().__init__()
        self.config = c = config
        self.g_ab = ResnetGenerator(c.in_channels, c.base_channels, c.num_res_blocks)  # G
        self.g_ba = ResnetGenerator(c.in_channels, c.base_channels, c.num_res_blocks)  # F
        self.d_a = PatchDiscriminator(c.in_channels, c.disc_channels, c.disc_layers, norm="instance")
        self.d_b = PatchDiscriminator(c.in_channels, c.disc_channels, c.disc_layers, norm="instance")
        self.pool_a = ImagePool(c.pool_size)  # F's outputs, for D_A
        self.pool_b = ImagePool(c.pool_size)  # G's outputs, for D_B

    def example_input(self, batch_size: int = 2, seed: int = 0) -> tuple[Tensor, Tensor]:
        """(domain-A images, domain-B images), uniform in [0, 1]."""
        g = torch.Generator().manual_seed(seed)
        shape = (batch_size, *self.data_shape())
        return torch.rand(shape, generator=g), torch.rand(shape, generator=g)

    def translate(self, x: Tensor, direction: Literal["a2b", "b2a"] = "a2b") -> Tensor:
        """Images in [0, 1] -> translated images in [0, 1]: G (``a2b``) or F (``b2a``)."""
        check_image_input(self, x, self.config.in_channels)
        net = self.g_ab if direction == "a2b" else self.g_ba
        return to_unit(net(to_signed(x)))

    def sample(self, n: int, *, y: Tensor | None = None, generator: torch.Generator | None = None) -> Tensor:
        raise NotImplementedError("cyclegan translates images between two domains and has no prior to sample "
                                  "from: call translate(x) (A -> B) or translate(x, direction='b2a')")

    def discriminator_loss(self, x: Tensor, y: Tensor | None = None) -> dict[str, Tensor]:
        """``0.5 [(D(real) - 1)^2 + D(fake)^2]`` for D_A and D_B, fakes detached (from the pools in training)."""
        _check_pair(self, x, y, self.config.in_channels, self.config.in_channels,
                    "x = domain-A images, y = domain-B images")
        a, b = to_signed(x), to_signed(y)
        with torch.no_grad():
            fake_b, fake_a = self.g_ab(a), self.g_ba(b)
        if self.training:
            fake_b, fake_a = self.pool_b.query(fake_b), self.pool_a.query(fake_a)
        loss_a = 0.5 * (_lsgan(self.d_a(a), True) + _lsgan(self.d_a(fake_a), False))
        loss_b = 0.5 * (_lsgan(self.d_b(b), True) + _lsgan(self.d_b(fake_b), False))
        return {"loss": loss_a + loss_b, "loss_d_a": loss_a, "loss_d_b": loss_b}

    def _generator_terms(self, a: Tensor, b: Tensor) -> dict[str, Tensor]:
        c = self.config
        fake_b, fake_a = self.g_ab(a), self.g_ba(b)  # (B, C, H, W) each
        gan = _lsgan(self.d_b(fake_b), True) + _lsgan(self.d_a(fake_a), True)
        cycle = (self.g_ba(fake_b) - a).abs().mean() + (self.g_ab(fake_a) - b).abs().mean()
        out = {"loss_gan": gan, "cycle": cycle, "fake_a": fake_a, "fake_b": fake_b}
        loss = gan + c.cycle_weight * cycle
        if c.identity_weight > 0:
            identity = (self.g_ab(b) - b).abs().mean() + (self.g_ba(a) - a).abs().mean()
            loss = loss + c.identity_weight * c.cycle_weight * identity
            out["identity"] = identity
        out["loss"] = loss
        return out

    def generator_loss(self, x: Tensor, y: Tensor | None = None) -> dict[str, Tensor]:
        """LSGAN terms of G and F + lambda * cycle + 0.5 lambda * identity (L1 in the [-1, 1] range)."""
        _check_pair(self, x, y, self.config.in_channels, self.config.in_channels,
                    "x = domain-A images, y = domain-B images")
        out = self._generator_terms(to_signed(x), to_signed(y))
        del out["fake_a"], out["fake_b"]
        return out

    def forward(self, x: Tensor, y: Tensor | None = None) -> dict[str, Tensor]:
        """Both players' losses on one generator pass, no image pool: ``{"loss_d", "loss_g", "loss", ...}``."""
        _check_pair(self, x, y, self.config.in_channels, self.config.in_channels,
                    "x = domain-A images, y = domain-B images")
        a, b = to_signed(x), to_signed(y)
        g = self._generator_terms(a, b)
        fake_a, fake_b = g["fake_a"].detach(), g["fake_b"].detach()
        loss_d = 0.5 * (_lsgan(self.d_a(a), True) + _lsgan(self.d_a(fake_a), False)
                        + _lsgan(self.d_b(b), True) + _lsgan(self.d_b(fake_b), False))
        out = {"loss_d": loss_d, "loss_g": g["loss"], "loss": loss_d + g["loss"], "cycle": g["cycle"]}
        if "identity" in g:
            out["identity"] = g["identity"]
        return out

    def generator_parameters(self) -> list[nn.Parameter]:
        return [*self.g_ab.parameters(), *self.g_ba.parameters()]

    def discriminator_parameters(self) -> list[nn.Parameter]:
        return [*self.d_a.parameters(), *self.d_b.parameters()]

    def optimizer_settings(self) -> dict[str, dict[str, Any]]:
        """Adam, lr 2e-4, betas (0.5, 0.999) for both (Zhu et al. section 4)."""
        return {"generator": dict(_ADAM), "discriminator": dict(_ADAM)}


@register_model("pix2pix", family="generative", config=Pix2PixConfig)
def pix2pix(cfg: Pix2PixConfig) -> Pix2Pix:
    """Pix2Pix (Isola et al. 2017): U-Net generator, PatchGAN, conditional GAN + 100 * L1, paired images."""
    return Pix2Pix(cfg)


@register_model("cyclegan", family="generative", config=CycleGANConfig)
def cyclegan(cfg: CycleGANConfig) -> CycleGAN:
    """CycleGAN (Zhu et al. 2017): ResNet generators, PatchGANs, LSGAN + cycle + identity losses, image pool."""
    return CycleGAN(cfg)
