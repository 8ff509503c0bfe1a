r"""Optimizers, learning-rate schedules, gradient clipping and early stopping, in NumPy.

The update rules are exactly those of ``torch.optim`` (same order of operations, same defaults),
so a from-scratch model trained here follows the same trajectory as its PyTorch twin; the tests
check every optimizer and schedule against torch to 1e-12 on float64.

Contract (the same as torch's): an optimizer takes an iterable of *parameter objects*, anything
with ``.data`` (an ``np.ndarray``, updated **in place**) and ``.grad`` (an ``np.ndarray`` of the
same shape, or ``None`` to skip that parameter this step); or a list of *parameter groups*, dicts
with ``"params"`` and per-group hyperparameters. :class:`ArrayParam` is the smallest such object.

Notation in the docstrings: :math:`\theta_t` parameters, :math:`g_t` the gradient at step
:math:`t` (after L2 weight decay :math:`g_t \leftarrow g_t + \lambda\theta_{t-1}` where the
optimizer has it), :math:`\gamma` the learning rate, :math:`\epsilon` a small constant.

============  ==============================================  ======================================
Optimizer     Update                                          Paper
============  ==============================================  ======================================
SGD           :math:`\theta \leftarrow \theta - \gamma g`     Robbins & Monro 1951
  momentum    :math:`b \leftarrow \mu b + (1-\tau) g`         Polyak 1964
  nesterov    :math:`g \leftarrow g + \mu b`                  Nesterov 1983; Sutskever et al. 2013
Adagrad       :math:`s \mathrel{+}= g^2`                      Duchi, Hazan & Singer 2011
RMSprop       :math:`v \leftarrow \alpha v + (1-\alpha) g^2`  Tieleman & Hinton 2012 (lecture 6e)
Adam          bias-corrected moments :math:`m, v`             Kingma & Ba 2015
AdamW         Adam + decoupled decay                          Loshchilov & Hutter 2019
============  ==============================================  ======================================

Schedules (:class:`StepLR`, :class:`ExponentialLR`, :class:`CosineAnnealingLR` (Loshchilov &
Hutter 2017, SGDR, without restarts), :class:`LinearWarmup`, :class:`WarmupCosine`,
:class:`LambdaLR`) set ``group["lr"]`` once per ``step()``, like ``torch.optim.lr_scheduler``.

Checkpoints: :meth:`Optimizer.state_dict` is a plain dict of NumPy arrays, ints and floats;
:func:`state_dict_to_arrays` splits it into ``{name: array}`` (for ``safetensors.numpy``) and a
JSON-able dict, and :func:`state_dict_from_arrays` joins them back.

This module never imports torch.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np

__all__ = [
    "ArrayParam",
    "Optimizer",
    "SGD",
    "Adagrad",
    "RMSprop",
    "Adam",
    "AdamW",
    "LRScheduler",
    "LambdaLR",
    "StepLR",
    "ExponentialLR",
    "CosineAnnealingLR",
    "LinearWarmup",
    "WarmupCosine",
    "clip_grad_norm",
    "clip_grad_value",
    "EarlyStopping",
    "state_dict_to_arrays",
    "state_dict_from_arrays",
]


# --------------------------------------------------------------------------------------------------
# Parameters
# --------------------------------------------------------------------------------------------------


class ArrayParam:
    """A NumPy array and its gradient: the smallest object the optimizers accept.

    Args:
        data: the values; a floating-point array is kept as is (not copied), so the optimizer
            updates the caller's array; anything else is converted to float64.
        name: an optional label for messages and plots.
    """

    __slots__ = ("data", "grad", "name")

    def __init__(self, data: Any, name: str = "") -> None:
        arr = np.asarray(data)
        self.data: np.ndarray = arr if np.issubdtype(arr.dtype, np.floating) else arr.astype(np.float64)
        self.grad: np.ndarray | None = None
        self.name = name

    def __repr__(self) -> str:
        label = f"{self.name!r}, " if self.name else ""
        return f"ArrayParam({label}shape={self.data.shape}, dtype={self.data.dtype})"


def _as_param_list(params: Any) -> list[Any]:
    if hasattr(params, "data") and hasattr(params, "grad"):
        return [params]
    if isinstance(params, np.ndarray):
        raise TypeError(
            "got a bare np.ndarray; optimizers need parameter objects with .data and .grad "
            "(wrap it: ArrayParam(array))"
        )
    return list(params)


def _check_param(p: Any) -> None:
    if not (hasattr(p, "data") and hasattr(p, "grad")):
        raise TypeError(
            f"{type(p).__name__} is not a parameter: it needs .data (np.ndarray) and .grad "
            "(np.ndarray or None); wrap arrays with ArrayParam(array)"
        )
    if not isinstance(p.data, np.ndarray):
        raise TypeError(f"parameter .data must be an np.ndarray, got {type(p.data).__name__}")


# --------------------------------------------------------------------------------------------------
# Optimizer base
# --------------------------------------------------------------------------------------------------


class Optimizer:
    """Base class: parameter groups, per-parameter state, ``zero_grad``, ``step``, checkpoints.

    Subclasses implement :meth:`_update` for one parameter; :meth:`step` calls it for every
    parameter whose ``.grad`` is not ``None``, with that parameter's group and state.

    Args:
        params: parameter objects (``.data``, ``.grad``), or a list of dicts ``{"params": [...],
            "lr": ..., ...}`` whose keys override ``defaults`` for that group.
        defaults: the hyperparameters of every group that does not set its own.

    Attributes:
        param_groups: list of dicts, each with ``"params"`` and every hyperparameter (``"lr"``...).
        state: per-parameter state (``"step"``, moment buffers...), keyed by the parameter's index
            in the order the parameters were given (across groups); :meth:`state_for` looks one
            up by parameter object.
    """

    def __init__(self, params: Iterable[Any] | Iterable[dict[str, Any]], defaults: Mapping[str, Any]) -> None:
        self.defaults = dict(defaults)
        self.param_groups: list[dict[str, Any]] = []
        self.state: dict[int, dict[str, Any]] = {}
        self._index: dict[int, int] = {}  # id(param) -> flat index
        groups = _as_param_list(params)
        if not groups:
            raise ValueError("optimizer got an empty parameter list; pass the model's parameters")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, param_group: Mapping[str, Any]) -> None:
        """Add a group of parameters with its own hyperparameters (e.g. a new layer to fine-tune)."""
        if not isinstance(param_group, Mapping) or "params" not in param_group:
            raise TypeError("a parameter group is a dict with a 'params' key")
        group = dict(param_group)
        params = _as_param_list(group["params"])
        seen: set[int] = set()
        for p in params:
            _check_param(p)
            if id(p) in self._index or id(p) in seen:
                raise ValueError("a parameter appears twice (in one group or in two groups); pass it once")
            seen.add(id(p))
        for key, value in self.defaults.items():
            group.setdefault(key, value)
        if "lr" not in group:
            raise ValueError("every parameter group needs an 'lr'")
        for p in params:
            self._index[id(p)] = len(self._index)
        group["params"] = params
        self.param_groups.append(group)

    def state_for(self, param: Any) -> dict[str, Any]:
        """The state dict of one parameter object (empty before its first update)."""
        try:
            return self.state.setdefault(self._index[id(param)], {})
        except KeyError:
            raise KeyError("this parameter is not managed by this optimizer") from None

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear gradients: set ``.grad = None`` (torch's default), or fill it with zeros in place."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    p.grad[...] = 0

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update every parameter that has a gradient; ``closure`` re-evaluates and returns the loss."""
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = np.asarray(p.grad, dtype=p.data.dtype)
                if grad.shape != p.data.shape:
                    raise ValueError(
                        f"gradient of shape {grad.shape} for a parameter of shape {p.data.shape}; "
                        "the gradient must have the parameter's shape"
                    )
                self._update(p.data, grad, self.state.setdefault(self._index[id(p)], {}), group)
        return loss

    def _update(self, param: np.ndarray, grad: np.ndarray, state: dict[str, Any], group: dict[str, Any]) -> None:
        raise NotImplementedError

    # ---- checkpoints ----------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """A copy of the state: ``{"state": {index: {name: array | number}}, "param_groups": [...]}``.

        Each group lists its hyperparameters and ``"params"``, the indices of its parameters.
        Arrays are copies, so later steps do not change a saved state dict.
        """
        groups = []
        for group in self.param_groups:
            g = {k: (list(v) if isinstance(v, tuple) else v) for k, v in group.items() if k != "params"}
            g["params"] = [self._index[id(p)] for p in group["params"]]
            groups.append(g)
        state = {
            int(i): {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in s.items()}
            for i, s in self.state.items()
            if s
        }
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore hyperparameters and state saved by :meth:`state_dict` (keys may be strings, from JSON)."""
        groups = list(state_dict["param_groups"])
        if len(groups) != len(self.param_groups):
            raise ValueError(
                f"the state dict has {len(groups)} parameter groups, this optimizer {len(self.param_groups)}"
            )
        params_by_index: dict[int, Any] = {}
        for mine, saved in zip(self.param_groups, groups):
            if len(saved["params"]) != len(mine["params"]):
                raise ValueError(
                    f"a saved group has {len(saved['params'])} parameters, the matching group here "
                    f"{len(mine['params'])}; load into an optimizer built on the same parameters"
                )
            for key, value in saved.items():
                if key == "params":
                    continue
                if isinstance(mine.get(key), tuple) and isinstance(value, list):
                    value = tuple(value)  # betas come back from JSON as lists
                mine[key] = value
            for saved_index, p in zip(saved["params"], mine["params"]):
                params_by_index[int(saved_index)] = p
        self.state = {}
        for key, saved_state in state_dict["state"].items():
            p = params_by_index[int(key)]
            restored: dict[str, Any] = {}
            for name, value in saved_state.items():
                if isinstance(value, np.ndarray) or isinstance(value, list):
                    value = np.array(value, dtype=p.data.dtype)  # a copy, in the parameter's dtype
                    if value.shape != p.data.shape:
                        raise ValueError(
                            f"state {name!r} of parameter {key} has shape {value.shape}, "
                            f"the parameter {p.data.shape}"
                        )
                restored[name] = value
            self.state[self._index[id(p)]] = restored

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for key in sorted(k for k in group if k != "params"):
                lines.append(f"    {key}: {group[key]}")
        lines.append(")")
        return "\n".join(lines)


