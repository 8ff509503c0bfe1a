"""The generative benchmarks in quick mode (a few steps on the embedded digits and the ring): every
figure the committed result files carry is computed, in range, and nothing is written."""

from __future__ import annotations

import math

import pytest

import archlab


@pytest.mark.parametrize("name", ["cgan_mnist", "vae_mnist", "dcgan_mnist", "ddpm_mnist", "realnvp_mnist"])
def test_generative_benchmark_quick(name: str, tmp_path) -> None:
    out = archlab.run_benchmarks([name], quick=True, out_dir=tmp_path)[name]["results"]
    assert out["steps"] == 3 and out["status"] == "completed"
    if name == "cgan_mnist":
        assert out["samples"] == 100 and 0.0 <= out["judged_intended"] <= 1.0 and len(out["per_digit"]) == 10
    elif name == "vae_mnist":
        assert out["test_images"] > 300 and out["test_nll_nats"] > 0
        assert out["test_nll_nats"] <= -out["test_elbo_nats"] + 1e-6  # the importance-weighted bound is tighter
    elif name == "realnvp_mnist":
        assert out["test_bpd"] > 0 and math.isclose(out["test_bpd"], out["test_nll_nats"] / (64 * math.log(2)),
                                                    rel_tol=1e-3)
    else:
        assert out["fid_mnist"] > 0 and out["fid_mnist"] > out["fid_test_halves"] >= 0
        assert 0 < out["class_coverage"] <= 1
    assert not list(tmp_path.iterdir())  # quick runs are not written


def test_ring_benchmark_quick(tmp_path) -> None:
    out = archlab.run_benchmarks(["ring_modes"], quick=True, out_dir=tmp_path)["ring_modes"]["results"]
    assert [r["model"] for r in out["runs"]] == ["wgan_gp_ring", "gan_ring"]
    for r in out["runs"]:
        assert 0 <= r["modes"] <= 8 and len(r["per_mode"]) == 8 and 0.0 <= r["high_quality"] <= 1.0
    assert out["wgan_gp_all_modes_every_seed"] == (out["wgan_gp_modes"] == [8])
