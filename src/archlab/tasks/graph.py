"""Graph tasks: node classification on one graph (full batch) and graph classification.

Node classification (Kipf & Welling 2017): every step runs the model on the whole graph and takes
the cross-entropy over the training nodes only; validation and test read the same forward pass
through their masks. One "batch" is ``(graph, split)``, so an epoch is one optimizer step.

Graph classification (Xu et al. 2019): mini-batches of small graphs joined into one disconnected
graph (``batch`` says which graph each node belongs to); the model pools node states per graph.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from archlab.data.graph import GraphData, GraphDataError, batch_graphs
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


class NeighborLoader:
    """Mini-batches of seed nodes with sampled neighbourhoods (GraphSAGE's sampler, Hamilton et al. 2017).

    For a batch of seed nodes, layer by layer, each frontier node keeps at most ``num_neighbors[l]``
    of its in-neighbours, drawn at random; the union of the visited nodes and the kept edges is a
    small subgraph on which the model runs. The loss reads the seeds only (``train_mask`` marks them).
    Memory and time per step depend on the fan-out, not on the size of the graph.
    """

    def __init__(self, graph: GraphData, seeds: torch.Tensor, num_neighbors: list[int], batch_size: int,
                 *, seed: int, rank: int = 0, world_size: int = 1) -> None:
        self.graph, self.seeds, self.num_neighbors, self.batch_size = graph, seeds, num_neighbors, batch_size
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.epoch = self.start_batch = 0
        dst = graph.edge_index[1]
        order = torch.argsort(dst, stable=True)
        self.src_sorted = graph.edge_index[0][order]  # in-neighbours grouped by target
        self.ptr = torch.zeros(graph.num_nodes + 1, dtype=torch.long, device=dst.device)
        self.ptr[1:] = torch.cumsum(torch.bincount(dst, minlength=graph.num_nodes), 0)

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.epoch, self.start_batch = epoch, start_batch

    def _order(self) -> torch.Tensor:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return self.seeds[torch.randperm(len(self.seeds), generator=g).to(self.seeds.device)][self.rank::self.world_size]

    def __len__(self) -> int:
        return math.ceil(len(self._order()) / self.batch_size)

    def sample(self, seeds: torch.Tensor, gen: torch.Generator) -> GraphData:
        """The sampled subgraph around ``seeds`` (its first ``len(seeds)`` nodes are the seeds)."""
        n = self.graph.num_nodes
        local = torch.full((n,), -1, dtype=torch.long, device=seeds.device)
        nodes = [seeds]
        local[seeds] = torch.arange(len(seeds), device=seeds.device)
        frontier, edges_src, edges_dst = seeds, [], []
        for k in self.num_neighbors:
            start, count = self.ptr[frontier], self.ptr[frontier + 1] - self.ptr[frontier]
            owner = torch.repeat_interleave(torch.arange(len(frontier), device=seeds.device), count)  # (E_f,)
            pos = torch.arange(int(count.sum()), device=seeds.device) - torch.repeat_interleave(torch.cumsum(count, 0) - count, count)
            cand = self.src_sorted[start[owner] + pos]
            keys = owner.double() + torch.rand(len(owner), generator=gen, dtype=torch.float64).to(seeds.device)
            perm = torch.argsort(keys)  # random order within each target's group
            owner, cand = owner[perm], cand[perm]
            rank = torch.arange(len(owner), device=seeds.device) - torch.repeat_interleave(torch.cumsum(count, 0) - count, count)
            keep = rank < k
            src, dst = cand[keep], frontier[owner[keep]]
            new = torch.unique(src[local[src] < 0])
            local[new] = torch.arange(len(new), device=seeds.device) + sum(len(t) for t in nodes)
            nodes.append(new)
            edges_src.append(src)
            edges_dst.append(dst)
            frontier = new
        all_nodes = torch.cat(nodes)
        ei = torch.stack([local[torch.cat(edges_src)], local[torch.cat(edges_dst)]])
        mask = torch.zeros(len(all_nodes), dtype=torch.bool, device=seeds.device)
        mask[: len(seeds)] = True
        return GraphData(self.graph.x[all_nodes], ei, self.graph.y[all_nodes], train_mask=mask)

    def __iter__(self):
        order = self._order()
        for b in range(self.start_batch, len(self)):
            # each batch draws from its own (seed, epoch, batch) stream, so a resumed run samples alike
            gen = torch.Generator().manual_seed((self.seed * 7_919 + self.epoch) * 100_003 + b)
            yield self.sample(order[b * self.batch_size:(b + 1) * self.batch_size], gen), "train"
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
        g = bundle.graph.validate(bundle.info.name).to(trainer.fabric.device)
        expected = getattr(self.model, "in_features", None)
        if expected is not None and g.x.shape[1] != expected:
            raise GraphDataError(f"{bundle.info.name}: nodes have {g.x.shape[1]} features but the model was built for "
                                 f"{expected}; leave model.in_features unset so it is taken from the data")
        density = float((g.x != 0).float().mean()) if g.x.numel() else 1.0
        if getattr(self.model, "accepts_sparse_input", False) and getattr(self.model, "backend", "archlab") == "archlab" \
                and density < 0.1:
            # Sparse features: x @ W and input dropout touch only the non-zeros (Kipf's GCN did the same).
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # "sparse CSR support is in beta"
                x = g.x.to_sparse_csr()
            g = GraphData(x, g.edge_index, g.y, g.train_mask, g.val_mask, g.test_mask, g.batch,
                          g.num_graphs)
        val = FullGraphLoader(g, "val") if g.val_mask is not None and bool(g.val_mask.any()) else None
        test = FullGraphLoader(g, "test") if g.test_mask is not None and bool(g.test_mask.any()) else None
        fanout = trainer.cfg.data.num_neighbors
        if fanout:
            f = trainer.fabric
            seeds = torch.nonzero(bundle.graph.train_mask).flatten().to(f.device)
            dense = bundle.graph.to(f.device)
            train = NeighborLoader(dense, seeds, list(fanout), trainer.cfg.train.batch_size, seed=trainer.cfg.train.seed,
                                   rank=f.global_rank, world_size=f.world_size)
            return train, val, test
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
