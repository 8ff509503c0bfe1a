"""The recurrent-network experiments (``rnn-long-range``, ``rnn-gradient-flow``) in quick mode, their
building blocks, and the science they report at a small scale: the vanishing gradient of the plain
RNN, the memory of a forget gate near 1, the exploding RNN and what clipping does to it."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from _report_checks import check_quick_report

from archlab.data.series import make_adding_problem
from archlab.experiments import rnn_experiments as rx
from archlab.models.rnn.layers import make_rnn

EXPERIMENTS = {
    "rnn-long-range": ("metric_vs_length.png", "training_curves.png"),
    "rnn-gradient-flow": ("vanishing.png", "exploding.png", "clipping.png"),
}


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py: torch on one thread


def test_registered_in_family_rnn():
    from archlab.registry import EXPERIMENTS as REG

    assert set(EXPERIMENTS) <= set(REG.names(family="rnn"))
    assert REG.get("rnn-long-range").fn is rx.rnn_long_range
    assert REG.get("rnn-gradient-flow").fn is rx.rnn_gradient_flow


@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_quick_mode_writes_report(name, quick_run):
    res, out = quick_run(name)
    check_quick_report(res, out, EXPERIMENTS[name])
    assert res["cpu_seconds"] > 0


def test_long_range_quick_results(quick_run):
    res, _ = quick_run("rnn-long-range")
    lengths, cells = res["lengths"], res["cells"]
    assert cells == list(rx.CELLS) and lengths == sorted(lengths)
    assert len(res["rows"]) == len(rx.TASKS) * len(lengths) * len(cells)
    for m in cells:
        mse, acc = res["results"]["adding"][m], res["results"]["copy"][m]
        assert len(mse) == len(acc) == len(lengths)
        assert all(0 < v < 10 for v in mse)
        assert all(0 <= v <= 1 for v in acc)
        assert set(res["curves"]["adding"][m]) == {"step", "loss"}
    assert res["baselines"] == {"adding": pytest.approx(1 / 6), "copy": 1 / res["setup"]["n_symbols"]}


def test_long_range_rejects_unknown_cells(tmp_path):
    with pytest.raises(ValueError, match="cells"):
        rx.rnn_long_range(tmp_path, quick=True, cells=("lstm", "transformer"))
    with pytest.raises(ValueError, match="task"):
        rx.task_data("parity", 10, 100)
    with pytest.raises(ValueError, match="lstm_init"):
        rx.MemoryNet("lstm", 8, lstm_init="orthogonal")


def test_gradient_flow_quick_results(quick_run):
    res, _ = quick_run("rnn-gradient-flow")
    T = res["setup"]["seq_len"]
    labels = [label for label, _, _ in rx.FLOW_VARIANTS]
    for phase in ("init", "trained"):
        assert set(res["flow"][phase]) == set(labels)
        for norms in res["flow"][phase].values():
            assert len(norms) == T and all(g >= 0 and math.isfinite(g) for g in norms)
    # the science at small scale: a forget gate near 1 keeps the gradient, the plain RNN loses it
    init = res["flow"]["init"]
    assert init["RNN"][0] < 1e-3 * init["RNN"][-1]
    assert init["LSTM (chrono init)"][0] > 1e3 * init["RNN"][0]
    # spectral radius 0.5 vanishes, 3 explodes
    small, large = res["explode"]["0.5"], res["explode"]["3.0"]
    assert small[0] < 1e-3 * small[-1] and large[0] > 1e2 * large[-1]
    # without clipping SGD blows up; clipped at 1 it stays finite
    no, yes = res["clipping"]["without clipping"], res["clipping"]["clipped at 1.0"]
    assert no["first_nonfinite"] is not None and not math.isfinite(no["final_loss"])
    assert yes["first_nonfinite"] is None and math.isfinite(yes["final_loss"])
    assert all(math.isfinite(v) for v in yes["loss"])


# ---- building blocks ----------------------------------------------------------------------------


def test_chrono_init_sets_the_gate_biases():
    lstm = make_rnn("lstm", 3, 16, num_layers=2)
    w_before = lstm.weight_hh_l1.detach().clone()
    rx.chrono_init_(lstm, 50, torch.Generator().manual_seed(0))
    for layer in range(2):
        _, _, b_ih, b_hh = (p.detach() for p in lstm.layer_weights(layer))
        b_i, b_f = b_ih[:16], b_ih[16:32]
        assert bool((b_f >= 0).all()) and float(b_f.max()) <= math.log(49) + 1e-6
        torch.testing.assert_close(b_i, -b_f)
        assert float(b_hh[:32].abs().max()) == 0.0
    torch.testing.assert_close(lstm.weight_hh_l1, w_before)  # the weights are left alone
    with pytest.raises(TypeError, match="LSTM"):
        rx.chrono_init_(make_rnn("gru", 3, 4), 10)


def test_set_spectral_radius():
    rnn = make_rnn("rnn", 2, 32)
    rx.set_spectral_radius_(rnn, 1.5)
    radius = float(torch.linalg.eigvals(rnn.weight_hh_l0.detach().double()).abs().max())
    assert radius == pytest.approx(1.5, rel=1e-4)


@pytest.mark.parametrize("mode", ["rnn", "gru"])
def test_state_grad_norms_last_step_matches_the_fast_layer(mode):
    """The probe unrolls the cells itself: at t = T its gradient must be the readout's, computed from
    the fast layer's output: dL_b/dh_T = 2 (y_hat_b - y_b) w_head."""
    torch.manual_seed(0)
    net = rx.MemoryNet(mode, 16)
    x, y = make_adding_problem(8, 12, seed=3)
    norms = rx.state_grad_norms(net, x, y)
    with torch.no_grad():
        expected = (2 * (net(x) - y).abs().squeeze(1) * net.head.weight.norm()).mean()
    assert norms.shape == (12,)
    assert norms[-1] == pytest.approx(float(expected), rel=1e-4)
    assert all(p.grad is None for p in net.parameters())  # the probe works on a copy


