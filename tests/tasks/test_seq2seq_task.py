"""The seq2seq task: loss and token accuracy, BLEU, learning the reverse task, translate, heat maps."""

from __future__ import annotations

import math
import time
from types import SimpleNamespace

import pytest
import torch

from archlab.config import RunConfig
from archlab.data.base import ArraySplit, DataBundle, DatasetInfo, TensorLoader
from archlab.data.text import BucketLoader, Vocab
from archlab.registry import create_model, list_datasets
from archlab.tasks import build_task
from archlab.tasks.seq2seq import Seq2SeqTask, bleu_by_length, bleu_tokenize_for, corpus_bleu, decode_ids

PAD, BOS, EOS = 0, 2, 3


def fake_trainer(**train: object) -> SimpleNamespace:
    cfg = RunConfig()
    cfg.train.batch_size = 4
    cfg.data.eval_batch_size = 8
    for k, v in train.items():
        setattr(cfg.train, k, v)
    return SimpleNamespace(cfg=cfg, fabric=SimpleNamespace(device=torch.device("cpu"), global_rank=0, world_size=1))


def reverse_bundle(n: int = 400, seed: int = 0) -> DataBundle:
    """Strings of 2-5 letters over 'abcdef' -> reversed; a char vocab shared by both sides."""
    vocab = Vocab.from_tokens(list("abcdef"), "char")
    g = torch.Generator().manual_seed(seed)
    xs, ys = [], []
    for _ in range(n):
        k = int(torch.randint(2, 6, (1,), generator=g))
        s = "".join("abcdef"[int(i)] for i in torch.randint(0, 6, (k,), generator=g))
        xs.append(vocab.encode(s, add_eos=True))
        ys.append(vocab.encode(s[::-1], add_bos=True, add_eos=True))
    from archlab.data.text import pad_sequences

    x, y = pad_sequences(xs), pad_sequences(ys)
    info = DatasetInfo("toy_reverse", "seq2seq", (x.shape[1],), vocab=vocab, target_vocab=vocab)
    cut = int(0.8 * n)
    return DataBundle(info, ArraySplit(x[:cut], y[:cut]), ArraySplit(x[cut:], y[cut:]), ArraySplit(x[cut:], y[cut:]))


def tiny_task(bundle: DataBundle, name: str = "seq2seq_bahdanau", seed: int = 0, **train: object) -> Seq2SeqTask:
    torch.manual_seed(seed)
    model = create_model(name, bundle.info, embed_dim=16, hidden_dim=32)
    cfg = RunConfig()
    for k, v in train.items():
        setattr(cfg.train, k, v)
    task = build_task(model, bundle.info, cfg)
    assert isinstance(task, Seq2SeqTask)
    return task


# ----------------------------------------------------------------------------------------------
# BLEU


def test_corpus_bleu_matches_sacrebleu_and_the_formula() -> None:
    import sacrebleu

    assert corpus_bleu(["the cat sat on the mat"], ["the cat sat on the mat"]) == pytest.approx(100.0)
    # p1 = 3/4, p2 = 2/3, p3 = 1/2, p4 = 0/1 -> sacrebleu's "exp" smoothing gives p4 = 1/2; BP = 1
    expected = 100 * (0.75 * (2 / 3) * 0.5 * 0.5) ** 0.25
    assert corpus_bleu(["a b c d"], ["a b c e"]) == pytest.approx(expected, abs=1e-4)
    hyps = ["il fait beau .", "je suis content", "nous sommes partis ."]
    refs = ["il fait beau aujourd'hui .", "je suis très content", "nous sommes partis ."]
    assert corpus_bleu(hyps, refs) == pytest.approx(sacrebleu.corpus_bleu(hyps, [refs]).score)
    assert corpus_bleu([], []) == 0.0
    with pytest.raises(ValueError, match="2 hypotheses but 1 references"):
        corpus_bleu(["a", "b"], ["a"])
    rows = bleu_by_length(hyps, refs, [3, 3, 12], edges=(5, 10))
    assert [(r["lengths"], r["n"]) for r in rows] == [("1-5", 2), (">10", 1)]
    assert rows[1]["bleu"] == pytest.approx(100.0)


