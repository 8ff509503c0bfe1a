"""Sequence-to-sequence encoder-decoders (GRU/LSTM), with or without attention; greedy and beam search.

An encoder reads the source x_1..x_S; a decoder writes the target y_1..y_T one token at a time,
each conditioned on the tokens before it and on the source::

    p(y | x) = prod_i p(y_i | y_<i, x)

Encoder (all variants): embeddings, then a stacked, optionally bidirectional recurrent layer
(:func:`archlab.models.rnn.layers.make_rnn`) over the packed (unpadded) source::

    h_1..h_S = BiRNN(E_x x_1..E_x x_S)                  memory (B, S, D*H), D = 2 if bidirectional
    s_0      = bridge(final encoder states)             the decoder's initial state (L, B, H)

Decoders (``attention``):

* ``"none"`` -- Sutskever et al. 2014 / Cho et al. 2014: the source reaches the decoder only
  through s_0::

      s_i = RNN(E_y y_{i-1}, s_{i-1});   logits_i = W_o s_i

* ``"bahdanau"`` -- Bahdanau et al. 2015 (Eqs. 4-6, Appendix A.2): the previous state s_{i-1}
  scores every source position (additive attention), the context c_i enters the recurrence,
  and a maxout layer reads out::

      e_ij = v_a^T tanh(W_a s_{i-1} + U_a h_j);  a_ij = softmax_j(e_ij);  c_i = sum_j a_ij h_j
      s_i  = RNN([E_y y_{i-1}; c_i], s_{i-1})
      t_i  = maxout_2(U_o s_i + V_o E_y y_{i-1} + C_o c_i);  logits_i = W_o t_i

* ``"dot"`` / ``"general"`` / ``"concat"`` -- Luong et al. 2015 (Section 3, Eqs. 5-8, 3.3): the
  *current* state h_t scores the source, and an attentional state h~_t makes the prediction;
  with input feeding h~_{t-1} is also an input of the next step::

      h_t   = RNN([E_y y_{t-1}; h~_{t-1}], h_{t-1})
      a_t   = softmax(score(h_t, h_s)),  c_t = sum_s a_ts h_s
      h~_t  = tanh(W_c [c_t; h_t]);      logits_t = W_s h~_t

Training feeds the true previous token (teacher forcing). ``teacher_forcing=p < 1`` flips one
coin per decoder step for the whole batch and, with probability 1 - p, feeds the model's own
argmax of the previous step instead (scheduled sampling, Bengio et al. 2015, with a fixed p).
When every step is teacher forced and no step depends on the previous step's attention
(``"none"``, and Luong without input feeding) the decoder runs over all T steps in one call.

Decoding: :meth:`Seq2Seq.greedy` takes the argmax at each step; :meth:`Seq2Seq.beam_search`
keeps the ``beam_size`` best partial translations (:func:`beam_search`, batched over sentences and
beams). Finished hypotheses are ranked by length-normalised log-probability (Section 7 of Wu et
al. 2016), ``length_norm``:

    "simple":  score / |Y|**alpha                       (the default; alpha = train.length_penalty)
    "gnmt":    score / ((5 + |Y|) / 6)**alpha           (Wu et al. 2016, Eq. 14)

|Y| counts the generated tokens including <eos>; alpha = 0 ranks by raw log-probability, which
favours short outputs. Live beams are pruned by raw score; a sentence stops once ``beam_size``
hypotheses have finished and none of them is worse than the best live beam normalised at its
current length (Hugging Face's ``early_stopping=False`` rule), or at ``max_len``.

Papers:
    I. Sutskever, O. Vinyals, Q. V. Le, "Sequence to Sequence Learning with Neural Networks",
    NeurIPS 2014. https://arxiv.org/abs/1409.3215
    K. Cho, B. van Merrienboer, C. Gulcehre, D. Bahdanau, F. Bougares, H. Schwenk, Y. Bengio,
    "Learning Phrase Representations using RNN Encoder-Decoder for Statistical Machine
    Translation", EMNLP 2014. https://arxiv.org/abs/1406.1078
    D. Bahdanau, K. Cho, Y. Bengio, "Neural Machine Translation by Jointly Learning to Align and
    Translate", ICLR 2015. https://arxiv.org/abs/1409.0473
    M.-T. Luong, H. Pham, C. D. Manning, "Effective Approaches to Attention-based Neural Machine
    Translation", EMNLP 2015. https://arxiv.org/abs/1508.04025
    S. Bengio, O. Vinyals, N. Jaitly, N. Shazeer, "Scheduled Sampling for Sequence Prediction
    with Recurrent Neural Networks", NeurIPS 2015. https://arxiv.org/abs/1506.03099
    Y. Wu et al., "Google's Neural Machine Translation System", 2016. https://arxiv.org/abs/1609.08144

Registered variants (all GRU by default; ``cell=lstm`` switches every recurrence):

    seq2seq_gru        no attention; bidirectional encoder, s_0 = tanh(W [h->_S; h<-_1])
                       (the same encoder as seq2seq_bahdanau: the "with or without attention" pair)
    seq2seq_lstm       Sutskever et al.: 2-layer unidirectional LSTM, reversed source, s_0 = h_S
    seq2seq_bahdanau   additive attention, bidirectional encoder, s_0 = tanh(W_s h<-_1), maxout
    seq2seq_luong      ``general`` score (``attention=dot|concat`` for the others), input feeding

Deviations from the paper:
    - ``bridge`` ["concat"; "backward" in seq2seq_bahdanau]: how s_0 comes from the encoder.
      "backward" is Bahdanau's ``tanh(W_s h<-_1)``; "concat" maps both directions' final states
      (``tanh(W [h->_S; h<-_1])``, one W shared by the layers); "copy" passes a unidirectional
      encoder's final states as they are (Sutskever, Cho, Luong); "zero" starts from zeros. For an
      LSTM the cell state gets its own linear map (no tanh).
    - Cho et al. also fed the summary c = s_0 to every decoder step and to the readout; here the
      no-attention decoder is Sutskever's (the source enters only through s_0).
    - ``readout`` ["maxout"] (Bahdanau decoder only): Bahdanau's maxout layer of width
      ``readout_dim`` (default hidden_dim // 2, as l = 500 for n = 1000); "linear" maps
      [s_i; c_i; E y_{i-1}] straight to the vocabulary. The readout takes the new state s_i as in
      Eq. (4) (the paper's Appendix A.2.2 writes s_{i-1}).
    - ``input_feeding`` [True] (Luong decoders): False gives Luong's model without input feeding,
      which also lets teacher-forced training run all steps at once.
    - ``reverse_source`` [False; True in seq2seq_lstm]: Sutskever's reversed source words (the
      final <eos> stays last); attention weights are mapped back to the original order.
    - The encoder and decoder recurrences are the same kind (``cell``) and depth (``num_layers``);
      Sutskever used 4 LSTM layers and 1000 units, Bahdanau 1000 GRU units with 620-d embeddings.
      seq2seq_luong keeps the bidirectional GRU encoder of the other variants (so that the
      attention scores are compared on one encoder); Luong et al. stacked 4 unidirectional LSTM
      layers and copied the encoder's final state: ``cell=lstm num_layers=4 bidirectional=false
      bridge=copy``.
    - Initialisation is PyTorch's (uniform +-1/sqrt(fan_in)), not the papers' (Gaussian and
      orthogonal matrices; uniform +-0.08 in Sutskever et al.); dropout (``dropout``) on the
      embeddings, between layers and before the readout follows Zaremba et al. 2014 / Luong (0.2),
      0 by default.
    - Scheduled sampling uses a constant ratio (Bengio et al. decay it over training) and one coin
      per step for the whole batch (the paper flips one per token).
    - ``attn_scale`` [False; True in seq2seq_luong]: the ``dot`` and ``general`` scores are divided
      by sqrt(hidden_dim), as in the Transformer. Unscaled (the paper), the scores of 256-unit
      states start large, the softmax saturates and on fra_eng the attention collapsed onto the
      last word and <eos> (99.9% of the weight; BLEU at the no-attention level); scaled, it aligns
      (order correlation +0.94) and the val loss drops from 2.84 to 2.53 (seq2seq-attention setup,
      2 epochs). ``model.attn_scale=false`` gives the paper's score.
    - Luong's local attention and ``location`` score are not implemented.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from archlab.models.common import seq2seq_example_input
from archlab.models.rnn.attention import make_attention
from archlab.models.rnn.layers import make_rnn
from archlab.registry import register_model

__all__ = [
    "Encoded",
    "Seq2Seq",
    "Seq2SeqConfig",
    "beam_search",
    "greedy_search",
    "length_normalizer",
    "reorder_state",
    "sequence_log_prob",
    "shift_right",
    "teacher_forced_attention",
]

State = Any  # a tensor, a tuple of tensors (LSTM), or None; with the input feed: (rnn_state, feed)


@dataclass
class Seq2SeqConfig:
    """Options of :class:`Seq2Seq`.

    Attributes:
        src_vocab_size: source token ids (filled from the dataset's vocab).
        tgt_vocab_size: target token ids (filled from the dataset's target vocab).
        pad_id: padding id (0), masked in attention, packed away in the encoder, ignored by the loss.
        bos_id: <bos>, the first decoder input.
        eos_id: <eos>, ends a decoded sentence.
        max_len: default decoding limit (tokens, <eos> included); filled with the dataset's
            padded source length.
        embed_dim: embedding width (source and target).
        hidden_dim: hidden units per layer and direction of the encoder, and of the decoder.
        num_layers: stacked layers of the encoder and of the decoder.
        cell: ``gru``, ``lstm`` or ``rnn`` (Elman, tanh).
        bidirectional: a bidirectional encoder (memory of 2 * hidden_dim per position).
        attention: ``none``, ``bahdanau`` (additive, from s_{i-1}), or Luong's ``dot`` /
            ``general`` / ``concat`` (from h_t).
        attn_dim: hidden size of the additive scores (default hidden_dim).
        attn_scale: divide the ``dot``/``general`` scores by sqrt(hidden_dim) (not in Luong et al.).
        bridge: the decoder's initial state: ``concat``, ``backward``, ``copy`` or ``zero``.
        readout: Bahdanau decoder's output layer: ``maxout`` or ``linear``.
        readout_dim: width of the maxout readout (default hidden_dim // 2).
        input_feeding: Luong decoders: feed h~_{t-1} into step t.
        reverse_source: reverse the source words (Sutskever et al.).
        dropout: on embeddings, between layers and before the readout.
        impl: ``fast`` (torch's fused recurrent kernels) or ``cells`` (the gate-by-gate cells).
    """

    src_vocab_size: int = 1000
    tgt_vocab_size: int = 1000
    pad_id: int = 0
    bos_id: int = 2
    eos_id: int = 3
    max_len: int = 50
    embed_dim: int = 256
    hidden_dim: int = 256
    num_layers: int = 1
    cell: Literal["gru", "lstm", "rnn"] = "gru"
    bidirectional: bool = True
    attention: Literal["none", "bahdanau", "dot", "general", "concat"] = "bahdanau"
    attn_dim: int | None = None
    attn_scale: bool = False
    bridge: Literal["concat", "backward", "copy", "zero"] = "concat"
    readout: Literal["maxout", "linear"] = "maxout"
    readout_dim: int | None = None
    input_feeding: bool = True
    reverse_source: bool = False
    dropout: float = 0.0
    impl: Literal["fast", "cells"] = "fast"

    # Small sizes for the model walk in tests/models/test_all_models.py.
    TINY: ClassVar[dict[str, Any]] = {"src_vocab_size": 11, "tgt_vocab_size": 13, "embed_dim": 8,
                                      "hidden_dim": 12, "max_len": 8}


@dataclass
class Encoded:
    """What the decoder needs from the encoder, for B sentences (or B*K beams).

    Attributes:
        memory: encoder outputs (B, S, Dm), 0 at padding.
        mask: (B, S) True at real source tokens.
        keys: the attention's precomputed projection of the memory, or None.
        state: the decoder's initial recurrent state (L, B, H) (LSTM: a pair).
        perm: (B, S) the source order the encoder saw (``reverse_source``), else None.
    """

    memory: Tensor
    mask: Tensor
    keys: Tensor | None
    state: State
    perm: Tensor | None = None

    def repeat(self, k: int) -> Encoded:
        """Each sentence repeated k times in a row (rows b*k .. b*k+k-1), for beam search."""
        rep = lambda t: None if t is None else t.repeat_interleave(k, dim=0)  # noqa: E731
        return Encoded(rep(self.memory), rep(self.mask), rep(self.keys), _rnn_rows(self.state, None, k),
                       rep(self.perm))


def _rnn_rows(state: State, index: Tensor | None, repeat: int = 1) -> State:
    """Rows of an RNN state (L*D, B, H) (LSTM: a pair): ``index`` selected, or each repeated."""
    if isinstance(state, tuple):
        return tuple(_rnn_rows(s, index, repeat) for s in state)
    return state.repeat_interleave(repeat, dim=1) if index is None else state.index_select(1, index)


def reorder_state(state: State, rows: Tensor) -> State:
    """The decoder state ``(rnn_state, feed)`` of the beams ``rows`` (the batch is dim 1 of the
    RNN state (L, N, H) and dim 0 of the input feed (N, H))."""
    rnn_state, feed = state
    return (_rnn_rows(rnn_state, rows), None if feed is None else feed.index_select(0, rows))


# ----------------------------------------------------------------------------------------------
# decoding algorithms (generic: any step function over token ids)


StepFn = Callable[[Tensor, State], tuple[Tensor, State]]


def length_normalizer(length: int | Tensor, alpha: float, kind: str = "simple") -> float | Tensor:
    """The divisor of a hypothesis's log-probability: ``|Y|**alpha`` or GNMT's ``((5+|Y|)/6)**alpha``."""
    if kind == "simple":
        return length**alpha
    if kind == "gnmt":
        return ((5 + length) / 6) ** alpha
    raise ValueError(f"unknown length_norm {kind!r}: use 'simple' or 'gnmt'")


@torch.no_grad()
def greedy_search(
    step: StepFn, state: State, batch_size: int, max_len: int, *, bos_id: int, eos_id: int, pad_id: int,
    device: torch.device | str = "cpu",
) -> tuple[Tensor, Tensor]:
    """Greedy decoding: the argmax token at every step, until each sentence has produced <eos>.

    Args:
        step: ``step(prev_tokens (B,), state) -> (log_probs (B, V), state)``.
        state: the initial state for B sentences.
        batch_size: B.
        max_len: most tokens to generate (<eos> included).
        bos_id, eos_id, pad_id: special ids; positions after <eos> are ``pad_id``.
        device: where the token tensors live.

    Returns:
        tokens (B, L) with L <= max_len, and their summed log-probabilities (B,) (up to <eos>).
    """
    prev = torch.full((batch_size,), bos_id, dtype=torch.long, device=device)
    done = torch.zeros(batch_size, dtype=torch.bool, device=device)
    score = torch.zeros(batch_size, device=device)
    out: list[Tensor] = []
    for _ in range(max_len):
        logp, state = step(prev, state)  # (B, V)
        best, tok = logp.max(dim=-1)  # (B,), (B,)
        score = score + torch.where(done, torch.zeros_like(best), best.float())
        tok = tok.masked_fill(done, pad_id)
        out.append(tok)
        done = done | (tok == eos_id)
        prev = tok
        if bool(done.all()):
            break
    return torch.stack(out, dim=1), score  # (B, L), (B,)


@torch.no_grad()
def beam_search(
    step: StepFn,
    state: State,
    batch_size: int,
    beam_size: int,
    max_len: int,
    *,
    bos_id: int,
    eos_id: int,
    pad_id: int,
    length_penalty: float = 1.0,
    length_norm: str = "simple",
    reorder: Callable[[State, Tensor], State] = reorder_state,
    device: torch.device | str = "cpu",
) -> tuple[Tensor, Tensor]:
    """Batched beam search: the best hypothesis per sentence by length-normalised log-probability.

    Rows of ``state`` are ordered sentence-major: row ``b * K + k`` is beam k of sentence b. At
    each step the K live beams of a sentence propose K*V continuations; the best 2K by summed
    log-probability are kept as candidates. Candidates ending in <eos> among the first K become
    finished hypotheses, scored ``score / length_normalizer(|Y|)``; the first K candidates that do
    not end in <eos> are the next live beams. A sentence is done once it has K finished
    hypotheses, none scoring below its best live beam normalised at the live beams' current
    length (Hugging Face's rule; exact for ``length_penalty=0``, as log-probabilities only
    decrease); at ``max_len`` the live beams of unfinished sentences are scored as they are.
    With ``beam_size=1`` this is exactly greedy decoding.

    Args:
        step: ``step(prev_tokens (B*K,), state) -> (log_probs (B*K, V), state)``.
        state: the initial state, already repeated K times per sentence.
        batch_size: B.
        beam_size: K.
        max_len: most tokens per hypothesis (<eos> included).
        bos_id, eos_id, pad_id: special ids.
        length_penalty: alpha of the normaliser (0 = raw log-probability).
        length_norm: ``"simple"`` or ``"gnmt"`` (see :func:`length_normalizer`).
        reorder: ``reorder(state, rows)`` selects state rows (the beams' parents) after each step.
        device: where the token tensors live.

    Returns:
        tokens (B, L) of the best hypotheses (``pad_id`` after <eos>), and their raw summed
        log-probabilities (B,).
    """
    B, K = batch_size, beam_size
    if K < 1:
        raise ValueError(f"beam_size must be >= 1, got {K}")
    neg = float("-inf")
    prev = torch.full((B * K,), bos_id, dtype=torch.long, device=device)
    live = torch.full((B, K), neg, device=device)
    live[:, 0] = 0.0  # one live beam per sentence at the start: the others would be duplicates
    hist = torch.zeros(B, K, 0, dtype=torch.long, device=device)  # (B, K, t) live beams' tokens
    fin_norm = torch.full((B, K), neg, device=device)  # finished: normalised scores, best first
    fin_raw = torch.full((B, K), neg, device=device)
    fin_tok = torch.full((B, K, max_len), pad_id, dtype=torch.long, device=device)
    done = torch.zeros(B, dtype=torch.bool, device=device)
    rank = torch.arange(2 * K, device=device)[None, :]  # (1, 2K)
    t = 0
    for t in range(max_len):
        logp, state = step(prev, state)  # (B*K, V)
        V = logp.shape[-1]
        cand = live[:, :, None] + logp.float().view(B, K, V)  # (B, K, V)
        top_v, top_i = cand.view(B, K * V).topk(min(2 * K, K * V), dim=1)  # (B, 2K), best first
        if top_v.shape[1] < 2 * K:  # a vocabulary smaller than 2: pad the candidate list
            pad = 2 * K - top_v.shape[1]
            top_v = F.pad(top_v, (0, pad), value=neg)
            top_i = F.pad(top_i, (0, pad), value=0)
        parent = torch.div(top_i, V, rounding_mode="floor")  # (B, 2K) beam index
        tok = top_i % V  # (B, 2K)
        seqs = torch.cat([hist.gather(1, parent[:, :, None].expand(-1, -1, t)), tok[:, :, None]], dim=2)
        # Finished: <eos> among the first K candidates of a sentence that is not done yet.
        is_eos = tok == eos_id
        new_fin = is_eos & (rank < K) & torch.isfinite(top_v) & ~done[:, None]  # (B, 2K)
        norm = top_v / length_normalizer(t + 1, length_penalty, length_norm)
        merged_norm = torch.cat([fin_norm, torch.where(new_fin, norm, neg)], dim=1)  # (B, 3K)
        merged_raw = torch.cat([fin_raw, torch.where(new_fin, top_v, neg)], dim=1)
        merged_tok = torch.cat([fin_tok, F.pad(seqs, (0, max_len - t - 1), value=pad_id)], dim=1)
        fin_norm, sel = merged_norm.topk(K, dim=1)  # (B, K)
        fin_raw = merged_raw.gather(1, sel)
        fin_tok = merged_tok.gather(1, sel[:, :, None].expand(-1, -1, max_len))  # (B, K, max_len)
        # Live: the best K candidates that do not end in <eos> (there are always at least K).
        live, order = torch.where(is_eos, neg, top_v).topk(K, dim=1)  # (B, K)
        hist = seqs.gather(1, order[:, :, None].expand(-1, -1, t + 1))  # (B, K, t+1)
        # Done: K finished hypotheses, none worse than the best live beam scored at its length.
        bound = live[:, 0] / length_normalizer(t + 1, length_penalty, length_norm)
        done = done | (torch.isfinite(fin_norm[:, K - 1]) & (fin_norm[:, K - 1] >= bound))
        if bool(done.all()):
            break
        rows = (torch.arange(B, device=device)[:, None] * K + parent.gather(1, order)).view(-1)  # (B*K,)
        state = reorder(state, rows)
        prev = tok.gather(1, order).view(-1)
    # Sentences with fewer than K finished hypotheses: their live beams compete as they are.
    if not bool(done.all()):
        length = hist.shape[2]
        norm = live / length_normalizer(length, length_penalty, length_norm)
        keep = ~done[:, None]
        merged_norm = torch.cat([fin_norm, torch.where(keep, norm, neg)], dim=1)
        merged_raw = torch.cat([fin_raw, torch.where(keep, live, neg)], dim=1)
        merged_tok = torch.cat([fin_tok, F.pad(hist, (0, max_len - length), value=pad_id)], dim=1)
        fin_norm, sel = merged_norm.topk(K, dim=1)
        fin_raw = merged_raw.gather(1, sel)
        fin_tok = merged_tok.gather(1, sel[:, :, None].expand(-1, -1, max_len))
    best = fin_tok[:, 0]  # (B, max_len), the best by normalised score
    used = int((best != pad_id).any(dim=0).nonzero().max().item()) + 1 if bool((best != pad_id).any()) else 1
    return best[:, :used], fin_raw[:, 0]


def shift_right(tokens: Tensor, bos_id: int) -> Tensor:
    """Decoder inputs for output ``tokens`` (B, L): <bos> then all but the last token, (B, L)."""
    return torch.cat([tokens.new_full((tokens.shape[0], 1), bos_id), tokens[:, :-1]], dim=1)


def teacher_forced_attention(model: nn.Module, src: Tensor, tokens: Tensor) -> Tensor:
    """The attention (B, L, S) of a decoded ``tokens`` (B, L), recomputed by one teacher-forced pass
    of ``model(src, tgt_in, return_attention=True)``; rows of padding are 0."""
    cfg = model.config  # type: ignore[attr-defined]
    _, attn = model(src, shift_right(tokens, cfg.bos_id), return_attention=True)
    return attn * (tokens != cfg.pad_id)[:, :, None]


def sequence_log_prob(model: nn.Module, src: Tensor, tokens: Tensor) -> Tensor:
    """Summed log-probabilities (B,) of output ``tokens`` (B, L) under ``model(src, tgt_in)``
    (up to <eos>; padding ignored)."""
    cfg = model.config  # type: ignore[attr-defined]
    logp = model(src, shift_right(tokens, cfg.bos_id)).float().log_softmax(dim=-1)  # (B, L, V)
    picked = logp.gather(2, tokens[:, :, None]).squeeze(2)  # (B, L)
    return (picked * (tokens != cfg.pad_id)).sum(dim=1)


# ----------------------------------------------------------------------------------------------
# the model


class Seq2Seq(nn.Module):
    """A recurrent encoder-decoder; see the module docstring for the equations and variants.

    Args:
        cfg: a :class:`Seq2SeqConfig`.

    Shapes:
        forward(src (B, S), tgt_in (B, T)) -> logits (B, T, tgt_vocab_size), and with
        ``return_attention=True`` also the attention (B, T, S) (zeros without attention).
        ``src`` holds source ids right-padded with ``pad_id`` (``w_1 .. w_n <eos> <pad>..``);
        ``tgt_in`` the decoder inputs ``<bos> y_1 .. y_{T-1}``.
    """

    task: ClassVar[str] = "seq2seq"

    def __init__(self, cfg: Seq2SeqConfig) -> None:
        super().__init__()
        self.config = cfg
        if min(cfg.src_vocab_size, cfg.tgt_vocab_size) <= max(cfg.pad_id, cfg.bos_id, cfg.eos_id):
            raise ValueError(f"src_vocab_size ({cfg.src_vocab_size}) and tgt_vocab_size ({cfg.tgt_vocab_size}) must "
                             f"exceed the special ids (pad {cfg.pad_id}, bos {cfg.bos_id}, eos {cfg.eos_id})")
        if not 0.0 <= cfg.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {cfg.dropout}")
        H, D, L = cfg.hidden_dim, 2 if cfg.bidirectional else 1, cfg.num_layers
        self.style = {"none": "none", "bahdanau": "bahdanau"}.get(cfg.attention, "luong")
        if cfg.bridge == "backward" and not cfg.bidirectional:
            raise ValueError("bridge='backward' (Bahdanau's s_0 = tanh(W_s h<-_1)) needs bidirectional=True; "
                             "use bridge='concat' or 'copy'")
        if cfg.bridge == "copy" and cfg.bidirectional:
            raise ValueError("bridge='copy' passes the encoder's final states unchanged, so it needs "
                             "bidirectional=False; use bridge='concat' or 'backward'")
        if cfg.bridge == "backward" and self.style == "none":
            raise ValueError("bridge='backward' without attention would leave the forward encoder unused; "
                             "use bridge='concat'")
        mem_dim = D * H
        self.memory_dim = mem_dim
        self.drop = nn.Dropout(cfg.dropout)
        self.src_embed = nn.Embedding(cfg.src_vocab_size, cfg.embed_dim, padding_idx=cfg.pad_id)
        self.tgt_embed = nn.Embedding(cfg.tgt_vocab_size, cfg.embed_dim, padding_idx=cfg.pad_id)
        rnn_dropout = cfg.dropout if L > 1 else 0.0
        self.encoder = make_rnn(cfg.cell, cfg.embed_dim, H, num_layers=L, bidirectional=cfg.bidirectional,
                                dropout=rnn_dropout, impl=cfg.impl)
        # bridge: s_0 from the final encoder states
        bridge_in = {"concat": mem_dim, "backward": H}.get(cfg.bridge)
        self.bridge_h = nn.Linear(bridge_in, H) if bridge_in else None
        self.bridge_c = nn.Linear(bridge_in, H) if bridge_in and cfg.cell == "lstm" else None
        # decoder
        dec_in = cfg.embed_dim
        if self.style == "bahdanau":
            dec_in += mem_dim  # [E y_{i-1}; c_i]
        elif self.style == "luong" and cfg.input_feeding:
            dec_in += H  # [E y_{t-1}; h~_{t-1}]
        self.decoder = make_rnn(cfg.cell, dec_in, H, num_layers=L, dropout=rnn_dropout, impl=cfg.impl)
        self.attn = (make_attention(cfg.attention, H, mem_dim, cfg.attn_dim, scale=cfg.attn_scale)
                     if self.style != "none" else None)
        V = cfg.tgt_vocab_size
        if self.style == "bahdanau":
            readin = H + mem_dim + cfg.embed_dim  # [s_i; c_i; E y_{i-1}]
            if cfg.readout == "maxout":
                r = cfg.readout_dim or max(H // 2, 1)
                self.readout = nn.Linear(readin, 2 * r)  # U_o, C_o, V_o stacked; maxout over pairs
                self.out = nn.Linear(r, V)  # W_o
            else:
                self.readout = None
                self.out = nn.Linear(readin, V)
        elif self.style == "luong":
            self.combine = nn.Linear(mem_dim + H, H, bias=False)  # W_c
            self.out = nn.Linear(H, V)  # W_s
        else:
            self.out = nn.Linear(H, V)
        self.last_attention: Tensor | None = None
        self.last_scores: Tensor | None = None

    # ------------------------------------------------------------------------------------------
    # inputs

    def example_input(self, batch_size: int = 2) -> tuple[Tensor, Tensor]:
        """(src (B, 6), tgt_in (B, 5)) with random tokens and some right padding."""
        return seq2seq_example_input(self.config, batch_size, self.src_embed.weight.device)

    def _source_order(self, src: Tensor, mask: Tensor) -> Tensor | None:
        """(B, S) positions read in reversed word order (the final <eos> stays last), or None."""
        if not self.config.reverse_source:
            return None
        B, S = src.shape
        lengths = mask.sum(1)  # (B,)
        last = src.gather(1, (lengths - 1).clamp(min=0)[:, None]).squeeze(1)  # (B,)
        n = lengths - (last == self.config.eos_id).long()  # words to reverse
        pos = torch.arange(S, device=src.device)[None, :].expand(B, S)
        return torch.where(pos < n[:, None], n[:, None] - 1 - pos, pos)  # an involution

    # ------------------------------------------------------------------------------------------
    # encoder

    def encode(self, src: Tensor) -> Encoded:
        """Run the encoder over ``src`` (B, S) and build the decoder's initial state."""
        if src.dim() != 2 or src.dtype != torch.long:
            raise ValueError(f"{type(self).__name__} expects source token ids (B, S) long, got "
                             f"{tuple(src.shape)} {src.dtype}")
        cfg = self.config
        mask = src != cfg.pad_id  # (B, S)
        perm = self._source_order(src, mask)
        x = src if perm is None else src.gather(1, perm)
        lengths = mask.sum(1).clamp(min=1)  # an empty source still has one (padding) step
        emb = self.drop(self.src_embed(x))  # (B, S, E)
        memory, final = self.encoder(emb, lengths=lengths)  # (B, S, D*H), (L*D, B, H)
        keys = self.attn.precompute(memory) if self.attn is not None else None
        return Encoded(memory, mask if perm is None else mask.gather(1, perm), keys, self._bridge(final, src.shape[0]),
                       perm)

    def _bridge(self, final: State, batch: int) -> State:
        cfg = self.config
        L, H = cfg.num_layers, cfg.hidden_dim
        if cfg.bridge == "copy":
            return final
        if cfg.bridge == "zero":
            ref = final[0] if isinstance(final, tuple) else final
            zeros = ref.new_zeros(L, batch, H)
            return (zeros, zeros.clone()) if isinstance(final, tuple) else zeros

        def side(t: Tensor, linear: nn.Linear, act: bool) -> Tensor:
            D = 2 if cfg.bidirectional else 1
            per_layer = t.view(L, D, batch, H)  # row l*D + d -> [l, d]
            if cfg.bridge == "backward":
                x = per_layer[:, 1]  # (L, B, H): h<-_1, the backward direction's final state
            else:
                x = per_layer.permute(0, 2, 1, 3).reshape(L, batch, D * H)  # (L, B, D*H): [h->; h<-]
            y = linear(x)  # (L, B, H)
            return torch.tanh(y) if act else y

        if isinstance(final, tuple):
            return (side(final[0], self.bridge_h, True), side(final[1], self.bridge_c, False))
        return side(final, self.bridge_h, True)

    # ------------------------------------------------------------------------------------------
    # decoder

    def init_decoder_state(self, enc: Encoded) -> State:
        """(rnn_state, feed): the recurrent state and Luong's input feed h~_0 = 0 (else None)."""
        feed = None
        if self.style == "luong" and self.config.input_feeding:
            feed = enc.memory.new_zeros(enc.memory.shape[0], self.config.hidden_dim)  # (B, H)
        return (enc.state, feed)

    @staticmethod
    def _top(rnn_state: State) -> Tensor:
        h = rnn_state[0] if isinstance(rnn_state, tuple) else rnn_state  # (L, B, H)
        return h[-1]  # (B, H): the top layer

    def _readout(self, s: Tensor, ctx: Tensor | None, e: Tensor) -> Tensor:
        """Logits from the decoder output of one or all steps (the last dimension is features)."""
        if self.style == "none":
            return self.out(self.drop(s))
        if self.style == "luong":
            h_tilde = torch.tanh(self.combine(torch.cat([ctx, s], dim=-1)))  # (..., H): W_c [c_t; h_t]
            return self.out(self.drop(h_tilde))
        x = self.drop(torch.cat([s, ctx, e], dim=-1))  # (..., H + Dm + E)
        if self.readout is not None:
            pre = self.readout(x)  # (..., 2r)
            x = pre.view(*pre.shape[:-1], -1, 2).amax(dim=-1)  # (..., r): maxout over pairs
        return self.out(x)

    def step(self, prev: Tensor, state: State, enc: Encoded) -> tuple[Tensor, State, Tensor | None]:
        """One decoder step for all rows: logits (N, V), the new state, attention (N, S) or None.

        Args:
            prev: the previous tokens (N,).
            state: ``(rnn_state, feed)`` from :meth:`init_decoder_state` or the last step.
            enc: the encoder's output for the same N rows.
        """
        rnn_state, feed = state
        e = self.drop(self.tgt_embed(prev))  # (N, E)
        if self.style == "bahdanau":
            ctx, attn = self.attn(self._top(rnn_state), enc.memory, enc.mask, keys=enc.keys)  # from s_{i-1}
            out, rnn_state = self.decoder(torch.cat([e, ctx], dim=-1)[:, None], rnn_state)  # (N, 1, H)
            s = out[:, 0]  # (N, H)
            return self._readout(s, ctx, e), (rnn_state, feed), attn
        x = e if feed is None else torch.cat([e, feed], dim=-1)
        out, rnn_state = self.decoder(x[:, None], rnn_state)  # (N, 1, H)
        h = out[:, 0]  # (N, H)
        if self.style == "none":
            return self._readout(h, None, e), (rnn_state, feed), None
        ctx, attn = self.attn(h, enc.memory, enc.mask, keys=enc.keys)  # from h_t
        h_tilde = torch.tanh(self.combine(torch.cat([ctx, h], dim=-1)))  # (N, H)
        logits = self.out(self.drop(h_tilde))
        return logits, (rnn_state, h_tilde if feed is not None else None), attn

    def _parallel_ok(self) -> bool:
        return self.style == "none" or (self.style == "luong" and not self.config.input_feeding)

    def decode_parallel(self, enc: Encoded, tgt_in: Tensor) -> tuple[Tensor, Tensor | None]:
        """Teacher-forced decoding of all T steps in one recurrent call (no input feeding only)."""
        if not self._parallel_ok():
            raise ValueError("decode_parallel needs attention='none' or a Luong score with input_feeding=False")
        e = self.drop(self.tgt_embed(tgt_in))  # (B, T, E)
        out, _ = self.decoder(e, enc.state)  # (B, T, H)
        if self.style == "none":
            return self._readout(out, None, e), None
        ctx, attn = self.attn(out, enc.memory, enc.mask, keys=enc.keys)  # (B, T, Dm), (B, T, S)
        return self._readout(out, ctx, e), attn

    def decode_steps(self, enc: Encoded, tgt_in: Tensor, teacher_forcing: float = 1.0) -> tuple[Tensor, Tensor | None]:
        """Decoding one step at a time: logits (B, T, V) and attention (B, T, S) or None.

        Step t > 0 reads ``tgt_in[:, t]``, or, with probability ``1 - teacher_forcing`` (one coin
        per step, from torch's global generator), the argmax of step t-1's logits.
        """
        state = self.init_decoder_state(enc)
        logits, attns = [], []
        prev = tgt_in[:, 0]
        for t in range(tgt_in.shape[1]):
            if t > 0:
                own = teacher_forcing <= 0.0 or (teacher_forcing < 1.0 and float(torch.rand(())) >= teacher_forcing)
                prev = logits[-1].argmax(dim=-1).detach() if own else tgt_in[:, t]
            z, state, a = self.step(prev, state, enc)
            logits.append(z)
            if a is not None:
                attns.append(a)
        attn = torch.stack(attns, dim=1) if attns else None
        return torch.stack(logits, dim=1), attn  # (B, T, V), (B, T, S)

    def _source_attention(self, attn: Tensor | None, enc: Encoded, like: Tensor) -> Tensor:
        """Attention (B, T, S) in the original source order; zeros when there is none."""
        if attn is None:
            return like.new_zeros(like.shape[0], like.shape[1], enc.mask.shape[1])
        if enc.perm is not None:
            attn = attn.gather(2, enc.perm[:, None, :].expand_as(attn))  # the order is an involution
        return attn

    def forward(self, src: Tensor, tgt_in: Tensor, teacher_forcing: float = 1.0,
                return_attention: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        """Logits (B, T, V) of every target position given the source and the decoder inputs.

        Args:
            src: source ids (B, S), right-padded.
            tgt_in: decoder inputs (B, T), ``<bos>`` first.
            teacher_forcing: probability of feeding the true previous token at each step.
            return_attention: also return the attention weights (B, T, S).
        """
        if tgt_in.dim() != 2 or tgt_in.dtype != torch.long:
            raise ValueError(f"{type(self).__name__} expects decoder inputs tgt_in (B, T) long, got "
                             f"{tuple(tgt_in.shape)} {tgt_in.dtype}")
        if tgt_in.shape[0] != src.shape[0]:
            raise ValueError(f"src has {src.shape[0]} rows but tgt_in has {tgt_in.shape[0]}")
        enc = self.encode(src)
        if teacher_forcing >= 1.0 and self._parallel_ok():
            logits, attn = self.decode_parallel(enc, tgt_in)
        else:
            logits, attn = self.decode_steps(enc, tgt_in, teacher_forcing)
        if return_attention:
            return logits, self._source_attention(attn, enc, tgt_in)
        return logits

    # ------------------------------------------------------------------------------------------
    # inference

    def _log_prob_step(self, enc: Encoded, record: list[Tensor] | None = None) -> StepFn:
        def step(prev: Tensor, state: State) -> tuple[Tensor, State]:
            logits, state, attn = self.step(prev, state, enc)
            if record is not None and attn is not None:
                record.append(attn)
            return logits.float().log_softmax(dim=-1), state

        return step

    @torch.no_grad()
    def greedy(self, src: Tensor, max_len: int | None = None) -> Tensor:
        """Greedy translations of ``src`` (B, S): ids (B, <= max_len) ending with <eos>, then padding.

        Sets ``last_attention`` (B, L, S) (zeros without attention; rows after <eos> are 0) and
        ``last_scores`` (B,), the summed log-probabilities. Call in eval mode (dropout off).
        """
        cfg = self.config
        enc = self.encode(src)
        record: list[Tensor] = []
        tokens, scores = greedy_search(self._log_prob_step(enc, record), self.init_decoder_state(enc), src.shape[0],
                                       max_len or cfg.max_len, bos_id=cfg.bos_id, eos_id=cfg.eos_id,
                                       pad_id=cfg.pad_id, device=src.device)
        attn = torch.stack(record, dim=1) if record else None
        attn = self._source_attention(attn, enc, tokens)  # (B, L, S)
        self.last_attention = attn * (tokens != cfg.pad_id)[:, :, None]
        self.last_scores = scores
        return tokens

    @torch.no_grad()
    def beam_search(self, src: Tensor, beam_size: int = 5, max_len: int | None = None,
                    length_penalty: float = 1.0, length_norm: Literal["simple", "gnmt"] = "simple") -> Tensor:
        """Beam-search translations of ``src`` (B, S): the best ids per sentence (B, <= max_len).

        See :func:`beam_search` for the algorithm and the module docstring for the normalisation.
        Sets ``last_scores`` (B,) (raw log-probabilities) and ``last_attention`` (B, L, S) (the
        attention of the chosen hypotheses, recomputed by one teacher-forced pass). Call in eval
        mode.
        """
        cfg = self.config
        B = src.shape[0]
        enc = self.encode(src).repeat(beam_size)
        tokens, scores = beam_search(self._log_prob_step(enc), self.init_decoder_state(enc), B, beam_size,
                                     max_len or cfg.max_len, bos_id=cfg.bos_id, eos_id=cfg.eos_id,
                                     pad_id=cfg.pad_id, length_penalty=length_penalty, length_norm=length_norm,
                                     device=src.device)
        self.last_attention = teacher_forced_attention(self, src, tokens)  # (B, L, S)
        self.last_scores = scores
        return tokens

    @torch.no_grad()
    def score(self, src: Tensor, tokens: Tensor) -> Tensor:
        """Summed log-probabilities (B,) of output ``tokens`` (B, L) (up to <eos>, padding ignored)."""
        return sequence_log_prob(self, src, tokens)


# ----------------------------------------------------------------------------------------------
# registered variants


@register_model("seq2seq_gru", family="rnn", config=Seq2SeqConfig, attention="none")
def seq2seq_gru(cfg: Seq2SeqConfig) -> Seq2Seq:
    """GRU encoder-decoder without attention (Cho et al. 2014; Sutskever et al. 2014)."""
    return Seq2Seq(cfg)


@register_model("seq2seq_lstm", family="rnn", config=Seq2SeqConfig, attention="none", cell="lstm",
                num_layers=2, bidirectional=False, bridge="copy", reverse_source=True)
def seq2seq_lstm(cfg: Seq2SeqConfig) -> Seq2Seq:
    """Sutskever et al. 2014: stacked LSTM encoder-decoder, reversed source, no attention."""
    return Seq2Seq(cfg)


@register_model("seq2seq_bahdanau", family="rnn", config=Seq2SeqConfig, attention="bahdanau", bridge="backward")
def seq2seq_bahdanau(cfg: Seq2SeqConfig) -> Seq2Seq:
    """Bahdanau et al. 2015: bidirectional GRU encoder, additive attention, maxout readout."""
    return Seq2Seq(cfg)


@register_model("seq2seq_luong", family="rnn", config=Seq2SeqConfig, attention="general", input_feeding=True,
                attn_scale=True)
def seq2seq_luong(cfg: Seq2SeqConfig) -> Seq2Seq:
    """Luong et al. 2015: global attention (general score, scaled; dot/concat by option), input feeding."""
    return Seq2Seq(cfg)
