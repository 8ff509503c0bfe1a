"""Sequence tasks: text classification, language modelling (with truncated BPTT) and forecasting.

``build_task`` (``archlab.tasks``) sends the dataset kinds here: ``text`` -> text
classification, ``lm`` -> language modelling, ``series`` -> forecasting (a model may name its
task with ``model.task``; the dataset's kind must then match).

Text classification (:class:`TextClassificationTask`): batches (x (B, T) token ids, right-padded;
y (B,) classes). The columns that are padding in every row of a batch are cut off first
(``trim_padding``), then it is :class:`~archlab.tasks.classification.ClassificationTask`:
cross-entropy (with ``train.label_smoothing``; or ``train.loss``) and accuracy. With
``train.bucket_by_length`` (default) the training batches group sentences of similar length
(``archlab.data.text.BucketLoader``), so little padding is read; evaluation keeps the split's order.

Language modelling (:class:`LanguageModelTask`): batches (x (B, T), y (B, T)), y the next token of
each position (``-100`` = ignored position)::

    loss = mean_{t: y_t != -100} -log softmax(logits_t)[y_t]        (nats per token)
    acc  = mean of [argmax logits_t == y_t]                          (next-token accuracy)
    bpc  = loss / ln 2                                               (bits per token/character)
    ppl  = exp(loss)

The engine averages per-batch values, and ``exp`` of a mean is not the mean of ``exp``; so the
batches report ``loss``, ``acc`` and ``bpc`` (linear in the loss, exact when averaged), and the
perplexity ``ppl`` is computed exactly, token-weighted, by :meth:`LanguageModelTask.final_metrics`
at the final evaluation (``val/ppl``, ``test/ppl``). Elsewhere use ``ppl = exp(val/loss)``.

Truncated BPTT (``train.tbptt = k``; Williams & Peng 1990, Elman 1990; char-rnn and AWD-LSTM's
batching, https://arxiv.org/abs/1708.02182): the training windows, read in order and joined, form
one token stream, cut into B = ``train.batch_size`` parallel rows; a training batch is the next
consecutive (B, k) slice (:class:`StreamLoader`). The task keeps the recurrent state at the end of
each batch, detached from the graph, and starts the next batch from it, so the model sees
unbounded context while gradients flow back at most k steps. The state is reset at the start of
every epoch (and on a resume mid-epoch). Without ``train.tbptt`` every batch is a set of the
dataset's windows, each starting from a zero state. Evaluation always reads the dataset's windows
from a zero state, so runs with and without TBPTT are compared on the same footing.

Forecasting (:class:`ForecastTask`): batches (x (B, L, F) scaled windows, y (B, H) scaled future
values of feature 0). Loss: mean squared error in scaled units. Metrics in raw units (feature
0's ``std`` from ``info.std[0]``): ``rmse`` and ``mae``; the final evaluation recomputes both over
the whole split (the per-batch RMSE is not additive) and adds the naive (persistence) and linear
autoregression baselines' ``naive_rmse``, ``naive_mae``, ``linear_rmse``, ``linear_mae``
(:func:`archlab.models.rnn.forecast.baseline_forecasts`).

Predictions (``predict_with_targets``, used for ``predictions.safetensors``): text classification
gives logits (B, K) and labels (B,), like image classification; the language model gives the
next-token logits at each window's last position (B, V) and that target (B,) (all positions
would be B*T*V numbers); the forecaster gives predictions and targets (B, H) in raw units. Each
task says which with ``predictions_kind``.

Deviations from the paper:
    - TBPTT as in char-rnn / AWD-LSTM (k steps forward, k steps back, one optimizer step per
      chunk), not Williams & Peng's general (k1, k2) scheme; the chunk length is fixed (AWD-LSTM
      draws it at random around k) and the carried state is not saved in checkpoints (a run
      resumed mid-epoch restarts it from zero).
"""

from __future__ import annotations

import inspect
import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from archlab.tasks.base import Task
from archlab.tasks.classification import ClassificationTask

__all__ = [
    "build_sequence_task",
    "TextClassificationTask",
    "LanguageModelTask",
    "ForecastTask",
    "StreamLoader",
]

IGNORE_INDEX = -100
_KINDS = {"text_classification": "text", "language_model": "lm", "forecast": "series"}