def test_char_vocabs_get_character_bleu() -> None:
    char = Vocab.from_tokens(list("abc"), "char")
    word = Vocab.from_tokens(["a", "b"], "word")
    assert bleu_tokenize_for(char) == "char" and bleu_tokenize_for(word) == "13a" and bleu_tokenize_for(None) == "13a"
    assert decode_ids(char, [4, 5, EOS, 6]) == "ab"
    assert decode_ids(None, [BOS, 7, 8, EOS, 9]) == "7 8"


# ----------------------------------------------------------------------------------------------
# steps


def test_steps_trim_padding_and_ignore_it_in_the_loss() -> None:
    bundle = reverse_bundle(20)
    task = tiny_task(bundle)
    x, y = bundle.train.x[:4], bundle.train.y[:4]
    wide = (torch.nn.functional.pad(x, (0, 4)), torch.nn.functional.pad(y, (0, 4)))
    a, b = task.validation_step((x, y)), task.validation_step(wide)
    assert torch.allclose(a["loss"], b["loss"]) and torch.allclose(a["acc"], b["acc"])
    src, tgt_in, tgt_out = task._split(wide)
    assert tgt_in[:, 0].eq(BOS).all() and torch.equal(tgt_in[:, 1:], tgt_out[:, :-1])
    logits = task.model(src, tgt_in)
    real = tgt_out != PAD
    manual = torch.nn.functional.cross_entropy(logits[real], tgt_out[real])
    assert torch.allclose(a["loss"], manual, atol=1e-6)
    assert math.isclose(float(a["acc"]), float((logits.argmax(-1)[real] == tgt_out[real]).float().mean()), abs_tol=1e-6)


def test_training_uses_the_teacher_forcing_ratio() -> None:
    bundle = reverse_bundle(20)
    forced, free = tiny_task(bundle), tiny_task(bundle, teacher_forcing=0.0)
    assert forced.teacher_forcing == 1.0 and free.teacher_forcing == 0.0
    free.model.load_state_dict(forced.model.state_dict())
    forced.model.eval(), free.model.eval()
    batch = (bundle.train.x[:8], bundle.train.y[:8])
    assert not torch.allclose(forced.training_step(batch)["loss"], free.training_step(batch)["loss"])
    assert torch.allclose(forced.validation_step(batch)["loss"], free.validation_step(batch)["loss"])


def test_task_checks_model_and_data() -> None:
    bundle = reverse_bundle(20)
    with pytest.raises(ValueError, match="not a sequence-to-sequence model"):
        Seq2SeqTask(torch.nn.Linear(2, 2))
    info = DatasetInfo("toy", "text", (5,))
    with pytest.raises(ValueError, match="seq2seq dataset"):
        Seq2SeqTask.from_config(create_model("seq2seq_gru", bundle.info), info, RunConfig())


def test_loaders_bucket_the_training_split_only() -> None:
    bundle = reverse_bundle(40)
    task = tiny_task(bundle)
    train, val, test = task.make_loaders(bundle, fake_trainer())
    assert isinstance(train, BucketLoader) and type(val) is TensorLoader and type(test) is TensorLoader
    task.bucket_by_length = False
    assert type(task.make_loaders(bundle, fake_trainer())[0]) is TensorLoader


# ----------------------------------------------------------------------------------------------
# learning, BLEU, translate, heat maps


