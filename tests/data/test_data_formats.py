"""archlab's own readers: IDX (gz and raw), CIFAR pickles in tar.gz, the restricted unpickler."""

from __future__ import annotations

import gzip
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from _data_fakes import MNIST_NAMES, idx_bytes, write_fake_cifar, write_fake_mnist, write_idx

from archlab.data import load_dataset, verify_dataset
from archlab.data.vision import (
    MNIST_FILES,
    channel_stats,
    check_idx_file,
    read_cifar,
    read_idx,
    restricted_loads,
)
from archlab.utils import ArchlabError

# --- IDX -------------------------------------------------------------------------------------


@pytest.mark.parametrize("gz", [True, False])
@pytest.mark.parametrize(
    "arr",
    [
        np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4),
        np.array([-3, 0, 7], dtype=np.int8),
        np.arange(-6, 6, dtype=np.int32).reshape(3, 4) * 100000,
        np.linspace(-1, 1, 10, dtype=np.float32).reshape(2, 5),
        np.array([1.5, -2.25], dtype=np.float64),
        np.array([[300, -300]], dtype=np.int16),
    ],
    ids=["u8", "i8", "i32", "f32", "f64", "i16"],
)
def test_idx_round_trip(tmp_path, arr, gz):
    path = write_idx(tmp_path / ("a.idx" + (".gz" if gz else "")), arr, gz=gz)
    out = read_idx(path)
    assert out.shape == arr.shape and out.dtype == arr.dtype.newbyteorder("=")
    np.testing.assert_array_equal(out, arr)
    assert out.flags.writeable
    if not gz:
        check_idx_file(path)  # header agrees with size


def test_idx_gzip_detected_by_content_not_name(tmp_path):
    arr = np.arange(10, dtype=np.uint8)
    path = tmp_path / "labels-without-suffix"
    path.write_bytes(gzip.compress(idx_bytes(arr)))
    np.testing.assert_array_equal(read_idx(path), arr)


