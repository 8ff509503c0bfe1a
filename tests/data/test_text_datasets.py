"""Text datasets: the generated/embedded ones always, SST-2, Tiny Shakespeare and fra_eng on real data."""

from __future__ import annotations

import re
import time
from datetime import datetime

import pytest
import torch

from archlab.data import load_dataset, verify_dataset
from archlab.data.text import BPETokenizer, lengths_of
from archlab.data.text_datasets import (
    _NEG_ADJ,
    _NEG_VERBS,
    _POS_ADJ,
    _POS_VERBS,
    CORPUS_TEXT,
    lm_windows,
    make_sentiment,
    make_seq2seq_task,
    read_sst2_tsv,
)
from archlab.utils import ArchlabError

# ---- the generated sentiment set ------------------------------------------------------------

_POLARITY = {w: 1 for w in _POS_ADJ} | {w: 0 for w in _NEG_ADJ}
_POLARITY |= {f: 1 for pair in _POS_VERBS for f in pair} | {f: 0 for pair in _NEG_VERBS for f in pair}


def _oracle(text: str) -> int:
    """The label read back from a sentence: the last clause decides; an odd number of negations flips it."""
    clause = text.rstrip(".!").split(", ")[-1]
    clause = clause.removeprefix("but ")
    words = re.findall(r"[a-z]+(?=n't)|n't|[a-z]+", clause)
    polar = [_POLARITY[w] for w in words if w in _POLARITY]
    assert len(polar) == 1, text
    negations = sum(w in ("not", "never", "hardly", "n't") for w in words)
    return polar[0] ^ (negations % 2)


def test_sentiment_labels_follow_negation_and_contrast():
    texts, labels = make_sentiment(2000, seed=1)
    assert len(texts) == 2000 and sum(labels) == 1000
    assert len(set(texts)) > 1990  # (nearly) no duplicates
    assert [_oracle(t) for t in texts] == labels
    joined = " ".join(texts)
    for word in (" not ", "n't ", " never ", " hardly ", ", but ", "although ", " very "):
        assert word in joined
    neg_pos = re.compile(r"(?:is|was|are|were)n't (?:\w+ )?(?:" + "|".join(_POS_ADJ) + r")\b")
    negated = [(t, y) for t, y in zip(texts, labels) if neg_pos.search(t) and "but" not in t and "although" not in t]
    assert negated and all(y == 0 for _, y in negated)
    assert make_sentiment(50, seed=1) != make_sentiment(50, seed=2)
    assert make_sentiment(50, seed=1) == make_sentiment(50, seed=1)


def test_sentiment_bundle():
    b = load_dataset("sentiment", n_samples=1000, max_len=24)  # val_split does not replace its own val
    info = b.info
    assert info.kind == "text" and info.input_shape == (24,) and info.num_classes == 2
    assert info.class_names == ["negative", "positive"]
    assert (len(b.train), len(b.val), len(b.test)) == (800, 100, 100)
    assert b.train.x.shape == (800, 24) and b.train.x.dtype == torch.long and b.train.y.dtype == torch.long
    assert (lengths_of(b.train.x) >= 3).all()
    fields = info.model_fields()
    assert fields["vocab_size"] == len(info.vocab) and fields["pad_id"] == 0 and fields["max_len"] == 24
    text = info.vocab.decode(b.train.x[0])
    assert text and "<pad>" not in text
    assert info.vocab.encode("the plot wasn't good")[2:4] == [info.vocab.stoi["was"], info.vocab.stoi["n't"]]


# ---- language modelling ---------------------------------------------------------------------


def test_lm_windows():
    ids = torch.arange(11)
    x, y = lm_windows(ids, 3)
    assert x.tolist() == [[0, 1, 2], [3, 4, 5], [6, 7, 8]] and y.tolist() == [[1, 2, 3], [4, 5, 6], [7, 8, 9]]
    x2, y2 = lm_windows(ids, 4, stride=2)
    assert x2.shape == (4, 4) and x2[1].tolist() == [2, 3, 4, 5] and y2[1].tolist() == [3, 4, 5, 6]
    with pytest.raises(ArchlabError, match="cannot hold one window"):
        lm_windows(torch.arange(3), 3)


