"""Activations, losses and layer ops for the scratch engine (``import archlab.scratch.functional as F``).

Every function takes and returns :class:`~archlab.scratch.autograd.Tensor`s and is
differentiable. The simple ones are compositions of autograd ops; the ones where a hand-derived
backward is much faster or more stable are *fused*: one graph node with its own VJP
(softmax, log_softmax, the cross-entropies, linear, conv2d, the pools, batch_norm, embedding,
dropout). All of them are checked against finite differences and against PyTorch in
``tests/scratch``.

Activations
    step(x)        = 1[x >= 0]                     (Heaviside; gradient 0 everywhere)
    sigmoid(x)     = 1 / (1 + e^-x)
    tanh(x)
    relu(x)        = max(x, 0)                     (Nair & Hinton 2010)
    leaky_relu(x)  = x if x > 0 else slope x       (Maas et al. 2013)
    elu(x)         = x if x > 0 else alpha (e^x - 1)   (Clevert et al. 2016)
    selu(x)        = scale * elu(x, alpha), alpha ~ 1.6733, scale ~ 1.0507
                     (Klambauer et al., "Self-Normalizing Neural Networks", NeurIPS 2017)
    gelu(x)        = x Phi(x)                      (Hendrycks & Gimpel 2016)
    softmax(x)_i   = e^(x_i - m) / sum_j e^(x_j - m),   m = max_j x_j  (shift: no overflow)
    log_softmax(x) = x - m - log sum_j e^(x_j - m)

Losses (``reduction`` is "mean", "sum" or "none", as in PyTorch)
    mse_loss                          (p - y)^2
    binary_cross_entropy              -[y log p + (1 - y) log(1 - p)], logs clamped at -100
    binary_cross_entropy_with_logits  max(z, 0) - z y + log(1 + e^-|z|)      (never overflows)
    cross_entropy                     -log softmax(z)_y  via log_softmax; fused gradient
                                      dL/dz = softmax(z) - onehot(y)
    hinge_loss       binary (y = +-1):  max(0, margin - y s)
                     multi-class (Crammer & Singer 2001): max(0, margin + max_{k != y} s_k - s_y)
    perceptron_criterion  max_k s_k - s_y  (multi-class);  max(0, -y s)  (binary, y = +-1)

Convolution (LeCun et al. 1989) is cross-correlation, as in every framework:

    out[b, o, i, j] = bias[o] + sum_{c, u, v} W[o, c, u, v] * xpad[b, c, i*s + u, j*s + v]

computed by *im2col*: the kh*kw shifted (strided) views of the padded input are copied into a
matrix ``cols`` of shape (C*kh*kw, B*Ho*Wo), so the convolution is one matrix product
``W.reshape(O, C*kh*kw) @ cols``. The backward pass is two more matrix products,

    dW = g @ cols^T          dcols = W^T @ g

and *col2im*, which adds each row block of ``dcols`` back at its kernel offset. The Python loops
run over the kh*kw kernel offsets only; everything inside them is vectorised over batch,
channels and pixels. Inputs are laid out channel-first, (C, B, H, W), while the columns are
built, so the product's result (O, B*Ho*Wo) needs no copy to become (B, O, Ho, Wo); with
stride 1 each offset's view is one contiguous slice of the flattened image planes
(:class:`_ConvPlan`). Pooling uses the same per-offset views: max pooling keeps the offset of
each window's maximum and routes the gradient there.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from archlab.scratch import autograd as ag
from archlab.scratch.autograd import Tensor, record_op
from archlab.scratch.init import RngLike, default_rng

__all__ = [
    "SELU_ALPHA",
    "SELU_SCALE",
    "avg_pool2d",
    "batch_norm",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "conv2d",
    "cross_entropy",
    "dropout",
    "elu",
    "embedding",
    "gelu",
    "hinge_loss",
    "l1_penalty",
    "l2_penalty",
    "leaky_relu",
    "linear",
    "log_softmax",
    "max_pool2d",
    "mse_loss",
    "one_hot",
    "perceptron_criterion",
    "relu",
    "selu",
    "sigmoid",
    "softmax",
    "step",
    "tanh",
]

def _keep_freed_memory_mapped() -> None:
    """Stop glibc from handing big temporaries back to the OS after every training step.

    glibc ``free`` returns memory above a *trim threshold* to the OS, and that threshold starts
    low and only rises (up to 2 x 32 MiB) when a large ``mmap``-ed block is freed. A step that
    allocates and frees the same ~10-30 MiB of im2col columns and gradients would then
    page-fault all of it back in every time (conv2d forward+backward on (64, 16, 14, 14):
    8 ms instead of 5 ms). Freeing one block just under the 32 MiB ceiling once raises the
    thresholds to their maximum. Nothing is touched, so this costs no memory; on other
    allocators it is a no-op.
    """
    np.empty(32 * 2**20 - 2**16, dtype=np.uint8)


_keep_freed_memory_mapped()

# Klambauer et al. (2017), eq. (14): the fixed point (mean 0, variance 1) of SELU networks.
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def _target(target: Any, like: Tensor, what: str) -> Tensor:
    """Targets as a tensor with the input's dtype and shape."""
    y = target if isinstance(target, Tensor) else Tensor(np.asarray(target, dtype=like.dtype))
    if y.shape != like.shape:
        raise ValueError(f"{what}: target shape {y.shape} differs from input shape {like.shape}")
    return y


