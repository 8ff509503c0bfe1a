"""The Transformer's warmup schedule (``train.schedule=inverse_sqrt``) against the paper's formula."""

from __future__ import annotations

import math

import pytest
import torch

from archlab.config import TrainSection
from archlab.engine.optim import build_scheduler


def _lrs(cfg: TrainSection, steps: int, steps_per_epoch: int = 100) -> list[float]:
    """The learning rate each of the first ``steps`` optimizer steps uses."""
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=cfg.lr)
    sched = build_scheduler(opt, cfg, steps_per_epoch=steps_per_epoch, total_steps=steps)
    out = []
    for _ in range(steps):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def test_inverse_sqrt_is_the_papers_noam_schedule() -> None:
    """Vaswani et al. Eq. 3: lr_s = d^-0.5 min(s^-0.5, s w^-1.5), with lr set to its peak d^-0.5 w^-0.5."""
    d, w = 512, 40
    peak = d**-0.5 * w**-0.5
    lrs = _lrs(TrainSection(lr=peak, schedule="inverse_sqrt", warmup_epochs=0.4), 300)  # 0.4 * 100 = 40 steps
    for s in (1, 2, 20, 39, 40, 41, 100, 300):
        assert lrs[s - 1] == pytest.approx(d**-0.5 * min(s**-0.5, s * w**-1.5), rel=1e-9), s
    assert max(lrs) == pytest.approx(peak) and lrs.index(max(lrs)) == w - 1  # the peak is step w


def test_inverse_sqrt_warms_up_linearly_then_decays_as_one_over_sqrt() -> None:
    lrs = _lrs(TrainSection(lr=1.0, schedule="inverse_sqrt", warmup_epochs=0.1), 1000)  # w = 10
    assert lrs[:10] == pytest.approx([s / 10 for s in range(1, 11)])
    assert lrs[39] == pytest.approx(0.5)  # step 40 = 4 w: sqrt(10 / 40)
    assert lrs[999] == pytest.approx(0.1)  # step 1000 = 100 w
    assert all(a > b for a, b in zip(lrs[10:], lrs[11:]))  # strictly decreasing after the peak


def test_inverse_sqrt_without_warmup_and_with_a_floor() -> None:
    lrs = _lrs(TrainSection(lr=2.0, schedule="inverse_sqrt"), 100)
    assert lrs[0] == pytest.approx(2.0) and lrs[3] == pytest.approx(1.0)  # 2 / sqrt(4)
    floored = _lrs(TrainSection(lr=1.0, schedule="inverse_sqrt", min_lr=0.25), 100)
    assert floored[15] == pytest.approx(0.25) and min(floored) == pytest.approx(0.25)  # 1/sqrt(16) = 0.25
    assert floored[8] == pytest.approx(1 / math.sqrt(9))