def test_corpus_char_lm():
    b = load_dataset("corpus", context=32)
    assert len(CORPUS_TEXT) > 4000
    info = b.info
    assert info.kind == "lm" and info.input_shape == (32,) and info.model_fields()["vocab_size"] == len(info.vocab)
    x, y = b.train.x, b.train.y
    assert x.shape == y.shape and x.shape[1] == 32 and x.dtype == y.dtype == torch.long
    assert torch.equal(x[:, 1:], y[:, :-1]) and torch.equal(x[1:, 0], y[:-1, -1])  # contiguous text
    assert info.vocab.decode(x[0]) == CORPUS_TEXT[:32]
    assert len(b.val) >= 3 and len(b.test) >= 3
    n_train_chars = len(b.train) * 32 + 1
    assert n_train_chars <= 0.9 * len(CORPUS_TEXT) + 1000


@pytest.mark.parametrize("tokenizer", ["word", "bpe"])
def test_corpus_other_tokenizers(tokenizer):
    b = load_dataset("corpus", tokenizer=tokenizer, context=16)
    v = b.info.vocab
    assert b.train.x.shape[1] == 16 and len(b.train) > 20
    if tokenizer == "bpe":
        assert isinstance(v.tokenizer, BPETokenizer)
        assert v.decode(v.encode("The lighthouse keeper.")) == "The lighthouse keeper."
    else:
        assert "lighthouse" in v and v.decode(b.train.x[0][:3]) == "The Lighthouse Keeper"


# ---- seq2seq --------------------------------------------------------------------------------


@pytest.mark.parametrize("task, fn", [
    ("reverse", lambda s: s[::-1]),
    ("copy", lambda s: s),
    ("sort", lambda s: "".join(sorted(s))),
])
def test_seq2seq_symbol_tasks(task, fn):
    b = load_dataset("seq2seq_synthetic", task=task, n_samples=500, min_len=2, max_len=7)
    info = b.info
    assert info.kind == "seq2seq" and (len(b.train), len(b.val), len(b.test)) == (400, 50, 50)
    src_v, tgt_v = info.vocab, info.target_vocab
    assert len(src_v) == 4 + 10 and tgt_v is src_v
    fields = info.model_fields()
    assert fields["src_vocab_size"] == fields["tgt_vocab_size"] == 14
    x, y = b.train.x, b.train.y
    assert x.shape == (400, 8) and y.shape == (400, 9) and x.dtype == y.dtype == torch.long
    assert (y[:, 0] == tgt_v.bos_id).all() and (x[:, 0] != src_v.bos_id).all()
    for xi, yi in zip(x[:50], y[:50]):
        n = int(lengths_of(xi[None])[0])
        assert xi[n - 1] == src_v.eos_id and 3 <= n <= 8
        src, tgt = src_v.decode(xi), tgt_v.decode(yi)
        assert tgt == fn(src) and yi[len(tgt) + 1] == tgt_v.eos_id


def _parse_date(text: str) -> str:
    for fmt in ("%B %d %Y", "%d %B %Y", "%B %d, %Y", "%m/%d/%Y", "%b %d, %y", "%d %b %Y", "%d.%m.%y"):
        try:
            d = datetime.strptime(text, fmt)
        except ValueError:
            continue
        year = d.year - 100 if d.year > 2049 else d.year  # two-digit years are 1950-2049
        return f"{year:04d}-{d.month:02d}-{d.day:02d}"
    raise AssertionError(f"unparsed date {text!r}")


def test_seq2seq_dates_are_correct():
    src, tgt = make_seq2seq_task("dates", 3000, seed=4)
    assert [_parse_date(s) for s in src] == tgt
    assert any("/" in s for s in src) and any("." in s for s in src) and any("," in s for s in src)
    assert {len(t) for t in tgt} == {10}
    b = load_dataset("seq2seq_synthetic", task="dates", n_samples=300)
    src_v, tgt_v = b.info.vocab, b.info.target_vocab
    assert len(tgt_v) == 4 + 11 and src_v is not tgt_v
    for xi, yi in zip(b.test.x, b.test.y):
        assert _parse_date(src_v.decode(xi)) == tgt_v.decode(yi)
        assert src_v.unk_id not in xi.tolist()
    with pytest.raises(ArchlabError, match="valid tasks: reverse, copy, sort, dates"):
        load_dataset("seq2seq_synthetic", task="translate")


