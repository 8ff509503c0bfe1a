"""LeNet-5 against the paper: layer sizes, parameter counts, the C3 table, subsampling, RBF output."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from archlab.config import ConfigError
from archlab.models.cnn.lenet import C3_TABLE, LeNet5, PartialConv2d, RBFOutput, Subsampling
from archlab.models.common import ScaledTanh
from archlab.registry import create_model

# Table I of LeCun et al. (1998), rows = S2 maps 0-5, columns = C3 maps 0-15 ("X" = connected).
TABLE_I = """
X...XXX..XXXX.XX
XX...XXX..XXXX.X
XXX...XXX..X.XXX
.XXX..XXXX..X.XX
..XXX..XXXX.XX.X
...XXX..XXXX.XXX
"""


def own_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_paper_parameter_counts() -> None:
    m = create_model("lenet5")
    counts = {name: own_params(getattr(m, name)) for name in ("c1", "s2", "c3", "s4", "c5", "f6", "output")}
    assert counts == {"c1": 156, "s2": 12, "c3": 1516, "s4": 32, "c5": 48120, "f6": 10164, "output": 0}
    assert own_params(m) == 60_000  # "LeNet-5 ... contains 60,000 trainable parameters"


def test_parameter_counts_of_the_flags() -> None:
    assert own_params(create_model("lenet5", output="linear")) == 60_000 + 84 * 10 + 10
    assert own_params(create_model("lenet5", c3_table=False).c3) == 16 * 6 * 25 + 16
    assert own_params(create_model("lenet5", pooling="max")) == 60_000 - 12 - 32
    assert own_params(create_model("lenet5", in_channels=3).c1) == 6 * 3 * 25 + 6


def test_c3_table_is_table_one() -> None:
    expected = torch.tensor([[c == "X" for c in row] for row in TABLE_I.split()])  # (6 in, 16 out)
    c3 = create_model("lenet5").c3
    assert isinstance(c3, PartialConv2d)
    assert torch.equal(c3.mask, expected.T)
    assert c3.mask.sum() == 60 and c3.weight.shape == (60, 5, 5)
    sizes = sorted(len(t) for t in C3_TABLE)
    assert sizes == [3] * 6 + [4] * 9 + [6]


def test_partial_conv_equals_one_conv_per_map() -> None:
    """The dense masked conv (one call) against the definition: map j sums convs of its inputs."""
    torch.manual_seed(0)
    conv = PartialConv2d(6, C3_TABLE, 5)
    x = torch.randn(3, 6, 14, 14)
    dense = conv.dense_weight()
    maps = []
    for j, inputs in enumerate(C3_TABLE):
        idx = list(inputs)
        maps.append(F.conv2d(x[:, idx], dense[j : j + 1, idx], conv.bias[j : j + 1]))
    ref = torch.cat(maps, 1)  # (B, 16, 10, 10)
    torch.testing.assert_close(conv(x), ref, rtol=1e-5, atol=1e-5)
    # Unconnected kernels are exactly zero and get no gradient path.
    assert torch.all(dense[~conv.mask] == 0)
    conv(x).sum().backward()
    assert conv.weight.grad.shape == (60, 5, 5) and conv.weight.grad.abs().sum() > 0


def test_subsampling_is_scaled_window_sum_then_squash() -> None:
    torch.manual_seed(0)
    s = Subsampling(4, ScaledTanh)
    with torch.no_grad():
        s.weight.uniform_(-1, 1), s.bias.uniform_(-1, 1)
    x = torch.randn(2, 4, 6, 6)
    windows = x.unfold(2, 2, 2).unfold(3, 2, 2).sum((-1, -2))  # (B, C, 3, 3)
    ref = 1.7159 * torch.tanh(2 / 3 * (windows * s.weight[:, None, None] + s.bias[:, None, None]))
    torch.testing.assert_close(s(x), ref)


def test_scaled_tanh_maps_one_to_one() -> None:
    f = ScaledTanh()
    torch.testing.assert_close(f(torch.tensor([1.0, -1.0])), torch.tensor([1.0, -1.0]), atol=1e-4, rtol=0)


def test_rbf_output_is_negative_squared_distance_to_fixed_codes() -> None:
    torch.manual_seed(1)
    a = create_model("lenet5")
    torch.manual_seed(2)
    b = create_model("lenet5")
    assert isinstance(a.output, RBFOutput)
    codes = a.output.codes
    assert torch.equal(codes, b.output.codes)  # fixed codes, whatever the global seed
    assert codes.shape == (10, 84) and set(codes.unique().tolist()) == {-1.0, 1.0}
    h = torch.randn(5, 84)
    torch.testing.assert_close(a.output(h), -(torch.cdist(h, codes) ** 2), rtol=1e-4, atol=1e-3)


def test_layer_shapes() -> None:
    m = create_model("lenet5").eval()
    shapes = {}
    for name in ("c1", "s2", "c3", "s4", "c5", "f6", "output"):
        getattr(m, name).register_forward_hook(
            lambda mod, i, o, name=name: shapes.__setitem__(name, tuple(o.shape))
        )
    m(torch.randn(2, 1, 32, 32))
    assert shapes == {
        "c1": (2, 6, 28, 28),
        "s2": (2, 6, 14, 14),
        "c3": (2, 16, 10, 10),
        "s4": (2, 16, 5, 5),
        "c5": (2, 120, 1, 1),
        "f6": (2, 84),
        "output": (2, 10),
    }


def test_28x28_input_is_zero_padded_to_32x32() -> None:
    torch.manual_seed(0)
    m = create_model("lenet5").eval()
    x = torch.randn(3, 1, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(m(x), m(F.pad(x, (2, 2, 2, 2))), rtol=0, atol=0)


def test_other_sizes_are_resized_to_32x32() -> None:
    torch.manual_seed(0)
    m = create_model("lenet5", image_size=8, num_classes=10).eval()
    x = torch.randn(3, 1, 8, 8)
    up = F.interpolate(x, size=(32, 32), mode="bilinear", align_corners=False)
    with torch.no_grad():
        out = m(x)
        assert out.shape == (3, 10) and torch.isfinite(out).all()
        torch.testing.assert_close(out, m(up), rtol=0, atol=0)
        assert m(torch.randn(2, 1, 64, 48)).shape == (2, 10)


def test_paper_initialisation_bounds() -> None:
    torch.manual_seed(0)
    m = create_model("lenet5")
    assert m.c1.weight.abs().max() <= 2.4 / 25
    assert m.c5.weight.abs().max() <= 2.4 / 400
    assert m.f6.weight.abs().max() <= 2.4 / 120
    assert m.s2.weight.abs().max() <= 2.4 / 4
    fan_in = m.c3.connection_fan_in().float()
    assert torch.all(m.c3.weight.abs().amax((1, 2)) <= 2.4 / fan_in)
    # the 6-input map (fan-in 150) has a tighter bound than the 3-input maps (fan-in 75)
    assert set(fan_in.tolist()) == {75.0, 100.0, 150.0}


@pytest.mark.parametrize("pooling", ["subsample", "avg", "max"])
@pytest.mark.parametrize("output", ["rbf", "linear"])
@pytest.mark.parametrize("activation", ["scaled_tanh", "relu"])
def test_flag_combinations_run(pooling: str, output: str, activation: str) -> None:
    m = create_model(
        "lenet5", pooling=pooling, output=output, activation=activation, c3_table=activation == "relu"
    )
    out = m(torch.randn(2, 1, 32, 32))
    assert out.shape == (2, 10) and torch.isfinite(out).all()


def test_modern_lenet() -> None:
    m = create_model(
        "lenet5", activation="relu", pooling="max", c3_table=False, init="default", output="linear"
    )
    assert (
        isinstance(m, LeNet5) and isinstance(m.s2, torch.nn.MaxPool2d) and isinstance(m.c3, torch.nn.Conv2d)
    )
    assert own_params(m) == 156 + 2416 + 48120 + 10164 + 850


def test_bad_flag_lists_choices() -> None:
    with pytest.raises(ConfigError, match="model.pooling.*'subsample', 'avg', 'max'"):
        create_model("lenet5", pooling="stochastic")
