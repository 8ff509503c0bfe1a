"""ResNet / plain networks, VGG and AlexNet: torchvision's parameter counts, names and shapes.

Large models are built on the ``meta`` device (shapes only, no memory, no initialisation cost) for
the counts and the state_dict layouts; only resnet50, vgg16 and alexnet are built for real, once,
for the checkpoint round trip.
"""

from __future__ import annotations

import io

import pytest
import torch
from torch import nn

from archlab.config import ConfigError
from archlab.models.cnn.resnet import BasicBlock, Bottleneck
from archlab.registry import create_model

# torchvision's counts (num_classes=1000, in_channels=3).
PARAMS = {
    "resnet18": 11_689_512,
    "resnet34": 21_797_672,
    "resnet50": 25_557_032,
    "resnet101": 44_549_160,
    "resnet152": 60_192_808,
    "vgg11": 132_863_336,
    "vgg13": 133_047_848,
    "vgg16": 138_357_544,
    "vgg19": 143_667_240,
    "vgg11_bn": 132_868_840,
    "vgg13_bn": 133_053_736,
    "vgg16_bn": 138_365_992,
    "vgg19_bn": 143_678_248,
    "alexnet": 61_100_840,
}
RESNET_LAYERS = {
    "resnet18": ("basic", (2, 2, 2, 2)),
    "resnet34": ("basic", (3, 4, 6, 3)),
    "resnet50": ("bottleneck", (3, 4, 6, 3)),
    "resnet101": ("bottleneck", (3, 4, 23, 3)),
    "resnet152": ("bottleneck", (3, 8, 36, 3)),
}
BN = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def meta_model(name: str, **overrides) -> nn.Module:
    with torch.device("meta"):
        return create_model(name, num_classes=1000, in_channels=3, **overrides)


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def shapes(model: nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def expected_resnet_keys(block: str, layers: tuple[int, ...], residual: bool = True) -> set[str]:
    """torchvision's state_dict keys, written from its naming rules (not from our modules)."""
    keys = {"conv1.weight", "fc.weight", "fc.bias", *(f"bn1.{s}" for s in BN)}
    convs = 2 if block == "basic" else 3
    for i, n in enumerate(layers, start=1):
        for j in range(n):
            p = f"layer{i}.{j}"
            for k in range(1, convs + 1):
                keys |= {f"{p}.conv{k}.weight", *(f"{p}.bn{k}.{s}" for s in BN)}
            # A projection where the shape changes: stage > 1, or the first bottleneck (64 -> 256).
            if residual and j == 0 and (i > 1 or block == "bottleneck"):
                keys |= {f"{p}.downsample.0.weight", *(f"{p}.downsample.1.{s}" for s in BN)}
    return keys


# ----------------------------------------------------------------------------------------------
# parameter counts and torchvision layouts


@pytest.mark.parametrize("name", list(PARAMS))
def test_param_count_matches_torchvision(name: str) -> None:
    assert n_params(meta_model(name)) == PARAMS[name]


@pytest.mark.parametrize("name", list(RESNET_LAYERS))
def test_resnet_state_dict_keys_are_torchvision(name: str) -> None:
    block, layers = RESNET_LAYERS[name]
    assert set(meta_model(name).state_dict()) == expected_resnet_keys(block, layers)


def test_resnet_shapes() -> None:
    s18, s50, s152 = (
        shapes(meta_model("resnet18")),
        shapes(meta_model("resnet50")),
        shapes(meta_model("resnet152")),
    )
    assert s18["conv1.weight"] == (64, 3, 7, 7)
    assert s18["bn1.running_mean"] == (64,) and s18["bn1.num_batches_tracked"] == ()
    assert s18["layer1.0.conv1.weight"] == (64, 64, 3, 3)
    assert s18["layer2.0.conv1.weight"] == (128, 64, 3, 3)
    assert s18["layer2.0.downsample.0.weight"] == (128, 64, 1, 1)
    assert s18["layer2.0.downsample.1.running_var"] == (128,)
    assert s18["layer4.1.bn2.weight"] == (512,)
    assert s18["fc.weight"] == (1000, 512)
    assert s50["layer1.0.conv1.weight"] == (64, 64, 1, 1)
    assert s50["layer1.0.downsample.0.weight"] == (256, 64, 1, 1)
    assert s50["layer2.0.conv2.weight"] == (128, 128, 3, 3)
    assert s50["layer4.2.conv3.weight"] == (2048, 512, 1, 1)
    assert s50["layer4.2.bn3.running_mean"] == (2048,)
    assert s50["fc.weight"] == (1000, 2048)
    assert s152["layer3.35.bn3.weight"] == (1024,) and "layer3.36.conv1.weight" not in s152


def test_bottleneck_strides_on_the_3x3_conv_v1_5() -> None:
    m = meta_model("resnet50")
    assert m.layer2[0].conv1.stride == (1, 1) and m.layer2[0].conv2.stride == (2, 2)
    assert m.layer2[0].downsample[0].stride == (2, 2)
    paper = meta_model("resnet50", bottleneck_stride="1x1")
    assert paper.layer2[0].conv1.stride == (2, 2) and paper.layer2[0].conv2.stride == (1, 1)
    assert n_params(paper) == PARAMS["resnet50"]


def test_vgg_layouts() -> None:
    s = shapes(meta_model("vgg16"))
    conv_idx = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]
    expected = {f"features.{i}.{w}" for i in conv_idx for w in ("weight", "bias")}
    expected |= {f"classifier.{i}.{w}" for i in (0, 3, 6) for w in ("weight", "bias")}
    assert set(s) == expected
    assert s["features.0.weight"] == (64, 3, 3, 3)
    assert s["features.28.weight"] == (512, 512, 3, 3)
    assert s["classifier.0.weight"] == (4096, 25088)
    assert s["classifier.3.weight"] == (4096, 4096)
    assert s["classifier.6.weight"] == (1000, 4096)
    bn = shapes(meta_model("vgg16_bn"))
    assert bn["features.1.running_mean"] == (64,) and bn["features.1.num_batches_tracked"] == ()
    assert bn["features.40.weight"] == (512, 512, 3, 3) and bn["features.41.running_var"] == (512,)
    assert bn["features.0.bias"] == (64,)  # torchvision keeps the conv bias before BN
    m = meta_model("vgg11")
    assert isinstance(m.avgpool, nn.AdaptiveAvgPool2d) and m.avgpool.output_size == (7, 7)
    assert [type(c).__name__ for c in m.classifier] == [
        "Linear", "ReLU", "Dropout", "Linear", "ReLU", "Dropout", "Linear",
    ]  # fmt: skip


