"""Recurrent cells written out gate by gate: the vanilla (Elman) RNN, the LSTM and the GRU.

A cell maps one time step, ``(x_t, state_{t-1}) -> state_t``, for a batch: x_t (B, C), h (B, H).
Every cell keeps two affine maps, one of the input and one of the previous hidden state, each
holding the pre-activations of all G gates stacked (G = 1 for the RNN, 4 for the LSTM, 3 for
the GRU)::

    W_ih (G*H, C)   b_ih (G*H,)      applied to x_t
    W_hh (G*H, H)   b_hh (G*H,)      applied to h_{t-1}

The names, shapes, gate order and initialisation (every weight and bias uniform in
[-1/sqrt(H), 1/sqrt(H)]) are exactly those of ``torch.nn.RNNCell`` / ``LSTMCell`` / ``GRUCell``,
so ``cell.load_state_dict(torch_cell.state_dict())`` works both ways and the outputs agree
(``tests/models/test_rnn_layers.py``).

RNNCell
    J. L. Elman, "Finding Structure in Time", Cognitive Science 14(2), 1990.
    https://doi.org/10.1207/s15516709cog1402_1

        h' = tanh(W_ih x + b_ih + W_hh h + b_hh)          (or relu)

LSTMCell
    S. Hochreiter, J. Schmidhuber, "Long Short-Term Memory", Neural Computation 9(8), 1997.
    https://doi.org/10.1162/neco.1997.9.8.1735 ; the forget gate: F. A. Gers, J. Schmidhuber,
    F. Cummins, "Learning to Forget: Continual Prediction with LSTM", Neural Computation 12(10),
    2000. https://doi.org/10.1162/089976600300015015 . Gate order in W (rows): i, f, g, o::

        i  = sigmoid(W_ii x + b_ii + W_hi h + b_hi)       input gate
        f  = sigmoid(W_if x + b_if + W_hf h + b_hf)       forget gate (Gers et al.)
        g  = tanh   (W_ig x + b_ig + W_hg h + b_hg)       candidate cell input
        o  = sigmoid(W_io x + b_io + W_ho h + b_ho)       output gate
        c' = f * c + i * g                                the additive "constant error carousel"
        h' = o * tanh(c')

    The cell state is updated by addition, so dc'/dc = f: while the forget gate stays near 1 the
    gradient flows back through many steps without the repeated W_hh products that make it
    vanish (or explode) in the plain RNN.

GRUCell
    K. Cho, B. van Merrienboer, C. Gulcehre, D. Bahdanau, F. Bougares, H. Schwenk, Y. Bengio,
    "Learning Phrase Representations using RNN Encoder-Decoder for Statistical Machine
    Translation", EMNLP 2014. https://arxiv.org/abs/1406.1078 . Gate order: r, z, n::

        r  = sigmoid(W_ir x + b_ir + W_hr h + b_hr)       reset gate
        z  = sigmoid(W_iz x + b_iz + W_hz h + b_hz)       update gate
        n  = tanh(W_in x + b_in + r * (W_hn h + b_hn))    candidate   (reset_after=True, torch/cuDNN)
        n  = tanh(W_in x + b_in + W_hn (r * h) + b_hn)    candidate   (reset_after=False, Cho et al.)
        h' = (1 - z) * n + z * h

Besides the modules, each cell is a plain function of its weights (``rnn_cell``, ``lstm_cell``,
``gru_cell``), and a ``*_step`` function that takes the input projection ``gi = W_ih x + b_ih``
already computed. The layers in :mod:`archlab.models.rnn.layers` compute ``gi`` for all T steps
in one matrix product (it does not depend on the recurrence) and then call ``*_step`` T times;
the modules here call the same functions, so there is one implementation of each cell.

Deviations from the papers:
    - Two bias vectors (b_ih and b_hh) where one would do (their sum is what counts), as in torch
      and cuDNN, so that weights move to and from ``nn.LSTM``.
    - LSTM: no peephole connections (Gers & Schmidhuber 2000); the forget gate is always there.
    - GRU: ``reset_after`` [True]: the default applies the reset gate after the hidden-state
      product, torch's and cuDNN's variant (needed for equality with ``nn.GRU``); ``False`` is
      Cho et al.'s original, with the reset gate applied to h before the product.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "RNNCell",
    "LSTMCell",
    "GRUCell",
    "rnn_cell",
    "lstm_cell",
    "gru_cell",
    "rnn_step",
    "lstm_step",
    "gru_step",
    "NONLINEARITIES",
]

NONLINEARITIES = ("tanh", "relu")


# ----------------------------------------------------------------------------------------------
# the cells as functions: *_step takes gi = W_ih x + b_ih, *_cell takes x


def rnn_step(gi: Tensor, h: Tensor, weight_hh: Tensor, bias_hh: Tensor | None,
             nonlinearity: str = "tanh") -> Tensor:
    """One Elman step from the input projection: ``h' = act(gi + W_hh h + b_hh)``.

    Args:
        gi: ``W_ih x + b_ih`` (B, H).
        h: the previous hidden state (B, H).
        weight_hh: (H, H).
        bias_hh: (H,) or None.
        nonlinearity: ``"tanh"`` or ``"relu"``.

    Returns:
        The new hidden state (B, H).
    """
    pre = gi + F.linear(h, weight_hh, bias_hh)  # (B, H)
    return torch.tanh(pre) if nonlinearity == "tanh" else torch.relu(pre)


def lstm_step(gi: Tensor, state: tuple[Tensor, Tensor], weight_hh: Tensor,
              bias_hh: Tensor | None) -> tuple[Tensor, Tensor]:
    """One LSTM step from the input projection ``gi = W_ih x + b_ih`` (B, 4H).

    Args:
        gi: the input part of the four gates' pre-activations, rows i, f, g, o (B, 4H).
        state: (h, c), each (B, H).
        weight_hh: (4H, H).
        bias_hh: (4H,) or None.

    Returns:
        (h', c'), each (B, H).
    """
    h, c = state
    gates = gi + F.linear(h, weight_hh, bias_hh)  # (B, 4H)
    i, f, g, o = gates.chunk(4, dim=1)  # each (B, H)
    i = torch.sigmoid(i)  # input gate: how much of the candidate to write
    f = torch.sigmoid(f)  # forget gate: how much of the old cell to keep
    g = torch.tanh(g)  # candidate cell input
    o = torch.sigmoid(o)  # output gate: how much of the cell to show
    c_new = f * c + i * g
    h_new = o * torch.tanh(c_new)
    return h_new, c_new


def gru_step(gi: Tensor, h: Tensor, weight_hh: Tensor, bias_hh: Tensor | None,
             reset_after: bool = True) -> Tensor:
    """One GRU step from the input projection ``gi = W_ih x + b_ih`` (B, 3H).

    Args:
        gi: the input part of the gates' pre-activations, rows r, z, n (B, 3H).
        h: the previous hidden state (B, H).
        weight_hh: (3H, H).
        bias_hh: (3H,) or None.
        reset_after: True: ``n = tanh(gi_n + r * (W_hn h + b_hn))`` (torch, cuDNN); False:
            ``n = tanh(gi_n + W_hn (r * h) + b_hn)`` (Cho et al. 2014).

    Returns:
        The new hidden state (B, H).
    """
    H = h.shape[-1]
    gi_r, gi_z, gi_n = gi.chunk(3, dim=1)  # each (B, H)
    if reset_after:
        gh_r, gh_z, gh_n = F.linear(h, weight_hh, bias_hh).chunk(3, dim=1)  # each (B, H)
        r = torch.sigmoid(gi_r + gh_r)  # reset gate
        z = torch.sigmoid(gi_z + gh_z)  # update gate
        n = torch.tanh(gi_n + r * gh_n)  # candidate
    else:
        b_rz = None if bias_hh is None else bias_hh[: 2 * H]
        b_n = None if bias_hh is None else bias_hh[2 * H:]
        gh_r, gh_z = F.linear(h, weight_hh[: 2 * H], b_rz).chunk(2, dim=1)  # each (B, H)
        r = torch.sigmoid(gi_r + gh_r)
        z = torch.sigmoid(gi_z + gh_z)
        n = torch.tanh(gi_n + F.linear(r * h, weight_hh[2 * H:], b_n))  # reset before the product
    return (1 - z) * n + z * h


def rnn_cell(x: Tensor, h: Tensor, weight_ih: Tensor, weight_hh: Tensor, bias_ih: Tensor | None = None,
             bias_hh: Tensor | None = None, nonlinearity: str = "tanh") -> Tensor:
    """``h' = act(W_ih x + b_ih + W_hh h + b_hh)`` for x (B, C), h (B, H)."""
    return rnn_step(F.linear(x, weight_ih, bias_ih), h, weight_hh, bias_hh, nonlinearity)


