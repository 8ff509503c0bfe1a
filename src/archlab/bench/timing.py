"""Side-by-side timing for the speed benchmarks: one step function per contender, interleaved.

Each contender's ``step()`` runs ``n`` times per round; rounds alternate who goes first, so a
change in machine load (a shared VM) hits every contender alike. Wall and process CPU seconds are
both kept: on a busy machine the CPU time is the steadier of the two.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["time_per_call", "interleaved_times"]


def time_per_call(step: Callable[[], Any], n: int, warmup: int = 0) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) per call of ``step()`` after ``warmup`` calls."""
    import torch

    for _ in range(warmup):
        step()
    sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
    sync()
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(n):
        step()
    sync()
    return (time.perf_counter() - t0) / n, (time.process_time() - c0) / n


def interleaved_times(steps: Mapping[str, Callable[[], Any]], n: int | Mapping[str, int], repeats: int,
                      warmup: int = 0, warmup_once: bool = False) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Per-call wall and CPU seconds of every contender, ``repeats`` rounds each.

    Args:
        steps: name -> step function.
        n: calls per round, or name -> calls per round (a slow contender may take fewer).
        repeats: rounds; odd rounds run the contenders in reverse order.
        warmup: untimed calls before each round (or once before the first, ``warmup_once``).
        warmup_once: warm every contender up once, before the rounds.

    Returns:
        ``(wall, cpu)``: name -> one per-call figure per round.
    """
    calls = n if isinstance(n, Mapping) else {name: n for name in steps}
    wall: dict[str, list[float]] = {name: [] for name in steps}
    cpu: dict[str, list[float]] = {name: [] for name in steps}
    if warmup_once:
        for fn in steps.values():
            time_per_call(fn, warmup)
    for r in range(repeats):
        for name in (list(steps) if r % 2 == 0 else list(reversed(list(steps)))):
            w, c = time_per_call(steps[name], calls[name], 0 if warmup_once else warmup)
            wall[name].append(w)
            cpu[name].append(c)
    return wall, cpu
