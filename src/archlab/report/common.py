"""Building blocks of archlab's self-contained HTML pages.

Every page carries its own CSS and embeds its images as ``data:image/png;base64`` URIs, so a
report can be mailed, archived or opened from any folder. All text is escaped with
:func:`html.escape`; only the helpers' own markup (and ``extra_sections`` HTML that a caller
builds with these helpers) reaches the page unescaped. No JavaScript.

Families that add sections to a run report (``build_report(..., extra_sections=[(title, html)])``)
build the HTML with :func:`figure_html`, :func:`table_html`, :func:`note_html` and
:func:`markdown_to_html`.
"""

from __future__ import annotations

import base64
import html
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "CSS",
    "esc",
    "figure_html",
    "fmt_count",
    "fmt_duration",
    "fmt_value",
    "img_tag",
    "kv_table_html",
    "markdown_to_html",
    "note_html",
    "page",
    "pre_html",
    "section_html",
    "slug",
    "table_html",
    "write_page",
]

CSS = """
:root { --fg:#1d232b; --muted:#5b6674; --line:#dfe3e8; --bg:#ffffff; --panel:#f6f8fa; --accent:#2f6fb0; }
* { box-sizing: border-box; }
body { font: 15px/1.5 -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; color: var(--fg);
       background: var(--bg); max-width: 1180px; margin: 0 auto; padding: 24px 28px 64px; }
h1 { font-size: 1.6em; margin: 0 0 4px; }
h2 { font-size: 1.25em; margin: 36px 0 10px; padding-bottom: 4px; border-bottom: 1px solid var(--line); }
h3 { font-size: 1.05em; margin: 20px 0 8px; }
a { color: var(--accent); }
.subtitle { color: var(--muted); margin: 0 0 16px; }
nav.toc { font-size: 0.9em; color: var(--muted); margin: 8px 0 0; }
nav.toc a { margin-right: 14px; text-decoration: none; }
table { border-collapse: collapse; margin: 8px 0 12px; font-size: 0.92em; }
th, td { border: 1px solid var(--line); padding: 4px 10px; text-align: left; vertical-align: top; }
th { background: var(--panel); font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
table.kv th { width: 11em; }
.scroll { overflow-x: auto; }
figure { margin: 10px 0 18px; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--line); }
figcaption { color: var(--muted); font-size: 0.9em; margin-top: 4px; }
pre { background: var(--panel); border: 1px solid var(--line); padding: 10px 12px; overflow-x: auto;
      font: 13px/1.45 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
code { font: 0.92em ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; background: var(--panel);
       padding: 0 3px; }
pre code { background: none; padding: 0; }
.note { color: var(--muted); font-style: italic; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 0.85em; font-weight: 600;
         color: #fff; background: #6b7280; }
.badge.completed { background: #2e7d32; } .badge.stopped_early { background: #1565c0; }
.badge.interrupted { background: #b26a00; } .badge.failed { background: #c62828; }
footer { margin-top: 48px; color: var(--muted); font-size: 0.85em; }
"""


def write_page(path: str | Path, html_text: str) -> Path:
    """Write a page atomically (no half-written file on a crash), readable by others (0644).

    The atomic write goes through a private temporary file (mode 0600); a report is meant to be
    served or shared, so the final file is made world-readable.
    """
    from archlab.utils import atomic_write_text

    path = atomic_write_text(path, html_text)
    try:
        os.chmod(path, 0o644)
    except OSError:  # a file system without POSIX modes
        pass
    return path


def esc(value: Any) -> str:
    """``html.escape(str(value))`` (quotes too)."""
    return html.escape("" if value is None else str(value), quote=True)


def slug(text: str) -> str:
    """An id for an anchor: lower case, letters, digits and dashes."""
    return re.sub(r"[^a-z0-9]+", "-", str(text).lower()).strip("-") or "section"


