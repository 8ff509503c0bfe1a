"""Training generative models end to end: sample grids, checkpoints, the NaN stop, the datasets."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch

import archlab
from archlab.data import load_dataset
from archlab.engine.trainer import NonFiniteLossError
from archlab.models.generative.gan import GAN
from archlab.registry import create_model

TINY_DCGAN = {"model.options.base_channels": 4, "model.options.latent_dim": 8}
QUIET = {"system.progress": False, "system.tensorboard": False, "run.report": False}
SMALL_RING = {"data.options": {"n_samples": 300}, "train.batch_size": 64, "model.options.hidden_dim": 8,
              "model.options.latent_dim": 2}


def test_dcgan_on_digits_writes_a_sample_grid_and_a_checkpoint(tmp_path) -> None:
    run = archlab.train("dcgan", "digits", overrides={
        "train.epochs": 1, "train.batch_size": 256, "run.out_dir": str(tmp_path), **TINY_DCGAN, **QUIET})
    assert (run.path / "samples" / "epoch_0001.png").stat().st_size > 0
    assert (run.path / "checkpoints" / "last.safetensors").exists()
    assert {"val/loss_d", "val/loss_g", "val/d_real"} <= set(run.metrics)
    assert all(torch.isfinite(torch.tensor(v)) for v in run.metrics.values())
    train_rows = [r for r in run.history if r["split"] == "train"]
    assert train_rows and {"loss_d", "loss_g"} <= set(train_rows[0])


def test_a_diverging_gan_stops_naming_the_network_and_keeps_the_last_good_checkpoint_and_grid(
        tmp_path, monkeypatch) -> None:
    """Epoch 1 trains; in epoch 2 the generator loss turns NaN: the run stops before the update."""
    calls = {"n": 0}
    original = GAN.generator_loss
    steps_per_epoch = 3  # 216 training rows / batch 64 (drop_last)

    def flaky(self, x, y=None):
        out = original(self, x, y)
        if self.training:
            calls["n"] += 1
            if calls["n"] > steps_per_epoch:
                out["loss"] = out["loss"] * float("nan")
        return out

    monkeypatch.setattr(GAN, "generator_loss", flaky)
    with pytest.raises(NonFiniteLossError, match=r"the generator loss \(loss_g\) became nan.*last good checkpoint"):
        archlab.train("gan", "ring", overrides={"train.epochs": 3, "run.out_dir": str(tmp_path), "run.name": "boom",
                                                **SMALL_RING, **QUIET})
    run_dir = tmp_path / "boom"
    assert (run_dir / "samples" / "epoch_0001.png").exists()
    assert not (run_dir / "samples" / "epoch_0002.png").exists()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "failed" and "generator loss" in summary["message"]
    from archlab.engine.checkpoint import load_checkpoint

    state = load_checkpoint(run_dir / "checkpoints" / "last.safetensors")
    assert state["counters"]["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())


def test_a_huge_learning_rate_stops_with_a_clear_message(tmp_path) -> None:
    with pytest.raises(NonFiniteLossError, match=r"the (generator|discriminator) (loss|gradient).*Try a lower train.lr"):
        archlab.train("gan", "ring", overrides={"train.epochs": 2, "train.lr": 1e20, "train.optimizer": "sgd",
                                                "run.out_dir": str(tmp_path), **SMALL_RING, **QUIET})


def test_a_schedule_decays_both_optimizers_and_is_checkpointed(tmp_path) -> None:
    """train.schedule applies to the generator's and the discriminator's optimizers alike (one step per batch)."""
    run = archlab.train("gan", "ring", overrides={"train.epochs": 2, "train.schedule": "linear", "train.min_lr": 0.0,
                                                  "run.out_dir": str(tmp_path), **SMALL_RING, **QUIET})
    from archlab.engine.checkpoint import load_checkpoint

    state = load_checkpoint(run.path / "checkpoints" / "last.safetensors")
    lrs = [o["param_groups"][0]["lr"] for o in state["optimizers"]]
    assert len(lrs) == 2 and all(lr == pytest.approx(0.0, abs=1e-12) for lr in lrs)  # linear to min_lr = 0
    assert [s["last_epoch"] for s in state["scheduler"]["schedulers"]] == [6, 6]  # 2 epochs x 3 batches
    train_lr = [r["lr"] for r in run.history if r["split"] == "train" and "lr" in r]
    assert train_lr and train_lr == sorted(train_lr, reverse=True) and train_lr[0] > train_lr[-1]


def test_tasks_see_images_in_unit_range_and_dispatch_on_the_model(tmp_path) -> None:
    from archlab.config import RunConfig
    from archlab.tasks import build_task
    from archlab.tasks.generative import AdversarialTask, GenerativeTask

    bundle = load_dataset("digits", val_split=0.1)
    cfg = RunConfig()
    cfg.train.batch_size = 32
    model = create_model("gan", bundle.info, hidden_dim=8, latent_dim=4)
    task = build_task(model, bundle.info, cfg)
    assert isinstance(task, AdversarialTask) and task.normalize_inputs is False
    shim = SimpleNamespace(cfg=cfg, fabric=SimpleNamespace(device=torch.device("cpu"), global_rank=0, world_size=1))
    train, val, test = task.make_loaders(bundle, shim)
    x, y = next(iter(train))
    x, y = task._xy((x, y))
    assert x.dtype == torch.float32 and x.min() >= 0 and x.max() <= 1 and x.max() > 0.9 and y.dtype == torch.long
    # The engine's own loaders honour normalize_inputs too.
    from archlab.engine.trainer import Trainer

    trainer = Trainer(cfg, tmp_path, shim.fabric)
    trainer.task = task
    xb, _ = next(iter(trainer.tensor_loaders(bundle)[0]))
    assert xb.min() >= 0 and xb.max() <= 1
    from archlab.models.generative.base import GenerativeMethod

    class Tiny(GenerativeMethod):
        def forward(self, x, y=None):
            return {"loss": x.mean()}

    assert isinstance(build_task(Tiny(), bundle.info, cfg), GenerativeTask)
    # A classifier cannot train on paired images.
    pairs = load_dataset("edges2digits", val_split=0.0)
    with pytest.raises(ValueError, match="no task trains"):
        build_task(create_model("mlp", in_features=64, num_classes=10), pairs.info, cfg)


def test_conditional_grid_has_a_row_per_class(tmp_path) -> None:
    from archlab.tasks.generative import AdversarialTask

    model = create_model("cgan", in_features=64, image_size=8, num_classes=4, hidden_dim=8, latent_dim=4, embed_dim=2)
    task = AdversarialTask(model)
    samples, per_row = task.make_samples()
    assert per_row == 10 and samples.shape == (40, 1, 8, 8)
    path = task.write_samples(tmp_path / "grid.png")
    assert path is not None and path.stat().st_size > 0
    with torch.no_grad():  # a NaN generator: the grid is not written
        next(model.generator.parameters()).fill_(float("nan"))
    assert task.write_samples(tmp_path / "nan.png") is None and not (tmp_path / "nan.png").exists()


# ---- datasets ---------------------------------------------------------------------------------
def test_ring_data_shapes_and_modes() -> None:
    bundle = load_dataset("ring", val_split=0.0, n_samples=800)
    info = bundle.info
    assert info.kind == "tabular" and info.input_shape == (2,) and info.num_classes == 8
    assert bundle.train.x.shape == (640, 2) and bundle.test.x.shape == (160, 2)
    assert bundle.train.x.dtype == torch.float32 and bundle.train.y.dtype == torch.int64
    from archlab.data.generative_data import ring_centers

    centers = ring_centers()
    assert torch.allclose(centers.norm(dim=1), torch.full((8,), 2.0))
    err = bundle.train.x - centers[bundle.train.y]  # each point near its own mode
    assert err.abs().max() < 0.02 * 5 and 0.01 < err.std() < 0.03


def test_paired_and_unpaired_digit_translation_data() -> None:
    pairs = load_dataset("edges2digits", val_split=0.0, image_size=16)
    assert pairs.info.kind == "image_pair" and pairs.train.x.shape[1:] == (1, 16, 16) == pairs.train.y.shape[1:]
    assert set(pairs.train.x.unique().tolist()) <= {0.0, 1.0}
    assert pairs.train.y.dtype == torch.float32 and 0 <= pairs.train.y.min() and pairs.train.y.max() <= 1
    un = load_dataset("unpaired_digits", val_split=0.0, transform="invert")
    assert un.info.kind == "image_unpaired" and un.train.x.shape == un.train.y.shape
    assert torch.allclose(un.test.y, 1 - un.test.x)  # test is paired
    mismatch = ((1 - un.train.x) - un.train.y).abs().flatten(1).amax(1) > 1e-6
    assert mismatch.float().mean() > 0.9  # train is not
    thick = load_dataset("unpaired_digits", val_split=0.0, transform="thicken")
    assert (thick.test.y >= thick.test.x).all() and (thick.test.y > thick.test.x).any()
