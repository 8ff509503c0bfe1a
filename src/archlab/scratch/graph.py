"""Draw the computational graph behind a tensor, as Graphviz DOT.

Every op result remembers its parents and the op's name (:func:`~archlab.scratch.autograd.record_op`),
so any expression can be drawn: tensors are ellipses (name, shape), ops are boxes, and arrows
run from inputs through ops to results, the direction of the forward pass (``backward`` walks
them in reverse). Parameters are blue, the output green, inputs that need no gradient grey.

    loss = F.cross_entropy(model(x), y)
    print(to_dot(loss, params=model.named_parameters()))
    render(loss, "runs/graph", format="svg")   # needs Graphviz; else writes runs/graph.dot

Graphviz is optional: :func:`to_dot` is plain text, and :func:`render` uses the ``graphviz``
Python package or the ``dot`` program when one is installed.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path

from archlab.scratch.autograd import Tensor

__all__ = ["GraphvizNotFoundError", "render", "to_dot"]

_PARAM_COLOR = "lightblue"
_OUTPUT_COLOR = "darkolivegreen1"
_CONST_COLOR = "gray90"
_OP_COLOR = "lightyellow"


class GraphvizNotFoundError(RuntimeError):
    """Graphviz could not be found to render a graph; ``.dot_path`` is the DOT file written instead."""

    def __init__(self, message: str, dot_path: Path) -> None:
        super().__init__(message)
        self.dot_path = dot_path


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _nodes(root: Tensor) -> list[Tensor]:
    """Every tensor the root depends on (itself included), root first, each once."""
    seen: set[int] = set()
    order: list[Tensor] = []
    stack = [root]
    while stack:
        t = stack.pop()
        if id(t) in seen:
            continue
        seen.add(id(t))
        order.append(t)
        stack.extend(reversed(t.parents))
    return order


def to_dot(
    tensor: Tensor,
    *,
    show_shapes: bool = True,
    params: Mapping[str, Tensor] | Iterable[tuple[str, Tensor]] | None = None,
    rankdir: str = "TB",
) -> str:
    """Graphviz DOT source of the graph that computed ``tensor``.

    Args:
        tensor: the result of an expression (e.g. a loss).
        show_shapes: add shape (and a non-float64 dtype) to the tensor labels.
        params: ``name -> tensor`` (e.g. ``model.named_parameters()``) to label parameters by
            their dotted names; other tensors show their ``.name`` if set.
        rankdir: Graphviz layout direction, "TB" (top to bottom) or "LR".

    Returns:
        The DOT text: ``digraph autograd { ... }``.
    """
    names = {}
    if params is not None:
        items = params.items() if isinstance(params, Mapping) else params
        names = {id(t): n for n, t in items}
    lines = [
        "digraph autograd {",
        f"  graph [rankdir={rankdir}];",
        '  node [fontname="Helvetica", fontsize=10];',
    ]
    for t in _nodes(tensor):
        label_parts = [names.get(id(t)) or t.name or ""]
        if show_shapes:
            label_parts.append(str(tuple(t.shape)) + ("" if t.dtype == "float64" else f" {t.dtype}"))
        label = "\n".join(p for p in label_parts if p) or " "
        if t is tensor:
            color = _OUTPUT_COLOR
        elif t.is_leaf and t.requires_grad:
            color = _PARAM_COLOR
        elif t.is_leaf:
            color = _CONST_COLOR
        else:
            color = "white"
        lines.append(f"  t{id(t)} [label={_quote(label)}, shape=ellipse, style=filled, fillcolor={color}];")
        if t.parents:
            lines.append(f"  op{id(t)} [label={_quote(t.op)}, shape=box, style=filled, fillcolor={_OP_COLOR}];")
            lines.extend(f"  t{id(p)} -> op{id(t)};" for p in t.parents)
            lines.append(f"  op{id(t)} -> t{id(t)};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def render(tensor: Tensor | str, path: str | Path, format: str = "png", **dot_options: object) -> Path:  # noqa: A002
    """Write the graph of ``tensor`` (or DOT text) to ``path`` + ``.dot`` and render it.

    Args:
        tensor: the tensor to draw, or DOT source from :func:`to_dot`.
        path: output file; its suffix is replaced by ``.dot`` and ``.<format>``.
        format: Graphviz output format: png, svg, pdf...
        **dot_options: passed to :func:`to_dot`.

    Returns:
        The rendered file.

    Raises:
        GraphvizNotFoundError: if neither the ``graphviz`` package nor the ``dot`` program is
            available (the ``.dot`` file is still written; the message says how to view it).
    """
    source = tensor if isinstance(tensor, str) else to_dot(tensor, **dot_options)  # type: ignore[arg-type]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    dot_path = path.with_suffix(".dot")
    out_path = path.with_suffix(f".{format}")
    dot_path.write_text(source)

    dot_exe = shutil.which("dot")
    if dot_exe is not None:
        result = subprocess.run([dot_exe, f"-T{format}", str(dot_path), "-o", str(out_path)], capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"dot failed to render {dot_path} as {format}: {result.stderr.strip()}")
        return out_path
    try:
        import graphviz  # optional; it needs the dot program as well, but may know where it is
    except ImportError:
        graphviz = None
    if graphviz is not None:
        try:
            graphviz.Source(source).render(outfile=str(out_path), format=format, cleanup=True)
            return out_path
        except Exception as err:  # graphviz.ExecutableNotFound and friends
            reason = f"the graphviz package could not run Graphviz ({err})"
    else:
        reason = "Graphviz is not installed (no `dot` program on PATH and no `graphviz` Python package)"
    raise GraphvizNotFoundError(
        f"cannot render {out_path}: {reason}. The graph was written to {dot_path}; install Graphviz "
        f"(apt install graphviz, brew install graphviz or conda install graphviz) and run "
        f"`dot -T{format} {dot_path} -o {out_path}`, or paste the file into an online viewer such as "
        "https://dreampuf.github.io/GraphvizOnline",
        dot_path,
    )