def test_alexnet_layout() -> None:
    assert shapes(meta_model("alexnet")) == {
        "features.0.weight": (64, 3, 11, 11), "features.0.bias": (64,),
        "features.3.weight": (192, 64, 5, 5), "features.3.bias": (192,),
        "features.6.weight": (384, 192, 3, 3), "features.6.bias": (384,),
        "features.8.weight": (256, 384, 3, 3), "features.8.bias": (256,),
        "features.10.weight": (256, 256, 3, 3), "features.10.bias": (256,),
        "classifier.1.weight": (4096, 9216), "classifier.1.bias": (4096,),
        "classifier.4.weight": (4096, 4096), "classifier.4.bias": (4096,),
        "classifier.6.weight": (1000, 4096), "classifier.6.bias": (1000,),
    }  # fmt: skip
    m = meta_model("alexnet")
    assert isinstance(m.classifier[0], nn.Dropout) and isinstance(m.classifier[3], nn.Dropout)
    assert m.avgpool.output_size == (6, 6)


@pytest.mark.parametrize(
    ("name", "features", "side"),
    [("resnet50", 2048, 7), ("resnet18", 512, 7), ("vgg16", 512, 7), ("alexnet", 256, 6)],
)
def test_imagenet_shapes_at_224(name: str, features: int, side: int) -> None:
    m = meta_model(name).eval()
    x = torch.empty(2, 3, 224, 224, device="meta")
    f = m.forward_features(x)
    assert f.shape == (2, features, side, side)
    assert m.forward_head(f).shape == m(x).shape == (2, 1000)
    assert m.get_submodule(m.cam_layer) is not None


