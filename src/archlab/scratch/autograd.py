"""Reverse-mode automatic differentiation on NumPy arrays: the :class:`Tensor`.

A :class:`Tensor` wraps an ``np.ndarray``. Every operation on tensors returns a new tensor that
remembers its *parents* and the *name of the op* that made it, so an expression builds a
directed acyclic graph (a "tape"). ``loss.backward()`` walks that graph from the output back to
the leaves and applies the chain rule, one vector-Jacobian product (VJP) per node:

    for y = f(x_1, ..., x_n) and an upstream gradient g = dL/dy,
        dL/dx_i = g . (dy/dx_i)            (the VJP of f with respect to x_i)

    nodes are visited in reverse topological order (every consumer before its inputs), and the
    contributions of all consumers of a tensor are summed (the multivariate chain rule):
        dL/dx = sum_{y consumes x} VJP_y(dL/dy)

This is the algorithm of

    S. Linnainmaa, "The representation of the cumulative rounding error of an algorithm as a
    Taylor expansion of the local rounding errors", MSc thesis, Univ. Helsinki, 1970;
    D. E. Rumelhart, G. E. Hinton, R. J. Williams, "Learning representations by
    back-propagating errors", Nature 323, 533-536, 1986.

and of micrograd (A. Karpathy, 2020), generalised from scalars to arrays.

Broadcasting. NumPy broadcasts ``a + b`` when the shapes differ; an operand that was broadcast
was *used several times*, so its gradient is the upstream gradient summed over the broadcast
axes (:func:`unbroadcast`): leading axes that were added, and axes of size 1 that were stretched.

Dtypes. A tensor keeps the dtype it was given (a float32 array stays float32; Python scalars and
lists become float64). Python scalars in an expression take the tensor's dtype, and gradients
have the dtype of the data, so a float32 model stays float32 through the backward pass.

Semantics follow PyTorch where a choice exists, so that tests can compare the two on the same
numbers: ``max``/``min`` split the gradient evenly between tied maxima (``torch.amax``),
``maximum``/``minimum`` give half to each side of a tie, ``abs`` has gradient 0 at 0, and
``clip`` passes the gradient where ``min <= x <= max``. Only leaves (tensors created by the
user, e.g. parameters) keep ``.grad`` after ``backward``; call :meth:`Tensor.retain_grad` on an
intermediate tensor to keep its gradient too.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

__all__ = [
    "IndexedGrad",
    "Tensor",
    "concatenate",
    "is_grad_enabled",
    "maximum",
    "minimum",
    "no_grad",
    "record_op",
    "stack",
    "tensor",
    "unbroadcast",
    "where",
]

ArrayLike = Any  # np.ndarray, Python scalars and (nested) lists, NumPy scalars
Backward = Callable[[np.ndarray], Sequence[Any]]


# ----------------------------------------------------------------------------------------------
# grad mode


_GRAD_ENABLED = True


def is_grad_enabled() -> bool:
    """Whether new operations are recorded in the graph (False inside :class:`no_grad`)."""
    return _GRAD_ENABLED


class no_grad:  # noqa: N801 -- a context manager named like torch.no_grad
    """Context manager (and decorator) that stops recording operations.

    Results computed inside have ``requires_grad=False`` and no parents: use it for evaluation,
    for parameter updates in optimizers, and for finite differences.

    Example::

        with no_grad():
            logits = model(x)
    """

    def __enter__(self) -> no_grad:
        global _GRAD_ENABLED
        self._prev = _GRAD_ENABLED
        _GRAD_ENABLED = False
        return self

    def __exit__(self, *exc: object) -> None:
        global _GRAD_ENABLED
        _GRAD_ENABLED = self._prev

    def __call__(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with no_grad():
                return fn(*args, **kwargs)

        return wrapper


# ----------------------------------------------------------------------------------------------
# helpers


def unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum ``grad`` down to ``shape``: the adjoint of NumPy broadcasting.

    Args:
        grad: gradient with the broadcast (output) shape.
        shape: shape of the operand before broadcasting.

    Returns:
        ``grad`` summed over the leading axes that broadcasting added and over the axes where
        ``shape`` has size 1 but ``grad`` does not.
    """
    if grad.shape == shape:
        return grad
    lead = grad.ndim - len(shape)
    if lead > 0:
        grad = grad.sum(axis=tuple(range(lead)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    return grad


def _normalize_axes(axis: int | Sequence[int] | None, ndim: int) -> tuple[int, ...]:
    """``axis`` as a sorted tuple of non-negative axes (all axes for None)."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    out = []
    for a in axes:
        if not -ndim <= a < max(ndim, 1):
            raise ValueError(f"axis {a} is out of range for a tensor with {ndim} dimensions")
        out.append(int(a) % max(ndim, 1))
    return tuple(sorted(out))


def _expand_reduced(g: np.ndarray, axes: tuple[int, ...], keepdims: bool, shape: tuple[int, ...]) -> np.ndarray:
    """Broadcast the gradient of a reduction back to the input ``shape`` (a read-only view)."""
    if not keepdims and axes:
        g = np.expand_dims(g, axes)
    return np.broadcast_to(g, shape)


class IndexedGrad:
    """A gradient that is zero except at ``data[index]``, where it is ``value``.

    Backward functions of indexing ops return this instead of a dense array, so that slicing a
    tensor T times (an RNN reading step t of its input) costs O(slice) per step, not O(tensor).

    Args:
        index: a NumPy index (basic or advanced).
        value: the gradient of ``data[index]``.
        accumulate: use ``np.add.at`` (needed when an advanced index repeats an element).
    """

    __slots__ = ("accumulate", "index", "value")

    def __init__(self, index: Any, value: np.ndarray, accumulate: bool = False) -> None:
        self.index, self.value, self.accumulate = index, value, accumulate

    def add_to(self, buf: np.ndarray) -> None:
        """Add this gradient into the dense, writable array ``buf`` in place."""
        if self.accumulate:
            np.add.at(buf, self.index, self.value)
        else:
            buf[self.index] += self.value


# ----------------------------------------------------------------------------------------------
# the Tensor


class Tensor:
    """An n-dimensional array that records the operations applied to it.

    Args:
        data: the values; an ``np.ndarray`` keeps its dtype, Python scalars and lists become
            float64, another Tensor's data is shared.
        requires_grad: accumulate ``dL/d(this)`` into ``.grad`` when ``backward`` reaches it.
            Only floating-point tensors can require gradients.
        name: label used in error messages and graph drawings (:mod:`archlab.scratch.graph`).

    Attributes:
        data: the ``np.ndarray``.
        grad: gradient of the last ``backward`` (summed over calls), same shape and dtype, or None.
        requires_grad: whether gradients flow to this tensor.
        name: optional label.
    """

    __slots__ = ("__weakref__", "_backward", "_op", "_parents", "_retain", "data", "grad", "name", "requires_grad")

    # Make `ndarray + Tensor` call Tensor.__radd__ instead of NumPy broadcasting over the object.
    __array_ufunc__ = None

    def __init__(self, data: ArrayLike, requires_grad: bool = False, *, name: str | None = None) -> None:
        if isinstance(data, Tensor):
            data = data.data
        elif isinstance(data, np.ndarray):
            pass
        elif isinstance(data, np.generic):
            data = np.asarray(data)
        else:
            data = np.asarray(data, dtype=np.float64)
        if requires_grad and not np.issubdtype(data.dtype, np.floating):
            raise TypeError(
                f"only floating-point tensors can require gradients, got dtype {data.dtype}; "
                "convert first, e.g. Tensor(x.astype(np.float64), requires_grad=True)"
            )
        self.data: np.ndarray = data
        self.grad: np.ndarray | None = None
        self.requires_grad = bool(requires_grad)
        self.name = name
        self._parents: tuple[Tensor, ...] = ()
        self._op = ""
        self._backward: Backward | None = None
        self._retain = False

    # ---- array-like attributes ----------------------------------------------------------------

    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def size(self) -> int:
        """Number of elements (NumPy's meaning of ``size``)."""
        return self.data.size

    @property
    def T(self) -> Tensor:  # noqa: N802 -- NumPy's name
        """All axes reversed (NumPy's ``.T``)."""
        return self.transpose()

    @property
    def is_leaf(self) -> bool:
        """True for tensors not produced by a recorded op (inputs, parameters)."""
        return not self._parents

    @property
    def op(self) -> str:
        """Name of the op that produced this tensor ("" for leaves)."""
        return self._op

    @property
    def parents(self) -> tuple[Tensor, ...]:
        """The tensors this one was computed from (empty for leaves)."""
        return self._parents

    def __len__(self) -> int:
        return len(self.data)

    def __bool__(self) -> bool:
        return bool(self.data)  # NumPy's rule: only one-element tensors have a truth value

    def __float__(self) -> float:
        return float(self.item())

    def __repr__(self) -> str:
        body = np.array2string(self.data, precision=4, separator=", ", threshold=20, prefix="Tensor(")
        extra = [f"dtype={self.dtype}"] if self.dtype != np.float64 else []
        if self.requires_grad:
            extra.append("requires_grad=True")
        if self._op:
            extra.append(f"op={self._op}")
        if self.name:
            extra.append(f"name={self.name!r}")
        return f"Tensor({body}{', ' if extra else ''}{', '.join(extra)})"

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        return self.data if dtype is None else self.data.astype(dtype)

    __hash__ = object.__hash__  # comparisons are elementwise, identity stays the hash

    # ---- conversion -----------------------------------------------------------------------------

    def numpy(self) -> np.ndarray:
        """The underlying array (shared, not copied)."""
        return self.data

    def item(self) -> float:
        """The value of a one-element tensor as a Python number."""
        if self.data.size != 1:
            raise ValueError(f"item() needs a tensor with one element, this one has shape {self.shape}")
        return self.data.item()

    def detach(self) -> Tensor:
        """A new leaf tensor sharing the data, cut from the graph (no gradient flows back)."""
        return Tensor(self.data, name=self.name)

    def zero_grad(self) -> None:
        """Forget the accumulated gradient (``.grad = None``)."""
        self.grad = None

    def retain_grad(self) -> Tensor:
        """Keep ``.grad`` on this non-leaf tensor after ``backward`` (leaves always keep it)."""
        self._retain = True
        return self

    def astype(self, dtype: Any) -> Tensor:
        """Cast to ``dtype``; the gradient is cast back to this tensor's dtype."""
        src = self.dtype
        return record_op(self.data.astype(dtype), (self,), "astype", lambda g: (g.astype(src),))

    # ---- backward -------------------------------------------------------------------------------

    def backward(self, grad: ArrayLike | None = None) -> None:
        """Accumulate ``d(self)/d(leaf)`` into the ``.grad`` of every leaf that requires it.

        Args:
            grad: the upstream gradient ``dL/d(self)``, same shape as this tensor. May be
                omitted for a one-element tensor (then it is 1).

        Raises:
            RuntimeError: if this tensor does not require gradients, or ``grad`` is omitted
                for a tensor with more than one element.
        """
        if not self.requires_grad:
            raise RuntimeError(
                "backward() on a tensor that does not require grad: none of its inputs has "
                "requires_grad=True, or it was computed inside no_grad()"
            )
        if grad is None:
            if self.data.size != 1:
                raise RuntimeError(
                    f"backward() without a gradient needs a one-element output, this one has shape "
                    f"{self.shape}; reduce it first (.sum(), .mean()) or pass grad= of that shape"
                )
            seed = np.ones(self.shape, dtype=self.dtype)
        else:
            seed = np.asarray(grad.data if isinstance(grad, Tensor) else grad, dtype=self.dtype)
            if seed.shape != self.shape:
                try:
                    seed = np.broadcast_to(seed, self.shape)
                except ValueError:
                    raise ValueError(f"grad of shape {seed.shape} does not match the tensor's shape {self.shape}") from None

        grads: dict[int, np.ndarray] = {id(self): seed}
        owned: set[int] = set()  # ids whose gradient buffer we allocated (safe to add into in place)
        for node in _topological_order(self):
            key = id(node)
            g = grads.pop(key, None)
            if g is None:
                continue
            if node._backward is None or node._retain:
                node._accumulate_grad(g, key in owned)
            if node._backward is None:
                continue
            for parent, pg in zip(node._parents, node._backward(g)):
                if pg is not None and parent.requires_grad:
                    _add_grad(grads, owned, parent, pg)
            owned.discard(key)

    def _accumulate_grad(self, g: np.ndarray, owned: bool) -> None:
        if self.grad is None:
            # Copy unless the array is ours alone: backward functions pass views of upstream
            # gradients through, and an optimizer may scale .grad in place.
            same = owned and g.dtype == self.dtype and g.flags.writeable and g.shape == self.shape
            self.grad = g if same else np.array(np.broadcast_to(g, self.shape), dtype=self.dtype)
        else:
            self.grad = self.grad + g

    # ---- arithmetic -----------------------------------------------------------------------------

    def __add__(self, other: ArrayLike) -> Tensor:
        return add(self, other)

    def __radd__(self, other: ArrayLike) -> Tensor:
        return add(other, self)

    def __sub__(self, other: ArrayLike) -> Tensor:
        return sub(self, other)

    def __rsub__(self, other: ArrayLike) -> Tensor:
        return sub(other, self)

    def __mul__(self, other: ArrayLike) -> Tensor:
        return mul(self, other)

    def __rmul__(self, other: ArrayLike) -> Tensor:
        return mul(other, self)

    def __truediv__(self, other: ArrayLike) -> Tensor:
        return div(self, other)

    def __rtruediv__(self, other: ArrayLike) -> Tensor:
        return div(other, self)

    def __pow__(self, other: ArrayLike) -> Tensor:
        return power(self, other)

    def __rpow__(self, other: ArrayLike) -> Tensor:
        return power(other, self)

    def __neg__(self) -> Tensor:
        return neg(self)

    def __matmul__(self, other: ArrayLike) -> Tensor:
        return matmul(self, other)

    def __rmatmul__(self, other: ArrayLike) -> Tensor:
        return matmul(other, self)

    # Comparisons give plain boolean arrays: they have no gradient.
    def __lt__(self, other: ArrayLike) -> np.ndarray:
        return self.data < _raw(other)

    def __le__(self, other: ArrayLike) -> np.ndarray:
        return self.data <= _raw(other)

    def __gt__(self, other: ArrayLike) -> np.ndarray:
        return self.data > _raw(other)

    def __ge__(self, other: ArrayLike) -> np.ndarray:
        return self.data >= _raw(other)

    def __eq__(self, other: object) -> np.ndarray:  # type: ignore[override]
        return self.data == _raw(other)

    def __ne__(self, other: object) -> np.ndarray:  # type: ignore[override]
        return self.data != _raw(other)

    # ---- elementwise functions ------------------------------------------------------------------

    def exp(self) -> Tensor:
        return exp(self)

    def log(self) -> Tensor:
        return log(self)

    def sqrt(self) -> Tensor:
        return sqrt(self)

    def abs(self) -> Tensor:
        return abs_(self)

    def tanh(self) -> Tensor:
        return tanh(self)

    def sigmoid(self) -> Tensor:
        return sigmoid(self)

    def relu(self) -> Tensor:
        return relu(self)

    def clip(self, min: float | None = None, max: float | None = None) -> Tensor:  # noqa: A002
        return clip(self, min, max)

    clamp = clip

    def maximum(self, other: ArrayLike) -> Tensor:
        return maximum(self, other)

    def minimum(self, other: ArrayLike) -> Tensor:
        return minimum(self, other)

    # ---- reductions -----------------------------------------------------------------------------

    def sum(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
        return sum_(self, axis, keepdims)

    def mean(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
        return mean(self, axis, keepdims)

    def var(self, axis: int | Sequence[int] | None = None, keepdims: bool = False, ddof: int = 0) -> Tensor:
        return var(self, axis, keepdims, ddof)

    def max(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
        return _extremum(self, axis, keepdims, np.max, "max")

    def min(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
        return _extremum(self, axis, keepdims, np.min, "min")

    def argmax(self, axis: int | None = None) -> np.ndarray:
        """Indices of the maxima (a plain array: indices have no gradient)."""
        return self.data.argmax(axis=axis)

    def argmin(self, axis: int | None = None) -> np.ndarray:
        """Indices of the minima (a plain array)."""
        return self.data.argmin(axis=axis)

    # ---- shape ----------------------------------------------------------------------------------

    def reshape(self, *shape: int | Sequence[int]) -> Tensor:
        return reshape(self, shape[0] if len(shape) == 1 and not isinstance(shape[0], int) else shape)

    def flatten(self, start_axis: int = 0) -> Tensor:
        """Merge the axes from ``start_axis`` on into one: (B, C, H, W) -> (B, C*H*W) for 1."""
        start = start_axis % max(self.ndim, 1)
        return reshape(self, self.shape[:start] + (-1,))

    def transpose(self, *axes: int | Sequence[int]) -> Tensor:
        """Permute the axes (NumPy semantics: no argument reverses them)."""
        perm = axes[0] if len(axes) == 1 and not isinstance(axes[0], int) else axes
        return transpose(self, tuple(perm) if perm else None)

    def swapaxes(self, a: int, b: int) -> Tensor:
        perm = list(range(self.ndim))
        perm[a], perm[b] = perm[b], perm[a]
        return transpose(self, tuple(perm))

    def unsqueeze(self, axis: int) -> Tensor:
        """Insert an axis of size 1 at ``axis``."""
        return reshape(self, np.expand_dims(self.data, axis).shape)

    def squeeze(self, axis: int | Sequence[int] | None = None) -> Tensor:
        """Remove axes of size 1 (all of them, or ``axis``)."""
        return reshape(self, np.squeeze(self.data, axis).shape)

    def __getitem__(self, index: Any) -> Tensor:
        return getitem(self, index)


def tensor(data: ArrayLike, requires_grad: bool = False, *, dtype: Any = None, name: str | None = None) -> Tensor:
    """Build a :class:`Tensor`, optionally casting the data to ``dtype`` first."""
    data = _raw(data)
    return Tensor(data if dtype is None else np.asarray(data, dtype=dtype), requires_grad, name=name)


# ----------------------------------------------------------------------------------------------
# recording ops and walking the graph


def record_op(data: np.ndarray, parents: tuple[Tensor, ...], op: str, backward: Backward) -> Tensor:
    """Wrap the result of an op and, in grad mode, remember how it was made.

    This is how every op in this package (and any user-defined op) enters the graph.

    Args:
        data: the result.
        parents: the input tensors.
        op: the op's name (shown by :func:`archlab.scratch.graph.to_dot`).
        backward: ``g -> (dL/dparent_1, ...)``, one entry per parent: an array with the
            parent's shape (after :func:`unbroadcast`), an :class:`IndexedGrad`, or None.

    Returns:
        The result tensor; it requires grad if any parent does and grad mode is on.
    """
    out = Tensor.__new__(Tensor)
    out.data = data if isinstance(data, np.ndarray) else np.asarray(data)
    out.grad = None
    out.name = None
    out._retain = False
    if _GRAD_ENABLED:
        out._parents = parents
        out._op = op
        out.requires_grad = any(p.requires_grad for p in parents)
        out._backward = backward if out.requires_grad else None
    else:
        out._parents, out._op, out.requires_grad, out._backward = (), "", False, None
    return out


def _topological_order(root: Tensor) -> list[Tensor]:
    """Nodes that require grad, ``root`` first and every node before its parents."""
    order: list[Tensor] = []
    visited: set[int] = set()
    stack: list[tuple[Tensor, bool]] = [(root, False)]
    while stack:  # iterative DFS: a long unrolled RNN would overflow Python's recursion limit
        node, done = stack.pop()
        if done:
            order.append(node)
            continue
        if id(node) in visited:
            continue
        visited.add(id(node))
        stack.append((node, True))
        stack.extend((p, False) for p in node._parents if p.requires_grad and id(p) not in visited)
    order.reverse()
    return order


def _add_grad(grads: dict[int, np.ndarray], owned: set[int], t: Tensor, g: np.ndarray | IndexedGrad) -> None:
    """``grads[t] += g``, in place when the buffer is ours, else into a fresh array."""
    key = id(t)
    cur = grads.get(key)
    if isinstance(g, IndexedGrad):
        if cur is None:
            cur = np.zeros(t.shape, dtype=t.dtype)
        elif key not in owned:
            cur = np.array(np.broadcast_to(cur, t.shape), dtype=t.dtype)
        grads[key] = cur
        owned.add(key)
        g.add_to(cur)
    elif cur is None:
        grads[key] = g
    elif key in owned:
        cur += g
    else:
        grads[key] = cur + g
        owned.add(key)


def _raw(x: ArrayLike) -> Any:
    return x.data if isinstance(x, Tensor) else x


def _lift(x: ArrayLike, like: Tensor) -> Tensor:
    """``x`` as a Tensor; Python and NumPy scalars take the dtype of ``like`` (no silent upcast)."""
    if isinstance(x, Tensor):
        return x
    if isinstance(x, (int, float, bool, np.number, np.bool_)) and np.issubdtype(like.dtype, np.floating):
        return Tensor(np.asarray(x, dtype=like.dtype))
    return Tensor(x if isinstance(x, np.ndarray) else np.asarray(x))


def _pair(a: ArrayLike, b: ArrayLike) -> tuple[Tensor, Tensor]:
    if isinstance(a, Tensor):
        return a, _lift(b, a)
    b = _lift(b, Tensor(0.0)) if not isinstance(b, Tensor) else b
    return _lift(a, b), b


# ----------------------------------------------------------------------------------------------
# elementwise arithmetic (broadcasting)


def add(a: ArrayLike, b: ArrayLike) -> Tensor:
    """``a + b``;  d/da = 1, d/db = 1 (summed over broadcast axes)."""
    a, b = _pair(a, b)
    return record_op(a.data + b.data, (a, b), "add", lambda g: (unbroadcast(g, a.shape), unbroadcast(g, b.shape)))


def sub(a: ArrayLike, b: ArrayLike) -> Tensor:
    """``a - b``;  d/da = 1, d/db = -1."""
    a, b = _pair(a, b)
    return record_op(
        a.data - b.data, (a, b), "sub", lambda g: (unbroadcast(g, a.shape), unbroadcast(-g, b.shape) if b.requires_grad else None)
    )


def mul(a: ArrayLike, b: ArrayLike) -> Tensor:
    """``a * b``;  d/da = b, d/db = a."""
    a, b = _pair(a, b)

    def backward(g: np.ndarray) -> tuple[Any, Any]:
        return (
            unbroadcast(g * b.data, a.shape) if a.requires_grad else None,
            unbroadcast(g * a.data, b.shape) if b.requires_grad else None,
        )

    return record_op(a.data * b.data, (a, b), "mul", backward)


def div(a: ArrayLike, b: ArrayLike) -> Tensor:
    """``a / b``;  d/da = 1/b, d/db = -a/b^2."""
    a, b = _pair(a, b)

    def backward(g: np.ndarray) -> tuple[Any, Any]:
        return (
            unbroadcast(g / b.data, a.shape) if a.requires_grad else None,
            unbroadcast(-g * a.data / (b.data * b.data), b.shape) if b.requires_grad else None,
        )

    return record_op(a.data / b.data, (a, b), "div", backward)


def neg(a: Tensor) -> Tensor:
    """``-a``."""
    return record_op(-a.data, (a,), "neg", lambda g: (-g,))


def power(a: ArrayLike, b: ArrayLike) -> Tensor:
    """``a ** b`` for a scalar or tensor exponent.

    d/da = b a^(b-1) (0 where b == 0);  d/db = a^b log(a), taken as 0 where a == 0 and b >= 0
    (PyTorch's conventions; the second is the limit of x^b log x as x -> 0+).
    """
    if isinstance(a, Tensor) and isinstance(b, (int, float)) and not isinstance(b, bool):
        n = b
        out = a.data**n
        if n == 0:
            return record_op(out, (a,), "pow0", lambda g: (np.zeros_like(g),))
        return record_op(out, (a,), f"pow{n:g}", lambda g: (g * (n * a.data ** (n - 1)),))
    a, b = _pair(a, b)
    out = a.data**b.data

    def backward(g: np.ndarray) -> tuple[Any, Any]:
        ga = None
        if a.requires_grad:
            with np.errstate(divide="ignore", invalid="ignore"):
                ga = np.where(b.data == 0, 0.0, g * b.data * a.data ** (b.data - 1)).astype(g.dtype, copy=False)
            ga = unbroadcast(ga, a.shape)
        gb = None
        if b.requires_grad:
            with np.errstate(divide="ignore", invalid="ignore"):
                gb = g * out * np.log(a.data)
            gb = np.where((a.data == 0) & (b.data >= 0), 0.0, gb).astype(g.dtype, copy=False)
            gb = unbroadcast(gb, b.shape)
        return ga, gb

    return record_op(out, (a, b), "pow", backward)


def matmul(a: ArrayLike, b: ArrayLike) -> Tensor:
    """``a @ b`` with NumPy's rules: 1-D operands, batched (broadcast) leading axes.

    For 2-D ``a (m, k)``, ``b (k, n)`` and ``g = dL/d(ab) (m, n)``:
        dL/da = g b^T   (m, k)      dL/db = a^T g   (k, n)
    A 1-D ``a`` is treated as a row (1, k) and a 1-D ``b`` as a column (k, 1); batch axes that
    were broadcast are summed away.
    """
    a, b = _pair(a, b)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError("matmul needs operands with at least one dimension; use * for scalars")
    out = a.data @ b.data

    def backward(g: np.ndarray) -> tuple[Any, Any]:
        a2 = a.data[None, :] if a.ndim == 1 else a.data  # (..., m, k)
        b2 = b.data[:, None] if b.ndim == 1 else b.data  # (..., k, n)
        g2 = g[..., None] if b.ndim == 1 else g  # restore the squeezed axes: (..., m, n)
        if a.ndim == 1:
            g2 = np.expand_dims(g2, -2)
        ga = gb = None
        if a.requires_grad:
            ga = unbroadcast(g2 @ np.swapaxes(b2, -1, -2), a2.shape).reshape(a.shape)
        if b.requires_grad:
            gb = unbroadcast(np.swapaxes(a2, -1, -2) @ g2, b2.shape).reshape(b.shape)
        return ga, gb

    return record_op(out, (a, b), "matmul", backward)


def maximum(a: ArrayLike, b: ArrayLike) -> Tensor:
    """Elementwise ``max(a, b)``; the gradient goes to the larger, half to each on a tie."""
    return _binary_extremum(a, b, np.maximum, "maximum")


def minimum(a: ArrayLike, b: ArrayLike) -> Tensor:
    """Elementwise ``min(a, b)``; the gradient goes to the smaller, half to each on a tie."""
    return _binary_extremum(a, b, np.minimum, "minimum")


def _binary_extremum(a: ArrayLike, b: ArrayLike, fn: Callable[..., np.ndarray], op: str) -> Tensor:
    a, b = _pair(a, b)
    out = fn(a.data, b.data)

    def backward(g: np.ndarray) -> tuple[Any, Any]:
        wins_a = (a.data == out).astype(g.dtype)
        wins_b = (b.data == out).astype(g.dtype)
        share_a = wins_a / (wins_a + wins_b)  # 1, 0 or 1/2 on ties
        return unbroadcast(g * share_a, a.shape), unbroadcast(g * (1 - share_a), b.shape)

    return record_op(out, (a, b), op, backward)


def where(cond: ArrayLike, a: ArrayLike, b: ArrayLike) -> Tensor:
    """``a`` where ``cond`` is true, else ``b``; the gradient is routed by the same mask.

    Args:
        cond: boolean array or tensor (no gradient), broadcastable with ``a`` and ``b``.
        a: values where true.
        b: values where false.
    """
    mask = np.asarray(_raw(cond), dtype=bool)
    a, b = _pair(a, b)
    out = np.where(mask, a.data, b.data)

    def backward(g: np.ndarray) -> tuple[Any, Any]:
        return (
            unbroadcast(np.where(mask, g, 0), a.shape) if a.requires_grad else None,
            unbroadcast(np.where(mask, 0, g), b.shape) if b.requires_grad else None,
        )

    return record_op(out, (a, b), "where", backward)


# ----------------------------------------------------------------------------------------------
# elementwise functions


def exp(a: Tensor) -> Tensor:
    """``e^a``;  d/da = e^a."""
    out = np.exp(a.data)
    return record_op(out, (a,), "exp", lambda g: (g * out,))


def log(a: Tensor) -> Tensor:
    """Natural log;  d/da = 1/a."""
    return record_op(np.log(a.data), (a,), "log", lambda g: (g / a.data,))


def sqrt(a: Tensor) -> Tensor:
    """``sqrt(a)``;  d/da = 1 / (2 sqrt(a))."""
    out = np.sqrt(a.data)
    return record_op(out, (a,), "sqrt", lambda g: (g / (2 * out),))


def abs_(a: Tensor) -> Tensor:
    """``|a|``;  d/da = sign(a) (0 at 0)."""
    return record_op(np.abs(a.data), (a,), "abs", lambda g: (g * np.sign(a.data),))


def tanh(a: Tensor) -> Tensor:
    """``tanh(a)``;  d/da = 1 - tanh(a)^2."""
    out = np.tanh(a.data)
    return record_op(out, (a,), "tanh", lambda g: (g * (1 - out * out),))


def sigmoid(a: Tensor) -> Tensor:
    """Logistic ``1 / (1 + e^-a)``, computed without overflow;  d/da = s (1 - s)."""
    e = np.exp(-np.abs(a.data))  # in (0, 1]: never overflows
    out = np.where(a.data >= 0, 1 / (1 + e), e / (1 + e))
    return record_op(out, (a,), "sigmoid", lambda g: (g * out * (1 - out),))


def relu(a: Tensor) -> Tensor:
    """``max(a, 0)``;  d/da = 1 for a > 0, else 0."""
    out = np.maximum(a.data, 0)
    return record_op(out, (a,), "relu", lambda g: (g * (a.data > 0),))


def clip(a: Tensor, min: float | None = None, max: float | None = None) -> Tensor:  # noqa: A002
    """Clamp to ``[min, max]``; the gradient passes where ``min <= a <= max``."""
    if min is None and max is None:
        raise ValueError("clip needs min or max (or both)")
    out = np.clip(a.data, min, max)
    if np.issubdtype(a.dtype, np.floating):
        out = out.astype(a.dtype, copy=False)

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        inside = np.ones(a.shape, dtype=bool)
        if min is not None:
            inside &= a.data >= min
        if max is not None:
            inside &= a.data <= max
        return (g * inside,)

    return record_op(out, (a,), "clip", backward)


# ----------------------------------------------------------------------------------------------
# reductions


def sum_(a: Tensor, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
    """Sum over ``axis``; the gradient is copied back to every summed element."""
    axes = _normalize_axes(axis, a.ndim)
    out = np.asarray(a.data.sum(axis=axes, keepdims=keepdims))
    return record_op(out, (a,), "sum", lambda g: (_expand_reduced(g, axes, keepdims, a.shape),))


def mean(a: Tensor, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
    """Mean over ``axis``; each element gets ``g / n``."""
    axes = _normalize_axes(axis, a.ndim)
    n = math.prod(a.shape[i] for i in axes)
    out = np.asarray(a.data.mean(axis=axes, keepdims=keepdims))
    return record_op(out, (a,), "mean", lambda g: (_expand_reduced(g / n, axes, keepdims, a.shape),))


def var(a: Tensor, axis: int | Sequence[int] | None = None, keepdims: bool = False, ddof: int = 0) -> Tensor:
    """Variance ``sum (a - mean)^2 / (n - ddof)`` (ddof=0: NumPy's default, the biased one).

    d/da_i = 2 (a_i - mean) / (n - ddof)   (the mean's own dependence on a_i cancels).
    """
    axes = _normalize_axes(axis, a.ndim)
    n = math.prod(a.shape[i] for i in axes)
    centered = a.data - a.data.mean(axis=axes, keepdims=True)
    out = np.asarray((centered * centered).sum(axis=axes, keepdims=keepdims) / (n - ddof))

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        return (_expand_reduced(g, axes, keepdims, a.shape) * centered * (2 / (n - ddof)),)

    return record_op(out, (a,), "var", backward)


def _extremum(a: Tensor, axis: Any, keepdims: bool, fn: Callable[..., np.ndarray], op: str) -> Tensor:
    """max/min over ``axis``; the gradient is split evenly between tied extrema."""
    axes = _normalize_axes(axis, a.ndim)
    out_k = fn(a.data, axis=axes, keepdims=True)

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        hit = (a.data == out_k).astype(g.dtype)
        hit /= hit.sum(axis=axes, keepdims=True)
        return (_expand_reduced(g, axes, keepdims, a.shape) * hit,)

    out = out_k if keepdims else np.squeeze(out_k, axis=axes)
    return record_op(np.asarray(out), (a,), op, backward)


# ----------------------------------------------------------------------------------------------
# shape ops, indexing, joining


def reshape(a: Tensor, shape: Sequence[int]) -> Tensor:
    """Same data, new shape;  the gradient is reshaped back."""
    return record_op(a.data.reshape(shape), (a,), "reshape", lambda g: (g.reshape(a.shape),))


def transpose(a: Tensor, axes: tuple[int, ...] | None = None) -> Tensor:
    """Permute axes;  the gradient is permuted by the inverse permutation."""
    perm = tuple(range(a.ndim))[::-1] if axes is None else tuple(ax % a.ndim for ax in axes)
    inverse = tuple(np.argsort(perm))
    return record_op(a.data.transpose(perm), (a,), "transpose", lambda g: (g.transpose(inverse),))


def _is_basic_index(index: Any) -> bool:
    """True for ints, slices, None and Ellipsis (a view: every element selected at most once)."""
    items = index if isinstance(index, tuple) else (index,)
    return all(isinstance(i, (int, np.integer, slice)) or i is None or i is Ellipsis for i in items)


def getitem(a: Tensor, index: Any) -> Tensor:
    """``a[index]`` for basic and advanced (integer / boolean array) indexing.

    The gradient is scattered back into a zero array; with an advanced index that repeats an
    element, the contributions are summed (``np.add.at``).
    """
    if isinstance(index, tuple):
        index = tuple(_raw(i) for i in index)
    else:
        index = _raw(index)
    out = a.data[index]
    basic = _is_basic_index(index)
    return record_op(
        np.asarray(out), (a,), "getitem", lambda g: (IndexedGrad(index, g, accumulate=not basic),)
    )


def concatenate(tensors: Iterable[Tensor], axis: int = 0) -> Tensor:
    """Join tensors along an existing ``axis``; the gradient is split back into the pieces."""
    tensors = tuple(tensors)
    if not tensors:
        raise ValueError("concatenate needs at least one tensor")
    out = np.concatenate([t.data for t in tensors], axis=axis)
    bounds = np.cumsum([t.shape[axis] for t in tensors])[:-1]

    def backward(g: np.ndarray) -> list[np.ndarray]:
        return np.split(g, bounds, axis=axis)

    return record_op(out, tensors, "concatenate", backward)


def stack(tensors: Iterable[Tensor], axis: int = 0) -> Tensor:
    """Join same-shape tensors along a new ``axis``; the gradient is unstacked."""
    tensors = tuple(tensors)
    if not tensors:
        raise ValueError("stack needs at least one tensor")
    out = np.stack([t.data for t in tensors], axis=axis)

    def backward(g: np.ndarray) -> list[np.ndarray]:
        return list(np.moveaxis(g, axis, 0))

    return record_op(out, tensors, "stack", backward)
