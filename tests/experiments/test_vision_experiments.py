"""The ResNet and transfer-learning experiments (``resnet_vs_plain``, ``resnet_vs_vgg``,
``transfer_learning``) in quick mode, their bookkeeping helpers, and the tour's ResNet stop."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from _report_checks import check_quick_report
from torch import nn

from archlab.experiments import resnet_experiments as rx
from archlab.experiments import transfer_learning as tl
from archlab.registry import create_model

EXPERIMENTS = {
    "resnet_vs_plain": ("loss_curves.png", "gradient_norms.png", "depth.png"),
    "resnet_vs_vgg": ("cost.png", "accuracy.png"),
    "transfer_learning": ("transfer.png",),
}


def test_registered_in_family_cnn():
    from archlab.registry import EXPERIMENTS as REG

    assert set(EXPERIMENTS) <= set(REG.names(family="cnn"))
    assert REG.get("resnet-vs-plain").fn is rx.resnet_vs_plain


@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_quick_mode_writes_report(name, quick_run):
    res, out = quick_run(name)
    check_quick_report(res, out, EXPERIMENTS[name])


# ---- resnet_vs_plain ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "layers, block, depth",
    [
        ((1, 1, 1, 1), "basic", 10),
        ((2, 2, 2, 2), "basic", 18),
        ((3, 4, 6, 3), "basic", 34),
        ((3, 4, 6, 3), "bottleneck", 50),
    ],
)
def test_depth_counts_the_main_path_weight_layers(layers, block, depth):
    assert rx.network_depth(layers, block) == depth
    for residual in (False, True):
        net = create_model(
            "resnet18_cifar", num_classes=3, width=4, layers=layers, block=block, residual=residual
        )
        assert len(rx.weight_layers(net)) == depth  # stem conv + block convs + fc, no 1x1 projections


def test_plain_and_residual_differ_only_by_the_projections():
    res = create_model("resnet18_cifar", in_channels=1, width=8, layers=(2, 2, 2, 2))
    plain = create_model("resnet18_cifar", in_channels=1, width=8, layers=(2, 2, 2, 2), residual=False)
    proj = sum(p.numel() for n, p in res.named_parameters() if ".downsample." in n)
    assert proj > 0 and not any(".downsample." in n for n, _ in plain.named_parameters())
    assert sum(p.numel() for p in plain.parameters()) == sum(p.numel() for p in res.parameters()) - proj
    with pytest.raises(ValueError, match="block"):
        rx.network_depth((2, 2), "dense")


def test_gradient_norms_leave_the_model_as_it_was():
    torch.manual_seed(0)
    net = create_model("resnet18_cifar", in_channels=1, num_classes=10, width=4, layers=(1, 1, 1, 1)).eval()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    x, y = torch.randn(8, 1, 8, 8), torch.randint(0, 10, (8,))
    norms = rx.gradient_norms(net, x, y)
    assert len(norms) == 10 and all(n > 0 and math.isfinite(n) for n in norms)
    assert not net.training and all(p.grad is None for p in net.parameters())
    for k, v in net.state_dict().items():
        torch.testing.assert_close(v, before[k])  # batch-norm statistics restored


def test_resnet_vs_plain_quick_results(quick_run):
    res, _ = quick_run("resnet_vs_plain")
    assert res["depths"] == [10, 18]
    assert {r["label"] for r in res["runs"]} == {"plain-10", "ResNet-10", "plain-18", "ResNet-18"}
    for r in res["runs"]:
        assert r["depth"] == rx.network_depth(r["layers"]) and r["label"].endswith(f"-{r['depth']}")
        assert r["label"].startswith("ResNet") == r["residual"]
        net = create_model(
            "resnet18_cifar",
            in_channels=1,
            num_classes=10,
            width=res["setup"]["width"],
            layers=tuple(r["layers"]),
            residual=r["residual"],
        )
        assert r["params"] == sum(p.numel() for p in net.parameters())
        assert len(r["grad_init"]) == len(r["grad_final"]) == r["depth"]
        assert r["steps"] == res["setup"]["steps"] and len(r["history"]["loss"]) >= 5
        assert math.isfinite(r["final_loss"]) and 0.0 <= r["test_acc"] <= 1.0
        assert "model" not in r
    deg = res["degradation"]
    assert (deg["deep"], deg["shallow"]) == (18, 10)
    assert isinstance(deg["plain_degrades"], bool) and isinstance(deg["residual_degrades"], bool)


# ---- resnet_vs_vgg ------------------------------------------------------------------------------


def test_resnet_vs_vgg_quick_results(quick_run):
    res, _ = quick_run("resnet_vs_vgg")
    cost = {e["label"]: e for e in res["cost"]}
    assert set(cost) == {"ResNet-18", "VGG-11-BN", "VGG-16-BN"}
    assert cost["ResNet-18"]["params"] == 11_172_810  # resnet18_cifar, 1 input channel, 10 classes
    for label, model, full, narrow in rx.VGG_MODELS:
        e = cost[label]
        assert e["params"] == sum(
            p.numel()
            for p in create_model(model, in_channels=1, num_classes=10, image_size=32, **full).parameters()
        )
        small = create_model(model, in_channels=1, num_classes=10, image_size=32, **narrow)
        assert e["narrow_params"] == sum(p.numel() for p in small.parameters())
        assert e["narrow_params"] < e["params"] / 10  # a quarter of the width: ~1/16 of the weights
        assert e["flops"] > 1e8 and e["activation_bytes"] > 0 and e["step_seconds"] > 0
        assert 0.0 <= e["test_acc"] <= 1.0
    assert cost["VGG-16-BN"]["flops"] > cost["VGG-11-BN"]["flops"]
    assert res["best"] in cost


def test_pad_to():
    x = torch.full((2, 1, 28, 28), 255, dtype=torch.uint8)
    y = rx.pad_to(x, 32)
    assert y.shape == (2, 1, 32, 32) and y[..., :2, :].sum() == 0 and y[..., 2:30, 2:30].min() == 255
    assert rx.pad_to(torch.zeros(1, 1, 8, 8, dtype=torch.uint8), 32).shape == (1, 1, 32, 32)  # resized


# ---- transfer_learning --------------------------------------------------------------------------


def test_transfer_quick_has_every_method_at_every_fraction(quick_run):
    res, out = quick_run("transfer_learning")
    assert res["methods"] == ["scratch", "linear probe", "fine-tune"]
    assert res["fractions"] == [0.01, 0.1, 1.0]
    assert len(res["rows"]) == 9
    for method in res["methods"]:
        assert set(res["table"][method]) == set(res["fractions"])
        for cell in res["table"][method].values():
            assert 0.0 <= cell["mean"] <= 1.0
    for f in res["fractions"]:
        runs = [r for r in res["runs"] if r["fraction"] == f]
        assert len({(r["steps"], r["batch_size"]) for r in runs}) == 1  # the same budget for every method
        sizes = {r["n_train"] for r in runs}
        assert len(sizes) == 1
    full, small = (max(r["n_train"] for r in res["runs"] if r["fraction"] == f) for f in (1.0, 0.01))
    assert small < full
    probe = next(r for r in res["runs"] if r["method"] == "linear probe")
    assert probe["trainable"] == 64 * 5 + 5  # only the new head (width 8: 64 features, 5 classes)
    assert (Path(res["pretrain"]["run_dir"]) / "model.safetensors").exists()
    acc = res["acceptance"]
    assert acc["fraction"] == 0.01 and acc["finetune_beats_scratch"] == (acc["finetune"] > acc["scratch"])


def test_budget_rule():
    assert tl.budget(294, 64, 32, 200) == (32, 200)  # 1% of MNIST 5-9: the small batch, ~22 epochs
    assert tl.budget(2940, 64, 32, 200) == (64, 200)
    assert tl.budget(29404, 64, 32, 200) == (64, 460)  # all labels: one epoch
    assert tl.budget(3, 64, 32, 10) == (3, 10)


# ---- the tour stop ------------------------------------------------------------------------------


def test_tour_resnet_stop(tmp_path):
    import json

    import archlab
    from archlab.tours import STOPS

    stop = next(s for s in STOPS if s.name == "resnet20-digits")
    assert stop.model == "resnet18_cifar" and stop.data == "digits"
    with rx.num_threads(1):
        index = archlab.tour(out_dir=tmp_path, only=[stop.name])
    assert f"{stop.name}/report.html" in index.read_text()
    summary = json.loads((tmp_path / stop.name / "summary.json").read_text())
    assert summary["final"]["test/acc"] >= 0.95
    figures = tmp_path / stop.name / "figures"
    for fig in ("filters.png", "gradcam.png", "feature_maps.png"):
        assert (figures / fig).stat().st_size > 1_000, fig


def test_weight_layers_skip_projections():
    net = nn.Sequential()
    net.add_module("conv", nn.Conv2d(1, 2, 3))
    down = nn.Sequential(nn.Conv2d(2, 2, 1))
    net.add_module("downsample", down)
    net.add_module("fc", nn.Linear(2, 2))
    assert [n for n, _ in rx.weight_layers(net)] == ["conv", "fc"]
