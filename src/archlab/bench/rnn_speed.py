"""Benchmark ``rnn_speed``: LSTM training throughput, bare ``nn.LSTM`` against our LSTM, fast and cells.

Three contenders train the same network on the same batch: an LSTM and a linear head on every
output step (``logits = head(output)``, cross-entropy against random next-step classes), one
step = forward, backward and an Adam update:

* ``bare``: ``torch.nn.LSTM`` (with ``pack_padded_sequence`` / ``pad_packed_sequence`` written out
  in the packed case), the reference;
* ``fast``: :class:`archlab.models.rnn.LSTM` with ``impl="fast"`` (torch's fused kernel on our
  parameters); target: throughput within 5% of ``bare`` (``fast_over_bare >= 0.95``);
* ``cells``: the same layer with ``impl="cells"`` (gate by gate, a Python loop over time); its
  slowdown against ``bare`` is recorded.

Cases: batch 64, T 64, input 64, hidden 256, one layer; the same with variable lengths
(packed, lengths uniform in [T/2, T]); and two bidirectional layers of hidden 128. The
contenders alternate within each of ``repeats`` rounds (so drifts in machine speed hit all of
them alike) and the figures are medians of wall time; ``fast_over_bare_paired`` is the median
of the per-round ratios, ``fast_over_bare_cpu`` the ratio of the medians of the process's CPU
time per step (less disturbed by other processes on a shared machine; on a GPU it measures the
host side only). Sequences per second = batch / seconds per step. About 6 minutes on one CPU
thread (``OMP_NUM_THREADS=1``).
"""

from __future__ import annotations

import statistics
from typing import Any

from archlab.bench.timing import interleaved_times
from archlab.registry import register_benchmark

__all__ = ["rnn_speed", "CASES"]

CASES: list[dict[str, Any]] = [
    {"name": "1layer", "batch": 64, "seq_len": 64, "input_size": 64, "hidden_size": 256, "num_layers": 1,
     "bidirectional": False, "packed": False},
    {"name": "1layer_packed", "batch": 64, "seq_len": 64, "input_size": 64, "hidden_size": 256, "num_layers": 1,
     "bidirectional": False, "packed": True},
    {"name": "2layer_bidirectional", "batch": 64, "seq_len": 64, "input_size": 64, "hidden_size": 128,
     "num_layers": 2, "bidirectional": True, "packed": False},
]
QUICK_SIZES = {"batch": 8, "seq_len": 8, "input_size": 8, "hidden_size": 16}
NUM_CLASSES = 32


def _contenders(case: dict[str, Any]) -> dict[str, Any]:
    """name -> step() for the three contenders, all starting from the same weights."""
    import torch
    import torch.nn.functional as F
    from torch import nn
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    from archlab.models.rnn.layers import LSTM

    B, T, C, H = case["batch"], case["seq_len"], case["input_size"], case["hidden_size"]
    L, bidir = case["num_layers"], case["bidirectional"]
    D = 2 if bidir else 1
    g = torch.Generator().manual_seed(0)
    x = torch.randn(B, T, C, generator=g)
    y = torch.randint(0, NUM_CLASSES, (B, T), generator=g)
    lengths = None
    if case["packed"]:
        lengths = torch.randint(T // 2, T + 1, (B,), generator=g)
        lengths[0] = T
        y = y.masked_fill(torch.arange(T)[None, :] >= lengths[:, None], -100)  # no loss on padding

    torch.manual_seed(0)
    ref = nn.LSTM(C, H, L, batch_first=True, bidirectional=bidir)
    head = nn.Linear(D * H, NUM_CLASSES)
    nets: dict[str, tuple[nn.Module, nn.Module]] = {"bare": (ref, head)}
    for impl in ("fast", "cells"):
        ours = LSTM(C, H, L, bidirectional=bidir, impl=impl)
        ours.load_state_dict(ref.state_dict())
        ours_head = nn.Linear(D * H, NUM_CLASSES)
        ours_head.load_state_dict(head.state_dict())
        nets[impl] = (ours, ours_head)

    def make_step(name: str, rnn: nn.Module, lin: nn.Module) -> Any:
        opt = torch.optim.Adam([*rnn.parameters(), *lin.parameters()], lr=1e-3)

        def step() -> None:
            if name != "bare":
                out, _ = rnn(x, lengths=lengths)  # (B, T, D*H)
            elif lengths is None:
                out, _ = rnn(x)
            else:
                packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
                out, _ = pad_packed_sequence(rnn(packed)[0], batch_first=True, total_length=T)
            logits = lin(out)  # (B, T, K)
            loss = F.cross_entropy(logits.flatten(0, 1), y.flatten(), ignore_index=-100)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        return step

    return {name: make_step(name, *modules) for name, modules in nets.items()}


def _measure(case: dict[str, Any], steps: int, cells_steps: int, warmup: int, repeats: int) -> dict[str, Any]:
    step_fns = _contenders(case)
    calls = {name: cells_steps if name == "cells" else steps for name in step_fns}
    times, cpu = interleaved_times(step_fns, calls, repeats, warmup)
    med = {name: statistics.median(ts) for name, ts in times.items()}
    sps = {name: case["batch"] / t for name, t in med.items()}
    paired = statistics.median(b / f for b, f in zip(times["bare"], times["fast"], strict=True))
    cpu_ratio = statistics.median(cpu["bare"]) / statistics.median(cpu["fast"])
    row = dict(case)
    row.update({
        "bare_seq_per_s": round(sps["bare"], 1),
        "fast_seq_per_s": round(sps["fast"], 1),
        "cells_seq_per_s": round(sps["cells"], 1),
        "fast_over_bare": round(sps["fast"] / sps["bare"], 4),
        "fast_over_bare_paired": round(paired, 4),
        "fast_within_5pct": sps["fast"] / sps["bare"] >= 0.95,
        "fast_over_bare_cpu": round(cpu_ratio, 4),
        "cells_slowdown": round(sps["bare"] / sps["cells"], 2),
        "step_ms": {name: [round(t * 1e3, 3) for t in ts] for name, ts in times.items()},
        "step_cpu_ms": {name: [round(t * 1e3, 3) for t in ts] for name, ts in cpu.items()},
    })
    return row


@register_benchmark("rnn_speed", family="rnn",
                    description="LSTM training throughput: bare nn.LSTM vs ours fast (target within 5%) vs cells")
def rnn_speed(quick: bool = False) -> dict[str, Any]:
    steps, cells_steps, warmup, repeats = (3, 2, 1, 2) if quick else (10, 3, 2, 5)
    rows = []
    for case in CASES:
        case = {**case, **QUICK_SIZES} if quick else case
        print(f"rnn_speed: {case['name']}", flush=True)
        rows.append(_measure(case, steps, cells_steps, warmup, repeats))
        print(f"rnn_speed: {rows[-1]['name']}: fast/bare {rows[-1]['fast_over_bare']}, "
              f"cells slowdown {rows[-1]['cells_slowdown']}x", flush=True)
    return {
        "model": "LSTM + linear head on every step, cross-entropy, Adam; one step = fwd + bwd + update",
        "steps": {"bare": steps, "fast": steps, "cells": cells_steps, "warmup": warmup, "repeats": repeats},
        "cases": rows,
        "target_fast_over_bare": 0.95,
        "all_fast_within_5pct": all(r["fast_within_5pct"] for r in rows),
    }
