"""The simple CNN: blocks, heads and the options."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from archlab.config import ConfigError
from archlab.models.cnn.simple import SimpleCNN
from archlab.registry import create_model


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def test_default_parameter_count() -> None:
    m = create_model("simple_cnn")  # 1x28x28 -> (32, 64) -> flatten 64*7*7 -> 128 -> 10
    conv = 1 * 32 * 9 + 2 * 32 + 32 * 64 * 9 + 2 * 64  # convs (no bias) + BN affine
    head = 64 * 7 * 7 * 128 + 128 + 128 * 10 + 10
    assert n_params(m) == conv + head


def test_blocks_follow_the_config() -> None:
    m = create_model("simple_cnn", channels=(8, 16, 32), convs_per_block=2, image_size=32, in_channels=3)
    convs = [mod for mod in m.modules() if isinstance(mod, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels) for c in convs] == [
        (3, 8),
        (8, 8),
        (8, 16),
        (16, 16),
        (16, 32),
        (32, 32),
    ]
    assert all(c.bias is None for c in convs)  # batch norm's shift replaces the bias
    assert sum(isinstance(mod, nn.BatchNorm2d) for mod in m.modules()) == 6
    assert m(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_without_batch_norm_convs_have_bias() -> None:
    m = create_model("simple_cnn", batch_norm=False)
    assert not any(isinstance(mod, nn.BatchNorm2d) for mod in m.modules())
    assert all(mod.bias is not None for mod in m.modules() if isinstance(mod, nn.Conv2d))


def test_gap_head_takes_any_size_flatten_head_names_the_fix() -> None:
    gap = create_model("simple_cnn_small")
    assert gap(torch.randn(2, 1, 28, 28)).shape == gap(torch.randn(2, 1, 40, 36)).shape == (2, 10)
    flat = create_model("simple_cnn", image_size=28)
    with pytest.raises(ValueError, match="image_size=32"):
        flat(torch.randn(2, 1, 32, 32))


def test_pool_none_keeps_the_size() -> None:
    m = create_model("simple_cnn", pool="none", image_size=6, channels=(4,), hidden_dim=0)
    assert m.head[-1].in_features == 4 * 6 * 6
    assert m(torch.randn(2, 1, 6, 6)).shape == (2, 10)


def test_bad_sizes_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="too small"):
        create_model("simple_cnn", image_size=4, channels=(8, 8, 8))
    with pytest.raises(ConfigError, match="odd"):
        create_model("simple_cnn", kernel_size=4)


def test_layers_are_passed_in() -> None:
    m = SimpleCNN(1, 3, (4, 8), image_size=8, act_layer=nn.GELU, norm_layer=None, head="gap")
    assert any(isinstance(mod, nn.GELU) for mod in m.modules())
    assert not any(isinstance(mod, nn.BatchNorm2d) for mod in m.modules())
    assert m(torch.randn(2, 1, 8, 8)).shape == (2, 3)
