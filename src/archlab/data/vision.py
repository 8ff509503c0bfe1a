"""Downloadable image datasets: MNIST, Fashion-MNIST, KMNIST (IDX files) and CIFAR-10/100.

archlab reads the original file formats itself (no torchvision):

* **IDX** (LeCun's format, ``.gz`` or raw): a 4-byte magic ``00 00 <type> <ndim>``, ``ndim``
  big-endian uint32 sizes, then the values in C order. The header is checked against the byte
  count, so a truncated or damaged file is an :class:`~archlab.utils.ArchlabError` naming the
  file and its expected MD5, never a garbled array.
* **CIFAR "python version"**: pickled dicts (``b"data"``: (N, 3072) uint8 in CHW order,
  ``b"labels"`` or ``b"fine_labels"``/``b"coarse_labels"``) inside the ``.tar.gz``, read
  straight from the archive (or from an already extracted ``cifar-10-batches-py/`` folder). The
  pickles are loaded with :class:`RestrictedUnpickler`, which builds numpy arrays and plain
  containers and refuses every other global, so a tampered file cannot run code.

Every loader returns images as ``uint8`` (N, C, H, W), labels as ``int64`` (N,), and the
per-channel mean/std of the training images in [0, 1] units (computed exactly from a histogram
of the pixel values: MNIST gives the familiar 0.1307/0.3081).
"""

from __future__ import annotations

import gzip
import io
import pickle
import struct
import tarfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from archlab.data.base import ArraySplit, DataBundle, DatasetInfo
from archlab.data.download import RemoteFile, fetch, register_files
from archlab.registry import register_dataset
from archlab.utils import ArchlabError, file_md5

__all__ = [
    "read_idx",
    "check_idx_file",
    "RestrictedUnpickler",
    "restricted_loads",
    "read_cifar",
    "channel_stats",
    "MNIST_FILES",
    "FASHION_MNIST_FILES",
    "KMNIST_FILES",
    "CIFAR10_FILE",
    "CIFAR100_FILE",
]

# --------------------------------------------------------------------------------------------
# IDX
# --------------------------------------------------------------------------------------------

# IDX type byte -> numpy dtype (multi-byte values are big-endian in the file).
_IDX_TYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


class _IdxFormatError(ValueError):
    pass


def _damaged(path: Path, problem: str, md5: str | None, hint: str) -> ArchlabError:
    lines = [f"{path} is damaged or not the expected file: {problem}."]
    if md5:
        lines.append(f"  expected md5 (of the published file): {md5}")
    lines.append(
        "To fix it: delete the file and load the dataset again to download a fresh copy"
        + (f" ({hint})" if hint else "")
        + ", or check a copy made by hand with md5sum."
    )
    return ArchlabError("\n".join(lines))


def _idx_header(head: bytes) -> tuple[np.dtype, tuple[int, ...], int]:
    """(dtype, dims, header length) from the first bytes of an IDX file."""
    if len(head) < 4:
        raise _IdxFormatError(f"only {len(head)} bytes, shorter than the 4-byte IDX magic")
    if head[0] != 0 or head[1] != 0:
        raise _IdxFormatError(f"bad IDX magic {head[:4].hex()} (expected 0000<type><ndim>)")
    if head[2] not in _IDX_TYPES:
        raise _IdxFormatError(f"unknown IDX value type 0x{head[2]:02x}")
    ndim = head[3]
    if not 1 <= ndim <= 8:
        raise _IdxFormatError(f"IDX header says {ndim} dimensions")
    n_head = 4 + 4 * ndim
    if len(head) < n_head:
        raise _IdxFormatError(f"file ends inside the IDX header ({len(head)} of {n_head} bytes)")
    dims = struct.unpack(f">{ndim}I", head[4:n_head])
    return _IDX_TYPES[head[2]], dims, n_head


