"""Graph tasks: node classification on one graph (full batch) and graph classification.

Node classification (Kipf & Welling 2017): every step runs the model on the whole graph and takes
the cross-entropy over the training nodes only; validation and test read the same forward pass
through their masks. One "batch" is ``(graph, split)``, so an epoch is one optimizer step.

Graph classification (Xu et al. 2019): mini-batches of small graphs joined into one disconnected
graph (``batch`` says which graph each node belongs to); the model pools node states per graph.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from archlab.data.graph import GraphData, batch_graphs
from archlab.tasks.base import Task

__all__ = ["NodeClassificationTask", "GraphClassificationTask", "FullGraphLoader", "GraphListLoader"]


class FullGraphLoader:
    """Yields ``(graph, split)`` once per epoch: full-batch training on one graph."""

    def __init__(self, graph: GraphData, split: str) -> None:
        self.graph, self.split = graph, split
        self.start_batch = 0

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.start_batch = start_batch

    def __len__(self) -> int:
        return 1

    def __iter__(self):
        if self.start_batch == 0:
            yield self.graph, self.split
        self.start_batch = 0


class GraphListLoader:
    """Mini-batches of graphs (joined by :func:`batch_graphs`), in an order drawn from (seed, epoch)."""

    def __init__(self, graphs: list[GraphData], batch_size: int, *, shuffle: bool, seed: int, device: Any,
                 rank: int = 0, world_size: int = 1) -> None:
        self.graphs, self.batch_size, self.shuffle, self.seed = graphs, batch_size, shuffle, seed
        self.device, self.rank, self.world_size = device, rank, world_size
        self.epoch = self.start_batch = 0

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.epoch, self.start_batch = epoch, start_batch

    def _order(self) -> list[int]:
        n = len(self.graphs)
        order = (torch.randperm(n, generator=torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch))
                 if self.shuffle else torch.arange(n)).tolist()
        return order[self.rank::self.world_size]

    def __len__(self) -> int:
        return math.ceil(len(self._order()) / self.batch_size)

    def __iter__(self):
        order = self._order()
        for b in range(self.start_batch, len(self)):
            chunk = [self.graphs[i] for i in order[b * self.batch_size:(b + 1) * self.batch_size]]
            yield batch_graphs(chunk).to(self.device)
        self.start_batch = 0


class NodeClassificationTask(Task):
    """Cross-entropy on the nodes of the batch's split mask; accuracy on the same nodes."""

    def __init__(self, model: nn.Module, label_smoothing: float = 0.0) -> None:
        super().__init__(model)
        self.label_smoothing = label_smoothing

    def make_loaders(self, bundle: Any, trainer: Any) -> tuple[Any, Any, Any]:
        g = bundle.graph.to(trainer.fabric.device)
        density = float((g.x != 0).float().mean()) if g.x.numel() else 1.0
        if getattr(self.model, "accepts_sparse_input", False) and getattr(self.model, "backend", "archlab") == "archlab" \
                and density < 0.1:
            # Sparse features: x @ W and input dropout touch only the non-zeros (Kipf's GCN did the same).
            g = GraphData(g.x.to_sparse_csr(), g.edge_index, g.y, g.train_mask, g.val_mask, g.test_mask, g.batch,
                          g.num_graphs)
        val = FullGraphLoader(g, "val") if g.val_mask is not None and bool(g.val_mask.any()) else None
        test = FullGraphLoader(g, "test") if g.test_mask is not None and bool(g.test_mask.any()) else None
        return FullGraphLoader(g, "train"), val, test

    def _step(self, batch: tuple[GraphData, str], smoothing: float) -> dict[str, torch.Tensor]:
        g, split = batch
        logits = self.model(g.x, g.edge_index)  # (N, K)
        mask = getattr(g, f"{split}_mask")
        loss = F.cross_entropy(logits[mask].float(), g.y[mask], label_smoothing=smoothing)
        acc = (logits[mask].argmax(dim=1) == g.y[mask]).float().mean()
        return {"loss": loss, "acc": acc}

    def training_step(self, batch, ctx=None):
        return self._step(batch, self.label_smoothing)

    def validation_step(self, batch):
        return self._step(batch, 0.0)

    def predict_step(self, batch):
        g, _ = batch
        return self.model(g.x, g.edge_index)

    def predict_with_targets(self, batch):
        g, split = batch
        mask = getattr(g, f"{split}_mask")
        return self.predict_step(batch)[mask], g.y[mask]

    def batch_size(self, batch: tuple[GraphData, str]) -> int:
        g, split = batch
        return int(getattr(g, f"{split}_mask").sum())


class GraphClassificationTask(Task):
    """Cross-entropy on graph-level logits (G, K) against the graphs' labels (G,)."""

    def __init__(self, model: nn.Module, label_smoothing: float = 0.0) -> None:
        super().__init__(model)
        self.label_smoothing = label_smoothing

    def make_loaders(self, bundle: Any, trainer: Any) -> tuple[Any, Any, Any]:
        t, f = trainer.cfg.train, trainer.fabric

        def loader(graphs: list[GraphData] | None, train: bool) -> Any:
            if not graphs:
                return None
            return GraphListLoader(graphs, t.batch_size if train else trainer.cfg.data.eval_batch_size, shuffle=train,
                                   seed=t.seed, device=f.device, rank=f.global_rank, world_size=f.world_size)

        return loader(bundle.train, True), loader(bundle.val, False), loader(bundle.test, False)

    def _step(self, g: GraphData, smoothing: float) -> dict[str, torch.Tensor]:
        logits = self.model(g.x, g.edge_index, g.batch, g.num_graphs)  # (G, K)
        loss = F.cross_entropy(logits.float(), g.y, label_smoothing=smoothing)
        return {"loss": loss, "acc": (logits.argmax(dim=1) == g.y).float().mean()}

    def training_step(self, batch, ctx=None):
        return self._step(batch, self.label_smoothing)

    def validation_step(self, batch):
        return self._step(batch, 0.0)

    def predict_step(self, batch):
        return self.model(batch.x, batch.edge_index, batch.batch, batch.num_graphs)

    def predict_with_targets(self, batch):
        return self.predict_step(batch), batch.y

    def batch_size(self, batch: GraphData) -> int:
        return batch.num_graphs
