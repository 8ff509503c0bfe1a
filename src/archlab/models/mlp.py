"""The perceptron and the multi-layer perceptron (MLP).

Perceptron
    F. Rosenblatt, "The perceptron: a probabilistic model for information storage and
    organization in the brain", Psychological Review 65(6), 386-408, 1958.
    https://doi.org/10.1037/h0042519

    A threshold unit on a weighted sum of its inputs, ``y = step(w . x + b)``, trained by the
    error-correction rule ``w <- w + lr (t - y) x`` (t, y in {0, 1}). With one unit per class
    (the multi-class perceptron, Duda & Hart 1973) the scores and the decision are

        s = x W^T + b                 # (B, K)
        y_hat = argmax_k s_k

    and the rule ``W_t += lr x, W_yhat -= lr x`` whenever ``y_hat != t`` is stochastic gradient
    descent on the *perceptron criterion*

        L(x, t) = max_k s_k - s_t     (>= 0; zero once x is classified correctly)

    which is why the model declares ``preferred_loss = "perceptron"``: with ``train.loss=auto``
    the classification task trains it with that criterion and plain SGD reproduces the rule.

MLP
    D. E. Rumelhart, G. E. Hinton, R. J. Williams, "Learning representations by
    back-propagating errors", Nature 323, 533-536, 1986. https://doi.org/10.1038/323533a0

        h_0 = flatten(x)                                    # (B, F)
        h_l = dropout(act(norm(h_{l-1} W_l^T + b_l)))       # (B, hidden_dims[l-1])
        logits = h_L W_out^T + b_out                        # (B, num_classes)

Deviations from the papers:
    - Perceptron: Rosenblatt's machine had a fixed, randomly wired association layer between the
      retina and the trainable response units; here the trainable layer reads the input
      features directly (the "simple perceptron" of textbooks). One unit per class with argmax
      replaces the binary threshold unit; with 2 classes it is the binary perceptron with
      ``w = w_1 - w_0``. ``forward`` returns the scores; the step / argmax is applied by whoever
      reads them (the task's accuracy metric), so the same scores can also be trained with other
      losses. Weights start at zero (``init="zeros"``, the textbook choice; ``"default"`` uses
      PyTorch's random init).
    - MLP: the paper used logistic (sigmoid) units and a squared-error loss. The default here is
      ReLU (``activation="sigmoid"`` gives the paper's units); the loss is the task's choice
      (cross-entropy by default). Batch normalisation (Ioffe & Szegedy 2015) and dropout
      (Srivastava et al. 2014) are options, off by default.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
from torch import nn

from archlab.models.common import Activation, InitScheme, get_act_layer, init_linear_
from archlab.registry import register_model

__all__ = ["MLP", "MLPBlock", "MLPConfig", "Perceptron", "PerceptronConfig"]


# ----------------------------------------------------------------------------------------------
# configs


@dataclass
class PerceptronConfig:
    """Options of :class:`Perceptron`.

    Attributes:
        in_features: number of input features (images are flattened: C*H*W).
        num_classes: number of classes (2 or more); one score per class.
        bias: learn a bias (the threshold) per class.
        init: ``"zeros"`` (textbook perceptron) or ``"default"`` (PyTorch's random init).
    """

    in_features: int = 2
    num_classes: int = 2
    bias: bool = True
    init: Literal["zeros", "default"] = "zeros"

    # Small sizes for the model walk in tests/models/test_all_models.py.
    TINY: ClassVar[dict[str, Any]] = {"in_features": 12, "num_classes": 3}

    def __post_init__(self) -> None:
        if self.num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {self.num_classes}")
        if self.in_features < 1:
            raise ValueError(f"in_features must be >= 1, got {self.in_features}")


@dataclass
class MLPConfig:
    """Options of :class:`MLP`.

    Attributes:
        in_features: number of input features (images are flattened: C*H*W).
        num_classes: number of output logits.
        hidden_dims: width of each hidden layer; ``()`` gives a linear (softmax-regression) model.
        activation: nonlinearity after each hidden layer.
        init: weight initialisation (``default`` = PyTorch's; Xavier/Glorot 2010; Kaiming/He 2015).
        batch_norm: BatchNorm1d between each hidden linear layer and its activation.
        dropout: dropout probability after each hidden activation.
        bias: learn biases in the linear layers.
    """

    in_features: int = 784
    num_classes: int = 10
    hidden_dims: tuple[int, ...] = (128,)
    activation: Activation = "relu"
    init: InitScheme = "default"
    batch_norm: bool = False
    dropout: float = 0.0
    bias: bool = True

    TINY: ClassVar[dict[str, Any]] = {"in_features": 12, "num_classes": 3}

    def __post_init__(self) -> None:
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if any(d < 1 for d in self.hidden_dims):
            raise ValueError(f"hidden_dims must be positive, got {self.hidden_dims}")


# ----------------------------------------------------------------------------------------------
# models


class Perceptron(nn.Module):
    """Rosenblatt's perceptron, one unit per class: ``scores = flatten(x) W^T + b``.

    Args:
        in_features: input features per sample (after flattening).
        num_classes: number of classes (>= 2).
        bias: learn a per-class bias.
        init: ``"zeros"`` or ``"default"``.

    Shapes:
        x: (B, ...) with prod(...) == in_features. Returns scores (B, num_classes).
    """

    #: the perceptron criterion, ``max_k s_k - s_t`` (see the module docstring).
    preferred_loss: str = "perceptron"

    def __init__(
        self, in_features: int, num_classes: int = 2, *, bias: bool = True, init: str = "zeros"
    ) -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, num_classes, bias=bias)
        if init == "zeros":
            nn.init.zeros_(self.linear.weight)
            if self.linear.bias is not None:
                nn.init.zeros_(self.linear.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)  # (B, F)
        return self.linear(x)  # (B, K)


class MLPBlock(nn.Module):
    """Linear -> norm -> activation -> dropout."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        act_layer: Callable[..., nn.Module] = nn.ReLU,
        norm_layer: Callable[[int], nn.Module] | None = None,
        dropout: float = 0.0,
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, out_features, bias=bias)
        self.norm = norm_layer(out_features) if norm_layer is not None else nn.Identity()
        self.act = act_layer()
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.act(self.norm(self.linear(x))))


