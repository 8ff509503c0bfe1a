"""Layers for the scratch engine: :class:`Module`, :class:`Parameter` and the classic layers.

The API mirrors ``torch.nn`` closely enough that weights copy across by name: a module's
attributes that are :class:`Parameter`s or :class:`Module`s are registered in assignment order,
``named_parameters()`` and ``state_dict()`` produce the same dotted names as PyTorch
(``0.weight``, ``bn.running_var``, ``weight_ih_l0``...), and every layer's parameters have
PyTorch's shapes (Linear weight (out, in), Conv2d weight (O, C, kh, kw)).

Layers
    Linear       y = x W^T + b                                  (Rosenblatt 1958; Rumelhart et al. 1986)
    Conv2d       cross-correlation by im2col                    (LeCun et al. 1989)
    MaxPool2d, AvgPool2d
    BatchNorm1d/2d  y = gamma (x - mu) / sqrt(var + eps) + beta  (Ioffe & Szegedy 2015)
    Dropout      inverted dropout                               (Srivastava et al. 2014)
    Embedding    row lookup
    RNN          h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)   (Elman 1990)

The RNN is unrolled over time in the autograd graph, so ``loss.backward()`` *is*
backpropagation through time (Werbos 1990): the gradient reaching h_t is the sum of the one from
the output at t and the one flowing back from h_{t+1} through W_hh.

Differences from torch.nn:
    - ``RNN`` is one layer (no ``num_layers``, ``dropout`` or ``bidirectional``) and returns
      h_T as (B, H), PyTorch's ``h_n[0]``.
    - ``Linear``/``Conv2d`` default to ``init="kaiming_uniform"`` (He et al. with the ReLU gain,
      zero bias); ``init="default"`` is PyTorch's own scheme.
    - ``Softmax(axis)`` and ``Flatten(start_axis)`` take NumPy-style argument names.
    - ``Module.astype(dtype)`` replaces ``.to(dtype)``; there are no devices.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import numpy as np

from archlab.scratch import functional as F
from archlab.scratch import init as init_
from archlab.scratch.autograd import Tensor, stack
from archlab.scratch.init import RngLike

__all__ = [
    "ELU",
    "GELU",
    "RNN",
    "SELU",
    "AvgPool2d",
    "BatchNorm1d",
    "BatchNorm2d",
    "Conv2d",
    "Dropout",
    "Embedding",
    "Flatten",
    "Identity",
    "LeakyReLU",
    "Linear",
    "LogSoftmax",
    "MaxPool2d",
    "Module",
    "Parameter",
    "ReLU",
    "Sequential",
    "Sigmoid",
    "Softmax",
    "Step",
    "Tanh",
]


class Parameter(Tensor):
    """A :class:`Tensor` that a :class:`Module` registers as trainable (``requires_grad=True``)."""

    def __init__(self, data: Any, requires_grad: bool = True, *, name: str | None = None) -> None:
        super().__init__(data, requires_grad, name=name)

    def __repr__(self) -> str:
        return "Parameter" + super().__repr__()[len("Tensor") :]


class IncompatibleKeys(NamedTuple):
    """What :meth:`Module.load_state_dict` could not match (with ``strict=False``)."""

    missing_keys: list[str]
    unexpected_keys: list[str]


# ----------------------------------------------------------------------------------------------
# Module


class Module:
    """Base class of every layer and model.

    Assigning a :class:`Parameter` or a :class:`Module` to an attribute registers it (in
    assignment order); :meth:`register_buffer` registers a non-trainable array (e.g. running
    statistics) that is saved in the state dict. Subclasses call ``super().__init__()`` first
    and define ``forward``; calling the module calls ``forward``.
    """

    training: bool

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_modules", {})
        object.__setattr__(self, "_buffers", {})
        object.__setattr__(self, "training", True)

    def __setattr__(self, name: str, value: Any) -> None:
        params = self.__dict__.get("_parameters")
        if params is None:
            raise AttributeError(f"{type(self).__name__}: call super().__init__() before assigning attributes")
        params.pop(name, None)
        self._modules.pop(name, None)
        if isinstance(value, Parameter):
            params[name] = value
            if value.name is None:
                value.name = name
        elif isinstance(value, Module):
            self._modules[name] = value
        elif name in self._buffers:
            if value is not None and not isinstance(value, np.ndarray):
                raise TypeError(f"buffer {name!r} must be a numpy array or None, got {type(value).__name__}")
            self._buffers[name] = value
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        for registry in (self._parameters, self._modules, self._buffers):
            registry.pop(name, None)
        object.__delattr__(self, name)

    def register_buffer(self, name: str, array: np.ndarray | None) -> None:
        """Register ``array`` as a buffer: saved in the state dict, not trained."""
        if array is not None and not isinstance(array, np.ndarray):
            raise TypeError(f"buffer {name!r} must be a numpy array or None, got {type(array).__name__}")
        self._buffers[name] = array
        object.__setattr__(self, name, array)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    # ---- traversal ------------------------------------------------------------------------------

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """``(dotted name, module)`` for this module (name ``prefix``) and every descendant."""
        seen: set[int] = set()
        stack = [(prefix, self)]
        while stack:
            name, mod = stack.pop()
            if id(mod) in seen:
                continue
            seen.add(id(mod))
            yield name, mod
            children = [(f"{name}.{k}" if name else k, m) for k, m in mod._modules.items()]
            stack.extend(reversed(children))

    def modules(self) -> Iterator[Module]:
        """This module and every descendant, depth first."""
        for _, m in self.named_modules():
            yield m

    def children(self) -> Iterator[Module]:
        """The direct sub-modules."""
        yield from self._modules.values()

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        """``(dotted name, parameter)``, each parameter once, in PyTorch's order."""
        seen: set[int] = set()
        for mod_name, mod in self.named_modules(prefix):
            for name, p in mod._parameters.items():
                if id(p) not in seen:
                    seen.add(id(p))
                    yield (f"{mod_name}.{name}" if mod_name else name), p

    def parameters(self) -> list[Parameter]:
        """Every parameter (a list, so it can be iterated more than once)."""
        return [p for _, p in self.named_parameters()]

    def named_buffers(self) -> Iterator[tuple[str, np.ndarray]]:
        for mod_name, mod in self.named_modules():
            for name, b in mod._buffers.items():
                if b is not None:
                    yield (f"{mod_name}.{name}" if mod_name else name), b

    def num_parameters(self, trainable_only: bool = False) -> int:
        """Total number of scalar parameters."""
        return sum(p.size for p in self.parameters() if p.requires_grad or not trainable_only)

    # ---- modes and gradients ----------------------------------------------------------------------

    def train(self, mode: bool = True) -> Module:
        """Training mode (batch statistics, dropout on) for this module and its descendants."""
        for m in self.modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self) -> Module:
        """Evaluation mode: ``train(False)``."""
        return self.train(False)

    def zero_grad(self) -> None:
        """Set every parameter's ``.grad`` to None."""
        for p in self.parameters():
            p.grad = None

    def requires_grad_(self, flag: bool = True) -> Module:
        """Freeze (False) or unfreeze (True) every parameter."""
        for p in self.parameters():
            p.requires_grad = flag
        return self

    def astype(self, dtype: Any) -> Module:
        """Cast every parameter and floating-point buffer to ``dtype`` (e.g. ``np.float32``)."""
        for m in self.modules():
            for p in m._parameters.values():
                p.data = p.data.astype(dtype)
                p.grad = None
            for name, b in list(m._buffers.items()):
                if b is not None and np.issubdtype(b.dtype, np.floating):
                    setattr(m, name, b.astype(dtype))
        return self

    def apply(self, fn: Callable[[Module], Any]) -> Module:
        """Call ``fn`` on every sub-module (children first) and on this module."""
        for m in reversed(list(self.modules())):
            fn(m)
        return self

    # ---- state ----------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of every parameter and buffer by dotted name (PyTorch's keys and order)."""
        state: dict[str, np.ndarray] = {}
        for mod_name, mod in self.named_modules():
            pre = f"{mod_name}." if mod_name else ""
            for name, p in mod._parameters.items():
                state[pre + name] = p.data.copy()
            for name, b in mod._buffers.items():
                if b is not None:
                    state[pre + name] = b.copy()
        return state

    def load_state_dict(self, state: dict[str, Any], strict: bool = True) -> IncompatibleKeys:
        """Copy values from ``state`` into the parameters and buffers (in place, keeping dtypes).

        Args:
            state: name -> array (anything ``np.asarray`` accepts, e.g. a torch tensor).
            strict: raise if a key is missing or unexpected.

        Returns:
            The missing and unexpected keys (both empty when strict).

        Raises:
            KeyError: with ``strict=True``, naming the missing and unexpected keys.
            ValueError: if a value's shape differs from the parameter's (always).
        """
        targets: dict[str, np.ndarray] = {}
        for mod_name, mod in self.named_modules():
            pre = f"{mod_name}." if mod_name else ""
            targets.update({pre + k: p.data for k, p in mod._parameters.items()})
            targets.update({pre + k: b for k, b in mod._buffers.items() if b is not None})
        missing = [k for k in targets if k not in state]
        unexpected = [k for k in state if k not in targets]
        if strict and (missing or unexpected):
            parts = []
            if missing:
                parts.append(f"missing keys: {', '.join(missing)}")
            if unexpected:
                parts.append(f"unexpected keys: {', '.join(unexpected)}")
            raise KeyError(
                f"load_state_dict into {type(self).__name__}: {'; '.join(parts)}. "
                f"Expected keys: {', '.join(targets)}. Pass strict=False to load the matching keys only."
            )
        mismatched = []
        for key, dest in targets.items():
            if key in state and np.shape(np.asarray(state[key])) != dest.shape:
                mismatched.append(f"{key}: checkpoint {tuple(np.shape(np.asarray(state[key])))} vs model {dest.shape}")
        if mismatched:
            raise ValueError(f"load_state_dict into {type(self).__name__}: shape mismatch for " + "; ".join(mismatched))
        for key, dest in targets.items():
            if key in state:
                np.copyto(dest, np.asarray(state[key]), casting="unsafe")
        return IncompatibleKeys(missing, unexpected)

    # ---- printing -------------------------------------------------------------------------------

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        if not self._modules:
            return f"{type(self).__name__}({self.extra_repr()})"
        lines = [f"{type(self).__name__}("]
        for name, m in self._modules.items():
            child = repr(m).replace("\n", "\n  ")
            lines.append(f"  ({name}): {child}")
        lines.append(")")
        return "\n".join(lines)


