"""MobileNets: depthwise separable convolutions (V1), inverted residuals with linear bottlenecks (V2),
squeeze-and-excitation and hard-swish (V3).

    A. G. Howard, M. Zhu, B. Chen, D. Kalenichenko, W. Wang, T. Weyand, M. Andreetto, H. Adam,
    "MobileNets: efficient convolutional neural networks for mobile vision applications",
    arXiv 2017, https://arxiv.org/abs/1704.04861
    M. Sandler, A. Howard, M. Zhu, A. Zhmoginov, L.-C. Chen, "MobileNetV2: inverted residuals and
    linear bottlenecks", CVPR 2018, https://arxiv.org/abs/1801.04381
    A. Howard, M. Sandler, G. Chu, L.-C. Chen, B. Chen, M. Tan, W. Wang, Y. Zhu, R. Pang,
    V. Vasudevan, Q. V. Le, H. Adam, "Searching for MobileNetV3", ICCV 2019,
    https://arxiv.org/abs/1905.02244
    J. Hu, L. Shen, G. Sun, "Squeeze-and-excitation networks", CVPR 2018,
    https://arxiv.org/abs/1709.01507

Depthwise separable convolution (V1). A k x k convolution from M to N channels on a D x D map
costs ``k^2 M N D^2`` multiply-adds. V1 factorises it into a depthwise k x k convolution (one
filter per input channel, ``groups = M``) and a pointwise 1x1 convolution that mixes channels::

    x = ReLU(BN(DW_kxk(x)))       # (B, M, D, D)     k^2 M D^2 mult-adds
    x = ReLU(BN(PW_1x1(x)))       # (B, N, D, D)     M N D^2 mult-adds

    cost ratio = (k^2 M D^2 + M N D^2) / (k^2 M N D^2) = 1/N + 1/k^2   (~1/8 to 1/9 for k = 3)

The width multiplier alpha scales every channel count (cost ~ alpha^2); the resolution
multiplier rho scales the input side (cost ~ rho^2).

Inverted residual with a linear bottleneck (V2). Thin (bottleneck) tensors are expanded t times,
filtered depthwise, and projected back *without* a nonlinearity (ReLU in a low-dimensional space
destroys information); the residual joins the thin tensors when stride is 1 and shapes match::

    h = ReLU6(BN(PW_expand(x)))   # (B, t d, H, W)            (skipped when t = 1)
    h = ReLU6(BN(DW_3x3,s(h)))    # (B, t d, H/s, W/s)
    y = BN(PW_project(h))         # (B, d', H/s, W/s)         linear: no activation
    y = x + y                     # when s = 1 and d = d'

    cost = H W t d (d + k^2 + d')   mult-adds at stride 1 (the paper's h w d' t (d' + k^2 + d''))

The shortcut joins the thin tensors, so the tensors that flow between blocks (and must be kept
in memory) are the small ones; the wide ones live only inside a block.

Squeeze-and-excitation (V3, EfficientNet) re-weights channels by a gate computed from their
global average: ``s = gate(W_2 act(W_1 GAP(x) + b_1) + b_2)``, ``y = x * s`` (B, C, 1, 1) broadcast.
Hard-swish replaces swish ``x sigmoid(x)`` by a piecewise-linear version that is cheap on
phones: ``h_swish(x) = x ReLU6(x + 3) / 6``, ``h_sigmoid(x) = ReLU6(x + 3) / 6``. V3's blocks
(found by architecture search) mix 3x3 and 5x5 depthwise kernels, ReLU (early) and h-swish
(late), and SE with a hard-sigmoid gate; its head moves the last 1x1 convolution after the
pooling (a Linear on the pooled 1x1 map), which saves most of its cost.

Module names and parameter counts follow torchvision (``mobilenet_v2``: 3,504,872,
``mobilenet_v3_large``: 5,483,032, ``mobilenet_v3_small``: 2,542,856 at 1000 classes), so its
checkpoints load with ``strict=True``. torchvision has no V1; ``mobilenet_v1`` (4,231,976) names
its layers ``features.N.depthwise`` / ``features.N.pointwise`` and ``classifier``.

Deviations from the paper:
    - Channels are ``make_divisible(c * width_mult, 8)`` (torchvision's rounding, which V2/V3's
      reference code also uses); for V1 it equals the paper's ``alpha c`` at alpha in
      {1, 0.75, 0.5, 0.25}. V3's SE squeeze width is ``make_divisible(expanded / 4, 8)``.
    - V1: ``dropout`` [0.0] before the classifier (the paper names none); weights start
      Kaiming-normal (fan out), as torchvision starts its CNNs.
    - V2/V3: dropout 0.2 before the last linear layer (torchvision's default), BN eps 1e-3 and
      momentum 0.01 for V3 (TensorFlow's 0.99 decay), as in the reference implementations.
    - ``depth_mult`` [1.0] (V1, V2, not in those papers): ``ceil(n * depth_mult)`` blocks per
      stage, EfficientNet's depth scaling, used by the tiny test models.
    - ``small_input`` [False]: stride 1 in the stem and in the first stride-2 block, so the
      network downsamples 8x instead of 32x and 28x28 / 32x32 images end on a 4x4 map (as the
      common CIFAR adaptations do); ``mobilenet_v2_cifar`` sets it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, ClassVar, Literal

import torch
from torch import nn

from archlab.models.common import check_image_input
from archlab.registry import register_model

__all__ = [
    "ConvNormAct",
    "DepthwiseSeparableConv",
    "InvertedResidual",
    "InvertedResidualV3",
    "MobileNetV1",
    "MobileNetV1Config",
    "MobileNetV2",
    "MobileNetV2Config",
    "MobileNetV3",
    "MobileNetV3Config",
    "PooledConvNet",
    "SqueezeExcitation",
    "make_divisible",
    "scale_depth",
    "small_input_strides",
]

NormLayer = Callable[[int], nn.Module]
ActLayer = Callable[..., nn.Module]


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """``value`` rounded to the nearest multiple of ``divisor`` (at least ``min_value``), never more
    than 10% below it: the channel rounding of the MobileNet / EfficientNet reference code."""
    min_value = divisor if min_value is None else min_value
    out = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if out < 0.9 * value:
        out += divisor
    return out


def scale_depth(num_layers: int, depth_mult: float) -> int:
    """Blocks in a stage after depth scaling: ``ceil(num_layers * depth_mult)`` (EfficientNet)."""
    return int(math.ceil(num_layers * depth_mult))


def small_input_strides(strides: Sequence[int], small_input: bool) -> tuple[int, list[int]]:
    """The stem stride and the block strides, with ``small_input`` setting the stem and the first
    stride-2 block to stride 1 (8x total downsampling instead of 32x)."""
    strides = list(strides)
    if not small_input:
        return 2, strides
    first = next((i for i, s in enumerate(strides) if s > 1), None)
    if first is not None:
        strides[first] = 1
    return 1, strides


# ----------------------------------------------------------------------------------------------
# layers


class ConvNormAct(nn.Sequential):
    """``conv k x k -> norm -> act`` with "same" padding; children ``0``, ``1``, ``2`` as in
    torchvision's ``Conv2dNormActivation`` (no ``2`` when ``act_layer`` is None).

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: odd kernel side; padding ``(k - 1) // 2`` keeps the size at stride 1.
        stride: convolution stride.
        groups: ``in_channels`` for a depthwise convolution.
        norm_layer: normalisation constructor (the conv has a bias only when this is None).
        act_layer: activation class, or None for a linear (projection) layer.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        *,
        groups: int = 1,
        norm_layer: NormLayer | None = nn.BatchNorm2d,
        act_layer: ActLayer | None = nn.ReLU,
    ) -> None:
        layers: list[nn.Module] = [
            nn.Conv2d(
                in_channels, out_channels, kernel_size, stride, (kernel_size - 1) // 2,
                groups=groups, bias=norm_layer is None,
            )
        ]  # fmt: skip
        if norm_layer is not None:
            layers.append(norm_layer(out_channels))
        if act_layer is not None:
            layers.append(act_layer())
        super().__init__(*layers)
        self.out_channels = out_channels


