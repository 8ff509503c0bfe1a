"""Graph layers from scratch in plain PyTorch: GCN, GraphSAGE, GAT and GIN convolutions, pooling.

Every layer passes messages along ``edge_index`` (2, E): row 0 holds the source j, row 1 the
target i, so a message flows j -> i and node i aggregates over its in-neighbours N(i) (an
undirected graph lists each edge in both directions). Scatter operations are torch's own
``index_add_`` / ``scatter_reduce``; no torch_scatter or torch_sparse is needed. The parameter
names are those of the matching ``torch_geometric.nn`` layers (PyG 2.x), so a state_dict loads
into either; ``tests/models/test_graph_layers.py`` checks each layer against PyG with copied weights.

GCNConv
    T. N. Kipf, M. Welling, "Semi-Supervised Classification with Graph Convolutional Networks",
    ICLR 2017. https://arxiv.org/abs/1609.02907

        X' = D^-1/2 (A + I) D^-1/2 X W + b,      D_ii = sum_j (A + I)_ij

    per node: x_i' = sum_{j in N(i) ∪ {i}} x_j W / sqrt(d_i d_j) + b.

SAGEConv
    W. L. Hamilton, R. Ying, J. Leskovec, "Inductive Representation Learning on Large Graphs",
    NeurIPS 2017. https://arxiv.org/abs/1706.02216

        x_i' = W_1 x_i + W_2 agg_{j in N(i)} x_j        (agg = mean or elementwise max)

GATConv
    P. Velickovic, G. Cucurull, A. Casanova, A. Romero, P. Lio, Y. Bengio, "Graph Attention
    Networks", ICLR 2018. https://arxiv.org/abs/1710.10903

        e_ij = LeakyReLU(a^T [W x_i || W x_j]) = LeakyReLU(a_dst . W x_i + a_src . W x_j)
        alpha_ij = softmax_{j in N(i) ∪ {i}} e_ij
        x_i' = ||_{k=1..K} sum_j alpha_ij^k W^k x_j    (concat)   or   mean_k (...)  (average)

GINConv
    K. Xu, W. Hu, J. Leskovec, S. Jegelka, "How Powerful are Graph Neural Networks?",
    ICLR 2019. https://arxiv.org/abs/1810.00826

        x_i' = MLP((1 + eps) x_i + sum_{j in N(i)} x_j)

Deviations from the paper:
    - GCNConv: existing self-loops are kept rather than doubled (PyG's
      ``add_remaining_self_loops``); optional ``edge_weight`` generalises A to a weighted graph.
    - SAGEConv: full neighbourhoods, no neighbour sampling; ``aggr="max"`` is the plain
      elementwise max (the paper's pooling aggregator first applies a one-layer MLP to each
      neighbour, which a preceding linear layer can supply); the per-layer L2 normalisation of
      the paper's Algorithm 1 is ``normalize=True`` (off by default, as in PyG; the models turn
      it on).
    - GATConv: a ``1e-16`` is added to the softmax denominator (PyG's softmax) for isolated
      targets when ``add_self_loops=False``.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "GCNConv",
    "SAGEConv",
    "GATConv",
    "GINConv",
    "gcn_norm",
    "scatter_softmax",
    "linear_any",
    "global_add_pool",
    "global_mean_pool",
    "global_max_pool",
]


# ----------------------------------------------------------------------------------------------
# helpers


def linear_any(x: Tensor, lin: nn.Linear) -> Tensor:
    """``lin(x)`` for a dense, sparse COO or sparse CSR ``x`` (N, F): a sparse x uses ``x @ W^T``
    as a sparse-dense product, so a mostly-zero feature matrix (Cora: 1.3% non-zero) is never
    densified."""
    if x.layout in (torch.sparse_coo, torch.sparse_csr):
        out = torch.sparse.mm(x, lin.weight.t())  # (N, F) @ (F, C) -> (N, C)
        return out + lin.bias if lin.bias is not None else out
    return lin(x)


def remove_self_loops(edge_index: Tensor, edge_weight: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
    keep = edge_index[0] != edge_index[1]
    return edge_index[:, keep], (edge_weight[keep] if edge_weight is not None else None)


def add_self_loops(edge_index: Tensor, num_nodes: int) -> Tensor:
    """Append one loop (i, i) per node, after the existing edges (PyG's order)."""
    loop = torch.arange(num_nodes, device=edge_index.device, dtype=edge_index.dtype)
    return torch.cat([edge_index, torch.stack([loop, loop])], dim=1)  # (2, E + N)


def gcn_norm(
    edge_index: Tensor,
    num_nodes: int,
    edge_weight: Tensor | None = None,
    add_self_loops: bool = True,
    dtype: torch.dtype = torch.float32,
) -> tuple[Tensor, Tensor]:
    """The edges of D^-1/2 (A + I) D^-1/2 and their weights ``w_ji / sqrt(d_j d_i)``.

    A node that already has a self-loop keeps it (and its weight); the others get a loop of
    weight 1. Degrees are in-degrees of the targets (row 1), as in PyG.

    Returns:
        edge_index (2, E') and norm (E',).
    """
    if edge_weight is None:
        edge_weight = torch.ones(edge_index.shape[1], dtype=dtype, device=edge_index.device)
    if add_self_loops:
        is_loop = edge_index[0] == edge_index[1]
        loop_weight = torch.ones(num_nodes, dtype=edge_weight.dtype, device=edge_weight.device)
        loop_weight[edge_index[0, is_loop]] = edge_weight[is_loop]
        edge_index, edge_weight = edge_index[:, ~is_loop], edge_weight[~is_loop]
        loop = torch.arange(num_nodes, device=edge_index.device, dtype=edge_index.dtype)
        edge_index = torch.cat([edge_index, torch.stack([loop, loop])], dim=1)  # (2, E + N)
        edge_weight = torch.cat([edge_weight, loop_weight])
    src, dst = edge_index
    deg = edge_weight.new_zeros(num_nodes).index_add_(0, dst, edge_weight)  # (N,)
    deg_inv_sqrt = deg.pow(-0.5).masked_fill_(deg == 0, 0.0)
    return edge_index, deg_inv_sqrt[src] * edge_weight * deg_inv_sqrt[dst]  # (E',)


def scatter_softmax(src: Tensor, index: Tensor, num_nodes: int) -> Tensor:
    """Softmax of ``src`` (E, H) over the entries sharing a target ``index`` (E,).

    Stable: the per-target maximum is subtracted first (``scatter_reduce`` amax).
    """
    shape = (num_nodes, *src.shape[1:])
    idx = index.view(-1, *([1] * (src.dim() - 1))).expand_as(src)
    src_max = src.new_full(shape, float("-inf")).scatter_reduce(0, idx, src, "amax", include_self=True)
    out = (src - src_max[index]).exp()  # (E, H)
    denom = src.new_zeros(shape).index_add_(0, index, out)  # (N, H)
    return out / (denom[index] + 1e-16)


def _scatter_sum(messages: Tensor, index: Tensor, num_nodes: int) -> Tensor:
    return messages.new_zeros((num_nodes, *messages.shape[1:])).index_add_(0, index, messages)


# ----------------------------------------------------------------------------------------------
# convolutions


class GCNConv(nn.Module):
    r"""Graph convolution of Kipf & Welling (2017): ``X' = D^-1/2 (A + I) D^-1/2 X W + b``.

    Args:
        in_channels: input features F.
        out_channels: output features C.
        bias: learn an additive bias ``b``.
        add_self_loops: add ``I`` to A (a node keeps part of its own features).
        normalize: apply the symmetric normalisation (with the self-loops); if False the layer
            sums ``edge_weight * x_j W`` over the raw edges (PyG's behaviour).
        cached: compute the normalised edges once and reuse them while the same ``edge_index``
            tensor comes back (full-batch training on one graph, as the paper).
        method: ``"scatter"`` (messages gathered per edge and summed with ``index_add_``) or
            ``"sparse"`` (``torch.sparse.mm`` with the normalised adjacency); equal results.

    Shapes:
        x: (N, F) dense, or sparse COO/CSR; edge_index: (2, E); edge_weight: (E,) or None.
        Returns (N, C).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        bias: bool = True,
        add_self_loops: bool = True,
        normalize: bool = True,
        cached: bool = False,
        *,
        method: Literal["scatter", "sparse"] = "scatter",
    ) -> None:
        super().__init__()
        if method not in ("scatter", "sparse"):
            raise ValueError(f"method must be 'scatter' or 'sparse', got {method!r}")
        if add_self_loops and not normalize:
            raise ValueError(
                "GCNConv adds self-loops only with normalize=True; add them to edge_index yourself "
                "or pass add_self_loops=False with normalize=False"
            )
        self.in_channels, self.out_channels = in_channels, out_channels
        self.add_self_loops, self.normalize, self.cached, self.method = add_self_loops, normalize, cached, method
        self.lin = nn.Linear(in_channels, out_channels, bias=False)
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self._cache: tuple[tuple, Tensor, Tensor] | None = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.xavier_uniform_(self.lin.weight)  # glorot, as the paper and PyG
        if self.bias is not None:
            nn.init.zeros_(self.bias)
        self._cache = None

    def _normalized(self, edge_index: Tensor, n: int, edge_weight: Tensor | None, dtype: torch.dtype):
        key = (edge_index.data_ptr(), tuple(edge_index.shape), n, edge_index.device, dtype)
        if self.cached and edge_weight is None and self._cache is not None and self._cache[0] == key:
            return self._cache[1], self._cache[2]
        if self.normalize:
            ei, w = gcn_norm(edge_index, n, edge_weight, self.add_self_loops, dtype)
        else:
            ei = edge_index
            w = edge_weight if edge_weight is not None else torch.ones(ei.shape[1], dtype=dtype, device=ei.device)
        if self.cached and edge_weight is None:
            self._cache = (key, ei, w)
        return ei, w

    def forward(self, x: Tensor, edge_index: Tensor, edge_weight: Tensor | None = None) -> Tensor:
        n = x.shape[0]
        h = linear_any(x, self.lin)  # (N, C); transform first: C <= F keeps the messages small
        ei, w = self._normalized(edge_index, n, edge_weight, h.dtype)
        src, dst = ei
        if self.method == "scatter":
            out = _scatter_sum(h[src] * w.unsqueeze(-1), dst, n)  # (E, C) -> (N, C)
        else:
            adj = torch.sparse_coo_tensor(torch.stack([dst, src]), w, (n, n), check_invariants=False)  # Â[i, j] for j -> i
            out = torch.sparse.mm(adj, h)  # (N, N) @ (N, C)
        if self.bias is not None:
            out = out + self.bias
        return out

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, method={self.method!r}"


class SAGEConv(nn.Module):
    r"""GraphSAGE layer (Hamilton et al. 2017): ``x_i' = W_1 x_i + W_2 agg_{j in N(i)} x_j``.

    ``lin_l`` (with the bias) transforms the aggregated neighbours, ``lin_r`` the node itself.
    A node without in-neighbours aggregates zeros.

    Args:
        in_channels: input features F.
        out_channels: output features C.
        aggr: ``"mean"`` or ``"max"`` (elementwise).
        root_weight: add ``W_1 x_i`` (the paper's concatenation of self and neighbourhood).
        normalize: L2-normalise each output row (the paper's Algorithm 1, line 7).
        bias: learn a bias in ``lin_l``.

    Shapes:
        x: (N, F); edge_index: (2, E). Returns (N, C).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        aggr: Literal["mean", "max"] = "mean",
        root_weight: bool = True,
        normalize: bool = False,
        bias: bool = True,
    ) -> None:
        super().__init__()
        if aggr not in ("mean", "max"):
            raise ValueError(f"aggr must be 'mean' or 'max', got {aggr!r}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.aggr, self.root_weight, self.normalize = aggr, root_weight, normalize
        self.lin_l = nn.Linear(in_channels, out_channels, bias=bias)
        self.lin_r = nn.Linear(in_channels, out_channels, bias=False) if root_weight else None

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        if x.layout != torch.strided:
            x = x.to_dense()
        n = x.shape[0]
        src, dst = edge_index
        msg = x[src]  # (E, F)
        if self.aggr == "mean":
            agg = _scatter_sum(msg, dst, n)  # (N, F)
            count = x.new_zeros(n).index_add_(0, dst, x.new_ones(dst.shape[0]))
            agg = agg / count.clamp(min=1).unsqueeze(-1)
        else:
            idx = dst.unsqueeze(-1).expand_as(msg)
            agg = x.new_zeros(n, x.shape[1]).scatter_reduce(0, idx, msg, "amax", include_self=False)
        out = self.lin_l(agg)  # (N, C)
        if self.lin_r is not None:
            out = out + self.lin_r(x)
        if self.normalize:
            out = F.normalize(out, p=2.0, dim=-1)
        return out

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, aggr={self.aggr!r}"


class GATConv(nn.Module):
    r"""Graph attention layer (Velickovic et al. 2018), ``heads`` independent attention heads.

        h = x W                                   # (N, H, C)
        e_ij = LeakyReLU(a_src . h_j + a_dst . h_i)   over j in N(i) ∪ {i}
        alpha_ij = softmax_j e_ij, then dropout   # (E, H)
        x_i' = concat_k or mean_k sum_j alpha_ij h_j + b

    Args:
        in_channels: input features F.
        out_channels: features per head C.
        heads: number of heads H.
        concat: concatenate the heads (H*C outputs) or average them (C outputs).
        negative_slope: LeakyReLU slope of the attention logits (0.2 in the paper).
        dropout: dropout on the normalised attention coefficients (training only).
        add_self_loops: attend to the node itself (existing self-loops are replaced by one).
        bias: learn a bias added after the aggregation.

    Shapes:
        x: (N, F) dense or sparse; edge_index: (2, E). Returns (N, H*C) or (N, C); with
        ``return_attention_weights=True`` also ``(edge_index', alpha)`` with edge_index' (2, E')
        the edges used (self-loops appended last) and alpha (E', H).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        heads: int = 1,
        concat: bool = True,
        negative_slope: float = 0.2,
        dropout: float = 0.0,
        add_self_loops: bool = True,
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.in_channels, self.out_channels, self.heads, self.concat = in_channels, out_channels, heads, concat
        self.negative_slope, self.dropout, self.add_self_loops = negative_slope, dropout, add_self_loops
        self.lin = nn.Linear(in_channels, heads * out_channels, bias=False)
        self.att_src = nn.Parameter(torch.empty(1, heads, out_channels))
        self.att_dst = nn.Parameter(torch.empty(1, heads, out_channels))
        self.bias = nn.Parameter(torch.empty(heads * out_channels if concat else out_channels)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for p in (self.lin.weight, self.att_src, self.att_dst):
            nn.init.xavier_uniform_(p)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def forward(
        self, x: Tensor, edge_index: Tensor, *, return_attention_weights: bool = False
    ) -> Tensor | tuple[Tensor, tuple[Tensor, Tensor]]:
        n, H, C = x.shape[0], self.heads, self.out_channels
        h = linear_any(x, self.lin).view(n, H, C)  # (N, H, C)
        a_src = (h * self.att_src).sum(-1)  # (N, H)
        a_dst = (h * self.att_dst).sum(-1)  # (N, H)
        if self.add_self_loops:
            edge_index, _ = remove_self_loops(edge_index)
            edge_index = add_self_loops(edge_index, n)
        src, dst = edge_index
        e = F.leaky_relu(a_src[src] + a_dst[dst], self.negative_slope)  # (E, H)
        alpha = scatter_softmax(e, dst, n)  # (E, H)
        alpha_drop = F.dropout(alpha, p=self.dropout, training=self.training)
        out = _scatter_sum(h[src] * alpha_drop.unsqueeze(-1), dst, n)  # (E, H, C) -> (N, H, C)
        out = out.reshape(n, H * C) if self.concat else out.mean(dim=1)  # (N, H*C) | (N, C)
        if self.bias is not None:
            out = out + self.bias
        if return_attention_weights:
            return out, (edge_index, alpha)
        return out

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, heads={self.heads}, concat={self.concat}"


class GINConv(nn.Module):
    r"""Graph isomorphism layer (Xu et al. 2019): ``x_i' = MLP((1 + eps) x_i + sum_j x_j)``.

    Args:
        nn: the MLP (any module mapping (N, F) to (N, C)); stored as ``self.nn`` (PyG's name).
        eps: initial eps (0 gives the paper's GIN-0).
        train_eps: learn eps (the paper's GIN-eps); otherwise it is a buffer.

    Shapes:
        x: (N, F); edge_index: (2, E). Returns (N, C).
    """

    def __init__(self, nn: nn.Module, eps: float = 0.0, train_eps: bool = False) -> None:  # noqa: A002
        super().__init__()
        self.nn = nn
        self.initial_eps = eps
        if train_eps:
            self.eps = torch.nn.Parameter(torch.full((1,), float(eps)))
        else:
            self.register_buffer("eps", torch.full((1,), float(eps)))

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        if x.layout != torch.strided:
            x = x.to_dense()
        agg = _scatter_sum(x[edge_index[0]], edge_index[1], x.shape[0])  # (N, F)
        return self.nn(agg + (1 + self.eps) * x)


# ----------------------------------------------------------------------------------------------
# readout


def _size(batch: Tensor | None, num_graphs: int | None) -> int:
    if num_graphs is not None:
        return int(num_graphs)
    return int(batch.max()) + 1 if batch is not None and batch.numel() else 1


def global_add_pool(x: Tensor, batch: Tensor | None = None, num_graphs: int | None = None) -> Tensor:
    """Sum of each graph's node features: (N, F) -> (G, F). ``batch`` None means one graph."""
    if batch is None:
        return x.sum(0, keepdim=True)
    return _scatter_sum(x, batch, _size(batch, num_graphs))


def global_mean_pool(x: Tensor, batch: Tensor | None = None, num_graphs: int | None = None) -> Tensor:
    """Mean of each graph's node features: (N, F) -> (G, F) (an empty graph gives zeros)."""
    if batch is None:
        return x.mean(0, keepdim=True)
    g = _size(batch, num_graphs)
    count = x.new_zeros(g).index_add_(0, batch, x.new_ones(batch.shape[0]))
    return _scatter_sum(x, batch, g) / count.clamp(min=1).unsqueeze(-1)


def global_max_pool(x: Tensor, batch: Tensor | None = None, num_graphs: int | None = None) -> Tensor:
    """Elementwise max over each graph's nodes: (N, F) -> (G, F) (an empty graph gives zeros)."""
    if batch is None:
        return x.max(0, keepdim=True).values
    idx = batch.unsqueeze(-1).expand_as(x)
    return x.new_zeros(_size(batch, num_graphs), x.shape[1]).scatter_reduce(0, idx, x, "amax", include_self=False)
