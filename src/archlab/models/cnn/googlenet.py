"""GoogLeNet (Inception v1): parallel 1x1, 3x3, 5x5 and pooling branches, concatenated.

    C. Szegedy, W. Liu, Y. Jia, P. Sermanet, S. Reed, D. Anguelov, D. Erhan, V. Vanhoucke,
    A. Rabinovich, "Going deeper with convolutions", CVPR 2015, https://arxiv.org/abs/1409.4842
    S. Ioffe, C. Szegedy, "Batch normalization: accelerating deep network training by reducing
    internal covariate shift", ICML 2015, https://arxiv.org/abs/1502.03167 (BN after each conv)

An inception module sees the same input x at several scales and concatenates along channels::

    y = [ b1(x), b2(x), b3(x), b4(x) ]                              # (B, c1 + c3 + c5 + cp, H, W)
    b1 = Conv1x1 -> c1                 b2 = Conv1x1 -> c3r, Conv3x3 -> c3
    b3 = Conv1x1 -> c5r, Conv5x5 -> c5 b4 = MaxPool3x3/1, Conv1x1 -> cp

The 1x1 "reduction" convolutions before the expensive 3x3/5x5 ones keep the cost down (the
paper's Table 1 lists c1, c3r, c3, c5r, c5, cp for modules 3a-5b). Every conv is ``BasicConv2d``:
Conv (no bias) -> BN(eps 0.001) -> ReLU. The network: Conv7x7/2, MaxPool, Conv1x1, Conv3x3,
MaxPool, inception 3a-3b, MaxPool, 4a-4e, MaxPool, 5a-5b, global average pooling, dropout,
linear classifier (224x224 -> 7x7x1024 before pooling).

Auxiliary classifiers. During training the paper adds two small heads on 4a and 4d
(AvgPool to 4x4, Conv1x1 128, FC 1024, dropout 0.7, FC) whose losses are added with weight 0.3:
``L = CE(logits, y) + 0.3 (CE(aux1, y) + CE(aux2, y))``. They help gradients reach the lower
layers and are dropped at inference. Here ``forward`` always returns the main logits (B, K)
(so the generic training engine works); with ``aux_logits=True`` a training-mode forward also
stores the two auxiliary logits in ``model.aux_outputs`` and ``model.aux_loss(y)`` returns
``aux_loss_weight * sum_i CE(aux_i, y)`` to add to the loss::

    logits = model(x)
    loss = F.cross_entropy(logits, y) + model.aux_loss(y)

Module names and shapes follow torchvision (``conv1.conv``, ``conv1.bn``, ``inception3a.branch2.1
.conv``, ``aux1.fc1``, ``fc``) so a torchvision checkpoint loads with ``strict=True``; 6,624,904
parameters without the auxiliary heads and 13,004,888 with them (1000 classes).

Deviations from the paper:
    - Branch 3 uses a 3x3 convolution where the paper has 5x5, as torchvision's GoogLeNet does
      (a known slip kept there for its pretrained weights); kept so checkpoints load.
      ``branch3_5x5=True`` builds the paper's 5x5 (7,005,832 parameters without the aux heads).
    - Batch normalization after every convolution (the paper predates BN; this is torchvision's
      "GoogLeNet (BN)"), and the pooling layers round up (``ceil_mode``) as torchvision's.
    - ``aux_logits`` defaults to False: the generic classification task trains on the main logits
      only. Set ``aux_logits=True`` and add ``model.aux_loss(y)`` to the loss to train as the paper.
    - The auxiliary heads pool adaptively to 4x4 (the paper: 5x5 average pooling, stride 3), the
      same on 224-pixel inputs, and other sizes work too.
    - Dropout before the classifier is 0.2 (torchvision's default; the paper: 0.4): ``dropout``.
    - Weights are initialised as torchvision's: truncated normal (std 0.01, cut at +-2) for conv
      and linear weights, BN weight 1 and bias 0.
    - ``transform_input=True`` (default False) maps ImageNet-normalised inputs to the [-1, 1]
      scaling that the original weights were trained with (torchvision's option).
    - ``small_input=True`` (default False; ``googlenet_cifar``) replaces the stem's 7x7/2 conv
      by a 3x3/1 conv and drops the two stem poolings, for 28/32-pixel images.
    - ``width_div`` (default 1) divides every width, for tiny test networks.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from archlab.models.common import check_image_input
from archlab.registry import register_model

__all__ = ["BasicConv2d", "GoogLeNet", "GoogLeNetConfig", "Inception", "InceptionAux"]

# Table 1 of the paper: (c1, c3r, c3, c5r, c5, cp) of each inception module.
INCEPTION_WIDTHS: dict[str, tuple[int, int, int, int, int, int]] = {
    "3a": (64, 96, 128, 16, 32, 32),
    "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64),
    "4b": (160, 112, 224, 24, 64, 64),
    "4c": (128, 128, 256, 24, 64, 64),
    "4d": (112, 144, 288, 32, 64, 64),
    "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128),
    "5b": (384, 192, 384, 48, 128, 128),
}


@dataclass
class GoogLeNetConfig:
    """Options of :class:`GoogLeNet`.

    Attributes:
        in_channels: input channels.
        num_classes: number of output logits.
        image_size: the side of the example input (any side from the model's minimum works).
        aux_logits: build the two auxiliary classifiers (on 4a and 4d).
        aux_loss_weight: weight of each auxiliary loss in :meth:`GoogLeNet.aux_loss` (paper: 0.3).
        transform_input: rescale ImageNet-normalised inputs as torchvision's pretrained weights expect.
        dropout: dropout before the classifier (torchvision 0.2; the paper 0.4).
        dropout_aux: dropout inside the auxiliary heads (paper: 0.7).
        small_input: 3x3 stride-1 stem without the two stem poolings, for 28/32-pixel images.
        width_div: divide every channel width by this (1 = the paper's widths).
        branch3_5x5: the paper's 5x5 convolution in branch 3 (torchvision and the default: 3x3).
    """

    in_channels: int = 3
    num_classes: int = 1000
    image_size: int = 224
    aux_logits: bool = False
    aux_loss_weight: float = 0.3
    transform_input: bool = False
    dropout: float = 0.2
    dropout_aux: float = 0.7
    small_input: bool = False
    width_div: int = 1
    branch3_5x5: bool = False

    # The ImageNet stem needs >= 31 pixels; width / 16 keeps the tiny network near 40k parameters.
    TINY: ClassVar[dict[str, Any]] = {"image_size": 32, "width_div": 16}

    def __post_init__(self) -> None:
        if self.width_div < 1 or 16 % self.width_div:
            raise ValueError(f"width_div must divide 16 (1, 2, 4, 8 or 16), got {self.width_div}")
        for name in ("dropout", "dropout_aux"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)}")
        if self.transform_input and self.in_channels != 3:
            raise ValueError(
                "transform_input rescales the 3 ImageNet channels; set in_channels=3 or turn it off"
            )


class BasicConv2d(nn.Module):
    """Conv (no bias) -> BatchNorm (eps 0.001) -> ReLU."""

    def __init__(self, in_channels: int, out_channels: int, **conv_kwargs: Any) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, bias=False, **conv_kwargs)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)), inplace=True)


class Inception(nn.Module):
    """Four parallel branches concatenated: (B, C, H, W) -> (B, c1 + c3 + c5 + cp, H, W)."""

    def __init__(
        self,
        in_channels: int,
        c1: int,
        c3r: int,
        c3: int,
        c5r: int,
        c5: int,
        cp: int,
        *,
        branch3_kernel: int = 3,
    ) -> None:
        super().__init__()
        self.branch1 = BasicConv2d(in_channels, c1, kernel_size=1)
        self.branch2 = nn.Sequential(
            BasicConv2d(in_channels, c3r, kernel_size=1), BasicConv2d(c3r, c3, kernel_size=3, padding=1)
        )
        # 3x3 where the paper has 5x5: torchvision's layout (see "Deviations from the paper").
        self.branch3 = nn.Sequential(
            BasicConv2d(in_channels, c5r, kernel_size=1),
            BasicConv2d(c5r, c5, kernel_size=branch3_kernel, padding=branch3_kernel // 2),
        )
        self.branch4 = nn.Sequential(
            nn.MaxPool2d(kernel_size=3, stride=1, padding=1, ceil_mode=True),
            BasicConv2d(in_channels, cp, kernel_size=1),
        )
        self.out_channels = c1 + c3 + c5 + cp

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = (self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x))
        return torch.cat(branches, 1)  # (B, c1 + c3 + c5 + cp, H, W)


class InceptionAux(nn.Module):
    """Auxiliary head: AvgPool to 4x4, Conv1x1 (128), FC (1024), ReLU, dropout, FC (num_classes)."""

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        *,
        width: int = 128,
        hidden: int = 1024,
        dropout: float = 0.7,
    ) -> None:
        super().__init__()
        self.conv = BasicConv2d(in_channels, width, kernel_size=1)
        self.fc1 = nn.Linear(width * 4 * 4, hidden)
        self.fc2 = nn.Linear(hidden, num_classes)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(F.adaptive_avg_pool2d(x, 4))  # (B, width, 4, 4)
        x = F.relu(self.fc1(torch.flatten(x, 1)), inplace=True)  # (B, hidden)
        return self.fc2(self.dropout(x))  # (B, num_classes)


def _pool_side(h: int, kernel: int, stride: int) -> int:
    """Output side of ``MaxPool2d(kernel, stride, ceil_mode=True)``; 0 when the input is too small."""
    if h < kernel:
        return 0
    out = -(-(h - kernel) // stride) + 1
    return out - 1 if (out - 1) * stride >= h else out


class GoogLeNet(nn.Module):
    """Stem, inception modules 3a-5b with pooling between stages, optional auxiliary heads.

    Args:
        in_channels: input channels.
        num_classes: number of logits.
        aux_logits: build the auxiliary heads ``aux1`` (on 4a) and ``aux2`` (on 4d).
        aux_loss_weight: weight of each auxiliary cross-entropy in :meth:`aux_loss`.
        transform_input: rescale ImageNet-normalised inputs (torchvision's option).
        dropout: dropout before ``fc``.
        dropout_aux: dropout in the auxiliary heads.
        small_input: 3x3/1 stem without the stem poolings.
        width_div: divide every width by this.
        branch3_5x5: 5x5 (the paper) instead of 3x3 (torchvision) in each module's branch 3.

    Shapes:
        x: (B, in_channels, H, W) with H, W >= ``min_size``. Returns logits (B, num_classes); in
        training mode with ``aux_logits`` also sets ``aux_outputs`` to two (B, num_classes) tensors.
    """

    def __init__(
        self,
        in_channels: int = 3,
        num_classes: int = 1000,
        *,
        aux_logits: bool = False,
        aux_loss_weight: float = 0.3,
        transform_input: bool = False,
        dropout: float = 0.2,
        dropout_aux: float = 0.7,
        small_input: bool = False,
        width_div: int = 1,
        branch3_5x5: bool = False,
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.transform_input = transform_input
        self.aux_loss_weight = aux_loss_weight
        self.small_input = small_input
        self.aux_outputs: list[torch.Tensor] = []

        def w(c: int) -> int:
            return max(1, c // width_div)

        if small_input:
            self.conv1 = BasicConv2d(in_channels, w(64), kernel_size=3, padding=1)
            self.maxpool1: nn.Module = nn.Identity()
        else:
            self.conv1 = BasicConv2d(in_channels, w(64), kernel_size=7, stride=2, padding=3)
            self.maxpool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.conv2 = BasicConv2d(w(64), w(64), kernel_size=1)
        self.conv3 = BasicConv2d(w(64), w(192), kernel_size=3, padding=1)
        self.maxpool2: nn.Module = nn.Identity() if small_input else nn.MaxPool2d(3, stride=2, ceil_mode=True)

        channels = w(192)
        for name, widths in INCEPTION_WIDTHS.items():
            module = Inception(channels, *(w(c) for c in widths), branch3_kernel=5 if branch3_5x5 else 3)
            self.add_module(f"inception{name}", module)
            channels = module.out_channels
            if name == "3b":
                self.maxpool3 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
            elif name == "4e":
                self.maxpool4 = nn.MaxPool2d(2, stride=2, ceil_mode=True)

        self.aux1: InceptionAux | None = None
        self.aux2: InceptionAux | None = None
        if aux_logits:
            kw = {"width": w(128), "hidden": w(1024), "dropout": dropout_aux}
            self.aux1 = InceptionAux(self.inception4a.out_channels, num_classes, **kw)
            self.aux2 = InceptionAux(self.inception4d.out_channels, num_classes, **kw)

        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(p=dropout)
        self.num_features = channels
        self.fc = nn.Linear(channels, num_classes)
        self.cam_layer = "inception5b"
        self.min_size = next(s for s in range(1, 1025) if self._final_side(s) >= 1)
        self._init_weights()

    def _final_side(self, side: int) -> int:
        """The side of the 5b feature map for an input side (0: too small for the poolings)."""
        if not self.small_input:
            side = (side - 1) // 2 + 1  # conv1: 7x7, stride 2, padding 3
            side = _pool_side(_pool_side(side, 3, 2), 3, 2)  # maxpool1, maxpool2
        return _pool_side(_pool_side(side, 3, 2), 2, 2)  # maxpool3, maxpool4

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.trunc_normal_(m.weight, mean=0.0, std=0.01, a=-2, b=2)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def _transform_input(self, x: torch.Tensor) -> torch.Tensor:
        """ImageNet-normalised (x - mean) / std  ->  the (x - 0.5) / 0.5 scaling of the original weights."""
        mean = x.new_tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
        std = x.new_tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
        return x * (std / 0.5) + (mean - 0.5) / 0.5

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The inception-5b feature map: (B, 1024, 7, 7) for 224-pixel inputs.

        In training mode with auxiliary heads, also sets ``self.aux_outputs`` (else to ``[]``).
        """
        check_image_input(self, x, self.in_channels, min_size=self.min_size)
        if self.transform_input:
            x = self._transform_input(x)
        aux = self.training and self.aux1 is not None
        self.aux_outputs = []
        x = self.maxpool1(self.conv1(x))  # (B, 64, 56, 56)
        x = self.maxpool2(self.conv3(self.conv2(x)))  # (B, 192, 28, 28)
        x = self.maxpool3(self.inception3b(self.inception3a(x)))  # (B, 480, 14, 14)
        x = self.inception4a(x)  # (B, 512, 14, 14)
        if aux:
            self.aux_outputs.append(self.aux1(x))
        x = self.inception4d(self.inception4c(self.inception4b(x)))  # (B, 528, 14, 14)
        if aux:
            self.aux_outputs.append(self.aux2(x))
        x = self.maxpool4(self.inception4e(x))  # (B, 832, 7, 7)
        return self.inception5b(self.inception5a(x))  # (B, 1024, 7, 7)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """Global average pooling, dropout, classifier: (B, 1024, H, W) -> (B, num_classes)."""
        return self.fc(self.dropout(torch.flatten(self.avgpool(features), 1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))  # (B, num_classes)

    def aux_loss(self, y: torch.Tensor) -> torch.Tensor:
        """``aux_loss_weight * sum_i CE(aux_i, y)`` over the last forward's auxiliary logits.

        Zero (a scalar) when there are none: no auxiliary heads, or the last forward ran in eval mode.
        """
        if not self.aux_outputs:
            return self.fc.weight.new_zeros(())
        return self.aux_loss_weight * sum(F.cross_entropy(a.float(), y) for a in self.aux_outputs)

    def get_classifier(self) -> nn.Module:
        return self.fc

    def reset_classifier(self, num_classes: int) -> None:
        """A fresh ``fc`` with ``num_classes`` outputs (the auxiliary heads, if any, are replaced too)."""
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        device = self.fc.weight.device
        self.fc = nn.Linear(self.num_features, num_classes, device=device)
        nn.init.trunc_normal_(self.fc.weight, mean=0.0, std=0.01, a=-2, b=2)
        for aux in (self.aux1, self.aux2):
            if aux is not None:
                aux.fc2 = nn.Linear(aux.fc2.in_features, num_classes, device=device)
                nn.init.trunc_normal_(aux.fc2.weight, mean=0.0, std=0.01, a=-2, b=2)
        self.num_classes = num_classes
        if dataclasses.is_dataclass(getattr(self, "config", None)):
            self.config = dataclasses.replace(self.config, num_classes=num_classes)

    def __getstate__(self) -> dict[str, Any]:
        # The stored auxiliary logits belong to an autograd graph: copies and pickles drop them.
        state = super().__getstate__()
        state["aux_outputs"] = []
        return state


# ----------------------------------------------------------------------------------------------
# registered variants


def _googlenet(cfg: GoogLeNetConfig) -> GoogLeNet:
    return GoogLeNet(
        cfg.in_channels,
        cfg.num_classes,
        aux_logits=cfg.aux_logits,
        aux_loss_weight=cfg.aux_loss_weight,
        transform_input=cfg.transform_input,
        dropout=cfg.dropout,
        dropout_aux=cfg.dropout_aux,
        small_input=cfg.small_input,
        width_div=cfg.width_div,
        branch3_5x5=cfg.branch3_5x5,
    )


@register_model("googlenet", family="cnn", config=GoogLeNetConfig)
def googlenet(cfg: GoogLeNetConfig) -> GoogLeNet:
    """GoogLeNet / Inception v1 (Szegedy et al. 2015) with BN; torchvision layout, 6.6M params (13.0M with aux)."""
    return _googlenet(cfg)


@register_model(
    "googlenet_cifar", family="cnn", config=GoogLeNetConfig, small_input=True, image_size=32, num_classes=10
)
def googlenet_cifar(cfg: GoogLeNetConfig) -> GoogLeNet:
    """GoogLeNet with a 3x3 stride-1 stem and no stem pooling, for 28/32-pixel images."""
    return _googlenet(cfg)