def _damaged_idx_cases(tmp_path: Path) -> list[Path]:
    good = idx_bytes(np.zeros((5, 28, 28), np.uint8))
    cases = {
        "truncated-data-idx3-ubyte": good[:-100],
        "overlong-idx3-ubyte": good + b"\x00" * 7,
        "badmagic-idx3-ubyte": b"\x01\x02" + good[2:],
        "badtype-idx3-ubyte": good[:2] + b"\x42" + good[3:],
        "tiny-idx3-ubyte": good[:2],
        "cut-header-idx3-ubyte": good[:9],
    }
    paths = []
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        paths.append(tmp_path / name)
    gz = gzip.compress(good)
    (tmp_path / "cut-stream-idx3-ubyte.gz").write_bytes(gz[: len(gz) // 2])
    paths.append(tmp_path / "cut-stream-idx3-ubyte.gz")
    (tmp_path / "garbage-idx3-ubyte.gz").write_bytes(b"\x1f\x8b" + b"not really gzip" * 10)
    paths.append(tmp_path / "garbage-idx3-ubyte.gz")
    return paths


def test_damaged_idx_is_clear_error(tmp_path):
    for path in _damaged_idx_cases(tmp_path):
        with pytest.raises(ArchlabError) as e:
            read_idx(path, md5="0123456789abcdef0123456789abcdef", hint="http://example.org/x")
        msg = str(e.value)
        assert path.name in msg, msg
        assert "0123456789abcdef0123456789abcdef" in msg
        assert "delete" in msg  # says what to do


def test_check_idx_file_catches_size_mismatch(tmp_path):
    p = tmp_path / "x-idx1-ubyte"
    p.write_bytes(idx_bytes(np.zeros(10, np.uint8))[:-1])
    with pytest.raises(ArchlabError, match="x-idx1-ubyte"):
        check_idx_file(p)


# --- MNIST-family loaders on files the test writes -------------------------------------------


def test_mnist_loader_gz_and_raw_and_torchvision_layout(tmp_path):
    arrays = write_fake_mnist(tmp_path / "a" / "mnist", gz=True)
    b = load_dataset("mnist", tmp_path / "a", val_split=0.0, download=False)
    assert b.train.x.shape == (40, 1, 28, 28) and b.train.x.dtype == torch.uint8
    assert b.test.x.shape == (20, 1, 28, 28) and b.test.y.dtype == torch.int64
    np.testing.assert_array_equal(b.train.x[:, 0].numpy(), arrays[MNIST_NAMES[0]])
    np.testing.assert_array_equal(b.test.y.numpy(), arrays[MNIST_NAMES[3]])
    assert b.info.num_classes == 10 and b.info.class_names[3] == "3"
    mean = arrays[MNIST_NAMES[0]].mean() / 255
    assert b.info.mean[0] == pytest.approx(mean, abs=1e-6)
    assert b.info.std[0] == pytest.approx(arrays[MNIST_NAMES[0]].std() / 255, abs=1e-6)

    # uncompressed copies directly in the root, and torchvision's MNIST/raw layout
    write_fake_mnist(tmp_path / "b", gz=False)
    assert len(load_dataset("mnist", tmp_path / "b", val_split=0.0, download=False).train) == 40
    write_fake_mnist(tmp_path / "c" / "KMNIST" / "raw", gz=True, n_train=30)
    k = load_dataset("kmnist", tmp_path / "c", val_split=0.0, download=False)
    assert len(k.train) == 30 and k.info.class_names[0] == "o"


def test_corrupt_mnist_file_names_file_and_md5(tmp_path):
    write_fake_mnist(tmp_path / "mnist")
    target = tmp_path / "mnist" / "t10k-images-idx3-ubyte.gz"
    raw = gzip.decompress(target.read_bytes())
    target.write_bytes(gzip.compress(raw[:-28 * 28 * 3]))  # three images short
    with pytest.raises(ArchlabError) as e:
        load_dataset("mnist", tmp_path, download=False)
    msg = str(e.value)
    assert "t10k-images-idx3-ubyte.gz" in msg
    assert MNIST_FILES[2].md5 in msg
    assert "ossci-datasets" in msg  # where a fresh copy comes from


def test_mismatched_label_count_is_clear(tmp_path):
    write_fake_mnist(tmp_path / "mnist")
    write_idx(tmp_path / "mnist" / "train-labels-idx1-ubyte.gz", np.zeros(39, np.uint8))
    with pytest.raises(ArchlabError, match="train-labels-idx1-ubyte.gz"):
        load_dataset("mnist", tmp_path, download=False)


def test_verify_reports_md5_mismatch(tmp_path):
    write_fake_mnist(tmp_path / "mnist")
    with pytest.raises(ArchlabError) as e:
        verify_dataset("mnist", tmp_path)
    assert MNIST_FILES[0].md5 in str(e.value) and "train-images-idx3-ubyte.gz" in str(e.value)


# --- CIFAR -----------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_cifar10_reader_tar_gz(tmp_path, protocol):
    members = write_fake_cifar(tmp_path / "cifar10" / "cifar-10-python.tar.gz", protocol=protocol)
    b = load_dataset("cifar10", tmp_path, val_split=0.0, download=False)
    assert b.train.x.shape == (30, 3, 32, 32) and b.train.x.dtype == torch.uint8
    assert b.test.x.shape == (6, 3, 32, 32) and b.test.y.dtype == torch.int64
    assert b.info.class_names[:3] == ["airplane", "automobile", "bird"] and b.info.num_classes == 10
    first = members["data_batch_1"]
    # rows are R, G, B planes of 1024: pixel (c, i, j) = data[c * 1024 + i * 32 + j]
    assert int(b.train.x[0, 1, 2, 3]) == int(first[b"data"][0, 1024 + 2 * 32 + 3])
    assert b.train.y[:6].tolist() == first[b"labels"]
    assert b.test.y.tolist() == members["test_batch"][b"labels"]
    assert len(b.info.mean) == 3 and all(0 < s < 1 for s in b.info.std)


def test_cifar10_extracted_folder_and_cifar100(tmp_path):
    write_fake_cifar(tmp_path / "unused.tar.gz", extract_to=tmp_path / "root")
    b = load_dataset("cifar10", tmp_path / "root", val_split=0.0, download=False)
    assert len(b.train) == 30 and len(b.test) == 6
    m = write_fake_cifar(tmp_path / "r100" / "cifar-100-python.tar.gz", variant="cifar100")
    fine = load_dataset("cifar100", tmp_path / "r100", val_split=0.0, download=False)
    assert fine.info.num_classes == 100 and fine.train.y.tolist() == m["train"][b"fine_labels"]
    coarse = load_dataset("cifar100", tmp_path / "r100", val_split=0.0, download=False, label_mode="coarse")
    assert coarse.info.num_classes == 20 and coarse.info.class_names[0] == "coarse0"
    assert coarse.test.y.tolist() == m["test"][b"coarse_labels"]


def test_cifar_damaged_archive_is_clear(tmp_path):
    path = tmp_path / "cifar10" / "cifar-10-python.tar.gz"
    write_fake_cifar(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ArchlabError) as e:
        load_dataset("cifar10", tmp_path, download=False)
    assert "cifar-10-python.tar.gz" in str(e.value) and "c58f30108f718f92721af3b95e74349a" in str(e.value)
    write_fake_cifar(path, poison={"test_batch": pickle.dumps({b"data": np.zeros((2, 100), np.uint8),
                                                                b"labels": [0, 1]})})
    with pytest.raises(ArchlabError, match="test_batch"):
        read_cifar(path)


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


class _System:
    def __reduce__(self):
        import os

        return (os.system, ("echo pwned",))


def test_restricted_unpickler_rejects_code(tmp_path):
    marker = tmp_path / "pwned"
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        restricted_loads(pickle.dumps({b"data": _Evil(marker)}))
    assert not marker.exists()
    with pytest.raises(pickle.UnpicklingError, match="system"):
        restricted_loads(pickle.dumps(_System()))
    # ...and inside a CIFAR archive it is an ArchlabError naming the member
    path = tmp_path / "cifar10" / "cifar-10-python.tar.gz"
    write_fake_cifar(path, poison={"data_batch_3": pickle.dumps({b"data": _Evil(marker), b"labels": []})})
    with pytest.raises(ArchlabError, match="data_batch_3"):
        load_dataset("cifar10", tmp_path, download=False)
    assert not marker.exists()


def test_restricted_unpickler_reads_numpy_and_containers():
    obj = {b"a": np.arange(6, dtype=np.uint8).reshape(2, 3), "b": [1, 2.5, "x", (3, None)], "c": np.float32(2)}
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        out = restricted_loads(pickle.dumps(obj, protocol=protocol))
        np.testing.assert_array_equal(out[b"a"], obj[b"a"])
        assert out["b"] == obj["b"] and out["c"] == 2


def test_channel_stats_exact():
    x = torch.randint(0, 256, (7, 3, 5, 4), dtype=torch.uint8)
    mean, std = channel_stats(x)
    f = x.double() / 255
    assert mean == pytest.approx(f.mean(dim=(0, 2, 3)).tolist(), abs=1e-6)
    assert std == pytest.approx(f.std(dim=(0, 2, 3), unbiased=False).tolist(), abs=1e-6)
