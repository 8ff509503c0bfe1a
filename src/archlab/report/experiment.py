"""The report of an experiment: a question, figures, result tables and the answer, in one HTML page.

Experiments (``archlab experiment NAME``) call :func:`write_experiment_report` with the figures
they plotted (PNG files, embedded as base64) and their result tables (lists of dicts). The intro
and conclusions are written in a small Markdown subset (see
:func:`archlab.report.common.markdown_to_html`); all text is escaped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from archlab.report.common import (
    esc,
    figure_html,
    markdown_to_html,
    note_html,
    page,
    section_html,
    table_html,
    write_page,
)

__all__ = ["write_experiment_report"]


def write_experiment_report(
    out_dir: str | Path,
    title: str,
    intro: str,
    figures: Sequence[str | Path | tuple[str, str | Path]] = (),
    tables: Sequence[tuple[str, Sequence[Mapping[str, Any]]]] = (),
    conclusions: str = "",
    *,
    filename: str = "report.html",
    extra_sections: Sequence[tuple[str, str]] | None = None,
) -> Path:
    """Write ``out_dir/report.html`` for an experiment and return its path.

    Args:
        out_dir: the experiment's folder (created if needed).
        title: the page title (escaped).
        intro: the question and the setup, in Markdown (escaped).
        figures: PNG paths, or ``(caption, path)`` pairs; a missing file becomes a note.
        tables: ``(caption, rows)`` pairs; each row a dict (columns in order of first appearance).
        conclusions: the answer, in Markdown.
        filename: the page's file name.
        extra_sections: ``(title, html)`` pairs inserted before the conclusions (HTML as given).

    Returns:
        The path of the page.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    sections: list[tuple[str, str, str]] = []
    if intro:
        sections.append(("Question and setup", "intro", markdown_to_html(intro)))
    if tables:
        parts = []
        for i, item in enumerate(tables):
            try:
                caption, rows = item
                parts.append(f"<h3>{esc(caption)}</h3>" + table_html([dict(r) for r in rows]))
            except Exception as err:  # noqa: BLE001 - a malformed table is reported in the page
                parts.append(note_html(f"Table {i + 1} could not be shown: {type(err).__name__}: {err}"))
        sections.append(("Results", "results", "".join(parts)))
    if figures:
        parts = []
        for item in figures:
            caption, path = item if isinstance(item, tuple) else (None, item)
            try:
                parts.append(figure_html(path, caption or Path(path).stem.replace("_", " ")))
            except Exception as err:  # noqa: BLE001
                parts.append(note_html(f"Figure {path} could not be embedded: {err}"))
        sections.append(("Figures", "figures", "".join(parts)))
    for i, (sec_title, content) in enumerate(extra_sections or []):
        sections.append((str(sec_title), f"extra-{i}", str(content)))
    if conclusions:
        sections.append(("Conclusions", "conclusions", markdown_to_html(conclusions)))
    if not sections:
        sections.append(("Results", "results", note_html("This experiment produced no results.")))
    body = "".join(section_html(t, c, anchor=a) for t, a, c in sections)
    html = page(title, body, subtitle="archlab experiment", toc=[(a, t) for t, a, _ in sections])
    return write_page(out_dir / filename, html)
