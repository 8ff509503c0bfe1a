"""Typed run configuration: dataclasses, YAML files and dotted overrides.

A run is described by one :class:`RunConfig` with five sections::

    model:  name and the model's own options (checked against its config dataclass)
    data:   dataset name, folder, split sizes and augmentation
    train:  epochs, batch size, optimizer, learning rate, schedule, clipping, EMA, seed...
    system: accelerator, devices, nodes, strategy, precision, compile
    run:    output folder and run name

Values come, in order of precedence, from: the defaults below < a recipe shipped for the
(model, dataset) pair (``archlab/recipes/MODEL-DATA.yaml``) < ``--config FILE`` < dotted
overrides ``train.lr=3e-4``. A bare key that names one field only is accepted (``lr=3e-4``).
Every value is checked against the field's type; a bad key or value raises :class:`ConfigError`
naming the key path and what is allowed. No ``exec``, no ``eval``: values are parsed with
``yaml.safe_load``.
"""

from __future__ import annotations

import difflib
import types
import typing
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, Literal, Union

__all__ = [
    "ConfigError",
    "ModelSection",
    "DataSection",
    "TrainSection",
    "SystemSection",
    "RunSection",
    "RunConfig",
    "build_dataclass",
    "load_config",
    "parse_overrides",
    "apply_overrides",
    "to_dict",
    "key_paths",
    "recipe_path",
]

Precision = Literal["32-true", "64-true", "bf16-mixed", "16-mixed", "bf16-true"]


class ConfigError(ValueError):
    """A config key or value that is not allowed; the message names the key path."""


# ----------------------------------------------------------------------------------------------
# sections


@dataclass
class ModelSection:
    """The model: a registered name and its options (fields of the model's config dataclass)."""

    name: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    # Transfer learning (archlab.transfer): weights to start from, a local .safetensors/.pt/.pth
    # file, an archlab run folder, or an http(s) address (downloaded to the cache when online).
    # Tensors whose shape differs (a new head) are left at their fresh initialisation and listed.
    init: str | None = None
    init_strict: bool = False  # True: every key must match (torch's strict=True)


@dataclass
class DataSection:
    """The dataset and how it is split and augmented.

    ``root`` is the data folder (default: ``$ARCHLAB_DATA`` or ``~/.cache/archlab/data``).
    Augmentations run batched on the training device (``archlab.data.transforms``).
    """

    name: str = ""
    root: str | None = None
    download: bool = True
    val_split: float = 0.1
    options: dict[str, Any] = field(default_factory=dict)
    random_crop_padding: int = 0
    hflip: bool = False
    cutout: int = 0
    random_erasing: float = 0.0  # probability per image (Zhong et al. 2020)
    mixup: float = 0.0  # Beta(alpha, alpha) of mixup (Zhang et al. 2018); 0 = off
    cutmix: float = 0.0  # Beta(alpha, alpha) of CutMix (Yun et al. 2019); 0 = off
    classes: list[int] | None = None  # keep these classes only, relabelled 0..k-1 in this order
    label_fraction: float = 1.0  # keep this fraction of the training labels (stratified, seeded)
    eval_batch_size: int = 1000
    # Graphs: neighbour sampling (Hamilton et al. 2017), fan-out per layer, e.g. [10, 10]; null = full batch.
    num_neighbors: list[int] | None = None


@dataclass
class TrainSection:
    """The optimisation: how long, with what optimizer and schedule, and the safeguards."""

    epochs: int = 10
    max_steps: int | None = None
    batch_size: int = 128
    optimizer: Literal["sgd", "adam", "adamw", "rmsprop", "adagrad"] = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    momentum: float = 0.9
    nesterov: bool = False
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8  # Adam/AdamW epsilon (Vaswani et al. 2017 used 1e-9)
    schedule: Literal["constant", "cosine", "step", "onecycle", "plateau", "linear", "inverse_sqrt"] = "constant"
    warmup_epochs: float = 0.0
    min_lr: float = 0.0
    step_size: int = 30
    gamma: float = 0.1
    plateau_patience: int = 5
    onecycle_pct_start: float = 0.25
    grad_accum: int = 1
    grad_clip: float | None = None
    label_smoothing: float = 0.0
    loss: Literal["auto", "cross_entropy", "perceptron", "hinge", "mse"] = "auto"
    early_stopping_patience: int | None = None
    monitor: str = "val/loss"
    monitor_mode: Literal["min", "max"] = "min"
    test_with: Literal["last", "best"] = "last"  # "best": final metrics from the best-monitor weights
    ema_decay: float | None = None
    # Generative runs: a sample picture every this many epochs (0: never), of this many samples.
    sample_every: int = 1
    num_samples: int = 64
    # Transfer learning (archlab.transfer): what trains, and how fast each depth learns.
    finetune: Literal["full", "linear_probe", "partial"] = "full"
    trainable_groups: int = 1  # "partial": the last N layer groups (the head is group 1)
    layer_lr_decay: float = 1.0  # discriminative lr: group k from the top gets lr * decay**k
    unfreeze_every: int | None = None  # gradual unfreezing: one more group every N epochs
    # Sequence models (archlab.tasks.sequence / seq2seq).
    tbptt: int | None = None  # language models: truncated BPTT window (steps); null = whole sequences
    teacher_forcing: float = 1.0  # seq2seq: probability of feeding the true previous target token
    beam_size: int = 1  # seq2seq: beam width of the final test decoding (1 = greedy)
    length_penalty: float = 1.0  # seq2seq beam search: score / length**alpha (0 = no normalisation)
    bucket_by_length: bool = True  # text: batch sentences of similar length (less padding)
    seed: int = 0
    deterministic: bool = False
    log_every: int = 50
    eval_every: int = 1
    checkpoint_every: int = 1
    keep_checkpoints: int = 1


