"""Seq2seq models: attention modules, encoder masking, teacher forcing, greedy and beam search."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from archlab.models.rnn.attention import (
    AdditiveAttention,
    DotAttention,
    GeneralAttention,
    make_attention,
    masked_softmax,
)
from archlab.models.rnn.seq2seq import Seq2Seq, Seq2SeqConfig, beam_search, greedy_search, length_normalizer
from archlab.registry import create_model

PAD, BOS, EOS = 0, 2, 3


def tiny(name: str = "seq2seq_bahdanau", seed: int = 0, **options) -> Seq2Seq:
    torch.manual_seed(seed)
    sizes = dict(src_vocab_size=17, tgt_vocab_size=19, embed_dim=8, hidden_dim=12, max_len=9)
    sizes.update(options)
    return create_model(name, **sizes).eval()


def batch(B: int = 4, S: int = 7, T: int = 6, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    src = torch.randint(4, 17, (B, S), generator=g)
    tgt = torch.randint(4, 19, (B, T), generator=g)
    tgt[:, 0] = BOS
    for b in range(B):
        n = S - (b % 3)
        src[b, n - 1] = EOS
        src[b, n:] = PAD
    return src, tgt


VARIANTS = [
    ("seq2seq_gru", {}),
    ("seq2seq_lstm", {}),
    ("seq2seq_bahdanau", {}),
    ("seq2seq_bahdanau", {"cell": "lstm", "num_layers": 2, "readout": "linear"}),
    ("seq2seq_luong", {}),
    ("seq2seq_luong", {"attention": "dot"}),
    ("seq2seq_luong", {"attention": "concat", "input_feeding": False}),
    ("seq2seq_luong", {"attention": "dot", "bidirectional": False, "bridge": "copy", "cell": "lstm"}),
]


# ----------------------------------------------------------------------------------------------
# attention modules


@pytest.mark.parametrize("kind", ["bahdanau", "dot", "general", "concat"])
@pytest.mark.parametrize("steps", [None, 3])
def test_attention_weights_sum_to_one_and_skip_padding(kind: str, steps: int | None) -> None:
    torch.manual_seed(0)
    B, S, Dq, Dm = 3, 5, 6, 10
    attn = make_attention(kind, Dq, Dm, attn_dim=7)
    memory = torch.randn(B, S, Dm)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 0, 0, 0, 0]], dtype=torch.bool)
    query = torch.randn(B, Dq) if steps is None else torch.randn(B, steps, Dq)
    context, weights = attn(query, memory, mask)
    lead = (B,) if steps is None else (B, steps)
    assert context.shape == (*lead, Dm) and weights.shape == (*lead, S)
    m = mask if steps is None else mask[:, None, :].expand_as(weights)
    assert torch.allclose(weights.sum(-1), torch.ones(lead))
    assert (weights[~m] == 0).all()
    assert (weights[m] > 0).all()
    # the context is the weighted mean of the memory
    expected = torch.stack([weights[b] @ memory[b] for b in range(B)])
    assert torch.allclose(context, expected, atol=1e-6)


def test_attention_steps_at_once_equal_one_at_a_time() -> None:
    torch.manual_seed(1)
    B, S, T, D = 2, 4, 3, 6
    memory, q = torch.randn(B, S, D), torch.randn(B, T, D)
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]], dtype=torch.bool)
    for attn in (AdditiveAttention(D, D, 5), DotAttention(D, D), GeneralAttention(D, D)):
        ctx_all, w_all = attn(q, memory, mask)
        for t in range(T):
            ctx, w = attn(q[:, t], memory, mask, keys=attn.precompute(memory))
            assert torch.allclose(ctx, ctx_all[:, t], atol=1e-6) and torch.allclose(w, w_all[:, t], atol=1e-6)


def test_additive_and_general_scores_follow_the_papers() -> None:
    torch.manual_seed(2)
    B, S, Dq, Dm, A = 2, 4, 3, 5, 6
    q, h = torch.randn(B, Dq), torch.randn(B, S, Dm)
    add = AdditiveAttention(Dq, Dm, A)
    _, w = add(q, h)
    e = (torch.tanh(add.query_proj(q)[:, None] + h @ add.memory_proj.weight.T) @ add.v.weight.T).squeeze(-1)
    assert torch.allclose(w, e.softmax(-1), atol=1e-6)  # v^T tanh(W q + U h_j)
    gen = GeneralAttention(Dq, Dm)
    _, w = gen(q, h)
    e = torch.einsum("bq,qm,bsm->bs", q, gen.W.weight, h)  # q^T W_a h_j
    assert torch.allclose(w, e.softmax(-1), atol=1e-6)
    dot = DotAttention(Dm, Dm)
    q2 = torch.randn(B, Dm)
    _, w = dot(q2, h)
    assert torch.allclose(w, torch.einsum("bd,bsd->bs", q2, h).softmax(-1), atol=1e-6)
    # scaled (attn_scale, seq2seq_luong's default): the same scores divided by sqrt(Dq)
    gen_s = GeneralAttention(Dq, Dm, scale=True)
    gen_s.load_state_dict(gen.state_dict())
    _, w = gen_s(q, h)
    assert torch.allclose(w, (e / Dq**0.5).softmax(-1), atol=1e-6)
    _, w = DotAttention(Dm, Dm, scale=True)(q2, h)
    assert torch.allclose(w, (torch.einsum("bd,bsd->bs", q2, h) / Dm**0.5).softmax(-1), atol=1e-6)


def test_seq2seq_luong_scales_its_scores_by_default() -> None:
    model = create_model("seq2seq_luong", **Seq2SeqConfig.TINY)
    assert model.config.attn_scale and model.attn.scale == pytest.approx(Seq2SeqConfig.TINY["hidden_dim"] ** -0.5)
    assert create_model("seq2seq_luong", attn_scale=False, **Seq2SeqConfig.TINY).attn.scale == 1.0


def test_masked_softmax_of_an_empty_row_is_zero_not_nan() -> None:
    scores = torch.randn(2, 3)
    mask = torch.tensor([[True, False, True], [False, False, False]])
    w = masked_softmax(scores, mask)
    assert torch.isfinite(w).all() and (w[1] == 0).all() and torch.allclose(w[0].sum(), torch.tensor(1.0))


def test_unknown_attention_names_the_choices() -> None:
    with pytest.raises(ValueError, match="bahdanau"):
        make_attention("luong", 4, 4)


# ----------------------------------------------------------------------------------------------
# model: shapes, masking, code paths


@pytest.mark.parametrize("name,options", VARIANTS)
def test_forward_shapes_and_attention(name: str, options: dict) -> None:
    model = tiny(name, **options)
    src, tgt = batch()
    logits, attn = model(src, tgt, return_attention=True)
    assert logits.shape == (4, 6, 19) and attn.shape == (4, 6, 7)
    if model.attn is None:
        assert (attn == 0).all()
    else:
        assert torch.allclose(attn.sum(-1), torch.ones(4, 6), atol=1e-5)
        assert (attn[(src == PAD)[:, None, :].expand_as(attn)] == 0).all()


@pytest.mark.parametrize("name,options", VARIANTS)
def test_padding_changes_nothing(name: str, options: dict) -> None:
    """Extra padding columns and the other sentences of the batch do not change a sentence's logits."""
    model = tiny(name, **options)
    src, tgt = batch()
    ref = model(src, tgt)
    padded = F.pad(src, (0, 3), value=PAD)
    assert torch.allclose(model(padded, tgt), ref, atol=1e-5)
    alone = model(src[2:3, : 7 - 2], tgt[2:3])  # sentence 2 has 5 real tokens
    assert torch.allclose(alone, ref[2:3], atol=1e-5)


