"""Optimizers and learning-rate schedules built from ``TrainSection``.

Schedules are stepped once per optimizer step (``plateau`` once per evaluation). Epoch-based
settings (``warmup_epochs``, ``step_size``) are converted to steps with ``steps_per_epoch``.

    constant  lr
    linear    lr * (1 - t)                         after warmup, t in [0, 1] over the run
    cosine    min_lr + (lr - min_lr) * (1 + cos(pi t)) / 2   after warmup (Loshchilov & Hutter, 2017)
    step      lr * gamma ** floor(epoch / step_size)
    onecycle  Smith & Topin (2018): warm up to lr for ``onecycle_pct_start`` of the run, then anneal
    plateau   lr * gamma when ``train.monitor`` stops improving for ``plateau_patience`` evaluations
    inverse_sqrt  lr * min(s / w, sqrt(w / s)) at optimizer step s = 1, 2, ... with w warmup steps:
              linear warmup to lr at step w, then decay as 1/sqrt(s) (Vaswani et al. 2017, Eq. 3,
              https://arxiv.org/abs/1706.03762; fairseq's ``inverse_sqrt``). With lr set to the
              paper's peak d_model^-0.5 * w^-0.5 this is exactly the paper's
              d_model^-0.5 * min(s^-0.5, s * w^-1.5). Without warmup it decays from lr at step 1;
              the factor never goes below ``min_lr / lr``.

Warmup (linear from 0) applies to constant, linear, cosine, step and inverse_sqrt. Param groups
with their own learning rates (``archlab.transfer``'s discriminative fine-tuning) keep their
ratios under every schedule: the factors above multiply each group's own lr, and one-cycle peaks
at each group's lr.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable
from typing import Any

import torch

from archlab.config import TrainSection

__all__ = ["SchedulerGroup", "build_optimizer", "build_scheduler", "param_groups"]


def param_groups(
    params: Iterable[Any], weight_decay: float, skip: set[str] = frozenset(), lr: float | None = None
) -> list[dict[str, Any]]:
    """Decay weights of matrices and kernels only; biases and norm parameters get none (as GPT-2/timm).

    ``skip`` names further parameters without decay (a model's ``no_weight_decay()``, timm's hook).
    ``lr`` gives the groups their own learning rate (discriminative fine-tuning, archlab.transfer).
    """
    named = list(params)
    extra = {} if lr is None else {"lr": lr}
    if not named or not isinstance(named[0], tuple):
        return [{"params": named, "weight_decay": weight_decay, **extra}]
    decay = [p for n, p in named if p.requires_grad and p.ndim >= 2 and n not in skip]
    no_decay = [p for n, p in named if p.requires_grad and (p.ndim < 2 or n in skip)]
    groups = [{"params": decay, "weight_decay": weight_decay, **extra}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0, **extra})
    return groups


def build_optimizer(
    named_params: Iterable[tuple[str, torch.nn.Parameter]] | Iterable[dict[str, Any]],
    cfg: TrainSection,
    no_weight_decay: set[str] = frozenset(),
) -> torch.optim.Optimizer:
    """The optimizer named by ``cfg.optimizer`` over ``named_params`` (name, parameter) pairs.

    ``named_params`` may instead be ready param groups (dicts with ``params`` and their own
    ``lr``/``weight_decay``, from :func:`archlab.transfer.apply_finetune`): they are used as given,
    ``cfg.lr`` being the default of a group without an ``lr``.
    """
    items = list(named_params)
    if items and isinstance(items[0], dict):
        groups = [dict(g) for g in items]
    else:
        groups = param_groups(items, cfg.weight_decay, no_weight_decay)
    name = cfg.optimizer
    if name == "sgd":
        return torch.optim.SGD(
            groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov and cfg.momentum > 0
        )
    if name == "adam":
        return torch.optim.Adam(groups, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps)
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps)
    if name == "rmsprop":
        return torch.optim.RMSprop(groups, lr=cfg.lr, momentum=cfg.momentum)
    if name == "adagrad":
        return torch.optim.Adagrad(groups, lr=cfg.lr)
    raise ValueError(f"unknown optimizer {name!r}")


def build_scheduler(
    optimizer: torch.optim.Optimizer, cfg: TrainSection, steps_per_epoch: int, total_steps: int
):
    """The LR scheduler for ``cfg.schedule``; None for a constant LR without warmup."""
    warmup = int(round(cfg.warmup_epochs * steps_per_epoch))
    total = max(total_steps, 1)
    name = cfg.schedule
    if name == "onecycle":
        # Each param group peaks at its own lr (discriminative learning rates keep their ratios).
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer,
            max_lr=[g["lr"] for g in optimizer.param_groups],
            total_steps=total,
            pct_start=cfg.onecycle_pct_start,
        )
    if name == "plateau":
        mode = cfg.monitor_mode
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode=mode, factor=cfg.gamma, patience=cfg.plateau_patience, min_lr=cfg.min_lr
        )
    if name == "constant" and warmup == 0:
        return None
    floor = cfg.min_lr / cfg.lr
    step_size = max(cfg.step_size * steps_per_epoch, 1)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if name == "inverse_sqrt":  # step + 1 = s, the 1-based optimizer step this lr is used for
            return max(floor, math.sqrt(max(warmup, 1) / (step + 1)))
        t = min((step - warmup) / max(total - warmup, 1), 1.0)
        if name == "cosine":
            return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * t))
        if name == "linear":
            return floor + (1 - floor) * (1 - t)
        if name == "step":
            return cfg.gamma ** (step // step_size)
        return 1.0

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


class SchedulerGroup:
    """The engine's schedule: one LR scheduler per optimizer it drives (one for most tasks; a GAN's
    generator and discriminator each get theirs), stepped together so they follow the same batch
    count. ``on_metric``: a ``plateau`` schedule, stepped with the monitored metric each epoch."""

    def __init__(self, schedulers: list[Any]) -> None:
        self.schedulers = schedulers
        self.on_metric = isinstance(schedulers[0], torch.optim.lr_scheduler.ReduceLROnPlateau)

    @classmethod
    def build(cls, optimizers: list[torch.optim.Optimizer], cfg: TrainSection, steps_per_epoch: int,
              total_steps: int) -> SchedulerGroup | None:
        """A group for ``optimizers``; None when ``cfg`` asks for a constant LR."""
        scheds = [build_scheduler(o, cfg, steps_per_epoch, total_steps) for o in optimizers]
        return cls(scheds) if scheds and scheds[0] is not None else None

    def step(self, metric: float | None = None) -> None:
        # The schedule counts batches: an optimizer that skips batches (a generator stepping once per
        # n critic steps) sees its scheduler step first, which is intended here, so torch's warning is not.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step\\(\\)` before")
            for s in self.schedulers:
                s.step(metric) if self.on_metric else s.step()

    def state_dict(self) -> dict[str, Any]:
        return {"schedulers": [s.state_dict() for s in self.schedulers]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        saved = state["schedulers"] if "schedulers" in state else [state]  # older checkpoints: one scheduler
        for s, one in zip(self.schedulers, saved):
            s.load_state_dict(one)