@dataclass
class SystemSection:
    """Where and how the computation runs (Lightning Fabric underneath)."""

    accelerator: Literal["auto", "cpu", "cuda", "gpu", "mps"] = "auto"
    devices: int | str = 1
    num_nodes: int = 1
    strategy: Literal["auto", "ddp", "ddp_spawn", "fsdp", "dp", "single_device"] = "auto"
    precision: Precision = "32-true"
    compile: bool = False
    channels_last: bool = False  # NHWC weights for convolutions (faster with bf16 on CPU/GPU)
    threads: int | None = None
    progress: bool = True
    tensorboard: bool = True


@dataclass
class RunSection:
    """Where the run folder goes: ``out_dir/name`` (name defaults to ``MODEL-DATA-TIMESTAMP``)."""

    out_dir: str = "runs"
    name: str | None = None
    report: bool = True


@dataclass
class RunConfig:
    """Everything a run needs; saved as ``config.yaml`` in the run folder and in checkpoints."""

    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection = field(default_factory=DataSection)
    train: TrainSection = field(default_factory=TrainSection)
    system: SystemSection = field(default_factory=SystemSection)
    run: RunSection = field(default_factory=RunSection)


# ----------------------------------------------------------------------------------------------
# type checking


def _describe(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(tp))
    if tp is type(None):
        return "null"
    if origin in (tuple, list):
        args = [a for a in typing.get_args(tp) if a is not Ellipsis]
        inner = ", ".join(_describe(a) for a in args)
        return f"a list of {inner}" if origin is list or Ellipsis in typing.get_args(tp) else f"({inner})"
    if origin is dict:
        return "a mapping"
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp: Any, path: str) -> Any:
    """Check ``value`` against type ``tp``; return it converted (int->float, list->tuple)."""
    origin = typing.get_origin(tp)
    bad = ConfigError(f"{path}: {value!r} is not allowed; expected {_describe(tp)}")
    if tp is Any:
        return value
    if origin is Literal:
        allowed = typing.get_args(tp)
        if value in allowed:
            return value
        near = difflib.get_close_matches(str(value), [str(a) for a in allowed], n=1)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        raise ConfigError(
            f"{path}: {value!r} is not one of {', '.join(repr(a) for a in allowed)}{hint}"
        )
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, path)
            except ConfigError:
                pass
        raise bad
    if origin in (tuple, list):
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            raise bad
        args = typing.get_args(tp)
        if origin is tuple and args and Ellipsis not in args:
            if len(value) != len(args):
                raise ConfigError(f"{path}: {value!r} needs exactly {len(args)} values")
            out = [_coerce(v, a, f"{path}[{i}]") for i, (v, a) in enumerate(zip(value, args))]
        else:
            inner = args[0] if args else Any
            out = [_coerce(v, inner, f"{path}[{i}]") for i, v in enumerate(value)]
        return tuple(out) if origin is tuple else list(out)
    if origin is dict:
        if not isinstance(value, dict):
            raise bad
        return dict(value)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise bad
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad
        return float(value)
    if tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise bad
    if isinstance(tp, type) and is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise bad
        return build_dataclass(tp, value, path)
    if isinstance(tp, type) and not isinstance(value, tp):
        raise bad
    return value


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def build_dataclass(cls: type, values: dict[str, Any], path: str = "") -> Any:
    """Instantiate dataclass ``cls`` from ``values``, checking every key and value.

    Unknown keys raise :class:`ConfigError` with the closest field names; nested dataclass
    fields accept mappings.
    """
    if not isinstance(values, dict):
        raise ConfigError(f"{path or cls.__name__}: expected a mapping, got {values!r}")
    hints = _hints(cls)
    names = [f.name for f in fields(cls) if f.init]
    kwargs = {}
    for key, value in values.items():
        where = f"{path}.{key}" if path else str(key)
        if key not in names:
            near = difflib.get_close_matches(str(key), names, n=3)
            hint = f" Did you mean: {', '.join(near)}?" if near else ""
            raise ConfigError(
                f"unknown key {where!r}.{hint} Allowed keys{f' under {path!r}' if path else ''}: "
                f"{', '.join(names)}"
            )
        kwargs[key] = _coerce(value, hints[key], where)
    try:
        obj = cls(**kwargs)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{path or cls.__name__}: {err}") from None
    return obj


