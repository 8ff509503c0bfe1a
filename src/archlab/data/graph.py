"""The graph data contract: one graph (:class:`GraphData`) and the bundles graph tasks train on.

Node classification (Cora, CiteSeer, PubMed, Karate Club) trains on ONE graph with boolean
masks choosing the training, validation and test nodes (full-batch, as Kipf & Welling did):
:class:`NodeBundle`. Graph classification (MUTAG, the synthetic set) trains on many small graphs
batched into one disconnected graph: :class:`GraphSetBundle`.

Shapes: N nodes, E directed edges (an undirected edge appears twice), F features, K classes.

    x           (N, F) float32            node features
    edge_index  (2, E) int64              row 0 = source j, row 1 = target i (messages flow j -> i)
    y           (N,) int64 | () int64     node labels, or the graph's label
    *_mask      (N,) bool                 node splits (node classification)

:meth:`GraphData.validate` turns bad input into a clear error: an edge index out of range, a
feature matrix whose rows do not match the nodes, labels of the wrong length.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from archlab.data.base import DatasetInfo
from archlab.utils import ArchlabError

__all__ = ["GraphData", "NodeBundle", "GraphSetBundle", "GraphDataError", "batch_graphs"]


class GraphDataError(ArchlabError):
    """A graph whose parts do not fit together; the message says which and how."""


@dataclass
class GraphData:
    """One graph. See the module docstring for shapes."""

    x: torch.Tensor
    edge_index: torch.Tensor
    y: torch.Tensor | None = None
    train_mask: torch.Tensor | None = None
    val_mask: torch.Tensor | None = None
    test_mask: torch.Tensor | None = None
    batch: torch.Tensor | None = None  # (N,) graph id of each node, for batched graphs
    num_graphs: int = 1

    @property
    def num_nodes(self) -> int:
        return int(self.x.shape[0])

    @property
    def num_edges(self) -> int:
        return int(self.edge_index.shape[1])

    def validate(self, name: str = "graph") -> GraphData:
        """Raise :class:`GraphDataError` if the parts of the graph do not fit together."""
        n = self.num_nodes
        if self.x.ndim != 2:
            raise GraphDataError(f"{name}: x must be (num_nodes, num_features), got shape {tuple(self.x.shape)}")
        ei = self.edge_index
        if ei.ndim != 2 or ei.shape[0] != 2:
            raise GraphDataError(f"{name}: edge_index must be (2, num_edges), got shape {tuple(ei.shape)}; "
                                 f"transpose an (E, 2) edge list with .t()")
        if ei.dtype not in (torch.int64, torch.int32):
            raise GraphDataError(f"{name}: edge_index must hold integers, got {ei.dtype}")
        if ei.numel():
            lo, hi = int(ei.min()), int(ei.max())
            if lo < 0 or hi >= n:
                bad = lo if lo < 0 else hi
                raise GraphDataError(f"{name}: edge_index refers to node {bad}, but the graph has {n} nodes "
                                     f"(x has {n} rows); valid node ids are 0..{n - 1}")
        if self.y is not None and self.y.ndim == 1 and self.batch is None and self.num_graphs == 1 and len(self.y) != n:
            raise GraphDataError(f"{name}: y has {len(self.y)} labels for {n} nodes")
        for mask_name in ("train_mask", "val_mask", "test_mask"):
            mask = getattr(self, mask_name)
            if mask is not None and (mask.dtype != torch.bool or mask.shape != (n,)):
                raise GraphDataError(f"{name}: {mask_name} must be a bool tensor of shape ({n},), "
                                     f"got {mask.dtype} {tuple(mask.shape)}")
        return self

    def to(self, device: torch.device | str) -> GraphData:
        def move(t: Any) -> Any:
            return t.to(device) if isinstance(t, torch.Tensor) else t

        return GraphData(*(move(getattr(self, f)) for f in ("x", "edge_index", "y", "train_mask", "val_mask",
                                                           "test_mask", "batch")), num_graphs=self.num_graphs)

    def to_pyg(self) -> Any:
        """The same graph as a ``torch_geometric.data.Data`` (needs ``archlab[graph]``)."""
        from torch_geometric.data import Data

        extra = {k: getattr(self, k) for k in ("train_mask", "val_mask", "test_mask", "batch") if getattr(self, k) is not None}
        return Data(x=self.x, edge_index=self.edge_index, y=self.y, **extra)


def batch_graphs(graphs: list[GraphData]) -> GraphData:
    """Many graphs as one disconnected graph: node ids shifted, ``batch`` giving each node's graph."""
    xs, edges, ys, batch = [], [], [], []
    offset = 0
    for i, g in enumerate(graphs):
        xs.append(g.x)
        edges.append(g.edge_index + offset)
        ys.append(g.y.reshape(1) if g.y is not None else torch.zeros(1, dtype=torch.long))
        batch.append(torch.full((g.num_nodes,), i, dtype=torch.long))
        offset += g.num_nodes
    return GraphData(torch.cat(xs), torch.cat(edges, dim=1), torch.cat(ys), batch=torch.cat(batch),
                     num_graphs=len(graphs))


@dataclass
class NodeBundle:
    """Node classification: one graph with train/val/test masks. ``info.kind == "graph_nodes"``."""

    info: DatasetInfo
    graph: GraphData
    extra: dict[str, Any] = field(default_factory=dict)

    def splits(self) -> dict[str, Any]:
        return {k: getattr(self.graph, f"{k}_mask") for k in ("train", "val", "test")
                if getattr(self.graph, f"{k}_mask") is not None}


@dataclass
class GraphSetBundle:
    """Graph classification: lists of graphs per split. ``info.kind == "graph_set"``."""

    info: DatasetInfo
    train: list[GraphData]
    val: list[GraphData] | None = None
    test: list[GraphData] | None = None

    def splits(self) -> dict[str, Any]:
        return {k: v for k, v in (("train", self.train), ("val", self.val), ("test", self.test)) if v is not None}
