"""Every registered scratch (NumPy) model at a tiny size, and the engine's scratch path end to end."""

from __future__ import annotations

import json
from dataclasses import fields

import numpy as np
import pytest

import archlab
from archlab.registry import create_model, get_model_entry, list_models
from archlab.scratch import functional as F
from archlab.scratch import optim
from archlab.scratch.autograd import Tensor

SCRATCH = list_models(family="scratch")
FAST = {"system.progress": False, "system.tensorboard": False}


def tiny(name: str):
    cls = get_model_entry(name).tags["config"]
    names = {f.name for f in fields(cls)}
    kw = {k: v for k, v in (("in_features", 12), ("num_classes", 3)) if k in names}
    kw.update(getattr(cls, "TINY", {}))
    return create_model(name, **kw)


def example(model, batch: int = 4) -> np.ndarray:
    cfg = model.config
    rng = np.random.default_rng(0)
    if hasattr(cfg, "image_size"):
        return rng.standard_normal((batch, cfg.in_channels, cfg.image_size, cfg.image_size))
    if hasattr(cfg, "input_size"):
        return rng.standard_normal((batch, 5, cfg.input_size))
    return rng.standard_normal((batch, cfg.in_features))


def test_registered():
    assert set(SCRATCH) >= {"scratch_perceptron", "scratch_mlp", "scratch_cnn", "scratch_rnn"}


@pytest.mark.parametrize("name", SCRATCH)
def test_contract(name):
    model = tiny(name)
    x = example(model)
    out = model(Tensor(x))
    assert np.isfinite(out.data).all()
    if hasattr(model.config, "num_classes"):
        assert out.shape == (len(x), model.config.num_classes)
    if getattr(model, "trains_by_rule", False):
        return
    out.sum().backward()
    for n, p in model.named_parameters():
        assert p.grad is not None and np.isfinite(p.grad).all(), n
        assert np.abs(p.grad).sum() > 0, f"{n} got a zero gradient"
    again = tiny(name)
    again.load_state_dict(model.state_dict())
    model.eval(), again.eval()
    assert np.array_equal(model(Tensor(x)).data, again(Tensor(x)).data)


