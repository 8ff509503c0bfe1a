"""DenseNet: every layer of a block sees the feature maps of all the layers before it.

    G. Huang, Z. Liu, L. van der Maaten, K. Q. Weinberger, "Densely connected convolutional
    networks", CVPR 2017, https://arxiv.org/abs/1608.06993
    G. Pleiss, D. Chen, G. Huang, T. Li, L. van der Maaten, K. Q. Weinberger, "Memory-efficient
    implementation of DenseNets", 2017, https://arxiv.org/abs/1707.06990 (``memory_efficient``)

Dense connectivity. Inside a dense block, layer l takes the channel-wise concatenation of the
block input x_0 and every earlier output::

    x_l = H_l([x_0, x_1, ..., x_{l-1}])                           # (B, c_0 + l k, H, W) -> (B, k, H, W)
    H_l(z) = Conv3x3(ReLU(BN(Conv1x1(ReLU(BN(z))))))              # "DenseNet-B" bottleneck, 4k wide

so each layer adds k ("growth rate") channels and a block of L layers outputs c_0 + L k channels.
Between blocks a transition layer ``BN-ReLU-Conv1x1-AvgPool2x2`` halves the channels
(compression theta = 0.5, "DenseNet-C") and the side. DenseNet-121 is the ImageNet stem
(Conv7x7/2, BN, ReLU, MaxPool3x3/2), blocks of (6, 12, 24, 16) layers with k = 32 and 64 initial
channels, a final BN-ReLU, global average pooling and a linear classifier: 1 + 2 (6 + 12 + 24 + 16)
+ 3 + 1 = 121 weight layers. DenseNet-169 uses blocks (6, 12, 32, 32).

Module names and shapes follow torchvision (``features.conv0``, ``features.denseblock1.denselayer1
.norm1``, ``features.transition1.conv``, ``features.norm5``, ``classifier``), so a torchvision
checkpoint loads with ``strict=True``; parameter counts are torchvision's (DenseNet-121: 7,978,856,
DenseNet-169: 14,149,480 for 1000 classes).

Deviations from the paper:
    - ``small_input=True`` (default False) replaces the ImageNet stem by one 3x3 stride-1
      convolution without pooling, for 28/32-pixel images (as the paper's CIFAR networks); the
      registered ``densenet121_cifar`` uses it with the DenseNet-121 blocks (the paper's CIFAR
      DenseNet-BC has three blocks of equal depth and k = 12 instead: set ``block_config``,
      ``growth_rate`` and ``num_init_features``).
    - Convolution weights are initialised as torchvision's DenseNet does (He normal, fan-in mode;
      BN weight 1, bias 0; classifier bias 0), which the paper does not specify.
    - ``memory_efficient=True`` (default False) recomputes each bottleneck in the backward pass
      (Pleiss et al. 2017, via ``torch.utils.checkpoint``): the same results with less memory, but
      batch-norm running statistics are updated twice per training step by the recomputation.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from torch import nn

from archlab.models.common import check_image_input
from archlab.registry import register_model

__all__ = ["DenseBlock", "DenseLayer", "DenseNet", "DenseNetConfig", "Transition"]


@dataclass
class DenseNetConfig:
    """Options of :class:`DenseNet`.

    Attributes:
        in_channels: input channels.
        num_classes: number of output logits.
        image_size: the side of the example input (any side from the model's minimum works).
        growth_rate: k, channels each dense layer adds.
        block_config: number of dense layers in each block.
        num_init_features: channels out of the stem.
        bn_size: bottleneck width as a multiple of k (the 1x1 conv outputs ``bn_size * k``).
        drop_rate: dropout after each dense layer (the paper uses 0.2 on CIFAR without augmentation).
        memory_efficient: recompute the bottlenecks in the backward pass (torch.utils.checkpoint).
        small_input: 3x3 stride-1 stem without pooling, for 28/32-pixel images.
    """

    in_channels: int = 3
    num_classes: int = 1000
    image_size: int = 224
    growth_rate: int = 32
    block_config: tuple[int, ...] = (6, 12, 24, 16)
    num_init_features: int = 64
    bn_size: int = 4
    drop_rate: float = 0.0
    memory_efficient: bool = False
    small_input: bool = False

    TINY: ClassVar[dict[str, Any]] = {"growth_rate": 4, "block_config": (1, 1), "num_init_features": 8}

    def __post_init__(self) -> None:
        if not self.block_config or min(self.block_config) < 1:
            raise ValueError(
                f"block_config needs >= 1 block of >= 1 layer, e.g. (6, 12, 24, 16), got {self.block_config}"
            )
        for name in ("growth_rate", "num_init_features", "bn_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 <= self.drop_rate < 1.0:
            raise ValueError(f"drop_rate must be in [0, 1), got {self.drop_rate}")


class DenseLayer(nn.Module):
    """BN-ReLU-Conv1x1 (bottleneck to ``bn_size * k``) then BN-ReLU-Conv3x3 to k new channels.

    Takes the list of all earlier feature maps of its block and concatenates them itself, so that
    the memory-efficient path can recompute the concatenation in the backward pass.
    """

    def __init__(
        self,
        in_channels: int,
        growth_rate: int,
        bn_size: int,
        drop_rate: float = 0.0,
        memory_efficient: bool = False,
    ) -> None:
        super().__init__()
        width = bn_size * growth_rate
        self.norm1 = nn.BatchNorm2d(in_channels)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(in_channels, width, kernel_size=1, bias=False)
        self.norm2 = nn.BatchNorm2d(width)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(width, growth_rate, kernel_size=3, padding=1, bias=False)
        self.drop_rate = drop_rate
        self.memory_efficient = memory_efficient

    def bottleneck(self, *inputs: torch.Tensor) -> torch.Tensor:
        """Conv1x1(ReLU(BN([x_0, ..., x_{l-1}]))): (B, sum c_i, H, W) -> (B, bn_size * k, H, W)."""
        return self.conv1(self.relu1(self.norm1(torch.cat(inputs, 1))))

    def forward(self, inputs: list[torch.Tensor]) -> torch.Tensor:
        if self.memory_efficient and torch.is_grad_enabled() and any(t.requires_grad for t in inputs):
            h = cp.checkpoint(self.bottleneck, *inputs, use_reentrant=False)
        else:
            h = self.bottleneck(*inputs)  # (B, bn_size * k, H, W)
        new = self.conv2(self.relu2(self.norm2(h)))  # (B, k, H, W)
        if self.drop_rate > 0:
            new = F.dropout(new, p=self.drop_rate, training=self.training)
        return new


class DenseBlock(nn.ModuleDict):
    """``num_layers`` dense layers ``denselayer1...``; outputs in_channels + num_layers * k channels."""

    def __init__(
        self,
        num_layers: int,
        in_channels: int,
        growth_rate: int,
        bn_size: int,
        drop_rate: float = 0.0,
        memory_efficient: bool = False,
    ) -> None:
        super().__init__()
        for i in range(num_layers):
            layer = DenseLayer(
                in_channels + i * growth_rate, growth_rate, bn_size, drop_rate, memory_efficient
            )
            self.add_module(f"denselayer{i + 1}", layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for layer in self.values():
            features.append(layer(features))
        return torch.cat(features, 1)  # (B, c_0 + L k, H, W)


class Transition(nn.Sequential):
    """BN-ReLU-Conv1x1-AvgPool2x2 between blocks: (B, C, H, W) -> (B, C_out, H/2, W/2)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(in_channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=1, bias=False)
        self.pool = nn.AvgPool2d(kernel_size=2, stride=2)


class DenseNet(nn.Module):
    """Stem, dense blocks joined by transitions, BN-ReLU, global average pooling, linear classifier.

    Args:
        in_channels: input channels.
        num_classes: number of logits.
        growth_rate: k.
        block_config: layers per dense block.
        num_init_features: stem output channels.
        bn_size: bottleneck width factor.
        drop_rate: dropout after each dense layer.
        memory_efficient: checkpoint the bottlenecks.
        small_input: 3x3 stride-1 stem without pooling.

    Shapes:
        x: (B, in_channels, H, W) with H, W >= ``min_size``. Returns logits (B, num_classes).
    """

    def __init__(
        self,
        in_channels: int = 3,
        num_classes: int = 1000,
        *,
        growth_rate: int = 32,
        block_config: tuple[int, ...] = (6, 12, 24, 16),
        num_init_features: int = 64,
        bn_size: int = 4,
        drop_rate: float = 0.0,
        memory_efficient: bool = False,
        small_input: bool = False,
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.num_classes = num_classes
        if small_input:
            stem = [("conv0", nn.Conv2d(in_channels, num_init_features, 3, padding=1, bias=False))]
        else:
            stem = [("conv0", nn.Conv2d(in_channels, num_init_features, 7, stride=2, padding=3, bias=False))]
        stem += [("norm0", nn.BatchNorm2d(num_init_features)), ("relu0", nn.ReLU(inplace=True))]
        if not small_input:
            stem.append(("pool0", nn.MaxPool2d(kernel_size=3, stride=2, padding=1)))
        self.features = nn.Sequential(OrderedDict(stem))

        channels = num_init_features
        for i, num_layers in enumerate(block_config):
            block = DenseBlock(num_layers, channels, growth_rate, bn_size, drop_rate, memory_efficient)
            self.features.add_module(f"denseblock{i + 1}", block)
            channels += num_layers * growth_rate
            if i != len(block_config) - 1:
                self.features.add_module(f"transition{i + 1}", Transition(channels, channels // 2))
                channels //= 2
        self.features.add_module("norm5", nn.BatchNorm2d(channels))
        self.num_features = channels
        self.classifier = nn.Linear(channels, num_classes)

        # The smallest side the strides take: the stem divides by 4 (rounding up) unless
        # small_input; each transition halves (rounding down) and must leave >= 1 pixel.
        need = 2 ** (len(block_config) - 1)
        self.min_size = need if small_input else 4 * (need - 1) + 1
        self.cam_layer = "features"
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)  # torchvision's DenseNet: fan-in mode
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The last feature map after the final BN-ReLU: (B, num_features, H/32, W/32) on ImageNet."""
        check_image_input(self, x, self.in_channels, min_size=self.min_size)
        # Not in place: the output of ``features`` (norm5) is what Grad-CAM hooks read.
        return F.relu(self.features(x))

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """Global average pooling and the classifier: (B, C, H, W) -> (B, num_classes)."""
        return self.classifier(torch.flatten(F.adaptive_avg_pool2d(features, 1), 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))  # (B, num_classes)

    def get_classifier(self) -> nn.Module:
        return self.classifier

    def reset_classifier(self, num_classes: int) -> None:
        """A fresh linear classifier (zero bias, as initialised) with ``num_classes`` outputs."""
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        device = self.classifier.weight.device
        self.classifier = nn.Linear(self.num_features, num_classes, device=device)
        nn.init.zeros_(self.classifier.bias)
        self.num_classes = num_classes
        if dataclasses.is_dataclass(getattr(self, "config", None)):
            self.config = dataclasses.replace(self.config, num_classes=num_classes)


# ----------------------------------------------------------------------------------------------
# registered variants


def _densenet(cfg: DenseNetConfig) -> DenseNet:
    return DenseNet(
        cfg.in_channels,
        cfg.num_classes,
        growth_rate=cfg.growth_rate,
        block_config=cfg.block_config,
        num_init_features=cfg.num_init_features,
        bn_size=cfg.bn_size,
        drop_rate=cfg.drop_rate,
        memory_efficient=cfg.memory_efficient,
        small_input=cfg.small_input,
    )


@register_model("densenet121", family="cnn", config=DenseNetConfig)
def densenet121(cfg: DenseNetConfig) -> DenseNet:
    """DenseNet-121 (Huang et al. 2017): blocks (6, 12, 24, 16), growth 32; torchvision layout, 7.98M params."""
    return _densenet(cfg)


@register_model("densenet169", family="cnn", config=DenseNetConfig, block_config=(6, 12, 32, 32))
def densenet169(cfg: DenseNetConfig) -> DenseNet:
    """DenseNet-169 (Huang et al. 2017): blocks (6, 12, 32, 32), growth 32; torchvision layout, 14.1M params."""
    return _densenet(cfg)


@register_model(
    "densenet121_cifar", family="cnn", config=DenseNetConfig, small_input=True, image_size=32, num_classes=10
)
def densenet121_cifar(cfg: DenseNetConfig) -> DenseNet:
    """DenseNet-121 blocks with a 3x3 stride-1 stem and no stem pooling, for 28/32-pixel images."""
    return _densenet(cfg)
