"""Shared generator and discriminator networks: MLP and DCGAN, sized from the data.

    I. Goodfellow et al., "Generative Adversarial Nets", NeurIPS 2014, https://arxiv.org/abs/1406.2661
    A. Radford, L. Metz, S. Chintala, "Unsupervised Representation Learning with Deep Convolutional
    Generative Adversarial Networks", ICLR 2016, https://arxiv.org/abs/1511.06434
    T. Salimans et al., "Improved Techniques for Training GANs", NeurIPS 2016 (minibatch
    discrimination, section 3.2), https://arxiv.org/abs/1606.03498

Generators map a latent vector z (B, latent_dim) (plus an optional condition vector, concatenated)
to data; discriminators map data to a feature vector ``features(x)`` (B, F), and a method puts its
own head on it (a linear layer to one logit or critic value, a projection term, minibatch
discrimination features...). So one discriminator body serves GAN, WGAN, WGAN-GP and cGAN.

DCGAN (Radford et al. 2016, section 3 "architecture guidelines")::

    G: z (B, L, 1, 1) -ConvT(s0)-> (B, C0, s0, s0) -[ConvT 4x4 stride 2, BN, ReLU] x (k-1)->
       -ConvT 4x4 stride 2-> tanh -> (B, C, S, S)           channels halve at each doubling
    D: x (B, C, S, S) -Conv 4x4 stride 2, LeakyReLU 0.2-> -[Conv 4x4 stride 2, norm, LeakyReLU 0.2] x (k-1)->
       (B, Ck, s0, s0) -> flatten: features (B, Ck * s0 * s0)

The image side S is halved k times while it is even and above 4: 8 -> 4 (k=1), 16 -> 4 (k=2),
28 -> 7 (k=2), 32 -> 4 (k=3), 64 -> 4 (k=4). The widest layer has ``base_channels * 2**(k-1)``
channels (DCGAN's 64x64 model: base 128, 1024 at 4x4).

Deviations from the paper:
    - DCGAN's discriminator ends with a 4x4 convolution to one logit; here the last feature map
      is flattened and the method's head is a linear layer on it (the same function), so that
      projection and minibatch-discrimination heads can share the body.
    - Discriminator normalisation is a choice (``norm``): ``"batch"`` (DCGAN), ``"layer"``
      (GroupNorm with one group: layer norm over (C, H, W), as WGAN-GP's critic), or ``"none"``.
    - Goodfellow's MLP discriminator used maxout units and dropout; the MLP discriminator here uses
      LeakyReLU 0.2 (DCGAN's activation) and optional normalisation. The MLP generator uses
      ReLU hidden layers (the paper mixed ReLU and sigmoid) and a tanh output for images
      (the methods map data to [-1, 1]) or a linear one for tabular data.
    - DCGAN initialises weights from N(0, 0.02) and norm scales from N(1, 0.02); so does
      :func:`dcgan_init`, which the DCGAN networks call.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

__all__ = [
    "MLPGenerator",
    "MLPDiscriminator",
    "DCGANGenerator",
    "DCGANDiscriminator",
    "MinibatchDiscrimination",
    "dcgan_init",
    "dcgan_levels",
    "make_norm",
]


def make_norm(kind: str, channels: int, dims: int = 2) -> nn.Module:
    """A normalisation layer: ``"batch"``, ``"layer"`` (over all non-batch dims) or ``"none"``.

    Args:
        kind: which.
        channels: channels (``dims=2``) or features (``dims=1``).
        dims: 2 for feature maps (B, C, H, W), 1 for vectors (B, F).
    """
    if kind == "batch":
        return nn.BatchNorm2d(channels) if dims == 2 else nn.BatchNorm1d(channels)
    if kind == "layer":
        return nn.GroupNorm(1, channels) if dims == 2 else nn.LayerNorm(channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"norm must be 'batch', 'layer' or 'none', got {kind!r}")


def dcgan_levels(image_size: int) -> tuple[int, int]:
    """``(k, s0)``: how many stride-2 layers take ``s0`` up to ``image_size`` (halving while even and > 4)."""
    if image_size < 1:
        raise ValueError(f"image_size must be >= 1, got {image_size}")
    k, s = 0, image_size
    while s % 2 == 0 and s > 4:
        s //= 2
        k += 1
    return k, s


@torch.no_grad()
def dcgan_init(module: nn.Module) -> None:
    """DCGAN's initialisation: conv/linear weights N(0, 0.02), biases 0, norm scales N(1, 0.02)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.GroupNorm, nn.LayerNorm)) and m.weight is not None:
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


