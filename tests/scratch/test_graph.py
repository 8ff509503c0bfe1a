"""archlab.scratch.graph: DOT export of any expression, and rendering with or without Graphviz."""

from __future__ import annotations

import builtins
import os
import re
import stat
import sys
from pathlib import Path

import numpy as np
import pytest

from archlab import scratch as sc
from archlab.scratch import GraphvizNotFoundError, Tensor, render, to_dot
from archlab.scratch import functional as F
from archlab.scratch import graph as graph_module


def _loss() -> tuple[Tensor, sc.Module]:
    model = sc.Sequential(sc.Linear(4, 3, rng=0), sc.ReLU(), sc.Linear(3, 2, rng=1))
    x = Tensor(np.ones((5, 4)), name="x")
    return F.cross_entropy(model(x), np.array([0, 1, 1, 0, 1])), model


def _check_dot_syntax(dot: str) -> None:
    """Balanced braces, one statement per line, every edge between declared nodes."""
    assert dot.startswith("digraph autograd {") and dot.rstrip().endswith("}")
    assert dot.count("{") == dot.count("}") == 1
    body = dot.strip().splitlines()[1:-1]
    assert all(line.rstrip().endswith(";") for line in body)
    declared = set(re.findall(r"^\s*(\w+) \[label=", dot, flags=re.M))
    for src, dst in re.findall(r"^\s*(\w+) -> (\w+);", dot, flags=re.M):
        assert src in declared and dst in declared


def test_dot_has_ops_tensors_and_edges() -> None:
    loss, model = _loss()
    dot = to_dot(loss, params=model.named_parameters())
    _check_dot_syntax(dot)
    for op in ("cross_entropy", "linear", "relu"):
        assert f'label="{op}", shape=box' in dot
    for name in ("0.weight", "0.bias", "2.weight", "x\\n(5, 4)"):
        assert name in dot
    assert dot.count("shape=box") == 4  # linear, relu, linear, cross_entropy
    assert dot.count("shape=ellipse") == 9  # 4 parameters, x, 2 hidden, logits, loss
    assert "fillcolor=lightblue" in dot and "fillcolor=darkolivegreen1" in dot


def test_dot_of_any_expression_and_options() -> None:
    a = Tensor(np.ones((2, 3)), requires_grad=True, name='a "quoted"')
    b = Tensor(np.ones(3, dtype=np.float32))
    y = ((a * b).sum(axis=1) ** 2).mean()
    dot = to_dot(y, rankdir="LR")
    _check_dot_syntax(dot)
    assert "rankdir=LR" in dot and 'a \\"quoted\\"' in dot and "float32" in dot
    for op in ("mul", "sum", "pow2", "mean"):
        assert f'"{op}"' in dot
    assert "(2, 3)" not in to_dot(y, show_shapes=False)
    shared = a * 2
    dot = to_dot(shared + shared)  # a node used twice appears once, with two edges
    assert dot.count(f"t{id(shared)} [") == 1 and dot.count(f"t{id(shared)} -> ") == 2
    assert "shape=box" not in to_dot(Tensor(np.ones(2)))  # a leaf alone


def test_render_without_graphviz_writes_dot_and_explains(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(graph_module.shutil, "which", lambda name: None)
    real_import = builtins.__import__

    def no_graphviz(name, *args, **kwargs):
        if name == "graphviz":
            raise ImportError("No module named 'graphviz'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_graphviz)
    loss, _ = _loss()
    with pytest.raises(GraphvizNotFoundError) as info:
        render(loss, tmp_path / "sub" / "graph.png")
    message = str(info.value)
    assert "not installed" in message and "dot -Tpng" in message and "graph.dot" in message
    assert info.value.dot_path == tmp_path / "sub" / "graph.dot"
    assert info.value.dot_path.read_text() == to_dot(loss)


@pytest.mark.skipif(sys.platform == "win32", reason="uses a shell script as a fake `dot`")
def test_render_with_the_dot_program(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "bin" / "dot"
    fake.parent.mkdir()
    # A stand-in for Graphviz: `dot -Tsvg in.dot -o out.svg` copies its input to the output.
    fake.write_text('#!/bin/sh\ncp "$2" "$4"\n')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    loss, _ = _loss()
    out = render(loss, tmp_path / "g", format="svg")
    assert out == tmp_path / "g.svg" and out.read_text().startswith("digraph autograd")
    assert render(to_dot(loss), tmp_path / "from_text.svg", format="svg").exists()
