"""Graph datasets: Planetoid citation graphs, Zachary's karate club, MUTAG and a synthetic set.

Node classification (:class:`~archlab.data.graph.NodeBundle`, one graph with masks):

* ``cora``, ``citeseer``, ``pubmed``: the Planetoid citation graphs (Yang, Cohen & Salakhutdinov,
  "Revisiting Semi-Supervised Learning with Graph Embeddings", ICML 2016), read from the
  ORIGINAL files ``ind.<name>.{x,y,tx,ty,allx,ally,graph,test.index}`` that Kipf & Welling's GCN
  used. The result equals ``torch_geometric.datasets.Planetoid`` on the same files (tested):

  - ``allx``/``ally`` are the labelled+unlabelled training nodes, ``tx``/``ty`` the test nodes,
    whose ids are the (unsorted) lines of ``test.index``; the test rows are placed at their ids.
  - CiteSeer has 15 isolated test nodes that are missing from ``tx``: their rows are zero
    features and an all-zero one-hot label, which ``argmax`` turns into class 0 (as PyG does;
    they are in no mask).
  - The public split: train = the first 20 nodes per class (ids ``0..len(y)-1``), val = the
    next 500 ids, test = the 1000 ids of ``test.index``.
  - Edges: the adjacency lists made undirected, de-duplicated, self-loops removed (the files
    hold some duplicates and self-loops; Cora has 10,556 directed edges = 5,278 undirected).
    Making them undirected is Kipf's preprocessing; PyG only de-duplicates, which gives the same
    edges because the published adjacency lists are symmetric.
  - ``normalize_features=True`` (default) divides each row by its sum (Kipf's GCN
    preprocessing; rows summing to 0 stay 0). PyG's ``NormalizeFeatures`` instead clamps the row
    sum at 1, which only differs for rows summing to less than 1 (PubMed's TF-IDF). The raw
    features are kept in ``bundle.extra["x_raw"]``.
  - ``split="random"``: ``num_train_per_class`` random nodes per class, then ``num_val`` and
    ``num_test`` from the rest, drawn from ``split_seed`` (PyG's ``Planetoid(split="random")``
    with ``torch.manual_seed(split_seed)`` draws the same masks).

  All the files are Python 2 pickles: they are read by :class:`PlanetoidUnpickler`, which builds
  only numpy arrays, scipy sparse csr/csc/lil matrices, ``collections.defaultdict`` and plain
  containers; anything else in a file is refused. Only Cora's MD5s are known here (taken from the
  canonical files); CiteSeer's and PubMed's files are used unverified, and messages say so.

* ``karate``: Zachary's karate club (1977), 34 members, 78 friendships, embedded. Labels are the
  two factions after the split (0 = Mr. Hi, 1 = Officer, networkx's ``club`` attribute), not
  PyG's 4 modularity communities. Features are the identity (one-hot node id, as in Kipf's
  demo); train = nodes 0 (Mr. Hi) and 33 (the officer), test = the other 32, no validation set.

Graph classification (:class:`~archlab.data.graph.GraphSetBundle`, a fixed seeded stratified
80/10/10 split):

* ``mutag``: 188 nitro compounds, mutagenic or not (Debnath et al. 1991), read from the TUDataset
  text files (``MUTAG_A.txt``, ``_graph_indicator``, ``_graph_labels``, ``_node_labels``) by
  :func:`read_tu_dataset`. Node features = one-hot atom type; labels -1/1 mapped to 0/1.
* ``synthetic_graphs``: 600 seeded random graphs of 10-20 nodes, trees (class 0) vs trees with
  1-3 extra edges, i.e. graphs with a cycle (class 1). Every node's feature is the constant 1, so
  the label lies in the structure alone: the mean of the node features is identical for every
  graph (an MLP on it is at chance), while a GIN with sum aggregation counts edges against nodes
  and learns it (> 90%; tested).
"""

from __future__ import annotations

