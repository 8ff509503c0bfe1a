"""The CNN design experiments (``cnn_*``) and ``cnn_vs_features``: reports written in quick mode,
HOG, the robustness affine warp, and the SimpleCNN stride/padding options they sweep."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from archlab.experiments import cnn_design as cd
from archlab.experiments.cnn_vs_features import cell_histograms, hog_features, hog_length

#: experiment -> (extra result keys, figure files)
EXPERIMENTS = {
    "cnn_depth": (("best",), ("depth.png", "depth_curves.png")),
    "cnn_filters": (("best_width",), ("filters.png",)),
    "cnn_kernel_size": (("best",), ("kernel_size.png", "kernel_size_time.png")),
    "cnn_stride_padding": (("sizes",), ("stride_padding.png",)),
    "cnn_pooling": (("best",), ("pooling.png",)),
    "cnn_batch_size": (("best",), ("batch_size.png",)),
    "cnn_learning_rate": (("best_lr", "diverged"), ("learning_rate.png",)),
    "cnn_augmentation": (("best", "skipped"), ("augmentation.png", "augmentation_loss.png")),
    "cnn_robustness": (
        ("curves", "severities", "mean_acc", "summary"),
        ("robustness.png", "corruption_examples.png"),
    ),
    "cnn_vs_features": (
        ("hog_length", "by_method", "times", "sizes"),
        ("cnn_vs_features.png", "hog_example.png"),
    ),
}


def _conclusions(report: str) -> str:
    html = Path(report).read_text(encoding="utf-8")
    assert 'id="conclusions"' in html
    return html[html.index('id="conclusions"') :]


def test_registered_in_family_cnn():
    from archlab.registry import EXPERIMENTS as REG

    assert set(EXPERIMENTS) <= set(REG.names(family="cnn"))
    assert REG.get("cnn-depth").fn is cd.cnn_depth  # the CLI's hyphenated spelling works too


@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_quick_mode_writes_report(name, quick_run):
    keys, figures = EXPERIMENTS[name]
    res, out = quick_run(name)
    assert Path(res["report"]) == out / "report.html" and (out / "report.html").stat().st_size > 10_000
    for fig in figures:
        assert (out / fig).stat().st_size > 1_000, fig
    html = (out / "report.html").read_text(encoding="utf-8")
    assert html.count("data:image/png;base64") >= len(figures)
    assert _conclusions(res["report"]).count(" ") > 20
    for key in ("report", "seconds", "rows", *keys):
        assert key in res, key
    assert res["rows"] and res["seconds"] > 0
    if name == "cnn_vs_features":
        assert res["hog_length"] == 324  # 8x8 digits, 2x2-pixel cells: 3 x 3 blocks x 2 x 2 cells x 9 bins
        accs = [a for v in res["by_method"].values() for a in v]
    else:
        assert res["setup"]["dataset"] == "digits" and res["setup"]["quick"]
        accs = [r["test_acc"] for r in res["runs"] if not r["diverged"]]
        for r in res["runs"]:
            assert r["params"] > 0 and r["n_train"] > 1000 and "model" not in r
            if not r["diverged"]:
                assert r["s_per_epoch"] > 0 and r["steps"] > 0
    assert accs and all(0.0 <= a <= 1.0 for a in accs)
    assert max(accs) > 0.3  # well above chance (0.1) even after one epoch on digits


def test_robustness_curves_start_clean(quick_run):
    res, _ = quick_run("cnn_robustness")
    for kind, curves in res["curves"].items():
        assert res["severities"][kind][0] == 0.0
        assert set(curves) == {"MLP 256-256", "CNN", "CNN + random crop (pad 1)"}
        for c in curves.values():
            assert len(c) == len(res["severities"][kind])
    # severity 0 of every corruption is the same clean image set, so the same accuracy
    first = {kind: {m: c[0] for m, c in curves.items()} for kind, curves in res["curves"].items()}
    assert all(first[k] == first["noise"] for k in first)
    # the heaviest noise hurts every model
    assert all(c[-1] < c[0] for c in res["curves"]["noise"].values())


# ---- HOG ----------------------------------------------------------------------------------------


def test_hog_vertical_edge_votes_into_the_horizontal_gradient_bin():
    img = np.zeros((16, 16))
    img[:, 8:] = 1.0  # a vertical edge: the gradient points along +x (0 degrees)
    cells = cell_histograms(img[None], cell_size=4, n_bins=9)[0]  # (4, 4, 9)
    assert cells[..., 0].sum() > 0
    np.testing.assert_allclose(cells[..., 1:], 0.0)
    feats = hog_features(img, cell_size=4, block_size=2).reshape(3, 3, 4, 9)
    np.testing.assert_allclose(feats[..., 1:], 0.0, atol=1e-7)
    assert feats[..., 0].max() > 0.1


def test_hog_horizontal_edge_splits_between_the_bins_around_90_degrees():
    img = np.zeros((16, 16))
    img[8:, :] = 1.0  # gradient along +y: 90 degrees, halfway between the centres 80 and 100
    cells = cell_histograms(img[None], cell_size=4, n_bins=9)[0]
    np.testing.assert_allclose(cells[..., 4], cells[..., 5])
    assert cells[..., 4].sum() > 0
    np.testing.assert_allclose(np.delete(cells, [4, 5], axis=-1), 0.0)


@pytest.mark.parametrize(
    "h, w, cell, block, bins", [(28, 28, 4, 2, 9), (8, 8, 2, 2, 9), (30, 21, 5, 3, 6), (28, 28, 7, 1, 9)]
)
def test_hog_length_formula(h, w, cell, block, bins):
    x = np.random.default_rng(0).random((3, h, w))
    feats = hog_features(x, cell_size=cell, block_size=block, n_bins=bins)
    expected = (h // cell - block + 1) * (w // cell - block + 1) * block * block * bins
    assert feats.shape == (3, expected) == (3, hog_length(h, w, cell, block, bins))
    norms = np.linalg.norm(feats.reshape(3, -1, block * block * bins), axis=-1)
    np.testing.assert_allclose(norms, 1.0, atol=1e-3)  # L2-Hys: every (non-empty) block has unit norm


def test_hog_chunks_and_channels_agree():
    x = np.random.default_rng(1).random((5, 1, 12, 12))
    np.testing.assert_allclose(hog_features(x, chunk=2), hog_features(x[:, 0], chunk=10), rtol=1e-6)
    with pytest.raises(ValueError, match="fewer than"):
        hog_length(4, 4, cell_size=4, block_size=2)


# ---- the robustness warp -----------------------------------------------------------------------


def test_affine_identity():
    x = torch.rand(3, 2, 7, 9)
    torch.testing.assert_close(cd.affine_images(x, 0.0, (0.0, 0.0)), x, atol=1e-5, rtol=0)


def test_affine_rotation_90_and_shift_move_a_known_pixel():
    img = torch.zeros(1, 1, 5, 5)
    img[0, 0, 0, 2] = 1.0  # top middle
    rot = cd.affine_images(img, 90.0)  # counter-clockwise on screen: top middle -> left middle
    assert rot[0, 0, 2, 0].item() == pytest.approx(1.0, abs=1e-5)
    assert rot.sum().item() == pytest.approx(1.0, abs=1e-5)
    cw = cd.affine_images(img, torch.tensor([-90.0]))  # clockwise: -> right middle
    assert cw[0, 0, 2, 4].item() == pytest.approx(1.0, abs=1e-5)
    moved = cd.affine_images(img, 0.0, torch.tensor([[1.0, 2.0]]))  # 1 right, 2 down
    assert moved[0, 0, 2, 3].item() == pytest.approx(1.0, abs=1e-5)
    # rotations keep non-square images undistorted: a 180-degree turn flips both axes
    x = torch.rand(1, 1, 4, 6)
    torch.testing.assert_close(cd.affine_images(x, 180.0), x.flip(-1).flip(-2), atol=1e-5, rtol=0)


def test_corruptions_keep_shape_and_range():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(4, 1, 28, 28)
    for kind, (_, levels, _) in cd.CORRUPTIONS.items():
        y = cd.corrupt(x, kind, levels[-1], g)
        assert y.shape == x.shape and y.min() >= 0 and y.max() <= 1
        torch.testing.assert_close(cd.corrupt(x, kind, 0.0, g), x)
    occluded = cd.corrupt(torch.ones(2, 1, 28, 28), "occlusion", 8, g)
    assert (occluded == 0).sum(dim=(1, 2, 3)).tolist() == [64, 64]
    with pytest.raises(ValueError, match="unknown corruption"):
        cd.corrupt(x, "blur", 1.0, g)


# ---- helpers and the SimpleCNN options ---------------------------------------------------------


def test_receptive_field_and_block_shapes():
    from archlab.models.cnn.simple import SimpleCNNConfig, _simple_cnn, feature_sides

    net = _simple_cnn(SimpleCNNConfig(channels=(8, 16), kernel_size=3))
    assert cd.receptive_field(net.features) == 10  # 3, +1 (pool), +2*2 (conv after /2), +2 (pool)
    assert cd.block_shapes(net, 28) == [(1, 28, 28), (8, 14, 14), (16, 7, 7)]
    for kw, sides in [
        ({"stride": 2, "pool": "none"}, [14, 7]),
        ({"padding": "valid"}, [13, 5]),
        ({"padding": "valid", "stride": 2, "pool": "none"}, [13, 6]),
        ({"kernel_size": 7}, [14, 7]),
    ]:
        cfg = SimpleCNNConfig(channels=(8, 16), **kw)
        net = _simple_cnn(cfg)
        shapes = cd.block_shapes(net, 28)
        assert [s[1] for s in shapes[1:]] == sides
        assert (
            feature_sides(
                28,
                2,
                kernel_size=cfg.kernel_size,
                stride=cfg.stride,
                padding=cfg.padding,
                pool=cfg.pool != "none",
            )
            == sides
        )
        assert net(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
        assert net.forward_features(torch.zeros(1, 1, 28, 28)).shape[-1] == sides[-1]


def test_simple_cnn_defaults_unchanged_and_bad_options():
    from archlab.models.cnn.simple import SimpleCNNConfig
    from archlab.registry import create_model

    net = create_model("simple_cnn")
    assert net.config.stride == 1 and net.config.padding == "same"
    assert sum(p.numel() for p in net.parameters()) == 421_738
    assert net.get_classifier() is net.head[-1]
    net.reset_classifier(3)
    assert net(torch.zeros(2, 1, 28, 28)).shape == (2, 3)
    with pytest.raises(ValueError, match="too small"):
        SimpleCNNConfig(channels=(8, 16, 32), image_size=16, padding="valid")
    with pytest.raises(ValueError, match="stride"):
        SimpleCNNConfig(stride=0)
    with pytest.raises(ValueError, match="padding"):
        SimpleCNNConfig(padding="full")


def test_run_config_reports_divergence(tmp_path):
    setup = cd.make_setup(True)
    r = cd.run_config(
        setup,
        tmp_path,
        "nan",
        options={"channels": (4,), "hidden_dim": 0, "batch_norm": False},
        overrides={"train.lr": 1e12, "train.optimizer": "sgd", "train.momentum": 0.0},
    )
    assert r["diverged"] and math.isnan(r["test_acc"]) and r["params"] > 0


@pytest.mark.real_data
def test_run_config_on_an_mnist_subset(shared_data, tmp_path):
    setup = cd.make_setup(True, dataset="mnist", data_root=shared_data, n_train=300)
    assert setup.image_size == 28 and setup.train_size == 54_000
    r = cd.run_config(
        setup,
        tmp_path,
        "mnist",
        options={"channels": (4, 8), "hidden_dim": 0},
        overrides={"train.max_steps": 3},
    )
    assert abs(r["n_train"] - 300) <= 10  # data.label_fraction: a stratified 300-image subset
    assert r["steps"] == 3 and 0.0 <= r["test_acc"] <= 1.0
