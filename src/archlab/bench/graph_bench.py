"""Benchmark ``gnn_cora``: GCN, GAT and GraphSAGE on Cora (public split), and GCN against a bare PyG loop.

1. accuracy: ``archlab train {gcn,gat,graphsage} --data cora`` (the shipped recipes) for 10 seeds;
   mean and standard deviation of the test accuracy of the best-validation epoch.
   Papers: GCN 81.5 (Kipf & Welling 2017), GAT 83.0 +- 0.7 (Velickovic et al. 2018).
2. speed: one full GCN run (200 epochs) in archlab against the same model in a bare PyG loop
   written as PyG's own example (``examples/gcn.py``: dense features, dropout on them, GCNConv with
   a cached normalisation, Adam, weight decay on the first layer), same machine, same seed count.
   Training time counts the optimizer steps only (evaluation excluded) in both.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from archlab.registry import register_benchmark

__all__ = ["gnn_cora", "cora_root"]


def cora_root() -> str:
    import os

    for candidate in (os.environ.get("ARCHLAB_DATA"), os.environ.get("ARCHLAB_SHARED_DATA"), "../shared/data"):
        if candidate and (Path(candidate) / "planetoid").is_dir():
            return candidate
    from archlab.utils import data_root

    return str(data_root())


def _archlab_runs(model: str, seeds: list[int], out: str, epochs: int | None = None) -> list[dict[str, Any]]:
    import archlab

    rows = []
    for seed in seeds:
        ovs = {"train.seed": seed, "data.root": cora_root(), "run.out_dir": out, "run.name": f"{model}-{seed}",
               "run.report": False, "system.progress": False, "system.tensorboard": False}
        if epochs:
            ovs["train.epochs"] = epochs
        t0 = time.perf_counter()
        run = archlab.train(model, "cora", overrides=ovs)
        rows.append({"seed": seed, "test_acc": round(run.metrics["test/acc"], 4), "best_epoch": run.summary["best"].get("epoch"),
                     "train_time_s": run.summary["train_time_s"], "wall_s": round(time.perf_counter() - t0, 2)})
    return rows


def _bare_pyg_run(seed: int, epochs: int) -> dict[str, Any]:
    """PyG's examples/gcn.py, written out: the reference loop this benchmark compares against."""
    import torch
    import torch.nn.functional as F
    from torch_geometric.nn import GCNConv

    from archlab.data import load_dataset

    g = load_dataset("cora", cora_root()).graph
    torch.manual_seed(seed)

    class GCN(torch.nn.Module):
        def __init__(self, f: int, h: int, k: int) -> None:
            super().__init__()
            self.conv1 = GCNConv(f, h, cached=True)
            self.conv2 = GCNConv(h, k, cached=True)

        def forward(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
            x = F.dropout(x, p=0.5, training=self.training)
            x = self.conv1(x, edge_index).relu()
            x = F.dropout(x, p=0.5, training=self.training)
            return self.conv2(x, edge_index)

    model = GCN(g.x.shape[1], 16, int(g.y.max()) + 1)
    opt = torch.optim.Adam([dict(params=model.conv1.parameters(), weight_decay=5e-4),
                            dict(params=model.conv2.parameters(), weight_decay=0)], lr=0.01)
    train_time, best_val, test_at_best = 0.0, 0.0, 0.0
    t_all = time.perf_counter()
    for _ in range(epochs):
        t0 = time.perf_counter()
        model.train()
        opt.zero_grad()
        out = model(g.x, g.edge_index)
        F.cross_entropy(out[g.train_mask], g.y[g.train_mask]).backward()
        opt.step()
        train_time += time.perf_counter() - t0
        model.eval()
        with torch.no_grad():
            pred = model(g.x, g.edge_index).argmax(dim=-1)
        val = float((pred[g.val_mask] == g.y[g.val_mask]).float().mean())
        test = float((pred[g.test_mask] == g.y[g.test_mask]).float().mean())
        if val > best_val:
            best_val, test_at_best = val, test
    return {"seed": seed, "test_acc": round(test_at_best, 4), "train_time_s": round(train_time, 3),
            "wall_s": round(time.perf_counter() - t_all, 2)}


def _summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    accs = [r["test_acc"] for r in rows]
    return {"mean_test_acc": round(statistics.mean(accs), 4),
            "std_test_acc": round(statistics.stdev(accs), 4) if len(accs) > 1 else 0.0,
            "mean_train_time_s": round(statistics.mean(r["train_time_s"] for r in rows), 3), "runs": rows}


@register_benchmark("gnn_cora", family="graph",
                    description="GCN/GAT/GraphSAGE on Cora over 10 seeds; GCN run time against a bare PyG loop")
def gnn_cora(quick: bool = False) -> dict[str, Any]:
    seeds = [0, 1] if quick else list(range(10))
    epochs = 20 if quick else None
    with tempfile.TemporaryDirectory() as out:
        result: dict[str, Any] = {"split": "public (140 train / 500 val / 1000 test)", "seeds": len(seeds)}
        for model, paper, target in (("gcn", 0.815, 0.810), ("gat", 0.830, 0.825), ("graphsage", None, None)):
            result[model] = {**_summary(_archlab_runs(model, seeds, out, epochs)), "paper": paper, "target": target,
                             "command": f"archlab train {model} --data cora --data-dir ../shared/data"}
        speed_seeds = seeds[:3]
        archlab_runs = _archlab_runs("gcn", speed_seeds, out, epochs)
        bare = [_bare_pyg_run(s, epochs or 200) for s in speed_seeds]
    a = statistics.median(r["train_time_s"] for r in archlab_runs)
    b = statistics.median(r["train_time_s"] for r in bare)
    result["speed"] = {
        "epochs": epochs or 200,
        "archlab_train_s": round(a, 3), "bare_pyg_train_s": round(b, 3), "ratio": round(a / b, 3), "target_ratio": 0.5,
        "archlab_wall_s": statistics.median(r["wall_s"] for r in archlab_runs),
        "bare_pyg_wall_s": statistics.median(r["wall_s"] for r in bare),
        "archlab_test_acc": statistics.mean(r["test_acc"] for r in archlab_runs),
        "bare_pyg_test_acc": statistics.mean(r["test_acc"] for r in bare),
        "archlab_runs": archlab_runs, "bare_pyg_runs": bare,
    }
    return result
