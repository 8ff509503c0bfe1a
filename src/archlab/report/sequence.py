"""The report section of sequence runs: what the model says, in its own words.

* text classification: the test sentences the model got most wrong, with their labels;
* language models: a sample continued from the data's first characters (temperature 0.8, seed 0);
* translation: decoded test sentences (``translations.json``) and attention heat maps;
* forecasting: predicted against true values on the test split, with the naive and linear baselines.

Each part is computed from the trained model and the run's dataset; a run without them (a report
rebuilt from files alone) gets a note instead.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from archlab.report.common import esc, figure_html, note_html, pre_html, table_html

__all__ = ["sequence_section", "SEQUENCE_KINDS"]

SEQUENCE_KINDS = ("text", "lm", "seq2seq", "series")


def sequence_section(run_dir: Path, model: Any, bundle: Any, fig_dir: Path) -> str | None:
    """HTML of the section for a sequence run; None for other kinds."""
    info = getattr(bundle, "info", None)
    kind = getattr(info, "kind", None)
    if kind not in SEQUENCE_KINDS:
        return None
    if kind == "seq2seq":
        return _translations(run_dir, model, bundle, fig_dir)
    if model is None:
        return note_html("No model was given to the report: rebuild it with `archlab report RUN` to see samples.")
    if kind == "text":
        return _text_errors(run_dir, bundle)
    if kind == "lm":
        return _samples(model, bundle)
    return _forecasts(model, bundle, fig_dir)


def _text_errors(run_dir: Path, bundle: Any, k: int = 12) -> str:
    import numpy as np

    from archlab.report.html import load_predictions

    path = run_dir / "predictions.safetensors"
    if not path.is_file():
        return note_html("predictions.safetensors is missing: no misclassified sentences to show.")
    logits, targets, split = load_predictions(path)
    part = getattr(bundle, split or "test", None)
    if part is None or len(part) != len(targets):
        return note_html("The predictions do not match the dataset's split: no sentences shown.")
    z = logits - logits.max(axis=1, keepdims=True)
    probs = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    pred = probs.argmax(axis=1)
    wrong = np.nonzero(pred != targets)[0]
    wrong = wrong[np.argsort(-probs[wrong, pred[wrong]])][:k]  # the most confident mistakes first
    names = bundle.info.class_names or [str(i) for i in range(logits.shape[1])]
    vocab = bundle.info.vocab
    rows = [{"sentence": vocab.decode(part.x[i].tolist()), "true": names[targets[i]], "predicted": names[pred[i]],
             "confidence": round(float(probs[i, pred[i]]), 3)} for i in wrong]
    acc = float((pred == targets).mean())
    head = f"<p>{esc(split or 'test')} accuracy {acc:.2%}; the {len(rows)} most confident mistakes:</p>"
    return head + table_html(rows, ["sentence", "true", "predicted", "confidence"])


def _samples(model: Any, bundle: Any, n: int = 400) -> str:
    import torch

    vocab = bundle.info.vocab
    first = bundle.train.x[0, :8][None]  # (1, 8): the corpus's opening tokens as the prompt
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        out = model.generate(first, n, temperature=0.8, top_k=None, generator=gen)
    prompt, text = vocab.decode(first[0].tolist()), vocab.decode(out[0, first.shape[1]:].tolist())
    return (f"<p>A sample of {n} tokens at temperature 0.8 (seed 0), continuing <code>{esc(prompt)}</code>:</p>"
            + pre_html(prompt + text))


def _translations(run_dir: Path, model: Any, bundle: Any, fig_dir: Path) -> str:
    parts = []
    path = run_dir / "translations.json"
    if path.is_file():
        samples = json.loads(path.read_text(encoding="utf-8"))
        for split, rows in samples.items():
            if isinstance(rows, list) and rows:
                parts.append(table_html(rows[:12], caption=f"{split}: decoded sentences"))
    if model is not None:
        from archlab.models.rnn.seq2seq import Seq2Seq
        from archlab.tasks.seq2seq import Seq2SeqTask
        from archlab.viz.attention import plot_attention_grid

        if isinstance(model, Seq2Seq) and model.config.attention != "none":
            task = Seq2SeqTask(model, src_vocab=bundle.info.vocab, tgt_vocab=bundle.info.target_vocab)
            part = bundle.test if bundle.test is not None else bundle.val
            texts = [bundle.info.vocab.decode(part.x[i].tolist()) for i in range(min(4, len(part)))]
            rows = task.translate_with_attention(texts, beam_size=1)
            examples = [{**r, "title": r["translation"]} for r in rows]
            fig = plot_attention_grid(examples, fig_dir / "attention.png")
            parts.append(figure_html(fig, "Attention of the first test sentences (rows: output tokens; "
                                          "columns: source tokens; greedy decoding)."))
    return "".join(parts) or note_html("No decoded sentences were saved with this run.")


def _forecasts(model: Any, bundle: Any, fig_dir: Path, n: int = 300) -> str:
    import torch

    from archlab.models.rnn.forecast import baseline_forecasts, forecast_errors
    from archlab.viz._mpl import new_figure, save_figure, style

    part = bundle.test if bundle.test is not None else bundle.val
    x, y = part.x.float(), part.y.float()
    with torch.no_grad():
        pred = model(x).float()  # (N, H)
    mean = float(bundle.info.mean[0]) if bundle.info.mean else 0.0
    std = float(bundle.info.std[0]) if bundle.info.std else 1.0
    rows = [{"model": "this run", "rmse": forecast_errors(pred, y, std)[0], "mae": forecast_errors(pred, y, std)[1]}]
    rows += [{"model": name, "rmse": r, "mae": m} for name, (r, m) in baseline_forecasts(bundle).items()]
    with style():
        fig = new_figure(8, 3)
        ax = fig.add_subplot(1, 1, 1)
        ax.plot((y[:n, 0] * std + mean).numpy(), label="true", lw=1.2)
        ax.plot((pred[:n, 0] * std + mean).numpy(), label="predicted (next step)", lw=1.0, ls="--")
        ax.set_xlabel("test window")
        ax.set_ylabel("value")
        ax.legend()
        path = save_figure(fig, fig_dir / "forecast.png")
    return (figure_html(path, f"First {min(n, len(y))} test windows: the next value, true and predicted.")
            + table_html(rows, ["model", "rmse", "mae"], caption="Test errors in raw units"))
