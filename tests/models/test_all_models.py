"""Every registered model, at a tiny size: the common model contract (timm's walk over its registry).

Nothing here names a model: registering one is enough to be tested. Sizes come from the config
dataclass: ``in_features`` -> 12, ``image_size`` -> 16, ``num_classes`` -> 3, then the config's
``TINY`` class attribute (``TINY: ClassVar[dict] = {"image_size": 8}``), then a ``tiny`` tag on
the registry entry if it has one. Inputs come from :func:`archlab.inspect.example_input` (the
config's shape, or the model's own ``example_input(batch_size)``).

Models whose config has ``num_classes`` (generative ones apart) are classifiers: logits (B, num_classes) and they must
overfit one batch with cross-entropy. Others get the generic checks only.
"""

from __future__ import annotations

import importlib
import inspect as pyinspect
from dataclasses import fields, is_dataclass
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from archlab.inspect import example_input
from archlab.registry import create_model, get_model_entry, list_models

# NumPy models (family "scratch") have their own walk in tests/scratch/test_scratch_models.py.
ALL_MODELS = [n for n in list_models() if get_model_entry(n).family != "scratch"]
FAMILIES = {"mlp", "cnn", "vit", "rnn", "transformer", "generative", "graph", "scratch"}


def tiny_overrides(name: str) -> dict[str, Any]:
    entry = get_model_entry(name)
    cls = entry.tags.get("config")
    if cls is None:
        return {}
    names = {f.name for f in fields(cls)}
    out: dict[str, Any] = {}
    for key, value in (("in_features", 12), ("image_size", 16), ("num_classes", 3)):
        if key in names:
            out[key] = value
    out.update(getattr(cls, "TINY", {}))
    out.update(entry.tags.get("tiny", {}))
    return out


def build(name: str, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return create_model(name, **tiny_overrides(name))


def num_classes(model: torch.nn.Module) -> int | None:
    """The classifier's class count; None for generative models (a conditional GAN has classes, not logits)."""
    if getattr(model, "family", None) == "generative":
        return None
    return getattr(getattr(model, "config", None), "num_classes", None)


def call(model: torch.nn.Module, x: Any) -> Any:
    if isinstance(x, dict):
        return model(**x)
    if isinstance(x, tuple):
        return model(*x)
    return model(x)


def float_tensors(out: Any) -> list[torch.Tensor]:
    if isinstance(out, torch.Tensor):
        return [out] if out.is_floating_point() else []
    if isinstance(out, (list, tuple)):
        return [t for o in out for t in float_tensors(o)]
    if isinstance(out, dict):
        return [t for o in out.values() for t in float_tensors(o)]
    return []


def random_scalar(out: Any, seed: int = 0) -> torch.Tensor:
    """A random weighted sum of every float output (a plain sum can cancel, e.g. after batch norm)."""
    g = torch.Generator().manual_seed(seed)
    return sum((t * torch.randn(t.shape, generator=g).to(t)).sum() for t in float_tensors(out))


@pytest.mark.parametrize("name", ALL_MODELS)
def test_registered_with_config_and_docs(name: str) -> None:
    entry = get_model_entry(name)
    assert entry.family in FAMILIES, f"{name}: family {entry.family!r} not one of {sorted(FAMILIES)}"
    assert entry.summary, f"{name}: the entry function needs a one-line docstring"
    cls = entry.tags.get("config")
    assert cls is not None and is_dataclass(cls), f"{name}: register it with config=SomeConfig"
    module = importlib.import_module(entry.fn.__module__)
    assert "Deviations from the paper" in (module.__doc__ or ""), f"{module.__name__}: house style"
    model = create_model(name)
    assert isinstance(model, torch.nn.Module)
    assert model.model_name == name and model.family == entry.family and is_dataclass(model.config)


@pytest.mark.parametrize("name", ALL_MODELS)
def test_forward_shape_and_finite(name: str) -> None:
    model = build(name).eval()
    x = example_input(model, batch_size=2)
    with torch.no_grad():
        out = call(model, x)
    k = num_classes(model)
    if k is not None:
        assert isinstance(out, torch.Tensor) and out.shape == (2, k)
    outs = float_tensors(out)
    assert outs, f"{name} returned no float tensor"
    assert all(torch.isfinite(t).all() for t in outs)


@pytest.mark.parametrize("name", ALL_MODELS)
def test_default_size_forward(name: str) -> None:
    """The registered variant at its own (not tiny) size runs on its default input."""
    model = create_model(name).eval()
    if sum(p.numel() for p in model.parameters()) > 50_000_000:
        pytest.skip("too large for a CPU smoke test")
    with torch.no_grad():
        out = call(model, example_input(model, batch_size=1))
    k = num_classes(model)
    if k is not None:
        assert out.shape == (1, k)


@pytest.mark.parametrize("name", ALL_MODELS)
def test_every_parameter_gets_a_gradient(name: str) -> None:
    model = build(name).train()
    out = call(model, example_input(model, batch_size=4))
    random_scalar(out).backward()
    for pname, p in model.named_parameters():
        if not p.requires_grad:
            continue
        assert p.grad is not None, f"{name}: {pname} got no gradient"
        assert torch.isfinite(p.grad).all(), f"{name}: {pname} has a non-finite gradient"
        assert p.grad.abs().sum() > 0, f"{name}: {pname} has an all-zero gradient"


@pytest.mark.parametrize("name", ALL_MODELS)
def test_seeded_determinism(name: str) -> None:
    a, b = build(name, seed=0).eval(), build(name, seed=0).eval()
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), f"{name}: {key} differs between two seeded builds"
    x = example_input(a, batch_size=2)
    with torch.no_grad():
        for ta, tb in zip(float_tensors(call(a, x)), float_tensors(call(b, x)), strict=True):
            assert torch.equal(ta, tb)


