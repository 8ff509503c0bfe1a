"""archlab.scratch.layers and init: Module bookkeeping, state dicts, and every layer against
finite differences and against torch.nn with the same weights (float64, 1e-10)."""

from __future__ import annotations

import copy
import math
import pickle

import numpy as np
import pytest
import torch
from torch import nn

from archlab import scratch as sc
from archlab.scratch import Tensor, gradcheck
from archlab.scratch import init as I

TOL = 1e-10


def _diff(a: np.ndarray, t: torch.Tensor) -> float:
    t = t.detach().numpy()
    assert a.shape == t.shape, (a.shape, t.shape)
    return float(np.max(np.abs(a - t), initial=0.0))


def _copy_to_torch(module: sc.Module, torch_module: nn.Module) -> None:
    """Load the scratch module's state into the torch module (same names and shapes)."""
    state = {k: torch.tensor(v) for k, v in module.state_dict().items()}
    torch_module.load_state_dict(state)


def _compare(module: sc.Module, torch_module: nn.Module, x: np.ndarray, steps: int = 1) -> None:
    """Same outputs, input gradients and parameter gradients (and buffers) over ``steps`` calls."""
    torch_module.double()
    _copy_to_torch(module, torch_module)
    for step in range(steps):
        xs = Tensor(x + step, requires_grad=True)
        xt = torch.tensor(x + step, requires_grad=True)
        out, out_t = module(xs), torch_module(xt)
        assert _diff(out.data, out_t) <= TOL
        g = np.random.default_rng(step).standard_normal(out.shape)
        module.zero_grad()
        torch_module.zero_grad()
        out.backward(g)
        out_t.backward(torch.tensor(g))
        assert _diff(xs.grad, xt.grad) <= TOL
        torch_params = dict(torch_module.named_parameters())
        for name, p in module.named_parameters():
            assert _diff(p.grad, torch_params[name].grad) <= TOL, name
    torch_state = torch_module.state_dict()
    for name, value in module.state_dict().items():  # running stats, num_batches_tracked
        assert _diff(np.asarray(value, dtype=np.float64), torch_state[name].double()) <= TOL, name


# ----------------------------------------------------------------------------------------------
# Module bookkeeping


class Block(sc.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = sc.Linear(3, 4, rng=0)
        self.scale = sc.Parameter(np.ones(4))
        self.bn = sc.BatchNorm1d(4)
        self.act = sc.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.bn(self.fc(x))) * self.scale


def test_parameters_and_modules_are_registered_with_torch_names() -> None:
    m = sc.Sequential(Block(), sc.Linear(4, 2, rng=1))
    names = [n for n, _ in m.named_parameters()]
    assert names == ["0.scale", "0.fc.weight", "0.fc.bias", "0.bn.weight", "0.bn.bias", "1.weight", "1.bias"]
    assert len(m.parameters()) == 7 and m.num_parameters() == 4 + 12 + 4 + 4 + 4 + 8 + 2
    assert [type(x).__name__ for x in m.modules()] == ["Sequential", "Block", "Linear", "BatchNorm1d", "ReLU", "Linear"]
    assert list(m.state_dict()) == [
        "0.scale", "0.fc.weight", "0.fc.bias", "0.bn.weight", "0.bn.bias",
        "0.bn.running_mean", "0.bn.running_var", "0.bn.num_batches_tracked", "1.weight", "1.bias",
    ]  # fmt: skip
    assert len(m) == 2 and isinstance(m[1], sc.Linear) and [type(c) for c in m] == [Block, sc.Linear]
    assert "Linear(in_features=3, out_features=4, bias=True)" in repr(m)


def test_same_names_as_torch_for_an_equivalent_model() -> None:
    ours = sc.Sequential(sc.Conv2d(1, 2, 3), sc.BatchNorm2d(2), sc.ReLU(), sc.Flatten(), sc.Linear(8, 3))
    theirs = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU(), nn.Flatten(), nn.Linear(8, 3))
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    for (_, a), (_, b) in zip(ours.state_dict().items(), theirs.state_dict().items()):
        assert a.shape == tuple(b.shape)


