"""Classic models built from the scratch engine (NumPy only), registered as family ``scratch``.

    scratch_perceptron   Rosenblatt's perceptron: step activation, trained by the perceptron rule
    scratch_mlp          multi-layer perceptron, trained by backpropagation (784-256-128-10 on MNIST)
    scratch_cnn          a small CNN: Conv-ReLU-MaxPool x2, Linear (im2col convolutions)
    scratch_rnn          a vanilla RNN that reads a sequence and predicts its next value

Perceptron (F. Rosenblatt, "The perceptron: a probabilistic model for information storage and
organization in the brain", Psychological Review 65(6), 1958). With one threshold unit per class,
scores ``s = W x + b`` and prediction ``y_hat = argmax_k s_k`` (for two classes this is the
binary unit ``step(w.x + b)`` with ``w = w_1 - w_0``); on a mistake the rule moves the weights

    w_t     <- w_t     + lr * x          (the true class)
    w_y_hat <- w_y_hat - lr * x          (the wrongly predicted class)

and does nothing on a correct answer. No gradient is involved: the model trains itself through
:meth:`ScratchPerceptron.rule_step`, which the scratch engine calls instead of backpropagation.
Novikoff (1962): on linearly separable data the rule stops making mistakes after finitely many
updates; on XOR it never does.

MLP (Rumelhart, Hinton & Williams, "Learning representations by back-propagating errors",
Nature 1986): ``h_l = act(BN(W_l h_{l-1} + b_l))``, dropout after each hidden layer, logits out.

Deviations from the papers:
    - The perceptron reads the input features directly (no fixed random association layer).
    - The MLP defaults to ReLU (``activation="sigmoid"`` is the paper's unit) and cross-entropy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np

from archlab.registry import register_model
from archlab.scratch import layers as L
from archlab.scratch.autograd import Tensor

__all__ = ["ScratchPerceptron", "ScratchMLP", "ScratchCNN", "ScratchRNN", "activation_layer"]

Activation = Literal["step", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "selu"]
Init = Literal["default", "xavier_uniform", "xavier_normal", "kaiming_uniform", "kaiming_normal"]


def activation_layer(name: str) -> L.Module:
    """The activation module called ``name``."""
    table = {"step": L.Step, "sigmoid": L.Sigmoid, "tanh": L.Tanh, "relu": L.ReLU, "leaky_relu": L.LeakyReLU,
             "elu": L.ELU, "selu": L.SELU}
    return table[name]()


def _flat(x: Tensor) -> Tensor:
    return x.reshape(x.shape[0], -1)  # (B, F)


# ----------------------------------------------------------------------------------------------
# perceptron


@dataclass
class ScratchPerceptronConfig:
    """Options of :class:`ScratchPerceptron`."""

    in_features: int = 2
    num_classes: int = 2

    TINY: ClassVar[dict[str, Any]] = {"in_features": 6, "num_classes": 3}


class ScratchPerceptron(L.Module):
    """Rosenblatt's perceptron with one unit per class; ``forward`` returns the scores (B, K)."""

    trains_by_rule = True

    def __init__(self, in_features: int, num_classes: int = 2) -> None:
        super().__init__()
        self.weight = L.Parameter(np.zeros((num_classes, in_features)))
        self.bias = L.Parameter(np.zeros(num_classes))

    def forward(self, x: Tensor) -> Tensor:
        return _flat(x) @ self.weight.T + self.bias  # (B, K)

    def rule_step(self, x: np.ndarray, y: np.ndarray, lr: float) -> int:
        """One pass of the perceptron rule over the rows of ``x`` in order; returns the mistakes."""
        x = x.reshape(len(x), -1)
        w, b = self.weight.data, self.bias.data
        mistakes = 0
        for xi, ti in zip(x, y):
            pred = int(np.argmax(w @ xi + b))
            if pred != ti:
                w[ti] += lr * xi
                b[ti] += lr
                w[pred] -= lr * xi
                b[pred] -= lr
                mistakes += 1
        return mistakes


@register_model("scratch_perceptron", family="scratch", config=ScratchPerceptronConfig)
def scratch_perceptron(cfg: ScratchPerceptronConfig) -> ScratchPerceptron:
    """Rosenblatt's perceptron in NumPy, trained by the perceptron rule (no gradients)."""
    return ScratchPerceptron(cfg.in_features, cfg.num_classes)


# ----------------------------------------------------------------------------------------------
# MLP


@dataclass
class ScratchMLPConfig:
    """Options of :class:`ScratchMLP`."""

    in_features: int = 784
    num_classes: int = 10
    hidden_dims: tuple[int, ...] = (256, 128)
    activation: Activation = "relu"
    init: Init = "kaiming_uniform"
    batch_norm: bool = False
    dropout: float = 0.0
    seed: int = 0

    TINY: ClassVar[dict[str, Any]] = {"in_features": 12, "num_classes": 3, "hidden_dims": (16,)}


