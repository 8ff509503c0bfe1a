"""Shared pytest fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture
def shared_data() -> Path:
    """The real datasets folder: $ARCHLAB_SHARED_DATA or ../shared/data beside the project."""
    path = Path(os.environ.get("ARCHLAB_SHARED_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))
    if not path.is_dir():
        pytest.skip(f"real data folder {path} not present")
    return path
