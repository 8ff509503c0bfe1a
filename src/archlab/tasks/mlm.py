"""Masked language modelling: BERT's pre-training task 1 on a text dataset's token ids.

    J. Devlin, M.-W. Chang, K. Lee, K. Toutanova, "BERT: Pre-training of Deep Bidirectional
    Transformers for Language Understanding", NAACL 2019, https://arxiv.org/abs/1810.04805

Each batch's token ids x (B, T) (the inputs of a ``text`` dataset, labels ignored, or the windows
of an ``lm`` dataset) are corrupted on the fly by :func:`archlab.models.transformer.mlm.mask_tokens`
(15% of the non-special tokens chosen; 80% -> [MASK], 10% -> random, 10% kept), and the model
(:class:`~archlab.models.transformer.bert.BertForMaskedLM`, ids (B, T) -> logits (B, T, V))
predicts the original ids at the chosen positions::

    loss = mean_{t chosen} -log softmax(logits_t)[x_t]          (nats per masked token)
    acc  = mean_{t chosen} [argmax logits_t == x_t]            (masked-token accuracy)

Training batches draw a new corruption every time (a generator seeded by ``train.seed`` and
advanced batch by batch: RoBERTa's dynamic masking). Validation and test batches are corrupted
by a generator seeded from the seed and the batch's own contents, so each evaluation masks the
same positions and the figures compare across epochs.

Deviations from the paper:
    - The ids that are never masked are the padding, ``[CLS]``, ``[SEP]``/``<eos>``, ``[MASK]`` and
      ``<bos>``; ``<unk>``/``[UNK]`` is ordinary text and can be chosen.
    - No next-sentence prediction (RoBERTa, Liu et al. 2019, dropped it); no sentence pairs.
    - The training corruption stream is not part of a checkpoint: a resumed run masks its
      batches differently from an uninterrupted one (the expected loss is the same).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from archlab.models.transformer.mlm import IGNORE_INDEX, mask_tokens
from archlab.tasks.base import Task

__all__ = ["MaskedLMTask"]


class MaskedLMTask(Task):
    """Masked-token cross-entropy and accuracy of a masked language model; see the module docstring.

    Args:
        model: token ids (B, T) -> logits (B, T, V); has ``mask_id`` (the [MASK] id).
        vocab_size: random replacements come from ``[0, vocab_size)`` minus the special ids
            (default: ``model.config.vocab_size``).
        special_ids: ids never chosen (default: the model's ``special_ids()`` and archlab's
            ``<pad>``, ``<bos>``, ``<eos>``; :meth:`from_config` takes a pretrained tokenizer's
            ``[PAD]``, ``[CLS]``, ``[SEP]``, ``[MASK]`` from its ``special_ids``).
        pad_id: padding id; all-padding columns are cut from each batch.
        prob: fraction of tokens chosen (0.15).
        seed: seed of the corruption.
    """

    predictions_kind = "masked_lm"

    def __init__(self, model: nn.Module, *, vocab_size: int | None = None, special_ids: Any = None,
                 pad_id: int = 0, prob: float = 0.15, seed: int = 0) -> None:
        super().__init__(model)
        if not hasattr(model, "mask_id"):
            name = getattr(model, "model_name", type(model).__name__)
            raise ValueError(f"{name} is not a masked language model (no mask_id); use a bert_mlm_* model "
                             f"(`archlab list models --family transformer`)")
        from archlab.data.text import BOS_ID, EOS_ID, PAD_ID

        self.mask_id = int(model.mask_id)
        self.vocab_size = int(vocab_size if vocab_size is not None else model.config.vocab_size)
        if special_ids is None:
            own = model.special_ids() if hasattr(model, "special_ids") else [self.mask_id]
            special_ids = {*own, PAD_ID, BOS_ID, EOS_ID, pad_id}
        self.special_ids = sorted({int(i) for i in special_ids} | {self.mask_id})
        self.pad_id, self.prob, self.seed = pad_id, prob, seed
        self._gen: torch.Generator | None = None

    @classmethod
    def from_config(cls, model: nn.Module, info: Any, cfg: Any) -> MaskedLMTask:
        """The task for ``model`` on a ``text`` or ``lm`` dataset ``info`` under run config ``cfg``."""
        if info.kind not in ("text", "lm"):
            name = getattr(model, "model_name", type(model).__name__)
            raise ValueError(f"{name} does masked language modelling, but {info.name} is {info.kind} data; pick a "
                             f"text or lm dataset (`archlab list datasets`)")
        vocab = info.vocab
        pad_id = getattr(vocab, "pad_id", 0) if vocab is not None else 0
        vocab_size = len(vocab) if vocab is not None else None
        special_ids = None
        if vocab is not None and getattr(vocab, "special_ids", None) is not None:  # a checkpoint's tokenizer
            own = model.special_ids() if hasattr(model, "special_ids") else []
            special_ids = {*vocab.special_ids, *own, pad_id}
        return cls(model, vocab_size=vocab_size, special_ids=special_ids, pad_id=pad_id, seed=cfg.train.seed)

    def _ids(self, batch: Any) -> torch.Tensor:
        from archlab.data.text import trim_padding

        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        return trim_padding(x, self.pad_id)  # (B, T')

    def _corrupt(self, x: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        return mask_tokens(x, mask_id=self.mask_id, vocab_size=self.vocab_size, special_ids=self.special_ids,
                           prob=self.prob, generator=generator)

    def _metrics(self, inputs: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        logits = self.model(inputs)  # (B, T, V)
        loss = F.cross_entropy(logits.flatten(0, 1).float(), labels.flatten(), ignore_index=IGNORE_INDEX)
        chosen = labels != IGNORE_INDEX  # (B, T)
        hits = (logits.argmax(dim=-1) == labels) & chosen
        return {"loss": loss, "acc": hits.sum() / chosen.sum().clamp_min(1)}

    def training_step(self, batch, ctx=None):
        x = self._ids(batch)
        if self._gen is None or self._gen.device != x.device:
            self._gen = torch.Generator(device=x.device).manual_seed(self.seed)
        return self._metrics(*self._corrupt(x, self._gen))

    def validation_step(self, batch):
        x = self._ids(batch)
        # The same corruption of the same batch at every evaluation: seed from the batch itself.
        key = int((x * (torch.arange(x.shape[1], device=x.device) + 1)).sum()) + 7919 * x.shape[0]
        gen = torch.Generator(device=x.device).manual_seed((self.seed * 1_000_003 + key) % (2**63))
        return self._metrics(*self._corrupt(x, gen))

    def predict_step(self, batch):
        return self.model(self._ids(batch))  # (B, T, V)

    def predict_with_targets(self, batch):
        """Logits (B, T, V) of the uncorrupted ids and the ids (B, T) themselves."""
        x = self._ids(batch)
        return self.model(x), x

    def make_loaders(self, bundle: Any, trainer: Any) -> tuple[Any, Any, Any]:
        from archlab.data.base import TensorLoader
        from archlab.tasks.sequence import _loaders

        t = bundle.train.x.shape[1] if bundle.train.x.dim() == 2 else 1
        eval_bs = max(1, min(trainer.cfg.data.eval_batch_size, 2**25 // (t * self.vocab_size)))  # bound (B, T, V)
        return _loaders(bundle, trainer, TensorLoader, eval_batch_size=eval_bs)
