"""EfficientNet-B0..B3: MBConv blocks with squeeze-and-excitation, scaled in width, depth and resolution.

    M. Tan, Q. V. Le, "EfficientNet: rethinking model scaling for convolutional neural networks",
    ICML 2019, https://arxiv.org/abs/1905.11946
    M. Tan, B. Chen, R. Pang, V. Vasudevan, M. Sandler, A. Howard, Q. V. Le, "MnasNet:
    platform-aware neural architecture search for mobile", CVPR 2019 (the MBConv block),
    https://arxiv.org/abs/1807.11626
    G. Huang, Y. Sun, Z. Liu, D. Sedra, K. Weinberger, "Deep networks with stochastic depth",
    ECCV 2016, https://arxiv.org/abs/1603.09382

MBConv (MobileNetV2's inverted residual plus SE, with SiLU/swish ``x sigmoid(x)``)::

    h = SiLU(BN(PW_expand(x)))        # (B, t c, H, W)              (skipped when t = 1)
    h = SiLU(BN(DW_kxk,s(h)))         # (B, t c, H/s, W/s)          k = 3 or 5
    h = h * sigmoid(W_2 SiLU(W_1 GAP(h)))   # SE, squeeze width c / 4 (of the block's *input*)
    y = BN(PW_project(h))             # (B, c', H/s, W/s)           linear bottleneck
    y = x + drop_path(y)              # when s = 1 and c = c'

Stochastic depth (``drop_path``) zeroes the residual branch of a whole sample with probability
p during training and scales survivors by 1/(1 - p), so ``E[y] = x + branch``; in eval it is the
identity. Block i of N gets ``p_i = stochastic_depth_prob * i / N`` (0 for the first).

B0 (found by search, Table 1): a 3x3 stride-2 stem of 32 channels, seven stages
(t, k, s, c, n) = (1,3,1,16,1) (6,3,2,24,2) (6,5,2,40,2) (6,3,2,80,3) (6,5,1,112,3) (6,5,2,192,4)
(6,3,1,320,1), a 1x1 head convolution to 1280, global pooling, dropout, Linear.

Compound scaling. With depth ``d = alpha^phi``, width ``w = beta^phi`` and resolution
``r = gamma^phi``, FLOPs grow as ``(alpha beta^2 gamma^2)^phi``; the paper's grid search on B0
gave alpha = 1.2, beta = 1.1, gamma = 1.15 (``alpha beta^2 gamma^2 ~ 2``: about 2^phi FLOPs).
The released B1..B7 round these: (width, depth, resolution, dropout) = B1 (1.0, 1.1, 240, 0.2),
B2 (1.1, 1.2, 260, 0.3), B3 (1.2, 1.4, 300, 0.3). Channels become ``make_divisible(c w, 8)``
and a stage of n blocks gets ``ceil(n d)``.

Module names and parameter counts follow torchvision (B0 5,288,548; B1 7,794,184; B2 9,109,994;
B3 12,233,232 at 1000 classes), so its checkpoints load with ``strict=True``.

Deviations from the paper:
    - BatchNorm ``bn_eps`` [1e-5] and ``bn_momentum`` [0.1] are torchvision's defaults for
      B0..B4; the paper's TensorFlow code used eps 1e-3 and decay 0.99 (``bn_eps=1e-3
      bn_momentum=0.01``).
    - Stochastic depth rises linearly from 0 to ``stochastic_depth_prob * (N - 1) / N``
      (torchvision's schedule; the paper's code names the 0.2 "drop connect rate").
    - Classifier weights start U(+-1/sqrt(num_classes)) and convolutions Kaiming-normal (fan
      out), as in torchvision (the paper's code used a variance-scaling normal and uniform).
    - Resolution is the data's business: ``image_size`` records the paper's size, but any input
      side works (global average pooling).
    - ``small_input`` [False]: stride 1 in the stem and in the first stride-2 stage (8x instead
      of 32x downsampling) for 28x28 / 32x32 images; ``efficientnet_b0_cifar`` sets it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from archlab.models.cnn.mobilenet import (
    ConvNormAct,
    NormLayer,
    PooledConvNet,
    SqueezeExcitation,
    make_divisible,
    scale_depth,
    small_input_strides,
)
from archlab.registry import register_model

__all__ = ["B0_STAGES", "EfficientNet", "EfficientNetConfig", "MBConv", "StochasticDepth", "stochastic_depth"]

# (expand ratio t, kernel k, stride s, in channels, out channels, blocks n) of B0's seven stages.
B0_STAGES: tuple[tuple[int, int, int, int, int, int], ...] = (
    (1, 3, 1, 32, 16, 1),
    (6, 3, 2, 16, 24, 2),
    (6, 5, 2, 24, 40, 2),
    (6, 3, 2, 40, 80, 3),
    (6, 5, 1, 80, 112, 3),
    (6, 5, 2, 112, 192, 4),
    (6, 3, 1, 192, 320, 1),
)


@dataclass
class EfficientNetConfig:
    """Options of :class:`EfficientNet`; the defaults are B0.

    Attributes:
        in_channels: input channels.
        num_classes: number of logits.
        image_size: the variant's resolution (224 for B0); any side works (global pooling).
        width_mult: channel multiplier w (``make_divisible(c w, 8)``).
        depth_mult: depth multiplier d (``ceil(n d)`` blocks per stage).
        dropout: dropout before the Linear classifier.
        stochastic_depth_prob: drop probability scale of the residual branches (0 disables).
        bn_eps: BatchNorm epsilon.
        bn_momentum: BatchNorm running-statistics momentum (PyTorch's convention).
        small_input: stride 1 in the stem and the first stride-2 stage (for 28x28 / 32x32).
    """

    in_channels: int = 3
    num_classes: int = 1000
    image_size: int = 224
    width_mult: float = 1.0
    depth_mult: float = 1.0
    dropout: float = 0.2
    stochastic_depth_prob: float = 0.2
    bn_eps: float = 1e-5
    bn_momentum: float = 0.1
    small_input: bool = False

    TINY: ClassVar[dict[str, Any]] = {"width_mult": 0.25, "depth_mult": 0.25}

    def __post_init__(self) -> None:
        if self.width_mult <= 0 or self.depth_mult <= 0:
            raise ValueError(
                f"width_mult and depth_mult must be > 0, got {self.width_mult}, {self.depth_mult}"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if not 0.0 <= self.stochastic_depth_prob < 1.0:
            raise ValueError(f"stochastic_depth_prob must be in [0, 1), got {self.stochastic_depth_prob}")
        if self.bn_eps <= 0 or not 0.0 <= self.bn_momentum <= 1.0:
            raise ValueError(
                f"need bn_eps > 0 and bn_momentum in [0, 1], got {self.bn_eps}, {self.bn_momentum}"
            )
        if self.in_channels < 1 or self.num_classes < 1:
            raise ValueError(
                f"in_channels and num_classes must be >= 1, got {self.in_channels}, {self.num_classes}"
            )


# ----------------------------------------------------------------------------------------------
# layers


def stochastic_depth(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Zero each sample of ``x`` with probability ``p`` and scale the rest by 1/(1 - p) (training only)."""
    if not training or p == 0.0:
        return x
    keep = 1.0 - p
    mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)  # (B, 1, 1, 1)
    return x * mask.div_(keep)


