"""The checksummed download cache: good, wrong, truncated and offline downloads."""

from __future__ import annotations

import gzip
import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from _data_fakes import MNIST_NAMES, idx_bytes

from archlab.data import data_status, download_dataset, load_dataset, vision
from archlab.data import download as download_module
from archlab.data.download import DatasetFiles, RemoteFile, fetch
from archlab.utils import ArchlabError, file_md5

PAYLOAD = b"archlab test payload " * 1000
PAYLOAD_MD5 = hashlib.md5(PAYLOAD).hexdigest()


class _Handler(BaseHTTPRequestHandler):
    files: ClassVar[dict[str, bytes]] = {}

    def do_GET(self):  # http.server's name
        name = self.path.lstrip("/")
        if name == "truncated.bin":
            # promises the whole payload, sends a tenth, hangs up
            self.send_response(200)
            self.send_header("Content-Length", str(len(PAYLOAD)))
            self.end_headers()
            self.wfile.write(PAYLOAD[: len(PAYLOAD) // 10])
            self.wfile.flush()
            self.close_connection = True
            return
        if name not in self.files:
            self.send_error(404)
            return
        body = self.files[name]
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):  # keep pytest output clean
        pass


@pytest.fixture
def server():
    _Handler.files = {"good.bin": PAYLOAD, "wrong.bin": PAYLOAD[::-1]}
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _no_leftovers(folder: Path, name: str) -> None:
    assert not (folder / name).exists()
    assert not list(folder.rglob("*.part")), list(folder.rglob("*"))


def test_good_download_http(tmp_path, server):
    spec = RemoteFile("payload.bin", [f"{server}/good.bin"], PAYLOAD_MD5)
    path = fetch(spec, tmp_path, True, dataset="toy", quiet=True)
    assert path == tmp_path / "toy" / "payload.bin"
    assert file_md5(path) == PAYLOAD_MD5
    assert not list(tmp_path.rglob("*.part"))
    # present now: used as is, no network needed
    assert fetch(spec, tmp_path, False, dataset="toy") == path


def test_good_download_file_url_after_failing_mirror(tmp_path, server):
    src = tmp_path / "src" / "payload.bin"
    src.parent.mkdir()
    src.write_bytes(PAYLOAD)
    spec = RemoteFile("payload.bin", [f"{server}/missing.bin", src.as_uri()], PAYLOAD_MD5)
    path = fetch(spec, tmp_path / "cache", True, dataset="toy", quiet=True)
    assert path.read_bytes() == PAYLOAD


@pytest.mark.parametrize("remote", ["wrong.bin", "truncated.bin", "missing.bin"])
def test_bad_download_leaves_nothing(tmp_path, server, remote):
    spec = RemoteFile("payload.bin", [f"{server}/{remote}"], PAYLOAD_MD5)
    with pytest.raises(ArchlabError) as e:
        fetch(spec, tmp_path, True, dataset="toy", quiet=True)
    msg = str(e.value)
    assert "payload.bin" in msg and PAYLOAD_MD5 in msg and f"{server}/{remote}" in msg
    assert str(tmp_path / "toy") in msg  # where to put a copy made by hand
    _no_leftovers(tmp_path, "toy/payload.bin")


def test_wrong_file_url_md5_leaves_nothing(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(PAYLOAD)
    spec = RemoteFile("payload.bin", [src.as_uri()], "0" * 32)
    with pytest.raises(ArchlabError, match="does not match"):
        fetch(spec, tmp_path / "cache", True, quiet=True)
    _no_leftovers(tmp_path / "cache", "payload.bin")


def test_missing_offline_names_file_md5_and_url(tmp_path):
    with pytest.raises(ArchlabError) as e:
        load_dataset("mnist", tmp_path, download=False)
    msg = str(e.value)
    spec = vision.MNIST_FILES[0]
    assert spec.filename in msg and spec.md5 in msg
    assert "https://ossci-datasets.s3.amazonaws.com/mnist/train-images-idx3-ubyte.gz" in msg
    assert "download=False" in msg
    assert not (tmp_path / "mnist").exists()  # offline: nothing created


def test_load_dataset_downloads_into_cache(tmp_path, server, monkeypatch):
    """End to end: mnist's spec pointed at a local server with md5s of test-written files."""
    rng = np.random.default_rng(0)
    arrays = [rng.integers(0, 256, (12, 28, 28), dtype=np.uint8), (np.arange(12) % 10).astype(np.uint8),
              rng.integers(0, 256, (4, 28, 28), dtype=np.uint8), np.arange(4).astype(np.uint8)]
    files = []
    for name, arr in zip(MNIST_NAMES, arrays):
        blob = gzip.compress(idx_bytes(arr))
        _Handler.files[name + ".gz"] = blob
        files.append(RemoteFile(name + ".gz", [f"{server}/{name}.gz"], hashlib.md5(blob).hexdigest()))
    monkeypatch.setattr(vision, "_MNIST_SPEC", DatasetFiles("mnist", tuple(files)))
    monkeypatch.setitem(download_module._FILES, "mnist", vision._MNIST_SPEC)
    b = load_dataset("mnist", tmp_path, val_split=0.0, download=True)
    assert b.train.x.shape == (12, 1, 28, 28) and len(b.test) == 4
    np.testing.assert_array_equal(b.train.x[:, 0].numpy(), arrays[0])
    rows = data_status("mnist", tmp_path)
    assert [r["ok"] for r in rows] == [True] * 4
    assert all(Path(r["path"]).parent == tmp_path / "mnist" for r in rows)
    assert download_dataset("mnist", tmp_path) == [Path(r["path"]) for r in rows]
    assert not list(tmp_path.rglob("*.part"))


def test_data_status_missing_and_unpacked(tmp_path):
    rows = data_status("mnist", tmp_path)
    assert len(rows) == 4 and not any(r["ok"] for r in rows) and all(r["path"] is None for r in rows)
    raw = tmp_path / "mnist" / "train-labels-idx1-ubyte"
    raw.parent.mkdir()
    raw.write_bytes(idx_bytes(np.zeros(5, np.uint8)))
    row = data_status("mnist", tmp_path)[1]
    assert row["ok"] and row["path"] == str(raw) and "unpacked" in row["note"]
    raw.write_bytes(idx_bytes(np.zeros(5, np.uint8))[:-1])
    assert not data_status("mnist", tmp_path)[1]["ok"]
    assert data_status("moons", tmp_path) == []