def lstm_cell(x: Tensor, state: tuple[Tensor, Tensor], weight_ih: Tensor, weight_hh: Tensor,
              bias_ih: Tensor | None = None, bias_hh: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """One LSTM step for x (B, C) and state (h, c) each (B, H); returns (h', c')."""
    return lstm_step(F.linear(x, weight_ih, bias_ih), state, weight_hh, bias_hh)


def gru_cell(x: Tensor, h: Tensor, weight_ih: Tensor, weight_hh: Tensor, bias_ih: Tensor | None = None,
             bias_hh: Tensor | None = None, reset_after: bool = True) -> Tensor:
    """One GRU step for x (B, C), h (B, H); returns h'."""
    return gru_step(F.linear(x, weight_ih, bias_ih), h, weight_hh, bias_hh, reset_after)


# ----------------------------------------------------------------------------------------------
# the cells as modules (parameters named and shaped as torch's cells)


class _CellBase(nn.Module):
    """Holds ``weight_ih`` (G*H, C), ``weight_hh`` (G*H, H), ``bias_ih``, ``bias_hh`` (G*H,)."""

    num_gates: int = 1

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True) -> None:
        super().__init__()
        if input_size <= 0 or hidden_size <= 0:
            raise ValueError(f"{type(self).__name__}: input_size and hidden_size must be positive, "
                             f"got {input_size} and {hidden_size}")
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bias = bias
        G = self.num_gates * hidden_size
        self.weight_ih = nn.Parameter(torch.empty(G, input_size))
        self.weight_hh = nn.Parameter(torch.empty(G, hidden_size))
        if bias:
            self.bias_ih = nn.Parameter(torch.empty(G))
            self.bias_hh = nn.Parameter(torch.empty(G))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Every weight and bias uniform in [-1/sqrt(H), 1/sqrt(H)], as torch."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def _check(self, x: Tensor, state: Tensor | None) -> None:
        name = type(self).__name__
        if not isinstance(x, Tensor) or x.dim() != 2 or x.shape[1] != self.input_size:
            got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            hint = " (add a batch dimension: x[None])" if isinstance(x, Tensor) and x.dim() == 1 else ""
            raise ValueError(f"{name} expects x of shape (B, input_size) = (B, {self.input_size}), "
                             f"got {got}{hint}")
        if state is not None and tuple(state.shape) != (x.shape[0], self.hidden_size):
            raise ValueError(f"{name} expects a state of shape (B, hidden_size) = "
                             f"({x.shape[0]}, {self.hidden_size}), got {tuple(state.shape)}")

    def _zeros(self, x: Tensor) -> Tensor:
        return x.new_zeros(x.shape[0], self.hidden_size)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        return s if self.bias else s + ", bias=False"


