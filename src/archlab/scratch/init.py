"""Weight initialisation, and the default random generator of the scratch engine.

Each initialiser is ``fn(shape, rng=None, ..., dtype=np.float64) -> np.ndarray``; ``rng`` is a
``np.random.Generator`` (or an int seed); None draws from the engine's default generator, which
:func:`manual_seed` resets.

Fans are computed as PyTorch does (``torch.nn.init._calculate_fan_in_and_fan_out``): for a
weight of shape (out, in, *kernel) the receptive field is ``prod(kernel)`` and

    fan_in  = in  * prod(kernel)        fan_out = out * prod(kernel)

Xavier / Glorot — X. Glorot, Y. Bengio, "Understanding the difficulty of training deep
feedforward neural networks", AISTATS 2010. Keeps the variance of activations *and* gradients
constant for linear (or tanh-near-0) units, Var(W) = 2 / (fan_in + fan_out):

    xavier_uniform:  W ~ U(-a, a),  a = gain * sqrt(6 / (fan_in + fan_out))
    xavier_normal:   W ~ N(0, std^2), std = gain * sqrt(2 / (fan_in + fan_out))

Kaiming / He — K. He, X. Zhang, S. Ren, J. Sun, "Delving Deep into Rectifiers: Surpassing
Human-Level Performance on ImageNet Classification", ICCV 2015. A ReLU zeroes half its inputs,
so Var(W) = 2 / fan_in keeps the forward variance constant; in general std = gain / sqrt(fan):

    kaiming_uniform: W ~ U(-b, b),  b = gain * sqrt(3 / fan)
    kaiming_normal:  W ~ N(0, std^2), std = gain / sqrt(fan)

Gains (``calculate_gain``, as in PyTorch): linear / conv / sigmoid 1, tanh 5/3, relu sqrt(2),
leaky_relu sqrt(2 / (1 + slope^2)), selu 3/4.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

__all__ = [
    "calculate_gain",
    "default_rng",
    "fans",
    "get_initializer",
    "kaiming_normal",
    "kaiming_uniform",
    "manual_seed",
    "normal",
    "ones",
    "torch_default",
    "uniform",
    "xavier_normal",
    "xavier_uniform",
    "zeros",
]

RngLike = np.random.Generator | int | None

_DEFAULT_RNG = np.random.default_rng()


def manual_seed(seed: int) -> np.random.Generator:
    """Reset the engine's default generator (used when a layer or dropout gets ``rng=None``)."""
    global _DEFAULT_RNG
    _DEFAULT_RNG = np.random.default_rng(seed)
    return _DEFAULT_RNG


def default_rng(rng: RngLike = None) -> np.random.Generator:
    """``rng`` as a Generator: itself, a new one seeded with an int, or the engine's default."""
    if rng is None:
        return _DEFAULT_RNG
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, (int, np.integer)):
        return np.random.default_rng(int(rng))
    raise TypeError(f"rng must be a numpy Generator, an int seed or None, got {type(rng).__name__}")


