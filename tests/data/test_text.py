"""The text pipeline: tokenizers, Vocab, padding helpers and the length-bucketing loader."""

from __future__ import annotations

import json

import pytest
import torch

from archlab.data.base import ArraySplit, TensorLoader
from archlab.data.text import (
    SPECIALS,
    BPETokenizer,
    BucketLoader,
    CharTokenizer,
    RegexTokenizer,
    TextDataset,
    Vocab,
    VocabError,
    WordTokenizer,
    encode_batch,
    lengths_of,
    make_tokenizer,
    pad_sequences,
    tokenizer_from_dict,
    trim_padding,
)
from archlab.utils import ArchlabError

TEXTS = [
    "The film isn't bad, it's great!",
    "I can't say I loved it... but the cast was wonderful.",
    "A well-made movie: 3.5 stars out of 5.",
    "the the the cat sat on the mat",
]


# ---- tokenizers ---------------------------------------------------------------------------


def test_char_tokenizer_round_trip():
    tok = CharTokenizer()
    text = "Héllo,\n wörld! ☃"
    assert tok.tokenize(text) == list(text)
    assert tok.detokenize(tok.tokenize(text)) == text
    assert CharTokenizer(lowercase=True).tokenize("AbC") == ["a", "b", "c"]


@pytest.mark.parametrize(
    "text, tokens",
    [
        ("The film isn't bad, it's great!", ["the", "film", "is", "n't", "bad", ",", "it", "'s", "great", "!"]),
        ("I can't, you won't, we don't", ["i", "ca", "n't", ",", "you", "wo", "n't", ",", "we", "do", "n't"]),
        ("it 's not bad -- does n't matter", ["it", "'s", "not", "bad", "--", "does", "n't", "matter"]),
        ("They're here; I'm sure we'll see", ["they", "'re", "here", ";", "i", "'m", "sure", "we", "'ll", "see"]),
        ("A well-made film: 3.5 stars on 03/05/2021...", ["a", "well-made", "film", ":", "3.5", "stars", "on",
                                                           "03/05/2021", "..."]),
        ("isn\u2019t", ["is", "n't"]),
        ("L'homme qu'il a vu aujourd'hui n'est pas là.", ["l'", "homme", "qu'", "il", "a", "vu", "aujourd'hui",
                                                           "n'", "est", "pas", "là", "."]),
        ("", []),
    ],
)
def test_word_tokenizer_splits_punctuation_and_clitics(text, tokens):
    assert WordTokenizer(lowercase=True).tokenize(text) == tokens


def test_word_tokenizer_keeps_case_unless_asked_and_joins_with_spaces():
    tok = WordTokenizer()
    assert tok.tokenize("Hello World") == ["Hello", "World"]
    assert tok.detokenize(["is", "n't", "it", "?"]) == "is n't it ?"


def test_regex_and_whitespace_tokenizers():
    tok = make_tokenizer("regex", pattern=r"[a-z]+")
    assert tok.tokenize("ab1cd ef") == ["ab", "cd", "ef"]
    assert tokenizer_from_dict(tok.to_dict()).tokenize("x9y") == ["x", "y"]
    assert make_tokenizer("whitespace").tokenize(" a  b\tc ") == ["a", "b", "c"]
    with pytest.raises(VocabError, match="capturing groups"):
        RegexTokenizer(r"(a)b")
    with pytest.raises(VocabError, match="needs a pattern"):
        make_tokenizer("regex")


def test_bad_tokenizer_name_lists_the_valid_ones():
    with pytest.raises(VocabError, match="char, word, regex, whitespace, bpe"):
        make_tokenizer("sentencepiece")
    with pytest.raises(ArchlabError, match="valid tokenizers"):
        Vocab.build(TEXTS, "wordpiece")
    with pytest.raises(VocabError, match="valid tokenizers"):
        tokenizer_from_dict({"name": "nope"})


# ---- BPE ----------------------------------------------------------------------------------

BPE_CORPUS = [
    "the lower the newer the lowest and the newest",
    "low lower lowest new newer newest wide wider widest",
    "a slow snow showed the lowest hollow",
] * 5


def test_bpe_training_is_deterministic_and_round_trips():
    a = BPETokenizer.train(BPE_CORPUS, 300, min_frequency=2)
    b = BPETokenizer.train(list(reversed(BPE_CORPUS)), 300, min_frequency=2)
    c = BPETokenizer.train(BPE_CORPUS, 300, min_frequency=2)
    assert a.to_dict() == c.to_dict()
    assert a.vocab_tokens() == b.vocab_tokens()  # counts, not order, decide the merges
    assert a.vocab_tokens()[:4] == list(SPECIALS)
    toks = a.tokenize("the newest lowest")
    assert len(toks) < len("the newest lowest")  # merges happened
    assert "".join(toks).replace("\u0120", " ") == "the newest lowest"  # byte-level: Ġ marks a space
    for text in ["the newest lowest", "Unseen wörds ☃ and 123!", ""]:
        assert a.detokenize(a.tokenize(text)) == text


