"""Generated series and long-range tasks: Mackey-Glass, sines, windows, adding problem, copy memory."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from archlab.data import load_dataset
from archlab.data.series import (
    IGNORE_INDEX,
    chronological_split,
    fit_scaler,
    mackey_glass_series,
    make_adding_problem,
    make_copy_memory,
    make_windows,
    sine_mixture,
    unscale,
)
from archlab.utils import ArchlabError


def _euler_mackey_glass(n_points: int, tau: int = 17, dt: float = 0.01, x0: float = 1.2) -> np.ndarray:
    """An independent reference: explicit Euler with a 100x smaller step, same constant history."""
    lag = int(round(tau / dt))
    per_unit = int(round(1 / dt))
    hist = [x0] * (lag + 1)
    x = x0
    for i in range(n_points * per_unit):
        xd = hist[i]  # x(t - tau): hist[lag] is t = 0
        x = x + dt * (0.2 * xd / (1 + xd**10) - 0.1 * x)
        hist.append(x)
    return np.asarray(hist[lag:][::per_unit][:n_points])


def test_mackey_glass_matches_a_fine_euler_integration():
    ours = mackey_glass_series(150, washout=0)
    ref = _euler_mackey_glass(150)
    assert ours[0] == pytest.approx(1.2)
    assert np.max(np.abs(ours - ref)) < 2e-2


def test_mackey_glass_values_are_sane_and_chaotic():
    s = mackey_glass_series(3000)
    assert s.shape == (3000,) and np.isfinite(s).all()
    assert 0.15 < s.min() < 0.5 and 1.1 < s.max() < 1.45  # the tau=17 attractor spans ~0.2-1.4
    assert np.array_equal(s, mackey_glass_series(3000))
    assert s[:1000].std() > 0.15  # it keeps oscillating after the washout


def test_sine_mixture_is_seeded_and_noise_is_optional():
    a, b = sine_mixture(500, seed=1), sine_mixture(500, seed=1)
    assert np.array_equal(a, b) and not np.array_equal(a, sine_mixture(500, seed=2))
    clean = sine_mixture(500, noise=0.0, seed=1)
    assert 0.02 < np.std(a - clean) < 0.08


def test_make_windows_targets_follow_each_window():
    s = np.arange(20, dtype=np.float64)
    x, y = make_windows(s, window=4, horizon=3)
    assert x.shape == (14, 4, 1) and y.shape == (14, 3) and x.dtype == y.dtype == torch.float32
    assert x[0, :, 0].tolist() == [0, 1, 2, 3] and y[0].tolist() == [4, 5, 6]
    assert x[-1, :, 0].tolist() == [13, 14, 15, 16] and y[-1].tolist() == [17, 18, 19]
    x2, y2 = make_windows(np.stack([s, -s], 1), window=4, horizon=1, stride=5)
    assert x2.shape == (4, 4, 2) and x2[1, 0].tolist() == [5, -5] and y2[:, 0].tolist() == [4, 9, 14, 19]
    with pytest.raises(ArchlabError, match="cannot hold one window"):
        make_windows(s[:5], window=4, horizon=2)


def test_chronological_split_and_scaler():
    s = np.arange(100.0)[:, None]
    tr, va, te = chronological_split(s)
    assert (len(tr), len(va), len(te)) == (70, 15, 15) and tr[-1, 0] == 69 and va[0, 0] == 70
    mean, std = fit_scaler(np.array([[1.0, 5.0], [3.0, 5.0]]))
    assert mean.tolist() == [2.0, 5.0] and std.tolist() == [1.0, 1.0]  # constant column: std 1


@pytest.mark.parametrize("name", ["mackey_glass", "sines"])
def test_forecast_bundles_are_chronological_and_scaled_with_train(name):
    b = load_dataset(name, window=16, horizon=4, n_points=1000)
    info = b.info
    assert info.kind == "series" and info.input_shape == (16, 1) and info.horizon == 4
    assert info.model_fields()["in_features"] == 1 and info.model_fields()["horizon"] == 4
    for split, n_part in ((b.train, 700), (b.val, 150), (b.test, 150)):
        assert split.x.shape == (n_part - 16 - 4 + 1, 16, 1) and split.y.shape == (n_part - 16 - 4 + 1, 4)
        assert split.x.dtype == split.y.dtype == torch.float32
    raw = mackey_glass_series(1000) if name == "mackey_glass" else sine_mixture(1000)
    mean, std = raw[:700].mean(), raw[:700].std()
    assert info.mean[0] == pytest.approx(mean) and info.std[0] == pytest.approx(std)
    # val's first window is the raw series right after the training part, scaled with train's stats
    back = unscale(b.val.x[0, :, 0].double().numpy(), info.mean[0], info.std[0])
    assert np.allclose(back, raw[700:716], atol=1e-5)
    assert np.allclose(unscale(b.test.y[-1].double().numpy(), mean, std), raw[-4:], atol=1e-5)
    # the targets continue the windows
    assert torch.allclose(b.train.x[1, -1, 0], b.train.y[0, 0])


def test_adding_problem_targets_are_the_marked_sums():
    x, y = make_adding_problem(500, 30, seed=3)
    assert x.shape == (500, 30, 2) and y.shape == (500, 1) and x.dtype == y.dtype == torch.float32
    markers = x[..., 1]
    assert (markers.sum(1) == 2).all()
    assert (markers[:, :15].sum(1) == 1).all() and (markers[:, 15:].sum(1) == 1).all()
    assert torch.allclose((x[..., 0] * markers).sum(1, keepdim=True), y, atol=1e-6)
    assert ((x[..., 0] >= 0) & (x[..., 0] <= 1)).all()
    b = load_dataset("adding_problem", seq_len=20, n_samples=1000)
    assert b.info.kind == "series" and b.info.input_shape == (20, 2) and b.info.horizon == 1
    assert (len(b.train), len(b.val), len(b.test)) == (800, 100, 100)
    assert b.info.mean == (0.0, 0.0) and b.info.std == (1.0, 1.0)
    # always answering 1 scores 1/6 (the variance of U1 + U2): the baseline a model with memory must beat
    _, y_many = make_adding_problem(50_000, 4, seed=0)
    assert float(((y_many - 1) ** 2).mean()) == pytest.approx(1 / 6, abs=0.005)


def test_copy_memory_layout():
    x, y = make_copy_memory(64, 20, copy_len=5, n_symbols=4, seed=0)
    assert x.shape == y.shape == (64, 30) and x.dtype == y.dtype == torch.long
    b = load_dataset("copy_memory", seq_len=20, n_samples=200, copy_len=5, n_symbols=4)
    v = b.info.vocab
    assert b.info.kind == "lm" and b.info.input_shape == (30,) and len(v) == 4 + 2 + 4
    assert (len(b.train), len(b.val), len(b.test)) == (160, 20, 20)
    blank, delim = v.stoi["_"], v.stoi[":"]
    symbols = x[:, :5]
    assert ((symbols >= v.stoi["1"]) & (symbols <= v.stoi["4"])).all()
    assert (x[:, 5:24] == blank).all() and (x[:, 24] == delim).all() and (x[:, 25:] == blank).all()
    assert (y[:, :25] == IGNORE_INDEX).all() and torch.equal(y[:, 25:], symbols)
    assert v.decode(x[0, :5]) == "".join(v.itos[i] for i in x[0, :5].tolist())
    assert (x != v.pad_id).all()  # blanks are tokens, not padding: lengths_of sees full rows
    with pytest.raises(ArchlabError, match="1..9 symbols"):
        make_copy_memory(4, 10, n_symbols=12)
