"""How each family is trained. ``build_task`` picks the task for a model and a dataset."""

from __future__ import annotations

from typing import Any

from archlab.tasks.base import StepContext, Task

__all__ = ["Task", "StepContext", "build_task"]


def build_task(model: Any, info: Any, cfg: Any) -> Task:
    """The task for ``model`` on a dataset described by ``info`` under run config ``cfg``.

    A model may name its task (``model.task = "classification"``); otherwise the dataset's kind
    decides. Later families add their tasks here.
    """
    name = getattr(model, "task", None) or {"image": "classification", "tabular": "classification"}.get(info.kind)
    if name == "classification":
        from archlab.tasks.classification import ClassificationTask

        return ClassificationTask(model, loss=cfg.train.loss, label_smoothing=cfg.train.label_smoothing)
    raise ValueError(f"no task trains a {type(model).__name__} on {info.kind} data ({info.name})")
