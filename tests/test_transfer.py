"""Transfer learning: loading pretrained weights in every format, layer groups, freezing, discriminative
learning rates, gradual unfreezing, and the run-level wiring (model.init, train.finetune) end to end."""

from __future__ import annotations

import functools
import http.server
import json
import threading
from pathlib import Path

import pytest
import torch
from torch import nn

import archlab
from archlab.config import TrainSection
from archlab.engine.checkpoint import load_checkpoint, load_weights, save_weights
from archlab.engine.optim import build_optimizer, build_scheduler
from archlab.engine.trainer import Callback
from archlab.registry import MODELS, create_model
from archlab.tasks.base import Task
from archlab.transfer import (
    GradualUnfreezing,
    TransferError,
    apply_finetune,
    freeze_bn,
    group_label,
    layer_groups,
    load_pretrained,
)

FAST = {"system.progress": False, "system.tensorboard": False, "run.report": False}


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory) -> Path:
    """A one-epoch simple_cnn_small run on digits: the 'pretrained' model of these tests."""
    out = tmp_path_factory.mktemp("pre")
    run = archlab.train(
        "simple_cnn_small",
        "digits",
        overrides={**FAST, "run.out_dir": str(out), "run.name": "pre", "train.epochs": 1},
    )
    assert run.status == "completed"
    return run.path


def _fresh(num_classes: int = 10) -> nn.Module:
    torch.manual_seed(123)  # another init than the pretrained run's, so a load is visible
    return create_model("simple_cnn_small", in_channels=1, num_classes=num_classes, image_size=8)


def _assert_same(model: nn.Module, sd: dict[str, torch.Tensor], skip: tuple[str, ...] = ()) -> None:
    own = model.state_dict()
    for k, v in sd.items():
        if not k.startswith(skip):
            assert torch.equal(own[k], v), k


# ----------------------------------------------------------------------------------------------
# load_pretrained: formats


def test_every_format_loads_the_same_tensors(pretrained, tmp_path):
    sd = load_weights(pretrained / "model.safetensors")
    assert not all(
        torch.equal(_fresh().state_dict()[k], v) for k, v in sd.items()
    )  # a load must change things

    save_weights(tmp_path / "w.safetensors", sd)
    torch.save(sd, tmp_path / "w.pt")
    torch.save({"state_dict": {f"module.{k}": v for k, v in sd.items()}, "epoch": 3}, tmp_path / "ddp.pth")
    torch.save(
        {"model": {f"model.{k}": v for k, v in sd.items()}, "optimizer": {"lr": 0.1}}, tmp_path / "task.bin"
    )
    sources = [
        tmp_path / "w.safetensors",
        tmp_path / "w.pt",
        tmp_path / "ddp.pth",
        tmp_path / "task.bin",
        pretrained,
        pretrained / "checkpoints" / "last.safetensors",
        str(pretrained),
        sd,
    ]
    for source in sources:
        model = _fresh()
        report = load_pretrained(model, source, strict=True)
        _assert_same(model, sd)
        assert sorted(report.loaded) == sorted(sd) and not report.fresh, source
    assert load_pretrained(_fresh(), tmp_path / "ddp.pth").prefix == "module."
    assert load_pretrained(_fresh(), tmp_path / "task.bin").prefix == "model."
    # an archlab checkpoint holds the model under "model/": the same weights as the run's last epoch
    ckpt = load_checkpoint(pretrained / "checkpoints" / "last.safetensors")["model"]
    assert all(torch.equal(ckpt[k], sd[k]) for k in sd)


def test_head_of_another_size_is_skipped_and_reported(pretrained):
    model = _fresh(num_classes=3)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    report = load_pretrained(model, pretrained)
    head = {"head.1.weight", "head.1.bias"}
    assert {k for k, _, _ in report.mismatched} == head
    assert dict((k, b) for k, _, b in report.mismatched)["head.1.weight"] == (3, 32)
    assert set(report.fresh) == head and not report.missing and not report.unexpected
    assert torch.equal(model.state_dict()["head.1.weight"], before["head.1.weight"])  # still its fresh init
    _assert_same(model, load_weights(pretrained / "model.safetensors"), skip=("head.1.",))
    line = report.summary()
    assert "head.1.weight (10, 32)->(3, 32)" in line and f"loaded {len(report.loaded)}/" in line


