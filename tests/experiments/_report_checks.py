"""The checks every experiment's quick-mode report must pass (imported by the experiment tests)."""

from __future__ import annotations

from pathlib import Path


def check_quick_report(res: dict, out: Path, figures: tuple[str, ...]) -> None:
    """The report of a quick run: its figures written and embedded, conclusions in words, rows, timing."""
    assert Path(res["report"]) == out / "report.html"
    html = (out / "report.html").read_text(encoding="utf-8")
    for fig in figures:
        assert (out / fig).stat().st_size > 1_000, fig
    assert html.count("data:image/png;base64") >= len(figures)
    conclusions = html[html.index('id="conclusions"') :]
    assert conclusions.count(" ") > 30
    assert res["seconds"] > 0 and res["rows"]
    assert res["setup"]["quick"]
