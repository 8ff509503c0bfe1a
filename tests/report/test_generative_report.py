"""The report section of generative runs, on tiny untrained models (what is drawn and measured)."""

from __future__ import annotations

import re

import pytest
import torch

import archlab.models  # noqa: F401
from archlab.data import load_dataset
from archlab.registry import MODELS, create_model
from archlab.report.generative import generative_section, is_generative
from archlab.viz.generative import save_sample_grid


def _tiny(name, bundle, **extra):
    if name not in MODELS:
        pytest.skip(f"{name} is not registered")
    torch.manual_seed(0)
    return create_model(name, bundle.info, **{**MODELS.get(name).tags["config"].TINY, "in_channels": 1, **extra})


def _parts(html):
    captions = re.findall(r"<figcaption>(.*?)</figcaption>", html)
    notes = re.findall(r'<p class="note">(.*?)</p>', html)
    rows = [re.sub(r"<.*?>", " ", r) for r in re.findall(r"<tr>(.*?)</tr>", html)]
    return captions, notes, rows


def test_vae_section_has_latent_pictures_and_measures(tmp_path):
    b = load_dataset("digits", val_split=0.0)
    html = generative_section(tmp_path, _tiny("vae", b, image_size=8), b, tmp_path / "figures", n_samples=200)
    captions, notes, rows = _parts(html)
    assert not notes, notes
    assert any("reconstructions" in c for c in captions) and any("coloured by class" in c for c in captions)
    assert any("FID-digits" in r for r in rows) and any("classes covered" in r for r in rows)
    for name in ("generative_samples", "generative_reconstructions", "generative_interpolation", "generative_latent"):
        assert (tmp_path / "figures" / f"{name}.png").stat().st_size > 100


def test_conditional_gan_section_measures_class_accuracy(tmp_path):
    b = load_dataset("digits", val_split=0.0)
    html = generative_section(tmp_path, _tiny("cgan", b, image_size=8), b, tmp_path / "f", n_samples=100)
    _, notes, rows = _parts(html)
    assert not notes, notes
    acc = [r for r in rows if "class accuracy" in r]
    assert acc and "100 samples (10 per class)" in acc[0]


def test_translation_and_ring_sections(tmp_path):
    pairs = load_dataset("edges2digits", val_split=0.0)
    html = generative_section(tmp_path / "p", _tiny("pix2pix", pairs, image_size=8), pairs, tmp_path / "p" / "f")
    captions, notes, rows = _parts(html)
    assert not notes and any("translations" in c for c in captions) and any("L1" in r for r in rows)
    ring = load_dataset("ring", val_split=0.0)
    model = create_model("gan_ring", ring.info, latent_dim=8, hidden_dim=16) if "gan_ring" in MODELS else None
    if model is None:
        pytest.skip("gan_ring is not registered")
    html = generative_section(tmp_path / "r", model, ring, tmp_path / "r" / "f")
    _, notes, rows = _parts(html)
    assert not notes and any("modes recovered" in r and "/8" in r for r in rows)


def test_section_without_model_shows_the_saved_grids(tmp_path):
    for epoch in (1, 2):
        save_sample_grid(torch.rand(4, 1, 8, 8), tmp_path / "samples" / f"epoch_{epoch:04d}.png", nrow=2)
    html = generative_section(tmp_path, None, None, tmp_path / "figures")
    assert "data:image/gif;base64," in html and "epoch_0002.png" in html
    assert (tmp_path / "figures" / "samples.gif").read_bytes()[:6] == b"GIF89a"
    # not a generative run: no section
    assert generative_section(tmp_path / "other", torch.nn.Linear(2, 2), None, tmp_path / "f") is None
    assert not is_generative(torch.nn.Linear(2, 2))
