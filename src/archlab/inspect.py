"""What a model is made of: parameters, layers, output shapes, FLOPs and activation memory.

``archlab info MODEL`` prints :meth:`ModelInfo.to_text`; the same numbers are in
:meth:`ModelInfo.to_dict` for reports and benchmarks::

    >>> from archlab.inspect import info
    >>> i = info("lenet5")
    >>> i.total_params, i.flops
    (60000, ...)

One forward pass on a batch of one sample (random values from a fixed seed) is run in eval mode,
with a forward hook on every module and :class:`torch.utils.flop_counter.FlopCounterMode` around
it. FLOPs count 2 per multiply-add of the matrix multiplications and convolutions that the flop
counter knows (elementwise operations, normalisation and pooling are not counted); activation
memory is the sum of the sizes of the leaf modules' outputs, an estimate of what autograd keeps
for the backward pass (in-place and fused operations make the real figure differ).

The input is taken from the model's config (``in_channels`` and ``image_size`` give
(C, H, W), ``in_features`` gives (F,)) unless ``input_shape`` is given; a model whose input is
not a float tensor of that kind defines ``example_input(batch_size)`` returning a tensor, a tuple
of positional arguments or a dict of keyword arguments.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from typing import Any

import torch
from torch import nn

__all__ = ["LayerInfo", "ModelInfo", "count_parameters", "default_input_shape", "example_input", "info"]


@dataclass
class LayerInfo:
    """One row of the layer table: a leaf module, or a module holding parameters of its own.

    ``nn.Identity`` placeholders are left out.

    Attributes:
        name: module path in the model (``"c1"``, ``"features.0.convs.0"``).
        type: the module's class name.
        depth: number of dots in ``name`` (0 for the model's direct children).
        output_shape: shape of the first call's output, batch included; a list of shapes for
            tuple outputs; None if the module did not run.
        params: parameters held by this module itself (not its children).
        trainable: of those, how many require grad.
        flops: FLOPs of this module's calls (its children included).
        calls: how many times it ran in the forward pass.
    """

    name: str
    type: str
    depth: int
    output_shape: Any
    params: int
    trainable: int
    flops: int
    calls: int


@dataclass
class ModelInfo:
    """A model's size and cost for one forward pass (see the module docstring)."""

    name: str
    family: str
    description: str
    input_shape: tuple[int, ...]
    output_shape: Any
    total_params: int
    trainable_params: int
    buffer_elements: int
    param_bytes: int
    flops: int
    activation_bytes: int
    layers: list[LayerInfo] = field(default_factory=list)
    options: list[dict[str, Any]] = field(default_factory=list)
    batch_size: int = 1

    @property
    def non_trainable_params(self) -> int:
        return self.total_params - self.trainable_params

    def to_dict(self) -> dict[str, Any]:
        """Plain types only (JSON-able): shapes as lists."""
        out = asdict(self)
        out["non_trainable_params"] = self.non_trainable_params
        return _jsonable(out)

    def to_text(self, max_rows: int | None = 200) -> str:
        """A readable report: header, layer table, totals and the model's options."""
        title = self.name + (f" ({self.family})" if self.family else "")
        lines = [title + (f": {self.description}" if self.description else "")]
        lines.append(f"input {_fmt_shape(self.input_shape)} -> output {_fmt_shape(self.output_shape)}")
        lines.append("")
        header = ("Layer", "Type", "Output shape", "Params", "FLOPs")
        rows = [
            (
                r.name,
                r.type,
                _fmt_shape(r.output_shape) + (f" x{r.calls}" if r.calls > 1 else ""),
                f"{r.params:,}" if r.params else "-",
                _fmt_count(r.flops) if r.flops else "-",
            )
            for r in self.layers
        ]
        hidden = 0
        if max_rows is not None and len(rows) > max_rows:
            hidden = len(rows) - max_rows
            rows = rows[:max_rows]
        widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
        right = (False, False, False, True, True)

        def fmt(cells: tuple[str, ...]) -> str:
            return "  ".join(
                c.rjust(w) if r else c.ljust(w) for c, w, r in zip(cells, widths, right)
            ).rstrip()

        lines.append(fmt(header))
        lines.append("-" * len(fmt(header)))
        lines += [fmt(r) for r in rows]
        if hidden:
            lines.append(f"... {hidden} more layers (ModelInfo.to_text(max_rows=None) shows all)")
        lines.append("-" * len(fmt(header)))
        lines.append(
            f"Parameters:        {self.total_params:,} (trainable {self.trainable_params:,}, "
            f"non-trainable {self.non_trainable_params:,}; buffers {self.buffer_elements:,} elements)"
        )
        lines.append(f"Parameter memory:  {_fmt_bytes(self.param_bytes)}")
        lines.append(
            f"FLOPs:             {_fmt_count(self.flops)} per forward pass of batch {self.batch_size} "
            "(2 per multiply-add; matmul and conv only)"
        )
        lines.append(
            f"Activations:       ~{_fmt_bytes(self.activation_bytes)} per forward pass of batch "
            f"{self.batch_size} (leaf outputs)"
        )
        if self.options:
            lines.append("")
            lines.append("Options (model.KEY=VALUE):")
            width = max(len(o["name"]) for o in self.options)
            for o in self.options:
                lines.append(f"  {o['name'].ljust(width)} = {o['value']!r:<20} {o['type']}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_text()


# ----------------------------------------------------------------------------------------------
# inputs


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameter elements (shared parameters counted once)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def default_input_shape(model: nn.Module) -> tuple[int, ...]:
    """One sample's input shape from ``model.config``: (C, H, W) for images, (F,) for features."""
    cfg = getattr(model, "config", None)
    c, s, f = (getattr(cfg, k, None) for k in ("in_channels", "image_size", "in_features"))
    if c is not None and s is not None:
        return (int(c), int(s), int(s))
    if f is not None:
        return (int(f),)
    name = getattr(model, "model_name", type(model).__name__)
    raise ValueError(
        f"cannot tell the input shape of {name!r} from its config; pass input_shape=(C, H, W) or "
        f"(F,), or give the model an example_input(batch_size) method"
    )


def example_input(
    model: nn.Module, batch_size: int = 1, input_shape: tuple[int, ...] | None = None, seed: int = 0
) -> Any:
    """A random input for ``model``: the model's own ``example_input`` or a float tensor.

    Args:
        model: the model.
        batch_size: leading dimension B.
        input_shape: one sample's shape; default :func:`default_input_shape`.
        seed: seed of the values (so two calls give the same input).

    Returns:
        a tensor (B, *input_shape), or whatever ``model.example_input(batch_size)`` returns
        (a tensor, a tuple of positional arguments or a dict of keyword arguments).
    """
    if input_shape is None and hasattr(model, "example_input"):
        return model.example_input(batch_size)
    shape = tuple(input_shape) if input_shape is not None else default_input_shape(model)
    try:
        param = next(model.parameters())
        device, dtype = param.device, param.dtype if param.is_floating_point() else torch.float32
    except StopIteration:
        device, dtype = torch.device("cpu"), torch.float32
    g = torch.Generator().manual_seed(seed)
    return torch.randn((batch_size, *shape), generator=g).to(device=device, dtype=dtype)


def _call(model: nn.Module, x: Any) -> Any:
    if isinstance(x, dict):
        return model(**x)
    if isinstance(x, tuple):
        return model(*x)
    return model(x)


# ----------------------------------------------------------------------------------------------
# info


def info(
    model_name_or_module: str | nn.Module,
    input_shape: tuple[int, ...] | None = None,
    data_info: Any = None,
    *,
    batch_size: int = 1,
    **overrides: Any,
) -> ModelInfo:
    """Parameters, layer table, FLOPs and activation memory of a model.

    Args:
        model_name_or_module: a registered model name (built with ``create_model``) or a module.
        input_shape: one sample's shape, (C, H, W) or (F,); default: ``data_info.input_shape``
            if given, else the model's config (``in_channels``/``image_size`` or ``in_features``).
        data_info: an ``archlab.data.DatasetInfo`` the model is built for (names only).
        batch_size: batch of the measured forward pass (FLOPs and activations scale with it).
        **overrides: model options, as for ``create_model`` (names only).

    Returns:
        a :class:`ModelInfo`; ``str(info(...))`` is the text report.
    """
    from torch.utils.flop_counter import FlopCounterMode

    description = ""
    if isinstance(model_name_or_module, str):
        from archlab.registry import create_model, get_model_entry

        model = create_model(model_name_or_module, data_info, **overrides)
        description = get_model_entry(model_name_or_module).summary
    elif isinstance(model_name_or_module, nn.Module) or hasattr(model_name_or_module, "named_modules"):
        if overrides:
            raise TypeError(
                f"options {sorted(overrides)} only apply to a model name; build the module with them instead"
            )
        model = model_name_or_module
    else:
        raise TypeError(f"expected a model name or an nn.Module, got {type(model_name_or_module).__name__}")
    has_own_input = hasattr(model, "example_input")  # graphs: (x, edge_index...), not one tensor
    if input_shape is None and data_info is not None and getattr(data_info, "input_shape", None) and not has_own_input:
        input_shape = tuple(data_info.input_shape)
    if not isinstance(model, nn.Module):  # a NumPy model of archlab.scratch
        return _scratch_info(model, description, input_shape, batch_size)

    x = example_input(model, batch_size, input_shape)
    if isinstance(x, torch.Tensor):
        shown_input: Any = tuple(x.shape)
    else:
        shown_input = _shape_of(x)

    modules = dict(model.named_modules())
    calls: dict[str, int] = {}
    shapes: dict[str, Any] = {}
    act_bytes = [0]
    is_leaf = {name: not any(True for _ in m.children()) for name, m in modules.items()}

    def hook(name: str):
        def fn(module: nn.Module, args: Any, output: Any) -> None:
            calls[name] = calls.get(name, 0) + 1
            if name not in shapes:
                shapes[name] = _shape_of(output)
            if is_leaf[name]:
                act_bytes[0] += _nbytes(output)

        return fn

    handles = [m.register_forward_hook(hook(name)) for name, m in modules.items() if name]
    was_training = model.training
    model.eval()
    counter = FlopCounterMode(display=False)
    try:
        with torch.no_grad(), counter:
            out = _call(model, x)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)

    root = type(model).__name__
    flop_counts = {k: sum(v.values()) for k, v in counter.get_flop_counts().items()}
    layers = []
    for name, m in modules.items():
        own = list(m.parameters(recurse=False))
        if not name or not (is_leaf[name] or own) or isinstance(m, nn.Identity):
            continue
        layers.append(
            LayerInfo(
                name=name,
                type=type(m).__name__,
                depth=name.count("."),
                output_shape=shapes.get(name),
                params=sum(p.numel() for p in own),
                trainable=sum(p.numel() for p in own if p.requires_grad),
                flops=int(flop_counts.get(f"{root}.{name}", 0)),
                calls=calls.get(name, 0),
            )
        )

    params = {id(p): p for p in model.parameters()}.values()
    return ModelInfo(
        name=getattr(model, "model_name", root),
        family=getattr(model, "family", ""),
        description=description,
        input_shape=shown_input,
        output_shape=_shape_of(out),
        total_params=sum(p.numel() for p in params),
        trainable_params=sum(p.numel() for p in params if p.requires_grad),
        buffer_elements=sum(b.numel() for b in model.buffers()),
        param_bytes=sum(p.numel() * p.element_size() for p in params),
        flops=int(counter.get_total_flops()),
        activation_bytes=act_bytes[0],
        layers=layers,
        options=_options(getattr(model, "config", None)),
        batch_size=batch_size,
    )


def _scratch_info(model: Any, description: str, input_shape: tuple[int, ...] | None, batch_size: int) -> ModelInfo:
    """:class:`ModelInfo` of an ``archlab.scratch`` model: shapes by wrapping each leaf's forward,
    FLOPs counted analytically for Linear (2 B I O) and Conv2d (2 B C_in k_h k_w C_out H_out W_out)."""
    import numpy as np

    from archlab.scratch.autograd import Tensor, no_grad

    cfg = getattr(model, "config", None)
    if input_shape is None:
        if hasattr(cfg, "image_size"):
            input_shape = (cfg.in_channels, cfg.image_size, cfg.image_size)
        elif hasattr(cfg, "input_size"):
            input_shape = (16, cfg.input_size)  # (T, input_size): a 16-step sequence
        else:
            input_shape = (cfg.in_features,)
    x = Tensor(np.random.default_rng(0).standard_normal((batch_size, *input_shape)))
    modules = dict(model.named_modules())
    shapes: dict[str, Any] = {}
    flops: dict[str, int] = {}
    originals = {}
    for name, m in modules.items():
        if not name or any(True for _ in m.children()):
            continue

        def wrapped(*args: Any, _m: Any = m, _name: str = name, _f: Any = m.forward, **kw: Any) -> Any:
            out = _f(*args, **kw)
            first = out[0] if isinstance(out, tuple) else out
            shapes.setdefault(_name, tuple(first.shape))
            kind = type(_m).__name__
            if kind == "Linear":
                flops[_name] = flops.get(_name, 0) + 2 * int(np.prod(first.shape)) * _m.weight.shape[1]
            elif kind == "Conv2d":
                flops[_name] = flops.get(_name, 0) + 2 * int(np.prod(first.shape)) * int(np.prod(_m.weight.shape[1:]))
            return out

        originals[name] = m
        m.forward = wrapped
    model.eval()
    try:
        with no_grad():
            out = model(x)
    finally:
        for m in originals.values():
            del m.forward  # back to the class's forward
        model.train()
    layers = []
    for name, m in modules.items():
        own = [p for n, p in m.named_parameters() if "." not in n]
        if not name or not (name in originals or own):
            continue
        count = sum(int(np.prod(p.shape)) for p in own)
        layers.append(LayerInfo(name=name, type=type(m).__name__, depth=name.count("."), output_shape=shapes.get(name),
                                params=count, trainable=count, flops=flops.get(name, 0), calls=1))
    params = model.parameters()
    return ModelInfo(
        name=getattr(model, "model_name", type(model).__name__), family=getattr(model, "family", "scratch"),
        description=description, input_shape=tuple(x.shape), output_shape=tuple(out.shape),
        total_params=sum(int(np.prod(p.shape)) for p in params), trainable_params=sum(int(np.prod(p.shape)) for p in params),
        buffer_elements=sum(int(b.size) for _, b in model.named_buffers()),
        param_bytes=sum(int(p.data.nbytes) for p in params), flops=sum(flops.values()), activation_bytes=0,
        layers=layers, options=_options(cfg), batch_size=batch_size,
    )


# ----------------------------------------------------------------------------------------------
# helpers


def _options(cfg: Any) -> list[dict[str, Any]]:
    if cfg is None or not is_dataclass(cfg):
        return []
    import typing

    from archlab.config import _describe

    hints = typing.get_type_hints(type(cfg))
    return [
        {"name": f.name, "value": getattr(cfg, f.name), "type": _describe(hints[f.name])}
        for f in fields(cfg)
        if f.init
    ]


def _shape_of(x: Any) -> Any:
    if isinstance(x, torch.Tensor):
        return tuple(x.shape)
    if isinstance(x, (list, tuple)):
        return [_shape_of(v) for v in x]
    if isinstance(x, dict):
        return {k: _shape_of(v) for k, v in x.items()}
    return None


def _nbytes(x: Any) -> int:
    if isinstance(x, torch.Tensor):
        return x.numel() * x.element_size()
    if isinstance(x, (list, tuple)):
        return sum(_nbytes(v) for v in x)
    if isinstance(x, dict):
        return sum(_nbytes(v) for v in x.values())
    return 0


def _fmt_shape(shape: Any) -> str:
    if shape is None:
        return "-"
    if isinstance(shape, tuple):
        return "(" + ", ".join(str(s) for s in shape) + ")"
    if isinstance(shape, list):
        return "[" + ", ".join(_fmt_shape(s) for s in shape) + "]"
    if isinstance(shape, dict):
        return "{" + ", ".join(f"{k}: {_fmt_shape(v)}" for k, v in shape.items()) + "}"
    return str(shape)


def _fmt_count(n: float) -> str:
    for unit, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= scale:
            return f"{n / scale:.2f} {unit}"
    return f"{int(n)}"


def _fmt_bytes(n: float) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{int(n)} B"


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    if isinstance(x, (str, int, float, bool)) or x is None:
        return x
    return str(x)