class StochasticDepth(nn.Module):
    """:func:`stochastic_depth` as a module ("row" mode: one draw per sample); no parameters."""

    def __init__(self, p: float) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"drop probability must be in [0, 1), got {p}")
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return stochastic_depth(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class MBConv(nn.Module):
    """Mobile inverted bottleneck with SE: expand 1x1 -> depthwise k x k -> SE -> project 1x1, + x.

    Children as torchvision: ``block`` = (expand ConvNormAct when t > 1, depthwise ConvNormAct,
    SqueezeExcitation, project ConvNormAct) and ``stochastic_depth``.

    Args:
        in_channels: input channels c.
        out_channels: output channels c'.
        expand_ratio: t; the hidden width is ``make_divisible(c t, 8)``.
        kernel_size: depthwise kernel side.
        stride: depthwise stride.
        drop_prob: stochastic depth probability of the residual branch.
        norm_layer: normalisation constructor.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        expand_ratio: float,
        kernel_size: int,
        stride: int,
        drop_prob: float,
        *,
        norm_layer: NormLayer,
    ) -> None:
        super().__init__()
        self.use_residual = stride == 1 and in_channels == out_channels
        hidden = make_divisible(in_channels * expand_ratio)
        layers: list[nn.Module] = []
        if hidden != in_channels:
            layers.append(ConvNormAct(in_channels, hidden, 1, norm_layer=norm_layer, act_layer=nn.SiLU))
        layers += [
            ConvNormAct(
                hidden, hidden, kernel_size, stride, groups=hidden, norm_layer=norm_layer, act_layer=nn.SiLU
            ),
            SqueezeExcitation(hidden, max(1, in_channels // 4), nn.SiLU, nn.Sigmoid),
            ConvNormAct(hidden, out_channels, 1, norm_layer=norm_layer, act_layer=None),
        ]
        self.block = nn.Sequential(*layers)
        self.stochastic_depth = StochasticDepth(drop_prob)
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.block(x)  # (B, out, H/s, W/s)
        if self.use_residual:
            y = x + self.stochastic_depth(y)
        return y


# ----------------------------------------------------------------------------------------------
# model


class EfficientNet(PooledConvNet):
    """EfficientNet (Tan & Le 2019): stem, seven MBConv stages, 1x1 head conv, pooling, classifier.

    ``features`` = (stem, stage 1, ..., stage 7, head): ``features.1`` ... ``features.7`` are
    Sequentials of :class:`MBConv`.

    Args:
        in_channels: input channels.
        num_classes: number of logits.
        width_mult: channel multiplier.
        depth_mult: depth multiplier.
        dropout: dropout before the Linear classifier.
        stochastic_depth_prob: scale of the linearly increasing drop probabilities.
        bn_eps: BatchNorm epsilon.
        bn_momentum: BatchNorm momentum.
        small_input: 8x instead of 32x downsampling.

    Shapes:
        x: (B, in_channels, H, W); features (B, 4 * c_last, H/32, W/32) (1280 for B0);
        logits (B, num_classes).
    """

    linear_init = "uniform"

    def __init__(
        self,
        in_channels: int = 3,
        num_classes: int = 1000,
        *,
        width_mult: float = 1.0,
        depth_mult: float = 1.0,
        dropout: float = 0.2,
        stochastic_depth_prob: float = 0.2,
        bn_eps: float = 1e-5,
        bn_momentum: float = 0.1,
        small_input: bool = False,
    ) -> None:
        super().__init__()
        self.in_channels, self.num_classes = in_channels, num_classes

        def norm(c: int) -> nn.BatchNorm2d:
            return nn.BatchNorm2d(c, eps=bn_eps, momentum=bn_momentum)

        def ch(c: int) -> int:
            return make_divisible(c * width_mult)

        stem_stride, strides = small_input_strides([st[2] for st in B0_STAGES], small_input)
        depths = [scale_depth(st[5], depth_mult) for st in B0_STAGES]
        total, index = sum(depths), 0
        layers: list[nn.Module] = [
            ConvNormAct(in_channels, ch(B0_STAGES[0][3]), 3, stem_stride, norm_layer=norm, act_layer=nn.SiLU)
        ]
        for (t, k, _, c_in, c_out, _), s, n in zip(B0_STAGES, strides, depths, strict=True):
            stage = []
            c_in, c_out = ch(c_in), ch(c_out)
            for i in range(n):
                p = stochastic_depth_prob * index / total
                stage.append(
                    MBConv(c_in if i == 0 else c_out, c_out, t, k, s if i == 0 else 1, p, norm_layer=norm)
                )
                index += 1
            layers.append(nn.Sequential(*stage))
        c = ch(B0_STAGES[-1][4])
        layers.append(ConvNormAct(c, 4 * c, 1, norm_layer=norm, act_layer=nn.SiLU))
        self.features = nn.Sequential(*layers)
        self.num_features = 4 * c
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(4 * c, num_classes))
        self.init_weights()


# ----------------------------------------------------------------------------------------------
# registered variants


def _efficientnet(cfg: EfficientNetConfig) -> EfficientNet:
    return EfficientNet(
        cfg.in_channels,
        cfg.num_classes,
        width_mult=cfg.width_mult,
        depth_mult=cfg.depth_mult,
        dropout=cfg.dropout,
        stochastic_depth_prob=cfg.stochastic_depth_prob,
        bn_eps=cfg.bn_eps,
        bn_momentum=cfg.bn_momentum,
        small_input=cfg.small_input,
    )


@register_model("efficientnet_b0", family="cnn", config=EfficientNetConfig)
def efficientnet_b0(cfg: EfficientNetConfig) -> EfficientNet:
    """EfficientNet-B0 (Tan & Le 2019): MBConv + SE + SiLU, 224px, 5.3M params (torchvision layout)."""
    return _efficientnet(cfg)


@register_model(
    "efficientnet_b1", family="cnn", config=EfficientNetConfig, width_mult=1.0, depth_mult=1.1, image_size=240
)
def efficientnet_b1(cfg: EfficientNetConfig) -> EfficientNet:
    """EfficientNet-B1: B0 with depth x1.1 at 240px, dropout 0.2 (torchvision layout)."""
    return _efficientnet(cfg)


@register_model(
    "efficientnet_b2", family="cnn", config=EfficientNetConfig, width_mult=1.1, depth_mult=1.2, image_size=260,
    dropout=0.3,
)  # fmt: skip
def efficientnet_b2(cfg: EfficientNetConfig) -> EfficientNet:
    """EfficientNet-B2: B0 with width x1.1, depth x1.2 at 260px, dropout 0.3 (torchvision layout)."""
    return _efficientnet(cfg)


@register_model(
    "efficientnet_b3", family="cnn", config=EfficientNetConfig, width_mult=1.2, depth_mult=1.4, image_size=300,
    dropout=0.3,
)  # fmt: skip
def efficientnet_b3(cfg: EfficientNetConfig) -> EfficientNet:
    """EfficientNet-B3: B0 with width x1.2, depth x1.4 at 300px, dropout 0.3 (torchvision layout)."""
    return _efficientnet(cfg)


@register_model(
    "efficientnet_b0_cifar", family="cnn", config=EfficientNetConfig, small_input=True, num_classes=10,
    image_size=32,
)  # fmt: skip
def efficientnet_b0_cifar(cfg: EfficientNetConfig) -> EfficientNet:
    """EfficientNet-B0 for 28x28 / 32x32 images: stride-1 stem and first stride-2 stage (8x downsampling)."""
    return _efficientnet(cfg)
