"""``index.html``: one table linking many runs' reports (``archlab tour``, experiments, sweeps).

Each entry is a dict. Recognised keys (all optional except one of ``name``/``run_dir``)::

    name      the row's label (default: the run folder's name)
    run_dir   the run folder: fills model, dataset, status, time and the metric from its
              summary.json, and the link from its report.html
    model, dataset, status, notes
    metric    the key metric's value, or a "split/name" key looked up in the summary's "final"
    metric_name  how to label it (default: the key found: test/acc, else val/acc, ...)
    time      seconds (training time)
    report    path of the report.html (default: run_dir/report.html when it exists)

Links are relative to ``out_dir`` so the folder can be moved or served as is.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from archlab.report.common import (
    esc,
    fmt_duration,
    fmt_value,
    note_html,
    page,
    section_html,
    table_html,
    write_page,
)

__all__ = ["KEY_METRICS", "build_index"]

#: The metric shown for a run when none is named: the first of these in the summary's "final".
KEY_METRICS = ("test/acc", "val/acc", "test/loss", "val/loss")


def _summary(run_dir: Path) -> dict[str, Any]:
    try:
        data = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _row(entry: Mapping[str, Any], out_dir: Path) -> dict[str, Any]:
    run_dir = Path(entry["run_dir"]) if entry.get("run_dir") else None
    summary = _summary(run_dir) if run_dir else {}
    final = summary.get("final") if isinstance(summary.get("final"), dict) else {}

    metric = entry.get("metric")
    metric_name = entry.get("metric_name")
    if isinstance(metric, str) and metric in final:
        metric_name, metric = metric_name or metric, final[metric]
    elif metric is None:
        for key in KEY_METRICS:
            if key in final:
                metric_name, metric = metric_name or key, final[key]
                break
    metric_text = fmt_value(metric)
    if metric_name and metric is not None:
        metric_text = f"{metric_name} = {metric_text}"

    report = entry.get("report")
    if report is None and run_dir is not None and (run_dir / "report.html").is_file():
        report = run_dir / "report.html"
    link = "—"
    if report is not None:
        try:
            rel = os.path.relpath(Path(report).resolve(), out_dir.resolve())
        except ValueError:  # another drive on Windows
            rel = str(Path(report).resolve())
        link = f'<a href="{esc(quote(Path(rel).as_posix()))}">report</a>'

    return {
        "name": entry.get("name") or (run_dir.name if run_dir else "—"),
        "model": entry.get("model") or summary.get("model") or "—",
        "dataset": entry.get("dataset") or summary.get("dataset") or "—",
        "key metric": metric_text,
        "time": fmt_duration(entry["time"] if entry.get("time") is not None else summary.get("train_time_s")),
        "status": entry.get("status") or summary.get("status") or "—",
        "notes": entry.get("notes") or "",
        "report": link,
    }


def build_index(
    out_dir: str | Path,
    entries: Sequence[Mapping[str, Any]],
    *,
    title: str = "archlab runs",
    intro: str | None = None,
    filename: str = "index.html",
) -> Path:
    """Write ``out_dir/index.html``: a table of runs with links to their reports.

    Args:
        out_dir: the folder of the page (created if needed); links are relative to it.
        entries: one dict per run (see the module docstring).
        title: the page title.
        intro: a paragraph above the table (plain text, escaped).
        filename: the page's file name.

    Returns:
        The path of the page.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, entry in enumerate(entries):
        try:
            rows.append(_row(entry, out_dir))
        except Exception as err:  # noqa: BLE001 - one odd entry must not lose the index
            rows.append(
                {
                    "name": str(entry.get("name", f"entry {i}")),
                    "notes": f"could not be read: {err}",
                    "report": "—",
                }
            )
    columns = ["name", "model", "dataset", "key metric", "time", "status"]
    if any(r.get("notes") for r in rows):
        columns.append("notes")
    columns.append("report")
    body = (f"<p>{esc(intro)}</p>" if intro else "") + (
        table_html(rows, columns, html_columns=["report"]) if rows else note_html("No runs yet.")
    )
    html = page(title, section_html(f"{len(rows)} run{'s' if len(rows) != 1 else ''}", body, anchor="runs"))
    return write_page(out_dir / filename, html)