@pytest.mark.parametrize("options", [{"attention": "none"}, {"attention": "dot", "input_feeding": False},
                                     {"attention": "concat", "input_feeding": False, "cell": "lstm"}])
def test_parallel_and_stepwise_teacher_forcing_agree(options: dict) -> None:
    model = tiny("seq2seq_luong", **options)
    src, tgt = batch()
    enc = model.encode(src)
    a, wa = model.decode_parallel(enc, tgt)
    b, wb = model.decode_steps(enc, tgt, teacher_forcing=1.0)
    assert torch.allclose(a, b, atol=1e-5)
    if wa is not None:
        assert torch.allclose(wa, wb, atol=1e-6)


@pytest.mark.parametrize("name,options", VARIANTS)
def test_teacher_forcing_zero_feeds_the_models_own_argmax(name: str, options: dict) -> None:
    model = tiny(name, **options)
    src, tgt = batch()
    free = model(src, tgt, teacher_forcing=0.0).argmax(-1)  # (B, T): fed its own previous argmax
    ids = model.greedy(src, tgt.shape[1])
    for b in range(len(src)):
        row = ids[b].tolist()
        n = row.index(EOS) + 1 if EOS in row else len(row)
        assert free[b, :n].tolist() == row[:n]
    forced = model(src, tgt, teacher_forcing=1.0)
    assert not torch.allclose(forced, model(src, tgt, teacher_forcing=0.0))


