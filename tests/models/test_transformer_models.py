"""The encoder-decoder Transformer and the encoder text classifier: caches, masks, search, learning."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F

from archlab.data.text import trim_padding
from archlab.models.transformer import classifier as _classifier  # noqa: F401  (registers the models)
from archlab.models.transformer import translator as _translator  # noqa: F401
from archlab.models.transformer.translator import Transformer
from archlab.registry import create_model

PAD, BOS, EOS = 0, 2, 3


def tiny(seed: int = 0, **options) -> Transformer:
    torch.manual_seed(seed)
    sizes = dict(src_vocab_size=17, tgt_vocab_size=19, dim=32, num_heads=4, ff_dim=64, max_len=9, dropout=0.0)
    sizes.update(options)
    return create_model("transformer_tiny", **sizes).eval()


def no_specials(model: Transformer) -> Transformer:
    """An untrained model with an output layer that never writes <pad>, <unk> or <bos> (like a trained one)."""
    out = torch.nn.Linear(model.config.dim, model.config.tgt_vocab_size)
    with torch.no_grad():
        out.weight.copy_(model.out.weight)
        out.bias.zero_()
        out.bias[:BOS + 1] = -1e4
    model.out = out
    return model


def batch(B: int = 4, S: int = 7, T: int = 6, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Sources of lengths S, S-1, S-2 (``.. <eos> <pad>..``) and decoder inputs ``<bos> ..``."""
    g = torch.Generator().manual_seed(seed)
    src = torch.randint(4, 17, (B, S), generator=g)
    tgt = torch.randint(4, 19, (B, T), generator=g)
    tgt[:, 0] = BOS
    for b in range(B):
        n = S - (b % 3)
        src[b, n - 1] = EOS
        src[b, n:] = PAD
    return src, tgt


# ----------------------------------------------------------------------------------------------
# translator: the decoder's two code paths, masks, search


@pytest.mark.parametrize("options", [{}, {"norm_first": True}, {"pos": "learned", "impl": "math"},
                                     {"share_embeddings": True, "src_vocab_size": 19, "tie_output": False}])
