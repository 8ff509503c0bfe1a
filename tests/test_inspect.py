"""archlab.inspect: parameter counts, layer table, FLOPs and activation memory."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from archlab.data.base import DatasetInfo
from archlab.inspect import ModelInfo, count_parameters, default_input_shape, example_input, info
from archlab.registry import create_model

# Multiply-adds of LeNet-5 on one 32x32 image; C3 runs as one dense conv, its zero kernels included.
LENET_MACS = 28 * 28 * 6 * 25 + 10 * 10 * 16 * 6 * 25 + 120 * 16 * 25 + 84 * 120


def test_lenet5_params_flops_and_layers() -> None:
    i = info("lenet5")
    assert isinstance(i, ModelInfo)
    assert i.total_params == i.trainable_params == 60_000 and i.non_trainable_params == 0
    assert i.param_bytes == 4 * 60_000
    assert i.flops == pytest.approx(2 * LENET_MACS, rel=0.05)  # ~0.83 MFLOPs
    assert i.input_shape == (1, 1, 32, 32) and i.output_shape == (1, 10)
    rows = {r.name: r for r in i.layers}
    assert rows["c1"].output_shape == (1, 6, 28, 28) and rows["c1"].params == 156
    assert rows["s2"].output_shape == (1, 6, 14, 14) and rows["s2"].params == 12
    assert rows["c3"].output_shape == (1, 16, 10, 10) and rows["c3"].params == 1516
    assert rows["s4"].output_shape == (1, 16, 5, 5)
    assert rows["c5"].output_shape == (1, 120, 1, 1) and rows["c5"].params == 48_120
    assert rows["f6"].output_shape == (1, 84) and rows["f6"].params == 10_164
    assert rows["output"].output_shape == (1, 10) and rows["output"].params == 0
    assert rows["c1"].flops == 2 * 28 * 28 * 6 * 25
    assert sum(r.params for r in i.layers) == i.total_params
    assert all(r.calls == 1 for r in i.layers)
    # leaf outputs of one 32x32 image, in float32: c1 + act1 + s2's act ... + output
    assert 40_000 < i.activation_bytes < 80_000
    assert i.buffer_elements == 10 * 84 + 60 + 16  # RBF codes + C3's index and fan-in buffers


def test_to_text_and_to_dict() -> None:
    i = info("lenet5")
    text = i.to_text()
    for piece in (
        "lenet5 (cnn)",
        "60,000",
        "c3",
        "PartialConv2d",
        "(1, 16, 10, 10)",
        "FLOPs",
        "Options",
        "c3_table",
        "'subsample', 'avg', 'max'",
    ):
        assert piece in text, piece
    assert str(i) == text
    d = i.to_dict()
    json.dumps(d)
    assert d["total_params"] == 60_000 and d["input_shape"] == [1, 1, 32, 32]
    assert d["layers"][0]["name"] == "c1" and d["options"][0]["name"] == "in_channels"


def test_input_shape_and_batch_size() -> None:
    base = info("lenet5")
    padded = info("lenet5", input_shape=(1, 28, 28))
    assert padded.input_shape == (1, 1, 28, 28) and padded.flops == base.flops
    four = info("lenet5", batch_size=4)
    assert four.flops == 4 * base.flops and four.input_shape == (4, 1, 32, 32)


def test_data_info_and_overrides() -> None:
    digits = DatasetInfo(name="digits", kind="image", input_shape=(1, 8, 8), num_classes=10)
    i = info("mlp", data_info=digits)
    assert i.input_shape == (1, 1, 8, 8)
    assert i.total_params == 64 * 128 + 128 + 128 * 10 + 10
    assert i.flops == 2 * (64 * 128 + 128 * 10)
    j = info("mlp", in_features=10, hidden_dims=(5,), num_classes=2)
    assert j.input_shape == (1, 10) and j.total_params == 10 * 5 + 5 + 5 * 2 + 2


def test_info_on_a_module() -> None:
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU())
    with pytest.raises(ValueError, match="input_shape"):
        info(model)
    i = info(model, input_shape=(4,))
    assert i.total_params == 15 and i.flops == 2 * 4 * 3
    assert i.activation_bytes == (3 + 3) * 4
    assert [r.name for r in i.layers] == ["0", "1"] and i.options == []
    with pytest.raises(TypeError, match="model name"):
        info(model, input_shape=(4,), hidden_dims=(3,))


def test_training_mode_is_restored_and_frozen_params_counted() -> None:
    model = create_model("simple_cnn_small").train()
    model.features[0].convs[0].weight.requires_grad_(False)
    i = info(model)
    assert model.training
    assert i.non_trainable_params == 1 * 16 * 9
    assert count_parameters(model) == i.total_params
    assert count_parameters(model, trainable_only=True) == i.trainable_params


def test_example_input_and_default_shape() -> None:
    model = create_model("simple_cnn", in_channels=3, image_size=12)
    assert default_input_shape(model) == (3, 12, 12)
    x = example_input(model, batch_size=2)
    assert x.shape == (2, 3, 12, 12) and torch.equal(x, example_input(model, batch_size=2))
    assert default_input_shape(create_model("perceptron", in_features=7)) == (7,)


def test_models_can_supply_their_own_input() -> None:
    class TwoInputs(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.proj = nn.Linear(3, 2)

        def example_input(self, batch_size: int = 1) -> dict[str, torch.Tensor]:
            return {"x": torch.zeros(batch_size, 3), "scale": torch.ones(batch_size, 1)}

        def forward(self, *, x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
            return self.proj(x) * scale

    i = info(TwoInputs())
    assert i.output_shape == (1, 2) and i.input_shape == {"x": (1, 3), "scale": (1, 1)}


@pytest.mark.parametrize("name", ["perceptron", "mlp", "lenet5", "simple_cnn"])
def test_every_model_reports(name: str) -> None:
    i = info(name)
    assert i.total_params > 0 and i.flops > 0 and i.layers
    assert all(r.output_shape is not None for r in i.layers)
    assert name in i.to_text()
