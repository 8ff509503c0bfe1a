"""archlab.scratch.optim against torch.optim, lr_scheduler and nn.utils on the same numbers.

Every optimizer and hyperparameter setting runs 20 steps on one fixed sequence of float64
gradients in both libraries; the parameters must agree to 1e-12 after every step.
"""

from __future__ import annotations

import ast
import json
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from archlab.scratch import optim as so

SHAPES = [(3, 4), (5,), (2, 3, 2)]
STEPS = 20
TOL = 1e-12


def _initial(seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.normal(size=s) for s in SHAPES]


def _grad_sequence(seed: int = 1, steps: int = STEPS) -> list[list[np.ndarray | None]]:
    """Random gradients; the last parameter has none on every third step (it must be skipped)."""
    rng = np.random.default_rng(seed)
    seq = []
    for t in range(steps):
        grads: list[np.ndarray | None] = [rng.normal(scale=1.0 + t % 3, size=s) for s in SHAPES]
        if t % 3 == 2:
            grads[-1] = None
        seq.append(grads)
    return seq


def _pair(init: list[np.ndarray]) -> tuple[list[so.ArrayParam], list[torch.Tensor]]:
    mine = [so.ArrayParam(a.copy()) for a in init]
    theirs = [torch.tensor(a.copy(), dtype=torch.float64, requires_grad=True) for a in init]
    return mine, theirs


def _set_grads(mine, theirs, grads) -> None:
    for p, q, g in zip(mine, theirs, grads):
        p.grad = None if g is None else g.copy()
        q.grad = None if g is None else torch.from_numpy(g.copy())


def _max_diff(mine, theirs) -> float:
    return max(float(np.max(np.abs(p.data - q.detach().numpy()))) for p, q in zip(mine, theirs))


CASES = [
    ("SGD", {"lr": 0.1}),
    ("SGD", {"lr": 0.05, "momentum": 0.9}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "dampening": 0.5}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True}),
    ("SGD", {"lr": 0.05, "momentum": 0.8, "nesterov": True, "weight_decay": 0.01}),
    ("SGD", {"lr": 0.1, "weight_decay": 0.1}),
    ("Adagrad", {}),
    ("Adagrad", {"lr": 0.1, "lr_decay": 0.01}),
    ("Adagrad", {"lr": 0.1, "weight_decay": 0.1, "initial_accumulator_value": 0.5, "eps": 1e-6}),
    ("RMSprop", {}),
    ("RMSprop", {"lr": 0.01, "momentum": 0.9}),
    ("RMSprop", {"lr": 0.01, "centered": True}),
    ("RMSprop", {"lr": 0.01, "alpha": 0.9, "centered": True, "momentum": 0.5, "weight_decay": 0.01, "eps": 1e-6}),
    ("Adam", {}),
    ("Adam", {"lr": 0.01, "betas": (0.8, 0.99)}),
    ("Adam", {"lr": 0.01, "amsgrad": True}),
    ("Adam", {"lr": 0.01, "weight_decay": 0.1}),
    ("Adam", {"lr": 0.01, "weight_decay": 0.1, "amsgrad": True, "eps": 1e-6}),
    ("AdamW", {}),
    ("AdamW", {"lr": 0.01, "weight_decay": 0.1}),
    ("AdamW", {"lr": 0.01, "weight_decay": 0.05, "amsgrad": True, "betas": (0.5, 0.9)}),
]


