"""The task contract: how a family is trained (d2l's Module; Lightning's LightningModule, slimmed).

A :class:`Task` wraps the network (``self.model``) and says how one batch becomes a loss and
metrics. The engine (:class:`archlab.engine.Trainer`) owns everything else: devices, precision,
accumulation, clipping, schedules, checkpoints, logging.

    training_step(batch)   -> {"loss": scalar tensor, other metrics...}
    validation_step(batch) -> {"loss": ..., metrics...}   (batch means; the engine weights by batch size)
    predict_step(batch)    -> model outputs (logits) for reports and ``archlab predict``

Families that step their own optimizers (GANs, WGAN critics) set ``automatic_optimization =
False``; their ``training_step(batch, ctx)`` receives a :class:`StepContext` with the optimizers
and ``ctx.backward(loss)`` / ``ctx.step(optimizer)`` that apply precision, scaling and clipping.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from archlab.config import TrainSection

__all__ = ["Task", "StepContext"]


@dataclass
class StepContext:
    """What a manually optimised task gets each step."""

    optimizers: list[torch.optim.Optimizer]
    backward: Callable[[torch.Tensor], None]
    step: Callable[[torch.optim.Optimizer], None]
    global_step: int
    autocast: Callable[[], Any]  # `with ctx.autocast():` around each network's forward


class Task(nn.Module):
    """Base class of the training logic of a family. Subclasses implement the ``*_step`` methods."""

    automatic_optimization: bool = True

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.model(*args, **kwargs)

    def training_step(self, batch: Any, ctx: StepContext | None = None) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def validation_step(self, batch: Any) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def predict_step(self, batch: Any) -> torch.Tensor:
        return self.model(batch[0] if isinstance(batch, (tuple, list)) else batch)

    def predict_with_targets(self, batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """(outputs, targets) of a batch, for predictions files and reports."""
        return self.predict_step(batch), batch[1]

    def batch_size(self, batch: Any) -> int:
        first = batch[0] if isinstance(batch, (tuple, list)) else batch
        return len(first)

    def configure_optimizers(self, cfg: TrainSection) -> list[torch.optim.Optimizer]:
        """One optimizer over every trainable parameter, from ``cfg``; GANs return one per network.

        Fine-tuning settings (``train.finetune``, ``layer_lr_decay``, ``unfreeze_every``) freeze
        layer groups and give each group its own lr (:func:`archlab.transfer.apply_finetune`).
        """
        from archlab.engine.optim import build_optimizer

        skip = set(self.model.no_weight_decay()) if hasattr(self.model, "no_weight_decay") else set()
        if cfg.finetune != "full" or cfg.layer_lr_decay != 1.0 or cfg.unfreeze_every:
            from archlab.transfer import apply_finetune

            groups = apply_finetune(
                self.model,
                cfg.finetune,
                cfg.trainable_groups,
                cfg.lr,
                cfg.layer_lr_decay,
                weight_decay=cfg.weight_decay,
                no_weight_decay=skip,
                gradual=bool(cfg.unfreeze_every),
            )
            return [build_optimizer(groups, cfg)]
        return [build_optimizer(self.model.named_parameters(), cfg, skip)]
