"""Recurrent language models: next-character and next-word prediction with an RNN, LSTM or GRU.

A language model factorises the probability of a token sequence left to right and learns each
factor with a recurrent network read over the prefix::

    p(x_1..x_T) = prod_t p(x_{t+1} | x_1..x_t)
    e_t    = dropout(E[x_t])                               # (B, T, embed_dim)
    h_t    = RNN(e_1..e_t)                                  # (B, T, hidden_dim), stacked layers
    logits = W dropout(h_t) + b                             # (B, T, V): scores of x_{t+1}

Training minimises the mean cross-entropy of the next token (``archlab.tasks.sequence``); the
perplexity is ``exp`` of that mean (per token), and bits per character are ``loss / ln 2``.

Generation (:meth:`RNNLanguageModel.generate`) reads the prompt once, then feeds back one sampled
token at a time, carrying the recurrent state (the prefix is never re-run)::

    p = softmax(logits / temperature) restricted to the top_k scores;  x_{t+1} ~ p

Papers:
    T. Mikolov, M. Karafiat, L. Burget, J. Cernocky, S. Khudanpur, "Recurrent neural network
    based language model", Interspeech 2010.
    https://www.isca-archive.org/interspeech_2010/mikolov10_interspeech.html
    A. Graves, "Generating Sequences With Recurrent Neural Networks", 2013.
    https://arxiv.org/abs/1308.0850 (character-level LSTM generation)
    W. Zaremba, I. Sutskever, O. Vinyals, "Recurrent Neural Network Regularization", 2014.
    https://arxiv.org/abs/1409.2329 (dropout on the non-recurrent connections; uniform init)
    O. Press, L. Wolf, "Using the Output Embedding to Improve Language Models", EACL 2017;
    H. Inan, K. Khosravi, R. Socher, ICLR 2017 (weight tying: W = E).
    https://arxiv.org/abs/1608.05859

Registered variants: ``char_rnn`` (Elman RNN), ``char_lstm`` and ``char_gru`` (2 layers of 512,
Karpathy's char-rnn sizes), ``word_lstm`` (2 layers of 256, tied embeddings, Zaremba's "small"
shape with dropout).

Deviations from the paper:
    - Mikolov et al. used an Elman RNN with a sigmoid hidden layer and a (class-factorised)
      softmax; here the cell is any of rnn (tanh) / lstm / gru and the softmax is full.
    - Dropout (``dropout``) on the embeddings, between stacked layers and before the output layer
      follows Zaremba et al. 2014; it is 0 by default except in ``word_lstm``.
    - ``tie_weights`` shares the embedding and output matrices (Press & Wolf; Inan et al.); it
      needs ``embed_dim == hidden_dim`` (no projection layer is added).
    - ``temperature=0`` in :meth:`generate` means greedy decoding (argmax), a convenience.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import nn

from archlab.models.rnn.layers import make_rnn
from archlab.registry import register_model

__all__ = ["RNNLanguageModel", "RNNLanguageModelConfig", "check_sampling", "sample_logits"]


@dataclass
class RNNLanguageModelConfig:
    """Options of :class:`RNNLanguageModel`.

    Attributes:
        vocab_size: number of token ids (filled from the dataset's vocab).
        pad_id: the padding id (filled from the dataset; unused by the network itself).
        max_len: the dataset's context length T; used for ``example_input`` only.
        embed_dim: embedding width.
        hidden_dim: hidden units per layer.
        num_layers: stacked recurrent layers.
        cell: ``rnn`` (Elman, tanh), ``lstm`` or ``gru``.
        dropout: on the embeddings, between layers and before the output layer (Zaremba et al.).
        tie_weights: share the embedding and output weights (needs ``embed_dim == hidden_dim``).
        impl: ``fast`` (torch's fused kernels) or ``cells`` (the gate-by-gate cells).
    """

    vocab_size: int = 256
    pad_id: int = 0
    max_len: int = 64
    embed_dim: int = 128
    hidden_dim: int = 512
    num_layers: int = 2
    cell: Literal["rnn", "lstm", "gru"] = "lstm"
    dropout: float = 0.0
    tie_weights: bool = False
    impl: Literal["fast", "cells"] = "fast"

    TINY: ClassVar[dict[str, Any]] = {"vocab_size": 30, "embed_dim": 8, "hidden_dim": 8, "max_len": 10}

    def __post_init__(self) -> None:
        if self.vocab_size < 2:
            raise ValueError(f"vocab_size must be >= 2, got {self.vocab_size}")
        if min(self.embed_dim, self.hidden_dim, self.num_layers, self.max_len) < 1:
            raise ValueError("embed_dim, hidden_dim, num_layers and max_len must be >= 1")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.tie_weights and self.embed_dim != self.hidden_dim:
            raise ValueError(f"tie_weights needs embed_dim == hidden_dim, got {self.embed_dim} and "
                             f"{self.hidden_dim}; set model.embed_dim={self.hidden_dim} or model.tie_weights=false")


def check_sampling(temperature: float, top_k: int | None) -> None:
    """Raise a ValueError that says what is allowed for a bad ``temperature`` or ``top_k``."""
    if isinstance(temperature, bool) or not isinstance(temperature, numbers.Real) or not temperature >= 0 \
            or not math.isfinite(temperature):
        raise ValueError(f"temperature must be a number >= 0 (0 = greedy), got {temperature!r}")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, numbers.Integral) or top_k < 1):
        raise ValueError(f"top_k must be a positive number of tokens (or None for all), got {top_k!r}")


def sample_logits(
    logits: torch.Tensor,
    temperature: float = 1.0,
    top_k: int | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """One token per row from next-token scores ``logits`` (B, V): returns ids (B, 1).

    ``temperature`` divides the scores (lower = more conservative; 0 = argmax); ``top_k`` keeps
    only the k highest scores before sampling. ``generator`` makes the draw reproducible.
    """
    check_sampling(temperature, top_k)
    logits = logits.float()
    if temperature == 0:
        return logits.argmax(dim=-1, keepdim=True)  # (B, 1)
    logits = logits / temperature
    if top_k is not None and top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]  # (B, 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = logits.softmax(dim=-1)  # (B, V)
    device = generator.device if generator is not None else probs.device
    return torch.multinomial(probs.to(device), 1, generator=generator).to(probs.device)  # (B, 1)


class RNNLanguageModel(nn.Module):
    """Embedding -> stacked RNN/LSTM/GRU -> dropout -> Linear to the vocabulary.

    Args:
        vocab_size: number of token ids.
        embed_dim, hidden_dim, num_layers, cell, dropout, tie_weights, impl: as in
            :class:`RNNLanguageModelConfig`.
        max_len: the context length of ``example_input``.

    Shapes:
        x: (B, T) long token ids. Returns logits (B, T, V); with ``return_state=True`` also the
        recurrent state after the last step (h_n (L, B, H); LSTM: (h_n, c_n)), which the next
        call takes as ``state`` to continue the sequence (truncated BPTT, generation).
    """

    task = "language_model"

    def __init__(
        self,
        vocab_size: int,
        *,
        embed_dim: int = 128,
        hidden_dim: int = 512,
        num_layers: int = 2,
        cell: str = "lstm",
        dropout: float = 0.0,
        tie_weights: bool = False,
        impl: str = "fast",
        max_len: int = 64,
    ) -> None:
        super().__init__()
        if tie_weights and embed_dim != hidden_dim:
            raise ValueError(f"tie_weights needs embed_dim == hidden_dim, got {embed_dim} and {hidden_dim}")
        self.vocab_size, self.max_len = vocab_size, max_len
        self.embedding = nn.Embedding(vocab_size, embed_dim)
        self.rnn = make_rnn(cell, embed_dim, hidden_dim, num_layers=num_layers, dropout=dropout, impl=impl)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_dim, vocab_size)
        # Zaremba et al. / torch's word_language_model example: U(-0.1, 0.1) in and out, zero bias.
        nn.init.uniform_(self.embedding.weight, -0.1, 0.1)
        nn.init.zeros_(self.head.bias)
        if tie_weights:
            self.head.weight = self.embedding.weight
        else:
            nn.init.uniform_(self.head.weight, -0.1, 0.1)

    def forward(
        self, x: torch.Tensor, state: Any = None, return_state: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, Any]:
        if x.dim() != 2 or x.is_floating_point():
            raise ValueError(f"{type(self).__name__} expects token ids (B, T) of an integer type, got "
                             f"{x.dtype} {tuple(x.shape)}")
        emb = self.dropout(self.embedding(x))  # (B, T, E)
        out, state = self.rnn(emb, state)  # (B, T, H)
        logits = self.head(self.dropout(out))  # (B, T, V)
        return (logits, state) if return_state else logits

    @torch.no_grad()
    def generate(
        self,
        ids: torch.Tensor,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        generator: torch.Generator | None = None,
        stream: Callable[[Any], None] | None = None,
    ) -> torch.Tensor:
        """Continue the prompts ``ids`` (B, T0) by ``max_new_tokens`` sampled tokens.

        The prompt is read once; each new token is fed back with the carried state. Dropout is
        off while generating (the model's mode is restored afterwards).

        Args:
            ids: prompt token ids (B, T0), T0 >= 1 (a 1-D prompt is taken as one row).
            max_new_tokens: how many tokens to add (>= 0).
            temperature: divides the logits; 0 = greedy.
            top_k: sample among the k most likely tokens only (None = all).
            generator: a ``torch.Generator`` for reproducible samples.
            stream: called with each new token as soon as it is drawn (printing as it comes): its
                id as an int for one prompt, the (B,) ids for several.

        Returns:
            (B, T0 + max_new_tokens) ids: the prompt followed by the new tokens.
        """
        if ids.dim() == 1:
            ids = ids[None]
        if ids.dim() != 2 or ids.shape[1] == 0:
            raise ValueError(f"generate needs a prompt of at least one token, shape (B, T0); got {tuple(ids.shape)}")
        if max_new_tokens < 0:
            raise ValueError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
        check_sampling(temperature, top_k)
        was_training = self.training
        self.eval()
        try:
            logits, state = self(ids, return_state=True)  # (B, T0, V)
            out = [ids]
            for i in range(max_new_tokens):
                nxt = sample_logits(logits[:, -1], temperature, top_k, generator)  # (B, 1)
                out.append(nxt)
                if stream is not None:
                    stream(int(nxt[0, 0]) if len(nxt) == 1 else nxt[:, 0])
                if i + 1 < max_new_tokens:
                    logits, state = self(nxt, state, return_state=True)  # (B, 1, V)
        finally:
            self.train(was_training)
        return torch.cat(out, dim=1)

    @torch.no_grad()
    def perplexity(self, x: torch.Tensor, y: torch.Tensor, ignore_index: int = -100) -> float:
        """``exp`` of the mean next-token cross-entropy of targets ``y`` (B, T) given inputs ``x`` (B, T)."""
        logits = self(x)  # (B, T, V)
        loss = F.cross_entropy(logits.flatten(0, 1).float(), y.flatten(), ignore_index=ignore_index)
        return math.exp(loss.item())

    def example_input(self, batch_size: int = 1, seed: int = 0) -> torch.Tensor:
        """Random token ids (B, max_len)."""
        g = torch.Generator().manual_seed(seed)
        x = torch.randint(0, self.vocab_size, (batch_size, self.max_len), generator=g)
        return x.to(self.embedding.weight.device)


# ----------------------------------------------------------------------------------------------
# registered variants


def _build(cfg: RNNLanguageModelConfig) -> RNNLanguageModel:
    return RNNLanguageModel(cfg.vocab_size, embed_dim=cfg.embed_dim, hidden_dim=cfg.hidden_dim,
                            num_layers=cfg.num_layers, cell=cfg.cell, dropout=cfg.dropout,
                            tie_weights=cfg.tie_weights, impl=cfg.impl, max_len=cfg.max_len)


@register_model("char_rnn", family="rnn", config=RNNLanguageModelConfig, cell="rnn")
def char_rnn(cfg: RNNLanguageModelConfig) -> RNNLanguageModel:
    """Character-level Elman RNN language model (Mikolov et al. 2010, on characters)."""
    return _build(cfg)


@register_model("char_lstm", family="rnn", config=RNNLanguageModelConfig, cell="lstm")
def char_lstm(cfg: RNNLanguageModelConfig) -> RNNLanguageModel:
    """Character-level 2-layer LSTM language model (Graves 2013; Karpathy's char-rnn)."""
    return _build(cfg)


@register_model("char_gru", family="rnn", config=RNNLanguageModelConfig, cell="gru")
def char_gru(cfg: RNNLanguageModelConfig) -> RNNLanguageModel:
    """Character-level 2-layer GRU language model."""
    return _build(cfg)


@register_model("word_lstm", family="rnn", config=RNNLanguageModelConfig, cell="lstm", vocab_size=10000,
                embed_dim=256, hidden_dim=256, tie_weights=True, dropout=0.3)
def word_lstm(cfg: RNNLanguageModelConfig) -> RNNLanguageModel:
    """Word-level 2-layer LSTM language model with tied embeddings (Zaremba et al. 2014; Press & Wolf 2017)."""
    return _build(cfg)