def test_vanishing_gradient_at_length_100():
    """At torch's initialisation the plain RNN's gradient at t = 1 is a vanishing fraction of the last
    step's; the chrono LSTM's forget gates near 1 keep orders of magnitude more of it."""
    x, y = make_adding_problem(16, 100, seed=1)
    torch.manual_seed(0)
    rnn = rx.state_grad_norms(rx.MemoryNet("rnn", 32), x, y)
    torch.manual_seed(0)
    lstm = rx.state_grad_norms(rx.MemoryNet("lstm", 32, lstm_init="chrono", t_max=100), x, y)
    assert rnn[0] < 1e-12 * rnn[-1]
    assert lstm[0] > 1e-4 * lstm[-1]
    assert lstm[0] > 1e6 * rnn[0]
    assert np.all(np.isfinite(rnn)) and np.all(np.isfinite(lstm))


def test_gru_learns_the_adding_problem_where_the_rnn_does_not():
    kw = {"hidden_size": 32, "steps": 100, "batch_size": 32, "lr": 0.02, "n_samples": 1000, "seed": 0}
    gru = rx.train_memory_task("adding", "gru", 10, **kw)
    rnn = rx.train_memory_task("adding", "rnn", 10, **kw)
    assert gru["metric"] < 0.1 * rx.ADDING_BASELINE  # solved
    assert rnn["metric"] > 0.5 * rx.ADDING_BASELINE  # still near the baseline after the same budget
    assert gru["baseline"] == pytest.approx(1 / 6)


def test_copy_task_metric_and_determinism():
    kw = {"hidden_size": 16, "steps": 6, "batch_size": 8, "n_samples": 100, "copy_len": 2, "n_symbols": 4}
    a = rx.train_memory_task("copy", "lstm", 5, **kw)
    b = rx.train_memory_task("copy", "lstm", 5, **kw)
    assert a["history"] == b["history"] and a["metric"] == b["metric"]  # seeded: identical runs
    assert 0 <= a["metric"] <= 1 and a["baseline"] == 0.25
    logits = a["model"](rx.task_data("copy", 5, 100, copy_len=2, n_symbols=4)["x_test"])
    # (B, T + 2K, V): 4 special tokens, blank, delimiter and the 4 symbols
    assert logits.shape == (10, 5 + 2 * 2, 4 + 2 + 4)
