"""A simple convolutional network: blocks of Conv3x3-BatchNorm-ReLU-MaxPool, then a linear head.

The "simple CNN" of the seed notebooks (04, CNNs on MNIST), built from the pieces of:
    Y. LeCun et al., "Backpropagation applied to handwritten zip code recognition", Neural
    Computation 1(4), 1989 (convolution + subsampling + a classifier), https://doi.org/10.1162/neco.1989.1.4.541
    S. Ioffe, C. Szegedy, "Batch normalization: accelerating deep network training by reducing
    internal covariate shift", ICML 2015, https://arxiv.org/abs/1502.03167
    K. Simonyan, A. Zisserman, "Very deep convolutional networks for large-scale image
    recognition", ICLR 2015 (stacks of 3x3 convolutions), https://arxiv.org/abs/1409.1556

For block b with c_b channels (``channels``), repeated ``convs_per_block`` times::

    x = act(BN(W_b * x))          # (B, c_b, H_b, W_b)   3x3, padding 1: size kept
    x = maxpool_2x2(x)            # (B, c_b, H_b/2, W_b/2)

A k x k convolution with stride s and padding p maps a side H to ``floor((H + 2p - k) / s) + 1``.
``padding="same"`` uses p = k // 2 (odd k), which keeps the side at stride 1 and gives ceil(H / s)
at stride s; ``padding="valid"`` uses p = 0 (the side shrinks by k - 1). ``stride`` applies to
the first convolution of each block, so ``stride=2, pool="none"`` downsamples with strided
convolutions instead of pooling (J. T. Springenberg, A. Dosovitskiy, T. Brox, M. Riedmiller,
"Striving for simplicity: the all convolutional net", ICLR 2015 workshop,
https://arxiv.org/abs/1412.6806). 2x2 pooling floors: ``H -> floor(H / 2)``.

then the head: ``flatten`` (B, c_last * H' * W') or global average pooling ``gap`` (B, c_last),
an optional hidden layer ``act(x W_h^T + b_h)`` of ``hidden_dim`` units with dropout, and
``logits = x W^T + b`` (B, num_classes).

Deviations from the paper:
    - No single paper defines this network; it is the common teaching CNN. Convolutions have no
      bias when followed by batch norm (the norm's shift replaces it).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
from torch import nn

from archlab.models.common import Activation, check_image_input, get_act_layer
from archlab.registry import register_model

__all__ = ["ConvBlock", "SimpleCNN", "SimpleCNNConfig", "conv_out_side", "feature_sides"]


@dataclass
class SimpleCNNConfig:
    """Options of :class:`SimpleCNN`.

    Attributes:
        in_channels: input channels.
        num_classes: number of output logits.
        image_size: input side (square images); needed by the ``flatten`` head.
        channels: output channels of each block; each block halves the image side (when pooling).
        convs_per_block: convolutions per block (2 gives VGG-style pairs).
        kernel_size: odd convolution kernel side.
        stride: stride of the first convolution of each block (2 with ``pool="none"`` replaces
            pooling by strided convolutions).
        padding: ``same`` (k // 2 zeros a side: the size is kept at stride 1) or ``valid`` (none).
        activation: nonlinearity after each convolution (and the hidden head layer).
        batch_norm: BatchNorm2d after each convolution.
        pool: ``max`` / ``avg`` 2x2 pooling at the end of each block, or ``none``.
        head: ``flatten`` the last feature maps, or ``gap`` (global average pooling).
        hidden_dim: units of a hidden fully connected layer in the head; 0 for none.
        dropout: dropout before each linear layer of the head.
    """

    in_channels: int = 1
    num_classes: int = 10
    image_size: int = 28
    channels: tuple[int, ...] = (32, 64)
    convs_per_block: int = 1
    kernel_size: int = 3
    stride: int = 1
    padding: Literal["same", "valid"] = "same"
    activation: Activation = "relu"
    batch_norm: bool = True
    pool: Literal["max", "avg", "none"] = "max"
    head: Literal["flatten", "gap"] = "flatten"
    hidden_dim: int = 128
    dropout: float = 0.0

    TINY: ClassVar[dict[str, Any]] = {"image_size": 8, "num_classes": 3, "in_channels": 3}

    def __post_init__(self) -> None:
        if not self.channels:
            raise ValueError("channels needs at least one block, e.g. (32, 64)")
        if self.convs_per_block < 1:
            raise ValueError(f"convs_per_block must be >= 1, got {self.convs_per_block}")
        if self.kernel_size < 1 or self.kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd (padding keeps the size), got {self.kernel_size}")
        if self.stride < 1:
            raise ValueError(f"stride must be >= 1, got {self.stride}")
        if self.padding not in ("same", "valid"):
            raise ValueError(f"padding must be 'same' or 'valid', got {self.padding!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.pool != "none" and self.image_size < 2 ** len(self.channels):
            raise ValueError(
                f"image_size {self.image_size} is too small for {len(self.channels)} pooling blocks "
                f"(needs >= {2 ** len(self.channels)}); use fewer channels or pool='none'"
            )
        # raises ValueError when a block would get an empty feature map
        feature_sides(
            self.image_size,
            len(self.channels),
            convs_per_block=self.convs_per_block,
            kernel_size=self.kernel_size,
            stride=self.stride,
            padding=self.padding,
            pool=self.pool != "none",
        )


def conv_out_side(side: int, kernel_size: int, stride: int = 1, padding: str = "same") -> int:
    """Output side of a k x k convolution: ``floor((side + 2p - k) / stride) + 1``, p = k // 2 or 0."""
    pad = kernel_size // 2 if padding == "same" else 0
    return (side + 2 * pad - kernel_size) // stride + 1


def feature_sides(
    image_size: int,
    blocks: int,
    *,
    convs_per_block: int = 1,
    kernel_size: int = 3,
    stride: int = 1,
    padding: str = "same",
    pool: bool = True,
) -> list[int]:
    """The feature-map side after each block of a :class:`SimpleCNN` (square images).

    Raises:
        ValueError: a convolution or a pooling would get an input smaller than itself.
    """
    sides, side = [], image_size
    for b in range(blocks):
        for i in range(convs_per_block):
            out = conv_out_side(side, kernel_size, stride if i == 0 else 1, padding)
            if out < 1:
                raise ValueError(
                    f"block {b + 1} gets {side}x{side} feature maps, too small for a {kernel_size}x{kernel_size} "
                    f"'{padding}' convolution; use fewer blocks, padding='same' or a larger image_size"
                )
            side = out
        if pool:
            if side < 2:
                raise ValueError(
                    f"block {b + 1} gets {side}x{side} feature maps, too small for 2x2 pooling; "
                    "use fewer blocks, padding='same' or pool='none'"
                )
            side //= 2
        sides.append(side)
    return sides


class ConvBlock(nn.Module):
    """``convs`` x (conv k x k -> norm -> act), then 2x2 pooling; the first conv has ``stride``."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        convs: int = 1,
        kernel_size: int = 3,
        stride: int = 1,
        padding: str = "same",
        act_layer: Callable[..., nn.Module] = nn.ReLU,
        norm_layer: Callable[[int], nn.Module] | None = nn.BatchNorm2d,
        pool_layer: Callable[[], nn.Module] | None = None,
    ) -> None:
        super().__init__()
        pad = kernel_size // 2 if padding == "same" else 0
        layers: list[nn.Module] = []
        for i in range(convs):
            c_in = in_channels if i == 0 else out_channels
            s = stride if i == 0 else 1
            layers.append(
                nn.Conv2d(c_in, out_channels, kernel_size, stride=s, padding=pad, bias=norm_layer is None)
            )
            if norm_layer is not None:
                layers.append(norm_layer(out_channels))
            layers.append(act_layer())
        self.convs = nn.Sequential(*layers)
        self.pool = pool_layer() if pool_layer is not None else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.convs(x))  # (B, out, H/2, W/2) with pooling (stride 1, same padding)


class SimpleCNN(nn.Module):
    """Conv blocks, then a flatten or global-average-pool head.

    Args:
        in_channels: input channels.
        num_classes: number of logits.
        channels: output channels per block.
        image_size: input side; used to size the ``flatten`` head.
        convs_per_block: convolutions per block.
        kernel_size: odd kernel side.
        stride: stride of each block's first convolution.
        padding: ``"same"`` (k // 2) or ``"valid"`` (0).
        act_layer: activation class.
        norm_layer: normalisation class (``nn.BatchNorm2d``) or None.
        pool_layer: pooling constructor (``lambda: nn.MaxPool2d(2)``) or None.
        head: ``"flatten"`` or ``"gap"``.
        hidden_dim: hidden units in the head (0 = none).
        dropout: dropout before each head linear layer.

    Shapes:
        x: (B, in_channels, image_size, image_size). Returns logits (B, num_classes).
    """

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 10,
        channels: tuple[int, ...] = (32, 64),
        *,
        image_size: int = 28,
        convs_per_block: int = 1,
        kernel_size: int = 3,
        stride: int = 1,
        padding: str = "same",
        act_layer: Callable[..., nn.Module] = nn.ReLU,
        norm_layer: Callable[[int], nn.Module] | None = nn.BatchNorm2d,
        pool_layer: Callable[[], nn.Module] | None = None,
        head: str = "flatten",
        hidden_dim: int = 0,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.image_size = image_size
        self.in_channels = in_channels
        dims = [in_channels, *channels]
        self.features = nn.Sequential(
            *(
                ConvBlock(
                    c_in,
                    c_out,
                    convs=convs_per_block,
                    kernel_size=kernel_size,
                    stride=stride,
                    padding=padding,
                    act_layer=act_layer,
                    norm_layer=norm_layer,
                    pool_layer=pool_layer,
                )
                for c_in, c_out in itertools.pairwise(dims)
            )
        )
        side = feature_sides(
            image_size, len(channels), convs_per_block=convs_per_block, kernel_size=kernel_size,
            stride=stride, padding=padding, pool=pool_layer is not None,
        )[-1]  # fmt: skip
        if head == "flatten":
            self.pool = nn.Flatten(1)
            width = channels[-1] * side * side
        elif head == "gap":
            self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1))
            width = channels[-1]
        else:
            raise ValueError(f"head must be 'flatten' or 'gap', got {head!r}")
        self.head_kind = head
        layers: list[nn.Module] = []
        if hidden_dim > 0:
            layers += [
                nn.Dropout(dropout) if dropout > 0 else nn.Identity(),
                nn.Linear(width, hidden_dim),
                act_layer(),
            ]
            width = hidden_dim
        layers += [nn.Dropout(dropout) if dropout > 0 else nn.Identity(), nn.Linear(width, num_classes)]
        self.head = nn.Sequential(*layers)
        self.cam_layer = "features"

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The last feature map (B, C_last, H', W')."""
        return self.features(x)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """Logits (B, num_classes) from the last feature map (B, C_last, H', W')."""
        x = self.pool(features)  # (B, C_last * H' * W') or (B, C_last)
        return self.head(x)  # (B, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = self.head_kind == "flatten"
        check_image_input(self, x, self.in_channels, image_size=self.image_size if flat else None)
        return self.forward_head(self.forward_features(x))

    def get_classifier(self) -> nn.Module:
        """The last linear layer of the head."""
        return self.head[-1]

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the last linear layer with a freshly initialised ``Linear(width, num_classes)``."""
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        old = self.head[-1]
        self.head[-1] = nn.Linear(old.in_features, num_classes).to(old.weight.device)


# ----------------------------------------------------------------------------------------------
# registered variants


def _simple_cnn(cfg: SimpleCNNConfig) -> SimpleCNN:
    pools = {"max": lambda: nn.MaxPool2d(2), "avg": lambda: nn.AvgPool2d(2), "none": None}
    return SimpleCNN(
        cfg.in_channels,
        cfg.num_classes,
        cfg.channels,
        image_size=cfg.image_size,
        convs_per_block=cfg.convs_per_block,
        kernel_size=cfg.kernel_size,
        stride=cfg.stride,
        padding=cfg.padding,
        act_layer=get_act_layer(cfg.activation),
        norm_layer=nn.BatchNorm2d if cfg.batch_norm else None,
        pool_layer=pools[cfg.pool],
        head=cfg.head,
        hidden_dim=cfg.hidden_dim,
        dropout=cfg.dropout,
    )


@register_model("simple_cnn", family="cnn", config=SimpleCNNConfig)
def simple_cnn(cfg: SimpleCNNConfig) -> SimpleCNN:
    """Two Conv3x3-BN-ReLU-MaxPool blocks (32, 64), flatten, FC 128, linear classifier."""
    return _simple_cnn(cfg)


@register_model(
    "simple_cnn_small", family="cnn", config=SimpleCNNConfig, channels=(16, 32), head="gap", hidden_dim=0
)
def simple_cnn_small(cfg: SimpleCNNConfig) -> SimpleCNN:
    """Two Conv3x3-BN-ReLU-MaxPool blocks (16, 32), global average pooling, linear classifier."""
    return _simple_cnn(cfg)


@register_model(
    "simple_cnn_vgg", family="cnn", config=SimpleCNNConfig, channels=(32, 64, 128), convs_per_block=2,
    head="gap", hidden_dim=0,
)  # fmt: skip
def simple_cnn_vgg(cfg: SimpleCNNConfig) -> SimpleCNN:
    """Three VGG-style blocks of two Conv3x3-BN-ReLU (32, 64, 128), max pooling, global average pooling."""
    return _simple_cnn(cfg)