def test_reassigning_and_deleting_attributes_updates_the_registry() -> None:
    m = Block()
    m.scale = None
    assert "scale" not in dict(m.named_parameters())
    m.fc = sc.Identity()
    assert "fc.weight" not in dict(m.named_parameters())
    del m.bn
    assert all(not n.startswith("bn.") for n in m.state_dict())


def test_super_init_is_required() -> None:
    class Broken(sc.Module):
        def __init__(self) -> None:
            self.w = sc.Parameter(np.zeros(2))

    with pytest.raises(AttributeError, match="super"):
        Broken()


def test_train_eval_zero_grad_freeze_and_astype() -> None:
    m = sc.Sequential(Block(), sc.Dropout(0.5))
    assert all(x.training for x in m.modules())
    assert m.eval() is m and not any(x.training for x in m.modules())
    m.train()
    m(Tensor(np.random.default_rng(0).standard_normal((5, 3)))).sum().backward()
    assert all(p.grad is not None for p in m.parameters())
    m.zero_grad()
    assert all(p.grad is None for p in m.parameters())
    m.requires_grad_(False)
    assert m.num_parameters(trainable_only=True) == 0
    m.requires_grad_(True).astype(np.float32)
    assert all(p.dtype == np.float32 for p in m.parameters())
    assert m[0].bn.running_var.dtype == np.float32 and m[0].bn.num_batches_tracked.dtype == np.int64
    visited = []
    m.apply(lambda mod: visited.append(type(mod).__name__))
    assert visited[-1] == "Sequential" and len(visited) == 6


def test_forward_must_be_defined() -> None:
    with pytest.raises(NotImplementedError, match="forward"):
        sc.Module()(1)


# ----------------------------------------------------------------------------------------------
# state dicts


def _net(seed: int) -> sc.Module:
    return sc.Sequential(
        sc.Conv2d(2, 3, 3, padding=1, rng=seed), sc.BatchNorm2d(3), sc.ReLU(), sc.MaxPool2d(2),
        sc.Flatten(), sc.Linear(12, 4, rng=seed + 1), sc.BatchNorm1d(4),
    )  # fmt: skip


def test_state_dict_round_trip() -> None:
    a, b = _net(0), _net(10)
    x = Tensor(np.random.default_rng(0).standard_normal((5, 2, 4, 4)))
    a(x)  # a training step moves the running statistics
    state = a.state_dict()
    assert int(state["1.num_batches_tracked"]) == 1
    b.load_state_dict(state)
    a.eval(), b.eval()
    np.testing.assert_array_equal(a(x).data, b(x).data)
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and np.array_equal(va, vb)


def test_state_dict_returns_copies_and_load_keeps_arrays_and_dtypes() -> None:
    m = sc.Linear(3, 2, rng=0, dtype=np.float32)
    state = m.state_dict()
    state["weight"][:] = 7
    assert not np.any(m.weight.data == 7)
    weight_array = m.weight.data
    m.load_state_dict({"weight": np.ones((2, 3)), "bias": np.zeros(2)})  # float64 values
    assert m.weight.data is weight_array and m.weight.dtype == np.float32
    np.testing.assert_array_equal(m.weight.data, np.ones((2, 3)))


def test_modules_deepcopy_and_pickle() -> None:
    m = _net(0)
    for clone in (copy.deepcopy(m), pickle.loads(pickle.dumps(m))):
        assert list(clone.state_dict()) == list(m.state_dict())
        clone[0].weight.data += 1  # independent arrays
        assert not np.array_equal(clone[0].weight.data, m[0].weight.data)
        assert clone(Tensor(np.ones((2, 2, 4, 4)))).shape == (2, 4)


def test_load_state_dict_errors_are_clear() -> None:
    m = _net(0)
    state = m.state_dict()
    missing = {k: v for k, v in state.items() if k != "5.bias"}
    with pytest.raises(KeyError, match=r"missing keys: 5\.bias.*strict=False"):
        m.load_state_dict(missing)
    with pytest.raises(KeyError, match=r"unexpected keys: 9\.weight"):
        m.load_state_dict({**state, "9.weight": np.zeros(1)})
    with pytest.raises(ValueError, match=r"shape mismatch for 5\.weight: checkpoint \(4, 13\) vs model \(4, 12\)"):
        m.load_state_dict({**state, "5.weight": np.zeros((4, 13))})
    result = m.load_state_dict({**missing, "extra": np.zeros(1)}, strict=False)
    assert result.missing_keys == ["5.bias"] and result.unexpected_keys == ["extra"]