def test_scheduled_sampling_is_seeded_and_between_the_extremes() -> None:
    model = tiny("seq2seq_bahdanau")
    src, tgt = batch(T=9)
    torch.manual_seed(5)
    a = model(src, tgt, teacher_forcing=0.5)
    torch.manual_seed(5)
    b = model(src, tgt, teacher_forcing=0.5)
    assert torch.equal(a, b)


def test_reverse_source_keeps_eos_last_and_maps_attention_back() -> None:
    model = tiny("seq2seq_bahdanau", reverse_source=True)
    src = torch.tensor([[5, 6, 7, EOS, PAD], [8, 9, EOS, PAD, PAD]])
    perm = model._source_order(src, src != PAD)
    assert src.gather(1, perm).tolist() == [[7, 6, 5, EOS, PAD], [9, 8, EOS, PAD, PAD]]
    _, attn = model(src, torch.tensor([[BOS, 4], [BOS, 5]]), return_attention=True)
    assert (attn[:, :, 4] == 0).all() and (attn[1, :, 3] == 0).all()
    # the reversed model equals the plain one fed reversed sources
    plain = tiny("seq2seq_bahdanau")
    plain.load_state_dict(model.state_dict())
    tgt = torch.tensor([[BOS, 4], [BOS, 5]])
    assert torch.allclose(model(src, tgt), plain(src.gather(1, perm), tgt), atol=1e-6)


def test_bad_configurations_say_what_to_use() -> None:
    with pytest.raises(ValueError, match="bidirectional=False"):
        Seq2Seq(Seq2SeqConfig(bridge="copy", bidirectional=True))
    with pytest.raises(ValueError, match="bidirectional=True"):
        Seq2Seq(Seq2SeqConfig(bridge="backward", bidirectional=False))
    with pytest.raises(ValueError, match="special ids"):
        Seq2Seq(Seq2SeqConfig(src_vocab_size=3))


def test_cells_impl_equals_fast_impl() -> None:
    fast = tiny("seq2seq_luong", cell="lstm", num_layers=2)
    cells = tiny("seq2seq_luong", cell="lstm", num_layers=2, impl="cells")
    cells.load_state_dict(fast.state_dict())
    src, tgt = batch()
    assert torch.allclose(fast(src, tgt), cells(src, tgt), atol=1e-5)


# ----------------------------------------------------------------------------------------------
# decoding


