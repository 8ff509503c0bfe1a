"""AlexNet: five convolutions and three fully connected layers, ReLU, dropout, overlapping pooling.

    A. Krizhevsky, I. Sutskever, G. E. Hinton, "ImageNet classification with deep convolutional
    neural networks", NeurIPS 2012,
    https://papers.nips.cc/paper/4824-imagenet-classification-with-deep-convolutional-neural-networks
    A. Krizhevsky, "One weird trick for parallelizing convolutional neural networks", 2014 (the
    single-tower channel counts used here, as in torchvision), https://arxiv.org/abs/1404.5997

The network (channels of torchvision's ``alexnet``; sides for a 224 px input)::

    conv 11x11/4 pad 2 (64)  -> ReLU [-> LRN] -> maxpool 3x3/2     (B, 64, 27, 27)
    conv 5x5 pad 2 (192)     -> ReLU [-> LRN] -> maxpool 3x3/2     (B, 192, 13, 13)
    conv 3x3 pad 1 (384)     -> ReLU                               (B, 384, 13, 13)
    conv 3x3 pad 1 (256)     -> ReLU                               (B, 256, 13, 13)
    conv 3x3 pad 1 (256)     -> ReLU -> maxpool 3x3/2              (B, 256, 6, 6)
    avgpool (adaptive, 6x6)                                        (B, 256, 6, 6)
    Dropout -> FC 4096 -> ReLU -> Dropout -> FC 4096 -> ReLU -> FC num_classes
                                                        61,100,840 params (1000 classes)

ReLU units ``max(0, x)`` train several times faster than saturating ``tanh``; "overlapping"
pooling uses 3x3 windows at stride 2; dropout (p = 0.5) in the first two FC layers reduces
overfitting. Local response normalisation (the paper's, optional here) divides each activation by
the energy of its ``n = 5`` neighbouring channels::

    b_i = a_i / (k + alpha * sum_{j = i - n/2}^{i + n/2} a_j^2) ** beta,   k = 2, alpha = 1e-4, beta = 0.75

The smallest input the strides take is 63 px (1x1 after the last pooling). Module names follow
torchvision's ``alexnet`` (``features.<0,3,6,8,10>``, ``classifier.<1,4,6>``), so its checkpoints
load with ``strict=True``.

Deviations from the paper:
    - ``channels`` [(64, 192, 384, 256, 256)]: torchvision's single-GPU channel counts ("One weird
      trick"); the paper's are (96, 256, 384, 384, 256). The paper split conv2, conv4 and conv5
      into two groups across two GPUs; every convolution here sees all its input channels.
    - ``lrn`` [False]: local response normalisation after the first two convolutions (the paper;
      torchvision dropped it). PyTorch's ``LocalResponseNorm`` divides ``alpha`` by ``n``, so it
      is given ``n * alpha`` to compute the paper's formula. It shifts the ``features`` indices.
    - ``init`` ["default"]: PyTorch's initialisation (torchvision's); ``"paper"`` draws weights
      from N(0, 0.01) with biases 1 in conv2, conv4, conv5 and the hidden FC layers, else 0.
    - ``avgpool`` adapts the feature map to ``pool_size`` x ``pool_size`` [6] (torchvision); the
      paper's 224 px inputs reach 6x6 there anyway (its "224" was effectively 227).
    - ``width_div`` [1] divides every convolution's channels and ``hidden_dim`` [4096] sets the FC
      width, to shrink the network. Training (SGD with momentum, weight decay 5e-4, PCA colour
      augmentation, 10-crop testing) is the engine's and the recipes' business.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
from torch import nn

from archlab.models.common import check_image_input
from archlab.registry import register_model

__all__ = ["AlexNet", "AlexNetConfig"]

MIN_SIZE = 63  # conv 11x11/4 and three 3x3/2 poolings leave 1x1


@dataclass
class AlexNetConfig:
    """Options of :class:`AlexNet`; the defaults are torchvision's ``alexnet``.

    Attributes:
        in_channels: input channels.
        num_classes: number of output logits.
        image_size: the data's image side; informational (it must be >= 63).
        channels: output channels of the five convolutions.
        width_div: divide every convolution's channels by this (>= 1 channel each).
        hidden_dim: width of the two hidden FC layers.
        pool_size: side of the adaptive average pooling before the classifier.
        dropout: dropout before each of the two hidden FC layers.
        lrn: local response normalisation after conv1 and conv2 (the paper).
        init: ``default`` (PyTorch's, as torchvision) or ``paper`` (N(0, 0.01), some biases 1).
    """

    in_channels: int = 3
    num_classes: int = 1000
    image_size: int = 224
    channels: tuple[int, int, int, int, int] = (64, 192, 384, 256, 256)
    width_div: int = 1
    hidden_dim: int = 4096
    pool_size: int = 6
    dropout: float = 0.5
    lrn: bool = False
    init: Literal["default", "paper"] = "default"

    # 64 px is the smallest convenient size (>= 63); 1/16 of the channels: ~30k parameters.
    TINY: ClassVar[dict[str, Any]] = {
        "image_size": 64, "width_div": 16, "hidden_dim": 128, "pool_size": 1, "dropout": 0.0,
    }  # fmt: skip

    def __post_init__(self) -> None:
        if len(self.channels) != 5 or any(c < 1 for c in self.channels):
            raise ValueError(f"channels needs 5 positive counts, got {self.channels}")
        if self.width_div < 1 or self.hidden_dim < 1 or self.pool_size < 1:
            raise ValueError("width_div, hidden_dim and pool_size must be >= 1")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.image_size < MIN_SIZE:
            raise ValueError(
                f"AlexNet needs images of at least {MIN_SIZE} px (its strides leave nothing of "
                f"{self.image_size} px); resize them, or use resnet18_cifar or simple_cnn"
            )


class AlexNet(nn.Module):
    """AlexNet: ``features`` (5 convolutions, 3 max poolings), ``avgpool``, a 3-layer ``classifier``.

    Args:
        in_channels: input channels.
        num_classes: number of logits.
        channels: output channels of the five convolutions.
        hidden_dim: width of the hidden FC layers.
        pool_size: side of the adaptive average pooling.
        dropout: dropout before each hidden FC layer.
        lrn: local response normalisation after the first two convolutions.

    Shapes:
        x: (B, in_channels, H, W) with H, W >= 63. Returns logits (B, num_classes).
    """

    def __init__(
        self,
        in_channels: int = 3,
        num_classes: int = 1000,
        *,
        channels: tuple[int, ...] = (64, 192, 384, 256, 256),
        hidden_dim: int = 4096,
        pool_size: int = 6,
        dropout: float = 0.5,
        lrn: bool = False,
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.num_classes = num_classes
        c1, c2, c3, c4, c5 = channels

        def norm() -> list[nn.Module]:
            # The paper's alpha is a plain sum's coefficient; PyTorch's is the mean's (alpha / n).
            return [nn.LocalResponseNorm(5, alpha=5 * 1e-4, beta=0.75, k=2.0)] if lrn else []

        # ReLUs are not in place: hooks on the conv outputs (feature-map plots) see them unrectified.
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, c1, kernel_size=11, stride=4, padding=2),  # (B, c1, 55, 55) at 224
            nn.ReLU(),
            *norm(),
            nn.MaxPool2d(kernel_size=3, stride=2),  # (B, c1, 27, 27)
            nn.Conv2d(c1, c2, kernel_size=5, padding=2),
            nn.ReLU(),
            *norm(),
            nn.MaxPool2d(kernel_size=3, stride=2),  # (B, c2, 13, 13)
            nn.Conv2d(c2, c3, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Conv2d(c3, c4, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Conv2d(c4, c5, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2),  # (B, c5, 6, 6)
        )
        self.num_features = c5
        self.avgpool = nn.AdaptiveAvgPool2d((pool_size, pool_size))
        self.classifier = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(c5 * pool_size * pool_size, hidden_dim),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden_dim, hidden_dim),
            nn.ReLU(),
            nn.Linear(hidden_dim, num_classes),
        )
        self.cam_layer = "features"

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The last feature map (B, C, H', W') (6x6 for 224 px)."""
        return self.features(x)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """Logits (B, num_classes) from the feature map (B, C, H', W')."""
        x = self.avgpool(features).flatten(1)  # (B, C * pool_size**2)
        return self.classifier(x)  # (B, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_image_input(self, x, self.in_channels, min_size=MIN_SIZE)
        return self.forward_head(self.forward_features(x))

    def get_classifier(self) -> nn.Module:
        """The last linear layer, ``classifier[6]``."""
        return self.classifier[6]

    def reset_classifier(self, num_classes: int) -> None:
        """Replace ``classifier[6]`` with a freshly initialised ``Linear(hidden_dim, num_classes)``."""
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        old = self.classifier[6]
        self.classifier[6] = nn.Linear(old.in_features, num_classes).to(old.weight.device)
        self.num_classes = num_classes


@torch.no_grad()
def paper_init_(model: AlexNet) -> None:
    """Section 5: weights N(0, 0.01); biases 1 in conv2, conv4, conv5 and the hidden FC layers, else 0."""
    convs = [m for m in model.features if isinstance(m, nn.Conv2d)]
    linears = [m for m in model.classifier if isinstance(m, nn.Linear)]
    for m in convs + linears:
        nn.init.normal_(m.weight, 0.0, 0.01)
        nn.init.zeros_(m.bias)
    for m in (convs[1], convs[3], convs[4], linears[0], linears[1]):
        nn.init.ones_(m.bias)


# ----------------------------------------------------------------------------------------------
# registered variants


@register_model("alexnet", family="cnn", config=AlexNetConfig)
def alexnet(cfg: AlexNetConfig) -> AlexNet:
    """AlexNet (Krizhevsky et al. 2012), torchvision's single-tower layout; 61.1M params, >= 63 px."""
    model = AlexNet(
        cfg.in_channels,
        cfg.num_classes,
        channels=tuple(max(1, c // cfg.width_div) for c in cfg.channels),
        hidden_dim=cfg.hidden_dim,
        pool_size=cfg.pool_size,
        dropout=cfg.dropout,
        lrn=cfg.lrn,
    )
    if cfg.init == "paper":
        paper_init_(model)
    return model