def test_bpe_vocab_encodes_with_the_models_ids_and_never_unk():
    v = Vocab.build(BPE_CORPUS, "bpe", bpe_vocab_size=300)
    assert isinstance(v.tokenizer, BPETokenizer)
    assert v.itos[:4] == list(SPECIALS) and 256 + 4 <= len(v) <= 300
    text = "the widest snow ☃ zebra"
    ids = v.encode(text)
    assert v.unk_id not in ids
    assert ids == v.lookup(v.tokenize(text)) == v.tokenizer.encode_ids(text)
    assert v.decode(ids) == text
    assert v.decode(v.encode(text, add_bos=True, add_eos=True)) == text
    assert len(Vocab.build(BPE_CORPUS, "bpe", max_size=280)) <= 280
    with pytest.raises(VocabError, match="vocab_size >= 260"):
        Vocab.build(BPE_CORPUS, "bpe", bpe_vocab_size=100)


def test_bpe_vocab_json_round_trip_without_data(tmp_path):
    v = Vocab.build(BPE_CORPUS, "bpe", bpe_vocab_size=300, lowercase=True)
    path = v.save(tmp_path / "vocab.json")
    d = json.loads(path.read_text())
    assert d["tokenizer"]["name"] == "bpe" and isinstance(d["tokenizer"]["model"], str)
    w = Vocab.load(path)
    assert w == v and w.itos == v.itos
    for text in ["The NEWEST widest", "hello world"]:
        assert w.encode(text) == v.encode(text)
        assert w.decode(w.encode(text)) == text.lower()
    with pytest.raises(VocabError, match="cannot be read"):
        BPETokenizer.from_dict({"name": "bpe", "model": "{not json"})


# ---- Vocab --------------------------------------------------------------------------------


def test_vocab_specials_order_and_min_freq():
    v = Vocab.build(TEXTS, "word", lowercase=True)
    assert v.itos[:4] == ["<pad>", "<unk>", "<bos>", "<eos>"]
    assert (v.pad_id, v.unk_id, v.bos_id, v.eos_id) == (0, 1, 2, 3)
    assert v.itos[4] == "the"  # the most frequent token first
    counts = {t: sum(WordTokenizer(True).tokenize(x).count(t) for x in TEXTS) for t in v.itos[4:]}
    assert list(counts.values()) == sorted(counts.values(), reverse=True)
    v2 = Vocab.build(TEXTS, "word", lowercase=True, min_freq=2)
    assert all(counts[t] >= 2 for t in v2.itos[4:]) and "cat" not in v2 and "the" in v2


def test_vocab_max_size_keeps_most_frequent_ties_by_first_occurrence():
    v = Vocab.build(["b a c a c d"], "word", max_size=6)
    # a and c occur twice (a first), then b and d once (b first): the cap keeps a, c.
    assert v.itos == ["<pad>", "<unk>", "<bos>", "<eos>", "a", "c"]
    assert Vocab.build(["b a c a c d"], "word").itos[4:] == ["a", "c", "b", "d"]
    with pytest.raises(VocabError, match="smaller than the 4 special tokens"):
        Vocab.build(TEXTS, "word", max_size=3)


def test_vocab_errors_are_clear():
    with pytest.raises(VocabError, match="empty corpus"):
        Vocab.build([], "word")
    with pytest.raises(VocabError, match="empty corpus"):
        Vocab.build(["", "   "], "char")
    with pytest.raises(VocabError, match="min_freq=5"):
        Vocab.build(["a b c"], "word", min_freq=5)
    with pytest.raises(VocabError, match="first tokens must be"):
        Vocab(["a", "b"], "word")
    with pytest.raises(VocabError, match="not a saved archlab vocab"):
        Vocab.from_dict({"itos": []})


