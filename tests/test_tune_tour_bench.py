"""Tuning (Optuna, resumable), the tour, experiments and the bench harness, end to end."""

from __future__ import annotations

import json

import pytest

import archlab
from archlab.config import ConfigError
from archlab.tuning import parse_space


def test_parse_space():
    space = parse_space(["space.lr=log(1e-4,1e-1)", "space.model.hidden_dims=choice([16],[32,32])",
                         "space.train.batch_size=int(16,64)", "space.optimizer=choice(sgd,adam)"])
    assert space["train.lr"] == ("log", [1e-4, 0.1])
    assert space["model.hidden_dims"] == ("choice", [[16], [32, 32]])
    assert space["train.batch_size"] == ("int", [16, 64])
    assert space["train.optimizer"] == ("choice", ["sgd", "adam"])
    with pytest.raises(ConfigError, match="log\\(lo,hi\\)"):
        parse_space(["space.lr=1e-3"])
    with pytest.raises(ConfigError, match="lo < hi"):
        parse_space(["space.lr=log(1,0.1)"])
    with pytest.raises(ConfigError, match="unknown key"):
        parse_space(["space.lrr=log(1e-4,1e-1)"])


def test_tune_runs_and_resumes(tmp_path):
    kw = dict(space=["space.lr=log(1e-3,1e-1)", "space.model.hidden_dims=choice([8],[32])"],
              overrides={"train.epochs": 4, "system.progress": False}, study_dir=tmp_path / "study")
    first = archlab.tune("mlp", "moons", trials=3, **kw)
    assert len(first["trials"]) == 3
    assert 0.5 < first["best_value"] <= 1.0
    assert (tmp_path / "study" / "trials.png").stat().st_size > 0
    assert "trial" in first["table"] and "train.lr" in first["table"]
    again = archlab.tune("mlp", "moons", trials=5, **kw)  # resumes: runs only the 2 missing trials
    assert len(again["trials"]) == 5
    assert [t["trial"] for t in again["trials"]] == [0, 1, 2, 3, 4]
    saved = json.loads((tmp_path / "study" / "results.json").read_text())
    assert saved["best_value"] == again["best_value"]


def test_tour_writes_index_linking_reports(tmp_path):
    index = archlab.tour(out_dir=tmp_path, only=["perceptron-iris", "lenet5-digits"])
    html = index.read_text()
    assert "perceptron-iris/report.html" in html and "lenet5-digits/report.html" in html
    summary = json.loads((tmp_path / "lenet5-digits" / "summary.json").read_text())
    assert summary["final"]["test/acc"] >= 0.97  # the demo's acceptance line


def test_experiment_writes_report(tmp_path):
    result = archlab.experiment("mlp-activations", out_dir=tmp_path, quick=True)
    html = (tmp_path / "mlp-activations" / "report.html").read_text()
    assert result["report"].endswith("report.html")
    assert {r["activation"] for r in result["rows"]} == {"sigmoid", "tanh", "relu"}
    assert "data:image/png;base64," in html


@pytest.mark.real_data
def test_bench_quick_smoke(shared_data, monkeypatch, tmp_path):
    monkeypatch.setenv("ARCHLAB_DATA", str(shared_data))
    out = archlab.run_benchmarks(["lenet5_mnist"], quick=True, out_dir=tmp_path)
    res = out["lenet5_mnist"]["results"]
    assert res["recipe_runs"][0]["test_acc"] > 0.95  # one epoch
    assert res["overhead"]["32-true"]["ratio"] > 0
    assert not list(tmp_path.iterdir())  # quick runs are not written
