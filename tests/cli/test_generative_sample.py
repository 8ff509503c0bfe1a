"""`archlab sample RUN`: grids from generative runs, --label for conditional ones, clear errors otherwise."""

from __future__ import annotations

import pytest
from PIL import Image

from archlab.cli import main

_FAST = ["--no-progress", "train.epochs=1", "train.max_steps=2", "train.batch_size=64", "system.tensorboard=false",
         "run.report=false"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    tiny = ["model.latent_dim=8", "model.base_channels=8", "model.hidden_dim=16"]
    assert main(["train", "dcgan", "--data", "digits", "--out", str(out), "--name", "dcgan", *_FAST, *tiny]) == 0
    assert main(["train", "cgan", "--data", "digits", "--out", str(out), "--name", "cgan", *_FAST, *tiny,
                 "model.embed_dim=4"]) == 0
    assert main(["train", "mlp", "--data", "iris", "--out", str(out), "--name", "mlp", *_FAST]) == 0
    return out


def test_sample_writes_a_grid(runs, capsys):
    capsys.readouterr()
    assert main(["sample", str(runs / "dcgan"), "--n", "16", "--seed", "1"]) == 0
    path = runs / "dcgan" / "samples" / "sample.png"
    assert capsys.readouterr().out.strip() == str(path)
    im = Image.open(path)
    # 2 rows of 8 tiles, 8x8 digits enlarged x4 with 1-pixel gaps
    assert im.size == ((8 * 9 + 1) * 4, (2 * 9 + 1) * 4)
    first = path.read_bytes()
    assert main(["sample", str(runs / "dcgan"), "--n", "16", "--seed", "1"]) == 0
    assert path.read_bytes() == first  # seeded
    assert main(["sample", str(runs / "dcgan"), "--n", "16", "--seed", "2"]) == 0
    assert path.read_bytes() != first


def test_sample_label_for_conditional_runs(runs, tmp_path, capsys):
    out = tmp_path / "sevens.png"
    assert main(["sample", str(runs / "cgan"), "--label", "7", "--n", "8", "--out", str(out)]) == 0
    assert Image.open(out).size == ((8 * 9 + 1) * 4, (1 * 9 + 1) * 4)
    assert main(["sample", str(runs / "cgan"), "--n", "20"]) == 0  # no label: a row per class
    assert Image.open(runs / "cgan" / "samples" / "sample.png").size[1] == (10 * 9 + 1) * 4
    capsys.readouterr()
    assert main(["sample", str(runs / "cgan"), "--label", "12"]) == 2
    err = capsys.readouterr().err
    assert "valid labels are 0, 1, 2" in err and "9" in err and "Traceback" not in err


def test_sample_errors_are_clear(runs, capsys):
    capsys.readouterr()
    assert main(["sample", str(runs / "dcgan"), "--label", "3"]) == 2
    err = capsys.readouterr().err
    assert "not conditional" in err and "cgan" in err and "Traceback" not in err
    assert main(["sample", str(runs / "mlp")]) == 2
    err = capsys.readouterr().err
    assert "not of a generative model" in err and "mlp" in err
    assert main(["sample", str(runs / "dcgan"), "--steps", "10"]) == 2
    assert "diffusion" in capsys.readouterr().err
    assert main(["sample", str(runs / "dcgan"), "--n", "0"]) == 2
