"""The engine: resume equals an uninterrupted run, NaN stops cleanly, checkpoints are safe, schedules."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

import archlab
from archlab.config import TrainSection
from archlab.engine.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from archlab.engine.optim import build_scheduler
from archlab.engine.trainer import Callback, NonFiniteLossError

FAST = {"system.progress": False, "system.tensorboard": False, "run.report": False}


class StopAt(Callback):
    """Asks the trainer to stop at a global step, as Ctrl-C does."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, trainer, out):
        if trainer.global_step == self.step:
            trainer.request_stop("interrupted")


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(run_dir / "checkpoints" / "last.safetensors")["model"]


@pytest.mark.parametrize("stop_step", [7, 25])  # in the first epoch, and mid-way through a later one
def test_resume_gives_identical_weights(tmp_path, stop_step):
    over = {"train.schedule": "cosine", "train.warmup_epochs": 0.5, "train.ema_decay": 0.9, "train.grad_accum": 2}
    full = archlab.train("mlp", "moons", overrides={**FAST, "run.out_dir": str(tmp_path), "run.name": "full",
                                                    "train.epochs": 3, "train.batch_size": 32, "model.hidden_dims": [16],
                                                    "model.dropout": 0.2, **over})
    stopped = archlab.train("mlp", "moons", overrides={**FAST, "run.out_dir": str(tmp_path), "run.name": "part",
                                                       "train.epochs": 3, "train.batch_size": 32, "model.hidden_dims": [16],
                                                       "model.dropout": 0.2, **over}, callbacks=[StopAt(stop_step)])
    assert stopped.status == "interrupted"
    assert load_checkpoint(tmp_path / "part" / "checkpoints" / "last.safetensors")["counters"]["global_step"] == stop_step
    resumed = archlab.train(resume=tmp_path / "part")
    assert resumed.status == "completed"
    a, b = _weights(tmp_path / "full"), _weights(tmp_path / "part")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert resumed.summary["weights_digests"] == full.summary["weights_digests"]
    assert resumed.metrics["test/acc"] == pytest.approx(full.metrics["test/acc"])