def _check(cond: bool, msg: str) -> None:
    if not cond:
        raise ValueError(msg)


# --------------------------------------------------------------------------------------------------
# Optimizers
# --------------------------------------------------------------------------------------------------


class SGD(Optimizer):
    r"""Stochastic gradient descent, with optional (Nesterov) momentum and L2 weight decay.

    .. math::
        g_t &\leftarrow \nabla f(\theta_{t-1}) + \lambda \theta_{t-1} \\
        b_t &\leftarrow \mu b_{t-1} + (1 - \tau) g_t \quad (b_1 = g_1) \\
        g_t &\leftarrow g_t + \mu b_t \ \text{(nesterov)} \quad\text{or}\quad g_t \leftarrow b_t \\
        \theta_t &\leftarrow \theta_{t-1} - \gamma g_t

    Papers: Robbins & Monro, "A Stochastic Approximation Method" (1951); Polyak, "Some methods of
    speeding up the convergence of iteration methods" (1964, heavy ball momentum); Nesterov, "A
    method for solving the convex programming problem with convergence rate O(1/k^2)" (1983), in
    the form of Sutskever et al., "On the importance of initialization and momentum in deep
    learning" (ICML 2013).

    Args:
        params: parameter objects or groups.
        lr: learning rate :math:`\gamma`.
        momentum: :math:`\mu`; 0 disables the buffer.
        dampening: :math:`\tau`, the fraction of the new gradient left out of the buffer.
        weight_decay: :math:`\lambda` (L2 penalty added to the gradient).
        nesterov: look-ahead momentum; needs ``momentum > 0`` and ``dampening == 0``.

    Deviations from the papers (torch's, kept for equality): the buffer starts at the first
    gradient rather than at zero, and the learning rate multiplies the whole buffer (Sutskever et
    al. put it inside); the two agree for a constant learning rate.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
    ) -> None:
        _check(lr >= 0.0, f"invalid learning rate {lr}; it must be >= 0")
        _check(momentum >= 0.0, f"invalid momentum {momentum}; it must be >= 0")
        _check(weight_decay >= 0.0, f"invalid weight_decay {weight_decay}; it must be >= 0")
        _check(not nesterov or (momentum > 0 and dampening == 0),
               "nesterov momentum needs momentum > 0 and dampening = 0")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov))

    def _update(self, param: np.ndarray, grad: np.ndarray, state: dict[str, Any], group: dict[str, Any]) -> None:
        lr, momentum, wd = group["lr"], group["momentum"], group["weight_decay"]
        d_p = grad + wd * param if wd != 0 else grad
        if momentum != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = np.array(d_p, copy=True)
            else:
                buf *= momentum
                buf += (1 - group["dampening"]) * d_p
            d_p = d_p + momentum * buf if group["nesterov"] else buf
        param += -lr * d_p


class Adagrad(Optimizer):
    r"""Adagrad: per-coordinate learning rates shrinking with the sum of squared gradients.

    .. math::
        \tilde\gamma_t &= \gamma / (1 + (t - 1)\,\eta) \\
        s_t &\leftarrow s_{t-1} + g_t^2 \quad (s_0 = \text{initial\_accumulator\_value}) \\
        \theta_t &\leftarrow \theta_{t-1} - \tilde\gamma_t\, g_t / (\sqrt{s_t} + \epsilon)

    Paper: Duchi, Hazan & Singer, "Adaptive Subgradient Methods for Online Learning and Stochastic
    Optimization" (JMLR 2011).

    Args:
        params: parameter objects or groups.
        lr: :math:`\gamma`.
        lr_decay: :math:`\eta`.
        weight_decay: L2 penalty :math:`\lambda`, added to the gradient.
        initial_accumulator_value: :math:`s_0`.
        eps: :math:`\epsilon`, added to :math:`\sqrt{s_t}`.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-2,
        lr_decay: float = 0.0,
        weight_decay: float = 0.0,
        initial_accumulator_value: float = 0.0,
        eps: float = 1e-10,
    ) -> None:
        _check(lr >= 0.0, f"invalid learning rate {lr}; it must be >= 0")
        _check(lr_decay >= 0.0, f"invalid lr_decay {lr_decay}; it must be >= 0")
        _check(weight_decay >= 0.0, f"invalid weight_decay {weight_decay}; it must be >= 0")
        _check(initial_accumulator_value >= 0.0,
               f"invalid initial_accumulator_value {initial_accumulator_value}; it must be >= 0")
        _check(eps >= 0.0, f"invalid eps {eps}; it must be >= 0")
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                                      initial_accumulator_value=initial_accumulator_value, eps=eps))

    def _update(self, param: np.ndarray, grad: np.ndarray, state: dict[str, Any], group: dict[str, Any]) -> None:
        if not state:
            state["step"] = 0
            state["sum"] = np.full_like(param, group["initial_accumulator_value"])
        state["step"] += 1
        wd = group["weight_decay"]
        g = grad + wd * param if wd != 0 else grad
        clr = group["lr"] / (1 + (state["step"] - 1) * group["lr_decay"])
        state["sum"] += g * g
        std = np.sqrt(state["sum"]) + group["eps"]
        param += -clr * (g / std)


