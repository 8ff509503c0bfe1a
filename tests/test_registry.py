"""The model registry: lookup, suggestions, type-checked options and dataset-filled fields."""

from __future__ import annotations

import pytest

from archlab.config import ConfigError
from archlab.data.base import DatasetInfo
from archlab.models.common import ACTIVATIONS
from archlab.registry import (
    MODELS,
    UnknownNameError,
    create_model,
    get_model_entry,
    list_models,
    model_config,
    register_model,
)

DIGITS = DatasetInfo(name="digits", kind="image", input_shape=(1, 8, 8), num_classes=10)
IRIS = DatasetInfo(name="iris", kind="tabular", input_shape=(4,), num_classes=3)


def test_unknown_name_suggests_close_names() -> None:
    with pytest.raises(UnknownNameError) as err:
        create_model("lenet")
    msg = str(err.value)
    assert "'lenet'" in msg and "lenet5" in msg and "archlab list models" in msg
    with pytest.raises(UnknownNameError, match="mlp_deep"):
        create_model("mlp_depp")
    assert isinstance(err.value, KeyError)


def test_hyphenated_names_resolve() -> None:
    assert create_model("mlp-small").model_name == "mlp_small"
    assert "simple-cnn" in MODELS


def test_bad_literal_names_key_and_allowed_values() -> None:
    with pytest.raises(ConfigError) as err:
        create_model("mlp", activation="relux")
    msg = str(err.value)
    assert "model.activation" in msg and "'relux'" in msg and "did you mean 'relu'" in msg
    for name in ("relu", "tanh", "sigmoid", "gelu", "leaky_relu", "elu", "selu", "silu"):
        assert repr(name) in msg and name in ACTIVATIONS


def test_bad_types_name_the_key() -> None:
    with pytest.raises(ConfigError, match=r"model\.dropout: 'high'"):
        create_model("mlp", dropout="high")
    with pytest.raises(ConfigError, match=r"model\.hidden_dims"):
        create_model("mlp", hidden_dims="128")
    with pytest.raises(ConfigError, match=r"model\.hidden_dims\[1\]"):
        create_model("mlp", hidden_dims=[64, "x"])
    with pytest.raises(ConfigError, match=r"model\.batch_norm"):
        create_model("mlp", batch_norm="yes")
    with pytest.raises(ConfigError, match=r"model\.c3_table"):
        create_model("lenet5", c3_table=1)


def test_invalid_values_become_config_errors() -> None:
    with pytest.raises(ConfigError, match="dropout"):
        create_model("mlp", dropout=1.5)
    with pytest.raises(ConfigError, match="num_classes"):
        create_model("perceptron", num_classes=1)


def test_unknown_option_names_the_key_and_suggests() -> None:
    with pytest.raises(ConfigError) as err:
        create_model("mlp", hiden_dims=(3,))
    msg = str(err.value)
    assert "model.hiden_dims" in msg and "hidden_dims" in msg


def test_values_are_coerced() -> None:
    cfg = model_config("mlp", hidden_dims=[32, 16], dropout=0)
    assert cfg.hidden_dims == (32, 16) and isinstance(cfg.dropout, float)


def test_list_models_filters() -> None:
    assert list_models(family="mlp") == ["mlp", "mlp_bn", "mlp_deep", "mlp_small", "perceptron"]
    cnn = list_models(family="cnn")
    assert {"lenet5", "simple_cnn", "simple_cnn_small"} <= set(cnn)
    assert not set(cnn) & set(list_models(family="mlp"))
    assert list_models(pattern="simple_cnn*") == [n for n in cnn if n.startswith("simple_cnn")]
    assert list_models(family="no-such-family") == []
    assert set(list_models()) >= set(cnn) | set(list_models(family="mlp"))


def test_dataset_fills_data_dependent_fields() -> None:
    cfg = model_config("lenet5", DIGITS)
    assert (cfg.in_channels, cfg.image_size, cfg.num_classes) == (1, 8, 10)
    assert model_config("mlp", DIGITS).in_features == 64
    assert (model_config("perceptron", IRIS).in_features, model_config("perceptron", IRIS).num_classes) == (
        4,
        3,
    )
    # explicit options beat the dataset, the dataset beats the variant's defaults
    assert model_config("mlp", IRIS, num_classes=5).num_classes == 5
    model = create_model("simple_cnn", DIGITS)
    assert model.config.image_size == 8 and model.model_name == "simple_cnn" and model.family == "cnn"


def test_entries_carry_their_config_and_defaults() -> None:
    entry = get_model_entry("mlp_deep")
    assert entry.family == "mlp" and entry.tags["defaults"] == {"hidden_dims": (256, 256, 256)}
    assert entry.summary.startswith("MLP")


def test_registering_a_name_twice_fails() -> None:
    entry = get_model_entry("mlp")
    with pytest.raises(ValueError, match="registered twice"):
        register_model("mlp", family="mlp")(lambda cfg: None)
    assert get_model_entry("mlp") is entry