def test_resume_through_the_sharded_state_path(tmp_path, monkeypatch):
    """FSDP gathers state with torch.distributed.checkpoint; the same code runs here on one CPU."""
    import archlab.engine.trainer as tr

    monkeypatch.setattr(tr, "uses_sharded_state", lambda strategy: True)
    over = {**FAST, "run.out_dir": str(tmp_path), "train.epochs": 2, "train.batch_size": 32, "model.hidden_dims": [16]}
    full = archlab.train("mlp", "moons", overrides={**over, "run.name": "full"})
    part = archlab.train("mlp", "moons", overrides={**over, "run.name": "part"}, callbacks=[StopAt(9)])
    assert part.status == "interrupted"
    state = load_checkpoint(tmp_path / "part" / "checkpoints" / "last.safetensors")
    names = {f"model.{n}" for n, _ in full.model.named_parameters()}
    assert set(state["optimizers"][0]["state"]) == names  # the gathered form keys state by parameter name
    assert set(state["model"]) == set(full.model.state_dict())
    resumed = archlab.train(resume=tmp_path / "part")
    assert resumed.summary["weights_digests"] == full.summary["weights_digests"]


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    class Poison(Callback):
        def on_step_end(self, trainer, out):
            if trainer.epoch == 1 and trainer.batch_in_epoch == 2:
                with torch.no_grad():
                    for p in trainer.task.model.parameters():
                        p.fill_(float("nan"))

    with pytest.raises(NonFiniteLossError) as err:
        archlab.train("mlp", "moons", overrides={**FAST, "run.out_dir": str(tmp_path), "run.name": "nan",
                                                  "train.epochs": 3, "model.hidden_dims": [8]}, callbacks=[Poison()])
    msg = str(err.value)
    assert "nan" in msg and "last good checkpoint" in msg and "train.lr" in msg
    state = load_checkpoint(tmp_path / "nan" / "checkpoints" / "last.safetensors")
    good = state["model"]
    assert state["counters"]["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in good.values())
    summary = json.loads((tmp_path / "nan" / "summary.json").read_text())
    assert summary["status"] == "failed" and "nan" in summary["message"]


def test_truncated_checkpoint_is_a_clear_error(tmp_path):
    path = tmp_path / "c.safetensors"
    save_checkpoint(path, {"model": {"w": torch.ones(100, 100)}, "counters": {"global_step": 3}})
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.safetensors")


def test_checkpoint_round_trip_of_nested_state(tmp_path):
    state = {"model": {"a": torch.randn(3)}, "ema": None,
             "optimizers": [{"state": {0: {"step": torch.tensor(3.0), "exp_avg": torch.randn(2)}},
                             "param_groups": [{"lr": 0.1, "betas": (0.9, 0.99), "params": [0]}]}],
             "best": {"val/loss": math.inf}, "rng": {"numpy": ["MT19937", __import__("numpy").arange(3)]}}
    save_checkpoint(tmp_path / "s.safetensors", state)
    back = load_checkpoint(tmp_path / "s.safetensors")
    assert torch.equal(back["model"]["a"], state["model"]["a"])
    opt = back["optimizers"][0]
    assert list(opt["state"]) == [0] and torch.equal(opt["state"][0]["exp_avg"], state["optimizers"][0]["state"][0]["exp_avg"])
    assert opt["param_groups"][0]["betas"] == (0.9, 0.99)
    assert back["best"]["val/loss"] == math.inf
    assert (back["rng"]["numpy"][1] == __import__("numpy").arange(3)).all()


def test_atomic_write_leaves_old_checkpoint_on_failure(tmp_path):
    path = tmp_path / "c.safetensors"
    save_checkpoint(path, {"model": {"w": torch.zeros(2)}})

    class Bad:
        pass

    with pytest.raises(TypeError):
        save_checkpoint(path, {"model": {"w": torch.ones(2)}, "x": Bad()})
    assert torch.equal(load_checkpoint(path)["model"]["w"], torch.zeros(2))
    assert [p.name for p in tmp_path.iterdir()] == ["c.safetensors"]  # no temp file left behind


def test_run_folder_contents(tmp_path):
    run = archlab.train("mlp", "moons", overrides={**FAST, "run.report": True, "system.tensorboard": True,
                                                    "run.out_dir": str(tmp_path), "run.name": "r", "train.epochs": 2})
    for name in ("config.yaml", "metrics.jsonl", "summary.json", "model.safetensors", "checkpoints/last.safetensors",
                 "checkpoints/best.safetensors", "report.html", "predictions.safetensors"):
        assert (run.path / name).exists(), name
    assert any((run.path / "tb").iterdir())
    lines = [json.loads(x) for x in (run.path / "metrics.jsonl").read_text().splitlines()]
    assert {"train", "val", "test"} <= {r["split"] for r in lines}
    saved = archlab.load_config(config_file=run.path / "config.yaml")
    assert saved.model.name == "mlp" and saved.train.epochs == 2
    ckpt = load_checkpoint(run.path / "checkpoints" / "last.safetensors")
    assert ckpt["config"]["train"]["epochs"] == 2  # the resolved config travels with every checkpoint
    assert run.metrics["test/acc"] > 0.8
    assert archlab.evaluate(run.path)["test/acc"] == pytest.approx(run.metrics["test/acc"], abs=1e-6)


def test_early_stopping(tmp_path):
    run = archlab.train("mlp", "moons", overrides={**FAST, "run.out_dir": str(tmp_path), "run.name": "es",
                                                    "train.epochs": 200, "train.early_stopping_patience": 2,
                                                    "train.lr": 0.05})
    assert run.status == "stopped_early"
    assert run.summary["epochs"] < 200
    assert run.summary["epochs"] == run.summary["best"]["epoch"] + 3  # patience 2: the third bad epoch stops


@pytest.mark.parametrize("name", ["cosine", "linear", "step", "onecycle", "constant"])
def test_schedules_shape(name):
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=1.0)
    cfg = TrainSection(lr=1.0, schedule=name, warmup_epochs=1 if name != "onecycle" else 0, step_size=2, gamma=0.5)
    sched = build_scheduler(opt, cfg, steps_per_epoch=10, total_steps=50)
    lrs = []
    for _ in range(50):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        if sched is not None:
            sched.step()
    if name != "onecycle":
        assert lrs[0] == pytest.approx(0.1)  # linear warmup from lr/10 steps
        assert lrs[9] == pytest.approx(1.0)
    if name in ("cosine", "linear"):
        assert lrs[-1] < 0.05
    if name == "step":
        assert lrs[25] == pytest.approx(0.5 ** 1)
    if name == "onecycle":
        assert max(lrs) == pytest.approx(1.0, rel=0.05) and lrs[-1] < 0.01
    if name == "constant":
        assert lrs[-1] == 1.0


