"""archlab: implement, train, compare and explain the neural-network architectures of deep learning.

The names below load lazily, so ``import archlab`` is cheap and ``archlab --help`` never imports
torch. Every CLI command has a Python equivalent here::

    import archlab
    run = archlab.train("lenet5", data="digits", overrides={"train.epochs": 5})
    run.metrics["test/acc"], run.report_path
    archlab.evaluate(run.path), archlab.predict(run.path, "digit.png")
    archlab.create_model("mlp", in_features=4, num_classes=3)
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "train": "archlab.api",
    "evaluate": "archlab.api",
    "predict": "archlab.api",
    "generate": "archlab.api",
    "sample": "archlab.api",
    "load_run": "archlab.api",
    "write_report": "archlab.api",
    "experiment": "archlab.api",
    "explain": "archlab.api",
    "Run": "archlab.api",
    "tune": "archlab.tuning",
    "run_benchmarks": "archlab.bench",
    "tour": "archlab.tours",
    "info": "archlab.inspect",
    "create_model": "archlab.registry",
    "list_models": "archlab.registry",
    "list_datasets": "archlab.registry",
    "list_experiments": "archlab.registry",
    "list_benchmarks": "archlab.registry",
    "register_model": "archlab.registry",
    "register_dataset": "archlab.registry",
    "register_experiment": "archlab.registry",
    "register_benchmark": "archlab.registry",
    "load_dataset": "archlab.data",
    "load_pretrained": "archlab.transfer",
    "load_config": "archlab.config",
    "RunConfig": "archlab.config",
}

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'archlab' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