# ----------------------------------------------------------------------------------------------
# containers and shape layers


class Sequential(Module):
    """Apply ``modules`` in order; they are registered as ``"0"``, ``"1"``, ... (as in PyTorch)."""

    def __init__(self, *modules: Module) -> None:
        super().__init__()
        for i, m in enumerate(modules):
            if not isinstance(m, Module):
                raise TypeError(f"Sequential takes Modules, argument {i} is a {type(m).__name__}")
            setattr(self, str(i), m)

    def forward(self, x: Any) -> Any:
        for m in self._modules.values():
            x = m(x)
        return x

    def __getitem__(self, i: int) -> Module:
        return list(self._modules.values())[i]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def append(self, module: Module) -> Sequential:
        setattr(self, str(len(self)), module)
        return self


class Identity(Module):
    """Return the input unchanged."""

    def forward(self, x: Tensor) -> Tensor:
        return x


class Flatten(Module):
    """(B, d1, d2, ...) -> (B, d1*d2*...) for ``start_axis=1``."""

    def __init__(self, start_axis: int = 1) -> None:
        super().__init__()
        self.start_axis = start_axis

    def forward(self, x: Tensor) -> Tensor:
        return x.flatten(self.start_axis)

    def extra_repr(self) -> str:
        return f"start_axis={self.start_axis}"