class RMSprop(Optimizer):
    r"""RMSprop: divide the gradient by a running root mean square of recent gradients.

    .. math::
        v_t &\leftarrow \alpha v_{t-1} + (1 - \alpha) g_t^2 \\
        \bar g_t &\leftarrow \alpha \bar g_{t-1} + (1 - \alpha) g_t, \quad
            \tilde v_t = v_t - \bar g_t^2 \ \text{(centered)}, \ \text{else } \tilde v_t = v_t \\
        b_t &\leftarrow \mu b_{t-1} + g_t / (\sqrt{\tilde v_t} + \epsilon), \quad
            \theta_t \leftarrow \theta_{t-1} - \gamma b_t \ \text{(momentum)} \\
        \theta_t &\leftarrow \theta_{t-1} - \gamma g_t / (\sqrt{\tilde v_t} + \epsilon)
            \ \text{(no momentum)}

    Source: Tieleman & Hinton, "Lecture 6.5 - rmsprop", COURSERA: Neural Networks for Machine
    Learning (2012); the centered variant is from Graves, "Generating Sequences With Recurrent
    Neural Networks" (2013).

    Args:
        params: parameter objects or groups.
        lr: :math:`\gamma`.
        alpha: smoothing constant :math:`\alpha`.
        eps: :math:`\epsilon`, added to the root mean square.
        weight_decay: L2 penalty :math:`\lambda`, added to the gradient.
        momentum: :math:`\mu`; 0 disables the buffer.
        centered: normalise by an estimate of the gradient's variance instead of its second moment.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
        centered: bool = False,
    ) -> None:
        _check(lr >= 0.0, f"invalid learning rate {lr}; it must be >= 0")
        _check(alpha >= 0.0, f"invalid alpha {alpha}; it must be >= 0")
        _check(eps >= 0.0, f"invalid eps {eps}; it must be >= 0")
        _check(weight_decay >= 0.0, f"invalid weight_decay {weight_decay}; it must be >= 0")
        _check(momentum >= 0.0, f"invalid momentum {momentum}; it must be >= 0")
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                      momentum=momentum, centered=centered))

    def _update(self, param: np.ndarray, grad: np.ndarray, state: dict[str, Any], group: dict[str, Any]) -> None:
        alpha, momentum = group["alpha"], group["momentum"]
        if not state:
            state["step"] = 0
            state["square_avg"] = np.zeros_like(param)
            if momentum > 0:
                state["momentum_buffer"] = np.zeros_like(param)
            if group["centered"]:
                state["grad_avg"] = np.zeros_like(param)
        state["step"] += 1
        wd = group["weight_decay"]
        g = grad + wd * param if wd != 0 else grad
        square_avg = state["square_avg"]
        square_avg *= alpha
        square_avg += (1 - alpha) * (g * g)
        if group["centered"]:
            grad_avg = state["grad_avg"]
            grad_avg += (1 - alpha) * (g - grad_avg)
            avg = np.sqrt(square_avg - grad_avg * grad_avg)
        else:
            avg = np.sqrt(square_avg)
        avg += group["eps"]
        if momentum > 0:
            buf = state["momentum_buffer"]
            buf *= momentum
            buf += g / avg
            param += -group["lr"] * buf
        else:
            param += -group["lr"] * (g / avg)


class Adam(Optimizer):
    r"""Adam: momentum on the gradient, RMS normalisation, both bias-corrected.

    .. math::
        m_t &\leftarrow \beta_1 m_{t-1} + (1 - \beta_1) g_t, \qquad
        v_t \leftarrow \beta_2 v_{t-1} + (1 - \beta_2) g_t^2 \\
        \hat v_t &= \max(\hat v_{t-1}, v_t) \ \text{(amsgrad)}, \ \text{else } \hat v_t = v_t \\
        \theta_t &\leftarrow \theta_{t-1} - \frac{\gamma}{1 - \beta_1^t}\,
            \frac{m_t}{\sqrt{\hat v_t} / \sqrt{1 - \beta_2^t} + \epsilon}

    With ``weight_decay`` :math:`\lambda`, Adam adds :math:`\lambda\theta_{t-1}` to the gradient
    (L2, which the RMS normalisation then rescales); AdamW instead shrinks the weights directly.

    Papers: Kingma & Ba, "Adam: A Method for Stochastic Optimization" (ICLR 2015); AMSGrad: Reddi,
    Kale & Kumar, "On the Convergence of Adam and Beyond" (ICLR 2018).

    Args:
        params: parameter objects or groups.
        lr: :math:`\gamma`.
        betas: :math:`(\beta_1, \beta_2)`.
        eps: :math:`\epsilon`, added after the bias correction (torch's placement; the paper adds
            it to :math:`\sqrt{\hat v_t}` with the correction folded into the step size, which
            differs only in where :math:`\epsilon` sits).
        weight_decay: :math:`\lambda`.
        amsgrad: normalise by the running maximum of :math:`v_t`.
        decoupled_weight_decay: apply weight decay as AdamW does (:class:`AdamW` sets this).
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
        decoupled_weight_decay: bool = False,
    ) -> None:
        _check(lr >= 0.0, f"invalid learning rate {lr}; it must be >= 0")
        _check(eps >= 0.0, f"invalid eps {eps}; it must be >= 0")
        _check(0.0 <= betas[0] < 1.0, f"invalid beta1 {betas[0]}; it must be in [0, 1)")
        _check(0.0 <= betas[1] < 1.0, f"invalid beta2 {betas[1]}; it must be in [0, 1)")
        _check(weight_decay >= 0.0, f"invalid weight_decay {weight_decay}; it must be >= 0")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                                      amsgrad=amsgrad, decoupled_weight_decay=decoupled_weight_decay))

    def _update(self, param: np.ndarray, grad: np.ndarray, state: dict[str, Any], group: dict[str, Any]) -> None:
        lr, wd, eps = group["lr"], group["weight_decay"], group["eps"]
        beta1, beta2 = group["betas"]
        if not state:
            state["step"] = 0
            state["exp_avg"] = np.zeros_like(param)
            state["exp_avg_sq"] = np.zeros_like(param)
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = np.zeros_like(param)
        state["step"] += 1
        step = state["step"]
        g = grad
        if wd != 0:
            if group["decoupled_weight_decay"]:
                param *= 1 - lr * wd
            else:
                g = grad + wd * param
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        exp_avg += (1 - beta1) * (g - exp_avg)  # torch's lerp_
        exp_avg_sq *= beta2
        exp_avg_sq += (1 - beta2) * (g * g)
        bias_correction1 = 1 - beta1**step
        bias_correction2_sqrt = (1 - beta2**step) ** 0.5
        if group["amsgrad"]:
            np.maximum(state["max_exp_avg_sq"], exp_avg_sq, out=state["max_exp_avg_sq"])
            denom = np.sqrt(state["max_exp_avg_sq"]) / bias_correction2_sqrt + eps
        else:
            denom = np.sqrt(exp_avg_sq) / bias_correction2_sqrt + eps
        param += -(lr / bias_correction1) * (exp_avg / denom)


