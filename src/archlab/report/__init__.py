"""Self-contained HTML reports: a run's ``report.html``, an index of runs, experiment write-ups.

* :func:`build_report` (``archlab.report.html``): the page of one run folder.
* :func:`build_index` (``archlab.report.index``): a table linking many runs' reports.
* :func:`write_experiment_report` (``archlab.report.experiment``): an experiment's question,
  figures, tables and conclusions.
* :mod:`archlab.report.common`: the building blocks (figures, tables, notes, Markdown subset)
  for sections that families add with ``build_report(..., extra_sections=[(title, html)])``.

Importing this package imports neither torch nor matplotlib.
"""

from __future__ import annotations

from archlab.report.common import figure_html, markdown_to_html, note_html, table_html
from archlab.report.experiment import write_experiment_report
from archlab.report.html import build_report
from archlab.report.index import build_index

__all__ = [
    "build_index",
    "build_report",
    "figure_html",
    "markdown_to_html",
    "note_html",
    "table_html",
    "write_experiment_report",
]
