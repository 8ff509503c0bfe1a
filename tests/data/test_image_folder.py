"""The image_folder dataset: both layouts, modes, resizing, statistics, skipped files, clear errors."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import archlab
from archlab.data import load_dataset
from archlab.data.vision import channel_stats
from archlab.utils import ArchlabError

FAST = {"system.progress": False, "system.tensorboard": False, "run.report": False}
CLASSES = ["apple", "banana", "cherry"]  # written out of order below: labels follow sorted names
COLOURS = {"apple": (200, 30, 30), "banana": (230, 220, 40), "cherry": (120, 0, 60)}


def _picture(
    path: Path, cls: str, i: int, *, grey: bool = False, size=(20, 12), fmt: str | None = None
) -> None:
    """A picture whose pixels say its class: a flat colour, with a marker column ``i`` wide."""
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.zeros((size[1], size[0], 3), np.uint8)
    arr[:] = COLOURS[cls]
    arr[:, : i % 3] = 255
    img = Image.fromarray(arr)
    if grey:
        img = img.convert("L")
    img.save(path, format=fmt)


def _write_flat(root: Path, per_class: int = 5, grey_all: bool = False) -> None:
    for cls in reversed(CLASSES):
        for i in range(per_class):
            ext = [".png", ".JPG", ".bmp", ".webp", ".gif"][i % 5]
            _picture(root / cls / f"img{i}{ext}", cls, i, grey=grey_all or (cls == "banana" and i % 2 == 0))


def test_flat_layout_rgb_with_grey_pictures_and_a_corrupt_file(tmp_path):
    root = tmp_path / "pics"
    _write_flat(root, per_class=5)
    (root / "cherry" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    (root / "apple" / "notes.txt").write_text("not a picture")
    (root / "apple" / ".hidden.png").write_bytes(b"ignored, hidden")
    with pytest.warns(UserWarning, match=r"skipped 2 file") as rec:
        b = load_dataset("image_folder", root, val_split=0.0, image_size=8, test_split=0.2)
    msg = str(rec[0].message)
    assert "broken.png" in msg and "notes.txt" in msg and ".hidden" not in msg
    assert b.info.class_names == CLASSES and b.info.num_classes == 3
    assert b.info.input_shape == (3, 8, 8) and b.info.kind == "image"
    assert b.train.x.dtype == torch.uint8 and b.train.y.dtype == torch.int64
    # 5 pictures per class, round(5 * 0.2) = 1 of each held out as test
    assert torch.bincount(b.train.y, minlength=3).tolist() == [4, 4, 4]
    assert torch.bincount(b.test.y, minlength=3).tolist() == [1, 1, 1]
    # labels follow the sorted folder names: the centre pixel has the class colour, or its grey
    # (JPEG, WebP and GIF are lossy, hence the tolerance)
    for x, y in zip(b.train.x, b.train.y):
        centre = torch.tensor(x[:, 4, 4].tolist(), dtype=torch.float64)
        colour = torch.tensor(COLOURS[CLASSES[int(y)]], dtype=torch.float64)
        grey = colour @ torch.tensor([0.299, 0.587, 0.114], dtype=torch.float64)
        assert (centre - colour).abs().max() <= 12 or (centre - grey).abs().max() <= 12
    assert (b.train.x[:, 0] != b.train.x[:, 1]).any()  # colour pictures stay colour
    # mean/std are the training split's, as for the other image datasets
    assert b.info.mean == channel_stats(b.train.x)[0] and b.info.std == channel_stats(b.train.x)[1]
    assert b.val is None
    # seeded and repeatable
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        again = load_dataset("image_folder", root, val_split=0.0, image_size=8, test_split=0.2)
        other = load_dataset("image_folder", root, val_split=0.0, image_size=8, test_split=0.2, data_seed=1)
    assert torch.equal(again.train.x, b.train.x) and torch.equal(again.test.y, b.test.y)
    assert not torch.equal(other.test.x, b.test.x)


def test_all_grey_gives_one_channel_and_mode_option(tmp_path):
    root = tmp_path / "grey"
    _write_flat(root, per_class=3, grey_all=True)
    b = load_dataset("image_folder", root, val_split=0.0, image_size=6, test_split=0.0)
    assert b.info.input_shape == (1, 6, 6) and len(b.info.mean) == 1 and b.test is None
    assert len(b.train) == 9
    rgb = load_dataset("image_folder", root, val_split=0.0, image_size=6, test_split=0.0, mode="RGB")
    assert rgb.info.input_shape == (3, 6, 6)
    assert torch.equal(rgb.train.x[:, 0], b.train.x[:, 0]) and torch.equal(
        rgb.train.x[:, 1], rgb.train.x[:, 2]
    )
    colour = tmp_path / "colour"
    _write_flat(colour, per_class=3)
    forced = load_dataset("image_folder", colour, val_split=0.0, image_size=6, test_split=0.0, mode="L")
    assert forced.info.input_shape == (1, 6, 6)
    with pytest.raises(ArchlabError, match="mode"):
        load_dataset("image_folder", colour, mode="CMYK")


def test_resize_shorter_side_then_centre_crop(tmp_path):
    root = tmp_path / "crop"
    # 40x10 picture: left quarter red, middle half green, right quarter blue. Shorter side 10 -> 5:
    # 20x5, centre 5x5 crop lies entirely in the green middle.
    arr = np.zeros((10, 40, 3), np.uint8)
    arr[:, :10] = (255, 0, 0)
    arr[:, 10:30] = (0, 255, 0)
    arr[:, 30:] = (0, 0, 255)
    for cls in ("a", "b"):
        (root / cls).mkdir(parents=True)
        Image.fromarray(arr).save(root / cls / "wide.png")
        Image.fromarray(arr.transpose(1, 0, 2).copy()).save(root / cls / "tall.png")
    b = load_dataset("image_folder", root, val_split=0.0, image_size=5, test_split=0.0)
    assert b.train.x.shape == (4, 3, 5, 5)
    green = torch.tensor([0, 255, 0], dtype=torch.uint8)[:, None, None].expand(3, 5, 5)
    for x in b.train.x:
        assert torch.equal(x, green)


def test_split_layout(tmp_path):
    root = tmp_path / "split"
    for split, n in (("train", 4), ("val", 2), ("test", 1)):
        for cls in CLASSES:
            for i in range(n):
                _picture(root / split / cls / f"{i}.png", cls, i, grey=(cls == "apple"))
    b = load_dataset("image_folder", root, val_split=0.1, image_size=4, test_split=0.5)
    assert (len(b.train), len(b.val), len(b.test)) == (12, 6, 3)  # the folders, not the fractions
    assert b.info.input_shape == (3, 4, 4)
    assert torch.bincount(b.val.y, minlength=3).tolist() == [2, 2, 2]
    # train/ and test/ only: load_dataset holds out val_split of train as usual
    import shutil

    shutil.rmtree(root / "val")
    b2 = load_dataset("image_folder", root, val_split=0.25, image_size=4)
    assert (len(b2.train), len(b2.val), len(b2.test)) == (9, 3, 3)
    # a val class that train lacks is an error naming it
    _picture(root / "val" / "durian" / "0.png", "apple", 0)
    with pytest.raises(ArchlabError, match="durian"):
        load_dataset("image_folder", root, image_size=4)


def test_missing_root_and_empty_class_errors(tmp_path):
    with pytest.raises(ArchlabError, match=r"(?s)does not exist.*one folder per class") as e:
        load_dataset("image_folder", tmp_path / "nowhere")
    assert "data.root" in str(e.value)
    root = tmp_path / "pics"
    _write_flat(root, per_class=2)
    (root / "durian").mkdir()
    (root / "durian" / "bad.jpg").write_bytes(b"garbage")
    with pytest.raises(ArchlabError, match=r"(?s)durian.*no readable picture.*one folder per class"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            load_dataset("image_folder", root)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ArchlabError, match="no class folders"):
        load_dataset("image_folder", empty)
    with pytest.raises(ArchlabError, match="image_size"):
        load_dataset("image_folder", root, image_size=0)


def test_default_data_root_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("ARCHLAB_DATA", str(tmp_path))
    with pytest.raises(ArchlabError, match="data.root"):
        load_dataset("image_folder")


def test_train_on_an_image_folder(tmp_path):
    root = tmp_path / "pics"
    _write_flat(root, per_class=8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run = archlab.train(
            "lenet5",
            "image_folder",
            overrides={
                **FAST,
                "run.out_dir": str(tmp_path / "runs"),
                "run.name": "f",
                "data.root": str(root),
                "data.options": {"image_size": 16},
                "train.epochs": 1,
                "train.batch_size": 8,
            },
        )
    assert run.status == "completed"
    assert run.bundle.info.class_names == CLASSES