class AdamW(Adam):
    r"""AdamW: Adam with weight decay decoupled from the gradient.

    .. math::
        \theta_{t-1} \leftarrow \theta_{t-1} (1 - \gamma\lambda), \quad \text{then the Adam step}
        \ \text{on the raw gradient } g_t.

    The decay shrinks every weight by the same factor, whatever its gradient history, which the
    L2 penalty of :class:`Adam` does not (there the RMS normalisation divides it away).

    Paper: Loshchilov & Hutter, "Decoupled Weight Decay Regularization" (ICLR 2019).

    Args:
        params: parameter objects or groups.
        lr: :math:`\gamma`.
        betas: :math:`(\beta_1, \beta_2)`.
        eps: :math:`\epsilon`.
        weight_decay: :math:`\lambda`; the decay is scaled by the (scheduled) learning rate, as in
            torch (the paper scales it by the schedule multiplier only).
        amsgrad: normalise by the running maximum of :math:`v_t`.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
    ) -> None:
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         amsgrad=amsgrad, decoupled_weight_decay=True)


# --------------------------------------------------------------------------------------------------
# Learning-rate schedules
# --------------------------------------------------------------------------------------------------


class LRScheduler:
    """Base class: sets each group's ``"lr"`` to ``lr_at(base_lr, t)`` once per :meth:`step`.

    As in torch, building a scheduler records ``group["initial_lr"]`` (the base rate) and applies
    step 0; each :meth:`step` then advances ``last_epoch`` by one. Call it after
    ``optimizer.step()``, once per iteration or once per epoch: ``t`` counts calls, whatever they
    stand for.

    To resume, build the optimizer and the scheduler first, then load both state dicts (as in
    torch: building a scheduler writes the step-0 rate into the groups).

    Schedules here are closed forms of ``t`` and the base rate, so they do not compose with a
    second scheduler on the same optimizer (torch's chainable ones do); wrap both in a
    :class:`LambdaLR` instead.

    Args:
        optimizer: the :class:`Optimizer` whose ``param_groups`` it drives.
        last_epoch: the index of the last step taken; -1 starts afresh, a larger value resumes
            (then every group must already hold ``"initial_lr"``).
    """

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(optimizer).__name__} is not an archlab.scratch.optim.Optimizer")
        self.optimizer = optimizer
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        else:
            for i, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise KeyError(f"param group {i} has no 'initial_lr'; resume with last_epoch=-1 "
                                   "or load the scheduler's state_dict")
        self.base_lrs: list[float] = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._last_lr: list[float] = []
        self.step()

    def lr_at(self, base_lr: float, t: int) -> float:
        """The learning rate at step ``t`` for a group whose base rate is ``base_lr``."""
        raise NotImplementedError

    def get_lr(self) -> list[float]:
        """The learning rates of the current step (``last_epoch``), one per group."""
        return [self.lr_at(base, self.last_epoch) for base in self.base_lrs]

    def step(self) -> None:
        """Advance one step and write the new rates into the optimizer's groups."""
        self.last_epoch += 1
        lrs = self.get_lr()
        for group, lr in zip(self.optimizer.param_groups, lrs):
            group["lr"] = lr
        self._last_lr = list(lrs)

    def get_last_lr(self) -> list[float]:
        """The rates set by the last :meth:`step`, one per group."""
        return list(self._last_lr)

    def state_dict(self) -> dict[str, Any]:
        """Everything but the optimizer (and callables, which cannot be saved)."""
        return {k: (list(v) if isinstance(v, list) else v) for k, v in self.__dict__.items()
                if k != "optimizer" and not callable(v)}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        self.__dict__.update({k: (list(v) if isinstance(v, list) else v) for k, v in state_dict.items()})


class LambdaLR(LRScheduler):
    """``lr = base_lr * lr_lambda(t)``; ``lr_lambda`` may be one function or one per group.

    Args:
        optimizer: the optimizer.
        lr_lambda: ``t -> factor``, or a list of such functions, one per parameter group.
        last_epoch: see :class:`LRScheduler`.
    """

    def __init__(self, optimizer: Optimizer, lr_lambda: Callable[[int], float] | list[Callable[[int], float]],
                 last_epoch: int = -1) -> None:
        n = len(optimizer.param_groups)
        if callable(lr_lambda):
            self.lr_lambdas = [lr_lambda] * n
        else:
            if len(lr_lambda) != n:
                raise ValueError(f"expected {n} lr_lambdas (one per parameter group), got {len(lr_lambda)}")
            self.lr_lambdas = list(lr_lambda)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        return [base * fn(self.last_epoch) for base, fn in zip(self.base_lrs, self.lr_lambdas)]

    def state_dict(self) -> dict[str, Any]:
        return {k: v for k, v in super().state_dict().items() if k != "lr_lambdas"}


class StepLR(LRScheduler):
    r"""Multiply the rate by ``gamma`` every ``step_size`` steps: :math:`\gamma_t = \gamma_0\,
    \text{gamma}^{\lfloor t / \text{step\_size} \rfloor}`.

    Args:
        optimizer: the optimizer.
        step_size: steps between decays.
        gamma: the decay factor.
        last_epoch: see :class:`LRScheduler`.
    """

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1) -> None:
        _check(int(step_size) >= 1, f"step_size must be >= 1, got {step_size}")
        self.step_size, self.gamma = int(step_size), float(gamma)
        super().__init__(optimizer, last_epoch)

    def lr_at(self, base_lr: float, t: int) -> float:
        return base_lr * self.gamma ** (t // self.step_size)


class ExponentialLR(LRScheduler):
    r"""Multiply the rate by ``gamma`` every step: :math:`\gamma_t = \gamma_0\, \text{gamma}^t`.

    Args:
        optimizer: the optimizer.
        gamma: the decay factor per step.
        last_epoch: see :class:`LRScheduler`.
    """

    def __init__(self, optimizer: Optimizer, gamma: float, last_epoch: int = -1) -> None:
        self.gamma = float(gamma)
        super().__init__(optimizer, last_epoch)

    def lr_at(self, base_lr: float, t: int) -> float:
        return base_lr * self.gamma**t


def _cosine(base_lr: float, eta_min: float, t: float, period: float) -> float:
    return eta_min + (base_lr - eta_min) * (1 + math.cos(math.pi * t / period)) / 2


class CosineAnnealingLR(LRScheduler):
    r"""Cosine annealing from the base rate to ``eta_min`` over ``T_max`` steps.

    .. math::
        \gamma_t = \eta_{min} + \tfrac12 (\gamma_0 - \eta_{min})\,(1 + \cos(\pi t / T_{max}))

    Past ``T_max`` the cosine continues (the rate climbs back up over the next ``T_max`` steps),
    as torch's does. Paper: Loshchilov & Hutter, "SGDR: Stochastic Gradient Descent with Warm
    Restarts" (ICLR 2017); this is one SGDR cycle, without the restart.

    Args:
        optimizer: the optimizer.
        T_max: steps from the base rate down to ``eta_min``.
        eta_min: the lowest rate.
        last_epoch: see :class:`LRScheduler`.
    """

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1) -> None:
        _check(T_max >= 1, f"T_max must be >= 1, got {T_max}")
        self.T_max, self.eta_min = T_max, float(eta_min)
        super().__init__(optimizer, last_epoch)

    def lr_at(self, base_lr: float, t: int) -> float:
        return _cosine(base_lr, self.eta_min, t, self.T_max)


