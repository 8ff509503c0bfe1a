"""Datasets: embedded and generated (offline), downloadable (checksummed cache), transforms.

The one entry point is :func:`load_dataset`::

    from archlab.data import load_dataset
    bundle = load_dataset("mnist", val_split=0.1)      # DataBundle: info, train, val, test
    bundle.info.input_shape, len(bundle.train)         # (1, 28, 28), 54000

Data lives under the data root (``root``, else ``$ARCHLAB_DATA``, else ``~/.cache/archlab/data``);
a folder that already holds a dataset's canonical files is used as is. :func:`data_status`,
:func:`download_dataset` and :func:`verify_dataset` back ``archlab data status|download|verify``.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from archlab.data.base import ArraySplit, DataBundle, DatasetInfo, TensorLoader, split_off
from archlab.utils import ArchlabError, data_root

__all__ = [
    "DatasetInfo",
    "ArraySplit",
    "DataBundle",
    "TensorLoader",
    "split_off",
    "load_dataset",
    "dataset_options",
    "data_status",
    "download_dataset",
    "verify_dataset",
    "DataOptionError",
]


class DataOptionError(ArchlabError, TypeError):
    """An option a dataset loader does not take (or a bad value for ``val_split``)."""


def _entry(name: str):
    from archlab.registry import DATASETS

    return DATASETS.get(name)


def dataset_options(name: str) -> dict[str, Any]:
    """The options dataset ``name`` takes, with their defaults (``{"n_samples": 1000, ...}``)."""
    sig = inspect.signature(_entry(name).fn)
    return {
        p.name: p.default
        for p in sig.parameters.values()
        if p.name not in ("root", "download") and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
    }


def load_dataset(
    name: str,
    root: str | Path | None = None,
    *,
    val_split: float = 0.1,
    seed: int = 0,
    download: bool = True,
    **options: Any,
) -> DataBundle | Any:
    """Load a registered dataset (``archlab data list``) into memory.

    Args:
        name: registered name (``"mnist"``, ``"digits"``, ``"moons"``; ``-`` and ``_`` are alike).
        root: the data folder; default ``$ARCHLAB_DATA`` or ``~/.cache/archlab/data``.
        val_split: fraction of train held out as ``val`` (a fixed choice drawn from ``seed``)
            when the dataset has no validation split of its own; 0 leaves ``val`` None. Not
            used for graph datasets.
        seed: seed of that hold-out.
        download: fetch missing files; if False a missing file is an error saying how to get it.
        **options: the dataset's own options (``n_samples=500``, ``noise=0.2``); an unknown one
            is an error listing those it takes.

    Returns:
        a :class:`DataBundle`: images uint8 (N, C, H, W), tabular float32 (N, F), labels int64 (N,);
        for graph datasets a :class:`~archlab.data.graph.NodeBundle` (one graph with masks) or
        :class:`~archlab.data.graph.GraphSetBundle`, whose splits are their own (``val_split``
        does not apply).

    Raises:
        UnknownNameError: no such dataset (the message lists close names).
        ArchlabError: missing/damaged files, bad options.
    """
    entry = _entry(name)
    allowed = dataset_options(entry.name)
    takes_any = any(p.kind is p.VAR_KEYWORD for p in inspect.signature(entry.fn).parameters.values())
    unknown = sorted(set(options) - set(allowed))
    if unknown and not takes_any:
        listing = ", ".join(f"{k}={v!r}" for k, v in allowed.items()) or "none"
        raise DataOptionError(
            f"dataset {entry.name!r} has no option {', '.join(map(repr, unknown))}; it takes: {listing}"
        )
    if not 0.0 <= val_split < 1.0:
        raise DataOptionError(f"val_split must be in [0, 1), got {val_split}")
    bundle = entry.fn(root=data_root(root), download=download, **options)
    # Graph bundles carry their own splits (node masks, or a fixed split of the graph list).
    if isinstance(bundle, DataBundle) and bundle.val is None and val_split > 0:
        bundle.train, bundle.val = split_off(bundle.train, val_split, seed)
    return bundle


def data_status(name: str, root: str | Path | None = None) -> list[dict]:
    """Where each file of dataset ``name`` is and whether its MD5 matches (hashes every file).

    Returns:
        one dict per expected file: ``dataset``, ``file``, ``path`` (str or None when missing),
        ``md5_expected``, ``md5_actual``, ``ok`` and a ``note``; an empty list for embedded and
        generated datasets, which need no files.
    """
    from archlab.data.download import dataset_files, file_status

    entry = _entry(name)  # also imports the catalog, which declares the files
    spec = dataset_files(entry.name)
    if spec is None:
        return []
    folder = data_root(root)
    return [file_status(f, folder, spec.dataset, spec.extra_dirs) for f in spec.files]


def download_dataset(name: str, root: str | Path | None = None, *, quiet: bool = False) -> list[Path]:
    """Make sure every file of ``name`` is in the data folder, downloading what is missing.

    Returns:
        the local paths (files already present are kept as they are).

    Raises:
        ArchlabError: a download failed (the message says how to place the file by hand).
    """
    from archlab.data.download import dataset_files, fetch

    entry = _entry(name)
    spec = dataset_files(entry.name)
    if spec is None:
        return []
    folder = data_root(root)
    return [fetch(f, folder, True, dataset=spec.dataset, extra_dirs=spec.extra_dirs, quiet=quiet) for f in spec.files]


def verify_dataset(name: str, root: str | Path | None = None) -> list[dict]:
    """Check every file of ``name`` against its MD5 (see :func:`data_status`).

    Returns:
        the status rows, when all files are present and intact.

    Raises:
        ArchlabError: a file is missing or damaged; the message lists each one with its
            expected MD5 and what to do.
    """
    rows = data_status(name, root)
    bad = [r for r in rows if not r["ok"]]
    if bad:
        lines = [f"dataset {name!r} in {data_root(root)} is not complete and intact:"]
        for r in bad:
            where = r["path"] or "missing"
            got = f", md5 {r['md5_actual']}" if r["md5_actual"] else ""
            note = "" if r["path"] is None else r["note"]
            lines.append(f"  {r['file']}: {where}{got} (expected md5 {r['md5_expected'] or 'unknown: cannot be verified'}) {note}".rstrip())
        lines.append(f"To fix it: delete the damaged files and run `archlab data download {name}`, or place "
                     f"copies made by hand in {data_root(root) / rows[0]['dataset']}/.")
        raise ArchlabError("\n".join(lines))
    return rows
