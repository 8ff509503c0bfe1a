"""The encoder-decoder Transformer for translation: attention only, no recurrence.

    A. Vaswani, N. Shazeer, N. Parmar, J. Uszkoreit, L. Jones, A. N. Gomez, L. Kaiser,
    I. Polosukhin, "Attention is all you need", NeurIPS 2017. https://arxiv.org/abs/1706.03762

An encoder of N blocks reads the whole source at once; a decoder of N blocks writes the target
left to right, each block attending to the target prefix (masked self-attention) and to the
encoder's output (cross-attention)::

    p(y | x) = prod_i p(y_i | y_<i, x)

    h_0 = dropout(sqrt(d) E_x x + PE)                          # (B, S, d) source tokens + positions
    h_l = EncoderBlock(h_{l-1}),  l = 1..N                     # memory m = h_N (B, S, d)
    g_0 = dropout(sqrt(d) E_y y_<i + PE)                       # (B, T, d) decoder inputs <bos> y_1 ..
    g_l = DecoderBlock(g_{l-1}, m),  l = 1..N
    logits = g_N W_o^T                                         # (B, T, V); W_o = E_y when tied

with post-LN residual blocks (Section 3.1: ``LayerNorm(x + Sublayer(x))``) and sinusoidal
positions (Section 3.5)::

    EncoderBlock:  x = LN(x + drop(MHA(x, x, x, padding mask)));      x = LN(x + drop(FFN(x)))
    DecoderBlock:  x = LN(x + drop(MHA(x, x, x, causal mask)))
                   x = LN(x + drop(MHA(x, m, m, source padding mask)))
                   x = LN(x + drop(FFN(x)))
    MHA(Q, K, V)   = [head_1; ...; head_h] W^O,  head_i = softmax(Q W_i^Q (K W_i^K)^T / sqrt(d_k)) V W_i^V
    FFN(x)         = max(0, x W_1 + b_1) W_2 + b_2
    PE(pos, 2i)    = sin(pos / 10000^(2i/d)),  PE(pos, 2i+1) = cos(pos / 10000^(2i/d))

The blocks, attention and positions come from :mod:`archlab.models.transformer.layers` and
:mod:`archlab.models.transformer.attention`.

Training is teacher-forced and parallel over all T target positions (the causal mask hides the
future). Decoding (:meth:`Transformer.greedy`, :meth:`Transformer.beam_search`) reuses the
recurrent seq2seq models' search algorithms (:func:`archlab.models.rnn.seq2seq.greedy_search`,
:func:`archlab.models.rnn.seq2seq.beam_search`) with a one-token step function: each decoder
layer's keys and values of the tokens written so far are kept in a
:class:`~archlab.models.transformer.attention.KVCache` (so step t costs O(t), not O(t^2)), and the
cross-attention's projections of the memory are computed once per sentence and cached. The model
is a drop-in for :class:`archlab.models.rnn.seq2seq.Seq2Seq` in
:class:`archlab.tasks.seq2seq.Seq2SeqTask` and ``archlab predict``: ``last_attention`` (B, L, S)
is the last decoder layer's cross-attention averaged over heads.

Sizes (paper Table 3): base N=6, d=512, h=8, d_ff=2048, dropout 0.1 (65M parameters with a 37k
shared BPE vocabulary); big N=6, d=1024, h=16, d_ff=4096, dropout 0.3.

Registered variants:

    transformer_tiny    2 + 2 layers, d 128, 4 heads, d_ff 512   (seq2seq_synthetic, fra_eng in minutes)
    transformer_small   3 + 3 layers, d 256, 4 heads, d_ff 1024  (the fra_eng recipe)
    transformer_base    6 + 6 layers, d 512, 8 heads, d_ff 2048  (the paper's base model)

Deviations from the paper:
    - ``share_embeddings`` [False]: the paper shares one matrix between the source embedding, the
      target embedding and the output layer, which needs a joint source/target vocabulary (its
      BPE); archlab's translation data have separate vocabularies, so by default only the target
      embedding and the output layer are tied (``tie_output`` [True], Press & Wolf 2017);
      ``share_embeddings=True`` ties all three when the two vocabularies are the same
      (seq2seq_synthetic's reverse/copy/sort).
    - ``norm_first`` [False]: False is the paper's post-LN block; True gives pre-LN
      (``x + Sublayer(LN(x))``, Xiong et al. 2020, https://arxiv.org/abs/2002.04745), which then
      adds a final LayerNorm after the encoder and after the decoder (as tensor2tensor's and
      fairseq's pre-LN models); it trains without a warmup.
    - ``pos`` ["sinusoidal"]: "learned" uses learned position embeddings (the paper's Table 3,
      row E, found them equivalent).
    - Initialisation is not given in the paper; here it follows fairseq / tensor2tensor:
      embeddings N(0, d^-1/2) (so that sqrt(d)-scaled embeddings have unit variance and the tied
      output layer starts with small logits), Xavier-uniform weights and zero biases in the blocks,
      padding embedding 0.
    - ``attention_dropout`` [0.0] (dropout on the attention weights) and the FFN's inner dropout are
      tensor2tensor options the paper does not describe; the paper's dropout (``dropout``, 0.1) is on
      each sub-layer's output before the residual sum and on the embedding + position sums.
    - Label smoothing (0.1 in the paper) is the task's ``train.label_smoothing``; the paper's
      warmup schedule is ``train.schedule=inverse_sqrt`` (:mod:`archlab.engine.optim`); the paper's
      checkpoint averaging is not done.
    - Beam search uses archlab's length normalisation ``score / |Y|**alpha`` (``length_penalty``);
      the paper used GNMT's ``((5 + |Y|) / 6)**alpha`` with alpha = 0.6 (``length_norm="gnmt"``).
    - ``teacher_forcing`` < 1 (scheduled sampling) is not supported: a Transformer trains all
      positions in parallel from the true prefix; ``forward`` raises a ValueError that says so.
    - Decoding stops at ``max_len`` tokens; the paper allowed input length + 50.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor, nn

from archlab.models.common import seq2seq_example_input
from archlab.models.rnn.seq2seq import beam_search, greedy_search, sequence_log_prob, teacher_forced_attention
from archlab.models.transformer.attention import KVCache
from archlab.models.transformer.layers import (
    LearnedPositionalEmbedding,
    SinusoidalPositionalEncoding,
    TransformerBlock,
)
from archlab.registry import register_model

__all__ = ["DecoderState", "Transformer", "TransformerConfig"]


@dataclass
class TransformerConfig:
    """Options of :class:`Transformer`.

    Attributes:
        src_vocab_size: source token ids (filled from the dataset's vocab).
        tgt_vocab_size: target token ids (filled from the dataset's target vocab).
        pad_id: padding id (0): masked as a key in every attention, ignored by the loss.
        bos_id: <bos>, the first decoder input.
        eos_id: <eos>, ends a decoded sentence.
        max_len: default decoding limit (tokens, <eos> included); filled with the dataset's
            padded source length.
        dim: model width d (``d_model``).
        num_encoder_layers: encoder blocks N.
        num_decoder_layers: decoder blocks N.
        num_heads: attention heads h (d_k = d / h).
        ff_dim: hidden width of the position-wise feed-forward network (``d_ff``).
        dropout: on the embedding + position sums and on each sub-layer's output (P_drop).
        attention_dropout: on the attention weights (not in the paper).
        activation: of the feed-forward network: ``relu`` (the paper), ``gelu`` or ``gelu_tanh``.
        norm_first: pre-LN blocks (and a final LayerNorm per stack) instead of the paper's post-LN.
        eps: LayerNorm epsilon.
        pos: ``sinusoidal`` (the paper) or ``learned`` position embeddings.
        max_positions: longest source or target the position table covers.
        scale_embeddings: multiply the embeddings by sqrt(d) (Section 3.4).
        share_embeddings: one matrix for the source and target embeddings (and the output layer
            when ``tie_output``); needs ``src_vocab_size == tgt_vocab_size``.
        tie_output: the output layer reuses the target embedding matrix.
        impl: attention kernels: ``fast`` (``F.scaled_dot_product_attention``) or ``math`` (written out).
    """

    src_vocab_size: int = 1000
    tgt_vocab_size: int = 1000
    pad_id: int = 0
    bos_id: int = 2
    eos_id: int = 3
    max_len: int = 50
    dim: int = 512
    num_encoder_layers: int = 6
    num_decoder_layers: int = 6
    num_heads: int = 8
    ff_dim: int = 2048
    dropout: float = 0.1
    attention_dropout: float = 0.0
    activation: Literal["relu", "gelu", "gelu_tanh"] = "relu"
    norm_first: bool = False
    eps: float = 1e-5
    pos: Literal["sinusoidal", "learned"] = "sinusoidal"
    max_positions: int = 1024
    scale_embeddings: bool = True
    share_embeddings: bool = False
    tie_output: bool = True
    impl: Literal["fast", "math"] = "fast"

    # Small sizes for the model walk in tests/models/test_all_models.py.
    TINY: ClassVar[dict[str, Any]] = {"src_vocab_size": 11, "tgt_vocab_size": 13, "dim": 16, "num_heads": 2,
                                      "ff_dim": 32, "max_len": 8, "max_positions": 32}

    def __post_init__(self) -> None:
        if min(self.src_vocab_size, self.tgt_vocab_size) <= max(self.pad_id, self.bos_id, self.eos_id):
            raise ValueError(f"src_vocab_size ({self.src_vocab_size}) and tgt_vocab_size ({self.tgt_vocab_size}) "
                             f"must exceed the special ids (pad {self.pad_id}, bos {self.bos_id}, eos {self.eos_id})")
        if self.dim % self.num_heads:
            raise ValueError(f"dim ({self.dim}) must be divisible by num_heads ({self.num_heads})")
        if min(self.num_encoder_layers, self.num_decoder_layers, self.ff_dim, self.max_positions) < 1:
            raise ValueError("num_encoder_layers, num_decoder_layers, ff_dim and max_positions must be >= 1")
        for name in ("dropout", "attention_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)}")
        if self.share_embeddings and self.src_vocab_size != self.tgt_vocab_size:
            raise ValueError(f"share_embeddings needs one vocabulary for source and target, got src_vocab_size="
                             f"{self.src_vocab_size} and tgt_vocab_size={self.tgt_vocab_size}; use "
                             f"share_embeddings=false (tie_output still ties the target side)")


@dataclass
class DecoderState:
    """What one incremental decoder step needs for N rows (sentences, or sentences x beams).

    Attributes:
        memory: the encoder output (N, S, d).
        src_mask: (N, S) True at real source tokens.
        cache: keys/values of the decoder's self-attention, one entry per layer (grows by one
            token per step).
        cross_cache: the cross-attention's projected memory per layer (computed at the first step).
    """

    memory: Tensor
    src_mask: Tensor
    cache: KVCache
    cross_cache: KVCache

    def reorder(self, rows: Tensor) -> DecoderState:
        """The state of the beams ``rows`` (their parents), for :func:`~archlab.models.rnn.seq2seq.beam_search`.

        Only the self-attention cache depends on a beam's history. Beam search keeps a sentence's
        K beams in rows b*K .. b*K+K-1 and a beam's parent is always a beam of the same sentence,
        whose memory and cross-attention keys are the same: those are left as they are.
        """
        self.cache.reorder(rows)
        return self


class Transformer(nn.Module):
    """The encoder-decoder Transformer; see the module docstring for the equations.

    Args:
        cfg: a :class:`TransformerConfig`.

    Shapes:
        forward(src (B, S), tgt_in (B, T)) -> logits (B, T, tgt_vocab_size), and with
        ``return_attention=True`` also the cross-attention (B, T, S) of the last decoder layer,
        averaged over heads. ``src`` holds source ids right-padded with ``pad_id``
        (``w_1 .. w_n <eos> <pad>..``); ``tgt_in`` the decoder inputs ``<bos> y_1 .. y_{T-1}``.
    """

    task: ClassVar[str] = "seq2seq"

    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        self.config = cfg
        d = cfg.dim
        self.src_embed = nn.Embedding(cfg.src_vocab_size, d, padding_idx=cfg.pad_id)
        self.tgt_embed = self.src_embed if cfg.share_embeddings else nn.Embedding(cfg.tgt_vocab_size, d,
                                                                                  padding_idx=cfg.pad_id)
        if cfg.pos == "sinusoidal":
            self.pos = SinusoidalPositionalEncoding(cfg.max_positions, d)
        else:
            self.pos = LearnedPositionalEmbedding(cfg.max_positions, d)
        self.drop = nn.Dropout(cfg.dropout)
        block = dict(dropout=cfg.dropout, attention_dropout=cfg.attention_dropout, norm_first=cfg.norm_first,
                     eps=cfg.eps, activation=cfg.activation, impl=cfg.impl)
        self.encoder = nn.ModuleList([TransformerBlock(d, cfg.num_heads, cfg.ff_dim, **block)
                                      for _ in range(cfg.num_encoder_layers)])
        self.decoder = nn.ModuleList([TransformerBlock(d, cfg.num_heads, cfg.ff_dim, cross_attention=True, **block)
                                      for _ in range(cfg.num_decoder_layers)])
        # Pre-LN leaves the residual stream un-normalised: one LayerNorm closes each stack.
        self.encoder_norm = nn.LayerNorm(d, eps=cfg.eps) if cfg.norm_first else nn.Identity()
        self.decoder_norm = nn.LayerNorm(d, eps=cfg.eps) if cfg.norm_first else nn.Identity()
        self.out = nn.Linear(d, cfg.tgt_vocab_size, bias=False)  # W_o, pre-softmax
        self._init_weights()
        if cfg.tie_output:
            self.out.weight = self.tgt_embed.weight
        self.last_attention: Tensor | None = None
        self.last_scores: Tensor | None = None

    def _init_weights(self) -> None:
        """fairseq/tensor2tensor's initialisation (the paper gives none): see the module docstring."""
        for module in [*self.encoder, *self.decoder]:
            for sub in module.modules():
                if isinstance(sub, nn.Linear):
                    nn.init.xavier_uniform_(sub.weight)
                    if sub.bias is not None:
                        nn.init.zeros_(sub.bias)
        d = self.config.dim
        for emb in {id(e): e for e in (self.src_embed, self.tgt_embed)}.values():
            nn.init.normal_(emb.weight, std=d**-0.5)
            with torch.no_grad():
                emb.weight[self.config.pad_id].zero_()
        if isinstance(self.pos, LearnedPositionalEmbedding):
            nn.init.normal_(self.pos.weight, std=d**-0.5)
        nn.init.normal_(self.out.weight, std=d**-0.5)

    # ------------------------------------------------------------------------------------------
    # inputs

    def example_input(self, batch_size: int = 2) -> tuple[Tensor, Tensor]:
        """(src (B, 6), tgt_in (B, 5)) with random tokens and some right padding."""
        return seq2seq_example_input(self.config, batch_size, self.src_embed.weight.device)

    def _embed(self, ids: Tensor, table: nn.Embedding, offset: int = 0) -> Tensor:
        """dropout(sqrt(d) E[ids] + PE(offset..)) for ids (B, T) -> (B, T, d)."""
        T = ids.shape[1]
        if offset + T > self.config.max_positions:
            raise ValueError(f"a sequence of {offset + T} tokens exceeds max_positions={self.config.max_positions}; "
                             f"build the model with a larger model.max_positions")
        x = table(ids)  # (B, T, d)
        if self.config.scale_embeddings:
            x = x * math.sqrt(self.config.dim)
        if isinstance(self.pos, SinusoidalPositionalEncoding):
            x = self.pos(x, offset=offset)  # x + PE[offset:offset+T]
        else:
            x = x + self.pos(T, offset=offset)  # (B, T, d) + (T, d)
        return self.drop(x)

    # ------------------------------------------------------------------------------------------
    # encoder and decoder

    def encode(self, src: Tensor) -> tuple[Tensor, Tensor]:
        """The encoder over ``src`` (B, S): memory (B, S, d) and the source mask (B, S), True = real."""
        if src.dim() != 2 or src.dtype != torch.long:
            raise ValueError(f"{type(self).__name__} expects source token ids (B, S) long, got "
                             f"{tuple(src.shape)} {src.dtype}")
        mask = src != self.config.pad_id  # (B, S)
        x = self._embed(src, self.src_embed)  # (B, S, d)
        for block in self.encoder:
            x, _, _ = block(x, key_padding_mask=mask)  # (B, S, d)
        return self.encoder_norm(x), mask

    def decode(self, tgt_in: Tensor, memory: Tensor, src_mask: Tensor, *, state: DecoderState | None = None,
               need_weights: bool = False) -> tuple[Tensor, Tensor | None]:
        """Logits (B, T, V) of the decoder inputs ``tgt_in`` (B, T) given the memory (B, S, d).

        With ``state`` the T tokens continue the prefix cached there (incremental decoding: their
        positions start at the cache's length and their keys/values are appended to it). With
        ``need_weights`` also the last layer's cross-attention (B, T, S), averaged over heads.
        """
        offset = state.cache.length if state is not None else 0
        x = self._embed(tgt_in, self.tgt_embed, offset)  # (B, T, d)
        cross = None
        last = len(self.decoder) - 1
        for i, block in enumerate(self.decoder):
            x, _, w = block(x, memory=memory, memory_padding_mask=src_mask, is_causal=True,
                            need_weights=need_weights and i == last, layer=i,
                            cache=state.cache if state is not None else None,
                            cross_cache=state.cross_cache if state is not None else None)
            if w is not None:
                cross = w.mean(dim=1)  # (B, h, T, S) -> (B, T, S)
        return self.out(self.decoder_norm(x)), cross  # (B, T, V)

    def forward(self, src: Tensor, tgt_in: Tensor, teacher_forcing: float = 1.0,
                return_attention: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        """Logits (B, T, V) of every target position given the source and the decoder inputs.

        Args:
            src: source ids (B, S), right-padded.
            tgt_in: decoder inputs (B, T), ``<bos>`` first.
            teacher_forcing: must be 1 (the Transformer trains all positions in parallel from
                the true prefix; scheduled sampling is not supported).
            return_attention: also return the last decoder layer's cross-attention (B, T, S).
        """
        if teacher_forcing < 1.0:
            raise ValueError(f"{type(self).__name__} trains fully teacher-forced (all target positions in parallel), "
                             f"got teacher_forcing={teacher_forcing}; set train.teacher_forcing=1.0 "
                             f"(scheduled sampling is only implemented by the recurrent seq2seq_* models)")
        if tgt_in.dim() != 2 or tgt_in.dtype != torch.long:
            raise ValueError(f"{type(self).__name__} expects decoder inputs tgt_in (B, T) long, got "
                             f"{tuple(tgt_in.shape)} {tgt_in.dtype}")
        if tgt_in.shape[0] != src.shape[0]:
            raise ValueError(f"src has {src.shape[0]} rows but tgt_in has {tgt_in.shape[0]}")
        memory, mask = self.encode(src)
        logits, attn = self.decode(tgt_in, memory, mask, need_weights=return_attention)
        if return_attention:
            return logits, attn * mask[:, None, :]  # exact zeros at source padding
        return logits

    # ------------------------------------------------------------------------------------------
    # inference

    def init_state(self, memory: Tensor, src_mask: Tensor) -> DecoderState:
        """An empty decoder state (no tokens written yet) over ``memory`` (N, S, d)."""
        n = len(self.decoder)
        return DecoderState(memory, src_mask, KVCache(n), KVCache(n))

    def step(self, prev: Tensor, state: DecoderState, record: list[Tensor] | None = None
             ) -> tuple[Tensor, DecoderState]:
        """One decoder step: log-probabilities (N, V) of the next token after ``prev`` (N,).

        The step function of :func:`~archlab.models.rnn.seq2seq.greedy_search` and
        :func:`~archlab.models.rnn.seq2seq.beam_search`; ``record`` collects the step's
        cross-attention (N, S).
        """
        logits, attn = self.decode(prev[:, None], state.memory, state.src_mask, state=state,
                                   need_weights=record is not None)  # (N, 1, V), (N, 1, S)
        if record is not None:
            record.append(attn[:, 0])
        return logits[:, 0].float().log_softmax(dim=-1), state

    @torch.no_grad()
    def greedy(self, src: Tensor, max_len: int | None = None) -> Tensor:
        """Greedy translations of ``src`` (B, S): ids (B, <= max_len) ending with <eos>, then padding.

        Sets ``last_attention`` (B, L, S) (the last decoder layer's cross-attention averaged over
        heads; rows after <eos> are 0) and ``last_scores`` (B,), the summed log-probabilities.
        Call in eval mode (dropout off).
        """
        cfg = self.config
        memory, mask = self.encode(src)
        record: list[Tensor] = []
        tokens, scores = greedy_search(lambda prev, st: self.step(prev, st, record), self.init_state(memory, mask),
                                       src.shape[0], max_len or cfg.max_len, bos_id=cfg.bos_id, eos_id=cfg.eos_id,
                                       pad_id=cfg.pad_id, device=src.device)
        attn = torch.stack(record, dim=1) * mask[:, None, :]  # (B, L, S)
        self.last_attention = attn * (tokens != cfg.pad_id)[:, :, None]
        self.last_scores = scores
        return tokens

    @torch.no_grad()
    def beam_search(self, src: Tensor, beam_size: int = 5, max_len: int | None = None,
                    length_penalty: float = 1.0, length_norm: Literal["simple", "gnmt"] = "simple") -> Tensor:
        """Beam-search translations of ``src`` (B, S): the best ids per sentence (B, <= max_len).

        See :func:`archlab.models.rnn.seq2seq.beam_search` for the algorithm. Sets
        ``last_scores`` (B,) (raw log-probabilities) and ``last_attention`` (B, L, S) (the chosen
        hypotheses' cross-attention, recomputed by one teacher-forced pass). Call in eval mode.
        """
        cfg = self.config
        B = src.shape[0]
        memory, mask = self.encode(src)
        memory = memory.repeat_interleave(beam_size, dim=0)  # (B*K, S, d): row b*K + k
        rows_mask = mask.repeat_interleave(beam_size, dim=0)  # (B*K, S)
        tokens, scores = beam_search(self.step, self.init_state(memory, rows_mask), B, beam_size,
                                     max_len or cfg.max_len, bos_id=cfg.bos_id, eos_id=cfg.eos_id,
                                     pad_id=cfg.pad_id, length_penalty=length_penalty, length_norm=length_norm,
                                     reorder=lambda state, rows: state.reorder(rows), device=src.device)
        self.last_attention = teacher_forced_attention(self, src, tokens)  # (B, L, S)
        self.last_scores = scores
        return tokens

    @torch.no_grad()
    def score(self, src: Tensor, tokens: Tensor) -> Tensor:
        """Summed log-probabilities (B,) of output ``tokens`` (B, L) (up to <eos>, padding ignored)."""
        return sequence_log_prob(self, src, tokens)


# ----------------------------------------------------------------------------------------------
# registered variants


@register_model("transformer_tiny", family="transformer", config=TransformerConfig, num_encoder_layers=2,
                num_decoder_layers=2, dim=128, num_heads=4, ff_dim=512)
def transformer_tiny(cfg: TransformerConfig) -> Transformer:
    """Encoder-decoder Transformer, 2+2 layers of d 128 (4 heads, d_ff 512): seconds on toy tasks."""
    return Transformer(cfg)


@register_model("transformer_small", family="transformer", config=TransformerConfig, num_encoder_layers=3,
                num_decoder_layers=3, dim=256, num_heads=4, ff_dim=1024)
def transformer_small(cfg: TransformerConfig) -> Transformer:
    """Encoder-decoder Transformer, 3+3 layers of d 256 (4 heads, d_ff 1024): the fra_eng recipe's model."""
    return Transformer(cfg)


@register_model("transformer_base", family="transformer", config=TransformerConfig, num_encoder_layers=6,
                num_decoder_layers=6, dim=512, num_heads=8, ff_dim=2048)
def transformer_base(cfg: TransformerConfig) -> Transformer:
    """The paper's base Transformer (Vaswani et al. 2017): 6+6 layers, d 512, 8 heads, d_ff 2048, dropout 0.1."""
    return Transformer(cfg)
