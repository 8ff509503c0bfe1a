"""A checksummed download cache for datasets that are too large to embed.

Every downloadable file is described by a :class:`RemoteFile`: its canonical name, the addresses
it can be fetched from (mirrors, tried in order) and its MD5. :func:`fetch` finds the file in the
data folder or downloads it:

* A file that is already there (``<root>/<dataset>/<name>``, ``<root>/<name>``, the uncompressed
  variant of a ``.gz`` file, an extracted archive folder, or a torchvision-style layout) is used
  as is, without hashing: loading stays fast, and the readers check the structure of what they
  read (an IDX header against the file size, a tar archive's members), so a corrupt file still
  fails with a clear :class:`~archlab.utils.ArchlabError`. ``archlab data verify`` hashes them.
* A download goes to ``<name>.<pid>.part`` in the target folder, is hashed while it streams, and
  is renamed into place only when the MD5 matches; on any failure the ``.part`` file is deleted,
  so an interrupted or corrupt download never poisons the cache.
* A missing file with ``download=False`` (or no network) is an error naming the file, its MD5,
  the addresses and where to put a copy made by hand.

Datasets register their files with :func:`register_files`, which :func:`data_status`,
``archlab data download`` and ``archlab data verify`` read.
"""

from __future__ import annotations

import hashlib
import os
import sys
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from archlab.utils import ArchlabError, file_md5

__all__ = [
    "RemoteFile",
    "DatasetFiles",
    "register_files",
    "dataset_files",
    "candidates",
    "locate",
    "fetch",
    "download_file",
    "file_status",
    "missing_file_message",
]

_TIMEOUT_S = 60.0
_CHUNK = 1 << 20


@dataclass(frozen=True)
class RemoteFile:
    """One downloadable file.

    Attributes:
        filename: the canonical file name (``"train-images-idx3-ubyte.gz"``).
        urls: full addresses to fetch it from, tried in order (mirrors).
        md5: hex MD5 of the file as published, or None where no checksum is known (a file
            whose publisher gives none and which could not be hashed here): such a file is
            NOT verified, downloads are kept as they arrive, and every message says so.
        unpacked: the name of an equivalent local form that is accepted instead: the
            uncompressed file for a ``.gz`` (``"train-images-idx3-ubyte"``) or the folder an
            archive extracts to (``"cifar-10-batches-py"``). Its MD5 differs, so it is checked
            with ``check_unpacked`` instead.
        check_unpacked: ``fn(path)`` that raises :class:`ArchlabError` if the unpacked form is
            damaged (used by ``archlab data verify``).
        homepage: where a person can read about the data and get it by hand.
    """

    filename: str
    urls: tuple[str, ...]
    md5: str | None
    unpacked: str | None = None
    check_unpacked: Callable[[Path], None] | None = field(default=None, compare=False, repr=False)
    homepage: str = ""

    def __post_init__(self) -> None:
        # Accept a list (the natural literal) but store a tuple: the spec is immutable.
        object.__setattr__(self, "urls", tuple(self.urls))
        if self.unpacked is None and self.filename.endswith(".gz") and not self.filename.endswith(".tar.gz"):
            object.__setattr__(self, "unpacked", self.filename[: -len(".gz")])


@dataclass(frozen=True)
class DatasetFiles:
    """The files one dataset needs, and the folders (under the data root) searched for them.

    Attributes:
        dataset: the registered dataset name; also the folder downloads go to.
        files: the files.
        extra_dirs: further folders under the root that may hold them (a torchvision layout
            such as ``"MNIST/raw"``), searched after ``<root>/<dataset>`` and before ``<root>``.
    """

    dataset: str
    files: tuple[RemoteFile, ...]
    extra_dirs: tuple[str, ...] = ()


_FILES: dict[str, DatasetFiles] = {}


def register_files(dataset: str, files: Sequence[RemoteFile], extra_dirs: Sequence[str] = ()) -> DatasetFiles:
    """Declare the files of ``dataset`` (for ``archlab data download|verify``); returns the spec."""
    spec = DatasetFiles(dataset, tuple(files), tuple(extra_dirs))
    _FILES[dataset] = spec
    return spec


def dataset_files(dataset: str) -> DatasetFiles | None:
    """The declared files of ``dataset``, or None for embedded/generated datasets."""
    return _FILES.get(dataset)


def _dirs(folder: Path, dataset: str | None, extra_dirs: Sequence[str]) -> list[Path]:
    dirs = [folder / dataset] if dataset else []
    dirs += [folder / d for d in extra_dirs]
    dirs.append(folder)
    return dirs


def candidates(
    spec: RemoteFile, folder: str | Path, dataset: str | None = None, extra_dirs: Sequence[str] = ()
) -> list[Path]:
    """Every path where ``spec`` is accepted, in the order they are tried."""
    out = []
    for d in _dirs(Path(folder), dataset, extra_dirs):
        out.append(d / spec.filename)
        if spec.unpacked:
            out.append(d / spec.unpacked)
    return out


def locate(
    spec: RemoteFile, folder: str | Path, dataset: str | None = None, extra_dirs: Sequence[str] = ()
) -> Path | None:
    """The first existing path for ``spec`` (the file or its unpacked form), or None."""
    for path in candidates(spec, folder, dataset, extra_dirs):
        if path.exists() and not path.name.endswith(".part"):
            return path
    return None


