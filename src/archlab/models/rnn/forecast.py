"""Recurrent time-series forecasters (direct multi-step) and the baselines they must beat.

A window of the last L observations of F features (scaled with the training split's mean and
std) is read by a recurrent network; its final hidden state is mapped in one linear layer to the
next H values of feature 0 (the *direct* multi-step strategy: all H outputs at once, no feeding
back of predictions)::

    h_t = RNN(x_1..x_t)              # x (B, L, F) -> (B, L, hidden_dim), stacked layers
    y^  = W h_L + b                  # (B, H)

Baselines (plain functions and a module, no training loop; :func:`baseline_forecasts` scores both
on a bundle's test split in the data's raw units):

    naive    y^_{t+k} = x_t (feature 0's last value, repeated for every step k = 1..H): the
             persistence forecast, the benchmark every forecaster has to beat.
    linear   y^ = [vec(x), 1] W, a linear autoregression on the flattened window, fitted in
             closed form by least squares (``torch.linalg.lstsq``) on the training windows.

Errors: RMSE = sqrt(mean (y^ - y)^2), MAE = mean |y^ - y| over every window and step; in raw
units they are the scaled errors times feature 0's std (the mean cancels).

Papers:
    S. Hochreiter, J. Schmidhuber, "Long Short-Term Memory", Neural Computation 9(8), 1997.
    F. A. Gers, D. Eck, J. Schmidhuber, "Applying LSTM to Time Series Predictable through
    Time-Window Approaches", ICANN 2001. https://doi.org/10.1007/3-540-44668-0_93 (LSTM on
    Mackey-Glass, against linear and window baselines)
    S. Ben Taieb, G. Bontempi, A. Atiya, A. Sorjamaa, "A review and comparison of strategies for
    multi-step ahead time series forecasting", Expert Systems with Applications 39(8), 2012.
    https://arxiv.org/abs/1108.3259 (the direct strategy)

Registered variants: ``lstm_forecaster``, ``gru_forecaster``, ``rnn_forecaster`` (Elman).

Deviations from the paper:
    - Gers et al. predicted one step ahead and iterated; here the default is the direct strategy
      (one output per future step, trained jointly), which does not compound its own errors.
    - The linear baseline is fitted by ordinary least squares on all training windows (no
      regularisation), the textbook AR(L) model on the window rather than a tuned ARIMA.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
from torch import nn

from archlab.models.rnn.layers import make_rnn
from archlab.registry import register_model

__all__ = [
    "RNNForecaster",
    "RNNForecasterConfig",
    "LinearForecaster",
    "naive_forecast",
    "forecast_errors",
    "baseline_forecasts",
]


@dataclass
class RNNForecasterConfig:
    """Options of :class:`RNNForecaster`.

    Attributes:
        in_features: features per time step F (filled from the dataset).
        horizon: future steps predicted H (filled from the dataset).
        window: the window length L of ``example_input`` (any length runs).
        hidden_dim: hidden units per layer.
        num_layers: stacked recurrent layers.
        cell: ``rnn`` (Elman, tanh), ``lstm`` or ``gru``.
        dropout: between stacked layers and before the output layer.
        impl: ``fast`` (torch's fused kernels) or ``cells`` (the gate-by-gate cells).
    """

    in_features: int = 1
    horizon: int = 1
    window: int = 32
    hidden_dim: int = 64
    num_layers: int = 1
    cell: Literal["rnn", "lstm", "gru"] = "lstm"
    dropout: float = 0.0
    impl: Literal["fast", "cells"] = "fast"

    TINY: ClassVar[dict[str, Any]] = {"in_features": 2, "horizon": 3, "window": 6, "hidden_dim": 8}

    def __post_init__(self) -> None:
        if min(self.in_features, self.horizon, self.window, self.hidden_dim, self.num_layers) < 1:
            raise ValueError("in_features, horizon, window, hidden_dim and num_layers must be >= 1")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")


class RNNForecaster(nn.Module):
    """RNN/LSTM/GRU over a window, then a linear map of the last hidden state to the next H values.

    Args:
        in_features: features per step F.
        horizon: future steps H.
        hidden_dim, num_layers, cell, dropout, impl: as in :class:`RNNForecasterConfig`.
        window: the window length of ``example_input``.

    Shapes:
        x: (B, L, F) float (scaled). Returns (B, H): the scaled future values of feature 0.
    """

    task = "forecast"

    def __init__(
        self,
        in_features: int,
        horizon: int,
        *,
        hidden_dim: int = 64,
        num_layers: int = 1,
        cell: str = "lstm",
        dropout: float = 0.0,
        impl: str = "fast",
        window: int = 32,
    ) -> None:
        super().__init__()
        self.in_features, self.horizon, self.window = in_features, horizon, window
        self.rnn = make_rnn(cell, in_features, hidden_dim, num_layers=num_layers, dropout=dropout, impl=impl)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_dim, horizon)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3 or x.shape[-1] != self.in_features:
            raise ValueError(f"{type(self).__name__} expects windows (B, L, {self.in_features}), got "
                             f"{tuple(x.shape)}")
        out, _ = self.rnn(x)  # (B, L, hidden)
        return self.head(self.dropout(out[:, -1]))  # (B, H)

    def example_input(self, batch_size: int = 1, seed: int = 0) -> torch.Tensor:
        """Random scaled windows (B, window, in_features)."""
        g = torch.Generator().manual_seed(seed)
        return torch.randn(batch_size, self.window, self.in_features, generator=g).to(self.head.weight.device)


# ----------------------------------------------------------------------------------------------
# baselines


def naive_forecast(x: torch.Tensor, horizon: int) -> torch.Tensor:
    """Persistence: feature 0's last value of each window (B, L, F), repeated H times -> (B, H)."""
    return x[:, -1, :1].expand(-1, horizon).clone()


class LinearForecaster(nn.Module):
    """Linear autoregression on the flattened window, ``y^ = [vec(x), 1] W``, fitted by least squares.

    Args:
        window: window length L.
        in_features: features per step F.
        horizon: future steps H.

    Shapes:
        x: (B, L, F). Returns (B, H).
    """

    def __init__(self, window: int, in_features: int, horizon: int) -> None:
        super().__init__()
        self.linear = nn.Linear(window * in_features, horizon)

    @torch.no_grad()
    def fit(self, x: torch.Tensor, y: torch.Tensor) -> LinearForecaster:
        """Ordinary least squares on windows ``x`` (N, L, F) and targets ``y`` (N, H); returns self."""
        a = torch.cat([x.flatten(1).double(), x.new_ones(len(x), 1).double()], dim=1)  # (N, L*F + 1)
        w = torch.linalg.lstsq(a.cpu(), y.double().cpu()).solution  # (L*F + 1, H)
        self.linear.weight.copy_(w[:-1].T)
        self.linear.bias.copy_(w[-1])
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.flatten(1))  # (B, L*F) -> (B, H)