# ----------------------------------------------------------------------------------------------
# linear and convolutional layers


def _init_weight(init: str | Callable[..., np.ndarray], shape: tuple[int, ...], rng: np.random.Generator, dtype: Any) -> np.ndarray:
    return np.asarray(init_.get_initializer(init)(shape, rng, dtype=dtype), dtype=dtype)


def _init_bias(init: str | Callable[..., np.ndarray], fan_in: int, size: int, rng: np.random.Generator, dtype: Any) -> np.ndarray:
    """PyTorch's U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with init="default"; zeros otherwise."""
    if init == "default":
        bound = 1.0 / np.sqrt(fan_in) if fan_in > 0 else 0.0
        return init_.uniform((size,), rng, -bound, bound, dtype=dtype)
    return np.zeros(size, dtype=dtype)


class Linear(Module):
    """Fully connected layer ``y = x W^T + b``.

    Args:
        in_features: size of each input sample.
        out_features: size of each output sample.
        bias: learn an additive bias.
        init: weight initialiser: "kaiming_uniform" (He et al. 2015, ReLU gain; bias 0),
            "kaiming_normal", "xavier_uniform", "xavier_normal" (Glorot & Bengio 2010; bias 0),
            "default" (PyTorch's: U(+-1/sqrt(in)) for weight and bias), "zeros", or a
            function ``(shape, rng, *, dtype) -> array``.
        rng: generator or seed (None: the engine's default generator).
        dtype: parameter dtype (``np.float32`` for speed).

    Shapes:
        x (..., in_features) -> (..., out_features). ``weight`` is (out_features, in_features).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        init: str | Callable[..., np.ndarray] = "kaiming_uniform",
        rng: RngLike = None,
        *,
        dtype: Any = np.float64,
    ) -> None:
        super().__init__()
        gen = init_.default_rng(rng)
        self.in_features, self.out_features = in_features, out_features
        self.weight = Parameter(_init_weight(init, (out_features, in_features), gen, dtype))
        self.bias = Parameter(_init_bias(init, in_features, out_features, gen, dtype)) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Conv2d(Module):
    """2-D convolution over (B, C, H, W) by im2col (see :func:`archlab.scratch.functional.conv2d`).

    Args:
        in_channels: C.
        out_channels: O.
        kernel_size: kh = kw, or (kh, kw).
        stride: window step.
        padding: zeros added on each side.
        bias: learn a bias per output channel.
        init: weight initialiser (as for :class:`Linear`; fans include the kernel area).
        rng: generator or seed.
        dtype: parameter dtype.

    Shapes:
        (B, C, H, W) -> (B, O, Ho, Wo). ``weight`` is (O, C, kh, kw).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] = 0,
        bias: bool = True,
        init: str | Callable[..., np.ndarray] = "kaiming_uniform",
        rng: RngLike = None,
        *,
        dtype: Any = np.float64,
    ) -> None:
        super().__init__()
        gen = init_.default_rng(rng)
        kh, kw = F._pair(kernel_size)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.padding = (kh, kw), F._pair(stride), F._pair(padding)
        self.weight = Parameter(_init_weight(init, (out_channels, in_channels, kh, kw), gen, dtype))
        self.bias = Parameter(_init_bias(init, in_channels * kh * kw, out_channels, gen, dtype)) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding}, bias={self.bias is not None}"
        )


