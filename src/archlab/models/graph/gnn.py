"""Graph neural networks for node and graph classification: GCN, GraphSAGE, GAT, GIN, and an MLP
baseline that ignores the edges. The layers are in :mod:`archlab.models.graph.layers`.

Node classification (one graph, full batch; ``task = "node_classification"``)::

    forward(x, edge_index) -> logits        # x (N, F), edge_index (2, E) -> (N, K)

Graph classification (many graphs batched as one disconnected graph; ``task = "graph_classification"``)::

    forward(x, edge_index, batch, num_graphs) -> logits    # batch (N,) -> (G, K)

GCN — Kipf & Welling, "Semi-Supervised Classification with Graph Convolutional Networks",
ICLR 2017, https://arxiv.org/abs/1609.02907. Two layers, 16 hidden units, ReLU, dropout 0.5 on
the input of each layer (Cora setup)::

    Z = Â ReLU(Â dropout(X) W_0) W_1,   Â = D^-1/2 (A + I) D^-1/2

GraphSAGE — Hamilton, Ying & Leskovec, "Inductive Representation Learning on Large Graphs",
NeurIPS 2017, https://arxiv.org/abs/1706.02216. K = 2 layers, mean (or max) aggregator, each hidden
representation L2-normalised (Algorithm 1)::

    h_i^k = normalize(ReLU(W_1 h_i^{k-1} + W_2 mean_{j in N(i)} h_j^{k-1}))

GAT — Velickovic et al., "Graph Attention Networks", ICLR 2018, https://arxiv.org/abs/1710.10903.
Cora setup: 8 heads x 8 features concatenated, ELU, then one head (average) giving the logits;
dropout 0.6 on each layer's input and on the attention coefficients.

GIN — Xu, Hu, Leskovec & Jegelka, "How Powerful are Graph Neural Networks?", ICLR 2019,
https://arxiv.org/abs/1810.00826. ``num_layers`` GIN layers (MLP: Linear-BN-ReLU-Linear, then
BN-ReLU), sum readout of every layer including the input (the paper's section 4.2 readout)::

    h_G = sum_{k=0..L} Linear_k(dropout? sum_{i in G} h_i^k)       # (G, K)

Graph MLP — the baseline without edges: ``Z = MLP(X)``; it shows what the graph adds.

Deep GCN (``gcn_deep``, ``gcn_deep_residual``) — Kipf & Welling's Appendix B: up to 16 layers,
with or without residual connections ``H^{l+1} = ReLU(Â H^l W_l) + H^l`` (on the hidden layers,
whose widths match), for the over-smoothing experiment.

Every model takes ``backend="pyg"`` to use ``torch_geometric.nn``'s layers instead of ours
(imported only then; the parameter names are the same, so a state_dict loads into either).
A sparse (COO or CSR) ``x`` is accepted by GCN, GAT and the MLP: the first layer multiplies
sparse @ dense and input dropout drops only the stored values (``sparse_input_dropout``).

Deviations from the paper:
    - GCN: the paper's L2 weight decay (5e-4) on the first layer only is the trainer's business
      (weight decay applies to all parameters there). With ``residual=True`` the skip
      connections are added only where the widths match (hidden -> hidden layers).
    - GraphSAGE: full neighbourhoods instead of sampled ones (25, 10), and hidden width 64
      (PyG's examples) rather than 256; ``aggr="max"`` is the plain elementwise max, not the
      pooling aggregator's per-neighbour MLP. ``normalize=False`` drops the L2 normalisation.
    - GAT: the paper's L2 regularisation (5e-4) is the trainer's weight decay.
    - GIN: dropout is applied to each layer's pooled representation before its linear head
      (the authors' code); ``jump_knowledge=False`` reads out the last layer only. The paper's
      "5 GNN layers including the input layer" is ``num_layers=4``. Readout is sum pooling.
    - Input features may be sparse; dropout on the stored values of a sparse x is the same
      random function as dropout on the dense x (a dropped zero is still zero), only cheaper
      (Kipf's own ``sparse_dropout``). ``sparse_input_dropout=False`` densifies x first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from archlab.models.graph.layers import (
    GATConv,
    GCNConv,
    GINConv,
    SAGEConv,
    global_add_pool,
    linear_any,
)
from archlab.registry import register_model

__all__ = ["GNNConfig", "DeepGCNConfig", "GCN", "GraphSAGE", "GAT", "GIN", "GraphMLP", "input_dropout", "sparse_dropout"]

Backend = Literal["archlab", "pyg"]


# ----------------------------------------------------------------------------------------------
# config


@dataclass
class GNNConfig:
    """Options of the graph models (each model reads the fields it needs).

    Attributes:
        in_features: node features F.
        num_classes: classes K (per node, or per graph for GIN).
        hidden_dim: hidden width (per head for GAT).
        num_layers: message-passing layers (GIN: not counting the input layer).
        dropout: dropout on layer inputs (and on GAT's attention coefficients).
        heads: attention heads of GAT's hidden layers.
        out_heads: attention heads of GAT's output layer (averaged).
        aggr: GraphSAGE neighbour aggregation, ``mean`` or ``max``.
        normalize: GraphSAGE: L2-normalise each hidden representation (the paper).
        residual: skip connections on the hidden -> hidden layers (deep GCN).
        train_eps: GIN: learn eps (GIN-eps) instead of eps = 0 (GIN-0).
        jump_knowledge: GIN: sum the readouts of every layer (the paper) or use the last only.
        sparse_input_dropout: on a sparse x, drop its stored values only; else densify first.
        cached: GCN: compute the normalised adjacency once (full-batch training on one graph).
        backend: ``archlab`` (our layers) or ``pyg`` (torch_geometric.nn's, same names).
    """

    in_features: int = 1433
    num_classes: int = 7
    hidden_dim: int = 16
    num_layers: int = 2
    dropout: float = 0.5
    heads: int = 8
    out_heads: int = 1
    aggr: Literal["mean", "max"] = "mean"
    normalize: bool = True
    residual: bool = False
    train_eps: bool = False
    jump_knowledge: bool = True
    sparse_input_dropout: bool = True
    cached: bool = False
    backend: Backend = "archlab"

    TINY: ClassVar[dict[str, Any]] = {"hidden_dim": 8, "heads": 2, "dropout": 0.0}

    def __post_init__(self) -> None:
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        for name in ("in_features", "hidden_dim", "num_layers", "heads", "out_heads"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {self.num_classes}")


@dataclass
class DeepGCNConfig(GNNConfig):
    """:class:`GNNConfig` of the deep GCN variants (16 layers); the model walk builds them with 4."""

    num_layers: int = 16

    TINY: ClassVar[dict[str, Any]] = {**GNNConfig.TINY, "num_layers": 4}


# ----------------------------------------------------------------------------------------------
# helpers


def sparse_dropout(x: Tensor, p: float, training: bool = True) -> Tensor:
    """Dropout on the stored values of a sparse COO or CSR ``x``; the sparsity pattern is kept."""
    if not training or p == 0.0:
        return x
    if x.layout == torch.sparse_csr:
        return torch.sparse_csr_tensor(
            x.crow_indices(), x.col_indices(), F.dropout(x.values(), p, True), x.shape, check_invariants=False
        )
    x = x.coalesce()
    return torch.sparse_coo_tensor(x.indices(), F.dropout(x.values(), p, True), x.shape, is_coalesced=True, check_invariants=False)


def input_dropout(x: Tensor, p: float, training: bool, sparse_values_only: bool = True) -> Tensor:
    """Dropout on the input features, dense or sparse (see :func:`sparse_dropout`)."""
    if x.layout != torch.strided:
        if sparse_values_only:
            return sparse_dropout(x, p, training)
        x = x.to_dense()
    return F.dropout(x, p, training)


def _pyg() -> Any:
    try:
        import torch_geometric.nn as pyg_nn
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "backend='pyg' needs torch_geometric: pip install 'archlab[graph]', "
            "or use backend='archlab' (the default, plain PyTorch)"
        ) from err
    return pyg_nn


def _dense_for(x: Tensor, backend: str) -> Tensor:
    # PyG's Linear does not take torch sparse inputs; our layers do.
    return x.to_dense() if backend == "pyg" and x.layout != torch.strided else x


def _random_graph(n: int, seed: int, offset: int = 0) -> Tensor:
    """Edges of a small undirected test graph on nodes offset..offset+n-1: a ring over all but
    the last node (left isolated when n >= 4) plus a few random chords, no self-loops or duplicates."""
    g = torch.Generator().manual_seed(seed)
    m = n - 1 if n >= 4 else n
    pairs = [(i, (i + 1) % m) for i in range(m)] if m >= 2 else []
    for _ in range(n):
        a, b = torch.randint(0, max(m, 1), (2,), generator=g).tolist()
        pairs.append((a, b))
    pairs = [(a, b) for a, b in pairs if a != b]
    if not pairs:
        return torch.empty(2, 0, dtype=torch.long)
    ei = torch.tensor(pairs, dtype=torch.long).t()
    ei = torch.cat([ei, ei.flip(0)], dim=1).unique(dim=1)  # (2, E) both directions
    return ei + offset


class _NodeModel(nn.Module):
    """Shared by the node classifiers: the task tag and a small random graph for the model walk."""

    task: ClassVar[str] = "node_classification"
    # The task hands these models sparse features (bag-of-words on Cora is 1.3% non-zero).
    accepts_sparse_input: ClassVar[bool] = False
    in_features: int

    def _conv_stack(self, x: Tensor, edge_index: Tensor, act: Any) -> Tensor:
        """Input dropout, then ``self.convs`` with ``act`` and dropout between them (and the
        residual ``h + x`` where ``self.skip`` says); the last layer's output is the logits."""
        x = input_dropout(_dense_for(x, self.backend), self.dropout, self.training, self.sparse_input_dropout)
        for i, conv in enumerate(self.convs[:-1]):
            h = act(conv(x, edge_index))  # (N, hidden)
            x = F.dropout(h + x if self.skip[i] else h, self.dropout, self.training)
        return self.convs[-1](x, edge_index)  # (N, K)

    def example_input(self, batch_size: int = 1) -> tuple[Tensor, Tensor]:
        """``(x, edge_index)`` of a random graph with ``batch_size`` nodes (logits (batch_size, K))."""
        g = torch.Generator().manual_seed(0)
        param = next(self.parameters())
        x = torch.randn(batch_size, self.in_features, generator=g).to(param)
        return x, _random_graph(batch_size, seed=0).to(param.device)


# ----------------------------------------------------------------------------------------------
# models


class GCN(_NodeModel):
    """Kipf & Welling's GCN: ``num_layers`` graph convolutions, ReLU and dropout between them.

    Args:
        in_features: node features F.
        num_classes: classes K.
        hidden_dim: hidden width.
        num_layers: graph convolutions (2 in the paper).
        dropout: dropout on every layer's input (the features included).
        residual: ``h <- ReLU(conv(h)) + h`` on the hidden -> hidden layers.
        cached: cache the normalised adjacency (one graph, full batch).
        sparse_input_dropout: see :func:`input_dropout`.
        backend: ``"archlab"`` or ``"pyg"``.

    Shapes:
        x: (N, F) dense or sparse; edge_index: (2, E). Returns logits (N, K).
    """

    accepts_sparse_input: ClassVar[bool] = True

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        hidden_dim: int = 16,
        num_layers: int = 2,
        *,
        dropout: float = 0.5,
        residual: bool = False,
        cached: bool = False,
        sparse_input_dropout: bool = True,
        backend: Backend = "archlab",
    ) -> None:
        super().__init__()
        self.in_features, self.dropout, self.backend = in_features, dropout, backend
        self.sparse_input_dropout = sparse_input_dropout
        conv = _pyg().GCNConv if backend == "pyg" else GCNConv
        dims = [in_features] + [hidden_dim] * (num_layers - 1) + [num_classes]
        self.convs = nn.ModuleList(conv(a, b, cached=cached) for a, b in zip(dims[:-1], dims[1:]))
        # residual only where the widths match and the layer is not the output layer
        self.skip = [residual and 0 < i < num_layers - 1 for i in range(num_layers)]

    def no_weight_decay(self) -> set[str]:
        """Kipf & Welling put the L2 penalty (5e-4) on the first layer's weights only; so does archlab."""
        return {f"convs.{i}.{n}" for i, conv in enumerate(self.convs) if i > 0 for n, _ in conv.named_parameters()}

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        return self._conv_stack(x, edge_index, F.relu)


class GraphSAGE(_NodeModel):
    """GraphSAGE (full neighbourhoods): SAGE layers, ReLU, L2 normalisation, dropout.

    Args:
        in_features, num_classes, hidden_dim, num_layers, dropout: as :class:`GCN`.
        aggr: ``"mean"`` or ``"max"``.
        normalize: L2-normalise each hidden representation (not the logits).
        residual: skip connections on the hidden -> hidden layers.
        backend: ``"archlab"`` or ``"pyg"``.

    Shapes:
        x: (N, F); edge_index: (2, E). Returns logits (N, K).
    """

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        hidden_dim: int = 64,
        num_layers: int = 2,
        *,
        dropout: float = 0.5,
        aggr: str = "mean",
        normalize: bool = True,
        residual: bool = False,
        backend: Backend = "archlab",
    ) -> None:
        super().__init__()
        self.in_features, self.dropout, self.backend = in_features, dropout, backend
        conv = _pyg().SAGEConv if backend == "pyg" else SAGEConv
        dims = [in_features] + [hidden_dim] * (num_layers - 1) + [num_classes]
        self.convs = nn.ModuleList(conv(a, b, aggr=aggr) for a, b in zip(dims[:-1], dims[1:]))
        self.normalize = normalize
        self.skip = [residual and 0 < i < num_layers - 1 for i in range(num_layers)]

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        x = x.to_dense() if x.layout != torch.strided else x
        x = F.dropout(x, self.dropout, self.training)
        last = len(self.convs) - 1
        for i, conv in enumerate(self.convs):
            h = conv(x, edge_index)
            if i == last:
                return h  # (N, K)
            h = F.relu(h)
            if self.normalize:
                h = F.normalize(h, p=2.0, dim=-1)
            x = F.dropout(h + x if self.skip[i] else h, self.dropout, self.training)  # (N, hidden)
        raise AssertionError("unreachable")


