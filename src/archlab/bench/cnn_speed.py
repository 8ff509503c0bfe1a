"""Benchmark ``cnn_speed``: forward+backward time per batch of every CNN family, eager vs channels_last vs compile.

For each family (LeNet, AlexNet, VGG, ResNet, plain, MobileNet V2/V3, EfficientNet, DenseNet,
GoogLeNet, ViT) one variant is timed at 224 pixels (ImageNet stem, 3 channels, 1000 classes,
batch 8) and one at 32 pixels (the small-image variant, 3 channels, 10 classes, batch 64):

* ``eager``: fp32, NCHW;
* ``channels_last``: fp32, model and input in NHWC (``torch.channels_last``);
* ``bf16_channels_last``: NHWC under ``torch.autocast(bfloat16)`` (AMX on recent Intel CPUs; skipped
  on a CPU without native bf16, where oneDNN emulates it and it is 4-16x slower than fp32);
* ``compile``: ``torch.compile(model)`` (inductor), NCHW fp32, on a subset of families (compiling
  takes about a minute a model on 2 cores); the compile time is recorded apart.

One step = forward, a cross-entropy loss, backward (gradients zeroed each step, no optimizer), in
training mode, median of ``repeats`` timings of ``steps`` steps after a warm-up. Figures are
seconds per batch and images per second; ratios are against eager.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from archlab.registry import register_benchmark

__all__ = ["cnn_speed", "FAMILIES"]

# family -> (variant at 224 px, variant at 32 px); None = not run at that size (and why).
FAMILIES: dict[str, tuple[str | None, str | None]] = {
    "lenet": (None, "lenet5"),  # the 1998 network takes 32x32 only (it would resize 224 down)
    "alexnet": ("alexnet", None),  # 11x11/4 stem and three 3x3/2 pools need >= 63 px
    "vgg": ("vgg16_bn", "vgg11_bn"),
    "resnet": ("resnet50", "resnet18_cifar"),
    "resnet18": ("resnet18", "resnet18_cifar"),
    "plain": ("plain18", "plain18_cifar"),
    "mobilenet_v2": ("mobilenet_v2", "mobilenet_v2_cifar"),
    "mobilenet_v3": ("mobilenet_v3_large", "mobilenet_v3_small"),
    "efficientnet": ("efficientnet_b0", "efficientnet_b0_cifar"),
    "densenet": ("densenet121", "densenet121_cifar"),
    "googlenet": ("googlenet", "googlenet_cifar"),
    "vit": ("vit_s_16", "vit_tiny_patch4_32"),
}
COMPILED = ("lenet", "resnet18", "vit")


def _build(name: str, size: int) -> Any:
    from archlab.registry import create_model

    classes = 1000 if size == 224 else 10
    in_ch = 1 if name == "lenet5" else 3
    return create_model(name, in_channels=in_ch, num_classes=classes, image_size=size), in_ch, classes


def _time(model: Any, x: Any, y: Any, steps: int, repeats: int, bf16: bool = False) -> float:
    import torch
    import torch.nn.functional as F

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(model(x).float(), y)
        model.zero_grad(set_to_none=True)
        loss.backward()

    step()  # warm-up (oneDNN primitive caches, allocator)
    step()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        times.append((time.perf_counter() - t0) / steps)
    return statistics.median(times)


def _measure(family: str, name: str, size: int, batch: int, steps: int, repeats: int, compile_: bool) -> dict[str, Any]:
    import torch

    torch.manual_seed(0)
    model, in_ch, classes = _build(name, size)
    model.train()
    x = torch.randn(batch, in_ch, size, size)
    y = torch.randint(0, classes, (batch,))
    row: dict[str, Any] = {"family": family, "model": name, "image_size": size, "batch": batch,
                           "params": sum(p.numel() for p in model.parameters())}
    row["eager_s"] = _time(model, x, y, steps, repeats)
    cl_model = model.to(memory_format=torch.channels_last)
    x_cl = x.contiguous(memory_format=torch.channels_last)
    row["channels_last_s"] = _time(cl_model, x_cl, y, steps, repeats)
    from archlab.bench import cpu_has_native_bf16

    if cpu_has_native_bf16() or torch.cuda.is_available():
        row["bf16_channels_last_s"] = _time(cl_model, x_cl, y, steps, repeats, bf16=True)
    else:
        row["bf16_channels_last"] = "skipped: this CPU has no native bf16 (it would be emulated)"
    model = model.to(memory_format=torch.contiguous_format)
    if compile_:
        torch._dynamo.reset()
        compiled = torch.compile(model)
        t0 = time.perf_counter()
        _time(compiled, x, y, 1, 1)
        row["compile_time_s"] = round(time.perf_counter() - t0, 1)
        row["compile_s"] = _time(compiled, x, y, steps, repeats)
    for key in ("channels_last_s", "bf16_channels_last_s", "compile_s"):
        if key in row:
            row[key.replace("_s", "_speedup")] = round(row["eager_s"] / row[key], 3)
    row["images_per_s_eager"] = round(batch / row["eager_s"], 1)
    for key in ("eager_s", "channels_last_s", "bf16_channels_last_s", "compile_s"):
        if key in row:
            row[key] = round(row[key], 4)
    return row


@register_benchmark("cnn_speed", family="cnn",
                    description="CNN families: fwd+bwd time per batch at 224 and 32 px; channels_last, bf16, compile vs eager")
def cnn_speed(quick: bool = False, families: list[str] | None = None) -> dict[str, Any]:
    from archlab.registry import MODELS

    steps, repeats = (1, 1) if quick else (2, 3)
    chosen = families or (["lenet", "resnet18"] if quick else list(FAMILIES))
    rows, skipped = [], []
    for family in chosen:
        for size, name in zip((224, 32), FAMILIES[family], strict=True):
            if name is None:
                continue
            if name not in MODELS.names():
                skipped.append(f"{name} (not registered)")
                continue
            batch = 8 if size == 224 else 64
            if quick:
                batch = 2 if size == 224 else 8
            compile_ = family in COMPILED and not quick
            print(f"cnn_speed: {name} at {size} px, batch {batch}", flush=True)
            try:
                rows.append(_measure(family, name, size, batch, steps, repeats, compile_))
            except Exception as exc:  # a failure of one model is recorded, not fatal
                rows.append({"family": family, "model": name, "image_size": size, "error": f"{type(exc).__name__}: {exc}"})
            print(f"cnn_speed: {rows[-1]}", flush=True)
    return {"steps": steps, "repeats": repeats, "rows": rows, "skipped": skipped}
