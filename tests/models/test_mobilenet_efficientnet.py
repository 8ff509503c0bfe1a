"""MobileNetV1/V2/V3 and EfficientNet-B0..B3: torchvision's parameter counts and names, the blocks, the options."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from archlab.config import ConfigError
from archlab.models.cnn.efficientnet import MBConv, StochasticDepth
from archlab.models.cnn.mobilenet import make_divisible
from archlab.registry import create_model

# torchvision's figures (its model docs) at num_classes=1000, in_channels=3; V1 (not in torchvision)
# is 32*27 + 13 depthwise separable blocks + 1024*1000 + 1000, summed by hand in docs/mobile.md.
PARAMS = {
    "mobilenet_v1": 4_231_976,
    "mobilenet_v2": 3_504_872,
    "mobilenet_v3_large": 5_483_032,
    "mobilenet_v3_small": 2_542_856,
    "efficientnet_b0": 5_288_548,
    "efficientnet_b1": 7_794_184,
    "efficientnet_b2": 9_109_994,
    "efficientnet_b3": 12_233_232,
}

# state_dict entries of torchvision's models (a checkpoint of theirs loads with strict=True).
KEYS = {
    "mobilenet_v1": {
        "features.0.0.weight": (32, 3, 3, 3),
        "features.1.depthwise.0.weight": (32, 1, 3, 3),
        "features.1.pointwise.0.weight": (64, 32, 1, 1),
        "features.13.pointwise.1.running_var": (1024,),
        "classifier.1.weight": (1000, 1024),
    },
    "mobilenet_v2": {
        "features.0.0.weight": (32, 3, 3, 3),
        "features.0.1.running_mean": (32,),
        "features.1.conv.0.0.weight": (32, 1, 3, 3),
        "features.1.conv.1.weight": (16, 32, 1, 1),
        "features.1.conv.2.weight": (16,),
        "features.2.conv.0.0.weight": (96, 16, 1, 1),
        "features.2.conv.1.0.weight": (96, 1, 3, 3),
        "features.2.conv.2.weight": (24, 96, 1, 1),
        "features.2.conv.3.num_batches_tracked": (),
        "features.17.conv.2.weight": (320, 960, 1, 1),
        "features.18.0.weight": (1280, 320, 1, 1),
        "features.18.1.bias": (1280,),
        "classifier.1.weight": (1000, 1280),
        "classifier.1.bias": (1000,),
    },
    "mobilenet_v3_large": {
        "features.0.0.weight": (16, 3, 3, 3),
        "features.1.block.0.0.weight": (16, 1, 3, 3),  # no expansion in the first block
        "features.1.block.1.0.weight": (16, 16, 1, 1),
        "features.4.block.0.0.weight": (72, 24, 1, 1),
        "features.4.block.1.0.weight": (72, 1, 5, 5),
        "features.4.block.2.fc1.weight": (24, 72, 1, 1),  # make_divisible(72 // 4, 8) = 24
        "features.4.block.2.fc1.bias": (24,),
        "features.4.block.2.fc2.weight": (72, 24, 1, 1),
        "features.4.block.3.1.weight": (40,),
        "features.16.0.weight": (960, 160, 1, 1),
        "classifier.0.weight": (1280, 960),
        "classifier.3.weight": (1000, 1280),
    },
    "mobilenet_v3_small": {
        "features.1.block.0.0.weight": (16, 1, 3, 3),
        "features.1.block.1.fc1.weight": (8, 16, 1, 1),
        "features.1.block.2.0.weight": (16, 16, 1, 1),
        "features.12.0.weight": (576, 96, 1, 1),
        "classifier.0.weight": (1024, 576),
        "classifier.3.weight": (1000, 1024),
    },
    "efficientnet_b0": {
        "features.0.0.weight": (32, 3, 3, 3),
        "features.1.0.block.0.0.weight": (32, 1, 3, 3),
        "features.1.0.block.1.fc1.weight": (8, 32, 1, 1),
        "features.1.0.block.2.0.weight": (16, 32, 1, 1),
        "features.2.0.block.0.0.weight": (96, 16, 1, 1),
        "features.2.0.block.1.0.weight": (96, 1, 3, 3),
        "features.2.0.block.2.fc1.weight": (4, 96, 1, 1),  # squeeze = block input // 4
        "features.2.0.block.2.fc2.bias": (96,),
        "features.2.1.block.3.1.running_mean": (24,),
        "features.6.3.block.1.0.weight": (1152, 1, 5, 5),
        "features.8.0.weight": (1280, 320, 1, 1),
        "classifier.1.weight": (1000, 1280),
    },
    "efficientnet_b3": {
        "features.0.0.weight": (40, 3, 3, 3),
        "features.6.5.block.3.0.weight": (232, 1392, 1, 1),
        "features.7.1.block.0.0.weight": (2304, 384, 1, 1),
        "features.8.0.weight": (1536, 384, 1, 1),
        "classifier.1.weight": (1000, 1536),
    },
}

STAGE_DEPTHS = {  # blocks in features.1 .. features.7: ceil(n * depth_mult)
    "efficientnet_b0": [1, 2, 2, 3, 3, 4, 1],
    "efficientnet_b1": [2, 3, 3, 4, 4, 5, 2],
    "efficientnet_b2": [2, 3, 3, 4, 4, 5, 2],
    "efficientnet_b3": [2, 3, 3, 5, 5, 6, 2],
}


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


@pytest.fixture(scope="module")
def models() -> dict[str, nn.Module]:
    torch.manual_seed(0)
    return {name: create_model(name).eval() for name in PARAMS}


@pytest.mark.parametrize("name", list(PARAMS))
def test_parameter_count_matches_torchvision(models: dict[str, nn.Module], name: str) -> None:
    assert n_params(models[name]) == PARAMS[name]


@pytest.mark.parametrize("name", list(KEYS))
def test_state_dict_names_and_shapes(models: dict[str, nn.Module], name: str) -> None:
    sd = models[name].state_dict()
    for key, shape in KEYS[name].items():
        assert key in sd, f"{name}: missing {key}"
        assert tuple(sd[key].shape) == shape, f"{name}: {key} {tuple(sd[key].shape)} != {shape}"


@pytest.mark.parametrize("name", list(STAGE_DEPTHS))
def test_efficientnet_stage_depths(models: dict[str, nn.Module], name: str) -> None:
    feats = models[name].features
    assert len(feats) == 9
    assert [len(feats[i]) for i in range(1, 8)] == STAGE_DEPTHS[name]


@pytest.mark.parametrize("name", list(PARAMS))
def test_depthwise_convs_have_one_group_per_channel(models: dict[str, nn.Module], name: str) -> None:
    m = models[name]
    convs = [c for c in m.modules() if isinstance(c, nn.Conv2d) and c.kernel_size[0] > 1]
    stem, depthwise = convs[0], convs[1:]
    assert stem.groups == 1 and stem.stride == (2, 2)
    assert depthwise and all(c.groups == c.in_channels == c.out_channels for c in depthwise)
    blocks = sum(1 for mod in m.modules() if type(mod).__name__ in {
        "DepthwiseSeparableConv", "InvertedResidual", "InvertedResidualV3", "MBConv"})  # fmt: skip
    assert len(depthwise) == blocks


def test_norm_settings() -> None:
    v3 = create_model("mobilenet_v3_small")
    bns = [m for m in v3.modules() if isinstance(m, nn.BatchNorm2d)]
    assert all(b.eps == 1e-3 and b.momentum == 0.01 for b in bns)
    b0 = create_model("efficientnet_b0", bn_eps=1e-3, bn_momentum=0.01)
    assert all(b.eps == 1e-3 and b.momentum == 0.01 for b in b0.modules() if isinstance(b, nn.BatchNorm2d))


def test_stochastic_depth_schedule_and_eval_identity() -> None:
    m = create_model("efficientnet_b0")
    probs = [b.stochastic_depth.p for b in m.modules() if isinstance(b, MBConv)]
    assert probs == pytest.approx([0.2 * i / 16 for i in range(16)])
    assert sum(n_params(b.stochastic_depth) for b in m.modules() if isinstance(b, MBConv)) == 0

    drop = StochasticDepth(0.5)
    x = torch.randn(256, 4, 2, 2)
    assert drop.eval()(x) is x
    y = drop.train()(x)
    kept = (y != 0).flatten(1).all(1)
    assert ((y == 0).flatten(1).all(1) | kept).all()  # whole samples are dropped
    assert 64 < kept.sum() < 192
    assert torch.allclose(y[kept], 2 * x[kept])  # survivors scaled by 1 / (1 - p)


def test_train_mode_is_stochastic_eval_mode_is_not() -> None:
    torch.manual_seed(0)
    m = create_model(
        "efficientnet_b0", width_mult=0.25, depth_mult=0.5, stochastic_depth_prob=0.5, dropout=0.0
    )
    x = torch.randn(4, 3, 32, 32)
    m.eval()
    with torch.no_grad():
        assert torch.equal(m(x), m(x))
        m.train()
        assert not torch.equal(m(x), m(x))


@pytest.mark.parametrize(
    ("name", "features"),
    [
        ("mobilenet_v1", 1024),
        ("mobilenet_v2", 1280),
        ("mobilenet_v3_large", 960),
        ("mobilenet_v3_small", 576),
        ("efficientnet_b0", 1280),
    ],
)
def test_shapes_at_224(models: dict[str, nn.Module], name: str, features: int) -> None:
    m = models[name]
    with torch.no_grad():
        f = m.forward_features(torch.randn(1, 3, 224, 224))
        assert f.shape == (1, features, 7, 7)
        assert m.forward_head(f).shape == (1, 1000)
    assert m.cam_layer == "features"
    assert m.get_submodule(m.cam_layer) is m.features


@pytest.mark.parametrize("name", ["mobilenet_v2_cifar", "efficientnet_b0_cifar"])
@pytest.mark.parametrize("side", [32, 28])
def test_cifar_variants_keep_resolution(name: str, side: int) -> None:
    m = create_model(name, in_channels=1 if side == 28 else 3, width_mult=0.5).eval()
    assert m.features[0][0].stride == (1, 1)
    x = torch.randn(2, m.in_channels, side, side)
    with torch.no_grad():
        f = m.forward_features(x)
        assert f.shape == (2, m.num_features, 4, 4)  # 8x downsampling: 32 -> 4, 28 -> 4
        assert m(x).shape == (2, 10)


@pytest.mark.parametrize("name", ["mobilenet_v1", "mobilenet_v3_small", "mobilenet_v3_large"])
def test_small_input_option(name: str) -> None:
    m = create_model(name, small_input=True, width_mult=0.25, num_classes=10).eval()
    with torch.no_grad():
        assert m.forward_features(torch.randn(1, 3, 32, 32)).shape[-2:] == (4, 4)


def test_reset_classifier() -> None:
    m = create_model("mobilenet_v3_small", num_classes=10).eval()
    assert isinstance(m.get_classifier(), nn.Linear) and m.get_classifier().out_features == 10
    keys = set(m.state_dict())
    m.reset_classifier(5)
    assert m.get_classifier().out_features == 5 and m.get_classifier() is m.classifier[-1]
    assert set(m.state_dict()) == keys
    with torch.no_grad():
        assert m(torch.randn(2, 3, 64, 64)).shape == (2, 5)
    e = create_model("efficientnet_b0", num_classes=10)
    e.reset_classifier(7)
    w = e.get_classifier().weight
    assert w.shape == (7, 1280) and w.abs().max() <= 7**-0.5  # U(+-1/sqrt(out_features))
    assert torch.count_nonzero(e.get_classifier().bias) == 0


def test_wrong_channels_name_the_expected_input() -> None:
    m = create_model("mobilenet_v2", width_mult=0.25)
    with pytest.raises(ValueError, match=r"mobilenet_v2 expects images \(B, 3, H, W\).*got 1 channels"):
        m(torch.randn(2, 1, 32, 32))
    e = create_model("efficientnet_b0_cifar", width_mult=0.25, depth_mult=0.25)
    with pytest.raises(ValueError, match=r"add a batch dimension"):
        e(torch.randn(3, 32, 32))
    # Global pooling takes any side.
    with torch.no_grad():
        assert m.eval()(torch.randn(1, 3, 1, 1)).shape == (1, 1000)


@pytest.mark.parametrize("name", ["mobilenet_v1", "mobilenet_v2", "mobilenet_v3_large", "efficientnet_b0"])
def test_strict_state_dict_round_trip(models: dict[str, nn.Module], name: str) -> None:
    src = models[name]
    torch.manual_seed(1)
    dst = create_model(name).eval()
    dst.load_state_dict(src.state_dict(), strict=True)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(src(x), dst(x))


def test_torchvision_style_init() -> None:
    torch.manual_seed(0)
    m = create_model("mobilenet_v2", width_mult=0.5)
    lin = m.get_classifier()
    assert abs(lin.weight.std().item() - 0.01) < 0.001 and torch.count_nonzero(lin.bias) == 0
    bn = m.features[0][1]
    assert torch.all(bn.weight == 1) and torch.all(bn.bias == 0)
    conv = m.features[18][0]  # kaiming normal, fan out: std = sqrt(2 / (out * k * k))
    assert abs(conv.weight.std().item() - (2 / conv.out_channels) ** 0.5) < 0.002


def test_width_and_depth_multipliers() -> None:
    assert [make_divisible(c * 0.25) for c in (32, 16, 24, 40, 80)] == [8, 8, 8, 16, 24]
    assert make_divisible(72 // 4) == 24  # never more than 10% below the value
    half = create_model("mobilenet_v2", width_mult=0.5)
    assert half.features[0][0].out_channels == 16 and half.get_classifier().in_features == 1280
    assert create_model("mobilenet_v3_large", width_mult=0.5).get_classifier().in_features == 640
    assert len(create_model("mobilenet_v2", depth_mult=0.25, width_mult=0.25).features) == 9
    assert len(create_model("mobilenet_v1", depth_mult=0.2, width_mult=0.25).features) == 10


@pytest.mark.parametrize(
    ("name", "override"),
    [
        ("mobilenet_v2", {"width_mult": 0.0}),
        ("mobilenet_v1", {"dropout": 1.0}),
        ("efficientnet_b0", {"stochastic_depth_prob": 1.0}),
        ("efficientnet_b0", {"depth_mult": -1.0}),
        ("mobilenet_v3_small", {"arch": "medium"}),
    ],
)
def test_bad_config(name: str, override: dict) -> None:
    with pytest.raises(ConfigError):
        create_model(name, **override)