def _parse_idx(raw: bytes) -> np.ndarray:
    dtype, dims, n_head = _idx_header(raw[:36])
    want = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    have = len(raw) - n_head
    if have != want:
        raise _IdxFormatError(
            f"the IDX header promises {want} bytes of data (shape {tuple(dims)}) but the file holds {have}"
            + (" (truncated)" if have < want else "")
        )
    arr = np.frombuffer(raw, dtype=dtype, count=int(np.prod(dims)), offset=n_head).reshape(dims)
    # A native-endian, writable copy (torch.from_numpy wants writable memory).
    return arr.astype(dtype.newbyteorder("="), copy=True)


def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(2) == b"\x1f\x8b"


def read_idx(path: str | Path, *, md5: str | None = None, hint: str = "") -> np.ndarray:
    """Read an IDX file (gzip-compressed or raw, detected from its first bytes).

    Args:
        path: the file.
        md5: the published MD5 of the file, quoted in the error message if it is damaged.
        hint: where a fresh copy comes from (an address), also quoted.

    Returns:
        the array, shape as in the header (MNIST images: (N, 28, 28) uint8; labels: (N,) uint8),
        in native byte order.

    Raises:
        ArchlabError: bad magic, unknown type, truncated or overlong data, damaged gzip stream.
    """
    path = Path(path)
    try:
        if _is_gzip(path):
            raw = gzip.decompress(path.read_bytes())
        else:
            raw = path.read_bytes()
        return _parse_idx(raw)
    except (_IdxFormatError, EOFError, zlib.error, gzip.BadGzipFile) as e:
        raise _damaged(path, str(e) or type(e).__name__, md5, hint) from None
    except OSError as e:
        raise ArchlabError(f"cannot read {path}: {e}") from None


def check_idx_file(path: str | Path) -> None:
    """Check an uncompressed IDX file's header against its size without reading the data.

    Raises:
        ArchlabError: bad header or wrong size.
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(36)
        dtype, dims, n_head = _idx_header(head)
        want = n_head + int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
        have = path.stat().st_size
        if have != want:
            raise _IdxFormatError(f"size {have} bytes, the IDX header implies {want}")
    except _IdxFormatError as e:
        raise _damaged(path, str(e), None, "") from None


# --------------------------------------------------------------------------------------------
# Restricted unpickling (CIFAR)
# --------------------------------------------------------------------------------------------

# What pickled numpy arrays (protocols 0-5, Python 2 and 3, numpy 1 and 2) refer to.
_NUMPY_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),  # how protocol-2 pickles written by Python 3 store bytes
}
# Plain data types only: no getattr, eval, exec, __import__, open...
_SAFE_BUILTINS = {"list", "dict", "tuple", "set", "frozenset", "bytes", "bytearray", "str", "int",
                  "float", "complex", "bool", "slice", "range", "object"}


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that only builds numpy arrays, numpy scalars and builtin containers.

    CIFAR's batches are pickles; ``pickle.load`` on a tampered file would run arbitrary code.
    Any global outside the allow-list raises :class:`pickle.UnpicklingError`.
    """

    #: further ``(module, name) -> resolver()`` globals a subclass allows (see
    #: :class:`archlab.data.graph_datasets.PlanetoidUnpickler`); the resolver returns the object.
    extra_globals: ClassVar[dict[tuple[str, str], Callable[[], Any]]] = {}

    def find_class(self, module: str, name: str) -> Any:
        resolver = self.extra_globals.get((module, name))
        if resolver is not None:
            return resolver()
        allowed = (module, name) in _NUMPY_GLOBALS or (
            module in ("builtins", "__builtin__") and name in _SAFE_BUILTINS
        )
        if not allowed:
            raise pickle.UnpicklingError(
                f"refusing to load global {module}.{name}: archlab only unpickles numpy arrays and "
                f"plain containers from dataset files"
            )
        # numpy 2 moved numpy.core to numpy._core; the old path warns. Files written by numpy 1
        # (all real CIFAR files) name the old one.
        if module.startswith("numpy.core.") and hasattr(np, "_core"):
            module = "numpy._core." + module[len("numpy.core."):]
        return super().find_class(module, name)


