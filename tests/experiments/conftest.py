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


@pytest.fixture
def one_thread():
    """torch on one thread for the test (the quick experiments' timings and results assume it)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
