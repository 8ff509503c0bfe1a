"""Where metrics go: a JSONL file (always), TensorBoard (optional) and the console.

Only rank zero writes. ``metrics.jsonl`` has one record per line::

    {"split": "train", "step": 200, "epoch": 0.43, "time": 3.1, "lr": 0.001, "loss": 0.31, "acc": 0.9}
    {"split": "val",   "step": 469, "epoch": 1,    "time": 7.9, "loss": 0.08, "acc": 0.975}
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

__all__ = ["MetricsLogger", "read_metrics"]


class MetricsLogger:
    """Appends records to ``run_dir/metrics.jsonl`` and mirrors scalars to TensorBoard."""

    def __init__(self, run_dir: Path, enabled: bool = True, tensorboard: bool = True) -> None:
        self.enabled = enabled
        self.records: list[dict[str, Any]] = []
        self._file = None
        self._tb = None
        if not enabled:
            return
        run_dir.mkdir(parents=True, exist_ok=True)
        self._file = open(run_dir / "metrics.jsonl", "a", buffering=1)
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._tb = SummaryWriter(str(run_dir / "tb"))
            except ImportError:  # tensorboard is optional
                self._tb = None

    def log(self, record: dict[str, Any]) -> None:
        record = {k: (float(v) if hasattr(v, "__float__") and not isinstance(v, (int, str)) else v)
                  for k, v in record.items()}
        self.records.append(record)
        if not self.enabled:
            return
        self._file.write(json.dumps(record, allow_nan=True) + "\n")
        if self._tb is not None:
            split, step = record.get("split", "train"), int(record.get("step", 0))
            for k, v in record.items():
                if k not in ("split", "step", "epoch", "time") and isinstance(v, (int, float)) and math.isfinite(v):
                    self._tb.add_scalar(f"{split}/{k}", v, step)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._tb is not None:
            self._tb.close()
            self._tb = None


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """The records of a run's ``metrics.jsonl`` (give the file or the run folder).

    Blank or malformed lines (a run killed mid-write) are skipped; a missing file reads as empty.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "metrics.jsonl"
    out = []
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(obj, dict):
                out.append(obj)
    return out
