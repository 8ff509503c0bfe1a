"""Benchmarks: accuracy and speed targets measured side by side, results committed as JSON.

``archlab bench [NAME ...]`` runs registered benchmarks (``@register_benchmark``) one after the
other in one process and writes ``benchmarks/results/NAME.json`` (``NAME.DEVICE.json`` on a GPU),
with the machine, library versions and the date beside the figures. ``--quick`` is a smoke run
with fewer seeds and steps; its results are printed, not written.
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path
from typing import Any

__all__ = ["run_benchmarks", "machine_info", "time_steps", "cpu_has_native_bf16"]


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bfloat16 in hardware (AVX512-BF16 or AMX). Elsewhere oneDNN
    emulates it and bf16 autocast is many times slower than fp32 (measured 4-16x on an AVX2 EPYC)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def machine_info() -> dict[str, Any]:
    """What the figures were measured on."""
    import torch

    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "native_bf16": cpu_has_native_bf16(),
        "device": "cpu",
    }
    if torch.cuda.is_available():
        info["device"] = torch.cuda.get_device_name(0)
    return info


def time_steps(step: Any, n: int, warmup: int = 10) -> float:
    """Seconds per call of ``step()``, after ``warmup`` calls (CUDA synchronised)."""
    from archlab.bench.timing import time_per_call

    return time_per_call(step, n, warmup)[0]


def run_benchmarks(names: list[str] | None = None, *, quick: bool = False, out_dir: str | Path = "benchmarks/results") -> dict[str, Any]:
    """Run the named benchmarks (default: all) and write their JSON results (unless ``quick``)."""
    from archlab.registry import BENCHMARKS

    names = names or BENCHMARKS.names()
    results = {}
    for name in names:
        entry = BENCHMARKS.get(name)
        print(f"bench {name}: {entry.summary}", flush=True)
        t0 = time.perf_counter()
        result = entry.fn(quick=quick)
        payload = {"benchmark": name, "quick": quick, "machine": machine_info(),
                   "wall_time_s": round(time.perf_counter() - t0, 2), "results": result}
        results[name] = payload
        print(json.dumps(result, indent=2), flush=True)
        if not quick:
            from archlab.utils import atomic_write_json

            device = payload["machine"]["device"]
            suffix = "" if device == "cpu" else "." + device.lower().replace(" ", "-")
            path = Path(out_dir) / f"{name}{suffix}.json"
            atomic_write_json(path, payload)
            print(f"bench {name}: wrote {path}", flush=True)
    return results
