"""archlab.scratch.autograd: every op against finite differences and against torch autograd.

Each case in CASES is one expression written twice, for scratch tensors and for torch tensors,
with the input shapes; the tests check (1) gradcheck (central differences, float64) and
(2) the outputs and all input gradients equal torch's to 1e-10 (max abs difference).
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from archlab.scratch import (
    IndexedGrad,
    Tensor,
    concatenate,
    gradcheck,
    maximum,
    minimum,
    no_grad,
    record_op,
    stack,
    where,
)
from archlab.scratch.autograd import is_grad_enabled, unbroadcast

TOL = 1e-10
IDX = np.array([0, 2, 0, 0, 1])  # repeated indices: the backward must add, not overwrite
MASK = np.array([[True, False, True, True], [False, False, True, False], [True, True, False, True]])


def _torch_where(c, a, b):
    return torch.where(torch.as_tensor(c), a, b)


# name: (input shapes, positive inputs?, scratch fn, torch fn)
CASES = {
    "add": ([(3, 4), (3, 4)], False, lambda a, b: a + b, lambda a, b: a + b),
    "add_broadcast_row": ([(3, 4), (4,)], False, lambda a, b: a + b, lambda a, b: a + b),
    "add_broadcast_both": ([(3, 1), (1, 4)], False, lambda a, b: a + b, lambda a, b: a + b),
    "add_scalar": ([(3, 4)], False, lambda a: 2.5 + a + 1, lambda a: 2.5 + a + 1),
    "sub_broadcast": ([(2, 3, 4), (3, 1)], False, lambda a, b: a - b, lambda a, b: a - b),
    "rsub": ([(3, 4)], False, lambda a: 1.0 - a, lambda a: 1.0 - a),
    "mul_broadcast": ([(2, 3, 4), (1, 3, 1)], False, lambda a, b: a * b, lambda a, b: a * b),
    "mul_self": ([(3, 4)], False, lambda a: a * a, lambda a: a * a),
    "div": ([(3, 4), (3, 4)], True, lambda a, b: a / b, lambda a, b: a / b),
    "div_broadcast": ([(3, 4), (4,)], True, lambda a, b: a / b, lambda a, b: a / b),
    "rdiv": ([(3, 4)], True, lambda a: 2.0 / a, lambda a: 2.0 / a),
    "neg": ([(3, 4)], False, lambda a: -a, lambda a: -a),
    "pow_int": ([(3, 4)], False, lambda a: a**3, lambda a: a**3),
    "pow_float": ([(3, 4)], True, lambda a: a**1.7, lambda a: a**1.7),
    "pow_negative": ([(3, 4)], True, lambda a: a**-0.5, lambda a: a**-0.5),
    "pow_tensor": ([(3, 4), (3, 4)], True, lambda a, b: a**b, lambda a, b: a**b),
    "pow_tensor_broadcast": ([(3, 4), (4,)], True, lambda a, b: a**b, lambda a, b: a**b),
    "rpow": ([(3, 4)], False, lambda a: 2.0**a, lambda a: 2.0**a),
    "matmul_2d": ([(3, 4), (4, 5)], False, lambda a, b: a @ b, lambda a, b: a @ b),
    "matmul_batched": ([(2, 3, 4), (2, 4, 5)], False, lambda a, b: a @ b, lambda a, b: a @ b),
    "matmul_broadcast_batch": ([(2, 3, 4), (4, 5)], False, lambda a, b: a @ b, lambda a, b: a @ b),
    "matmul_broadcast_batch_left": ([(3, 4), (2, 4, 5)], False, lambda a, b: a @ b, lambda a, b: a @ b),
    "matmul_vec_mat": ([(4,), (4, 5)], False, lambda a, b: a @ b, lambda a, b: a @ b),
    "matmul_mat_vec": ([(3, 4), (4,)], False, lambda a, b: a @ b, lambda a, b: a @ b),
    "matmul_vec_vec": ([(4,), (4,)], False, lambda a, b: a @ b, lambda a, b: a @ b),
    "matmul_batched_vec": ([(2, 3, 4), (4,)], False, lambda a, b: a @ b, lambda a, b: a @ b),
    "sum_all": ([(3, 4)], False, lambda a: a.sum(), lambda a: a.sum()),
    "sum_axis": ([(2, 3, 4)], False, lambda a: a.sum(axis=1), lambda a: a.sum(dim=1)),
    "sum_axes_keepdims": ([(2, 3, 4)], False, lambda a: a.sum(axis=(0, 2), keepdims=True), lambda a: a.sum(dim=(0, 2), keepdim=True)),
    "sum_negative_axis": ([(2, 3, 4)], False, lambda a: a.sum(axis=-1), lambda a: a.sum(dim=-1)),
    "mean_all": ([(3, 4)], False, lambda a: a.mean(), lambda a: a.mean()),
    "mean_axis_keepdims": ([(2, 3, 4)], False, lambda a: a.mean(axis=2, keepdims=True), lambda a: a.mean(dim=2, keepdim=True)),
    "var_all": ([(3, 4)], False, lambda a: a.var(), lambda a: a.var(correction=0)),
    "var_axis_unbiased": ([(3, 4)], False, lambda a: a.var(axis=0, ddof=1), lambda a: a.var(dim=0, correction=1)),
    "max_all": ([(3, 4)], False, lambda a: a.max(), lambda a: a.amax()),
    "max_axis": ([(3, 4)], False, lambda a: a.max(axis=1), lambda a: a.amax(dim=1)),
    "max_axes_keepdims": ([(2, 3, 4)], False, lambda a: a.max(axis=(0, 2), keepdims=True), lambda a: a.amax(dim=(0, 2), keepdim=True)),
    "min_axis": ([(3, 4)], False, lambda a: a.min(axis=0), lambda a: a.amin(dim=0)),
    "exp": ([(3, 4)], False, lambda a: a.exp(), lambda a: a.exp()),
    "log": ([(3, 4)], True, lambda a: a.log(), lambda a: a.log()),
    "sqrt": ([(3, 4)], True, lambda a: a.sqrt(), lambda a: a.sqrt()),
    "abs": ([(3, 4)], False, lambda a: a.abs(), lambda a: a.abs()),
    "tanh": ([(3, 4)], False, lambda a: a.tanh(), lambda a: a.tanh()),
    "sigmoid": ([(3, 4)], False, lambda a: a.sigmoid(), lambda a: a.sigmoid()),
    "relu": ([(3, 4)], False, lambda a: a.relu(), lambda a: a.relu()),
    "clip_both": ([(3, 4)], False, lambda a: a.clip(-0.5, 0.5), lambda a: a.clamp(-0.5, 0.5)),
    "clip_min": ([(3, 4)], False, lambda a: a.clip(min=0.1), lambda a: a.clamp(min=0.1)),
    "reshape": ([(2, 3, 4)], False, lambda a: a.reshape(4, 6) * 2, lambda a: a.reshape(4, 6) * 2),
    "reshape_infer": ([(2, 3, 4)], False, lambda a: a.reshape((-1, 4)), lambda a: a.reshape(-1, 4)),
    "flatten": ([(2, 3, 4)], False, lambda a: a.flatten(1), lambda a: a.flatten(1)),
    "transpose_reverse": ([(2, 3, 4)], False, lambda a: a.transpose(), lambda a: a.permute(2, 1, 0)),
    "transpose_perm": ([(2, 3, 4)], False, lambda a: a.transpose(1, 2, 0), lambda a: a.permute(1, 2, 0)),
    "T": ([(3, 4)], False, lambda a: a.T, lambda a: a.T),
    "swapaxes": ([(2, 3, 4)], False, lambda a: a.swapaxes(0, 2), lambda a: a.transpose(0, 2)),
    "unsqueeze_squeeze": ([(3, 4)], False, lambda a: a.unsqueeze(1).squeeze(), lambda a: a.unsqueeze(1).squeeze()),
    "getitem_int": ([(3, 4)], False, lambda a: a[1], lambda a: a[1]),
    "getitem_slice": ([(5, 4)], False, lambda a: a[1:4, ::2], lambda a: a[1:4, ::2]),
    "getitem_ellipsis_none": ([(2, 3, 4)], False, lambda a: a[..., 1][None], lambda a: a[..., 1][None]),
    "getitem_negative": ([(5, 4)], False, lambda a: a[-2:, -1], lambda a: a[-2:, -1]),
    "getitem_repeated_rows": ([(3, 4)], False, lambda a: a[IDX], lambda a: a[torch.as_tensor(IDX)]),
    "getitem_repeated_cols": ([(3, 4)], False, lambda a: a[:, [1, 1, 3]], lambda a: a[:, [1, 1, 3]]),
    "getitem_pairs": ([(3, 4)], False, lambda a: a[IDX, IDX[::-1] % 4], lambda a: a[torch.as_tensor(IDX), torch.as_tensor(IDX[::-1] % 4)]),
    "getitem_2d_index": ([(3, 4)], False, lambda a: a[np.array([[0, 1], [1, 1]])], lambda a: a[torch.tensor([[0, 1], [1, 1]])]),
    "getitem_mask": ([(3, 4)], False, lambda a: a[MASK], lambda a: a[torch.as_tensor(MASK)]),
    "getitem_tensor_index": ([(3, 4)], False, lambda a: a[Tensor(IDX)], lambda a: a[torch.as_tensor(IDX)]),
    "concatenate": ([(2, 3), (4, 3), (1, 3)], False, lambda a, b, c: concatenate([a, b, c], axis=0), lambda a, b, c: torch.cat([a, b, c], 0)),
    "concatenate_axis1": ([(2, 3), (2, 1)], False, lambda a, b: concatenate([a, b], axis=-1), lambda a, b: torch.cat([a, b], -1)),
    "stack": ([(2, 3), (2, 3)], False, lambda a, b: stack([a, b], axis=1), lambda a, b: torch.stack([a, b], 1)),
    "where": ([(3, 4), (3, 4)], False, lambda a, b: where(MASK, a, b), lambda a, b: _torch_where(MASK, a, b)),
    "where_broadcast_scalar": ([(3, 4)], False, lambda a: where(MASK, a, 0.0), lambda a: _torch_where(MASK, a, torch.tensor(0.0, dtype=a.dtype))),
    "maximum": ([(3, 4), (3, 4)], False, lambda a, b: maximum(a, b), lambda a, b: torch.maximum(a, b)),
    "minimum_broadcast": ([(3, 4), (4,)], False, lambda a, b: minimum(a, b), lambda a, b: torch.minimum(a, b)),
    "maximum_method_scalar": ([(3, 4)], False, lambda a: a.maximum(0.2), lambda a: torch.clamp(a, min=0.2)),
    "chain_reuse": ([(3, 4), (4,)], False, lambda a, b: ((a * b).exp() + a).sum(axis=1) * (a - b).mean(), lambda a, b: ((a * b).exp() + a).sum(dim=1) * (a - b).mean()),
}


def _inputs(shapes: list[tuple[int, ...]], positive: bool, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    if positive:
        return [rng.uniform(0.5, 2.0, size=s) for s in shapes]
    return [rng.standard_normal(s) for s in shapes]


def _max_diff(a: np.ndarray, b: torch.Tensor) -> float:
    b = b.detach().numpy()
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.max(np.abs(a - b), initial=0.0))


@pytest.mark.parametrize("name", list(CASES))
def test_op_gradcheck(name: str) -> None:
    shapes, positive, f, _ = CASES[name]
    xs = [Tensor(a, requires_grad=True) for a in _inputs(shapes, positive)]
    assert gradcheck(f, xs)


@pytest.mark.parametrize("name", list(CASES))
def test_op_matches_torch(name: str) -> None:
    shapes, positive, f, f_torch = CASES[name]
    arrays = _inputs(shapes, positive, seed=1)
    xs = [Tensor(a.copy(), requires_grad=True) for a in arrays]
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    out, out_t = f(*xs), f_torch(*ts)
    assert _max_diff(out.data, out_t) <= TOL
    g = np.random.default_rng(2).standard_normal(out.shape)
    out.backward(g)
    out_t.backward(torch.tensor(g))
    for x, t in zip(xs, ts):
        assert _max_diff(x.grad, t.grad) <= TOL


# ----------------------------------------------------------------------------------------------
# engine behaviour


def test_tensor_construction_dtypes() -> None:
    assert Tensor([1, 2, 3]).dtype == np.float64  # Python lists become float64
    assert Tensor(3).dtype == np.float64
    assert Tensor(np.ones(3, dtype=np.float32)).dtype == np.float32  # arrays keep theirs
    assert Tensor(np.arange(3)).dtype == np.int64
    t = Tensor(np.zeros((2, 3)), requires_grad=True, name="w")
    assert (t.shape, t.ndim, t.size, t.name, t.grad) == ((2, 3), 2, 6, "w", None)
    assert t.T.shape == (3, 2) and len(t) == 2
    with pytest.raises(TypeError, match="floating-point"):
        Tensor(np.arange(3), requires_grad=True)
    assert "requires_grad=True" in repr(t)


def test_float32_stays_float32_through_forward_and_backward() -> None:
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((4, 3)).astype(np.float32), requires_grad=True)
    w = Tensor(rng.standard_normal((3, 2)).astype(np.float32), requires_grad=True)
    y = ((x @ w).tanh() * 0.5 + 1.0) ** 2 / 3.0 - np.float64(0.25)  # Python and NumPy scalars
    y = where(y > 1.0, y, 1.0).exp().log().sqrt().mean()
    assert y.dtype == np.float32
    y.backward()
    assert x.grad.dtype == np.float32 and w.grad.dtype == np.float32


def test_gradients_accumulate_over_backward_calls_and_zero_grad_clears() -> None:
    x = Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    (x * x).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad, 4 * x.data)  # 2x twice
    x.zero_grad()
    assert x.grad is None


def test_shared_subexpression_gradients_are_summed() -> None:
    x = Tensor(np.array([0.3, -1.2]), requires_grad=True)
    y = x.exp()
    z = (y * y + y).sum()  # y used three times: dz/dx = (2y + 1) y
    z.backward()
    np.testing.assert_allclose(x.grad, (2 * np.exp(x.data) + 1) * np.exp(x.data))


def test_leaf_grads_are_independent_arrays() -> None:
    """Two leaves fed the same upstream gradient must not share an array (an optimizer scales
    .grad in place)."""
    a, b = Tensor(np.ones(3), requires_grad=True), Tensor(np.ones(3), requires_grad=True)
    (a + b).backward(np.ones(3))
    a.grad *= 10
    np.testing.assert_array_equal(b.grad, np.ones(3))


def test_no_grad_records_nothing_and_restores_state() -> None:
    x = Tensor(np.ones(3), requires_grad=True)
    with no_grad():
        assert not is_grad_enabled()
        y = x * 2
    assert is_grad_enabled()
    assert not y.requires_grad and y.parents == () and y.op == ""

    @no_grad()
    def f(t: Tensor) -> Tensor:
        return t + 1

    assert not f(x).requires_grad and is_grad_enabled()


def test_detach_cuts_the_graph() -> None:
    x = Tensor(np.array([2.0]), requires_grad=True)
    y = x * x.detach()  # d/dx = x (the detached factor is a constant)
    y.backward()
    np.testing.assert_allclose(x.grad, [2.0])
    assert x.detach().data is x.data and not x.detach().requires_grad


def test_retain_grad_keeps_intermediate_gradients() -> None:
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    h = (x * 3).retain_grad()
    m = x * 4
    (h * h + m).sum().backward()
    np.testing.assert_allclose(h.grad, 2 * h.data)
    assert m.grad is None  # intermediate, not retained


def test_backward_errors_are_clear() -> None:
    with pytest.raises(RuntimeError, match="does not require grad"):
        Tensor(np.ones(2)).sum().backward()
    x = Tensor(np.ones(2), requires_grad=True)
    with pytest.raises(RuntimeError, match="one-element"):
        (x * 2).backward()
    with pytest.raises(ValueError, match="does not match"):
        (x * 2).backward(np.ones(3))


def test_backward_with_explicit_gradient() -> None:
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    (x * 3).backward(np.array([1.0, 10.0]))
    np.testing.assert_allclose(x.grad, [3.0, 30.0])


def test_deep_graph_needs_no_recursion() -> None:
    x = Tensor(np.array([1.0]), requires_grad=True)
    y = x
    for _ in range(sys.getrecursionlimit() + 500):
        y = y * 1.0 + 0.0
    y.sum().backward()
    np.testing.assert_allclose(x.grad, [1.0])


def test_comparisons_return_plain_boolean_arrays() -> None:
    x = Tensor(np.array([1.0, 2.0, 3.0]))
    for mask in (x > 2, x >= 2, x < 2, x <= 2, x == 2, x != Tensor(np.array([1.0, 0.0, 3.0]))):
        assert isinstance(mask, np.ndarray) and mask.dtype == bool
    np.testing.assert_array_equal(x > 1.5, [False, True, True])
    assert {x: 1}[x] == 1  # still hashable by identity


def test_numpy_arrays_on_the_left_give_tensors() -> None:
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = np.array([3.0, 4.0]) * x + np.array([1.0, 1.0])
    assert isinstance(y, Tensor)
    y.sum().backward()
    np.testing.assert_allclose(x.grad, [3.0, 4.0])


def test_item_numpy_and_argmax() -> None:
    t = Tensor(np.array([[1.0, 5.0], [7.0, 2.0]]))
    assert t.sum().item() == 15.0 and t.numpy() is t.data
    np.testing.assert_array_equal(t.argmax(axis=1), [1, 0])
    with pytest.raises(ValueError, match="one element"):
        t.item()


def test_max_splits_gradient_between_ties_like_torch_amax() -> None:
    a = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]])
    x, t = Tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    x.max(axis=1).sum().backward()
    t.amax(dim=1).sum().backward()
    np.testing.assert_allclose(x.grad, t.grad.numpy(), atol=TOL)
    np.testing.assert_allclose(x.grad, [[0, 0.5, 0.5], [1 / 3, 1 / 3, 1 / 3]])


def test_maximum_splits_gradient_on_ties_like_torch() -> None:
    a, b = np.array([1.0, 2.0, 3.0]), np.array([1.0, 5.0, 0.0])
    xa, xb = Tensor(a, requires_grad=True), Tensor(b, requires_grad=True)
    ta, tb = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    maximum(xa, xb).sum().backward()
    torch.maximum(ta, tb).sum().backward()
    np.testing.assert_allclose(xa.grad, ta.grad.numpy())
    np.testing.assert_allclose(xb.grad, tb.grad.numpy())


def test_kinks_follow_torch_conventions() -> None:
    a = np.array([-1.0, 0.0, 1.0, 0.5])
    for f, ft in [
        (lambda x: x.abs(), lambda x: x.abs()),
        (lambda x: x.relu(), lambda x: x.relu()),
        (lambda x: x.clip(0.0, 0.5), lambda x: x.clamp(0.0, 0.5)),
    ]:
        x, t = Tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
        f(x).sum().backward()
        ft(t).sum().backward()
        np.testing.assert_array_equal(x.grad, t.grad.numpy())


def test_pow_tensor_exponent_at_zero_base() -> None:
    a, b = np.array([0.0, 0.0, 2.0]), np.array([2.0, 0.0, 3.0])
    xa, xb = Tensor(a, requires_grad=True), Tensor(b, requires_grad=True)
    ta, tb = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    (xa**xb).sum().backward()
    (ta**tb).sum().backward()
    np.testing.assert_allclose(xb.grad, tb.grad.numpy())
    np.testing.assert_allclose(xa.grad, ta.grad.numpy())


def test_astype_is_differentiable_and_casts_gradient_back() -> None:
    x = Tensor(np.array([1.0, 2.0], dtype=np.float32), requires_grad=True)
    y = x.astype(np.float64) * 3
    assert y.dtype == np.float64
    y.sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_allclose(x.grad, [3.0, 3.0])


def test_unbroadcast() -> None:
    g = np.ones((2, 3, 4))
    assert unbroadcast(g, (3, 4)).shape == (3, 4)
    np.testing.assert_array_equal(unbroadcast(g, (3, 1)), np.full((3, 1), 8.0))
    np.testing.assert_array_equal(unbroadcast(g, (1, 1, 4)), np.full((1, 1, 4), 6.0))
    assert unbroadcast(g, ()).shape == ()


def test_record_op_defines_a_custom_op() -> None:
    """A user-defined op (softplus) enters the graph through record_op and passes gradcheck."""

    def softplus(x: Tensor) -> Tensor:
        out = np.logaddexp(0, x.data)
        return record_op(out, (x,), "softplus", lambda g: (g / (1 + np.exp(-x.data)),))

    x = Tensor(np.random.default_rng(0).standard_normal((3, 2)), requires_grad=True)
    assert gradcheck(softplus, [x])
    assert softplus(x).op == "softplus" and softplus(x).parents == (x,)


def test_indexed_grad_slices_accumulate_into_one_buffer() -> None:
    """Reading a tensor step by step (an unrolled RNN) sums the slice gradients correctly."""
    x = Tensor(np.random.default_rng(0).standard_normal((2, 5, 3)), requires_grad=True)
    total = x[:, 0] * 1.0
    for t in range(1, 5):
        total = total + x[:, t] * (t + 1)
    total.sum().backward()
    expected = np.broadcast_to(np.arange(1, 6, dtype=float)[None, :, None], x.shape)
    np.testing.assert_allclose(x.grad, expected)
    buf = np.zeros(4)
    IndexedGrad(np.array([1, 1, 3]), np.array([1.0, 2.0, 3.0]), accumulate=True).add_to(buf)
    np.testing.assert_array_equal(buf, [0.0, 3.0, 0.0, 3.0])


def test_matmul_rejects_scalars() -> None:
    with pytest.raises(ValueError, match="at least one dimension"):
        Tensor(np.ones(3)) @ Tensor(2.0)


def test_clip_needs_a_bound_and_axis_errors() -> None:
    with pytest.raises(ValueError, match="min or max"):
        Tensor(np.ones(3)).clip()
    with pytest.raises(ValueError, match="out of range"):
        Tensor(np.ones((2, 2))).sum(axis=2)