def forecast_errors(pred: torch.Tensor, target: torch.Tensor, scale: float = 1.0) -> tuple[float, float]:
    """(RMSE, MAE) of ``pred`` against ``target`` (same shape), both multiplied by ``scale``."""
    diff = pred.double() - target.double()
    return math.sqrt(diff.pow(2).mean().item()) * scale, diff.abs().mean().item() * scale


def baseline_forecasts(bundle: Any, split: str = "test") -> dict[str, tuple[float, float]]:
    """RMSE and MAE, in raw units, of the naive and linear baselines on a series bundle's ``split``.

    The linear model is fitted on ``bundle.train``. Raw units: the errors in scaled units times
    feature 0's std (``bundle.info.std[0]``; 1 when the data has no scaling).

    Returns:
        ``{"naive": (rmse, mae), "linear": (rmse, mae)}``.
    """
    part = getattr(bundle, split, None)
    if part is None:
        raise ValueError(f"{bundle.info.name} has no {split!r} split")
    x_tr, y_tr = bundle.train.x.float(), bundle.train.y.float()
    x, y = part.x.float(), part.y.float()
    if x.dim() != 3 or y.dim() != 2:
        raise ValueError(f"baseline_forecasts needs series windows (N, L, F) -> (N, H), got {tuple(x.shape)} "
                         f"-> {tuple(y.shape)}")
    std = float(bundle.info.std[0]) if getattr(bundle.info, "std", None) else 1.0
    linear = LinearForecaster(x.shape[1], x.shape[2], y.shape[1]).fit(x_tr, y_tr)
    with torch.no_grad():
        return {
            "naive": forecast_errors(naive_forecast(x, y.shape[1]), y, std),
            "linear": forecast_errors(linear(x), y, std),
        }


# ----------------------------------------------------------------------------------------------
# registered variants


def _build(cfg: RNNForecasterConfig) -> RNNForecaster:
    return RNNForecaster(cfg.in_features, cfg.horizon, hidden_dim=cfg.hidden_dim, num_layers=cfg.num_layers,
                         cell=cfg.cell, dropout=cfg.dropout, impl=cfg.impl, window=cfg.window)


@register_model("lstm_forecaster", family="rnn", config=RNNForecasterConfig, cell="lstm")
def lstm_forecaster(cfg: RNNForecasterConfig) -> RNNForecaster:
    """LSTM over a window of a time series, direct multi-step forecast of the next H values."""
    return _build(cfg)


@register_model("gru_forecaster", family="rnn", config=RNNForecasterConfig, cell="gru")
def gru_forecaster(cfg: RNNForecasterConfig) -> RNNForecaster:
    """GRU over a window of a time series, direct multi-step forecast of the next H values."""
    return _build(cfg)


@register_model("rnn_forecaster", family="rnn", config=RNNForecasterConfig, cell="rnn")
def rnn_forecaster(cfg: RNNForecasterConfig) -> RNNForecaster:
    """Elman RNN over a window of a time series, direct multi-step forecast of the next H values."""
    return _build(cfg)