# ----------------------------------------------------------------------------------------------
# CIFAR stem, plain networks, options


@pytest.mark.parametrize("side", [28, 32])
@pytest.mark.parametrize(("name", "expansion"), [("resnet18_cifar", 1), ("resnet50_cifar", 4)])
def test_cifar_stem_shapes(name: str, expansion: int, side: int) -> None:
    torch.manual_seed(0)
    m = create_model(name, in_channels=1, num_classes=10, image_size=side, width=8).eval()
    assert m.conv1.kernel_size == (3, 3) and m.conv1.stride == (1, 1)
    assert isinstance(m.maxpool, nn.Identity)
    x = torch.randn(2, 1, side, side)
    with torch.no_grad():
        f = m.forward_features(x)
        assert m.layer1(m.bn1(m.conv1(x))).shape == (2, 8 * expansion, side, side)  # no downsampling
        assert f.shape == (2, 64 * expansion, 4, 4)  # 28 -> 14 -> 7 -> 4; 32 -> 16 -> 8 -> 4
        assert torch.equal(m(x), m.forward_head(f)) and m(x).shape == (2, 10)


def test_cifar_variants_share_the_imagenet_names() -> None:
    a, b = meta_model("resnet18_cifar"), meta_model("resnet18")
    sa, sb = shapes(a), shapes(b)
    assert sa.keys() == sb.keys() and sa["conv1.weight"] == (64, 3, 3, 3)
    assert n_params(b) - n_params(a) == 64 * 3 * (49 - 9)


def test_paper_cifar_resnet20() -> None:
    """Section 4.2: 6n+2 layers, 16/32/64 planes, option A shortcuts; ResNet-20 has 0.27M params."""
    m = create_model(
        "resnet18_cifar", width=16, layers=(3, 3, 3), shortcut="zero_pad", num_classes=10, image_size=32
    )
    assert n_params(m) == 269_722 and m.cam_layer == "layer3"
    assert m(torch.randn(2, 3, 32, 32)).shape == (2, 10)


@pytest.mark.parametrize(("plain", "resnet"), [("plain18", "resnet18"), ("plain34", "resnet34")])
def test_plain_networks_have_no_shortcut_parameters(plain: str, resnet: str) -> None:
    p, r = meta_model(plain), meta_model(resnet)
    _, layers = RESNET_LAYERS[resnet]
    assert set(p.state_dict()) == expected_resnet_keys("basic", layers, residual=False)
    assert not any("downsample" in k for k in p.state_dict())
    projections = sum(v.numel() for k, v in r.named_parameters() if "downsample" in k)
    assert n_params(r) - n_params(p) == projections == 173_824
    assert n_params(meta_model(resnet, shortcut="zero_pad")) == n_params(p)  # option A: no parameters


@pytest.mark.parametrize(("name", "residual"), [("plain18", False), ("resnet18", True)])
def test_block_without_skip_outputs_zero_when_its_branch_is_zero(name: str, residual: bool) -> None:
    torch.manual_seed(0)
    m = create_model(name, width=8, num_classes=3, image_size=16).eval()
    block = m.layer1[0]
    with torch.no_grad():
        block.bn2.weight.zero_()
        block.bn2.bias.zero_()  # the residual branch F(x) is now exactly 0
        x = torch.rand(2, 8, 8, 8)  # non-negative, like a ReLU output
        out = block(x)
    if residual:
        assert torch.equal(out, x)  # relu(0 + x) = x
    else:
        assert torch.count_nonzero(out) == 0