@pytest.mark.parametrize("name,options", VARIANTS)
def test_greedy_equals_beam_size_one(name: str, options: dict) -> None:
    model = tiny(name, **options)
    src, _ = batch(B=5)
    g = model.greedy(src, 8)
    g_attn, g_scores = model.last_attention, model.last_scores
    b = model.beam_search(src, beam_size=1, max_len=8, length_penalty=1.0)
    assert torch.equal(g, b)
    assert torch.allclose(g_scores, model.last_scores, atol=1e-5)
    assert torch.allclose(g_attn, model.last_attention, atol=1e-5)
    assert torch.allclose(model.score(src, g), g_scores, atol=1e-4)


def test_greedy_stops_at_eos_and_pads_after_it() -> None:
    # Row r of the batch emits token 1 until step r, then <eos>.
    def step(prev, t):
        logp = torch.full((3, 5), -5.0)
        logp[:, 1] = -1.0
        logp[torch.arange(3) <= t, EOS] = 0.0
        return logp, t + 1

    ids, score = greedy_search(step, 0, 3, 6, bos_id=BOS, eos_id=EOS, pad_id=PAD)
    assert ids.tolist() == [[EOS, PAD, PAD], [1, EOS, PAD], [1, 1, EOS]]
    assert score.tolist() == [0.0, -1.0, -2.0]
    model = tiny("seq2seq_bahdanau")
    with torch.no_grad():  # <eos> is the argmax at once
        model.out.bias[EOS] += 100.0
    src, _ = batch()
    assert model.greedy(src, 9).tolist() == [[EOS]] * 4
    assert model.last_attention.shape == (4, 1, 7)
    assert torch.allclose(model.last_attention.sum(-1), torch.ones(4, 1), atol=1e-5)


def test_beam_search_on_the_model_returns_valid_sequences() -> None:
    model = tiny("seq2seq_luong")
    src, _ = batch(B=3)
    ids = model.beam_search(src, beam_size=4, max_len=7, length_penalty=0.6)
    assert ids.shape[0] == 3 and ids.shape[1] <= 7
    assert model.last_attention.shape == (3, ids.shape[1], src.shape[1])
    assert torch.allclose(model.score(src, ids), model.last_scores, atol=1e-4)
    alone = model.beam_search(src[1:2, :6], beam_size=4, max_len=7, length_penalty=0.6)  # batching is exact
    assert alone[0].tolist() == ids[1, : alone.shape[1]].tolist()


class ToyLM:
    """A bigram table over tokens {0 pad, 1 a, 2 bos, 3 eos, 4 b}: the next-token distribution
    depends on the previous token only (the state carries nothing)."""

    def __init__(self, table: dict[int, dict[int, float]]) -> None:
        V = 5
        self.logp = torch.full((V, V), float("-inf"))
        for prev, row in table.items():
            for tok, p in row.items():
                self.logp[prev, tok] = math.log(p)

    def step(self, prev: torch.Tensor, state):
        return self.logp[prev], state

    @staticmethod
    def reorder(state, rows):
        return state

    def score(self, seq: list[int]) -> float:
        prev, total = BOS, 0.0
        for t in seq:
            total += float(self.logp[prev, t])
            prev = t
            if t == EOS:
                break
        return total


def toy_search(lm: ToyLM, k: int, alpha: float = 0.0, max_len: int = 6, norm: str = "simple"):
    kw = dict(bos_id=BOS, eos_id=EOS, pad_id=PAD)
    if k == 0:
        return greedy_search(lm.step, None, 1, max_len, **kw)
    return beam_search(lm.step, None, 1, k, max_len, length_penalty=alpha, length_norm=norm, reorder=lm.reorder, **kw)