def test_incremental_decoding_with_the_kv_cache_equals_teacher_forcing(options) -> None:
    model = tiny(**options)
    src, tgt = batch()
    with torch.no_grad():
        full = model(src, tgt)  # (B, T, V): all positions at once, causal mask
        memory, mask = model.encode(src)
        state = model.init_state(memory, mask)
        steps = [model.decode(tgt[:, t: t + 1], memory, mask, state=state)[0] for t in range(tgt.shape[1])]
    assert state.cache.length == tgt.shape[1]
    torch.testing.assert_close(torch.cat(steps, dim=1), full, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("tie_output", [True, False])
def test_greedy_equals_beam_search_with_one_beam(tie_output) -> None:
    model = no_specials(tiny(seed=1, tie_output=tie_output))
    src, _ = batch(B=5)
    greedy = model.greedy(src, max_len=8)
    g_scores, g_attn = model.last_scores.clone(), model.last_attention.clone()
    beam = model.beam_search(src, beam_size=1, max_len=8)
    assert len(set(greedy.flatten().tolist())) > 2  # not one constant output
    assert torch.equal(greedy, beam)
    torch.testing.assert_close(model.last_scores, g_scores, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(model.last_attention, g_attn, atol=1e-5, rtol=1e-5)  # recorded == recomputed


def test_beam_search_scores_at_least_greedy_and_match_score() -> None:
    model = no_specials(tiny(seed=2, tie_output=False))
    src, _ = batch(B=6, seed=3)
    greedy = model.greedy(src, max_len=8)
    g_scores = model.last_scores.clone()
    beam = model.beam_search(src, beam_size=4, max_len=8, length_penalty=0.0)  # raw log-probabilities
    assert (model.last_scores >= g_scores - 1e-5).all() and (model.last_scores > g_scores + 1e-3).any()
    torch.testing.assert_close(model.score(src, beam), model.last_scores, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(model.score(src, greedy), g_scores, atol=1e-4, rtol=1e-4)
    assert model.last_attention.shape == (*beam.shape, src.shape[1])


def test_source_padding_does_not_change_the_outputs() -> None:
    model = tiny(seed=3)
    src, tgt = batch(B=3)
    with torch.no_grad():
        logits = model(src, tgt)
        padded = model(F.pad(src, (0, 5), value=PAD), tgt)  # five more padding columns
        torch.testing.assert_close(padded, logits, atol=1e-5, rtol=1e-5)
        for b in range(3):  # each sentence alone, without any padding, gives its row of the batch
            alone = model(trim_padding(src[b: b + 1], PAD), tgt[b: b + 1])
            torch.testing.assert_close(alone, logits[b: b + 1], atol=1e-5, rtol=1e-5)
    assert torch.equal(model.greedy(F.pad(src, (0, 5), value=PAD), 8), model.greedy(src, 8))


def test_cross_attention_is_a_distribution_over_the_real_source_tokens() -> None:
    model = tiny(seed=4)
    src, tgt = batch()
    logits, attn = model(src, tgt, return_attention=True)
    assert logits.shape == (4, 6, 19) and attn.shape == (4, 6, 7)
    torch.testing.assert_close(attn.sum(-1), torch.ones(4, 6), atol=1e-5, rtol=1e-5)
    assert (attn.masked_select((src == PAD)[:, None, :].expand_as(attn)) == 0).all()
    tokens = model.greedy(src, 6)
    assert model.last_attention.shape == (4, tokens.shape[1], 7)
    assert (model.last_attention[tokens == PAD] == 0).all()  # rows after <eos>


def test_translator_options_and_errors() -> None:
    shared = tiny(share_embeddings=True, tgt_vocab_size=17)
    assert shared.src_embed is shared.tgt_embed and shared.out.weight is shared.tgt_embed.weight
    untied = tiny(tie_output=False)
    assert untied.out.weight is not untied.tgt_embed.weight
    src, tgt = batch()
    with pytest.raises(ValueError, match="teacher_forcing"):
        tiny()(src, tgt, teacher_forcing=0.5)
    with pytest.raises(ValueError, match="share_embeddings"):
        tiny(share_embeddings=True)  # 17 source vs 19 target ids
    with pytest.raises(ValueError, match="max_positions"):
        tiny(max_positions=5)(src, tgt)
    with pytest.raises(ValueError, match="divisible"):
        tiny(dim=30)
    for norm_first, pos, activation in itertools.product([False, True], ["sinusoidal", "learned"], ["relu", "gelu"]):
        model = tiny(norm_first=norm_first, pos=pos, activation=activation, dropout=0.1).train()
        model(src, tgt).float().square().mean().backward()
        assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_learns_to_reverse_strings() -> None:
    """seq2seq_synthetic's reversal: near-perfect token accuracy and mostly exact greedy outputs."""
    from archlab.data.text_datasets import seq2seq_synthetic

    torch.manual_seed(0)
    data = seq2seq_synthetic(n_samples=2000, max_len=6, alphabet="abcdef")
    model = create_model("transformer_tiny", data.info, dim=64, ff_dim=128, dropout=0.0)
    opt = torch.optim.Adam(model.parameters(), lr=5e-3, betas=(0.9, 0.98))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min((s + 1) / 15, (15 / (s + 1)) ** 0.5))
    x, y = data.train.x, data.train.y
    vx, vy = data.val.x, data.val.y
    g = torch.Generator().manual_seed(0)
    acc = 0.0
    for step in range(1, 401):
        i = torch.randint(0, len(x), (64,), generator=g)
        logits = model(x[i], y[i, :-1])
        loss = F.cross_entropy(logits.flatten(0, 1), y[i, 1:].flatten(), ignore_index=PAD)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % 25 == 0:
            model.eval()
            with torch.no_grad():
                real = vy[:, 1:] != PAD
                acc = float(((model(vx, vy[:, :-1]).argmax(-1) == vy[:, 1:]) & real).sum() / real.sum())
            model.train()
            if acc > 0.98:
                break
    assert acc > 0.98, f"token accuracy {acc:.3f} after {step} steps"
    model.eval()
    out = model.greedy(vx, vy.shape[1] - 1)
    out = F.pad(out, (0, vy.shape[1] - 1 - out.shape[1]), value=PAD)
    exact = float((out == vy[:, 1:]).all(dim=1).float().mean())
    assert exact > 0.85, f"exact greedy reversals {exact:.3f}"
    beam = model.beam_search(vx, 3, vy.shape[1] - 1)
    beam = F.pad(beam, (0, vy.shape[1] - 1 - beam.shape[1]), value=PAD)
    assert float((beam == vy[:, 1:]).all(dim=1).float().mean()) > 0.85


def test_drop_in_for_the_seq2seq_task_and_translate(tmp_path) -> None:
    """Seq2SeqTask trains it, scores BLEU with greedy and beam search, and translates raw text."""
    import archlab
    from archlab.data.text_datasets import seq2seq_synthetic
    from archlab.tasks.seq2seq import Seq2SeqTask

    run = archlab.train("transformer_tiny", data="seq2seq_synthetic", overrides={
        "train.epochs": 1, "train.max_steps": 3, "train.batch_size": 16, "train.beam_size": 2,
        "train.label_smoothing": 0.1, "model.dim": 16, "model.ff_dim": 32, "data.options.n_samples": 120,
        "run.out_dir": str(tmp_path), "system.progress": False, "system.tensorboard": False, "run.report": False})
    assert run.status == "completed"
    assert {"test/bleu", "test/bleu_beam", "test/exact", "test/ppl", "test/acc"} <= set(run.metrics)
    data = seq2seq_synthetic(n_samples=40)
    task = Seq2SeqTask(create_model("transformer_tiny", data.info, dim=16, ff_dim=32), src_vocab=data.info.vocab,
                       tgt_vocab=data.info.target_vocab, beam_size=2)
    for beam in (1, 2):
        rows = task.translate_with_attention(["abc", "fedcb"], beam_size=beam, max_len=6)
        assert rows[1]["attention"].shape == (len(rows[1]["output_tokens"]), 6)  # 5 letters + <eos>


# ----------------------------------------------------------------------------------------------
# classifier


def tiny_classifier(seed: int = 0, **options) -> torch.nn.Module:
    torch.manual_seed(seed)
    sizes = dict(vocab_size=30, num_classes=3, max_len=10, dim=16, num_heads=2, ff_dim=32, dropout=0.0)
    sizes.update(options)
    return create_model("transformer_classifier", **sizes).eval()


def ids(B: int = 4, T: int = 10, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(4, 30, (B, T), generator=g)
    for b in range(B):
        x[b, T - 2 * b:] = PAD  # lengths T, T-2, T-4, ...
    return x


OPTIONS = [dict(pos=p, pooling=q, norm_first=n) for p, q, n in itertools.product(
    ["sinusoidal", "learned", "rotary", "none"], ["mean", "cls"], [False, True])]


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: "-".join(str(v) for v in o.values()))
def test_classifier_options_build_and_ignore_padding(options) -> None:
    model = tiny_classifier(**options)
    x = ids()
    with torch.no_grad():
        logits = model(x)
        assert logits.shape == (4, 3) and torch.isfinite(logits).all()
        for b in range(4):
            alone = model(trim_padding(x[b: b + 1], PAD))  # no padding at all
            torch.testing.assert_close(alone, logits[b: b + 1], atol=1e-5, rtol=1e-5)
    model = tiny_classifier(dropout=0.1, attention_dropout=0.1, **options).train()
    model(x).square().mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_classifier_attention_maps() -> None:
    for pooling, extra in (("mean", 0), ("cls", 1)):
        model = tiny_classifier(pooling=pooling, num_layers=3)
        x = ids()
        maps = model.attention_maps(x)
        T = x.shape[1] + extra
        assert len(maps) == 3 and all(m.shape == (4, 2, T, T) for m in maps)
        real = torch.cat([torch.ones(4, extra, dtype=torch.bool), x != PAD], dim=1)  # (B, T') keys
        for m in maps:
            sums = m.sum(-1)[real[:, None, :].expand(4, 2, T)]  # rows of the queries at real tokens
            torch.testing.assert_close(sums, torch.ones_like(sums))
            assert (m.masked_select(~real[:, None, None, :].expand_as(m)) == 0).all()  # no weight on padding


def test_classifier_without_positions_is_a_bag_of_words_and_fast_equals_math() -> None:
    x = ids(B=2)
    perm = torch.randperm(10, generator=torch.Generator().manual_seed(1))  # row 0 has no padding
    bag = tiny_classifier(pos="none")
    shuffled = x[0:1, perm]
    torch.testing.assert_close(bag(shuffled), bag(x[0:1]), atol=1e-5, rtol=1e-5)
    ordered = tiny_classifier(pos="sinusoidal")
    assert not torch.allclose(ordered(shuffled), ordered(x[0:1]), atol=1e-4)
    for pos in ("sinusoidal", "rotary"):
        fast, math_ = tiny_classifier(pos=pos, impl="fast"), tiny_classifier(pos=pos, impl="math")
        math_.load_state_dict(fast.state_dict())
        torch.testing.assert_close(math_(x), fast(x), atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="max_len"):
        tiny_classifier()(torch.ones(1, 11, dtype=torch.long))
    with pytest.raises(ValueError, match="even"):
        tiny_classifier(pos="rotary", dim=18, num_heads=2)


def test_classifier_learns_the_sentiment_set() -> None:
    """The embedded sentiment sentences (negation, "but"): above 90% validation accuracy."""
    from archlab.data.text_datasets import sentiment

    torch.manual_seed(0)
    data = sentiment(n_samples=4000)
    model = create_model("transformer_classifier", data.info, dim=64, ff_dim=128, dropout=0.0)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    x, y = data.train.x, data.train.y
    vx, vy = trim_padding(data.val.x, PAD), data.val.y
    g = torch.Generator().manual_seed(0)
    acc = 0.0
    for step in range(1, 501):
        i = torch.randint(0, len(x), (32,), generator=g)
        loss = F.cross_entropy(model(trim_padding(x[i], PAD)), y[i])
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 25 == 0:
            model.eval()
            with torch.no_grad():
                acc = float((model(vx).argmax(-1) == vy).float().mean())
            model.train()
            if acc > 0.92:
                break
    assert acc > 0.9, f"validation accuracy {acc:.3f} after {step} steps"