def build_sequence_task(name: str, model: nn.Module, info: Any, cfg: Any) -> Task:
    """The sequence task ``name`` (``text_classification``, ``language_model``, ``forecast``) for
    ``model`` on a dataset described by ``info``, from run config ``cfg``."""
    if name not in _KINDS:
        raise ValueError(f"unknown sequence task {name!r}; use one of {sorted(_KINDS)}")
    if info.kind != _KINDS[name]:
        model_name = getattr(model, "model_name", type(model).__name__)
        raise ValueError(f"{model_name} does {name.replace('_', ' ')}, but {info.name} is {info.kind} data; pick a "
                         f"{_KINDS[name]} dataset (`archlab list datasets`) or a model for {info.kind} data")
    t = cfg.train
    if name == "text_classification":
        pad_id = getattr(info.vocab, "pad_id", 0) if info.vocab is not None else 0
        return TextClassificationTask(model, pad_id=pad_id, loss=t.loss, label_smoothing=t.label_smoothing,
                                      bucket_by_length=t.bucket_by_length)
    if name == "language_model":
        vocab_size = len(info.vocab) if info.vocab is not None else None
        return LanguageModelTask(model, tbptt=t.tbptt, vocab_size=vocab_size)
    mean = float(info.mean[0]) if info.mean else 0.0
    std = float(info.std[0]) if info.std else 1.0
    return ForecastTask(model, mean=mean, std=std)


def _loaders(bundle: Any, trainer: Any, train_cls: type, eval_batch_size: int | None = None,
             **train_options: Any) -> tuple:
    """(train, val, test) loaders over a bundle's in-memory splits, with the trainer's seed and shard.

    Uses only ``trainer.cfg`` and ``trainer.fabric.{device, global_rank, world_size}`` (what
    ``archlab.evaluate`` provides too).
    """
    from archlab.data.base import TensorLoader

    t, f = trainer.cfg.train, trainer.fabric

    def make(split: Any, train: bool) -> Any:
        if split is None:
            return None
        bs = t.batch_size if train else (eval_batch_size or trainer.cfg.data.eval_batch_size)
        cls, options = (train_cls, train_options) if train else (TensorLoader, {})
        return cls(split, bs, shuffle=train, drop_last=train and len(split) >= bs * f.world_size, seed=t.seed,
                   rank=f.global_rank, world_size=f.world_size, device=f.device, **options)

    return make(bundle.train, True), make(bundle.val, False), make(bundle.test, False)


# ----------------------------------------------------------------------------------------------
# text classification


