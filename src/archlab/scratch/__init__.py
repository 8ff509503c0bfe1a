"""archlab.scratch: deep learning from scratch in NumPy (this package never imports torch).

A small, readable reverse-mode autograd engine and the layers built on it, checked against
finite differences and against PyTorch (``tests/scratch``)::

    import numpy as np
    from archlab import scratch as sc
    from archlab.scratch import functional as F

    model = sc.Sequential(sc.Linear(784, 128, rng=0), sc.ReLU(), sc.Linear(128, 10, rng=1))
    x, y = sc.Tensor(np.random.rand(32, 784)), np.random.randint(0, 10, 32)
    loss = F.cross_entropy(model(x), y)
    loss.backward()                                   # fills p.grad for p in model.parameters()
    print(sc.to_dot(loss, params=model.named_parameters()))   # the graph, as Graphviz DOT

Modules:
    autograd    Tensor, no_grad, record_op (define your own op), concatenate/stack/where
    functional  activations, losses, linear, conv2d, pools, batch_norm, dropout, embedding
    init        Xavier/Glorot, Kaiming/He and friends; manual_seed for the default generator
    layers      Module, Parameter, Sequential, Linear, Conv2d, pools, BatchNorm, Dropout,
                Embedding, RNN, activation modules
    gradcheck   finite-difference gradient check
    graph       to_dot / render of the computational graph
    optim       optimizers, schedules, clipping, early stopping (written separately)
"""

from __future__ import annotations

import importlib
from typing import Any

from archlab.scratch import functional, init
from archlab.scratch.autograd import (
    IndexedGrad,
    Tensor,
    concatenate,
    is_grad_enabled,
    maximum,
    minimum,
    no_grad,
    record_op,
    stack,
    tensor,
    unbroadcast,
    where,
)
from archlab.scratch.gradcheck import GradcheckError, GradcheckReport, gradcheck, numerical_grad
from archlab.scratch.graph import GraphvizNotFoundError, render, to_dot
from archlab.scratch.init import manual_seed
from archlab.scratch.layers import (
    ELU,
    GELU,
    RNN,
    SELU,
    AvgPool2d,
    BatchNorm1d,
    BatchNorm2d,
    Conv2d,
    Dropout,
    Embedding,
    Flatten,
    Identity,
    LeakyReLU,
    Linear,
    LogSoftmax,
    MaxPool2d,
    Module,
    Parameter,
    ReLU,
    Sequential,
    Sigmoid,
    Softmax,
    Step,
    Tanh,
)

__all__ = [
    "ELU",
    "GELU",
    "RNN",
    "SELU",
    "AvgPool2d",
    "BatchNorm1d",
    "BatchNorm2d",
    "Conv2d",
    "Dropout",
    "Embedding",
    "Flatten",
    "GradcheckError",
    "GradcheckReport",
    "GraphvizNotFoundError",
    "Identity",
    "IndexedGrad",
    "LeakyReLU",
    "Linear",
    "LogSoftmax",
    "MaxPool2d",
    "Module",
    "Parameter",
    "ReLU",
    "Sequential",
    "Sigmoid",
    "Softmax",
    "Step",
    "Tanh",
    "Tensor",
    "concatenate",
    "functional",
    "gradcheck",
    "init",
    "is_grad_enabled",
    "manual_seed",
    "maximum",
    "minimum",
    "no_grad",
    "numerical_grad",
    "record_op",
    "render",
    "stack",
    "tensor",
    "to_dot",
    "unbroadcast",
    "where",
]


def __getattr__(name: str) -> Any:
    # Names of archlab.scratch.optim (SGD, Adam, schedules...) resolve lazily here, so this file
    # need not list them and still imports while optim.py is absent or being written.
    # Lead: once optim.py settles, consider importing its public names explicitly above.
    if not name.startswith("_"):
        try:
            optim = importlib.import_module("archlab.scratch.optim")
        except ModuleNotFoundError as err:
            if err.name != "archlab.scratch.optim":
                raise
        else:
            if hasattr(optim, name):
                return getattr(optim, name)
    raise AttributeError(f"module 'archlab.scratch' has no attribute {name!r}")
