"""Your own pictures as a dataset: one sub-folder per class (torchvision's ImageFolder layout).

Two layouts are read (``data.root`` is the top folder)::

    pictures/                      pictures/
      cats/  a.jpg b.png ...         train/ cats/ ... dogs/ ...
      dogs/  c.jpg ...               val/   cats/ ... dogs/ ...     (optional)
                                     test/  cats/ ... dogs/ ...     (optional)

* **Split layout** (the root has a ``train/`` folder): the splits are the folders. ``val/`` and
  ``test/`` are optional; without ``val/``, ``load_dataset`` holds out ``data.val_split`` of train
  as usual. Their class folders must be among train's.
* **Flat layout**: every sub-folder is a class; a seeded, stratified ``test_split`` of each class
  becomes the test set (every class keeps at least one training image), then ``load_dataset``
  holds out the validation rows from the rest.

Class names are the folder names, sorted (label ``i`` is the ``i``-th name). Files ending in
.png .jpg .jpeg .bmp .gif .webp (any case) are read with Pillow, searching class folders
recursively; hidden files and folders are ignored. Each picture is converted to ``mode`` ("RGB",
or "L" for grey; by default "L" only if every picture is greyscale), its shorter side resized to
``image_size`` (bilinear, antialiased) and the centre ``image_size`` x ``image_size`` square
cropped, then all are stacked as ``uint8`` (N, C, S, S) with ``int64`` labels. Normalisation
uses the training split's per-channel mean and std (:func:`archlab.data.vision.channel_stats`).

Files that cannot be decoded (damaged, or not pictures) are skipped with one warning that counts
and lists them; a class folder with no readable picture, or a missing root, is an error that
shows the expected layout. Nothing is cached: the pictures are decoded at every load (in
threads; Pillow releases the GIL while decoding).

Example::

    archlab train resnet18 --data image_folder data.root=~/pictures data.options.image_size=64
"""

from __future__ import annotations

import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from archlab.data.base import ArraySplit, DataBundle, DatasetInfo
from archlab.data.vision import channel_stats
from archlab.registry import register_dataset
from archlab.utils import ArchlabError, data_root

__all__ = ["IMAGE_EXTENSIONS", "image_folder", "read_image", "find_images"]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
_GREY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}
_SPLITS = ("train", "val", "test")

_LAYOUT = """Expected one folder per class, e.g.
    {root}/cats/a.jpg, {root}/cats/b.png, {root}/dogs/c.jpg ...
  or split folders with the same class folders inside:
    {root}/train/cats/..., {root}/train/dogs/..., {root}/val/... (optional), {root}/test/... (optional)
  (pictures: {exts})"""


def _layout_help(root: Path) -> str:
    return _LAYOUT.format(root=root, exts=" ".join(IMAGE_EXTENSIONS))


