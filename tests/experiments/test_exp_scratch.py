"""The scratch experiments run and their results show what their reports claim."""

from __future__ import annotations

import numpy as np

import archlab


def test_perceptron_experiment(tmp_path):
    res = archlab.experiment("perceptron", out_dir=tmp_path, quick=True)
    gates = res["gates"]
    assert gates["AND"]["converged_epoch"] is not None and gates["OR"]["converged_epoch"] is not None
    assert gates["XOR"]["final_accuracy"] < 1.0 and min(gates["XOR"]["mistakes_per_epoch"]) > 0  # XOR fails
    noise = {r["centre distance"]: r for r in res["noise"]}
    assert noise[10.0]["converged"] == "yes" and noise[0.0]["converged"] == "no"
    zero = [r["mistakes from zero init"] for r in res["learning_rate"]]
    assert len(set(zero)) == 1  # from zero weights the rule does not depend on lr
    times = [r["seconds per epoch"] for r in res["scaling"]]
    assert times[-1] > 3 * times[0]  # 8x the data costs several times more
    assert (tmp_path / "perceptron" / "gates.png").stat().st_size > 0


def test_activations_gradients_experiment(tmp_path):
    res = archlab.experiment("activations-gradients", out_dir=tmp_path, quick=True)
    p = res["profiles"]
    relu = p["relu / kaiming_normal"]
    sig = p["sigmoid / xavier_normal"]
    # ReLU (He init) keeps deeper gradients than sigmoid: the first layer keeps far more of it
    assert relu[0] / relu[-1] > 100 * (sig[0] / sig[-1])
    assert sig[0] / sig[-1] < 1e-2  # vanishing
    assert p["sigmoid / xavier_normal / BN"][0] / p["sigmoid / xavier_normal / BN"][-1] > sig[0] / sig[-1]
    by_depth = res["by_depth"]["sigmoid / xavier_normal"]
    assert by_depth[-1] < by_depth[0]  # deeper: smaller first-layer gradient


def test_regularization_experiment(tmp_path):
    res = archlab.experiment("regularization", out_dir=tmp_path, quick=True)
    rows = {r["regularization"]: r for r in res["rows"]}
    none = rows["none"]
    assert none["train acc"] > none["val acc"]  # overfits 300 digits
    assert min(r["gap val - train loss"] for k, r in rows.items() if k != "none") < none["gap val - train loss"]
    assert rows["early stopping (patience 10)"]["epochs"] <= 40


def test_width_depth_experiment(tmp_path):
    res = archlab.experiment("mlp-width-depth", out_dir=tmp_path, quick=True)
    w = res["width"]
    assert w[-1]["test acc"] > w[0]["test acc"]  # 64 units beat 4
    assert w[-1]["params"] > w[0]["params"]


def test_mlp_vs_sklearn_experiment(tmp_path):
    res = archlab.experiment("mlp-vs-sklearn", out_dir=tmp_path, quick=True)
    m = res["mean"]
    assert m["scratch acc"] > 0.9 and m["sklearn acc"] > 0.9
    assert abs(m["scratch acc"] - m["sklearn acc"]) < 0.05
    assert np.isfinite(m["scratch s"])
