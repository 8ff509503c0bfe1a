"""Ctrl-C: the run stops at a step boundary, saves a checkpoint, and resumes from it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time


def test_sigint_saves_checkpoint_then_resume_completes(tmp_path):
    args = [sys.executable, "-m", "archlab", "train", "mlp", "--data", "moons", "--out", str(tmp_path), "--name", "c",
            "--no-progress", "train.epochs=100000", "train.batch_size=8", "run.report=false", "system.tensorboard=false",
            "data.options.n_samples=4000"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    metrics = tmp_path / "c" / "metrics.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and not (metrics.exists() and metrics.stat().st_size > 0):
        time.sleep(0.2)
    assert metrics.exists(), "training never started"
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert "saving a checkpoint" in out + err
    summary = json.loads((tmp_path / "c" / "summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["steps"] > 0
    from archlab.engine.checkpoint import load_checkpoint

    state = load_checkpoint(tmp_path / "c" / "checkpoints" / "last.safetensors")
    assert state["counters"]["global_step"] == summary["steps"]
    done = subprocess.run([sys.executable, "-m", "archlab", "train", "--resume", str(tmp_path / "c"), "--no-progress",
                           f"train.max_steps={summary['steps'] + 5}"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    after = json.loads((tmp_path / "c" / "summary.json").read_text())
    assert after["steps"] == summary["steps"] + 5 and after["status"] == "completed"