def test_torch_state_dict_loads_into_the_scratch_twin() -> None:
    torch.manual_seed(0)
    theirs = nn.Sequential(nn.Linear(5, 6), nn.BatchNorm1d(6), nn.Tanh(), nn.Linear(6, 2)).double()
    theirs.train()(torch.randn(7, 5, dtype=torch.float64))  # non-trivial running stats
    ours = sc.Sequential(sc.Linear(5, 6), sc.BatchNorm1d(6), sc.Tanh(), sc.Linear(6, 2))
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    x = np.random.default_rng(1).standard_normal((4, 5))
    theirs.eval(), ours.eval()
    assert _diff(ours(Tensor(x)).data, theirs(torch.tensor(x))) <= TOL


# ----------------------------------------------------------------------------------------------
# layers against torch


@pytest.mark.parametrize("bias", [True, False])
def test_linear_matches_torch(bias: bool) -> None:
    x = np.random.default_rng(0).standard_normal((5, 4))
    _compare(sc.Linear(4, 3, bias=bias, rng=0), nn.Linear(4, 3, bias=bias), x)


@pytest.mark.parametrize(
    ("kernel", "stride", "padding"), [(3, 1, 0), (3, 1, 1), (3, 2, 1), (3, 2, 0), ((3, 2), (2, 1), (1, 0)), (1, 1, 0), (5, 2, 2)]
)
def test_conv2d_matches_torch(kernel, stride, padding) -> None:
    x = np.random.default_rng(0).standard_normal((2, 3, 8, 7))
    _compare(sc.Conv2d(3, 4, kernel, stride, padding, rng=0), nn.Conv2d(3, 4, kernel, stride, padding), x)


@pytest.mark.parametrize(("kernel", "stride", "padding"), [(2, None, 0), (3, 2, 1), (2, 1, 0), ((2, 3), (1, 2), (1, 1))])
def test_pools_match_torch(kernel, stride, padding) -> None:
    x = np.random.default_rng(0).standard_normal((2, 3, 7, 6))
    _compare(sc.MaxPool2d(kernel, stride, padding), nn.MaxPool2d(kernel, stride, padding), x)
    _compare(sc.AvgPool2d(kernel, stride, padding), nn.AvgPool2d(kernel, stride, padding), x)
    _compare(
        sc.AvgPool2d(kernel, stride, padding, count_include_pad=False),
        nn.AvgPool2d(kernel, stride, padding, count_include_pad=False),
        x,
    )


@pytest.mark.parametrize("momentum", [0.1, 0.5, None])
@pytest.mark.parametrize("shape", [(6, 4), (5, 4, 3), (3, 4, 5, 5)])
def test_batch_norm_matches_torch_in_train_and_eval(shape, momentum) -> None:
    ours = (sc.BatchNorm1d if len(shape) < 4 else sc.BatchNorm2d)(4, momentum=momentum)
    theirs = (nn.BatchNorm1d if len(shape) < 4 else nn.BatchNorm2d)(4, momentum=momentum)
    rng = np.random.default_rng(0)
    ours.weight.data[:] = rng.uniform(0.5, 2, 4)
    ours.bias.data[:] = rng.standard_normal(4)
    x = rng.standard_normal(shape) * 3 + 1
    _compare(ours, theirs, x, steps=3)  # training: batch stats; running stats after 3 steps
    ours.eval(), theirs.eval()
    _compare(ours, theirs, x * 0.5, steps=2)  # evaluation: running stats, not updated


def test_batch_norm_without_running_stats_uses_batch_stats_in_eval() -> None:
    x = np.random.default_rng(0).standard_normal((6, 3))
    ours, theirs = sc.BatchNorm1d(3, track_running_stats=False, affine=False), nn.BatchNorm1d(3, track_running_stats=False, affine=False)
    ours.eval(), theirs.eval()
    _compare(ours, theirs, x)
    assert ours.state_dict() == {}


