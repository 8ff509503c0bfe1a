"""The engine's scratch path: the training loop for NumPy models, writing the same run folder.

``archlab train scratch_mlp --data mnist`` comes here instead of the Fabric loop (NumPy has no
devices, precision or process groups). The loop and its outputs mirror
:mod:`archlab.engine.trainer`: ``metrics.jsonl`` records, ``checkpoints/last.safetensors`` and
``best.safetensors`` (the same single-file format, written atomically), ``model.safetensors``,
``predictions.safetensors`` and ``summary.json``, so reports, ``archlab eval`` and ``--resume``
work alike. Only NumPy here (no torch import): the caller hands in NumPy arrays.

    for epoch:
        for batch (permutation from (seed, epoch)):
            perceptron: the perceptron rule            | others: loss = CE(model(x), y)
                                                       |         loss.backward(); clip; opt.step()
            schedule step per optimizer step
        evaluate val; early stopping; checkpoints
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from archlab.engine.loggers import MetricsLogger
from archlab.scratch import functional as F
from archlab.scratch import optim
from archlab.scratch.autograd import Tensor, no_grad
from archlab.statefile import flatten_state, unflatten_state
from archlab.utils import ArchlabError, atomic_write, atomic_write_json

__all__ = ["ArraySplitNP", "ScratchData", "fit", "evaluate", "evaluate_arrays", "train_classifier", "predict_logits",
           "save_state", "load_state"]

FORMAT = "archlab-checkpoint/1"


@dataclass
class ArraySplitNP:
    """One split as NumPy arrays: inputs (N, ...) and integer labels (N,)."""

    x: np.ndarray
    y: np.ndarray


@dataclass
class ScratchData:
    """What the scratch loop needs of a dataset: splits and how to normalise images."""

    train: ArraySplitNP
    val: ArraySplitNP | None
    test: ArraySplitNP | None
    kind: str
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None

    def prepare(self, x: np.ndarray, dtype: Any = np.float32) -> np.ndarray:
        """uint8 images -> normalised floats (B, C, H, W); tabular rows as floats."""
        if self.kind == "image":
            x = x.astype(dtype) / 255.0
            if self.mean is not None:
                shape = (1, -1) + (1,) * (x.ndim - 2)
                x = (x - np.asarray(self.mean, dtype).reshape(shape)) / np.asarray(self.std, dtype).reshape(shape)
            return x.astype(dtype, copy=False)
        return x.astype(dtype, copy=False)


def _optimizer(params: list[Any], t: Any) -> Any:
    table = {
        "sgd": lambda: optim.SGD(params, lr=t.lr, momentum=t.momentum, nesterov=t.nesterov and t.momentum > 0,
                                 weight_decay=t.weight_decay),
        "adam": lambda: optim.Adam(params, lr=t.lr, betas=t.betas, weight_decay=t.weight_decay),
        "adamw": lambda: optim.AdamW(params, lr=t.lr, betas=t.betas, weight_decay=t.weight_decay),
        "rmsprop": lambda: optim.RMSprop(params, lr=t.lr, momentum=t.momentum, weight_decay=t.weight_decay),
        "adagrad": lambda: optim.Adagrad(params, lr=t.lr, weight_decay=t.weight_decay),
    }
    return table[t.optimizer]()


def _scheduler(opt: Any, t: Any, steps_per_epoch: int, total: int) -> Any:
    warmup = int(round(t.warmup_epochs * steps_per_epoch))
    if t.schedule == "constant" and warmup == 0:
        return None
    if t.schedule in ("cosine", "constant"):
        if warmup:
            return optim.WarmupCosine(opt, warmup_steps=warmup, total_steps=total,
                                      min_lr=t.min_lr if t.schedule == "cosine" else t.lr)
        return optim.CosineAnnealingLR(opt, T_max=total, eta_min=t.min_lr)
    if t.schedule == "step":
        return optim.StepLR(opt, step_size=t.step_size * steps_per_epoch, gamma=t.gamma)
    raise ArchlabError(
        f"train.schedule={t.schedule!r} is not available for scratch models; use constant, cosine or step"
    )


def _batches(n: int, batch_size: int, seed: int, epoch: int, shuffle: bool) -> list[np.ndarray]:
    order = np.random.default_rng(seed * 1_000_003 + epoch).permutation(n) if shuffle else np.arange(n)
    return [order[i:i + batch_size] for i in range(0, n, batch_size)]


def predict_logits(model: Any, data: ScratchData, split: ArraySplitNP, batch_size: int = 1000) -> np.ndarray:
    """Model outputs for every row of ``split`` in evaluation mode: (N, K)."""
    model.eval()
    out = []
    with no_grad():
        for i in range(0, len(split.x), batch_size):
            out.append(model(Tensor(data.prepare(split.x[i:i + batch_size]))).data)
    return np.concatenate(out) if out else np.zeros((0, 0))


def evaluate(model: Any, data: ScratchData, split: ArraySplitNP | None, batch_size: int = 1000) -> dict[str, float]:
    """Mean cross-entropy and accuracy over ``split``."""
    if split is None:
        return {}
    logits = predict_logits(model, data, split, batch_size).astype(np.float64)
    z = logits - logits.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    loss = float(-logp[np.arange(len(split.y)), split.y].mean())
    acc = float((logits.argmax(axis=1) == split.y).mean())
    return {"loss": loss, "acc": acc}


def evaluate_arrays(model: Any, x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """:func:`evaluate` on plain float arrays (already prepared inputs)."""
    split = ArraySplitNP(x, y)
    return evaluate(model, ScratchData(split, None, None, "tabular"), split)


# ----------------------------------------------------------------------------------------------
# checkpoints: the same single-file safetensors format as the torch engine


def save_state(path: str | Path, state: dict[str, Any]) -> Path:
    """Write a checkpoint (``state["model"]`` a name -> array dict) atomically, as safetensors."""
    from safetensors.numpy import save_file

    arrays: dict[str, np.ndarray] = {}
    rest: dict[str, Any] = {}
    for key, value in state.items():
        if key == "model":
            for name, a in value.items():
                arrays[f"model/{name}"] = np.ascontiguousarray(a)
            rest[key] = {"__state_dict__": list(value)}
        else:
            rest[key] = flatten_state(value, f"state/{key}", arrays)
    meta = {"format": FORMAT, "state": json.dumps(rest)}
    return atomic_write(path, lambda tmp: save_file(arrays, tmp, metadata=meta))


def load_state(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_state` (or by the torch engine) as NumPy arrays."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise ArchlabError(f"checkpoint {str(path)!r} does not exist")
    try:
        with safe_open(str(path), framework="numpy") as f:
            meta = f.metadata() or {}
            arrays = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as err:
        raise ArchlabError(f"checkpoint {str(path)!r} is truncated or corrupt ({err}); train again or use "
                           f"another checkpoint") from None
    if meta.get("format") != FORMAT:
        raise ArchlabError(f"{str(path)!r} is not an archlab checkpoint")
    rest = json.loads(meta["state"])
    state: dict[str, Any] = {}
    for key, value in rest.items():
        if isinstance(value, dict) and "__state_dict__" in value:
            state[key] = {n: arrays[f"{key}/{n}"] for n in value["__state_dict__"]}
        else:
            state[key] = unflatten_state(value, arrays)
    return state


# ----------------------------------------------------------------------------------------------
# the loop


def fit(model: Any, data: ScratchData, cfg: Any, run_dir: Path, resume: str | Path | None = None,
        callbacks: list[Any] | None = None) -> dict[str, Any]:
    """Train a scratch ``model`` on ``data`` under run config ``cfg``; returns the summary.

    ``callbacks`` are called as ``cb(epoch, metrics)`` after each epoch.
    """
    t = cfg.train
    run_dir = Path(run_dir)
    ckpt_dir = run_dir / "checkpoints"
    dtype = np.float64 if cfg.system.precision == "64-true" else np.float32
    if cfg.system.precision not in ("32-true", "64-true"):
        raise ArchlabError(f"scratch models compute in NumPy float32 or float64; system.precision="
                           f"{cfg.system.precision!r} is not available (use 32-true or 64-true)")
    by_rule = getattr(model, "trains_by_rule", False)
    model.astype(dtype)  # parameters and buffers (batch-norm statistics) alike
    params = list(model.parameters())
    n = len(data.train.x)
    steps_per_epoch = max(math.ceil(n / t.batch_size) // t.grad_accum, 1)
    total = t.max_steps or steps_per_epoch * t.epochs
    opt = None if by_rule else _optimizer(params, t)
    sched = None if by_rule else _scheduler(opt, t, steps_per_epoch, total)
    step = epoch = 0
    best: dict[str, Any] = {}
    bad = 0
    train_time = 0.0
    if resume is not None:
        state = load_state(resume)
        model.load_state_dict(state["model"])
        if opt is not None and state.get("optimizer"):
            opt.load_state_dict(state["optimizer"])
        if sched is not None and state.get("scheduler"):
            sched.load_state_dict(state["scheduler"])
        c = state["counters"]
        step, epoch, bad, train_time = c["global_step"], c["epoch"], c["bad_epochs"], c["train_time"]
        best = state.get("best") or {}
    logger = MetricsLogger(run_dir, tensorboard=False)
    status, message = "completed", ""

    def snapshot() -> dict[str, Any]:
        return {"model": model.state_dict(), "optimizer": opt.state_dict() if opt else None,
                "scheduler": sched.state_dict() if sched else None, "best": best,
                "counters": {"global_step": step, "epoch": epoch, "batch_in_epoch": 0, "bad_epochs": bad,
                             "train_time": train_time},
                "config": _config_dict(cfg)}

    try:
        while epoch < t.epochs and (t.max_steps is None or step < t.max_steps):
            model.train()
            t0 = time.perf_counter()
            losses, accs = [], []
            for idx in _batches(n, t.batch_size, t.seed, epoch, shuffle=True):
                xb = data.prepare(data.train.x[idx], dtype)
                yb = data.train.y[idx]
                if by_rule:
                    mistakes = model.rule_step(xb, yb, t.lr)
                    losses.append(mistakes / len(idx))
                    accs.append(1 - mistakes / len(idx))
                else:
                    logits = model(Tensor(xb))
                    loss = F.cross_entropy(logits, yb)
                    if not math.isfinite(float(loss.data)):
                        raise ArchlabError(
                            f"the training loss became {float(loss.data)} at step {step} (epoch {epoch}); training "
                            f"stopped and the last good checkpoint is kept. Try a lower train.lr (now {t.lr}).")
                    opt.zero_grad()
                    loss.backward()
                    if t.grad_clip:
                        optim.clip_grad_norm(params, t.grad_clip)
                    opt.step()
                    if sched is not None:
                        sched.step()
                    losses.append(float(loss.data))
                    accs.append(float((logits.data.argmax(axis=1) == yb).mean()))
                step += 1
                if t.max_steps is not None and step >= t.max_steps:
                    break
            train_time += time.perf_counter() - t0
            epoch += 1
            lr = opt.param_groups[0]["lr"] if opt else t.lr
            logger.log({"split": "train", "step": step, "epoch": epoch, "time": round(train_time, 3), "lr": lr,
                        "loss": float(np.mean(losses)), "acc": float(np.mean(accs))})
            metrics: dict[str, float] = {}
            if data.val is not None:
                val = evaluate(model, data, data.val)
                logger.log({"split": "val", "step": step, "epoch": epoch, "time": round(train_time, 3), **val})
                metrics = {f"val/{k}": v for k, v in val.items()}
            for cb in callbacks or []:
                cb(epoch, metrics)
            improved = False
            if t.monitor in metrics:
                value, old = metrics[t.monitor], best.get(t.monitor)
                improved = old is None or (value < old if t.monitor_mode == "min" else value > old)
                best, bad = ({"epoch": epoch, "step": step, **metrics}, 0) if improved else (best, bad + 1)
            save_state(ckpt_dir / "last.safetensors", snapshot())
            if improved:
                save_state(ckpt_dir / "best.safetensors", snapshot())
            if t.early_stopping_patience is not None and bad > t.early_stopping_patience:
                status = "stopped_early"
                break
    except ArchlabError as err:
        status, message = "failed", str(err)
        _write_summary(run_dir, status, step, epoch, train_time, best, {}, message)
        logger.close()
        raise
    except KeyboardInterrupt:
        save_state(ckpt_dir / "last.safetensors", snapshot())
        logger.close()
        return _write_summary(run_dir, "interrupted", step, epoch, train_time, best, {}, "")
    final: dict[str, float] = {}
    for split_name, split in (("val", data.val), ("test", data.test)):
        values = evaluate(model, data, split)
        if split_name == "test" and values:
            logger.log({"split": "test", "step": step, "epoch": epoch, "time": round(train_time, 3), **values})
        final.update({f"{split_name}/{k}": v for k, v in values.items()})
    logger.close()
    from safetensors.numpy import save_file

    weights = {k: np.ascontiguousarray(v) for k, v in model.state_dict().items()}
    atomic_write(run_dir / "model.safetensors", lambda tmp: save_file(weights, tmp, metadata={"format": "scratch"}))
    split = data.test if data.test is not None else data.val
    if split is not None:
        logits = predict_logits(model, data, split).astype(np.float32)
        preds = {"logits": logits, "targets": split.y.astype(np.int64)}
        atomic_write(run_dir / "predictions.safetensors",
                     lambda tmp: save_file(preds, tmp, metadata={"split": "test" if data.test is not None else "val"}))
    summary = _write_summary(run_dir, status, step, epoch, train_time, best, final, message)
    summary["records"] = logger.records
    return summary


def _config_dict(cfg: Any) -> dict[str, Any]:
    from archlab.config import to_dict

    return to_dict(cfg)


def _write_summary(run_dir: Path, status: str, steps: int, epochs: int, train_time: float, best: dict[str, Any],
                   final: dict[str, float], message: str) -> dict[str, Any]:
    path = run_dir / "summary.json"
    old = json.loads(path.read_text()) if path.exists() else {}
    old.update({"status": status, "epochs": epochs, "steps": steps, "train_time_s": round(train_time, 3),
                "best": best, "final": final, "device": "cpu (numpy)", "world_size": 1,
                "precision": "numpy"})
    if message:
        old["message"] = message
    atomic_write_json(path, old)
    return dict(old)


# ----------------------------------------------------------------------------------------------
# an in-memory loop for experiments (no run folder)


def train_classifier(
    model: Any,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray | None = None,
    y_val: np.ndarray | None = None,
    *,
    epochs: int = 20,
    batch_size: int = 64,
    optimizer: str = "adam",
    lr: float = 1e-3,
    l1: float = 0.0,
    l2: float = 0.0,
    patience: int | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Train ``model`` on float arrays with cross-entropy (+ ``l1``/``l2`` penalties on weight matrices).

    Returns ``{"train_loss", "train_acc", "val_loss", "val_acc": per-epoch lists, "epochs",
    "stopped_epoch", "best_epoch", "seconds"}``. With ``patience`` the best-validation weights are
    restored at the end (early stopping).
    """
    params = list(model.parameters())
    weights = [p for n, p in model.named_parameters() if p.data.ndim >= 2]
    make = {"sgd": lambda: optim.SGD(params, lr=lr), "momentum": lambda: optim.SGD(params, lr=lr, momentum=0.9),
            "adam": lambda: optim.Adam(params, lr=lr)}
    opt = make[optimizer]()
    stopper = optim.EarlyStopping(patience=patience, mode="min") if patience is not None else None
    hist: dict[str, Any] = {"train_loss": [], "train_acc": [], "val_loss": [], "val_acc": []}
    best_state, t0 = None, time.perf_counter()
    for epoch in range(epochs):
        model.train()
        for idx in _batches(len(x_train), batch_size, seed, epoch, shuffle=True):
            loss = F.cross_entropy(model(Tensor(x_train[idx])), y_train[idx])
            if l1:
                loss = loss + F.l1_penalty(weights) * l1
            if l2:
                loss = loss + F.l2_penalty(weights) * l2
            opt.zero_grad()
            loss.backward()
            opt.step()
        tr = evaluate_arrays(model, x_train, y_train)
        hist["train_loss"].append(tr["loss"])
        hist["train_acc"].append(tr["acc"])
        if x_val is not None:
            va = evaluate_arrays(model, x_val, y_val)
            hist["val_loss"].append(va["loss"])
            hist["val_acc"].append(va["acc"])
            if stopper is not None:
                stop = stopper.step(va["loss"])
                if stopper.bad_epochs == 0:
                    best_state = model.state_dict()
                if stop:
                    break
    if best_state is not None:
        model.load_state_dict(best_state)
    hist["epochs"] = len(hist["train_loss"])
    hist["stopped_epoch"] = hist["epochs"] if stopper is not None and hist["epochs"] < epochs else None
    hist["best_epoch"] = int(np.argmin(hist["val_loss"])) + 1 if hist["val_loss"] else None
    hist["seconds"] = time.perf_counter() - t0
    return hist