def test_strict_lists_every_difference(pretrained):
    with pytest.raises(ValueError) as err:
        load_pretrained(_fresh(num_classes=3), pretrained, strict=True)
    assert (
        "head.1.weight" in str(err.value)
        and "head.1.bias" in str(err.value)
        and "init_strict" in str(err.value)
    )

    class Extra(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = _fresh()
            self.extra = nn.Linear(2, 2)

    sd = {f"inner.{k}": v for k, v in load_weights(pretrained / "model.safetensors").items()}
    sd["stale.weight"] = torch.zeros(1)
    model = Extra()
    before = model.state_dict()["inner.features.0.convs.0.weight"].clone()
    with pytest.raises(TransferError) as err:
        load_pretrained(model, sd, strict=True)
    msg = str(err.value)
    assert "missing keys: extra.weight, extra.bias" in msg and "unexpected keys: stale.weight" in msg
    assert torch.equal(model.state_dict()["inner.features.0.convs.0.weight"], before)  # nothing loaded
    report = load_pretrained(model, sd)  # not strict: what fits loads
    assert report.missing == ["extra.weight", "extra.bias"] and report.unexpected == ["stale.weight"]


class NotWeights:
    """A pickled object that is not a tensor: a weights-only load must refuse it."""

    def __init__(self) -> None:
        self.payload = [1, 2, 3]


def test_clear_errors_for_bad_sources(tmp_path, monkeypatch):
    model = _fresh()
    with pytest.raises(TransferError, match="do not exist.*model.init takes"):
        load_pretrained(model, tmp_path / "nope.pt")
    for name in ("notes.pt", "notes.safetensors", "notes.txt"):
        (tmp_path / name).write_text("these are not weights\n")
        with pytest.raises(TransferError, match="is not a weights file"):
            load_pretrained(model, tmp_path / name)
    torch.save(NotWeights(), tmp_path / "obj.pt")
    with pytest.raises(TransferError, match="weights-only load refuses.*never unpickles"):
        load_pretrained(model, tmp_path / "obj.pt")
    torch.save({"epoch": 3, "note": "no tensors"}, tmp_path / "meta.pt")
    with pytest.raises(TransferError, match="holds no state dict of tensors"):
        load_pretrained(model, tmp_path / "meta.pt")
    (tmp_path / "folder").mkdir()
    with pytest.raises(TransferError, match="not an archlab run folder"):
        load_pretrained(model, tmp_path / "folder")
    monkeypatch.setenv("ARCHLAB_WEIGHTS", str(tmp_path / "cache"))
    url = "http://127.0.0.1:9/x.pt"
    with pytest.raises(TransferError) as err:
        load_pretrained(model, url)
    msg = str(err.value)
    assert url in msg and "pass its path" in msg and "model.init=/path/to/x.pt" in msg
    assert not any((tmp_path / "cache").iterdir())  # no partial file left behind


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def test_url_downloads_once_into_the_cache(pretrained, tmp_path, monkeypatch):
    sd = load_weights(pretrained / "model.safetensors")
    served = tmp_path / "served"
    served.mkdir()
    torch.save(sd, served / "tiny-weights.pth")
    handler = functools.partial(_QuietHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("ARCHLAB_WEIGHTS", str(tmp_path / "cache"))
    url = f"http://127.0.0.1:{server.server_port}/tiny-weights.pth"
    try:
        model = _fresh()
        report = load_pretrained(model, url)
    finally:
        server.shutdown()
        server.server_close()
    assert report.source == str(tmp_path / "cache" / "tiny-weights.pth")
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == [
        "tiny-weights.pth"
    ]  # renamed into place
    _assert_same(model, sd)
    again = _fresh()
    load_pretrained(again, url)  # the server is gone: the cached file is used
    _assert_same(again, sd)


# ----------------------------------------------------------------------------------------------
# layer groups


class Tiny(nn.Module):
    """A torchvision-like stem, a VGG-like ``features`` body, a loose token and a linear head."""

    def __init__(self, num_classes: int = 5) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.relu = nn.ReLU()
        self.features = nn.Sequential(
            nn.Conv2d(8, 8, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(8, 8, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1),
            nn.BatchNorm2d(16),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.token = nn.Parameter(torch.zeros(16))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(self.relu(self.bn1(self.conv1(x))))  # (B, 16, H/4, W/4)
        return self.fc(self.pool(x).flatten(1) + self.token)  # (B, num_classes)


def _names(groups) -> list[list[str]]:
    return [[n for n, _ in g] for g in groups]


def test_layer_groups_of_a_small_module():
    model = Tiny()
    groups = _names(layer_groups(model))
    assert groups == [
        ["token", "conv1.weight", "bn1.weight", "bn1.bias"],  # stem + loose parameter
        ["features.0.weight", "features.0.bias", "features.2.weight", "features.2.bias"],  # conv stage
        ["features.5.weight", "features.5.bias", "features.6.weight", "features.6.bias"],  # conv + its norm
        ["fc.weight", "fc.bias"],
    ]
    assert sum(len(g) for g in groups) == len(list(model.parameters()))
    assert [group_label(g, model) for g in layer_groups(model)] == [
        "conv1+bn1+token",
        "features.0+features.2",
        "features.5+features.6",
        "fc",
    ]


def test_get_classifier_and_own_layer_groups_win():
    class WithHead(Tiny):
        def __init__(self) -> None:
            super().__init__()
            self.head = nn.Sequential(nn.Linear(5, 7), nn.ReLU(), nn.Linear(7, 2))

        def get_classifier(self) -> nn.Module:
            return self.head

    assert _names(layer_groups(WithHead()))[-1] == [
        "head.0.weight",
        "head.0.bias",
        "head.2.weight",
        "head.2.bias",
    ]
    assert _names(layer_groups(WithHead()))[-2] == ["fc.weight", "fc.bias"]

    class Own(Tiny):
        def layer_groups(self):
            return [["conv1", self.bn1, "token"], "features", self.fc]

    assert [len(g) for g in layer_groups(Own())] == [4, 8, 2]

    class Incomplete(Tiny):
        def layer_groups(self):
            return ["features", "fc"]

    with pytest.raises(TransferError, match="leaves parameters in no group: token, conv1.weight"):
        layer_groups(Incomplete())


def test_layer_groups_of_the_small_registered_models():
    labels = lambda m: [group_label(g, m) for g in layer_groups(m)]  # noqa: E731
    cnn = create_model("simple_cnn", in_channels=1, num_classes=10, image_size=28)
    assert labels(cnn) == ["features.0", "features.1", "head.1", "head.4"]  # hidden FC, then the classifier
    assert labels(create_model("simple_cnn_small", in_channels=1, num_classes=10, image_size=8)) == [
        "features.0",
        "features.1",
        "head",
    ]
    lenet = create_model("lenet5", in_channels=1, num_classes=10)
    assert labels(lenet) == ["c1+s2", "c3+s4", "c5", "f6"]  # RBF output has no parameters: f6 is the head
    assert labels(create_model("mlp_deep", in_features=4, num_classes=3)) == [
        "blocks.0",
        "blocks.1",
        "blocks.2",
        "head",
    ]
    assert labels(create_model("perceptron", in_features=4, num_classes=3)) == ["linear"]


def _meta(name: str) -> nn.Module:
    if name not in MODELS:
        pytest.skip(f"{name} is not registered yet")
    with torch.device("meta"):  # full-size torchvision layouts without allocating their weights
        return create_model(name)


def test_layer_groups_of_torchvision_layouts():
    resnet = _meta("resnet18")
    assert [group_label(g, resnet) for g in layer_groups(resnet)] == [
        "conv1+bn1",
        "layer1",
        "layer2",
        "layer3",
        "layer4",
        "fc",
    ]
    vgg = _meta("vgg16")
    groups = layer_groups(vgg)
    assert len(groups) == 7 and _names(groups)[-1] == ["classifier.6.weight", "classifier.6.bias"]
    assert [len(g) // 2 for g in groups[:5]] == [2, 2, 3, 3, 3]  # the five conv stages between max-pools
    mobilenet = _meta("mobilenet_v2")
    labels = [group_label(g, mobilenet) for g in layer_groups(mobilenet)]
    assert labels[:3] == ["features.0", "features.1", "features.2"] and labels[-1] == "classifier"
    vit = _meta("vit_b_16")
    groups = _names(layer_groups(vit))
    assert len(groups) == 14 and {"class_token", "conv_proj.weight", "encoder.pos_embedding"} <= set(
        groups[0]
    )
    assert all(n.startswith("encoder.layers.encoder_layer_3.") for n in groups[4])
    assert groups[-1] == ["heads.head.weight", "heads.head.bias"]


# ----------------------------------------------------------------------------------------------
# freezing, discriminative learning rates


def test_linear_probe_freezes_the_backbone_and_its_batch_norm_statistics():
    torch.manual_seed(0)
    model = Tiny()
    groups = apply_finetune(model, "linear_probe", lr=0.1)
    assert {id(p) for g in groups for p in g["params"]} == {id(model.fc.weight), id(model.fc.bias)}
    assert [n for n, p in model.named_parameters() if p.requires_grad] == ["fc.weight", "fc.bias"]
    opt = build_optimizer(groups, TrainSection(optimizer="sgd", lr=0.1))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.train()
    for _ in range(3):
        loss = model(torch.randn(4, 3, 8, 8) * 3 + 1).square().mean()
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    after = model.state_dict()
    for k in before:
        assert torch.equal(after[k], before[k]) != k.startswith("fc."), k  # only the head moved
    assert model.bn1.num_batches_tracked.item() == 0
    # the rule is dynamic: once the norms' parameters train again, their statistics move again
    apply_finetune(model, "full", lr=0.1)
    model.train()
    model(torch.randn(4, 3, 8, 8) * 3 + 1)
    assert not torch.equal(model.bn1.running_mean, before["bn1.running_mean"])
    assert freeze_bn(model) == 2  # idempotent: one hook per norm


def test_partial_and_layer_lr_decay_give_per_group_learning_rates():
    model = Tiny()
    task = Task(model)
    [opt] = task.configure_optimizers(
        TrainSection(lr=0.1, layer_lr_decay=0.5, weight_decay=0.01, optimizer="adamw")
    )
    names = {id(p): n for n, p in model.named_parameters()}
    seen = {}
    for g in opt.param_groups:
        assert g["lr"] == pytest.approx(0.1 * 0.5 ** g["layer_group"])
        for p in g["params"]:
            seen[names[id(p)]] = (g["layer_group"], g["weight_decay"])
    assert seen["fc.weight"] == (0, 0.01) and seen["fc.bias"] == (0, 0.0)
    assert seen["features.5.weight"] == (1, 0.01) and seen["features.6.weight"] == (1, 0.0)
    assert (
        seen["features.0.weight"][0] == 2 and seen["conv1.weight"] == (3, 0.01) and seen["token"] == (3, 0.0)
    )
    assert opt.param_groups[0]["layer_group"] == 0  # the head first: the logged lr is the base lr

    partial = Tiny()
    [opt] = Task(partial).configure_optimizers(TrainSection(lr=0.1, finetune="partial", trainable_groups=2))
    trainable = [n for n, p in partial.named_parameters() if p.requires_grad]
    assert trainable == [
        "features.5.weight",
        "features.5.bias",
        "features.6.weight",
        "features.6.bias",
        "fc.weight",
        "fc.bias",
    ]
    assert sum(len(g["params"]) for g in opt.param_groups) == len(trainable)
    assert {g["lr"] for g in opt.param_groups} == {0.1}  # no decay asked

    plain = Tiny()
    [opt] = Task(plain).configure_optimizers(TrainSection(lr=0.1))  # the default path is untouched
    assert "layer_group" not in opt.param_groups[0] and all(p.requires_grad for p in plain.parameters())
    with pytest.raises(ValueError, match="trainable_groups must be >= 1"):
        Task(Tiny()).configure_optimizers(TrainSection(finetune="partial", trainable_groups=0))


@pytest.mark.parametrize("name", ["onecycle", "cosine", "step"])
def test_schedules_keep_each_groups_own_learning_rate(name):
    a, b = nn.Parameter(torch.zeros(1)), nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([{"params": [a], "lr": 1.0}, {"params": [b], "lr": 0.25}], lr=1.0)
    sched = build_scheduler(
        opt, TrainSection(lr=1.0, schedule=name, step_size=2), steps_per_epoch=10, total_steps=50
    )
    lrs = []
    for _ in range(50):
        lrs.append([g["lr"] for g in opt.param_groups])
        opt.step()
        sched.step()
    assert max(x for x, _ in lrs) == pytest.approx(1.0, rel=0.05)
    assert max(y for _, y in lrs) == pytest.approx(0.25, rel=0.05)
    assert all(x == pytest.approx(4 * y) for x, y in lrs)


# ----------------------------------------------------------------------------------------------
# runs: model.init, linear probe, gradual unfreezing, the CLI


def test_linear_probe_run_trains_only_the_head(pretrained, tmp_path):
    run = archlab.train(
        "simple_cnn_small",
        "digits",
        overrides={
            **FAST,
            "run.out_dir": str(tmp_path),
            "run.name": "probe",
            "train.epochs": 1,
            "train.lr": 0.01,
            "model.init": str(pretrained),
            "train.finetune": "linear_probe",
        },
    )
    assert run.status == "completed"
    src = load_weights(pretrained / "model.safetensors")
    new = load_weights(run.path / "model.safetensors")
    for k in src:
        if k.startswith("head."):
            assert not torch.equal(new[k], src[k]), k
        else:  # convolutions, BN affine and BN running statistics (and their counters) untouched
            assert torch.equal(new[k], src[k]), k
    init = json.loads((run.path / "init.json").read_text())
    assert init["source"] == str(pretrained / "model.safetensors") and len(init["loaded"]) == len(src)
    assert run.summary["init"]["loaded"] == len(src) and run.summary["init"]["fresh"] == []
    assert run.metrics["test/acc"] > 0.3


def test_head_for_other_classes_stays_fresh_in_a_run(tmp_path, capsys):
    over = {**FAST, "run.out_dir": str(tmp_path), "train.epochs": 1, "model.hidden_dims": [16]}
    pre = archlab.train("mlp", "spirals", overrides={**over, "run.name": "pre", "data.options.classes": 3})
    run = archlab.train("mlp", "moons", overrides={**over, "run.name": "ft", "model.init": str(pre.path)})
    assert run.status == "completed"
    assert sorted(run.summary["init"]["fresh"]) == ["head.bias", "head.weight"]
    out = capsys.readouterr().out
    assert "init: loaded 2/4 tensors" in out and "head.weight" in out
    # same shapes, other classes: the old head is not loaded either (its rows mean other classes)
    summary = json.loads((pre.path / "summary.json").read_text())
    summary["class_names"] = ["a", "b"]
    (pre.path / "summary.json").write_text(json.dumps(summary))
    from archlab.transfer import init_from_config

    model = create_model("mlp", in_features=2, num_classes=3, hidden_dims=[16])
    report = init_from_config(model, str(pre.path), class_names=["x", "y", "z"])
    assert report.excluded == ["head.weight", "head.bias"] and len(report.loaded) == 2


class Spy(Callback):
    """Records, per epoch, which layer groups train and the first block's weights at each epoch end."""

    def __init__(self) -> None:
        self.trains: dict[int, set[tuple[bool, ...]]] = {}
        self.first: list[torch.Tensor] = []

    def on_fit_start(self, trainer):
        self.groups = layer_groups(trainer.task.model)
        self.first.append(trainer.task.model.blocks[0].linear.weight.detach().clone())

    def on_step_end(self, trainer, out):
        state = tuple(all(p.requires_grad for _, p in g) for g in self.groups)
        self.trains.setdefault(trainer.epoch, set()).add(state)

    def on_epoch_end(self, trainer, metrics):
        self.first.append(trainer.task.model.blocks[0].linear.weight.detach().clone())


class StopAt(Callback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, trainer, out):
        if trainer.global_step == self.step:
            trainer.request_stop("interrupted")


def test_gradual_unfreezing_one_group_per_epoch_and_resume(tmp_path):
    over = {
        **FAST,
        "run.out_dir": str(tmp_path),
        "train.epochs": 4,
        "train.batch_size": 64,
        "train.unfreeze_every": 1,
        "model.hidden_dims": [16, 16, 16],
        "train.optimizer": "adamw",
        "train.weight_decay": 0.1,
        "train.layer_lr_decay": 0.5,
        "train.schedule": "cosine",
    }
    spy = Spy()
    full = archlab.train("mlp_deep", "moons", overrides={**over, "run.name": "full"}, callbacks=[spy])
    assert full.status == "completed"
    assert spy.trains == {
        0: {(False, False, False, True)},
        1: {(False, False, True, True)},
        2: {(False, True, True, True)},
        3: {(True, True, True, True)},
    }
    assert torch.equal(spy.first[0], spy.first[3])  # frozen through epochs 0-2, weight decay included
    assert not torch.equal(spy.first[3], spy.first[4])  # trains in the last epoch
    stopped = archlab.train(
        "mlp_deep", "moons", overrides={**over, "run.name": "part"}, callbacks=[StopAt(16)]
    )
    assert stopped.status == "interrupted"
    resumed = archlab.train(resume=tmp_path / "part")  # mid-epoch 1: two groups train again, not one
    assert resumed.status == "completed"
    assert resumed.summary["weights_digests"] == full.summary["weights_digests"]


def test_gradual_unfreezing_needs_something_to_unfreeze():
    with pytest.raises(TransferError, match="linear probe never unfreezes"):
        apply_finetune(Tiny(), "linear_probe", gradual=True)
    with pytest.raises(TransferError, match="unfreeze_every must be >= 1"):
        GradualUnfreezing(0)


def test_cli_linear_probe_from_a_run_folder(pretrained, tmp_path, capsys):
    from archlab.cli import main

    rc = main(
        [
            "train",
            "simple_cnn_small",
            "--data",
            "digits",
            f"model.init={pretrained}",
            "train.finetune=linear_probe",
            "train.epochs=1",
            "--out",
            str(tmp_path),
            "--name",
            "cli",
            "--no-progress",
            "run.report=false",
            "system.tensorboard=false",
        ]
    )
    assert rc == 0
    out = capsys.readouterr().out
    assert "init: loaded 14/14 tensors" in out and "finetune linear_probe: 1 of 3 layer groups train" in out
    assert (tmp_path / "cli" / "init.json").is_file()
    assert (
        main(
            [
                "train",
                "simple_cnn_small",
                "--data",
                "digits",
                f"model.init={tmp_path / 'nothing.pt'}",
                "--out",
                str(tmp_path),
                "--no-progress",
            ]
        )
        == 2
    )
    assert "nothing.pt" in capsys.readouterr().err


def test_scratch_models_refuse_transfer_settings(tmp_path):
    with pytest.raises(archlab.utils.ArchlabError, match="apply to torch models"):
        archlab.train(
            "scratch_mlp", "digits", overrides={**FAST, "run.out_dir": str(tmp_path), "model.init": "x.pt"}
        )
