"""archlab.scratch.functional against finite differences and torch.nn.functional (float64).

CASES lists each function once per configuration: the differentiable inputs (shape and kind of
values) and the call written for scratch and for torch. Targets, masks and other constants are
bound inside the lambdas.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

from archlab.scratch import Tensor, gradcheck
from archlab.scratch import functional as F

TOL = 1e-10
Y3 = np.array([0, 2, 1, 2])  # class targets for 4 samples, 3 classes
Y_SEQ = np.array([[0, 2, 1], [1, 1, 0]])  # (N=2, d=3) targets for (2, 3, 3) logits
Y_IGN = np.array([0, -100, 1, 2])  # one ignored target
PM1 = np.array([1.0, -1.0, -1.0, 1.0, 1.0])  # +-1 labels


def _bits(shape: tuple[int, ...], seed: int = 5) -> np.ndarray:
    return (np.random.default_rng(seed).random(shape) > 0.5).astype(np.float64)


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(a)


def _crammer_singer(s: torch.Tensor, y: np.ndarray, margin: float = 1.0) -> torch.Tensor:
    y = torch.as_tensor(y)
    true = s.gather(1, y[:, None]).squeeze(1)
    others = s.scatter(1, y[:, None], float("-inf")).amax(dim=1)
    return (margin + others - true).clamp_min(0).mean()


def _perceptron(s: torch.Tensor, y: np.ndarray) -> torch.Tensor:
    y = torch.as_tensor(y)
    return (s.amax(dim=1) - s.gather(1, y[:, None]).squeeze(1)).clamp_min(0).mean()


# name: (inputs [(shape, kind)], scratch fn, torch fn); kind: n(ormal), p(ositive), q (probability)
CASES = {
    "sigmoid": ([((3, 4), "n")], F.sigmoid, torch.sigmoid),
    "tanh": ([((3, 4), "n")], F.tanh, torch.tanh),
    "relu": ([((3, 4), "n")], F.relu, TF.relu),
    "leaky_relu": ([((3, 4), "n")], F.leaky_relu, TF.leaky_relu),
    "leaky_relu_0.2": ([((3, 4), "n")], lambda x: F.leaky_relu(x, 0.2), lambda x: TF.leaky_relu(x, 0.2)),
    "elu": ([((3, 4), "n")], F.elu, TF.elu),
    "elu_alpha": ([((3, 4), "n")], lambda x: F.elu(x, 0.5), lambda x: TF.elu(x, 0.5)),
    "selu": ([((3, 4), "n")], F.selu, TF.selu),
    "gelu": ([((3, 4), "n")], F.gelu, TF.gelu),
    "gelu_tanh": ([((3, 4), "n")], lambda x: F.gelu(x, "tanh"), lambda x: TF.gelu(x, approximate="tanh")),
    "softmax": ([((3, 4), "n")], F.softmax, lambda x: TF.softmax(x, -1)),
    "softmax_axis0": ([((3, 4), "n")], lambda x: F.softmax(x, axis=0), lambda x: TF.softmax(x, 0)),
    "log_softmax": ([((3, 4), "n")], F.log_softmax, lambda x: TF.log_softmax(x, -1)),
    "log_softmax_3d": ([((2, 3, 4), "n")], lambda x: F.log_softmax(x, 1), lambda x: TF.log_softmax(x, 1)),
    "mse": ([((3, 4), "n"), ((3, 4), "n")], F.mse_loss, TF.mse_loss),
    "mse_sum": ([((3, 4), "n")], lambda p: F.mse_loss(p, np.ones((3, 4)), "sum"), lambda p: TF.mse_loss(p, torch.ones(3, 4, dtype=p.dtype), reduction="sum")),
    "mse_none": ([((3, 4), "n")], lambda p: F.mse_loss(p, np.ones((3, 4)), "none"), lambda p: TF.mse_loss(p, torch.ones(3, 4, dtype=p.dtype), reduction="none")),
    "bce": ([((3, 4), "q")], lambda p: F.binary_cross_entropy(p, _bits((3, 4))), lambda p: TF.binary_cross_entropy(p, _t(_bits((3, 4))))),
    "bce_soft_targets": ([((3, 4), "q"), ((3, 4), "q")], F.binary_cross_entropy, TF.binary_cross_entropy),
    "bce_sum": ([((5,), "q")], lambda p: F.binary_cross_entropy(p, _bits((5,)), "sum"), lambda p: TF.binary_cross_entropy(p, _t(_bits((5,))), reduction="sum")),
    "bce_logits": ([((3, 4), "n")], lambda z: F.binary_cross_entropy_with_logits(z, _bits((3, 4))), lambda z: TF.binary_cross_entropy_with_logits(z, _t(_bits((3, 4))))),
    "bce_logits_soft_targets": ([((3, 4), "n"), ((3, 4), "q")], F.binary_cross_entropy_with_logits, TF.binary_cross_entropy_with_logits),
    "bce_logits_none": ([((6,), "n")], lambda z: F.binary_cross_entropy_with_logits(z, _bits((6,)), "none"), lambda z: TF.binary_cross_entropy_with_logits(z, _t(_bits((6,))), reduction="none")),
    "cross_entropy": ([((4, 3), "n")], lambda z: F.cross_entropy(z, Y3), lambda z: TF.cross_entropy(z, _t(Y3))),
    "cross_entropy_sum": ([((4, 3), "n")], lambda z: F.cross_entropy(z, Y3, "sum"), lambda z: TF.cross_entropy(z, _t(Y3), reduction="sum")),
    "cross_entropy_none": ([((4, 3), "n")], lambda z: F.cross_entropy(z, Y3, "none"), lambda z: TF.cross_entropy(z, _t(Y3), reduction="none")),
    "cross_entropy_smoothing": ([((4, 3), "n")], lambda z: F.cross_entropy(z, Y3, label_smoothing=0.1), lambda z: TF.cross_entropy(z, _t(Y3), label_smoothing=0.1)),
    "cross_entropy_ignore": ([((4, 3), "n")], lambda z: F.cross_entropy(z, Y_IGN), lambda z: TF.cross_entropy(z, _t(Y_IGN))),
    "cross_entropy_spatial": ([((2, 3, 3), "n")], lambda z: F.cross_entropy(z, Y_SEQ), lambda z: TF.cross_entropy(z, _t(Y_SEQ))),
    "cross_entropy_spatial_none": ([((2, 3, 3), "n")], lambda z: F.cross_entropy(z, Y_SEQ, "none"), lambda z: TF.cross_entropy(z, _t(Y_SEQ), reduction="none")),
    "hinge_binary": ([((5,), "n")], lambda s: F.hinge_loss(s, PM1), lambda s: (1 - s * _t(PM1)).clamp_min(0).mean()),
    "hinge_binary_column": ([((5, 1), "n")], lambda s: F.hinge_loss(s, PM1, margin=0.5), lambda s: (0.5 - s[:, 0] * _t(PM1)).clamp_min(0).mean()),
    "hinge_multiclass": ([((4, 3), "n")], lambda s: F.hinge_loss(s, Y3), lambda s: _crammer_singer(s, Y3)),
    "perceptron_multiclass": ([((4, 3), "n")], lambda s: F.perceptron_criterion(s, Y3), lambda s: _perceptron(s, Y3)),
    "perceptron_binary": ([((5,), "n")], lambda s: F.perceptron_criterion(s, PM1), lambda s: (-s * _t(PM1)).clamp_min(0).mean()),
    "l1_penalty": ([((3, 4), "n"), ((4,), "n")], lambda a, b: F.l1_penalty([a, b]), lambda a, b: a.abs().sum() + b.abs().sum()),
    "l2_penalty": ([((3, 4), "n"), ((4,), "n")], lambda a, b: F.l2_penalty([a, b]), lambda a, b: (a * a).sum() + (b * b).sum()),
    "linear": ([((5, 4), "n"), ((3, 4), "n"), ((3,), "n")], F.linear, TF.linear),
    "linear_no_bias": ([((5, 4), "n"), ((3, 4), "n")], F.linear, TF.linear),
    "linear_3d_input": ([((2, 5, 4), "n"), ((3, 4), "n"), ((3,), "n")], F.linear, TF.linear),
    "linear_1d_input": ([((4,), "n"), ((3, 4), "n"), ((3,), "n")], F.linear, TF.linear),
    "embedding_repeated": ([((5, 3), "n")], lambda w: F.embedding(np.array([[0, 4, 4], [1, 4, 0]]), w), lambda w: TF.embedding(torch.tensor([[0, 4, 4], [1, 4, 0]]), w)),
}

# conv2d: (x shape, weight shape, stride, padding)
CONV = {
    "s1_p0": ((2, 3, 7, 6), (4, 3, 3, 3), 1, 0),
    "s1_p1": ((2, 3, 7, 6), (4, 3, 3, 3), 1, 1),
    "s2_p1": ((2, 3, 7, 6), (4, 3, 3, 3), 2, 1),
    "s2_p0": ((2, 3, 8, 8), (2, 3, 3, 3), 2, 0),
    "s3_p2": ((1, 2, 7, 7), (3, 2, 3, 3), 3, 2),
    "rect_kernel_mixed": ((2, 2, 6, 7), (3, 2, 3, 2), (2, 1), (1, 0)),
    "1x1": ((2, 3, 4, 4), (5, 3, 1, 1), 1, 0),
    "5x5_p2": ((1, 2, 6, 6), (2, 2, 5, 5), 1, 2),
}
for _name, (_xs, _ws, _s, _p) in CONV.items():
    CASES[f"conv2d_{_name}"] = (
        [(_xs, "n"), (_ws, "n"), ((_ws[0],), "n")],
        lambda x, w, b, s=_s, p=_p: F.conv2d(x, w, b, s, p),
        lambda x, w, b, s=_s, p=_p: TF.conv2d(x, w, b, s, p),
    )
CASES["conv2d_no_bias"] = (
    [((2, 3, 5, 5), "n"), ((4, 3, 3, 3), "n")],
    lambda x, w: F.conv2d(x, w, None, 1, 1),
    lambda x, w: TF.conv2d(x, w, None, 1, 1),
)

# pools: (x shape, kernel, stride, padding)
POOL = {
    "k2": ((2, 3, 6, 6), 2, None, 0),
    "k3_s2_p1": ((2, 2, 7, 7), 3, 2, 1),
    "k2_s1": ((1, 2, 5, 5), 2, 1, 0),
    "rect": ((2, 2, 6, 7), (2, 3), (1, 2), (1, 1)),
    "odd_size_floor": ((1, 2, 7, 5), 2, None, 0),
}
for _name, (_xs, _k, _s, _p) in POOL.items():
    CASES[f"max_pool2d_{_name}"] = ([(_xs, "n")], lambda x, k=_k, s=_s, p=_p: F.max_pool2d(x, k, s, p), lambda x, k=_k, s=_s, p=_p: TF.max_pool2d(x, k, s, p))
    CASES[f"avg_pool2d_{_name}"] = ([(_xs, "n")], lambda x, k=_k, s=_s, p=_p: F.avg_pool2d(x, k, s, p), lambda x, k=_k, s=_s, p=_p: TF.avg_pool2d(x, k, s, p))
CASES["avg_pool2d_exclude_pad"] = (
    [((2, 2, 7, 7), "n")],
    lambda x: F.avg_pool2d(x, 3, 2, 1, count_include_pad=False),
    lambda x: TF.avg_pool2d(x, 3, 2, 1, count_include_pad=False),
)

# batch_norm in training mode (functional; running stats compared separately)
for _shape in [(6, 3), (4, 3, 5), (3, 2, 4, 4)]:
    _c = _shape[1]
    CASES[f"batch_norm_train_{len(_shape)}d"] = (
        [(_shape, "n"), ((_c,), "p"), ((_c,), "n")],
        lambda x, w, b, c=_c: F.batch_norm(x, np.zeros(c), np.ones(c), w, b, training=True),
        lambda x, w, b, c=_c: TF.batch_norm(x, torch.zeros(c, dtype=x.dtype), torch.ones(c, dtype=x.dtype), w, b, training=True),
    )
CASES["batch_norm_eval"] = (
    [((4, 3, 2, 2), "n"), ((3,), "p"), ((3,), "n")],
    lambda x, w, b: F.batch_norm(x, np.array([0.1, -0.2, 0.3]), np.array([0.5, 2.0, 1.5]), w, b, training=False),
    lambda x, w, b: TF.batch_norm(x, torch.tensor([0.1, -0.2, 0.3], dtype=x.dtype), torch.tensor([0.5, 2.0, 1.5], dtype=x.dtype), w, b, training=False),
)
CASES["batch_norm_no_affine"] = (
    [((5, 3), "n")],
    lambda x: F.batch_norm(x, None, None, training=True),
    lambda x: TF.batch_norm(x, None, None, training=True),
)


def _inputs(specs: list[tuple[tuple[int, ...], str]], seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for shape, kind in specs:
        if kind == "n":
            out.append(rng.standard_normal(shape))
        elif kind == "p":
            out.append(rng.uniform(0.5, 2.0, shape))
        else:  # probabilities away from 0 and 1
            out.append(rng.uniform(0.05, 0.95, shape))
    return out


def _diff(a: np.ndarray, t: torch.Tensor) -> float:
    t = t.detach().numpy()
    assert a.shape == t.shape, (a.shape, t.shape)
    return float(np.max(np.abs(a - t), initial=0.0))


@pytest.mark.parametrize("name", list(CASES))
def test_functional_gradcheck(name: str) -> None:
    specs, f, _ = CASES[name]
    xs = [Tensor(a, requires_grad=True) for a in _inputs(specs)]
    assert gradcheck(f, xs, atol=1e-7)


@pytest.mark.parametrize("name", list(CASES))
def test_functional_matches_torch(name: str) -> None:
    specs, f, f_torch = CASES[name]
    arrays = _inputs(specs, seed=1)
    xs = [Tensor(a.copy(), requires_grad=True) for a in arrays]
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    out, out_t = f(*xs), f_torch(*ts)
    assert _diff(out.data, out_t) <= TOL
    g = np.random.default_rng(2).standard_normal(out.shape)
    out.backward(g)
    out_t.backward(torch.tensor(g))
    for x, t in zip(xs, ts):
        assert _diff(x.grad, t.grad) <= TOL


# ----------------------------------------------------------------------------------------------
# numerical stability


def test_softmax_and_log_softmax_are_stable_at_large_logits() -> None:
    z = np.array([[1e4, 0.0, -1e4], [1e4, 1e4 - 1.0, 5.0], [-1e4, -1e4, -1e4]])
    for f, ft in [(F.softmax, lambda t: TF.softmax(t, -1)), (F.log_softmax, lambda t: TF.log_softmax(t, -1))]:
        x, t = Tensor(z, requires_grad=True), torch.tensor(z, requires_grad=True)
        out, out_t = f(x), ft(t)
        assert np.all(np.isfinite(out.data))
        assert _diff(out.data, out_t) <= TOL
        g = np.random.default_rng(0).standard_normal(z.shape)
        out.backward(g)
        out_t.backward(torch.tensor(g))
        assert np.all(np.isfinite(x.grad)) and _diff(x.grad, t.grad) <= TOL


def test_cross_entropy_is_stable_at_large_logits() -> None:
    z = np.array([[1e4, 0.0, -1e4], [-1e4, 1e4, 0.0]])
    y = np.array([2, 1])
    x, t = Tensor(z, requires_grad=True), torch.tensor(z, requires_grad=True)
    loss, loss_t = F.cross_entropy(x, y), TF.cross_entropy(t, torch.as_tensor(y))
    loss.backward()
    loss_t.backward()
    assert np.isfinite(loss.item()) and abs(loss.item() - loss_t.item()) <= TOL * 1e4
    assert _diff(x.grad, t.grad) <= TOL


def test_bce_with_logits_is_stable_at_1e3() -> None:
    z = np.array([1e3, -1e3, 1e3, -1e3, 0.0])
    y = np.array([1.0, 0.0, 0.0, 1.0, 1.0])
    x, t = Tensor(z, requires_grad=True), torch.tensor(z, requires_grad=True)
    loss, loss_t = F.binary_cross_entropy_with_logits(x, y, "none"), TF.binary_cross_entropy_with_logits(t, torch.as_tensor(y), reduction="none")
    np.testing.assert_allclose(loss.data, [0.0, 0.0, 1e3, 1e3, np.log(2)], rtol=1e-15)
    assert _diff(loss.data, loss_t) <= TOL
    loss.sum().backward()
    loss_t.sum().backward()
    assert _diff(x.grad, t.grad) <= TOL


def test_bce_on_saturated_probabilities_is_finite_like_torch() -> None:
    p = np.array([0.0, 1.0, 1.0, 0.0])
    y = np.array([1.0, 0.0, 1.0, 0.0])
    loss = F.binary_cross_entropy(Tensor(p), y, "none")
    np.testing.assert_allclose(loss.data, TF.binary_cross_entropy(torch.tensor(p), torch.tensor(y), reduction="none").numpy())
    assert loss.data.max() == 100.0
    with pytest.raises(ValueError, match="probabilities"):
        F.binary_cross_entropy(Tensor(np.array([1.5])), np.array([1.0]))


def test_sigmoid_does_not_overflow() -> None:
    with np.errstate(over="raise"):
        s = F.sigmoid(Tensor(np.array([-1e3, 0.0, 1e3])))
    np.testing.assert_array_equal(s.data, [0.0, 0.5, 1.0])


# ----------------------------------------------------------------------------------------------
# other behaviour


def test_step_is_heaviside_with_zero_gradient() -> None:
    x = Tensor(np.array([-2.0, 0.0, 0.5]), requires_grad=True)
    y = F.step(x)
    np.testing.assert_array_equal(y.data, [0.0, 1.0, 1.0])
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, np.zeros(3))


@pytest.mark.parametrize(("kernel", "stride", "padding"), [(2, None, 0), (3, 1, 1), (3, 2, 1)])
def test_max_pool_ties_go_to_the_first_maximum_like_torch(kernel, stride, padding) -> None:
    """After a ReLU whole windows are 0: the gradient must go to one position, not all."""
    x = np.maximum(np.random.default_rng(0).standard_normal((2, 2, 6, 6)), 0)
    x[0, 0, :3, :3] = 0.0
    xs, xt = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out, out_t = F.max_pool2d(xs, kernel, stride, padding), TF.max_pool2d(xt, kernel, stride, padding)
    g = np.random.default_rng(1).standard_normal(out.shape)
    out.backward(g)
    out_t.backward(torch.tensor(g))
    assert _diff(out.data, out_t) == 0.0 and _diff(xs.grad, xt.grad) <= TOL


def test_batch_norm_updates_running_stats_like_torch() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 3, 4, 4)) * 2 + 1
    rm, rv = np.zeros(3), np.ones(3)
    rm_t, rv_t = torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)
    for momentum in (0.1, 0.3):
        F.batch_norm(Tensor(x), rm, rv, training=True, momentum=momentum)
        TF.batch_norm(torch.tensor(x), rm_t, rv_t, training=True, momentum=momentum)
    assert _diff(rm, rm_t) <= TOL and _diff(rv, rv_t) <= TOL


def test_dropout_masks_scales_and_is_identity_in_eval() -> None:
    x = Tensor(np.ones((200, 50)), requires_grad=True)
    y = F.dropout(x, 0.3, training=True, rng=0)
    kept = y.data != 0
    assert abs(kept.mean() - 0.7) < 0.02
    np.testing.assert_allclose(y.data[kept], 1 / 0.7)
    y.sum().backward()
    np.testing.assert_allclose(x.grad, y.data)  # gradient = mask / (1 - p)
    np.testing.assert_array_equal(F.dropout(x, 0.3, training=True, rng=0).data, y.data)  # seeded
    assert F.dropout(x, 0.3, training=False) is x and F.dropout(x, 0.0) is x
    assert not F.dropout(x, 1.0).data.any()
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        F.dropout(x, 1.5)


def test_dropout_gradcheck_with_fixed_seed() -> None:
    x = Tensor(np.random.default_rng(0).standard_normal((4, 5)), requires_grad=True)
    assert gradcheck(lambda t: F.dropout(t, 0.5, True, rng=3), [x])


def test_float32_is_preserved_by_every_fused_op() -> None:
    rng = np.random.default_rng(0)
    f32 = np.float32
    x = Tensor(rng.standard_normal((2, 3, 6, 6)).astype(f32), requires_grad=True)
    w = Tensor(rng.standard_normal((4, 3, 3, 3)).astype(f32), requires_grad=True)
    b = Tensor(np.zeros(4, f32), requires_grad=True)
    gamma, beta = Tensor(np.ones(4, f32), requires_grad=True), Tensor(np.zeros(4, f32), requires_grad=True)
    h = F.conv2d(x, w, b, 1, 1)
    h = F.batch_norm(h, np.zeros(4, f32), np.ones(4, f32), gamma, beta, training=True)
    h = F.max_pool2d(F.relu(h), 2)
    h = F.avg_pool2d(F.elu(h), 1)
    h = F.dropout(F.selu(F.leaky_relu(h)), 0.2, rng=0).reshape(2, -1)
    lin_w = Tensor(rng.standard_normal((3, h.shape[1])).astype(f32), requires_grad=True)
    logits = F.linear(F.gelu(F.sigmoid(F.tanh(h))), lin_w)
    loss = F.cross_entropy(logits, np.array([0, 2])) + F.mse_loss(F.softmax(logits), np.zeros((2, 3), f32))
    loss = loss + F.binary_cross_entropy_with_logits(logits, np.ones((2, 3), f32)) + F.l2_penalty([w]) * 1e-3
    assert loss.dtype == f32
    loss.backward()
    for p in (x, w, b, gamma, beta, lin_w):
        assert p.grad.dtype == f32, p.grad.dtype


def test_errors_name_the_problem() -> None:
    z = Tensor(np.zeros((2, 3)))
    with pytest.raises(IndexError, match="out of range for 3 classes"):
        F.cross_entropy(z, np.array([0, 3]))
    with pytest.raises(TypeError, match="integer class indices"):
        F.cross_entropy(z, np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match="2 rows of logits but 3 targets"):
        F.cross_entropy(z, np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="reduction"):
        F.mse_loss(z, z, "avg")
    with pytest.raises(ValueError, match="channels"):
        F.conv2d(Tensor(np.zeros((1, 2, 5, 5))), Tensor(np.zeros((4, 3, 3, 3))))
    with pytest.raises(ValueError, match="does not fit"):
        F.conv2d(Tensor(np.zeros((1, 3, 2, 2))), Tensor(np.zeros((4, 3, 3, 3))))
    with pytest.raises(ValueError, match="features"):
        F.linear(Tensor(np.zeros((2, 5))), Tensor(np.zeros((3, 4))))
    with pytest.raises(ValueError, match="-1, \\+1"):
        F.hinge_loss(Tensor(np.zeros(3)), np.array([0, 1, 1]))
    with pytest.raises(ValueError, match="half the kernel"):
        F.max_pool2d(Tensor(np.zeros((1, 1, 4, 4))), 2, padding=2)
    with pytest.raises(ValueError, match="more than one value per channel"):
        F.batch_norm(Tensor(np.zeros((1, 3))), None, None, training=True)
    with pytest.raises(IndexError, match="out of range"):
        F.embedding(np.array([5]), Tensor(np.zeros((5, 2))))


def test_cross_entropy_with_all_targets_ignored_is_nan_like_torch() -> None:
    loss = F.cross_entropy(Tensor(np.zeros((2, 3))), np.array([-100, -100]))
    assert np.isnan(loss.item())


def test_one_hot() -> None:
    np.testing.assert_array_equal(F.one_hot(np.array([2, 0]), 3), [[0, 0, 1], [1, 0, 0]])
