"""Receptive fields of convolutional networks: analytic (traced through the real forward) and empirical.

References:
    A. Araujo, W. Norris, J. Sim, "Computing receptive fields of convolutional neural networks",
    Distill 4(11), 2019, https://distill.pub/2019/computing-receptive-fields/ (the recurrences below).
    W. Luo, Y. Li, R. Urtasun, R. Zemel, "Understanding the effective receptive field in deep
    convolutional neural networks", NeurIPS 2016, https://arxiv.org/abs/1701.04128 (fields measured
    by the gradient of one output unit with respect to the input, as :func:`empirical_receptive_field`).

The math, per spatial axis. Layer l has kernel k_l, stride s_l, padding p_l and dilation d_l; its
effective kernel is k'_l = d_l (k_l - 1) + 1. With j_0 = 1, r_0 = 1 and c_0 = 0 (the centre of input
pixel 0)::

    j_l = j_{l-1} s_l                              jump: input pixels between two adjacent units
    r_l = r_{l-1} + (k'_l - 1) j_{l-1}             receptive field size, in input pixels
    c_l = c_{l-1} + ((k'_l - 1) / 2 - p_l) j_{l-1}   centre of unit 0's field, in input pixels

so r_L = 1 + sum_l (k'_l - 1) prod_{i<l} s_i, and unit u of layer l sees the input pixels
``c_l + u j_l +- (r_l - 1) / 2`` (clipped to the image; below 0 is padding).

How the layers are found. :func:`receptive_fields` runs one forward pass of a dummy input under a
:class:`torch.overrides.TorchFunctionMode` that sees every tensor operation, and carries a field
(j, r, c) with every tensor: ``conv2d``, ``max_pool2d``/``avg_pool2d``, adaptive pooling, ``pad``
and ``interpolate`` change it by the recurrences above (their kernel, stride, padding and dilation
are read from the call's arguments, so custom modules calling ``F.conv2d`` count too); every other
operation passes it on. Each such operation becomes a row, named after the innermost module that
ran it (forward hooks keep the stack of running modules). The table therefore follows the real
forward, in call order, whatever the registration order.

Branches (ResNet, Inception, DenseNet). Where tensors meet (``a + b``, ``torch.cat``...), the field
of the result is the union of the inputs' fields: for paths centred on the same pixel (every
"same"-padded network) that is the maximum over the paths, the Distill rule. Each row is thus the
field along the largest path into that layer. With skip connections the figure is an upper bound of
what a unit really uses: the short paths carry much of the gradient, and the *effective* field
(Luo et al.) is far smaller than the theoretical one. Inputs of a merge that are broadcast over the
spatial axes (a 1x1 squeeze-and-excitation gate) are left out: such global context would make every
field the whole image.

Deviations from the paper:
    - The paper computes fields on a static graph; here they are traced on one concrete input, so
      the table holds for that input size (the output sizes are the traced ones).
    - ``interpolate`` (resizing) and adaptive pooling whose input is not a multiple of its output
      are approximated (fractional jumps; bilinear taps counted as one extra input pixel); rows
      so computed say "approximate".
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

__all__ = [
    "EmpiricalField",
    "FieldRow",
    "ReceptiveFieldTable",
    "empirical_receptive_field",
    "receptive_fields",
]

Pair = tuple[float, float]


@dataclass(frozen=True)
class _Field:
    """The field of every unit of a tensor, per axis (H, W): jump, size and centre of unit 0."""

    jump: Pair = (1.0, 1.0)
    size: Pair = (1.0, 1.0)
    center: Pair = (0.0, 0.0)
    approximate: bool = False
    pooled: bool = False  # derived from a global (1x1) pooling only: no longer a feature map


@dataclass
class FieldRow:
    """One spatial operation of the forward pass and the receptive field of its output units.

    Every geometric attribute is an (H, W) pair.

    Attributes:
        name: the innermost module that ran the operation (``"layer4.1.conv2"``); ``#2``, ``#3``
            for its further calls.
        op: ``conv2d``, ``max_pool2d``, ``avg_pool2d``, ``adaptive_avg_pool2d``, ``pad``,
            ``interpolate``...
        kernel: kernel size (1 for pad and resize).
        stride: stride (its input pixels per output unit).
        padding: padding before the first unit (left/top).
        dilation: dilation.
        jump: input pixels between adjacent output units (cumulative stride).
        size: receptive field size in input pixels.
        center: centre of output unit (0, 0)'s field, in input pixel coordinates (pixel i's
            centre is i); unit u's centre is ``center + u * jump``.
        output_size: (H, W) of the output.
        note: "approximate" when the recurrences only approximate the operation.
    """

    name: str
    op: str
    kernel: Pair
    stride: Pair
    padding: Pair
    dilation: Pair
    jump: Pair
    size: Pair
    center: Pair
    output_size: tuple[int, int]
    note: str = ""

    @property
    def rf(self) -> float:
        """The receptive field's larger side, in input pixels (an int for integer geometry)."""
        return _num(max(self.size))

    @property
    def start(self) -> Pair:
        """First input pixel (top, left) of unit (0, 0)'s field; negative values lie in the padding."""
        return (self.center[0] - (self.size[0] - 1) / 2, self.center[1] - (self.size[1] - 1) / 2)

    def to_dict(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in self.__dataclass_fields__}
        out["rf"] = self.rf
        out["start"] = self.start
        return out


