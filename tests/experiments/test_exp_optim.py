"""The ``optimizers`` and ``lr-schedules`` experiments: reports written, and what their figures claim holds."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from archlab.experiments import lr_schedules as lrs_exp
from archlab.experiments import optimizers as opt_exp


def _conclusions(report_path: str) -> str:
    html = open(report_path, encoding="utf-8").read()
    return re.sub(r"<[^>]+>", "", html[html.index('id="conclusions"'):])


@pytest.fixture(scope="module")
def opt_result(tmp_path_factory):
    out = tmp_path_factory.mktemp("optimizers")
    return opt_exp.optimizers(out, quick=True)


@pytest.fixture(scope="module")
def sched_result(tmp_path_factory):
    out = tmp_path_factory.mktemp("lr_schedules")
    return lrs_exp.lr_schedules(out, quick=True)


def test_registered():
    from archlab.registry import EXPERIMENTS

    assert EXPERIMENTS.get("optimizers").fn is opt_exp.optimizers
    assert EXPERIMENTS.get("lr-schedules").fn is lrs_exp.lr_schedules
    assert EXPERIMENTS.get("optimizers").family == "scratch"


# ---- optimizers ---------------------------------------------------------------------------------


def test_optimizers_writes_report_and_figures(opt_result):
    report = opt_result["report"]
    html = open(report, encoding="utf-8").read()
    assert "Conclusions" in html and html.count("<img") == 6
    folder = report.rsplit("/", 1)[0]
    for name in ("paths_rosenbrock", "paths_beale", "paths_saddle", "path_losses", "lr_sensitivity", "mlp_curves"):
        assert open(f"{folder}/{name}.png", "rb").read(8).startswith(b"\x89PNG")
    assert opt_result["seconds"] < 30  # quick mode; ~5 s on a laptop
    assert len(opt_result["rows_functions"]) == 3 * len(opt_exp.OPTIMIZERS)


def test_momentum_beats_sgd_on_rosenbrock_at_the_same_lr(opt_result):
    ros = opt_result["functions"]["rosenbrock"]
    sgd, mom = ros["sgd"]["sweep"], ros["momentum"]["sweep"]
    assert math.isfinite(sgd[1e-3]) and mom[1e-3] < sgd[1e-3] / 100
    shared = [lr for lr in sgd if math.isfinite(sgd[lr]) and math.isfinite(mom[lr])]
    assert shared and all(mom[lr] < sgd[lr] for lr in shared)
    # plain SGD's stable rates are too small to crawl along the valley in the budget
    assert ros["sgd"]["distance"] > 0.1
    best = min(ros, key=lambda n: ros[n]["final_loss"])
    assert ros[best]["distance"] < 1e-2
    assert opt_exp.LABELS[best] in _conclusions(opt_result["report"])


def test_saddle_escape(opt_result):
    sad = opt_result["functions"]["saddle"]
    # plain SGD on x^2 - y^2 multiplies y by (1 + 2 lr) per step: escape time is known in closed form
    lr, y0 = opt_exp.FUNCTIONS[2].lrs[0], opt_exp.FUNCTIONS[2].start[1]
    assert sad["sgd"]["steps_to_escape"] == math.ceil(math.log(opt_exp.ESCAPE_Y / y0) / math.log(1 + 2 * lr))
    for name in ("adam", "rmsprop", "momentum", "nesterov"):
        assert sad[name]["steps_to_escape"] is not None
        assert sad[name]["steps_to_escape"] < sad["sgd"]["steps_to_escape"] / 2, name


def test_beale_all_converge_and_adamw_is_pulled_to_the_origin(opt_result):
    beale = opt_result["functions"]["beale"]
    start_loss = opt_exp._beale(*opt_exp.FUNCTIONS[1].start)
    for name, r in beale.items():
        assert r["final_loss"] < 1e-2 < start_loss, name
    assert beale["adamw"]["distance"] > 100 * beale["adam"]["distance"]
    assert np.linalg.norm(beale["adamw"]["final_point"]) < np.linalg.norm(opt_exp.FUNCTIONS[1].minimum)


def test_every_optimizer_trains_the_mlp(opt_result):
    for name, run in opt_result["mlp"].items():
        assert len(run["train_loss"]) == 8 + 1  # quick: 8 epochs, plus the initial evaluation
        assert run["train_loss"][-1] < run["train_loss"][0] / 5, name
        assert run["test_acc"] > 0.85, name


def test_numpy_mlp_backward_matches_finite_differences():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(7, 5)), rng.integers(0, 3, size=7)
    model = opt_exp.NumpyMLP(5, 4, 3, seed=1)
    model.b1.data[:] = 0.1  # keep ReLU units away from the kink
    model.loss_and_backward(x, y)
    for p in model.parameters():
        num = np.zeros_like(p.data)
        for i in np.ndindex(p.data.shape):
            old = p.data[i]
            p.data[i] = old + 1e-6
            up = model.evaluate(x, y)[0]
            p.data[i] = old - 1e-6
            down = model.evaluate(x, y)[0]
            p.data[i] = old
            num[i] = (up - down) / 2e-6
        np.testing.assert_allclose(p.grad, num, rtol=1e-5, atol=1e-8, err_msg=p.name)


def test_unknown_names():
    with pytest.raises(ValueError, match="adam"):
        opt_exp.make_optimizer("adamax", [], 0.1)
    with pytest.raises(ValueError, match="cosine"):
        lrs_exp.make_schedule("one-cycle", 10)


# ---- lr-schedules -------------------------------------------------------------------------------


def test_lr_schedules_writes_report(sched_result):
    html = open(sched_result["report"], encoding="utf-8").read()
    assert "Conclusions" in html and html.count("<img") == 2
    assert set(sched_result["schedules"]) == set(lrs_exp.SCHEDULES)
    assert sched_result["seconds"] < 30


def test_schedule_curves_have_the_right_shape(sched_result):
    base, total = sched_result["base_lr"], sched_result["total_steps"]
    s = {n: np.array(r["lr"]) for n, r in sched_result["schedules"].items()}
    assert all(len(v) == total for v in s.values())
    np.testing.assert_allclose(s["constant"], base)
    np.testing.assert_allclose(s["constant-small"], base / 10)
    # step: flat, then x0.1 at each third
    t = np.arange(total)
    np.testing.assert_allclose(s["step"], base * 0.1 ** (t // (total // 3)), rtol=1e-12)
    assert len(np.unique(np.round(s["step"], 12))) == len(range(0, total, total // 3))
    # exponential: a constant ratio, down to ~base/100 at the end
    ratios = s["exponential"][1:] / s["exponential"][:-1]
    np.testing.assert_allclose(ratios, ratios[0], rtol=1e-9)
    assert ratios[0] < 1 and s["exponential"][-1] == pytest.approx(base * 0.01, rel=0.05)
    # cosine: from base, never rising, to ~0; half way it is at half the base rate
    cos = s["cosine"]
    assert cos[0] == base and np.all(np.diff(cos) <= 0) and cos[-1] < 1e-3 * base
    assert cos[total // 2] == pytest.approx(base / 2, rel=0.02)
    # warmup + cosine: rises from 0 to the peak at 10% of the steps, then falls to ~0
    wc = s["warmup-cosine"]
    peak = int(np.argmax(wc))
    assert wc[0] == 0.0 and peak == total // 10 and wc[peak] == pytest.approx(base)
    assert np.all(np.diff(wc[: peak + 1]) > 0) and np.all(np.diff(wc[peak:]) < 0) and wc[-1] < 1e-3 * base


def test_decaying_schedules_beat_a_too_large_constant_lr(sched_result):
    res = sched_result["schedules"]
    const = res["constant"]["final_train_loss"]
    for name in lrs_exp.DECAYING:
        assert res[name]["final_train_loss"] < const - 0.01, name
    # the step and exponential schedules are at a small rate for the last epochs: no more wobble
    for name in ("step", "exponential"):
        assert res[name]["tail_noise"] < res["constant"]["tail_noise"] / 2, name
    best = min(res, key=lambda n: res[n]["final_train_loss"])
    assert lrs_exp.LABELS[best] in _conclusions(sched_result["report"])