@pytest.mark.parametrize("name", ALL_MODELS)
def test_state_dict_round_trip(name: str) -> None:
    src = build(name, seed=0).train()
    x = example_input(src, batch_size=4)
    call(src, x)  # moves batch-norm running statistics off their initial values
    with torch.no_grad():
        for p in src.parameters():
            p.add_(0.01 * torch.randn_like(p))
    dst = build(name, seed=1)
    dst.load_state_dict(src.state_dict())
    src.eval(), dst.eval()
    with torch.no_grad():
        for ta, tb in zip(float_tensors(call(src, x)), float_tensors(call(dst, x)), strict=True):
            assert torch.equal(ta, tb)


@pytest.mark.parametrize("name", ALL_MODELS)
def test_overfits_one_batch(name: str) -> None:
    model = build(name, seed=0).train()
    k = num_classes(model)
    if k is None:
        pytest.skip("not a classifier; its family's tests check that it learns")
    x = example_input(model, batch_size=8, seed=1)
    y = torch.arange(8) % k
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = None
    for _ in range(200):
        logits = call(model, x)
        loss = F.cross_entropy(logits, y)
        first = loss.item() if first is None else first
        acc = (logits.argmax(1) == y).float().mean().item()
        if loss.item() < 0.1 * first or acc == 1.0:
            break
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.1 * first or acc == 1.0, (
        f"{name}: loss {first:.3f} -> {loss.item():.3f}, acc {acc:.2f}"
    )


def test_walk_sees_every_family_module() -> None:
    """The modules that register models are imported by archlab.models, directly or by their package
    (``archlab.models.generative`` imports ``vae``, ``flow``...; archlab.models imports ``generative``)."""
    import archlab.models as pkg

    src = pyinspect.getsource(pkg)
    for name in ALL_MODELS:
        module = get_model_entry(name).fn.__module__
        parent, _, leaf = module.rpartition(".")
        if leaf in src:
            continue
        parent_src = pyinspect.getsource(importlib.import_module(parent))
        assert leaf in parent_src and parent.rsplit(".", 1)[-1] in src, (
            f"{module} is not imported by archlab/models/__init__.py (nor by {parent}, imported there)")


VISION_MODELS = [n for n in ALL_MODELS if get_model_entry(n).family in ("cnn", "vit")]


@pytest.mark.parametrize("name", VISION_MODELS)
def test_wrong_input_names_the_expected_input(name: str) -> None:
    """A wrong channel count or a missing batch dimension fails with the model's expected input."""
    model = build(name).eval()
    x = example_input(model, batch_size=2)
    c = x.shape[1]
    with torch.no_grad():
        with pytest.raises(ValueError, match=rf"{name} expects images \(B, {c}, H, W\)"):
            model(torch.randn(2, c + 1, *x.shape[2:]))
        with pytest.raises(ValueError, match=rf"{name} expects images"):
            model(x[0])
