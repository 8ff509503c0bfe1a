"""VGG-11/13/16/19 (configurations A, B, D, E), with or without batch normalisation.

    K. Simonyan, A. Zisserman, "Very deep convolutional networks for large-scale image
    recognition", ICLR 2015, https://arxiv.org/abs/1409.1556
    S. Ioffe, C. Szegedy, "Batch normalization: accelerating deep network training by reducing
    internal covariate shift", ICML 2015 (the ``_bn`` variants), https://arxiv.org/abs/1502.03167

Depth from stacks of small filters: two 3x3 convolutions see a 5x5 window and three a 7x7 one,
with fewer weights (3 * 9 C^2 instead of 49 C^2 for 7x7) and a nonlinearity after each. Each
convolution keeps the size (3x3, stride 1, padding 1); five 2x2/2 max poolings ("M") halve it::

    x = act([BN](W * x + b))     # (B, c, H, W)       per number c of the configuration
    x = maxpool_2x2(x)           # (B, c, H/2, W/2)   per "M"

    A (vgg11): 64 M 128 M 256 256 M 512 512 M 512 512 M
    B (vgg13): 64 64 M 128 128 M 256 256 M 512 512 M 512 512 M
    D (vgg16): 64 64 M 128 128 M 256 256 256 M 512 512 512 M 512 512 512 M
    E (vgg19): 64 64 M 128 128 M 256 256 256 256 M 512 512 512 512 M 512 512 512 512 M

then ``avgpool`` (adaptive, to 7x7: 224 px images are already 7x7 there) and the classifier::

    (B, 512 * 7 * 7) -> FC 4096 -> ReLU -> Dropout -> FC 4096 -> ReLU -> Dropout -> FC num_classes

    params (1000 classes)  vgg11 132,863,336  vgg13 133,047,848  vgg16 138,357,544  vgg19 143,667,240
                           _bn variants add 2 per channel: vgg16_bn 138,365,992

Module names follow torchvision's ``vgg*`` (``features.<i>``, ``avgpool``, ``classifier.<0..6>``),
so its checkpoints load with ``strict=True``. 102.8M of vgg16's weights are in the first linear layer.

Deviations from the paper:
    - The ``_bn`` variants (``batch_norm=True``) put BatchNorm2d after each convolution (which
      keeps its bias, as torchvision does); the paper predates batch normalisation.
    - ``avgpool`` adapts any feature map to ``pool_size`` x ``pool_size`` [7] (torchvision); the
      paper trained on 224 px crops and tested densely (the FC layers as convolutions). With
      ``pool_size=1`` the classifier reads 512 globally pooled features, for small images.
    - Initialisation is torchvision's (Kaiming-normal, fan-out, for convolutions; N(0, 0.01) for
      linear layers; zero biases); the paper initialised deeper nets from a trained
      configuration A, then found Glorot initialisation works as well.
    - ``width_div`` [1] divides every convolution's channels and ``hidden_dim`` [4096] sets the
      FC width, to shrink the network; ``dropout`` [0.5] is the paper's.
    - Not reproduced: configuration A-LRN (local response normalisation) and C (with 1x1
      convolutions); multi-scale training and dense evaluation are data and evaluation choices.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from archlab.models.common import check_image_input
from archlab.registry import register_model

__all__ = ["CFGS", "VGG", "VGGConfig", "linear", "make_features"]

# Table 1 of the paper: numbers are 3x3 convolutions' output channels, "M" a 2x2/2 max pooling.
CFGS: dict[str, tuple[int | str, ...]] = {
    "A": (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    "B": (64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    "D": (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"),
    "E": (
        64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M",
    ),
}  # fmt: skip


@dataclass
class VGGConfig:
    """Options of :class:`VGG`; the defaults are torchvision's ``vgg16``.

    Attributes:
        in_channels: input channels.
        num_classes: number of output logits.
        image_size: the data's image side; informational (it must be >= 2**pools).
        cfg: a configuration letter of the paper (``A``, ``B``, ``D``, ``E``) or a list of
            channel counts and ``"M"`` (max pooling), e.g. ``[64, M, 128, M]``.
        batch_norm: BatchNorm2d after every convolution.
        width_div: divide every convolution's channels by this (>= 1 channel each).
        hidden_dim: width of the two hidden FC layers.
        pool_size: side of the adaptive average pooling before the classifier (7; 1 for small images).
        dropout: dropout after each hidden FC layer.
    """

    in_channels: int = 3
    num_classes: int = 1000
    image_size: int = 224
    cfg: str | tuple[int | str, ...] = "D"
    batch_norm: bool = False
    width_div: int = 1
    hidden_dim: int = 4096
    pool_size: int = 7
    dropout: float = 0.5

    # Four narrow convolutions and three pools (~50k parameters). The full depths without batch
    # norm do not reliably fit one batch with Adam at lr 1e-2 (their ReLUs die: why BN came), so
    # the walk checks the layout code and both norms; the depths are tested in test_resnet_vgg_alexnet.
    TINY: ClassVar[dict[str, Any]] = {
        "image_size": 16, "cfg": (8, "M", 16, "M", 32, 32, "M"), "hidden_dim": 128, "pool_size": 2,
        "dropout": 0.0,
    }  # fmt: skip

    def __post_init__(self) -> None:
        layout = self.layout
        if isinstance(self.cfg, str) and self.cfg not in CFGS:
            raise ValueError(f"cfg {self.cfg!r} is not one of {', '.join(CFGS)} (or a list like [64, 'M'])")
        if not any(v != "M" for v in layout):
            raise ValueError(f"cfg needs at least one convolution, got {self.cfg!r}")
        bad = [v for v in layout if v != "M" and not (isinstance(v, int) and v > 0)]
        if bad:
            raise ValueError(f"cfg entries must be positive channel counts or 'M', got {bad}")
        if self.width_div < 1 or self.hidden_dim < 1 or self.pool_size < 1:
            raise ValueError("width_div, hidden_dim and pool_size must be >= 1")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.image_size < self.min_size:
            raise ValueError(
                f"image_size {self.image_size} is too small for {layout.count('M')} max poolings "
                f"(needs >= {self.min_size}); resize the images or use a cfg with fewer 'M'"
            )

    @property
    def layout(self) -> tuple[int | str, ...]:
        """The configuration as channel counts and ``"M"``, channels divided by ``width_div``."""
        cfg = CFGS.get(self.cfg, ()) if isinstance(self.cfg, str) else self.cfg
        return tuple(v if v == "M" else max(1, v // self.width_div) for v in cfg)

    @property
    def min_size(self) -> int:
        """Smallest image side the max poolings can take."""
        return 2 ** self.layout.count("M")


def make_features(
    layout: Sequence[int | str], in_channels: int = 3, *, batch_norm: bool = False
) -> nn.Sequential:
    """torchvision's ``features``: Conv3x3 [-> BatchNorm2d] -> ReLU per number, MaxPool2d(2, 2) per "M"."""
    layers: list[nn.Module] = []
    c_in = in_channels
    for v in layout:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            continue
        layers.append(nn.Conv2d(c_in, int(v), kernel_size=3, padding=1))
        if batch_norm:
            layers.append(nn.BatchNorm2d(int(v)))
        layers.append(nn.ReLU())  # not in place: hooks on the conv outputs see them unrectified
        c_in = int(v)
    return nn.Sequential(*layers)