def test_bahdanau_learns_to_reverse_strings(tmp_path) -> None:
    torch.set_num_threads(1)
    bundle = reverse_bundle(600)
    torch.manual_seed(0)
    model = create_model("seq2seq_bahdanau", bundle.info, embed_dim=32, hidden_dim=64)
    task = Seq2SeqTask.from_config(model, bundle.info, RunConfig())
    task.beam_size = 3
    epochs, train = 4, BucketLoader(bundle.train, 16, shuffle=True, seed=0)
    opt = torch.optim.Adam(task.model.parameters(), lr=1e-2)
    total = epochs * len(train)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: max(0.0, 1 - i / total))  # 120 steps, linear decay
    t0 = time.perf_counter()
    task.model.train()
    for epoch in range(epochs):
        train.set_epoch(epoch)
        for batch in train:
            out = task.training_step(batch)
            opt.zero_grad()
            out["loss"].backward()
            torch.nn.utils.clip_grad_norm_(task.model.parameters(), 1.0)
            opt.step()
            sched.step()
    task.model.eval()
    val = TensorLoader(bundle.val, 64)
    with torch.no_grad():
        acc = sum(float(task.validation_step(b)["acc"]) * len(b[0]) for b in val) / len(bundle.val)
        metrics = task.final_metrics(val, "val")
    elapsed = time.perf_counter() - t0
    assert acc > 0.95, f"token accuracy {acc:.3f} after {elapsed:.1f}s"
    assert set(metrics) == {"bleu", "bleu_beam", "exact", "ppl"}
    assert metrics["bleu"] > 90 and metrics["bleu_beam"] > 90 and metrics["exact"] > 0.85, metrics
    assert 1.0 <= metrics["ppl"] < 1.2
    sample = task.samples["val"][0]
    assert set(sample) == {"source", "reference", "greedy", "beam"}
    # raw text: a known string, unknown characters, an empty and an over-long string (cut to max_len)
    out = task.translate(["abcd", "abzz", "", "abcdef" * 10])
    assert out[0] == "dcba" and out[3] == "edcba" and all(isinstance(t, str) for t in out)
    rows = task.translate_with_attention("abcde", beam_size=2)
    assert rows[0]["translation"] == "edcba"
    assert rows[0]["source_tokens"] == list("abcde") + ["<eos>"]
    assert rows[0]["output_tokens"] == list("edcba") + ["<eos>"]
    attn = rows[0]["attention"]
    assert attn.shape == (6, 6)
    # a reversal's attention is mostly the anti-diagonal: output i looks at source 4 - i
    assert sum(int(attn[i].argmax()) == 4 - i for i in range(5)) >= 3, attn.argmax(1)


def test_attention_heat_maps_are_written(tmp_path) -> None:
    from archlab.viz.attention import plot_attention, plot_attention_grid

    weights = torch.eye(6).flip(0)  # a reversal's alignment
    path = plot_attention(weights, list("abcde") + ["<eos>"], list("edcba") + ["<eos>"], tmp_path / "attn.png",
                          title="reverse")
    assert path.is_file() and path.stat().st_size > 1000
    heads = plot_attention(torch.rand(3, 4, 5).softmax(-1), None, None, tmp_path / "heads.png")
    assert heads.is_file()
    bundle = reverse_bundle(20)
    task = tiny_task(bundle)
    rows = task.translate_with_attention(["abc", "fed"], max_len=4)
    assert rows[0]["attention"].shape == (len(rows[0]["output_tokens"]), 4)
    grid = plot_attention_grid(rows, tmp_path / "grid.png", title="untrained")
    assert grid.is_file()
    with pytest.raises(ValueError, match="T_out, T_src"):
        plot_attention(torch.rand(5), None, None, tmp_path / "bad.png")


def test_translate_needs_the_vocab() -> None:
    bundle = reverse_bundle(20)
    task = Seq2SeqTask(create_model("seq2seq_gru", bundle.info, embed_dim=8, hidden_dim=8))
    with pytest.raises(ValueError, match="vocab"):
        task.translate("abc")


def _needs(name: str) -> None:
    import archlab.data  # noqa: F401  (registers the datasets)

    if name not in list_datasets():
        pytest.skip(f"dataset {name!r} is not registered")


def test_train_seq2seq_on_the_synthetic_set(tmp_path) -> None:
    _needs("seq2seq_synthetic")
    import archlab

    run = archlab.train("seq2seq_bahdanau", data="seq2seq_synthetic", overrides={
        "train.epochs": 1, "train.max_steps": 4, "train.batch_size": 16, "train.beam_size": 2,
        "model.embed_dim": 8, "model.hidden_dim": 8, "data.options.n_samples": 120,
        "run.out_dir": str(tmp_path), "system.progress": False, "system.tensorboard": False, "run.report": False})
    assert run.status == "completed"
    assert {"val/bleu", "test/bleu", "test/bleu_beam", "test/exact", "test/ppl", "test/acc"} <= set(run.metrics)
    assert 0.0 <= run.metrics["test/bleu"] <= 100.0


@pytest.mark.real_data
def test_fra_eng_subset_trains_and_scores(shared_data, tmp_path) -> None:
    import archlab

    run = archlab.train("seq2seq_bahdanau", data="fra_eng", overrides={
        "data.root": str(shared_data), "data.download": False, "data.options.num_pairs": 400,
        "train.epochs": 1, "train.max_steps": 3, "train.batch_size": 32, "model.embed_dim": 16,
        "model.hidden_dim": 16, "run.out_dir": str(tmp_path), "system.progress": False,
        "system.tensorboard": False, "run.report": False})
    assert run.status == "completed" and 0.0 <= run.metrics["test/bleu"] <= 100.0
