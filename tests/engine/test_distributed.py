"""Two CPU processes (DDP over gloo) train to the same accuracy band and hold identical weights."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.distributed


def _cli(*args: str, cwd) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run([sys.executable, "-m", "archlab", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)


def test_two_process_ddp_matches_one_process(tmp_path):
    common = ["--data", "moons", "--accelerator", "cpu", "--out", str(tmp_path), "--no-progress",
              "train.epochs=30", "train.batch_size=32", "train.lr=0.01", "model.hidden_dims=[32,32]",
              "run.report=false", "data.options.n_samples=2000"]
    one = _cli("train", "mlp", "--name", "one", *common, cwd=tmp_path)
    assert one.returncode == 0, one.stderr[-3000:]
    two = _cli("train", "mlp", "--name", "two", "--devices", "2", "--strategy", "ddp", *common, cwd=tmp_path)
    assert two.returncode == 0, two.stderr[-3000:]
    s1 = json.loads((tmp_path / "one" / "summary.json").read_text())
    s2 = json.loads((tmp_path / "two" / "summary.json").read_text())
    assert s2["world_size"] == 2 and len(s2["weights_digests"]) == 2
    assert s2["weights_digests"][0] == s2["weights_digests"][1], "the two ranks hold different weights"
    assert s1["final"]["test/acc"] > 0.9 and s2["final"]["test/acc"] > 0.9
    assert abs(s1["final"]["test/acc"] - s2["final"]["test/acc"]) < 0.05


def test_torchrun_launch_is_detected(tmp_path):
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    res = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "archlab",
                          "train", "mlp", "--data", "moons", "--accelerator", "cpu", "--out", str(tmp_path), "--name", "tr",
                          "--no-progress", "train.epochs=2", "run.report=false"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    s = json.loads((tmp_path / "tr" / "summary.json").read_text())
    assert s["world_size"] == 2 and s["weights_digests"][0] == s["weights_digests"][1]
