"""`archlab predict` / `archlab generate` on raw text: unknown words, empty strings, over-long input."""

from __future__ import annotations

import pytest

import archlab
from archlab.utils import ArchlabError

COMMON = {"system.progress": False, "system.tensorboard": False, "run.report": False, "system.threads": 1}


@pytest.fixture(scope="module")
def classifier_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    ovs = {**COMMON, "run.out_dir": str(out), "run.name": "gru", "train.epochs": 1,
           "data.options.n_samples": 400, "model.hidden_dim": 16, "model.embed_dim": 16}
    return archlab.train("gru_classifier", "sentiment", overrides=ovs)


def test_vocab_saved_with_the_run(classifier_run):
    from archlab.data.text import Vocab

    vocab = Vocab.load(classifier_run.path / "vocab.json")
    assert vocab == classifier_run.bundle.info.vocab


def test_unknown_words_are_read_as_unk_and_named(classifier_run):
    (row,) = archlab.predict(classifier_run.path, ["the movie was zzqxv"])
    assert row["label"] in ("negative", "positive")
    assert "zzqxv" in row["note"] and "<unk>" in row["note"]
    assert abs(sum(p for _, p in row["top"]) - 1.0) < 1e-3


def test_over_long_input_is_cut_and_said(classifier_run):
    max_len = classifier_run.bundle.info.input_shape[0]
    (row,) = archlab.predict(classifier_run.path, ["good " * (max_len + 50)])
    assert f"truncated to the first {max_len}" in row["note"]


@pytest.mark.parametrize("text", ["", "   "])
def test_empty_input_is_a_clear_error(classifier_run, text):
    with pytest.raises(ArchlabError, match="empty input"):
        archlab.predict(classifier_run.path, [text])


def test_generate_needs_a_language_model(classifier_run):
    with pytest.raises(ArchlabError, match="language model"):
        archlab.generate(classifier_run.path, "the")


def test_generate_streams_and_checks_its_options(tmp_path):
    ovs = {**COMMON, "run.out_dir": str(tmp_path), "run.name": "lm", "train.epochs": 1, "model.hidden_dim": 16,
           "model.embed_dim": 16}
    run = archlab.train("char_lstm", "corpus", overrides=ovs)
    pieces: list[str] = []
    text = archlab.generate(run.path, "The ", max_new_tokens=20, seed=0, stream=pieces.append)
    assert text.startswith("The ") and len(pieces) == 20 and text == "The " + "".join(pieces)
    assert text == archlab.generate(run.path, "The ", max_new_tokens=20, seed=0)  # seeded
    with pytest.raises(ArchlabError, match="temperature"):
        archlab.generate(run.path, "The ", temperature=0)
    with pytest.raises(ArchlabError, match="top_k"):
        archlab.generate(run.path, "The ", top_k=0)
