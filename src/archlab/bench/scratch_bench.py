"""Benchmark ``scratch_mnist``: the NumPy engine against PyTorch on the same work, side by side.

1. accuracy: ``archlab train scratch_mlp --data mnist`` (784-256-128-10, the shipped recipe) on
   the real MNIST, and ``archlab train scratch_cnn --data digits``.
2. MLP epoch time: one epoch of 784-256-128-10 at batch 128 (float32, Adam, cross-entropy) in
   the scratch engine and in PyTorch on the CPU with the same number of threads; target ratio <= 1.5.
3. convolution: forward + backward of one conv layer on the same shapes, scratch (im2col) against
   torch (oneDNN); reported ratio, target <= 3.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from typing import Any

import numpy as np

from archlab.bench.suite import mnist_root
from archlab.registry import register_benchmark

__all__ = ["scratch_mnist"]


def _mnist_arrays() -> tuple[np.ndarray, np.ndarray, Any]:
    from archlab.data import load_dataset

    bundle = load_dataset("mnist", mnist_root(), val_split=0.0)
    x = bundle.train.x.numpy().astype(np.float32) / 255.0
    mean, std = bundle.info.mean[0], bundle.info.std[0]
    x = ((x - mean) / std).reshape(len(x), -1)  # (N, 784)
    return x, bundle.train.y.numpy(), bundle


def _scratch_epoch(x: np.ndarray, y: np.ndarray, batch: int, steps: int) -> float:
    from archlab.scratch import functional as F
    from archlab.scratch import optim
    from archlab.scratch.autograd import Tensor
    from archlab.scratch.models import ScratchMLP, ScratchMLPConfig

    model = ScratchMLP(ScratchMLPConfig(in_features=784, num_classes=10, hidden_dims=(256, 128))).astype(np.float32)
    opt = optim.Adam(list(model.parameters()), lr=1e-3)
    t0 = time.perf_counter()
    for i in range(steps):
        xb, yb = x[i * batch:(i + 1) * batch], y[i * batch:(i + 1) * batch]
        loss = F.cross_entropy(model(Tensor(xb)), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return time.perf_counter() - t0


def _torch_epoch(x: np.ndarray, y: np.ndarray, batch: int, steps: int) -> float:
    import torch
    import torch.nn.functional as F

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 128),
                                torch.nn.ReLU(), torch.nn.Linear(128, 10))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y).long()
    t0 = time.perf_counter()
    for i in range(steps):
        loss = F.cross_entropy(model(xt[i * batch:(i + 1) * batch]), yt[i * batch:(i + 1) * batch])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return time.perf_counter() - t0


def _conv_times(shape: tuple[int, int, int, int], out_channels: int, k: int, pad: int, repeats: int) -> tuple[float, float]:
    import torch
    import torch.nn.functional as TF

    from archlab.scratch import functional as F
    from archlab.scratch.autograd import Tensor

    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(np.float32)
    w = (rng.standard_normal((out_channels, shape[1], k, k)) * 0.1).astype(np.float32)
    b = np.zeros(out_channels, np.float32)

    def scratch_step() -> None:
        xs, ws, bs = Tensor(x, requires_grad=True), Tensor(w, requires_grad=True), Tensor(b, requires_grad=True)
        F.conv2d(xs, ws, bs, stride=1, padding=pad).sum().backward()

    xt = torch.from_numpy(x).requires_grad_()
    wt = torch.from_numpy(w).requires_grad_()
    bt = torch.from_numpy(b).requires_grad_()

    def torch_step() -> None:
        TF.conv2d(xt, wt, bt, padding=pad).sum().backward()

    from archlab.bench import time_steps

    s = statistics.median(time_steps(scratch_step, repeats, 3) for _ in range(3))
    t = statistics.median(time_steps(torch_step, repeats, 3) for _ in range(3))
    return s, t


def _accuracy_runs(out: str) -> dict[str, Any]:
    import archlab

    common = {"run.out_dir": out, "run.report": False, "system.progress": False}
    t0 = time.perf_counter()
    mlp = archlab.train("scratch_mlp", "mnist", overrides={**common, "data.root": mnist_root(), "run.name": "mlp"})
    t_mlp = time.perf_counter() - t0
    t0 = time.perf_counter()
    cnn = archlab.train("scratch_cnn", "digits", overrides={**common, "run.name": "cnn"})
    t_cnn = time.perf_counter() - t0
    return {
        "scratch_mlp_mnist": {"command": "archlab train scratch_mlp --data mnist --data-dir ../shared/data",
                              "test_acc": round(mlp.metrics["test/acc"], 4), "epochs": mlp.summary["epochs"],
                              "train_time_s": mlp.summary["train_time_s"], "wall_s": round(t_mlp, 1), "target": 0.98},
        "scratch_cnn_digits": {"command": "archlab train scratch_cnn --data digits",
                               "test_acc": round(cnn.metrics["test/acc"], 4), "epochs": cnn.summary["epochs"],
                               "train_time_s": cnn.summary["train_time_s"], "wall_s": round(t_cnn, 1), "target": 0.97},
    }


@register_benchmark("scratch_mnist", family="scratch",
                    description="NumPy engine: MLP on MNIST >= 98%, CNN on digits >= 97%, speed against PyTorch")
def scratch_mnist(quick: bool = False) -> dict[str, Any]:
    import torch

    x, y, _ = _mnist_arrays()
    batch = 128
    steps = 40 if quick else len(x) // batch
    repeats = 1 if quick else 3
    scratch_t, torch_t = [], []
    for _ in range(repeats):  # alternate so drifts in machine speed hit both alike
        scratch_t.append(_scratch_epoch(x, y, batch, steps))
        torch_t.append(_torch_epoch(x, y, batch, steps))
    s, t = statistics.median(scratch_t), statistics.median(torch_t)
    conv = {}
    for name, shape, oc in (("mnist_conv1", (128, 1, 28, 28), 16), ("mid_conv", (64, 16, 14, 14), 32)):
        cs, ct = _conv_times(shape, oc, 3, 1, 3 if quick else 10)
        conv[name] = {"input": list(shape), "out_channels": oc, "kernel": 3, "padding": 1,
                      "scratch_ms": round(cs * 1e3, 3), "torch_ms": round(ct * 1e3, 3), "ratio": round(cs / ct, 3)}
    result: dict[str, Any] = {
        "threads": torch.get_num_threads(),
        "mlp_epoch": {"model": "784-256-128-10", "batch_size": batch, "steps": steps, "dtype": "float32",
                      "scratch_s": round(s, 3), "torch_s": round(t, 3), "ratio": round(s / t, 3),
                      "scratch_all_s": [round(v, 3) for v in scratch_t], "torch_all_s": [round(v, 3) for v in torch_t],
                      "target_ratio": 1.5},
        "conv_forward_backward": {**conv, "target_ratio": 3.0},
    }
    if not quick:
        with tempfile.TemporaryDirectory() as out:
            result["accuracy"] = _accuracy_runs(out)
    return result