@pytest.mark.parametrize("name,kwargs", CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
def test_optimizer_matches_torch(name, kwargs):
    mine, theirs = _pair(_initial())
    opt = getattr(so, name)(mine, **kwargs)
    ref = getattr(torch.optim, name)(theirs, **kwargs)
    for t, grads in enumerate(_grad_sequence()):
        _set_grads(mine, theirs, grads)
        opt.step()
        ref.step()
        diff = _max_diff(mine, theirs)
        assert diff < TOL, f"{name}{kwargs}: step {t}: max |diff| {diff:.3e}"
    # the parameters moved, and so did the one that skipped some steps
    for p, a in zip(mine, _initial()):
        assert not np.allclose(p.data, a)


def test_adam_state_matches_torch():
    mine, theirs = _pair(_initial())
    opt = so.Adam(mine, lr=0.01, amsgrad=True)
    ref = torch.optim.Adam(theirs, lr=0.01, amsgrad=True)
    for grads in _grad_sequence():
        _set_grads(mine, theirs, grads)
        opt.step()
        ref.step()
    for p, q in zip(mine, theirs):
        s, r = opt.state_for(p), ref.state[q]
        assert s["step"] == int(r["step"])
        for key in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"):
            np.testing.assert_allclose(s[key], r[key].numpy(), rtol=0, atol=TOL)


def test_param_groups_match_torch():
    init = _initial()
    mine, theirs = _pair(init)
    opt = so.SGD([{"params": mine[:2]}, {"params": mine[2:], "lr": 0.01, "momentum": 0.5}], lr=0.1, momentum=0.9)
    ref = torch.optim.SGD([{"params": theirs[:2]}, {"params": theirs[2:], "lr": 0.01, "momentum": 0.5}],
                          lr=0.1, momentum=0.9)
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.01]
    assert opt.param_groups[1]["momentum"] == 0.5 and opt.param_groups[0]["momentum"] == 0.9
    for grads in _grad_sequence():
        _set_grads(mine, theirs, grads)
        opt.step()
        ref.step()
        assert _max_diff(mine, theirs) < TOL


@pytest.mark.parametrize("name,kwargs", [("SGD", {"lr": 0.1, "momentum": 0.9}), ("Adam", {"lr": 0.05}),
                                         ("AdamW", {"lr": 0.05, "weight_decay": 0.1})])
def test_optimizer_with_schedule_matches_torch(name, kwargs):
    """The optimizer reads the group's lr on every step, so a schedule changes the trajectory alike."""
    mine, theirs = _pair(_initial())
    opt = getattr(so, name)(mine, **kwargs)
    ref = getattr(torch.optim, name)(theirs, **kwargs)
    sched = so.CosineAnnealingLR(opt, T_max=8, eta_min=1e-3)
    ref_sched = torch.optim.lr_scheduler.CosineAnnealingLR(ref, T_max=8, eta_min=1e-3)
    for grads in _grad_sequence():
        _set_grads(mine, theirs, grads)
        opt.step()
        ref.step()
        sched.step()
        ref_sched.step()
        assert _max_diff(mine, theirs) < TOL


def test_float32_params_stay_float32_and_in_place():
    data = np.ones((2, 2), dtype=np.float32)
    p = so.ArrayParam(data)
    assert p.data is data
    opt = so.Adam([p], lr=0.1)
    p.grad = np.ones((2, 2))
    opt.step()
    assert p.data is data and data.dtype == np.float32
    np.testing.assert_allclose(data, 0.9, rtol=1e-6)


def test_zero_grad():
    p, q = so.ArrayParam(np.zeros(3)), so.ArrayParam(np.zeros(2))
    opt = so.SGD([p, q], lr=0.1)
    p.grad = np.ones(3)
    g = p.grad
    opt.zero_grad(set_to_none=False)
    assert p.grad is g and not g.any() and q.grad is None
    opt.zero_grad()
    assert p.grad is None


def test_errors_say_what_to_do():
    p = so.ArrayParam(np.zeros(3))
    with pytest.raises(ValueError, match="nesterov"):
        so.SGD([p], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="learning rate"):
        so.Adam([p], lr=-1)
    with pytest.raises(ValueError, match="empty"):
        so.SGD([], lr=0.1)
    with pytest.raises(TypeError, match="ArrayParam"):
        so.SGD(np.zeros(3), lr=0.1)
    with pytest.raises(TypeError, match=r"\.data"):
        so.SGD([object()], lr=0.1)
    with pytest.raises(ValueError, match="twice"):
        so.SGD([p, p], lr=0.1)
    opt = so.SGD([p], lr=0.1)
    p.grad = np.ones(4)
    with pytest.raises(ValueError, match="shape"):
        opt.step()


# ---- state dicts --------------------------------------------------------------------------------