class RNNCell(_CellBase):
    """Elman RNN cell: ``h' = act(W_ih x + b_ih + W_hh h + b_hh)``, act = tanh or relu.

    Args:
        input_size: features C of x.
        hidden_size: features H of h.
        nonlinearity: ``"tanh"`` (default) or ``"relu"``.
        bias: keep ``bias_ih`` and ``bias_hh``.

    Shapes: x (B, C), state h (B, H) or None (zeros) -> h' (B, H).
    """

    num_gates = 1

    def __init__(self, input_size: int, hidden_size: int, nonlinearity: Literal["tanh", "relu"] = "tanh", *,
                 bias: bool = True) -> None:
        if nonlinearity not in NONLINEARITIES:
            raise ValueError(f"RNNCell: unknown nonlinearity {nonlinearity!r}; use one of {NONLINEARITIES}")
        super().__init__(input_size, hidden_size, bias)
        self.nonlinearity = nonlinearity

    def forward(self, x: Tensor, state: Tensor | None = None) -> Tensor:
        self._check(x, state)
        h = self._zeros(x) if state is None else state
        return rnn_cell(x, h, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh, self.nonlinearity)

    def extra_repr(self) -> str:
        return super().extra_repr() + ("" if self.nonlinearity == "tanh" else ", nonlinearity='relu'")


class LSTMCell(_CellBase):
    """LSTM cell (with the forget gate), gate rows i, f, g, o; see the module docstring.

    Args:
        input_size: features C of x.
        hidden_size: features H of h and c.
        bias: keep ``bias_ih`` and ``bias_hh``.

    Shapes: x (B, C), state (h, c) each (B, H) or None (zeros) -> (h', c') each (B, H).
    """

    num_gates = 4

    def forward(self, x: Tensor, state: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, Tensor]:
        if state is not None and (not isinstance(state, tuple | list) or len(state) != 2):
            raise ValueError("LSTMCell expects state = (h, c), a pair of (B, hidden_size) tensors, or None")
        self._check(x, None if state is None else state[0])
        if state is None:
            state = (self._zeros(x), self._zeros(x))
        else:
            self._check(x, state[1])
        return lstm_cell(x, (state[0], state[1]), self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)


class GRUCell(_CellBase):
    """GRU cell, gate rows r, z, n; see the module docstring.

    Args:
        input_size: features C of x.
        hidden_size: features H of h.
        bias: keep ``bias_ih`` and ``bias_hh``.
        reset_after: True (default, torch's ``nn.GRUCell``): the reset gate multiplies
            ``W_hn h + b_hn``; False: Cho et al.'s original, it multiplies h before ``W_hn``.

    Shapes: x (B, C), state h (B, H) or None (zeros) -> h' (B, H).
    """

    num_gates = 3

    def __init__(self, input_size: int, hidden_size: int, *, bias: bool = True, reset_after: bool = True) -> None:
        super().__init__(input_size, hidden_size, bias)
        self.reset_after = reset_after

    def forward(self, x: Tensor, state: Tensor | None = None) -> Tensor:
        self._check(x, state)
        h = self._zeros(x) if state is None else state
        return gru_cell(x, h, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh, self.reset_after)

    def extra_repr(self) -> str:
        return super().extra_repr() + ("" if self.reset_after else ", reset_after=False")
