"""Classification: logits (B, K) against integer labels (B,).

Losses (``train.loss``; ``auto`` takes the model's ``preferred_loss``, else cross-entropy):

    cross_entropy  -log softmax(z)_y                     (with optional label smoothing)
    perceptron     max(0, max_j z_j - z_y)               Rosenblatt's criterion, multi-class form
    hinge          max(0, 1 + max_{j != y} z_j - z_y)    Crammer & Singer's multi-class hinge
    mse            ||softmax(z) - onehot(y)||^2 / K
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from archlab.tasks.base import Task

__all__ = ["ClassificationTask", "classification_loss"]


def classification_loss(logits: torch.Tensor, y: torch.Tensor, kind: str, label_smoothing: float = 0.0) -> torch.Tensor:
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


class ClassificationTask(Task):
    """Supervised classification of images or feature vectors."""

    def __init__(self, model: nn.Module, loss: str = "auto", label_smoothing: float = 0.0) -> None:
        super().__init__(model)
        self.loss_kind = getattr(model, "preferred_loss", "cross_entropy") if loss == "auto" else loss
        self.label_smoothing = label_smoothing

    def _step(self, batch: tuple[torch.Tensor, torch.Tensor], smoothing: float) -> dict[str, torch.Tensor]:
        x, y = batch
        logits = self.model(x)  # (B, K)
        loss = classification_loss(logits, y, self.loss_kind, smoothing)
        acc = (logits.argmax(dim=1) == y).float().mean()
        return {"loss": loss, "acc": acc}

    def training_step(self, batch, ctx=None):
        return self._step(batch, self.label_smoothing)

    def validation_step(self, batch):
        return self._step(batch, 0.0)
