"""Typed configs: YAML files, dotted overrides, recipes, and clear errors for bad keys and values."""

from __future__ import annotations

import pytest

from archlab.config import (
    ConfigError,
    apply_overrides,
    config_from_dict,
    load_config,
    parse_overrides,
    to_dict,
)


def test_defaults_recipe_file_and_overrides_in_order(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("train:\n  lr: 0.01\n  epochs: 7\nsystem:\n  precision: bf16-mixed\n")
    cfg = load_config("lenet5", "mnist", f, ["train.lr=3e-4", "model.dropout=0.1"])
    assert cfg.train.lr == pytest.approx(3e-4)  # override beats file
    assert cfg.train.epochs == 7  # file beats recipe (3)
    assert cfg.train.schedule == "onecycle"  # recipe beats default
    assert cfg.system.precision == "bf16-mixed"
    assert cfg.model.options["activation"] == "relu" and cfg.model.options["dropout"] == 0.1


def test_flat_dotted_file_and_bare_keys(tmp_path):
    f = tmp_path / "flat.yaml"
    f.write_text("train.lr: 0.5\nprecision: 16-mixed\n")
    cfg = load_config("mlp", "iris", f, ["epochs=3", "batch_size=16"])
    assert (cfg.train.lr, cfg.system.precision, cfg.train.epochs, cfg.train.batch_size) == (0.5, "16-mixed", 3, 16)


def test_round_trip_through_dict():
    cfg = load_config("mlp", "moons", overrides=["train.betas=[0.8,0.9]", "train.grad_clip=1.0"])
    back = config_from_dict(to_dict(cfg))
    assert back == cfg and back.train.betas == (0.8, 0.9)


@pytest.mark.parametrize(
    "override, fragments",
    [
        ("train.lrr=1", ["unknown key 'train.lrr'", "train.lr"]),
        ("trian.lr=1", ["unknown key", "train.lr"]),
        ("train.lr=fast", ["train.lr", "'fast'", "float"]),
        ("train.epochs=2.5", ["train.epochs", "int"]),
        ("system.precision=bf16-mix", ["system.precision", "'bf16-mixed'", "did you mean"]),
        ("train.optimizer=adamm", ["train.optimizer", "'adam'", "'sgd'"]),
        ("train.schedule=cosin", ["train.schedule", "'cosine'"]),
        ("train.lr=-1", ["train.lr", "must be > 0"]),
        ("data.val_split=1.5", ["data.val_split", "[0, 1)"]),
        ("train.betas=[0.9]", ["train.betas", "exactly 2"]),
        ("train.deterministic=maybe", ["train.deterministic", "bool"]),
        ("lr", ["no '='", "train.lr=3e-4"]),
    ],
)
def test_bad_keys_and_values_name_the_key_and_the_allowed(override, fragments):
    with pytest.raises(ConfigError) as err:
        load_config("mlp", "iris", overrides=[override])
    for frag in fragments:
        assert frag in str(err.value), (frag, str(err.value))


def test_ambiguous_bare_key():
    with pytest.raises(ConfigError, match="ambiguous"):
        parse_overrides(["name=x"]) and load_config("mlp", "iris", overrides=["name=x"])


def test_bad_yaml_file(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("train: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config("mlp", "iris", f)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config("mlp", "iris", tmp_path / "nope.yaml")


def test_bad_model_option_is_caught_when_the_model_is_built():
    from archlab.registry import create_model

    cfg = load_config("mlp", "iris", overrides=["model.activation=relux"])
    with pytest.raises(ConfigError, match="model.activation"):
        create_model("mlp", in_features=4, num_classes=3, **cfg.model.options)


def test_apply_overrides_checks_too():
    cfg = load_config("mlp", "iris")
    assert apply_overrides(cfg, {"train.lr": 0.1}).train.lr == 0.1
    with pytest.raises(ConfigError):
        apply_overrides(cfg, {"train.warmup": 1})
