"""Recurrent text classifiers: Embedding -> (stacked, bidirectional) RNN/LSTM/GRU -> pooling -> Linear.

A sentence of token ids x_1..x_n (right-padded with ``pad_id`` to a batch length T) is embedded,
read by a recurrent layer (:func:`archlab.models.rnn.layers.make_rnn`) as a *packed* sequence of
its real length n, so padding never enters the recurrence, and the states are pooled into one
vector that a linear layer maps to the class logits::

    e_t = dropout(E[x_t])                                   # (B, T, embed_dim)
    h_t = RNN(e_1..e_n)_t                                   # (B, T, D*H), D = 2 if bidirectional
    s   = pool(h_1..h_n)                                    # (B, D*H)
    logits = W dropout(s) + b                               # (B, K)

Poolings (``pooling``):

    last       [h->_n ; h<-_1]: the forward direction's state after the last real token and the
               backward direction's state after reading back to the first token (h_n of the
               top layer, both directions), the classic sentence encoding.
    mean       (1/n) sum_{t<=n} h_t
    max        max_{t<=n} h_t (elementwise; Collobert et al. 2011, InferSent's max pooling)
    attention  additive self-attentive pooling over time (Yang et al. 2016; Lin et al. 2017 with
               one hop):
                   u_t = tanh(W_a h_t + b_a)                        # (B, T, A)
                   a   = softmax_t(v^T u_t)  over t <= n (masked)   # (B, T)
                   s   = sum_t a_t h_t
               ``forward(x, return_attention=True)`` also returns a (B, T) for plots.

Papers:
    J. L. Elman, "Finding Structure in Time", Cognitive Science 14(2), 1990.
    S. Hochreiter, J. Schmidhuber, "Long Short-Term Memory", Neural Computation 9(8), 1997.
    K. Cho et al., "Learning Phrase Representations using RNN Encoder-Decoder for Statistical
    Machine Translation", EMNLP 2014. https://arxiv.org/abs/1406.1078
    M. Schuster, K. K. Paliwal, "Bidirectional Recurrent Neural Networks", IEEE Trans. Signal
    Processing 45(11), 1997. https://doi.org/10.1109/78.650093
    Z. Yang et al., "Hierarchical Attention Networks for Document Classification", NAACL 2016.
    https://aclanthology.org/N16-1174 ; Z. Lin et al., "A Structured Self-attentive Sentence
    Embedding", ICLR 2017. https://arxiv.org/abs/1703.03130

Registered variants: ``rnn_classifier`` (Elman RNN), ``lstm_classifier``, ``gru_classifier``,
``bilstm`` (2-layer bidirectional LSTM, max pooling: the SST-2 recipe's model). Every option can
be overridden (``model.cell=gru model.pooling=attention``).

Deviations from the paper:
    - Embedding dropout and dropout before the head (``dropout``), and dropout between stacked
      layers (``rnn_dropout``), are regularisers from later practice (Zaremba et al. 2014), not
      from the cell papers; both default to 0 in the config (the recipes turn them on).
    - Attention pooling is one hop of Lin et al.'s self-attention (their r = 1, no penalty term),
      which is Yang et al.'s word-level attention without the context-vector notation.
    - A row that is all padding (an empty sentence) is read as one step of the padding token
      (whose embedding is 0) instead of failing: its logits come from the biases alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
from torch import nn

from archlab.models.rnn.layers import last_layer_state, make_rnn
from archlab.registry import register_model

__all__ = ["RNNClassifier", "RNNClassifierConfig", "AttentionPooling", "pool_states"]

Cell = Literal["rnn", "lstm", "gru"]
Pooling = Literal["last", "mean", "max", "attention"]
POOLINGS = ("last", "mean", "max", "attention")


@dataclass
class RNNClassifierConfig:
    """Options of :class:`RNNClassifier`.

    Attributes:
        vocab_size: number of token ids (filled from the dataset's vocab).
        pad_id: the padding id (filled from the dataset; padding is on the right).
        num_classes: number of classes (filled from the dataset).
        max_len: the dataset's padded length; used for ``example_input`` only (any length runs).
        embed_dim: embedding width.
        hidden_dim: hidden units per direction.
        num_layers: stacked recurrent layers.
        bidirectional: read the sentence in both directions (outputs concatenated).
        cell: ``rnn`` (Elman, tanh), ``lstm`` or ``gru``.
        pooling: ``last``, ``mean``, ``max`` or ``attention`` (see the module docstring).
        attention_dim: width A of the attention pooling's hidden layer.
        dropout: on the embeddings and on the pooled vector before the head.
        rnn_dropout: between stacked recurrent layers.
        impl: ``fast`` (torch's fused kernels) or ``cells`` (the gate-by-gate cells); same weights.
    """

    vocab_size: int = 1000
    pad_id: int = 0
    num_classes: int = 2
    max_len: int = 64
    embed_dim: int = 128
    hidden_dim: int = 128
    num_layers: int = 1
    bidirectional: bool = False
    cell: Cell = "lstm"
    pooling: Pooling = "last"
    attention_dim: int = 64
    dropout: float = 0.0
    rnn_dropout: float = 0.0
    impl: Literal["fast", "cells"] = "fast"

    TINY: ClassVar[dict[str, Any]] = {"vocab_size": 40, "embed_dim": 16, "hidden_dim": 16, "max_len": 12,
                                      "attention_dim": 8}

    def __post_init__(self) -> None:
        if self.vocab_size < 2 or not 0 <= self.pad_id < self.vocab_size:
            raise ValueError(f"vocab_size must be >= 2 and pad_id in [0, vocab_size), got {self.vocab_size}, "
                             f"{self.pad_id}")
        if self.num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {self.num_classes}")
        if min(self.embed_dim, self.hidden_dim, self.num_layers, self.attention_dim, self.max_len) < 1:
            raise ValueError("embed_dim, hidden_dim, num_layers, attention_dim and max_len must be >= 1")
        for name in ("dropout", "rnn_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)}")


class AttentionPooling(nn.Module):
    """Additive self-attentive pooling: ``a = softmax_t(v^T tanh(W h_t + b))`` over the real steps.

    Args:
        dim: width of the states h_t.
        attention_dim: width A of the hidden layer.

    Shapes:
        h: (B, T, dim); mask: (B, T) bool, True at real tokens. Returns (pooled (B, dim), a (B, T)).
    """

    def __init__(self, dim: int, attention_dim: int) -> None:
        super().__init__()
        self.proj = nn.Linear(dim, attention_dim)
        self.score = nn.Linear(attention_dim, 1, bias=False)  # v

    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        scores = self.score(torch.tanh(self.proj(h))).squeeze(-1)  # (B, T)
        scores = scores.masked_fill(~mask, float("-inf"))
        weights = scores.softmax(dim=1)  # (B, T); 0 at padding
        return torch.einsum("bt,btc->bc", weights, h), weights  # (B, C), (B, T)


def pool_states(outputs: torch.Tensor, mask: torch.Tensor, how: str) -> torch.Tensor:
    """Masked ``mean`` or ``max`` of ``outputs`` (B, T, C) over the steps where ``mask`` (B, T) is True."""
    m = mask.unsqueeze(-1)  # (B, T, 1)
    if how == "mean":
        return (outputs * m).sum(1) / m.sum(1).clamp_min(1)  # (B, C)
    if how == "max":
        return outputs.masked_fill(~m, float("-inf")).max(dim=1).values  # (B, C)
    raise ValueError(f"pool_states does 'mean' or 'max', got {how!r}")


class RNNClassifier(nn.Module):
    """Embedding -> RNN/LSTM/GRU (packed) -> pooling -> dropout -> Linear. See the module docstring.

    Args:
        vocab_size: number of token ids.
        num_classes: number of classes.
        embed_dim, hidden_dim, num_layers, bidirectional, cell, pooling, attention_dim, dropout,
            rnn_dropout, impl: as in :class:`RNNClassifierConfig`.
        pad_id: the padding id (right padding).
        max_len: the padded length of ``example_input``.

    Shapes:
        x: (B, T) long token ids, right-padded with ``pad_id``. Returns logits (B, num_classes);
        with ``return_attention=True`` (attention pooling only) also the weights (B, T).
    """

    task = "text_classification"

    def __init__(
        self,
        vocab_size: int,
        num_classes: int,
        *,
        embed_dim: int = 128,
        hidden_dim: int = 128,
        num_layers: int = 1,
        bidirectional: bool = False,
        cell: str = "lstm",
        pooling: str = "last",
        attention_dim: int = 64,
        dropout: float = 0.0,
        rnn_dropout: float = 0.0,
        impl: str = "fast",
        pad_id: int = 0,
        max_len: int = 64,
    ) -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        self.vocab_size, self.pad_id, self.max_len, self.pooling = vocab_size, pad_id, max_len, pooling
        self.num_directions = 2 if bidirectional else 1
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=pad_id)
        self.rnn = make_rnn(cell, embed_dim, hidden_dim, num_layers=num_layers, bidirectional=bidirectional,
                            dropout=rnn_dropout, impl=impl)
        out_dim = self.num_directions * hidden_dim
        self.attention = AttentionPooling(out_dim, attention_dim) if pooling == "attention" else None
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(out_dim, num_classes)

    def lengths(self, x: torch.Tensor) -> torch.Tensor:
        """(B,) number of real (non-padding) tokens per row, at least 1 (an empty row reads one pad)."""
        return (x != self.pad_id).sum(dim=1).clamp_min(1)

    def forward(
        self, x: torch.Tensor, *, return_attention: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        if x.dim() != 2 or x.is_floating_point():
            raise ValueError(f"{type(self).__name__} expects token ids (B, T) of an integer type, got "
                             f"{x.dtype} {tuple(x.shape)}; encode text with the dataset's vocab first")
        if return_attention and self.attention is None:
            raise ValueError(f"return_attention needs pooling='attention' (this model pools with {self.pooling!r})")
        lengths = self.lengths(x)  # (B,)
        emb = self.dropout(self.embedding(x))  # (B, T, E)
        out, state = self.rnn(emb, lengths=lengths)  # (B, T, D*H)
        mask = torch.arange(x.shape[1], device=x.device)[None, :] < lengths[:, None]  # (B, T)
        weights = None
        if self.pooling == "last":
            pooled = last_layer_state(state, self.num_directions == 2)  # (B, D*H): [forward ; backward]
        elif self.pooling == "attention":
            pooled, weights = self.attention(out, mask)  # (B, D*H), (B, T)
        else:
            pooled = pool_states(out, mask, self.pooling)  # (B, D*H)
        logits = self.head(self.dropout(pooled))  # (B, K)
        return (logits, weights) if return_attention else logits

    def example_input(self, batch_size: int = 1, seed: int = 0) -> torch.Tensor:
        """Random token ids (B, max_len), right-padded to varied lengths (row 0 full length)."""
        g = torch.Generator().manual_seed(seed)
        t = self.max_len
        low = 4 if self.vocab_size > 5 else 0  # skip the special tokens when there is room
        ids = torch.randint(low, self.vocab_size, (batch_size, t), generator=g)
        ids[ids == self.pad_id] = (self.pad_id + 1) % self.vocab_size
        lengths = torch.randint(1, t + 1, (batch_size,), generator=g)
        lengths[0] = t
        ids[torch.arange(t)[None, :] >= lengths[:, None]] = self.pad_id
        return ids.to(self.embedding.weight.device)


# ----------------------------------------------------------------------------------------------
# registered variants


def _build(cfg: RNNClassifierConfig) -> RNNClassifier:
    return RNNClassifier(
        cfg.vocab_size, cfg.num_classes, embed_dim=cfg.embed_dim, hidden_dim=cfg.hidden_dim,
        num_layers=cfg.num_layers, bidirectional=cfg.bidirectional, cell=cfg.cell, pooling=cfg.pooling,
        attention_dim=cfg.attention_dim, dropout=cfg.dropout, rnn_dropout=cfg.rnn_dropout, impl=cfg.impl,
        pad_id=cfg.pad_id, max_len=cfg.max_len,
    )


@register_model("rnn_classifier", family="rnn", config=RNNClassifierConfig, cell="rnn")
def rnn_classifier(cfg: RNNClassifierConfig) -> RNNClassifier:
    """Embedding + Elman RNN (tanh) text classifier; any cell and pooling via the options."""
    return _build(cfg)


@register_model("lstm_classifier", family="rnn", config=RNNClassifierConfig, cell="lstm")
def lstm_classifier(cfg: RNNClassifierConfig) -> RNNClassifier:
    """Embedding + LSTM text classifier (Hochreiter & Schmidhuber 1997), last-state pooling."""
    return _build(cfg)


@register_model("gru_classifier", family="rnn", config=RNNClassifierConfig, cell="gru")
def gru_classifier(cfg: RNNClassifierConfig) -> RNNClassifier:
    """Embedding + GRU text classifier (Cho et al. 2014), last-state pooling."""
    return _build(cfg)


@register_model("bilstm", family="rnn", config=RNNClassifierConfig, cell="lstm", num_layers=2,
                bidirectional=True, pooling="max")
def bilstm(cfg: RNNClassifierConfig) -> RNNClassifier:
    """2-layer bidirectional LSTM text classifier (Schuster & Paliwal 1997) with max pooling over time."""
    return _build(cfg)
