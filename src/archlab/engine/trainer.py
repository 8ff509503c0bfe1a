"""The training loop: one explicit loop for every family, on Lightning Fabric.

Fabric gives devices, precision (fp32, bf16/fp16 mixed with loss scaling) and distribution (DDP,
FSDP, across processes and machines, also under ``torchrun``); the loop itself stays here, in
plain sight (d2l's Trainer, nanoGPT's train.py)::

    for epoch:
        for batch in loader (this rank's shard; a resumed run starts mid-epoch where it stopped):
            out = task.training_step(batch)                       # {"loss", metrics}
            backward(out.loss / grad_accum)                       # no DDP sync until the last micro-batch
            every grad_accum batches: clip, optimizer.step, zero_grad, scheduler.step, EMA update
            a non-finite loss stops the run (the last good checkpoint stays)
            every log_every steps: metrics -> JSONL, TensorBoard, progress bar
        evaluate on val; plateau schedule; early stopping; checkpoints last (+ best)

Checkpoints (:mod:`archlab.engine.checkpoint`) hold model, optimizer, scheduler, EMA, RNG
states, counters and config, and are written atomically; ``resume`` continues exactly, so a run
stopped and resumed ends with the same weights as one that never stopped. Ctrl-C once stops at
the next step boundary and saves a checkpoint; twice aborts at once.
"""

from __future__ import annotations

import hashlib
import math
import random
import signal
import threading
import time
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from archlab.config import RunConfig, to_dict
from archlab.data.base import TensorLoader
from archlab.engine.checkpoint import load_checkpoint, save_checkpoint, save_weights
from archlab.engine.loggers import MetricsLogger
from archlab.engine.optim import SchedulerGroup
from archlab.tasks.base import StepContext, Task
from archlab.utils import ArchlabError, atomic_write_json

__all__ = ["Trainer", "NonFiniteLossError", "EMA", "Callback", "make_fabric"]


class NonFiniteLossError(ArchlabError):
    """The loss became NaN or infinite; the run stopped and kept its last good checkpoint."""


class Callback:
    """Hooks into the loop. Each receives the trainer; set ``trainer.stop_reason`` to stop."""

    def on_fit_start(self, trainer: Trainer) -> None: ...
    def on_step_end(self, trainer: Trainer, out: dict[str, torch.Tensor]) -> None: ...
    def on_epoch_end(self, trainer: Trainer, metrics: dict[str, float]) -> None: ...
    def on_fit_end(self, trainer: Trainer) -> None: ...


class EMA:
    """Exponential moving average of the weights: ``w_ema <- d * w_ema + (1 - d) * w`` each step.

    Evaluation and the saved ``model.safetensors`` use the averaged weights (Polyak averaging;
    timm's ModelEmaV2). Buffers (batch-norm statistics) are copied, not averaged.
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.shadow = {k: v.detach().clone() for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        for k, v in model.state_dict().items():
            if v.dtype.is_floating_point:
                self.shadow[k].lerp_(v.detach(), 1 - self.decay)
            else:
                self.shadow[k].copy_(v)

    def swap(self, model: nn.Module) -> None:
        """Exchange the model's weights with the averaged ones (call twice to swap back)."""
        current = {k: v.detach().clone() for k, v in model.state_dict().items()}
        model.load_state_dict(self.shadow)
        self.shadow = current