def missing_file_message(spec: RemoteFile, target_dir: Path, reason: str) -> str:
    """The text of the error for a file that is neither present nor downloadable."""
    urls = "\n".join(f"    {u}" for u in spec.urls) or "    (no known address)"
    lines = [
        f"{reason}",
        f"  file:         {spec.filename}",
        f"  expected md5: {spec.md5 or 'none known (this file cannot be verified)'}",
        f"  addresses:\n{urls}",
        "To fix it: download the file by hand from one of the addresses"
        + (f" (or see {spec.homepage})" if spec.homepage else "")
        + (f", check it with `md5sum {spec.filename}` against the md5 above," if spec.md5 else ",")
        + " and put it in",
        f"    {target_dir}/",
        "or point archlab at a folder that already holds it (--data-dir or ARCHLAB_DATA).",
    ]
    return "\n".join(lines)


def download_file(spec: RemoteFile, target_dir: str | Path, *, quiet: bool = False) -> Path:
    """Download ``spec`` into ``target_dir``, trying each address; verify its MD5; rename into place.

    The bytes go to ``<filename>.<pid>.part`` first (hashed as they stream); only a complete file
    with the right MD5 is renamed to ``<filename>``. Any failure removes the ``.part`` file.

    Raises:
        ArchlabError: every address failed or served a file with another MD5; the message
            lists the addresses tried, the expected MD5 and how to place the file by hand.
    """
    target_dir = Path(target_dir)
    try:
        target_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ArchlabError(
            missing_file_message(spec, target_dir, f"cannot create the data folder {target_dir}: {e}")
        ) from None
    final = target_dir / spec.filename
    part = target_dir / f"{spec.filename}.{os.getpid()}.part"
    failures: list[str] = []
    for url in spec.urls:
        try:
            if not quiet:
                print(f"archlab: downloading {url} -> {final}", file=sys.stderr, flush=True)
            digest = hashlib.md5()
            with urllib.request.urlopen(url, timeout=_TIMEOUT_S) as response, open(part, "wb") as out:
                while block := response.read(_CHUNK):
                    digest.update(block)
                    out.write(block)
                out.flush()
                os.fsync(out.fileno())
            actual = digest.hexdigest()
            if spec.md5 is None:
                if not quiet:
                    print(f"archlab: {spec.filename} has no known md5, so it is NOT verified (md5 {actual})",
                          file=sys.stderr, flush=True)
            elif actual != spec.md5:
                size = part.stat().st_size
                failures.append(f"{url}: md5 {actual} ({size} bytes) does not match")
                part.unlink(missing_ok=True)
                continue
            os.replace(part, final)
            return final
        except BaseException as e:  # Ctrl-C too must not leave a .part behind
            part.unlink(missing_ok=True)
            if not isinstance(e, Exception):
                raise
            failures.append(f"{url}: {type(e).__name__}: {e}")
    tried = "\n".join(f"    {f}" for f in failures)
    raise ArchlabError(
        missing_file_message(spec, target_dir, f"could not download {spec.filename}; tried:\n{tried}")
    )


def fetch(
    spec: RemoteFile,
    folder: str | Path,
    download: bool = True,
    *,
    dataset: str | None = None,
    extra_dirs: Sequence[str] = (),
    quiet: bool = False,
) -> Path:
    """The local path of ``spec``: found in ``folder`` or downloaded into ``folder/<dataset>``.

    Args:
        spec: the file.
        folder: the data root.
        download: fetch a missing file from ``spec.urls``; if False a missing file is an error.
        dataset: sub-folder searched first and downloaded into.
        extra_dirs: further sub-folders searched (``"MNIST/raw"``).
        quiet: no "downloading ..." line on stderr.

    Returns:
        the file, its uncompressed variant or its extracted folder, whichever is found first
        (a present file is used as is; the readers validate its structure).

    Raises:
        ArchlabError: the file is missing and cannot be downloaded.
    """
    folder = Path(folder)
    found = locate(spec, folder, dataset, extra_dirs)
    if found is not None:
        return found
    target_dir = folder / dataset if dataset else folder
    if not download:
        raise ArchlabError(
            missing_file_message(
                spec, target_dir, f"{spec.filename} is not in {folder} and downloads are off (download=False)"
            )
        )
    return download_file(spec, target_dir, quiet=quiet)


def file_status(
    spec: RemoteFile, folder: str | Path, dataset: str | None = None, extra_dirs: Sequence[str] = ()
) -> dict:
    """Where ``spec`` is and whether it is intact (hashes the file).

    Returns:
        ``{"dataset", "file", "path", "md5_expected", "md5_actual", "ok", "note"}``: ``path`` is None when
        missing; for an unpacked form ``md5_actual`` is None and ``ok`` comes from
        ``spec.check_unpacked``.
    """
    path = locate(spec, folder, dataset, extra_dirs)
    row = {"dataset": dataset, "file": spec.filename, "path": None, "md5_expected": spec.md5, "md5_actual": None,
           "ok": False, "note": ""}
    if path is None:
        row["note"] = "missing"
        return row
    row["path"] = str(path)
    if path.name == spec.filename and path.is_file():
        row["md5_actual"] = file_md5(path)
        if spec.md5 is None:
            row["ok"] = True
            row["note"] = "no known md5: present but not verified"
            return row
        row["ok"] = row["md5_actual"] == spec.md5
        row["note"] = "" if row["ok"] else "md5 mismatch: delete it and download again"
        return row
    # The unpacked form: its own hash is not published, so check its structure/members instead.
    if spec.check_unpacked is None:
        row["ok"] = True
        row["note"] = f"unpacked form of {spec.filename}; not checked"
        return row
    try:
        spec.check_unpacked(path)
    except ArchlabError as e:
        row["note"] = str(e).splitlines()[0]
        return row
    row["ok"] = True
    row["note"] = f"unpacked form of {spec.filename}; structure checked"
    return row
