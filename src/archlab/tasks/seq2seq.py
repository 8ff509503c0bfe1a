"""Sequence-to-sequence training (translation, synthetic transduction): loss, token accuracy, BLEU.

Batches are ``(x, y)``: x (B, S) source ids ``w_1 .. w_n <eos> <pad>..``, y (B, T) target ids
``<bos> y_1 .. y_m <eos> <pad>..`` (``archlab.data.text``). Each batch's all-padding columns are
cut off first (``trim_padding``); the decoder reads ``y[:, :-1]`` and predicts ``y[:, 1:]``::

    loss = mean over non-pad targets of -log softmax(logits_t)[y_t]      (nats per token)
    acc  = mean over non-pad targets of [argmax logits_t == y_t]         (token accuracy)

Training feeds the true previous token with probability ``train.teacher_forcing`` per step
(scheduled sampling; :class:`archlab.models.rnn.seq2seq.Seq2Seq`); validation is always teacher
forced, so ``val/loss`` is comparable between ratios. ``exp(loss)`` is the per-token perplexity;
since the engine averages batch means, the exact token-weighted ``ppl`` is computed at the final
evaluation.

Final evaluation (:meth:`Seq2SeqTask.final_metrics`, called by the trainer on val and test):

* ``bleu``: corpus BLEU (Papineni et al. 2002, https://aclanthology.org/P02-1040/) of greedy
  translations, computed by ``sacrebleu`` (Post 2018, https://aclanthology.org/W18-6319/) with
  its default ``13a`` tokenization (``char`` for character vocabularies), against the references
  as the target vocab encodes them (decoded with ``Vocab.decode``: lowercased and tokenized by the
  dataset; out-of-vocabulary words read ``<unk>`` in both). The score is on 0..100.
* ``bleu_beam``: the same for beam search with ``train.beam_size`` beams and
  ``train.length_penalty`` (only when ``beam_size > 1``).
* ``exact``: the fraction of greedy outputs identical to the reference (the synthetic tasks'
  "sequence accuracy"), and ``ppl``: exp of the token-weighted mean loss.

Decoding limit: the split's padded target width (the longest reference, <eos> included), so no
hypothesis is longer than the longest reference. :meth:`Seq2SeqTask.translate` (raw text, used
by ``archlab predict``) allows ``2 * source tokens + 10``.

Deviations from the paper:
    - BLEU is computed on the dataset's normalised text (lowercased, punctuation split), i.e.
      "tokenized BLEU" as in most seq2seq tutorials, not detokenized SacreBLEU on raw text; scores
      are therefore a little higher than WMT-style SacreBLEU and comparable only within archlab.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from archlab.data.text import trim_padding
from archlab.tasks.base import Task

__all__ = ["Seq2SeqTask", "bleu_by_length", "bleu_tokenize_for", "corpus_bleu", "decode_ids"]


def corpus_bleu(hypotheses: Sequence[str], references: Sequence[str], tokenize: str = "13a") -> float:
    """Corpus BLEU (0..100) of ``hypotheses`` against one reference each, by ``sacrebleu``.

    Args:
        hypotheses: system outputs, one string per sentence.
        references: the references, in the same order.
        tokenize: sacrebleu's tokenizer: ``13a`` (default, WMT's), ``char``, ``none``, ``intl``...

    Returns:
        The BLEU score; 0.0 for an empty corpus.
    """
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references")
    if not hypotheses:
        return 0.0
    import sacrebleu

    # force=True: archlab's references are tokenized on purpose (see the module docstring), so
    # sacrebleu's "forgot to detokenize" warning does not apply.
    return float(sacrebleu.corpus_bleu(list(hypotheses), [list(references)], tokenize=tokenize, force=True).score)


def bleu_by_length(
    hypotheses: Sequence[str],
    references: Sequence[str],
    lengths: Sequence[int],
    edges: Sequence[int] = (5, 10, 15, 20, 30, 50),
    tokenize: str = "13a",
) -> list[dict[str, Any]]:
    """Corpus BLEU per bucket of ``lengths`` (e.g. source words): rows ``{"lengths", "n", "bleu"}``.

    Bucket i holds lengths in ``(edges[i-1], edges[i]]`` (the first from 0; a last bucket holds the
    rest). Empty buckets are left out.
    """
    bounds = [0, *edges, math.inf]
    rows = []
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        idx = [i for i, n in enumerate(lengths) if lo < n <= hi]
        if not idx:
            continue
        label = f"{lo + 1}-{hi}" if hi != math.inf else f">{lo}"
        rows.append({"lengths": label, "n": len(idx),
                     "bleu": corpus_bleu([hypotheses[i] for i in idx], [references[i] for i in idx], tokenize)})
    return rows


def bleu_tokenize_for(vocab: Any) -> str:
    """sacrebleu's tokenizer for text decoded by ``vocab``: ``char`` for character vocabs, else ``13a``."""
    name = getattr(getattr(vocab, "tokenizer", None), "name", None)
    return "char" if name == "char" else "13a"


