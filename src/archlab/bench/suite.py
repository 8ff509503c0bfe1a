"""The registered benchmarks. Each returns a JSON-able dict of measured figures.

lenet5_mnist
    1. time to 99.0%: the shipped recipe (``archlab train lenet5 --data mnist``) for 3 seeds, the
       test set measured after every epoch; training seconds until it first reads >= 99.0%.
    2. engine overhead: seconds per optimizer step of the engine against a bare hand-written
       PyTorch loop (same model, data tensors, batch size, optimizer), median of alternating
       repeats; target ratio <= 1.05.
    3. precision: the same two measurements under bf16-mixed, and a bf16-mixed recipe run.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from typing import Any

from archlab.engine.trainer import Callback
from archlab.registry import register_benchmark

__all__ = ["lenet5_mnist", "mnist_root"]


def mnist_root() -> str:
    """Where MNIST lies: ``$ARCHLAB_DATA``, ``$ARCHLAB_SHARED_DATA`` or ``../shared/data``."""
    return root_holding("mnist")


def root_holding(folder: str) -> str:
    """The data folder holding ``folder`` (:func:`archlab.utils.find_data_root`), else the default one."""
    from archlab.utils import data_root, find_data_root

    return find_data_root(folder) or str(data_root())


class _TestEachEpoch(Callback):
    """Measures test accuracy after each epoch, outside the training clock."""

    def __init__(self, target: float) -> None:
        self.target = target
        self.curve: list[dict[str, float]] = []
        self.time_to_target: float | None = None

    def on_epoch_end(self, trainer: Any, metrics: dict[str, float]) -> None:
        acc = trainer.evaluate(trainer.test_loader)["acc"]
        self.curve.append({"epoch": trainer.epoch, "train_time_s": round(trainer.train_time, 2), "test_acc": acc})
        if self.time_to_target is None and acc >= self.target:
            self.time_to_target = round(trainer.train_time, 2)


class _StepTimer(Callback):
    """Wall time between optimizer step ``start`` and the end of training."""

    def __init__(self, start: int) -> None:
        self.start, self.t0, self.t1, self.n = start, None, None, 0

    def on_step_end(self, trainer: Any, out: Any) -> None:
        if trainer.global_step == self.start:
            self.t0 = time.perf_counter()
        elif self.t0 is not None:
            self.t1 = time.perf_counter()
            self.n = trainer.global_step - self.start


def _recipe_run(seed: int, precision: str, out: str, epochs: int | None = None) -> dict[str, Any]:
    import archlab

    cb = _TestEachEpoch(0.99)
    ovs = {"train.seed": seed, "data.root": mnist_root(), "run.out_dir": out, "run.name": f"seed{seed}-{precision}",
           "run.report": False, "system.progress": False, "system.tensorboard": False, "system.precision": precision}
    if epochs:
        ovs["train.epochs"] = epochs
    t0 = time.perf_counter()
    run = archlab.train("lenet5", "mnist", overrides=ovs, callbacks=[cb])
    return {"seed": seed, "precision": precision, "test_acc": round(run.metrics["test/acc"], 4),
            "train_time_s": run.summary["train_time_s"], "time_to_99_s": cb.time_to_target,
            "wall_s": round(time.perf_counter() - t0, 2), "curve": cb.curve}


def _engine_step_time(precision: str, steps: int, warmup: int, out: str) -> float:
    import archlab

    timer = _StepTimer(warmup)
    ovs = {"train.max_steps": warmup + steps, "train.epochs": 100, "train.schedule": "constant",
           "data.root": mnist_root(), "run.out_dir": out, "run.name": f"steps-{precision}-{time.time_ns()}",
           "run.report": False, "system.progress": False, "system.tensorboard": False,
           "system.precision": precision}
    archlab.train("lenet5", "mnist", overrides=ovs, callbacks=[timer])
    return (timer.t1 - timer.t0) / timer.n


def _bare_step_time(precision: str, steps: int, warmup: int) -> float:
    """A plain PyTorch loop: the same model, data tensors, batch size, optimizer and loss."""
    import torch
    import torch.nn.functional as F

    from archlab.config import load_config
    from archlab.data import load_dataset
    from archlab.registry import create_model

    cfg = load_config("lenet5", "mnist", overrides={"data.root": mnist_root()})
    bundle = load_dataset("mnist", cfg.data.root, val_split=cfg.data.val_split)
    torch.manual_seed(0)
    model = create_model("lenet5", bundle.info, **cfg.model.options)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.train.lr)
    x_all, y_all = bundle.train.x, bundle.train.y
    mean = torch.tensor(bundle.info.mean).view(1, -1, 1, 1)
    std = torch.tensor(bundle.info.std).view(1, -1, 1, 1)
    bs = cfg.train.batch_size
    perm = torch.randperm(len(x_all))
    state = {"i": 0}

    def step() -> None:
        i = state["i"] % (len(x_all) // bs)
        state["i"] += 1
        idx = perm[i * bs:(i + 1) * bs]
        x = (x_all[idx].float() / 255 - mean) / std
        y = y_all[idx]
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16-mixed"):
            loss = F.cross_entropy(model(x).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    from archlab.bench import time_steps

    return time_steps(step, steps, warmup)


@register_benchmark("lenet5_mnist", family="cnn", description="LeNet-5 on MNIST: time to 99.0%, engine overhead, bf16")
def lenet5_mnist(quick: bool = False) -> dict[str, Any]:
    seeds = [0] if quick else [0, 1, 2]
    steps, warmup, repeats = (40, 5, 1) if quick else (300, 30, 5)
    with tempfile.TemporaryDirectory() as out:
        runs = [_recipe_run(s, "32-true", out, epochs=1 if quick else None) for s in seeds]
        import torch

        from archlab.bench import cpu_has_native_bf16

        # Emulated bf16 (a CPU without AVX512-BF16/AMX) is several times slower than fp32: skipped there.
        native_bf16 = cpu_has_native_bf16() or torch.cuda.is_available()
        bf16_run = _recipe_run(0, "bf16-mixed", out, epochs=1 if quick else None) if native_bf16 else \
            "skipped: this CPU has no native bf16"
        overhead = {}
        for precision in ("32-true", "bf16-mixed") if native_bf16 else ("32-true",):
            engine, bare = [], []
            for _ in range(repeats):  # alternate, so drifts in machine speed hit both alike
                bare.append(_bare_step_time(precision, steps, warmup))
                engine.append(_engine_step_time(precision, steps, warmup, out))
            e, b = statistics.median(engine), statistics.median(bare)
            overhead[precision] = {"engine_step_ms": round(e * 1e3, 3), "bare_step_ms": round(b * 1e3, 3),
                                   "ratio": round(e / b, 4), "engine_all_ms": [round(v * 1e3, 3) for v in engine],
                                   "bare_all_ms": [round(v * 1e3, 3) for v in bare]}
    reached = [r["time_to_99_s"] for r in runs]
    return {
        "command": "archlab train lenet5 --data mnist --data-dir ../shared/data",
        "recipe_runs": runs,
        "all_seeds_reach_99": all(t is not None for t in reached),
        "max_time_to_99_s": max((t for t in reached if t is not None), default=None),
        "target_time_to_99_s": 20.0,
        "overhead": overhead,
        "target_overhead_ratio": 1.05,
        "bf16_mixed_run": bf16_run,
        "batch_size": 128,
    }


# The other families' benchmarks register themselves on import.
from archlab.bench import (  # noqa: E402,F401
    attention_bench,
    bert_bench,
    cnn_speed,
    finetune_bench,
    generative_bench,
    gpt_bench,
    graph_bench,
    rnn_speed,
    scratch_bench,
    sequence_bench,
    vision_bench,
)