class MLP(nn.Module):
    """A multi-layer perceptron classifier; any input is flattened to (B, in_features).

    Args:
        in_features: input features per sample (after flattening).
        num_classes: number of output logits.
        hidden_dims: width of each hidden layer.
        act_layer: activation class, e.g. ``nn.ReLU``.
        norm_layer: normalisation class taking the width, e.g. ``nn.BatchNorm1d``, or None.
        dropout: dropout after each hidden activation.
        bias: learn biases.
        init: weight initialisation scheme (see :func:`archlab.models.common.init_linear_`).
    """

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        hidden_dims: Sequence[int] = (128,),
        *,
        act_layer: Callable[..., nn.Module] = nn.ReLU,
        norm_layer: Callable[[int], nn.Module] | None = None,
        dropout: float = 0.0,
        bias: bool = True,
        init: str = "default",
    ) -> None:
        super().__init__()
        dims = [in_features, *hidden_dims]
        self.blocks = nn.Sequential(
            *(
                MLPBlock(d_in, d_out, act_layer=act_layer, norm_layer=norm_layer, dropout=dropout, bias=bias)
                for d_in, d_out in itertools.pairwise(dims)
            )
        )
        self.head = nn.Linear(dims[-1], num_classes, bias=bias)
        init_linear_(self, init, act_layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)  # (B, F)
        x = self.blocks(x)  # (B, hidden_dims[-1])
        return self.head(x)  # (B, num_classes)


# ----------------------------------------------------------------------------------------------
# registered variants


def _mlp(cfg: MLPConfig) -> MLP:
    return MLP(
        cfg.in_features,
        cfg.num_classes,
        cfg.hidden_dims,
        act_layer=get_act_layer(cfg.activation),
        norm_layer=nn.BatchNorm1d if cfg.batch_norm else None,
        dropout=cfg.dropout,
        bias=cfg.bias,
        init=cfg.init,
    )


@register_model("perceptron", family="mlp", config=PerceptronConfig)
def perceptron(cfg: PerceptronConfig) -> Perceptron:
    """Rosenblatt's perceptron (1958): one linear layer, trained with the perceptron criterion."""
    return Perceptron(cfg.in_features, cfg.num_classes, bias=cfg.bias, init=cfg.init)


@register_model("mlp", family="mlp", config=MLPConfig, hidden_dims=(128,))
def mlp(cfg: MLPConfig) -> MLP:
    """MLP with one hidden layer of 128 units (Rumelhart, Hinton & Williams 1986)."""
    return _mlp(cfg)


@register_model("mlp_small", family="mlp", config=MLPConfig, hidden_dims=(64,))
def mlp_small(cfg: MLPConfig) -> MLP:
    """MLP with one hidden layer of 64 units."""
    return _mlp(cfg)


@register_model("mlp_deep", family="mlp", config=MLPConfig, hidden_dims=(256, 256, 256))
def mlp_deep(cfg: MLPConfig) -> MLP:
    """MLP with three hidden layers of 256 units."""
    return _mlp(cfg)


@register_model(
    "mlp_bn", family="mlp", config=MLPConfig, hidden_dims=(256, 256), batch_norm=True, dropout=0.2
)
def mlp_bn(cfg: MLPConfig) -> MLP:
    """MLP with two hidden layers of 256 units, batch normalisation and dropout 0.2."""
    return _mlp(cfg)
