"""The text pipeline: tokenizers, a :class:`Vocab`, numericalisation, padding and length bucketing.

Text becomes tensors in three steps::

    vocab = Vocab.build(train_texts, tokenizer="word", min_freq=2, lowercase=True)
    x = encode_batch(vocab, texts, max_len=64)          # LongTensor (N, 64), right-padded with 0
    lengths = lengths_of(x)                             # LongTensor (N,)

**Tokenizers** (all follow the :class:`Tokenizer` protocol: ``tokenize``, ``detokenize``,
``to_dict``/``from_dict``):

* ``"char"``: one token per character; ``detokenize`` joins with ``""`` (exact round trip).
* ``"word"``: a regular expression that splits words from punctuation and splits English
  clitics the Penn Treebank way (``"isn't"`` -> ``is n't``, ``"can't"`` -> ``ca n't``,
  ``"it's"`` -> ``it 's``), keeps hyphenated words and numbers (``"3.5"``, ``"03/05/2021"``)
  whole and French elisions attached (``"l'homme"`` -> ``l' homme``); ``detokenize`` joins
  with ``" "``. SST-2's text is already tokenized this way, so it passes through unchanged.
* ``"regex"``: the same with a pattern of your own (``re.findall``); ``"whitespace"``: ``str.split``.
* ``"bpe"``: byte-level byte-pair encoding (Sennrich et al. 2016, "Neural Machine Translation of
  Rare Words with Subword Units", https://arxiv.org/abs/1508.07909; GPT-2's byte-level variant)
  trained with Hugging Face ``tokenizers`` on the training texts. Every byte is in the initial
  alphabet, so no text is ever out of vocabulary and ``detokenize`` restores the text exactly.
  The trained model is serialised (its JSON) inside :meth:`Vocab.to_dict`.

**Vocab**: special tokens ``<pad>``=0, ``<unk>``=1, ``<bos>``=2, ``<eos>``=3 (always these ids),
then the tokens of the training texts that occur at least ``min_freq`` times, most frequent
first, ties in order of first occurrence (so a build is deterministic), at most ``max_size``
in all. Unknown tokens encode to ``<unk>``. ``save``/``load`` write JSON (atomically) holding
the tokenizer too, so a checkpoint can encode raw text without the dataset.

**Batches**: :func:`encode_batch` right-pads with ``pad_id`` = 0; :func:`lengths_of` counts the
non-pad tokens of each row; :func:`trim_padding` drops the all-padding columns of a batch;
:class:`BucketLoader` is a :class:`~archlab.data.base.TensorLoader` whose training batches hold
rows of similar length (less padding for RNNs), deterministic from ``(seed, epoch)``.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from itertools import chain
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np
import torch

from archlab.data.base import ArraySplit, TensorLoader
from archlab.utils import ArchlabError, atomic_write_json

__all__ = [
    "SPECIALS",
    "PAD_ID",
    "UNK_ID",
    "BOS_ID",
    "EOS_ID",
    "Tokenizer",
    "CharTokenizer",
    "WordTokenizer",
    "RegexTokenizer",
    "WhitespaceTokenizer",
    "BPETokenizer",
    "TOKENIZERS",
    "make_tokenizer",
    "tokenizer_from_dict",
    "Vocab",
    "VocabError",
    "pad_sequences",
    "encode_batch",
    "lengths_of",
    "trim_padding",
    "TextDataset",
    "BucketLoader",
]

SPECIALS: tuple[str, ...] = ("<pad>", "<unk>", "<bos>", "<eos>")
PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3


class VocabError(ArchlabError, ValueError):
    """A vocab or tokenizer that cannot be built or read; the message says what to do."""


# --------------------------------------------------------------------------------------------
# Tokenizers
# --------------------------------------------------------------------------------------------


@runtime_checkable
class Tokenizer(Protocol):
    """What :class:`Vocab` needs from a tokenizer.

    ``to_dict()`` returns JSON-able data with a ``"name"`` key; :func:`tokenizer_from_dict`
    rebuilds the tokenizer from it.
    """

    name: str

    def tokenize(self, text: str) -> list[str]: ...

    def detokenize(self, tokens: Sequence[str]) -> str: ...

    def to_dict(self) -> dict[str, Any]: ...


def _normalise_quotes(text: str) -> str:
    # Typographic apostrophes are the same clitic as "'" ("isn’t" -> "is n't").
    return text.replace("\u2019", "'").replace("\u2018", "'")


class CharTokenizer:
    """One token per character (Unicode code point); ``detokenize`` joins with ``""``.

    Args:
        lowercase: lowercase the text first.
    """

    name = "char"

    def __init__(self, lowercase: bool = False) -> None:
        self.lowercase = lowercase

    def tokenize(self, text: str) -> list[str]:
        return list(text.lower() if self.lowercase else text)

    def detokenize(self, tokens: Sequence[str]) -> str:
        return "".join(tokens)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "lowercase": self.lowercase}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CharTokenizer:
        return cls(lowercase=bool(d.get("lowercase", False)))

    def __repr__(self) -> str:
        return f"CharTokenizer(lowercase={self.lowercase})"


class RegexTokenizer:
    """Tokens are the matches of a regular expression (``re.findall``); ``detokenize`` joins with ``" "``.

    Args:
        pattern: the expression (compiled with ``re.UNICODE``; use ``(?x)`` for verbose).
        lowercase: lowercase the text first.
    """

    name = "regex"

    def __init__(self, pattern: str, lowercase: bool = False) -> None:
        try:
            self._re = re.compile(pattern)
        except re.error as e:
            raise VocabError(f"bad tokenizer pattern {pattern!r}: {e}") from None
        if self._re.groups:
            # findall would return the groups instead of the whole matches.
            raise VocabError(f"tokenizer pattern {pattern!r} has capturing groups; use (?:...) instead")
        self.pattern = pattern
        self.lowercase = lowercase

    def tokenize(self, text: str) -> list[str]:
        text = _normalise_quotes(text)
        return self._re.findall(text.lower() if self.lowercase else text)

    def detokenize(self, tokens: Sequence[str]) -> str:
        return " ".join(tokens)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "pattern": self.pattern, "lowercase": self.lowercase}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RegexTokenizer:
        return cls(d["pattern"], lowercase=bool(d.get("lowercase", False)))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(lowercase={self.lowercase})"


# Order matters: at each position the first alternative that matches wins. "n't" is split from
# its word ("isn't" -> "is n't") by a substitution first: a look-ahead here would cost 3x the time.
WORD_PATTERN = r"""(?xi)
    n't\b                                         # the negation clitic
  | '(?:s|re|ve|ll|d|m)\b                         # the other English clitics
  | aujourd'hui
  | (?:qu|jusqu|lorsqu|puisqu|[cdjlmnst])'(?=\w)  # French elision: l'homme -> l' homme
  | \d+(?:[.,:/]\d+)+                             # 3.5, 1,000, 10:30, 03/05/2021
  | \w+(?:-\w+)*                                  # words and hyphenated compounds
  | -{2,} | \.{2,}                                # dashes and ellipses
  | [^\w\s]                                       # any other symbol on its own
