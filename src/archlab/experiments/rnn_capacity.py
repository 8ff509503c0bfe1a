"""Recurrent text classifiers: hidden size and depth, and bidirectional against unidirectional.

Two experiments (family ``rnn``), each writing ``report.html`` with figures, a results table and
conclusions computed from the numbers. Every run is one :func:`archlab.train` of an Embedding +
RNN classifier (:mod:`archlab.models.rnn.text`) on one CPU thread (``system.threads=1``); the full
versions take a few minutes, ``quick=True`` a smoke test of seconds.

``rnn-size-depth``     GRU and LSTM classifiers of hidden size 16 to 128 and 1 to 3 stacked layers
                       on the generated ``sentiment`` set (negation and contrast), the same Adam
                       budget each: test accuracy, parameters and training time per configuration.
``rnn-bidirectional``  a unidirectional LSTM against a bidirectional one with the same hidden size
                       per direction and one with (about) the same number of parameters, each with
                       ``last`` and ``max`` pooling, on ``sentiment`` and on a 10k-sentence
                       stratified subset of SST-2 (when ``../shared/data/sst2`` is present).

Parameters of one LSTM layer and direction (torch keeps two bias vectors), input size I, hidden H::

    P_lstm = 4 (H I + H H + 2 H)          (GRU: 3 (H I + H H + 2 H))

A stacked layer above the first sees I = D H (D = 2 directions or 1). The recurrent part grows as
H^2 and a step costs O(H^2 + H I) multiply-adds, so the time per epoch grows with the parameters
of the recurrence (not with the embedding, a table look-up). A bidirectional layer doubles the
parameters and the work at the same H; at equal parameters its H is about 1/sqrt(2) of the
unidirectional one's.

Pooling: ``last`` reads ``[h_fwd(last real token) ; h_bwd(first token)]``, so a forward-only RNN
must carry a negation ("not ... good") to the end of the sentence in its state, while the backward
direction reads the sentence from the end and meets the flipped word before its negation. ``max``
takes the element-wise maximum of the outputs over the real tokens, so a feature that fires once
anywhere in the sentence reaches the classifier directly (Conneau et al. 2017).

References:
    M. Schuster, K. K. Paliwal, "Bidirectional recurrent neural networks", IEEE Trans. Signal
    Processing 45(11), 1997, https://doi.org/10.1109/78.650093
    A. Graves, J. Schmidhuber, "Framewise phoneme classification with bidirectional LSTM and other
    neural network architectures", Neural Networks 18(5), 2005
    R. Pascanu, C. Gulcehre, K. Cho, Y. Bengio, "How to construct deep recurrent neural networks",
    ICLR 2014, https://arxiv.org/abs/1312.6026 (stacking)
    J. Chung, C. Gulcehre, K. Cho, Y. Bengio, "Empirical evaluation of gated recurrent neural
    networks on sequence modeling", 2014, https://arxiv.org/abs/1412.3555
    A. Conneau, D. Kiela, H. Schwenk, L. Barrault, A. Bordes, "Supervised learning of universal
    sentence representations from natural language inference data", EMNLP 2017,
    https://arxiv.org/abs/1705.02364 (BiLSTM with max pooling)
    R. Socher et al., "Recursive deep models for semantic compositionality over a sentiment
    treebank", EMNLP 2013 (SST)

Deviations from the paper:
    - Budgets are small so that each experiment fits ten CPU minutes: 3 (``rnn-size-depth``) or 4
      (``rnn-bidirectional``) epochs of Adam on 2,400 generated training
      sentences, and 3 epochs on a 17% stratified share (about 10,300 rows) of archlab's SST-2
      training split; the papers trained to convergence. One seed per run, so
      differences of a point or two are within the noise.
    - The SST-2 subset is archlab's ``data.label_fraction=0.17`` (a stratified share of the rows,
      drawn from ``train.seed``); the vocabulary is still built on the whole training split, and
      sentences are cut at 48 tokens. Test accuracy is on the 872 sentences of ``test.tsv``.
    - The stacked layers have no dropout between them (``rnn_dropout=0``): at this budget the
      models underfit rather than overfit.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from archlab.experiments.resnet_experiments import num_threads, train_run
from archlab.registry import register_experiment

__all__ = ["SIZE_FULL", "SIZE_QUICK", "BI_FULL", "BI_QUICK", "sst2_root", "matched_hidden", "count_params"]

CELL_MODELS = {"gru": "gru_classifier", "lstm": "lstm_classifier"}
LABELS = {"gru": "GRU", "lstm": "LSTM"}

#: ``rnn-size-depth``: the grid and the identical Adam budget of every run.
SIZE_FULL: dict[str, Any] = {
    "cells": ("gru", "lstm"), "hidden": (16, 32, 64, 128), "layers": (1, 2, 3), "n_samples": 3000,
    "embed_dim": 32, "epochs": 3, "batch_size": 32, "lr": 3e-3,
}  # fmt: skip
SIZE_QUICK: dict[str, Any] = {
    "cells": ("gru",), "hidden": (8, 16), "layers": (1, 2), "n_samples": 600,
    "embed_dim": 16, "epochs": 1, "batch_size": 32, "lr": 3e-3,
}  # fmt: skip

#: ``rnn-bidirectional``: per dataset, the model size and budget (SST-2 only when present).
BI_FULL: dict[str, Any] = {
    "sentiment": {"hidden": 32, "embed_dim": 32, "epochs": 4, "batch_size": 32, "lr": 3e-3,
                  "data_options": {"n_samples": 3000}},
    "sst2": {"hidden": 64, "embed_dim": 64, "epochs": 3, "batch_size": 64, "lr": 2e-3,
             "data_options": {"max_len": 48}, "label_fraction": 0.17},
}  # fmt: skip
BI_QUICK: dict[str, Any] = {
    "sentiment": {"hidden": 32, "embed_dim": 32, "epochs": 4, "batch_size": 32, "lr": 3e-3,
                  "data_options": {"n_samples": 3000}},
}  # fmt: skip
POOLINGS = ("last", "max")


# --------------------------------------------------------------------------------------------------
# Shared pieces
# --------------------------------------------------------------------------------------------------


def sst2_root(data_root: str | os.PathLike[str] | None = None) -> str | None:
    """The data folder that holds ``sst2/`` (:func:`archlab.utils.find_data_root`); None when none has it."""
    from archlab.utils import find_data_root

    return find_data_root("sst2", data_root)


def count_params(
    cell: str,
    hidden_dim: int,
    *,
    embed_dim: int,
    num_layers: int = 1,
    bidirectional: bool = False,
    vocab_size: int = 1000,
) -> int:
    """Parameters of the registered ``{cell}_classifier`` with these options (2 classes)."""
    from archlab.registry import create_model

    net = create_model(CELL_MODELS[cell], vocab_size=vocab_size, embed_dim=embed_dim, hidden_dim=hidden_dim,
                       num_layers=num_layers, bidirectional=bidirectional)  # fmt: skip
    return sum(p.numel() for p in net.parameters())


def matched_hidden(hidden_dim: int, *, embed_dim: int, cell: str = "lstm", num_layers: int = 1) -> int:
    """The hidden size per direction of a bidirectional model whose parameter count is closest to
    that of the unidirectional model of ``hidden_dim`` (the embedding is the same in both)."""
    target = count_params(cell, hidden_dim, embed_dim=embed_dim, num_layers=num_layers)
    return min(
        range(1, hidden_dim + 1),
        key=lambda h: abs(
            count_params(cell, h, embed_dim=embed_dim, num_layers=num_layers, bidirectional=True) - target
        ),
    )


def _run(
    out_dir: Path,
    name: str,
    cell: str,
    dataset: str,
    options: dict[str, Any],
    budget: dict[str, Any],
    root: str | None = None,
    threads: int | None = 1,
) -> dict[str, Any]:
    """One training run (:func:`train_run`), the trained module dropped."""
    overrides = {
        "train.epochs": budget["epochs"], "train.batch_size": budget["batch_size"], "train.lr": budget["lr"],
        "data.options": dict(budget.get("data_options", {})), "train.seed": int(budget.get("seed", 0)),
        "system.threads": 1,
    }  # fmt: skip
    if budget.get("label_fraction", 1.0) < 1.0:
        overrides["data.label_fraction"] = budget["label_fraction"]
    r = train_run(out_dir, name, CELL_MODELS[cell], dataset, options=options, overrides=overrides, root=root,
                  threads=threads)  # fmt: skip
    r.pop("model")
    r.pop("history")
    return r


def _write(out_dir: Path, title: str, intro: str, figures: list, tables: list, conclusions: str) -> Path:
    from archlab.report.experiment import write_experiment_report

    return write_experiment_report(
        out_dir, title, intro, figures=figures, tables=tables, conclusions=conclusions
    )


# --------------------------------------------------------------------------------------------------
# rnn-size-depth
# --------------------------------------------------------------------------------------------------


@register_experiment(
    "rnn-size-depth",
    family="rnn",
    description="GRU/LSTM text classifiers of hidden size 16-128 and 1-3 layers: accuracy, params, time",
)
def rnn_size_depth(
    out_dir: Path,
    quick: bool = False,
    *,
    cells: Sequence[str] | None = None,
    hidden: Sequence[int] | None = None,
    layers: Sequence[int] | None = None,
    epochs: int | None = None,
    seed: int = 0,
    threads: int | None = 1,
) -> dict[str, Any]:
    """Hidden size and number of layers of a recurrent classifier on the generated ``sentiment`` set.

    Args:
        out_dir: the experiment's folder.
        quick: a GRU of hidden size 8 and 16, 1 and 2 layers, one epoch on 600 sentences.
        cells: ``"gru"`` and/or ``"lstm"`` (default both).
        hidden: hidden sizes (default 16, 32, 64, 128).
        layers: numbers of stacked layers (default 1, 2, 3).
        epochs: the Adam budget of every run (default 3).
        seed: ``train.seed`` of every run (initialisation and batch order; the sentences are fixed).
        threads: torch CPU threads (1).
    """
    from archlab.viz._mpl import new_figure, save_figure

    t0, c0 = time.perf_counter(), time.process_time()
    c = dict(SIZE_QUICK if quick else SIZE_FULL)
    cells = [str(m).lower() for m in (cells or c["cells"])]
    if not cells or any(m not in CELL_MODELS for m in cells):
        raise ValueError(f"cells must be some of {sorted(CELL_MODELS)}, got {list(cells)}")
    hidden = sorted(int(h) for h in (hidden or c["hidden"]))
    layers = sorted(int(n) for n in (layers or c["layers"]))
    budget = {"epochs": int(epochs or c["epochs"]), "batch_size": c["batch_size"], "lr": c["lr"],
              "data_options": {"n_samples": c["n_samples"]}, "seed": int(seed)}  # fmt: skip
    out_dir = Path(out_dir)

    runs, rows = [], []
    with num_threads(threads):
        for m in cells:
            for n in layers:
                for h in hidden:
                    r = _run(out_dir, f"{m}_h{h}_l{n}", m, "sentiment",
                             {"hidden_dim": h, "num_layers": n, "embed_dim": c["embed_dim"]},
                             budget)  # fmt: skip
                    r.update(cell=m, hidden=h, layers=n)
                    runs.append(r)
                    rows.append({
                        "cell": LABELS[m], "layers": n, "hidden": h, "params": r["params"],
                        "test acc": round(r["test_acc"], 4), "test loss": round(r["test_loss"], 4),
                        "train s": round(r["train_seconds"], 2),
                    })  # fmt: skip

    def acc(m: str, n: int, h: int) -> float:
        return next(r["test_acc"] for r in runs if (r["cell"], r["layers"], r["hidden"]) == (m, n, h))

    # Figure 1: accuracy against hidden size, one line per depth, one panel per cell.
    fig = new_figure(5.5 * len(cells), 4)
    for k, m in enumerate(cells):
        ax = fig.add_subplot(1, len(cells), k + 1)
        for i, n in enumerate(layers):
            ax.plot(hidden, [acc(m, n, h) for h in hidden], "o-", color=f"C{i}", label=f"{n} layer(s)")
        ax.axhline(0.5, color="grey", ls="--", label="chance")
        ax.set_xscale("log", base=2)
        ax.set_xticks(hidden, [str(h) for h in hidden])
        ax.set(xlabel="hidden size", ylabel="test accuracy", title=f"{LABELS[m]} on sentiment")
        ax.legend(fontsize=8)
    acc_png = save_figure(fig, out_dir / "accuracy_vs_hidden.png")

    # Figure 2: training time against parameters.
    fig = new_figure(6, 4.5)
    ax = fig.add_subplot(1, 1, 1)
    markers = {"gru": "o", "lstm": "s"}
    for i, n in enumerate(layers):
        for m in cells:
            sel = [r for r in runs if r["cell"] == m and r["layers"] == n]
            ax.scatter([r["params"] for r in sel], [r["train_seconds"] for r in sel], color=f"C{i}",
                       marker=markers[m], label=f"{LABELS[m]}, {n} layer(s)")  # fmt: skip
    ax.set(xscale="log", yscale="log", xlabel="parameters (embedding included)", ylabel="training time (s)",
           title=f"Training time, {budget['epochs']} epoch(s), 1 thread")  # fmt: skip
    ax.legend(fontsize=7)
    time_png = save_figure(fig, out_dir / "time_vs_params.png")

    # Conclusions from the numbers.
    best = max(runs, key=lambda r: r["test_acc"])
    near = min((r for r in runs if r["test_acc"] >= best["test_acc"] - 0.01), key=lambda r: r["params"])
    lines = [
        f"- Best: **{LABELS[best['cell']]}, {best['layers']} layer(s), hidden {best['hidden']}** at "
        f"{best['test_acc']:.1%} test accuracy ({best['params']:,} parameters, "
        f"{best['train_seconds']:.1f} s). The smallest model within one point of it: "
        f"{LABELS[near['cell']]}, {near['layers']} layer(s), hidden "
        f"{near['hidden']} ({near['test_acc']:.1%}, {near['params']:,} parameters)."
    ]
    by_depth = {}
    for m in cells:
        for n in layers:
            by_depth[(m, n)] = float(np.mean([acc(m, n, h) for h in hidden]))
        deep, shallow = by_depth[(m, layers[-1])], by_depth[(m, layers[0])]
        by_width = [float(np.mean([acc(m, n, h) for n in layers])) for h in hidden]
        effect = (
            "deeper helps"
            if deep > shallow + 0.01
            else "deeper hurts"
            if deep < shallow - 0.01
            else "no clear effect of depth"
        )
        lines.append(
            f"- **{LABELS[m]}**: mean accuracy over the hidden sizes "
            + ", ".join(f"{by_depth[(m, n)]:.1%} with {n} layer(s)" for n in layers)
            + f" ({layers[-1]} against {layers[0]} layer(s): {effect} at this budget); over the depths, "
            + ", ".join(f"{a:.1%} at hidden {h}" for h, a in zip(hidden, by_width))
            + "."
        )
    ps = np.log([r["params"] for r in runs])
    ts = np.log([max(r["train_seconds"], 1e-3) for r in runs])
    slope = float(np.polyfit(ps, ts, 1)[0]) if len(runs) > 2 and np.ptp(ps) > 0 else math.nan
    lines.append(
        f"- Time: training time grows about as (parameters)^{slope:.2f} over this grid (log-log fit). "
        + (
            "An exponent well below 1 means these small models are dominated by per-step overhead (the "
            "sequential loop over the T time steps and its kernel launches) rather than by the matrix "
            "products: doubling H quadruples the recurrent weights but not the time. "
            if slope < 0.7
            else "The matrix products dominate: the time follows the parameter count. "
        )
        + "Each extra layer adds one more sequential pass over the sentence, so depth costs more time per "
        "parameter than width. Times are single runs on a shared machine."
    )
    lines.append(
        "- One seed per configuration: differences of a few points, and curves that are not monotone in "
        "the hidden size, are within the run-to-run noise of this short budget."
    )
    intro = (
        "How large and how deep must a recurrent text classifier be? "
        + ", ".join(LABELS[m] for m in cells)
        + f" classifiers (embedding {c['embed_dim']}, last-state pooling) of hidden size "
        f"{', '.join(map(str, hidden))} with {', '.join(map(str, layers))} stacked layers, each trained for "
        f"{budget['epochs']} epoch(s) of Adam (lr {c['lr']}, batch {c['batch_size']}) on the generated "
        f"`sentiment` set ({c['n_samples']:,} sentences, 80/10/10 split; labels flipped by negations and by "
        "'but'/'although' clauses), on one CPU thread. Test accuracy on the held-out 10%."
        + (" **Quick mode**: a smoke test, too short to learn much." if quick else "")
    )
    report = _write(
        out_dir,
        "Recurrent classifiers: hidden size and depth",
        intro,
        [("Test accuracy against hidden size, one line per depth", acc_png),
         ("Training time against parameters", time_png)],
        [("Runs", rows)],
        "\n".join(lines),
    )  # fmt: skip
    return {
        "report": str(report), "seconds": time.perf_counter() - t0, "cpu_seconds": time.process_time() - c0,
        "rows": rows, "runs": runs, "cells": cells, "hidden": hidden, "layers": layers, "best": best["name"],
        "time_exponent": slope,
        "setup": {**budget, "embed_dim": c["embed_dim"], "n_samples": c["n_samples"], "threads": threads,
                  "quick": quick},
    }  # fmt: skip


# --------------------------------------------------------------------------------------------------
# rnn-bidirectional
# --------------------------------------------------------------------------------------------------

#: Differences (accuracy points) below this are read as one-seed noise.
NOISE = 0.02


def _bi_verdict(
    bi_last: float, bi_max: float, same_last: float, same_max: float, pool_uni: float, pool_bi: float
) -> str:
    """One sentence reading the differences (bidirectional minus unidirectional, max minus last)."""
    diffs = (bi_last, bi_max, same_last, same_max)
    if max(abs(d) for d in diffs) < NOISE:
        out = "The second direction makes no difference beyond one-seed noise (< 2 points) at this budget."
    elif bi_last > NOISE and bi_last > bi_max + NOISE:
        out = (
            "The backward direction helps most where the forward state alone has to carry the sentence "
            "(last pooling); once max pooling exposes every position, it adds less."
        )
    elif bi_max > NOISE and bi_max > bi_last + NOISE:
        out = "Here the second direction helps more with max pooling than with last-state pooling."
    elif max(diffs) < NOISE:
        out = (
            f"No consistent gain from the second direction here (differences from {min(diffs):+.1%} to "
            f"{max(diffs):+.1%}, one seed each)."
        )
    else:
        out = "Here the direction matters about as much with either pooling."
    if pool_uni < -NOISE and pool_bi < -NOISE:
        out += " Max pooling trails last pooling at this budget (it learned more slowly here)."
    elif pool_uni > NOISE and pool_bi > NOISE:
        out += " Max pooling beats last pooling for both models."
    return out


@register_experiment(
    "rnn-bidirectional",
    family="rnn",
    description="unidirectional vs bidirectional LSTM (same H, same params), last vs max pooling",
)
def rnn_bidirectional(
    out_dir: Path,
    quick: bool = False,
    *,
    sst2: bool | None = None,
    data_root: str | None = None,
    seed: int = 0,
    threads: int | None = 1,
) -> dict[str, Any]:
    """Unidirectional against bidirectional LSTM classifiers, ``last`` against ``max`` pooling.

    Args:
        out_dir: the experiment's folder.
        quick: ``sentiment`` only (its full budget: 3,000 sentences, hidden 32, 4 epochs; about 20 s).
        sst2: also train on the 10k SST-2 subset (default: in full mode when ``sst2/`` is found).
        data_root: the folder holding ``sst2/`` (default: see :func:`sst2_root`).
        seed: ``train.seed`` of every run (initialisation, batch order and the SST-2 subset).
        threads: torch CPU threads (1).
    """
    from archlab.viz._mpl import new_figure, save_figure

    t0, c0 = time.perf_counter(), time.process_time()
    plan = dict(BI_QUICK if quick else BI_FULL)
    root = sst2_root(data_root)
    if sst2 is None:
        sst2 = not quick and root is not None
    if sst2 and root is None:
        raise FileNotFoundError(
            "rnn-bidirectional: sst2/train.tsv not found; pass data_root=<folder holding "
            "sst2/> or set ARCHLAB_SHARED_DATA, or run with sst2=False"
        )
    if sst2:
        plan.setdefault("sst2", BI_FULL["sst2"])
    else:
        plan.pop("sst2", None)
    out_dir = Path(out_dir)

    runs, rows = [], []
    variants: dict[str, list[tuple[str, int, bool]]] = {}
    with num_threads(threads):
        for dataset, b in plan.items():
            h = b["hidden"]
            hm = matched_hidden(h, embed_dim=b["embed_dim"])
            variants[dataset] = [(f"uni H={h}", h, False), (f"bi H={h}/dir", h, True),
                                 (f"bi H={hm}/dir (same params)", hm, True)]  # fmt: skip
            for pooling in POOLINGS:
                for label, hd, bi in variants[dataset]:
                    options = {
                        "hidden_dim": hd,
                        "embed_dim": b["embed_dim"],
                        "bidirectional": bi,
                        "pooling": pooling,
                    }
                    name = f"{dataset}_{'bi' if bi else 'uni'}{hd}_{pooling}"
                    r = _run(out_dir, name, "lstm", dataset, options, {**b, "seed": seed},
                             root=root if dataset == "sst2" else None)  # fmt: skip
                    r.update(dataset=dataset, variant=label, hidden=hd, bidirectional=bi, pooling=pooling)
                    runs.append(r)
                    rows.append({
                        "data": dataset, "model": f"LSTM {label}", "pooling": pooling, "params": r["params"],
                        "n train": r["n_train"], "test acc": round(r["test_acc"], 4),
                        "train s": round(r["train_seconds"], 1),
                    })  # fmt: skip

    def get(dataset: str, label: str, pooling: str) -> dict[str, Any]:
        return next(
            r for r in runs if (r["dataset"], r["variant"], r["pooling"]) == (dataset, label, pooling)
        )

    datasets = list(plan)
    fig = new_figure(5.5 * len(datasets), 4)
    for k, dataset in enumerate(datasets):
        ax = fig.add_subplot(1, len(datasets), k + 1)
        labels = [v[0] for v in variants[dataset]]
        x = np.arange(len(labels))
        for j, pooling in enumerate(POOLINGS):
            accs = [get(dataset, lab, pooling)["test_acc"] for lab in labels]
            bars = ax.bar(x + (j - 0.5) * 0.38, accs, 0.38, color=f"C{j}", label=f"{pooling} pooling")
            ax.bar_label(bars, [f"{a:.1%}" for a in accs], fontsize=7)
        ax.set_xticks(x, labels, fontsize=8)
        lo = min(r["test_acc"] for r in runs if r["dataset"] == dataset)
        ax.set(
            ylim=(max(0.0, lo - 0.1), 1.06),
            ylabel="test accuracy",
            title=f"{dataset} ({runs[[r['dataset'] for r in runs].index(dataset)]['n_train']:,} train rows)",
        )
        ax.legend(fontsize=8, loc="lower right")
    bar_png = save_figure(fig, out_dir / "bidirectional.png")

    lines = []
    for dataset in datasets:
        uni, bi, same = (v[0] for v in variants[dataset])
        ul, um = get(dataset, uni, "last")["test_acc"], get(dataset, uni, "max")["test_acc"]
        bl, bm = get(dataset, bi, "last")["test_acc"], get(dataset, bi, "max")["test_acc"]
        sl, sm = get(dataset, same, "last")["test_acc"], get(dataset, same, "max")["test_acc"]
        best = max((r for r in runs if r["dataset"] == dataset), key=lambda r: r["test_acc"])
        gain_last, gain_max = bl - ul, bm - um
        lines.append(
            f"- **{dataset}**: best LSTM {best['variant']} with {best['pooling']} pooling, "
            f"{best['test_acc']:.1%}. Going bidirectional at the same H changes the accuracy by "
            f"{gain_last:+.1%} with last pooling and "
            f"{gain_max:+.1%} with max pooling; at the same parameter count by {sl - ul:+.1%} (last) and "
            f"{sm - um:+.1%} (max). Max instead of last pooling: {um - ul:+.1%} for the unidirectional "
            "model, "
            f"{bm - bl:+.1%} for the bidirectional one. "
            + _bi_verdict(gain_last, gain_max, sl - ul, sm - um, um - ul, bm - bl)
            + (
                f" The forward LSTM with last pooling reaches {ul:.1%}: "
                + (
                    "it carries the negation to the end of the sentence in its state."
                    if ul >= 0.95
                    else "carrying the negation (and the clause before 'but') to the end of the sentence is "
                    "where it loses."
                )
                if dataset == "sentiment"
                else ""
            )
        )
    skipped = (
        ""
        if "sst2" in plan
        else (" SST-2 was not run (" + ("quick mode" if quick else "sst2/ not found") + ").")
    )
    intro = (
        "Does reading the sentence in both directions help a recurrent sentiment classifier, and is it the "
        "direction or the extra parameters? For each dataset, an LSTM classifier: unidirectional (H units), "
        "bidirectional with H units per direction (twice the recurrent parameters), and bidirectional with "
        "the H per direction that matches the unidirectional model's parameter count; each with "
        "`last` pooling (the final forward state, and the backward state at the first token) and `max` "
        "pooling over time. In `sentiment` the negation comes before the word it flips ('not good'), so "
        "a forward LSTM with last pooling must carry it to the end of the sentence. "
        + " ".join(
            f"`{d}`: embedding {b['embed_dim']}, {b['epochs']} epoch(s) of Adam (lr {b['lr']}, batch "
            f"{b['batch_size']})"
            + (
                f", {b['label_fraction']:.0%} stratified share of the training rows"
                if "label_fraction" in b
                else f", {b['data_options'].get('n_samples', '')} sentences"
            )
            + "."
            for d, b in plan.items()
        )
        + " One CPU thread."
        + skipped
        + (" **Quick mode**: a smoke test." if quick else "")
    )
    report = _write(
        out_dir,
        "Bidirectional against unidirectional LSTM, last against max pooling",
        intro,
        [("Test accuracy per model and pooling", bar_png)],
        [("Runs", rows)],
        "\n".join(lines),
    )
    return {
        "report": str(report), "seconds": time.perf_counter() - t0, "cpu_seconds": time.process_time() - c0,
        "rows": rows, "runs": runs, "datasets": datasets,
        "variants": {d: [v[0] for v in vs] for d, vs in variants.items()},
        "setup": {"plan": plan, "seed": seed, "threads": threads, "quick": quick, "sst2": bool(sst2)},
    }  # fmt: skip
