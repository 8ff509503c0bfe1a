"""Nested training state (optimizer, scheduler, RNG, counters) as JSON plus a flat table of arrays.

One home for the checkpoint layout shared by the torch engine (:mod:`archlab.engine.checkpoint`)
and the NumPy engine (:mod:`archlab.scratch.engine`). Arrays leave the structure as
``{"__tensor__": key}`` (a torch tensor) or ``{"__ndarray__": key}`` (a NumPy array) and go into
``leaves``, which the caller writes with safetensors; the rest is JSON. Nothing here imports torch:
tensors are recognised by their ``detach`` method.

    {"step": 3, "state": {0: {"exp_avg": <tensor>}}, "betas": (0.9, 0.999), "best": inf}
    -> {"step": 3, "state": {"__dict__": {"0": {"exp_avg": {"__tensor__": "state/opt.state.0.exp_avg"}}},
                             "__int_keys__": ["0"]},
        "betas": {"__tuple__": [0.9, 0.999]}, "best": {"__float__": "inf"}}
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["flatten_state", "unflatten_state"]


def flatten_state(obj: Any, prefix: str, leaves: dict[str, Any]) -> Any:
    """Replace every tensor or array in ``obj`` by a reference and collect it in ``leaves``.

    Supports dicts (keys become strings; int keys are remembered), lists, tuples, torch tensors,
    NumPy arrays and scalars, and JSON scalars (inf and nan included). Other types raise TypeError.
    """
    if hasattr(obj, "detach"):  # a torch tensor
        leaves[prefix] = obj
        return {"__tensor__": prefix}
    if isinstance(obj, np.ndarray):
        leaves[prefix] = np.ascontiguousarray(obj)
        return {"__ndarray__": prefix}
    if isinstance(obj, dict):
        ints = [str(k) for k in obj if isinstance(k, int)]
        out = {str(k): flatten_state(v, f"{prefix}.{k}", leaves) for k, v in obj.items()}
        return {"__dict__": out, "__int_keys__": ints} if ints else out
    if isinstance(obj, tuple):
        return {"__tuple__": [flatten_state(v, f"{prefix}.{i}", leaves) for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [flatten_state(v, f"{prefix}.{i}", leaves) for i, v in enumerate(obj)]
    if isinstance(obj, (np.floating, np.integer)):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return {"__float__": repr(obj)}
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot store a {type(obj).__name__} at {prefix!r} in a checkpoint")


def unflatten_state(obj: Any, leaves: dict[str, Any], as_ndarray: Callable[[Any], Any] = lambda a: a) -> Any:
    """Inverse of :func:`flatten_state`; ``as_ndarray`` turns a stored leaf back into a NumPy array."""
    if isinstance(obj, dict):
        if "__tensor__" in obj:
            return leaves[obj["__tensor__"]]
        if "__ndarray__" in obj:
            return as_ndarray(leaves[obj["__ndarray__"]])
        if "__float__" in obj:
            return float(obj["__float__"])
        if "__tuple__" in obj:
            return tuple(unflatten_state(v, leaves, as_ndarray) for v in obj["__tuple__"])
        if "__dict__" in obj:
            ints = set(obj["__int_keys__"])
            return {(int(k) if k in ints else k): unflatten_state(v, leaves, as_ndarray) for k, v in obj["__dict__"].items()}
        return {k: unflatten_state(v, leaves, as_ndarray) for k, v in obj.items()}
    if isinstance(obj, list):
        return [unflatten_state(v, leaves, as_ndarray) for v in obj]
    return obj