def test_block_types_and_residual_flag() -> None:
    assert isinstance(meta_model("resnet34").layer3[0], BasicBlock)
    assert isinstance(meta_model("resnet101").layer3[22], Bottleneck)
    assert all(not b.residual for s in ("layer1", "layer4") for b in meta_model("plain34").get_submodule(s))


@pytest.mark.parametrize("name", ["resnet18", "resnet50"])
def test_zero_init_residual_makes_every_block_an_identity(name: str) -> None:
    torch.manual_seed(0)
    m = create_model(name, width=8, layers=(2, 2), num_classes=3, zero_init_residual=True).eval()
    blocks = [b for b in m.modules() if isinstance(b, (BasicBlock, Bottleneck))]
    assert len(blocks) == 4
    for b in blocks:
        assert torch.count_nonzero(b.last_bn.weight) == 0
        assert torch.all(b.bn1.weight == 1)
        x = torch.rand(2, b.conv1.in_channels, 8, 8)
        with torch.no_grad():
            shortcut = x if b.downsample is None else b.downsample(x)
            assert torch.equal(b(x), torch.relu(shortcut))
    assert torch.all(create_model(name, width=8, layers=(2, 2)).layer1[0].last_bn.weight == 1)
    with pytest.raises(ConfigError, match="zero_init_residual"):
        create_model("plain18", zero_init_residual=True)


def test_resnet_options_dropout_width_init() -> None:
    m = create_model("resnet18", width=16, dropout=0.3, num_classes=5)
    assert isinstance(m.dropout, nn.Dropout) and m.dropout.p == 0.3
    assert m.fc.in_features == 128 and m.layer4[0].conv1.out_channels == 128
    w = create_model("resnet18").layer3[0].conv1.weight  # Kaiming normal, fan_out = 256 * 9
    assert abs(w.std().item() - (2 / (256 * 9)) ** 0.5) < 0.002
    for bad in ({"layers": (2, 0)}, {"dropout": 1.0}, {"width": 0}):
        with pytest.raises(ConfigError):
            create_model("resnet18", **bad)


def test_vgg_options() -> None:
    m = create_model("vgg11", cfg=[16, "M", 32, "M"], image_size=8, hidden_dim=24, pool_size=1, num_classes=4)
    assert [type(c).__name__ for c in m.features] == [
        "Conv2d",
        "ReLU",
        "MaxPool2d",
        "Conv2d",
        "ReLU",
        "MaxPool2d",
    ]
    assert m.classifier[0].in_features == 32 and m.classifier[6].out_features == 4
    assert m(torch.randn(2, 3, 8, 8)).shape == (2, 4)
    small = create_model("vgg16_bn", width_div=16, hidden_dim=16, pool_size=1, image_size=32, num_classes=3)
    assert small.features[40].out_channels == 32
    assert small(torch.randn(2, 3, 32, 32)).shape == (2, 3)
    std = create_model("vgg11", width_div=8, hidden_dim=64).classifier[3].weight.std().item()
    assert abs(std - 0.01) < 0.001  # torchvision's N(0, 0.01) for linear layers
    with pytest.raises(ConfigError, match="cfg"):
        create_model("vgg11", cfg="C")
    with pytest.raises(ConfigError, match="needs >= 32"):
        create_model("vgg11", image_size=28)


@pytest.mark.parametrize("name", ["vgg11", "vgg13", "vgg16", "vgg19", "vgg11_bn", "vgg19_bn"])
def test_vgg_every_depth_runs_narrow(name: str) -> None:
    torch.manual_seed(0)
    m = create_model(name, width_div=16, hidden_dim=16, pool_size=1, image_size=32, num_classes=3).eval()
    with torch.no_grad():
        f = m.forward_features(torch.randn(2, 3, 32, 32))
        assert f.shape == (2, 32, 1, 1) and m.forward_head(f).shape == (2, 3)