class SqueezeExcitation(nn.Module):
    """Channel gate ``x * gate(fc2(act(fc1(avgpool(x)))))``, fc1/fc2 1x1 convolutions (Hu et al.).

    Args:
        channels: channels of ``x``.
        squeeze_channels: width of the bottleneck between fc1 and fc2.
        act_layer: activation after fc1 (ReLU in V3, SiLU in EfficientNet).
        gate_layer: the gate (Hardsigmoid in V3, Sigmoid in SE-Net and EfficientNet).
    """

    def __init__(
        self,
        channels: int,
        squeeze_channels: int,
        act_layer: ActLayer = nn.ReLU,
        gate_layer: ActLayer = nn.Sigmoid,
    ) -> None:
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, squeeze_channels, 1)
        self.fc2 = nn.Conv2d(squeeze_channels, channels, 1)
        self.activation = act_layer()
        self.scale_activation = gate_layer()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.avgpool(x)  # (B, C, 1, 1)
        s = self.scale_activation(self.fc2(self.activation(self.fc1(s))))  # (B, C, 1, 1) in [0, 1]
        return x * s  # (B, C, H, W)


class DepthwiseSeparableConv(nn.Module):
    """MobileNetV1's block: depthwise 3x3 (stride s) -> BN -> ReLU, pointwise 1x1 -> BN -> ReLU."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        *,
        norm_layer: NormLayer = nn.BatchNorm2d,
        act_layer: ActLayer = nn.ReLU,
    ) -> None:
        super().__init__()
        self.depthwise = ConvNormAct(
            in_channels,
            in_channels,
            3,
            stride,
            groups=in_channels,
            norm_layer=norm_layer,
            act_layer=act_layer,
        )
        self.pointwise = ConvNormAct(in_channels, out_channels, 1, norm_layer=norm_layer, act_layer=act_layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))  # (B, in, H/s, W/s) -> (B, out, H/s, W/s)


class InvertedResidual(nn.Module):
    """MobileNetV2's block: expand 1x1 (ReLU6) -> depthwise 3x3 (ReLU6) -> linear project 1x1, + x.

    Children as torchvision: ``conv`` = (expand ConvNormAct when t > 1, depthwise ConvNormAct,
    Conv2d, BatchNorm2d).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int,
        expand_ratio: float,
        *,
        norm_layer: NormLayer = nn.BatchNorm2d,
        act_layer: ActLayer = nn.ReLU6,
    ) -> None:
        super().__init__()
        hidden = int(round(in_channels * expand_ratio))
        self.use_residual = stride == 1 and in_channels == out_channels
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(ConvNormAct(in_channels, hidden, 1, norm_layer=norm_layer, act_layer=act_layer))
        layers += [
            ConvNormAct(hidden, hidden, 3, stride, groups=hidden, norm_layer=norm_layer, act_layer=act_layer),
            nn.Conv2d(hidden, out_channels, 1, bias=False),  # linear bottleneck: no activation
            norm_layer(out_channels),
        ]
        self.conv = nn.Sequential(*layers)
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)  # (B, out, H/s, W/s)
        return x + y if self.use_residual else y