class MaxPool2d(Module):
    """Max pooling; ``stride`` defaults to ``kernel_size``."""

    def __init__(self, kernel_size: int | tuple[int, int], stride: Any = None, padding: Any = 0) -> None:
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding

    def forward(self, x: Tensor) -> Tensor:
        return F.max_pool2d(x, self.kernel_size, self.stride, self.padding)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride or self.kernel_size}, padding={self.padding}"


class AvgPool2d(Module):
    """Average pooling; ``stride`` defaults to ``kernel_size``."""

    def __init__(
        self, kernel_size: int | tuple[int, int], stride: Any = None, padding: Any = 0, count_include_pad: bool = True
    ) -> None:
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.count_include_pad = count_include_pad

    def forward(self, x: Tensor) -> Tensor:
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding, self.count_include_pad)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride or self.kernel_size}, padding={self.padding}"


# ----------------------------------------------------------------------------------------------
# normalisation, dropout, embedding


class _BatchNorm(Module):
    """Shared code of BatchNorm1d/2d (PyTorch's semantics and state-dict keys)."""

    _dims: tuple[int, ...] = ()

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        *,
        dtype: Any = np.float64,
    ) -> None:
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        self.weight = Parameter(np.ones(num_features, dtype=dtype)) if affine else None
        self.bias = Parameter(np.zeros(num_features, dtype=dtype)) if affine else None
        if track_running_stats:
            self.register_buffer("running_mean", np.zeros(num_features, dtype=dtype))
            self.register_buffer("running_var", np.ones(num_features, dtype=dtype))
            self.register_buffer("num_batches_tracked", np.array(0, dtype=np.int64))
        else:
            self.running_mean = self.running_var = None

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim not in self._dims:
            raise ValueError(f"{type(self).__name__} expects input with {' or '.join(map(str, self._dims))} dimensions, got shape {x.shape}")
        if x.shape[1] != self.num_features:
            raise ValueError(f"{type(self).__name__}({self.num_features}) got {x.shape[1]} channels (input {x.shape})")
        momentum = self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked += 1
            if momentum is None:  # cumulative moving average of all batches so far
                momentum = 1.0 / int(self.num_batches_tracked)
        # Without running statistics, evaluation normalises with the batch statistics too.
        use_batch_stats = self.training or not self.track_running_stats
        return F.batch_norm(
            x,
            self.running_mean,
            self.running_var,
            self.weight,
            self.bias,
            training=use_batch_stats,
            momentum=momentum if momentum is not None else 0.0,
            eps=self.eps,
        )

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}"


