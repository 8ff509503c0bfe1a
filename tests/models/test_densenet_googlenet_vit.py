"""DenseNet, GoogLeNet and ViT: torchvision's parameter counts and state_dict layout (ViT's through its
conversion to and from torchvision's names), ViT's block against ``nn.TransformerEncoderLayer`` and its
attention against a hand computation, GoogLeNet's auxiliary heads, the small-image variants, input errors."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from archlab.models.cnn.densenet import DenseNetConfig
from archlab.models.cnn.googlenet import GoogLeNetConfig
from archlab.models.transformer.layers import TransformerBlock
from archlab.models.vit import ViTConfig, vit_state_dict_from_torchvision
from archlab.registry import create_model


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.fixture(scope="module")
def densenet121() -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model("densenet121")


@pytest.fixture(scope="module")
def googlenet_aux() -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model("googlenet", aux_logits=True)


@pytest.fixture(scope="module")
def vit_b_16() -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model("vit_b_16")


# ----------------------------------------------------------------------------------------------
# torchvision parameter counts and state_dict layout


@pytest.mark.parametrize(
    ("name", "overrides", "expected"),
    [
        ("densenet169", {}, 14_149_480),
        ("googlenet", {}, 6_624_904),
        ("googlenet", {"branch3_5x5": True}, 6_624_904 + 16 * 23_808),  # + 16 c5r c5 per module
        ("vit_s_16", {}, 22_050_664),
        ("vit_ti_16", {}, 5_717_416),
    ],
)
def test_param_counts(name: str, overrides: dict, expected: int) -> None:
    assert n_params(create_model(name, **overrides)) == expected


def test_densenet121_layout(densenet121: torch.nn.Module) -> None:
    assert n_params(densenet121) == 7_978_856
    sd = densenet121.state_dict()
    shapes = {
        "features.conv0.weight": (64, 3, 7, 7),
        "features.norm0.running_mean": (64,),
        "features.denseblock1.denselayer1.norm1.weight": (64,),
        "features.denseblock1.denselayer1.conv1.weight": (128, 64, 1, 1),
        "features.denseblock1.denselayer1.conv2.weight": (32, 128, 3, 3),
        "features.denseblock1.denselayer6.norm1.weight": (224,),
        "features.transition1.conv.weight": (128, 256, 1, 1),
        "features.denseblock4.denselayer16.conv2.weight": (32, 128, 3, 3),
        "features.norm5.weight": (1024,),
        "classifier.weight": (1000, 1024),
    }
    for key, shape in shapes.items():
        assert tuple(sd[key].shape) == shape, key
    assert "features.transition4.conv.weight" not in sd
    # batch norms: norm0, two in each of the 58 dense layers, one per transition, norm5
    assert sum(k.endswith("num_batches_tracked") for k in sd) == 1 + 58 * 2 + 3 + 1
    assert len(sd) == 5 * 121 + 121 - 1 + 2  # 5 entries per BN, 120 conv weights, classifier


def test_googlenet_layout(googlenet_aux: torch.nn.Module) -> None:
    assert n_params(googlenet_aux) == 13_004_888
    sd = googlenet_aux.state_dict()
    shapes = {
        "conv1.conv.weight": (64, 3, 7, 7),
        "conv1.bn.weight": (64,),
        "conv3.conv.weight": (192, 64, 3, 3),
        "inception3a.branch1.conv.weight": (64, 192, 1, 1),
        "inception3a.branch2.0.conv.weight": (96, 192, 1, 1),
        "inception3a.branch2.1.conv.weight": (128, 96, 3, 3),
        "inception3a.branch3.1.conv.weight": (32, 16, 3, 3),  # 3x3 as torchvision, not 5x5
        "inception3a.branch4.1.conv.weight": (32, 192, 1, 1),
        "inception5b.branch4.1.bn.running_var": (128,),
        "aux1.conv.conv.weight": (128, 512, 1, 1),
        "aux1.fc1.weight": (1024, 2048),
        "aux2.conv.conv.weight": (128, 528, 1, 1),
        "aux2.fc2.weight": (1000, 1024),
        "fc.weight": (1000, 1024),
    }
    for key, shape in shapes.items():
        assert tuple(sd[key].shape) == shape, key
    assert googlenet_aux.conv1.bn.eps == 0.001


def test_vit_b_16_layout(vit_b_16: torch.nn.Module) -> None:
    assert n_params(vit_b_16) == 86_567_656
    sd = vit_b_16.torchvision_state_dict()
    layer = "encoder.layers.encoder_layer_0."
    shapes = {
        "conv_proj.weight": (768, 3, 16, 16),
        "class_token": (1, 1, 768),
        "encoder.pos_embedding": (1, 197, 768),
        layer + "ln_1.weight": (768,),
        layer + "self_attention.in_proj_weight": (2304, 768),
        layer + "self_attention.in_proj_bias": (2304,),
        layer + "self_attention.out_proj.weight": (768, 768),
        layer + "ln_2.bias": (768,),
        layer + "mlp.0.weight": (3072, 768),
        layer + "mlp.3.weight": (768, 3072),
        "encoder.layers.encoder_layer_11.mlp.3.bias": (768,),
        "encoder.ln.weight": (768,),
        "heads.head.weight": (1000, 768),
    }
    for key, shape in shapes.items():
        assert tuple(sd[key].shape) == shape, key
    assert len(sd) == 4 + 12 * 12 + 2 + 2 == 152  # torchvision's vit_b_16 has 152 entries
    # torchvision's order inside a block
    block_keys = [k[len(layer):] for k in sd if k.startswith(layer)]
    assert block_keys == [
        "ln_1.weight", "ln_1.bias", "self_attention.in_proj_weight", "self_attention.in_proj_bias",
        "self_attention.out_proj.weight", "self_attention.out_proj.bias", "ln_2.weight", "ln_2.bias",
        "mlp.0.weight", "mlp.0.bias", "mlp.3.weight", "mlp.3.bias",
    ]  # fmt: skip
    ours = vit_b_16.state_dict()
    assert len(ours) == 4 + 12 * 16 + 2 + 2  # q/k/v separate
    assert tuple(ours[layer + "self_attn.q_proj.weight"].shape) == (768, 768)
    assert vit_b_16.get_classifier() is vit_b_16.heads.head
    assert torch.count_nonzero(vit_b_16.heads.head.weight) == 0  # zero-initialised, as torchvision


@torch.no_grad()
def test_vit_initialisation_is_torchvisions(vit_b_16: torch.nn.Module) -> None:
    block = vit_b_16.encoder.layers.encoder_layer_0
    attn = block.self_attn
    # torchvision: Xavier-uniform over the packed (3D, D) in_proj_weight, zero in_proj_bias
    bound = math.sqrt(6 / (768 + 3 * 768))
    w = torch.cat([attn.q_proj.weight, attn.k_proj.weight, attn.v_proj.weight])  # (3D, D)
    assert float(w.abs().max()) <= bound and float(w.abs().max()) > 0.99 * bound
    assert abs(float(w.std()) - bound / math.sqrt(3)) < 0.01 * bound  # uniform(-a, a) has std a / sqrt(3)
    for proj in (attn.q_proj, attn.k_proj, attn.v_proj, attn.out_proj):
        assert torch.count_nonzero(proj.bias) == 0
    # out_proj: nn.Linear's default uniform(-1/sqrt(D), 1/sqrt(D)), as nn.MultiheadAttention
    assert 0.99 / math.sqrt(768) < float(attn.out_proj.weight.abs().max()) <= 1 / math.sqrt(768)
    for fc in (block.ff.fc1, block.ff.fc2):  # Xavier-uniform, normal(0, 1e-6) biases
        a = math.sqrt(6 / sum(fc.weight.shape))
        assert 0.99 * a < float(fc.weight.abs().max()) <= a
        assert 0.5e-6 < float(fc.bias.std()) < 2e-6
    assert block.norm1.eps == block.norm2.eps == vit_b_16.encoder.ln.eps == 1e-6


def test_vit_loads_torchvision_layout() -> None:
    """torchvision's names -> load_state_dict(strict=True) -> the same weights and outputs."""
    torch.manual_seed(0)
    src = create_model("vit_mnist", depth=2, zero_head=False).eval()
    tv = src.torchvision_state_dict()
    assert not any(".self_attn." in k or ".norm1." in k or ".ff." in k for k in tv)
    assert len(tv) == 4 + 2 * 12 + 2 + 2
    torch.manual_seed(1)
    dst = create_model("vit_mnist", depth=2, zero_head=False).eval()
    result = dst.load_state_dict(tv, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    for (name, a), b in zip(src.state_dict().items(), dst.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    x = torch.randn(2, 1, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(dst(x), src(x), rtol=0, atol=0)
    converted = vit_state_dict_from_torchvision(tv)
    assert set(converted) == set(src.state_dict())
    assert all(torch.equal(converted[k], v) for k, v in src.state_dict().items())

    # torchvision's older MLP names (mlp.linear_1 / mlp.linear_2) load too
    old = {k.replace("mlp.0.", "mlp.linear_1.").replace("mlp.3.", "mlp.linear_2."): v for k, v in tv.items()}
    torch.manual_seed(2)
    create_model("vit_mnist", depth=2, zero_head=False).load_state_dict(old, strict=True)
    # a wrong name is still an error
    bad = dict(tv, **{"encoder.layers.encoder_layer_0.mlp.9.weight": torch.zeros(1)})
    with pytest.raises(RuntimeError, match=r"mlp\.9\.weight"):
        dst.load_state_dict(bad, strict=True)


def test_vit_block_is_the_shared_transformer_block() -> None:
    """A ViT block is the library's pre-LN TransformerBlock, equal to nn.TransformerEncoderLayer."""
    torch.manual_seed(0)
    model = create_model("vit_mnist", depth=1, dropout=0.1, attention_dropout=0.2).eval()
    block = model.encoder.layers.encoder_layer_0
    assert type(block) is TransformerBlock and block.norm_first
    assert (block.dropout.p, block.ff.dropout.p, block.self_attn.dropout) == (0.1, 0.1, 0.2)
    ref = nn.TransformerEncoderLayer(
        64, 4, dim_feedforward=128, dropout=0.0, activation="gelu", batch_first=True, norm_first=True,
        layer_norm_eps=1e-6,
    ).eval()  # fmt: skip
    with torch.no_grad():
        for p in block.parameters():  # non-trivial norms and biases
            p.normal_(0, 0.2)
        # copied through torchvision's layout, which is nn.MultiheadAttention's packed in_proj
        tv = model.torchvision_state_dict()
        renames = {"ln_1": "norm1", "self_attention": "self_attn", "ln_2": "norm2", "mlp.0": "linear1",
                   "mlp.3": "linear2"}  # fmt: skip
        prefix = "encoder.layers.encoder_layer_0."
        ref_state = {}
        for key, value in tv.items():
            if key.startswith(prefix):
                name = key[len(prefix):]
                for theirs, ours in renames.items():
                    name = name.replace(theirs + ".", ours + ".", 1) if name.startswith(theirs + ".") else name
                ref_state[name] = value
        ref.load_state_dict(ref_state, strict=True)
        attn = block.self_attn
        torch.testing.assert_close(ref.self_attn.in_proj_weight[:64], attn.q_proj.weight, rtol=0, atol=0)
        torch.testing.assert_close(ref.self_attn.in_proj_bias[128:], attn.v_proj.bias, rtol=0, atol=0)
        x = torch.randn(2, 17, 64)
        torch.testing.assert_close(block(x)[0], ref(x), rtol=0, atol=1e-6)
        # the encoder runs its blocks, then the final LayerNorm
        z = torch.randn(2, 17, 64)
        expected = model.encoder.ln(ref(z + model.encoder.pos_embedding))
        torch.testing.assert_close(model.encoder(z), expected, rtol=0, atol=1e-5)


def test_full_size_forward(densenet121: torch.nn.Module, googlenet_aux: torch.nn.Module) -> None:
    """ImageNet-size inputs give (B, 1000) logits and the documented feature-map shapes."""
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        assert densenet121.eval().forward_features(x).shape == (1, 1024, 7, 7)
        feats = googlenet_aux.eval().forward_features(x)
        assert feats.shape == (1, 1024, 7, 7)
        assert googlenet_aux.forward_head(feats).shape == (1, 1000)


# ----------------------------------------------------------------------------------------------
# ViT attention


def test_attention_matches_hand_computation() -> None:
    torch.manual_seed(0)
    model = create_model("vit_mnist", depth=2).eval()
    x = torch.randn(2, 1, 28, 28)
    with torch.no_grad():
        maps = model.attention_maps(x)
        assert len(maps) == 2 and maps[0].shape == (2, 4, 17, 17)
        torch.testing.assert_close(maps[0].sum(-1), torch.ones(2, 4, 17))

        block = model.encoder.layers.encoder_layer_0
        attn = block.self_attn
        z = model.tokens(x) + model.encoder.pos_embedding  # (B, T, D)
        h = block.norm1(z)
        q, k, v = attn.q_proj(h), attn.k_proj(h), attn.v_proj(h)  # (B, T, D) each
        B, T, D = h.shape
        heads, d = 4, D // 4

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.view(B, T, heads, d).transpose(1, 2)  # (B, heads, T, d)

        q, k, v = split(q), split(k), split(v)
        a = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(d), dim=-1)  # (B, heads, T, T)
        out = (a @ v).transpose(1, 2).reshape(B, T, D)  # (B, T, D)
        out = attn.out_proj(out)
        torch.testing.assert_close(maps[0], a)
        ours, _ = attn(h, need_weights=False)
        torch.testing.assert_close(ours, out)
        expected = z + out
        expected = expected + block.ff.fc2(F.gelu(block.ff.fc1(block.norm2(expected))))
        torch.testing.assert_close(block(z)[0], expected)
        # the second layer's map is computed from the first layer's output
        torch.testing.assert_close(maps[1], block_attention(model.encoder.layers.encoder_layer_1, expected))
        # forward_features is the same stack followed by the final LayerNorm
        final = model.encoder.layers.encoder_layer_1(expected)[0]
        torch.testing.assert_close(model.forward_features(x), model.encoder.ln(final))


def block_attention(block: torch.nn.Module, z: torch.Tensor) -> torch.Tensor:
    return block(z, need_weights=True)[1]


def test_vit_features_head_and_mean_pool() -> None:
    torch.manual_seed(0)
    model = create_model("vit_mnist", pool="mean", zero_head=False).eval()
    x = torch.randn(3, 1, 28, 28)
    with torch.no_grad():
        tokens = model.forward_features(x)
        assert tokens.shape == (3, 17, 64)
        logits = model.forward_head(tokens)
        torch.testing.assert_close(logits, model.heads(tokens[:, 1:].mean(1)))
        torch.testing.assert_close(model(x), logits)
    assert model.cam_layer is None


def test_vit_representation_size() -> None:
    model = create_model("vit_mnist", representation_size=32)
    assert [name for name, _ in model.heads.named_children()] == ["pre_logits", "act", "head"]
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 10)


def test_resize_pos_embed() -> None:
    torch.manual_seed(0)
    model = create_model("vit_mnist").eval()
    with pytest.raises(ValueError, match=r"resize_pos_embed\(56\)"):
        model(torch.randn(1, 1, 56, 56))
    before = model.encoder.pos_embedding.detach().clone()
    model.resize_pos_embed(56)
    assert model.encoder.pos_embedding.shape == (1, 65, 64) and model.config.image_size == 56
    torch.testing.assert_close(model.encoder.pos_embedding[:, 0], before[:, 0])
    # align_corners: the grid's corner embeddings are kept
    torch.testing.assert_close(model.encoder.pos_embedding[:, 1], before[:, 1])
    assert model(torch.randn(2, 1, 56, 56)).shape == (2, 10)


# ----------------------------------------------------------------------------------------------
# GoogLeNet auxiliary heads


def test_aux_heads_only_when_asked_and_only_in_training() -> None:
    torch.manual_seed(0)
    plain = create_model("googlenet_cifar", width_div=16)
    assert plain.aux1 is None and plain.aux2 is None
    assert not any(k.startswith("aux") for k in plain.state_dict())
    y = torch.tensor([0, 1])
    plain.train()(torch.randn(2, 3, 32, 32))
    assert plain.aux_outputs == [] and float(plain.aux_loss(y)) == 0.0

    model = create_model("googlenet_cifar", width_div=16, aux_logits=True)
    assert model.aux_loss_weight == 0.3
    x = torch.randn(2, 3, 32, 32)
    logits = model.train()(x)
    assert logits.shape == (2, 10)
    assert [a.shape for a in model.aux_outputs] == [(2, 10), (2, 10)]
    aux = model.aux_loss(y)
    expected = 0.3 * (F.cross_entropy(model.aux_outputs[0], y) + F.cross_entropy(model.aux_outputs[1], y))
    torch.testing.assert_close(aux, expected)
    (F.cross_entropy(logits, y) + aux).backward()
    assert copy.deepcopy(model).aux_outputs == []  # the stored graph is not copied
    assert model.aux1.fc2.weight.grad is not None and model.aux2.conv.conv.weight.grad is not None

    with torch.no_grad():
        assert model.eval()(x).shape == (2, 10)
    assert model.aux_outputs == [] and float(model.aux_loss(y)) == 0.0

    model.reset_classifier(4)
    assert model.fc.out_features == 4 and model.aux1.fc2.out_features == 4
    assert model.train()(x).shape == (2, 4) and model.aux_outputs[1].shape == (2, 4)


def test_transform_input() -> None:
    torch.manual_seed(0)
    model = create_model("googlenet_cifar", width_div=16, transform_input=True)
    x = torch.zeros(1, 3, 32, 32)  # ImageNet-normalised zeros are the mean colour
    expected = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1) * 2 - 1
    torch.testing.assert_close(model._transform_input(x), expected.expand_as(x))
    with pytest.raises(ValueError, match="in_channels=3"):
        create_model("googlenet", transform_input=True, in_channels=1)


