"""Registries of named things: models, datasets, experiments and benchmarks.

timm's pattern: an entry function is decorated with ``@register_model("lenet5", family="cnn")``
and builds the named variant; ``create_model(name, **overrides)`` looks it up and calls it.
Entries are found by importing the module that defines them, so each registry knows which
package to import before it is first read (``archlab.models`` for models, and so on); nothing
heavy is imported until a registry is used.

Unknown names fail with :class:`UnknownNameError`, which lists the closest valid names.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Entry",
    "Registry",
    "UnknownNameError",
    "MODELS",
    "DATASETS",
    "EXPERIMENTS",
    "BENCHMARKS",
    "register_model",
    "register_dataset",
    "register_experiment",
    "register_benchmark",
    "list_models",
    "list_datasets",
    "list_experiments",
    "list_benchmarks",
    "get_model_entry",
    "create_model",
    "closest",
]


class UnknownNameError(KeyError):
    """A name that no registry entry carries. The message lists the closest valid names."""

    def __str__(self) -> str:  # KeyError would repr() the message, quotes and all
        return str(self.args[0])


def closest(name: str, choices: list[str], n: int = 5) -> list[str]:
    """The valid names nearest to ``name``: close spellings first, then names containing it."""
    near = difflib.get_close_matches(name, choices, n=n, cutoff=0.5)
    near += [c for c in choices if name.lower() in c.lower() and c not in near]
    return near[:n]


@dataclass
class Entry:
    """One registered thing: its name, family, the callable that builds or runs it, and notes."""

    name: str
    fn: Callable[..., Any]
    family: str = ""
    description: str = ""
    tags: dict[str, Any] = field(default_factory=dict)

    @property
    def summary(self) -> str:
        """First line of the description, or of the function's docstring."""
        text = self.description or (self.fn.__doc__ or "")
        return text.strip().splitlines()[0] if text.strip() else ""