def test_batch_norm_shape_errors() -> None:
    with pytest.raises(ValueError, match="2 or 3 dimensions"):
        sc.BatchNorm1d(3)(Tensor(np.zeros((2, 3, 4, 4))))
    with pytest.raises(ValueError, match="got 5 channels"):
        sc.BatchNorm2d(3)(Tensor(np.zeros((2, 5, 4, 4))))


def test_embedding_matches_torch() -> None:
    ours, theirs = sc.Embedding(6, 3, rng=0), nn.Embedding(6, 3).double()
    _copy_to_torch(ours, theirs)
    idx = np.array([[1, 5, 5, 0], [2, 1, 1, 1]])
    out, out_t = ours(idx), theirs(torch.as_tensor(idx))
    assert out.shape == (2, 4, 3) and _diff(out.data, out_t) <= TOL
    g = np.random.default_rng(0).standard_normal(out.shape)
    out.backward(g)
    out_t.backward(torch.tensor(g))
    assert _diff(ours.weight.grad, theirs.weight.grad) <= TOL


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("with_h0", [False, True])
def test_rnn_matches_torch(nonlinearity: str, batch_first: bool, with_h0: bool) -> None:
    ours = sc.RNN(3, 5, nonlinearity=nonlinearity, batch_first=batch_first, rng=0)
    theirs = nn.RNN(3, 5, nonlinearity=nonlinearity, batch_first=batch_first).double()
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    _copy_to_torch(ours, theirs)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 4, 3) if batch_first else (4, 2, 3))  # T = 4 steps
    h0 = rng.standard_normal((2, 5))
    xs, xt = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    hs, ht = Tensor(h0, requires_grad=True), torch.tensor(h0[None], requires_grad=True)
    out, h_last = ours(xs, hs if with_h0 else None)
    out_t, h_n = theirs(xt, ht if with_h0 else None)
    assert _diff(out.data, out_t) <= TOL and _diff(h_last.data, h_n[0]) <= TOL
    g_out, g_h = rng.standard_normal(out.shape), rng.standard_normal(h_last.shape)
    (out * g_out).sum().backward()  # gradient from every output and from h_T
    (h_last * g_h).sum().backward()
    ((out_t * torch.tensor(g_out)).sum() + (h_n[0] * torch.tensor(g_h)).sum()).backward()
    assert _diff(xs.grad, xt.grad) <= TOL
    if with_h0:
        assert _diff(hs.grad, ht.grad[0]) <= TOL
    torch_params = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        assert _diff(p.grad, torch_params[name].grad) <= TOL, name


def test_activation_modules_match_functional_and_torch() -> None:
    x = np.random.default_rng(0).standard_normal((3, 4))
    pairs = [
        (sc.Sigmoid(), nn.Sigmoid()), (sc.Tanh(), nn.Tanh()), (sc.ReLU(), nn.ReLU()),
        (sc.LeakyReLU(0.1), nn.LeakyReLU(0.1)), (sc.ELU(0.7), nn.ELU(0.7)), (sc.SELU(), nn.SELU()),
        (sc.GELU(), nn.GELU()), (sc.Softmax(), nn.Softmax(-1)), (sc.LogSoftmax(0), nn.LogSoftmax(0)),
        (sc.Identity(), nn.Identity()), (sc.Flatten(), nn.Flatten()),
    ]  # fmt: skip
    for ours, theirs in pairs:
        _compare(ours, theirs, x)
    np.testing.assert_array_equal(sc.Step()(Tensor(x)).data, (x >= 0).astype(float))


def test_dropout_module() -> None:
    x = Tensor(np.ones((50, 40)))
    d = sc.Dropout(0.25, rng=0)
    y = d(x)
    assert 0.7 < (y.data != 0).mean() < 0.8
    assert not np.array_equal(d(x).data, y.data)  # a fresh mask every call
    np.testing.assert_array_equal(sc.Dropout(0.25, rng=0)(x).data, y.data)  # seeded module
    assert d.eval()(x) is x
    with pytest.raises(ValueError, match="probability"):
        sc.Dropout(-0.1)


# ----------------------------------------------------------------------------------------------
# layers against finite differences


