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
    kinds = {"image": "classification", "tabular": "classification", "graph_nodes": "node_classification",
             "graph_set": "graph_classification", "text": "text_classification", "lm": "language_model",
             "seq2seq": "seq2seq", "series": "forecast"}
    name = getattr(model, "task", None) or kinds.get(info.kind)
    if name == "classification":
        from archlab.tasks.classification import ClassificationTask

        return ClassificationTask(model, loss=cfg.train.loss, label_smoothing=cfg.train.label_smoothing,
                                  mixup=cfg.data.mixup, cutmix=cfg.data.cutmix)
    if name in ("node_classification", "graph_classification"):
        from archlab.tasks.graph import GraphClassificationTask, NodeClassificationTask

        cls = NodeClassificationTask if name == "node_classification" else GraphClassificationTask
        if kinds.get(info.kind) != name:
            raise ValueError(f"{type(model).__name__} does {name.replace('_', ' ')}, but {info.name} is {info.kind} data; "
                             f"pick a dataset of that kind (`archlab list datasets --family graph`)")
        return cls(model, label_smoothing=cfg.train.label_smoothing)
    if name in ("text_classification", "language_model", "forecast"):
        from archlab.tasks import sequence

        return sequence.build_sequence_task(name, model, info, cfg)
    if name == "seq2seq":
        from archlab.tasks.seq2seq import Seq2SeqTask

        return Seq2SeqTask.from_config(model, info, cfg)
    if name in ("generative", "adversarial"):
        from archlab.tasks.generative import build_generative_task

        return build_generative_task(model, info, cfg)
    if name == "masked_lm":
        from archlab.tasks.mlm import MaskedLMTask

        return MaskedLMTask.from_config(model, info, cfg)
    raise ValueError(f"no task trains a {type(model).__name__} on {info.kind} data ({info.name})")