class GAT(_NodeModel):
    """Velickovic et al.'s GAT: multi-head attention layers (concatenated, ELU), output layer
    averaging ``out_heads`` heads.

    Args:
        in_features, num_classes, num_layers: as :class:`GCN`.
        hidden_dim: features per head.
        heads: heads of the hidden layers.
        out_heads: heads of the output layer (averaged).
        dropout: dropout on each layer's input and on the attention coefficients.
        residual: skip connections on the hidden -> hidden layers.
        sparse_input_dropout: see :func:`input_dropout`.
        backend: ``"archlab"`` or ``"pyg"``.

    Shapes:
        x: (N, F) dense or sparse; edge_index: (2, E). Returns logits (N, K).
    """

    accepts_sparse_input: ClassVar[bool] = True

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        hidden_dim: int = 8,
        num_layers: int = 2,
        *,
        heads: int = 8,
        out_heads: int = 1,
        dropout: float = 0.6,
        residual: bool = False,
        sparse_input_dropout: bool = True,
        backend: Backend = "archlab",
    ) -> None:
        super().__init__()
        self.in_features, self.dropout, self.backend = in_features, dropout, backend
        self.sparse_input_dropout = sparse_input_dropout
        conv = _pyg().GATConv if backend == "pyg" else GATConv
        width = hidden_dim * heads
        dims = [in_features] + [width] * (num_layers - 1)
        self.convs = nn.ModuleList(conv(d, hidden_dim, heads=heads, concat=True, dropout=dropout) for d in dims[:-1])
        self.convs.append(conv(dims[-1], num_classes, heads=out_heads, concat=False, dropout=dropout))
        self.skip = [residual and 0 < i < num_layers - 1 for i in range(num_layers)]

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        return self._conv_stack(x, edge_index, F.elu)  # hidden (N, heads * hidden) -> (N, K)