class MLPGenerator(nn.Module):
    """z (B, latent_dim [+ cond_dim]) -> [Linear, ReLU] x num_layers -> Linear -> out (B, out_features).

    Args:
        latent_dim: size of z (plus ``cond_dim``: a condition vector concatenated to z).
        out_features: size of one flattened sample.
        hidden_dim: width of the hidden layers.
        num_layers: hidden layers (>= 1).
        out_activation: ``"tanh"`` (images in [-1, 1]) or ``"none"`` (raw features).
        norm: ``"batch"`` / ``"layer"`` / ``"none"`` after each hidden linear layer.
        cond_dim: size of the condition vector (0: unconditional).
    """

    def __init__(self, latent_dim: int, out_features: int, hidden_dim: int = 256, num_layers: int = 2, *,
                 out_activation: str = "tanh", norm: str = "none", cond_dim: int = 0) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        if out_activation not in ("tanh", "none"):
            raise ValueError(f"out_activation must be 'tanh' or 'none', got {out_activation!r}")
        layers: list[nn.Module] = []
        width = latent_dim + cond_dim
        for _ in range(num_layers):
            layers += [nn.Linear(width, hidden_dim), make_norm(norm, hidden_dim, dims=1), nn.ReLU()]
            width = hidden_dim
        layers.append(nn.Linear(width, out_features))
        if out_activation == "tanh":
            layers.append(nn.Tanh())
        self.net = nn.Sequential(*layers)
        self.latent_dim, self.cond_dim, self.out_features = latent_dim, cond_dim, out_features

    def forward(self, z: Tensor, cond: Tensor | None = None) -> Tensor:
        """z (B, latent_dim), cond (B, cond_dim) or None -> (B, out_features)."""
        if cond is not None:
            z = torch.cat([z, cond], dim=1)  # (B, latent_dim + cond_dim)
        return self.net(z)