import collections
import pickle
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from archlab.data.base import DatasetInfo
from archlab.data.download import RemoteFile, fetch, register_files
from archlab.data.graph import GraphData, GraphSetBundle, NodeBundle
from archlab.data.vision import RestrictedUnpickler, restricted_loads
from archlab.registry import register_dataset
from archlab.utils import ArchlabError, file_md5

__all__ = [
    "PlanetoidUnpickler",
    "read_planetoid",
    "planetoid_files",
    "random_planetoid_split",
    "normalize_rows",
    "undirected_edge_index",
    "read_tu_dataset",
    "make_synthetic_graphs",
    "KARATE_EDGES",
    "KARATE_FACTIONS",
]

# --------------------------------------------------------------------------------------------
# Shared helpers
# --------------------------------------------------------------------------------------------


def undirected_edge_index(row: torch.Tensor, col: torch.Tensor, num_nodes: int) -> torch.Tensor:
    """Both directions of every edge, de-duplicated, self-loops removed, sorted by (source, target).

    Returns:
        (2, E) int64.
    """
    row, col = torch.cat([row, col]).long(), torch.cat([col, row]).long()
    keep = row != col
    key = torch.unique(row[keep] * num_nodes + col[keep])  # sorted, unique
    return torch.stack([key // num_nodes, key % num_nodes])


def normalize_rows(x: torch.Tensor) -> torch.Tensor:
    """Each row divided by its sum; rows that sum to 0 stay 0 (Kipf & Welling's preprocessing)."""
    s = x.sum(dim=1, keepdim=True)
    return torch.where(s != 0, x / torch.where(s != 0, s, torch.ones_like(s)), torch.zeros_like(x))


def _index_mask(index: torch.Tensor, n: int) -> torch.Tensor:
    mask = torch.zeros(n, dtype=torch.bool)
    mask[index] = True
    return mask


# --------------------------------------------------------------------------------------------
# Planetoid
# --------------------------------------------------------------------------------------------


def _sparse(name: str):
    def resolve() -> Any:
        import scipy.sparse

        return getattr(scipy.sparse, name)

    return resolve


_SPARSE_GLOBALS = {
    (module, cls): _sparse(cls)
    for cls, mods in {
        "csr_matrix": ("scipy.sparse.csr", "scipy.sparse._csr"),
        "csc_matrix": ("scipy.sparse.csc", "scipy.sparse._csc"),
        "lil_matrix": ("scipy.sparse.lil", "scipy.sparse._lil"),
    }.items()
    for module in (*mods, "scipy.sparse")
}


class PlanetoidUnpickler(RestrictedUnpickler):
    """:class:`~archlab.data.vision.RestrictedUnpickler` plus what Planetoid's pickles hold.

    Adds scipy's csr/csc/lil matrix classes (rebuilt from their attribute dict, no code run) and
    ``collections.defaultdict`` (the adjacency lists); numpy arrays and plain containers as
    before. Every other global (``os.system``, ``builtins.eval``...) raises
    :class:`pickle.UnpicklingError`.
    """

    extra_globals = {**_SPARSE_GLOBALS, ("collections", "defaultdict"): lambda: collections.defaultdict}


_PLANETOID_EXTS = ("x", "y", "tx", "ty", "allx", "ally", "graph", "test.index")
_PLANETOID_URL = "https://github.com/kimiyoung/planetoid/raw/master/data/ind.{name}.{ext}"
_PLANETOID_HOME = "https://github.com/kimiyoung/planetoid"
# MD5s of the canonical files; only Cora's could be computed (from a copy of the canonical files).
_PLANETOID_MD5 = {
    "cora": {
        "allx": "c9083193a57057dd1238321e140194d7",
        "ally": "125d70817fe1fdbfdcad991995e81579",
        "graph": "b37c419cec179f45834467630c278e4c",
        "test.index": "9b822cae1d01f41e8bf8782e20367c0e",
        "tx": "b29c36916768e1d2f55391c1aa9317ac",
        "ty": "48bf43f54fa5b86089a4bd0299795f10",
        "x": "190831eee19d8f330d89d94b40a65c5a",
        "y": "78344284e3ff7fd24eb9c307d51351eb",
    },
}
_PLANETOID_TITLE = {"cora": "Cora", "citeseer": "CiteSeer", "pubmed": "PubMed"}
# Label order of the Planetoid files, identified by the class sizes of the original Cora
# (Theory 351, Reinforcement_Learning 217, Genetic_Algorithms 418, ...; all distinct).
_PLANETOID_CLASSES = {
    "cora": ["Theory", "Reinforcement_Learning", "Genetic_Algorithms", "Neural_Networks",
             "Probabilistic_Methods", "Case_Based", "Rule_Learning"],
}


def planetoid_files(name: str) -> tuple[RemoteFile, ...]:
    """The 8 :class:`RemoteFile` of Planetoid dataset ``name`` (``md5=None`` where unknown)."""
    md5 = _PLANETOID_MD5.get(name, {})
    return tuple(
        RemoteFile(f"ind.{name}.{ext}", (_PLANETOID_URL.format(name=name, ext=ext),), md5.get(ext),
                   homepage=_PLANETOID_HOME)
        for ext in _PLANETOID_EXTS
    )


def _planetoid_damaged(path: Path, md5: str | None, problem: str) -> ArchlabError:
    check = (f"  expected md5: {md5} (this file's md5 is {file_md5(path)})" if md5 else
             "  expected md5: none known for this file, so it cannot be verified against the original")
    return ArchlabError(
        f"{path} is damaged or not the expected Planetoid file: {problem}.\n{check}\n"
        f"To fix it: delete it and load the dataset again to download a fresh copy, or replace it "
        f"with a copy of {_PLANETOID_URL.format(name=path.name.split('.')[1], ext=path.name.split('.', 2)[2])}."
    )


def _read_planetoid_file(path: Path, md5: str | None) -> Any:
    """One ``ind.*`` file: a float64 array (x/y parts), a dict of lists (graph) or int64 ids."""
    try:
        if path.name.endswith(".test.index"):
            try:
                return np.array([int(line) for line in path.read_text().split()], dtype=np.int64)
            except (ValueError, UnicodeDecodeError) as e:
                raise ValueError(f"not a list of integers ({e})") from None
        obj = restricted_loads(path.read_bytes(), encoding="latin1", unpickler=PlanetoidUnpickler)
        if path.name.endswith(".graph"):
            if not isinstance(obj, dict) or not all(isinstance(v, list) for v in obj.values()):
                raise ValueError(f"expected a dict of adjacency lists, got {type(obj).__name__}")
            return obj
        if hasattr(obj, "tocsr"):
            m = obj.tocsr()
            m.check_format(full_check=True)  # bad indices would make toarray() read out of bounds
            obj = m.toarray()
        if not isinstance(obj, np.ndarray) or obj.ndim != 2 or obj.dtype == object:
            raise ValueError(f"expected a 2-d numeric matrix, got {type(obj).__name__}")
        return obj.astype(np.float64)
    except pickle.UnpicklingError as e:
        if str(e).startswith("refusing"):
            raise ArchlabError(f"{path}: {e}. The file is not a genuine Planetoid file; delete it.") from None
        raise _planetoid_damaged(path, md5, f"cannot be unpickled ({e})") from None
    except (EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError, OverflowError,
            MemoryError, UnicodeDecodeError) as e:
        raise _planetoid_damaged(path, md5, f"{type(e).__name__}: {e}") from None


def read_planetoid(folder: str | Path | None, name: str, *, paths: dict[str, Path] | None = None) -> dict:
    """Read the 8 Planetoid files of ``name`` (as PyG's ``read_planetoid_data``).

    Args:
        folder: the folder holding ``ind.<name>.*`` (ignored where ``paths`` names a file).
        name: ``cora``, ``citeseer`` or ``pubmed``.
        paths: extension (``"x"``, ``"test.index"``...) -> path, overriding ``folder``.

    Returns:
        ``{"x": (N, F) float32 raw, "y": (N,) int64, "edge_index": (2, E) int64,
        "train_mask", "val_mask", "test_mask": (N,) bool}`` for the public split.
    """
    md5 = _PLANETOID_MD5.get(name, {})
    paths = paths or {}
    files = {ext: Path(paths[ext]) if ext in paths else Path(folder) / f"ind.{name}.{ext}" for ext in _PLANETOID_EXTS}
    for ext, p in files.items():
        if not p.is_file():
            raise ArchlabError(f"{p} is missing; Planetoid {name} needs "
                               f"{', '.join(f'ind.{name}.{e}' for e in _PLANETOID_EXTS)} in one folder "
                               f"(from {_PLANETOID_URL.format(name=name, ext=ext)})")
    d = {ext: _read_planetoid_file(p, md5.get(ext)) for ext, p in files.items()}
    x, tx, allx, y, ty, ally = (d[k] for k in ("x", "tx", "allx", "y", "ty", "ally"))
    test_index = d["test.index"]

    def check(cond: bool, ext: str, problem: str) -> None:
        if not cond:
            raise _planetoid_damaged(files[ext], md5.get(ext), problem)

    check(len(allx) == len(ally), "ally", f"{len(ally)} label rows but allx has {len(allx)}")
    check(len(x) == len(y) <= len(ally), "y", f"{len(y)} label rows, x has {len(x)}, ally {len(ally)}")
    check(tx.shape[1] == allx.shape[1] == x.shape[1], "tx", f"{tx.shape[1]} feature columns, allx {allx.shape[1]}")
    check(ty.shape[1] == ally.shape[1] == y.shape[1], "ty", f"{ty.shape[1]} classes, ally {ally.shape[1]}")
    check(len(tx) == len(ty) == len(test_index), "test.index",
          f"{len(test_index)} test ids, but tx has {len(tx)} rows and ty {len(ty)}")
    check(len(test_index) > 0 and test_index.min() >= len(allx), "test.index",
          f"test ids must follow the {len(allx)} allx nodes")
    sorted_test = np.sort(test_index)
    if name == "citeseer":
        # Isolated test nodes are missing from tx/ty: pad the id range with zero rows.
        lo, span = int(sorted_test[0]), int(sorted_test[-1] - sorted_test[0]) + 1
        tx_ext, ty_ext = np.zeros((span, tx.shape[1])), np.zeros((span, ty.shape[1]))
        tx_ext[sorted_test - lo], ty_ext[sorted_test - lo] = tx, ty
        tx, ty = tx_ext, ty_ext
    feats, onehot = np.concatenate([allx, tx]), np.concatenate([ally, ty])
    n = len(feats)
    check(int(test_index.max()) < n, "test.index", f"test id {int(test_index.max())} but only {n} nodes")
    # Row i of tx belongs to the i-th smallest test id.
    feats[test_index] = feats[sorted_test]
    onehot[test_index] = onehot[sorted_test]
    labels = onehot.argmax(axis=1)

    graph = d["graph"]
    try:
        rows = np.fromiter((int(k) for k, v in graph.items() for _ in v), dtype=np.int64)
        cols = np.fromiter((int(c) for v in graph.values() for c in v), dtype=np.int64)
    except (TypeError, ValueError) as e:
        raise _planetoid_damaged(files["graph"], md5.get("graph"), f"non-integer node id ({e})") from None
    bad = np.concatenate([rows, cols])
    bad = bad[(bad < 0) | (bad >= n)]
    check(bad.size == 0, "graph", f"node id {bad[0] if bad.size else 0} out of range 0..{n - 1}")
    edge_index = undirected_edge_index(torch.from_numpy(rows), torch.from_numpy(cols), n)
    yt = torch.from_numpy(labels.astype(np.int64))
    return {
        "x": torch.from_numpy(feats.astype(np.float32)),
        "y": yt,
        "edge_index": edge_index,
        "train_mask": _index_mask(torch.arange(len(y)), n),
        "val_mask": _index_mask(torch.arange(len(y), min(len(y) + 500, n)), n),
        "test_mask": _index_mask(torch.from_numpy(test_index), n),
        "num_classes": int(onehot.shape[1]),
    }


def random_planetoid_split(
    y: torch.Tensor, num_classes: int, num_train_per_class: int = 20, num_val: int = 500, num_test: int = 1000,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """PyG's ``Planetoid(split="random")``: per class ``num_train_per_class`` random nodes, then
    ``num_val`` and ``num_test`` nodes from a permutation of the rest. Drawn from ``seed`` alone.

    Returns:
        (train_mask, val_mask, test_mask), each (N,) bool.
    """
    g = torch.Generator().manual_seed(seed)
    n = len(y)
    train = torch.zeros(n, dtype=torch.bool)
    for c in range(num_classes):
        idx = (y == c).nonzero().view(-1)
        train[idx[torch.randperm(idx.numel(), generator=g)[:num_train_per_class]]] = True
    rest = (~train).nonzero().view(-1)
    rest = rest[torch.randperm(rest.numel(), generator=g)]
    if num_val + num_test > rest.numel():
        raise ArchlabError(f"num_val + num_test = {num_val + num_test} but only {rest.numel()} nodes remain "
                           f"after {int(train.sum())} training nodes; ask for fewer")
    return train, _index_mask(rest[:num_val], n), _index_mask(rest[num_val:num_val + num_test], n)


def _planetoid(name: str, root: Path, download: bool, split: str, num_train_per_class: int, num_val: int,
               num_test: int, split_seed: int, normalize_features: bool) -> NodeBundle:
    if split not in ("public", "random"):
        raise ArchlabError(f"split must be 'public' or 'random', got {split!r}")
    spec = _PLANETOID_SPECS[name]
    paths = {}
    for f, ext in zip(spec.files, _PLANETOID_EXTS, strict=True):
        paths[ext] = fetch(f, root, download, dataset=spec.dataset, extra_dirs=spec.extra_dirs)
    d = read_planetoid(None, name, paths=paths)
    masks = (d["train_mask"], d["val_mask"], d["test_mask"])
    if split == "random":
        masks = random_planetoid_split(d["y"], d["num_classes"], num_train_per_class, num_val, num_test, split_seed)
    x = normalize_rows(d["x"]) if normalize_features else d["x"]
    k = d["num_classes"]
    graph = GraphData(x, d["edge_index"], d["y"], *masks).validate(name)
    info = DatasetInfo(name=name, kind="graph_nodes", input_shape=(x.shape[1],), num_classes=k,
                       class_names=_PLANETOID_CLASSES.get(name, [str(i) for i in range(k)]),
                       source=str(paths["x"].parent))
    return NodeBundle(info, graph, extra={"x_raw": d["x"]})


_PLANETOID_SPECS = {
    name: register_files(name, planetoid_files(name), extra_dirs=("planetoid", f"{title}/raw"))
    for name, title in _PLANETOID_TITLE.items()
}


def _planetoid_loader(name: str, size: str, description: str):
    @register_dataset(name, family="graph", download=True, size=size, description=description)
    def load(root: Path, download: bool = True, *, split: str = "public", num_train_per_class: int = 20,
             num_val: int = 500, num_test: int = 1000, split_seed: int = 0,
             normalize_features: bool = True) -> NodeBundle:
        return _planetoid(name, root, download, split, num_train_per_class, num_val, num_test, split_seed,
                          normalize_features)

    load.__name__ = name
    load.__doc__ = (f"Planetoid {_PLANETOID_TITLE[name]}: {description}. See the module docstring.\n\n"
                    f"Options: split ('public' | 'random'), num_train_per_class, num_val, num_test, split_seed "
                    f"(random split), normalize_features (row-normalise x; raw x in extra['x_raw']).")
    return load


cora = _planetoid_loader("cora", "2708 nodes", "citation graph, 2708 papers, 1433 word features, 7 classes")
citeseer = _planetoid_loader("citeseer", "3327 nodes", "citation graph, 3327 papers, 3703 word features, 6 classes")
pubmed = _planetoid_loader("pubmed", "19717 nodes", "citation graph, 19717 papers, 500 TF-IDF features, 3 classes")


# --------------------------------------------------------------------------------------------
# Zachary's karate club
# --------------------------------------------------------------------------------------------

# The 78 friendships (Zachary 1977), as networkx's karate_club_graph, 0-based.
KARATE_EDGES = (
    (0, 1), (0, 2), (0, 3), (0, 4), (0, 5), (0, 6), (0, 7), (0, 8), (0, 10), (0, 11), (0, 12), (0, 13),
    (0, 17), (0, 19), (0, 21), (0, 31), (1, 2), (1, 3), (1, 7), (1, 13), (1, 17), (1, 19), (1, 21), (1, 30),
    (2, 3), (2, 7), (2, 8), (2, 9), (2, 13), (2, 27), (2, 28), (2, 32), (3, 7), (3, 12), (3, 13), (4, 6),
    (4, 10), (5, 6), (5, 10), (5, 16), (6, 16), (8, 30), (8, 32), (8, 33), (9, 33), (13, 33), (14, 32),
    (14, 33), (15, 32), (15, 33), (18, 32), (18, 33), (19, 33), (20, 32), (20, 33), (22, 32), (22, 33),
    (23, 25), (23, 27), (23, 29), (23, 32), (23, 33), (24, 25), (24, 27), (24, 31), (25, 31), (26, 29),
    (26, 33), (27, 33), (28, 31), (28, 33), (29, 32), (29, 33), (30, 32), (30, 33), (31, 32), (31, 33),
    (32, 33),
)
# The faction each member joined after the split: 0 = Mr. Hi (node 0), 1 = the Officer (node 33).
KARATE_FACTIONS = (0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 1, 0, 0, 1, 0, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1,
                   1, 1, 1)


@register_dataset("karate", family="graph", size="34 nodes",
                  description="Zachary's karate club: 34 members, 78 friendships, 2 factions (embedded)")
def karate(root: Path | None = None, download: bool = True) -> NodeBundle:
    """Zachary's karate club (1977): who joined Mr. Hi's club (0) or stayed with the Officer (1).

    x = identity (34, 34) (one-hot node id); train = nodes 0 and 33, test = the other 32; no val.
    """
    e = torch.tensor(KARATE_EDGES).t()
    n = len(KARATE_FACTIONS)
    train = _index_mask(torch.tensor([0, n - 1]), n)
    graph = GraphData(torch.eye(n), undirected_edge_index(e[0], e[1], n), torch.tensor(KARATE_FACTIONS),
                      train_mask=train, test_mask=~train).validate("karate")
    info = DatasetInfo(name="karate", kind="graph_nodes", input_shape=(n,), num_classes=2,
                       class_names=["Mr. Hi", "Officer"], source="embedded (Zachary 1977)")
    return NodeBundle(info, graph)


# --------------------------------------------------------------------------------------------
# Graph classification: TUDataset files and a synthetic set
# --------------------------------------------------------------------------------------------


def _read_ints(path: Path, cols: int | None = None) -> np.ndarray:
    try:
        rows = [[int(v) for v in line.replace(",", " ").split()] for line in path.read_text().splitlines()
                if line.strip()]
        arr = np.array(rows, dtype=np.int64)
    except (ValueError, UnicodeDecodeError) as e:
        raise ArchlabError(f"{path} is damaged: expected lines of integers ({e}); delete it and get a fresh "
                           f"copy of the dataset") from None
    want = cols or 1
    if arr.ndim != 2 or arr.shape[1] != want:
        raise ArchlabError(f"{path} is damaged: expected {want} integer(s) per line, got shape {arr.shape}")
    return arr if cols else arr[:, 0]


def read_tu_dataset(folder: str | Path, prefix: str) -> tuple[list[GraphData], list[int], int]:
    """Read a TUDataset (Morris et al. 2020) from ``<prefix>_A.txt`` and friends in ``folder``.

    Node ids in the files are 1-based; ``_A.txt`` lists directed edges ``i, j``. Edges are made
    undirected, de-duplicated, self-loops dropped. Node features are the one-hot
    ``_node_labels.txt`` (a constant 1 where that file is absent); edge labels are ignored.

    Returns:
        (graphs, label values, number of node-label columns): each graph's ``y`` is its label
        mapped to ``0..K-1`` in sorted order of the original values (MUTAG's -1/1 -> 0/1).
    """
    folder = Path(folder)
    need = [f"{prefix}_A.txt", f"{prefix}_graph_indicator.txt", f"{prefix}_graph_labels.txt"]
    for f in need:
        if not (folder / f).is_file():
            raise ArchlabError(f"{folder / f} is missing: a TUDataset folder holds {', '.join(need)} "
                               f"(and optionally {prefix}_node_labels.txt)")
    edges = _read_ints(folder / need[0], 2) - 1
    indicator = _read_ints(folder / need[1]) - 1
    graph_values = _read_ints(folder / need[2])
    n, g = len(indicator), len(graph_values)
    if indicator.min() < 0 or indicator.max() != g - 1 or np.any(np.diff(indicator) < 0):
        raise ArchlabError(f"{folder / need[1]}: graph ids must be sorted 1..{g} ({g} graph labels)")
    if edges.size and (edges.min() < 0 or edges.max() >= n):
        raise ArchlabError(f"{folder / need[0]}: node id {int(edges.max()) + 1} outside 1..{n}")
    if edges.size and np.any(indicator[edges[:, 0]] != indicator[edges[:, 1]]):
        raise ArchlabError(f"{folder / need[0]}: an edge joins nodes of two different graphs")
    node_file = folder / f"{prefix}_node_labels.txt"
    if node_file.is_file():
        nl = _read_ints(node_file)
        if len(nl) != n:
            raise ArchlabError(f"{node_file}: {len(nl)} node labels for {n} nodes")
        nl = nl - nl.min()
        x = np.eye(int(nl.max()) + 1, dtype=np.float32)[nl]
    else:
        x = np.ones((n, 1), dtype=np.float32)
    values = sorted(set(graph_values.tolist()))
    y = np.searchsorted(values, graph_values)
    starts = np.searchsorted(indicator, np.arange(g + 1))
    xt = torch.from_numpy(x)
    edge_graph = indicator[edges[:, 0]] if edges.size else np.zeros(0, dtype=np.int64)
    graphs = []
    for i in range(g):
        lo, hi = int(starts[i]), int(starts[i + 1])
        e = torch.from_numpy(edges[edge_graph == i] - lo)
        ei = undirected_edge_index(e[:, 0], e[:, 1], hi - lo) if len(e) else torch.zeros(2, 0, dtype=torch.long)
        graphs.append(GraphData(xt[lo:hi], ei, torch.tensor(int(y[i]))).validate(f"{prefix} graph {i}"))
    return graphs, values, x.shape[1]


def _split_graphs(graphs: list[GraphData], seed: int) -> tuple[list[GraphData], list[GraphData], list[GraphData]]:
    """A fixed, seeded, stratified 80/10/10 split."""
    rng = np.random.default_rng(seed)
    y = np.array([int(g.y) for g in graphs])
    parts: tuple[list[int], list[int], list[int]] = ([], [], [])
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        n_val = n_test = round(0.1 * len(idx))
        parts[2].extend(idx[:n_test])
        parts[1].extend(idx[n_test:n_test + n_val])
        parts[0].extend(idx[n_test + n_val:])
    return tuple([graphs[i] for i in rng.permutation(p)] for p in parts)  # type: ignore[return-value]


_MUTAG_SPEC = register_files("mutag", (
    RemoteFile("MUTAG.zip", ("https://www.chrsmrrs.com/graphkerneldatasets/MUTAG.zip",), None, unpacked="MUTAG",
               homepage="https://chrsmrrs.github.io/datasets/"),
), extra_dirs=("MUTAG", "MUTAG/raw", "TUDataset/MUTAG/raw"))


def _tu_folder(root: Path, download: bool, prefix: str, spec) -> Path:
    dirs = [root / spec.dataset] + [root / d for d in spec.extra_dirs] + [root]
    for d in dirs:
        for cand in (d, d / prefix):
            if (cand / f"{prefix}_A.txt").is_file():
                return cand
    path = fetch(spec.files[0], root, download, dataset=spec.dataset, extra_dirs=spec.extra_dirs)
    if path.is_dir():
        raise ArchlabError(f"{path} holds no {prefix}_A.txt; delete it and load the dataset again")
    target = path.parent
    try:
        with zipfile.ZipFile(path) as z:
            for m in z.namelist():
                if m.startswith("/") or ".." in Path(m).parts:
                    raise ArchlabError(f"{path}: refusing archive member {m!r} outside the folder")
            z.extractall(target)
    except zipfile.BadZipFile as e:
        raise ArchlabError(f"{path} is damaged ({e}); it has no known md5, so delete it and download it again "
                           f"from {spec.files[0].urls[0]}") from None
    if not (target / prefix / f"{prefix}_A.txt").is_file():
        raise ArchlabError(f"{path} did not contain {prefix}/{prefix}_A.txt")
    return target / prefix


@register_dataset("mutag", family="graph", download=True, size="188 graphs",
                  description="MUTAG: 188 nitro compounds, mutagenic or not (TUDataset)")
def mutag(root: Path, download: bool = True, *, data_seed: int = 0) -> GraphSetBundle:
    """MUTAG (Debnath et al. 1991) from the TUDataset files; x = one-hot atom type (7), y in {0, 1}.

    The archive has no published checksum: a downloaded ``MUTAG.zip`` is NOT verified.
    """
    folder = _tu_folder(Path(root), download, "MUTAG", _MUTAG_SPEC)
    graphs, values, f = read_tu_dataset(folder, "MUTAG")
    train, val, test = _split_graphs(graphs, data_seed)
    info = DatasetInfo(name="mutag", kind="graph_set", input_shape=(f,), num_classes=len(values),
                       class_names=[str(v) for v in values], source=str(folder))
    return GraphSetBundle(info, train, val, test)


def _random_tree(n: int, rng: np.random.Generator) -> list[tuple[int, int]]:
    """A random labelled tree: node i attaches to a random earlier node (then ids are shuffled)."""
    perm = rng.permutation(n)
    return [(int(perm[i]), int(perm[rng.integers(i)])) for i in range(1, n)]


def make_synthetic_graphs(num_graphs: int = 600, min_nodes: int = 10, max_nodes: int = 20,
                          seed: int = 0) -> list[GraphData]:
    """Trees (y=0) and trees with 1-3 extra edges, i.e. with a cycle (y=1), alternating; x = ones (N, 1)."""
    if min_nodes < 4 or max_nodes < min_nodes:
        raise ArchlabError(f"need 4 <= min_nodes <= max_nodes, got {min_nodes}, {max_nodes}")
    rng = np.random.default_rng(seed)
    graphs = []
    for i in range(num_graphs):
        n = int(rng.integers(min_nodes, max_nodes + 1))
        edges = set(tuple(sorted(e)) for e in _random_tree(n, rng))
        label = i % 2
        if label:
            want = len(edges) + int(rng.integers(1, 4))
            while len(edges) < want:
                a, b = sorted(int(v) for v in rng.choice(n, 2, replace=False))
                edges.add((a, b))
        e = torch.tensor(sorted(edges)).t()
        graphs.append(GraphData(torch.ones(n, 1), undirected_edge_index(e[0], e[1], n), torch.tensor(label)))
    return graphs


@register_dataset("synthetic_graphs", family="graph", size="600 graphs",
                  description="generated: trees vs graphs with a cycle, constant features (GIN > 90%, MLP chance)")
def synthetic_graphs(root: Path | None = None, download: bool = True, *, num_graphs: int = 600,
                     min_nodes: int = 10, max_nodes: int = 20, data_seed: int = 0) -> GraphSetBundle:
    """Seeded trees (0) vs cyclic graphs (1), half each, stratified 80/10/10; see the module docstring."""
    graphs = make_synthetic_graphs(num_graphs, min_nodes, max_nodes, data_seed)
    train, val, test = _split_graphs(graphs, data_seed)
    info = DatasetInfo(name="synthetic_graphs", kind="graph_set", input_shape=(1,), num_classes=2,
                       class_names=["tree", "cyclic"], source="generated")
    return GraphSetBundle(info, train, val, test)