def test_alexnet_options() -> None:
    lrn = meta_model("alexnet", lrn=True)
    assert isinstance(lrn.features[2], nn.LocalResponseNorm) and n_params(lrn) == PARAMS["alexnet"]
    paper = meta_model("alexnet", channels=(96, 256, 384, 384, 256))
    assert shapes(paper)["features.3.weight"] == (256, 96, 5, 5)
    m = create_model("alexnet", init="paper", width_div=16, hidden_dim=32)
    assert torch.all(m.features[3].bias == 1) and torch.all(m.features[0].bias == 0)
    assert torch.all(m.classifier[1].bias == 1) and torch.all(m.classifier[6].bias == 0)
    with pytest.raises(ConfigError, match="at least 63"):
        create_model("alexnet", image_size=32)


# ----------------------------------------------------------------------------------------------
# model contract: errors, classifier, checkpoints


def test_wrong_channels_names_the_expected_input() -> None:
    m = create_model("resnet18", width=8)
    with pytest.raises(ValueError, match=r"resnet18 expects images \(B, 3, H, W\).*in_channels=1"):
        m(torch.randn(1, 1, 32, 32))
    v = create_model("vgg11_bn", width_div=16, hidden_dim=16)
    with pytest.raises(
        ValueError, match=r"vgg11_bn expects images \(B, 3, H, W\) with H, W >= 32.*1 channels"
    ):
        v(torch.randn(1, 1, 32, 32))
    with pytest.raises(ValueError, match=r"H, W >= 32, got 28x28"):
        v(torch.randn(1, 3, 28, 28))
    a = create_model("alexnet", width_div=16, hidden_dim=16)
    with pytest.raises(ValueError, match=r"alexnet expects images \(B, 3, H, W\) with H, W >= 63, got 62x62"):
        a(torch.randn(1, 3, 62, 62))
    assert a(torch.randn(1, 3, 63, 63)).shape == (1, 1000)


@pytest.mark.parametrize(
    ("name", "opts", "side"),
    [
        ("resnet18", {"width": 8}, 16),
        ("resnet50_cifar", {"width": 8}, 16),
        ("vgg11_bn", {"width_div": 16, "hidden_dim": 16, "pool_size": 1}, 32),
        ("alexnet", {"width_div": 16, "hidden_dim": 16}, 64),
    ],
)
def test_reset_classifier(name: str, opts: dict, side: int) -> None:
    m = create_model(name, num_classes=10, image_size=side, **opts).eval()
    old = m.get_classifier()
    assert isinstance(old, nn.Linear) and old.out_features == 10
    m.reset_classifier(7)
    new = m.get_classifier()
    assert new is not old and isinstance(new, nn.Linear)
    assert new.out_features == 7 and new.in_features == old.in_features
    assert m(torch.randn(2, 3, side, side)).shape == (2, 7)
    with pytest.raises(ValueError):
        m.reset_classifier(0)


@pytest.fixture(scope="module")
def vgg16_pair() -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(0)
    a = create_model("vgg16")
    torch.manual_seed(1)
    return a, create_model("vgg16")


def _round_trip(src: nn.Module, dst: nn.Module) -> None:
    buf = io.BytesIO()
    torch.save(src.state_dict(), buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)
    result = dst.load_state_dict(state, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    for k, v in src.state_dict().items():
        assert torch.equal(dst.state_dict()[k], v), k


@pytest.mark.parametrize("name", ["resnet50", "plain18", "alexnet"])
def test_strict_load_of_a_saved_state_dict(name: str) -> None:
    torch.manual_seed(0)
    src = create_model(name)
    torch.manual_seed(1)
    dst = create_model(name)
    first = "features.0.weight" if name == "alexnet" else "conv1.weight"
    assert not torch.equal(src.state_dict()[first], dst.state_dict()[first])
    _round_trip(src, dst)


def test_strict_load_vgg16(vgg16_pair: tuple[nn.Module, nn.Module]) -> None:
    src, dst = vgg16_pair
    assert n_params(src) == PARAMS["vgg16"]
    _round_trip(src, dst)
    with pytest.raises(RuntimeError, match="Missing key"):
        meta_model("vgg16_bn").load_state_dict(meta_model("vgg16").state_dict(), strict=True, assign=True)