@pytest.mark.parametrize("precision, dtype", [("bf16-mixed", torch.bfloat16), ("32-true", torch.float32)])
def test_precision_on_cpu_really_applies(tmp_path, precision, dtype):
    seen = set()

    class Spy(Callback):
        def on_fit_start(self, trainer):
            first = next(m for m in trainer.task.model.modules() if isinstance(m, torch.nn.Linear))
            first.register_forward_hook(lambda mod, inp, out: seen.add((mod.training, out.dtype)))

    run = archlab.train("mlp", "moons", overrides={**FAST, "run.out_dir": str(tmp_path), "run.name": precision,
                                                    "train.epochs": 5, "system.precision": precision}, callbacks=[Spy()])
    assert run.summary["precision"] == precision
    assert seen == {(True, dtype), (False, dtype)}  # training and evaluation both ran in it
    assert run.metrics["test/acc"] > 0.8


def test_grad_clip_and_label_smoothing_and_sgd(tmp_path):
    run = archlab.train("mlp", "moons", overrides={**FAST, "run.out_dir": str(tmp_path), "run.name": "misc",
                                                    "train.epochs": 5, "train.grad_clip": 0.5, "train.label_smoothing": 0.1,
                                                    "train.optimizer": "sgd", "train.lr": 0.1, "train.nesterov": True})
    assert run.metrics["test/acc"] > 0.8


def test_loading_never_unpickles(tmp_path, monkeypatch):
    import pickle

    run = archlab.train("mlp", "moons", overrides={**FAST, "run.out_dir": str(tmp_path), "run.name": "p", "train.epochs": 2})

    def refuse(*args, **kwargs):
        raise AssertionError("a checkpoint or run was unpickled")

    monkeypatch.setattr(torch, "load", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    assert load_checkpoint(run.path / "checkpoints" / "last.safetensors")["counters"]["epoch"] == 2
    assert archlab.load_run(run.path).model is not None
    resumed = archlab.train(resume=run.path, overrides={"train.epochs": 3})
    assert resumed.summary["epochs"] == 3


@pytest.mark.slow
def test_torch_compile_option(tmp_path):
    run = archlab.train("mlp", "moons", overrides={**FAST, "run.out_dir": str(tmp_path), "run.name": "c",
                                                    "train.epochs": 2, "system.compile": True})
    assert run.metrics["test/acc"] > 0.7
    assert set(load_checkpoint(run.path / "checkpoints" / "last.safetensors")["model"]) == set(run.model.state_dict())


def test_the_returned_model_holds_the_averaged_weights_it_saved(tmp_path):
    """With train.ema_decay the run evaluates and saves the EMA weights; run.model is that model too."""
    from archlab.engine.checkpoint import load_weights

    run = archlab.train("mlp", "moons", overrides={**FAST, "run.out_dir": str(tmp_path), "train.epochs": 2,
                                                   "train.batch_size": 32, "model.hidden_dims": [16],
                                                   "train.ema_decay": 0.9})
    saved = load_weights(run.path / "model.safetensors")
    raw = load_checkpoint(run.path / "checkpoints" / "last.safetensors")["model"]
    ours = run.model.state_dict()
    assert saved.keys() == ours.keys()
    assert all(torch.equal(saved[k], ours[k]) for k in saved)
    assert any(not torch.equal(raw[k], saved[k]) for k in saved)  # the averaged weights differ from the raw ones


def test_scheduler_group_resumes_and_reads_single_scheduler_checkpoints():
    from archlab.engine.optim import SchedulerGroup

    cfg = TrainSection(schedule="linear", lr=1.0, min_lr=0.0, epochs=1)

    def group():
        opts = [torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0) for _ in range(2)]
        return opts, SchedulerGroup.build(opts, cfg, 10, 10)

    opts, g = group()
    for _ in range(4):
        g.step()
    assert [o.param_groups[0]["lr"] for o in opts] == pytest.approx([0.6, 0.6])
    opts2, g2 = group()
    g2.load_state_dict(g.state_dict())
    g2.step()
    assert [o.param_groups[0]["lr"] for o in opts2] == pytest.approx([0.5, 0.5])
    one, g1 = group()  # a checkpoint from before the group: one scheduler's own state
    g1.load_state_dict(g.schedulers[0].state_dict())
    g1.step()
    assert one[0].param_groups[0]["lr"] == pytest.approx(0.5)
    assert SchedulerGroup.build(opts, TrainSection(schedule="constant", epochs=1), 10, 10) is None
