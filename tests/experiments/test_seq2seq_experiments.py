"""The seq2seq experiments (``seq2seq-attention``, ``seq2seq-beam-width``, ``seq2seq-teacher-forcing``)
in quick mode, their helpers, and one check of the science: a wider beam finds outputs of higher
model probability than greedy decoding."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _report_checks import check_quick_report

from archlab.experiments import seq2seq_experiments as sx

EXPERIMENTS = {
    "seq2seq-attention": ("bleu_by_length.png", "training_curves.png", "attention.png"),
    "seq2seq-beam-width": ("beam_width.png",),
    "seq2seq-teacher-forcing": ("teacher_forcing.png",),
}


def test_registered_in_family_rnn():
    from archlab.registry import EXPERIMENTS as REG

    assert set(EXPERIMENTS) <= set(REG.names(family="rnn"))
    assert REG.get("seq2seq-beam-width").fn is sx.seq2seq_beam_width


@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_quick_mode_writes_report(name, quick_run):
    res, out = quick_run(name)
    check_quick_report(res, out, EXPERIMENTS[name])


def test_attention_quick_results(quick_run):
    res, _ = quick_run("seq2seq-attention")
    assert [r["registered name"] for r in res["rows"]] == [name for _, name in sx.ATTENTION_MODELS]
    assert set(res["bleu"]) == {label for label, _ in sx.ATTENTION_MODELS}
    assert all(0.0 <= b <= 100.0 for b in res["bleu"].values())
    # Every test sentence falls in exactly one length bucket.
    n_test = sx.QUICK["data_options"]["n_samples"] // 10
    assert sum(r["sentences"] for r in res["by_length"]) == n_test
    assert res["examples"] and len(res["examples"]) <= 3


def test_teacher_forcing_quick_results(quick_run):
    res, _ = quick_run("seq2seq-teacher-forcing")
    assert [r["teacher forcing"] for r in res["rows"]] == list(sx.TF_RATIOS)
    for p, curve in res["curves"].items():
        assert [c["epoch"] for c in curve] == list(range(sx.TF_QUICK["epochs"] + 1)), p  # before training, then each epoch
        assert all(np.isfinite(c["tf_loss"]) and np.isfinite(c["free_loss"]) for c in curve)
        assert all(0.0 <= c["free_acc"] <= 1.0 for c in curve)


def test_beam_search_finds_more_probable_outputs_than_greedy(quick_run):
    """The science at small scale: ranked by raw log-probability (alpha 0), beams of 2-10 pick outputs the
    model scores at least as high on average as greedy decoding's (a broken beam search would not)."""
    res, _ = quick_run("seq2seq-beam-width")
    raw = {e["beam"]: e for e in res["results"] if e["alpha"] == 0.0}
    assert sorted(raw) == list(sx.BEAM_WIDTHS)
    for k in sx.BEAM_WIDTHS[1:]:
        assert raw[k]["mean_logprob"] >= raw[1]["mean_logprob"] - 1e-6, k
    assert raw[10]["mean_logprob"] > raw[1]["mean_logprob"] + 1e-3  # strictly better somewhere
    # Greedy does not depend on the length penalty; the scores are log-probabilities.
    greedy = [e for e in res["results"] if e["beam"] == 1]
    assert len({e["bleu"] for e in greedy}) == 1
    assert all(e["mean_logprob"] <= 0.0 and e["ms_per_sentence"] > 0 for e in res["results"])


def test_decode_split_matches_the_task_decoder():
    """decode_split (texts, lengths, scores) agrees with Seq2SeqTask.decode_split and model.score."""
    from archlab.data import load_dataset
    from archlab.data.base import TensorLoader
    from archlab.registry import create_model
    from archlab.tasks.seq2seq import Seq2SeqTask

    bundle = load_dataset("seq2seq_synthetic", n_samples=60, max_len=6)
    info = bundle.info
    torch.manual_seed(0)
    net = create_model("seq2seq_bahdanau", data_info=info, embed_dim=8, hidden_dim=12).eval()
    task = Seq2SeqTask(net, src_vocab=info.vocab, tgt_vocab=info.target_vocab)
    ref = task.decode_split(TensorLoader(bundle.test, 4))
    d = sx.decode_split(net, bundle.test, info.target_vocab, batch_size=4)
    assert d["hyp"] == ref["hyp"] and d["ref"] == ref["ref"] and d["src_len"] == ref["src_len"]
    assert d["ref_len"] == [len(r) for r in d["ref"]]  # characters
    assert d["out_len"] == [len(h) for h in d["hyp"]]
    ids = net.greedy(bundle.test.x[:3], bundle.test.y.shape[1] - 1)
    torch.testing.assert_close(torch.tensor(d["score"][:3]), net.score(bundle.test.x[:3], ids), atol=1e-4, rtol=0)


