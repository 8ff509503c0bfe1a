"""Time series and long-range synthetic sequence tasks, all generated offline.

Forecasting sets (kind ``series``): a series of N points and F features is split
**chronologically** 70/15/15 into train/val/test parts, each part is scaled with the training
part's per-feature mean and std, and each part is cut into windows on its own (no window
crosses a split boundary)::

    x (N_w, L, F) float32   the L = ``window`` past values (scaled)
    y (N_w, H)    float32   the next H = ``horizon`` values of feature 0 (scaled the same way)

``info.mean``/``info.std`` give the scaling (raw = scaled * std + mean), ``info.horizon`` = H and
``info.input_shape`` = (L, F). Every set here has its own val split, so ``load_dataset``'s
``val_split`` does not apply. The generators' seed option is ``data_seed`` (``load_dataset``'s own
``seed`` only seeds a ``val_split`` hold-out), as for the embedded datasets.

* ``mackey_glass``: the Mackey-Glass delay differential equation (tau = 17, chaotic).
* ``sines``: a seeded mixture of sinusoids plus Gaussian noise.

Long-range memory tasks for comparing RNN, LSTM and GRU (80/10/10 random splits):

* ``adding_problem`` (kind ``series``): x (N, T, 2) = (value, marker), y (N, 1) = the sum of
  the two marked values; no scaling (``mean`` 0, ``std`` 1).
* ``copy_memory`` (kind ``lm``): x (N, T) token ids, y (N, T) = -100 except the last
  ``copy_len`` positions, which must recall the first ``copy_len`` symbols.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from archlab.data.base import ArraySplit, DataBundle, DatasetInfo
from archlab.registry import register_dataset
from archlab.utils import ArchlabError

__all__ = [
    "mackey_glass_series",
    "sine_mixture",
    "chronological_split",
    "fit_scaler",
    "scale",
    "unscale",
    "make_windows",
    "series_bundle",
    "make_adding_problem",
    "make_copy_memory",
    "COPY_BLANK",
    "COPY_DELIMITER",
    "IGNORE_INDEX",
]

IGNORE_INDEX = -100  # the target of positions without one (torch's cross_entropy default)


# --------------------------------------------------------------------------------------------
# Series
# --------------------------------------------------------------------------------------------


def mackey_glass_series(
    n_points: int = 5000,
    *,
    tau: float = 17.0,
    beta: float = 0.2,
    gamma: float = 0.1,
    n: float = 10.0,
    x0: float = 1.2,
    substeps: int = 10,
    washout: int = 500,
) -> np.ndarray:
    """The Mackey-Glass series sampled every time unit (delta t = 1).

    Mackey & Glass 1977, "Oscillation and chaos in physiological control systems"::

        dx/dt = beta * x(t - tau) / (1 + x(t - tau)^n) - gamma * x(t)

    integrated with the classic 4th-order Runge-Kutta scheme at step ``1/substeps``; the delayed
    value at the half step is the mean of the two stored neighbours (linear interpolation). The
    history is constant ``x0`` for t <= 0, and the first ``washout`` time units (the transient)
    are dropped. With tau = 17 the attractor is chaotic and x stays within about [0.2, 1.4].

    Returns:
        float64 (n_points,).
    """
    if n_points < 1 or substeps < 1:
        raise ArchlabError(f"n_points and substeps must be >= 1, got {n_points}, {substeps}")
    dt = 1.0 / substeps
    lag = int(round(tau * substeps))  # tau in steps
    steps = (n_points + washout) * substeps
    hist = [x0] * (lag + 1) + [0.0] * steps  # hist[lag] is t = 0

    def f(x: float, xd: float) -> float:
        return beta * xd / (1.0 + xd**n) - gamma * x

    x = x0
    for i in range(lag, lag + steps):
        d0, d1 = hist[i - lag], hist[i - lag + 1]  # x(t - tau), x(t - tau + dt)
        dh = 0.5 * (d0 + d1)
        k1 = f(x, d0)
        k2 = f(x + 0.5 * dt * k1, dh)
        k3 = f(x + 0.5 * dt * k2, dh)
        k4 = f(x + dt * k3, d1)
        x = x + dt / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)
        hist[i + 1] = x
    full = np.asarray(hist[lag:], dtype=np.float64)  # t = 0, dt, ..., steps * dt
    return full[washout * substeps :: substeps][:n_points]


def sine_mixture(
    n_points: int = 4000, *, n_components: int = 3, noise: float = 0.05, seed: int = 0
) -> np.ndarray:
    """A seeded sum of sinusoids plus Gaussian noise: float64 (n_points,).

    ``sum_k a_k sin(2 pi t / P_k + phi_k) + noise * N(0, 1)`` with periods P_k in [8, 100)
    steps, amplitudes a_k in [0.5, 1.5) and phases phi_k in [0, 2 pi).
    """
    if n_points < 1 or n_components < 1:
        raise ArchlabError(f"n_points and n_components must be >= 1, got {n_points}, {n_components}")
    rng = np.random.default_rng(seed)
    periods = rng.uniform(8.0, 100.0, n_components)
    amps = rng.uniform(0.5, 1.5, n_components)
    phases = rng.uniform(0.0, 2 * math.pi, n_components)
    t = np.arange(n_points, dtype=np.float64)[:, None]
    clean = (amps * np.sin(2 * math.pi * t / periods + phases)).sum(axis=1)
    return clean + noise * rng.standard_normal(n_points)


def chronological_split(
    series: np.ndarray, fractions: tuple[float, float, float] = (0.7, 0.15, 0.15)
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The first, middle and last parts of ``series`` (N, ...) in time order."""
    if abs(sum(fractions) - 1.0) > 1e-9 or min(fractions) < 0:
        raise ArchlabError(f"split fractions must be >= 0 and sum to 1, got {fractions}")
    n = len(series)
    a = int(round(n * fractions[0]))
    b = int(round(n * (fractions[0] + fractions[1])))
    return series[:a], series[a:b], series[b:]