def _warmup_factor(t: int, warmup_steps: int, start_factor: float) -> float:
    if warmup_steps <= 0 or t >= warmup_steps:
        return 1.0
    return start_factor + (1.0 - start_factor) * t / warmup_steps


class LinearWarmup(LRScheduler):
    r"""Ramp the rate linearly from ``start_factor * base`` to ``base`` over ``warmup_steps``, then hold.

    .. math::
        \gamma_t = \gamma_0 \left(s + (1 - s) \min(t, N) / N\right)

    The same as ``torch.optim.lr_scheduler.LinearLR(start_factor=s, total_iters=N)``, except that
    ``s = 0`` (the default, as in Hugging Face's warmup schedules) is allowed. Warmup is from Goyal
    et al., "Accurate, Large Minibatch SGD: Training ImageNet in 1 Hour" (2017).

    Args:
        optimizer: the optimizer.
        warmup_steps: :math:`N`, steps to reach the base rate (0: no warmup).
        start_factor: :math:`s`, the fraction of the base rate at step 0.
        last_epoch: see :class:`LRScheduler`.
    """

    def __init__(self, optimizer: Optimizer, warmup_steps: int, start_factor: float = 0.0,
                 last_epoch: int = -1) -> None:
        _check(warmup_steps >= 0, f"warmup_steps must be >= 0, got {warmup_steps}")
        _check(0.0 <= start_factor <= 1.0, f"start_factor must be in [0, 1], got {start_factor}")
        self.warmup_steps, self.start_factor = int(warmup_steps), float(start_factor)
        super().__init__(optimizer, last_epoch)

    def lr_at(self, base_lr: float, t: int) -> float:
        return base_lr * _warmup_factor(t, self.warmup_steps, self.start_factor)


