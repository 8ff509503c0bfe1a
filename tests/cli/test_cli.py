"""The command line: lazy imports, every command end to end, and clear errors without tracebacks."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from archlab.cli import main


def test_help_does_not_import_torch():
    code = "import sys; from archlab.cli import _parser; _parser().format_help(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    res = subprocess.run([sys.executable, "-m", "archlab", "--help"], capture_output=True, text=True)
    assert res.returncode == 0 and "archlab train" in res.stdout


def test_list_and_info(capsys):
    assert main(["list", "models", "--family", "cnn"]) == 0
    out = capsys.readouterr().out
    assert "lenet5" in out and "mlp_small" not in out
    assert main(["list", "datasets"]) == 0
    assert "mnist" in capsys.readouterr().out
    assert main(["list", "experiments"]) == 0
    assert "mlp-activations" in capsys.readouterr().out
    assert main(["info", "lenet5", "--input-shape", "1,32,32"]) == 0
    out = capsys.readouterr().out
    assert "60,000" in out or "60000" in out
    assert "FLOP" in out.upper()


def test_unknown_names_are_clear_errors(capsys):
    assert main(["train", "lenet", "--data", "digits"]) == 2
    err = capsys.readouterr().err
    assert "unknown model 'lenet'" in err and "lenet5" in err and "Traceback" not in err
    assert main(["train", "mlp", "--data", "mnistt"]) == 2
    err = capsys.readouterr().err
    assert "unknown dataset 'mnistt'" in err and "mnist" in err
    assert main(["train", "mlp", "--data", "iris", "train.lrr=1"]) == 2
    assert "train.lr" in capsys.readouterr().err
    assert main(["experiment", "mlp-activation"]) == 2
    assert "mlp-activations" in capsys.readouterr().err


def test_train_eval_predict_report(tmp_path, capsys):
    rc = main(["train", "mlp", "--data", "iris", "--out", str(tmp_path), "--name", "iris", "--no-progress",
               "train.epochs=30", "train.lr=0.01", "system.tensorboard=false"])
    assert rc == 0
    run = tmp_path / "iris"
    assert "test/acc" in capsys.readouterr().out
    assert main(["eval", str(run)]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["test/acc"] > 0.8
    assert main(["predict", str(run), "5.1,3.5,1.4,0.2", "6.7,3.0,5.2,2.3"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split(": ")[1].startswith("setosa") and out[1].split(": ")[1].startswith("virginica")
    assert main(["predict", str(run), "1,2"]) == 2
    assert "4" in capsys.readouterr().err
    (run / "report.html").unlink()
    assert main(["report", str(run)]) == 0
    assert (run / "report.html").exists()


def test_predict_image_file(tmp_path, capsys):
    import numpy as np
    from PIL import Image

    assert main(["train", "simple_cnn_small", "--data", "digits", "--out", str(tmp_path), "--name", "d",
                 "--no-progress", "train.epochs=1", "run.report=false", "system.tensorboard=false"]) == 0
    capsys.readouterr()
    img = tmp_path / "x.png"
    Image.fromarray((np.random.default_rng(0).random((8, 8)) * 255).astype("uint8")).save(img)
    assert main(["predict", str(tmp_path / "d"), str(img)]) == 0
    assert str(img) in capsys.readouterr().out


def test_data_commands(tmp_path, capsys):
    assert main(["data", "list"]) == 0
    assert "cifar10" in capsys.readouterr().out
    os.environ.pop("ARCHLAB_DATA", None)
    rc = main(["data", "verify", "mnist", "--data-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc != 0 and "train-images-idx3-ubyte.gz" in err and "f68b3c2dcbeaaa9fbdd348bbdeb94873" in err


def test_resume_from_cli(tmp_path, capsys):
    args = ["--out", str(tmp_path), "--name", "r", "--no-progress", "run.report=false", "system.tensorboard=false"]
    assert main(["train", "mlp", "--data", "moons", "train.epochs=2", *args]) == 0
    assert main(["train", "--resume", str(tmp_path / "r"), "train.epochs=4", "--no-progress"]) == 0
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["epochs"] == 4


def test_truncated_checkpoint_resume_is_clear(tmp_path, capsys):
    args = ["--out", str(tmp_path), "--name", "t", "--no-progress", "run.report=false", "system.tensorboard=false"]
    assert main(["train", "mlp", "--data", "moons", "train.epochs=1", *args]) == 0
    ckpt = tmp_path / "t" / "checkpoints" / "last.safetensors"
    ckpt.write_bytes(ckpt.read_bytes()[:100])
    assert main(["train", "--resume", str(tmp_path / "t"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "truncated or corrupt" in err and "Traceback" not in err


@pytest.mark.real_data
def test_train_on_real_mnist_folder_as_is(shared_data, tmp_path, capsys):
    rc = main(["train", "mlp_small", "--data", "mnist", "--data-dir", str(shared_data), "--out", str(tmp_path),
               "--name", "m", "--no-progress", "train.max_steps=60", "train.epochs=1", "system.tensorboard=false"])
    assert rc == 0
    summary = json.loads((tmp_path / "m" / "summary.json").read_text())
    assert summary["final"]["test/acc"] > 0.8


@pytest.mark.parametrize("name", ["gcn", "gin", "scratch_mlp", "scratch_rnn", "simple_cnn"])
def test_info_on_every_family(name, capsys):
    assert main(["info", name]) == 0
    out = capsys.readouterr().out
    assert "Parameters:" in out and "Layer" in out


def test_info_with_graph_data(capsys):
    assert main(["info", "gcn", "--data", "karate"]) == 0
    assert "(1, 34)" in capsys.readouterr().out  # sized for the Karate Club's 34 identity features