def to_dict(obj: Any) -> Any:
    """A dataclass (nested) as plain dicts, lists and scalars, ready for YAML or JSON."""
    if is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {str(k): to_dict(v) for k, v in obj.items()}
    return obj


def key_paths(cls: type = RunConfig, prefix: str = "") -> list[str]:
    """Every settable dotted key of a config dataclass (``train.lr``, ``system.precision``...)."""
    out = []
    for name, tp in _hints(cls).items():
        path = f"{prefix}{name}"
        if isinstance(tp, type) and is_dataclass(tp):
            out += key_paths(tp, path + ".")
        else:
            out.append(path)
    return out


# ----------------------------------------------------------------------------------------------
# overrides and files


def parse_value(text: str) -> Any:
    """A command-line value: YAML scalars and lists (``3e-4``, ``true``, ``[64,64]``, ``null``)."""
    import yaml

    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    # YAML 1.1 reads 3e-4 as a string (no dot); accept it as the float a user means.
    if isinstance(value, str):
        try:
            return float(value) if any(c in value.lower() for c in ".e") else value
        except ValueError:
            return value
    return value


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``["train.lr=3e-4", "model.hidden_dims=[64,64]"]`` -> ``{"train.lr": 3e-4, ...}``."""
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(
                f"override {item!r} has no '='; write KEY=VALUE, e.g. train.lr=3e-4 "
                f"(`archlab train --help` lists the keys)"
            )
        key, text = item.split("=", 1)
        out[key.strip()] = parse_value(text.strip())
    return out


def resolve_key(key: str) -> str:
    """A full dotted key for ``key``: itself if known, else the one field whose path ends with it.

    ``model.*`` and ``data.options.*`` keys pass through; they are checked by the model's or the
    dataset's own config.
    """
    if key.startswith(("model.", "data.options.")) and key not in key_paths():
        return key
    paths = key_paths()
    if key in paths:
        return key
    ends = [p for p in paths if p.endswith("." + key)]
    if len(ends) == 1:
        return ends[0]
    if len(ends) > 1:
        raise ConfigError(f"key {key!r} is ambiguous: write one of {', '.join(ends)}")
    near = difflib.get_close_matches(key, paths, n=3, cutoff=0.6)
    near += [p for p in paths if key.split(".")[-1] in p and p not in near][: 3 - len(near)]
    hint = f" Did you mean: {', '.join(near)}?" if near else ""
    raise ConfigError(
        f"unknown key {key!r}.{hint} Model options go under model.NAME "
        f"(`archlab info MODEL` lists them); all run keys: `archlab train --help`."
    )


def _nest(flat: dict[str, Any]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for key, value in flat.items():
        full = resolve_key(key)
        section, _, rest = full.partition(".")
        if section == "model" and rest not in ("name", "init", "init_strict"):
            tree.setdefault("model", {}).setdefault("options", {})[rest.removeprefix("options.")] = value
        elif full.startswith("data.options."):
            tree.setdefault("data", {}).setdefault("options", {})[full[len("data.options."):]] = value
        else:
            node = tree
            parts = full.split(".")
            for p in parts[:-1]:
                node = node.setdefault(p, {})
            node[parts[-1]] = value
    return tree


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _read_yaml(path: str | Path) -> dict[str, Any]:
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"config file {str(path)!r} is not valid YAML: {err}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {str(path)!r} must hold a mapping of sections")
    # A flat file of dotted keys is accepted as well as nested sections.
    if any("." in k for k in data):
        data = _nest(data)
    return data


def recipe_path(model: str, data: str) -> Path | None:
    """The recipe shipped for training ``model`` on ``data``, if there is one."""
    path = Path(__file__).parent / "recipes" / f"{model}-{data}.yaml"
    return path if path.is_file() else None


def load_config(
    model: str | None = None,
    data: str | None = None,
    config_file: str | Path | None = None,
    overrides: dict[str, Any] | list[str] | None = None,
    use_recipe: bool = True,
) -> RunConfig:
    """Resolve a :class:`RunConfig` from defaults, recipe, file and overrides (in that order).

    Args:
        model: registered model name (may also come from the file or ``model.name=``).
        data: registered dataset name (may also come from the file or ``data.name=``).
        config_file: a YAML file with sections, or flat dotted keys.
        overrides: ``{"train.lr": 3e-4}`` or ``["train.lr=3e-4"]``.
        use_recipe: apply ``archlab/recipes/MODEL-DATA.yaml`` when it exists.
    """
    if isinstance(overrides, list):
        overrides = parse_overrides(overrides)
    tree: dict[str, Any] = {}
    file_tree = _read_yaml(config_file) if config_file else {}
    flat_tree = _nest(overrides or {})
    name = model or flat_tree.get("model", {}).get("name") or file_tree.get("model", {}).get("name")
    dname = data or flat_tree.get("data", {}).get("name") or file_tree.get("data", {}).get("name")
    if use_recipe and name and dname:
        recipe = recipe_path(name, dname)
        if recipe is not None:
            tree = _merge(tree, _read_yaml(recipe))
    tree = _merge(tree, file_tree)
    tree = _merge(tree, flat_tree)
    if model:
        tree.setdefault("model", {})["name"] = model
    if data:
        tree.setdefault("data", {})["name"] = data
    cfg = build_dataclass(RunConfig, tree)
    validate(cfg)
    return cfg


def apply_overrides(cfg: RunConfig, overrides: dict[str, Any] | list[str]) -> RunConfig:
    """A copy of ``cfg`` with dotted overrides applied and checked."""
    if isinstance(overrides, list):
        overrides = parse_overrides(overrides)
    tree = _merge(to_dict(cfg), _nest(overrides))
    out = build_dataclass(RunConfig, tree)
    validate(out)
    return out


def validate(cfg: RunConfig) -> None:
    """Checks across fields that types alone cannot express."""
    t = cfg.train
    checks = [
        (t.epochs >= 0, "train.epochs", "must be >= 0"),
        (t.batch_size >= 1, "train.batch_size", "must be >= 1"),
        (t.lr > 0, "train.lr", "must be > 0"),
        (t.grad_accum >= 1, "train.grad_accum", "must be >= 1"),
        (0.0 <= cfg.data.val_split < 1.0, "data.val_split", "must be in [0, 1)"),
        (t.ema_decay is None or 0.0 < t.ema_decay < 1.0, "train.ema_decay", "must be in (0, 1)"),
        (t.sample_every >= 0, "train.sample_every", "must be >= 0 (0: no sample pictures)"),
        (t.num_samples >= 1, "train.num_samples", "must be >= 1"),
        (t.grad_clip is None or t.grad_clip > 0, "train.grad_clip", "must be > 0 or null"),
        (0.0 <= t.label_smoothing < 1.0, "train.label_smoothing", "must be in [0, 1)"),
        (cfg.system.num_nodes >= 1, "system.num_nodes", "must be >= 1"),
        (0.0 <= cfg.data.random_erasing <= 1.0, "data.random_erasing", "must be a probability in [0, 1]"),
        (cfg.data.mixup >= 0, "data.mixup", "must be >= 0 (the Beta alpha; 0 turns mixup off)"),
        (cfg.data.cutmix >= 0, "data.cutmix", "must be >= 0 (the Beta alpha; 0 turns CutMix off)"),
        (0.0 < cfg.data.label_fraction <= 1.0, "data.label_fraction", "must be in (0, 1]"),
        (t.layer_lr_decay > 0, "train.layer_lr_decay", "must be > 0 (1 = one lr for all layers)"),
        (t.trainable_groups >= 1, "train.trainable_groups", "must be >= 1"),
        (t.unfreeze_every is None or t.unfreeze_every >= 1, "train.unfreeze_every", "must be >= 1 or null"),
        (t.tbptt is None or t.tbptt >= 1, "train.tbptt", "must be >= 1 or null"),
        (0.0 <= t.teacher_forcing <= 1.0, "train.teacher_forcing", "must be a probability in [0, 1]"),
        (t.beam_size >= 1, "train.beam_size", "must be >= 1 (1 = greedy decoding)"),
        (t.length_penalty >= 0, "train.length_penalty", "must be >= 0"),
    ]
    for ok, key, what in checks:
        if not ok:
            section, name = key.split(".")
            raise ConfigError(f"{key}: {getattr(getattr(cfg, section), name)!r} {what}")


def save_yaml(cfg: Any, path: str | Path) -> None:
    """Write a config (dataclass or dict) as YAML, atomically."""
    import yaml

    from archlab.utils import atomic_write_text

    data = to_dict(cfg) if is_dataclass(cfg) else cfg
    atomic_write_text(path, yaml.safe_dump(data, sort_keys=False))


def config_from_dict(data: dict[str, Any]) -> RunConfig:
    """A :class:`RunConfig` from its saved dict form (``config.yaml``, checkpoint metadata)."""
    return build_dataclass(RunConfig, data)