class WarmupCosine(LRScheduler):
    r"""Linear warmup for ``warmup_steps``, then cosine decay to ``eta_min`` at ``total_steps``, then hold.

    .. math::
        \gamma_t = \begin{cases}
          \gamma_0 \left(s + (1 - s)\, t / N\right) & t < N \\
          \eta_{min} + \tfrac12 (\gamma_0 - \eta_{min})
              \left(1 + \cos\left(\pi \frac{t - N}{T - N}\right)\right) & N \le t \le T \\
          \eta_{min} & t > T
        \end{cases}

    The schedule of most Transformer recipes (e.g. nanoGPT, Hugging Face's
    ``get_cosine_schedule_with_warmup``); the cosine part is one SGDR cycle (Loshchilov & Hutter
    2017).

    Args:
        optimizer: the optimizer.
        warmup_steps: :math:`N`.
        total_steps: :math:`T`, the step at which the rate reaches ``eta_min`` (``> warmup_steps``).
        eta_min: the final rate.
        start_factor: :math:`s`, the fraction of the base rate at step 0.
        last_epoch: see :class:`LRScheduler`.
    """

    def __init__(self, optimizer: Optimizer, warmup_steps: int, total_steps: int, eta_min: float = 0.0,
                 start_factor: float = 0.0, last_epoch: int = -1) -> None:
        _check(warmup_steps >= 0, f"warmup_steps must be >= 0, got {warmup_steps}")
        _check(total_steps > warmup_steps,
               f"total_steps ({total_steps}) must be larger than warmup_steps ({warmup_steps})")
        _check(0.0 <= start_factor <= 1.0, f"start_factor must be in [0, 1], got {start_factor}")
        self.warmup_steps, self.total_steps = int(warmup_steps), int(total_steps)
        self.eta_min, self.start_factor = float(eta_min), float(start_factor)
        super().__init__(optimizer, last_epoch)

    def lr_at(self, base_lr: float, t: int) -> float:
        if t < self.warmup_steps:
            return base_lr * _warmup_factor(t, self.warmup_steps, self.start_factor)
        if t > self.total_steps:
            return self.eta_min
        return _cosine(base_lr, self.eta_min, t - self.warmup_steps, self.total_steps - self.warmup_steps)


