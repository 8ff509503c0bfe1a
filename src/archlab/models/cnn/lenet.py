"""LeNet-5, as published.

Y. LeCun, L. Bottou, Y. Bengio, P. Haffner, "Gradient-based learning applied to document
recognition", Proceedings of the IEEE 86(11), 2278-2324, 1998.
https://doi.org/10.1109/5.726791 (http://yann.lecun.com/exdb/publis/pdf/lecun-98.pdf), Section II.B.

Seven layers on a 32x32 input, every unit squashed by ``f(a) = A tanh(S a)``, A = 1.7159, S = 2/3::

    C1  convolution   6 maps 28x28, 5x5 kernels                        156 params
    S2  subsampling   6 maps 14x14: f(alpha_k * sum_2x2(x_k) + beta_k)  12 params
    C3  convolution  16 maps 10x10, 5x5 kernels on the S2 maps of
                     Table I only (60 of 96 map pairs)                1,516 params
    S4  subsampling  16 maps 5x5                                        32 params
    C5  convolution 120 maps 1x1, 5x5 kernels (fully connected to S4)  48,120 params
    F6  full          84 units                                      10,164 params
    out Euclidean RBF, one unit per class with a fixed +-1 code w_i:
            y_i = sum_j (x_j - w_ij)^2                                      0 params
                                                                 total 60,000

A convolution computes ``a_j = b_j + sum_{i in T(j)} W_ji * x_i`` over its input maps T(j) (all of
them, except in C3); units are then squashed, ``x_j = f(a_j)``. Weights start uniform in
``[-2.4/F, 2.4/F]`` with F the unit's fan-in (Appendix C). The RBF outputs are penalties (small
is good); :class:`LeNet5` returns ``logits = -y``, so cross-entropy on them,
``E = y_t + log sum_i exp(-y_i)``, is the paper's discriminative criterion (Eq. 9) without the
constant "rubbish class" term ``exp(-j)``.

Input: the paper centred 28x28 MNIST digits in a 32x32 field. Here a 28x28 input is padded with
two zero rows/columns on each side; any other size that is not 32x32 (e.g. scikit-learn's 8x8
digits) is resized to 32x32 with bilinear interpolation inside ``forward``, so every input ends
in the same 120-unit C5 and the layer sizes above hold.

Deviations from the paper (each behind a flag; defaults in brackets):
    - ``output`` ["rbf"]: the paper's RBF codes are stylised 7x12 bitmaps of the ASCII characters,
      which exist only for the paper's character set; here each class gets a fixed pseudo-random
      +-1 code of 84 bits (seed 0, identical in every build, stored as a buffer). ``"linear"``
      replaces the RBF layer with a trainable linear layer (84*K + K params), as most modern
      re-implementations do.
    - ``activation`` ["scaled_tanh"]: ``tanh``, ``relu``... replace the squashing function.
    - ``pooling`` ["subsample"]: ``"avg"`` / ``"max"`` replace the trainable subsampling with
      parameter-free 2x2 pooling and no squashing after it.
    - ``c3_table`` [True]: ``False`` connects C3 to all six S2 maps (2,416 params).
    - ``init`` ["paper"]: ``"default"`` keeps PyTorch's initialisation (subsampling starts as a
      plain average).
    - Not reproduced: the paper trained with a stochastic diagonal Levenberg-Marquardt method
      and normalised pixels to background -0.1, foreground 1.175; training is the engine's
      business (Adam/SGD and mean/std normalisation by default). The paper's zero padding was
      the background colour; after mean/std normalisation zero is slightly brighter than it.

A modern LeNet: ``activation=relu pooling=max c3_table=false init=default output=linear``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import nn

from archlab.models.common import check_image_input, get_act_layer
from archlab.registry import register_model

__all__ = ["C3_TABLE", "LeNet5", "LeNet5Config", "PartialConv2d", "RBFOutput", "Subsampling", "paper_init_"]

# Table I of the paper: the S2 feature maps (rows) that each C3 feature map (columns) combines.
# Maps 0-5 take 3 contiguous maps, 6-11 take 4 contiguous, 12-14 take 4 discontinuous, 15 takes all.
C3_TABLE: tuple[tuple[int, ...], ...] = (
    (0, 1, 2), (1, 2, 3), (2, 3, 4), (3, 4, 5), (0, 4, 5), (0, 1, 5),
    (0, 1, 2, 3), (1, 2, 3, 4), (2, 3, 4, 5), (0, 3, 4, 5), (0, 1, 4, 5), (0, 1, 2, 5),
    (0, 1, 3, 4), (1, 2, 4, 5), (0, 2, 3, 5),
    (0, 1, 2, 3, 4, 5),
)  # fmt: skip


@dataclass
class LeNet5Config:
    """Options of :class:`LeNet5`; the defaults are the paper's network.

    Attributes:
        in_channels: input channels (1 for the paper's grey-level digits).
        num_classes: number of output units (10 digits).
        image_size: the data's image side; informational, since ``forward`` pads 28x28 inputs and
            resizes any other size to the 32x32 the architecture needs.
        activation: squashing function of every layer up to F6 (``scaled_tanh`` = 1.7159 tanh(2a/3)).
        pooling: ``subsample`` (trainable coefficient and bias per map, then the activation),
            ``avg`` or ``max`` (plain 2x2 pooling).
        c3_table: connect C3 to the S2 maps of Table I only (else to all six).
        output: ``rbf`` (fixed +-1 codes, logits = -squared distance) or ``linear``.
        init: ``paper`` (uniform +-2.4/fan_in) or ``default`` (PyTorch's).
    """

    in_channels: int = 1
    num_classes: int = 10
    image_size: int = 32
    activation: Literal["scaled_tanh", "tanh", "sigmoid", "relu", "leaky_relu", "elu", "gelu", "silu"] = (
        "scaled_tanh"
    )
    pooling: Literal["subsample", "avg", "max"] = "subsample"
    c3_table: bool = True
    output: Literal["rbf", "linear"] = "rbf"
    init: Literal["paper", "default"] = "paper"

    # Small sizes for the model walk in tests/models/test_all_models.py (8x8 gets resized).
    TINY: ClassVar[dict[str, Any]] = {"image_size": 8, "num_classes": 3}


# ----------------------------------------------------------------------------------------------
# layers


class PartialConv2d(nn.Module):
    """A convolution in which output map j sees only the input maps ``table[j]`` (C3 of LeNet-5).

    Only the connected kernels are parameters (``weight``: (connections, k, k)), so parameter
    counts and weight decay see exactly the paper's weights. ``forward`` scatters them into a
    dense (out, in, k, k) kernel whose unconnected entries are zero and runs one ``conv2d``.

    Args:
        in_channels: number of input maps.
        table: for each output map, the indices of the input maps it combines.
        kernel_size: square kernel side.
    """

    def __init__(self, in_channels: int, table: tuple[tuple[int, ...], ...], kernel_size: int = 5) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = len(table)
        self.kernel_size = kernel_size
        pairs = [(j, i) for j, inputs in enumerate(table) for i in sorted(inputs)]
        if any(not 0 <= i < in_channels for _, i in pairs):
            raise ValueError(f"table refers to input maps outside 0..{in_channels - 1}")
        # Row of each connection in the flattened (out * in) kernel grid.
        self.register_buffer("index", torch.tensor([j * in_channels + i for j, i in pairs]), persistent=False)
        # Fan-in of each output map (its inputs times k*k), for initialisation.
        self.register_buffer(
            "map_fan_in", torch.tensor([len(inputs) * kernel_size**2 for inputs in table]), persistent=False
        )
        self.weight = nn.Parameter(torch.empty(len(pairs), kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.empty(self.out_channels))
        self.reset_parameters()

    def connection_fan_in(self) -> torch.Tensor:
        """(connections,) fan-in of the output map each connection feeds."""
        return self.map_fan_in[self.index // self.in_channels]

    @torch.no_grad()
    def reset_parameters(self) -> None:
        # PyTorch's Conv2d default, U(-1/sqrt(fan_in), 1/sqrt(fan_in)), with each map's own fan-in.
        bound = self.connection_fan_in().float().rsqrt()  # (connections,)
        self.weight.uniform_(-1.0, 1.0).mul_(bound[:, None, None])
        self.bias.uniform_(-1.0, 1.0).mul_(self.map_fan_in.float().rsqrt())

    @property
    def mask(self) -> torch.Tensor:
        """(out, in) boolean connection table."""
        m = torch.zeros(self.out_channels * self.in_channels, dtype=torch.bool, device=self.weight.device)
        return m.index_fill_(0, self.index, True).view(self.out_channels, self.in_channels)

    def dense_weight(self) -> torch.Tensor:
        """The (out, in, k, k) kernel, zero where maps are not connected (for plots and checks)."""
        k = self.kernel_size
        dense = self.weight.new_zeros(self.out_channels * self.in_channels, k, k)
        dense = dense.index_copy(0, self.index, self.weight)  # (out * in, k, k)
        return dense.view(self.out_channels, self.in_channels, k, k)  # (out, in, k, k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.dense_weight(), self.bias)  # (B, out, H - k + 1, W - k + 1)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"connections={self.weight.shape[0]}"
        )


class Subsampling(nn.Module):
    """LeNet's trainable subsampling: ``y_k = act(alpha_k * sum_{2x2} x_k + beta_k)`` per map k.

    Non-overlapping 2x2 windows; one coefficient ``alpha_k`` and one bias ``beta_k`` per map.
    """

    def __init__(self, channels: int, act_layer: Callable[..., nn.Module] | None = None) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.full((channels,), 0.25))  # starts as an average
        self.bias = nn.Parameter(torch.zeros(channels))
        self.act = act_layer() if act_layer is not None else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = 4.0 * F.avg_pool2d(x, 2)  # (B, C, H/2, W/2): the sum of each 2x2 window
        return self.act(s * self.weight[:, None, None] + self.bias[:, None, None])


class RBFOutput(nn.Module):
    """Euclidean RBF units with fixed codes: ``logits_i = -sum_j (x_j - w_ij)^2``.

    The codes are +-1 vectors drawn once from a generator seeded with ``seed`` (so every build
    has the same ones) and kept as a buffer: the layer has no trainable parameters.
    """

    def __init__(self, in_features: int, num_classes: int, seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        codes = torch.randint(0, 2, (num_classes, in_features), generator=g).float() * 2 - 1
        self.register_buffer("codes", codes)  # (K, D)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        diff = x.unsqueeze(1) - self.codes  # (B, K, D)
        return -diff.pow(2).sum(-1)  # (B, K)

    def extra_repr(self) -> str:
        k, d = self.codes.shape
        return f"in_features={d}, num_classes={k}"


# ----------------------------------------------------------------------------------------------
# model


class LeNet5(nn.Module):
    """LeNet-5 (LeCun et al. 1998). See the module docstring for the layers and the flags.

    Args:
        in_channels: input channels.
        num_classes: number of classes.
        act_layer: the squashing function's class (``ScaledTanh`` in the paper).
        pooling: ``"subsample"``, ``"avg"`` or ``"max"``.
        c3_table: use Table I's partial connections in C3.
        output: ``"rbf"`` or ``"linear"``.
        init: ``"paper"`` or ``"default"``.

    Shapes:
        x: (B, in_channels, H, W), any H, W (28x28 is padded, other sizes resized to 32x32).
        Returns logits (B, num_classes).
    """

    input_size: ClassVar[int] = 32

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 10,
        *,
        act_layer: Callable[..., nn.Module] = nn.Tanh,
        pooling: str = "subsample",
        c3_table: bool = True,
        output: str = "rbf",
        init: str = "paper",
    ) -> None:
        super().__init__()

        def pool(channels: int) -> nn.Module:
            if pooling == "subsample":
                return Subsampling(channels, act_layer)
            if pooling == "avg":
                return nn.AvgPool2d(2)
            if pooling == "max":
                return nn.MaxPool2d(2)
            raise ValueError(f"pooling must be 'subsample', 'avg' or 'max', got {pooling!r}")

        self.c1 = nn.Conv2d(in_channels, 6, 5)
        self.act1 = act_layer()
        self.s2 = pool(6)
        self.c3 = PartialConv2d(6, C3_TABLE, 5) if c3_table else nn.Conv2d(6, 16, 5)
        self.act3 = act_layer()
        self.s4 = pool(16)
        self.c5 = nn.Conv2d(16, 120, 5)
        self.act5 = act_layer()
        self.f6 = nn.Linear(120, 84)
        self.act6 = act_layer()
        if output == "rbf":
            self.output = RBFOutput(84, num_classes)
        elif output == "linear":
            self.output = nn.Linear(84, num_classes)
        else:
            raise ValueError(f"output must be 'rbf' or 'linear', got {output!r}")
        if init == "paper":
            paper_init_(self)
        elif init != "default":
            raise ValueError(f"init must be 'paper' or 'default', got {init!r}")

    def fit_input(self, x: torch.Tensor) -> torch.Tensor:
        """Bring (B, C, H, W) images to 32x32: pad 28x28 by 2 zeros a side, resize anything else."""
        check_image_input(self, x, self.c1.in_channels)
        h, w = x.shape[-2:]
        if (h, w) == (28, 28):
            return F.pad(x, (2, 2, 2, 2))  # (B, C, 32, 32)
        if (h, w) != (32, 32):
            shrink = h > 32 or w > 32  # antialias only when shrinking
            return F.interpolate(x, size=(32, 32), mode="bilinear", align_corners=False, antialias=shrink)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.fit_input(x)  # (B, C, 32, 32)
        x = self.s2(self.act1(self.c1(x)))  # (B, 6, 14, 14)
        x = self.s4(self.act3(self.c3(x)))  # (B, 16, 5, 5)
        x = self.act5(self.c5(x)).flatten(1)  # (B, 120, 1, 1) -> (B, 120)
        x = self.act6(self.f6(x))  # (B, 84)
        return self.output(x)  # (B, num_classes)


@torch.no_grad()
def paper_init_(model: nn.Module) -> None:
    """Appendix C: every weight and bias uniform in [-2.4/F, 2.4/F], F the unit's fan-in."""
    for m in model.modules():
        if isinstance(m, PartialConv2d):
            # Each C3 map has its own fan-in: 75, 100 or 150.
            m.weight.uniform_(-1.0, 1.0).mul_(2.4 / m.connection_fan_in().float()[:, None, None])
            m.bias.uniform_(-1.0, 1.0).mul_(2.4 / m.map_fan_in.float())
        elif isinstance(m, (nn.Conv2d, nn.Linear)):
            fan_in = m.weight[0].numel()
            nn.init.uniform_(m.weight, -2.4 / fan_in, 2.4 / fan_in)
            if m.bias is not None:
                nn.init.uniform_(m.bias, -2.4 / fan_in, 2.4 / fan_in)
        elif isinstance(m, Subsampling):
            nn.init.uniform_(m.weight, -2.4 / 4, 2.4 / 4)  # a subsampling unit has 4 inputs
            nn.init.uniform_(m.bias, -2.4 / 4, 2.4 / 4)


# ----------------------------------------------------------------------------------------------
# registered variants


@register_model("lenet5", family="cnn", config=LeNet5Config)
def lenet5(cfg: LeNet5Config) -> LeNet5:
    """LeNet-5 (LeCun et al. 1998): scaled tanh, trainable subsampling, C3 table, RBF output."""
    return LeNet5(
        cfg.in_channels,
        cfg.num_classes,
        act_layer=get_act_layer(cfg.activation),
        pooling=cfg.pooling,
        c3_table=cfg.c3_table,
        output=cfg.output,
        init=cfg.init,
    )