class ReceptiveFieldTable(list):
    """The rows (:class:`FieldRow`) of :func:`receptive_fields`, in call order, plus module fields.

    Attributes:
        input_shape: the traced sample's shape (C, H, W).
        modules: ``{module name: FieldRow}``: the field of every module's output (op = the
            module's class), e.g. ``"layer4"`` of a ResNet.
        notes: remarks on the trace (merged paths, approximations, operations not modelled).
        feature_map: the last (B, C, H, W) tensor of the forward pass that is not a global
            pooling's output, as a row named after the module that made it: the final feature
            map, whose field is "the receptive field of the network" (435 px for ResNet-18).
    """

    def __init__(
        self,
        rows: list[FieldRow],
        input_shape: tuple[int, ...],
        modules: dict[str, FieldRow],
        notes: list[str],
        feature_map: FieldRow | None = None,
    ):
        super().__init__(rows)
        self.input_shape = tuple(input_shape)
        self.modules = modules
        self.notes = notes
        self.feature_map = feature_map

    def row(self, name: str) -> FieldRow:
        """The row of operation ``name``, or the field of module ``name``'s output as a row."""
        for r in self:
            if r.name == name:
                return r
        if name in self.modules:
            return self.modules[name]
        raise KeyError(f"no layer {name!r} in the receptive field table; rows: {[r.name for r in self][:20]}")

    @property
    def last_conv(self) -> FieldRow | None:
        """The last ``conv2d`` row (its field is what the final feature map sees)."""
        convs = [r for r in self if r.op == "conv2d"]
        return convs[-1] if convs else None

    def to_dicts(self) -> list[dict[str, Any]]:
        return [r.to_dict() for r in self]

    def to_text(self, max_rows: int | None = 200) -> str:
        """A readable table with a summary line, as ``archlab info MODEL --receptive-field`` prints."""
        header = ("Layer", "Op", "Kernel", "Stride", "Pad", "Dil", "Jump", "RF", "Center", "Output")
        rows = [
            (
                r.name,
                r.op + (" ~" if r.note else ""),
                _fmt_pair(r.kernel),
                _fmt_pair(r.stride),
                _fmt_pair(r.padding),
                _fmt_pair(r.dilation),
                _fmt_pair(r.jump),
                _fmt_pair(r.size),
                _fmt_pair(r.center),
                f"{r.output_size[0]}x{r.output_size[1]}",
            )
            for r in self
        ]
        hidden = 0
        if max_rows is not None and len(rows) > max_rows:
            hidden, rows = len(rows) - max_rows, rows[:max_rows]
        widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]

        def fmt(cells: tuple[str, ...]) -> str:
            return "  ".join(
                c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))
            ).rstrip()

        shape = "x".join(str(s) for s in self.input_shape)
        lines = [f"Receptive fields on a {shape} input (sizes in input pixels; Center: unit (0, 0))", ""]
        lines += [fmt(header), "-" * len(fmt(header)), *(fmt(r) for r in rows)]
        if hidden:
            lines.append(f"... {hidden} more rows (to_text(max_rows=None) shows all)")
        lines.append("-" * len(fmt(header)))
        last = self.feature_map
        if last is not None:
            lines.append(
                f"Final feature map ({last.name!r}, {last.output_size[0]}x{last.output_size[1]}): receptive "
                f"field {_fmt_pair(last.size)} px, jump {_fmt_pair(last.jump)} px"
            )
        if any(r.note for r in self):
            lines.append("~ approximate (resize or uneven adaptive pooling)")
        lines += self.notes
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_text()