class GraphMLP(_NodeModel):
    """The edge-blind baseline: an MLP on each node's features (ReLU, dropout).

    Shapes:
        x: (N, F) dense or sparse; edge_index: ignored. Returns logits (N, K).
    """

    accepts_sparse_input: ClassVar[bool] = True

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        hidden_dim: int = 64,
        num_layers: int = 2,
        *,
        dropout: float = 0.5,
        sparse_input_dropout: bool = True,
    ) -> None:
        super().__init__()
        self.in_features, self.dropout, self.sparse_input_dropout = in_features, dropout, sparse_input_dropout
        dims = [in_features] + [hidden_dim] * (num_layers - 1) + [num_classes]
        self.lins = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))

    def forward(self, x: Tensor, edge_index: Tensor | None = None) -> Tensor:
        x = input_dropout(x, self.dropout, self.training, self.sparse_input_dropout)
        for i, lin in enumerate(self.lins):
            x = linear_any(x, lin)
            if i < len(self.lins) - 1:
                x = F.dropout(F.relu(x), self.dropout, self.training)
        return x  # (N, K)


class GIN(nn.Module):
    """Xu et al.'s GIN for graph classification, with a sum readout of every layer.

    Args:
        in_features: node features F.
        num_classes: graph classes K.
        hidden_dim: hidden width.
        num_layers: GIN layers (the paper's 5 "GNN layers" count the input: 4).
        dropout: dropout on the pooled representations before the linear heads.
        train_eps: learn eps (GIN-eps); default eps = 0 (GIN-0).
        jump_knowledge: sum the per-layer readouts (the paper); False: last layer only.
        backend: ``"archlab"`` or ``"pyg"``.

    Shapes:
        x: (N, F); edge_index: (2, E); batch: (N,) graph of each node (None: one graph);
        num_graphs: G. Returns logits (G, K).
    """

    task: ClassVar[str] = "graph_classification"

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        hidden_dim: int = 32,
        num_layers: int = 4,
        *,
        dropout: float = 0.5,
        train_eps: bool = False,
        jump_knowledge: bool = True,
        backend: Backend = "archlab",
    ) -> None:
        super().__init__()
        self.in_features, self.dropout, self.jump_knowledge = in_features, dropout, jump_knowledge
        conv = _pyg().GINConv if backend == "pyg" else GINConv
        self.convs, self.norms = nn.ModuleList(), nn.ModuleList()
        for i in range(num_layers):
            d = in_features if i == 0 else hidden_dim
            mlp = nn.Sequential(
                nn.Linear(d, hidden_dim), nn.BatchNorm1d(hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, hidden_dim)
            )
            self.convs.append(conv(mlp, eps=0.0, train_eps=train_eps))
            self.norms.append(nn.BatchNorm1d(hidden_dim))
        widths = [in_features] + [hidden_dim] * num_layers if jump_knowledge else [hidden_dim]
        self.heads = nn.ModuleList(nn.Linear(w, num_classes) for w in widths)

    def forward(
        self, x: Tensor, edge_index: Tensor, batch: Tensor | None = None, num_graphs: int | None = None
    ) -> Tensor:
        x = x.to_dense() if x.layout != torch.strided else x
        hs = [x]
        for conv, norm in zip(self.convs, self.norms):
            x = F.relu(norm(conv(x, edge_index)))  # (N, hidden)
            hs.append(x)
        readouts = hs if self.jump_knowledge else hs[-1:]
        logits = 0
        for h, head in zip(readouts, self.heads):
            pooled = global_add_pool(h, batch, num_graphs)  # (G, width)
            logits = logits + head(F.dropout(pooled, self.dropout, self.training))
        return logits  # (G, K)

    def example_input(self, batch_size: int = 1) -> tuple[Tensor, Tensor, Tensor, int]:
        """``(x, edge_index, batch, num_graphs)`` of ``batch_size`` small random graphs."""
        g = torch.Generator().manual_seed(0)
        sizes = [3 + i % 3 for i in range(batch_size)]
        offsets = [sum(sizes[:i]) for i in range(batch_size)]
        ei = torch.cat([_random_graph(n, seed=i, offset=o) for i, (n, o) in enumerate(zip(sizes, offsets))], dim=1)
        batch = torch.cat([torch.full((n,), i, dtype=torch.long) for i, n in enumerate(sizes)])
        param = next(self.parameters())
        x = torch.randn(sum(sizes), self.in_features, generator=g).to(param)
        return x, ei.to(param.device), batch.to(param.device), batch_size


