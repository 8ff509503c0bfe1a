"""archlab.report.index and archlab.report.experiment, and the Markdown subset they use."""

from __future__ import annotations

import json
import re

import numpy as np

from archlab.report import build_index, markdown_to_html, write_experiment_report
from archlab.report.common import fmt_count, fmt_duration, fmt_value, table_html


def fake_run(root, name, final, *, report=True, model="mlp", status="completed"):
    run = root / "runs" / name
    run.mkdir(parents=True)
    (run / "summary.json").write_text(
        json.dumps(
            {"model": model, "dataset": "iris", "status": status, "train_time_s": 12.5, "final": final}
        )
    )
    if report:
        (run / "report.html").write_text("<html></html>")
    return run


def test_build_index_reads_runs_and_links_relatively(tmp_path):
    a = fake_run(tmp_path, "a run", {"val/acc": 0.9, "test/acc": 0.9333})
    b = fake_run(tmp_path, "b", {"val/loss": 0.25}, report=False, status="failed")
    out = tmp_path / "site"
    path = build_index(
        out,
        [
            {"run_dir": a},
            {"run_dir": b, "name": "<b>bold</b>"},
            {
                "name": "manual",
                "model": "lenet5",
                "dataset": "digits",
                "metric": 0.987,
                "metric_name": "test/acc",
                "time": 3725,
                "report": a / "report.html",
                "notes": "x & y",
            },
        ],
        title="Tour",
        intro="Three runs.",
    )
    assert path == out / "index.html"
    html = path.read_text()
    assert "data:" not in html and "<script" not in html
    assert "<title>Tour</title>" in html and "<p>Three runs.</p>" in html
    rows = re.findall(r"<tr>(.*?)</tr>", html)[1:]
    assert len(rows) == 3
    # the first run: fields from summary.json, metric test/acc preferred, link relative to out_dir
    assert "<td>a run</td>" in rows[0] and "<td>mlp</td>" in rows[0] and "<td>iris</td>" in rows[0]
    assert "test/acc = 0.9333" in rows[0] and "12.5 s" in rows[0]
    assert 'href="../runs/a%20run/report.html"' in rows[0]
    # the second: escaped name, val/loss, no report
    assert "&lt;b&gt;bold&lt;/b&gt;" in rows[1] and "<b>" not in rows[1]
    assert "val/loss = 0.2500" in rows[1] and "failed" in rows[1] and "<td>—</td>" in rows[1]
    # explicit values win
    assert "test/acc = 0.9870" in rows[2] and "1 h 02 min" in rows[2] and "x &amp; y" in rows[2]
    assert "<th>notes</th>" in html


def test_build_index_empty_and_metric_key(tmp_path):
    html = build_index(tmp_path, []).read_text()
    assert "No runs yet" in html
    run = fake_run(tmp_path, "r", {"val/acc": 0.5, "test/loss": 1.25})
    html = build_index(tmp_path, [{"run_dir": run, "metric": "test/loss"}]).read_text()
    assert "test/loss = 1.2500" in html
    assert 'href="runs/r/report.html"' in html


def test_experiment_report(tmp_path):
    from archlab.viz import plot_learning_curves

    fig = plot_learning_curves(
        [{"split": "train", "epoch": e, "loss": 1 / (e + 1)} for e in range(5)],
        tmp_path / "figs" / "loss_curve.png",
    )
    path = write_experiment_report(
        tmp_path / "exp",
        "Does depth help? <MLP>",
        "# Setup\nWe train **two** MLPs with `lr=1e-3`:\n\n- shallow\n- deep\n\nSee [the paper](https://example.org/p).",
        [fig, ("missing figure", tmp_path / "nope.png")],
        [("Accuracy by depth", [{"depth": 1, "acc": 0.91}, {"depth": 4, "acc": 0.955, "note": "<best>"}])],
        "Depth helps *a little*.",
    )
    assert path == tmp_path / "exp" / "report.html"
    html = path.read_text()
    assert 'src="http' not in html and "<script" not in html
    assert html.count("data:image/png;base64,") == 1
    assert "Figure not found" in html
    assert "<title>Does depth help? &lt;MLP&gt;</title>" in html
    assert "<strong>two</strong>" in html and "<code>lr=1e-3</code>" in html
    assert "<ul>\n<li>shallow</li>\n<li>deep</li>\n</ul>" in html
    assert '<a href="https://example.org/p">the paper</a>' in html
    assert "<em>a little</em>" in html
    assert "<h3>Accuracy by depth</h3>" in html
    assert "<th>depth</th><th>acc</th><th>note</th>" in html
    assert "0.9550" in html and "&lt;best&gt;" in html


def test_markdown_is_safe():
    out = markdown_to_html(
        "<img src=x onerror=alert(1)>\n\n[click](javascript:alert(1)) and `<b>`\n\n```\n<raw>\n```"
    )
    assert "<img" not in out and "&lt;img" in out
    assert 'href="javascript' not in out
    assert "<code>&lt;b&gt;</code>" in out
    assert "<pre><code>&lt;raw&gt;</code></pre>" in out
    assert markdown_to_html("1. one\n2. two").startswith("<ol>")
    assert markdown_to_html("") == ""


def test_formatters():
    assert fmt_value(0.81254) == "0.8125" and fmt_value(2e-5) == "2e-05" and fmt_value(123456) == "123,456"
    assert (
        fmt_value(float("nan")) == "—" and fmt_value(None) == "—" and fmt_value(np.float32(0.5)) == "0.5000"
    )
    assert fmt_value(True) == "True" and fmt_value(0.0) == "0" and fmt_value(50000.0) == "50,000"
    assert fmt_duration(5) == "5.0 s" and fmt_duration(125) == "2 min 05 s" and fmt_duration(None) == "—"
    assert fmt_count(1234) == "1,234" and fmt_count(25_557_032) == "25,557,032 (25.6 M)"
    html = table_html([{"a": 1, "b": "<x>"}, {"c": 2.5}])
    assert "<th>a</th><th>b</th><th>c</th>" in html and "&lt;x&gt;" in html and "2.5000" in html