class ScratchMLP(L.Module):
    """MLP classifier: flatten, [Linear, (BatchNorm), act, (Dropout)] per hidden layer, Linear."""

    def __init__(self, cfg: ScratchMLPConfig) -> None:
        super().__init__()
        rng = np.random.default_rng(cfg.seed)
        init = "kaiming_uniform" if cfg.init == "default" else cfg.init
        blocks: list[L.Module] = []
        width = cfg.in_features
        for h in cfg.hidden_dims:
            blocks.append(L.Linear(width, h, init=init, rng=rng))
            if cfg.batch_norm:
                blocks.append(L.BatchNorm1d(h))
            blocks.append(activation_layer(cfg.activation))
            if cfg.dropout > 0:
                blocks.append(L.Dropout(cfg.dropout))
            width = h
        blocks.append(L.Linear(width, cfg.num_classes, init=init, rng=rng))
        self.net = L.Sequential(*blocks)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(_flat(x))  # (B, K)


@register_model("scratch_mlp", family="scratch", config=ScratchMLPConfig)
def scratch_mlp(cfg: ScratchMLPConfig) -> ScratchMLP:
    """MLP in NumPy with autograd backpropagation (784-256-128-10 by default)."""
    return ScratchMLP(cfg)


# ----------------------------------------------------------------------------------------------
# CNN


@dataclass
class ScratchCNNConfig:
    """Options of :class:`ScratchCNN`."""

    in_channels: int = 1
    num_classes: int = 10
    image_size: int = 28
    channels: tuple[int, int] = (16, 32)
    seed: int = 0

    TINY: ClassVar[dict[str, Any]] = {"image_size": 8, "num_classes": 3, "channels": (4, 8)}


class ScratchCNN(L.Module):
    """Conv3x3(pad 1)-ReLU-MaxPool2 twice, then Linear: (B, C, H, W) -> (B, K).

    Inputs smaller than 16x16 (e.g. 8x8 digits) keep their size through the second block
    (its pooling is skipped) so the classifier always sees at least 2x2 maps.
    """

    def __init__(self, cfg: ScratchCNNConfig) -> None:
        super().__init__()
        rng = np.random.default_rng(cfg.seed)
        c1, c2 = cfg.channels
        second_pool = cfg.image_size >= 16
        self.features = L.Sequential(
            L.Conv2d(cfg.in_channels, c1, 3, padding=1, rng=rng), L.ReLU(), L.MaxPool2d(2),
            L.Conv2d(c1, c2, 3, padding=1, rng=rng), L.ReLU(), L.MaxPool2d(2) if second_pool else L.Identity(),
        )
        side = cfg.image_size // 2 // (2 if second_pool else 1)
        self.classifier = L.Linear(c2 * side * side, cfg.num_classes, rng=rng)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(_flat(self.features(x)))  # (B, K)


@register_model("scratch_cnn", family="scratch", config=ScratchCNNConfig)
def scratch_cnn(cfg: ScratchCNNConfig) -> ScratchCNN:
    """A small CNN in NumPy: im2col convolutions, max pooling, backpropagation."""
    return ScratchCNN(cfg)


# ----------------------------------------------------------------------------------------------
# RNN


@dataclass
class ScratchRNNConfig:
    """Options of :class:`ScratchRNN`."""

    input_size: int = 1
    hidden_size: int = 32
    output_size: int = 1
    seed: int = 0

    TINY: ClassVar[dict[str, Any]] = {"hidden_size": 8}


class ScratchRNN(L.Module):
    """Elman RNN over (B, T, input_size) and a linear read-out of every step: (B, T, output_size).

    Trained by backpropagation through time: the unrolled loop is one autograd graph.
    """

    task = "sequence_regression"

    def __init__(self, cfg: ScratchRNNConfig) -> None:
        super().__init__()
        rng = np.random.default_rng(cfg.seed)
        self.rnn = L.RNN(cfg.input_size, cfg.hidden_size, rng=rng)
        self.head = L.Linear(cfg.hidden_size, cfg.output_size, rng=rng)

    def forward(self, x: Tensor) -> Tensor:
        out, _ = self.rnn(x)  # (B, T, H)
        b, t, h = out.shape
        return self.head(out.reshape(b * t, h)).reshape(b, t, -1)  # (B, T, output_size)


@register_model("scratch_rnn", family="scratch", config=ScratchRNNConfig)
def scratch_rnn(cfg: ScratchRNNConfig) -> ScratchRNN:
    """A vanilla RNN in NumPy, trained by backpropagation through time to predict a sequence."""
    return ScratchRNN(cfg)
