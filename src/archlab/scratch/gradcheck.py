"""Check autograd gradients against central finite differences.

For a function ``f`` of tensors x_1..x_n with any output shape, fix a random direction r of the
output's shape and check the gradient of the scalar ``L = sum(r * f(x))``:

    analytic:  dL/dx   from ``L.backward()``
    numeric:   dL/dx_i ~ (L(x + eps e_i) - L(x - eps e_i)) / (2 eps)    (error O(eps^2))

for every element i of every input that requires grad. A wrong Jacobian J gives a wrong
``r^T J`` for almost every r, so one random projection checks the whole Jacobian at the cost of
one backward pass (PyTorch's ``gradcheck`` builds J row by row instead; its ``fast_mode`` uses
the same projection idea). The check is element-wise ``|a - n| <= atol + rtol |n|`` and needs
float64: in float32 the round-off of the difference quotient (~1e-7 / eps) swamps everything.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from archlab.scratch.autograd import Tensor, no_grad

__all__ = ["GradcheckError", "GradcheckReport", "InputReport", "gradcheck", "numerical_grad"]


@dataclass
class InputReport:
    """Agreement for one input: the largest absolute / relative errors and where they are."""

    name: str
    shape: tuple[int, ...]
    max_abs_err: float
    max_rel_err: float
    worst_index: tuple[int, ...]
    analytic: float
    numeric: float
    ok: bool


@dataclass
class GradcheckReport:
    """The result of :func:`gradcheck`; true when every input passed."""

    inputs: list[InputReport] = field(default_factory=list)
    eps: float = 1e-6
    atol: float = 1e-8
    rtol: float = 1e-6

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.inputs)

    def __bool__(self) -> bool:
        return self.ok

    def __str__(self) -> str:
        head = f"gradcheck {'passed' if self.ok else 'FAILED'} (eps={self.eps:g}, atol={self.atol:g}, rtol={self.rtol:g})"
        rows = [
            f"  {'ok ' if r.ok else 'BAD'} {r.name:<16} shape={r.shape!s:<14} max|a-n|={r.max_abs_err:.3e} "
            f"max rel={r.max_rel_err:.3e} at {r.worst_index}: analytic={r.analytic:.8g} numeric={r.numeric:.8g}"
            for r in self.inputs
        ]
        return "\n".join([head, *rows])


class GradcheckError(AssertionError):
    """Raised by :func:`gradcheck` when gradients disagree; ``.report`` has the details."""

    def __init__(self, report: GradcheckReport) -> None:
        super().__init__(str(report))
        self.report = report


def numerical_grad(loss: Callable[[], float], x: Tensor, eps: float = 1e-6) -> np.ndarray:
    """Central differences of the scalar ``loss()`` with respect to every element of ``x``.

    ``x.data`` is perturbed in place and restored.
    """
    if not x.data.flags.c_contiguous:
        x.data = np.ascontiguousarray(x.data)
    grad = np.zeros(x.shape, dtype=np.float64)
    flat = x.data.reshape(-1)  # a view: writing it perturbs x
    for i in range(flat.size):
        orig = flat[i]
        flat[i] = orig + eps
        plus = loss()
        flat[i] = orig - eps
        minus = loss()
        flat[i] = orig
        grad.reshape(-1)[i] = (plus - minus) / (2 * eps)
    return grad


def gradcheck(
    fn: Callable[..., Tensor],
    inputs: Sequence[Tensor],
    eps: float = 1e-6,
    atol: float = 1e-8,
    rtol: float = 1e-6,
    *,
    raise_exception: bool = True,
    seed: int = 0,
) -> GradcheckReport:
    """Compare autograd with finite differences for ``fn(*inputs)``.

    Args:
        fn: called as ``fn(*inputs)``; returns a Tensor of any shape. It may also use
            tensors it closes over (e.g. a layer's parameters): list them in ``inputs`` to check
            them too. It must be deterministic (seed any dropout inside).
        inputs: the tensors to check; those with ``requires_grad=False`` are passed but not
            checked. Checked inputs must be float64.
        eps: finite-difference step.
        atol: absolute tolerance.
        rtol: relative tolerance.
        raise_exception: raise :class:`GradcheckError` on failure (else return the report).
        seed: seed of the random output direction r.

    Returns:
        A :class:`GradcheckReport` (truthy when all inputs pass); ``print`` it for a table.
    """
    checked = [x for x in inputs if isinstance(x, Tensor) and x.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input has requires_grad=True, nothing to check")
    for x in checked:
        if x.dtype != np.float64:
            raise TypeError(
                f"gradcheck needs float64 inputs (finite differences are too noisy in lower precision), "
                f"got {x.dtype} for {x.name or 'an input'}; build it with np.float64 data"
            )

    out = fn(*inputs)
    if not isinstance(out, Tensor):
        raise TypeError(f"gradcheck: fn must return a Tensor, got {type(out).__name__}")
    direction = np.random.default_rng(seed).standard_normal(out.shape)

    def loss() -> float:
        with no_grad():
            return float(np.sum(fn(*inputs).data * direction))

    saved = [x.grad for x in checked]
    for x in checked:
        x.grad = None
    try:
        (out * direction).sum().backward()
        analytic = [np.zeros(x.shape) if x.grad is None else x.grad.astype(np.float64) for x in checked]
    finally:
        for x, g in zip(checked, saved):
            x.grad = g

    report = GradcheckReport(eps=eps, atol=atol, rtol=rtol)
    for k, (x, a) in enumerate(zip(checked, analytic)):
        n = numerical_grad(loss, x, eps)
        abs_err = np.abs(a - n)
        rel_err = abs_err / np.maximum(np.abs(n), 1e-300)
        bad = abs_err > atol + rtol * np.abs(n)
        worst = np.unravel_index(int(np.argmax(abs_err - rtol * np.abs(n))), x.shape) if x.size else ()
        report.inputs.append(
            InputReport(
                name=x.name or f"input {k}",
                shape=x.shape,
                max_abs_err=float(abs_err.max(initial=0.0)),
                max_rel_err=float(rel_err.max(initial=0.0)),
                worst_index=tuple(int(i) for i in worst),
                analytic=float(a[worst]) if x.size else 0.0,
                numeric=float(n[worst]) if x.size else 0.0,
                ok=not bool(bad.any()),
            )
        )
    if raise_exception and not report.ok:
        raise GradcheckError(report)
    return report
