"""Classification: logits (B, K) against integer labels (B,).

Losses (``train.loss``; ``auto`` takes the model's ``preferred_loss``, else cross-entropy):

    cross_entropy  -log softmax(z)_y                     (with optional label smoothing)
    perceptron     max(0, max_j z_j - z_y)               Rosenblatt's criterion, multi-class form
    hinge          max(0, 1 + max_{j != y} z_j - z_y)    Crammer & Singer's multi-class hinge
    mse            ||softmax(z) - onehot(y)||^2 / K

Batch mixing (``data.mixup`` / ``data.cutmix``: the Beta alpha, 0 = off), training only. mixup
(Zhang et al., ICLR 2018, https://arxiv.org/abs/1710.09412) or CutMix (Yun et al., ICCV 2019,
https://arxiv.org/abs/1905.04899) turns a batch (x, y) into (x~, y_a, y_b, lam)
(:func:`archlab.data.transforms.mixup_batch`, :func:`~archlab.data.transforms.cutmix_batch`), and

    loss = lam * L(f(x~), y_a) + (1 - lam) * L(f(x~), y_b)

with label smoothing still applied inside each L. For cross-entropy this equals the loss against
the mixed soft target ``lam * onehot(y_a) + (1 - lam) * onehot(y_b)`` (smoothed). When both are
on, each batch uses one of them, chosen 50/50 (as timm does). The training accuracy of a mixed
batch is ``lam * acc(pred, y_a) + (1 - lam) * acc(pred, y_b)``: the accuracy against ``y_a``
weighted by ``lam``, plus that against ``y_b`` weighted by ``1 - lam`` (as in the mixup reference
code). It is not comparable with the accuracy of clean batches; validation and test batches are
never mixed.

Deviations from the paper:

* One ``lam`` (and, for CutMix, one box) per batch, as in both papers' reference code. The
  mixing partner is a random permutation of the batch (the mixup paper's code does the same).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from archlab.data.transforms import cutmix_batch, mixup_batch
from archlab.tasks.base import Task

__all__ = ["ClassificationTask", "classification_loss", "mixed_classification_loss"]


def classification_loss(
    logits: torch.Tensor, y: torch.Tensor, kind: str, label_smoothing: float = 0.0
) -> torch.Tensor:
    """The mean loss of ``kind`` over a batch; see the module docstring for the formulas."""
    logits = logits.float()  # (B, K); losses in fp32 also under mixed precision
    if kind == "cross_entropy":
        return F.cross_entropy(logits, y, label_smoothing=label_smoothing)
    true = logits.gather(1, y[:, None]).squeeze(1)  # (B,)
    if kind == "perceptron":
        return (logits.max(dim=1).values - true).clamp_min(0).mean()
    if kind == "hinge":
        others = logits.scatter(1, y[:, None], float("-inf"))
        return (1 + others.max(dim=1).values - true).clamp_min(0).mean()
    if kind == "mse":
        target = F.one_hot(y, logits.shape[1]).float()
        return F.mse_loss(logits.softmax(dim=1), target)
    raise ValueError(f"unknown classification loss {kind!r}")


def mixed_classification_loss(
    logits: torch.Tensor,
    y_a: torch.Tensor,
    y_b: torch.Tensor,
    lam: float,
    kind: str,
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    """``lam * L(logits, y_a) + (1 - lam) * L(logits, y_b)``: the loss of a mixup/CutMix batch."""
    return lam * classification_loss(logits, y_a, kind, label_smoothing) + (1.0 - lam) * classification_loss(
        logits, y_b, kind, label_smoothing
    )


class ClassificationTask(Task):
    """Supervised classification of images or feature vectors.

    Args:
        model: the network, inputs -> logits (B, K).
        loss: ``"auto"`` or a loss name (see the module docstring).
        label_smoothing: of the training loss (cross-entropy only).
        mixup: Beta alpha of mixup on training batches; 0 = off.
        cutmix: Beta alpha of CutMix on training batches (images only); 0 = off. With both on,
            each batch uses one, chosen 50/50.
    """

    def __init__(
        self,
        model: nn.Module,
        loss: str = "auto",
        label_smoothing: float = 0.0,
        mixup: float = 0.0,
        cutmix: float = 0.0,
    ) -> None:
        super().__init__(model)
        if mixup < 0 or cutmix < 0:
            raise ValueError(
                f"data.mixup and data.cutmix are Beta alphas: >= 0 (0 = off), got {mixup} and {cutmix}"
            )
        self.loss_kind = getattr(model, "preferred_loss", "cross_entropy") if loss == "auto" else loss
        self.label_smoothing = label_smoothing
        self.mixup = float(mixup)
        self.cutmix = float(cutmix)

    def _step(self, batch: tuple[torch.Tensor, torch.Tensor], smoothing: float) -> dict[str, torch.Tensor]:
        x, y = batch
        logits = self.model(x)  # (B, K)
        loss = classification_loss(logits, y, self.loss_kind, smoothing)
        acc = (logits.argmax(dim=1) == y).float().mean()
        return {"loss": loss, "acc": acc}

    def _mixer(self):
        """The batch mixing for this step (mixup_batch, cutmix_batch, or None) and its alpha."""
        if self.mixup > 0 and self.cutmix > 0:
            # One coin per batch from the global CPU generator (restored on resume).
            use_cutmix = bool(torch.rand(()) < 0.5)
            return (cutmix_batch, self.cutmix) if use_cutmix else (mixup_batch, self.mixup)
        if self.cutmix > 0:
            return cutmix_batch, self.cutmix
        if self.mixup > 0:
            return mixup_batch, self.mixup
        return None, 0.0

    def _aux_loss(self, y: torch.Tensor) -> torch.Tensor | float:
        """Auxiliary-head losses of the last forward (GoogLeNet's ``aux_loss``), else 0."""
        aux = getattr(self.model, "aux_loss", None)
        return aux(y) if aux is not None and self.model.training else 0.0

    def training_step(self, batch, ctx=None):
        mix, alpha = self._mixer()
        if mix is None:
            out = self._step(batch, self.label_smoothing)
            out["loss"] = out["loss"] + self._aux_loss(batch[1])
            return out
        x, y = batch
        if mix is cutmix_batch and x.dim() != 4:
            raise ValueError(
                f"data.cutmix needs image batches (B, C, H, W), got shape {tuple(x.shape)}; use data.mixup"
            )
        x, y_a, y_b, lam = mix(x, y, alpha)
        logits = self.model(x)  # (B, K)
        loss = mixed_classification_loss(logits, y_a, y_b, lam, self.loss_kind, self.label_smoothing)
        loss = loss + lam * self._aux_loss(y_a) + (1.0 - lam) * self._aux_loss(y_b)
        pred = logits.argmax(dim=1)  # (B,)
        acc = lam * (pred == y_a).float().mean() + (1.0 - lam) * (pred == y_b).float().mean()
        return {"loss": loss, "acc": acc}

    def validation_step(self, batch):
        return self._step(batch, 0.0)
