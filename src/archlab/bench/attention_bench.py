"""Benchmark ``mha_speed``: our MultiHeadAttention (fast path) against ``nn.MultiheadAttention``.

Both modules hold the same weights (``nn.MultiheadAttention``'s packed ``in_proj_weight`` split
into our ``q_proj``, ``k_proj``, ``v_proj``; ``out_proj`` copied) and run self-attention on the
same batch x (B, T, D); one step = forward and backward (``y.backward(g)`` with a fixed random
upstream gradient g; no optimizer). Ours uses ``impl="fast"``
(``F.scaled_dot_product_attention``), the reference is called with ``need_weights=False`` so it
takes the same fused kernel. Before timing, the outputs are checked equal (``max_abs_diff``).

Cases: (B, T, D, heads) = (32, 128, 256, 8), (8, 512, 512, 8), and (32, 128, 256, 8) with a causal
mask (ours ``is_causal=True``; theirs ``attn_mask=causal, is_causal=True``). The two contenders
alternate within each of ``repeats`` rounds, which one goes first alternating too, so drifts in
machine speed hit both alike; figures are medians. ``ours_over_theirs`` = median time per step
of ours / theirs (target <= 1.05), ``ours_over_theirs_paired`` the median of the per-round
ratios, ``ours_over_theirs_cpu`` the same from the process's CPU time (less disturbed by other
processes on a shared machine; on a GPU it measures the host side only). About 2 minutes on
one CPU thread (``OMP_NUM_THREADS=1``).
"""

from __future__ import annotations

import statistics
from typing import Any

from archlab.bench.timing import interleaved_times
from archlab.registry import register_benchmark

__all__ = ["CASES", "mha_speed"]

CASES: list[dict[str, Any]] = [
    {"name": "B32_T128_D256_h8", "batch": 32, "seq_len": 128, "dim": 256, "num_heads": 8, "causal": False},
    {"name": "B8_T512_D512_h8", "batch": 8, "seq_len": 512, "dim": 512, "num_heads": 8, "causal": False},
    {"name": "B32_T128_D256_h8_causal", "batch": 32, "seq_len": 128, "dim": 256, "num_heads": 8, "causal": True},
]
QUICK_SIZES = {"batch": 2, "seq_len": 16, "dim": 32, "num_heads": 4}
TARGET = 1.05


def _contenders(case: dict[str, Any]) -> tuple[dict[str, Any], float]:
    """name -> step() for ours and theirs with the same weights, and max |ours - theirs| of the outputs."""
    import torch
    from torch import nn

    from archlab.models.transformer.attention import MultiHeadAttention, causal_mask

    B, T, D, h = case["batch"], case["seq_len"], case["dim"], case["num_heads"]
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(0)
    theirs = nn.MultiheadAttention(D, h, batch_first=True).to(device)
    ours = MultiHeadAttention(D, h, impl="fast").to(device)
    with torch.no_grad():
        for proj, w, b in zip((ours.q_proj, ours.k_proj, ours.v_proj), theirs.in_proj_weight.chunk(3),
                              theirs.in_proj_bias.chunk(3), strict=True):
            proj.weight.copy_(w)
            proj.bias.copy_(b)
        ours.out_proj.load_state_dict(theirs.out_proj.state_dict())
    g = torch.Generator(device=device).manual_seed(0)
    x = torch.randn(B, T, D, generator=g, device=device, requires_grad=True)
    grad = torch.randn(B, T, D, generator=g, device=device)
    causal = case["causal"]
    # nn.MultiheadAttention's bool attn_mask is True where attention is NOT allowed
    ref_mask = ~causal_mask(T, device=device) if causal else None

    def run_ours() -> Any:
        return ours(x, is_causal=causal)[0]

    def run_theirs() -> Any:
        return theirs(x, x, x, need_weights=False, attn_mask=ref_mask, is_causal=causal)[0]

    with torch.no_grad():
        diff = (run_ours() - run_theirs()).abs().max().item()

    def make_step(run: Any, module: nn.Module) -> Any:
        def step() -> None:
            module.zero_grad(set_to_none=True)
            x.grad = None
            run().backward(grad)
        return step

    return {"ours": make_step(run_ours, ours), "theirs": make_step(run_theirs, theirs)}, diff


def _measure(case: dict[str, Any], steps: int, warmup: int, repeats: int) -> dict[str, Any]:
    step_fns, diff = _contenders(case)
    wall, cpu = interleaved_times(step_fns, steps, repeats, warmup)
    med = {name: statistics.median(ts) for name, ts in wall.items()}
    ratio = med["ours"] / med["theirs"]
    row = dict(case)
    row.update({
        "max_abs_diff": diff,
        "ours_ms": round(med["ours"] * 1e3, 3),
        "theirs_ms": round(med["theirs"] * 1e3, 3),
        "ours_over_theirs": round(ratio, 4),
        "ours_over_theirs_paired": round(statistics.median(
            o / t for o, t in zip(wall["ours"], wall["theirs"], strict=True)), 4),
        "ours_over_theirs_cpu": round(statistics.median(cpu["ours"]) / statistics.median(cpu["theirs"]), 4),
        "within_target": ratio <= TARGET,
        "step_ms": {name: [round(t * 1e3, 3) for t in ts] for name, ts in wall.items()},
        "step_cpu_ms": {name: [round(t * 1e3, 3) for t in ts] for name, ts in cpu.items()},
    })
    return row


@register_benchmark("mha_speed", family="transformer",
                    description="MultiHeadAttention fwd+bwd: ours (fast path) vs nn.MultiheadAttention, "
                                "target ours/theirs <= 1.05")
def mha_speed(quick: bool = False) -> dict[str, Any]:
    steps, warmup, repeats = (2, 1, 2) if quick else (5, 2, 5)
    rows = []
    for case in CASES:
        case = {**case, **QUICK_SIZES} if quick else case
        print(f"mha_speed: {case['name']}", flush=True)
        rows.append(_measure(case, steps, warmup, repeats))
        print(f"mha_speed: {rows[-1]['name']}: ours {rows[-1]['ours_ms']} ms, theirs {rows[-1]['theirs_ms']} ms, "
              f"ours/theirs {rows[-1]['ours_over_theirs']}", flush=True)
    return {
        "model": "self-attention, one step = forward + backward (fixed upstream gradient), same weights",
        "steps": {"per_round": steps, "warmup": warmup, "repeats": repeats},
        "cases": rows,
        "target_ours_over_theirs": TARGET,
        "all_within_target": all(r["within_target"] for r in rows),
    }