"""


class WordTokenizer(RegexTokenizer):
    """Words, numbers and punctuation, with English clitics split off (Penn Treebank style).

    ``"The film isn't bad, it's great!"`` -> ``the film is n't bad , it 's great !``
    (with ``lowercase=True``). Whitespace is dropped; ``detokenize`` joins with ``" "``.

    Args:
        lowercase: lowercase the text first.
    """

    name = "word"
    _NT = re.compile(r"(?i)(?<=\w)(n't)\b")

    def __init__(self, lowercase: bool = False) -> None:
        super().__init__(WORD_PATTERN, lowercase=lowercase)

    def tokenize(self, text: str) -> list[str]:
        text = _normalise_quotes(text)
        if "'" in text:
            text = self._NT.sub(r" \1", text)  # "isn't" -> "is n't", "can't" -> "ca n't"
        return self._re.findall(text.lower() if self.lowercase else text)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "lowercase": self.lowercase}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> WordTokenizer:
        return cls(lowercase=bool(d.get("lowercase", False)))


class WhitespaceTokenizer:
    """``str.split()`` (for text that is already tokenized); ``detokenize`` joins with ``" "``."""

    name = "whitespace"

    def __init__(self, lowercase: bool = False) -> None:
        self.lowercase = lowercase

    def tokenize(self, text: str) -> list[str]:
        return (text.lower() if self.lowercase else text).split()

    def detokenize(self, tokens: Sequence[str]) -> str:
        return " ".join(tokens)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "lowercase": self.lowercase}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> WhitespaceTokenizer:
        return cls(lowercase=bool(d.get("lowercase", False)))

    def __repr__(self) -> str:
        return f"WhitespaceTokenizer(lowercase={self.lowercase})"


class BPETokenizer:
    """Byte-level BPE trained with Hugging Face ``tokenizers`` (GPT-2's scheme).

    Sennrich, Haddow & Birch 2016, "Neural Machine Translation of Rare Words with Subword Units"
    (https://arxiv.org/abs/1508.07909): start from single symbols and repeatedly merge the most
    frequent adjacent pair into a new symbol, ``vocab_size - |alphabet|`` times. The symbols here
    are the 256 bytes of UTF-8 (GPT-2's byte-level variant), so any text encodes without
    ``<unk>``; text is first split GPT-2's way (words with their leading space, digits,
    punctuation), so merges never cross a word boundary. Training is deterministic: the same
    texts give the same merges.

    Build one with :meth:`train` (or :meth:`Vocab.build` with ``tokenizer="bpe"``).

    Args:
        model: a trained ``tokenizers.Tokenizer`` (BPE model, ByteLevel pre-tokenizer/decoder).
    """

    name = "bpe"

    def __init__(self, model: Any) -> None:
        self._tok = model

    @classmethod
    def train(
        cls,
        texts: Iterable[str],
        vocab_size: int = 2000,
        *,
        min_frequency: int = 2,
        lowercase: bool = False,
        specials: Sequence[str] = SPECIALS,
    ) -> BPETokenizer:
        """Learn merges from ``texts``.

        Args:
            texts: the training texts.
            vocab_size: final size: ``specials`` + 256 bytes + merges.
            min_frequency: a pair must occur this often to be merged.
            lowercase: lowercase the text before everything else (kept in the model).
            specials: tokens given the first ids, in this order.
        """
        from tokenizers import Tokenizer as HFTokenizer
        from tokenizers import decoders, models, normalizers, pre_tokenizers, trainers

        if vocab_size < len(specials) + 256:
            raise VocabError(
                f"byte-level BPE needs vocab_size >= {len(specials) + 256} (the specials and the 256 bytes), "
                f"got {vocab_size}"
            )
        tok = HFTokenizer(models.BPE(unk_token=SPECIALS[UNK_ID]))
        if lowercase:
            tok.normalizer = normalizers.Lowercase()
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=int(vocab_size),
            min_frequency=int(min_frequency),
            special_tokens=list(specials),
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
        texts = list(texts)
        tok.train_from_iterator(texts, trainer=trainer, length=len(texts))
        return cls(tok)

    @property
    def lowercase(self) -> bool:
        return self._tok.normalizer is not None

    def tokenize(self, text: str) -> list[str]:
        return self._tok.encode(text, add_special_tokens=False).tokens

    def encode_ids(self, text: str) -> list[int]:
        """The model's own ids (equal to the :class:`Vocab` ids of a vocab built from it)."""
        return self._tok.encode(text, add_special_tokens=False).ids

    def detokenize(self, tokens: Sequence[str]) -> str:
        return self._tok.decoder.decode(list(tokens))

    def vocab_tokens(self) -> list[str]:
        """The model's tokens ordered by id."""
        n = self._tok.get_vocab_size(with_added_tokens=True)
        return [self._tok.id_to_token(i) for i in range(n)]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "model": self._tok.to_str()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BPETokenizer:
        from tokenizers import Tokenizer as HFTokenizer

        try:
            return cls(HFTokenizer.from_str(d["model"]))
        except Exception as e:  # the library raises plain Exceptions on bad JSON
            raise VocabError(f"the saved BPE model cannot be read: {e}") from None

    def __repr__(self) -> str:
        return f"BPETokenizer(vocab_size={self._tok.get_vocab_size()}, lowercase={self.lowercase})"


TOKENIZERS: dict[str, type] = {
    "char": CharTokenizer,
    "word": WordTokenizer,
    "regex": RegexTokenizer,
    "whitespace": WhitespaceTokenizer,
    "bpe": BPETokenizer,
}


def _bad_tokenizer(name: Any) -> VocabError:
    return VocabError(f"unknown tokenizer {name!r}; valid tokenizers: {', '.join(TOKENIZERS)}")


def make_tokenizer(name: str, *, lowercase: bool = False, pattern: str | None = None) -> Tokenizer:
    """A tokenizer by name: ``"char"``, ``"word"``, ``"whitespace"`` or ``"regex"`` (needs ``pattern``).

    ``"bpe"`` must be trained: use :meth:`BPETokenizer.train` or ``Vocab.build(..., tokenizer="bpe")``.

    Raises:
        VocabError: an unknown name (the message lists the valid ones), ``regex`` without a pattern.
    """
    if name == "char":
        return CharTokenizer(lowercase)
    if name == "word":
        return WordTokenizer(lowercase)
    if name == "whitespace":
        return WhitespaceTokenizer(lowercase)
    if name == "regex":
        if not pattern:
            raise VocabError("tokenizer 'regex' needs a pattern (make_tokenizer('regex', pattern=r'\\w+'))")
        return RegexTokenizer(pattern, lowercase)
    if name == "bpe":
        raise VocabError("a 'bpe' tokenizer must be trained: use Vocab.build(texts, tokenizer='bpe') or "
                         "BPETokenizer.train(texts)")
    raise _bad_tokenizer(name)


def tokenizer_from_dict(d: dict[str, Any]) -> Tokenizer:
    """Rebuild a tokenizer from its ``to_dict()``."""
    name = d.get("name") if isinstance(d, dict) else None
    if name not in TOKENIZERS:
        raise _bad_tokenizer(name)
    return TOKENIZERS[name].from_dict(d)


# --------------------------------------------------------------------------------------------
# Vocab
# --------------------------------------------------------------------------------------------

_FORMAT = "archlab.vocab"


class Vocab:
    """Token <-> id mapping with a tokenizer; ids 0..3 are ``<pad>``, ``<unk>``, ``<bos>``, ``<eos>``.

    Build one from training texts with :meth:`build`; ``Vocab(itos, tokenizer)`` wraps a given
    token list (which must start with :data:`SPECIALS`); :meth:`from_tokens` prepends them.

    Args:
        itos: the tokens by id, starting with ``<pad> <unk> <bos> <eos>``.
        tokenizer: a :class:`Tokenizer` or a name for :func:`make_tokenizer`.
    """

    pad_id: ClassVar[int] = PAD_ID
    unk_id: ClassVar[int] = UNK_ID
    bos_id: ClassVar[int] = BOS_ID
    eos_id: ClassVar[int] = EOS_ID
    specials: ClassVar[tuple[str, ...]] = SPECIALS

    def __init__(self, itos: Sequence[str], tokenizer: Tokenizer | str = "word") -> None:
        itos = list(itos)
        if tuple(itos[: len(SPECIALS)]) != SPECIALS:
            raise VocabError(f"a vocab's first tokens must be {list(SPECIALS)}, got {itos[: len(SPECIALS)]}")
        self.itos: list[str] = itos
        self.stoi: dict[str, int] = {t: i for i, t in enumerate(itos)}
        if len(self.stoi) != len(itos):
            dup = [t for t, c in Counter(itos).items() if c > 1][:5]
            raise VocabError(f"a vocab's tokens must be distinct; repeated: {dup}")
        self.tokenizer: Tokenizer = make_tokenizer(tokenizer) if isinstance(tokenizer, str) else tokenizer
        # A BPE vocab built from its model has the model's ids: encode with the fast path.
        self._bpe_ids = isinstance(self.tokenizer, BPETokenizer) and self.tokenizer.vocab_tokens() == itos

    # ---- construction ------------------------------------------------------------------

    @classmethod
    def from_tokens(cls, tokens: Iterable[str], tokenizer: Tokenizer | str = "word") -> Vocab:
        """A vocab of :data:`SPECIALS` followed by ``tokens`` (in order, duplicates and specials skipped)."""
        itos = list(SPECIALS)
        seen = set(itos)
        for t in tokens:
            if t not in seen:
                seen.add(t)
                itos.append(t)
        return cls(itos, tokenizer)

    @classmethod
    def build(
        cls,
        texts: Iterable[str],
        tokenizer: Tokenizer | str = "word",
        *,
        min_freq: int = 1,
        max_size: int | None = None,
        bpe_vocab_size: int = 2000,
        lowercase: bool = False,
    ) -> Vocab:
        """Count the tokens of ``texts`` (the training split only) and keep the frequent ones.

        Args:
            texts: the training texts.
            tokenizer: ``"word"``, ``"char"``, ``"whitespace"``, ``"bpe"`` or a :class:`Tokenizer`.
            min_freq: keep tokens occurring at least this often (for BPE: the minimum count of a
                merged pair).
            max_size: at most this many ids in all, specials included (the most frequent tokens
                are kept; ties go to the token seen first). For BPE it is the trained vocab size.
            bpe_vocab_size: BPE's vocab size when ``max_size`` is None (specials + 256 bytes + merges).
            lowercase: lowercase before tokenizing (when ``tokenizer`` is a name).

        Raises:
            VocabError: an empty corpus, no token reaching ``min_freq``, ``max_size`` smaller
                than the 4 specials, an unknown tokenizer name, ``min_freq`` < 1.
        """
        if max_size is not None and max_size < len(SPECIALS):
            raise VocabError(
                f"max_size={max_size} is smaller than the {len(SPECIALS)} special tokens {list(SPECIALS)}; "
                f"use max_size >= {len(SPECIALS) + 1} or None"
            )
        if min_freq < 1:
            raise VocabError(f"min_freq must be >= 1, got {min_freq}")
        if isinstance(tokenizer, str) and tokenizer not in TOKENIZERS:
            raise _bad_tokenizer(tokenizer)
        texts = [texts] if isinstance(texts, str) else list(texts)
        if not any(t.strip() for t in texts):
            raise VocabError(
                f"cannot build a vocab from an empty corpus ({len(texts)} texts, none with any "
                "non-space character); pass the training texts"
            )
        if tokenizer == "bpe":
            size = max_size if max_size is not None else bpe_vocab_size
            tok = BPETokenizer.train(texts, size, min_frequency=min_freq, lowercase=lowercase)
            return cls(tok.vocab_tokens(), tok)
        if isinstance(tokenizer, BPETokenizer):
            return cls(tokenizer.vocab_tokens(), tokenizer)
        tok = make_tokenizer(tokenizer, lowercase=lowercase) if isinstance(tokenizer, str) else tokenizer
        counts: Counter[str] = Counter()
        for text in texts:
            counts.update(tok.tokenize(text))
        if not counts:
            raise VocabError(f"the {len(texts)} texts give no tokens with {tok!r}; nothing to build a vocab from")
        return cls.from_counts(counts, tok, min_freq=min_freq, max_size=max_size)

    @classmethod
    def from_counts(
        cls,
        counts: Mapping[str, int],
        tokenizer: Tokenizer | str = "word",
        *,
        min_freq: int = 1,
        max_size: int | None = None,
    ) -> Vocab:
        """A vocab from token counts (texts tokenized once by the caller; see :meth:`build`).

        The tokens are ranked by count, ties in the mapping's order (a ``Counter`` filled in
        text order: first occurrence).
        """
        if max_size is not None and max_size < len(SPECIALS):
            raise VocabError(
                f"max_size={max_size} is smaller than the {len(SPECIALS)} special tokens {list(SPECIALS)}; "
                f"use max_size >= {len(SPECIALS) + 1} or None"
            )
        counts = {t: c for t, c in counts.items() if t not in SPECIALS}
        if not counts:
            raise VocabError("cannot build a vocab from an empty corpus (no tokens counted)")
        tok = make_tokenizer(tokenizer) if isinstance(tokenizer, str) else tokenizer
        # sorted() is stable: ties stay in first-occurrence order, so a build is deterministic.
        kept = [t for t, c in sorted(counts.items(), key=lambda kv: -kv[1]) if c >= min_freq]
        if not kept:
            raise VocabError(
                f"no token occurs min_freq={min_freq} times (the most frequent occurs "
                f"{max(counts.values())} times); lower min_freq"
            )
        if max_size is not None:
            kept = kept[: max_size - len(SPECIALS)]
        return cls(list(SPECIALS) + kept, tok)

    # ---- mapping -------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token: str) -> bool:
        return token in self.stoi

    def __repr__(self) -> str:
        return f"Vocab(size={len(self)}, tokenizer={self.tokenizer!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocab) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:  # equal vocabs have equal token lists
        return hash((len(self.itos), tuple(self.itos[:32])))

    def tokenize(self, text: str) -> list[str]:
        """The tokens of ``text`` (before the vocab lookup)."""
        return self.tokenizer.tokenize(text)

    def lookup(self, tokens: Iterable[str]) -> list[int]:
        """Ids of ``tokens``; unknown ones -> :attr:`unk_id`."""
        get, unk = self.stoi.get, UNK_ID
        return [get(t, unk) for t in tokens]

    def encode(self, text: str, add_bos: bool = False, add_eos: bool = False, max_len: int | None = None) -> list[int]:
        """Token ids of ``text``: ``[<bos>] w1 .. wn [<eos>]``, unknown tokens -> ``<unk>``.

        Args:
            text: raw text ("" gives no tokens).
            add_bos, add_eos: frame the ids.
            max_len: at most this many ids in all: the tokens are cut so that ``<bos>``/``<eos>``
                still fit.

        Raises:
            VocabError: ``max_len`` too small to hold the requested ``<bos>``/``<eos>``.
        """
        if not isinstance(text, str):
            raise VocabError(f"encode expects a str, got {type(text).__name__}")
        ids = self.tokenizer.encode_ids(text) if self._bpe_ids else self.lookup(self.tokenizer.tokenize(text))
        if max_len is not None:
            room = max_len - int(add_bos) - int(add_eos)
            if room < 0:
                raise VocabError(f"max_len={max_len} cannot hold <bos>/<eos>; use max_len >= {max_len - room}")
            ids = ids[:room]
        if add_bos:
            ids = [BOS_ID, *ids]
        if add_eos:
            ids = [*ids, EOS_ID]
        return ids

    def decode(self, ids: Iterable[int] | torch.Tensor, skip_special: bool = True, stop_at_eos: bool = False) -> str:
        """Text of ``ids``: tokens joined by the tokenizer (``""`` for char, ``" "`` for word, BPE's decoder).

        Args:
            ids: token ids (a list or a 1-D tensor); ids outside the vocab read as ``<unk>``.
            skip_special: drop ``<pad>``, ``<bos>`` and ``<eos>`` (``<unk>`` stays visible).
            stop_at_eos: ignore everything after the first ``<eos>`` (decoded model output).
        """
        if isinstance(ids, torch.Tensor):
            ids = ids.reshape(-1).tolist()
        n, unk = len(self.itos), self.itos[UNK_ID]
        tokens = []
        for i in ids:
            i = int(i)
            if stop_at_eos and i == EOS_ID:
                break
            if skip_special and i in (PAD_ID, BOS_ID, EOS_ID):
                continue
            tokens.append(self.itos[i] if 0 <= i < n else unk)
        return self.tokenizer.detokenize(tokens)

    # ---- persistence -----------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: the tokens by id and the tokenizer (a BPE model's JSON included)."""
        return {"format": _FORMAT, "version": 1, "itos": list(self.itos), "tokenizer": self.tokenizer.to_dict()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Vocab:
        """Rebuild a vocab from :meth:`to_dict` (no data needed); a checkpoint's saved tokenizer gives
        a :class:`archlab.data.pretrained_vocab.PretrainedVocab`."""
        if isinstance(d, dict) and d.get("format") == "archlab.pretrained_vocab":
            from archlab.data.pretrained_vocab import PretrainedVocab

            return PretrainedVocab.from_dict(d)  # type: ignore[return-value]
        if not isinstance(d, dict) or "itos" not in d or "tokenizer" not in d:
            keys = sorted(d) if isinstance(d, dict) else type(d).__name__
            raise VocabError(f"not a saved archlab vocab (expected keys 'itos' and 'tokenizer', got {keys})")
        return cls(d["itos"], tokenizer_from_dict(d["tokenizer"]))

    def save(self, path: str | Path) -> Path:
        """Write :meth:`to_dict` as JSON, atomically (a crash never leaves half a file)."""
        return atomic_write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> Vocab:
        """Read a vocab written by :meth:`save`."""
        path = Path(path)
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise VocabError(f"no vocab file at {path}") from None
        except (OSError, json.JSONDecodeError) as e:
            raise VocabError(f"cannot read the vocab file {path}: {e}") from None
        return cls.from_dict(d)


# --------------------------------------------------------------------------------------------
# Padding, lengths, datasets
# --------------------------------------------------------------------------------------------


def pad_sequences(seqs: Sequence[Sequence[int]], pad_id: int = PAD_ID, max_len: int | None = None) -> torch.Tensor:
    """Right-pad id lists into a LongTensor (N, T): T = ``max_len`` (longer rows cut) or the longest row."""
    n = len(seqs)
    lens = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=n)
    width = int(max_len) if max_len is not None else max(int(lens.max()) if n else 1, 1)
    out = np.full((n, width), pad_id, dtype=np.int64)
    if n:
        if (lens > width).any():
            seqs = [s[:width] for s in seqs]
            lens = np.minimum(lens, width)
        flat = np.fromiter(chain.from_iterable(seqs), dtype=np.int64, count=int(lens.sum()))
        out[np.arange(width) < lens[:, None]] = flat  # row-major order = the rows concatenated
    return torch.from_numpy(out)


def encode_batch(
    vocab: Vocab,
    texts: Sequence[str],
    max_len: int | None = None,
    add_bos: bool = False,
    add_eos: bool = False,
    *,
    unk_if_empty: bool = False,
) -> torch.Tensor:
    """Encode and right-pad ``texts``: LongTensor (N, T) with ``<pad>`` = 0.

    Args:
        vocab: the vocab.
        texts: raw texts.
        max_len: T, and each row cut to it (``<bos>``/``<eos>`` kept, see :meth:`Vocab.encode`);
            None pads to the longest row.
        add_bos, add_eos: frame each row.
        unk_if_empty: a text with no tokens becomes a single ``<unk>`` (a length-0 row would
            break packed RNN batches).
    """
    rows = [vocab.encode(t, add_bos, add_eos, max_len) for t in texts]
    if unk_if_empty:
        rows = [r if r else [UNK_ID] for r in rows]
    return pad_sequences(rows, PAD_ID, max_len)


def lengths_of(x: torch.Tensor, pad_id: int = PAD_ID) -> torch.Tensor:
    """Number of non-pad tokens of each row of right-padded ids x (B, T): LongTensor (B,)."""
    return (x != pad_id).sum(dim=-1).long()


def trim_padding(x: torch.Tensor, pad_id: int = PAD_ID) -> torch.Tensor:
    """Drop the trailing columns of x (B, T) that are padding in every row (at least 1 column kept)."""
    if x.dim() != 2 or x.size(1) == 0:
        return x
    n = int(lengths_of(x, pad_id).max().item()) if x.size(0) else 0
    return x[:, : max(n, 1)]


class TextDataset(torch.utils.data.Dataset):
    """Labelled texts encoded on the fly: ``ds[i]`` = (ids LongTensor (T_i,), label).

    For a DataLoader use ``collate_fn=ds.collate``, which pads a batch and returns its lengths;
    :meth:`to_split` encodes everything into the in-memory :class:`ArraySplit` that the
    engine's loaders iterate.

    Args:
        texts: raw texts.
        labels: one per text (class ids), or None.
        vocab: the vocab.
        max_len: cut each encoding to this many ids.
        add_bos, add_eos: frame each encoding.
    """

    def __init__(
        self,
        texts: Sequence[str],
        labels: Sequence[int] | None,
        vocab: Vocab,
        max_len: int | None = None,
        add_bos: bool = False,
        add_eos: bool = False,
    ) -> None:
        if labels is not None and len(labels) != len(texts):
            raise ValueError(f"{len(texts)} texts but {len(labels)} labels")
        self.texts, self.labels, self.vocab = list(texts), labels, vocab
        self.max_len, self.add_bos, self.add_eos = max_len, add_bos, add_eos

    def __len__(self) -> int:
        return len(self.texts)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        ids = self.vocab.encode(self.texts[i], self.add_bos, self.add_eos, self.max_len) or [UNK_ID]
        label = -1 if self.labels is None else int(self.labels[i])
        return torch.tensor(ids, dtype=torch.long), label

    @staticmethod
    def collate(batch: Sequence[tuple[torch.Tensor, int]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(x (B, T) right-padded ids, y (B,) labels, lengths (B,))."""
        seqs = [ids.tolist() for ids, _ in batch]
        x = pad_sequences(seqs)
        y = torch.tensor([label for _, label in batch], dtype=torch.long)
        return x, y, torch.tensor([len(s) for s in seqs], dtype=torch.long)

    def to_split(self) -> ArraySplit:
        """Everything encoded: x (N, T) (T = ``max_len`` or the longest), y (N,)."""
        x = encode_batch(self.vocab, self.texts, self.max_len, self.add_bos, self.add_eos, unk_if_empty=True)
        labels = [-1] * len(self.texts) if self.labels is None else [int(v) for v in self.labels]
        return ArraySplit(x, torch.tensor(labels, dtype=torch.long))


# --------------------------------------------------------------------------------------------
# Length bucketing
# --------------------------------------------------------------------------------------------


def _bucket_keys(split: ArraySplit, pad_id: int) -> torch.Tensor:
    """A sort key per row: the length of x, then (seq2seq) the length of y. Zeros when x is not ids."""
    x, y = split.x, split.y
    if x.dim() != 2 or x.is_floating_point():
        return torch.zeros(len(split), dtype=torch.long)
    key = lengths_of(x, pad_id)
    if y.dim() == 2 and not y.is_floating_point():
        key = key * (y.size(1) + 1) + lengths_of(y, pad_id)
    return key


class BucketLoader(TensorLoader):
    """A :class:`TensorLoader` whose training batches hold rows of similar length.

    With ``shuffle=True`` each epoch's order is: a permutation drawn from ``(seed, epoch)``; within
    each chunk of ``chunk_factor * batch_size * world_size`` rows, a stable sort by length (of x,
    then of y for seq2seq); a cut into batches of ``batch_size * world_size`` rows; and a shuffle
    of the full batches (a smaller last batch stays last, so ``drop_last`` drops it). Every row
    is seen once per epoch, and the order depends on ``(seed, epoch)`` alone, so
    ``set_epoch(epoch, start_batch)`` resumes mid-epoch exactly. With ``world_size`` > 1 rank r
    takes every ``world_size``-th row of each global batch, so every rank's batches are bucketed
    too. With ``shuffle=False`` (evaluation) the order is the plain row order.

    Args:
        split, batch_size, shuffle, drop_last, seed, rank, world_size, transform, device: as
            :class:`TensorLoader`.
        lengths: the sort key per row (N,); default the non-pad length of x (plus y's for seq2seq).
        pad_id: the padding id used to measure lengths.
        chunk_factor: rows sorted together = ``chunk_factor`` batches (100: little padding, yet
            batches still vary from epoch to epoch).
    """

    def __init__(
        self,
        split: ArraySplit,
        batch_size: int,
        *,
        shuffle: bool = False,
        drop_last: bool = False,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
        device: torch.device | str = "cpu",
        lengths: torch.Tensor | None = None,
        pad_id: int = PAD_ID,
        chunk_factor: int = 100,
    ) -> None:
        super().__init__(split, batch_size, shuffle=shuffle, drop_last=drop_last, seed=seed, rank=rank,
                         world_size=world_size, transform=transform, device=device)
        if chunk_factor < 1:
            raise ValueError(f"chunk_factor must be >= 1, got {chunk_factor}")
        self.chunk_factor = chunk_factor
        keys = _bucket_keys(split, pad_id) if lengths is None else torch.as_tensor(lengths).long().cpu()
        if len(keys) != len(split):
            raise ValueError(f"lengths has {len(keys)} entries for {len(split)} rows")
        self.lengths = keys

    def indices(self) -> torch.Tensor:
        if not self.shuffle:
            return super().indices()
        n, w = len(self.split), self.world_size
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        order = torch.randperm(n, generator=g)
        total = self.per_rank * w
        if total > n:  # as TensorLoader: wrap around so every rank gets as many rows
            order = torch.cat([order, order[: total - n]])
        gb = self.batch_size * w  # one global batch: every rank's batch b
        chunk = self.chunk_factor * gb
        parts = []
        for start in range(0, total, chunk):
            idx = order[start : start + chunk]
            parts.append(idx[torch.sort(self.lengths[idx], stable=True).indices])
        order = torch.cat(parts)
        n_full = total // gb
        batches = order[: n_full * gb].view(n_full, gb)
        batches = batches[torch.randperm(n_full, generator=g)]
        order = torch.cat([batches.reshape(-1), order[n_full * gb :]])
        if w > 1:
            order = order[self.rank :: w]
        return order