def fit_scaler(train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature (mean, std) of ``train`` (N, F); a constant feature gets std 1."""
    mean = train.mean(axis=0)
    std = train.std(axis=0)
    std = np.where(std < 1e-12, 1.0, std)
    return mean, std


def scale(a: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """(a - mean) / std, per feature (last axis)."""
    return (a - mean) / std


def unscale(a: np.ndarray | torch.Tensor, mean: float | np.ndarray, std: float | np.ndarray):
    """a * std + mean: back to the raw units (use ``info.mean[0]``, ``info.std[0]`` for targets)."""
    return a * std + mean


def make_windows(
    series: np.ndarray, window: int, horizon: int = 1, *, target: int = 0, stride: int = 1
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sliding windows over a series (N, F) (or (N,)).

    Window i covers steps ``[i*stride, i*stride + window)``; its target is the next ``horizon``
    values of feature ``target``.

    Returns:
        x float32 (M, window, F), y float32 (M, horizon), M = (N - window - horizon) // stride + 1.

    Raises:
        ArchlabError: the series is shorter than ``window + horizon``.
    """
    s = np.asarray(series, dtype=np.float32)
    if s.ndim == 1:
        s = s[:, None]
    if window < 1 or horizon < 1 or stride < 1:
        raise ArchlabError(f"window, horizon and stride must be >= 1, got {window}, {horizon}, {stride}")
    n = len(s)
    if n < window + horizon:
        raise ArchlabError(
            f"a part of {n} points cannot hold one window of {window} + horizon {horizon}; "
            "use more n_points or a smaller window/horizon"
        )
    t = torch.from_numpy(np.ascontiguousarray(s))
    x = t[: n - horizon].unfold(0, window, stride)  # (M, F, L)
    x = x.permute(0, 2, 1).contiguous()  # (M, L, F)
    y = t[window:, target].unfold(0, horizon, stride)  # (M', H)
    m = min(len(x), len(y))
    return x[:m], y[:m].contiguous()


def series_bundle(
    name: str,
    series: np.ndarray,
    *,
    window: int,
    horizon: int,
    source: str,
    feature_names: list[str] | None = None,
) -> DataBundle:
    """A forecasting :class:`DataBundle`: chronological 70/15/15 split, train-part scaling, windows."""
    s = np.asarray(series, dtype=np.float64)
    if s.ndim == 1:
        s = s[:, None]
    train, val, test = chronological_split(s)
    mean, std = fit_scaler(train)
    splits = [ArraySplit(*make_windows(scale(part, mean, std), window, horizon)) for part in (train, val, test)]
    info = DatasetInfo(
        name=name, kind="series", input_shape=(window, s.shape[1]), mean=tuple(float(v) for v in mean),
        std=tuple(float(v) for v in std), feature_names=feature_names or [f"x{i}" for i in range(s.shape[1])],
        source=source, horizon=horizon,
    )
    return DataBundle(info, *splits)


@register_dataset("mackey_glass", family="series", size="5000 points",
                  description="Mackey-Glass chaotic series (tau=17), windows -> next H values")
def mackey_glass(root: Path | None = None, download: bool = True, *, window: int = 32, horizon: int = 1,
                 n_points: int = 5000, tau: float = 17.0, noise: float = 0.0, data_seed: int = 0) -> DataBundle:
    """Mackey-Glass (tau = 17) forecasting: x float32 (N, window, 1), y float32 (N, horizon).

    Args:
        window: L past steps per input.
        horizon: H future steps to predict.
        n_points: series length (after a 500-step washout), sampled at delta t = 1.
        tau: the delay (17: mildly chaotic, the usual benchmark).
        noise: std of Gaussian noise added to the raw series.
        data_seed: seed of the noise.
    """
    s = mackey_glass_series(n_points, tau=tau)
    if noise > 0:
        s = s + noise * np.random.default_rng(data_seed).standard_normal(len(s))
    return series_bundle("mackey_glass", s, window=window, horizon=horizon,
                         source=f"generated (Mackey-Glass, tau={tau:g}, RK4)", feature_names=["x"])


@register_dataset("sines", family="series", size="4000 points",
                  description="a mixture of sinusoids plus noise, windows -> next H values")
def sines(root: Path | None = None, download: bool = True, *, window: int = 32, horizon: int = 1,
          n_points: int = 4000, n_components: int = 3, noise: float = 0.05, data_seed: int = 0) -> DataBundle:
    """A sum of ``n_components`` seeded sinusoids plus noise: x float32 (N, window, 1), y (N, horizon)."""
    s = sine_mixture(n_points, n_components=n_components, noise=noise, seed=data_seed)
    return series_bundle("sines", s, window=window, horizon=horizon,
                         source=f"generated ({n_components} sinusoids, noise {noise:g}, seed {data_seed})",
                         feature_names=["x"])


# --------------------------------------------------------------------------------------------
# Long-range memory tasks
# --------------------------------------------------------------------------------------------


def _random_splits(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    perm = np.random.default_rng(seed + 7919).permutation(n)
    n_val = n_test = max(1, n // 10)
    return perm[n_val + n_test :], perm[:n_val], perm[n_val : n_val + n_test]


def make_adding_problem(n_samples: int, seq_len: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """The adding problem: x float32 (N, T, 2), y float32 (N, 1).

    Channel 0 holds values drawn from U[0, 1]; channel 1 marks two positions with 1, one in each
    half of the sequence; the target is the sum of the two marked values.
    """
    if seq_len < 2:
        raise ArchlabError(f"the adding problem needs seq_len >= 2, got {seq_len}")
    rng = np.random.default_rng(seed)
    values = rng.uniform(0.0, 1.0, (n_samples, seq_len))
    half = seq_len // 2
    first = rng.integers(0, half, n_samples)
    second = rng.integers(half, seq_len, n_samples)
    markers = np.zeros((n_samples, seq_len))
    rows = np.arange(n_samples)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    x = np.stack([values, markers], axis=-1).astype(np.float32)  # (N, T, 2)
    y = (values[rows, first] + values[rows, second])[:, None].astype(np.float32)  # (N, 1)
    return torch.from_numpy(x), torch.from_numpy(y)


@register_dataset("adding_problem", family="series", size="10000",
                  description="Hochreiter & Schmidhuber's adding problem: sum the two marked values")
def adding_problem(root: Path | None = None, download: bool = True, *, seq_len: int = 50, n_samples: int = 10000,
                   data_seed: int = 0) -> DataBundle:
    """The adding problem (Hochreiter & Schmidhuber 1997, "Long Short-Term Memory", experiment 4).

    x float32 (N, seq_len, 2): (value in [0, 1], marker in {0, 1}); y float32 (N, 1): the sum of
    the two marked values. Kind ``series`` with horizon 1 and no scaling (``mean`` 0, ``std`` 1).
    Always predicting 1 scores MSE 1/6 ~ 0.167: the baseline a model with memory must beat.
    Splits 80/10/10 at random (seeded).

    Deviations from the paper: the modern form of the task (Le et al. 2015, "A Simple Way to
    Initialize Recurrent Networks of Rectified Linear Units"; Arjovsky et al. 2016): values in
    [0, 1] instead of [-1, 1], one marker in each half of the sequence instead of the first ten
    and first half, and the plain sum as the target instead of ``0.5 + (X1 + X2) / 4``.
    """
    x, y = make_adding_problem(n_samples, seq_len, data_seed)
    tr, va, te = (torch.from_numpy(i) for i in _random_splits(n_samples, data_seed))
    info = DatasetInfo(
        name="adding_problem", kind="series", input_shape=(seq_len, 2), mean=(0.0, 0.0), std=(1.0, 1.0),
        feature_names=["value", "marker"], source=f"generated (seq_len={seq_len}, seed {data_seed})", horizon=1,
    )
    return DataBundle(info, ArraySplit(x[tr], y[tr]), ArraySplit(x[va], y[va]), ArraySplit(x[te], y[te]))


COPY_BLANK = "_"
COPY_DELIMITER = ":"


def copy_memory_vocab(n_symbols: int = 8):
    """The copy task's vocab: specials, ``_`` (blank), ``:`` (delimiter), then symbols ``1``..``n``."""
    from archlab.data.text import Vocab

    if not 1 <= n_symbols <= 9:
        raise ArchlabError(f"copy_memory takes 1..9 symbols (the digits 1-9), got n_symbols={n_symbols}")
    return Vocab.from_tokens([COPY_BLANK, COPY_DELIMITER, *[str(i) for i in range(1, n_symbols + 1)]], "char")


def make_copy_memory(
    n_samples: int, seq_len: int, *, copy_len: int = 10, n_symbols: int = 8, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """The copy-memory task in :func:`copy_memory_vocab`'s ids: x, y long (N, seq_len + 2 * copy_len).

    x = ``copy_len`` random symbols, ``seq_len - 1`` blanks, the delimiter, ``copy_len`` blanks;
    y = -100 everywhere except the last ``copy_len`` positions, which hold the symbols.
    """
    if seq_len < 1 or copy_len < 1:
        raise ArchlabError(f"copy_memory needs seq_len >= 1 and copy_len >= 1, got {seq_len}, {copy_len}")
    vocab = copy_memory_vocab(n_symbols)
    blank, delim, first = vocab.stoi[COPY_BLANK], vocab.stoi[COPY_DELIMITER], vocab.stoi["1"]
    rng = np.random.default_rng(seed)
    total = seq_len + 2 * copy_len
    symbols = rng.integers(first, first + n_symbols, (n_samples, copy_len))
    x = np.full((n_samples, total), blank, dtype=np.int64)
    x[:, :copy_len] = symbols
    x[:, copy_len + seq_len - 1] = delim
    y = np.full((n_samples, total), IGNORE_INDEX, dtype=np.int64)
    y[:, -copy_len:] = symbols
    return torch.from_numpy(x), torch.from_numpy(y)


@register_dataset("copy_memory", family="text", size="10000",
                  description="the copy-memory task: recall 10 symbols after a long blank gap")
def copy_memory(root: Path | None = None, download: bool = True, *, seq_len: int = 50, n_samples: int = 10000,
                copy_len: int = 10, n_symbols: int = 8, data_seed: int = 0) -> DataBundle:
    """The copy-memory task (Hochreiter & Schmidhuber 1997; the form of Arjovsky et al. 2016,
    "Unitary Evolution Recurrent Neural Networks", https://arxiv.org/abs/1511.06464).

    Kind ``lm``: x long (N, T) with T = seq_len + 2 * copy_len: ``copy_len`` symbols from ``1``..
    ``n_symbols``, a gap of ``seq_len - 1`` blanks, the delimiter ``:``, then ``copy_len`` blanks
    during which the model must output the symbols; y long (N, T) is -100 (ignored) except at
    those last ``copy_len`` positions. Guessing scores cross-entropy log(n_symbols) on them.
    ``info.vocab`` is a 14-token char vocab (specials, ``_``, ``:``, ``1``..``8``). Splits
    80/10/10 at random (seeded).

    Deviations from the paper: the loss covers only the recall positions (-100 elsewhere), not
    every step's blank, so the memoryless baseline is log(8) rather than
    ``10 log 8 / (T + 20)``.
    """
    x, y = make_copy_memory(n_samples, seq_len, copy_len=copy_len, n_symbols=n_symbols, seed=data_seed)
    tr, va, te = (torch.from_numpy(i) for i in _random_splits(n_samples, data_seed))
    info = DatasetInfo(
        name="copy_memory", kind="lm", input_shape=(x.shape[1],), vocab=copy_memory_vocab(n_symbols),
        source=f"generated (seq_len={seq_len}, copy_len={copy_len}, seed {data_seed})",
    )
    return DataBundle(info, ArraySplit(x[tr], y[tr]), ArraySplit(x[va], y[va]), ArraySplit(x[te], y[te]))
