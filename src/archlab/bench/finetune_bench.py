"""Fine-tuning a pretrained transformer on real data (../shared/data), with the shipped recipe.

* ``sst2_minilm``: ``archlab train minilm_l6 --data sst2 --init minilm``: the offline pretrained
  all-MiniLM-L6-v2 fine-tuned on SST-2's train.tsv, accuracy on the 872 sentences of test.tsv
  (target >= 88%), and the wall time with the number of CPU threads.
"""

from __future__ import annotations

import tempfile
import time
from typing import Any

from archlab.bench.suite import root_holding
from archlab.registry import register_benchmark

__all__ = ["sst2_minilm"]


@register_benchmark("sst2_minilm", family="transformer",
                    description="pretrained MiniLM fine-tuned on SST-2: test accuracy >= 88% (872 sentences), wall time")
def sst2_minilm(quick: bool = False) -> dict[str, Any]:
    import torch

    import archlab

    with tempfile.TemporaryDirectory() as out:
        ovs: dict[str, Any] = {"data.root": root_holding("sst2"), "run.out_dir": out, "run.name": "run",
                               "run.report": False, "system.progress": False, "system.tensorboard": False}
        if quick:
            ovs.update({"train.max_steps": 3, "train.epochs": 1})
        t0 = time.perf_counter()
        run = archlab.train("minilm_l6", "sst2", overrides=ovs)
        wall = round(time.perf_counter() - t0, 1)
        m = run.metrics
        init = run.summary.get("init", {}).get("summary")
    return {"command": "archlab train minilm_l6 --data sst2 --init minilm (the recipe sets model.init)",
            "recipe": "src/archlab/recipes/minilm_l6-sst2.yaml", "init": init,
            "test_acc": round(m["test/acc"], 4), "val_acc": round(m.get("val/acc", float("nan")), 4),
            "target": 0.88, "steps": run.summary.get("steps"), "train_time_s": run.summary.get("train_time_s"),
            "wall_s": wall, "threads": torch.get_num_threads()}
