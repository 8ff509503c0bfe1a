"""Benchmark ``resnet18_mnist``: ResNet-18 (CIFAR stem) on MNIST, the shipped recipe, to >= 99.5%.

``archlab train resnet18_cifar --data mnist`` picks up ``archlab/recipes/resnet18_cifar-mnist.yaml``
(one-cycle Nesterov SGD, 4 epochs, random shifts, bf16 autocast, channels_last). The test set is
read after every epoch, outside the training clock, to record the accuracy curve and the training
time to first reach 99.5%.
"""

from __future__ import annotations

import tempfile
import time
from typing import Any

from archlab.bench.suite import _TestEachEpoch, mnist_root
from archlab.registry import register_benchmark

__all__ = ["resnet18_mnist"]


@register_benchmark("resnet18_mnist", family="cnn", description="ResNet-18 (CIFAR stem) on MNIST: test accuracy >= 99.5%, wall time")
def resnet18_mnist(quick: bool = False, seeds: tuple[int, ...] = (0,)) -> dict[str, Any]:
    import archlab

    rows = []
    with tempfile.TemporaryDirectory() as out:
        for seed in seeds:
            cb = _TestEachEpoch(0.995)
            ovs = {"train.seed": seed, "data.root": mnist_root(), "run.out_dir": out, "run.name": f"seed{seed}",
                   "run.report": False, "system.progress": False, "system.tensorboard": False}
            if quick:
                ovs.update({"train.max_steps": 20, "train.epochs": 1, "data.label_fraction": 0.05})
            t0 = time.perf_counter()
            run = archlab.train("resnet18_cifar", "mnist", overrides=ovs, callbacks=[cb])
            rows.append({"seed": seed, "test_acc": round(run.metrics["test/acc"], 4),
                         "train_time_s": run.summary["train_time_s"], "time_to_99_5_s": cb.time_to_target,
                         "wall_s": round(time.perf_counter() - t0, 2), "curve": cb.curve})
    return {"command": "archlab train resnet18_cifar --data mnist", "recipe": "src/archlab/recipes/resnet18_cifar-mnist.yaml",
            "target": 0.995, "runs": rows, "min_test_acc": min(r["test_acc"] for r in rows)}
