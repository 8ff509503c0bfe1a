"""Checkpoints: one safetensors file holding every tensor, with the rest as JSON in its header.

A checkpoint holds the model, the optimizer(s), the LR scheduler, EMA weights, the RNG states
(Python, NumPy, torch CPU and CUDA), the step/epoch counters and the resolved config: everything a
resumed run needs to continue exactly where it stopped.

Layout of ``last.safetensors``::

    tensors   "model/<param>", "ema/<param>", "state/<path>"  (optimizer moments, RNG states...)
    metadata  {"format": "archlab-checkpoint/1", "state": JSON with {"__tensor__": key} leaves}

Safety: loading reads only safetensors and JSON, so it never unpickles arbitrary objects.
Atomicity: the file is written under a temporary name and renamed into place
(:func:`archlab.utils.atomic_write`), so a crash leaves the previous checkpoint intact, never a
half-written one. A truncated or corrupt file is reported as :class:`CheckpointError`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from archlab.statefile import flatten_state, unflatten_state
from archlab.utils import ArchlabError, atomic_write

__all__ = ["CheckpointError", "save_checkpoint", "load_checkpoint", "flatten_state", "unflatten_state",
           "save_weights", "load_weights"]

FORMAT = "archlab-checkpoint/1"


class CheckpointError(ArchlabError):
    """A checkpoint that cannot be read: missing, truncated, corrupt or of another format."""


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """Write ``state`` atomically. ``state["model"]`` and ``state["ema"]`` are state dicts."""
    from safetensors.torch import save_file

    tensors: dict[str, torch.Tensor] = {}
    rest: dict[str, Any] = {}
    for key, value in state.items():
        if key in ("model", "ema") and value is not None:
            for name, t in value.items():
                tensors[f"{key}/{name}"] = t.detach().cpu().contiguous()
            rest[key] = {"__state_dict__": list(value)}
        else:
            rest[key] = flatten_state(value, f"state/{key}", tensors)
    tensors = _unalias({k: _as_tensor(v) for k, v in tensors.items()})
    meta = {"format": FORMAT, "state": json.dumps(rest)}
    return atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=meta))


def _as_tensor(leaf: Any) -> torch.Tensor:
    if isinstance(leaf, torch.Tensor):
        return leaf.detach().cpu().contiguous()
    return torch.from_numpy(leaf)


def _unalias(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """safetensors refuses tensors that share memory (tied weights): give each its own copy."""
    seen: set[tuple[int, int]] = set()
    out = {}
    for k, t in tensors.items():
        sig = (t.untyped_storage().data_ptr(), t.storage_offset()) if t.numel() else (id(t), 0)
        out[k] = t.clone() if sig in seen else t
        seen.add(sig)
    return out


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`; errors say what is wrong and what to do."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist")
    try:
        with safe_open(str(path), framework="pt", device=str(map_location)) as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as err:  # safetensors raises several types for a damaged file
        raise CheckpointError(
            f"checkpoint {str(path)!r} is truncated or corrupt ({err}). It was not written "
            f"completely; use another checkpoint of the run (checkpoints/) or train again."
        ) from None
    if meta.get("format") != FORMAT:
        raise CheckpointError(
            f"{str(path)!r} is a safetensors file but not an archlab checkpoint (format "
            f"{meta.get('format')!r}); to load bare weights use archlab.engine.checkpoint.load_weights"
        )
    rest = json.loads(meta["state"])
    state: dict[str, Any] = {}
    for key, value in rest.items():
        if isinstance(value, dict) and "__state_dict__" in value:
            state[key] = {name: tensors[f"{key}/{name}"] for name in value["__state_dict__"]}
        else:
            state[key] = unflatten_state(value, tensors, lambda t: t.numpy())
    return state


def save_weights(path: str | Path, state_dict: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> Path:
    """Bare model weights as a plain safetensors file (keys as in ``state_dict``), atomically."""
    from safetensors.torch import save_file

    tensors = _unalias({k: v.detach().cpu().contiguous() for k, v in state_dict.items()})
    return atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=metadata or {}))


def load_weights(path: str | Path, map_location: str = "cpu") -> dict[str, torch.Tensor]:
    """Model weights from a bare safetensors file or from an archlab checkpoint."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"weights file {str(path)!r} does not exist")
    try:
        with safe_open(str(path), framework="pt", device=map_location) as f:
            meta = f.metadata() or {}
            if meta.get("format") == FORMAT:
                return {k[len("model/"):]: f.get_tensor(k) for k in f.keys() if k.startswith("model/")}
            return {k: f.get_tensor(k) for k in f.keys()}
    except CheckpointError:
        raise
    except Exception as err:
        raise CheckpointError(f"weights file {str(path)!r} is truncated or corrupt ({err})") from None
