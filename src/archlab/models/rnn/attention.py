"""Attention for recurrent encoder-decoders: Bahdanau's additive score and Luong's dot, general, concat.

A decoder state (the *query*) looks at the encoder outputs (the *memory*, one vector per source
position), scores every position, turns the scores into weights with a softmax over the real
(non-padded) positions, and reads the weighted average of the memory (the *context*)::

    e_j   = score(q, h_j)                               j = 1..S
    a_j   = exp(e_j) / sum_{k: mask_k} exp(e_k)         0 where mask_j is False (padding)
    c     = sum_j a_j h_j

Bahdanau (additive)
    D. Bahdanau, K. Cho, Y. Bengio, "Neural Machine Translation by Jointly Learning to Align and
    Translate", ICLR 2015. https://arxiv.org/abs/1409.0473 , Eq. (6) and Appendix A.1.2::

        e_ij = v_a^T tanh(W_a s_{i-1} + U_a h_j)

    ``U_a h_j`` does not depend on the decoder step, so it is computed once per source sentence
    (:meth:`AdditiveAttention.precompute`) and reused at every step, as the paper notes.

Luong (multiplicative and concat)
    M.-T. Luong, H. Pham, C. D. Manning, "Effective Approaches to Attention-based Neural Machine
    Translation", EMNLP 2015. https://arxiv.org/abs/1508.04025 , Section 3.1, Eq. (8)::

        dot      score(h_t, h_s) = h_t^T h_s
        general  score(h_t, h_s) = h_t^T W_a h_s
        concat   score(h_t, h_s) = v_a^T tanh(W_a [h_t; h_s])

    ``concat`` is the additive score again (``W_a [h_t; h_s] = W_1 h_t + W_2 h_s``); it is
    implemented by :class:`AdditiveAttention`. Luong's decoder scores with the *current* state
    h_t, Bahdanau's with the previous one s_{i-1}; that choice lives in the decoder
    (:mod:`archlab.models.rnn.seq2seq`), not here.

Every module here takes ``query`` (B, Dq) for one decoder step or (B, T, Dq) for T steps at once,
``memory`` (B, S, Dm) and ``mask`` (B, S) (True = a real source token) and returns
``(context (B, [T,] Dm), weights (B, [T,] S))``; the weights sum to 1 over the real positions
and are exactly 0 on padding.

Deviations from the paper:
    - ``dot`` needs the query and memory sizes equal. With a bidirectional encoder (memory 2H,
      decoder H) :class:`DotAttention` is given ``memory_dim != query_dim`` and then first maps
      the memory with a learned linear layer (``proj_memory``, off when the sizes agree, as in
      the paper's unidirectional setting).
    - Luong's ``location`` score (``a_t = softmax(W_a h_t)``, no source content) and local
      attention (a window around a predicted position p_t) are not implemented.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

__all__ = [
    "AdditiveAttention",
    "AttentionKind",
    "DotAttention",
    "GeneralAttention",
    "make_attention",
    "masked_softmax",
]

AttentionKind = Literal["bahdanau", "dot", "general", "concat"]


def masked_softmax(scores: Tensor, mask: Tensor | None, dim: int = -1) -> Tensor:
    """Softmax of ``scores`` over ``dim`` in which positions with ``mask == False`` get weight 0.

    Masked scores are set to the dtype's most negative finite value (not -inf), so a row with no
    real position gives zeros instead of NaN; the result is multiplied by the mask afterwards so
    that masked positions are exactly 0 whatever the other scores are.

    Args:
        scores: (..., S).
        mask: broadcastable to ``scores``, True = keep; None = no masking.
        dim: the dimension to normalise over.
    """
    if mask is None:
        return scores.softmax(dim=dim)
    scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    return scores.softmax(dim=dim) * mask


def _as_steps(query: Tensor) -> tuple[Tensor, bool]:
    """(B, T, Dq) from a query of one step (B, Dq) or T steps; and whether it was one step."""
    if query.dim() == 2:
        return query.unsqueeze(1), True  # (B, 1, Dq)
    if query.dim() == 3:
        return query, False
    raise ValueError(f"attention expects a query (B, D) or (B, T, D), got shape {tuple(query.shape)}")


def _read(weights: Tensor, memory: Tensor, single: bool) -> tuple[Tensor, Tensor]:
    context = torch.bmm(weights, memory)  # (B, T, S) @ (B, S, Dm) -> (B, T, Dm)
    if single:
        return context.squeeze(1), weights.squeeze(1)  # (B, Dm), (B, S)
    return context, weights


def _mask3(mask: Tensor | None) -> Tensor | None:
    return None if mask is None else mask[:, None, :]  # (B, 1, S): the same for every query step


class AdditiveAttention(nn.Module):
    """Additive (Bahdanau; Luong's ``concat``) attention: ``e_j = v^T tanh(W q + U h_j)``.

    Args:
        query_dim: size Dq of the decoder state.
        memory_dim: size Dm of an encoder output.
        attn_dim: size of the hidden layer of the score (n' in Bahdanau et al.).
        bias: a bias in ``W`` (``U`` has none: one bias is enough inside the tanh).

    Shapes:
        query (B, Dq) or (B, T, Dq); memory (B, S, Dm); mask (B, S) bool.
        Returns context (B, [T,] Dm) and weights (B, [T,] S).
    """

    def __init__(self, query_dim: int, memory_dim: int, attn_dim: int, *, bias: bool = True) -> None:
        super().__init__()
        self.query_proj = nn.Linear(query_dim, attn_dim, bias=bias)  # W_a
        self.memory_proj = nn.Linear(memory_dim, attn_dim, bias=False)  # U_a
        self.v = nn.Linear(attn_dim, 1, bias=False)  # v_a

    def precompute(self, memory: Tensor) -> Tensor:
        """``U_a h_j`` for every source position: (B, S, A). Pass it as ``keys`` at each step."""
        return self.memory_proj(memory)

    def forward(
        self, query: Tensor, memory: Tensor, mask: Tensor | None = None, *, keys: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        q, single = _as_steps(query)  # (B, T, Dq)
        keys = self.precompute(memory) if keys is None else keys  # (B, S, A)
        hidden = torch.tanh(self.query_proj(q)[:, :, None, :] + keys[:, None, :, :])  # (B, T, S, A)
        scores = self.v(hidden).squeeze(-1)  # (B, T, S)
        weights = masked_softmax(scores, _mask3(mask))
        return _read(weights, memory, single)


class DotAttention(nn.Module):
    """Luong's ``dot`` score: ``e_j = q^T h_j`` (optionally scaled by 1/sqrt(D)).

    Args:
        query_dim: size Dq of the decoder state.
        memory_dim: size Dm of an encoder output; when it differs from ``query_dim`` the memory is
            first mapped to ``query_dim`` by a linear layer (see the module's deviations).
        scale: divide the scores by sqrt(Dq) (the Transformer's scaled dot product; off in Luong).

    Shapes: as :class:`AdditiveAttention`.
    """

    def __init__(self, query_dim: int, memory_dim: int, *, scale: bool = False) -> None:
        super().__init__()
        self.proj_memory = nn.Linear(memory_dim, query_dim, bias=False) if memory_dim != query_dim else None
        self.scale = query_dim**-0.5 if scale else 1.0

    def precompute(self, memory: Tensor) -> Tensor:
        """The memory as the query sees it: (B, S, Dq)."""
        return memory if self.proj_memory is None else self.proj_memory(memory)

    def forward(
        self, query: Tensor, memory: Tensor, mask: Tensor | None = None, *, keys: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        q, single = _as_steps(query)  # (B, T, Dq)
        keys = self.precompute(memory) if keys is None else keys  # (B, S, Dq)
        scores = torch.bmm(q, keys.transpose(1, 2)) * self.scale  # (B, T, S)
        weights = masked_softmax(scores, _mask3(mask))
        return _read(weights, memory, single)


class GeneralAttention(nn.Module):
    """Luong's ``general`` score: ``e_j = q^T W_a h_j`` (W_a: Dq x Dm, no bias).

    ``W_a h_j`` is computed once per sentence (:meth:`precompute`), so each step costs one
    batched dot product, as ``dot`` does.

    Args:
        query_dim: size Dq of the decoder state.
        memory_dim: size Dm of an encoder output.
        scale: divide the scores by sqrt(Dq) (off in Luong; see :class:`DotAttention`).

    Shapes: as :class:`AdditiveAttention`.
    """

    def __init__(self, query_dim: int, memory_dim: int, *, scale: bool = False) -> None:
        super().__init__()
        self.W = nn.Linear(memory_dim, query_dim, bias=False)  # W_a
        self.scale = query_dim**-0.5 if scale else 1.0

    def precompute(self, memory: Tensor) -> Tensor:
        """``W_a h_j``: (B, S, Dq)."""
        return self.W(memory)

    def forward(
        self, query: Tensor, memory: Tensor, mask: Tensor | None = None, *, keys: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        q, single = _as_steps(query)  # (B, T, Dq)
        keys = self.precompute(memory) if keys is None else keys  # (B, S, Dq)
        scores = torch.bmm(q, keys.transpose(1, 2)) * self.scale  # (B, T, S)
        weights = masked_softmax(scores, _mask3(mask))
        return _read(weights, memory, single)


def make_attention(
    kind: str, query_dim: int, memory_dim: int, attn_dim: int | None = None, *, scale: bool = False
) -> nn.Module:
    """The attention module called ``kind``: ``bahdanau``/``concat`` (additive), ``dot``, ``general``.

    Args:
        kind: the score function.
        query_dim: decoder state size.
        memory_dim: encoder output size.
        attn_dim: hidden size of the additive score (default ``query_dim``).
        scale: scale the ``dot`` and ``general`` scores by 1/sqrt(query_dim).
    """
    if kind in ("bahdanau", "concat"):
        return AdditiveAttention(query_dim, memory_dim, attn_dim or query_dim)
    if kind == "dot":
        return DotAttention(query_dim, memory_dim, scale=scale)
    if kind == "general":
        return GeneralAttention(query_dim, memory_dim, scale=scale)
    raise ValueError(f"unknown attention {kind!r}: use 'bahdanau', 'dot', 'general' or 'concat'")
