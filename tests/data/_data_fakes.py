"""Writers of small files in the real dataset formats (IDX, CIFAR python pickles), for tests."""

from __future__ import annotations

import gzip
import io
import pickle
import struct
import tarfile
from pathlib import Path

import numpy as np

IDX_TYPE = {np.dtype(np.uint8): 0x08, np.dtype(np.int8): 0x09, np.dtype(">i2"): 0x0B,
            np.dtype(">i4"): 0x0C, np.dtype(">f4"): 0x0D, np.dtype(">f8"): 0x0E}


def idx_bytes(arr: np.ndarray) -> bytes:
    """IDX encoding of ``arr``, written independently of archlab's reader."""
    be = arr.dtype.newbyteorder(">") if arr.dtype.itemsize > 1 else arr.dtype
    head = bytes([0, 0, IDX_TYPE[np.dtype(be)], arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return head + arr.astype(be).tobytes()


def write_idx(path: Path, arr: np.ndarray, gz: bool | None = None) -> Path:
    data = idx_bytes(arr)
    if gz if gz is not None else path.name.endswith(".gz"):
        data = gzip.compress(data)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


MNIST_NAMES = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]


def write_fake_mnist(folder: Path, n_train: int = 40, n_test: int = 20, gz: bool = True, seed: int = 0) -> dict:
    """Four MNIST-format files in ``folder``; returns the arrays."""
    rng = np.random.default_rng(seed)
    arrays = {
        MNIST_NAMES[0]: rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        MNIST_NAMES[1]: (np.arange(n_train) % 10).astype(np.uint8),
        MNIST_NAMES[2]: rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        MNIST_NAMES[3]: (np.arange(n_test) % 10).astype(np.uint8),
    }
    for name, arr in arrays.items():
        write_idx(folder / (name + (".gz" if gz else "")), arr, gz=gz)
    return arrays


def _batch(rng: np.random.Generator, n: int, label_keys: dict[str, int]) -> dict:
    d = {b"batch_label": b"testing batch", b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8)}
    for key, k in label_keys.items():
        d[key.encode()] = [int(v) for v in rng.integers(0, k, n)]
    d[b"filenames"] = [f"img_{i}.png".encode() for i in range(n)]
    return d


def write_fake_cifar(path: Path, variant: str = "cifar10", n_per_batch: int = 6, protocol: int = 2,
                     extract_to: Path | None = None, poison: dict | None = None) -> dict:
    """A CIFAR python-version ``.tar.gz`` (pickled dicts with bytes keys, as the real files).

    Returns ``{member: dict}`` of what was written. ``poison`` replaces members' bytes.
    """
    rng = np.random.default_rng(1)
    if variant == "cifar10":
        folder = "cifar-10-batches-py"
        members = {f"data_batch_{i}": _batch(rng, n_per_batch, {"labels": 10}) for i in range(1, 6)}
        members["test_batch"] = _batch(rng, n_per_batch, {"labels": 10})
        members["batches.meta"] = {b"label_names": [n.encode() for n in
                                                    ["airplane", "automobile", "bird", "cat", "deer", "dog",
                                                     "frog", "horse", "ship", "truck"]],
                                   b"num_cases_per_batch": n_per_batch, b"num_vis": 3072}
    else:
        folder = "cifar-100-python"
        members = {"train": _batch(rng, 5 * n_per_batch, {"fine_labels": 100, "coarse_labels": 20}),
                   "test": _batch(rng, n_per_batch, {"fine_labels": 100, "coarse_labels": 20}),
                   "meta": {b"fine_label_names": [f"fine{i}".encode() for i in range(100)],
                            b"coarse_label_names": [f"coarse{i}".encode() for i in range(20)]}}
    blobs = {name: pickle.dumps(d, protocol=protocol) for name, d in members.items()}
    blobs.update(poison or {})
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for name, blob in blobs.items():
            info = tarfile.TarInfo(f"{folder}/{name}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    if extract_to is not None:
        (extract_to / folder).mkdir(parents=True, exist_ok=True)
        for name, blob in blobs.items():
            (extract_to / folder / name).write_bytes(blob)
    return members
