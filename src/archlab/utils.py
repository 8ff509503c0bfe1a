"""Small helpers shared across archlab: atomic file writes, hashing, seeding, folders.

Nothing here imports torch at module level, so the CLI can use it before deciding what to load.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = [
    "atomic_write",
    "atomic_write_text",
    "atomic_write_json",
    "file_md5",
    "seed_everything",
    "data_root",
    "ArchlabError",
]


class ArchlabError(RuntimeError):
    """An error meant for the user: the message says what is wrong and what to do.

    The CLI prints it without a stack trace and exits with status 2.
    """


def atomic_write(path: str | Path, write: Callable[[str], None]) -> Path:
    """Write ``path`` through ``write(tmp_path)`` on a temporary file, then rename it into place.

    A crash, Ctrl-C or full disk leaves the old file untouched and no half-written one behind.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, default=_json_default) + "\n")


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "item"):
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def file_md5(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed Python, NumPy and torch; with ``deterministic`` also ask torch for deterministic kernels."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False


def data_root(root: str | Path | None = None) -> Path:
    """The data folder: ``root`` if given, else ``$ARCHLAB_DATA``, else ``~/.cache/archlab/data``."""
    if root:
        return Path(root).expanduser()
    env = os.environ.get("ARCHLAB_DATA")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "archlab" / "data"


def find_data_root(folder: str, root: str | Path | None = None) -> str | None:
    """The first data folder that holds ``folder`` (``"sst2"``, ``"fra_eng"``...): ``root``,
    ``$ARCHLAB_DATA``, ``$ARCHLAB_SHARED_DATA``, ``../shared/data`` from the working directory, then
    the ``shared/data`` beside the repository; None when none has it. Benchmarks and experiments
    that use real data look for it this way."""
    beside = Path(__file__).resolve().parents[2].parent / "shared" / "data"
    for candidate in (root, os.environ.get("ARCHLAB_DATA"), os.environ.get("ARCHLAB_SHARED_DATA"),
                      "../shared/data", beside):
        if candidate and (Path(candidate).expanduser() / folder).is_dir():
            return str(Path(candidate).expanduser())
    return None