RESUME_CASES = [
    ("SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True}),
    ("Adagrad", {"lr": 0.1, "lr_decay": 0.01}),
    ("RMSprop", {"lr": 0.01, "centered": True, "momentum": 0.5}),
    ("Adam", {"lr": 0.01, "amsgrad": True, "betas": (0.8, 0.99)}),
    ("AdamW", {"lr": 0.01, "weight_decay": 0.1}),
]


@pytest.mark.parametrize("name,kwargs", RESUME_CASES, ids=[n for n, _ in RESUME_CASES])
def test_state_dict_round_trip_through_safetensors_resumes_identically(name, kwargs, tmp_path: Path):
    from safetensors.numpy import load_file, save_file

    seq = _grad_sequence(steps=2 * STEPS)
    full = [so.ArrayParam(a.copy()) for a in _initial()]
    opt = getattr(so, name)(full, **kwargs)
    sched = so.StepLR(opt, step_size=7, gamma=0.5)
    for t, grads in enumerate(seq):
        for p, g in zip(full, grads):
            p.grad = None if g is None else g.copy()
        opt.step()
        sched.step()
        if t == STEPS - 1:  # checkpoint half way: weights, optimizer, scheduler
            weights = [p.data.copy() for p in full]
            arrays, meta = so.state_dict_to_arrays(opt.state_dict())
            save_file(arrays, str(tmp_path / "optim.safetensors"))
            (tmp_path / "optim.json").write_text(json.dumps({"optim": meta, "sched": sched.state_dict()}))

    resumed = [so.ArrayParam(w) for w in weights]
    # as in torch: build optimizer and scheduler (any hyperparameters), then load both states
    opt2 = getattr(so, name)(resumed, lr=123.0)
    sched2 = so.StepLR(opt2, step_size=1, gamma=0.9)
    saved = json.loads((tmp_path / "optim.json").read_text())
    opt2.load_state_dict(so.state_dict_from_arrays(load_file(str(tmp_path / "optim.safetensors")), saved["optim"]))
    sched2.load_state_dict(saved["sched"])
    for grads in seq[STEPS:]:
        for p, g in zip(resumed, grads):
            p.grad = None if g is None else g.copy()
        opt2.step()
        sched2.step()
    for p, q in zip(full, resumed):
        np.testing.assert_array_equal(p.data, q.data)
    assert sched2.get_last_lr() == sched.get_last_lr()
    assert opt2.param_groups[0]["lr"] == opt.param_groups[0]["lr"]


def test_state_dict_is_a_copy_and_plain():
    p = so.ArrayParam(np.zeros(3))
    opt = so.Adam([p], lr=0.1)
    p.grad = np.ones(3)
    opt.step()
    sd = opt.state_dict()
    assert sd["param_groups"][0]["params"] == [0]
    assert sd["param_groups"][0]["betas"] == [0.9, 0.999]
    assert set(sd["state"][0]) == {"step", "exp_avg", "exp_avg_sq"}
    before = sd["state"][0]["exp_avg"].copy()
    opt.step()
    np.testing.assert_array_equal(sd["state"][0]["exp_avg"], before)
    arrays, meta = so.state_dict_to_arrays(sd)
    json.dumps(meta)  # JSON-able
    assert set(arrays) == {"state.0.exp_avg", "state.0.exp_avg_sq"}
    opt.load_state_dict(json.loads(json.dumps({**meta, "state": {"0": {**meta["state"]["0"],
                                                                       "exp_avg": arrays["state.0.exp_avg"].tolist(),
                                                                       "exp_avg_sq": [1.0, 1.0, 1.0]}}})))
    assert opt.param_groups[0]["betas"] == (0.9, 0.999)
    np.testing.assert_array_equal(opt.state_for(p)["exp_avg"], before)


def test_load_state_dict_checks_sizes():
    opt = so.SGD([so.ArrayParam(np.zeros(3))], lr=0.1, momentum=0.9)
    other = so.SGD([so.ArrayParam(np.zeros(3)), so.ArrayParam(np.zeros(2))], lr=0.1)
    with pytest.raises(ValueError, match="parameters"):
        opt.load_state_dict(other.state_dict())


# ---- schedules ----------------------------------------------------------------------------------


def _lr_sequences(make_mine, make_ref, steps: int, lrs=(0.1, 0.03)):
    ps = [so.ArrayParam(np.zeros(1)) for _ in lrs]
    ts = [torch.zeros(1, requires_grad=True) for _ in lrs]
    opt = so.SGD([{"params": [p], "lr": lr} for p, lr in zip(ps, lrs)], lr=lrs[0])
    ref = torch.optim.SGD([{"params": [t], "lr": lr} for t, lr in zip(ts, lrs)], lr=lrs[0])
    sched, ref_sched = make_mine(opt), make_ref(ref)
    mine, theirs = [sched.get_last_lr()], [ref_sched.get_last_lr()]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(steps):
            opt.step()
            ref.step()
            sched.step()
            ref_sched.step()
            mine.append(sched.get_last_lr())
            theirs.append(ref_sched.get_last_lr())
            assert [g["lr"] for g in opt.param_groups] == mine[-1]
    return np.array(mine), np.array(theirs, dtype=np.float64)


LRS = torch.optim.lr_scheduler
SCHEDULE_CASES = [
    ("step", lambda o: so.StepLR(o, step_size=3, gamma=0.5), lambda o: LRS.StepLR(o, step_size=3, gamma=0.5)),
    ("exponential", lambda o: so.ExponentialLR(o, gamma=0.9), lambda o: LRS.ExponentialLR(o, gamma=0.9)),
    ("cosine", lambda o: so.CosineAnnealingLR(o, T_max=10, eta_min=1e-3),
     lambda o: LRS.CosineAnnealingLR(o, T_max=10, eta_min=1e-3)),
    ("cosine-long", lambda o: so.CosineAnnealingLR(o, T_max=50), lambda o: LRS.CosineAnnealingLR(o, T_max=50)),
    ("linear-warmup", lambda o: so.LinearWarmup(o, warmup_steps=5, start_factor=0.25),
     lambda o: LRS.LinearLR(o, start_factor=0.25, end_factor=1.0, total_iters=5)),
    ("lambda", lambda o: so.LambdaLR(o, lambda t: 1 / (1 + t)), lambda o: LRS.LambdaLR(o, lambda t: 1 / (1 + t))),
]


@pytest.mark.parametrize("make_mine,make_ref", [c[1:] for c in SCHEDULE_CASES], ids=[c[0] for c in SCHEDULE_CASES])
def test_schedule_matches_torch(make_mine, make_ref):
    mine, theirs = _lr_sequences(make_mine, make_ref, steps=60)
    assert np.max(np.abs(mine - theirs)) < TOL


def _warmup_cosine_lambda(warmup: int, total: int, start: float, floor: float):
    """The same schedule as a LambdaLR factor: the formula written independently of WarmupCosine."""

    def fn(t: int) -> float:
        if t < warmup:
            return start + (1 - start) * t / warmup
        progress = min(t - warmup, total - warmup) / (total - warmup)
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))

    return fn