def _visible_dirs(folder: Path) -> list[Path]:
    return sorted(
        (p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")), key=lambda p: p.name
    )


def find_images(folder: Path) -> tuple[list[Path], list[Path]]:
    """(pictures, other files) under ``folder``, recursively, sorted; hidden entries are ignored."""
    images, others = [], []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            path = Path(dirpath) / name
            (images if name.lower().endswith(IMAGE_EXTENSIONS) else others).append(path)
    return images, others


@dataclass
class _Decoded:
    """One picture after resizing: RGB (S, S, 3) uint8 (or grey (S, S) for mode "L"), or None."""

    pixels: np.ndarray | None
    grey: bool = False
    error: str = ""


def _to_8bit(img):
    """16/32-bit greyscale pictures scaled to 8 bits (Pillow's own conversion clips at 255)."""
    from PIL import Image

    if img.mode.startswith("I") or img.mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if arr.max(initial=0) > 255 else 255.0
        return Image.fromarray(np.clip(np.rint(arr * (255.0 / top)), 0, 255).astype(np.uint8), mode="L")
    return img


def read_image(path: Path, image_size: int, mode: str | None = None) -> _Decoded:
    """Decode ``path``, resize its shorter side to ``image_size`` and crop the centre square.

    Args:
        path: the picture.
        image_size: the output side ``S``.
        mode: "RGB" or "L"; None gives RGB pixels (grey pictures replicated, so channel 0 is
            exactly the grey picture) and reports whether the picture was greyscale.

    Returns:
        the pixels (S, S, 3) or (S, S) uint8, or ``pixels=None`` and the decoding error.
    """
    from PIL import Image

    try:
        with Image.open(path) as img:
            img.draft(img.mode, (image_size, image_size))  # JPEG: decode at a reduced scale >= S
            img.load()
            grey = img.mode in _GREY_MODES
            img = _to_8bit(img)
            img = img.convert(mode or "RGB")
    except Exception as e:  # noqa: BLE001 - any decoding failure means an unreadable picture
        return _Decoded(None, error=f"{type(e).__name__}: {e}")
    w, h = img.size
    if w <= 0 or h <= 0:
        return _Decoded(None, error="empty picture")
    scale = image_size / min(w, h)
    nw, nh = max(image_size, round(w * scale)), max(image_size, round(h * scale))
    img = img.resize((nw, nh), Image.Resampling.BILINEAR)
    left, top = int(round((nw - image_size) / 2.0)), int(round((nh - image_size) / 2.0))
    img = img.crop((left, top, left + image_size, top + image_size))
    return _Decoded(np.asarray(img, dtype=np.uint8).copy(), grey)


def _class_files(split_dir: Path, classes: list[str], skipped: list[str]) -> dict[str, list[Path]]:
    out = {}
    for name in classes:
        images, others = find_images(split_dir / name)
        skipped.extend(f"{p} (not a {'/'.join(e[1:] for e in IMAGE_EXTENSIONS)} file)" for p in others)
        out[name] = images
    return out


def _stratified_test(y: np.ndarray, test_split: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded (train_index, test_index): ``round(n_c * test_split)`` of each class, at most n_c - 1."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        n_test = min(int(round(len(idx) * test_split)), len(idx) - 1)
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


@register_dataset(
    "image_folder",
    family="image",
    size="yours",
    description="your own pictures: one sub-folder per class (data.root=FOLDER)",
)
def image_folder(
    root: Path,
    download: bool = True,
    *,
    image_size: int = 64,
    mode: str | None = None,
    test_split: float = 0.2,
    data_seed: int = 0,
) -> DataBundle:
    """Pictures in class folders under ``root``; x uint8 (N, C, S, S), y int64 (N,).

    Args:
        root: the top folder (``data.root``); see the module docstring for the layouts.
        download: unused (nothing to download).
        image_size: side ``S`` of the square the pictures are resized and cropped to.
        mode: ``"RGB"``, ``"L"`` (grey), or None: "L" if every picture is greyscale, else "RGB".
        test_split: flat layout only: share of each class held out as the test set (0: none).
        data_seed: seed of that hold-out.

    Raises:
        ArchlabError: missing root, no class folders, a class folder without a readable picture,
            a val/test class unknown to train, or a bad option.
    """
    root = Path(root).expanduser()
    if not isinstance(image_size, int) or isinstance(image_size, bool) or image_size < 1:
        raise ArchlabError(f"image_folder: image_size must be a positive integer, got {image_size!r}")
    if mode is not None and mode not in ("RGB", "L"):
        raise ArchlabError(f"image_folder: mode must be 'RGB', 'L' or null (automatic), got {mode!r}")
    if not 0.0 <= test_split < 1.0:
        raise ArchlabError(f"image_folder: test_split must be in [0, 1), got {test_split}")
    if root == data_root(None):
        raise ArchlabError(
            f"image_folder reads your own pictures: set data.root=FOLDER (it is now archlab's data "
            f"folder {root}).\n" + _layout_help(Path("FOLDER"))
        )
    if not root.is_dir():
        raise ArchlabError(
            f"image_folder: folder {root} does not exist (set data.root=FOLDER).\n" + _layout_help(root)
        )
    split_layout = (root / "train").is_dir()
    if not split_layout and any((root / s).is_dir() for s in ("val", "test")):
        raise ArchlabError(
            f"image_folder: {root} has val/ or test/ but no train/ folder.\n" + _layout_help(root)
        )
    split_dirs = {s: root / s for s in _SPLITS if (root / s).is_dir()} if split_layout else {"train": root}
    classes = [p.name for p in _visible_dirs(split_dirs["train"])]
    if not classes:
        raise ArchlabError(
            f"image_folder: {split_dirs['train']} has no class folders.\n" + _layout_help(root)
        )
    skipped: list[str] = []
    files: dict[str, dict[str, list[Path]]] = {}
    for split, folder in split_dirs.items():
        names = [p.name for p in _visible_dirs(folder)]
        unknown = sorted(set(names) - set(classes))
        if unknown:
            raise ArchlabError(
                f"image_folder: {folder} has class folders {unknown} that {split_dirs['train']} "
                f"lacks (the classes are {classes}).\n" + _layout_help(root)
            )
        files[split] = _class_files(folder, [c for c in classes if c in names], skipped)
    loose = [p for p in root.iterdir() if p.is_file() and p.name.lower().endswith(IMAGE_EXTENSIONS)]
    skipped.extend(f"{p} (not inside a class folder)" for p in sorted(loose))

    # Decode everything once, in threads (Pillow releases the GIL while decoding and resizing).
    jobs = [
        (split, c, p) for split, per_class in files.items() for c, paths in per_class.items() for p in paths
    ]
    workers = min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        decoded = list(pool.map(lambda job: read_image(job[2], image_size, mode), jobs))

    kept: dict[str, tuple[list[np.ndarray], list[int]]] = {s: ([], []) for s in files}
    counts: dict[str, dict[str, int]] = {s: dict.fromkeys(files[s], 0) for s in files}
    all_grey = True
    for (split, c, path), d in zip(jobs, decoded):
        if d.pixels is None:
            skipped.append(f"{path} (cannot decode: {d.error})")
            continue
        all_grey &= d.grey
        kept[split][0].append(d.pixels)
        kept[split][1].append(classes.index(c))
        counts[split][c] += 1
    if skipped:
        shown = "\n  ".join(skipped[:20]) + (
            f"\n  ... and {len(skipped) - 20} more" if len(skipped) > 20 else ""
        )
        warnings.warn(f"image_folder: skipped {len(skipped)} file(s) under {root}:\n  {shown}", stacklevel=2)
    for split, per_class in counts.items():
        empty = [c for c, n in per_class.items() if n == 0]
        if empty:
            folder = split_dirs[split]
            raise ArchlabError(
                f"image_folder: class folder(s) {', '.join(str(folder / c) for c in empty)} hold no readable "
                f"picture: add pictures or remove the folder.\n" + _layout_help(root)
            )

    grey_out = mode == "L" or (mode is None and all_grey)

    def stack(split: str) -> ArraySplit | None:
        pixels, labels = kept[split]
        if not pixels:  # an empty val/ or test/ folder: as if it were absent
            return None
        x = np.stack(pixels)  # (N, S, S, 3) or (N, S, S)
        if mode is None:  # decoded as RGB: grey pictures have three equal channels
            x = x[..., :1] if grey_out else x
        elif x.ndim == 3:
            x = x[..., None]
        t = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))  # (N, C, S, S)
        return ArraySplit(t, torch.tensor(labels, dtype=torch.int64))

    splits = {s: stack(s) for s in kept}
    train, val, test = splits["train"], splits.get("val"), splits.get("test")
    assert train is not None  # every train class holds a picture (checked above)
    if not split_layout and test_split > 0:
        tr, te = _stratified_test(train.y.numpy(), test_split, data_seed)
        if len(te):
            train, test = train.subset(torch.from_numpy(tr)), train.subset(torch.from_numpy(te))
    mean, std = channel_stats(train.x)
    info = DatasetInfo(
        name="image_folder",
        kind="image",
        input_shape=tuple(train.x.shape[1:]),
        num_classes=len(classes),
        class_names=classes,
        mean=mean,
        std=std,
        source=str(root),
    )
    return DataBundle(info, train, val, test)