class Registry:
    """A name -> :class:`Entry` table, filled by decorators when ``populate`` modules are imported."""

    def __init__(self, kind: str, populate: tuple[str, ...] = ()) -> None:
        self.kind = kind
        self._populate = populate
        self._populated = False
        self._entries: dict[str, Entry] = {}

    def register(
        self, name: str, *, family: str = "", description: str = "", **tags: Any
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorator: ``@REG.register("name", family="cnn")`` on an entry function."""

        def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
            if name in self._entries and self._entries[name].fn is not fn:
                old = self._entries[name].fn
                raise ValueError(
                    f"{self.kind} {name!r} is registered twice ({old.__module__}.{old.__qualname__} "
                    f"and {fn.__module__}.{fn.__qualname__}); give one of them another name"
                )
            self._entries[name] = Entry(name, fn, family, description, dict(tags))
            return fn

        return deco

    def _load(self) -> None:
        if not self._populated:
            self._populated = True
            for module in self._populate:
                importlib.import_module(module)

    def get(self, name: str) -> Entry:
        """The entry called ``name``; an unknown name raises :class:`UnknownNameError`."""
        self._load()
        # "-" and "_" are alike: experiments are registered with hyphens, models with underscores.
        for key in (name, name.replace("-", "_"), name.replace("_", "-")):
            if key in self._entries:
                return self._entries[key]
        hint = closest(name, sorted(self._entries))
        msg = f"unknown {self.kind} {name!r}."
        if hint:
            msg += f" Did you mean: {', '.join(hint)}?"
        msg += f" `archlab list {self.kind}s` shows all {len(self._entries)}."
        raise UnknownNameError(msg)

    def names(self, family: str | None = None, pattern: str | None = None) -> list[str]:
        """Sorted names, optionally only one family and those matching a shell-style pattern."""
        import fnmatch

        self._load()
        out = [e.name for e in self._entries.values() if family is None or e.family == family]
        if pattern:
            out = [n for n in out if fnmatch.fnmatch(n, pattern)]
        return sorted(out)

    def families(self) -> list[str]:
        self._load()
        return sorted({e.family for e in self._entries.values()})

    def __contains__(self, name: str) -> bool:
        self._load()
        return name in self._entries or name.replace("-", "_") in self._entries

    def __iter__(self) -> Iterator[Entry]:
        self._load()
        return iter(sorted(self._entries.values(), key=lambda e: e.name))

    def __len__(self) -> int:
        self._load()
        return len(self._entries)


MODELS = Registry("model", ("archlab.models",))
DATASETS = Registry("dataset", ("archlab.data.catalog",))
EXPERIMENTS = Registry("experiment", ("archlab.experiments",))
BENCHMARKS = Registry("benchmark", ("archlab.bench.suite",))


def register_model(name: str, *, family: str, config: type | None = None, **defaults: Any):
    """Register a model entry function.

    Args:
        name: the variant's name, e.g. ``"resnet18"``.
        family: ``mlp``, ``cnn``, ``vit``, ``rnn``, ``transformer``, ``generative``, ``graph`` or ``scratch``.
        config: the model's config dataclass; ``create_model`` checks overrides against its
            fields (types and allowed values) and fills data-dependent fields (``in_channels``,
            ``num_classes``, ``in_features``, ``image_size``) from the dataset.
        **defaults: the variant's values for config fields (``hidden_dims=(256, 256)``).

    The entry function takes the config instance and returns an ``nn.Module``.
    """
    return MODELS.register(name, family=family, config=config, defaults=defaults)


def register_dataset(name: str, *, family: str, description: str = "", **tags: Any):
    """Register a dataset loader: ``fn(root, **options) -> archlab.data.DataBundle``.

    ``family`` is the kind of data (``tabular``, ``image``, ``text``, ``graph``...); tags such as
    ``download=True`` and ``size="60000"`` show in ``archlab data list``.
    """
    return DATASETS.register(name, family=family, description=description, **tags)


def register_experiment(name: str, *, family: str, description: str = "", **tags: Any):
    """Register an experiment: ``fn(out_dir, quick=False, **options) -> dict`` writing a report."""
    return EXPERIMENTS.register(name, family=family, description=description, **tags)


def register_benchmark(name: str, *, family: str, description: str = "", **tags: Any):
    """Register a benchmark: ``fn(quick=False) -> dict`` of measured figures (JSON-able)."""
    return BENCHMARKS.register(name, family=family, description=description, **tags)


def list_models(family: str | None = None, pattern: str | None = None) -> list[str]:
    """Names of registered models, optionally of one ``family`` and matching ``pattern`` (``"vgg*"``)."""
    return MODELS.names(family, pattern)


def list_datasets(family: str | None = None) -> list[str]:
    return DATASETS.names(family)


def list_experiments(family: str | None = None) -> list[str]:
    return EXPERIMENTS.names(family)


def list_benchmarks(family: str | None = None) -> list[str]:
    return BENCHMARKS.names(family)


def get_model_entry(name: str) -> Entry:
    return MODELS.get(name)


def model_config(name: str, data_info: Any = None, **overrides: Any) -> Any:
    """The config dataclass instance that ``create_model`` would build ``name`` from.

    Precedence: the config class's defaults < the variant's defaults < values implied by the
    dataset (``data_info``) < explicit ``overrides``. Overrides are type-checked.
    """
    from archlab.config import build_dataclass

    entry = MODELS.get(name)
    cls = entry.tags.get("config")
    if cls is None:
        if overrides:
            raise TypeError(f"model {name!r} takes no options, got {sorted(overrides)}")
        return None
    values: dict[str, Any] = dict(entry.tags.get("defaults", {}))
    if data_info is not None:
        names = {f for f in getattr(cls, "__dataclass_fields__", {})}
        for key, value in data_info.model_fields().items():
            if key in names and value is not None:
                values[key] = value
    values.update(overrides)
    return build_dataclass(cls, values, path="model")


def create_model(name: str, data_info: Any = None, **overrides: Any) -> Any:
    """Build the registered model ``name``.

    Args:
        name: a registered name (``archlab list models``); close names are suggested on a miss.
        data_info: an ``archlab.data.DatasetInfo``; fills ``in_channels``, ``num_classes``,
            ``in_features`` and ``image_size`` where the model has them.
        **overrides: config fields, checked against their types and allowed values.

    Returns:
        an ``nn.Module`` with ``.config`` (the resolved dataclass) and ``.model_name`` set.

    Example:
        >>> model = create_model("mlp", in_features=4, num_classes=3, hidden_dims=(16,))
    """
    entry = MODELS.get(name)
    cfg = model_config(name, data_info, **overrides)
    model = entry.fn(cfg) if cfg is not None else entry.fn()
    model.model_name = entry.name
    model.family = entry.family
    if cfg is not None and not hasattr(model, "config"):
        model.config = cfg
    return model