class BatchNorm1d(_BatchNorm):
    """Batch normalisation over (B, C) or (B, C, L); statistics per feature C.

    Args:
        num_features: C.
        eps: added to the variance.
        momentum: weight of each new batch in the running statistics (None: cumulative average).
        affine: learn gamma (``weight``) and beta (``bias``).
        track_running_stats: keep running mean/var for evaluation (else always batch statistics).
        dtype: parameter dtype.
    """

    _dims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch normalisation over (B, C, H, W); statistics per channel (arguments as BatchNorm1d)."""

    _dims = (4,)


class Dropout(Module):
    """Inverted dropout with probability ``p`` in training mode; identity in evaluation mode.

    Args:
        p: drop probability.
        rng: generator or int seed for the masks (None: the engine's default generator).
    """

    def __init__(self, p: float = 0.5, rng: RngLike = None) -> None:
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability must be in [0, 1], got {p}")
        self.p = p
        self.rng = None if rng is None else init_.default_rng(rng)

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout(x, self.p, self.training, self.rng)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class Embedding(Module):
    """A table of ``num_embeddings`` vectors of size ``embedding_dim``, initialised N(0, 1).

    Shapes: integer indices (...) -> (..., embedding_dim).
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, rng: RngLike = None, *, dtype: Any = np.float64) -> None:
        super().__init__()
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.weight = Parameter(init_.normal((num_embeddings, embedding_dim), init_.default_rng(rng), dtype=dtype))

    def forward(self, indices: Any) -> Tensor:
        return F.embedding(indices, self.weight)

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}"


# ----------------------------------------------------------------------------------------------
# activations


class Step(Module):
    """Heaviside step 1[x >= 0] (zero gradient)."""

    def forward(self, x: Tensor) -> Tensor:
        return F.step(x)


class Sigmoid(Module):
    def forward(self, x: Tensor) -> Tensor:
        return F.sigmoid(x)


class Tanh(Module):
    def forward(self, x: Tensor) -> Tensor:
        return F.tanh(x)


class ReLU(Module):
    def forward(self, x: Tensor) -> Tensor:
        return F.relu(x)


class LeakyReLU(Module):
    def __init__(self, negative_slope: float = 0.01) -> None:
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, x: Tensor) -> Tensor:
        return F.leaky_relu(x, self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


class ELU(Module):
    def __init__(self, alpha: float = 1.0) -> None:
        super().__init__()
        self.alpha = alpha

    def forward(self, x: Tensor) -> Tensor:
        return F.elu(x, self.alpha)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}"


class SELU(Module):
    def forward(self, x: Tensor) -> Tensor:
        return F.selu(x)


