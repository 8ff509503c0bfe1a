"""Graph datasets: Planetoid (vs PyG), karate (vs networkx), TU files, the synthetic set, the contract."""

from __future__ import annotations

import pickle
import shutil
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from archlab.data import load_dataset
from archlab.data.download import RemoteFile, download_file
from archlab.data.graph import GraphData, GraphDataError, GraphSetBundle, NodeBundle, batch_graphs
from archlab.data.graph_datasets import (
    KARATE_EDGES,
    make_synthetic_graphs,
    normalize_rows,
    random_planetoid_split,
    read_planetoid,
    read_tu_dataset,
)
from archlab.utils import ArchlabError

EXTS = ("x", "y", "tx", "ty", "allx", "ally", "graph", "test.index")


def edge_set(ei: torch.Tensor) -> set[tuple[int, int]]:
    return set(map(tuple, ei.t().tolist()))


def pyg_planetoid(folder: Path, title: str, tmp_path: Path, **kw):
    """PyG's Planetoid on copies of the files in ``folder`` (placed in raw/, so it does not download)."""
    pytest.importorskip("torch_geometric")
    from torch_geometric.datasets import Planetoid

    raw = tmp_path / "pyg" / title / "raw"
    raw.mkdir(parents=True)
    for f in folder.glob(f"ind.{title.lower()}.*"):
        shutil.copy(f, raw / f.name)
    return Planetoid(str(tmp_path / "pyg"), title, **kw)[0]


def assert_same_as_pyg(bundle: NodeBundle, data) -> None:
    g = bundle.graph
    assert torch.equal(bundle.extra["x_raw"], data.x)
    assert torch.equal(g.y, data.y)
    assert edge_set(g.edge_index) == edge_set(data.edge_index)
    assert g.num_edges == data.edge_index.shape[1]
    for m in ("train_mask", "val_mask", "test_mask"):
        assert torch.equal(getattr(g, m), getattr(data, m)), m


# ----------------------------------------------------------------------------- fake Planetoid files


