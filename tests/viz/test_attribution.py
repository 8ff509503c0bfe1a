"""archlab.viz.attribution: Grad-CAM on a model with a known answer, saliency against autograd,
the model left untouched, clear errors, and the report / ``archlab explain`` on a tiny trained run."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from torch import nn

from archlab.viz.attribution import (
    METHODS,
    attribute,
    find_cam_layer,
    grad_cam,
    plot_attribution,
    saliency,
)

R0 = (slice(2, 6), slice(3, 7))  # bright square of channel 0 (rows 2-5, columns 3-6)
R1 = (slice(10, 14), slice(9, 15))  # bright square of channel 1


class TwoBlobs(nn.Module):
    """Class k's score is the sum of feature map k, a copy of input channel k: Grad-CAM of class k
    is feature map k itself (alpha_k = 1, the other alpha 0)."""

    def __init__(self, pool: bool = False) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 2, 1, bias=False)
        with torch.no_grad():
            self.conv.weight.copy_(torch.eye(2)[:, :, None, None])
        self.pool = nn.AvgPool2d(2) if pool else nn.Identity()
        self.cam_layer = "pool"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.pool(self.conv(x))  # (B, 2, h, w)
        return a.sum(dim=(2, 3))  # (B, 2)


def two_blobs(batch: int = 1) -> torch.Tensor:
    x = torch.zeros(batch, 2, 16, 16)
    x[:, 0, R0[0], R0[1]] = 1.0
    x[:, 1, R1[0], R1[1]] = 0.5
    return x


def small_cnn(classes: int = 3) -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(4, 6, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(6, classes),
    )


def peak(m: torch.Tensor) -> tuple[int, int]:
    return tuple(int(v) for v in np.unravel_index(int(m.argmax()), tuple(m.shape)))  # type: ignore[return-value]


# ----------------------------------------------------------------------------------------------
# Grad-CAM


def test_grad_cam_known_answer_is_the_class_feature_map():
    model, x = TwoBlobs(), two_blobs()
    assert int(model(x).argmax()) == 0  # 16 units of 1 beat 24 units of 0.5
    cam0 = grad_cam(model, x)  # predicted class 0
    assert cam0.shape == (1, 16, 16) and cam0.dtype == torch.float32
    torch.testing.assert_close(cam0[0], x[0, 0] / x[0, 0].max())  # exactly map 0, min-max scaled
    cam1 = grad_cam(model, x, target=1)
    torch.testing.assert_close(cam1[0], x[0, 1] / x[0, 1].max())
    assert cam1[0][R1].min() == 1.0 and cam1[0][R0].max() == 0.0


@pytest.mark.parametrize("plus", [False, True])
def test_grad_cam_upsamples_and_peaks_in_the_region(plus):
    model, x = TwoBlobs(pool=True), two_blobs(batch=2)
    cam = grad_cam(model, x, target=[0, 1], plus=plus)  # an 8x8 map, upsampled to 16x16
    assert cam.shape == (2, 16, 16)
    assert 0.0 <= float(cam.min()) and float(cam.max()) == pytest.approx(1.0)
    r, c = peak(cam[0])
    assert R0[0].start <= r < R0[0].stop and R0[1].start <= c < R0[1].stop
    r, c = peak(cam[1])
    assert R1[0].start <= r < R1[0].stop and R1[1].start <= c < R1[1].stop
    assert float(cam[0][R1].max()) < 0.05 and float(cam[1][R0].max()) < 0.05


def test_grad_cam_leaves_the_model_as_it_was():
    model = small_cnn()
    model.train()
    model[1].eval()  # a mixed state (frozen BN) must come back as it was
    state = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(4, 3, 12, 12)
    cam = grad_cam(model, x)
    assert cam.shape == (4, 12, 12)
    assert model.training and not model[1].training and model[4].training
    assert all(p.grad is None for p in model.parameters())
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, state[k])  # BN running stats untouched (eval inside)
    saliency(model, x, method="smoothgrad", samples=2)
    assert model.training and all(p.grad is None for p in model.parameters())


def test_grad_cam_batch_matches_single_images_and_targets():
    model = small_cnn().eval()
    x = torch.randn(3, 3, 10, 10)
    batch = grad_cam(model, x, target=2)
    single = torch.cat([grad_cam(model, x[i], target=2) for i in range(3)])  # (C, H, W) accepted
    torch.testing.assert_close(batch, single, atol=1e-5, rtol=1e-4)
    maps = grad_cam(model, x)
    assert maps.shape == (3, 10, 10)
    assert all(float(m.max()) in (0.0, pytest.approx(1.0)) for m in maps)
    with pytest.raises(ValueError, match="target"):
        grad_cam(model, x, target=[0, 1])
    with pytest.raises(ValueError, match="0..2"):
        grad_cam(model, x, target=5)


def test_default_layer_is_the_last_conv_activation():
    model = small_cnn()
    assert find_cam_layer(model, torch.randn(1, 3, 8, 8)) == "5"  # conv "4", then its ReLU "5"
    no_act = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Conv2d(4, 4, 3), nn.Flatten(), nn.LazyLinear(2))
    no_act(torch.randn(1, 3, 8, 8))
    assert find_cam_layer(no_act, torch.randn(1, 3, 8, 8)) == "1"
    model.cam_layer = "2"
    assert find_cam_layer(model) == "2"
    assert grad_cam(model, torch.randn(2, 3, 8, 8)).shape == (2, 8, 8)
    model.cam_layer = "nope"
    with pytest.raises(ValueError, match="nope"):
        find_cam_layer(model)


class TokenNet(nn.Module):
    """A ViT-like classifier: linear patch embedding, tokens, no convolution."""

    def __init__(self, cam_layer: bool = False) -> None:
        super().__init__()
        self.embed = nn.Linear(3 * 4 * 4, 8)
        self.mix = nn.Linear(8, 8)
        self.head = nn.Linear(8, 3)
        if cam_layer:
            self.cam_layer = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        patches = x.unfold(2, 4, 4).unfold(3, 4, 4)  # (B, 3, 2, 2, 4, 4)
        tokens = self.embed(patches.permute(0, 2, 3, 1, 4, 5).reshape(b, 4, -1))  # (B, 4, 8)
        return self.head(self.mix(tokens).mean(1))  # (B, 3)


def test_models_without_feature_maps_get_a_clear_error():
    x = torch.randn(2, 3, 8, 8)
    for model in (TokenNet(), TokenNet(cam_layer=True)):
        with pytest.raises(ValueError, match="saliency"):
            grad_cam(model, x)
        assert saliency(model, x).shape == (2, 8, 8)  # the suggested alternative works
    with pytest.raises(ValueError, match=r"feature map .*\(2, 4, 8\)"):
        grad_cam(TokenNet(), x, layer="mix")
    with pytest.raises(ValueError, match="logits"):
        grad_cam(nn.Sequential(nn.Conv2d(3, 2, 3)), x)


# ----------------------------------------------------------------------------------------------
# saliency


def test_saliency_is_the_autograd_gradient_of_the_score():
    model = small_cnn().eval()
    x = torch.randn(3, 3, 10, 10)
    xg = x.clone().requires_grad_(True)
    logits = model(xg)
    target = logits.argmax(1)
    logits.gather(1, target[:, None]).sum().backward()
    expected = xg.grad.abs().amax(dim=1)
    torch.testing.assert_close(saliency(model, x), expected)
    torch.testing.assert_close(saliency(model, x, method="input_x_gradient"), (xg.grad * x).abs().amax(dim=1))
    xg.grad = None
    model(xg)[:, 1].sum().backward()
    torch.testing.assert_close(saliency(model, x, target=1), xg.grad.abs().amax(dim=1))
    with pytest.raises(ValueError, match="method"):
        saliency(model, x, method="integrated")  # type: ignore[arg-type]


def test_smoothgrad_is_reproducible_and_reduces_to_the_gradient():
    model = small_cnn().eval()
    x = torch.randn(2, 3, 8, 8)
    a = saliency(model, x, method="smoothgrad", samples=5, seed=3)
    b = saliency(model, x, method="smoothgrad", samples=5, seed=3)
    c = saliency(model, x, method="smoothgrad", samples=5, seed=4)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not torch.equal(a, c)
    torch.manual_seed(0)
    d = saliency(model, x, method="smoothgrad", samples=5)
    torch.manual_seed(0)
    e = saliency(model, x, method="smoothgrad", samples=5)
    torch.testing.assert_close(d, e, rtol=0, atol=0)
    no_noise = saliency(model, x, method="smoothgrad", samples=3, noise=0.0)
    torch.testing.assert_close(no_noise, saliency(model, x), atol=1e-6, rtol=1e-5)


def test_attribute_dispatches_every_method():
    model = small_cnn().eval()
    x = torch.randn(2, 3, 8, 8)
    for method in METHODS:
        out = attribute(model, x, method, samples=2)
        assert out.shape == (2, 8, 8) and torch.isfinite(out).all(), method
    with pytest.raises(ValueError, match="gradcam"):
        attribute(model, x, "lime")


def test_plot_attribution_grey_and_rgb(tmp_path):
    grey = (np.random.default_rng(0).random((3, 1, 8, 8)) * 255).astype(np.uint8)
    p = plot_attribution(grey, torch.rand(3, 4, 4), tmp_path / "g.png", titles=["a", "b\nc", "d"],
                         title_colors=[None, "red", None], title="grey")  # fmt: skip
    assert p.stat().st_size > 0
    rgb = torch.randn(5, 3, 12, 12)
    p = plot_attribution(rgb, torch.rand(5, 12, 12), tmp_path / "c.png", mean=(0.5,) * 3, std=(0.2,) * 3,
                         show_input=False, ncols=2)  # fmt: skip
    assert p.stat().st_size > 0
    with pytest.raises(ValueError, match="titles"):
        plot_attribution(rgb, torch.rand(5, 12, 12), tmp_path / "x.png", titles=["a"])
    with pytest.raises(ValueError, match="maps"):
        plot_attribution(rgb, torch.rand(4, 12, 12), tmp_path / "x.png")


# ----------------------------------------------------------------------------------------------
# a tiny trained run: report and CLI


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    import archlab

    out = tmp_path_factory.mktemp("runs")
    run = archlab.train(
        "simple_cnn_small",
        "digits",
        overrides={
            "train.epochs": 1,
            "run.out_dir": str(out),
            "run.name": "cnn",
            "system.tensorboard": False,
            "system.progress": False,
        },
    )
    return run


def test_report_of_a_trained_cnn_has_gradcam_and_saliency(tiny_run):
    figures = tiny_run.path / "figures"
    assert (figures / "gradcam.png").stat().st_size > 0
    assert (figures / "saliency.png").stat().st_size > 0
    html = (tiny_run.path / "report.html").read_text()
    assert "Where the network looks" in html and "Grad-CAM" in html
    assert "Could not compute Grad-CAM" not in html and "Could not draw" not in html


def test_report_without_cam_layer_still_draws_saliency(tiny_run, tmp_path):
    from archlab.report.html import build_report

    model = tiny_run.model
    missing = object()
    old = model.__dict__.get("cam_layer", missing)
    model.cam_layer = None
    try:
        build_report(tiny_run.path, model=model, bundle=tiny_run.bundle)
    finally:
        if old is missing:
            del model.cam_layer
        else:
            model.cam_layer = old
    html = (tiny_run.path / "report.html").read_text()
    assert "cam_layer=None" in html
    assert not (tiny_run.path / "figures" / "gradcam.png").exists()
    assert (tiny_run.path / "figures" / "saliency.png").is_file()


def test_cli_explain_writes_a_png(tiny_run, tmp_path, capsys):
    from archlab.cli import main

    assert main(["explain", str(tiny_run.path), "--count", "3"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 4 and re.match(r"test #0: true \S+, predicted \S+ \([01]\.\d+\)", out[0])
    assert out[-1].endswith("explain_gradcam_test.png")
    assert (tiny_run.path / "figures" / "explain_gradcam_test.png").is_file()
    png = tmp_path / "why.png"
    args = ["explain", str(tiny_run.path), "--method", "smoothgrad", "--split", "val", "--index", "4", "1"]
    args += ["--out", str(png)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "val #4" in out and "val #1" in out and png.stat().st_size > 0
    assert main(["explain", str(tiny_run.path), "--index", "100000"]) == 2
    assert "outside" in capsys.readouterr().err
    assert main(["explain", str(tiny_run.path), "--layer", "nope"]) == 2
    assert "nope" in capsys.readouterr().err
