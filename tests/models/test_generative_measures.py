"""Measures of generative models: Frechet distance hand cases, the committed judges, ring modes, bits/dim."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from archlab.models.generative import measures as M
from archlab.utils import ArchlabError

# ---- Frechet distance -------------------------------------------------------------------------


def test_frechet_equal_gaussians_is_zero():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(6, 6))
    sigma = a @ a.T + 0.1 * np.eye(6)
    mu = rng.normal(size=6)
    assert M.frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize(("m1", "s1", "m2", "s2"), [(0.0, 1.0, 3.0, 2.0), (-1.5, 0.3, 0.5, 0.3), (2.0, 4.0, 2.0, 0.5)])
def test_frechet_one_dimensional_closed_form(m1, s1, m2, s2):
    # 1-D: (m1 - m2)^2 + (s1 - s2)^2 with s the standard deviations (variances passed in)
    got = M.frechet_distance([m1], [[s1**2]], [m2], [[s2**2]])
    assert got == pytest.approx((m1 - m2) ** 2 + (s1 - s2) ** 2, rel=1e-10, abs=1e-12)
    assert M.frechet_distance(m1, s1**2, m2, s2**2) == pytest.approx(got)  # scalars too


def test_frechet_diagonal_and_scipy_agree():
    # diagonal covariances: sum over dims of the 1-D formula
    s1, s2 = np.array([1.0, 4.0, 0.25]), np.array([2.0, 1.0, 0.25])
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    expect = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(s1) - np.sqrt(s2)) ** 2).sum()
    assert M.frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2)) == pytest.approx(expect)
    # full covariances: against scipy's sqrtm on the product (the textbook FID code path)
    scipy_linalg = pytest.importorskip("scipy.linalg")
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(5, 8)), rng.normal(size=(5, 8))
    c1, c2 = a @ a.T / 8, b @ b.T / 8
    m1, m2 = rng.normal(size=5), rng.normal(size=5)
    covmean = scipy_linalg.sqrtm(c1 @ c2).real
    ref = ((m1 - m2) ** 2).sum() + np.trace(c1) + np.trace(c2) - 2 * np.trace(covmean)
    assert M.frechet_distance(torch.tensor(m1), torch.tensor(c1), m2, c2) == pytest.approx(ref, rel=1e-8)


def test_frechet_rejects_bad_shapes_and_nan():
    with pytest.raises(ValueError, match="one D"):
        M.frechet_distance(np.zeros(3), np.eye(3), np.zeros(2), np.eye(2))
    with pytest.raises(ValueError, match="non-finite"):
        M.frechet_distance(np.array([np.nan]), np.eye(1), np.zeros(1), np.eye(1))


# ---- ring modes, bits per dim -----------------------------------------------------------------


def _ring(n=2000, modes=8, std=0.02, seed=0):
    g = torch.Generator().manual_seed(seed)
    angle = 2 * math.pi * torch.arange(modes, dtype=torch.float64) / modes
    centers = 2.0 * torch.stack([torch.cos(angle), torch.sin(angle)], 1)
    k = torch.randint(0, modes, (n,), generator=g)
    return centers[k] + std * torch.randn(n, 2, generator=g, dtype=torch.float64), centers


def test_ring_modes_exact_samples_recover_every_mode():
    x, centers = _ring()
    m = M.ring_modes(x, centers, 0.02)
    assert m["modes"] == 8 and m["num_modes"] == 8
    assert m["high_quality"] > 0.98  # a 2-D Gaussian puts 1 - exp(-9/2) = 98.9% within 3 std
    assert sum(m["per_mode"]) == round(m["high_quality"] * len(x))


def test_ring_modes_collapsed_samples_count_one_mode():
    _, centers = _ring()
    g = torch.Generator().manual_seed(1)
    x = centers[3] + 0.02 * torch.randn(1000, 2, generator=g, dtype=torch.float64)
    m = M.ring_modes(x, centers, 0.02)
    assert m["modes"] == 1 and m["per_mode"][3] == sum(m["per_mode"])
    # samples between the modes are not high quality; a few stray ones do not make a mode
    far = torch.zeros(1000, 2, dtype=torch.float64)  # the ring's centre: 2 away from every mode
    far[:5] = centers[0]
    m2 = M.ring_modes(far, centers, 0.02)
    assert m2["modes"] == 0 and m2["high_quality"] == pytest.approx(0.005)
    assert M.ring_modes(far, centers, 0.02, min_share=0)["modes"] == 1


def test_ring_modes_nan_samples_are_not_high_quality():
    x, centers = _ring(100)
    x[:50] = float("nan")
    m = M.ring_modes(x, centers, 0.02)
    assert m["high_quality"] <= 0.5


def test_bits_per_dim():
    assert M.bits_per_dim(784 * math.log(2), 784) == pytest.approx(1.0)
    # an NLL of data scaled to [0, 1] by /256 gains log(256) nats per dim: + 8 bits
    assert M.bits_per_dim(0.0, 10, levels=256) == pytest.approx(8.0)
    t = M.bits_per_dim(torch.tensor([0.0, 784 * math.log(2)]), 784)
    assert torch.allclose(t, torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError):
        M.bits_per_dim(1.0, 0)


# ---- the committed judges ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ["mnist", "digits"])
def test_committed_judge_files(name):
    weights, record = M.ASSETS / f"{name}_judge.safetensors", M.ASSETS / f"{name}_judge.json"
    assert weights.is_file() and record.is_file()
    assert weights.stat().st_size < 500_000
    rec = json.loads(record.read_text())
    assert rec["test_accuracy"] >= (0.99 if name == "mnist" else 0.95)
    judge = M.load_judge(name)
    side = M.JUDGES[name].image_size
    x = torch.rand(3, 1, side, side)
    assert judge(x).shape == (3, 10)
    assert judge.features(x).shape == (3, M.JUDGES[name].hidden_dim)
    assert M.judge_for(x) is judge


def test_judge_for_rejects_other_shapes():
    with pytest.raises(ArchlabError, match="no judge"):
        M.judge_for(torch.rand(2, 3, 32, 32))
    with pytest.raises(ArchlabError, match="no judge named"):
        M.load_judge("cifar")


def test_digits_judge_on_embedded_digits():
    from archlab.data import load_dataset

    test = load_dataset("digits", val_split=0.0).test
    x = test.x.float() / 255.0
    assert M.class_accuracy(x, test.y) >= 0.95
    cov = M.class_coverage(x)
    assert cov["classes_covered"] == 10 and cov["entropy"] > 0.99
    # one class only: coverage 1/10, entropy 0
    ones = x[test.y == 1]
    cov1 = M.class_coverage(ones)
    assert cov1["classes_covered"] <= 2 and cov1["entropy"] < 0.2
    # FID-digits: a test set against itself is 0; against its other half small; against noise large
    assert M.fid_mnist(x, x) == pytest.approx(0.0, abs=1e-6)
    half = len(x) // 2
    noise = torch.rand_like(x)
    assert M.fid_mnist(x[:half], noise[:half]) > 10 * M.fid_mnist(x[:half], x[half:])


@pytest.mark.real_data
def test_mnist_judge_measures(shared_data):
    if not (shared_data / "mnist").is_dir():
        pytest.skip("no mnist in the shared data folder")
    from archlab.data import load_dataset

    test = load_dataset("mnist", shared_data, val_split=0.0, download=False).test
    x, y = test.x[:4000], test.y[:4000]
    assert M.class_accuracy(x, y) >= 0.98  # uint8 images are accepted
    xf = x.float() / 255.0
    same = M.fid_mnist(xf[:2000], xf[:2000])
    halves = M.fid_mnist(xf[:2000], xf[2000:])
    noise = M.fid_mnist(xf[:2000], torch.rand(2000, 1, 28, 28, generator=torch.Generator().manual_seed(0)))
    assert same == pytest.approx(0.0, abs=1e-6)
    assert noise > 20 * halves > 0
    assert M.class_coverage(xf)["classes_covered"] == 10
    cls = M.class_accuracy(xf[y == 7], torch.full((int((y == 7).sum()),), 7))
    assert cls >= 0.97


def test_class_accuracy_checks_lengths():
    with pytest.raises(ValueError, match="labels"):
        M.class_accuracy(torch.rand(3, 1, 8, 8), torch.zeros(2, dtype=torch.long))