class GELU(Module):
    def __init__(self, approximate: str = "none") -> None:
        super().__init__()
        self.approximate = approximate

    def forward(self, x: Tensor) -> Tensor:
        return F.gelu(x, self.approximate)


class Softmax(Module):
    def __init__(self, axis: int = -1) -> None:
        super().__init__()
        self.axis = axis

    def forward(self, x: Tensor) -> Tensor:
        return F.softmax(x, self.axis)

    def extra_repr(self) -> str:
        return f"axis={self.axis}"


class LogSoftmax(Softmax):
    def forward(self, x: Tensor) -> Tensor:
        return F.log_softmax(x, self.axis)


# ----------------------------------------------------------------------------------------------
# recurrent


class RNN(Module):
    """A single-layer Elman RNN, unrolled over time in the autograd graph.

        h_t = act(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh),   act = tanh or relu

    J. L. Elman, "Finding structure in time", Cognitive Science 14(2), 179-211, 1990.
    Parameter names, shapes and initialisation U(-1/sqrt(H), 1/sqrt(H)) are PyTorch's
    ``nn.RNN(num_layers=1)``, so weights copy across.

    Args:
        input_size: I.
        hidden_size: H.
        nonlinearity: "tanh" or "relu".
        batch_first: inputs and outputs are (B, T, .) (else (T, B, .)).
        bias: learn b_ih and b_hh.
        rng: generator or seed.
        dtype: parameter dtype.

    Shapes:
        forward(x (B, T, I), h0 (B, H) or None) -> (outputs (B, T, H), h_T (B, H)).
        (PyTorch's h_n is (1, B, H); h_T is ``h_n[0]``.)
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        nonlinearity: str = "tanh",
        batch_first: bool = True,
        bias: bool = True,
        rng: RngLike = None,
        *,
        dtype: Any = np.float64,
    ) -> None:
        super().__init__()
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        gen = init_.default_rng(rng)
        k = 1.0 / np.sqrt(hidden_size)
        self.input_size, self.hidden_size = input_size, hidden_size
        self.nonlinearity, self.batch_first = nonlinearity, batch_first
        self.weight_ih_l0 = Parameter(init_.uniform((hidden_size, input_size), gen, -k, k, dtype=dtype))
        self.weight_hh_l0 = Parameter(init_.uniform((hidden_size, hidden_size), gen, -k, k, dtype=dtype))
        self.bias_ih_l0 = Parameter(init_.uniform((hidden_size,), gen, -k, k, dtype=dtype)) if bias else None
        self.bias_hh_l0 = Parameter(init_.uniform((hidden_size,), gen, -k, k, dtype=dtype)) if bias else None

    def forward(self, x: Tensor, h0: Tensor | None = None) -> tuple[Tensor, Tensor]:
        if x.ndim != 3 or x.shape[-1] != self.input_size:
            layout = "(B, T, I)" if self.batch_first else "(T, B, I)"
            raise ValueError(f"RNN expects x of shape {layout} with I = {self.input_size}, got {x.shape}")
        if not self.batch_first:
            x = x.transpose(1, 0, 2)  # (B, T, I)
        b, t, _ = x.shape
        act = F.tanh if self.nonlinearity == "tanh" else F.relu
        # The input projection of every step at once: one matrix product instead of T.
        x_proj = F.linear(x, self.weight_ih_l0, self.bias_ih_l0)  # (B, T, H)
        if h0 is None:
            h = Tensor(np.zeros((b, self.hidden_size), dtype=x_proj.dtype))
        else:
            h = h0.reshape(b, self.hidden_size) if h0.ndim == 3 else h0  # (1, B, H) -> (B, H)
        outputs = []
        for step in range(t):
            h = act(x_proj[:, step] + F.linear(h, self.weight_hh_l0, self.bias_hh_l0))  # (B, H)
            outputs.append(h)
        out = stack(outputs, axis=1)  # (B, T, H)
        if not self.batch_first:
            out = out.transpose(1, 0, 2)  # (T, B, H)
        return out, h

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, nonlinearity={self.nonlinearity!r}, batch_first={self.batch_first}"