class TextClassificationTask(ClassificationTask):
    """Classification of right-padded token-id sequences (B, T) -> logits (B, K).

    Args:
        model: the network, token ids (B, T) -> logits (B, K).
        pad_id: the padding id; all-padding columns are cut from each batch.
        loss: ``"auto"`` or a classification loss (see :mod:`archlab.tasks.classification`).
        label_smoothing: of the training loss.
        bucket_by_length: group training sentences of similar length into batches.
    """

    predictions_kind = "classification"

    def __init__(self, model: nn.Module, pad_id: int = 0, loss: str = "auto", label_smoothing: float = 0.0,
                 bucket_by_length: bool = True) -> None:
        super().__init__(model, loss=loss, label_smoothing=label_smoothing)
        self.pad_id = pad_id
        self.bucket_by_length = bucket_by_length

    def _trim(self, batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
        from archlab.data.text import trim_padding

        x, y = batch[0], batch[1]
        return trim_padding(x, self.pad_id), y

    def training_step(self, batch, ctx=None):
        return super().training_step(self._trim(batch), ctx)

    def validation_step(self, batch):
        return super().validation_step(self._trim(batch))

    def predict_step(self, batch):
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        from archlab.data.text import trim_padding

        return self.model(trim_padding(x, self.pad_id))  # (B, K)

    def make_loaders(self, bundle: Any, trainer: Any) -> tuple[Any, Any, Any]:
        from archlab.data.base import TensorLoader
        from archlab.data.text import BucketLoader

        if self.bucket_by_length:
            return _loaders(bundle, trainer, BucketLoader, pad_id=self.pad_id)
        return _loaders(bundle, trainer, TensorLoader)


# ----------------------------------------------------------------------------------------------
# language modelling


class StreamLoader:
    """Consecutive (B, k) chunks of B parallel token streams, for truncated BPTT.

    The split's rows are joined in order into one stream of (input, target) pairs
    (``x.flatten()``, ``y.flatten()``; with windows of stride = context this is the contiguous
    text), cut into ``batch_size * world_size`` rows of equal length m (the remainder is dropped);
    this rank takes its ``batch_size`` rows. Batch i is columns ``[i*k, (i+1)*k)`` (the last one
    may be shorter). Every epoch yields the same chunks in the same order: the order *is* the
    information the carried state needs.

    Yields ``(x (B, k), y (B, k), i)``, ``i`` the chunk's index in the epoch (0 = reset the state).

    Args:
        x, y: the split's inputs and next-token targets (N, T).
        batch_size: parallel streams per rank B.
        steps: chunk length k (``train.tbptt``).
        rank, world_size: this process's shard of the streams.
        device: where batches go.
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int, steps: int, *, rank: int = 0,
                 world_size: int = 1, device: torch.device | str = "cpu") -> None:
        if steps < 1:
            raise ValueError(f"train.tbptt must be a number of steps >= 1, got {steps}")
        xs, ys = x.reshape(-1), y.reshape(-1)
        streams = batch_size * world_size
        m = len(xs) // streams
        if m < 1:
            raise ValueError(f"{len(xs)} training tokens cannot fill {streams} streams; lower train.batch_size")
        self.x = xs[: streams * m].view(streams, m)[rank * batch_size:(rank + 1) * batch_size]  # (B, m)
        self.y = ys[: streams * m].view(streams, m)[rank * batch_size:(rank + 1) * batch_size]  # (B, m)
        self.steps, self.batch_size = steps, batch_size
        self.device = torch.device(device)
        self.epoch = self.start_batch = 0

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.epoch, self.start_batch = epoch, start_batch

    def __len__(self) -> int:
        return math.ceil(self.x.shape[1] / self.steps)

    def __iter__(self):
        if self.x.device != self.device:
            self.x, self.y = self.x.to(self.device), self.y.to(self.device)
        k = self.steps
        for i in range(self.start_batch, len(self)):
            yield self.x[:, i * k:(i + 1) * k], self.y[:, i * k:(i + 1) * k], i
        self.start_batch = 0


def _accepts_state(model: nn.Module) -> bool:
    try:
        params = inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return False
    return "state" in params and "return_state" in params


class LanguageModelTask(Task):
    """Next-token cross-entropy over every position (targets ``-100`` ignored); see the module docstring.

    Args:
        model: token ids (B, T) -> logits (B, T, V); for ``tbptt`` also ``forward(x, state,
            return_state=True) -> (logits, state)``.
        tbptt: truncated BPTT chunk length k, or None (whole windows, state reset every batch).
        vocab_size: V, to size evaluation batches (at most 2**25 logits each).
    """

    predictions_kind = "language_model"

    def __init__(self, model: nn.Module, tbptt: int | None = None, vocab_size: int | None = None) -> None:
        super().__init__(model)
        if tbptt is not None:
            if tbptt < 1:
                raise ValueError(f"train.tbptt must be a number of steps >= 1 (or null), got {tbptt}")
            if not _accepts_state(model):
                name = getattr(model, "model_name", type(model).__name__)
                raise ValueError(f"train.tbptt needs a recurrent language model (forward(x, state, return_state)); "
                                 f"{name} has none: leave train.tbptt unset")
        self.tbptt = tbptt
        self.vocab_size = vocab_size
        self._state: Any = None  # the carried, detached recurrent state (TBPTT only)

    @staticmethod
    def _metrics(logits: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        loss = F.cross_entropy(logits.flatten(0, 1).float(), y.flatten(), ignore_index=IGNORE_INDEX)
        mask = y != IGNORE_INDEX  # (B, T)
        hits = (logits.argmax(dim=-1) == y) & mask
        acc = hits.sum() / mask.sum().clamp_min(1)
        return {"loss": loss, "acc": acc, "bpc": loss.detach() / math.log(2)}

    def training_step(self, batch, ctx=None):
        x, y = batch[0], batch[1]
        if len(batch) > 2:  # a StreamLoader chunk: continue from the previous chunk's state
            from archlab.models.rnn.layers import detach_state

            state = self._state
            first = state[0] if isinstance(state, (tuple, list)) else state
            if int(batch[2]) == 0 or first is None or first.shape[1] != x.shape[0]:
                state = None  # a new epoch (or a resumed one): start from zeros
            logits, state = self.model(x, state, return_state=True)  # (B, k, V)
            self._state = detach_state(state)
        else:
            logits = self.model(x)  # (B, T, V)
        return self._metrics(logits, y)

    def validation_step(self, batch):
        return self._metrics(self.model(batch[0]), batch[1])

    def predict_step(self, batch):
        return self.model(batch[0] if isinstance(batch, (tuple, list)) else batch)  # (B, T, V)

    def predict_with_targets(self, batch):
        """Next-token logits at each window's last position (B, V) and that target (B,)."""
        return self.predict_step(batch)[:, -1], batch[1][:, -1]

    @torch.no_grad()
    def final_metrics(self, loader: Any, split: str) -> dict[str, float]:
        """Exact token-weighted perplexity of the split: ``exp(sum CE / number of targets)``."""
        total, count = 0.0, 0
        for batch in loader:
            x, y = batch[0], batch[1]
            logits = self.model(x)  # (B, T, V)
            total += F.cross_entropy(logits.flatten(0, 1).float(), y.flatten(), ignore_index=IGNORE_INDEX,
                                     reduction="sum").item()
            count += int((y != IGNORE_INDEX).sum())
        if count == 0:
            return {}
        return {"ppl": math.exp(min(total / count, 700.0))}

    def make_loaders(self, bundle: Any, trainer: Any) -> tuple[Any, Any, Any]:
        t = bundle.train.x.shape[1] if bundle.train.x.dim() == 2 else 1
        eval_bs = trainer.cfg.data.eval_batch_size
        if self.vocab_size:
            eval_bs = max(1, min(eval_bs, 2**25 // (t * self.vocab_size)))  # bound the (B, T, V) logits
        from archlab.data.base import TensorLoader

        train, val, test = _loaders(bundle, trainer, TensorLoader, eval_batch_size=eval_bs)
        if self.tbptt is not None:
            f = trainer.fabric
            train = StreamLoader(bundle.train.x, bundle.train.y, trainer.cfg.train.batch_size, self.tbptt,
                                 rank=f.global_rank, world_size=f.world_size, device=f.device)
        return train, val, test


# ----------------------------------------------------------------------------------------------
# forecasting


class ForecastTask(Task):
    """Mean squared error on scaled future values; RMSE and MAE in raw units.

    Args:
        model: windows (B, L, F) -> predictions (B, H), scaled like the targets.
        mean, std: feature 0's scaling (raw = scaled * std + mean).
    """

    predictions_kind = "forecast"

    def __init__(self, model: nn.Module, mean: float = 0.0, std: float = 1.0) -> None:
        super().__init__(model)
        self.mean, self.std = mean, std
        self._bundle: Any = None

    def _step(self, batch: Any) -> dict[str, torch.Tensor]:
        x, y = batch[0], batch[1]
        pred = self.model(x).float()  # (B, H)
        y = y.float().reshape(pred.shape)
        diff = pred - y
        loss = diff.pow(2).mean()
        return {"loss": loss, "rmse": loss.detach().sqrt() * self.std, "mae": diff.detach().abs().mean() * self.std}

    def training_step(self, batch, ctx=None):
        return self._step(batch)

    def validation_step(self, batch):
        return self._step(batch)

    def predict_step(self, batch):
        """Predictions in raw units (B, H)."""
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        return self.model(x).float() * self.std + self.mean

    def predict_with_targets(self, batch):
        y = batch[1].float()
        return self.predict_step(batch), (y * self.std + self.mean).reshape(len(y), -1)

    @torch.no_grad()
    def final_metrics(self, loader: Any, split: str) -> dict[str, float]:
        """RMSE and MAE over the whole split (raw units), and the naive and linear baselines'."""
        from archlab.models.rnn.forecast import baseline_forecasts, forecast_errors

        preds, targets = [], []
        for batch in loader:
            preds.append(self.model(batch[0]).float().cpu())
            targets.append(batch[1].float().cpu())
        if not preds:
            return {}
        pred = torch.cat(preds)
        rmse, mae = forecast_errors(pred, torch.cat(targets).reshape(pred.shape), self.std)
        out = {"rmse": rmse, "mae": mae}
        if self._bundle is not None and getattr(self._bundle, split, None) is not None:
            for name, (b_rmse, b_mae) in baseline_forecasts(self._bundle, split).items():
                out[f"{name}_rmse"], out[f"{name}_mae"] = b_rmse, b_mae
        return out

    def make_loaders(self, bundle: Any, trainer: Any) -> tuple[Any, Any, Any]:
        from archlab.data.base import TensorLoader

        self._bundle = bundle  # for the baselines in final_metrics
        return _loaders(bundle, trainer, TensorLoader)