def _check_layer(layer: sc.Module, x: np.ndarray) -> None:
    xs = Tensor(x, requires_grad=True)
    assert gradcheck(lambda t, *params: layer(t), [xs, *layer.parameters()], atol=1e-7)


def test_layer_gradchecks() -> None:
    rng = np.random.default_rng(0)
    img = rng.standard_normal((2, 2, 5, 5))
    _check_layer(sc.Linear(4, 3, rng=0), rng.standard_normal((3, 4)))
    _check_layer(sc.Conv2d(2, 3, 3, stride=2, padding=1, rng=0), img)
    _check_layer(sc.Conv2d(2, 2, (2, 3), stride=(1, 2), padding=(0, 1), rng=0), img)
    _check_layer(sc.MaxPool2d(2), img)
    _check_layer(sc.MaxPool2d(3, 2, 1), img)
    _check_layer(sc.AvgPool2d(3, 2, 1, count_include_pad=False), img)
    bn1 = sc.BatchNorm1d(3)
    bn1.weight.data[:] = [0.5, 1.5, 2.0]
    _check_layer(bn1, rng.standard_normal((5, 3)))
    _check_layer(sc.BatchNorm2d(2), img)
    _check_layer(sc.BatchNorm2d(2).eval(), img)
    for act in (sc.Sigmoid(), sc.Tanh(), sc.LeakyReLU(), sc.ELU(), sc.SELU(), sc.Softmax(), sc.LogSoftmax()):
        _check_layer(act, rng.standard_normal((3, 4)))


def test_rnn_gradcheck_over_four_steps() -> None:
    rnn = sc.RNN(2, 3, rng=0)
    x = Tensor(np.random.default_rng(0).standard_normal((2, 4, 2)), requires_grad=True)
    h0 = Tensor(np.random.default_rng(1).standard_normal((2, 3)), requires_grad=True)

    def f(x: Tensor, h0: Tensor, *params: Tensor) -> Tensor:
        out, h = rnn(x, h0)
        return out.sum(axis=2) + h.sum()

    assert gradcheck(f, [x, h0, *rnn.parameters()], atol=1e-7)


def test_embedding_gradcheck() -> None:
    emb = sc.Embedding(4, 2, rng=0)
    assert gradcheck(lambda w: emb(np.array([0, 3, 3, 1])) * 2, [emb.weight])


def test_rnn_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match=r"\(B, T, I\) with I = 3"):
        sc.RNN(3, 4)(Tensor(np.zeros((2, 5, 2))))
    with pytest.raises(ValueError, match="nonlinearity"):
        sc.RNN(3, 4, nonlinearity="sigmoid")


# ----------------------------------------------------------------------------------------------
# float32 end to end


def test_float32_mlp_trains_without_upcasting() -> None:
    rng = np.random.default_rng(0)
    model = sc.Sequential(
        sc.Linear(20, 32, rng=0, dtype=np.float32), sc.BatchNorm1d(32, dtype=np.float32), sc.ReLU(),
        sc.Dropout(0.1, rng=0), sc.Linear(32, 3, rng=1, dtype=np.float32),
    )  # fmt: skip
    x = rng.standard_normal((64, 20)).astype(np.float32)
    y = (x[:, 0] > 0).astype(int) + (x[:, 1] > 1)
    losses = []
    for _ in range(30):
        loss = sc.functional.cross_entropy(model(Tensor(x)), y)
        assert loss.dtype == np.float32
        model.zero_grad()
        loss.backward()
        for p in model.parameters():
            assert p.grad.dtype == np.float32
            p.data -= 0.5 * p.grad
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    assert all(p.dtype == np.float32 for p in model.parameters())
    assert model[1].running_mean.dtype == np.float32


def test_astype_float32_then_forward() -> None:
    model = _net(0).astype(np.float32)
    out = model(Tensor(np.zeros((2, 2, 4, 4), np.float32)))
    assert out.dtype == np.float32


# ----------------------------------------------------------------------------------------------
# init


@pytest.mark.parametrize("shape", [(3, 4), (8, 3, 5, 5), (6, 2, 3), (2, 7, 1, 1)])
def test_fans_match_torch(shape) -> None:
    assert I.fans(shape) == nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))
    with pytest.raises(ValueError, match="at least 2"):
        I.fans((5,))


