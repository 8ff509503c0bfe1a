"""archlab.report.html: a run folder becomes one self-contained page; anything missing is a note."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from safetensors.numpy import save_file
from torch import nn

from archlab.data.base import ArraySplit, DataBundle, DatasetInfo
from archlab.report.html import build_report, load_predictions

N_TEST, K = 24, 3
CLASS_NAMES = ["ant", "bee", "cicada"]
FINAL = {"val/loss": 0.4321, "val/acc": 0.8125, "test/loss": 0.5678, "test/acc": 0.7917}
BEST = {"epoch": 3, "val/acc": 0.8125}


def tiny_cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(4, 6, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(6, K),
    )


def image_bundle(n_test: int = N_TEST) -> DataBundle:
    g = torch.Generator().manual_seed(0)
    info = DatasetInfo(
        name="bugs",
        kind="image",
        input_shape=(3, 8, 8),
        num_classes=K,
        class_names=CLASS_NAMES,
        mean=(0.5, 0.5, 0.5),
        std=(0.25, 0.25, 0.25),
    )

    def split(n: int) -> ArraySplit:
        return ArraySplit(
            torch.randint(0, 256, (n, 3, 8, 8), dtype=torch.uint8, generator=g),
            torch.randint(0, K, (n,), generator=g),
        )

    return DataBundle(info=info, train=split(40), val=split(10), test=split(n_test))


def make_run(
    tmp_path: Path, bundle: DataBundle | None = None, *, model_name: str = "tinycnn", predictions: bool = True
) -> Path:
    run = tmp_path / "runs" / "tinycnn-bugs-1"
    run.mkdir(parents=True)
    config = {
        "model": {"name": model_name, "options": {"width": 4}},
        "data": {"name": "bugs", "val_split": 0.1},
        "train": {"epochs": 3, "lr": 0.001, "seed": 0},
        "system": {"precision": "32-true"},
        "run": {"out_dir": "runs"},
    }
    (run / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    lines = []
    for e in range(3):
        for b in range(5):
            lines.append(
                {
                    "split": "train",
                    "step": e * 5 + b + 1,
                    "epoch": e + (b + 1) / 5,
                    "time": 0.1 * b,
                    "lr": 0.001,
                    "loss": 1.2 - 0.1 * e - 0.01 * b,
                    "acc": 0.5 + 0.1 * e,
                }
            )
        lines.append(
            {
                "split": "val",
                "step": (e + 1) * 5,
                "epoch": e + 1,
                "time": 1.0,
                "loss": 0.9 - 0.1 * e,
                "acc": 0.6 + 0.1 * e,
            }
        )
    lines.append({"split": "test", "step": 15, "epoch": 3, "time": 2.0, "loss": 0.5678, "acc": 0.7917})
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    summary = {
        "model": model_name,
        "dataset": "bugs",
        "family": "cnn",
        "task": "classification",
        "status": "completed",
        "epochs": 3,
        "steps": 15,
        "params": 1234567,
        "train_time_s": 83.5,
        "best": BEST,
        "final": FINAL,
        "device": "cpu",
        "precision": "32-true",
    }
    (run / "summary.json").write_text(json.dumps(summary))
    if predictions:
        targets = (bundle.test.y.numpy() if bundle is not None else np.arange(N_TEST) % K).astype(np.int64)
        rng = np.random.default_rng(0)
        logits = rng.normal(size=(len(targets), K)).astype(np.float32)
        logits[np.arange(len(targets)), targets] += 1.5
        save_file(
            {"logits": logits, "targets": targets},
            str(run / "predictions.safetensors"),
            metadata={"split": "test"},
        )
    return run


def embedded_images(html: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)]


def assert_self_contained(html: str) -> None:
    assert 'src="http' not in html and "src='http" not in html
    assert "<script" not in html.lower()
    assert "<link" not in html.lower()
    assert "url(" not in html  # no CSS-loaded assets
    for src in re.findall(r'src="([^"]*)"', html):
        assert src.startswith("data:image/"), src


def test_full_report(tmp_path):
    bundle = image_bundle()
    run = make_run(tmp_path, bundle)
    path = build_report(run, model=tiny_cnn(), bundle=bundle)
    assert path == run / "report.html" and path.is_file()
    assert path.stat().st_mode & 0o777 == 0o644  # shareable, although written through a private temp file
    html = path.read_text()
    assert_self_contained(html)
    assert "data:image/png;base64," in html
    images = embedded_images(html)
    assert len(images) == 7  # curves, confusion matrix, worst examples, filters, feature maps, Grad-CAM, saliency
    assert all(img[:8] == b"\x89PNG\r\n\x1a\n" for img in images)
    for name in ("learning_curves", "confusion_matrix", "worst_examples", "filters", "feature_maps", "gradcam", "saliency"):
        assert (run / "figures" / f"{name}.png").stat().st_size > 0
    # header
    assert "tinycnn on bugs" in html
    assert "1,234,567 (1.2 M)" in html
    assert "1 min 23 s" in html
    assert "completed" in html and "32-true" in html
    # metrics from summary.json: final (by split) and best
    for value in ("0.4321", "0.8125", "0.5678", "0.7917"):
        assert value in html
    assert re.search(r"<td>test</td><td class=\"num\">0\.5678</td><td class=\"num\">0\.7917</td>", html)
    assert "Best checkpoint" in html
    # sections
    for section in (
        'id="curves"',
        'id="predictions"',
        "Confusion matrix",
        "Worst-classified examples",
        'id="cnn"',
        "First-layer filters",
        "Feature maps",
        'id="config"',
        'id="reproduce"',
    ):
        assert section in html, section
    assert "cicada" in html  # class names from the bundle (per-class table)
    # config as YAML, and the command to reproduce
    assert "val_split: 0.1" in html
    assert f"archlab train tinycnn --data bugs --config {run / 'config.yaml'}" in html
    assert "could not" not in html.lower()


def test_report_matches_predictions_to_the_bundle_by_order(tmp_path):
    bundle = image_bundle()
    run = make_run(tmp_path, bundle)
    logits, targets, split = load_predictions(run / "predictions.safetensors")
    assert split == "test" and logits.shape == (N_TEST, K)
    np.testing.assert_array_equal(targets, bundle.test.y.numpy())
    build_report(run, model=tiny_cnn(), bundle=bundle)
    assert (run / "figures" / "worst_examples.png").is_file()
    # the same predictions against a bundle whose test split is different: no images, a note instead
    other = image_bundle(n_test=N_TEST + 1)
    html = build_report(run, model=tiny_cnn(), bundle=other).read_text()
    assert "match no split" in html
    assert not (run / "figures" / "worst_examples.png").exists()
    assert "Confusion matrix" in html  # still drawn from the predictions alone


def test_missing_predictions_still_reports(tmp_path):
    bundle = image_bundle()
    run = make_run(tmp_path, bundle, predictions=False)
    html = build_report(run, model=tiny_cnn(), bundle=bundle).read_text()
    assert_self_contained(html)
    assert "predictions.safetensors is missing" in html
    assert "0.8125" in html
    assert "First-layer filters" in html and "Feature maps" in html  # the first test image is still used
    assert len(embedded_images(html)) == 5  # curves, filters, feature maps, Grad-CAM, saliency


def test_empty_run_folder_gives_notes_not_errors(tmp_path):
    run = tmp_path / "empty"
    run.mkdir()
    html = build_report(run).read_text()
    assert_self_contained(html)
    assert "summary.json is missing" in html
    assert "metrics.jsonl is missing" in html
    assert "config.yaml is missing" in html
    assert "predictions.safetensors is missing" in html
    assert "unknown model on unknown data" in html


def test_broken_files_give_notes_not_errors(tmp_path):
    run = make_run(tmp_path)
    (run / "summary.json").write_text("{not json")
    (run / "config.yaml").write_text("model: [unclosed\n")
    (run / "metrics.jsonl").write_text('{"split": "train", "epoch": 0.5, "loss": 1.0}\n{"split": "tr')
    (run / "predictions.safetensors").write_bytes(b"garbage")
    html = build_report(run, model=nn.Linear(2, 2), bundle=None).read_text()
    assert "summary.json could not be read" in html
    assert "config.yaml could not be parsed" in html
    assert "This section could not be built" in html  # the predictions
    assert 'id="cnn"' not in html  # a model without Conv2d: no CNN section
    assert "data:image/png;base64," in html  # the one valid metric line still plots


def test_no_bundle_shows_worst_examples_as_table(tmp_path):
    run = make_run(tmp_path)
    html = build_report(run, model=tiny_cnn()).read_text()
    assert "Inputs not shown: no dataset was given" in html
    assert "<th>p(pred)</th>" in html
    assert "First-layer filters" in html
    assert "no image to compute feature maps" in html


def test_tabular_bundle_lists_feature_values(tmp_path):
    g = torch.Generator().manual_seed(1)
    info = DatasetInfo(
        name="iris",
        kind="tabular",
        input_shape=(4,),
        num_classes=K,
        class_names=CLASS_NAMES,
        feature_names=["sepal_len", "sepal_wid", "petal_len", "petal_wid"],
    )
    test = ArraySplit(torch.randn(N_TEST, 4, generator=g), torch.randint(0, K, (N_TEST,), generator=g))
    bundle = DataBundle(info=info, train=test, test=test)
    run = make_run(tmp_path, bundle)
    html = build_report(run, model=nn.Sequential(nn.Linear(4, K)), bundle=bundle).read_text()
    assert "<th>petal_wid</th>" in html
    assert not (run / "figures" / "worst_examples.png").exists()
    assert 'id="cnn"' not in html


def test_text_is_escaped(tmp_path):
    evil = '<script>alert("x")</script>&co'
    run = make_run(tmp_path, model_name=evil)
    path = build_report(run, extra_sections=[("<b>Extra</b>", "<p>family html</p>")])
    html = path.read_text()
    assert "<script" not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;co" in html
    assert "&lt;b&gt;Extra&lt;/b&gt;" in html and "<p>family html</p>" in html
    assert "archlab train &#x27;" in html  # the shell-quoted name, then HTML-escaped


def test_failing_model_forward_is_a_note(tmp_path):
    bundle = image_bundle()
    run = make_run(tmp_path, bundle)
    broken = nn.Sequential(nn.Conv2d(3, 2, 3), nn.Flatten(), nn.Linear(7, K))  # wrong Linear size
    html = build_report(run, model=broken, bundle=bundle).read_text()
    assert "Could not compute the feature maps" in html
    assert "First-layer filters" in html and (run / "figures" / "filters.png").is_file()


def test_missing_run_folder_is_a_clear_error(tmp_path):
    from archlab.utils import ArchlabError

    with pytest.raises(ArchlabError, match="is not a folder"):
        build_report(tmp_path / "nope")


def test_import_report_does_not_import_torch_or_matplotlib():
    code = (
        "import sys, archlab.report; "
        "assert 'torch' not in sys.modules and 'matplotlib' not in sys.modules, 'heavy import'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
