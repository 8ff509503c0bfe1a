"""Our recurrent cells and layers against torch's, with copied weights: outputs, final states and
the gradients of the inputs, the initial state and every parameter; both implementations."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from archlab.models.rnn import cells as C
from archlab.models.rnn.layers import GRU, LSTM, RNN, detach_state, last_layer_state, make_rnn

TOL = 1e-8  # float64: far inside the 1e-5 of the acceptance
TOL32 = 1e-5
B, T, IN, H = 3, 5, 4, 6
LENGTHS = [5, 2, 4]  # unsorted, one full length

TORCH_LAYERS = {"rnn_tanh": (nn.RNN, {}), "rnn_relu": (nn.RNN, {"nonlinearity": "relu"}),
                "lstm": (nn.LSTM, {}), "gru": (nn.GRU, {})}


def maxdiff(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a - b).abs().max().item()


def grads_of(*tensors: torch.Tensor) -> list[torch.Tensor]:
    return [t.grad.clone() for t in tensors]


# ----------------------------------------------------------------------------------------------
# cells


CELLS = [
    (C.RNNCell, nn.RNNCell, {}),
    (C.RNNCell, nn.RNNCell, {"nonlinearity": "relu"}),
    (C.LSTMCell, nn.LSTMCell, {}),
    (C.GRUCell, nn.GRUCell, {}),
]


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("ours_cls,ref_cls,kw", CELLS, ids=["rnn_tanh", "rnn_relu", "lstm", "gru"])
def test_cell_matches_torch(ours_cls, ref_cls, kw, bias: bool) -> None:
    torch.manual_seed(0)
    ref = ref_cls(IN, H, bias=bias, **kw).double()
    ours = ours_cls(IN, H, bias=bias, **kw).double()
    assert {k: v.shape for k, v in ours.state_dict().items()} == {k: v.shape for k, v in ref.state_dict().items()}
    ours.load_state_dict(ref.state_dict())
    lstm = ours_cls is C.LSTMCell
    outs, grads = [], []
    for module in (ref, ours):
        g = torch.Generator().manual_seed(1)
        x = torch.randn(B, IN, generator=g, dtype=torch.float64, requires_grad=True)
        hs = [torch.randn(B, H, generator=g, dtype=torch.float64, requires_grad=True) for _ in range(2 if lstm else 1)]
        out = module(x, tuple(hs) if lstm else hs[0])
        out = out if lstm else (out,)
        w = torch.randn(B, H, generator=g, dtype=torch.float64)
        sum((o * w * (i + 1)).sum() for i, o in enumerate(out)).backward()
        outs.append(out)
        grads.append(grads_of(x, *hs, *module.parameters()))
    for a, b in zip(*outs, strict=True):
        assert maxdiff(a, b) <= TOL
    for a, b in zip(*grads, strict=True):
        assert maxdiff(a, b) <= TOL


def test_cells_init_and_default_state() -> None:
    torch.manual_seed(0)
    for cell in (C.RNNCell(IN, 16), C.LSTMCell(IN, 16), C.GRUCell(IN, 16)):
        for p in cell.parameters():
            assert p.abs().max() <= 0.25 and p.std() > 0.1  # uniform(-1/sqrt(16), 1/sqrt(16)), std 0.144
    x = torch.randn(B, IN)
    lstm = C.LSTMCell(IN, H)
    zeros = torch.zeros(B, H)
    for a, b in zip(lstm(x), lstm(x, (zeros, zeros)), strict=True):
        assert torch.equal(a, b)
    gru = C.GRUCell(IN, H)
    assert torch.equal(gru(x), gru(x, zeros))


def test_gru_reset_after_false_is_cho() -> None:
    torch.manual_seed(0)
    cell = C.GRUCell(IN, H, reset_after=False).double()
    x, h = torch.randn(B, IN, dtype=torch.float64), torch.randn(B, H, dtype=torch.float64)
    W_ir, W_iz, W_in = cell.weight_ih.chunk(3)
    W_hr, W_hz, W_hn = cell.weight_hh.chunk(3)
    b_ir, b_iz, b_in = cell.bias_ih.chunk(3)
    b_hr, b_hz, b_hn = cell.bias_hh.chunk(3)
    r = torch.sigmoid(x @ W_ir.T + b_ir + h @ W_hr.T + b_hr)
    z = torch.sigmoid(x @ W_iz.T + b_iz + h @ W_hz.T + b_hz)
    n = torch.tanh(x @ W_in.T + b_in + (r * h) @ W_hn.T + b_hn)
    expected = (1 - z) * n + z * h
    assert maxdiff(cell(x, h), expected) <= TOL
    cell.reset_after = True
    assert maxdiff(cell(x, h), expected) > 1e-4  # the two variants differ


def test_cell_errors() -> None:
    cell = C.LSTMCell(IN, H)
    with pytest.raises(ValueError, match=r"\(B, 4\)"):
        cell(torch.randn(B, IN + 1))
    with pytest.raises(ValueError, match="batch dimension"):
        cell(torch.randn(IN))
    with pytest.raises(ValueError, match=r"\(h, c\)"):
        cell(torch.randn(B, IN), torch.zeros(B, H))
    with pytest.raises(ValueError, match=r"\(3, 6\)"):
        C.GRUCell(IN, H)(torch.randn(B, IN), torch.zeros(B, H + 1))
    with pytest.raises(ValueError, match="nonlinearity"):
        C.RNNCell(IN, H, nonlinearity="sigmoid")


# ----------------------------------------------------------------------------------------------
# layers against nn.RNN / nn.LSTM / nn.GRU


def run_layer(module: nn.Module, x: torch.Tensor, state, lengths, batch_first: bool, torch_ref: bool):
    if lengths is None:
        return module(x, state)
    if not torch_ref:
        return module(x, state, lengths=torch.tensor(lengths))
    packed = pack_padded_sequence(x, torch.tensor(lengths), batch_first=batch_first, enforce_sorted=False)
    out, hn = module(packed, state)
    out, _ = pad_packed_sequence(out, batch_first=batch_first, total_length=x.shape[1 if batch_first else 0])
    return out, hn


def forward_backward(module: nn.Module, mode: str, L: int, bidir: bool, batch_first: bool, lengths,
                     torch_ref: bool, dtype: torch.dtype = torch.float64):
    """Outputs, final states and gradients (input, initial state, every parameter) for fixed data."""
    D = 2 if bidir else 1
    g = torch.Generator().manual_seed(1)
    shape = (B, T, IN) if batch_first else (T, B, IN)
    x = torch.randn(shape, generator=g, dtype=dtype, requires_grad=True)
    hs = [torch.randn(L * D, B, H, generator=g, dtype=dtype, requires_grad=True)
          for _ in range(2 if mode == "lstm" else 1)]
    state = tuple(hs) if mode == "lstm" else hs[0]
    out, hn = run_layer(module, x, state, lengths, batch_first, torch_ref)
    hn = hn if mode == "lstm" else (hn,)
    w_out = torch.randn(out.shape, generator=g, dtype=dtype)
    loss = (out * w_out).sum()
    for i, h in enumerate(hn):
        loss = loss + (h * torch.randn(h.shape, generator=g, dtype=dtype)).sum() * (i + 2)
    loss.backward()
    params = dict(module.named_parameters())
    return out.detach(), [h.detach() for h in hn], grads_of(x, *hs), {k: p.grad.clone() for k, p in params.items()}


def assert_same(ref_res, our_res, tol: float) -> None:
    (o1, h1, g1, p1), (o2, h2, g2, p2) = ref_res, our_res
    assert o1.shape == o2.shape
    assert maxdiff(o1, o2) <= tol, "outputs"
    for a, b in zip(h1, h2, strict=True):
        assert a.shape == b.shape and maxdiff(a, b) <= tol, "final state"
    for a, b in zip(g1, g2, strict=True):
        assert maxdiff(a, b) <= tol, "input / initial-state gradients"
    assert p1.keys() == p2.keys()
    for k in p1:
        assert maxdiff(p1[k], p2[k]) <= tol, f"gradient of {k}"


LAYER_CASES = list(itertools.product(
    ["rnn_tanh", "rnn_relu", "lstm", "gru"],  # mode
    [1, 2],  # num_layers
    [False, True],  # bidirectional
    [True, False],  # batch_first
    [None, LENGTHS],  # lengths
))


@pytest.mark.parametrize("impl", ["fast", "cells"])
@pytest.mark.parametrize("mode,L,bidir,batch_first,lengths", LAYER_CASES)
def test_layer_matches_torch(impl: str, mode: str, L: int, bidir: bool, batch_first: bool, lengths) -> None:
    torch.manual_seed(0)
    ref_cls, kw = TORCH_LAYERS[mode]
    ref = ref_cls(IN, H, L, batch_first=batch_first, bidirectional=bidir, **kw).double()
    ours = make_rnn(mode, IN, H, num_layers=L, bidirectional=bidir, batch_first=batch_first, impl=impl).double()
    ours.load_state_dict(ref.state_dict())
    assert_same(forward_backward(ref, mode.split("_")[0], L, bidir, batch_first, lengths, True),
                forward_backward(ours, mode.split("_")[0], L, bidir, batch_first, lengths, False), TOL)


@pytest.mark.parametrize("impl", ["fast", "cells"])
@pytest.mark.parametrize("mode", ["lstm", "gru"])
def test_layer_matches_torch_float32(impl: str, mode: str) -> None:
    torch.manual_seed(0)
    ref_cls, _ = TORCH_LAYERS[mode]
    ref = ref_cls(IN, H, 2, batch_first=True, bidirectional=True)
    ours = make_rnn(mode, IN, H, num_layers=2, bidirectional=True, impl=impl)
    ours.load_state_dict(ref.state_dict())
    assert_same(forward_backward(ref, mode, 2, True, True, LENGTHS, True, torch.float32),
                forward_backward(ours, mode, 2, True, True, LENGTHS, False, torch.float32), TOL32)


@pytest.mark.parametrize("impl", ["fast", "cells"])
def test_layer_without_bias_and_default_state(impl: str) -> None:
    torch.manual_seed(0)
    ref = nn.LSTM(IN, H, 2, bias=False, batch_first=True).double()
    ours = LSTM(IN, H, 2, impl=impl, bias=False).double()
    assert set(ours.state_dict()) == set(ref.state_dict())
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(B, T, IN, dtype=torch.float64)
    (o1, (h1, c1)), (o2, (h2, c2)) = ref(x), ours(x)
    assert max(maxdiff(o1, o2), maxdiff(h1, h2), maxdiff(c1, c2)) <= TOL


# ----------------------------------------------------------------------------------------------
# parameters, state_dicts, dropout


def test_parameter_names_and_shapes_equal_torch() -> None:
    for ours, ref in [(LSTM(IN, H, 2, bidirectional=True), nn.LSTM(IN, H, 2, bidirectional=True)),
                      (GRU(IN, H, 3), nn.GRU(IN, H, 3)),
                      (RNN(IN, H, 1, True, nonlinearity="relu"), nn.RNN(IN, H, 1, bidirectional=True))]:
        assert [(k, v.shape) for k, v in ours.named_parameters()] == [(k, v.shape) for k, v in ref.named_parameters()]
        bound = 1 / H ** 0.5
        assert all(p.abs().max() <= bound for p in ours.parameters())


def test_state_dict_round_trips() -> None:
    torch.manual_seed(0)
    x = torch.randn(B, T, IN)
    ref = nn.LSTM(IN, H, 2, batch_first=True, bidirectional=True).eval()
    fast = LSTM(IN, H, 2, bidirectional=True, impl="fast").eval()
    cells = LSTM(IN, H, 2, bidirectional=True, impl="cells").eval()
    fast.load_state_dict(ref.state_dict())  # torch -> ours (fast)
    cells.load_state_dict(fast.state_dict())  # fast -> cells
    back = nn.LSTM(IN, H, 2, batch_first=True, bidirectional=True).eval()
    back.load_state_dict(cells.state_dict())  # cells -> torch
    fast2 = LSTM(IN, H, 2, bidirectional=True, impl="fast").eval()
    fast2.load_state_dict(cells.state_dict())  # cells -> fast
    expected = ref(x)[0]
    for m in (fast, cells, back, fast2):
        assert maxdiff(m(x)[0], expected) <= TOL32
    assert all(torch.equal(v, back.state_dict()[k]) for k, v in ref.state_dict().items())


def test_from_and_to_torch() -> None:
    ref = nn.GRU(IN, H, 2, batch_first=False, bidirectional=True).double()
    ours = GRU.from_torch(ref, impl="cells")
    assert ours.batch_first is False and ours.impl == "cells" and next(ours.parameters()).dtype == torch.float64
    x = torch.randn(T, B, IN, dtype=torch.float64)
    assert maxdiff(ours(x)[0], ref(x)[0]) <= TOL
    back = ours.to_torch()
    assert type(back) is nn.GRU and maxdiff(back(x)[1], ref(x)[1]) <= TOL
    relu = nn.RNN(IN, H, nonlinearity="relu")
    assert RNN.from_torch(relu).nonlinearity == "relu"
    with pytest.raises(ValueError, match="nn.LSTM"):
        LSTM.from_torch(ref)
    with pytest.raises(ValueError, match="reset_after"):
        GRU(IN, H, impl="cells", reset_after=False).to_torch()


def test_impl_can_be_switched_on_one_module() -> None:
    torch.manual_seed(0)
    layer = GRU(IN, H, 2, bidirectional=True).double()
    x = torch.randn(B, T, IN, dtype=torch.float64)
    fast = layer(x, lengths=LENGTHS)
    layer.impl = "cells"
    cells = layer(x, lengths=LENGTHS)
    assert maxdiff(fast[0], cells[0]) <= TOL and maxdiff(fast[1], cells[1]) <= TOL


@pytest.mark.parametrize("impl", ["fast", "cells"])
def test_dropout(impl: str) -> None:
    torch.manual_seed(0)
    ref = nn.LSTM(IN, H, 3, batch_first=True, dropout=0.5).eval()
    ours = LSTM(IN, H, 3, dropout=0.5, impl=impl)
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(B, T, IN)
    ours.eval()
    assert maxdiff(ours(x)[0], ref(x)[0]) <= TOL32  # eval: no-op
    ours.train()
    a, b = ours(x)[0], ours(x)[0]
    assert maxdiff(a, b) > 1e-4  # train: random masks between the layers
    one = LSTM(IN, H, 1, impl=impl)
    assert torch.equal(one(x)[0], one(x)[0])  # no dropout anywhere with dropout=0
    with pytest.warns(UserWarning, match="num_layers=1"):
        LSTM(IN, H, 1, dropout=0.3)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        LSTM(IN, H, 2, dropout=1.5)


# ----------------------------------------------------------------------------------------------
# states: lengths, detach (truncated BPTT), the top layer's state


@pytest.mark.parametrize("impl", ["fast", "cells"])
def test_lengths_zero_outputs_and_last_state(impl: str) -> None:
    torch.manual_seed(0)
    layer = LSTM(IN, H, 1, bidirectional=True, impl=impl)
    x = torch.randn(B, T, IN)
    out, state = layer(x, lengths=LENGTHS)
    top = last_layer_state(state, bidirectional=True)  # (B, 2H)
    assert top.shape == (B, 2 * H)
    for b, n in enumerate(LENGTHS):
        assert torch.all(out[b, n:] == 0)
        assert maxdiff(top[b, :H], out[b, n - 1, :H]) <= 1e-6  # forward: last real step
        assert maxdiff(top[b, H:], out[b, 0, H:]) <= 1e-6  # reverse: its last step is t = 0
        alone = layer(x[b:b + 1, :n])  # the same sequence without padding
        assert maxdiff(alone[0][0], out[b, :n]) <= 1e-6


@pytest.mark.parametrize("impl", ["fast", "cells"])
def test_detach_state_truncates_bptt(impl: str) -> None:
    torch.manual_seed(0)
    layer = LSTM(IN, H, 2, impl=impl)
    x1, x2 = torch.randn(B, T, IN, requires_grad=True), torch.randn(B, T, IN, requires_grad=True)
    _, state = layer(x1)
    carried = detach_state(state)
    assert isinstance(carried, tuple) and all(not s.requires_grad for s in carried)
    assert all(torch.equal(a, b) for a, b in zip(carried, state, strict=True))
    out2, _ = layer(x2, carried)
    out2.sum().backward()
    assert x1.grad is None and x2.grad is not None
    assert detach_state(None) is None
    assert isinstance(detach_state([torch.ones(1, requires_grad=True)]), list)
    with pytest.raises(TypeError):
        detach_state("state")


def test_reset_after_false_layer_equals_stepping_the_cell() -> None:
    torch.manual_seed(0)
    layer = GRU(IN, H, impl="cells", reset_after=False).double()
    cell = C.GRUCell(IN, H, reset_after=False).double()
    cell.load_state_dict({k[:-3]: v for k, v in layer.state_dict().items()})  # weight_ih_l0 -> weight_ih
    x = torch.randn(B, T, IN, dtype=torch.float64)
    out, h_n = layer(x)
    h = None
    for t in range(T):
        h = cell(x[:, t], h)
        assert maxdiff(out[:, t], h) <= TOL
    assert maxdiff(h_n[0], h) <= TOL


# ----------------------------------------------------------------------------------------------
# errors


def test_errors() -> None:
    layer = LSTM(IN, H, 2)
    with pytest.raises(ValueError, match=r"'rnn', 'lstm', 'gru'"):
        make_rnn("transformer", IN, H)
    with pytest.raises(ValueError, match="nonlinearity"):
        make_rnn("lstm", IN, H, nonlinearity="relu")
    assert make_rnn("RNN_RELU", IN, H).nonlinearity == "relu"
    with pytest.raises(ValueError, match=r"\(B, T, input_size\) = \(B, T, 4\).*got shape \(3, 4\)"):
        layer(torch.randn(B, IN))
    with pytest.raises(ValueError, match=r"\(B, T, 4\).*got shape \(3, 5, 7\)"):
        layer(torch.randn(B, T, 7))
    with pytest.raises(ValueError, match=r"\(T, B, 4\)"):
        LSTM(IN, H, batch_first=False)(torch.randn(B, T, 7))
    with pytest.raises(ValueError, match="nn.Embedding"):
        layer(torch.zeros(B, T, IN, dtype=torch.long))
    with pytest.raises(ValueError, match="T = 0"):
        layer(torch.randn(B, 0, IN))
    with pytest.raises(ValueError, match=r"= \(2, 3, 6\), got \[\(4, 3, 6\), \(2, 3, 6\)\]"):
        layer(torch.randn(B, T, IN), (torch.zeros(4, B, H), torch.zeros(2, B, H)))
    with pytest.raises(ValueError, match=r"\(h_0, c_0\)"):
        layer(torch.randn(B, T, IN), torch.zeros(2, B, H))
    with pytest.raises(ValueError, match=r"state = h_0 of shape .* = \(4, 3, 6\), got \(2, 3, 6\)"):
        GRU(IN, H, 2, bidirectional=True)(torch.randn(B, T, IN), torch.zeros(2, B, H))
    with pytest.raises(ValueError, match=r"\[1, T = 5\]"):
        layer(torch.randn(B, T, IN), lengths=[5, 0, 3])
    with pytest.raises(ValueError, match=r"\[1, T = 5\]"):
        layer(torch.randn(B, T, IN), lengths=[6, 1, 3])
    with pytest.raises(ValueError, match=r"lengths of shape \(B,\) = \(3,\)"):
        layer(torch.randn(B, T, IN), lengths=[5, 2])
    with pytest.raises(ValueError, match="impl"):
        LSTM(IN, H, impl="cudnn")
    layer.impl = "slow"
    with pytest.raises(ValueError, match="'fast', 'cells'"):
        layer(torch.randn(B, T, IN))
    with pytest.raises(ValueError, match="impl='cells'"):
        GRU(IN, H, reset_after=False)
    with pytest.raises(ValueError, match="hidden_size"):
        GRU(IN, 0)