class InvertedResidualV3(nn.Module):
    """MobileNetV3's block: expand 1x1 -> depthwise k x k -> SE (optional) -> linear project, + x.

    Children as torchvision: ``block`` = (expand when expanded != in, depthwise, SE, project).

    Args:
        in_channels: input channels.
        kernel_size: depthwise kernel side (3 or 5).
        expanded: channels after the expansion.
        out_channels: output channels.
        use_se: add squeeze-and-excitation (squeeze width ``make_divisible(expanded / 4, 8)``).
        act_layer: ReLU or Hardswish.
        stride: depthwise stride.
        norm_layer: normalisation constructor.
    """

    def __init__(
        self,
        in_channels: int,
        kernel_size: int,
        expanded: int,
        out_channels: int,
        use_se: bool,
        act_layer: ActLayer,
        stride: int,
        *,
        norm_layer: NormLayer,
    ) -> None:
        super().__init__()
        self.use_residual = stride == 1 and in_channels == out_channels
        layers: list[nn.Module] = []
        if expanded != in_channels:
            layers.append(ConvNormAct(in_channels, expanded, 1, norm_layer=norm_layer, act_layer=act_layer))
        layers.append(
            ConvNormAct(
                expanded,
                expanded,
                kernel_size,
                stride,
                groups=expanded,
                norm_layer=norm_layer,
                act_layer=act_layer,
            )
        )
        if use_se:
            layers.append(
                SqueezeExcitation(expanded, make_divisible(expanded // 4, 8), nn.ReLU, nn.Hardsigmoid)
            )
        layers.append(ConvNormAct(expanded, out_channels, 1, norm_layer=norm_layer, act_layer=None))
        self.block = nn.Sequential(*layers)
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.block(x)  # (B, out, H/s, W/s)
        return x + y if self.use_residual else y


# ----------------------------------------------------------------------------------------------
# models


class PooledConvNet(nn.Module):
    """The common tail of the MobileNets and EfficientNets: ``features`` -> global average pool ->
    ``classifier`` (a Sequential ending in the Linear layer), and the model interface around it.

    Subclasses set ``features``, ``classifier``, ``in_channels`` and call :meth:`init_weights`.
    """

    #: ``"normal"``: Linear weights N(0, 0.01) (MobileNets); ``"uniform"``: U(+-1/sqrt(out)) (EfficientNet).
    linear_init: ClassVar[str] = "normal"
    cam_layer = "features"

    features: nn.Sequential
    classifier: nn.Sequential
    in_channels: int

    def init_linear(self, m: nn.Linear) -> None:
        """Initialise a classifier Linear as torchvision does for this family."""
        if self.linear_init == "uniform":
            bound = 1.0 / math.sqrt(m.out_features)
            nn.init.uniform_(m.weight, -bound, bound)
        else:
            nn.init.normal_(m.weight, 0.0, 0.01)
        nn.init.zeros_(m.bias)

    def init_weights(self) -> None:
        """Kaiming-normal (fan out) convolutions, BN to identity, classifier as :meth:`init_linear`."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                self.init_linear(m)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in_channels, H, W) images -> the last feature map (B, C, H / stride, W / stride)."""
        check_image_input(self, x, self.in_channels, min_size=1)
        return self.features(x)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """(B, C, h, w) feature map -> logits (B, num_classes)."""
        x = self.avgpool(features).flatten(1)  # (B, C)
        return self.classifier(x)  # (B, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def get_classifier(self) -> nn.Linear:
        """The final Linear layer (``classifier[-1]``)."""
        return self.classifier[-1]

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the final Linear with a freshly initialised one of ``num_classes`` outputs."""
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        old = self.classifier[-1]
        new = nn.Linear(old.in_features, num_classes).to(old.weight.device, old.weight.dtype)
        self.init_linear(new)
        self.classifier[-1] = new
        self.num_classes = num_classes


def _check_common(cfg: Any) -> None:
    if cfg.width_mult <= 0:
        raise ValueError(f"width_mult must be > 0, got {cfg.width_mult}")
    if getattr(cfg, "depth_mult", 1.0) <= 0:
        raise ValueError(f"depth_mult must be > 0, got {cfg.depth_mult}")
    if not 0.0 <= cfg.dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {cfg.dropout}")
    if cfg.in_channels < 1 or cfg.num_classes < 1:
        raise ValueError(
            f"in_channels and num_classes must be >= 1, got {cfg.in_channels}, {cfg.num_classes}"
        )


# ---- V1

# (out_channels, stride) of the 13 depthwise separable blocks (Table 1 of the V1 paper).
V1_BLOCKS: tuple[tuple[int, int], ...] = (
    (64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
    (512, 1), (512, 1), (512, 1), (512, 1), (512, 1),
    (1024, 2), (1024, 1),
)  # fmt: skip


@dataclass
class MobileNetV1Config:
    """Options of :class:`MobileNetV1`.

    Attributes:
        in_channels: input channels.
        num_classes: number of logits.
        image_size: the data's image side (any side works: global average pooling).
        width_mult: the paper's width multiplier alpha (1.0, 0.75, 0.5, 0.25).
        depth_mult: scales the run of five 512-channel blocks (``ceil(5 * depth_mult)``).
        dropout: dropout before the classifier (0.0: the paper's network).
        small_input: stride 1 in the stem and the first stride-2 block (for 28x28 / 32x32).
    """

    in_channels: int = 3
    num_classes: int = 1000
    image_size: int = 224
    width_mult: float = 1.0
    depth_mult: float = 1.0
    dropout: float = 0.0
    small_input: bool = False

    TINY: ClassVar[dict[str, Any]] = {"width_mult": 0.25, "depth_mult": 0.2}

    def __post_init__(self) -> None:
        _check_common(self)


class MobileNetV1(PooledConvNet):
    """MobileNetV1 (Howard et al. 2017): a 3x3 stride-2 stem and 13 depthwise separable blocks.

    Args:
        in_channels: input channels.
        num_classes: number of logits.
        width_mult: width multiplier alpha.
        depth_mult: scales the five repeated 512-channel blocks.
        dropout: dropout before the Linear classifier.
        small_input: 8x instead of 32x downsampling.

    Shapes:
        x: (B, in_channels, H, W); features (B, 1024 alpha, H/32, W/32); logits (B, num_classes).
    """

    def __init__(
        self,
        in_channels: int = 3,
        num_classes: int = 1000,
        *,
        width_mult: float = 1.0,
        depth_mult: float = 1.0,
        dropout: float = 0.0,
        small_input: bool = False,
    ) -> None:
        super().__init__()
        self.in_channels, self.num_classes = in_channels, num_classes
        repeated = [(512, 1)] * scale_depth(5, depth_mult)  # the paper's "5x" row of Table 1
        blocks = [*V1_BLOCKS[:6], *repeated, *V1_BLOCKS[11:]]
        stem_stride, strides = small_input_strides([s for _, s in blocks], small_input)
        c = make_divisible(32 * width_mult)
        layers: list[nn.Module] = [ConvNormAct(in_channels, c, 3, stem_stride)]
        for (out, _), stride in zip(blocks, strides, strict=True):
            out = make_divisible(out * width_mult)
            layers.append(DepthwiseSeparableConv(c, out, stride))
            c = out
        self.features = nn.Sequential(*layers)
        self.num_features = c
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(c, num_classes))
        self.init_weights()


# ---- V2

# (expansion t, channels c, repeats n, stride s) of each stage (Table 2 of the V2 paper).
V2_STAGES: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1),
)  # fmt: skip


@dataclass
class MobileNetV2Config:
    """Options of :class:`MobileNetV2`.

    Attributes:
        in_channels: input channels.
        num_classes: number of logits.
        image_size: the data's image side (any side works: global average pooling).
        width_mult: width multiplier (the last 1280-channel layer is only ever widened).
        depth_mult: ``ceil(n * depth_mult)`` blocks per stage (not in the paper).
        dropout: dropout before the classifier.
        small_input: stride 1 in the stem and the first stride-2 stage (for 28x28 / 32x32).
    """

    in_channels: int = 3
    num_classes: int = 1000
    image_size: int = 224
    width_mult: float = 1.0
    depth_mult: float = 1.0
    dropout: float = 0.2
    small_input: bool = False

    TINY: ClassVar[dict[str, Any]] = {"width_mult": 0.25, "depth_mult": 0.25}

    def __post_init__(self) -> None:
        _check_common(self)


class MobileNetV2(PooledConvNet):
    """MobileNetV2 (Sandler et al. 2018): stem, 17 inverted residual blocks, 1x1 conv to 1280, classifier.

    Args:
        in_channels: input channels.
        num_classes: number of logits.
        width_mult: width multiplier.
        depth_mult: depth multiplier per stage.
        dropout: dropout before the Linear classifier.
        small_input: 8x instead of 32x downsampling.

    Shapes:
        x: (B, in_channels, H, W); features (B, 1280, H/32, W/32); logits (B, num_classes).
    """

    def __init__(
        self,
        in_channels: int = 3,
        num_classes: int = 1000,
        *,
        width_mult: float = 1.0,
        depth_mult: float = 1.0,
        dropout: float = 0.2,
        small_input: bool = False,
    ) -> None:
        super().__init__()
        self.in_channels, self.num_classes = in_channels, num_classes
        stem_stride, stage_strides = small_input_strides([s for *_, s in V2_STAGES], small_input)
        c = make_divisible(32 * width_mult)
        layers: list[nn.Module] = [ConvNormAct(in_channels, c, 3, stem_stride, act_layer=nn.ReLU6)]
        for (t, out, n, _), s in zip(V2_STAGES, stage_strides, strict=True):
            out = make_divisible(out * width_mult)
            for i in range(scale_depth(n, depth_mult)):
                layers.append(InvertedResidual(c, out, s if i == 0 else 1, t))
                c = out
        last = make_divisible(1280 * max(1.0, width_mult))
        layers.append(ConvNormAct(c, last, 1, act_layer=nn.ReLU6))
        self.features = nn.Sequential(*layers)
        self.num_features = last
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(last, num_classes))
        self.init_weights()


# ---- V3

# (in, kernel, expanded, out, SE, activation, stride) of each bottleneck (Tables 1 and 2 of V3).
V3_LARGE: tuple[tuple[int, int, int, int, bool, str, int], ...] = (
    (16, 3, 16, 16, False, "RE", 1),
    (16, 3, 64, 24, False, "RE", 2),
    (24, 3, 72, 24, False, "RE", 1),
    (24, 5, 72, 40, True, "RE", 2),
    (40, 5, 120, 40, True, "RE", 1),
    (40, 5, 120, 40, True, "RE", 1),
    (40, 3, 240, 80, False, "HS", 2),
    (80, 3, 200, 80, False, "HS", 1),
    (80, 3, 184, 80, False, "HS", 1),
    (80, 3, 184, 80, False, "HS", 1),
    (80, 3, 480, 112, True, "HS", 1),
    (112, 3, 672, 112, True, "HS", 1),
    (112, 5, 672, 160, True, "HS", 2),
    (160, 5, 960, 160, True, "HS", 1),
    (160, 5, 960, 160, True, "HS", 1),
)
V3_SMALL: tuple[tuple[int, int, int, int, bool, str, int], ...] = (
    (16, 3, 16, 16, True, "RE", 2),
    (16, 3, 72, 24, False, "RE", 2),
    (24, 3, 88, 24, False, "RE", 1),
    (24, 5, 96, 40, True, "HS", 2),
    (40, 5, 240, 40, True, "HS", 1),
    (40, 5, 240, 40, True, "HS", 1),
    (40, 5, 120, 48, True, "HS", 1),
    (48, 5, 144, 48, True, "HS", 1),
    (48, 5, 288, 96, True, "HS", 2),
    (96, 5, 576, 96, True, "HS", 1),
    (96, 5, 576, 96, True, "HS", 1),
)


@dataclass
class MobileNetV3Config:
    """Options of :class:`MobileNetV3`.

    Attributes:
        in_channels: input channels.
        num_classes: number of logits.
        image_size: the data's image side (any side works: global average pooling).
        arch: ``large`` or ``small`` (the two searched networks).
        width_mult: width multiplier (also of the 1280 / 1024 hidden classifier layer).
        dropout: dropout before the last Linear layer.
        small_input: stride 1 in the stem and the first stride-2 block (for 28x28 / 32x32).
    """

    in_channels: int = 3
    num_classes: int = 1000
    image_size: int = 224
    arch: Literal["large", "small"] = "large"
    width_mult: float = 1.0
    dropout: float = 0.2
    small_input: bool = False

    TINY: ClassVar[dict[str, Any]] = {"width_mult": 0.25}

    def __post_init__(self) -> None:
        _check_common(self)


class MobileNetV3(PooledConvNet):
    """MobileNetV3 (Howard et al. 2019): h-swish stem, searched bottlenecks, 1x1 conv (6x), pooled MLP head.

    Args:
        in_channels: input channels.
        num_classes: number of logits.
        arch: ``"large"`` or ``"small"``.
        width_mult: width multiplier.
        dropout: dropout before the last Linear.
        small_input: 8x instead of 32x downsampling.

    Shapes:
        x: (B, in_channels, H, W); features (B, 960 | 576, H/32, W/32); logits (B, num_classes).
    """

    def __init__(
        self,
        in_channels: int = 3,
        num_classes: int = 1000,
        *,
        arch: str = "large",
        width_mult: float = 1.0,
        dropout: float = 0.2,
        small_input: bool = False,
    ) -> None:
        super().__init__()
        if arch not in ("large", "small"):
            raise ValueError(f"arch must be 'large' or 'small', got {arch!r}")
        self.in_channels, self.num_classes = in_channels, num_classes
        setting = V3_LARGE if arch == "large" else V3_SMALL
        hidden = 1280 if arch == "large" else 1024
        norm = partial(nn.BatchNorm2d, eps=1e-3, momentum=0.01)
        stem_stride, strides = small_input_strides([b[-1] for b in setting], small_input)

        def ch(c: int) -> int:
            return make_divisible(c * width_mult)

        layers: list[nn.Module] = [
            ConvNormAct(
                in_channels, ch(setting[0][0]), 3, stem_stride, norm_layer=norm, act_layer=nn.Hardswish
            )
        ]
        for (c_in, k, exp, out, se, act, _), s in zip(setting, strides, strict=True):
            act_layer = nn.Hardswish if act == "HS" else nn.ReLU
            layers.append(
                InvertedResidualV3(ch(c_in), k, ch(exp), ch(out), se, act_layer, s, norm_layer=norm)
            )
        c = ch(setting[-1][3])
        layers.append(ConvNormAct(c, 6 * c, 1, norm_layer=norm, act_layer=nn.Hardswish))
        self.features = nn.Sequential(*layers)
        self.num_features = 6 * c
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(
            nn.Linear(6 * c, ch(hidden)),  # the paper's last 1x1 conv, after pooling (no BN)
            nn.Hardswish(),
            nn.Dropout(dropout),
            nn.Linear(ch(hidden), num_classes),
        )
        self.init_weights()


# ----------------------------------------------------------------------------------------------
# registered variants


@register_model("mobilenet_v1", family="cnn", config=MobileNetV1Config)
def mobilenet_v1(cfg: MobileNetV1Config) -> MobileNetV1:
    """MobileNetV1 (Howard et al. 2017): 13 depthwise separable blocks; 4.2M params at width 1.0."""
    return MobileNetV1(
        cfg.in_channels,
        cfg.num_classes,
        width_mult=cfg.width_mult,
        depth_mult=cfg.depth_mult,
        dropout=cfg.dropout,
        small_input=cfg.small_input,
    )


def _v2(cfg: MobileNetV2Config) -> MobileNetV2:
    return MobileNetV2(
        cfg.in_channels,
        cfg.num_classes,
        width_mult=cfg.width_mult,
        depth_mult=cfg.depth_mult,
        dropout=cfg.dropout,
        small_input=cfg.small_input,
    )


@register_model("mobilenet_v2", family="cnn", config=MobileNetV2Config)
def mobilenet_v2(cfg: MobileNetV2Config) -> MobileNetV2:
    """MobileNetV2 (Sandler et al. 2018): inverted residuals, linear bottlenecks (torchvision layout)."""
    return _v2(cfg)


@register_model(
    "mobilenet_v2_cifar",
    family="cnn",
    config=MobileNetV2Config,
    small_input=True,
    num_classes=10,
    image_size=32,
)
def mobilenet_v2_cifar(cfg: MobileNetV2Config) -> MobileNetV2:
    """MobileNetV2 for 28x28 / 32x32 images: stride-1 stem and first stage (8x downsampling)."""
    return _v2(cfg)


def _v3(cfg: MobileNetV3Config) -> MobileNetV3:
    return MobileNetV3(
        cfg.in_channels,
        cfg.num_classes,
        arch=cfg.arch,
        width_mult=cfg.width_mult,
        dropout=cfg.dropout,
        small_input=cfg.small_input,
    )


@register_model("mobilenet_v3_large", family="cnn", config=MobileNetV3Config, arch="large")
def mobilenet_v3_large(cfg: MobileNetV3Config) -> MobileNetV3:
    """MobileNetV3-Large (Howard et al. 2019): SE, hard-swish, searched blocks (torchvision layout)."""
    return _v3(cfg)


@register_model("mobilenet_v3_small", family="cnn", config=MobileNetV3Config, arch="small")
def mobilenet_v3_small(cfg: MobileNetV3Config) -> MobileNetV3:
    """MobileNetV3-Small (Howard et al. 2019): SE, hard-swish, 11 searched blocks (torchvision layout)."""
    return _v3(cfg)
