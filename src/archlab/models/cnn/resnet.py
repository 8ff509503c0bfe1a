"""Residual networks (ResNet-18/34/50/101/152) and their "plain" twins without shortcuts.

    K. He, X. Zhang, S. Ren, J. Sun, "Deep residual learning for image recognition", CVPR 2016,
    https://arxiv.org/abs/1512.03385
    P. Goyal et al., "Accurate, large minibatch SGD: training ImageNet in 1 hour", 2017 (zero-init
    of the last batch norm of each residual branch), https://arxiv.org/abs/1706.02677

A residual block learns a correction ``F`` to its input instead of a whole new mapping::

    y = act(F(x) + x)            identity shortcut, when the shape is kept
    y = act(F(x) + W_s x)        projection shortcut (1x1 conv + BN, stride s), when it changes

If the identity is already nearly optimal, driving ``F`` to zero is easier than fitting an
identity with a stack of nonlinear layers; that is why a 34-layer ResNet trains to a lower error
than an 18-layer one while the same network without shortcuts ("plain", ``residual=False``:
``y = act(F(x))``) gets worse with depth (the degradation problem, Fig. 4 of the paper).

The residual branch ``F`` of a block with ``p`` planes (Conv = convolution without bias, then BN)::

    basic       F(x) = BN(Conv3x3_p(act(BN(Conv3x3_{p, stride s}(x)))))                 out = p
    bottleneck  F(x) = BN(Conv1x1_4p(act(BN(Conv3x3_{p, stride s}(act(BN(Conv1x1_p(x))))))))  out = 4p

The network: a stem, four stages of blocks with ``p = 64, 128, 256, 512`` (stride 2 at the first
block of stages 2-4), global average pooling and a linear classifier::

    imagenet stem: conv 7x7/2 (64) -> BN -> ReLU -> maxpool 3x3/2      (B, 64, H/4, W/4)
    cifar stem:    conv 3x3/1 (64) -> BN -> ReLU                       (B, 64, H, W)
    layer1..4:     blocks                                              (B, 512 e, H/32, W/32)
    avgpool, fc:   (B, 512 e) -> (B, num_classes)                      e = 1 (basic) or 4 (bottleneck)

    depth   18          34          50            101            152
    blocks  2,2,2,2     3,4,6,3     3,4,6,3       3,4,23,3       3,8,36,3
    block   basic       basic       bottleneck    bottleneck     bottleneck
    params  11,689,512  21,797,672  25,557,032    44,549,160     60,192,808   (1000 classes)

Module names and shapes follow torchvision's ``resnet*`` (``conv1``, ``bn1``, ``layer1.0.conv1``,
``layer2.0.downsample.0``, ``fc``...), so its checkpoints load with ``strict=True``.

Deviations from the paper:
    - ``bottleneck_stride`` ["3x3"]: the bottleneck strides in its 3x3 convolution (torchvision's
      "ResNet v1.5", ~0.5% better top-1 by NVIDIA's measure); ``"1x1"`` strides in the first 1x1
      as in the paper. The parameter count is the same.
    - ``shortcut`` ["projection"]: 1x1 projections where the shape changes (the paper's option B,
      used by torchvision for every depth); ``"zero_pad"`` is option A (subsample by the stride,
      zero-pad the new channels; no parameters), which the paper used for its plain-vs-residual
      comparison at 18/34 layers and for its CIFAR networks.
    - ``stem`` ["imagenet"]: ``"cifar"`` replaces the 7x7/2 convolution and the max pooling with a
      3x3/1 convolution, the common adaptation for 28-32 px images (the ``*_cifar`` variants).
      The paper's own CIFAR networks (3 stages of 16/32/64 planes, 6n+2 layers) are
      ``stem=cifar width=16 layers=[n,n,n] shortcut=zero_pad``.
    - ``zero_init_residual`` [False]: start each block's last BN scale at 0, so every block starts
      as the identity (Goyal et al. 2017); ``dropout`` [0.0] before ``fc``; ``width`` [64] the
      planes of the first stage (later stages double it); all are additions, off by default.
    - Initialisation is torchvision's (Kaiming-normal, fan-out, for convolutions; PyTorch's
      default for ``fc``); the paper used Kaiming-normal (fan-in). Training (SGD, 0.1 learning
      rate divided by 10 on plateaus, scale and colour augmentation, 10-crop testing) is the
      engine's and the recipes' business.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import nn

from archlab.models.common import check_image_input
from archlab.registry import register_model

__all__ = ["BasicBlock", "Bottleneck", "ResNet", "ResNetConfig", "ZeroPadShortcut"]

NormLayer = Callable[[int], nn.Module]


@dataclass
class ResNetConfig:
    """Options of :class:`ResNet`; the defaults are torchvision's ``resnet18``.

    Attributes:
        in_channels: input channels.
        num_classes: number of output logits.
        image_size: the data's image side; informational (global pooling takes any size).
        block: ``basic`` (two 3x3 convolutions) or ``bottleneck`` (1x1, 3x3, 1x1; 4x expansion).
        layers: blocks per stage; stage i has ``width * 2**i`` planes and stride 2 when i > 0.
        width: planes of the stem and the first stage (64 in the paper).
        stem: ``imagenet`` (7x7/2 conv + 3x3/2 max pool) or ``cifar`` (3x3/1 conv, no pool).
        residual: add the shortcuts; False gives the paper's "plain" network (and no projections).
        shortcut: ``projection`` (1x1 conv + BN, option B) or ``zero_pad`` (option A) where the
            shape of a block changes.
        bottleneck_stride: the convolution of a bottleneck that strides: ``3x3`` (torchvision's
            v1.5) or ``1x1`` (the paper).
        zero_init_residual: zero the last BN scale of every block so that it starts as identity.
        dropout: dropout before the classifier.
    """

    in_channels: int = 3
    num_classes: int = 1000
    image_size: int = 224
    block: Literal["basic", "bottleneck"] = "basic"
    layers: tuple[int, ...] = (2, 2, 2, 2)
    width: int = 64
    stem: Literal["imagenet", "cifar"] = "imagenet"
    residual: bool = True
    shortcut: Literal["projection", "zero_pad"] = "projection"
    bottleneck_stride: Literal["3x3", "1x1"] = "3x3"
    zero_init_residual: bool = False
    dropout: float = 0.0

    # One narrow block per stage: every variant runs at 16 px with < 100k parameters.
    TINY: ClassVar[dict[str, Any]] = {"width": 8, "layers": (1, 1, 1, 1)}

    def __post_init__(self) -> None:
        if not self.layers or any(n < 1 for n in self.layers):
            raise ValueError(f"layers needs >= 1 block in every stage, e.g. (2, 2, 2, 2); got {self.layers}")
        if self.width < 1:
            raise ValueError(f"width must be >= 1, got {self.width}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.zero_init_residual and not self.residual:
            raise ValueError(
                "zero_init_residual=True with residual=False would zero every block's output; "
                "use it with residual=True only"
            )


# ----------------------------------------------------------------------------------------------
# blocks


def conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    """3x3 convolution, padding 1, no bias (a BN follows)."""
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)


def conv1x1(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    """1x1 convolution, no bias (a BN follows)."""
    return nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False)


class ZeroPadShortcut(nn.Module):
    """Option A shortcut: keep every ``stride``-th pixel, then zero-pad the new channels."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        if out_channels < in_channels:
            raise ValueError(f"zero_pad shortcuts cannot shrink channels ({in_channels} -> {out_channels})")
        self.extra = out_channels - in_channels
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, :: self.stride, :: self.stride]  # (B, C_in, H/s, W/s)
        return F.pad(x, (0, 0, 0, 0, 0, self.extra))  # (B, C_out, H/s, W/s)

    def extra_repr(self) -> str:
        return f"stride={self.stride}, extra_channels={self.extra}"