class VGG(nn.Module):
    """VGG: ``features`` (3x3 convolutions and max pooling), ``avgpool``, a 3-layer ``classifier``.

    Args:
        layout: channel counts and ``"M"`` (see :data:`CFGS`).
        in_channels: input channels.
        num_classes: number of logits.
        batch_norm: BatchNorm2d after every convolution.
        hidden_dim: width of the hidden FC layers.
        pool_size: side of the adaptive average pooling.
        dropout: dropout after each hidden FC layer.

    Shapes:
        x: (B, in_channels, H, W) with H, W >= 2**(number of "M"). Returns logits (B, num_classes).
    """

    def __init__(
        self,
        layout: Sequence[int | str],
        *,
        in_channels: int = 3,
        num_classes: int = 1000,
        batch_norm: bool = False,
        hidden_dim: int = 4096,
        pool_size: int = 7,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.min_size = 2 ** list(layout).count("M")
        self.features = make_features(layout, in_channels, batch_norm=batch_norm)
        self.num_features = next(int(v) for v in reversed(layout) if v != "M")
        self.avgpool = nn.AdaptiveAvgPool2d((pool_size, pool_size))
        self.classifier = nn.Sequential(
            linear(self.num_features * pool_size * pool_size, hidden_dim),
            nn.ReLU(),
            nn.Dropout(dropout),
            linear(hidden_dim, hidden_dim),
            nn.ReLU(),
            nn.Dropout(dropout),
            linear(hidden_dim, num_classes),
        )
        self.cam_layer = "features"
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The last feature map (B, C, H / 2**pools, W / 2**pools)."""
        return self.features(x)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """Logits (B, num_classes) from the feature map (B, C, H', W')."""
        x = self.avgpool(features).flatten(1)  # (B, C * pool_size**2)
        return self.classifier(x)  # (B, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_image_input(self, x, self.in_channels, min_size=self.min_size)
        return self.forward_head(self.forward_features(x))

    def get_classifier(self) -> nn.Module:
        """The last linear layer, ``classifier[6]``."""
        return self.classifier[6]

    def reset_classifier(self, num_classes: int) -> None:
        """Replace ``classifier[6]`` with a freshly initialised ``Linear(hidden_dim, num_classes)``."""
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        old = self.classifier[6]
        self.classifier[6] = linear(old.in_features, num_classes, device=old.weight.device)
        self.num_classes = num_classes


def linear(in_features: int, out_features: int, device: torch.device | str | None = None) -> nn.Linear:
    """``nn.Linear`` with torchvision's VGG initialisation: weights N(0, 0.01), zero bias."""
    # skip_init: PyTorch's default initialisation of 120M weights would be overwritten at once.
    device = device if device is not None else torch.get_default_device()  # honours `with torch.device`
    m = nn.utils.skip_init(nn.Linear, in_features, out_features, device=device)
    nn.init.normal_(m.weight, 0.0, 0.01)
    nn.init.zeros_(m.bias)
    return m


# ----------------------------------------------------------------------------------------------
# registered variants


def _vgg(cfg: VGGConfig) -> VGG:
    return VGG(
        cfg.layout,
        in_channels=cfg.in_channels,
        num_classes=cfg.num_classes,
        batch_norm=cfg.batch_norm,
        hidden_dim=cfg.hidden_dim,
        pool_size=cfg.pool_size,
        dropout=cfg.dropout,
    )


@register_model("vgg11", family="cnn", config=VGGConfig, cfg="A")
def vgg11(cfg: VGGConfig) -> VGG:
    """VGG-11 (Simonyan & Zisserman 2015, configuration A): 8 conv + 3 FC layers; 132.9M params."""
    return _vgg(cfg)


@register_model("vgg13", family="cnn", config=VGGConfig, cfg="B")
def vgg13(cfg: VGGConfig) -> VGG:
    """VGG-13 (Simonyan & Zisserman 2015, configuration B): 10 conv + 3 FC layers; 133.0M params."""
    return _vgg(cfg)


@register_model("vgg16", family="cnn", config=VGGConfig, cfg="D")
def vgg16(cfg: VGGConfig) -> VGG:
    """VGG-16 (Simonyan & Zisserman 2015, configuration D): 13 conv + 3 FC layers; 138.4M params."""
    return _vgg(cfg)


@register_model("vgg19", family="cnn", config=VGGConfig, cfg="E")
def vgg19(cfg: VGGConfig) -> VGG:
    """VGG-19 (Simonyan & Zisserman 2015, configuration E): 16 conv + 3 FC layers; 143.7M params."""
    return _vgg(cfg)


@register_model("vgg11_bn", family="cnn", config=VGGConfig, cfg="A", batch_norm=True)
def vgg11_bn(cfg: VGGConfig) -> VGG:
    """VGG-11 with batch normalisation after every convolution; 132.9M params."""
    return _vgg(cfg)


@register_model("vgg13_bn", family="cnn", config=VGGConfig, cfg="B", batch_norm=True)
def vgg13_bn(cfg: VGGConfig) -> VGG:
    """VGG-13 with batch normalisation after every convolution; 133.1M params."""
    return _vgg(cfg)


@register_model("vgg16_bn", family="cnn", config=VGGConfig, cfg="D", batch_norm=True)
def vgg16_bn(cfg: VGGConfig) -> VGG:
    """VGG-16 with batch normalisation after every convolution; 138.4M params."""
    return _vgg(cfg)


@register_model("vgg19_bn", family="cnn", config=VGGConfig, cfg="E", batch_norm=True)
def vgg19_bn(cfg: VGGConfig) -> VGG:
    """VGG-19 with batch normalisation after every convolution; 143.7M params."""
    return _vgg(cfg)