# --------------------------------------------------------------------------------------------------
# Gradient clipping
# --------------------------------------------------------------------------------------------------


def _grads(params: Any) -> list[Any]:
    return [p for p in _as_param_list(params) if p.grad is not None]


def _scale_grad_(p: Any, factor: float) -> None:
    if isinstance(p.grad, np.ndarray) and p.grad.flags.writeable:
        np.multiply(p.grad, factor, out=p.grad, casting="unsafe")
    else:
        p.grad = np.asarray(p.grad) * factor


def clip_grad_norm(params: Any, max_norm: float, norm_type: float = 2.0,
                   error_if_nonfinite: bool = False) -> float:
    r"""Rescale gradients in place so that their joint norm is at most ``max_norm``.

    The total norm is the ``norm_type``-norm of all gradients concatenated (computed as the norm
    of the per-parameter norms, like torch); every gradient is then multiplied by
    :math:`\min(1, \text{max\_norm} / (\|g\| + 10^{-6}))`, exactly as
    ``torch.nn.utils.clip_grad_norm_``. Parameters whose ``.grad`` is ``None`` are skipped.

    Args:
        params: parameter objects (or one).
        max_norm: the largest allowed total norm.
        norm_type: the p of the p-norm; ``float("inf")`` for the largest absolute value.
        error_if_nonfinite: raise if the total norm is NaN or infinite, instead of scaling by it.

    Returns:
        The total norm before clipping.
    """
    ps = _grads(params)
    if not ps:
        return 0.0
    norm_type = float(norm_type)
    norms = [np.linalg.norm(np.asarray(p.grad).ravel(), ord=norm_type) for p in ps]
    total = float(np.linalg.norm(np.asarray(norms, dtype=np.float64), ord=norm_type))
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(
            f"the total {norm_type}-norm of the gradients is {total}; they cannot be clipped. "
            "Pass error_if_nonfinite=False to scale them anyway, or look for the NaN/inf source "
            "(too high a learning rate, log(0), division by zero)"
        )
    clip_coef = min(float(max_norm) / (total + 1e-6), 1.0)
    for p in ps:
        _scale_grad_(p, clip_coef)
    return total


