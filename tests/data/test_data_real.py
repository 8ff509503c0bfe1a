"""The real MNIST files in ../shared/data (CI has them)."""

from __future__ import annotations

import pytest
import torch

from archlab.data import load_dataset, verify_dataset


@pytest.mark.real_data
def test_real_mnist(shared_data):
    if not (shared_data / "mnist").is_dir():
        pytest.skip("no mnist in the shared data folder")
    rows = verify_dataset("mnist", shared_data)
    assert len(rows) == 4 and all(r["ok"] and r["md5_actual"] == r["md5_expected"] for r in rows)
    b = load_dataset("mnist", shared_data, val_split=0.0, download=False)
    assert b.train.x.shape == (60000, 1, 28, 28) and b.train.x.dtype == torch.uint8
    assert b.test.x.shape == (10000, 1, 28, 28)
    assert b.train.y.shape == (60000,) and b.test.y.dtype == torch.int64
    assert torch.bincount(b.train.y).tolist()[:2] == [5923, 6742]  # the well-known class counts
    assert b.info.mean[0] == pytest.approx(0.1307, abs=1e-4)
    assert b.info.std[0] == pytest.approx(0.3081, abs=1e-4)
    with_val = load_dataset("mnist", shared_data, download=False)
    assert (len(with_val.train), len(with_val.val)) == (54000, 6000)