def make_fabric(system: Any, callbacks: Iterable[Any] = ()) -> Any:
    """A Lightning Fabric for ``system`` (accelerator, devices, nodes, strategy, precision)."""
    import os

    from lightning_fabric import Fabric

    accelerator = system.accelerator
    strategy = system.strategy
    devices = system.devices
    num_nodes = system.num_nodes
    if "LOCAL_WORLD_SIZE" in os.environ and "WORLD_SIZE" in os.environ and devices in (1, "1"):
        # Started by torchrun (or another elastic launcher): take the process layout from it.
        devices = int(os.environ["LOCAL_WORLD_SIZE"])
        num_nodes = max(int(os.environ["WORLD_SIZE"]) // devices, 1)
    if accelerator == "auto" and not torch.cuda.is_available():
        accelerator = "cpu"
    if strategy == "auto" and (devices not in (1, "1") or num_nodes > 1):
        strategy = "ddp"
    if accelerator == "cpu" and str(system.precision).startswith("bf16"):
        from archlab.bench import cpu_has_native_bf16

        if not cpu_has_native_bf16():
            warnings.warn(f"system.precision={system.precision} on a CPU without native bfloat16 (no AVX512-BF16 "
                          "or AMX): oneDNN emulates it, which is several times slower than fp32; set "
                          "system.precision=32-true here", stacklevel=2)
    try:
        return Fabric(accelerator=accelerator, devices=devices, num_nodes=num_nodes, strategy=strategy,
                      precision=system.precision)
    except (ValueError, RuntimeError, TypeError) as err:  # Fabric's own message says what clashes
        raise ArchlabError(
            f"cannot run with system.accelerator={system.accelerator} devices={system.devices} "
            f"num_nodes={system.num_nodes} strategy={system.strategy} precision={system.precision}: {err}"
        ) from None


def _rng_state() -> dict[str, Any]:
    state = {
        "python": list(_to_lists(random.getstate())),
        "numpy": list(np.random.get_state()),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _to_lists(obj: Any) -> Any:
    return [_to_lists(v) for v in obj] if isinstance(obj, (tuple, list)) else obj


def _set_rng_state(state: dict[str, Any]) -> None:
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    np_state = state["numpy"]
    np.random.set_state((np_state[0], np_state[1], int(np_state[2]), int(np_state[3]), float(np_state[4])))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def uses_sharded_state(strategy: str) -> bool:
    """Whether parameters are sharded across ranks, so full state must be gathered to save it."""
    return strategy.startswith("fsdp")


def weights_digest(model: nn.Module | dict[str, torch.Tensor]) -> str:
    """SHA-256 of every parameter and buffer, in order: equal digests mean identical weights."""
    h = hashlib.sha256()
    state = model if isinstance(model, dict) else model.state_dict()
    for k, v in state.items():
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


class _Interrupt:
    """First Ctrl-C asks the loop to stop at the next step boundary; the second aborts at once."""

    def __init__(self) -> None:
        self.requested = False
        self._old: Any = None

    def __enter__(self) -> _Interrupt:
        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print("\narchlab: stopping after this step and saving a checkpoint (Ctrl-C again to abort)", flush=True)

    def __exit__(self, *exc: Any) -> None:
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)


class Trainer:
    """Fits a :class:`~archlab.tasks.Task` on loaders, writing into ``run_dir``.

    Args:
        cfg: the resolved run config (its ``train`` and ``system`` sections drive the loop).
        run_dir: the run folder (metrics.jsonl, checkpoints/, tb/, summary.json).
        fabric: a launched Lightning Fabric (see :func:`make_fabric`).
        callbacks: :class:`Callback` objects.
    """

    def __init__(self, cfg: RunConfig, run_dir: Path, fabric: Any, callbacks: Iterable[Callback] = ()) -> None:
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self.fabric = fabric
        self.callbacks = list(callbacks)
        self.ckpt_dir = self.run_dir / "checkpoints"
        self.global_step = 0
        self.epoch = 0
        self.batch_in_epoch = 0
        self.best: dict[str, Any] = {}
        self.bad_epochs = 0
        self.stop_reason: str | None = None
        self.train_time = 0.0
        self.ema: EMA | None = None
        self.scheduler: SchedulerGroup | None = None
        self.logger: MetricsLogger | None = None

    # ------------------------------------------------------------------------------------------
    @property
    def is_main(self) -> bool:
        return self.fabric.is_global_zero

    def tensor_loaders(self, bundle: Any) -> tuple[Any, Any, Any]:
        """Mini-batch loaders over a DataBundle's in-memory splits, transforms on the device."""
        from archlab.data.transforms import build_transform

        # Generative tasks set normalize_inputs = False: images reach them in [0, 1].
        normalize = getattr(getattr(self, "task", None), "normalize_inputs", True)
        train_tf = build_transform(bundle.info, self.cfg.data, train=True, normalize=normalize)
        eval_tf = build_transform(bundle.info, self.cfg.data, train=False, normalize=normalize)
        return (self._loader(bundle.train, True, train_tf),
                self._loader(bundle.val, False, eval_tf) if bundle.val is not None else None,
                self._loader(bundle.test, False, eval_tf) if bundle.test is not None else None)

    def _loader(self, split: Any, train: bool, transform: Callable | None) -> TensorLoader:
        t = self.cfg.train
        bs = t.batch_size if train else self.cfg.data.eval_batch_size
        return TensorLoader(
            split, bs, shuffle=train, drop_last=train and len(split) >= bs * self.fabric.world_size,
            seed=t.seed, rank=self.fabric.global_rank, world_size=self.fabric.world_size,
            transform=transform, device=self.fabric.device,
        )

    def request_stop(self, reason: str) -> None:
        """Stop at the next step boundary, saving a checkpoint (``reason`` goes into the summary)."""
        self.stop_reason = reason

    # ------------------------------------------------------------------------------------------
    def fit(self, task: Task, bundle: Any, resume: str | Path | None = None) -> dict[str, Any]:
        """Train ``task`` on ``bundle`` (a DataBundle, or a graph bundle); returns the run summary."""
        cfg, t, fabric = self.cfg, self.cfg.train, self.fabric
        self.task = task
        self.info = getattr(bundle, "info", None)
        # A task that reads its data another way (graphs) builds its own loaders.
        loaders = task.make_loaders(bundle, self) if hasattr(task, "make_loaders") else None
        train_loader, self.val_loader, self.test_loader = loaders or self.tensor_loaders(bundle)

        optimizers = task.configure_optimizers(t)
        steps_per_epoch = max(len(train_loader) // t.grad_accum, 1)
        total_steps = t.max_steps or steps_per_epoch * t.epochs
        self.steps_per_epoch = steps_per_epoch
        # One scheduler per optimizer the engine steps: the first, or every one of a task stepping its own.
        scheduled = list(optimizers) if not task.automatic_optimization else optimizers[:1]
        self.scheduler = SchedulerGroup.build(scheduled, t, steps_per_epoch, total_steps)
        if cfg.system.channels_last:
            # NHWC weights: convolutions then produce NHWC outputs (oneDNN/cuDNN's fast layout).
            task.model.to(memory_format=torch.channels_last)
        if cfg.system.compile:
            task.model.compile()
        model, *optimizers = fabric.setup(task, *optimizers)
        for name in ("training_step", "validation_step", "predict_step"):
            model.mark_forward_method(name)
        self.model, self.optimizers = model, optimizers
        self.sharded = uses_sharded_state(cfg.system.strategy)
        if t.ema_decay:
            if self.sharded:
                raise ArchlabError("train.ema_decay is not supported with a sharded strategy (fsdp); use ddp")
            self.ema = EMA(task.model, t.ema_decay)
        if resume is not None:
            self._restore(resume)
        self.logger = MetricsLogger(self.run_dir, enabled=self.is_main, tensorboard=cfg.system.tensorboard)
        for cb in self.callbacks:
            cb.on_fit_start(self)
        try:
            with _Interrupt() as interrupt:
                self._loop(train_loader, total_steps, interrupt)
        except KeyboardInterrupt:
            self.stop_reason = "interrupted"
            if self.is_main:
                print("archlab: aborted; the last checkpoint written is kept", flush=True)
            self._write_summary(status="interrupted")
            self.logger.close()
            raise
        except NonFiniteLossError as err:
            self._write_summary(status="failed", message=str(err))
            self.logger.close()
            raise
        status = {None: "completed", "early_stopping": "stopped_early"}.get(self.stop_reason, self.stop_reason)
        try:
            if status == "interrupted":
                return self._write_summary(status=status)
            final = self._final_evaluation()
            for cb in self.callbacks:
                cb.on_fit_end(self)
            return self._write_summary(status=status, final=final)
        finally:
            self.logger.close()

    # ------------------------------------------------------------------------------------------
    def _loop(self, loader: TensorLoader, total_steps: int, interrupt: _Interrupt) -> None:
        t, fabric, model = self.cfg.train, self.fabric, self.model
        check_every = 1 if fabric.device.type == "cpu" else t.log_every  # a check syncs an accelerator
        # On the CPU, automatically optimised steps check their loss before backward (_train_batch).
        checked_in_step = fabric.device.type == "cpu" and self.task.automatic_optimization
        t0 = time.perf_counter()
        window: dict[str, torch.Tensor] = {}
        window_n = 0
        bar = None
        while self.epoch < t.epochs and (t.max_steps is None or self.global_step < t.max_steps):
            loader.set_epoch(self.epoch, self.batch_in_epoch)
            model.train()
            n_batches = len(loader)
            if n_batches < 5:  # full-batch training (graphs): one bar over the epochs instead
                if bar is None:
                    bar = self._progress(t.epochs, unit="epoch")
            else:
                bar = self._progress(n_batches)
            for x_y in loader:
                b = self.batch_in_epoch
                last_micro = (b + 1) % t.grad_accum == 0 or b + 1 == n_batches
                out = self._train_batch(x_y, last_micro)
                loss = out["loss"].detach()
                if not checked_in_step and (b % check_every == 0 or last_micro) and not torch.isfinite(loss).all():
                    self._nonfinite(loss)
                for k, v in out.items():
                    window[k] = window.get(k, 0.0) + v.detach().float()
                window_n += 1
                self.batch_in_epoch = b + 1
                if last_micro and self.task.automatic_optimization:
                    self.global_step += 1
                elif not self.task.automatic_optimization:
                    self.global_step += 1
                if bar is not None and (n_batches >= 5 or self.batch_in_epoch == n_batches):
                    bar.update(1)
                if self.global_step % t.log_every == 0 and last_micro or self.batch_in_epoch == n_batches:
                    means = {k: (v / window_n).item() for k, v in window.items()}
                    if not all(math.isfinite(v) for v in means.values()):
                        self._nonfinite(torch.tensor(means.get("loss", float("nan"))))
                    self._log("train", means, elapsed=self.train_time + time.perf_counter() - t0)
                    if bar is not None:
                        bar.set_postfix({k: f"{v:.4g}" for k, v in means.items()}, refresh=False)
                    window, window_n = {}, 0
                for cb in self.callbacks:
                    cb.on_step_end(self, out)
                if interrupt.requested:
                    self.stop_reason = "interrupted"
                done = t.max_steps is not None and self.global_step >= t.max_steps
                # Stop only between optimizer steps: a half-accumulated gradient cannot be saved.
                if (self.stop_reason == "interrupted" and last_micro) or done:
                    break
            if bar is not None and (n_batches >= 5 or self.epoch + 1 >= t.epochs):
                bar.close()
                bar = None
            self.train_time += time.perf_counter() - t0
            epoch_done = self.batch_in_epoch >= n_batches
            if epoch_done:
                self.epoch += 1
                self.batch_in_epoch = 0
                metrics = self._end_of_epoch()
                for cb in self.callbacks:
                    cb.on_epoch_end(self, metrics)
            if self.stop_reason is not None:
                if self.stop_reason == "interrupted" or not epoch_done:
                    self._save("last")
                break
            t0 = time.perf_counter()
        if bar is not None:
            bar.close()

    def _train_batch(self, batch: Any, last_micro: bool) -> dict[str, torch.Tensor]:
        t, fabric, model = self.cfg.train, self.fabric, self.model
        if not self.task.automatic_optimization:
            ctx = StepContext(self.optimizers, fabric.backward, self._optimizer_step, self.global_step, fabric.autocast)
            out = model.training_step(batch, ctx)
            self._scheduler_step()
            return out
        with fabric.no_backward_sync(model, enabled=not last_micro and fabric.world_size > 1):
            # Fabric applies precision only through `forward`; a step method on a single device
            # bypasses it, so the autocast context is entered here (nesting is harmless under DDP).
            with fabric.autocast():
                out = model.training_step(batch)
            loss = out["loss"]
            if fabric.device.type == "cpu" and not torch.isfinite(loss.detach()).all():
                self._nonfinite(loss.detach())  # before backward: the weights stay good
            fabric.backward(loss / t.grad_accum)
        if last_micro:
            self._optimizer_step(self.optimizers[0])
            self._scheduler_step()
            if self.ema is not None:
                self.ema.update(self.task.model)
        return out

    def _optimizer_step(self, optimizer: Any) -> None:
        if self.cfg.train.grad_clip:
            self.fabric.clip_gradients(self.model, optimizer, max_norm=self.cfg.train.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    def _nonfinite(self, loss: torch.Tensor, what: str = "training loss") -> None:
        last = self.ckpt_dir / "last.safetensors"
        kept = f"the last good checkpoint is {last}" if last.exists() else "no checkpoint had been written yet"
        raise NonFiniteLossError(
            f"the {what} became {loss.flatten()[0].item()} at step {self.global_step} (epoch "
            f"{self.epoch}, batch {self.batch_in_epoch}); training stopped and {kept}. Try a lower "
            f"train.lr (now {self.cfg.train.lr}), train.grad_clip=1.0, or system.precision=32-true."
        )

    def _progress(self, total: int, unit: str = "batch") -> Any:
        if not (self.cfg.system.progress and self.is_main):
            return None
        from tqdm.auto import tqdm

        if unit == "epoch":
            return tqdm(total=total, initial=self.epoch, desc="training", unit="epoch", leave=False,
                        dynamic_ncols=True, mininterval=0.5)
        return tqdm(total=total, initial=self.batch_in_epoch, desc=f"epoch {self.epoch + 1}/{self.cfg.train.epochs}",
                    leave=False, dynamic_ncols=True, mininterval=0.5)

    # ------------------------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, loader: TensorLoader | None) -> dict[str, float]:
        """Batch-size-weighted means of ``validation_step`` over ``loader`` (all ranks summed)."""
        if loader is None:
            return {}
        model = self.model
        was_training = model.training
        model.eval()
        if self.ema is not None:
            self.ema.swap(self.task.model)
        sums: dict[str, torch.Tensor] = {}
        count = torch.zeros((), device=self.fabric.device)
        try:
            for batch in loader:
                n = self.task.batch_size(batch)
                with self.fabric.autocast():
                    out = model.validation_step(batch)
                for k, v in out.items():
                    sums[k] = sums.get(k, 0.0) + v.detach().float() * n
                count += n
        finally:
            if self.ema is not None:
                self.ema.swap(self.task.model)
            model.train(was_training)
        if self.fabric.world_size > 1:
            sums = {k: self.fabric.all_reduce(v, reduce_op="sum") for k, v in sums.items()}
            count = self.fabric.all_reduce(count, reduce_op="sum")
        return {k: (v / count).item() for k, v in sums.items()}

    def _end_of_epoch(self) -> dict[str, float]:
        t = self.cfg.train
        metrics: dict[str, float] = {}
        if self.val_loader is not None and (self.epoch % t.eval_every == 0 or self.epoch >= t.epochs):
            val = self.evaluate(self.val_loader)
            self._log("val", val, elapsed=self.train_time)
            metrics = {f"val/{k}": v for k, v in val.items()}
        if self.scheduler is not None and self.scheduler.on_metric and t.monitor in metrics:
            self.scheduler.step(metrics[t.monitor])
        improved = False
        if t.monitor in metrics:
            value = metrics[t.monitor]
            best = self.best.get(t.monitor)
            improved = best is None or (value < best if t.monitor_mode == "min" else value > best)
            if improved:
                self.best = {"epoch": self.epoch, "step": self.global_step, **metrics}
                self.bad_epochs = 0
            else:
                self.bad_epochs += 1
            if t.early_stopping_patience is not None and self.bad_epochs > t.early_stopping_patience:
                self.stop_reason = "early_stopping"
        if self.epoch % t.checkpoint_every == 0 or self.epoch >= t.epochs or self.stop_reason:
            self._save("last")
        if improved:
            self._save("best")
        return metrics

    def _final_evaluation(self) -> dict[str, float]:
        best = self.ckpt_dir / "best.safetensors"
        if self.cfg.train.test_with == "best" and self.best and not self.sharded:
            self.fabric.barrier()
            state = load_checkpoint(best)  # the weights of the best epoch (by train.monitor), as papers report
            self.task.model.load_state_dict({k: v.to(self.fabric.device) for k, v in state["model"].items()})
            if self.ema is not None and state.get("ema"):
                self.ema.shadow = {k: v.to(self.fabric.device) for k, v in state["ema"].items()}
        final: dict[str, float] = {}
        for split, loader in (("val", self.val_loader), ("test", self.test_loader)):
            if loader is not None:
                values = self.evaluate(loader)
                if hasattr(self.task, "final_metrics"):
                    # Corpus-level metrics that batch means cannot give (BLEU of decoded sentences);
                    # with several processes each rank scores its own shard and rank 0's is logged.
                    self.model.eval()
                    if self.ema is not None:
                        self.ema.swap(self.task.model)
                    try:
                        with torch.no_grad():
                            values.update(self.task.final_metrics(loader, split))
                    finally:
                        if self.ema is not None:
                            self.ema.swap(self.task.model)
                if split == "test":
                    self._log("test", values, elapsed=self.train_time)
                final.update({f"{split}/{k}": v for k, v in values.items()})
        if self.is_main:
            weights = self.task.model.state_dict() if self.ema is None else self.ema.shadow
            save_weights(self.run_dir / "model.safetensors", weights, {"model": getattr(self.task.model, "model_name", "")})
        if self.ema is not None:  # from here on the model is the one evaluated and saved: the averaged weights
            self.ema.swap(self.task.model)
            self.ema = None
        return final

    def _log(self, split: str, values: dict[str, float], elapsed: float) -> None:
        record: dict[str, Any] = {"split": split, "step": self.global_step,
                                  "epoch": round(self.epoch + self.batch_in_epoch / max(self.steps_per_epoch * self.cfg.train.grad_accum, 1), 4)
                                  if split == "train" else self.epoch, "time": round(elapsed, 3)}
        if split == "train":
            record["lr"] = self.optimizers[0].param_groups[0]["lr"]
        record.update(values)
        if self.logger is not None:
            self.logger.log(record)

    # ------------------------------------------------------------------------------------------
    def _model_and_optimizer_state(self) -> tuple[dict[str, torch.Tensor], list[dict[str, Any]]]:
        """Full (unsharded) model and optimizer state. Sharded strategies gather it with
        torch.distributed.checkpoint's state-dict API, a collective call on every rank."""
        if not self.sharded:
            return self.task.model.state_dict(), [o.state_dict() for o in self.optimizers]
        from torch.distributed.checkpoint.state_dict import (
            StateDictOptions,
            get_model_state_dict,
            get_optimizer_state_dict,
        )

        opts = StateDictOptions(full_state_dict=True)
        wrapped = self.model._forward_module  # wraps the task: its keys start with "model."
        model = {k.removeprefix("model."): v for k, v in get_model_state_dict(wrapped, options=opts).items()}
        optims = [get_optimizer_state_dict(wrapped, getattr(o, "optimizer", o), options=opts) for o in self.optimizers]
        return model, optims

    def _load_model_and_optimizer_state(self, model: dict[str, torch.Tensor], optims: list[dict[str, Any]]) -> None:
        if not self.sharded:
            self.task.model.load_state_dict(model)
            for opt, saved in zip(self.optimizers, optims):
                opt.load_state_dict(saved)
            return
        from torch.distributed.checkpoint.state_dict import (
            StateDictOptions,
            set_model_state_dict,
            set_optimizer_state_dict,
        )

        opts = StateDictOptions(full_state_dict=True)
        wrapped = self.model._forward_module
        set_model_state_dict(wrapped, {f"model.{k}": v for k, v in model.items()}, options=opts)
        for opt, saved in zip(self.optimizers, optims):
            set_optimizer_state_dict(wrapped, getattr(opt, "optimizer", opt), saved, options=opts)

    def _scheduler_step(self) -> None:
        """One per-batch schedule step (plateau schedules step on the monitored metric each epoch instead)."""
        if self.scheduler is not None and not self.scheduler.on_metric:
            self.scheduler.step()

    def state(self) -> dict[str, Any]:
        """Everything a resumed run needs (see :mod:`archlab.engine.checkpoint`)."""
        model, optims = self._model_and_optimizer_state()
        return {
            "model": model,
            "ema": self.ema.shadow if self.ema is not None else None,
            "optimizers": optims,
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "rng": _rng_state(),
            "counters": {"global_step": self.global_step, "epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch,
                         "bad_epochs": self.bad_epochs, "train_time": self.train_time},
            "best": self.best,
            "config": to_dict(self.cfg),
        }

    def _save(self, which: str) -> None:
        state = self.state() if self.is_main or self.sharded else None  # gathering is collective
        if self.is_main:
            save_checkpoint(self.ckpt_dir / f"{which}.safetensors", state)
        self.fabric.barrier()

    def _restore(self, path: str | Path) -> None:
        state = load_checkpoint(path)
        self._load_model_and_optimizer_state(state["model"], state["optimizers"])
        if self.ema is not None and state.get("ema"):
            self.ema.shadow = {k: v.to(self.fabric.device) for k, v in state["ema"].items()}
        if self.scheduler is not None and state.get("scheduler"):
            self.scheduler.load_state_dict(state["scheduler"])
        c = state["counters"]
        self.global_step, self.epoch, self.batch_in_epoch = c["global_step"], c["epoch"], c["batch_in_epoch"]
        self.bad_epochs, self.train_time = c["bad_epochs"], c["train_time"]
        self.best = state.get("best") or {}
        _set_rng_state(state["rng"])

    def _write_summary(self, status: str, final: dict[str, float] | None = None, message: str = "") -> dict[str, Any]:
        digest = weights_digest(self._model_and_optimizer_state()[0] if self.sharded else self.task.model)
        digests = [digest]
        if self.fabric.world_size > 1:
            import torch.distributed as dist

            mine = torch.tensor(list(bytes.fromhex(digest)), dtype=torch.uint8, device=self.fabric.device)
            gathered = [torch.empty_like(mine) for _ in range(self.fabric.world_size)]
            dist.all_gather(gathered, mine)
            digests = [bytes(row.cpu().tolist()).hex() for row in gathered]
        summary = {
            "status": status,
            "epochs": self.epoch,
            "steps": self.global_step,
            "train_time_s": round(self.train_time, 3),
            "best": self.best,
            "final": final or {},
            "device": str(self.fabric.device),
            "world_size": self.fabric.world_size,
            "precision": self.cfg.system.precision,
            "weights_digests": digests,
        }
        if message:
            summary["message"] = message
        self.summary = summary
        if self.is_main:
            path = self.run_dir / "summary.json"
            old = {}
            if path.exists():
                import json

                try:
                    old = json.loads(path.read_text())
                except ValueError:
                    old = {}
            old.update(summary)
            atomic_write_json(path, old)
            summary = old
        return summary

