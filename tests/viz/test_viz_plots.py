"""archlab.viz: the arithmetic helpers exactly, and that every plot writes a real PNG."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import nn

from archlab import viz
from archlab.viz.curves import ema, epoch_means

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def assert_png(path, max_side: int = 1500) -> None:
    assert path.is_file() and path.stat().st_size > 500
    assert path.read_bytes()[:8] == PNG_MAGIC
    import matplotlib.image as mpimg

    img = mpimg.imread(path)
    assert max(img.shape[:2]) <= max_side, img.shape


def fake_records(epochs: int = 4, steps_per_epoch: int = 10) -> list[dict]:
    rng = np.random.default_rng(0)
    recs, step = [], 0
    for e in range(epochs):
        for b in range(steps_per_epoch):
            step += 1
            loss = 2.0 * np.exp(-step / 15) + 0.1 * rng.random()
            recs.append(
                {
                    "split": "train",
                    "step": step,
                    "epoch": e + (b + 1) / steps_per_epoch,
                    "time": step * 0.1,
                    "lr": 1e-3 * (0.5**e),
                    "loss": float(loss),
                    "acc": float(1 - loss / 3),
                }
            )
        recs.append(
            {
                "split": "val",
                "step": step,
                "epoch": e + 1,
                "time": step * 0.1,
                "loss": 1.5 / (e + 1),
                "acc": 0.5 + 0.1 * e,
                "grad_norm": float("nan"),
            }
        )
    recs.append({"split": "test", "step": step, "epoch": epochs, "time": 9.0, "loss": 0.4, "acc": 0.81})
    return recs


# ----------------------------------------------------------------------------------------------
# curves


def test_metric_series_groups_by_split_and_metric():
    xkey, series = viz.metric_series(
        fake_records(epochs=2, steps_per_epoch=3) + [{"split": "val", "epoch": 2, "val/f1": 0.5}]
    )
    assert xkey == "epoch"
    assert set(series) == {"loss", "acc", "lr", "f1"}  # grad_norm is NaN only: dropped
    xs, ys = series["loss"]["val"]
    np.testing.assert_allclose(xs, [1, 2])
    np.testing.assert_allclose(ys, [1.5, 0.75])
    assert len(series["loss"]["train"][0]) == 6
    assert series["acc"]["test"][1].tolist() == [0.81]
    assert "train" not in series["f1"] and series["f1"]["val"][1].tolist() == [0.5]


def test_metric_series_falls_back_to_step():
    xkey, series = viz.metric_series(
        [{"split": "train", "step": 1, "loss": 1.0}, {"split": "train", "step": 2, "loss": 0.5}]
    )
    assert xkey == "step"
    assert series["loss"]["train"][0].tolist() == [1.0, 2.0]


def test_ema_is_debiased_and_epoch_means():
    np.testing.assert_allclose(ema(np.full(10, 3.0), 0.9), np.full(10, 3.0))
    xs = np.array([0.25, 0.5, 0.75, 1.0, 1.5, 2.0])
    ys = np.array([1.0, 2.0, 3.0, 10.0, 20.0, 30.0])
    mx, my = epoch_means(xs, ys)
    np.testing.assert_allclose(my, [2.0, 15.0, 30.0])
    np.testing.assert_allclose(mx, [0.5, 1.25, 2.0])


@pytest.mark.parametrize("smoothing", ["ema", "epoch", "none"])
def test_plot_learning_curves_png(tmp_path, smoothing):
    path = viz.plot_learning_curves(
        fake_records(), tmp_path / "sub" / "curves.png", title="demo", smoothing=smoothing
    )
    assert path == tmp_path / "sub" / "curves.png"
    assert_png(path)


def test_plot_learning_curves_from_jsonl_with_broken_last_line(tmp_path):
    f = tmp_path / "metrics.jsonl"
    f.write_text("\n".join(json.dumps(r) for r in fake_records()) + '\n{"split": "train", "lo')
    assert len(viz.read_metrics(f)) == len(fake_records())
    assert_png(viz.plot_learning_curves(f, tmp_path / "c.png"))


def test_plot_learning_curves_without_numbers_raises(tmp_path):
    with pytest.raises(ValueError, match="no numeric metric"):
        viz.plot_learning_curves([{"split": "train", "step": 1, "epoch": 0.5}], tmp_path / "c.png")
    with pytest.raises(ValueError, match="smoothing"):
        viz.plot_learning_curves(fake_records(), tmp_path / "c.png", smoothing="bogus")


# ----------------------------------------------------------------------------------------------
# classification helpers


def test_confusion_matrix_counts():
    targets = [0, 0, 1, 2, 2, 2, 1]
    preds = [0, 1, 1, 2, 0, 2, 1]
    cm = viz.confusion_matrix(targets, preds)
    expected = np.array([[1, 1, 0], [0, 2, 0], [1, 0, 2]])
    np.testing.assert_array_equal(cm, expected)
    assert cm.dtype == np.int64 and cm.sum() == len(targets)
    # logits (argmax) and torch tensors give the same; num_classes widens the matrix
    logits = torch.nn.functional.one_hot(torch.tensor(preds), 4).float() * 5
    cm4 = viz.confusion_matrix(torch.tensor(targets), logits)
    assert cm4.shape == (4, 4)
    np.testing.assert_array_equal(cm4[:3, :3], expected)
    assert cm4[3].sum() == 0 and cm4[:, 3].sum() == 0
    with pytest.raises(ValueError, match="labels must lie"):
        viz.confusion_matrix([0, 5], [0, 1], num_classes=3)
    with pytest.raises(ValueError, match="targets but"):
        viz.confusion_matrix([0, 1], [0])


def test_class_metrics():
    cm = np.array([[1, 1, 0], [0, 2, 0], [1, 0, 2]])
    rows = viz.class_metrics(cm, ["a", "b"])
    assert [r["class"] for r in rows] == ["a", "b", "2"]
    assert (
        rows[0]["support"] == 2
        and rows[0]["recall"] == pytest.approx(0.5)
        and rows[0]["precision"] == pytest.approx(0.5)
    )
    assert rows[1]["precision"] == pytest.approx(2 / 3) and rows[1]["recall"] == pytest.approx(1.0)


def test_per_sample_loss_matches_torch():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(50, 7, generator=g) * 4
    targets = torch.randint(0, 7, (50,), generator=g)
    ours = viz.per_sample_loss(logits, targets)
    ref = nn.functional.cross_entropy(logits.double(), targets, reduction="none").numpy()
    np.testing.assert_allclose(ours, ref, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(viz.softmax(logits).sum(1), 1.0)


def test_worst_indices_picks_highest_loss():
    n, k = 20, 3
    targets = np.arange(n) % k
    logits = np.zeros((n, k), dtype=np.float32)
    logits[np.arange(n), targets] = 5.0  # confidently right...
    wrong = {7: 9.0, 3: 6.0, 12: 3.0}  # ...except these, confidently wrong by different margins
    for i, margin in wrong.items():
        logits[i] = 0
        logits[i, (targets[i] + 1) % k] = margin
    idx = viz.worst_indices(logits, targets, k=3)
    assert idx.tolist() == [7, 3, 12]
    losses = viz.per_sample_loss(logits, targets)
    assert losses[idx].min() >= np.delete(losses, idx).max()
    assert len(viz.worst_indices(logits, targets, k=100)) == n
    rows = viz.worst_examples_table(logits, targets, 2, class_names=["a", "b", "c"])
    assert [r["index"] for r in rows] == [7, 3]
    assert rows[0]["true"] == "b" and rows[0]["pred"] == "c"
    assert rows[0]["p(pred)"] > 0.99 and rows[0]["loss"] == pytest.approx(losses[7])


def test_worst_examples_table_with_tabular_features():
    logits = np.array([[2.0, 0.0], [0.0, 2.0], [3.0, -3.0]])
    targets = np.array([0, 0, 1])
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    rows = viz.worst_examples_table(logits, targets, 2, x=x, feature_names=["f0", "f1"], max_features=3)
    assert rows[0]["index"] == 2 and rows[0]["f0"] == 8.0 and rows[0]["f1"] == 9.0 and rows[0]["x2"] == 10.0
    assert "x3" not in rows[0]


def test_to_display_image():
    img = np.array([[[0, 255], [51, 102]]] * 3, dtype=np.uint8)  # (3, 2, 2)
    out = viz.to_display_image(img, mean=(0.5, 0.5, 0.5), std=(0.2, 0.2, 0.2))  # uint8: mean/std ignored
    assert out.shape == (2, 2, 3)
    np.testing.assert_allclose(out[..., 0], [[0, 1], [0.2, 0.4]], atol=1e-6)
    grey = viz.to_display_image(torch.tensor([[[0, 255]]], dtype=torch.uint8))
    assert grey.shape == (1, 2) and grey.max() == 1.0
    # float images normalised in training are de-normalised
    raw = np.array([[[0.1, 0.9]]], dtype=np.float32)
    normed = (raw - 0.5) / 0.25
    np.testing.assert_allclose(viz.to_display_image(normed, mean=(0.5,), std=(0.25,)), raw[0], atol=1e-6)
    np.testing.assert_allclose(viz.to_display_image(np.array([[[0.0, 510.0]]])), [[0.0, 1.0]])


# ----------------------------------------------------------------------------------------------
# classification plots


def test_plot_confusion_matrix(tmp_path):
    g = torch.Generator().manual_seed(1)
    logits, targets = torch.randn(100, 5, generator=g), torch.randint(0, 5, (100,), generator=g)
    assert_png(viz.plot_confusion_matrix(logits, targets, tmp_path / "cm.png", class_names=list("abcde")))
    # many classes: no annotations or tick labels, size still capped
    logits, targets = torch.randn(600, 60, generator=g), torch.randint(0, 60, (600,), generator=g)
    assert_png(viz.plot_confusion_matrix(logits, targets, tmp_path / "cm60.png"))
    # from counts
    assert_png(viz.plot_confusion_matrix(np.eye(3, dtype=int) * 4, None, tmp_path / "cm_counts.png"))


@pytest.mark.parametrize("channels,dtype", [(1, torch.uint8), (3, torch.uint8), (3, torch.float32)])
def test_plot_worst_examples_images(tmp_path, channels, dtype):
    g = torch.Generator().manual_seed(2)
    x = torch.randint(0, 256, (30, channels, 12, 12), generator=g).to(dtype)
    logits, targets = torch.randn(30, 4, generator=g), torch.randint(0, 4, (30,), generator=g)
    path = viz.plot_worst_examples(
        x,
        logits,
        targets,
        tmp_path / "worst.png",
        k=10,
        class_names=["w", "x", "y", "z"],
        mean=(0.5,) * channels if dtype.is_floating_point else None,
        std=(0.25,) * channels if dtype.is_floating_point else None,
    )
    assert_png(path)


def test_plot_worst_examples_tabular_and_length_check(tmp_path):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(25, 6, generator=g)
    logits, targets = torch.randn(25, 3, generator=g), torch.randint(0, 3, (25,), generator=g)
    assert_png(
        viz.plot_worst_examples(
            x, logits, targets, tmp_path / "worst_tab.png", k=5, feature_names=list("abcdef")
        )
    )
    with pytest.raises(ValueError, match="differ in length"):
        viz.plot_worst_examples(x[:10], logits, targets, tmp_path / "bad.png")


# ----------------------------------------------------------------------------------------------
# CNN plots


class TinyNet(nn.Module):
    def __init__(self, in_channels: int = 3) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, 5, 3, padding=1), nn.ReLU())
        self.body = nn.Sequential(nn.Conv2d(5, 6, 3, stride=2, padding=1), nn.ReLU())
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 2))

    def forward(self, x):
        return self.head(self.body(self.stem(x)))


def test_find_conv_layers():
    net = TinyNet()
    assert [n for n, _ in viz.find_conv_layers(net)] == ["stem.0", "body.0"]
    assert viz.find_conv_layers(nn.Linear(2, 2)) == []


@pytest.mark.parametrize("in_channels", [1, 3, 4])
def test_plot_filters(tmp_path, in_channels):
    net = TinyNet(in_channels)
    assert viz.first_conv_weight(net).shape == (5, in_channels, 3, 3)
    assert_png(viz.plot_filters(net, tmp_path / "filters.png"))


def test_plot_filters_from_weight_and_errors(tmp_path):
    assert_png(viz.plot_filters(torch.randn(100, 3, 5, 5), tmp_path / "f.png"))  # capped at 64 tiles
    with pytest.raises(ValueError, match=r"no nn\.Conv2d"):
        viz.plot_filters(nn.Sequential(nn.Linear(3, 3)), tmp_path / "g.png")
    with pytest.raises(ValueError, match="conv weight"):
        viz.plot_filters(torch.randn(3, 3), tmp_path / "g.png")


def test_collect_feature_maps_restores_model():
    net = TinyNet().train()
    x = torch.randn(1, 3, 16, 16)
    maps = viz.collect_feature_maps(net, x)
    assert [(n, tuple(o.shape)) for n, o in maps] == [("stem.0", (1, 5, 16, 16)), ("body.0", (1, 6, 8, 8))]
    torch.testing.assert_close(maps[0][1], net.stem[0](x))
    assert net.training
    assert all(not m._forward_hooks for m in net.modules())
    only = viz.collect_feature_maps(net, x, layers=["body.0"])
    assert [n for n, _ in only] == ["body.0"]
    with pytest.raises(ValueError, match="no layer named"):
        viz.collect_feature_maps(net, x, layers=["nope"])


def test_collect_feature_maps_removes_hooks_on_error():
    net = nn.Sequential(nn.Conv2d(3, 2, 3), nn.Flatten(), nn.Linear(5, 2))  # wrong Linear size: forward fails
    with pytest.raises(RuntimeError):
        viz.collect_feature_maps(net, torch.randn(1, 3, 8, 8))
    assert all(not m._forward_hooks for m in net.modules())


def test_plot_feature_maps(tmp_path):
    net = TinyNet()
    img = torch.randint(0, 256, (3, 16, 16), dtype=torch.uint8)
    path = viz.plot_feature_maps(net, img.float() / 255, tmp_path / "fm.png", max_channels=4, image=img)
    assert_png(path)
    with pytest.raises(ValueError, match="one image"):
        viz.plot_feature_maps(net, torch.randn(2, 3, 16, 16), tmp_path / "fm2.png")
    # a conv whose output is 1x1 (a dense layer in disguise) has nothing spatial to show
    dense = nn.Sequential(nn.Conv2d(3, 4, 16))
    with pytest.raises(ValueError, match="no spatial conv outputs"):
        viz.plot_feature_maps(dense, torch.rand(3, 16, 16), tmp_path / "fm3.png")


def test_import_viz_does_not_import_torch():
    code = "import sys, archlab.viz; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_bfloat16_model_and_no_leaked_figures(tmp_path):
    import matplotlib.pyplot as plt

    net = TinyNet().to(torch.bfloat16)
    assert_png(viz.plot_filters(net, tmp_path / "f.png"))
    assert_png(viz.plot_feature_maps(net, torch.rand(3, 16, 16), tmp_path / "fm.png"))
    assert_png(viz.plot_learning_curves(fake_records(), tmp_path / "c.png"))
    assert plt.get_fignums() == []  # figures are detached from pyplot and released after saving
