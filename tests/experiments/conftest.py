"""The experiment tests' shared fixture: each experiment's quick-mode run, once per module
(the checks of its report are in ``_report_checks.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """``quick_run(name)``: the experiment's quick-mode result and folder (each run once per module)."""
    import archlab

    cache: dict[str, tuple[dict, Path]] = {}

    def get(name: str) -> tuple[dict, Path]:
        if name not in cache:
            root = tmp_path_factory.mktemp(name)
            cache[name] = (archlab.experiment(name, out_dir=root, quick=True), root / name)
        return cache[name]

    return get