# ----------------------------------------------------------------------------------------------
# the recurrences


def _apply(
    f: _Field, kernel: Pair, stride: Pair, padding: Pair, dilation: Pair, approximate: bool = False
) -> _Field:
    jump, size, center = [], [], []
    for a in range(2):
        k_eff = dilation[a] * (kernel[a] - 1) + 1
        jump.append(f.jump[a] * stride[a])
        size.append(f.size[a] + (k_eff - 1) * f.jump[a])
        center.append(f.center[a] + ((k_eff - 1) / 2 - padding[a]) * f.jump[a])
    return _Field(
        (jump[0], jump[1]), (size[0], size[1]), (center[0], center[1]), f.approximate or approximate, f.pooled
    )


def _union(fields: list[_Field]) -> _Field:
    """The union of several paths' fields of the same units: the max over paths when centred alike."""
    if len(fields) == 1:
        return fields[0]
    jump, size, center = [], [], []
    approximate = any(f.approximate for f in fields)
    for a in range(2):
        lo = min(f.center[a] - (f.size[a] - 1) / 2 for f in fields)
        hi = max(f.center[a] + (f.size[a] - 1) / 2 for f in fields)
        jumps = {f.jump[a] for f in fields}
        approximate = approximate or len(jumps) > 1  # e.g. a U-Net's upsampled path meets a skip
        jump.append(max(jumps))
        size.append(hi - lo + 1)
        center.append((lo + hi) / 2)
    pooled = all(f.pooled for f in fields)
    return _Field(tuple(jump), tuple(size), tuple(center), approximate, pooled)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------------------
# tracing

_CONV = {"conv2d"}
_POOL = {"max_pool2d", "max_pool2d_with_indices", "avg_pool2d"}
_ADAPTIVE = {"adaptive_avg_pool2d", "adaptive_max_pool2d", "adaptive_max_pool2d_with_indices"}
_RESIZE = {"interpolate", "upsample", "upsample_nearest", "upsample_bilinear"}
_NOT_MODELLED = {
    "conv_transpose2d", "conv1d", "conv3d", "unfold", "fold", "pixel_shuffle", "pixel_unshuffle",
    "grid_sample", "roll", "lp_pool2d", "fractional_max_pool2d",
}  # fmt: skip


def _pair(v: Any, default: Any = None) -> Pair:
    if v is None or (isinstance(v, (tuple, list)) and len(v) == 0):
        v = default
    if isinstance(v, (tuple, list)):
        return (float(v[0]), float(v[-1])) if len(v) in (1, 2) else (float(v[-2]), float(v[-1]))
    return (float(v), float(v))


def _arg(args: tuple, kwargs: dict, i: int, name: str, default: Any = None) -> Any:
    if name in kwargs:
        return kwargs[name]
    return args[i] if len(args) > i else default


def _tensors(obj: Any) -> list[torch.Tensor]:
    if isinstance(obj, torch.Tensor):
        return [obj]
    if isinstance(obj, (list, tuple)):
        return [t for o in obj for t in _tensors(o)]
    if isinstance(obj, dict):
        return [t for o in obj.values() for t in _tensors(o)]
    return []


