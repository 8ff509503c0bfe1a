"""Recurrent networks (family ``rnn``): gate-by-gate cells (:mod:`.cells`), stacked and
bidirectional layers with a fast and a teaching implementation (:mod:`.layers`); the registered
models live in this package's other modules."""

from archlab.models.rnn.cells import GRUCell, LSTMCell, RNNCell
from archlab.models.rnn.layers import GRU, LSTM, RNN, detach_state, last_layer_state, make_rnn

__all__ = ["RNNCell", "LSTMCell", "GRUCell", "RNN", "LSTM", "GRU", "make_rnn", "detach_state", "last_layer_state"]