# ---- real data ------------------------------------------------------------------------------


def _need(shared_data, folder: str):
    if not (shared_data / folder).is_dir():
        pytest.skip(f"no {folder} in the shared data folder")


@pytest.mark.real_data
def test_real_sst2(shared_data):
    _need(shared_data, "sst2")
    rows = verify_dataset("sst2", shared_data)
    assert len(rows) == 3 and all(r["ok"] for r in rows)
    texts, labels = read_sst2_tsv(shared_data / "sst2" / "test.tsv")
    assert len(texts) == 872 and texts[0].startswith("it 's a charming and often affecting journey")
    assert labels[0] == 1 and "sentence" not in texts  # the header row is not data
    t0 = time.perf_counter()
    b = load_dataset("sst2", shared_data, download=False)
    seconds = time.perf_counter() - t0
    assert (len(b.train), len(b.val), len(b.test)) == (60614, 6735, 872)
    assert b.train.x.shape == (60614, 64) and b.train.y.dtype == torch.long
    assert b.info.kind == "text" and b.info.num_classes == 2 and b.info.input_shape == (64,)
    assert b.info.vocab.decode(b.train.x[0]) == "when are bears bears and" and int(b.train.y[0]) == 1
    assert torch.bincount(b.train.y).tolist() == [26786, 33828]
    assert (lengths_of(b.train.x) >= 1).all()
    assert seconds < 20, f"sst2 took {seconds:.1f}s to load"


@pytest.mark.real_data
def test_real_tinyshakespeare(shared_data):
    _need(shared_data, "tinyshakespeare")
    (row,) = verify_dataset("tinyshakespeare", shared_data)
    assert row["ok"]
    text = (shared_data / "tinyshakespeare" / "input.txt").read_text()
    assert len(text) == 1_115_394
    b = load_dataset("tinyshakespeare", shared_data, download=False)
    v = b.info.vocab
    assert len(v) == 65 + 4 and b.info.input_shape == (64,)
    total = sum(len(s) * 64 for s in (b.train, b.val, b.test))
    assert 0.99 * len(text) < total + 3 * 65 <= len(text) + 3 * 65
    assert 0.89 < len(b.train) / (len(b.train) + len(b.val) + len(b.test)) < 0.91
    assert v.decode(b.train.x[0]) == text[:64]
    assert torch.equal(b.train.x[:, 1:], b.train.y[:, :-1])


@pytest.mark.real_data
def test_real_fra_eng(shared_data):
    _need(shared_data, "fra_eng")
    (row,) = verify_dataset("fra_eng", shared_data)
    assert row["ok"]
    b = load_dataset("fra_eng", shared_data, download=False)
    n = len(b.train) + len(b.val) + len(b.test)
    assert 100_000 < n < 142_787
    assert len(b.test) == round(0.05 * n) and len(b.val) == round(0.05 * n)
    src_v, tgt_v = b.info.vocab, b.info.target_vocab
    assert b.info.kind == "seq2seq" and src_v is not tgt_v
    for xi, yi in zip(b.test.x[:500], b.test.y[:500]):
        en, fr = src_v.decode(xi), tgt_v.decode(yi)
        assert 1 <= len([t for t in en.split() if re.search(r"\w", t)]) <= 10
        assert 1 <= len([t for t in fr.split() if re.search(r"\w", t)]) <= 10
        assert en == en.lower() and int(yi[0]) == tgt_v.bos_id
    assert "été" in tgt_v and "n't" in src_v  # French accents kept; English clitics split
    small = load_dataset("fra_eng", shared_data, download=False, num_pairs=2000, reverse=True)
    assert len(small.train) + len(small.val) + len(small.test) == 2000 and len(small.test) == 100
    assert "été" in small.info.vocab or "est" in small.info.vocab  # the source is French now