def write_fake_planetoid(folder: Path, name: str, *, n_lab: int = 12, n_unlab: int = 510, n_test: int = 30,
                         n_missing: int = 0, f: int = 9, k: int = 3, seed: int = 0,
                         symmetric: bool = True) -> None:
    """Planetoid-format files: pickles of scipy csr matrices / one-hot arrays / a defaultdict.

    ``n_missing`` test ids in the middle of the test range are left out of tx/ty (CiteSeer's
    isolated nodes). The graph has duplicates and a self-loop; it is symmetric (as the real files
    are) unless ``symmetric=False``.
    """
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    n_all = n_lab + n_unlab
    ids = np.arange(n_all, n_all + n_test + n_missing)
    missing = ids[len(ids) // 2: len(ids) // 2 + n_missing]
    test_ids = rng.permutation(np.setdiff1d(ids, missing))
    n = n_all + n_test + n_missing

    def feats(rows: int):
        return sp.csr_matrix((rng.random((rows, f)) < 0.3).astype(np.float32))

    def onehot(rows: int):
        return np.eye(k, dtype=np.int32)[rng.integers(0, k, rows)]

    allx, ally = feats(n_all), onehot(n_all)
    parts = {"x": allx[:n_lab], "y": ally[:n_lab], "allx": allx, "ally": ally, "tx": feats(n_test),
             "ty": onehot(n_test)}
    graph = defaultdict(list)
    for i in range(n):
        for j in rng.choice(n, 3):
            graph[i].append(int(j))
            if symmetric:
                graph[int(j)].append(i)
    graph[5].append(5)  # self-loop
    graph[1] += [2, 2]  # duplicates
    graph[2].append(1)
    parts["graph"] = graph
    for ext, obj in parts.items():
        (folder / f"ind.{name}.{ext}").write_bytes(pickle.dumps(obj, protocol=2))
    (folder / f"ind.{name}.test.index").write_text("\n".join(map(str, test_ids)) + "\n")


@pytest.mark.parametrize("name,title,missing", [("cora", "Cora", 0), ("citeseer", "CiteSeer", 4)])
def test_fake_planetoid_equals_pyg(tmp_path, name, title, missing):
    write_fake_planetoid(tmp_path / "data" / "planetoid", name, n_missing=missing)
    ours = load_dataset(name, tmp_path / "data", download=False)
    assert_same_as_pyg(ours, pyg_planetoid(tmp_path / "data" / "planetoid", title, tmp_path))
    g = ours.graph
    assert g.num_nodes == 12 + 510 + 30 + missing
    assert (g.edge_index[0] != g.edge_index[1]).all()
    assert edge_set(g.edge_index) == edge_set(g.edge_index.flip(0))  # undirected


def test_asymmetric_adjacency_is_made_undirected(tmp_path):
    # Kipf's preprocessing symmetrises; PyG keeps the lists as they are (the real files are symmetric).
    write_fake_planetoid(tmp_path, "cora", symmetric=False)
    g = load_dataset("cora", tmp_path, download=False).graph
    graph = pickle.loads((tmp_path / "ind.cora.graph").read_bytes())
    want = {(i, j) for i, js in graph.items() for j in js if i != j}
    assert edge_set(g.edge_index) == want | {(j, i) for i, j in want}


def test_planetoid_folder_layouts(tmp_path):
    for i, sub in enumerate(["cora", "Cora/raw", "."]):
        root = tmp_path / str(i)
        write_fake_planetoid(root / sub, "cora")
        assert load_dataset("cora", root, download=False).graph.num_nodes == 552


def test_random_split_sizes_and_seed(tmp_path):
    write_fake_planetoid(tmp_path / "planetoid", "cora", n_lab=12, n_unlab=600, k=3)
    b = load_dataset("cora", tmp_path, download=False, split="random", num_train_per_class=5, num_val=50,
                     num_test=100, split_seed=3)
    g = b.graph
    assert (int(g.train_mask.sum()), int(g.val_mask.sum()), int(g.test_mask.sum())) == (15, 50, 100)
    assert torch.bincount(g.y[g.train_mask], minlength=3).tolist() == [5, 5, 5]
    assert not (g.train_mask & g.val_mask).any() and not (g.val_mask & g.test_mask).any()
    again = load_dataset("cora", tmp_path, download=False, split="random", num_train_per_class=5, num_val=50,
                         num_test=100, split_seed=3).graph
    assert torch.equal(again.test_mask, g.test_mask)
    other = random_planetoid_split(g.y, 3, 5, 50, 100, seed=4)
    assert not torch.equal(other[2], g.test_mask)
    with pytest.raises(ArchlabError, match="num_val"):
        random_planetoid_split(g.y, 3, 5, 500, 1000)


def test_random_split_matches_pyg_with_same_seed(tmp_path):
    write_fake_planetoid(tmp_path / "planetoid", "cora", n_unlab=600)
    ours = load_dataset("cora", tmp_path, download=False, split="random", num_train_per_class=4, num_val=40,
                        num_test=60, split_seed=7).graph
    torch.manual_seed(7)
    data = pyg_planetoid(tmp_path / "planetoid", "Cora", tmp_path, split="random", num_train_per_class=4,
                         num_val=40, num_test=60)
    for m in ("train_mask", "val_mask", "test_mask"):
        assert torch.equal(getattr(ours, m), getattr(data, m)), m


def test_normalize_features(tmp_path):
    write_fake_planetoid(tmp_path, "cora")
    b = load_dataset("cora", tmp_path, download=False)
    raw = load_dataset("cora", tmp_path, download=False, normalize_features=False)
    assert torch.equal(raw.graph.x, raw.extra["x_raw"])
    sums = b.graph.x.sum(1)
    nonzero = raw.graph.x.sum(1) > 0
    assert torch.allclose(sums[nonzero], torch.ones(int(nonzero.sum())))
    assert (sums[~nonzero] == 0).all()
    assert torch.allclose(normalize_rows(torch.tensor([[2.0, 2.0], [0.0, 0.0]])), torch.tensor([[0.5, 0.5], [0, 0]]))


class _Evil:
    def __reduce__(self):
        import os

        return (os.system, ("echo pwned",))


def test_restricted_unpickler_refuses_malicious_file(tmp_path):
    write_fake_planetoid(tmp_path, "cora")
    (tmp_path / "ind.cora.tx").write_bytes(pickle.dumps(_Evil(), protocol=2))
    with pytest.raises(ArchlabError, match=r"refusing to load global (posix|os|nt)\.system"):
        load_dataset("cora", tmp_path, download=False)


def test_corrupt_file_names_file_and_md5(tmp_path):
    write_fake_planetoid(tmp_path, "cora")
    p = tmp_path / "ind.cora.allx"
    p.write_bytes(p.read_bytes()[:200])
    with pytest.raises(ArchlabError) as e:
        load_dataset("cora", tmp_path, download=False)
    msg = str(e.value)
    assert "ind.cora.allx" in msg and "c9083193a57057dd1238321e140194d7" in msg and "Traceback" not in msg


def test_corrupt_unverifiable_file_says_so(tmp_path):
    write_fake_planetoid(tmp_path, "citeseer")
    (tmp_path / "ind.citeseer.ally").write_bytes(b"\x80\x02garbage")
    with pytest.raises(ArchlabError, match=r"(?s)ind\.citeseer\.ally.*cannot be verified"):
        load_dataset("citeseer", tmp_path, download=False)


def test_inconsistent_files_are_clear_errors(tmp_path):
    write_fake_planetoid(tmp_path, "cora")
    (tmp_path / "ind.cora.test.index").write_text("1\n2\n")
    with pytest.raises(ArchlabError, match="test.index"):
        read_planetoid(tmp_path, "cora")


def test_missing_file_offline_names_url(tmp_path):
    write_fake_planetoid(tmp_path, "pubmed")
    (tmp_path / "ind.pubmed.graph").unlink()
    with pytest.raises(ArchlabError) as e:
        load_dataset("pubmed", tmp_path, download=False)
    msg = str(e.value)
    assert "ind.pubmed.graph" in msg
    assert "https://github.com/kimiyoung/planetoid/raw/master/data/ind.pubmed.graph" in msg
    assert "cannot be verified" in msg  # no md5 known for PubMed: said plainly


def test_download_without_md5_is_kept_and_flagged(tmp_path, capsys):
    src = tmp_path / "src.bin"
    src.write_bytes(b"hello")
    spec = RemoteFile("file.bin", (src.as_uri(),), None)
    path = download_file(spec, tmp_path / "out")
    assert path.read_bytes() == b"hello"
    assert "NOT verified" in capsys.readouterr().err


# ----------------------------------------------------------------------------- real Cora


@pytest.mark.real_data
def test_real_cora_loads_and_equals_pyg(shared_data, tmp_path):
    b = load_dataset("cora", shared_data)
    g = b.graph
    assert isinstance(b, NodeBundle) and b.info.kind == "graph_nodes"
    assert g.x.shape == (2708, 1433) and g.x.dtype == torch.float32
    assert b.info.num_classes == 7 and b.info.input_shape == (1433,)
    assert g.num_edges == 10556
    assert (int(g.train_mask.sum()), int(g.val_mask.sum()), int(g.test_mask.sum())) == (140, 500, 1000)
    assert torch.bincount(g.y).tolist() == [351, 217, 418, 818, 426, 298, 180]
    assert b.info.class_names[3] == "Neural_Networks"
    assert_same_as_pyg(b, pyg_planetoid(shared_data / "planetoid", "Cora", tmp_path))


# ----------------------------------------------------------------------------- karate


def test_karate_matches_networkx():
    nx = pytest.importorskip("networkx")
    ref = nx.karate_club_graph()
    b = load_dataset("karate")
    g = b.graph
    assert g.num_nodes == 34 and g.num_edges == 156 and len(KARATE_EDGES) == 78
    want = {(u, v) for u, v in ref.edges()} | {(v, u) for u, v in ref.edges()}
    assert edge_set(g.edge_index) == want
    clubs = [0 if ref.nodes[i]["club"] == "Mr. Hi" else 1 for i in ref]
    assert g.y.tolist() == clubs
    assert torch.equal(g.x, torch.eye(34))
    assert g.train_mask.nonzero().view(-1).tolist() == [0, 33] and int(g.test_mask.sum()) == 32
    assert g.y[0] == 0 and g.y[33] == 1 and b.info.class_names == ["Mr. Hi", "Officer"]


# ----------------------------------------------------------------------------- TU / MUTAG


def write_tu(folder: Path, prefix: str) -> None:
    """Three graphs in the TUDataset format: a triangle, a path of 2, a square (1-based ids)."""
    folder.mkdir(parents=True, exist_ok=True)
    edges = [(1, 2), (2, 1), (2, 3), (3, 2), (1, 3), (3, 1), (4, 5), (5, 4), (6, 7), (7, 8), (8, 9), (9, 6),
             (7, 6), (8, 7), (9, 8), (6, 9), (6, 6)]
    (folder / f"{prefix}_A.txt").write_text("".join(f"{a}, {b}\n" for a, b in edges))
    (folder / f"{prefix}_graph_indicator.txt").write_text("\n".join(map(str, [1, 1, 1, 2, 2, 3, 3, 3, 3])) + "\n")
    (folder / f"{prefix}_graph_labels.txt").write_text("1\n-1\n1\n")
    (folder / f"{prefix}_node_labels.txt").write_text("\n".join(map(str, [0, 1, 2, 0, 0, 1, 1, 1, 6])) + "\n")


def test_tu_reader(tmp_path):
    write_tu(tmp_path, "MUTAG")
    graphs, values, f = read_tu_dataset(tmp_path, "MUTAG")
    assert values == [-1, 1] and f == 7 and len(graphs) == 3
    assert [int(g.y) for g in graphs] == [1, 0, 1]
    assert [g.num_nodes for g in graphs] == [3, 2, 4]
    assert [g.num_edges for g in graphs] == [6, 2, 8]  # self-loop dropped
    assert edge_set(graphs[1].edge_index) == {(0, 1), (1, 0)}
    assert graphs[2].x.argmax(1).tolist() == [1, 1, 1, 6]
    assert torch.equal(graphs[0].x, torch.eye(7)[:3])


def test_tu_reader_errors(tmp_path):
    write_tu(tmp_path, "MUTAG")
    (tmp_path / "MUTAG_A.txt").write_text("1, 40\n")
    with pytest.raises(ArchlabError, match="node id 40"):
        read_tu_dataset(tmp_path, "MUTAG")
    (tmp_path / "MUTAG_graph_labels.txt").unlink()
    with pytest.raises(ArchlabError, match="graph_labels.txt is missing"):
        read_tu_dataset(tmp_path, "MUTAG")


def test_mutag_loader_from_folder_and_zip(tmp_path):
    write_tu(tmp_path / "a" / "MUTAG" / "raw", "MUTAG")
    b = load_dataset("mutag", tmp_path / "a", download=False)
    assert isinstance(b, GraphSetBundle) and b.info.kind == "graph_set" and b.info.input_shape == (7,)
    assert sum(len(s) for s in b.splits().values()) == 3
    import zipfile

    write_tu(tmp_path / "z" / "MUTAG", "MUTAG")
    (tmp_path / "b" / "mutag").mkdir(parents=True)
    with zipfile.ZipFile(tmp_path / "b" / "mutag" / "MUTAG.zip", "w") as z:
        for p in (tmp_path / "z" / "MUTAG").iterdir():
            z.write(p, f"MUTAG/{p.name}")
    b2 = load_dataset("mutag", tmp_path / "b", download=False)
    assert b2.info.num_classes == 2


def test_mutag_missing_offline(tmp_path):
    with pytest.raises(ArchlabError) as e:
        load_dataset("mutag", tmp_path, download=False)
    msg = str(e.value)
    assert "MUTAG.zip" in msg and "https://www.chrsmrrs.com/graphkerneldatasets/MUTAG.zip" in msg
    assert "cannot be verified" in msg


# ----------------------------------------------------------------------------- synthetic set


def test_synthetic_sizes_balance_determinism():
    b = load_dataset("synthetic_graphs")
    assert [len(s) for s in (b.train, b.val, b.test)] == [480, 60, 60]
    for split in (b.train, b.val, b.test):
        assert sum(int(g.y) for g in split) * 2 == len(split)
    assert all(10 <= g.num_nodes <= 20 for g in b.train)
    for g in b.train:
        undirected = g.num_edges // 2
        assert (undirected == g.num_nodes - 1) == (int(g.y) == 0)  # trees have N-1 edges
    again = load_dataset("synthetic_graphs")
    assert all(torch.equal(a.edge_index, c.edge_index) for a, c in zip(b.test, again.test, strict=True))
    assert len(make_synthetic_graphs(20, seed=1)) == 20


class _GIN(torch.nn.Module):
    """A small GIN (Xu et al. 2019): sum aggregation, sum readout of every layer, written for this test."""

    def __init__(self, hid: int = 32, layers: int = 2):
        super().__init__()
        dims = [1] + [hid] * layers
        self.mlps = torch.nn.ModuleList(
            torch.nn.Sequential(torch.nn.Linear(a, hid), torch.nn.ReLU(), torch.nn.Linear(hid, hid), torch.nn.ReLU())
            for a in dims[:-1])
        self.head = torch.nn.Linear(sum(dims), 2)

    def forward(self, g: GraphData) -> torch.Tensor:
        def readout(h):
            return torch.zeros(g.num_graphs, h.shape[1]).index_add(0, g.batch, h)

        h, outs = g.x, [readout(g.x)]
        for mlp in self.mlps:
            h = mlp(h.index_add(0, g.edge_index[1], h[g.edge_index[0]]))  # h_i + sum_j h_j
            outs.append(readout(h))
        return self.head(torch.cat(outs, 1))


def test_synthetic_gin_learns_mlp_on_mean_cannot():
    torch.manual_seed(0)
    b = load_dataset("synthetic_graphs")
    tr, te = batch_graphs(b.train), batch_graphs(b.test)
    model = _GIN()
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(300):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(tr), tr.y).backward()
        opt.step()
    with torch.no_grad():
        acc = (model(te).argmax(1) == te.y).float().mean().item()
    assert acc > 0.9
    # Mean node features are identical for every graph: no classifier on them beats the majority.
    means = torch.stack([g.x.mean(0) for g in b.train + b.test])
    assert torch.all(means == means[0])


# ----------------------------------------------------------------------------- the contract


def test_validate_edge_out_of_range_names_numbers():
    g = GraphData(torch.zeros(4, 2), torch.tensor([[0, 1], [1, 7]]))
    with pytest.raises(GraphDataError, match=r"node 7.*4 nodes"):
        g.validate()


def test_validate_labels_nodes_mismatch_names_numbers():
    g = GraphData(torch.zeros(4, 2), torch.tensor([[0], [1]]), y=torch.zeros(6, dtype=torch.long))
    with pytest.raises(GraphDataError, match=r"6 labels for 4 nodes"):
        g.validate()
    with pytest.raises(GraphDataError, match=r"train_mask.*\(4,\)"):
        GraphData(torch.zeros(4, 2), torch.tensor([[0], [1]]), train_mask=torch.zeros(3, dtype=torch.bool)).validate()