class MLPDiscriminator(nn.Module):
    """x (B, D [+ cond_dim]) -> [Linear, norm, LeakyReLU 0.2] x num_layers -> features (B, hidden_dim).

    Args:
        in_features: size of one flattened sample.
        hidden_dim: width of the hidden layers (= ``out_features``).
        num_layers: hidden layers (>= 1).
        norm: ``"batch"`` / ``"layer"`` / ``"none"``.
        cond_dim: size of a condition vector concatenated to the input (0: none).
    """

    def __init__(self, in_features: int, hidden_dim: int = 256, num_layers: int = 2, *, norm: str = "none",
                 cond_dim: int = 0) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        layers: list[nn.Module] = []
        width = in_features + cond_dim
        for _ in range(num_layers):
            layers += [nn.Linear(width, hidden_dim), make_norm(norm, hidden_dim, dims=1), nn.LeakyReLU(0.2)]
            width = hidden_dim
        self.net = nn.Sequential(*layers)
        self.in_features, self.cond_dim, self.out_features = in_features, cond_dim, hidden_dim

    def features(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        """x (B, ...) flattened to (B, D), cond (B, cond_dim) or None -> (B, hidden_dim)."""
        x = x.flatten(1)  # (B, D)
        if cond is not None:
            x = torch.cat([x, cond], dim=1)  # (B, D + cond_dim)
        return self.net(x)

    forward = features


class DCGANGenerator(nn.Module):
    """DCGAN's generator: fractionally strided convolutions, batch norm, ReLU, tanh output.

    Args:
        latent_dim: size of z (plus ``cond_dim``, concatenated).
        out_channels: image channels C.
        image_size: image side S (8, 16, 28, 32, 64...; see :func:`dcgan_levels`).
        base_channels: width of the last hidden layer (the first has ``base * 2**(k-1)``).
        cond_dim: size of a condition vector concatenated to z (0: none).
    """

    def __init__(self, latent_dim: int, out_channels: int, image_size: int, base_channels: int = 64, *,
                 cond_dim: int = 0) -> None:
        super().__init__()
        k, s0 = dcgan_levels(image_size)
        self.latent_dim, self.cond_dim, self.image_size, self.out_channels = latent_dim, cond_dim, image_size, out_channels
        c = base_channels * 2 ** max(k - 1, 0) if k else out_channels
        # "Project and reshape" (DCGAN figure 1): a ConvTranspose from 1x1 to s0 x s0 is a linear map.
        layers: list[nn.Module] = [nn.ConvTranspose2d(latent_dim + cond_dim, c, s0, 1, 0, bias=False)]
        if k == 0:
            layers.append(nn.Tanh())
        else:
            layers += [nn.BatchNorm2d(c), nn.ReLU()]
        for i in range(k):
            last = i == k - 1
            out = out_channels if last else c // 2
            # The output layer has a bias and no batch norm (DCGAN: "not applying batchnorm to the
            # generator output layer").
            layers.append(nn.ConvTranspose2d(c, out, 4, 2, 1, bias=last))
            layers += [nn.Tanh()] if last else [nn.BatchNorm2d(out), nn.ReLU()]
            c = out
        self.net = nn.Sequential(*layers)
        dcgan_init(self)

    def forward(self, z: Tensor, cond: Tensor | None = None) -> Tensor:
        """z (B, latent_dim), cond (B, cond_dim) or None -> images (B, C, S, S) in [-1, 1]."""
        if cond is not None:
            z = torch.cat([z, cond], dim=1)  # (B, L + cond_dim)
        return self.net(z[:, :, None, None])  # (B, L, 1, 1) -> (B, C, S, S)


class DCGANDiscriminator(nn.Module):
    """DCGAN's discriminator body: strided convolutions, LeakyReLU 0.2, no pooling.

    Args:
        in_channels: image channels C.
        image_size: image side S.
        base_channels: width of the first layer (doubling at each halving).
        norm: ``"batch"`` (DCGAN), ``"layer"`` (WGAN-GP) or ``"none"``; never on the input layer.
        cond_dim: a condition vector broadcast to (B, cond_dim, S, S) and concatenated to the
            image channels (a conditional GAN's "concat" discriminator; 0: none).
    """

    def __init__(self, in_channels: int, image_size: int, base_channels: int = 64, *, norm: str = "batch",
                 cond_dim: int = 0) -> None:
        super().__init__()
        k, s0 = dcgan_levels(image_size)
        self.in_channels, self.image_size, self.cond_dim = in_channels, image_size, cond_dim
        c_in = in_channels + cond_dim
        if k == 0:  # a side that cannot be halved: one 3x3 convolution
            layers: list[nn.Module] = [nn.Conv2d(c_in, base_channels, 3, 1, 1), nn.LeakyReLU(0.2)]
            c = base_channels
        else:
            # DCGAN: "not applying batchnorm to ... the discriminator input layer".
            layers = [nn.Conv2d(c_in, base_channels, 4, 2, 1), nn.LeakyReLU(0.2)]
            c = base_channels
            for _ in range(k - 1):
                layers += [nn.Conv2d(c, 2 * c, 4, 2, 1, bias=norm == "none"), make_norm(norm, 2 * c), nn.LeakyReLU(0.2)]
                c *= 2
        self.net = nn.Sequential(*layers)
        self.out_features = c * s0 * s0
        dcgan_init(self)

    def features(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        """x (B, C, S, S), cond (B, cond_dim) or None -> features (B, out_features)."""
        if cond is not None:
            b, _, h, w = x.shape
            x = torch.cat([x, cond[:, :, None, None].expand(b, cond.shape[1], h, w)], dim=1)  # (B, C + E, S, S)
        return self.net(x).flatten(1)  # (B, Ck * s0 * s0)

    forward = features


class MinibatchDiscrimination(nn.Module):
    """Salimans et al. (2016) minibatch discrimination: features of how close a sample is to the others.

    For features f(x_i) (A,), a tensor T (A, B, C) gives M_i = f(x_i) T (B, C) and::

        c_b(x_i, x_j) = exp(-||M_{i,b} - M_{j,b}||_1)        o(x_i)_b = sum_j c_b(x_i, x_j)

    over the minibatch (j = i included, as the paper's sum); the output is [f(x_i), o(x_i)]
    (A + B,), so a generator that collapses to one point makes o large and easy to spot.

    Args:
        in_features: A.
        num_kernels: B.
        kernel_dim: C.
    """

    def __init__(self, in_features: int, num_kernels: int = 50, kernel_dim: int = 5) -> None:
        super().__init__()
        self.T = nn.Parameter(torch.randn(in_features, num_kernels * kernel_dim) / math.sqrt(in_features))
        self.num_kernels, self.kernel_dim = num_kernels, kernel_dim
        self.out_features = in_features + num_kernels

    def forward(self, f: Tensor) -> Tensor:
        """f (N, A) -> (N, A + B)."""
        m = (f @ self.T).view(-1, self.num_kernels, self.kernel_dim).transpose(0, 1)  # (B, N, C)
        l1 = torch.cdist(m, m, p=1.0)  # (B, N, N): ||M_{i,b} - M_{j,b}||_1, without an (N, N, B, C) tensor
        o = torch.exp(-l1).sum(2).t()  # (N, B)
        return torch.cat([f, o], dim=1)