@pytest.mark.parametrize("name", [n for n in SCRATCH if n not in ("scratch_perceptron", "scratch_rnn")])
def test_overfits_one_batch(name):
    model = tiny(name)
    x = example(model, 8)
    y = np.arange(8) % model.config.num_classes
    opt = optim.Adam(list(model.parameters()), lr=1e-2)
    for _ in range(150):
        loss = F.cross_entropy(model(Tensor(x)), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert (model(Tensor(x)).data.argmax(axis=1) == y).all()


def test_rnn_learns_to_predict_a_sine():
    from archlab.scratch.models import ScratchRNN, ScratchRNNConfig

    t = np.linspace(0, 8 * np.pi, 400)
    wave = np.sin(t)
    starts = np.arange(0, 360, 4)
    x = np.stack([wave[s:s + 30] for s in starts])[..., None]  # (N, 30, 1)
    y = np.stack([wave[s + 1:s + 31] for s in starts])[..., None]  # next value at every step
    model = ScratchRNN(ScratchRNNConfig(hidden_size=16))
    opt = optim.Adam(list(model.parameters()), lr=1e-2)
    first = None
    for _ in range(150):
        loss = F.mse_loss(model(Tensor(x)), Tensor(y))
        first = first if first is not None else float(loss.data)
        opt.zero_grad()
        loss.backward()
        optim.clip_grad_norm(list(model.parameters()), 1.0)
        opt.step()
    assert float(loss.data) < 0.01 < first  # predicts the next value of the wave


def test_scratch_path_of_archlab_train(tmp_path):
    run = archlab.train("scratch_mlp", "digits", overrides={**FAST, "run.out_dir": str(tmp_path), "run.name": "s",
                                                             "train.epochs": 15, "model.hidden_dims": [64]})
    assert run.status == "completed"
    for name in ("config.yaml", "metrics.jsonl", "summary.json", "model.safetensors", "report.html",
                 "checkpoints/last.safetensors", "predictions.safetensors"):
        assert (run.path / name).exists(), name
    assert run.metrics["test/acc"] > 0.9
    assert archlab.evaluate(run.path)["test/acc"] == pytest.approx(run.metrics["test/acc"])
    summary = json.loads((run.path / "summary.json").read_text())
    assert summary["family"] == "scratch" and summary["params"] == 64 * 64 + 64 + 64 * 10 + 10


def test_scratch_resume_gives_identical_weights(tmp_path):
    from archlab.scratch.engine import load_state

    over = {**FAST, "run.out_dir": str(tmp_path), "model.hidden_dims": [32], "train.schedule": "cosine",
            "train.epochs": 4, "run.report": False}

    def stop_after_two(epoch, metrics):
        if epoch == 2:
            raise KeyboardInterrupt

    full = archlab.train("scratch_mlp", "digits", overrides={**over, "run.name": "full"})
    part = archlab.train("scratch_mlp", "digits", overrides={**over, "run.name": "part"}, callbacks=[stop_after_two])
    assert part.status == "interrupted" and part.summary["epochs"] == 2
    resumed = archlab.train(resume=tmp_path / "part")
    assert resumed.status == "completed" and resumed.summary["steps"] == full.summary["steps"]
    a = load_state(tmp_path / "full" / "checkpoints" / "last.safetensors")["model"]
    b = load_state(tmp_path / "part" / "checkpoints" / "last.safetensors")["model"]
    assert all(np.array_equal(a[k], b[k]) for k in a)


def test_perceptron_trains_by_rule_from_cli(tmp_path):
    run = archlab.train("scratch_perceptron", "iris", overrides={**FAST, "run.out_dir": str(tmp_path), "run.name": "p",
                                                                  "train.epochs": 30, "train.lr": 1.0})
    assert run.metrics["test/acc"] > 0.8


def test_bf16_is_refused_with_a_clear_error(tmp_path):
    from archlab.utils import ArchlabError

    with pytest.raises(ArchlabError, match="float32 or float64"):
        archlab.train("scratch_mlp", "digits", overrides={**FAST, "run.out_dir": str(tmp_path),
                                                           "system.precision": "bf16-mixed"})


def test_info_on_scratch_models():
    from archlab.inspect import info

    mlp = info("scratch_mlp")
    assert mlp.total_params == 784 * 256 + 256 + 256 * 128 + 128 + 128 * 10 + 10
    assert mlp.flops == 2 * (784 * 256 + 256 * 128 + 128 * 10)
    cnn = info("scratch_cnn")
    assert [layer.output_shape for layer in cnn.layers][0] == (1, 16, 28, 28)
    assert "Conv2d" in cnn.to_text()


def test_scratch_mlp_solves_the_xor_truth_table():
    from archlab.scratch.engine import train_classifier
    from archlab.scratch.models import ScratchMLP, ScratchMLPConfig

    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
    y = np.array([0, 1, 1, 0])
    model = ScratchMLP(ScratchMLPConfig(in_features=2, num_classes=2, hidden_dims=(8,), activation="tanh"))
    hist = train_classifier(model, x, y, epochs=300, batch_size=4, lr=0.05)
    assert hist["train_acc"][-1] == 1.0  # what the perceptron cannot do (tests/experiments)


@pytest.mark.parametrize("data, options, target", [("xor", {"data.options.noise": 0.0}, 0.95), ("iris", {}, 0.85)])
def test_scratch_mlp_on_xor_and_iris_datasets(tmp_path, data, options, target):
    run = archlab.train("scratch_mlp", data, overrides={**FAST, "run.out_dir": str(tmp_path), "run.name": data,
                                                         "run.report": False, "model.hidden_dims": [16],
                                                         "train.epochs": 60, "train.lr": 0.01, "train.batch_size": 32,
                                                         **options})
    assert run.metrics["test/acc"] >= target