@pytest.mark.parametrize(
    ("name", "param"), [("linear", None), ("sigmoid", None), ("tanh", None), ("relu", None), ("leaky_relu", None), ("leaky_relu", 0.2), ("selu", None), ("conv2d", None)]
)
def test_gains_match_torch(name: str, param) -> None:
    assert I.calculate_gain(name, param) == pytest.approx(nn.init.calculate_gain(name, param))


def test_initializers_have_the_papers_scales() -> None:
    rng = np.random.default_rng(0)
    shape = (400, 300)
    fan_in, fan_out = 300, 400
    xu = I.xavier_uniform(shape, rng)
    bound = math.sqrt(6 / (fan_in + fan_out))
    assert np.abs(xu).max() <= bound and xu.std() == pytest.approx(bound / math.sqrt(3), rel=0.02)
    assert I.xavier_normal(shape, rng).std() == pytest.approx(math.sqrt(2 / (fan_in + fan_out)), rel=0.02)
    ku = I.kaiming_uniform(shape, rng)
    assert np.abs(ku).max() <= math.sqrt(6 / fan_in) and ku.std() == pytest.approx(math.sqrt(2 / fan_in), rel=0.02)
    assert I.kaiming_normal(shape, rng).std() == pytest.approx(math.sqrt(2 / fan_in), rel=0.02)
    assert I.kaiming_normal(shape, rng, mode="fan_out").std() == pytest.approx(math.sqrt(2 / fan_out), rel=0.02)
    assert I.kaiming_normal(shape, rng, nonlinearity="tanh").std() == pytest.approx(5 / 3 / math.sqrt(fan_in), rel=0.02)
    conv = I.kaiming_normal((64, 16, 3, 3), rng)
    assert conv.std() == pytest.approx(math.sqrt(2 / (16 * 9)), rel=0.03)
    assert np.abs(I.torch_default(shape, rng)).max() <= 1 / math.sqrt(fan_in)
    assert not I.zeros((2, 3)).any() and I.ones((2,)).sum() == 2
    assert I.uniform((1000,), rng, -2, -1).min() >= -2 and I.normal((5,), rng, 3.0, 0.0).tolist() == [3.0] * 5
    assert I.xavier_uniform((3, 4), 0, dtype=np.float32).dtype == np.float32


def test_seeds_and_default_generator() -> None:
    np.testing.assert_array_equal(I.kaiming_uniform((3, 4), 7), I.kaiming_uniform((3, 4), 7))
    I.manual_seed(123)
    a = sc.Linear(4, 3).weight.data
    I.manual_seed(123)
    np.testing.assert_array_equal(sc.Linear(4, 3).weight.data, a)
    with pytest.raises(TypeError, match="Generator"):
        I.default_rng("seed")


@pytest.mark.parametrize("init", ["kaiming_uniform", "kaiming_normal", "xavier_uniform", "xavier_normal", "default", "zeros"])
def test_linear_and_conv_init_options(init: str) -> None:
    lin = sc.Linear(50, 40, init=init, rng=0)
    conv = sc.Conv2d(4, 6, 3, init=init, rng=0)
    if init == "default":  # PyTorch's: weight and bias U(+-1/sqrt(fan_in))
        assert np.abs(lin.weight.data).max() <= 1 / math.sqrt(50) and lin.bias.data.any()
        assert np.abs(conv.bias.data).max() <= 1 / math.sqrt(36)
    else:
        assert not lin.bias.data.any() and not conv.bias.data.any()
    assert (init == "zeros") == (not lin.weight.data.any())


def test_init_accepts_a_function_and_rejects_unknown_names() -> None:
    lin = sc.Linear(3, 2, init=lambda shape, rng, dtype: np.full(shape, 0.5, dtype=dtype))
    assert np.all(lin.weight.data == 0.5)
    with pytest.raises(ValueError, match="unknown init 'he'"):
        sc.Linear(3, 2, init="he")
    with pytest.raises(ValueError, match="unknown nonlinearity"):
        I.calculate_gain("swish")