@pytest.mark.parametrize("eta_min,start", [(0.0, 0.0), (1e-3, 0.1)])
def test_warmup_cosine_matches_lambdalr(eta_min, start):
    warmup, total, lrs = 6, 30, (0.1, 0.03)
    mine, theirs = _lr_sequences(
        lambda o: so.WarmupCosine(o, warmup_steps=warmup, total_steps=total, eta_min=eta_min, start_factor=start),
        lambda o: LRS.LambdaLR(o, [_warmup_cosine_lambda(warmup, total, start, eta_min / lr) for lr in lrs]),
        steps=40, lrs=lrs)
    assert np.max(np.abs(mine - theirs)) < TOL
    # shape: rises for `warmup` steps, peaks at the base rate, falls to eta_min at `total`, then holds
    lr = mine[:, 0]
    assert np.all(np.diff(lr[: warmup + 1]) > 0) and lr[warmup] == pytest.approx(0.1)
    assert np.all(np.diff(lr[warmup: total + 1]) < 0)
    assert np.allclose(lr[total:], eta_min)


def test_linear_warmup_from_zero_holds_after():
    opt = so.SGD([so.ArrayParam(np.zeros(1))], lr=0.2)
    sched = so.LinearWarmup(opt, warmup_steps=4)
    lrs = [sched.get_last_lr()[0]]
    for _ in range(8):
        sched.step()
        lrs.append(sched.get_last_lr()[0])
    np.testing.assert_allclose(lrs, [0.0, 0.05, 0.1, 0.15, 0.2, 0.2, 0.2, 0.2, 0.2])


def test_scheduler_state_dict_and_resume():
    opt = so.SGD([so.ArrayParam(np.zeros(1))], lr=0.1)
    sched = so.CosineAnnealingLR(opt, T_max=10)
    for _ in range(4):
        sched.step()
    sd = sched.state_dict()
    json.dumps(sd)
    assert sd["last_epoch"] == 4 and sd["base_lrs"] == [0.1]
    opt2 = so.SGD([so.ArrayParam(np.zeros(1))], lr=0.1)
    sched2 = so.CosineAnnealingLR(opt2, T_max=3)
    sched2.load_state_dict(sd)
    for _ in range(3):
        sched.step()
        sched2.step()
        assert sched.get_last_lr() == sched2.get_last_lr() == [opt2.param_groups[0]["lr"]]
    with pytest.raises(KeyError, match="initial_lr"):
        so.StepLR(so.SGD([so.ArrayParam(np.zeros(1))], lr=0.1), step_size=2, last_epoch=5)