def test_vocab_encode_decode_oov_and_framing():
    v = Vocab.build(TEXTS, "word", lowercase=True)
    ids = v.encode("The zebra isn't great")
    assert ids == [v.stoi["the"], v.unk_id, v.stoi["is"], v.stoi["n't"], v.stoi["great"]]
    assert v.decode(ids) == "the <unk> is n't great"
    framed = v.encode("the cat", add_bos=True, add_eos=True)
    assert framed[0] == v.bos_id and framed[-1] == v.eos_id and len(framed) == 4
    assert v.decode(framed) == "the cat"
    assert v.decode(framed, skip_special=False) == "<bos> the cat <eos>"
    cut = v.encode("the cat sat on the mat", add_bos=True, add_eos=True, max_len=4)
    assert cut == [v.bos_id, v.stoi["the"], v.stoi["cat"], v.eos_id]
    assert v.encode("the cat sat", max_len=2) == [v.stoi["the"], v.stoi["cat"]]
    with pytest.raises(VocabError, match="cannot hold"):
        v.encode("the", add_bos=True, add_eos=True, max_len=1)
    assert v.encode("") == [] and v.decode([]) == ""
    out = torch.tensor([v.stoi["cat"], v.stoi["sat"], v.eos_id, v.stoi["mat"], 0])
    assert v.decode(out, stop_at_eos=True) == "cat sat"
    assert v.decode(out) == "cat sat mat"
    assert v.decode([10_000]) == "<unk>"  # out of range ids read as unknown


def test_char_vocab_decode_joins_without_spaces(tmp_path):
    v = Vocab.build(["hello world"], "char")
    assert v.decode(v.encode("low hello")) == "low hello"
    assert v.decode(v.encode("xyz")) == "<unk><unk><unk>"
    w = Vocab.load(v.save(tmp_path / "sub" / "v.json"))
    assert w == v and isinstance(w.tokenizer, CharTokenizer)
    assert w.encode("hello") == v.encode("hello")


