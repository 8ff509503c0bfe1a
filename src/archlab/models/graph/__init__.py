"""Graph neural networks: layers from scratch (:mod:`.layers`) and the registered models (:mod:`.gnn`)."""

from archlab.models.graph import gnn, layers  # noqa: F401
from archlab.models.graph.gnn import GAT, GCN, GIN, GNNConfig, GraphMLP, GraphSAGE
from archlab.models.graph.layers import (
    GATConv,
    GCNConv,
    GINConv,
    SAGEConv,
    global_add_pool,
    global_max_pool,
    global_mean_pool,
)

__all__ = [
    "GAT", "GCN", "GIN", "GNNConfig", "GraphMLP", "GraphSAGE",
    "GATConv", "GCNConv", "GINConv", "SAGEConv",
    "global_add_pool", "global_max_pool", "global_mean_pool",
]