# ---- clipping -----------------------------------------------------------------------------------


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.5, math.inf])
@pytest.mark.parametrize("max_norm", [0.5, 1e6])
def test_clip_grad_norm_matches_torch(norm_type, max_norm):
    mine, theirs = _pair(_initial())
    grads = _grad_sequence()[2]  # the last parameter has no gradient at this step
    _set_grads(mine, theirs, grads)
    total = so.clip_grad_norm(mine, max_norm, norm_type=norm_type)
    ref_total = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type=norm_type)
    assert abs(total - float(ref_total)) < TOL * max(1.0, abs(total))
    assert isinstance(total, float)
    for p, q in zip(mine, theirs):
        if q.grad is None:
            assert p.grad is None
        else:
            assert np.max(np.abs(p.grad - q.grad.numpy())) < TOL
    new_norm = float(np.linalg.norm([np.linalg.norm(p.grad.ravel(), norm_type) for p in mine if p.grad is not None],
                                    norm_type))
    assert new_norm <= max_norm + 1e-9


def test_clip_grad_norm_in_place_nonfinite_and_empty():
    p = so.ArrayParam(np.zeros(3))
    p.grad = np.array([3.0, 4.0, 0.0])
    g = p.grad
    assert so.clip_grad_norm(p, 1.0) == pytest.approx(5.0)
    assert p.grad is g
    np.testing.assert_allclose(g, [3 / (5 + 1e-6), 4 / (5 + 1e-6), 0.0])
    p.grad = np.array([np.nan, 1.0, 0.0])
    with pytest.raises(RuntimeError, match="NaN"):
        so.clip_grad_norm([p], 1.0, error_if_nonfinite=True)
    q = so.ArrayParam(np.zeros(2))
    assert so.clip_grad_norm([q], 1.0) == 0.0


def test_clip_grad_value_matches_torch():
    mine, theirs = _pair(_initial())
    _set_grads(mine, theirs, _grad_sequence()[4])
    so.clip_grad_value(mine, 0.7)
    torch.nn.utils.clip_grad_value_(theirs, 0.7)
    for p, q in zip(mine, theirs):
        np.testing.assert_array_equal(p.grad, q.grad.numpy())
        assert np.abs(p.grad).max() <= 0.7


# ---- early stopping -----------------------------------------------------------------------------


def test_early_stopping_min():
    stop = so.EarlyStopping(patience=2)
    answers = [stop.step(v) for v in (1.0, 0.5, 0.6, 0.4, 0.45, 0.41)]
    assert answers == [False, False, False, False, False, True]
    assert stop.best == 0.4 and stop.best_epoch == 3 and stop.bad_epochs == 2


def test_early_stopping_max_min_delta_nan():
    stop = so.EarlyStopping(patience=3, mode="max", min_delta=0.01)
    answers = [stop.step(v) for v in (0.5, 0.505, 0.52, float("nan"), 0.525, 0.529)]
    # 0.505 and 0.525/0.529 do not beat the best by more than 0.01; NaN never improves
    assert answers == [False, False, False, False, False, True]
    assert stop.best == 0.52 and stop.best_epoch == 2 and stop.bad_epochs == 3
    assert stop.should_stop


def test_early_stopping_patience_zero_state_dict_and_errors():
    stop = so.EarlyStopping(patience=0)
    assert [stop.step(v) for v in (3.0, 2.0, 2.0)] == [False, False, True]
    stop2 = so.EarlyStopping(patience=0)
    stop2.load_state_dict(stop.state_dict())
    assert (stop2.best, stop2.best_epoch, stop2.bad_epochs) == (2.0, 1, 1)
    with pytest.raises(ValueError, match="mode"):
        so.EarlyStopping(patience=1, mode="lowest")
    with pytest.raises(ValueError, match="min_delta"):
        so.EarlyStopping(patience=1, min_delta=-0.1)


def test_optim_module_never_imports_torch():
    tree = ast.parse(Path(so.__file__).read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {(node.module or "").split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert "torch" not in imported