class _Tracer(TorchFunctionMode):
    """Carries a :class:`_Field` with every tensor derived from the input; records spatial ops."""

    def __init__(self, root: str) -> None:
        super().__init__()
        self.root = root
        self.fields: dict[int, _Field] = {}
        self.keep: list[torch.Tensor] = []  # so no traced tensor's id is reused during the pass
        self.stack: list[str] = []
        self.rows: list[FieldRow] = []
        self.calls: Counter[str] = Counter()
        self.not_modelled: set[str] = set()
        self.merged = False
        self.feature_map: tuple[str, _Field, tuple[int, int]] | None = None

    def current(self) -> str:
        """The innermost running module's name (the model's class name at the top level)."""
        return self.stack[-1] if self.stack else self.root

    def mark(self, t: torch.Tensor, f: _Field) -> None:
        self.fields[id(t)] = f
        self.keep.append(t)

    def field_of(self, t: Any) -> _Field | None:
        return self.fields.get(id(t)) if isinstance(t, torch.Tensor) else None

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        outs = _tensors(out)
        if not outs:
            return out
        known = [(t, f) for t in _tensors((args, kwargs)) if (f := self.field_of(t)) is not None]
        if not known:
            return out
        name = getattr(func, "__name__", "")
        x = _arg(args, kwargs, 0, "input")
        f_in = self.field_of(x)
        y = outs[0]
        if (
            f_in is not None
            and y.dim() >= 3
            and x.dim() >= 3
            and (name in _CONV | _POOL | _ADAPTIVE | _RESIZE or name == "pad")
        ):
            f_out = self._spatial(name, args, kwargs, x, y, f_in)
        else:
            if name in _NOT_MODELLED:
                self.not_modelled.add(name)
            f_out = self._merge(known, y)
        for t in outs:
            self.mark(t, f_out)
        if y.dim() == 4 and not f_out.pooled:
            self.feature_map = (self.current(), f_out, (int(y.shape[-2]), int(y.shape[-1])))
        return out

    def _merge(self, known: list[tuple[torch.Tensor, _Field]], y: torch.Tensor) -> _Field:
        spatial = tuple(y.shape[-2:]) if y.dim() >= 2 else None
        aligned = [f for t, f in known if t.dim() >= 2 and tuple(t.shape[-2:]) == spatial]
        fields = list(dict.fromkeys(aligned or [f for _, f in known]))
        if len(fields) > 1:
            self.merged = True
        return _union(fields)

    def _spatial(
        self, name: str, args: tuple, kwargs: dict, x: torch.Tensor, y: torch.Tensor, f: _Field
    ) -> _Field:
        size_in = (int(x.shape[-2]), int(x.shape[-1]))
        size_out = (int(y.shape[-2]), int(y.shape[-1]))
        dilation: Pair = (1.0, 1.0)
        note = ""
        op = name.removesuffix("_with_indices")
        if name in _CONV:
            weight = _arg(args, kwargs, 1, "weight")
            kernel = (float(weight.shape[-2]), float(weight.shape[-1]))
            stride = _pair(_arg(args, kwargs, 3, "stride", 1), 1)
            dilation = _pair(_arg(args, kwargs, 5, "dilation", 1), 1)
            pad = _arg(args, kwargs, 4, "padding", 0)
            if pad == "valid":
                padding: Pair = (0.0, 0.0)
            elif pad == "same":
                # PyTorch pads (total // 2) before, the rest after
                padding = (
                    float(dilation[0] * (kernel[0] - 1) // 2),
                    float(dilation[1] * (kernel[1] - 1) // 2),
                )
            else:
                padding = _pair(pad, 0)
        elif name in _POOL:
            kernel = _pair(_arg(args, kwargs, 1, "kernel_size"))
            stride = _pair(_arg(args, kwargs, 2, "stride"), kernel)
            padding = _pair(_arg(args, kwargs, 3, "padding", 0), 0)
            if name != "avg_pool2d":
                dilation = _pair(_arg(args, kwargs, 4, "dilation", 1), 1)
        elif name in _ADAPTIVE:
            kernel_l, stride_l = [], []
            for i, o in zip(size_in, size_out):
                # PyTorch's windows: [floor(u i / o), ceil((u + 1) i / o)); even when o divides i.
                widths = [math.ceil((u + 1) * i / o) - math.floor(u * i / o) for u in range(o)]
                kernel_l.append(float(max(widths)))
                stride_l.append(i / o)
                if i % o:
                    note = "approximate"
            kernel, stride, padding = tuple(kernel_l), tuple(stride_l), (0.0, 0.0)  # type: ignore[assignment]
        elif name == "pad":
            pad = list(_arg(args, kwargs, 1, "pad"))
            pad += [0] * (4 - len(pad))
            kernel, stride, padding = (1.0, 1.0), (1.0, 1.0), (float(pad[2]), float(pad[0]))
        else:  # resize: output unit 0 reads input pixel 0 (nearest) or pixels floor(c), floor(c) + 1
            mode = _arg(args, kwargs, 3, "mode", "nearest")
            scale = tuple(i / o for i, o in zip(size_in, size_out))
            taps = 1.0 if "nearest" in str(mode) else 2.0
            kernel, stride = (taps, taps), scale  # type: ignore[assignment]
            # linear modes sample unit 0 at c = max(0, scale / 2 - 1/2); its taps centre on floor(c) + 1/2
            first = [0.0 if taps == 1 else float(math.floor(max(0.0, s / 2 - 0.5))) for s in scale]
            padding = (-first[0], -first[1])
            note = "approximate"
        f_out = _apply(f, kernel, stride, padding, dilation, approximate=bool(note))
        if name in _ADAPTIVE and size_out == (1, 1):
            f_out = dataclasses.replace(f_out, pooled=True)
        module = self.current()
        self.calls[module] += 1
        label = module if self.calls[module] == 1 else f"{module}#{self.calls[module]}"
        self.rows.append(_row(label, op, f_out, size_out, kernel, stride, padding, dilation))
        return f_out


def _row(
    name: str,
    op: str,
    f: _Field,
    output_size: tuple[int, int],
    kernel: Pair = (1.0, 1.0),
    stride: Pair = (1.0, 1.0),
    padding: Pair = (0.0, 0.0),
    dilation: Pair = (1.0, 1.0),
) -> FieldRow:
    return FieldRow(
        name=name,
        op=op,
        kernel=tuple(_num(v) for v in kernel),  # type: ignore[arg-type]
        stride=tuple(_num(v) for v in stride),  # type: ignore[arg-type]
        padding=tuple(_num(v) for v in padding),  # type: ignore[arg-type]
        dilation=tuple(_num(v) for v in dilation),  # type: ignore[arg-type]
        jump=tuple(_num(v) for v in f.jump),  # type: ignore[arg-type]
        size=tuple(_num(v) for v in f.size),  # type: ignore[arg-type]
        center=tuple(_num(v) for v in f.center),  # type: ignore[arg-type]
        output_size=output_size,
        note="approximate" if f.approximate else "",
    )


def _num(v: float) -> float:
    """An int-valued float as int (for printing and comparisons), else rounded to 4 decimals."""
    v = float(v)
    return int(v) if v.is_integer() else round(v, 4)


def _fmt_pair(p: Any) -> str:
    a, b = (_num(v) for v in p)
    return str(a) if a == b else f"{a}x{b}"


def _build(model: str | nn.Module, data_info: Any, overrides: dict[str, Any]) -> nn.Module:
    if isinstance(model, str):
        from archlab.registry import create_model

        return create_model(model, data_info, **overrides)
    if overrides:
        raise TypeError(f"options {sorted(overrides)} only apply to a model name")
    return model


def _input_shape(model: nn.Module, input_shape: Any, data_info: Any) -> tuple[int, ...]:
    if input_shape is None and data_info is not None and getattr(data_info, "input_shape", None):
        input_shape = data_info.input_shape
    if input_shape is None:
        from archlab.inspect import default_input_shape

        input_shape = default_input_shape(model)
    shape = tuple(int(s) for s in input_shape)
    if len(shape) != 3:
        raise ValueError(f"receptive fields need an image input (C, H, W), got input shape {shape}")
    return shape


def _device_dtype(model: nn.Module) -> tuple[torch.device, torch.dtype]:
    p = next(model.parameters(), None)
    if p is None:
        return torch.device("cpu"), torch.float32
    return p.device, p.dtype if p.is_floating_point() else torch.float32


def receptive_fields(
    model: str | nn.Module,
    input_shape: tuple[int, ...] | None = None,
    data_info: Any = None,
    **overrides: Any,
) -> ReceptiveFieldTable:
    """The receptive field of every convolution and pooling of ``model``, traced on one input.

    Args:
        model: a module, or a registered model name (built with ``create_model``).
        input_shape: one sample's shape (C, H, W); default ``data_info.input_shape`` or the
            model's config (``in_channels``, ``image_size``).
        data_info: a ``DatasetInfo`` to size a named model for.
        **overrides: model options for a named model.

    Returns:
        a :class:`ReceptiveFieldTable` (a list of :class:`FieldRow`, in call order);
        ``table.to_text()`` prints it, ``table.row("layer4")`` gives a module's output field.

    The model runs once in eval mode without gradients (batch 1, fixed random input); its mode
    is restored and every hook removed afterwards.
    """
    net = _build(model, data_info, overrides)
    shape = _input_shape(net, input_shape, data_info)
    device, dtype = _device_dtype(net)
    x = torch.randn((1, *shape), generator=torch.Generator().manual_seed(0)).to(device=device, dtype=dtype)
    tracer = _Tracer(type(net).__name__)
    module_fields: dict[str, FieldRow] = {}

    def pre(name: str):
        def fn(_m: nn.Module, _args: Any) -> None:
            tracer.stack.append(name)

        return fn

    def post(name: str):
        def fn(_m: nn.Module, _args: Any, out: Any) -> None:
            if tracer.stack and tracer.stack[-1] == name:
                tracer.stack.pop()
            outs = _tensors(out)
            f = tracer.field_of(outs[0]) if outs else None
            if f is not None and outs[0].dim() >= 3 and name:
                size = (int(outs[0].shape[-2]), int(outs[0].shape[-1]))
                module_fields[name] = _row(name, type(_m).__name__, f, size)

        return fn

    modules = [(n, m) for n, m in net.named_modules() if n]
    handles = [m.register_forward_pre_hook(pre(n)) for n, m in modules]
    handles += [m.register_forward_hook(post(n)) for n, m in modules]
    modes = {m: m.training for m in net.modules()}
    try:
        net.eval()
        with torch.no_grad(), tracer:
            tracer.mark(x, _Field())
            net(x)
    finally:
        for h in handles:
            h.remove()
        for m, mode in modes.items():
            m.training = mode
    notes = []
    if tracer.merged:
        notes.append(
            "Paths meet (skip connections or parallel branches): a field after a merge is the union of "
            "the paths' fields (their maximum when centred alike), an upper bound of what the units use."
        )
    if tracer.not_modelled:
        notes.append(
            "Not modelled (the fields after them treat them as identity): "
            f"{', '.join(sorted(tracer.not_modelled))}."
        )
    final = None
    if tracer.feature_map is not None:
        name, f, size = tracer.feature_map
        final = _row(name, "feature map", f, size)
    return ReceptiveFieldTable(tracer.rows, shape, module_fields, notes, final)


# ----------------------------------------------------------------------------------------------
# empirical


@dataclass
class EmpiricalField:
    """The input pixels that reach one output unit of a layer (nonzero gradient).

    Attributes:
        layer: the module whose output was probed.
        unit: (row, column) of the probed unit in that output (its centre unit by default).
        mask: (H, W) boolean array, True where the unit's gradient is nonzero.
        box: (top, left, bottom, right) of the mask, inclusive (all -1 for an empty mask).
    """

    layer: str
    unit: tuple[int, int]
    mask: np.ndarray = field(repr=False)
    box: tuple[int, int, int, int]

    @property
    def size(self) -> tuple[int, int]:
        """(height, width) of the box: the field's size, clipped to the image."""
        top, left, bottom, right = self.box
        return (bottom - top + 1, right - left + 1) if top >= 0 else (0, 0)


class _Stop(Exception):
    pass


class _AvgForMax(TorchFunctionMode):
    """Max pooling routes the gradient to one input per window; average pooling reaches them all."""

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        out = None
        if name in ("max_pool2d", "max_pool2d_with_indices"):
            x, k = _arg(args, kwargs, 0, "input"), _arg(args, kwargs, 1, "kernel_size")
            stride = _arg(args, kwargs, 2, "stride") or None
            padding = _arg(args, kwargs, 3, "padding", 0)
            ceil = bool(_arg(args, kwargs, 5, "ceil_mode", False))
            if _pair(_arg(args, kwargs, 4, "dilation", 1), 1) == (1.0, 1.0):  # avg_pool2d has no dilation
                out = F.avg_pool2d(x, k, stride, padding, ceil, count_include_pad=False)
            indices = _arg(args, kwargs, 6, "return_indices", False)
        elif name in ("adaptive_max_pool2d", "adaptive_max_pool2d_with_indices"):
            out = F.adaptive_avg_pool2d(_arg(args, kwargs, 0, "input"), _arg(args, kwargs, 1, "output_size"))
            indices = _arg(args, kwargs, 2, "return_indices", False)
        if out is None:
            return func(*args, **kwargs)
        if indices or name.endswith("_with_indices"):
            return out, torch.zeros_like(out, dtype=torch.long)
        return out


@torch.no_grad()
def _positive_weights_(net: nn.Module) -> None:
    """Every weight a positive average (1 / fan-in), biases 0, norms at identity: nothing cancels."""
    for m in net.modules():
        for pname, p in m.named_parameters(recurse=False):
            if p.dim() >= 2:
                p.fill_(1.0 / p[0].numel())
            elif "bias" in pname or "beta" in pname:
                p.zero_()
            else:
                p.fill_(1.0)
        if isinstance(m, nn.modules.batchnorm._NormBase) and m.running_mean is not None:
            m.running_mean.zero_()
            m.running_var.fill_(1.0)


def empirical_receptive_field(
    model: nn.Module,
    input_shape: tuple[int, ...],
    layer: str,
    *,
    unit: tuple[int, int] | None = None,
) -> EmpiricalField:
    """The input pixels with a nonzero gradient for one unit of ``layer``'s output (Luo et al. 2016).

    A deep copy of the model is given positive constant weights (1 / fan-in, biases 0, batch norm
    in eval mode at identity) and runs in float64 on an input of ones, with max pooling replaced
    by average pooling of the same geometry, so no contribution cancels or is routed away: the
    nonzero pixels are exactly the theoretical receptive field (clipped to the image). The
    original model is not touched.

    Args:
        model: the network.
        input_shape: one sample's shape (C, H, W).
        layer: dotted name of the module whose output is probed (its first call).
        unit: (row, column) in that output; default the centre (H' // 2, W' // 2).

    Returns:
        an :class:`EmpiricalField`.
    """
    named = dict(model.named_modules())
    if layer not in named:
        raise ValueError(f"no module named {layer!r}; modules: {[n for n in named if n][:30]}")
    net = copy.deepcopy(model).to(dtype=torch.float64)
    _positive_weights_(net)
    net.eval()
    device = next(net.parameters(), torch.empty(0)).device
    x = torch.ones((1, *input_shape), dtype=torch.float64, device=device, requires_grad=True)
    captured: list[torch.Tensor] = []

    def hook(_m: nn.Module, _args: Any, out: Any) -> None:
        captured.append(_tensors(out)[0])
        raise _Stop  # the rest of the network is not needed

    handle = dict(net.named_modules())[layer].register_forward_hook(hook)
    try:
        with torch.enable_grad(), _AvgForMax():
            net(x)
    except _Stop:
        pass
    finally:
        handle.remove()
    if not captured:
        raise ValueError(f"module {layer!r} did not run in the forward pass")
    out = captured[0]
    if out.dim() != 4:
        raise ValueError(
            f"{layer!r} outputs shape {tuple(out.shape)}; a receptive field needs a (B, C, H, W) map"
        )
    h, w = out.shape[-2:]
    i, j = unit if unit is not None else (h // 2, w // 2)
    (grad,) = torch.autograd.grad(out[0, :, i, j].sum(), x)
    mask = (grad[0].abs().sum(0) > 0).cpu().numpy()
    rows, cols = np.nonzero(mask)
    box = (
        (int(rows.min()), int(cols.min()), int(rows.max()), int(cols.max()))
        if len(rows)
        else (-1, -1, -1, -1)
    )
    return EmpiricalField(layer, (int(i), int(j)), mask, box)