def restricted_loads(data: bytes, *, encoding: str = "latin1",
                     unpickler: type[RestrictedUnpickler] | None = None) -> Any:
    """Unpickle ``data`` with :class:`RestrictedUnpickler` (or the subclass ``unpickler``).

    ``encoding="latin1"`` reads Python 2 pickles of numpy arrays (the real CIFAR files) correctly.
    """
    return (unpickler or RestrictedUnpickler)(io.BytesIO(data), encoding=encoding).load()


# --------------------------------------------------------------------------------------------
# CIFAR
# --------------------------------------------------------------------------------------------

# Member name -> md5 (as published with the archives; torchvision checks the same values).
_CIFAR10_MEMBERS = {
    "data_batch_1": "c99cafc152244af753f735de768cd75f",
    "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
    "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
    "test_batch": "40351d587109b95175f43aff81a1287e",
    "batches.meta": "5ff9c542aee3614f3951f8cda6e48888",
}
_CIFAR100_MEMBERS = {
    "train": "16019d7e3df5f24257cddd939b257f8d",
    "test": "f0ef6b0ae62326f3e7ffdfab6717acfc",
    "meta": "7973b15100ade9c7d40fb424638fde48",
}
_CIFAR_LAYOUT = {
    "cifar10": {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"], "meta": "batches.meta"},
    "cifar100": {"train": ["train"], "test": ["test"], "meta": "meta"},
}


def _get(d: dict, key: str) -> Any:
    """``d[key]`` for dicts pickled with bytes keys (Python 3 writers) or str keys (latin1 reads)."""
    if key.encode() in d:
        return d[key.encode()]
    if key in d:
        return d[key]
    raise KeyError(key)


def _check_cifar_folder(members: dict[str, str]):
    def check(folder: Path) -> None:
        bad = []
        for name, md5 in members.items():
            p = Path(folder) / name
            if not p.is_file():
                bad.append(f"{name} missing")
            elif file_md5(p) != md5:
                bad.append(f"{name} md5 mismatch (expected {md5})")
        if bad:
            raise ArchlabError(f"{folder} is incomplete or damaged: {'; '.join(bad)}")

    return check


def _cifar_member_bytes(path: Path, names: list[str]) -> dict[str, bytes]:
    """The raw bytes of the named members of a CIFAR archive or extracted folder."""
    out: dict[str, bytes] = {}
    if path.is_dir():
        for name in names:
            p = path / name
            if p.is_file():
                out[name] = p.read_bytes()
        return out
    with tarfile.open(path, "r:*") as tar:
        for member in tar:
            base = member.name.rsplit("/", 1)[-1]
            if member.isfile() and base in names and base not in out:
                f = tar.extractfile(member)
                if f is not None:
                    out[base] = f.read()
    return out


def read_cifar(
    path: str | Path, variant: str = "cifar10", *, label_key: str | None = None, md5: str | None = None, hint: str = ""
) -> dict[str, Any]:
    """Read CIFAR-10 or CIFAR-100 (python version) from its ``.tar.gz`` or extracted folder.

    Args:
        path: ``cifar-10-python.tar.gz`` (or ``cifar-100-...``) or the extracted folder.
        variant: ``"cifar10"`` or ``"cifar100"``.
        label_key: which labels (``"labels"`` for CIFAR-10; ``"fine_labels"`` (default) or
            ``"coarse_labels"`` for CIFAR-100).
        md5, hint: quoted in the error message if the file is damaged.

    Returns:
        ``{"train": (x, y), "test": (x, y), "class_names": [...]}`` with x uint8 (N, 3, 32, 32)
        and y int64 (N,).

    Raises:
        ArchlabError: damaged archive, missing member, a pickle holding anything but arrays and
            containers, or batches of the wrong shape.
    """
    path = Path(path)
    layout = _CIFAR_LAYOUT[variant]
    if label_key is None:
        label_key = "labels" if variant == "cifar10" else "fine_labels"
    names = layout["train"] + layout["test"] + [layout["meta"]]
    try:
        blobs = _cifar_member_bytes(path, names)
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as e:
        raise _damaged(path, f"cannot read the archive ({type(e).__name__}: {e})", md5, hint) from None
    missing = [n for n in names if n not in blobs]
    if missing:
        raise _damaged(path, f"it lacks {', '.join(missing)}", md5, hint)

    def load(name: str) -> dict:
        try:
            obj = restricted_loads(blobs[name])
        except pickle.UnpicklingError as e:
            raise _damaged(path, f"{name}: {e}", md5, hint) from None
        except Exception as e:  # noqa: BLE001 - any decoding failure is a damaged file
            raise _damaged(path, f"{name} is not a readable pickle ({type(e).__name__}: {e})", md5, hint) from None
        if not isinstance(obj, dict):
            raise _damaged(path, f"{name} holds a {type(obj).__name__}, not a dict", md5, hint)
        return obj

    def batches(members: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        xs, ys = [], []
        for name in members:
            d = load(name)
            try:
                data = np.asarray(_get(d, "data"), dtype=np.uint8)
                labels = np.asarray(_get(d, label_key), dtype=np.int64)
            except KeyError as e:
                raise _damaged(path, f"{name} has no {e.args[0]!r} entry", md5, hint) from None
            if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(labels) != len(data):
                raise _damaged(
                    path, f"{name} holds data {data.shape} and {len(labels)} labels, expected (N, 3072) and N",
                    md5, hint,
                )
            xs.append(data.reshape(-1, 3, 32, 32))  # rows are R(1024) G(1024) B(1024): (N, C, H, W)
            ys.append(labels)
        return torch.from_numpy(np.concatenate(xs)), torch.from_numpy(np.concatenate(ys))

    meta = load(layout["meta"])
    meta_key = "label_names" if variant == "cifar10" else label_key.replace("labels", "label_names")
    try:
        class_names = [n.decode() if isinstance(n, bytes) else str(n) for n in _get(meta, meta_key)]
    except KeyError:
        raise _damaged(path, f"{layout['meta']} has no {meta_key!r} entry", md5, hint) from None
    return {"train": batches(layout["train"]), "test": batches(layout["test"]), "class_names": class_names}


# --------------------------------------------------------------------------------------------
# Statistics
# --------------------------------------------------------------------------------------------


def channel_stats(x: np.ndarray | torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Exact per-channel mean and std (population) of uint8 images (N, C, H, W), in [0, 1] units.

    A 256-bin histogram per channel: exact, and fast even for 60000 MNIST images.
    """
    t = x if isinstance(x, torch.Tensor) else torch.from_numpy(np.asarray(x))
    if t.dtype != torch.uint8 or t.dim() != 4:
        raise ValueError(f"channel_stats wants uint8 (N, C, H, W) images, got {t.dtype} {tuple(t.shape)}")
    values = np.arange(256, dtype=np.float64) / 255.0
    means, stds = [], []
    for c in range(t.shape[1]):
        # torch.bincount counts uint8 directly (numpy's would first copy to int64: 10x slower).
        counts = torch.bincount(t[:, c].reshape(-1).cpu(), minlength=256).numpy().astype(np.float64)
        n = counts.sum()
        mean = float((counts * values).sum() / n)
        var = float((counts * values * values).sum() / n - mean * mean)
        means.append(round(mean, 6))
        stds.append(round(max(var, 0.0) ** 0.5, 6))
    return tuple(means), tuple(stds)


# --------------------------------------------------------------------------------------------
# The datasets
# --------------------------------------------------------------------------------------------


def _idx_files(base_urls: list[str], md5s: list[str], homepage: str) -> tuple[RemoteFile, ...]:
    names = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
             "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
    return tuple(
        RemoteFile(n, [b + n for b in base_urls], md5, check_unpacked=check_idx_file, homepage=homepage)
        for n, md5 in zip(names, md5s)
    )


MNIST_FILES = _idx_files(
    ["https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"],
    ["f68b3c2dcbeaaa9fbdd348bbdeb94873", "d53e105ee54ea40749a09fcbcd1e9432",
     "9fb629c4189551a2d022fa330f9573f3", "ec29112dd5afa0611ce80d1b7f02629c"],
    "http://yann.lecun.com/exdb/mnist/",
)
FASHION_MNIST_FILES = _idx_files(
    ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"],
    ["8d4fb7e6c68d591d4c3dfef9ec88bf0d", "25c81989df183df01b3e8a0aad5dffbe",
     "bef4ecab320f06d8554ea6380940ec79", "bb300cfdad3c16e7a12a480ee83cd310"],
    "https://github.com/zalandoresearch/fashion-mnist",
)
KMNIST_FILES = _idx_files(
    ["http://codh.rois.ac.jp/kmnist/dataset/kmnist/"],
    ["bdb82020997e1d708af4cf47b453dcf7", "e144d726b3acfaa3e44228e80efcd344",
     "5c965bf0a639b31b8f53240b1b52f4d7", "7320c461ea6c1c855c0b718fb2a4b134"],
    "https://github.com/rois-codh/kmnist",
)
CIFAR10_FILE = RemoteFile(
    "cifar-10-python.tar.gz",
    ["https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"],
    "c58f30108f718f92721af3b95e74349a",
    unpacked="cifar-10-batches-py",
    check_unpacked=_check_cifar_folder(_CIFAR10_MEMBERS),
    homepage="https://www.cs.toronto.edu/~kriz/cifar.html",
)
CIFAR100_FILE = RemoteFile(
    "cifar-100-python.tar.gz",
    ["https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"],
    "eb9058c3a382ffc7106e4002c42a8d85",
    unpacked="cifar-100-python",
    check_unpacked=_check_cifar_folder(_CIFAR100_MEMBERS),
    homepage="https://www.cs.toronto.edu/~kriz/cifar.html",
)

# torchvision's layout (<root>/MNIST/raw/...) is accepted too, so an existing cache is reused.
_MNIST_SPEC = register_files("mnist", MNIST_FILES, extra_dirs=("MNIST/raw",))
_FASHION_SPEC = register_files("fashion_mnist", FASHION_MNIST_FILES, extra_dirs=("FashionMNIST/raw", "fashion-mnist"))
_KMNIST_SPEC = register_files("kmnist", KMNIST_FILES, extra_dirs=("KMNIST/raw",))
_CIFAR10_SPEC = register_files("cifar10", (CIFAR10_FILE,))
_CIFAR100_SPEC = register_files("cifar100", (CIFAR100_FILE,))

_FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
_KMNIST_CLASSES = ["o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"]


def _idx_bundle(spec, root: Path, download: bool, class_names: list[str]) -> DataBundle:
    paths = [fetch(f, root, download, dataset=spec.dataset, extra_dirs=spec.extra_dirs) for f in spec.files]
    arrays = [read_idx(p, md5=f.md5, hint=f.urls[0]) for p, f in zip(paths, spec.files)]
    splits = []
    for (x, y), (px, py), (fx, fy) in zip(
        ((arrays[0], arrays[1]), (arrays[2], arrays[3])), ((paths[0], paths[1]), (paths[2], paths[3])),
        ((spec.files[0], spec.files[1]), (spec.files[2], spec.files[3])),
    ):
        if x.ndim != 3 or x.dtype != np.uint8:
            raise _damaged(px, f"holds {x.dtype} {x.shape}, expected uint8 images (N, H, W)", fx.md5, fx.urls[0])
        if y.ndim != 1 or len(y) != len(x):
            raise _damaged(py, f"holds labels {y.shape} for {len(x)} images in {px.name}", fy.md5, fy.urls[0])
        if len(y) and (int(y.max()) >= len(class_names) or int(y.min()) < 0):
            raise _damaged(py, f"labels outside 0..{len(class_names) - 1}", fy.md5, fy.urls[0])
        splits.append(ArraySplit(torch.from_numpy(x).unsqueeze(1), torch.from_numpy(y.astype(np.int64))))
    train, test = splits
    mean, std = channel_stats(train.x)
    info = DatasetInfo(
        name=spec.dataset, kind="image", input_shape=tuple(train.x.shape[1:]), num_classes=len(class_names),
        class_names=list(class_names), mean=mean, std=std, source=str(paths[0].parent),
    )
    return DataBundle(info, train, None, test)


@register_dataset("mnist", family="image", download=True, size="60000/10000",
                  description="MNIST handwritten digits, 1x28x28, 10 classes (LeCun et al. 1998)")
def mnist(root: Path, download: bool = True) -> DataBundle:
    """MNIST: 60000 train / 10000 test grey 28x28 digits. x uint8 (N, 1, 28, 28), y int64 (N,)."""
    return _idx_bundle(_MNIST_SPEC, Path(root), download, [str(i) for i in range(10)])


@register_dataset("fashion_mnist", family="image", download=True, size="60000/10000",
                  description="Fashion-MNIST clothing images, 1x28x28, 10 classes (Xiao et al. 2017)")
def fashion_mnist(root: Path, download: bool = True) -> DataBundle:
    """Fashion-MNIST: MNIST's format with Zalando article images. x uint8 (N, 1, 28, 28)."""
    return _idx_bundle(_FASHION_SPEC, Path(root), download, _FASHION_CLASSES)


@register_dataset("kmnist", family="image", download=True, size="60000/10000",
                  description="Kuzushiji-MNIST cursive hiragana, 1x28x28, 10 classes (Clanuwat et al. 2018)")
def kmnist(root: Path, download: bool = True) -> DataBundle:
    """Kuzushiji-MNIST: ten hiragana in MNIST's format. x uint8 (N, 1, 28, 28)."""
    return _idx_bundle(_KMNIST_SPEC, Path(root), download, _KMNIST_CLASSES)


def _cifar_bundle(spec, variant: str, root: Path, download: bool, label_key: str | None) -> DataBundle:
    f = spec.files[0]
    path = fetch(f, root, download, dataset=spec.dataset, extra_dirs=spec.extra_dirs)
    out = read_cifar(path, variant, label_key=label_key, md5=f.md5, hint=f.urls[0])
    train, test = ArraySplit(*out["train"]), ArraySplit(*out["test"])
    names = out["class_names"]
    mean, std = channel_stats(train.x)
    info = DatasetInfo(
        name=spec.dataset, kind="image", input_shape=(3, 32, 32), num_classes=len(names), class_names=names,
        mean=mean, std=std, source=str(path),
    )
    return DataBundle(info, train, None, test)


@register_dataset("cifar10", family="image", download=True, size="50000/10000",
                  description="CIFAR-10 tiny colour images, 3x32x32, 10 classes (Krizhevsky 2009)")
def cifar10(root: Path, download: bool = True) -> DataBundle:
    """CIFAR-10: 50000 train / 10000 test colour 32x32 images. x uint8 (N, 3, 32, 32)."""
    return _cifar_bundle(_CIFAR10_SPEC, "cifar10", Path(root), download, None)


@register_dataset("cifar100", family="image", download=True, size="50000/10000",
                  description="CIFAR-100 tiny colour images, 3x32x32, 100 classes (20 coarse)")
def cifar100(root: Path, download: bool = True, label_mode: str = "fine") -> DataBundle:
    """CIFAR-100: like CIFAR-10 with 100 classes. x uint8 (N, 3, 32, 32).

    Args:
        label_mode: ``"fine"`` (100 classes) or ``"coarse"`` (20 superclasses).
    """
    if label_mode not in ("fine", "coarse"):
        raise ArchlabError(f"cifar100: label_mode must be 'fine' or 'coarse', got {label_mode!r}")
    return _cifar_bundle(_CIFAR100_SPEC, "cifar100", Path(root), download, f"{label_mode}_labels")