def test_attention_examples_rows_sum_to_one():
    from archlab.data import load_dataset
    from archlab.registry import create_model

    bundle = load_dataset("seq2seq_synthetic", n_samples=60, max_len=6)
    info = bundle.info
    torch.manual_seed(0)
    net = create_model("seq2seq_luong", data_info=info, embed_dim=8, hidden_dim=12).eval()
    rows = sx.attention_examples(net, bundle.test, [0, 1], info.vocab, info.target_vocab, "Luong")
    for row in rows:
        a = row["attention"]
        assert a.shape == (len(row["output_tokens"]), len(row["source_tokens"]))
        assert row["source_tokens"][-1] == "<eos>" and row["title"].startswith("Luong")
        np.testing.assert_allclose(a.sum(1), 1.0, atol=1e-5)


def test_pick_examples_and_data_choice(tmp_path, monkeypatch):
    assert sx._pick_examples([3, 9, 7, 12, 8, 2], 7, 12, 2) == [2, 3]  # shortest and longest in range
    assert sx._pick_examples([3, 4], 7, 12, 5) == [0, 1]  # nothing in range: whatever there is
    for var in ("ARCHLAB_DATA", "ARCHLAB_SHARED_DATA"):
        monkeypatch.delenv(var, raising=False)
    (tmp_path / "fra_eng").mkdir()
    assert sx.fra_eng_root(tmp_path) == str(tmp_path)
    setup, root = sx._setup_for(False, "seq2seq_synthetic", str(tmp_path), sx.FRA_ENG, sx.REVERSE_LONG)
    assert setup["dataset"] == "seq2seq_synthetic" and root is None
    setup, root = sx._setup_for(False, None, str(tmp_path), sx.FRA_ENG, sx.REVERSE_LONG)
    assert setup["dataset"] == "fra_eng" and root == str(tmp_path)
    with pytest.raises(ValueError, match="fra_eng"):
        sx._setup_for(False, "mnist", None, sx.FRA_ENG, sx.REVERSE_LONG)


def test_attention_stats_tell_diagonal_reversal_and_collapse():
    """End share and order correlation on hand-made attention: diagonal, anti-diagonal, collapsed."""
    from types import SimpleNamespace

    S = 6  # 5 words + <eos>; one padded column
    src = torch.tensor([[5, 6, 7, 8, 9, 3, 0]])  # (1, 7)
    eye = torch.eye(S)
    diag = torch.zeros(1, S, 7)
    diag[0, :, :S] = eye  # output i reads source i; the last row (<eos>) reads <eos>
    rev = torch.zeros(1, S, 7)
    rev[0, :5, :5] = eye[:5, :5].flip(1)
    rev[0, 5, 5] = 1.0
    end = torch.zeros(1, S, 7)
    end[0, :, 4] = 1.0  # everything on the last word
    model = SimpleNamespace(config=SimpleNamespace(attention="bahdanau", pad_id=0))
    out = {}
    for name, attn in (("diag", diag), ("rev", rev), ("end", end)):
        model.last_attention = attn
        out[name] = sx._attention_stats(model, src)
    assert out["diag"][1][0] == pytest.approx(1.0) and out["rev"][1][0] == pytest.approx(-1.0)
    assert out["diag"][0][0] == pytest.approx(2 / 6)  # rows 4 and 5 sit on the last word and <eos>
    assert out["end"][0][0] == pytest.approx(1.0) and np.isnan(out["end"][1][0])  # no movement: no order
    model.config.attention = "none"
    share, order = sx._attention_stats(model, src)
    assert np.isnan(share[0]) and np.isnan(order[0])