def _pair(v: int | tuple[int, int]) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, (int, np.integer)) else (int(v[0]), int(v[1]))


def _reduce(per_item: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return per_item.mean()
    if reduction == "sum":
        return per_item.sum()
    if reduction == "none":
        return per_item
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _reduction_scale(g: np.ndarray, n: int, reduction: str) -> np.ndarray:
    """Per-item upstream gradient of a fused loss: g/n (mean), g (sum) or g itself (none)."""
    if reduction == "mean":
        return g / n
    if reduction in ("sum", "none"):
        return g
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _finish(per_item: np.ndarray, reduction: str) -> np.ndarray:
    if reduction == "mean":
        return np.asarray(per_item.mean())
    if reduction == "sum":
        return np.asarray(per_item.sum())
    if reduction == "none":
        return per_item
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


# ----------------------------------------------------------------------------------------------
# activations


def step(x: Tensor) -> Tensor:
    """Heaviside step ``1[x >= 0]`` (the perceptron's threshold unit); its gradient is 0."""
    return record_op((x.data >= 0).astype(x.dtype), (x,), "step", lambda g: (np.zeros_like(g),))


def sigmoid(x: Tensor) -> Tensor:
    """Logistic function ``1 / (1 + e^-x)``;  d/dx = s (1 - s)."""
    return ag.sigmoid(x)


def tanh(x: Tensor) -> Tensor:
    """Hyperbolic tangent;  d/dx = 1 - tanh^2."""
    return ag.tanh(x)


def relu(x: Tensor) -> Tensor:
    """``max(x, 0)``;  d/dx = 1[x > 0]."""
    return ag.relu(x)


def leaky_relu(x: Tensor, slope: float = 0.01) -> Tensor:
    """``x`` for x > 0, ``slope * x`` otherwise;  d/dx = 1 or slope."""
    pos = x.data > 0
    out = np.where(pos, x.data, slope * x.data)
    return record_op(out, (x,), "leaky_relu", lambda g: (np.where(pos, g, slope * g),))


def elu(x: Tensor, alpha: float = 1.0) -> Tensor:
    """``x`` for x > 0, ``alpha (e^x - 1)`` otherwise;  d/dx = 1 or alpha e^x."""
    pos = x.data > 0
    neg = alpha * np.expm1(np.minimum(x.data, 0))  # min(): no overflow warning on the unused branch
    out = np.where(pos, x.data, neg)
    return record_op(out, (x,), "elu", lambda g: (np.where(pos, g, g * (neg + alpha)),))


def selu(x: Tensor) -> Tensor:
    """Scaled ELU with the self-normalising constants of Klambauer et al. (2017)."""
    pos = x.data > 0
    neg = SELU_ALPHA * np.expm1(np.minimum(x.data, 0))
    out = SELU_SCALE * np.where(pos, x.data, neg)
    return record_op(out, (x,), "selu", lambda g: (SELU_SCALE * np.where(pos, g, g * (neg + SELU_ALPHA)),))


_erf = np.frompyfunc(math.erf, 1, 1)


def gelu(x: Tensor, approximate: str = "none") -> Tensor:
    """Gaussian error linear unit ``x Phi(x)`` (Hendrycks & Gimpel 2016).

    Args:
        x: input.
        approximate: ``"none"``: exact, ``Phi(x) = (1 + erf(x / sqrt 2)) / 2`` (erf through
            ``math.erf`` element by element: slow for big arrays); ``"tanh"``:
            ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))``.
    """
    xd = x.data
    if approximate == "none":
        cdf = 0.5 * (1.0 + _erf(xd / math.sqrt(2.0)).astype(xd.dtype))
        pdf = np.exp(-0.5 * xd * xd) / math.sqrt(2.0 * math.pi)
        return record_op(xd * cdf, (x,), "gelu", lambda g: (g * (cdf + xd * pdf),))
    if approximate == "tanh":
        k = math.sqrt(2.0 / math.pi)
        inner = k * (xd + 0.044715 * xd**3)
        t = np.tanh(inner)
        d_inner = k * (1 + 3 * 0.044715 * xd * xd)
        return record_op(0.5 * xd * (1 + t), (x,), "gelu", lambda g: (g * (0.5 * (1 + t) + 0.5 * xd * (1 - t * t) * d_inner),))
    raise ValueError(f"approximate must be 'none' or 'tanh', got {approximate!r}")


def softmax(x: Tensor, axis: int = -1) -> Tensor:
    """``e^(x_i - m) / sum_j e^(x_j - m)`` along ``axis`` (m = max: no overflow at large x).

    VJP: ``dL/dx = s * (g - sum_j g_j s_j)``.
    """
    e = np.exp(x.data - x.data.max(axis=axis, keepdims=True))
    s = e / e.sum(axis=axis, keepdims=True)
    return record_op(s, (x,), "softmax", lambda g: (s * (g - (g * s).sum(axis=axis, keepdims=True)),))


def _log_softmax(z: np.ndarray, axis: int) -> np.ndarray:
    shifted = z - z.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def log_softmax(x: Tensor, axis: int = -1) -> Tensor:
    """``x - m - log sum_j e^(x_j - m)`` along ``axis``.

    VJP: ``dL/dx = g - softmax(x) * sum_j g_j``.
    """
    out = _log_softmax(x.data, axis)
    return record_op(out, (x,), "log_softmax", lambda g: (g - np.exp(out) * g.sum(axis=axis, keepdims=True),))


# ----------------------------------------------------------------------------------------------
# losses


def mse_loss(pred: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """Squared error ``(pred - target)^2``, averaged (or summed) over all elements."""
    diff = pred - target
    return _reduce(diff * diff, reduction)


def binary_cross_entropy(p: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """Cross-entropy of probabilities ``p`` in [0, 1] against targets ``y`` in [0, 1].

    ``-[y log p + (1 - y) log(1 - p)]`` with both logs clamped at -100 (PyTorch's choice), so
    p = 0 or 1 gives a large finite loss instead of inf. Gradient (PyTorch's formula):

        dL/dp = (p - y) / max(p (1 - p), 1e-12)

    Prefer :func:`binary_cross_entropy_with_logits` on the pre-sigmoid scores: it is exact
    where this one saturates.
    """
    y = _target(target, p, "binary_cross_entropy")
    if np.any((p.data < 0) | (p.data > 1)):
        raise ValueError("binary_cross_entropy needs probabilities in [0, 1]; pass logits to binary_cross_entropy_with_logits")
    with np.errstate(divide="ignore"):
        log_p = np.maximum(np.log(p.data), -100.0)
        log_1mp = np.maximum(np.log1p(-p.data), -100.0)
    per_item = -(y.data * log_p + (1 - y.data) * log_1mp)

    def backward(g: np.ndarray) -> tuple[Any, Any]:
        w = _reduction_scale(g, p.size, reduction)
        gp = w * (p.data - y.data) / np.maximum(p.data * (1 - p.data), 1e-12) if p.requires_grad else None
        gy = w * (log_1mp - log_p) if y.requires_grad else None
        return gp, gy

    return record_op(_finish(per_item, reduction), (p, y), "binary_cross_entropy", backward)


def binary_cross_entropy_with_logits(z: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """``BCE(sigmoid(z), y)`` computed stably from the logits ``z``.

    ``-[y log s + (1 - y) log(1 - s)] = max(z, 0) - z y + log(1 + e^-|z|)``: no exp overflows,
    exact at |z| = 1000. Gradients: ``dL/dz = sigmoid(z) - y``, ``dL/dy = -z``.
    """
    y = _target(target, z, "binary_cross_entropy_with_logits")
    zd = z.data
    per_item = np.maximum(zd, 0) - zd * y.data + np.log1p(np.exp(-np.abs(zd)))

    def backward(g: np.ndarray) -> tuple[Any, Any]:
        w = _reduction_scale(g, z.size, reduction)
        gz = w * (ag.sigmoid(Tensor(zd)).data - y.data) if z.requires_grad else None
        gy = -w * zd if y.requires_grad else None
        return gz, gy

    return record_op(_finish(per_item, reduction), (z, y), "binary_cross_entropy_with_logits", backward)


def _check_targets(targets: np.ndarray, num_classes: int, ignore_index: int | None = None) -> None:
    if not np.issubdtype(targets.dtype, np.integer):
        raise TypeError(f"targets must be integer class indices, got dtype {targets.dtype}")
    valid = targets if ignore_index is None else targets[targets != ignore_index]
    if valid.size and (valid.min() < 0 or valid.max() >= num_classes):
        bad = valid[(valid < 0) | (valid >= num_classes)][0]
        raise IndexError(f"target {bad} is out of range for {num_classes} classes (valid: 0..{num_classes - 1})")


def cross_entropy(
    logits: Tensor,
    targets: Any,
    reduction: str = "mean",
    *,
    label_smoothing: float = 0.0,
    ignore_index: int = -100,
) -> Tensor:
    """Softmax cross-entropy ``-log softmax(z)_y`` with a fused, stable gradient.

    Args:
        logits: (N, C), or (N, C, d1, ...) with the classes on axis 1 (PyTorch's layout).
        targets: integer class indices, (N,) or (N, d1, ...).
        reduction: "mean" (over the targets that are not ignored), "sum" or "none".
        label_smoothing: epsilon of Szegedy et al. (2016): the target distribution is
            ``(1 - eps) onehot(y) + eps / C``.
        ignore_index: targets with this value contribute neither loss nor gradient.

    With p = softmax(z) and q the (smoothed) target distribution, ``dL/dz = p - q`` per item.
    """
    t = np.asarray(targets.data if isinstance(targets, Tensor) else targets)
    if logits.ndim == 1:  # one unbatched sample
        logits, t = logits.reshape(1, -1), t.reshape(1)
    elif logits.ndim > 2:  # (N, C, d1, ...) -> (N*d1*..., C)
        perm = (0, *range(2, logits.ndim), 1)
        logits = logits.transpose(perm).reshape(-1, logits.shape[1])
    item_shape = t.shape
    t = t.reshape(-1)
    n, c = logits.shape
    if t.shape[0] != n:
        raise ValueError(f"cross_entropy: {n} rows of logits but {t.shape[0]} targets")
    _check_targets(t, c, ignore_index)
    valid = t != ignore_index
    safe_t = np.where(valid, t, 0)
    rows = np.arange(n)
    logp = _log_softmax(logits.data, axis=1)  # (N, C)
    per_item = -logp[rows, safe_t]
    if label_smoothing > 0:
        per_item = (1 - label_smoothing) * per_item - label_smoothing * logp.mean(axis=1)
    per_item = np.where(valid, per_item, 0).astype(logp.dtype, copy=False)
    n_valid = int(valid.sum())
    if reduction == "mean":  # over the targets that count; 0/0 = nan when all are ignored, as in PyTorch
        out = np.asarray(per_item.sum() / n_valid if n_valid else np.nan, dtype=logp.dtype)
    elif reduction == "none":
        out = per_item.reshape(item_shape)
    else:
        out = _finish(per_item, reduction)

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        w = g / max(n_valid, 1) if reduction == "mean" else (g.reshape(-1) if reduction == "none" else g)
        w = np.where(valid, w, 0).astype(logp.dtype, copy=False)  # (N,)
        grad = np.exp(logp)  # softmax, (N, C)
        grad[rows, safe_t] -= 1 - label_smoothing
        if label_smoothing > 0:
            grad -= label_smoothing / c
        return (grad * w[:, None],)

    return record_op(out, (logits,), "cross_entropy", backward)


def _per_sample_scores(scores: Tensor, targets: np.ndarray) -> tuple[Tensor, Tensor]:
    """``(s_y, max_{k != y} s_k)`` of (N, K) scores: the true and the best other class."""
    n, k = scores.shape
    _check_targets(targets, k)
    rows = np.arange(n)
    true = scores[rows, targets]  # (N,)
    is_true = np.zeros((n, k), dtype=bool)
    is_true[rows, targets] = True
    others = ag.where(is_true, -np.inf, scores).max(axis=1)  # (N,)
    return true, others


def hinge_loss(scores: Tensor, targets: Any, margin: float = 1.0, reduction: str = "mean") -> Tensor:
    """Hinge loss of a margin classifier (the SVM's loss).

    Binary, scores (N,) or (N, 1) and targets in {-1, +1}:  ``max(0, margin - y s)``.
    Multi-class, scores (N, K) with K >= 2 and integer targets (Crammer & Singer, "On the
    algorithmic implementation of multiclass kernel-based vector machines", JMLR 2001):
    ``max(0, margin + max_{k != y} s_k - s_y)``.
    """
    t = np.asarray(targets.data if isinstance(targets, Tensor) else targets)
    if scores.ndim == 2 and scores.shape[1] >= 2:
        true, others = _per_sample_scores(scores, t)
        return _reduce(ag.relu(others - true + margin), reduction)
    s = scores.reshape(-1)
    y = t.reshape(-1).astype(scores.dtype)
    if not np.all(np.abs(y) == 1):
        raise ValueError("binary hinge_loss needs targets in {-1, +1}; for class indices pass (N, K) scores")
    return _reduce(ag.relu(margin - s * y), reduction)


def perceptron_criterion(scores: Tensor, targets: Any, reduction: str = "mean") -> Tensor:
    """Rosenblatt's perceptron criterion: zero once a sample is classified correctly.

    Multi-class, scores (N, K), integer targets: ``max_k s_k - s_y`` (>= 0). SGD on it is the
    perceptron rule ``W_y += lr x, W_pred -= lr x`` for misclassified x.
    Binary, scores (N,) or (N, 1), targets in {-1, +1}: ``max(0, -y s)``.
    """
    t = np.asarray(targets.data if isinstance(targets, Tensor) else targets)
    if scores.ndim == 2 and scores.shape[1] >= 2:
        _check_targets(t, scores.shape[1])
        true = scores[np.arange(scores.shape[0]), t]
        return _reduce(ag.relu(scores.max(axis=1) - true), reduction)
    s = scores.reshape(-1)
    y = t.reshape(-1).astype(scores.dtype)
    if not np.all(np.abs(y) == 1):
        raise ValueError("binary perceptron_criterion needs targets in {-1, +1}; for class indices pass (N, K) scores")
    return _reduce(ag.relu(-(s * y)), reduction)


def l1_penalty(params: Iterable[Tensor]) -> Tensor:
    """``sum_p sum_i |p_i|`` (lasso; multiply by lambda yourself). Gradient: sign(p)."""
    terms = [p.abs().sum() for p in params]
    return _sum_terms(terms)


def l2_penalty(params: Iterable[Tensor]) -> Tensor:
    """``sum_p sum_i p_i^2`` (weight decay / ridge; no 1/2). Gradient: 2 p."""
    terms = [(p * p).sum() for p in params]
    return _sum_terms(terms)


def _sum_terms(terms: list[Tensor]) -> Tensor:
    if not terms:
        return Tensor(0.0)
    total = terms[0]
    for t in terms[1:]:
        total = total + t
    return total


def one_hot(targets: Any, num_classes: int, dtype: Any = np.float64) -> np.ndarray:
    """``(N, num_classes)`` array with a 1 at each target index."""
    t = np.asarray(targets)
    _check_targets(t, num_classes)
    out = np.zeros((*t.shape, num_classes), dtype=dtype)
    np.put_along_axis(out, t[..., None], 1, axis=-1)
    return out


# ----------------------------------------------------------------------------------------------
# dropout, linear, embedding


def dropout(x: Tensor, p: float = 0.5, training: bool = True, rng: RngLike = None) -> Tensor:
    """Inverted dropout (Srivastava et al., JMLR 2014): zero each element with probability p
    and scale the rest by 1 / (1 - p), so evaluation needs no rescaling.

    Args:
        x: input.
        p: drop probability in [0, 1].
        training: if False, return ``x`` unchanged.
        rng: generator or seed for the mask (None: the engine's default generator).
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability must be in [0, 1], got {p}")
    if not training or p == 0.0:
        return x
    if p == 1.0:
        mask = np.zeros(x.shape, dtype=x.dtype)
    else:
        mask = (default_rng(rng).random(x.shape) >= p).astype(x.dtype) / (1.0 - p)
    return record_op(x.data * mask, (x,), "dropout", lambda g: (g * mask,))


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """Affine map ``y = x W^T + b`` over the last axis (weight (out, in), as in PyTorch).

    Shapes: x (..., in) -> y (..., out). VJPs, with x and g flattened to 2-D:
        dL/dx = g W     dL/dW = g^T x     dL/db = sum_rows g
    """
    if x.shape[-1] != weight.shape[1]:
        raise ValueError(f"linear: input has {x.shape[-1]} features but the weight {weight.shape} expects {weight.shape[1]}")
    x2 = x.data.reshape(-1, weight.shape[1])  # (N, in)
    out = x2 @ weight.data.T  # (N, out)
    if bias is not None:
        out += bias.data
    out = out.reshape(*x.shape[:-1], weight.shape[0])  # (..., out)
    parents = (x, weight) if bias is None else (x, weight, bias)

    def backward(g: np.ndarray) -> list[Any]:
        g2 = g.reshape(-1, weight.shape[0])  # (N, out)
        grads = [
            (g2 @ weight.data).reshape(x.shape) if x.requires_grad else None,
            g2.T @ x2 if weight.requires_grad else None,
        ]
        if bias is not None:
            grads.append(g2.sum(axis=0))
        return grads

    return record_op(out, parents, "linear", backward)


def embedding(indices: Any, weight: Tensor) -> Tensor:
    """Look up rows of ``weight`` (num_embeddings, dim): indices (...) -> (..., dim).

    The backward pass scatter-adds ``g`` into the rows that were read (``np.add.at``:
    an index used twice gets both gradients).
    """
    idx = np.asarray(indices.data if isinstance(indices, Tensor) else indices)
    _check_targets(idx, weight.shape[0])
    out = weight.data[idx]  # (..., dim)
    return record_op(out, (weight,), "embedding", lambda g: (ag.IndexedGrad(idx, g, accumulate=True),))


# ----------------------------------------------------------------------------------------------
# convolution and pooling


def _window(i: int, j: int, sh: int, sw: int, ho: int, wo: int) -> tuple[slice, slice, slice, slice]:
    """Index of the input pixels that kernel offset (i, j) touches, for all output pixels."""
    return (slice(None), slice(None), slice(i, i + sh * (ho - 1) + 1, sh), slice(j, j + sw * (wo - 1) + 1, sw))


def _out_size(size: int, k: int, s: int, p: int, what: str) -> int:
    out = (size + 2 * p - k) // s + 1
    if out < 1:
        raise ValueError(f"{what}: kernel {k} with padding {p} does not fit an input of size {size}")
    return out


class _ConvPlan:
    """Where each kernel offset (i, j) reads the padded input, for im2col and col2im.

    The padded input is kept channel-first, (C, B, Hp, Wp). With stride 1 each image plane is
    flattened (and followed by kw - 1 spare zeros), and the output grid is computed *wide*:
    Ho rows of Wp columns instead of Wo. Then offset (i, j) reads one contiguous run,
    ``plane[i*Wp + j : i*Wp + j + Ho*Wp]``, which NumPy copies much faster than a 2-D window;
    the Wp - Wo extra columns per row are junk that is cropped away (~15% extra work at 3x3).
    Other strides read strided 2-D windows and compute exactly Ho x Wo.
    """

    def __init__(self, shape: tuple[int, int, int, int], kernel: tuple[int, int], stride: tuple[int, int], padding: tuple[int, int]) -> None:
        b, c, h, w = shape
        (self.kh, self.kw), (self.sh, self.sw), (self.ph, self.pw) = kernel, stride, padding
        self.b, self.c, self.h, self.w = b, c, h, w
        self.hp, self.wp = h + 2 * self.ph, w + 2 * self.pw
        self.ho = _out_size(h, self.kh, self.sh, self.ph, "conv2d")
        self.wo = _out_size(w, self.kw, self.sw, self.pw, "conv2d")
        self.wide = self.sh == 1 and self.sw == 1
        self.wc = self.wp if self.wide else self.wo  # columns computed per output row
        self.buf_shape = (c, b, self.hp * self.wp + self.kw - 1) if self.wide else (c, b, self.hp, self.wp)

    def padded_view(self, buf: np.ndarray) -> np.ndarray:
        """The (C, B, Hp, Wp) image inside the input buffer."""
        return buf[:, :, : self.hp * self.wp].reshape(self.c, self.b, self.hp, self.wp) if self.wide else buf

    def window(self, i: int, j: int) -> tuple[slice, ...]:
        """Index into the buffer of what kernel offset (i, j) reads: (C, B, Ho*Wc) or (C, B, Ho, Wo)."""
        if self.wide:
            start = i * self.wp + j
            return (slice(None), slice(None), slice(start, start + self.ho * self.wp))
        return _window(i, j, self.sh, self.sw, self.ho, self.wo)

    def im2col(self, x: np.ndarray) -> np.ndarray:
        """x (B, C, H, W) -> cols (C*kh*kw, B*Ho*Wc)."""
        buf = np.zeros(self.buf_shape, dtype=x.dtype)
        self.padded_view(buf)[:, :, self.ph : self.ph + self.h, self.pw : self.pw + self.w] = x.transpose(1, 0, 2, 3)
        cols = np.empty((self.c, self.kh, self.kw, *buf[self.window(0, 0)].shape[1:]), dtype=x.dtype)
        for i in range(self.kh):  # loops over kernel offsets only; each copy is vectorised
            for j in range(self.kw):
                cols[:, i, j] = buf[self.window(i, j)]
        return cols.reshape(self.c * self.kh * self.kw, -1)

    def col2im(self, d_cols: np.ndarray) -> np.ndarray:
        """d_cols (C*kh*kw, B*Ho*Wc) -> dx (B, C, H, W): each offset's block added back where it was read."""
        d_cols = d_cols.reshape(self.c, self.kh, self.kw, *((self.b, self.ho * self.wp) if self.wide else (self.b, self.ho, self.wo)))
        buf = np.zeros(self.buf_shape, dtype=d_cols.dtype)
        for i in range(self.kh):
            for j in range(self.kw):
                buf[self.window(i, j)] += d_cols[:, i, j]
        dxp = self.padded_view(buf)
        return dxp[:, :, self.ph : self.ph + self.h, self.pw : self.pw + self.w].transpose(1, 0, 2, 3)


def conv2d(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
) -> Tensor:
    """2-D convolution (cross-correlation) by im2col and one matrix product.

    Args:
        x: (B, C, H, W).
        weight: (O, C, kh, kw).
        bias: (O,) or None.
        stride: step between windows, int or (sh, sw).
        padding: zeros added on each side, int or (ph, pw).

    Returns:
        (B, O, Ho, Wo) with ``Ho = (H + 2 ph - kh) // sh + 1`` (same for W).
    """
    if x.ndim != 4 or weight.ndim != 4:
        raise ValueError(f"conv2d needs x (B, C, H, W) and weight (O, C, kh, kw), got {x.shape} and {weight.shape}")
    o, c_w, kh, kw = weight.shape
    if x.shape[1] != c_w:
        raise ValueError(f"conv2d: input has {x.shape[1]} channels but the weight {weight.shape} expects {c_w}")
    plan = _ConvPlan(x.shape, (kh, kw), _pair(stride), _pair(padding))
    b, ho, wo, wc = plan.b, plan.ho, plan.wo, plan.wc

    cols = plan.im2col(x.data)  # (C*kh*kw, B*Ho*Wc)
    w_mat = weight.data.reshape(o, -1)  # (O, C*kh*kw)
    out = w_mat @ cols  # (O, B*Ho*Wc)
    if bias is not None:
        out += bias.data[:, None]
    out = out.reshape(o, b, ho, wc)[:, :, :, :wo].transpose(1, 0, 2, 3)  # (B, O, Ho, Wo), a view
    parents = (x, weight) if bias is None else (x, weight, bias)

    def backward(g: np.ndarray) -> list[Any]:
        if wc == wo:
            g_mat = g.transpose(1, 0, 2, 3).reshape(o, -1)  # (O, B*Ho*Wo)
        else:  # zero gradient for the junk columns of the wide grid
            g_mat = np.zeros((o, b, ho, wc), dtype=g.dtype)
            g_mat[:, :, :, :wo] = g.transpose(1, 0, 2, 3)
            g_mat = g_mat.reshape(o, -1)  # (O, B*Ho*Wc)
        grads: list[Any] = [None, None]
        if weight.requires_grad:
            # dW = g cols^T, computed as (cols g^T)^T: BLAS is faster with the long axis inside.
            grads[1] = (cols @ np.ascontiguousarray(g_mat.T)).T.reshape(weight.shape)  # (O, C, kh, kw)
        if x.requires_grad:
            grads[0] = plan.col2im(w_mat.T @ g_mat)  # (B, C, H, W)
        if bias is not None:
            grads.append(g_mat.sum(axis=1))
        return grads

    return record_op(out, parents, "conv2d", backward)


def _pool_geometry(x: Tensor, kernel_size: Any, stride: Any, padding: Any, what: str) -> tuple[int, ...]:
    if x.ndim != 4:
        raise ValueError(f"{what} needs x of shape (B, C, H, W), got {x.shape}")
    (kh, kw) = _pair(kernel_size)
    (sh, sw) = _pair(kernel_size if stride is None else stride)
    (ph, pw) = _pair(padding)
    if 2 * ph > kh or 2 * pw > kw:
        raise ValueError(f"{what}: padding {(ph, pw)} must be at most half the kernel size {(kh, kw)}")
    ho, wo = _out_size(x.shape[2], kh, sh, ph, what), _out_size(x.shape[3], kw, sw, pw, what)
    return kh, kw, sh, sw, ph, pw, ho, wo


def _pad(x: np.ndarray, ph: int, pw: int, value: float) -> np.ndarray:
    if ph == 0 and pw == 0:
        return x
    b, c, h, w = x.shape
    xp = np.full((b, c, h + 2 * ph, w + 2 * pw), value, dtype=x.dtype)
    xp[:, :, ph : ph + h, pw : pw + w] = x
    return xp


def max_pool2d(x: Tensor, kernel_size: int | tuple[int, int], stride: Any = None, padding: Any = 0) -> Tensor:
    """Max over each kh x kw window (padding with -inf); stride defaults to the kernel size.

    The gradient of each window goes to its maximum (the first one on a tie, like PyTorch).
    """
    kh, kw, sh, sw, ph, pw, ho, wo = _pool_geometry(x, kernel_size, stride, padding, "max_pool2d")
    xp = _pad(x.data, ph, pw, -np.inf)  # (B, C, Hp, Wp)
    out = xp[_window(0, 0, sh, sw, ho, wo)].copy()  # (B, C, Ho, Wo)
    arg = np.zeros(out.shape, dtype=np.int16 if kh * kw < 2**15 else np.int64)  # offset i*kw + j of the max
    for i in range(kh):
        for j in range(kw):
            win = xp[_window(i, j, sh, sw, ho, wo)]
            better = win > out  # strict: the first maximum wins a tie, as in PyTorch
            np.maximum(out, win, out=out)
            # arg = where(better, k, arg), by arithmetic: NumPy's where/copyto(where=) are ~10x slower
            arg += better * (arg.dtype.type(i * kw + j) - arg)

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        dxp = np.zeros(xp.shape, dtype=x.dtype)
        for i in range(kh):
            for j in range(kw):
                dxp[_window(i, j, sh, sw, ho, wo)] += g * (arg == i * kw + j)
        return (dxp[:, :, ph : ph + x.shape[2], pw : pw + x.shape[3]],)

    return record_op(out, (x,), "max_pool2d", backward)


def avg_pool2d(
    x: Tensor, kernel_size: int | tuple[int, int], stride: Any = None, padding: Any = 0, count_include_pad: bool = True
) -> Tensor:
    """Mean over each kh x kw window (zero padding); stride defaults to the kernel size.

    Args:
        x: (B, C, H, W).
        kernel_size: window size.
        stride: window step (default: kernel_size).
        padding: zeros added on each side.
        count_include_pad: divide by kh*kw (PyTorch's default), or only by the number of real
            (non-padding) pixels in the window.
    """
    kh, kw, sh, sw, ph, pw, ho, wo = _pool_geometry(x, kernel_size, stride, padding, "avg_pool2d")
    xp = _pad(x.data, ph, pw, 0.0)
    total = np.zeros((*x.shape[:2], ho, wo), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            total += xp[_window(i, j, sh, sw, ho, wo)]
    if count_include_pad or (ph == 0 and pw == 0):
        divisor: Any = kh * kw
    else:  # count the real pixels under each window: pool a mask of ones
        mask = _pad(np.ones((1, 1, *x.shape[2:]), dtype=x.dtype), ph, pw, 0.0)
        divisor = sum(mask[_window(i, j, sh, sw, ho, wo)] for i in range(kh) for j in range(kw))
    out = total / divisor

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        gs = g / divisor
        dxp = np.zeros(xp.shape, dtype=x.dtype)
        for i in range(kh):
            for j in range(kw):
                dxp[_window(i, j, sh, sw, ho, wo)] += gs
        return (dxp[:, :, ph : ph + x.shape[2], pw : pw + x.shape[3]],)

    return record_op(out, (x,), "avg_pool2d", backward)


# ----------------------------------------------------------------------------------------------
# batch normalisation


def batch_norm(
    x: Tensor,
    running_mean: np.ndarray | None,
    running_var: np.ndarray | None,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Tensor:
    """Batch normalisation (Ioffe & Szegedy, ICML 2015) over every axis but the channels (1).

    Training, per channel over the N = B*H*W (or B, or B*L) values:

        mu = mean(x),  var = mean((x - mu)^2)  (biased),  x_hat = (x - mu) / sqrt(var + eps)
        y = gamma x_hat + beta
        running_mean <- (1 - momentum) running_mean + momentum mu           (in place)
        running_var  <- (1 - momentum) running_var  + momentum var * N/(N-1)  (unbiased)

    Evaluation uses the running statistics instead of mu and var. The fused training VJP is

        dL/dx = (1 / (N sigma)) (N dx_hat - sum dx_hat - x_hat sum(dx_hat x_hat)),  dx_hat = g gamma

    Args:
        x: (B, C), (B, C, L) or (B, C, H, W).
        running_mean: (C,) array updated in place when training (None: do not track).
        running_var: (C,) array updated in place when training.
        weight: gamma (C,) or None (= 1).
        bias: beta (C,) or None (= 0).
        training: use batch statistics (and update the running ones).
        momentum: weight of the new batch in the running averages.
        eps: added to the variance.
    """
    if x.ndim < 2:
        raise ValueError(f"batch_norm needs x of shape (B, C, ...), got {x.shape}")
    c = x.shape[1]
    axes = (0, *range(2, x.ndim))
    bshape = (1, c) + (1,) * (x.ndim - 2)  # broadcast a (C,) vector against x
    n = x.size // c
    if training:
        if n < 2:
            raise ValueError(f"batch_norm in training mode needs more than one value per channel, got input {x.shape}")
        mu = x.data.mean(axis=axes)
        centered = x.data - mu.reshape(bshape)
        var = (centered * centered).mean(axis=axes)
        if running_mean is not None and running_var is not None:
            running_mean *= 1 - momentum
            running_mean += momentum * mu
            running_var *= 1 - momentum
            running_var += momentum * var * (n / (n - 1))
    else:
        if running_mean is None or running_var is None:
            raise ValueError("batch_norm in evaluation mode needs running_mean and running_var")
        mu, var = running_mean.astype(x.dtype, copy=False), running_var.astype(x.dtype, copy=False)
        centered = x.data - mu.reshape(bshape)
    inv_std = (1.0 / np.sqrt(var + eps)).astype(x.dtype, copy=False)  # (C,)
    x_hat = centered * inv_std.reshape(bshape)
    out = x_hat * weight.data.reshape(bshape) if weight is not None else x_hat.copy()
    if bias is not None:
        out += bias.data.reshape(bshape)
    parents = tuple(t for t in (x, weight, bias) if t is not None)

    def backward(g: np.ndarray) -> list[Any]:
        dx_hat = g * weight.data.reshape(bshape) if weight is not None else g
        if training:
            s1 = dx_hat.sum(axis=axes, keepdims=True)
            s2 = (dx_hat * x_hat).sum(axis=axes, keepdims=True)
            dx = (inv_std.reshape(bshape) / n) * (n * dx_hat - s1 - x_hat * s2)
        else:
            dx = dx_hat * inv_std.reshape(bshape)
        grads: list[Any] = [dx]
        if weight is not None:
            grads.append((g * x_hat).sum(axis=axes))
        if bias is not None:
            grads.append(g.sum(axis=axes))
        return grads

    return record_op(out, parents, "batch_norm", backward)