# ----------------------------------------------------------------------------------------------
# small variants, options, errors


@pytest.mark.parametrize(
    ("name", "overrides", "shape"),
    [
        ("densenet121_cifar", {"growth_rate": 4, "num_init_features": 8}, (2, 3, 32, 32)),
        ("densenet121_cifar", {"growth_rate": 4, "num_init_features": 8, "in_channels": 1}, (2, 1, 28, 28)),
        ("googlenet_cifar", {"width_div": 8}, (2, 3, 32, 32)),
        ("googlenet_cifar", {"width_div": 8, "in_channels": 1, "image_size": 28}, (2, 1, 28, 28)),
        ("vit_tiny_patch4_32", {"depth": 1}, (2, 3, 32, 32)),
        ("vit_mnist", {}, (2, 1, 28, 28)),
    ],
)
def test_small_variants(name: str, overrides: dict, shape: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    model = create_model(name, **overrides).eval()
    with torch.no_grad():
        assert model(torch.randn(shape)).shape == (2, 10)


def test_small_stems_keep_resolution() -> None:
    dense = create_model("densenet121_cifar", growth_rate=4, num_init_features=8).eval()
    assert "features.pool0" not in dict(dense.named_modules())
    assert dense.features.conv0.weight.shape == (8, 3, 3, 3)
    goog = create_model("googlenet_cifar", width_div=8).eval()
    with torch.no_grad():
        assert dense.forward_features(torch.randn(1, 3, 32, 32)).shape[-1] == 4  # 3 transitions
        assert goog.forward_features(torch.randn(1, 3, 32, 32)).shape[-2:] == (8, 8)
    assert (dense.min_size, goog.min_size) == (8, 4)
    assert (create_model("densenet121").min_size, create_model("googlenet").min_size) == (29, 31)


def test_densenet_memory_efficient_and_dropout_match() -> None:
    """Checkpointed bottlenecks give the same outputs and gradients."""
    kw = {"growth_rate": 4, "block_config": (2, 2), "num_init_features": 8, "image_size": 16}
    torch.manual_seed(0)
    a = create_model("densenet121", **kw).eval()
    torch.manual_seed(0)
    b = create_model("densenet121", memory_efficient=True, **kw).eval()
    x = torch.randn(2, 3, 16, 16)
    a(x).sum().backward()
    b(x).sum().backward()
    for (name, pa), pb in zip(a.named_parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(pa.grad, pb.grad, msg=name)
    drop = create_model("densenet121", drop_rate=0.5, **kw).train()
    assert not torch.equal(drop(x), drop(x))


@pytest.mark.parametrize(
    ("name", "x", "match"),
    [
        (
            "densenet121",
            torch.randn(1, 1, 64, 64),
            r"densenet121 expects images \(B, 3, H, W\) with H, W >= 29",
        ),
        ("densenet121", torch.randn(1, 3, 16, 16), "too small"),
        ("googlenet", torch.randn(1, 3, 30, 30), r"H, W >= 31"),
        ("googlenet", torch.randn(3, 64, 64), r"x\[None\]"),
        ("vit_mnist", torch.randn(1, 3, 28, 28), r"vit_mnist expects images \(B, 1, H, W\) with 28x28"),
        ("vit_mnist", torch.randn(1, 1, 32, 32), r"28x28, got 32x32"),
    ],
)
def test_input_errors_name_the_expected_input(name: str, x: torch.Tensor, match: str) -> None:
    model = create_model(name, **({"width_div": 16} if name == "googlenet" else {}))
    with pytest.raises(ValueError, match=match):
        model(x)


@pytest.mark.parametrize(
    ("config", "kwargs", "match"),
    [
        (ViTConfig, {"image_size": 28, "patch_size": 16}, "must divide image_size 28"),
        (ViTConfig, {"dim": 10, "heads": 3}, "heads 3 must divide dim 10"),
        (ViTConfig, {"pool": "max"}, "pool must be"),
        (DenseNetConfig, {"block_config": ()}, "block_config"),
        (DenseNetConfig, {"drop_rate": 1.0}, "drop_rate"),
        (GoogLeNetConfig, {"width_div": 3}, "width_div"),
    ],
)
def test_config_errors(config: type, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        config(**kwargs)


@pytest.mark.parametrize(
    ("name", "overrides", "x"),
    [
        (
            "densenet121_cifar",
            {"growth_rate": 4, "block_config": (2, 2), "num_init_features": 8},
            (2, 3, 16, 16),
        ),
        ("googlenet", {"width_div": 16, "aux_logits": True}, (2, 3, 32, 32)),
        ("vit_mnist", {"depth": 1}, (2, 1, 28, 28)),
    ],
)
def test_state_dict_round_trip_and_reset_classifier(name: str, overrides: dict, x: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    src = create_model(name, **overrides)
    src.train()(torch.randn(x))  # move batch-norm statistics
    torch.manual_seed(1)
    dst = create_model(name, **overrides)
    missing = dst.load_state_dict(src.state_dict(), strict=True)
    assert not missing.missing_keys and not missing.unexpected_keys
    inp = torch.randn(x)
    with torch.no_grad():
        torch.testing.assert_close(src.eval()(inp), dst.eval()(inp), rtol=0, atol=0)

    head = dst.get_classifier()
    dst.reset_classifier(5)
    assert dst.get_classifier() is not head and dst.get_classifier().out_features == 5
    assert dst.config.num_classes == 5
    with torch.no_grad():
        assert dst(inp).shape == (2, 5)
    assert isinstance(dst.cam_layer, (str, type(None)))
    if dst.cam_layer is not None:
        dict(dst.named_modules())[dst.cam_layer]  # names a real module


def test_classification_task_adds_googlenet_aux_loss_in_training_only():
    from archlab.tasks.classification import ClassificationTask, classification_loss

    torch.manual_seed(0)
    m = create_model("googlenet", aux_logits=True, num_classes=3, image_size=96, width_div=8)
    task = ClassificationTask(m)
    x, y = torch.randn(4, 3, 96, 96), torch.tensor([0, 1, 2, 0])
    m.train()
    torch.manual_seed(1)
    loss = task.training_step((x, y))["loss"]
    torch.manual_seed(1)  # the same dropout masks; BN uses batch statistics in train mode
    main = classification_loss(m(x), y, "cross_entropy")
    assert torch.allclose(loss, main + m.aux_loss(y), atol=1e-5)
    assert m.aux_loss(y) > 0
    m.eval()
    assert torch.allclose(task.validation_step((x, y))["loss"], classification_loss(m(x), y, "cross_entropy"))
