"""Our graph layers and models against PyG's, with copied weights, and two code paths of the same op."""

from __future__ import annotations

import pytest
import torch

from archlab.models.graph import layers as L
from archlab.models.graph.gnn import GAT, GCN, GIN, GraphMLP, GraphSAGE, input_dropout, sparse_dropout
from archlab.registry import create_model

pyg = pytest.importorskip("torch_geometric.nn")
pytestmark = pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta")

TOL = 1e-5


def random_graph(n: int = 12, e: int = 30, isolated: int = 2, seed: int = 0) -> torch.Tensor:
    """Random directed edges without duplicates or self-loops; the last ``isolated`` nodes have none."""
    g = torch.Generator().manual_seed(seed)
    m = n - isolated
    src, dst = torch.randint(0, m, (2, 4 * e), generator=g)
    keep = src != dst
    ei = torch.stack([src[keep], dst[keep]]).unique(dim=1)
    return ei[:, torch.randperm(ei.shape[1], generator=g)[:e]]


@pytest.fixture
def graph() -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    return torch.randn(12, 5), random_graph()


def copy_into(dst: torch.nn.Module, src: torch.nn.Module) -> None:
    dst.load_state_dict(src.state_dict(), strict=True)


def close(a: torch.Tensor, b: torch.Tensor, tol: float = TOL) -> bool:
    return (a - b).abs().max().item() <= tol


@pytest.mark.parametrize("normalize,loops", [(True, True), (True, False), (False, False)])
def test_gcn_conv_matches_pyg(graph, normalize: bool, loops: bool) -> None:
    x, ei = graph
    ours = L.GCNConv(5, 7, add_self_loops=loops, normalize=normalize)
    ref = pyg.GCNConv(5, 7, add_self_loops=loops, normalize=normalize)
    assert set(ours.state_dict()) == set(ref.state_dict())
    copy_into(ours, ref)
    assert close(ours(x, ei), ref(x, ei))


def test_gcn_conv_self_loops_need_normalize() -> None:
    with pytest.raises(ValueError, match="add_self_loops=False"):
        L.GCNConv(5, 7, add_self_loops=True, normalize=False)


def test_gcn_conv_edge_weight_and_existing_self_loop_match_pyg(graph) -> None:
    x, ei = graph
    ei = torch.cat([ei, torch.tensor([[3], [3]])], dim=1)  # one node already has a self-loop
    w = torch.rand(ei.shape[1]) + 0.5
    ours, ref = L.GCNConv(5, 4), pyg.GCNConv(5, 4)
    copy_into(ours, ref)
    assert close(ours(x, ei, w), ref(x, ei, w))


def test_gcn_scatter_equals_sparse_path_and_cache(graph) -> None:
    x, ei = graph
    a = L.GCNConv(5, 6, method="scatter").double()
    b = L.GCNConv(5, 6, method="sparse", cached=True).double()
    copy_into(b, a)
    x = x.double()
    assert close(a(x, ei), b(x, ei), 1e-12)
    assert close(a(x, ei), b(x, ei), 1e-12)  # second call uses the cached normalisation
    assert b._cache is not None
    # gradients agree too
    a(x, ei).square().sum().backward()
    b(x, ei).square().sum().backward()
    assert close(a.lin.weight.grad, b.lin.weight.grad, 1e-10)


def test_gcn_accepts_sparse_features(graph) -> None:
    x, ei = graph
    x = x * (torch.rand_like(x) < 0.3)
    conv = L.GCNConv(5, 3)
    dense = conv(x, ei)
    assert close(conv(x.to_sparse(), ei), dense)
    assert close(conv(x.to_sparse_csr(), ei), dense)


@pytest.mark.parametrize("aggr", ["mean", "max"])
@pytest.mark.parametrize("normalize", [False, True])
def test_sage_conv_matches_pyg(graph, aggr: str, normalize: bool) -> None:
    x, ei = graph
    ours = L.SAGEConv(5, 7, aggr=aggr, normalize=normalize)
    ref = pyg.SAGEConv(5, 7, aggr=aggr, normalize=normalize)
    assert set(ours.state_dict()) == set(ref.state_dict())
    copy_into(ours, ref)
    assert close(ours(x, ei), ref(x, ei))


@pytest.mark.parametrize("heads,concat", [(1, True), (1, False), (3, True), (3, False)])
def test_gat_conv_matches_pyg(graph, heads: int, concat: bool) -> None:
    x, ei = graph
    ours = L.GATConv(5, 4, heads=heads, concat=concat)
    ref = pyg.GATConv(5, 4, heads=heads, concat=concat)
    assert set(ours.state_dict()) == set(ref.state_dict())
    copy_into(ours, ref)
    out, (ei_ours, alpha) = ours(x, ei, return_attention_weights=True)
    out_ref, (ei_ref, alpha_ref) = ref(x, ei, return_attention_weights=True)
    assert close(out, out_ref)
    assert torch.equal(ei_ours, ei_ref)
    assert close(alpha, alpha_ref)
    # the coefficients of each target's neighbourhood (itself included) sum to one
    sums = torch.zeros(x.shape[0], heads).index_add_(0, ei_ours[1], alpha)
    assert close(sums, torch.ones_like(sums), 1e-6)


def test_gat_conv_without_self_loops_matches_pyg(graph) -> None:
    x, ei = graph
    ours, ref = L.GATConv(5, 4, heads=2, add_self_loops=False), pyg.GATConv(5, 4, heads=2, add_self_loops=False)
    copy_into(ours, ref)
    assert close(ours(x, ei), ref(x, ei))