def test_vocab_save_is_atomic_and_load_errors(tmp_path):
    v = Vocab.build(TEXTS, "word", lowercase=True)
    path = v.save(tmp_path / "v.json")
    assert [p.name for p in tmp_path.iterdir()] == ["v.json"]  # no temporary left behind
    w = Vocab.load(path)
    assert w.tokenizer.lowercase and w.encode("THE CAT") == v.encode("the cat")
    with pytest.raises(VocabError, match="no vocab file"):
        Vocab.load(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{oops")
    with pytest.raises(VocabError, match="cannot read"):
        Vocab.load(tmp_path / "bad.json")


# ---- batches ------------------------------------------------------------------------------


def test_encode_batch_pads_right_and_truncates():
    v = Vocab.build(TEXTS, "word", lowercase=True)
    x = encode_batch(v, ["the cat", "the cat sat on the mat", ""], max_len=4)
    assert x.dtype == torch.long and x.shape == (3, 4)
    assert x[0].tolist() == [v.stoi["the"], v.stoi["cat"], 0, 0]
    assert x[1].tolist() == v.encode("the cat sat on")
    assert x[2].tolist() == [0, 0, 0, 0]
    assert lengths_of(x).tolist() == [2, 4, 0]
    y = encode_batch(v, ["the cat", ""], add_bos=True, add_eos=True, unk_if_empty=True)
    assert y.shape == (2, 4) and y[1].tolist() == [v.bos_id, v.eos_id, 0, 0]
    z = encode_batch(v, ["", ""], unk_if_empty=True)
    assert z.tolist() == [[v.unk_id], [v.unk_id]]


def test_pad_sequences_lengths_and_trim_padding():
    x = pad_sequences([[5, 6, 7], [8], []])
    assert x.tolist() == [[5, 6, 7], [8, 0, 0], [0, 0, 0]]
    assert pad_sequences([[5, 6, 7]], max_len=2).tolist() == [[5, 6]]
    assert pad_sequences([[1]], max_len=3, pad_id=9).tolist() == [[1, 9, 9]]
    wide = torch.cat([x, torch.zeros(3, 5, dtype=torch.long)], dim=1)
    assert trim_padding(wide).tolist() == x.tolist()
    assert trim_padding(torch.zeros(2, 6, dtype=torch.long)).shape == (2, 1)
    assert lengths_of(torch.tensor([[4, 4, 9, 9]]), pad_id=9).tolist() == [2]


def test_text_dataset_collate_and_to_split():
    v = Vocab.build(TEXTS, "word", lowercase=True)
    ds = TextDataset(["the cat", "the cat sat on the mat", ""], [1, 0, 1], v, max_len=5)
    ids, label = ds[1]
    assert ids.tolist() == v.encode("the cat sat on the") and label == 0
    assert ds[2][0].tolist() == [v.unk_id]  # never an empty row
    x, y, lengths = TextDataset.collate([ds[0], ds[1]])
    assert x.shape == (2, 5) and y.tolist() == [1, 0] and lengths.tolist() == [2, 5]
    split = ds.to_split()
    assert split.x.shape == (3, 5) and split.y.tolist() == [1, 0, 1]
    with pytest.raises(ValueError, match="3 texts but 2 labels"):
        TextDataset(["a", "b", "c"], [0, 1], v)


# ---- BucketLoader -------------------------------------------------------------------------


def _ragged_split(n: int = 1000, t: int = 40, seed: int = 0) -> ArraySplit:
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, t + 1, (n,), generator=g)
    x = torch.zeros(n, t, dtype=torch.long)
    for i, n_tok in enumerate(lengths.tolist()):
        x[i, :n_tok] = torch.randint(4, 50, (n_tok,), generator=g)
    return ArraySplit(x, torch.arange(n))  # y = the row id, to track rows


def _spread(loader) -> float:
    """Mean over batches of (longest - shortest) length within the batch."""
    spans = [float(lengths_of(x).max() - lengths_of(x).min()) for x, _ in loader]
    return sum(spans) / len(spans)


def test_bucket_loader_sees_every_row_once_in_batches_of_similar_length():
    split = _ragged_split()
    loader = BucketLoader(split, 32, shuffle=True, seed=3)
    rows = torch.cat([y for _, y in loader])
    assert sorted(rows.tolist()) == list(range(1000))
    assert len(list(loader)) == len(loader) == 32
    plain = TensorLoader(split, 32, shuffle=True, seed=3)
    assert _spread(loader) < 0.25 * _spread(plain)  # 1000 rows < one chunk: batches nearly uniform
    for x, y in loader:
        assert torch.equal(x, split.x[y])  # rows and targets stay paired


def test_bucket_loader_is_deterministic_per_seed_and_epoch_and_resumes():
    split = _ragged_split()

    def order(seed: int, epoch: int, start: int = 0) -> list[list[int]]:
        loader = BucketLoader(split, 32, shuffle=True, seed=seed)
        loader.set_epoch(epoch, start)
        return [y.tolist() for _, y in loader]

    assert order(0, 1) == order(0, 1)
    assert order(0, 1) != order(0, 2) and order(0, 1) != order(1, 1)
    assert order(0, 1, start=5) == order(0, 1)[5:]
    # the batches themselves are shuffled: lengths do not simply increase batch after batch
    loader = BucketLoader(split, 32, shuffle=True)
    means = [float(lengths_of(x).float().mean()) for x, _ in loader]
    assert means != sorted(means)


def test_bucket_loader_drop_last_keeps_the_short_batch_last():
    split = _ragged_split(n=100)
    loader = BucketLoader(split, 32, shuffle=True, drop_last=True, chunk_factor=1)
    batches = [y for _, y in loader]
    assert len(batches) == len(loader) == 3 and all(len(b) == 32 for b in batches)
    keep = BucketLoader(split, 32, shuffle=True, chunk_factor=1)
    sizes = [len(y) for _, y in keep]
    assert sizes == [32, 32, 32, 4]


def test_bucket_loader_sharding_covers_all_rows_and_buckets_each_rank():
    split = _ragged_split(n=1001)
    ranks = [BucketLoader(split, 16, shuffle=True, seed=1, rank=r, world_size=2) for r in range(2)]
    assert len(ranks[0]) == len(ranks[1]) == TensorLoader(split, 16, rank=0, world_size=2).__len__()
    seen = torch.cat([y for loader in ranks for _, y in loader]).tolist()
    assert set(seen) == set(range(1001)) and len(seen) == 1002  # one row wrapped around, as TensorLoader
    single = BucketLoader(split, 16, shuffle=True, seed=1)
    assert _spread(ranks[0]) <= 2 * _spread(single) + 1


def test_bucket_loader_without_shuffle_keeps_row_order_and_handles_series():
    split = _ragged_split(n=50)
    assert torch.cat([y for _, y in BucketLoader(split, 8)]).tolist() == list(range(50))
    series = ArraySplit(torch.randn(20, 5, 1), torch.randn(20, 2))
    loader = BucketLoader(series, 4, shuffle=True)
    assert sum(len(x) for x, _ in loader) == 20
    with pytest.raises(ValueError, match="lengths has 3 entries"):
        BucketLoader(split, 8, lengths=torch.ones(3))


def test_bucket_loader_seq2seq_keys_use_source_then_target_length():
    x = pad_sequences([[5] * (i % 7 + 1) for i in range(200)])
    y = pad_sequences([[6] * (i % 5 + 1) for i in range(200)])
    loader = BucketLoader(ArraySplit(x, y), 10, shuffle=True)
    for bx, by in loader:  # one chunk: each batch is a slice of the rows sorted by (len x, len y)
        keys = list(zip(lengths_of(bx).tolist(), lengths_of(by).tolist()))
        assert keys == sorted(keys)
        assert int(lengths_of(bx).max() - lengths_of(bx).min()) <= 1