# ----------------------------------------------------------------------------------------------
# registered variants


def _gcn(cfg: GNNConfig) -> GCN:
    return GCN(
        cfg.in_features, cfg.num_classes, cfg.hidden_dim, cfg.num_layers, dropout=cfg.dropout,
        residual=cfg.residual, cached=cfg.cached, sparse_input_dropout=cfg.sparse_input_dropout,
        backend=cfg.backend,
    )


@register_model("gcn", family="graph", config=GNNConfig, hidden_dim=16, num_layers=2, dropout=0.5)
def gcn(cfg: GNNConfig) -> GCN:
    """GCN (Kipf & Welling 2017): 2 layers, 16 hidden units, dropout 0.5 (the Cora setup)."""
    return _gcn(cfg)


@register_model("gcn_deep", family="graph", config=DeepGCNConfig, hidden_dim=16, num_layers=16, dropout=0.5)
def gcn_deep(cfg: GNNConfig) -> GCN:
    """16-layer GCN without skip connections (Kipf & Welling, Appendix B): over-smoothing."""
    return _gcn(cfg)


@register_model(
    "gcn_deep_residual", family="graph", config=DeepGCNConfig, hidden_dim=16, num_layers=16, dropout=0.5, residual=True
)
def gcn_deep_residual(cfg: GNNConfig) -> GCN:
    """16-layer GCN with residual connections on the hidden layers (Kipf & Welling, Appendix B)."""
    return _gcn(cfg)


