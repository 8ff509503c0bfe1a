"""Stacked, bidirectional recurrent layers (RNN, LSTM, GRU) with two interchangeable implementations.

A layer runs a cell over a sequence, ``h_t = cell(x_t, h_{t-1})`` for t = 1..T, and stacks
``num_layers`` of them, layer l reading layer l-1's outputs. Bidirectional layers run a second
cell from t = T down to 1 and concatenate both directions' outputs, so every output sees the whole
sequence: output (B, T, D*H) with D = 2. Training unrolls the loop and backpropagates through time
(BPTT): the gradient reaching h_t from h_{t+k} is a product of k Jacobians dh_{s+1}/dh_s, which
for the plain RNN (``diag(act') W_hh``) shrinks or grows geometrically with k -- the vanishing
and exploding gradient (Bengio et al. 1994; Pascanu et al. 2013). The LSTM's additive cell and
the GRU's interpolation ``h' = (1 - z) n + z h`` keep a path whose Jacobian is a gate, close to 1
when the network chooses to remember.

Two implementations compute the same function on the same parameters:

* ``impl="fast"`` (default) calls torch's fused kernels (``torch._VF.lstm`` / ``gru`` /
  ``rnn_tanh`` / ``rnn_relu``, the functions ``nn.LSTM`` itself calls: oneDNN on CPU, cuDNN on
  GPU) with this module's parameters;
* ``impl="cells"`` is the teaching path: the cells of :mod:`archlab.models.rnn.cells` (the same
  ``*_step`` functions that ``LSTMCell`` & co. call), one Python loop step per time step. The
  input projections ``W_ih x_t + b_ih`` of all steps are one matrix product before the loop
  (they do not depend on the recurrence); only ``W_hh h`` and the gates run inside it.

The parameters are named and shaped exactly as ``nn.RNN`` / ``nn.LSTM`` / ``nn.GRU``'s
(``weight_ih_l0`` (G*H, C), ``weight_hh_l0`` (G*H, H), ``bias_ih_l0``, ``bias_hh_l0``,
``weight_ih_l1_reverse``...), so a ``state_dict`` loads into either implementation and into or
from the torch modules; ``tests/models/test_rnn_layers.py`` checks outputs, final states and all
gradients against torch's modules with copied weights.

Variable lengths: ``lengths`` (B,) gives each sequence's real length in a right-padded batch.
The fast path packs the batch (``pack_padded_sequence(..., enforce_sorted=False)``), runs the
kernel on the packed steps only and pads the outputs back to T; the cells path runs all T steps
and masks: past a sequence's length its state stops changing and its outputs are 0, and the
reverse direction starts from the initial state at the sequence's last real token. Both give
torch's packed semantics: outputs past the length are 0 and h_n is the state at the last real
step (the first step, for the reverse direction).

Deviations from the papers: none beyond the cells' (two biases, no peepholes, torch's GRU by
default); inter-layer dropout (Zaremba et al. 2014, https://arxiv.org/abs/1409.2329) is applied to
the outputs of every layer but the last, as in torch.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import _VF, Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from archlab.models.rnn.cells import NONLINEARITIES, gru_step, lstm_step, rnn_step

__all__ = ["RNN", "LSTM", "GRU", "make_rnn", "detach_state", "last_layer_state", "IMPLS", "MODES"]

IMPLS = ("fast", "cells")
MODES = ("rnn", "lstm", "gru")

State = Tensor | tuple[Tensor, Tensor]


class _Recurrent(nn.Module):
    """The shared machinery; subclasses set ``num_gates``, ``torch_class`` and ``_step``."""

    num_gates: ClassVar[int] = 1
    torch_class: ClassVar[type[nn.RNNBase]] = nn.RNN
    has_cell_state: ClassVar[bool] = False

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        batch_first: bool = True,
        impl: Literal["fast", "cells"] = "fast",
        *,
        bias: bool = True,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        for arg, value in (("input_size", input_size), ("hidden_size", hidden_size), ("num_layers", num_layers)):
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"{name}: {arg} must be a positive int, got {value!r}")
        if isinstance(dropout, bool) or not isinstance(dropout, int | float) or not 0 <= dropout <= 1:
            raise ValueError(f"{name}: dropout is the probability of zeroing an element, in [0, 1]; got {dropout!r}")
        if dropout > 0 and num_layers == 1:
            warnings.warn(f"{name}: dropout={dropout} acts between stacked layers only (not after the last), "
                          "so it does nothing with num_layers=1", stacklevel=2)
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bidirectional = bool(bidirectional)
        self.dropout = float(dropout)
        self.batch_first = bool(batch_first)
        self.bias = bool(bias)
        self.impl = impl
        self._check_impl()

        D = 2 if self.bidirectional else 1
        G = self.num_gates * hidden_size
        self._flat_weights_names: list[str] = []  # nn.RNNBase's order: per layer, per direction
        for layer in range(num_layers):
            layer_in = input_size if layer == 0 else D * hidden_size
            for direction in range(D):
                suffix = f"_l{layer}" + ("_reverse" if direction == 1 else "")
                shapes = {"weight_ih": (G, layer_in), "weight_hh": (G, hidden_size)}
                if self.bias:
                    shapes.update(bias_ih=(G,), bias_hh=(G,))
                for kind, shape in shapes.items():
                    setattr(self, kind + suffix, nn.Parameter(torch.empty(shape)))
                    self._flat_weights_names.append(kind + suffix)
        self.reset_parameters()

    # -- parameters ------------------------------------------------------------------------------

    @property
    def mode(self) -> str:
        """torch's name of the kernel: ``"LSTM"``, ``"GRU"``, ``"RNN_TANH"`` or ``"RNN_RELU"``."""
        return type(self).__name__

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    def reset_parameters(self) -> None:
        """Every weight and bias uniform in [-1/sqrt(H), 1/sqrt(H)], as torch."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def layer_weights(self, layer: int, direction: int = 0) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None]:
        """(weight_ih, weight_hh, bias_ih, bias_hh) of one layer and direction (biases None when bias=False)."""
        suffix = f"_l{layer}" + ("_reverse" if direction == 1 else "")
        w_ih, w_hh = getattr(self, "weight_ih" + suffix), getattr(self, "weight_hh" + suffix)
        if not self.bias:
            return w_ih, w_hh, None, None
        return w_ih, w_hh, getattr(self, "bias_ih" + suffix), getattr(self, "bias_hh" + suffix)

    def flatten_parameters(self) -> None:
        """On a CUDA device with cuDNN, lay the weights out in one contiguous buffer (as
        ``nn.RNNBase.flatten_parameters``), so cuDNN does not copy them on every call. A no-op on CPU."""
        weights = [getattr(self, n) for n in self._flat_weights_names]
        if not all(isinstance(w, Tensor) and w.is_cuda and w.dtype == weights[0].dtype
                   and torch.backends.cudnn.is_acceptable(w) for w in weights):
            return
        if len({w.data_ptr() for w in weights}) != len(weights):
            return  # aliased (tied) weights: leave them, cuDNN copies
        import torch.backends.cudnn.rnn as cudnn_rnn

        with torch.cuda.device_of(weights[0]), torch.no_grad():
            if torch._use_cudnn_rnn_flatten_weight():
                torch._cudnn_rnn_flatten_weight(
                    weights, 4 if self.bias else 2, self.input_size, cudnn_rnn.get_cudnn_mode(self.mode),
                    self.hidden_size, 0, self.num_layers, self.batch_first, self.bidirectional)

    def _apply(self, fn: Any, recurse: bool = True) -> nn.Module:
        out = super()._apply(fn, recurse)
        self.flatten_parameters()  # .to(device) made new tensors
        return out

    @classmethod
    def from_torch(cls, module: nn.RNNBase, impl: Literal["fast", "cells"] = "fast") -> _Recurrent:
        """A copy of ``nn.RNN`` / ``nn.LSTM`` / ``nn.GRU`` ``module`` (same sizes and weights)."""
        if type(module) is not cls.torch_class or getattr(module, "proj_size", 0):
            raise ValueError(f"{cls.__name__}.from_torch takes an nn.{cls.torch_class.__name__} without "
                             f"proj_size, got {module!r}")
        kw: dict[str, Any] = {"bias": module.bias}
        if cls is RNN:
            kw["nonlinearity"] = module.nonlinearity
        layer = cls(module.input_size, module.hidden_size, module.num_layers, module.bidirectional,
                    module.dropout, module.batch_first, impl, **kw)
        p = next(module.parameters())
        layer.to(device=p.device, dtype=p.dtype)
        layer.load_state_dict(module.state_dict())
        return layer

    def to_torch(self) -> nn.RNNBase:
        """The equivalent ``nn.RNN`` / ``nn.LSTM`` / ``nn.GRU`` with a copy of these weights."""
        if not getattr(self, "reset_after", True):
            raise ValueError("to_torch: nn.GRU has no reset_after=False (Cho et al.'s original GRU)")
        kw: dict[str, Any] = {}
        if isinstance(self, RNN):
            kw["nonlinearity"] = self.nonlinearity
        p = next(self.parameters())
        module = self.torch_class(self.input_size, self.hidden_size, self.num_layers, bias=self.bias,
                                  batch_first=self.batch_first, dropout=self.dropout,
                                  bidirectional=self.bidirectional, device=p.device, dtype=p.dtype, **kw)
        module.load_state_dict(self.state_dict())
        return module

    # -- checks ----------------------------------------------------------------------------------

    def _check_impl(self) -> None:
        if self.impl not in IMPLS:
            raise ValueError(f"{type(self).__name__}: unknown impl {self.impl!r}; use one of {IMPLS} "
                             "(fast: torch's fused kernel; cells: the gate-by-gate cells, step by step)")

    def _expected(self) -> str:
        order = "(B, T, input_size)" if self.batch_first else "(T, B, input_size)"
        shape = f"(B, T, {self.input_size})" if self.batch_first else f"(T, B, {self.input_size})"
        return f"{type(self).__name__} expects input of shape {order} = {shape} (batch_first={self.batch_first})"

    def _check_input(self, x: Any) -> tuple[int, int]:
        if isinstance(x, PackedSequence):
            raise ValueError(f"{self._expected()}, got a PackedSequence: pass the padded tensor and "
                             "lengths=(B,) instead; the layer packs it")
        if not isinstance(x, Tensor):
            raise ValueError(f"{self._expected()}, got {type(x).__name__}")
        if x.dim() != 3 or x.shape[-1] != self.input_size:
            hint = " (add a batch dimension)" if x.dim() == 2 and x.shape[-1] == self.input_size else ""
            raise ValueError(f"{self._expected()}, got shape {tuple(x.shape)}{hint}")
        if not x.is_floating_point():
            raise ValueError(f"{self._expected()} of floats, got dtype {x.dtype}: embed token ids first "
                             "(nn.Embedding)")
        B, T = (x.shape[0], x.shape[1]) if self.batch_first else (x.shape[1], x.shape[0])
        if T == 0:
            raise ValueError(f"{self._expected()}, got an empty sequence (T = 0), shape {tuple(x.shape)}")
        return B, T

    def _check_state(self, state: State | None, x: Tensor, B: int) -> tuple[Tensor, ...]:
        name, shape = type(self).__name__, (self.num_layers * self.num_directions, B, self.hidden_size)
        n = 2 if self.has_cell_state else 1
        if state is None:
            zeros = x.new_zeros(shape)
            return (zeros, zeros) if n == 2 else (zeros,)
        what = "state = (h_0, c_0), each" if n == 2 else "state = h_0"
        parts = tuple(state) if n == 2 and isinstance(state, tuple | list) else (state,)
        if len(parts) != n or not all(isinstance(p, Tensor) and tuple(p.shape) == shape for p in parts):
            got = [tuple(p.shape) if isinstance(p, Tensor) else type(p).__name__ for p in parts]
            raise ValueError(f"{name} expects {what} of shape (num_layers * num_directions, B, hidden_size) "
                             f"= {shape}, got {got[0] if n == 1 and len(got) == 1 else got}")
        return parts

    def _check_lengths(self, lengths: Tensor | Sequence[int] | None, B: int, T: int) -> Tensor | None:
        if lengths is None:
            return None
        lengths = torch.as_tensor(lengths)
        if lengths.dim() != 1 or lengths.numel() != B or lengths.is_floating_point() or lengths.dtype == torch.bool:
            raise ValueError(f"{type(self).__name__} expects lengths of shape (B,) = ({B},), integers, got "
                             f"shape {tuple(lengths.shape)}, dtype {lengths.dtype}")
        lengths = lengths.long()
        lo, hi = (int(v) for v in torch.aminmax(lengths))
        if lo < 1 or hi > T:
            raise ValueError(f"{type(self).__name__}: lengths must lie in [1, T = {T}], got min {lo}, max {hi}; "
                             "drop empty sequences (or give them one pad token)")
        return lengths

    # -- forward ---------------------------------------------------------------------------------

    def forward(self, x: Tensor, state: State | None = None,
                lengths: Tensor | Sequence[int] | None = None) -> tuple[Tensor, State]:
        """Run the stacked (bi)directional recurrence over a batch of sequences.

        Args:
            x: inputs (B, T, input_size); (T, B, input_size) when ``batch_first=False``.
            state: the initial state h_0 (L*D, B, H), for the LSTM (h_0, c_0); None = zeros.
                Row ``l*D + d`` is layer l, direction d (0 forward, 1 reverse), as in torch.
            lengths: (B,) real lengths of right-padded sequences, in [1, T]; None = all T.

        Returns:
            output (B, T, D*H) (or (T, B, D*H)): the top layer's h_t, the directions concatenated
            (forward first), 0 past each sequence's length; and the final state h_n (L*D, B, H)
            (LSTM: (h_n, c_n)): each layer and direction's state after its last real step.
        """
        self._check_impl()
        B, T = self._check_input(x)
        hx = self._check_state(state, x, B)
        lens = self._check_lengths(lengths, B, T)
        if self.impl == "fast":
            out, hn = self._forward_fast(x, hx, lens, T, permute_state=state is not None)
        else:
            out, hn = self._forward_cells(x, hx, lens)
        return out, (hn if self.has_cell_state else hn[0])

    def _forward_fast(self, x: Tensor, hx: tuple[Tensor, ...], lengths: Tensor | None, T: int,
                      permute_state: bool = True) -> tuple[Tensor, tuple[Tensor, ...]]:
        kernel = getattr(_VF, self.mode.lower())  # lstm, gru, rnn_tanh, rnn_relu
        weights = [getattr(self, n) for n in self._flat_weights_names]
        flags = (self.bias, self.num_layers, self.dropout, self.training, self.bidirectional)
        if lengths is None:
            res = kernel(x, hx if self.has_cell_state else hx[0], weights, *flags, self.batch_first)
            return res[0], tuple(res[1:])
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=self.batch_first, enforce_sorted=False)
        if permute_state:  # into the batch order of the packing (zeros need no reordering)
            hx = tuple(h.index_select(1, packed.sorted_indices) for h in hx)
        res = kernel(packed.data, packed.batch_sizes, hx if self.has_cell_state else hx[0], weights, *flags)
        out_packed = PackedSequence(res[0], packed.batch_sizes, packed.sorted_indices, packed.unsorted_indices)
        out, _ = pad_packed_sequence(out_packed, batch_first=self.batch_first, total_length=T)
        return out, tuple(h.index_select(1, packed.unsorted_indices) for h in res[1:])

    def _forward_cells(self, x: Tensor, hx: tuple[Tensor, ...],
                       lengths: Tensor | None) -> tuple[Tensor, tuple[Tensor, ...]]:
        if not self.batch_first:
            x = x.transpose(0, 1)  # (B, T, C)
        T = x.shape[1]
        mask = None
        if lengths is not None:
            mask = torch.arange(T, device=x.device)[None, :] < lengths.to(x.device)[:, None]  # (B, T)
        finals: list[list[Tensor]] = [[] for _ in hx]  # per state part, rows l*D + d
        layer_in = x  # (B, T, C)
        for layer in range(self.num_layers):
            outs = []
            for direction in range(self.num_directions):
                w_ih, w_hh, b_ih, b_hh = self.layer_weights(layer, direction)
                gi = F.linear(layer_in, w_ih, b_ih)  # (B, T, G*H): every step's input projection at once
                k = layer * self.num_directions + direction
                out, final = self._scan(gi, tuple(h[k] for h in hx), w_hh, b_hh, mask, reverse=direction == 1)
                outs.append(out)  # (B, T, H)
                for part, s in zip(finals, final):
                    part.append(s)
            layer_in = outs[0] if len(outs) == 1 else torch.cat(outs, dim=-1)  # (B, T, D*H)
            if self.dropout > 0 and self.training and layer < self.num_layers - 1:
                layer_in = F.dropout(layer_in, self.dropout, training=True)
        out = layer_in if self.batch_first else layer_in.transpose(0, 1)
        return out, tuple(torch.stack(part, dim=0) for part in finals)  # each (L*D, B, H)

    def _scan(self, gi: Tensor, state: tuple[Tensor, ...], w_hh: Tensor, b_hh: Tensor | None,
              mask: Tensor | None, reverse: bool) -> tuple[Tensor, tuple[Tensor, ...]]:
        """Run one direction of one layer: gi (B, T, G*H) -> outputs (B, T, H), final state."""
        T = gi.shape[1]
        outputs: list[Tensor] = [gi] * T  # placeholders, every slot is overwritten
        for t in range(T - 1, -1, -1) if reverse else range(T):
            new = self._step(gi[:, t], state, w_hh, b_hh)
            if mask is None:
                state = new
                outputs[t] = new[0]
            else:
                m = mask[:, t, None]  # (B, 1): is step t inside this sequence?
                state = tuple(torch.where(m, n, s) for n, s in zip(new, state))  # padded steps keep the state
                outputs[t] = new[0].masked_fill(~m, 0.0)
        return torch.stack(outputs, dim=1), state  # (B, T, H)

    def _step(self, gi: Tensor, state: tuple[Tensor, ...], w_hh: Tensor,
              b_hh: Tensor | None) -> tuple[Tensor, ...]:
        raise NotImplementedError

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self.bidirectional:
            s += ", bidirectional=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if not self.batch_first:
            s += ", batch_first=False"
        if not self.bias:
            s += ", bias=False"
        return s + f", impl={self.impl!r}"


class RNN(_Recurrent):
    """Elman RNN layer, ``h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)``; drop-in for ``nn.RNN``.

    Args:
        input_size: features C of each step.
        hidden_size: features H of the state.
        num_layers: stacked layers L.
        bidirectional: add a reverse-time direction (D = 2).
        dropout: dropout on the outputs of every layer but the last (training only).
        batch_first: x is (B, T, C) (default) rather than (T, B, C).
        impl: ``"fast"`` (torch's fused kernel) or ``"cells"`` (gate by gate, step by step).
        nonlinearity: ``"tanh"`` or ``"relu"``.
        bias: keep the biases.
    """

    torch_class = nn.RNN

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bidirectional: bool = False,
                 dropout: float = 0.0, batch_first: bool = True, impl: Literal["fast", "cells"] = "fast", *,
                 nonlinearity: Literal["tanh", "relu"] = "tanh", bias: bool = True) -> None:
        if nonlinearity not in NONLINEARITIES:
            raise ValueError(f"RNN: unknown nonlinearity {nonlinearity!r}; use one of {NONLINEARITIES}")
        super().__init__(input_size, hidden_size, num_layers, bidirectional, dropout, batch_first, impl, bias=bias)
        self.nonlinearity = nonlinearity

    @property
    def mode(self) -> str:
        return "RNN_TANH" if self.nonlinearity == "tanh" else "RNN_RELU"

    def _step(self, gi: Tensor, state: tuple[Tensor, ...], w_hh: Tensor,
              b_hh: Tensor | None) -> tuple[Tensor, ...]:
        return (rnn_step(gi, state[0], w_hh, b_hh, self.nonlinearity),)

    def extra_repr(self) -> str:
        return super().extra_repr() + ("" if self.nonlinearity == "tanh" else ", nonlinearity='relu'")


class LSTM(_Recurrent):
    """LSTM layer (gates i, f, g, o; see :mod:`.cells`); drop-in for ``nn.LSTM`` (without proj_size).

    Args: as :class:`RNN`, without ``nonlinearity``. The state is a pair (h, c), each (L*D, B, H).
    """

    num_gates = 4
    torch_class = nn.LSTM
    has_cell_state = True

    def _step(self, gi: Tensor, state: tuple[Tensor, ...], w_hh: Tensor,
              b_hh: Tensor | None) -> tuple[Tensor, ...]:
        return lstm_step(gi, (state[0], state[1]), w_hh, b_hh)


class GRU(_Recurrent):
    """GRU layer (gates r, z, n; see :mod:`.cells`); drop-in for ``nn.GRU``.

    Args: as :class:`RNN`, without ``nonlinearity``, and
        reset_after: True (default): torch's GRU; False: Cho et al.'s original candidate
            ``n = tanh(W_in x + b_in + W_hn (r * h) + b_hn)``, which torch has no fused kernel
            for, so it needs ``impl="cells"``.
    """

    num_gates = 3
    torch_class = nn.GRU

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bidirectional: bool = False,
                 dropout: float = 0.0, batch_first: bool = True, impl: Literal["fast", "cells"] = "fast", *,
                 bias: bool = True, reset_after: bool = True) -> None:
        super().__init__(input_size, hidden_size, num_layers, bidirectional, dropout, batch_first, impl, bias=bias)
        self.reset_after = reset_after
        self._check_impl()

    def _check_impl(self) -> None:
        super()._check_impl()
        if self.impl == "fast" and not getattr(self, "reset_after", True):
            raise ValueError("GRU: reset_after=False (Cho et al.'s original GRU) has no fused torch kernel; "
                             "use impl='cells'")

    def _step(self, gi: Tensor, state: tuple[Tensor, ...], w_hh: Tensor,
              b_hh: Tensor | None) -> tuple[Tensor, ...]:
        return (gru_step(gi, state[0], w_hh, b_hh, self.reset_after),)

    def extra_repr(self) -> str:
        return super().extra_repr() + ("" if self.reset_after else ", reset_after=False")


_LAYERS: dict[str, type[_Recurrent]] = {"rnn": RNN, "lstm": LSTM, "gru": GRU}


def make_rnn(mode: str, input_size: int, hidden_size: int, **kwargs: Any) -> RNN | LSTM | GRU:
    """Build a recurrent layer by name.

    Args:
        mode: ``"rnn"``, ``"lstm"`` or ``"gru"`` (any case); ``"rnn_tanh"`` / ``"rnn_relu"`` set the
            RNN's nonlinearity.
        input_size: features of each step.
        hidden_size: features of the state.
        **kwargs: the layer's other arguments (num_layers, bidirectional, dropout, batch_first, impl,
            bias, nonlinearity for the RNN, reset_after for the GRU).
    """
    key = str(mode).lower()
    if key in ("rnn_tanh", "rnn_relu"):
        kwargs.setdefault("nonlinearity", key[4:])
        key = "rnn"
    if key not in _LAYERS:
        raise ValueError(f"unknown recurrent layer {mode!r}: use one of {', '.join(repr(m) for m in MODES)}")
    if "nonlinearity" in kwargs and key != "rnn":
        raise ValueError(f"nonlinearity is an option of the plain RNN only, not of {key!r}")
    return _LAYERS[key](input_size, hidden_size, **kwargs)


def detach_state(state: Any) -> Any:
    """Cut the graph behind a recurrent state, for truncated BPTT: the next chunk starts from the
    values of ``state`` but backpropagates no further. Tensors, tuples/lists of them, None."""
    if state is None:
        return None
    if isinstance(state, Tensor):
        return state.detach()
    if isinstance(state, tuple | list):
        return type(state)(detach_state(s) for s in state)
    raise TypeError(f"detach_state takes a tensor, a tuple/list of tensors or None, got {type(state).__name__}")


def last_layer_state(state: State, bidirectional: bool = False) -> Tensor:
    """The top layer's final hidden state with its directions concatenated: h_n (L*D, B, H) -> (B, D*H).

    For an LSTM pass either h_n or (h_n, c_n) (h_n is used). With ``lengths`` this is each
    sequence's state at its last real token (forward) and at its first token (reverse).
    """
    h_n = state[0] if isinstance(state, tuple | list) else state
    D = 2 if bidirectional else 1
    return torch.cat(list(h_n[-D:]), dim=-1)  # (B, D*H)