def clip_grad_value(params: Any, clip_value: float) -> None:
    """Clamp every gradient element in place to ``[-clip_value, clip_value]`` (torch's ``clip_grad_value_``).

    Args:
        params: parameter objects (or one); those whose ``.grad`` is ``None`` are skipped.
        clip_value: the largest allowed absolute value.
    """
    v = float(clip_value)
    for p in _grads(params):
        if isinstance(p.grad, np.ndarray) and p.grad.flags.writeable:
            np.clip(p.grad, -v, v, out=p.grad)
        else:
            p.grad = np.clip(np.asarray(p.grad), -v, v)


# --------------------------------------------------------------------------------------------------
# Early stopping
# --------------------------------------------------------------------------------------------------


class EarlyStopping:
    """Stop when a monitored value has not improved for ``patience`` checks in a row.

    A value improves on the best so far if it is lower by more than ``min_delta`` (``mode="min"``,
    e.g. a loss) or higher by more than ``min_delta`` (``mode="max"``, e.g. an accuracy). NaN
    never improves.

    Args:
        patience: how many checks in a row without improvement to tolerate: the ``patience``-th
            one stops (0: the first one does).
        mode: ``"min"`` or ``"max"``.
        min_delta: the smallest change that counts as an improvement (>= 0).

    Attributes:
        best: the best value so far (``inf`` / ``-inf`` before the first check).
        best_epoch: the 0-based index of the check that gave ``best`` (-1 before any).
        bad_epochs: checks since the last improvement.
        should_stop: the last answer of :meth:`step`.

    Example:
        >>> stopper = EarlyStopping(patience=2)
        >>> [stopper.step(v) for v in (1.0, 0.5, 0.6, 0.55)]
        [False, False, False, True]
    """

    def __init__(self, patience: int, mode: str = "min", min_delta: float = 0.0) -> None:
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' (loss) or 'max' (accuracy), got {mode!r}")
        _check(patience >= 0, f"patience must be >= 0, got {patience}")
        _check(min_delta >= 0, f"min_delta must be >= 0 (the mode sets the direction), got {min_delta}")
        self.patience, self.mode, self.min_delta = int(patience), mode, float(min_delta)
        self.best = math.inf if mode == "min" else -math.inf
        self.best_epoch = -1
        self.bad_epochs = 0
        self.epoch = -1
        self.should_stop = False

    def is_improvement(self, value: float) -> bool:
        """Whether ``value`` beats the best so far by more than ``min_delta``."""
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def step(self, value: float) -> bool:
        """Record one check of the monitored value; return True when training should stop."""
        self.epoch += 1
        value = float(value)
        if self.is_improvement(value):
            self.best, self.best_epoch, self.bad_epochs = value, self.epoch, 0
            self.should_stop = False
        else:
            # judged only on a bad check, so patience=0 stops at the first one (as Keras does)
            self.bad_epochs += 1
            self.should_stop = self.bad_epochs >= self.patience
        return self.should_stop

    def state_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        self.__dict__.update(state_dict)


# --------------------------------------------------------------------------------------------------
# Checkpoint helpers
# --------------------------------------------------------------------------------------------------


def state_dict_to_arrays(state_dict: Mapping[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Split an optimizer state dict into arrays and JSON-able metadata.

    Returns:
        ``(arrays, meta)``: ``arrays`` maps ``"state.{index}.{name}"`` to each state array (save
        it with ``safetensors.numpy.save_file``); ``meta`` holds the parameter groups and the
        scalar state (save it as JSON). :func:`state_dict_from_arrays` reverses the split.
    """
    arrays: dict[str, np.ndarray] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for index, state in state_dict["state"].items():
        scalars[str(int(index))] = {}  # kept even when every entry is an array
        for name, value in state.items():
            if isinstance(value, np.ndarray):
                arrays[f"state.{int(index)}.{name}"] = np.ascontiguousarray(value)
            else:
                scalars[str(int(index))][name] = _plain(value)
    groups = [{k: _plain(v) for k, v in g.items()} for g in state_dict["param_groups"]]
    return arrays, {"state": scalars, "param_groups": groups}


def state_dict_from_arrays(arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> dict[str, Any]:
    """Join what :func:`state_dict_to_arrays` split back into a state dict for ``load_state_dict``."""
    state: dict[int, dict[str, Any]] = {int(i): dict(s) for i, s in meta["state"].items()}
    for key, value in arrays.items():
        _, index, name = key.split(".", 2)
        state.setdefault(int(index), {})[name] = np.array(value)
    return {"state": state, "param_groups": [dict(g) for g in meta["param_groups"]]}


def _plain(value: Any) -> Any:
    """A JSON-able version of a hyperparameter or scalar state value."""
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value