def page(title: str, body: str, *, subtitle: str | None = None, toc: Sequence[tuple[str, str]] = ()) -> str:
    """A complete HTML document: escaped ``title``, inline CSS, ``body`` HTML as given.

    Args:
        title: page title and heading (escaped).
        body: the page's HTML.
        subtitle: a line under the heading (escaped).
        toc: ``(anchor id, label)`` links under the heading.
    """
    nav = ""
    if toc:
        nav = (
            '<nav class="toc">'
            + "".join(f'<a href="#{esc(a)}">{esc(label)}</a>' for a, label in toc)
            + "</nav>"
        )
    sub = f'<p class="subtitle">{esc(subtitle)}</p>' if subtitle else ""
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{esc(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        f"<header><h1>{esc(title)}</h1>{sub}{nav}</header>\n{body}\n"
        "<footer>Generated by archlab. This page is self-contained: every figure is embedded.</footer>\n"
        "</body>\n</html>\n"
    )


def section_html(title: str, content: str, *, anchor: str | None = None) -> str:
    """``<section>`` with an escaped ``<h2>`` title and the given HTML content."""
    return f'<section id="{esc(anchor or slug(title))}">\n<h2>{esc(title)}</h2>\n{content}\n</section>\n'


def note_html(text: str) -> str:
    """A muted note (escaped), e.g. why a section is missing."""
    return f'<p class="note">{esc(text)}</p>'


def pre_html(text: str) -> str:
    """Preformatted, escaped text (config files, commands)."""
    return f"<pre><code>{esc(text)}</code></pre>"


def img_tag(path: str | Path | bytes, alt: str = "") -> str:
    """``<img>`` with a PNG embedded as a base64 data URI (from a file path or PNG bytes)."""
    data = path if isinstance(path, bytes) else Path(path).read_bytes()
    mime = "image/png"
    if not data.startswith(b"\x89PNG"):
        if data[:3] == b"\xff\xd8\xff":
            mime = "image/jpeg"
        elif data[:4] == b"GIF8":
            mime = "image/gif"
        elif data.lstrip()[:4] in (b"<svg", b"<?xm"):
            mime = "image/svg+xml"
    b64 = base64.b64encode(data).decode("ascii")
    return f'<img src="data:{mime};base64,{b64}" alt="{esc(alt)}">'


def figure_html(path: str | Path | bytes, caption: str | None = None) -> str:
    """An embedded image with an optional (escaped) caption; a note if the file is missing."""
    if not isinstance(path, bytes) and not Path(path).is_file():
        return note_html(f"Figure not found: {path}")
    cap = f"<figcaption>{esc(caption)}</figcaption>" if caption else ""
    return f"<figure>{img_tag(path, alt=caption or '')}{cap}</figure>"


def fmt_value(value: Any) -> str:
    """A compact, readable string for a table cell (numbers to 4 decimals or 4 significant digits)."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}" if abs(value) >= 10_000 else str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "—"
        if math.isinf(value):
            return "∞" if value > 0 else "-∞"
        if value == 0:
            return "0"
        if 1e4 <= abs(value) < 1e15 and value == int(value):
            return f"{int(value):,}"
        if 1e-3 <= abs(value) < 1e4:
            return f"{value:.4f}"
        return f"{value:.4g}"
    if hasattr(value, "item") and callable(value.item):  # NumPy / torch scalars
        try:
            return fmt_value(value.item())
        except (TypeError, ValueError):
            pass
    return str(value)


def fmt_duration(seconds: Any) -> str:
    """``42.0 s``, ``3 min 05 s``, ``2 h 07 min``; "—" for a missing value."""
    try:
        s = float(seconds)
    except (TypeError, ValueError):
        return "—"
    if not math.isfinite(s):
        return "—"
    if s < 60:
        return f"{s:.1f} s"
    if s < 3600:
        return f"{int(s // 60)} min {int(s % 60):02d} s"
    return f"{int(s // 3600)} h {int(s % 3600 // 60):02d} min"


def fmt_count(n: Any) -> str:
    """``11,689,512 (11.7 M)`` for parameter counts; "—" for a missing value."""
    try:
        n = int(n)
    except (TypeError, ValueError):
        return "—"
    if n >= 1_000_000_000:
        short = f" ({n / 1e9:.2f} B)"
    elif n >= 1_000_000:
        short = f" ({n / 1e6:.1f} M)"
    elif n >= 10_000:
        short = f" ({n / 1e3:.1f} k)"
    else:
        short = ""
    return f"{n:,}{short}"


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def table_html(
    rows: Iterable[Mapping[str, Any]],
    columns: Sequence[str] | None = None,
    *,
    caption: str | None = None,
    html_columns: Iterable[str] = (),
) -> str:
    """A table of dicts: the columns are ``columns`` or the keys in order of first appearance.

    Cells are formatted with :func:`fmt_value` and escaped, except in ``html_columns`` whose
    values are trusted HTML (links built by the caller).
    """
    rows = list(rows)
    if columns is None:
        columns = []
        for r in rows:
            for k in r:
                if k not in columns:
                    columns.append(k)
    raw = set(html_columns)
    if not rows:
        return note_html(f"{caption}: no rows." if caption else "No rows.")
    head = "".join(f"<th>{esc(c)}</th>" for c in columns)
    body = []
    for r in rows:
        cells = []
        for c in columns:
            v = r.get(c)
            if c in raw:
                cells.append(f"<td>{'' if v is None else v}</td>")
            elif _is_num(v):
                cells.append(f'<td class="num">{esc(fmt_value(v))}</td>')
            else:
                cells.append(f"<td>{esc(fmt_value(v))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    cap = f"<caption>{esc(caption)}</caption>" if caption else ""
    return (
        f'<div class="scroll"><table>{cap}<thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def kv_table_html(items: Iterable[tuple[str, Any]], *, raw_values: bool = False) -> str:
    """A two-column key/value table (keys escaped; values escaped unless ``raw_values``)."""
    rows = []
    for k, v in items:
        cell = v if raw_values else esc(v if isinstance(v, str) else fmt_value(v))
        rows.append(f"<tr><th>{esc(k)}</th><td>{cell}</td></tr>")
    return f'<table class="kv"><tbody>{"".join(rows)}</tbody></table>'


# ----------------------------------------------------------------------------------------------
# a small, safe Markdown subset for experiment write-ups

_SAFE_URL = re.compile(r"^(https?://|mailto:|#|\.{0,2}/|[\w.\-]+(/|$))", re.IGNORECASE)


def _inline(text: str) -> str:
    """Escape, then apply `code`, **bold**, *italic* and [links](url)."""
    parts = re.split(r"(`[^`]+`)", text)
    out = []
    for part in parts:
        if len(part) >= 2 and part.startswith("`") and part.endswith("`"):
            out.append(f"<code>{esc(part[1:-1])}</code>")
            continue
        s = esc(part)

        def link(m: re.Match[str]) -> str:
            label, url = m.group(1), html.unescape(m.group(2))
            if not _SAFE_URL.match(url) or url.lower().startswith(("javascript:", "data:")):
                return m.group(0)
            return f'<a href="{esc(url)}">{label}</a>'

        s = re.sub(r"\[([^\]]+)\]\(([^)\s]+)\)", link, s)
        s = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", s)
        s = re.sub(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])", r"<em>\1</em>", s)
        out.append(s)
    return "".join(out)


def markdown_to_html(text: str) -> str:
    """Render a small Markdown subset safely (all text escaped).

    Supported: ``#``..``####`` headings, paragraphs (blank-line separated), ``-``/``*`` and
    ``1.`` lists, fenced code blocks (```), and inline code, bold, italic and links.
    Anything else is shown as plain text.
    """
    lines = (text or "").replace("\r\n", "\n").split("\n")
    out: list[str] = []
    para: list[str] = []
    list_kind: str | None = None

    def flush_para() -> None:
        if para:
            out.append("<p>" + _inline(" ".join(s.strip() for s in para)) + "</p>")
            para.clear()

    def close_list() -> None:
        nonlocal list_kind
        if list_kind:
            out.append(f"</{list_kind}>")
            list_kind = None

    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if stripped.startswith("```"):
            flush_para()
            close_list()
            code = []
            i += 1
            while i < len(lines) and not lines[i].strip().startswith("```"):
                code.append(lines[i])
                i += 1
            out.append(pre_html("\n".join(code)))
            i += 1
            continue
        m_head = re.match(r"^(#{1,4})\s+(.*)$", stripped)
        m_ul = re.match(r"^[-*+]\s+(.*)$", stripped)
        m_ol = re.match(r"^\d+[.)]\s+(.*)$", stripped)
        if not stripped:
            flush_para()
            close_list()
        elif m_head:
            flush_para()
            close_list()
            level = min(len(m_head.group(1)) + 1, 5)  # the page's h1 is the title
            out.append(f"<h{level}>{_inline(m_head.group(2))}</h{level}>")
        elif m_ul or m_ol:
            flush_para()
            kind = "ul" if m_ul else "ol"
            if list_kind != kind:
                close_list()
                out.append(f"<{kind}>")
                list_kind = kind
            out.append(f"<li>{_inline((m_ul or m_ol).group(1))}</li>")
        elif list_kind and line.startswith(("  ", "\t")) and out and out[-1].endswith("</li>"):
            out[-1] = out[-1][: -len("</li>")] + " " + _inline(stripped) + "</li>"
        else:
            close_list()
            para.append(stripped)
        i += 1
    flush_para()
    close_list()
    return "\n".join(out)
