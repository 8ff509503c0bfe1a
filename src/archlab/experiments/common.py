"""Shared pieces of the experiments: small NumPy views of archlab datasets, report wording."""

from __future__ import annotations

from typing import Any

import numpy as np


def digits_arrays(train_size: int | None = None, seed: int = 0, dtype: Any = np.float64) -> dict[str, np.ndarray]:
    """scikit-learn's digits as flat, standardised float arrays: train/val/test (x: (N, 64), y: (N,)).

    The splits are archlab's (``load_dataset("digits")``: a fixed 20% test set, 10% of the rest
    for validation); ``train_size`` keeps only the first rows of the training split (to study
    overfitting on little data).
    """
    from archlab.data import load_dataset

    bundle = load_dataset("digits", val_split=0.1, seed=seed)

    def flat(split: Any) -> tuple[np.ndarray, np.ndarray]:
        return split.x.numpy().reshape(len(split.x), -1).astype(dtype) / 255.0, split.y.numpy()

    (xtr, ytr), (xva, yva), (xte, yte) = flat(bundle.train), flat(bundle.val), flat(bundle.test)
    if train_size is not None:
        xtr, ytr = xtr[:train_size], ytr[:train_size]
    mean, std = xtr.mean(axis=0), xtr.std(axis=0) + 1e-6
    return {"x_train": (xtr - mean) / std, "y_train": ytr, "x_val": (xva - mean) / std, "y_val": yva,
            "x_test": (xte - mean) / std, "y_test": yte}


def quick_note(quick: bool) -> str:
    """The sentence a quick-mode report adds to its introduction ("" in full mode)."""
    return " **Quick mode**: a smoke test, too short to learn much." if quick else ""

