"""``report.html`` of a run folder: one self-contained page that says what was trained and how it went.

:func:`build_report` reads what the engine wrote into the run folder::

    config.yaml              the resolved config          -> "Configuration", "How to reproduce"
    summary.json             status, params, final/best    -> "Overview", "Results"
    metrics.jsonl            per-step and per-epoch lines  -> "Learning curves"
    predictions.safetensors  logits/targets of test (val)  -> "Predictions"

and, when given, the trained ``model`` (CNNs get "What the network sees": first-layer filters and
the feature maps of the first test image) and the ``bundle`` (a :class:`~archlab.data.base.DataBundle`
whose test split, else val split, supplies the images of the worst-classified examples).

Every section is built on its own: a missing file or a failing plot becomes a short note in the
page, never an exception. Figures are saved under ``RUN/figures/`` and embedded in the page as
base64 PNGs; the page has inline CSS, no scripts and no external links to load.

torch is not imported here; the CNN plots import it when a model is given.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from archlab.report.common import (
    esc,
    figure_html,
    fmt_count,
    fmt_duration,
    fmt_value,
    kv_table_html,
    note_html,
    page,
    pre_html,
    section_html,
    table_html,
    write_page,
)

__all__ = ["RunFiles", "build_report", "load_predictions"]

REPORT_NAME = "report.html"
FIGURES = "figures"
#: The figures this module writes; removed before a rebuild so none is left over from an older one.
OWN_FIGURES = (
    "learning_curves", "confusion_matrix", "worst_examples", "filters", "feature_maps", "gradcam", "saliency",
    "attention", "attention_mean", "attention_heads", "forecast", "samples", "generative_samples",
    "generative_reconstructions", "generative_interpolation", "generative_latent", "generative_triples",
    "generative_diffusion", "generative_ring",
)  # fmt: skip


@dataclass
class RunFiles:
    """What a run folder holds, read leniently: anything missing or unreadable is None plus a note."""

    run_dir: Path
    summary: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    config_text: str | None = None
    metrics: list[dict[str, Any]] = field(default_factory=list)
    notes: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, run_dir: str | Path) -> RunFiles:
        run = cls(Path(run_dir))
        p = run.run_dir / "summary.json"
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
            run.summary = data if isinstance(data, dict) else {}
        except FileNotFoundError:
            run.notes["summary"] = (
                "summary.json is missing (the run may still be going, or it crashed early)."
            )
        except (OSError, ValueError) as err:
            run.notes["summary"] = f"summary.json could not be read: {err}"
        p = run.run_dir / "config.yaml"
        try:
            run.config_text = p.read_text(encoding="utf-8")
            import yaml

            data = yaml.safe_load(run.config_text)
            run.config = data if isinstance(data, dict) else {}
        except FileNotFoundError:
            run.notes["config"] = "config.yaml is missing."
        except Exception as err:  # noqa: BLE001 - a broken YAML file is reported, not raised
            run.notes["config"] = f"config.yaml could not be parsed: {err}"
        p = run.run_dir / "metrics.jsonl"
        if p.is_file():
            from archlab.viz.curves import read_metrics

            try:
                run.metrics = read_metrics(p)
            except OSError as err:
                run.notes["metrics"] = f"metrics.jsonl could not be read: {err}"
            if not run.metrics and "metrics" not in run.notes:
                run.notes["metrics"] = "metrics.jsonl holds no records yet."
        else:
            run.notes["metrics"] = "metrics.jsonl is missing: no learning curves."
        return run

    def _section(self, name: str) -> dict[str, Any]:
        value = self.config.get(name)
        return value if isinstance(value, dict) else {}

    @property
    def model_name(self) -> str:
        return str(self.summary.get("model") or self._section("model").get("name") or "unknown model")

    @property
    def dataset_name(self) -> str:
        return str(self.summary.get("dataset") or self._section("data").get("name") or "unknown data")


def load_predictions(path: str | Path) -> tuple[Any, Any, str | None]:
    """``(logits (N, K) float, targets (N,) int64, split name or None)`` from ``predictions.safetensors``."""
    import numpy as np
    from safetensors import safe_open
    from safetensors.numpy import load_file

    arrays = load_file(str(path))
    missing = [k for k in ("logits", "targets") if k not in arrays]
    if missing:
        raise ValueError(f"{Path(path).name} has no tensor {missing} (it holds {sorted(arrays)})")
    logits = np.asarray(arrays["logits"], dtype=np.float32)
    targets = np.asarray(arrays["targets"]).astype(np.int64).ravel()
    if logits.ndim != 2 or len(logits) != len(targets):
        raise ValueError(f"expected logits (N, K) and targets (N,), got {logits.shape} and {targets.shape}")
    with safe_open(str(path), framework="np") as f:
        meta = f.metadata() or {}
    return logits, targets, meta.get("split")


def sequence_section(run_dir: Path, model: Any, bundle: Any, fig_dir: Path) -> str | None:
    """Samples, translations, forecasts or misread sentences of sequence runs (:mod:`archlab.report.sequence`)."""
    if getattr(getattr(bundle, "info", None), "kind", None) not in ("text", "lm", "seq2seq", "series"):
        return None
    from archlab.report.sequence import sequence_section as build

    return build(run_dir, model, bundle, fig_dir)


def transformer_section(run_dir: Path, model: Any, bundle: Any, fig_dir: Path) -> str | None:
    """Attention maps of transformer classifiers, decoding strategies of GPTs (:mod:`archlab.report.transformer`)."""
    if getattr(getattr(bundle, "info", None), "kind", None) not in ("text", "lm"):
        return None
    from archlab.report.transformer import transformer_section as build

    return build(Path(run_dir), model, bundle, fig_dir)


def generative_section(run_dir: Path, model: Any, bundle: Any, fig_dir: Path) -> str | None:
    """Samples through training, latent space, translations, diffusion steps and measures of generative
    runs (:mod:`archlab.report.generative`)."""
    if getattr(model, "family", None) != "generative" and not (model is None and (Path(run_dir) / "samples").is_dir()):
        return None
    from archlab.report.generative import generative_section as build

    return build(Path(run_dir), model, bundle, fig_dir)


def build_report(
    run_dir: str | Path,
    *,
    model: Any = None,
    bundle: Any = None,
    extra_sections: Sequence[tuple[str, str]] | None = None,
    max_examples: int = 16,
) -> Path:
    """Write ``run_dir/report.html`` (and ``run_dir/figures/*.png``) and return the page's path.

    Args:
        run_dir: the run folder.
        model: the trained ``nn.Module`` (optional): enables the filter and feature-map figures
            when it contains an ``nn.Conv2d``.
        bundle: the run's ``DataBundle`` (optional): images (or rows) of the worst-classified
            examples, class names, normalisation for the feature maps. Predictions are matched
            to ``bundle.test`` (else ``bundle.val``) by order, after checking that the labels agree.
        extra_sections: ``(title, html)`` pairs a family adds after the standard sections. The
            title is escaped; the HTML is inserted as given (build it with
            :mod:`archlab.report.common`).
        max_examples: how many worst-classified examples to show.

    Returns:
        The path of ``report.html``.
    """
    from archlab.utils import ArchlabError

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ArchlabError(f"{run_dir} is not a folder: pass the run folder that `archlab train` wrote")
    run = RunFiles.load(run_dir)
    fig_dir = run_dir / FIGURES
    for name in OWN_FIGURES:
        (fig_dir / f"{name}.png").unlink(missing_ok=True)
    state: dict[str, Any] = {}

    builders: list[tuple[str, str, Callable[[], str | None]]] = [
        ("Overview", "overview", lambda: _overview(run)),
        ("Results", "results", lambda: _results(run)),
        ("Learning curves", "curves", lambda: _curves(run, fig_dir)),
        ("Predictions", "predictions", lambda: _predictions(run, bundle, fig_dir, max_examples, state)),
        ("What the network sees", "cnn", lambda: _cnn(run, model, bundle, fig_dir, state)),
        ("What the model says", "sequence", lambda: sequence_section(run_dir, model, bundle, fig_dir)),
        ("Attention and decoding", "transformer", lambda: transformer_section(run_dir, model, bundle, fig_dir)),
        ("Samples and measures", "generative", lambda: generative_section(run_dir, model, bundle, fig_dir)),
    ]
    sections: list[tuple[str, str, str]] = []
    for title, anchor, build in builders:
        sections.append((title, anchor, _safe(build)))
    for i, item in enumerate(extra_sections or []):
        try:
            title, content = item
            sections.append((str(title), f"extra-{i}", str(content)))
        except (TypeError, ValueError):
            sections.append(
                (
                    f"Extra section {i}",
                    f"extra-{i}",
                    note_html("extra_sections items must be (title, html) pairs."),
                )
            )
    sections.append(("Configuration", "config", _safe(lambda: _config(run))))
    sections.append(("How to reproduce", "reproduce", _safe(lambda: _reproduce(run))))

    sections = [(t, a, c) for t, a, c in sections if c is not None]
    body = "".join(section_html(t, c, anchor=a) for t, a, c in sections)
    status = run.summary.get("status")
    subtitle = f"run {run_dir.resolve().name}" + (f" · {status}" if status else "")
    html = page(
        f"{run.model_name} on {run.dataset_name}",
        body,
        subtitle=subtitle,
        toc=[(a, t) for t, a, _ in sections],
    )
    return write_page(run_dir / REPORT_NAME, html)


def _safe(build: Callable[[], str | None]) -> str | None:
    try:
        return build()
    except Exception as err:  # noqa: BLE001 - one broken section must not cost the whole report
        return note_html(f"This section could not be built: {type(err).__name__}: {err}")


# ----------------------------------------------------------------------------------------------
# sections


def _overview(run: RunFiles) -> str:
    s = run.summary
    status = s.get("status")
    status_html = f'<span class="badge {esc(status)}">{esc(status)}</span>' if status else esc("unknown")
    items: list[tuple[str, str]] = [
        ("model", esc(run.model_name)),
        ("family", esc(s.get("family") or "—")),
        ("dataset", esc(run.dataset_name)),
        ("task", esc(s.get("task") or "—")),
        ("status", status_html),
    ]
    if s.get("message"):
        items.append(("message", esc(s["message"])))
    items += [
        ("parameters", esc(fmt_count(s.get("params")))),
        ("epochs", esc(fmt_value(s.get("epochs")))),
        ("steps", esc(fmt_value(s.get("steps")))),
        ("training time", esc(fmt_duration(s.get("train_time_s")))),
        ("device", esc(s.get("device") or "—")),
    ]
    if s.get("world_size") not in (None, 1):
        items.append(("processes", esc(fmt_value(s.get("world_size")))))
    items.append(("precision", esc(s.get("precision") or run._section("system").get("precision") or "—")))
    items.append(("run folder", f"<code>{esc(run.run_dir)}</code>"))
    out = kv_table_html(items, raw_values=True)
    if "summary" in run.notes:
        out += note_html(run.notes["summary"])
    return out


def _split_key(key: str) -> tuple[str, str]:
    return tuple(key.split("/", 1)) if "/" in key else ("", key)  # type: ignore[return-value]


def _results(run: RunFiles) -> str:
    final = run.summary.get("final")
    best = run.summary.get("best")
    parts = []
    if isinstance(final, dict) and final:
        by_split: dict[str, dict[str, Any]] = {}
        metric_names: list[str] = []
        for key, value in final.items():
            split, metric = _split_key(str(key))
            by_split.setdefault(split, {})[metric] = value
            if metric not in metric_names:
                metric_names.append(metric)
        order = {"train": 0, "val": 1, "test": 2}
        rows = [
            {"split": split or "—", **values}
            for split, values in sorted(by_split.items(), key=lambda kv: (order.get(kv[0], 3), kv[0]))
        ]
        parts.append("<h3>Final metrics</h3>" + table_html(rows, ["split", *metric_names]))
    else:
        parts.append(
            note_html(
                "No final metrics in summary.json"
                + (f" (status: {run.summary['status']})." if run.summary.get("status") else ".")
            )
        )
    if isinstance(best, dict) and best:
        items = [(str(k), v) for k, v in best.items()]
        parts.append("<h3>Best checkpoint</h3>" + kv_table_html(items))
    return "".join(parts)


def _curves(run: RunFiles, fig_dir: Path) -> str:
    if not run.metrics:
        return note_html(run.notes.get("metrics", "No metric records."))
    from archlab.viz.curves import plot_learning_curves

    path = plot_learning_curves(
        run.metrics, fig_dir / "learning_curves.png", title=f"{run.model_name} on {run.dataset_name}"
    )
    return figure_html(
        path,
        "Training values (faint: every logged step; solid: smoothed), validation at each "
        "evaluation and test at the end, against epochs.",
    )


def _class_names(run: RunFiles, bundle: Any, k: int) -> list[str]:
    names = list(getattr(getattr(bundle, "info", None), "class_names", None) or [])
    if not names:
        names = [str(c) for c in (run.summary.get("class_names") or [])]
    return names if len(names) >= k else names + [str(i) for i in range(len(names), k)]


def _match_split(bundle: Any, targets: Any, preferred: str | None) -> tuple[str | None, Any, str]:
    """The bundle split the predictions were made on (same length and labels), or a reason why none."""
    import numpy as np

    from archlab.viz._mpl import to_numpy

    if bundle is None:
        return None, None, "no dataset was given to the report, so the inputs cannot be shown"
    order = [preferred] if preferred in ("test", "val") else []
    order += [s for s in ("test", "val") if s not in order]
    tried = []
    for name in order:
        split = getattr(bundle, name, None)
        if split is None:
            continue
        tried.append(f"{name} ({len(split)} rows)")
        if len(split) == len(targets) and np.array_equal(to_numpy(split.y).astype(np.int64).ravel(), targets):
            return name, split, ""
    return (
        None,
        None,
        (
            f"the predictions ({len(targets)} rows) match no split of the dataset "
            f"({', '.join(tried) or 'no test or val split'})"
        ),
    )


def _predictions(run: RunFiles, bundle: Any, fig_dir: Path, k: int, state: dict[str, Any]) -> str:
    path = run.run_dir / "predictions.safetensors"
    if not path.is_file():
        return note_html(
            "predictions.safetensors is missing (no test or val split, a multi-process run, or the "
            "run stopped early): no confusion matrix or worst-classified examples."
        )
    from archlab.viz.classification import (
        class_metrics,
        confusion_matrix,
        plot_confusion_matrix,
        plot_worst_examples,
        worst_examples_table,
    )

    logits, targets, split_meta = load_predictions(path)
    num_classes = logits.shape[1]
    names = _class_names(run, bundle, num_classes)
    split_name, split, why_not = _match_split(bundle, targets, split_meta)
    state["split"] = split
    state["split_name"] = split_name
    label = split_name or split_meta or "evaluation"
    parts = [f"<p>{len(targets):,} {esc(label)} samples, {num_classes} classes.</p>"]

    def attempt(build: Callable[[], str]) -> str:
        try:
            return build()
        except Exception as err:  # noqa: BLE001
            return note_html(f"Could not draw this figure: {type(err).__name__}: {err}")

    parts.append("<h3>Confusion matrix</h3>")
    parts.append(
        attempt(
            lambda: figure_html(
                plot_confusion_matrix(
                    logits,
                    targets,
                    fig_dir / "confusion_matrix.png",
                    class_names=names,
                    num_classes=num_classes,
                ),
                "Rows: true class; columns: predicted class. Colour: fraction of the row; numbers: counts.",
            )
        )
    )
    if num_classes <= 50:
        cm = confusion_matrix(targets, logits, num_classes)
        rows = class_metrics(cm, names)
        parts.append(
            "<details><summary>Per-class precision and recall</summary>" + table_html(rows) + "</details>"
        )

    parts.append("<h3>Worst-classified examples</h3>")
    parts.append(
        f"<p>The {min(k, len(targets))} {esc(label)} samples with the highest cross-entropy loss.</p>"
    )
    x = split.x if split is not None else None
    info = getattr(bundle, "info", None)
    x_np = None
    if x is not None:
        from archlab.viz._mpl import to_numpy

        x_np = to_numpy(x)
    if x_np is not None and x_np.ndim == 4:
        parts.append(
            attempt(
                lambda: figure_html(
                    plot_worst_examples(
                        x_np,
                        logits,
                        targets,
                        fig_dir / "worst_examples.png",
                        k=k,
                        class_names=names,
                        mean=getattr(info, "mean", None),
                        std=getattr(info, "std", None),
                    ),
                    "Title: true class, predicted class and its probability (red: wrong).",
                )
            )
        )
        rows = worst_examples_table(logits, targets, k, class_names=names)
    elif x_np is not None and x_np.ndim == 2:
        rows = worst_examples_table(
            logits, targets, k, x=x_np, class_names=names, feature_names=getattr(info, "feature_names", None)
        )
    else:
        rows = worst_examples_table(logits, targets, k, class_names=names)
        if why_not:
            parts.append(note_html(f"Inputs not shown: {why_not}."))
    parts.append(
        table_html(rows)
        if x_np is None or x_np.ndim == 2
        else "<details><summary>As a table</summary>" + table_html(rows) + "</details>"
    )
    return "".join(parts)


def _model_input(img: Any, info: Any) -> Any:
    """One stored image (C, H, W) as the model saw it in evaluation (the dataset's eval transform)."""
    import torch

    x = img if isinstance(img, torch.Tensor) else torch.as_tensor(img)
    if info is not None:
        try:
            from archlab.data.transforms import build_transform
        except ImportError:
            pass
        else:
            return build_transform(info, None, train=False)(x[None])[0].float()
    if x.dtype == torch.uint8:
        x = x.float() / 255.0
        mean, std = getattr(info, "mean", None), getattr(info, "std", None)
        if mean is not None and std is not None:
            m = torch.tensor(mean, dtype=torch.float32).reshape(-1, 1, 1)
            s = torch.tensor(std, dtype=torch.float32).reshape(-1, 1, 1)
            x = (x - m) / s
    return x.float()


def _cnn(run: RunFiles, model: Any, bundle: Any, fig_dir: Path, state: dict[str, Any]) -> str | None:
    if model is None:
        if str(run.summary.get("family", "")).lower() == "cnn":
            return note_html(
                "No model was given to the report: pass it (or use `archlab report RUN`) to see "
                "the first-layer filters and feature maps."
            )
        return None
    from archlab.viz.cnn import find_conv_layers, plot_feature_maps, plot_filters

    convs = find_conv_layers(model)
    if not convs:
        return None  # not a convolutional network: the section does not apply
    parts = ["<h3>First-layer filters</h3>"]
    try:
        w = convs[0][1].weight
        parts.append(
            figure_html(
                plot_filters(model, fig_dir / "filters.png"),
                f"The {w.shape[0]} filters of the first Conv2d, layer '{convs[0][0]}' "
                f"({'×'.join(map(str, w.shape))}: out × in × height × width), "
                "each scaled to its own min-max range.",
            )
        )
    except Exception as err:  # noqa: BLE001
        parts.append(note_html(f"Could not draw the filters: {type(err).__name__}: {err}"))

    parts.append("<h3>Feature maps</h3>")
    split = state.get("split")
    split_name = state.get("split_name")
    if split is None and bundle is not None:
        for name in ("test", "val", "train"):
            split = getattr(bundle, name, None)
            if split is not None and len(split):
                split_name = name
                break
    if split is None or not len(split):
        parts.append(note_html("No dataset was given to the report: no image to compute feature maps for."))
        return "".join(parts)
    img = split.x[0]
    if getattr(img, "dim", lambda: 0)() != 3:
        parts.append(note_html(f"The {split_name} inputs are not images (shape {tuple(split.x.shape)})."))
        return "".join(parts)
    try:
        info = getattr(bundle, "info", None)
        label = int(split.y[0])
        names = list(getattr(info, "class_names", None) or [])
        label_name = names[label] if label < len(names) else str(label)
        path = plot_feature_maps(
            model,
            _model_input(img, info),
            fig_dir / "feature_maps.png",
            image=img,
            title=f"feature maps of the first {split_name} image (class {label_name})",
        )
        parts.append(
            figure_html(
                path,
                "Output of each Conv2d layer (first channels, before the activation), "
                "each channel scaled to its own range.",
            )
        )
    except Exception as err:  # noqa: BLE001
        parts.append(note_html(f"Could not compute the feature maps: {type(err).__name__}: {err}"))
    try:
        parts.append(_attribution(model, split, split_name, getattr(bundle, "info", None), fig_dir))
    except Exception as err:  # noqa: BLE001 - a failing attribution never costs the report
        parts.append(note_html(f"Could not compute Grad-CAM and saliency: {type(err).__name__}: {err}"))
    return "".join(parts)


def _pick_examples(correct: Any, k: int) -> list[int]:
    """Up to ``k`` indices, half misclassified when there are enough, in dataset order."""
    right = [i for i, c in enumerate(correct) if c]
    wrong = [i for i, c in enumerate(correct) if not c]
    n_wrong = min(len(wrong), max(k // 2, k - len(right)))
    return sorted(wrong[:n_wrong] + right[: k - n_wrong])


def _attribution(model: Any, split: Any, split_name: str | None, info: Any, fig_dir: Path, k: int = 8) -> str:
    """Grad-CAM and gradient saliency of ``k`` images of the split, correct and wrong ones mixed."""
    import torch

    from archlab.viz.attribution import _logits, _prepare_input, grad_cam, plot_attribution, saliency

    pool = min(len(split), 64)
    raw = split.x[:pool]
    x = _prepare_input(model, torch.stack([_model_input(img, info) for img in raw]))
    try:
        logits = _logits(model, x)
    except ValueError:
        return ""  # not a classifier (a generator, an autoencoder): attribution does not apply
    y = torch.as_tensor(split.y[:pool]).long().reshape(-1).to(logits.device)
    if logits.shape[1] <= int(y.max()):
        return ""
    pred = logits.argmax(dim=1)
    pick = _pick_examples((pred == y).tolist(), k)
    names = list(getattr(info, "class_names", None) or [])

    def label(c: int) -> str:
        return names[c] if c < len(names) else str(c)

    titles = [f"true {label(int(y[i]))}\npred {label(int(pred[i]))}" for i in pick]
    colors = [None if int(pred[i]) == int(y[i]) else "red" for i in pick]
    images, xs = raw[pick], x[pick]
    n_wrong = sum(c is not None for c in colors)
    what = f"{len(pick)} {split_name or ''} images ({n_wrong} misclassified, red titles)"
    parts = ["<h3>Where the network looks</h3>"]
    if hasattr(model, "cam_layer") and model.cam_layer is None:
        parts.append(note_html("This model has no convolutional feature map for Grad-CAM (cam_layer=None)."))
    else:
        try:
            maps = grad_cam(model, xs)
            path = plot_attribution(
                images, maps, fig_dir / "gradcam.png", titles=titles, title_colors=colors,
                title="Grad-CAM for the predicted class",
            )  # fmt: skip
            parts.append(
                figure_html(
                    path,
                    f"Grad-CAM (Selvaraju et al. 2017) of {what}: the last feature maps weighted by the "
                    "averaged gradient of the predicted class's score, rectified, upsampled and scaled to "
                    "[0, 1] per image. Red: the evidence the network used for its answer.",
                )
            )
        except Exception as err:  # noqa: BLE001
            parts.append(note_html(f"Could not compute Grad-CAM: {type(err).__name__}: {err}"))
    maps = saliency(model, xs)
    path = plot_attribution(
        images, maps, fig_dir / "saliency.png", titles=titles, title_colors=colors,
        title="saliency: |d score / d pixel| for the predicted class",
    )  # fmt: skip
    parts.append(
        figure_html(
            path,
            "Vanilla gradient saliency (Simonyan et al. 2014) of the same images: the largest absolute "
            "gradient of the predicted class's score over the channels of each pixel. "
            "`archlab explain RUN --method smoothgrad` draws a less noisy version.",
        )
    )
    return "".join(parts)


def _config(run: RunFiles) -> str:
    if run.config_text is None:
        return note_html(run.notes.get("config", "config.yaml is missing."))
    out = pre_html(run.config_text.rstrip("\n"))
    if "config" in run.notes:
        out += note_html(run.notes["config"])
    return out


def _reproduce(run: RunFiles) -> str:
    cfg = run.run_dir / "config.yaml"
    cmd = (
        f"archlab train {shlex.quote(run.model_name)} --data {shlex.quote(run.dataset_name)} "
        f"--config {shlex.quote(str(cfg))}"
    )
    out = "<p>Train the same model on the same data with the same resolved configuration:</p>" + pre_html(cmd)
    out += (
        "<p>The seed, schedule, precision and every other setting come from <code>config.yaml</code>; "
        "<code>summary.json</code> records the device and precision this run used.</p>"
    )
    if run.config_text is None:
        out += note_html(
            "config.yaml is missing from this run folder, so the command above cannot be run as is."
        )
    return out
