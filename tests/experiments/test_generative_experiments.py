"""The generative experiments (``gan-mode-collapse``, ``gan-lr-ratio``, ``gan-batch-size``,
``latent-dim``, ``vae-beta``, ``gan-vs-vae-vs-diffusion``, ``dcgan-vs-wgan-gp-seeds``) in quick mode,
their helpers, and the tour stops of the family."""

from __future__ import annotations

import math

import pytest
import torch
from _report_checks import check_quick_report

from archlab.experiments import generative_experiments as gx

EXPERIMENTS = {
    "gan-mode-collapse": ("ring_training.png", "ring_final.png", "ring_modes.png", "ring_losses.png"),
    "gan-lr-ratio": ("lr_ratio_rings.png", "lr_ratio_modes.png", "lr_ratio_losses.png"),
    "gan-batch-size": ("batch_rings.png", "batch_modes.png"),
    "latent-dim": ("latent_dim_metrics.png", "latent_dim_samples.png"),
    "vae-beta": ("beta_tradeoff.png", "beta_latents.png", "beta_samples.png"),
    "gan-vs-vae-vs-diffusion": ("samples_side_by_side.png", "quality_time.png"),
    "dcgan-vs-wgan-gp-seeds": ("fid_curves.png", "final_fid.png", "seed_samples.png"),
}


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py: torch on one thread


def test_registered_in_family_generative():
    from archlab.registry import EXPERIMENTS as REG

    assert set(EXPERIMENTS) <= set(REG.names(family="generative"))
    assert REG.get("gan-mode-collapse").fn is gx.gan_mode_collapse
    assert REG.get("vae-beta").fn is gx.vae_beta


@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_quick_mode_writes_report(name, quick_run):
    res, out = quick_run(name)
    check_quick_report(res, out, EXPERIMENTS[name])
    assert res["cpu_seconds"] > 0


def test_mode_collapse_quick_results(quick_run):
    res, out = quick_run("gan-mode-collapse")
    seeds = res["setup"]["seeds"]
    assert set(res["modes"]) == set(gx.RING_VARIANTS)
    assert len(res["rows"]) == len(gx.RING_VARIANTS) * len(seeds)
    assert all(0 <= m <= 8 for ms in res["modes"].values() for m in ms)
    assert all(0.0 <= h <= 1.0 for hs in res["high_quality"].values() for h in hs)
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "Per variant" in html and "WGAN-GP" in html
    # the variants really differ: the unrolled GAN is not the plain GAN under another name
    rows = {r["variant"]: r for r in res["rows"]}
    assert rows["GAN"]["final loss_g"] != rows["unrolled GAN (k=5)"]["final loss_g"]


def test_lr_ratio_and_batch_size_quick_results(quick_run):
    res, _ = quick_run("gan-lr-ratio")
    assert [r["ratio G:D"] for r in res["summary_rows"]] == [f"G:D = {a}:{b}" for a, b in res["setup"]["ratios"]]
    assert all(r["lr_g"] / r["lr_d"] == pytest.approx(int(r["ratio G:D"][6]) / int(r["ratio G:D"][8]))
               for r in res["rows"])
    res, _ = quick_run("gan-batch-size")
    assert [r["batch size"] for r in res["summary_rows"]] == list(res["setup"]["batch_sizes"])
    assert all(r["ms per step"] > 0 for r in res["rows"])


def test_vae_quick_results(quick_run):
    res, _ = quick_run("latent-dim")
    assert [r["latent dim"] for r in res["rows"]] == list(res["setup"]["latent_dims"])
    for r in res["rows"]:
        # the IWAE bound is at least as tight as the ELBO (up to the sampling noise of a few samples)
        assert r[f"IWAE NLL (K={res['setup']['iwae_k']})"] <= -r["test ELBO"] + 1.0
        assert 0 <= r["active units"] <= r["latent dim"] and r["KL (nats)"] >= 0
    res, _ = quick_run("vae-beta")
    kl = {r["beta"]: r["KL (nats)"] for r in res["rows"]}
    assert kl[4.0] < kl[1.0]  # a heavier KL weight gives a smaller KL, even after a few steps


def test_comparisons_quick_results(quick_run):
    res, _ = quick_run("gan-vs-vae-vs-diffusion")
    methods = [r["method"] for r in res["rows"]]
    assert methods == ["DCGAN", "VAE (conv)", "DDPM", "real digits (held out)"]
    real = res["reference"]
    assert real["fid"] < min(r["fid"] for r in res["runs"].values())  # a few steps cannot beat real digits
    assert real["coverage"] == 1.0
    assert all(r["sample_ms"] > 0 for r in res["runs"].values())
    assert all(r["sample ms / image"] > 0 and r["train s"] >= 0 for r in res["rows"][:3])
    res, _ = quick_run("dcgan-vs-wgan-gp-seeds")
    assert set(res["fids"]) == {"DCGAN", "WGAN-GP"}
    assert all(len(v) == len(res["setup"]["seeds"]) for v in res["fids"].values())
    assert {r["method"] for r in res["summary_rows"]} == {"DCGAN", "WGAN-GP"}


# ---- helpers ------------------------------------------------------------------------------------


def test_train_adversarial_stops_on_nan():
    model = gx.make_model("gan_ring", 0, hidden_dim=8, num_layers=1, latent_dim=2)
    x = torch.randn(64, 2)
    x[3] = math.nan  # any batch that draws row 3 gives a NaN discriminator loss
    log = gx.train_adversarial(model, x, steps=50, batch_size=32)
    assert log["diverged"] and log["steps_done"] < 50
    assert all(torch.isfinite(p).all() for p in model.parameters())  # stopped before the NaN reached the weights


def test_train_adversarial_critic_steps():
    model = gx.make_model("wgan_gp_ring", 0, hidden_dim=8, num_layers=1)
    calls = []
    orig = model.discriminator_loss

    def counting(x, y=None):
        calls.append(len(x))
        return orig(x, y)

    model.discriminator_loss = counting
    gx.train_adversarial(model, torch.randn(100, 2), steps=3, batch_size=16)
    assert calls == [16] * (3 * model.d_steps)  # 5 critic steps per generator step, each on its own batch


def test_distances():
    a = torch.zeros(3, 1, 2, 2)
    b = torch.ones(2, 1, 2, 2)
    assert gx.mean_pairwise_distance(a) == 0.0
    assert gx.nearest_distance(a, b) == pytest.approx(2.0)  # sqrt(4 pixels * 1)
    assert gx.mean_pairwise_distance(torch.cat([a[:1], b[:1]])) == pytest.approx(2.0)


# ---- the tour stops ------------------------------------------------------------------------------


@pytest.mark.parametrize("stop_name", ["vae-digits", "cgan-digits"])
def test_tour_generative_stops(tmp_path, stop_name):
    import archlab
    from archlab.experiments.resnet_experiments import num_threads
    from archlab.tours import STOPS

    stop = next(s for s in STOPS if s.name == stop_name)
    assert stop.family == "generative" and stop.data == "digits"
    overrides = dict(stop.overrides)
    stop.overrides = {**overrides, "train.epochs": 2}  # the test's budget; the tour's own is larger
    try:
        with num_threads(1):
            index = archlab.tour(out_dir=tmp_path, only=[stop.name])
    finally:
        stop.overrides = overrides
    assert f"{stop.name}/report.html" in index.read_text()
    assert sorted((tmp_path / stop.name / "samples").glob("epoch_*.png"))
