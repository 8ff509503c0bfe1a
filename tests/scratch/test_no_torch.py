"""The hard rule of archlab.scratch: NumPy only, torch is never imported (not even lazily)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import archlab.scratch

SCRATCH_DIR = Path(archlab.scratch.__file__).parent

_PROBE = r"""
import importlib, json, pkgutil, sys

class NoTorch:
    # Fail any attempt to import torch, so an import hidden in a try/except is caught too.
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("archlab.scratch must not import torch")
        return None

sys.meta_path.insert(0, NoTorch())
import archlab.scratch
names = ["archlab.scratch"]
for info in pkgutil.walk_packages(archlab.scratch.__path__, "archlab.scratch."):
    importlib.import_module(info.name)
    names.append(info.name)
print(json.dumps({"modules": names, "torch": sorted(m for m in sys.modules if m.split(".")[0] == "torch")}))
"""


def test_importing_scratch_and_all_submodules_leaves_torch_out() -> None:
    result = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["torch"] == []
    for name in ("autograd", "functional", "init", "layers", "gradcheck", "graph"):
        assert f"archlab.scratch.{name}" in report["modules"]


def _torch_imports(path: Path) -> list[str]:
    """Every import of torch in a source file, including ones inside functions."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [f"line {node.lineno}: import {a.name}" for a in node.names if a.name.split(".")[0] == "torch"]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "torch":
            found.append(f"line {node.lineno}: from {node.module} import ...")
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            fname = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            arg = node.args[0].value
            if fname in ("import_module", "__import__") and isinstance(arg, str) and arg.split(".")[0] == "torch":
                found.append(f"line {node.lineno}: {fname}({arg!r})")
    return found


def test_no_source_file_imports_torch_even_lazily() -> None:
    files = sorted(SCRATCH_DIR.rglob("*.py"))
    assert len(files) >= 7
    offenders = {str(f.relative_to(SCRATCH_DIR)): hits for f in files if (hits := _torch_imports(f))}
    assert offenders == {}


def test_the_static_check_would_catch_an_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    import torch.nn as nn\n    from torch import optim\n    return __import__('torch')\n")
    assert len(_torch_imports(bad)) == 3