@register_model("graphsage", family="graph", config=GNNConfig, hidden_dim=64, num_layers=2, dropout=0.5)
def graphsage(cfg: GNNConfig) -> GraphSAGE:
    """GraphSAGE (Hamilton et al. 2017): 2 layers, 64 hidden, mean aggregator, full neighbourhoods."""
    return GraphSAGE(
        cfg.in_features, cfg.num_classes, cfg.hidden_dim, cfg.num_layers, dropout=cfg.dropout, aggr=cfg.aggr,
        normalize=cfg.normalize, residual=cfg.residual, backend=cfg.backend,
    )


@register_model(
    "gat", family="graph", config=GNNConfig, hidden_dim=8, heads=8, out_heads=1, num_layers=2, dropout=0.6
)
def gat(cfg: GNNConfig) -> GAT:
    """GAT (Velickovic et al. 2018): 8 heads x 8 features, ELU, 1 output head, dropout 0.6 (Cora)."""
    return GAT(
        cfg.in_features, cfg.num_classes, cfg.hidden_dim, cfg.num_layers, heads=cfg.heads,
        out_heads=cfg.out_heads, dropout=cfg.dropout, residual=cfg.residual,
        sparse_input_dropout=cfg.sparse_input_dropout, backend=cfg.backend,
    )


@register_model(
    "gin", family="graph", config=GNNConfig, in_features=7, num_classes=2, hidden_dim=32, num_layers=4, dropout=0.5
)
def gin(cfg: GNNConfig) -> GIN:
    """GIN-0 (Xu et al. 2019) for graph classification: 4 GIN layers, sum readout of every layer."""
    return GIN(
        cfg.in_features, cfg.num_classes, cfg.hidden_dim, cfg.num_layers, dropout=cfg.dropout,
        train_eps=cfg.train_eps, jump_knowledge=cfg.jump_knowledge, backend=cfg.backend,
    )


@register_model("graph_mlp", family="graph", config=GNNConfig, hidden_dim=64, num_layers=2, dropout=0.5)
def graph_mlp(cfg: GNNConfig) -> GraphMLP:
    """MLP on node features that ignores the edges: the baseline the graph models must beat."""
    return GraphMLP(
        cfg.in_features, cfg.num_classes, cfg.hidden_dim, cfg.num_layers, dropout=cfg.dropout,
        sparse_input_dropout=cfg.sparse_input_dropout,
    )
