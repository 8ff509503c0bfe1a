"""Plots for runs and experiments, written as PNG files (matplotlib, headless Agg backend).

Every ``plot_*`` function takes its data first and the output ``path`` after, saves a PNG there
(creating folders), releases the figure and returns the path. torch is imported lazily (only the
CNN plots need it); NumPy arrays and torch tensors are both accepted as data.

* :mod:`~archlab.viz.curves`: learning curves from ``metrics.jsonl``.
* :mod:`~archlab.viz.classification`: confusion matrix, worst-classified examples.
* :mod:`~archlab.viz.cnn`: first-layer filters, feature maps.
* :mod:`~archlab.viz.attention`: attention heat maps (seq2seq, transformers).
"""

from __future__ import annotations

from archlab.viz.attention import plot_attention, plot_attention_grid
from archlab.viz.classification import (
    class_metrics,
    confusion_matrix,
    per_sample_loss,
    plot_confusion_matrix,
    plot_worst_examples,
    softmax,
    to_display_image,
    worst_examples_table,
    worst_indices,
)
from archlab.viz.cnn import (
    collect_feature_maps,
    find_conv_layers,
    first_conv_weight,
    plot_feature_maps,
    plot_filters,
)
from archlab.viz.curves import metric_series, plot_learning_curves, read_metrics

__all__ = [
    "plot_attention",
    "plot_attention_grid",
    "class_metrics",
    "collect_feature_maps",
    "confusion_matrix",
    "find_conv_layers",
    "first_conv_weight",
    "metric_series",
    "per_sample_loss",
    "plot_confusion_matrix",
    "plot_feature_maps",
    "plot_filters",
    "plot_learning_curves",
    "plot_worst_examples",
    "read_metrics",
    "softmax",
    "to_display_image",
    "worst_examples_table",
    "worst_indices",
]
