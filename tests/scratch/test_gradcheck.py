"""archlab.scratch.gradcheck: it passes correct gradients and catches wrong ones, readably."""

from __future__ import annotations

import numpy as np
import pytest

from archlab.scratch import GradcheckError, Tensor, gradcheck, numerical_grad, record_op
from archlab.scratch import functional as F


def _wrong_square(x: Tensor) -> Tensor:
    """x^2 with a deliberately wrong backward (x instead of 2x)."""
    return record_op(x.data**2, (x,), "bad_square", lambda g: (g * x.data,))


def test_passes_for_correct_gradients_and_reports() -> None:
    x = Tensor(np.random.default_rng(0).standard_normal((3, 2)), requires_grad=True, name="x")
    w = Tensor(np.random.default_rng(1).standard_normal((2, 4)), requires_grad=True, name="w")
    report = gradcheck(lambda a, b: (a @ b).tanh(), [x, w])
    assert report and report.ok
    assert [r.name for r in report.inputs] == ["x", "w"]
    assert all(r.max_abs_err < 1e-8 for r in report.inputs)
    assert "gradcheck passed" in str(report)


def test_catches_a_wrong_backward_with_a_readable_report() -> None:
    x = Tensor(np.array([1.0, -2.0, 3.0]), requires_grad=True, name="x")
    with pytest.raises(GradcheckError) as info:
        gradcheck(_wrong_square, [x])
    message = str(info.value)
    assert "FAILED" in message and "BAD" in message and "x" in message
    worst = info.value.report.inputs[0]
    assert worst.worst_index == (2,)  # deterministic: the direction r is seeded
    assert worst.analytic == pytest.approx(0.5 * worst.numeric)  # (r x vs 2 r x, r the random direction)
    report = gradcheck(_wrong_square, [x], raise_exception=False)
    assert not report and report.inputs[0].max_abs_err == pytest.approx(worst.max_abs_err)


def test_only_inputs_that_require_grad_are_checked() -> None:
    x = Tensor(np.ones(3), requires_grad=True)
    c = Tensor(np.arange(3.0))
    report = gradcheck(lambda a, b: a * b, [x, c])
    assert len(report.inputs) == 1
    with pytest.raises(ValueError, match="nothing to check"):
        gradcheck(lambda a: a * 2, [c])


def test_rejects_float32_and_non_tensor_outputs() -> None:
    x32 = Tensor(np.ones(3, dtype=np.float32), requires_grad=True)
    with pytest.raises(TypeError, match="float64"):
        gradcheck(lambda a: a * 2, [x32])
    x = Tensor(np.ones(3), requires_grad=True)
    with pytest.raises(TypeError, match="must return a Tensor"):
        gradcheck(lambda a: a.data, [x])


def test_restores_inputs_and_their_grads() -> None:
    x = Tensor(np.array([0.5, 1.5]), requires_grad=True)
    x.grad = np.array([7.0, 7.0])
    before = x.data.copy()
    gradcheck(lambda a: F.sigmoid(a) * a, [x])
    np.testing.assert_array_equal(x.data, before)
    np.testing.assert_array_equal(x.grad, [7.0, 7.0])


def test_numerical_grad_of_a_scalar_function() -> None:
    x = Tensor(np.array([[1.0, 2.0], [3.0, 4.0]]))
    g = numerical_grad(lambda: float((x.data**3).sum()), x)
    np.testing.assert_allclose(g, 3 * x.data**2, rtol=1e-8)


def test_non_contiguous_inputs_are_handled() -> None:
    x = Tensor(np.random.default_rng(0).standard_normal((4, 3)).T, requires_grad=True)
    assert gradcheck(lambda a: (a * a).sum(axis=0), [x])