def fans(shape: Sequence[int]) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a weight of shape (out, in, *kernel), as PyTorch computes them."""
    shape = tuple(shape)
    if len(shape) < 2:
        raise ValueError(f"fan in and fan out need a weight with at least 2 dimensions, got shape {shape}")
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The recommended gain for ``nonlinearity`` (PyTorch's ``calculate_gain``).

    Args:
        nonlinearity: linear, conv2d, sigmoid, tanh, relu, leaky_relu or selu.
        param: the negative slope of leaky_relu (default 0.01).
    """
    if nonlinearity in ("linear", "identity", "conv1d", "conv2d", "conv3d", "sigmoid"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3.0
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4.0
    raise ValueError(f"unknown nonlinearity {nonlinearity!r}; choose linear, sigmoid, tanh, relu, leaky_relu or selu")


def zeros(shape: Sequence[int], rng: RngLike = None, *, dtype: Any = np.float64) -> np.ndarray:
    """All zeros (``rng`` is accepted for a uniform signature and ignored)."""
    return np.zeros(tuple(shape), dtype=dtype)


def ones(shape: Sequence[int], rng: RngLike = None, *, dtype: Any = np.float64) -> np.ndarray:
    """All ones."""
    return np.ones(tuple(shape), dtype=dtype)


def uniform(shape: Sequence[int], rng: RngLike = None, low: float = 0.0, high: float = 1.0, *, dtype: Any = np.float64) -> np.ndarray:
    """``U(low, high)``."""
    return default_rng(rng).uniform(low, high, size=tuple(shape)).astype(dtype, copy=False)


def normal(shape: Sequence[int], rng: RngLike = None, mean: float = 0.0, std: float = 1.0, *, dtype: Any = np.float64) -> np.ndarray:
    """``N(mean, std^2)``."""
    return default_rng(rng).normal(mean, std, size=tuple(shape)).astype(dtype, copy=False)


def xavier_uniform(shape: Sequence[int], rng: RngLike = None, gain: float = 1.0, *, dtype: Any = np.float64) -> np.ndarray:
    """Glorot & Bengio (2010): ``U(-a, a)``, ``a = gain sqrt(6 / (fan_in + fan_out))``."""
    fan_in, fan_out = fans(shape)
    a = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform(shape, rng, -a, a, dtype=dtype)


def xavier_normal(shape: Sequence[int], rng: RngLike = None, gain: float = 1.0, *, dtype: Any = np.float64) -> np.ndarray:
    """Glorot & Bengio (2010): ``N(0, std^2)``, ``std = gain sqrt(2 / (fan_in + fan_out))``."""
    fan_in, fan_out = fans(shape)
    return normal(shape, rng, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), dtype=dtype)


def _kaiming_std(shape: Sequence[int], a: float, mode: str, nonlinearity: str) -> float:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = fans(shape)
    fan = fan_in if mode == "fan_in" else fan_out
    return calculate_gain(nonlinearity, a) / math.sqrt(fan)


def kaiming_uniform(
    shape: Sequence[int],
    rng: RngLike = None,
    a: float = 0.0,
    mode: str = "fan_in",
    nonlinearity: str = "relu",
    *,
    dtype: Any = np.float64,
) -> np.ndarray:
    """He et al. (2015): ``U(-b, b)``, ``b = gain sqrt(3 / fan)``.

    Args:
        shape: weight shape (out, in, *kernel).
        rng: generator or seed.
        a: negative slope when ``nonlinearity="leaky_relu"``.
        mode: ``"fan_in"`` preserves the forward variance, ``"fan_out"`` the backward one.
        nonlinearity: the activation that follows (sets the gain).
        dtype: dtype of the result.
    """
    bound = math.sqrt(3.0) * _kaiming_std(shape, a, mode, nonlinearity)
    return uniform(shape, rng, -bound, bound, dtype=dtype)


def kaiming_normal(
    shape: Sequence[int],
    rng: RngLike = None,
    a: float = 0.0,
    mode: str = "fan_in",
    nonlinearity: str = "relu",
    *,
    dtype: Any = np.float64,
) -> np.ndarray:
    """He et al. (2015): ``N(0, std^2)``, ``std = gain / sqrt(fan)`` (arguments as kaiming_uniform)."""
    return normal(shape, rng, 0.0, _kaiming_std(shape, a, mode, nonlinearity), dtype=dtype)


def torch_default(shape: Sequence[int], rng: RngLike = None, *, dtype: Any = np.float64) -> np.ndarray:
    """PyTorch's default for Linear/Conv weights: kaiming_uniform with a = sqrt(5), i.e.
    ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``."""
    bound = 1.0 / math.sqrt(fans(shape)[0])
    return uniform(shape, rng, -bound, bound, dtype=dtype)


_INITIALIZERS: dict[str, Callable[..., np.ndarray]] = {
    "kaiming_uniform": kaiming_uniform,
    "kaiming_normal": kaiming_normal,
    "xavier_uniform": xavier_uniform,
    "xavier_normal": xavier_normal,
    "default": torch_default,
    "zeros": zeros,
}


def get_initializer(name: str | Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
    """The initialiser called ``name`` (a callable is returned as is).

    Names: kaiming_uniform, kaiming_normal (ReLU gain), xavier_uniform, xavier_normal,
    default (PyTorch's Linear/Conv init), zeros.
    """
    if callable(name):
        return name
    try:
        return _INITIALIZERS[name]
    except KeyError:
        raise ValueError(f"unknown init {name!r}; choose one of {', '.join(_INITIALIZERS)} or pass a function") from None