def test_beam_search_beats_greedy_on_a_garden_path() -> None:
    # Greedy takes "a" (0.6) but everything after "a" is unlikely; "b <eos>" has p = 0.4 * 0.9.
    lm = ToyLM({BOS: {1: 0.6, 4: 0.4}, 1: {1: 0.4, 4: 0.3, EOS: 0.3}, 4: {EOS: 0.9, 1: 0.1}})
    g, g_score = toy_search(lm, 0)
    b, b_score = toy_search(lm, 2)
    assert g[0].tolist()[:2] == [1, 1]  # a a ...
    assert b[0].tolist() == [4, EOS]
    assert b_score.item() == pytest.approx(math.log(0.4 * 0.9), abs=1e-5)
    assert b_score.item() > g_score.item() + 0.5
    assert lm.score(b[0].tolist()) == pytest.approx(b_score.item(), abs=1e-5)


def test_length_penalty_prefers_longer_hypotheses() -> None:
    # "<eos>" at once: p = 0.3; "a b <eos>" (3 tokens): p = 0.7 * 0.6 * 0.6 = 0.252.
    lm = ToyLM({BOS: {EOS: 0.3, 1: 0.7}, 1: {4: 0.6, EOS: 0.4}, 4: {EOS: 0.6, 1: 0.4}})
    short, s_score = toy_search(lm, 3, alpha=0.0)
    assert short[0].tolist() == [EOS] and s_score.item() == pytest.approx(math.log(0.3), abs=1e-5)
    longer, l_score = toy_search(lm, 3, alpha=1.0)
    # normalised: log(0.3) / 1 = -1.20 < log(0.252) / 3 = -0.46; and "a <eos>": log(0.28) / 2 = -0.64
    assert longer[0].tolist() == [1, 4, EOS]
    assert l_score.item() == pytest.approx(math.log(0.252), abs=1e-5)
    gnmt, _ = toy_search(lm, 3, alpha=1.0, norm="gnmt")  # -1.20 / 1, -1.27 / (7/6), -1.38 / (8/6)
    assert gnmt[0].tolist() == [1, 4, EOS]
    assert length_normalizer(3, 1.0, "gnmt") == pytest.approx(8 / 6)
    assert length_normalizer(3, 0.0) == 1.0


def test_beam_search_returns_unfinished_hypotheses_at_max_len() -> None:
    lm = ToyLM({BOS: {1: 1.0}, 1: {1: 1.0}})  # never ends
    ids, score = toy_search(lm, 2, max_len=4)
    assert ids[0].tolist() == [1, 1, 1, 1] and score.item() == pytest.approx(0.0, abs=1e-6)
    g, _ = toy_search(lm, 0, max_len=4)
    assert g[0].tolist() == [1, 1, 1, 1]


def test_beam_search_does_not_stop_while_a_live_beam_can_still_win() -> None:
    # Next-token probabilities by step and previous token; the state is the step index.
    # Two poor hypotheses ("b <eos>": 0.27, "a a <eos>": 0.149) finish before the best one,
    # "a a a <eos>" (0.343): stopping as soon as K = 2 have finished would return "b <eos>".
    tables = [{BOS: {1: 0.5, 4: 0.3, EOS: 0.2}},
              {1: {1: 0.99, EOS: 0.01}, 4: {EOS: 0.9, 1: 0.1}},
              {1: {1: 0.7, EOS: 0.3}, 4: {EOS: 1.0}},
              {1: {EOS: 0.99, 1: 0.01}, 4: {EOS: 1.0}}]
    logp = torch.full((len(tables), 5, 5), float("-inf"))
    for t, table in enumerate(tables):
        for prev, row in table.items():
            for tok, p in row.items():
                logp[t, prev, tok] = math.log(p)

    def step(prev, t):
        return logp[min(t, len(tables) - 1), prev], t + 1

    ids, score = beam_search(step, 0, 1, 2, 6, bos_id=BOS, eos_id=EOS, pad_id=PAD, length_penalty=0.0,
                             reorder=lambda state, rows: state)
    assert ids[0].tolist() == [1, 1, 1, EOS]
    assert score.item() == pytest.approx(math.log(0.5 * 0.99 * 0.7 * 0.99), abs=1e-5)