def make_shortcut(
    in_channels: int, out_channels: int, stride: int, kind: str, norm_layer: NormLayer
) -> nn.Module | None:
    """The shortcut of a block: None (identity) when the shape is kept, else a projection or padding."""
    if stride == 1 and in_channels == out_channels:
        return None
    if kind == "projection":
        return nn.Sequential(conv1x1(in_channels, out_channels, stride), norm_layer(out_channels))
    if kind == "zero_pad":
        return ZeroPadShortcut(in_channels, out_channels, stride)
    raise ValueError(f"shortcut must be 'projection' or 'zero_pad', got {kind!r}")


class BasicBlock(nn.Module):
    """Two 3x3 convolutions: ``act(BN(W2 * act(BN(W1 * x))) + shortcut(x))``.

    Args:
        in_channels: input channels.
        planes: output channels (expansion 1).
        stride: stride of the first convolution (and of the shortcut).
        residual: add the shortcut; False builds the plain block (and no projection).
        shortcut: ``"projection"`` or ``"zero_pad"`` where the shape changes.
        norm_layer: normalisation class.
    """

    expansion: ClassVar[int] = 1

    def __init__(
        self,
        in_channels: int,
        planes: int,
        stride: int = 1,
        *,
        residual: bool = True,
        shortcut: str = "projection",
        norm_layer: NormLayer = nn.BatchNorm2d,
    ) -> None:
        super().__init__()
        self.residual = residual
        self.conv1 = conv3x3(in_channels, planes, stride)
        self.bn1 = norm_layer(planes)
        # Not in place: hooks that record bn outputs (feature-map plots) must see them unrectified.
        self.relu = nn.ReLU()
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = norm_layer(planes)
        self.downsample = (
            make_shortcut(in_channels, planes, stride, shortcut, norm_layer) if residual else None
        )

    @property
    def last_bn(self) -> nn.Module:
        """The norm that ends the residual branch (zeroed by ``zero_init_residual``)."""
        return self.bn2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))  # (B, p, H/s, W/s)
        out = self.bn2(self.conv2(out))  # (B, p, H/s, W/s)
        if self.residual:
            out = out + (x if self.downsample is None else self.downsample(x))
        return self.relu(out)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3, 1x1 expand (x4): ``act(BN(W3 * act(BN(W2 * act(BN(W1 * x))))) + shortcut(x))``.

    Args:
        in_channels: input channels.
        planes: channels of the 1x1 and 3x3 convolutions; the output has ``4 * planes``.
        stride: the block's stride (and the shortcut's).
        residual: add the shortcut; False builds the plain block (and no projection).
        shortcut: ``"projection"`` or ``"zero_pad"`` where the shape changes.
        stride_on: ``"3x3"`` (torchvision v1.5) or ``"1x1"`` (the paper): which convolution strides.
        norm_layer: normalisation class.
    """

    expansion: ClassVar[int] = 4

    def __init__(
        self,
        in_channels: int,
        planes: int,
        stride: int = 1,
        *,
        residual: bool = True,
        shortcut: str = "projection",
        stride_on: str = "3x3",
        norm_layer: NormLayer = nn.BatchNorm2d,
    ) -> None:
        super().__init__()
        if stride_on not in ("3x3", "1x1"):
            raise ValueError(f"stride_on must be '3x3' or '1x1', got {stride_on!r}")
        out_channels = planes * self.expansion
        self.residual = residual
        self.conv1 = conv1x1(in_channels, planes, stride if stride_on == "1x1" else 1)
        self.bn1 = norm_layer(planes)
        self.conv2 = conv3x3(planes, planes, stride if stride_on == "3x3" else 1)
        self.bn2 = norm_layer(planes)
        self.conv3 = conv1x1(planes, out_channels)
        self.bn3 = norm_layer(out_channels)
        self.relu = nn.ReLU()  # not in place, as in BasicBlock
        self.downsample = (
            make_shortcut(in_channels, out_channels, stride, shortcut, norm_layer) if residual else None
        )

    @property
    def last_bn(self) -> nn.Module:
        """The norm that ends the residual branch (zeroed by ``zero_init_residual``)."""
        return self.bn3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))  # (B, p, H, W)
        out = self.relu(self.bn2(self.conv2(out)))  # (B, p, H/s, W/s)
        out = self.bn3(self.conv3(out))  # (B, 4p, H/s, W/s)
        if self.residual:
            out = out + (x if self.downsample is None else self.downsample(x))
        return self.relu(out)


BLOCKS: dict[str, type[nn.Module]] = {"basic": BasicBlock, "bottleneck": Bottleneck}


# ----------------------------------------------------------------------------------------------
# model


class ResNet(nn.Module):
    """A ResNet (or a plain network): stem, stages ``layer1``..``layerN``, global pool, ``fc``.

    Args:
        block: :class:`BasicBlock` or :class:`Bottleneck`.
        layers: blocks per stage.
        in_channels: input channels.
        num_classes: number of logits.
        width: planes of the first stage; stage i has ``width * 2**i``.
        stem: ``"imagenet"`` (7x7/2 conv, 3x3/2 max pool) or ``"cifar"`` (3x3/1 conv).
        residual: add the shortcuts (False: the plain network).
        shortcut: ``"projection"`` or ``"zero_pad"`` where a block changes shape.
        bottleneck_stride: ``"3x3"`` or ``"1x1"`` (bottleneck blocks only).
        zero_init_residual: zero each block's last BN scale.
        dropout: dropout before ``fc``.
        norm_layer: normalisation class.

    Shapes:
        x: (B, in_channels, H, W), any H, W >= 1. Returns logits (B, num_classes).
    """

    def __init__(
        self,
        block: type[nn.Module],
        layers: tuple[int, ...],
        *,
        in_channels: int = 3,
        num_classes: int = 1000,
        width: int = 64,
        stem: str = "imagenet",
        residual: bool = True,
        shortcut: str = "projection",
        bottleneck_stride: str = "3x3",
        zero_init_residual: bool = False,
        dropout: float = 0.0,
        norm_layer: NormLayer = nn.BatchNorm2d,
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.num_classes = num_classes
        if stem == "imagenet":
            self.conv1 = nn.Conv2d(in_channels, width, 7, stride=2, padding=3, bias=False)
        elif stem == "cifar":
            self.conv1 = conv3x3(in_channels, width)
        else:
            raise ValueError(f"stem must be 'imagenet' or 'cifar', got {stem!r}")
        self.bn1 = norm_layer(width)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1) if stem == "imagenet" else nn.Identity()

        extra = {"stride_on": bottleneck_stride} if block is Bottleneck else {}
        channels = width
        self.stage_names: list[str] = []
        for i, num_blocks in enumerate(layers):
            planes = width * 2**i
            blocks = []
            for j in range(num_blocks):
                stride = 2 if i > 0 and j == 0 else 1
                kwargs = dict(residual=residual, shortcut=shortcut, norm_layer=norm_layer, **extra)
                blocks.append(block(channels, planes, stride, **kwargs))
                channels = planes * block.expansion
            self.stage_names.append(f"layer{i + 1}")
            self.add_module(self.stage_names[-1], nn.Sequential(*blocks))

        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc = nn.Linear(channels, num_classes)
        self.num_features = channels
        self.cam_layer = self.stage_names[-1]

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, (BasicBlock, Bottleneck)):
                    nn.init.zeros_(m.last_bn.weight)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The last stage's feature map (B, C, H', W')."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))  # (B, width, H/4, W/4) or (B, width, H, W)
        for name in self.stage_names:
            x = getattr(self, name)(x)  # channels x2 (x4 at the first bottleneck), side /2 from stage 2
        return x  # (B, num_features, H', W')

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """Logits (B, num_classes) from the feature map (B, C, H', W')."""
        x = self.avgpool(features).flatten(1)  # (B, C)
        return self.fc(self.dropout(x))  # (B, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_image_input(self, x, self.in_channels)
        return self.forward_head(self.forward_features(x))

    def get_classifier(self) -> nn.Module:
        """The final linear layer."""
        return self.fc

    def reset_classifier(self, num_classes: int) -> None:
        """Replace ``fc`` with a freshly initialised ``Linear(num_features, num_classes)``."""
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.fc = nn.Linear(self.num_features, num_classes).to(self.fc.weight.device)
        self.num_classes = num_classes


# ----------------------------------------------------------------------------------------------
# registered variants


def _resnet(cfg: ResNetConfig) -> ResNet:
    return ResNet(
        BLOCKS[cfg.block],
        cfg.layers,
        in_channels=cfg.in_channels,
        num_classes=cfg.num_classes,
        width=cfg.width,
        stem=cfg.stem,
        residual=cfg.residual,
        shortcut=cfg.shortcut,
        bottleneck_stride=cfg.bottleneck_stride,
        zero_init_residual=cfg.zero_init_residual,
        dropout=cfg.dropout,
    )


_CIFAR = {"stem": "cifar", "image_size": 32, "num_classes": 10}
_PLAIN = {"residual": False}


@register_model("resnet18", family="cnn", config=ResNetConfig, block="basic", layers=(2, 2, 2, 2))
def resnet18(cfg: ResNetConfig) -> ResNet:
    """ResNet-18 (He et al. 2016): basic blocks (2, 2, 2, 2), ImageNet stem; 11.7M params."""
    return _resnet(cfg)


@register_model("resnet34", family="cnn", config=ResNetConfig, block="basic", layers=(3, 4, 6, 3))
def resnet34(cfg: ResNetConfig) -> ResNet:
    """ResNet-34 (He et al. 2016): basic blocks (3, 4, 6, 3), ImageNet stem; 21.8M params."""
    return _resnet(cfg)


@register_model("resnet50", family="cnn", config=ResNetConfig, block="bottleneck", layers=(3, 4, 6, 3))
def resnet50(cfg: ResNetConfig) -> ResNet:
    """ResNet-50 (He et al. 2016, torchvision v1.5): bottlenecks (3, 4, 6, 3); 25.6M params."""
    return _resnet(cfg)


@register_model("resnet101", family="cnn", config=ResNetConfig, block="bottleneck", layers=(3, 4, 23, 3))
def resnet101(cfg: ResNetConfig) -> ResNet:
    """ResNet-101 (He et al. 2016, torchvision v1.5): bottlenecks (3, 4, 23, 3); 44.5M params."""
    return _resnet(cfg)


@register_model("resnet152", family="cnn", config=ResNetConfig, block="bottleneck", layers=(3, 8, 36, 3))
def resnet152(cfg: ResNetConfig) -> ResNet:
    """ResNet-152 (He et al. 2016, torchvision v1.5): bottlenecks (3, 8, 36, 3); 60.2M params."""
    return _resnet(cfg)


@register_model("resnet18_cifar", family="cnn", config=ResNetConfig, layers=(2, 2, 2, 2), **_CIFAR)
def resnet18_cifar(cfg: ResNetConfig) -> ResNet:
    """ResNet-18 with a 3x3/1 stem and no max pooling, for 28-32 px images; 11.2M params."""
    return _resnet(cfg)


@register_model("resnet34_cifar", family="cnn", config=ResNetConfig, layers=(3, 4, 6, 3), **_CIFAR)
def resnet34_cifar(cfg: ResNetConfig) -> ResNet:
    """ResNet-34 with a 3x3/1 stem and no max pooling, for 28-32 px images; 21.3M params."""
    return _resnet(cfg)


@register_model(
    "resnet50_cifar", family="cnn", config=ResNetConfig, block="bottleneck", layers=(3, 4, 6, 3), **_CIFAR
)
def resnet50_cifar(cfg: ResNetConfig) -> ResNet:
    """ResNet-50 (v1.5) with a 3x3/1 stem and no max pooling, for 28-32 px images; 23.5M params."""
    return _resnet(cfg)


@register_model("plain18", family="cnn", config=ResNetConfig, layers=(2, 2, 2, 2), **_PLAIN)
def plain18(cfg: ResNetConfig) -> ResNet:
    """Plain-18 (He et al. 2016): ResNet-18 without shortcuts, the degradation baseline."""
    return _resnet(cfg)


@register_model("plain34", family="cnn", config=ResNetConfig, layers=(3, 4, 6, 3), **_PLAIN)
def plain34(cfg: ResNetConfig) -> ResNet:
    """Plain-34 (He et al. 2016): ResNet-34 without shortcuts, the degradation baseline."""
    return _resnet(cfg)


@register_model("plain18_cifar", family="cnn", config=ResNetConfig, layers=(2, 2, 2, 2), **_CIFAR, **_PLAIN)
def plain18_cifar(cfg: ResNetConfig) -> ResNet:
    """Plain-18 with a 3x3/1 stem and no max pooling, for 28-32 px images."""
    return _resnet(cfg)


@register_model("plain34_cifar", family="cnn", config=ResNetConfig, layers=(3, 4, 6, 3), **_CIFAR, **_PLAIN)
def plain34_cifar(cfg: ResNetConfig) -> ResNet:
    """Plain-34 with a 3x3/1 stem and no max pooling, for 28-32 px images."""
    return _resnet(cfg)
