"""Graph tasks end to end: node classification (full batch), graph classification, resume, bad input."""

from __future__ import annotations

import pytest
import torch

import archlab
from archlab.data.graph import GraphData, GraphDataError
from archlab.engine.checkpoint import load_checkpoint
from archlab.engine.trainer import Callback

FAST = {"system.progress": False, "system.tensorboard": False}


def test_gcn_on_karate(tmp_path):
    run = archlab.train("gcn", "karate", overrides={**FAST, "run.out_dir": str(tmp_path), "run.name": "k"})
    assert run.metrics["test/acc"] >= 0.85  # one labelled member per faction
    assert (run.path / "report.html").exists() and (run.path / "predictions.safetensors").exists()
    assert archlab.evaluate(run.path)["test/acc"] == pytest.approx(run.metrics["test/acc"])


def test_gin_on_synthetic_graphs(tmp_path):
    run = archlab.train("gin", "synthetic_graphs", overrides={**FAST, "run.out_dir": str(tmp_path), "run.name": "g",
                                                               "train.epochs": 15})
    assert run.metrics["test/acc"] >= 0.85


def test_node_task_resume_is_exact(tmp_path):
    class StopAt(Callback):
        def on_step_end(self, trainer, out):
            if trainer.global_step == 37:
                trainer.request_stop("interrupted")

    over = {**FAST, "run.out_dir": str(tmp_path), "run.report": False, "model.dropout": 0.5, "train.epochs": 60}
    archlab.train("gcn", "karate", overrides={**over, "run.name": "full"})
    part = archlab.train("gcn", "karate", overrides={**over, "run.name": "part"}, callbacks=[StopAt()])
    assert part.status == "interrupted"
    archlab.train(resume=tmp_path / "part")
    a = load_checkpoint(tmp_path / "full" / "checkpoints" / "last.safetensors")["model"]
    b = load_checkpoint(tmp_path / "part" / "checkpoints" / "last.safetensors")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_bad_graph_input_is_clear():
    x = torch.randn(4, 3)
    with pytest.raises(GraphDataError, match="refers to node 7, but the graph has 4 nodes"):
        GraphData(x, torch.tensor([[0, 1], [1, 7]])).validate()
    with pytest.raises(GraphDataError, match=r"\(2, num_edges\)"):
        GraphData(x, torch.tensor([[0, 1, 2]])).validate()


def test_feature_dimension_mismatch_is_clear(tmp_path):
    with pytest.raises(GraphDataError, match="34 features but the model was built for 12"):
        archlab.train("gcn", "karate", overrides={**FAST, "run.out_dir": str(tmp_path), "model.in_features": 12})


def test_wrong_kind_of_data_is_clear(tmp_path):
    with pytest.raises(ValueError, match="node classification"):
        archlab.train("gcn", "iris", overrides={**FAST, "run.out_dir": str(tmp_path)})


@pytest.mark.real_data
def test_gcn_on_real_cora(shared_data, tmp_path):
    run = archlab.train("gcn", "cora", overrides={**FAST, "data.root": str(shared_data), "run.out_dir": str(tmp_path),
                                                   "run.name": "c", "run.report": False})
    assert run.metrics["test/acc"] >= 0.79  # one seed; the 10-seed mean is in benchmarks/results/gnn_cora.json


@pytest.mark.real_data
@pytest.mark.parametrize("name", ["gnn-depth", "gnn-label-rate", "gnn-inspect"])
def test_graph_experiments(shared_data, monkeypatch, tmp_path, name):
    monkeypatch.setenv("ARCHLAB_DATA", str(shared_data))
    res = archlab.experiment(name, out_dir=tmp_path, quick=True)
    assert (tmp_path / name / "report.html").exists()
    if name == "gnn-depth":
        rows = {(r["layers"], r["residual"]): r["test acc"] for r in res["rows"]}
        assert rows[(2, False)] > rows[(8, False)] + 0.05  # over-smoothing
        assert rows[(8, True)] > rows[(8, False)]  # residuals help
    if name == "gnn-label-rate":
        assert all(r["gcn"] > r["graph_mlp"] for r in res["rows"])  # the graph helps at every label rate
    if name == "gnn-inspect":
        assert res["knn_acc_2d"] > 0.7
        assert sum(res["attention"]["weights"]) == pytest.approx(1.0, abs=1e-4)


def test_neighbor_sampler_subgraph_is_consistent():
    from archlab.tasks.graph import NeighborLoader

    g = torch.Generator().manual_seed(0)
    n = 200
    ei = torch.randint(0, n, (2, 2000), generator=g)
    ei = ei[:, ei[0] != ei[1]]
    graph = GraphData(torch.randn(n, 5), ei, torch.randint(0, 3, (n,)))
    loader = NeighborLoader(graph, torch.arange(40), [3, 2], batch_size=16, seed=0)
    assert len(loader) == 3
    sub, split = next(iter(loader))
    sub.validate()
    assert split == "train" and int(sub.train_mask.sum()) == 16 and bool(sub.train_mask[:16].all())
    in_deg = torch.bincount(sub.edge_index[1], minlength=sub.num_nodes)
    assert int(in_deg[:16].max()) <= 3  # layer 1 keeps at most 3 in-neighbours per seed
    assert sub.num_nodes <= 16 * (1 + 3 + 3 * 2)
    again, _ = next(iter(NeighborLoader(graph, torch.arange(40), [3, 2], batch_size=16, seed=0)))
    assert torch.equal(sub.x, again.x) and torch.equal(sub.edge_index, again.edge_index)  # (seed, epoch, batch)


def test_neighbor_sampled_training_on_karate(tmp_path):
    run = archlab.train("graphsage", "karate", overrides={**FAST, "run.out_dir": str(tmp_path), "run.name": "ns",
                                                          "data.num_neighbors": [5, 5], "train.batch_size": 2,
                                                          "train.epochs": 60, "train.lr": 0.01, "model.dropout": 0.0})
    assert run.metrics["test/acc"] >= 0.8


def test_predict_nodes_from_cli(tmp_path, capsys):
    from archlab.cli import main

    assert main(["train", "gcn", "--data", "karate", "--out", str(tmp_path), "--name", "k", "--no-progress",
                 "run.report=false", "system.tensorboard=false"]) == 0
    capsys.readouterr()
    assert main(["predict", str(tmp_path / "k"), "0", "33"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("node 0: ") and out[1].startswith("node 33: ")
    assert main(["predict", str(tmp_path / "k"), "99"]) == 2
    assert "outside the graph" in capsys.readouterr().err