def test_scatter_softmax_is_stable() -> None:
    src = torch.tensor([[1000.0], [1001.0], [-1000.0]])
    out = L.scatter_softmax(src, torch.tensor([0, 0, 1]), 2)
    assert torch.isfinite(out).all()
    assert close(out[:2, 0].sum(), torch.tensor(1.0)) and out[2, 0] == 1.0


@pytest.mark.parametrize("train_eps", [False, True])
def test_gin_conv_matches_pyg(graph, train_eps: bool) -> None:
    x, ei = graph
    mlp = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    ours = L.GINConv(mlp, eps=0.3, train_eps=train_eps)
    ref = pyg.GINConv(torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3)),
                      eps=0.3, train_eps=train_eps)
    assert set(ours.state_dict()) == set(ref.state_dict())
    copy_into(ours, ref)
    assert close(ours(x, ei), ref(x, ei))


@pytest.mark.parametrize("name", ["global_add_pool", "global_mean_pool", "global_max_pool"])
def test_pooling_matches_pyg(name: str) -> None:
    torch.manual_seed(0)
    x = torch.randn(10, 4)
    batch = torch.tensor([0, 0, 0, 1, 1, 2, 2, 2, 2, 2])
    ours, ref = getattr(L, name), getattr(pyg, name)
    assert close(ours(x, batch, 3), ref(x, batch, 3))
    assert close(ours(x, None), ref(x, None))


# ----------------------------------------------------------------------------------------------
# models


NODE_MODELS = [
    ("gcn", {}),
    ("gcn_deep_residual", {"num_layers": 4}),
    ("graphsage", {}),
    ("graphsage", {"aggr": "max"}),
    ("gat", {"heads": 3}),
]


@pytest.mark.parametrize("name,extra", NODE_MODELS)
def test_model_backends_agree(graph, name: str, extra: dict) -> None:
    x, ei = graph
    kw = dict(in_features=5, num_classes=3, hidden_dim=8, **extra)
    torch.manual_seed(0)
    ours = create_model(name, **kw).eval()
    ref = create_model(name, backend="pyg", **kw).eval()
    assert set(ours.state_dict()) == set(ref.state_dict())
    ref.load_state_dict(ours.state_dict())
    assert close(ours(x, ei), ref(x, ei))


def test_gin_backends_agree() -> None:
    torch.manual_seed(0)
    ours = create_model("gin", in_features=5, num_classes=3, hidden_dim=8).eval()
    ref = create_model("gin", in_features=5, num_classes=3, hidden_dim=8, backend="pyg").eval()
    x, ei, batch, g = ours.example_input(4)
    ours.train()(x, ei, batch, g)  # move the batch-norm statistics
    ours.eval()
    ref.load_state_dict(ours.state_dict())
    out = ours(x, ei, batch, g)
    assert out.shape == (4, 3) and close(out, ref(x, ei, batch, g))


def test_gin_last_layer_readout() -> None:
    model = GIN(5, 2, 8, 3, jump_knowledge=False).eval()
    x, ei, batch, g = model.example_input(3)
    assert model(x, ei, batch, g).shape == (3, 2) and len(model.heads) == 1
    assert GIN.task == "graph_classification" and GCN.task == "node_classification"


@pytest.mark.parametrize("cls", [GCN, GAT, GraphMLP])
def test_sparse_input_equals_dense_input(graph, cls) -> None:
    x, ei = graph
    x = x * (torch.rand_like(x) < 0.3)
    torch.manual_seed(0)
    model = cls(5, 3, 8).eval()
    dense = model(x, ei)
    assert close(model(x.to_sparse(), ei), dense)
    assert close(model(x.to_sparse_csr(), ei), dense)
    # training with a sparse input: gradients reach the first layer
    model.train()
    model(x.to_sparse(), ei).sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_sparse_dropout_keeps_pattern_and_scales() -> None:
    torch.manual_seed(0)
    x = (torch.rand(50, 40) < 0.1).float()
    xs = x.to_sparse()
    out = sparse_dropout(xs, 0.5).to_dense()
    assert ((out != 0) <= (x != 0)).all()  # nothing appears where x was zero
    assert set(out.unique().tolist()) <= {0.0, 2.0}
    assert torch.equal(sparse_dropout(xs, 0.5, training=False).to_dense(), x)
    csr = sparse_dropout(x.to_sparse_csr(), 0.5).to_dense()
    assert ((csr != 0) <= (x != 0)).all()
    # densify-first path gives the same kind of result
    dense = input_dropout(xs, 0.5, True, sparse_values_only=False)
    assert dense.layout == torch.strided and ((dense != 0) <= (x != 0)).all()


def test_graph_mlp_ignores_edges(graph) -> None:
    x, ei = graph
    model = GraphMLP(5, 3).eval()
    assert torch.equal(model(x, ei), model(x))


def test_deep_gcn_residual_and_dropout_train(graph) -> None:
    x, ei = graph
    model = GCN(5, 3, 8, 16, residual=True).train()
    assert model.skip == [False] + [True] * 14 + [False]
    model(x, ei).sum().backward()
    assert model.convs[0].lin.weight.grad.abs().sum() > 0
    sage = GraphSAGE(5, 3, 8, dropout=0.5).train()
    sage(x, ei).sum().backward()
    assert sage.convs[0].lin_l.weight.grad is not None