def decode_ids(vocab: Any, ids: Sequence[int] | torch.Tensor) -> str:
    """Text of one decoded row, up to its first <eos>, specials dropped; ids as text without a vocab."""
    if isinstance(ids, torch.Tensor):
        ids = ids.tolist()
    if vocab is not None:
        return vocab.decode(ids, skip_special=True, stop_at_eos=True)
    out = []
    for i in ids:  # without a vocab: 0 pad, 2 bos, 3 eos, as archlab.data.text
        if i == 3:
            break
        if i not in (0, 2):
            out.append(str(int(i)))
    return " ".join(out)


class Seq2SeqTask(Task):
    """Trains an encoder-decoder with cross-entropy on the next target token; BLEU at the end.

    Args:
        model: a :class:`~archlab.models.rnn.seq2seq.Seq2Seq` (``forward(src, tgt_in,
            teacher_forcing=)``, ``greedy``, ``beam_search``).
        pad_id: the padding id of sources and targets.
        teacher_forcing: probability of feeding the true previous token while training.
        beam_size: beams for ``bleu_beam`` at the final evaluation (1 = greedy only).
        length_penalty: alpha of beam search's length normalisation.
        label_smoothing: of the training loss.
        src_vocab, tgt_vocab: the dataset's vocabs (for BLEU on text and :meth:`translate`).
        bucket_by_length: training batches of similar lengths (``BucketLoader``).
    """

    predictions_kind = "seq2seq"

    def __init__(
        self,
        model: nn.Module,
        *,
        pad_id: int = 0,
        teacher_forcing: float = 1.0,
        beam_size: int = 1,
        length_penalty: float = 1.0,
        label_smoothing: float = 0.0,
        src_vocab: Any = None,
        tgt_vocab: Any = None,
        bucket_by_length: bool = True,
    ) -> None:
        super().__init__(model)
        missing = [m for m in ("greedy", "beam_search") if not hasattr(model, m)]
        if missing:
            name = getattr(model, "model_name", type(model).__name__)
            raise ValueError(f"{name} is not a sequence-to-sequence model (it has no {' or '.join(missing)}); "
                             f"pick one of `archlab list models --family rnn` named seq2seq_*")
        if not 0.0 <= teacher_forcing <= 1.0:
            raise ValueError(f"teacher_forcing must be a probability in [0, 1], got {teacher_forcing}")
        if beam_size < 1:
            raise ValueError(f"beam_size must be >= 1 (1 = greedy decoding), got {beam_size}")
        self.pad_id = pad_id
        self.teacher_forcing = float(teacher_forcing)
        self.beam_size = int(beam_size)
        self.length_penalty = float(length_penalty)
        self.label_smoothing = float(label_smoothing)
        self.src_vocab = src_vocab
        self.tgt_vocab = tgt_vocab
        self.bucket_by_length = bucket_by_length
        self.samples: dict[str, list[dict[str, str]]] = {}  # a few translations per split, for reports

    @classmethod
    def from_config(cls, model: nn.Module, info: Any, cfg: Any) -> Seq2SeqTask:
        """The task for ``model`` on a seq2seq dataset described by ``info``, from run config ``cfg``."""
        if info.kind != "seq2seq":
            name = getattr(model, "model_name", type(model).__name__)
            raise ValueError(f"{name} does sequence-to-sequence, but {info.name} is {info.kind} data; pick a "
                             f"seq2seq dataset (fra_eng, seq2seq_synthetic)")
        t = cfg.train
        vocab = info.vocab
        tgt = info.target_vocab if info.target_vocab is not None else vocab
        return cls(model, pad_id=getattr(vocab, "pad_id", 0) if vocab is not None else 0,
                   teacher_forcing=t.teacher_forcing, beam_size=t.beam_size, length_penalty=t.length_penalty,
                   label_smoothing=t.label_smoothing, src_vocab=vocab, tgt_vocab=tgt,
                   bucket_by_length=t.bucket_by_length)

    # ------------------------------------------------------------------------------------------
    # steps

    def _split(self, batch: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(src (B, S), decoder inputs (B, T-1), targets (B, T-1)) with padding columns cut."""
        x, y = batch[0], batch[1]
        src = trim_padding(x, self.pad_id)
        y = trim_padding(y, self.pad_id)
        if y.shape[1] < 2:
            raise ValueError(f"targets need <bos> and at least one more token, got width {y.shape[1]}")
        return src, y[:, :-1], y[:, 1:]

    def _metrics(self, logits: torch.Tensor, tgt_out: torch.Tensor, smoothing: float) -> dict[str, torch.Tensor]:
        loss = F.cross_entropy(logits.float().flatten(0, 1), tgt_out.flatten(), ignore_index=self.pad_id,
                               label_smoothing=smoothing)
        real = tgt_out != self.pad_id  # (B, T)
        hits = (logits.argmax(dim=-1) == tgt_out) & real
        acc = hits.sum() / real.sum().clamp(min=1)
        return {"loss": loss, "acc": acc}

    def training_step(self, batch, ctx=None):
        src, tgt_in, tgt_out = self._split(batch)
        logits = self.model(src, tgt_in, teacher_forcing=self.teacher_forcing)  # (B, T, V)
        return self._metrics(logits, tgt_out, self.label_smoothing)

    def validation_step(self, batch):
        src, tgt_in, tgt_out = self._split(batch)
        return self._metrics(self.model(src, tgt_in), tgt_out, 0.0)

    def predict_step(self, batch):
        """Greedy translations (B, L) of a batch's sources."""
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        return self.model.greedy(trim_padding(x, self.pad_id))

    def predict_with_targets(self, batch):
        """(greedy ids (B, T-1), reference ids (B, T-1)): both padded to the split's target width."""
        y = batch[1]
        ids = self.model.greedy(trim_padding(batch[0], self.pad_id), max(y.shape[1] - 1, 1))
        ids = F.pad(ids, (0, y.shape[1] - 1 - ids.shape[1]), value=self.pad_id)
        return ids, y[:, 1:]

    def make_loaders(self, bundle: Any, trainer: Any) -> tuple[Any, Any, Any]:
        """Training batches of similar lengths (``train.bucket_by_length``); evaluation in order."""
        from archlab.data.base import TensorLoader
        from archlab.data.text import BucketLoader

        t, f = trainer.cfg.train, trainer.fabric

        def make(split: Any, train: bool) -> Any:
            if split is None:
                return None
            bs = t.batch_size if train else trainer.cfg.data.eval_batch_size
            cls = BucketLoader if train and self.bucket_by_length else TensorLoader
            return cls(split, bs, shuffle=train, drop_last=train and len(split) >= bs * f.world_size, seed=t.seed,
                       rank=f.global_rank, world_size=f.world_size, device=f.device)

        return make(bundle.train, True), make(bundle.val, False), make(bundle.test, False)

    # ------------------------------------------------------------------------------------------
    # final evaluation

    @torch.no_grad()
    def decode_split(self, loader: Any, beam_size: int = 1) -> dict[str, list]:
        """Translate every batch of ``loader``: ``{"hyp", "ref", "src"}`` texts and ``"src_len"``."""
        out: dict[str, list] = {"hyp": [], "ref": [], "src": [], "src_len": []}
        for batch in loader:
            x, y = batch[0], batch[1]
            limit = max(y.shape[1] - 1, 1)  # the split's longest reference, <eos> included
            src = trim_padding(x, self.pad_id)
            if beam_size > 1:
                ids = self.model.beam_search(src, beam_size, limit, self.length_penalty)
            else:
                ids = self.model.greedy(src, limit)
            for row_ids, row_y, row_x in zip(ids.tolist(), y.tolist(), src.tolist()):
                out["hyp"].append(decode_ids(self.tgt_vocab, row_ids))
                out["ref"].append(decode_ids(self.tgt_vocab, row_y))
                out["src"].append(decode_ids(self.src_vocab, row_x))
                out["src_len"].append(sum(1 for i in row_x if i != self.pad_id) - 1)  # tokens before <eos>
        return out

    @torch.no_grad()
    def final_metrics(self, loader: Any, split: str) -> dict[str, float]:
        """``bleu``, ``exact`` and ``ppl`` of ``loader``'s split, and ``bleu_beam`` when beam_size > 1."""
        tokenize = bleu_tokenize_for(self.tgt_vocab)
        greedy = self.decode_split(loader)
        metrics = {
            "bleu": corpus_bleu(greedy["hyp"], greedy["ref"], tokenize),
            "exact": sum(h == r for h, r in zip(greedy["hyp"], greedy["ref"])) / max(len(greedy["hyp"]), 1),
        }
        self.samples[split] = [{"source": s, "reference": r, "greedy": h}
                               for s, r, h in list(zip(greedy["src"], greedy["ref"], greedy["hyp"]))[:20]]
        if self.beam_size > 1:
            beam = self.decode_split(loader, self.beam_size)
            metrics["bleu_beam"] = corpus_bleu(beam["hyp"], beam["ref"], tokenize)
            for row, h in zip(self.samples[split], beam["hyp"]):
                row["beam"] = h
        total, count = 0.0, 0
        for batch in loader:
            src, tgt_in, tgt_out = self._split(batch)
            logits = self.model(src, tgt_in)
            total += F.cross_entropy(logits.float().flatten(0, 1), tgt_out.flatten(), ignore_index=self.pad_id,
                                     reduction="sum").item()
            count += int((tgt_out != self.pad_id).sum())
        if count:
            metrics["ppl"] = math.exp(min(total / count, 700.0))
        return metrics

    # ------------------------------------------------------------------------------------------
    # raw text

    def encode_sources(self, texts: Sequence[str]) -> torch.Tensor:
        """Raw source texts -> ids (B, S) as the dataset frames them (``w_1 .. w_n <eos>``, padded).

        Unknown words become ``<unk>``; an empty text is just ``<eos>``; a text longer than the
        model's ``max_len`` is cut to ``max_len - 1`` tokens (then <eos>).
        """
        if self.src_vocab is None:
            raise ValueError("translate needs the dataset's source vocab; build the task with Seq2SeqTask.from_config "
                             "(or pass src_vocab=)")
        if isinstance(texts, str):
            texts = [texts]
        from archlab.data.text import encode_batch

        max_len = getattr(getattr(self.model, "config", None), "max_len", None)
        device = next(self.model.parameters()).device
        return encode_batch(self.src_vocab, list(texts), max_len, add_eos=True).to(device)

    @torch.no_grad()
    def translate(self, texts: str | Sequence[str], *, beam_size: int | None = None,
                  max_len: int | None = None) -> list[str]:
        """Translate raw texts (greedy, or beam search when ``beam_size`` > 1; default the task's).

        The model is put in eval mode. ``max_len`` defaults to ``2 * source tokens + 10``.
        """
        return [r["translation"] for r in self.translate_with_attention(texts, beam_size=beam_size, max_len=max_len)]

    @torch.no_grad()
    def translate_with_attention(self, texts: str | Sequence[str], *, beam_size: int | None = None,
                                 max_len: int | None = None) -> list[dict[str, Any]]:
        """Translations with their attention: one dict per text with ``translation``,
        ``source_tokens`` and ``output_tokens`` (``<eos>`` included) and ``attention`` (a NumPy
        array (L_out, L_src), zeros for a model without attention) for
        :func:`archlab.viz.attention.plot_attention`."""
        if self.tgt_vocab is None:
            raise ValueError("translate needs the dataset's target vocab (pass tgt_vocab=)")
        self.model.eval()
        src = self.encode_sources(texts)
        limit = max_len or 2 * src.shape[1] + 10
        k = self.beam_size if beam_size is None else beam_size
        ids = self.model.beam_search(src, k, limit, self.length_penalty) if k > 1 else self.model.greedy(src, limit)
        attn = self.model.last_attention
        rows = []
        for b in range(src.shape[0]):
            s_ids = [i for i in src[b].tolist() if i != self.pad_id]
            o_ids = ids[b].tolist()
            if self.tgt_vocab.eos_id in o_ids:
                o_ids = o_ids[: o_ids.index(self.tgt_vocab.eos_id) + 1]
            o_ids = [i for i in o_ids if i != self.pad_id]
            rows.append({
                "translation": decode_ids(self.tgt_vocab, o_ids),
                "source_tokens": [self.src_vocab.itos[i] for i in s_ids],
                "output_tokens": [self.tgt_vocab.itos[i] for i in o_ids],
                "attention": attn[b, : len(o_ids), : len(s_ids)].float().cpu().numpy(),
            })
        return rows
