"""Seq2seq experiments: attention against none, beam width, teacher forcing ratio.

Three experiments (family ``rnn``), each writing ``report.html`` with figures, result tables and
conclusions computed from the numbers. The full versions run on one CPU thread in a few minutes;
``quick=True`` trains tiny models on a few hundred synthetic strings (seconds, a smoke test).

``seq2seq-attention``        ``seq2seq_gru`` (no attention), ``seq2seq_bahdanau`` and ``seq2seq_luong``
                             with the same encoder and sizes: test BLEU overall and by source length,
                             training curves, and attention heat maps of test sentences. English ->
                             French (a subset of ``fra_eng``) when its file is at hand, else reversing
                             strings of 4-24 letters (``seq2seq_synthetic``).
``seq2seq-beam-width``       one trained Bahdanau model decoded with beams of 1, 2, 3, 5 and 10, with
                             length penalty alpha = 1 and alpha = 0: BLEU, model score, output length
                             and decoding time per sentence.
``seq2seq-teacher-forcing``  the same model and budget trained with teacher forcing ratios 1.0, 0.75,
                             0.5 and 0.0 on a synthetic task: teacher-forced and free-running
                             validation loss per epoch, and greedy test BLEU (exposure bias).

Why attention helps long sentences. Without attention the decoder learns about the source only
from s_0, one vector of ``hidden_dim`` numbers, whatever the sentence's length (Cho et al. 2014
measured BLEU falling with length; Bahdanau et al. 2015, Fig. 2, showed attention removing most of
the fall). With attention each step reads a context ``c_i = sum_j a_ij h_j`` over all encoder
states, so nothing has to squeeze through s_0.

Beam search. Greedy decoding commits to the argmax at each step; a beam of K keeps the K best
prefixes by ``log p(y_<=t | x)``. A wider beam finds outputs of higher model probability (fewer
*search errors*), but the most probable output is not always the best translation: with raw
log-probability (``alpha = 0``) beam search prefers short outputs, since every token costs
probability; normalising by ``|Y|^alpha`` counters it (Wu et al. 2016; Koehn & Knowles 2017 found
BLEU falling for wide beams; Stahlberg & Byrne 2019 showed the exact mode is often the empty
output).

Teacher forcing and exposure bias. Trained with teacher forcing (ratio 1), the decoder only ever
sees correct prefixes; at test time it reads its own, possibly wrong, outputs, a distribution it
never trained on, so an early mistake can compound (Bengio et al. 2015; Ranzato et al. 2016 named
it exposure bias). A ratio p < 1 feeds the model's own argmax with probability 1 - p at each
step (scheduled sampling at a fixed rate); p = 0 trains entirely on its own outputs, which slows
learning because early predictions are noise. The *free-running* validation loss (decoder fed its
own argmax, as at test time, against the reference tokens) measures what teacher-forced
validation hides.

References:
    K. Cho et al., "On the properties of neural machine translation: encoder-decoder approaches",
    SSST 2014, https://arxiv.org/abs/1409.1259 (BLEU against sentence length without attention)
    D. Bahdanau, K. Cho, Y. Bengio, "Neural machine translation by jointly learning to align and
    translate", ICLR 2015, https://arxiv.org/abs/1409.0473 (Fig. 2: BLEU by length; Fig. 3: maps)
    M.-T. Luong, H. Pham, C. D. Manning, "Effective approaches to attention-based neural machine
    translation", EMNLP 2015, https://arxiv.org/abs/1508.04025
    Y. Wu et al., "Google's neural machine translation system", 2016, https://arxiv.org/abs/1609.08144
    P. Koehn, R. Knowles, "Six challenges for neural machine translation", WNMT 2017,
    https://arxiv.org/abs/1706.03872 (beam width)
    F. Stahlberg, B. Byrne, "On NMT search errors and model errors: cat got your tongue?",
    EMNLP 2019, https://arxiv.org/abs/1908.10090
    S. Bengio, O. Vinyals, N. Jaitly, N. Shazeer, "Scheduled sampling for sequence prediction with
    recurrent neural networks", NeurIPS 2015, https://arxiv.org/abs/1506.03099
    M. Ranzato, S. Chopra, M. Auli, W. Zaremba, "Sequence level training with recurrent neural
    networks", ICLR 2016, https://arxiv.org/abs/1511.06732 (exposure bias)

Deviations from the paper:
    - The papers trained for days on WMT'14 (sentences up to 50 words, 1000 hidden units); here the
      models have 128 units (64 on synthetic data) and see a 15,000-pair subset of the Tatoeba
      pairs of at most 10 words for 2 epochs, one seed each, so BLEU is far below the papers' and
      the length range is short. The synthetic fallback (reversing strings of up to 24 letters)
      shows the length effect more strongly.
    - Scheduled sampling uses a fixed ratio for the whole run and one coin per decoder step for the
      whole batch (Bengio et al. decay the ratio and flip one coin per token); see
      :mod:`archlab.models.rnn.seq2seq`.
"""

from __future__ import annotations

import math
import os
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from archlab.registry import register_experiment

__all__ = [
    "fra_eng_root",
    "train_seq2seq",
    "decode_split",
    "attention_examples",
    "free_running_callback",
]

#: ``seq2seq-attention``: the three decoders compared (label, model), all with the same encoder.
ATTENTION_MODELS: tuple[tuple[str, str], ...] = (
    ("no attention", "seq2seq_gru"),
    ("Bahdanau", "seq2seq_bahdanau"),
    ("Luong (general)", "seq2seq_luong"),
)

#: English -> French: a seeded subset of the pairs of <= 10 words, small models, 2 epochs.
FRA_ENG = {
    "dataset": "fra_eng", "data_options": {"num_pairs": 15000, "max_words": 10, "min_freq": 3},
    "embed_dim": 128, "hidden_dim": 128, "epochs": 2, "batch_size": 64, "lr": 2e-3, "schedule": "constant",
    "log_every": 20, "edges": (4, 6, 8), "heatmap_lengths": (7, 10),
}  # fmt: skip
#: Reversal of 4-24 letters: the long-sentence bottleneck of the no-attention decoder shows clearly.
REVERSE_LONG = {
    "dataset": "seq2seq_synthetic",
    "data_options": {"task": "reverse", "n_samples": 5000, "min_len": 4, "max_len": 24},
    "embed_dim": 32, "hidden_dim": 64, "epochs": 6, "batch_size": 32, "lr": 5e-3, "schedule": "cosine",
    "log_every": 10, "edges": (6, 9, 12, 15, 18, 21), "heatmap_lengths": (10, 14),
}  # fmt: skip
#: Quick mode (all three experiments): a few hundred short strings, tiny models.
QUICK = {
    "dataset": "seq2seq_synthetic",
    "data_options": {"task": "reverse", "n_samples": 400, "min_len": 3, "max_len": 10},
    "embed_dim": 8, "hidden_dim": 16, "epochs": 2, "batch_size": 32, "lr": 1e-2, "schedule": "constant",
    "log_every": 2, "edges": (4, 6, 8), "heatmap_lengths": (5, 8),
}  # fmt: skip

#: ``seq2seq-beam-width``: widths and length penalties decoded from one model.
BEAM_WIDTHS = (1, 2, 3, 5, 10)
LENGTH_PENALTIES = (1.0, 0.0)
#: Its synthetic fallback: a deliberately undertrained reverser, so greedy decoding makes mistakes.
BEAM_SYNTHETIC = {**REVERSE_LONG, "epochs": 2, "schedule": "constant", "lr": 3e-3}

#: ``seq2seq-teacher-forcing``: ratios of true previous tokens fed while training.
TF_RATIOS = (1.0, 0.75, 0.5, 0.0)
#: Reversal without attention: the decoder leans on its own previous outputs, where exposure bias bites.
TF_FULL = {
    "dataset": "seq2seq_synthetic", "model": "seq2seq_gru",
    "data_options": {"task": "reverse", "n_samples": 4000, "min_len": 3, "max_len": 10},
    "embed_dim": 32, "hidden_dim": 64, "epochs": 10, "batch_size": 32, "lr": 3e-3, "schedule": "constant",
    "log_every": 10,
}  # fmt: skip
TF_QUICK = {**QUICK, "model": "seq2seq_gru", "epochs": 2}


# --------------------------------------------------------------------------------------------------
# Shared pieces
# --------------------------------------------------------------------------------------------------


def fra_eng_root(data_root: str | os.PathLike[str] | None = None) -> str | None:
    """The data folder holding ``fra_eng/`` (:func:`archlab.utils.find_data_root`); None when none has it."""
    from archlab.utils import find_data_root

    return find_data_root("fra_eng", data_root)


def _num_threads(n: int | None) -> Any:
    from archlab.experiments.resnet_experiments import num_threads

    return num_threads(n)


def _history(records: list[dict[str, Any]], split: str, key: str = "loss") -> tuple[list[float], list[float]]:
    """(x, values) of ``key`` in the run log's ``split`` records (x: step for train, epoch for val)."""
    xs, ys = [], []
    for r in records:
        if r.get("split") == split and key in r:
            xs.append(float(r["step"] if split == "train" else r["epoch"]))
            ys.append(float(r[key]))
    return xs, ys


def train_seq2seq(
    out_dir: str | Path,
    name: str,
    model: str,
    setup: dict[str, Any],
    *,
    root: str | None = None,
    overrides: dict[str, Any] | None = None,
    threads: int | None = 1,
    callbacks: list[Any] | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Train one encoder-decoder with :func:`archlab.train` into ``out_dir/runs/name``.

    The run starts from archlab's defaults (no recipe), then ``setup``'s sizes and budget, then
    ``overrides``. The trainer's test evaluation is skipped: the experiments decode the test split
    themselves (once, with the decoders they compare).

    Args:
        out_dir: the experiment's folder.
        name: the run's folder name (replaced if present).
        model: a registered seq2seq model.
        setup: ``dataset``, ``data_options``, ``embed_dim``, ``hidden_dim``, ``epochs``,
            ``batch_size``, ``lr``, ``schedule``, ``log_every`` (e.g. :data:`FRA_ENG`).
        root: ``data.root``.
        overrides: more dotted config keys (``{"train.teacher_forcing": 0.5}``).
        threads: torch CPU threads for the run (restored afterwards).
        callbacks: :class:`archlab.engine.Callback` objects.
        seed: ``train.seed`` (initialisation and batch order).

    Returns:
        ``{"run", "model" (eval mode, CPU), "bundle", "params", "seconds" (wall), "train_seconds",
        "train_curve" ((steps, losses)), "val_curve" ((epochs, losses))}``.
    """
    import archlab
    from archlab.config import RunConfig
    from archlab.experiments.resnet_experiments import skip_test_callback

    runs = Path(out_dir) / "runs"
    if (runs / name).exists():
        shutil.rmtree(runs / name)  # metrics.jsonl appends: start afresh
    ovs: dict[str, Any] = {
        "model.name": model, "data.name": setup["dataset"], "data.options": dict(setup["data_options"]),
        "model.embed_dim": setup["embed_dim"], "model.hidden_dim": setup["hidden_dim"],
        "train.epochs": setup["epochs"], "train.batch_size": setup["batch_size"], "train.lr": setup["lr"],
        "train.schedule": setup["schedule"], "train.optimizer": "adam", "train.grad_clip": 1.0,
        "train.seed": seed, "train.log_every": setup["log_every"], "train.beam_size": 1,
        "data.eval_batch_size": 500, "run.out_dir": str(runs), "run.name": name, "run.report": False,
        "system.progress": False, "system.tensorboard": False,
    }  # fmt: skip
    if root:
        ovs["data.root"] = root
    ovs.update(overrides or {})
    with _num_threads(threads):
        t0 = time.perf_counter()
        run = archlab.train(model, setup["dataset"], config=RunConfig(), overrides=ovs,
                            callbacks=[skip_test_callback(), *(callbacks or [])])
        seconds = time.perf_counter() - t0
    net = run.model.cpu().eval()
    return {
        "run": run, "model": net, "bundle": run.bundle, "params": sum(p.numel() for p in net.parameters()),
        "seconds": seconds, "train_seconds": float(run.summary.get("train_time_s", math.nan)),
        "train_curve": _history(run.history, "train"), "val_curve": _history(run.history, "val"),
    }  # fmt: skip


def _lengths(ids: torch.Tensor, pad_id: int = 0, eos_id: int = 3) -> list[int]:
    """Tokens before the first <eos> of each row of ``ids`` (B, L) (<bos> and padding not counted)."""
    out = []
    for row in ids.tolist():
        n = 0
        for i in row:
            if i == eos_id:
                break
            if i not in (pad_id, 2):
                n += 1
        out.append(n)
    return out


def _attention_stats(model: Any, src: torch.Tensor) -> tuple[list[float], list[float]]:
    """Two summaries per sentence of the attention of the last decoding call (NaN without attention).

    * end share: the mean weight (over output tokens) on the last two source positions (the last
      word and <eos>). A decoder whose attention sits there reads little more than the encoder's
      final states, i.e. works as a model without attention (about 2 / length when spread out).
    * order: the correlation between an output token's position i and the centroid
      ``sum_j a_ij * j`` of its attention over the source: near +1 for a monotonic (diagonal)
      alignment, near -1 for a reversal (anti-diagonal), near 0 or NaN when the attention does not
      move with i (NaN for outputs of fewer than 3 tokens, <eos> not counted).
    """
    B = src.shape[0]
    if getattr(model.config, "attention", "none") == "none" or getattr(model, "last_attention", None) is None:
        return [math.nan] * B, [math.nan] * B
    attn = model.last_attention.float()  # (B, L, S); rows after <eos> are 0
    n = (src != model.config.pad_id).sum(1)  # (B,)
    pos = torch.arange(attn.shape[2], dtype=torch.float32)[None, :]  # (1, S)
    end = ((pos >= n[:, None] - 2) & (pos < n[:, None])).float()  # (B, S)
    on_end = (attn * end[:, None, :]).sum(2)  # (B, L)
    rows = attn.sum(2) > 0.5  # (B, L): real output tokens
    share = ((on_end * rows).sum(1) / rows.sum(1).clamp(min=1)).tolist()
    centroid = (attn * pos[:, None, :]).sum(2)  # (B, L)
    order = []
    for b in range(B):
        c = centroid[b, rows[b]][:-1].numpy()  # the <eos> row left out
        ok = len(c) >= 3 and c.std() > 1e-6
        order.append(float(np.corrcoef(np.arange(len(c)), c)[0, 1]) if ok else math.nan)
    return share, order


@torch.no_grad()
def decode_split(
    model: Any,
    split: Any,
    tgt_vocab: Any,
    *,
    beam_size: int = 1,
    length_penalty: float = 1.0,
    batch_size: int = 250,
    threads: int | None = 1,
) -> dict[str, Any]:
    """Translate every source of ``split`` (an ``ArraySplit``) greedily (``beam_size=1``) or by beam search.

    The decoding limit is the split's padded target width (its longest reference, <eos> included),
    as :meth:`archlab.tasks.seq2seq.Seq2SeqTask.decode_split`.

    Returns:
        ``{"hyp", "ref"}`` texts, ``"src_len"``, ``"out_len"``, ``"ref_len"`` (tokens before <eos>),
        ``"score"`` (the summed log-probability of each output under the model), ``"attn_end"`` and
        ``"attn_order"`` (:func:`_attention_stats`; NaN without attention) and ``"seconds"`` (decoding
        wall time, in batches of ``batch_size``).
    """
    from archlab.data.text import trim_padding
    from archlab.tasks.seq2seq import decode_ids

    cfg = model.config
    model.eval()
    limit = max(int(split.y.shape[1]) - 1, 1)
    out: dict[str, Any] = {"hyp": [], "ref": [], "src_len": [], "out_len": [], "ref_len": [], "score": [],
                           "attn_end": [], "attn_order": []}
    seconds = 0.0
    with _num_threads(threads):
        for i in range(0, len(split.x), batch_size):
            src = trim_padding(split.x[i : i + batch_size], cfg.pad_id)  # (B, S)
            y = split.y[i : i + batch_size]  # (B, T): <bos> .. <eos> <pad>..
            t0 = time.perf_counter()
            if beam_size > 1:
                ids = model.beam_search(src, beam_size, limit, length_penalty)
            else:
                ids = model.greedy(src, limit)
            seconds += time.perf_counter() - t0
            out["score"] += model.last_scores.float().tolist()
            share, order = _attention_stats(model, src)
            out["attn_end"] += share
            out["attn_order"] += order
            out["hyp"] += [decode_ids(tgt_vocab, row) for row in ids]
            out["ref"] += [decode_ids(tgt_vocab, row[1:]) for row in y]
            out["out_len"] += _lengths(ids, cfg.pad_id, cfg.eos_id)
            out["ref_len"] += _lengths(y, cfg.pad_id, cfg.eos_id)
            out["src_len"] += _lengths(src, cfg.pad_id, cfg.eos_id)
    out["seconds"] = seconds
    return out


@torch.no_grad()
def attention_examples(
    model: Any, split: Any, indices: Sequence[int], src_vocab: Any, tgt_vocab: Any, title: str = ""
) -> list[dict[str, Any]]:
    """Greedy outputs and attention (L_out, L_src) of ``split``'s sources ``indices``, in the form
    :func:`archlab.viz.attention.plot_attention_grid` takes (``<eos>`` included on both axes)."""
    from archlab.data.text import trim_padding
    from archlab.tasks.seq2seq import decode_ids

    cfg = model.config
    model.eval()
    rows = []
    for i in indices:
        src = trim_padding(split.x[i : i + 1], cfg.pad_id)  # (1, S)
        ids = model.greedy(src, max(int(split.y.shape[1]) - 1, 1))[0].tolist()
        if cfg.eos_id in ids:
            ids = ids[: ids.index(cfg.eos_id) + 1]
        ids = [t for t in ids if t != cfg.pad_id]
        s_ids = [t for t in src[0].tolist() if t != cfg.pad_id]
        out_text = decode_ids(tgt_vocab, ids)
        rows.append({
            "source_tokens": [src_vocab.itos[t] for t in s_ids],
            "output_tokens": [tgt_vocab.itos[t] for t in ids],
            "attention": model.last_attention[0, : len(ids), : len(s_ids)].float().cpu().numpy(),
            "title": f"{title}: {out_text[:40]}" if title else out_text[:40],
        })
    return rows


def free_running_callback() -> Any:
    """A callback measuring, before training and after every epoch, the validation loss and token
    accuracy with the decoder fed the true previous tokens (``teacher_forcing=1``) and fed its own
    argmax (``teacher_forcing=0``, as at test time), in ``.rows`` (``epoch``, ``tf_loss``,
    ``tf_acc``, ``free_loss``, ``free_acc``). Free-running token accuracy is that of greedy decoding,
    position by position against the reference."""
    from archlab.data.text import trim_padding
    from archlab.engine.trainer import Callback

    class FreeRunning(Callback):
        def __init__(self) -> None:
            self.rows: list[dict[str, float]] = []

        @torch.no_grad()
        def _measure(self, trainer: Any, epoch: int) -> None:
            if trainer.val_loader is None:
                return
            model = trainer.task.model
            pad = trainer.task.pad_id
            was = model.training
            model.eval()
            sums = {"tf_loss": 0.0, "tf_acc": 0.0, "free_loss": 0.0, "free_acc": 0.0}
            count = 0
            try:
                for batch in trainer.val_loader:
                    src, y = trim_padding(batch[0], pad), trim_padding(batch[1], pad)
                    tgt_in, tgt_out = y[:, :-1], y[:, 1:]  # (B, T-1) each
                    real = tgt_out != pad
                    for key, tf in (("tf", 1.0), ("free", 0.0)):
                        logits = model(src, tgt_in, teacher_forcing=tf)  # (B, T-1, V)
                        sums[f"{key}_loss"] += float(F.cross_entropy(
                            logits.float().flatten(0, 1), tgt_out.flatten(), ignore_index=pad, reduction="sum"))
                        sums[f"{key}_acc"] += float(((logits.argmax(-1) == tgt_out) & real).sum())
                    count += int(real.sum())
            finally:
                model.train(was)
            self.rows.append({"epoch": epoch, **{k: v / max(count, 1) for k, v in sums.items()}})

        def on_fit_start(self, trainer: Any) -> None:
            self._measure(trainer, 0)

        def on_epoch_end(self, trainer: Any, metrics: dict[str, float]) -> None:
            self._measure(trainer, int(trainer.epoch))

    return FreeRunning()


def _write(out_dir: Path, title: str, intro: str, figures: list[tuple[str, Path]],
           tables: list[tuple[str, list[dict[str, Any]]]], conclusions: str) -> Path:
    from archlab.report.experiment import write_experiment_report

    return write_experiment_report(out_dir, title, intro, figures=figures, tables=tables, conclusions=conclusions)


def _setup_for(quick: bool, dataset: str | None, root: str | None, full_real: dict[str, Any],
               full_synthetic: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """(setup, data root): quick -> :data:`QUICK`; else fra_eng when found (or asked), else synthetic."""
    if quick:
        return dict(QUICK), None
    if dataset not in (None, "fra_eng", "seq2seq_synthetic"):
        raise ValueError(f"dataset must be 'fra_eng' or 'seq2seq_synthetic', got {dataset!r}")
    found = fra_eng_root(root)
    if dataset == "fra_eng" and found is None:
        raise FileNotFoundError("fra_eng/fra-eng.zip was not found under data_root, $ARCHLAB_DATA, "
                                "$ARCHLAB_SHARED_DATA or ../shared/data; pass data_root= (the folder holding "
                                "fra_eng/) or dataset='seq2seq_synthetic'")
    if dataset == "seq2seq_synthetic" or found is None:
        return dict(full_synthetic), None
    return dict(full_real), found


def _describe(setup: dict[str, Any], bundle: Any) -> str:
    n = f"{len(bundle.train):,} training / {len(bundle.val):,} val / {len(bundle.test):,} test"
    o = setup["data_options"]
    if setup["dataset"] == "fra_eng":
        return (f"English -> French, a seeded subset of {o['num_pairs']:,} `fra_eng` pairs of at most "
                f"{o['max_words']} words ({n}; words seen fewer than {o['min_freq']} times -> `<unk>`; "
                f"{len(bundle.info.vocab):,} English and {len(bundle.info.target_vocab):,} French tokens), "
                "word-level BLEU")
    if o["task"] == "dates":
        return f"date normalisation (`seq2seq_synthetic`, task=dates: \"march 5 2021\" -> \"2021-03-05\"; {n}), character BLEU"
    return (f"`seq2seq_synthetic`, task={o['task']}: strings of {o.get('min_len', 3)}-{o.get('max_len', 10)} letters ({n}), "
            "character BLEU")


# --------------------------------------------------------------------------------------------------
# seq2seq-attention
# --------------------------------------------------------------------------------------------------


def _bucket_label(label: str) -> str:
    """``"5-5"`` -> ``"5"`` (a bucket of one length); other labels unchanged."""
    lo, sep, hi = label.partition("-")
    return lo if sep and lo == hi else label


def _pick_examples(lengths: Sequence[int], lo: int, hi: int, count: int) -> list[int]:
    """``count`` indices whose length is in [lo, hi], spread over that range (longest last)."""
    pool = sorted((n, i) for i, n in enumerate(lengths) if lo <= n <= hi)
    if not pool:
        pool = sorted((n, i) for i, n in enumerate(lengths))
    if len(pool) <= count:
        return [i for _, i in pool]
    picks = np.linspace(0, len(pool) - 1, count).round().astype(int)
    return [pool[k][1] for k in picks]


@register_experiment(
    "seq2seq-attention",
    family="rnn",
    description="Seq2seq with vs without attention (GRU, Bahdanau, Luong): BLEU by sentence length, heat maps",
)
def seq2seq_attention(
    out_dir: Path,
    quick: bool = False,
    *,
    dataset: str | None = None,
    data_root: str | None = None,
    seed: int = 0,
    threads: int | None = 1,
    n_examples: int = 3,
) -> dict[str, Any]:
    """``seq2seq_gru`` against ``seq2seq_bahdanau`` and ``seq2seq_luong`` at the same sizes and budget.

    Args:
        out_dir: the experiment's folder.
        quick: reversing 3-10 letters with 16 units, 2 epochs (a smoke test).
        dataset: ``fra_eng`` (the default when its file is found) or ``seq2seq_synthetic``
            (reversing strings of 4-24 letters).
        data_root: the folder holding ``fra_eng/``.
        seed: initialisation and batch order (the same for every model).
        threads: torch CPU threads.
        n_examples: test sentences drawn as attention heat maps.
    """
    from archlab.tasks.seq2seq import bleu_by_length, bleu_tokenize_for, corpus_bleu
    from archlab.viz._mpl import new_figure, save_figure
    from archlab.viz.attention import plot_attention_grid

    t0 = time.perf_counter()
    setup, root = _setup_for(quick, dataset, data_root, FRA_ENG, REVERSE_LONG)
    runs, by_length = [], {}
    for label, name in ATTENTION_MODELS:
        r = train_seq2seq(out_dir, name, name, setup, root=root, threads=threads, seed=seed)
        bundle = r["bundle"]
        tgt_vocab = bundle.info.target_vocab
        tok = bleu_tokenize_for(tgt_vocab)
        d = decode_split(r["model"], bundle.test, tgt_vocab, threads=threads)
        exact = float(np.mean([h == ref for h, ref in zip(d["hyp"], d["ref"])]))
        r.update(label=label, name=name, bleu=corpus_bleu(d["hyp"], d["ref"], tok), exact=exact, decoded=d,
                 attn_end=float(np.nanmean(d["attn_end"])) if name != "seq2seq_gru" else math.nan,
                 attn_order=float(np.nanmean(d["attn_order"])) if name != "seq2seq_gru" else math.nan)
        by_length[label] = bleu_by_length(d["hyp"], d["ref"], d["src_len"], edges=setup["edges"], tokenize=tok)
        runs.append(r)
    bundle = runs[0]["bundle"]
    src_vocab, tgt_vocab = bundle.info.vocab, bundle.info.target_vocab

    rows = [{
        "model": r["label"], "registered name": r["name"], "params": f"{r['params']:,}",
        "test BLEU (greedy)": round(r["bleu"], 2), "exact match": round(r["exact"], 4),
        "val loss": round(float(r["run"].metrics.get("val/loss", math.nan)), 4),
        "attention on the last word and <eos>": "-" if math.isnan(r["attn_end"]) else round(r["attn_end"], 3),
        "attention order (corr.)": "-" if math.isnan(r["attn_order"]) else round(r["attn_order"], 3),
        "training time (s)": round(r["train_seconds"], 1),
    } for r in runs]  # fmt: skip
    buckets = [_bucket_label(b["lengths"]) for b in by_length[runs[0]["label"]]]
    length_rows = []
    for k, lab in enumerate(buckets):
        row: dict[str, Any] = {"source tokens": lab, "sentences": by_length[runs[0]["label"]][k]["n"]}
        for r in runs:
            row[f"BLEU {r['label']}"] = round(by_length[r["label"]][k]["bleu"], 2)
        length_rows.append(row)

    # Figures: BLEU by length; training curves; heat maps.
    fig = new_figure(7, 4)
    ax = fig.add_subplot(111)
    for i, r in enumerate(runs):
        ax.plot(range(len(buckets)), [b["bleu"] for b in by_length[r["label"]]], "o-", color=f"C{i}",
                label=f"{r['label']} ({r['bleu']:.1f} overall)")
    ax.set_xticks(range(len(buckets)), buckets)
    ax.set(xlabel="source length (tokens, <eos> not counted)", ylabel="test BLEU (greedy)", ylim=(0, None),
           title="BLEU by source length")
    ax2 = ax.twinx()
    ax2.bar(range(len(buckets)), [row["sentences"] for row in length_rows], color="0.85", zorder=0, width=0.5)
    ax2.set_ylabel("test sentences in the bucket", color="0.5")
    ax.set_zorder(ax2.get_zorder() + 1)
    ax.patch.set_visible(False)
    ax.legend(fontsize=8, loc="lower left")
    length_png = save_figure(fig, out_dir / "bleu_by_length.png")

    fig = new_figure(6, 3.8)
    ax = fig.add_subplot(111)
    for i, r in enumerate(runs):
        steps, losses = r["train_curve"]
        ax.plot(steps, losses, color=f"C{i}", label=r["label"])
    ax.set(xlabel="step", ylabel="training loss (nats / token)", yscale="log", title="Training")
    ax.legend(fontsize=8)
    curves_png = save_figure(fig, out_dir / "training_curves.png")

    lo, hi = setup["heatmap_lengths"]
    picks = _pick_examples(runs[0]["decoded"]["src_len"], lo, hi, min(n_examples, 2) if quick else n_examples)
    examples = []
    attn_runs = [r for r in runs if r["name"] != "seq2seq_gru"]
    for i in picks:
        for r in attn_runs:
            examples += attention_examples(r["model"], bundle.test, [i], src_vocab, tgt_vocab, r["label"])
    heat_png = plot_attention_grid(examples, out_dir / "attention.png", ncols=len(attn_runs),
                                   title="Attention of test sentences (source on x, output on y)")
    samples = [{"source": _source_text(bundle.test, i, src_vocab),
                "reference": runs[0]["decoded"]["ref"][i], **{r["label"]: r["decoded"]["hyp"][i] for r in runs}}
               for i in picks]  # fmt: skip

    # Conclusions from the numbers.
    first, last = length_rows[0], length_rows[-1]
    none, att = runs[0], max(runs[1:], key=lambda r: r["bleu"])
    drop = {r["label"]: first[f"BLEU {r['label']}"] - last[f"BLEU {r['label']}"] for r in runs}
    k_att, k_none = f"BLEU {att['label']}", f"BLEU {none['label']}"
    lines = [
        "- **Overall** test BLEU (greedy): " + ", ".join(f"{r['label']} {r['bleu']:.2f}" for r in runs)
        + f". The best attention model ({att['label']}) {'gains' if att['bleu'] >= none['bleu'] else 'loses'} "
        f"{abs(att['bleu'] - none['bleu']):.2f} BLEU against the decoder without attention, with the same encoder, "
        "sizes and budget.",
        f"- **By length** (first bucket {first['source tokens']} -> last {last['source tokens']} source tokens): "
        + ", ".join(f"{lab} {first[f'BLEU {lab}']:.1f} -> {last[f'BLEU {lab}']:.1f}" for lab in drop) + ". "
        + (f"Without attention BLEU falls by {drop[none['label']]:.1f} points, with {att['label']}'s attention "
           f"by {drop[att['label']]:.1f}: the fixed-size s_0 is the bottleneck for long sources (Cho et al. "
           "2014), and reading every encoder state through attention "
           + ("removes most of it" if drop[att["label"]] < 0.5 * drop[none["label"]] else "eases it")
           + f" (Bahdanau et al. 2015, Fig. 2). BLEU of {att['label']} minus {none['label']}, by length: "
           + ", ".join(f"{row['source tokens']}: {row[k_att] - row[k_none]:+.1f}" for row in length_rows) + "."
           if drop[none["label"]] > drop[att["label"]] + 1.0 else
           f"Without attention BLEU changes by {-drop[none['label']]:+.1f} points, with {att['label']}'s attention "
           f"by {-drop[att['label']]:+.1f}: at these lengths the fixed-size s_0 is not yet the limit."),
        "- **Heat maps**: each row is an output token, each column a source token. "
        + ("Reversing strings, a correct alignment runs along the anti-diagonal (output i reads source n + 1 - i)."
           if setup["dataset"] == "seq2seq_synthetic" else
           "English and French word orders mostly agree, so a good alignment runs near the diagonal, with local "
           "swaps (the adjective after the noun in French) and one word spread over several."),
        *_attention_lines(runs, src_len=float(np.mean(runs[0]["decoded"]["src_len"])) + 1),
        "- Cost: attention adds parameters (" + ", ".join(f"{r['label']} {r['params']:,}" for r in runs) + ") and "
        "time (the Bahdanau decoder, and Luong's with input feeding, run step by step even when teacher forced; "
        + ", ".join(f"{r['label']} {r['train_seconds']:.0f} s" for r in runs) + " of training).",
    ]
    intro = (
        "Does attention help, and where? Three encoder-decoders with the same bidirectional GRU encoder "
        f"({setup['hidden_dim']} units per direction, embeddings {setup['embed_dim']}) and GRU decoder "
        f"({setup['hidden_dim']} units) differ only in how the decoder reads the source: `seq2seq_gru` only "
        "through its initial state s_0 = tanh(W [h->_S; h<-_1]) (no attention), `seq2seq_bahdanau` through "
        "additive attention from s_{i-1}, `seq2seq_luong` through the general score h_t^T W_a h_s with input "
        f"feeding. Data: {_describe(setup, bundle)}. Each trains {setup['epochs']} epochs (Adam lr "
        f"{setup['lr']}, {setup['schedule']} schedule, batches of {setup['batch_size']} bucketed by length, "
        "gradient clipping 1, the same seed); test BLEU is corpus BLEU (sacrebleu) of greedy decoding, overall "
        "and per bucket of source length (corpus BLEU of the sentences in the bucket)."
        + (" **Quick mode**: a smoke test." if quick else "")
    )
    report = _write(
        out_dir, "Seq2seq with and without attention", intro,
        [("BLEU by source length (bars: sentences per bucket)", length_png),
         ("Training loss", curves_png), ("Attention heat maps of test sentences", heat_png)],
        [("Models", rows), ("Test BLEU by source length", length_rows), ("Sample test translations", samples)],
        "\n".join(lines),
    )  # fmt: skip
    return {
        "report": str(report), "seconds": time.perf_counter() - t0, "rows": rows, "by_length": length_rows,
        "bleu": {r["label"]: r["bleu"] for r in runs}, "examples": picks,
        "setup": {**{k: v for k, v in setup.items() if k != "edges"}, "quick": quick, "data_root": root},
    }  # fmt: skip


def _attention_lines(runs: list[dict[str, Any]], src_len: float) -> list[str]:
    """A conclusion line per attention model: where its attention goes (:func:`_attention_stats`)."""
    lines = []
    for r in runs:
        share, order = r.get("attn_end", math.nan), r.get("attn_order", math.nan)
        if math.isnan(share):
            continue
        head = (f"- {r['label']}: {share:.0%} of the attention (mean over output tokens) on the last word and <eos> "
                f"of the source (about {2 / src_len:.0%} if spread evenly over its {src_len:.1f} tokens); correlation "
                f"of output position and attended source position {order:+.2f}")
        if share > 0.7:
            lines.append(
                head + ". **Its attention collapsed** onto the end of the source: the decoder reads little more than "
                "the encoder's final states, much as the model without attention does (its heat maps show one dark "
                "column). This run settled in that poor local optimum: the attention is there, but training did "
                "not learn to use it."
            )
        elif order > 0.5:
            lines.append(head + ": the attention moves through the source in order (a diagonal alignment).")
        elif order < -0.5:
            lines.append(head + ": the attention moves backwards through the source (an anti-diagonal alignment).")
        else:
            lines.append(head + ": no clear alignment yet.")
    return lines


def _source_text(split: Any, i: int, vocab: Any) -> str:
    from archlab.tasks.seq2seq import decode_ids

    return decode_ids(vocab, split.x[i])


# --------------------------------------------------------------------------------------------------
# seq2seq-beam-width
# --------------------------------------------------------------------------------------------------


@register_experiment(
    "seq2seq-beam-width",
    family="rnn",
    description="Beam widths 1-10 and length penalty 0 vs 1 on one trained seq2seq: BLEU, score, length, time",
)
def seq2seq_beam_width(
    out_dir: Path,
    quick: bool = False,
    *,
    dataset: str | None = None,
    data_root: str | None = None,
    widths: Sequence[int] = BEAM_WIDTHS,
    length_penalties: Sequence[float] = LENGTH_PENALTIES,
    model: str = "seq2seq_bahdanau",
    seed: int = 0,
    threads: int | None = 1,
) -> dict[str, Any]:
    """One trained encoder-decoder decoded with several beam widths and length penalties.

    Args:
        out_dir: the experiment's folder.
        quick: reversing 3-10 letters with 16 units, 2 epochs (a smoke test).
        dataset: ``fra_eng`` (the default when its file is found) or ``seq2seq_synthetic`` (an
            undertrained reverser of 4-24 letters, so that greedy decoding makes mistakes).
        data_root: the folder holding ``fra_eng/``.
        widths: beam widths (1 = greedy decoding).
        length_penalties: alpha of ``score / |Y|^alpha`` (0 = raw log-probability).
        model: the registered seq2seq model trained.
        seed: initialisation and batch order.
        threads: torch CPU threads (the decoding times too).
    """
    from archlab.tasks.seq2seq import bleu_tokenize_for, corpus_bleu
    from archlab.viz._mpl import new_figure, save_figure

    t0 = time.perf_counter()
    setup, root = _setup_for(quick, dataset, data_root, FRA_ENG, BEAM_SYNTHETIC)
    widths = sorted({int(k) for k in widths})
    if not widths or widths[0] < 1:
        raise ValueError(f"beam widths must be >= 1, got {widths}")
    r = train_seq2seq(out_dir, model, model, setup, root=root, threads=threads, seed=seed)
    bundle, net = r["bundle"], r["model"]
    tgt_vocab = bundle.info.target_vocab
    tok = bleu_tokenize_for(tgt_vocab)
    n = len(bundle.test)
    results = []
    for alpha in length_penalties:
        for k in widths:
            if k == 1 and results and any(e["beam"] == 1 for e in results):
                prev = next(e for e in results if e["beam"] == 1)
                results.append({**prev, "alpha": float(alpha)})  # greedy ignores the length penalty
                continue
            d = decode_split(net, bundle.test, tgt_vocab, beam_size=k, length_penalty=float(alpha), threads=threads)
            results.append({
                "beam": k, "alpha": float(alpha), "bleu": corpus_bleu(d["hyp"], d["ref"], tok),
                "exact": float(np.mean([h == ref for h, ref in zip(d["hyp"], d["ref"])])),
                "mean_logprob": float(np.mean(d["score"])), "mean_len": float(np.mean(d["out_len"])),
                "ref_len": float(np.mean(d["ref_len"])), "ms_per_sentence": 1000 * d["seconds"] / max(n, 1),
                "empty": float(np.mean([m == 0 for m in d["out_len"]])),
            })  # fmt: skip
    rows = [{
        "beam": e["beam"], "length penalty alpha": e["alpha"], "test BLEU": round(e["bleu"], 2),
        "exact match": round(e["exact"], 4), "mean log p(output)": round(e["mean_logprob"], 3),
        "mean output length": round(e["mean_len"], 2), "reference length": round(e["ref_len"], 2),
        "empty outputs": round(e["empty"], 4), "ms / sentence": round(e["ms_per_sentence"], 2),
    } for e in results]  # fmt: skip

    fig = new_figure(13, 7)
    panels = [("bleu", "test BLEU"), ("mean_logprob", "mean log p(output | source)"),
              ("mean_len", "mean output length (tokens)"), ("ms_per_sentence", "decoding ms per sentence")]
    for p, (key, ylabel) in enumerate(panels):
        ax = fig.add_subplot(2, 2, p + 1)
        for j, alpha in enumerate(length_penalties):
            es = [e for e in results if e["alpha"] == float(alpha)]
            ax.plot([e["beam"] for e in es], [e[key] for e in es], "o-" if j == 0 else "s--", color=f"C{j}",
                    label=f"alpha = {alpha:g}" + (" (raw log p)" if alpha == 0 else ""))
        if key == "mean_len":
            ax.axhline(results[0]["ref_len"], color="0.4", ls=":", label="references")
        ax.set(xscale="log", xlabel="beam width", ylabel=ylabel)
        ax.set_xticks(widths, [str(k) for k in widths])
        ax.legend(fontsize=8)
    fig.suptitle(f"Beam search on one trained {model}")
    beam_png = save_figure(fig, out_dir / "beam_width.png")

    def at(k: int, alpha: float) -> dict[str, Any]:
        return next(e for e in results if e["beam"] == k and e["alpha"] == float(alpha))

    g = at(widths[0], length_penalties[0])
    kmax = widths[-1]
    best = max(results, key=lambda e: e["bleu"])
    a1, a0 = float(length_penalties[0]), float(length_penalties[-1])
    score_up = all(at(k, a0)["mean_logprob"] >= g["mean_logprob"] - 1e-6 for k in widths)
    lines = [
        f"- **Greedy** (beam 1): BLEU {g['bleu']:.2f}, mean log p {g['mean_logprob']:.3f}, "
        f"{g['ms_per_sentence']:.2f} ms per sentence. **Best**: beam {best['beam']} with alpha {best['alpha']:g}, "
        f"BLEU {best['bleu']:.2f} ({best['bleu'] - g['bleu']:+.2f}).",
        f"- **Search**: with raw log-probability (alpha {a0:g}) the mean log p of the output rises from "
        f"{g['mean_logprob']:.3f} (greedy) to {at(kmax, a0)['mean_logprob']:.3f} at beam {kmax}"
        + (": a wider beam always found outputs the model likes at least as much (fewer search errors)."
           if score_up else ": not monotonically (beam search is not exact: a wider beam can still lose a "
           "prefix that would have won)."),
        f"- **Length**: at beam {kmax} the outputs average {at(kmax, a0)['mean_len']:.2f} tokens with alpha "
        f"{a0:g} and {at(kmax, a1)['mean_len']:.2f} with alpha {a1:g} (references {g['ref_len']:.2f}, greedy "
        f"{g['mean_len']:.2f}); BLEU {at(kmax, a0)['bleu']:.2f} against {at(kmax, a1)['bleu']:.2f}. "
        + ("Unnormalised scores favour short outputs, since each token only lowers log p; dividing by |Y|^alpha "
           "counters that bias"
           + (f" ({at(kmax, a0)['empty']:.0%} of the outputs are empty with alpha {a0:g}: the empty sentence can be "
              "the model's most probable output, Stahlberg & Byrne 2019)" if at(kmax, a0)["empty"] > 0 else "")
           + (f". BLEU is nevertheless higher with alpha {a0:g} here: the shorter outputs (dropping words the model "
              "is unsure of) gain more in n-gram precision than they lose to BLEU's brevity penalty."
              if at(kmax, a0)["bleu"] > at(kmax, a1)["bleu"] else ", and BLEU rewards it.")
           if at(kmax, a0)["mean_len"] < at(kmax, a1)["mean_len"] - 0.05 else
           "Here the length penalty barely changes the output length: the model's outputs are nearly settled."),
        *[_bleu_trend_line(widths, [at(k, a) for k in widths], a) for a in dict.fromkeys(map(float, length_penalties))],
        "- **Cost**: decoding time per sentence grows with the width (batched over sentences and beams): "
        + ", ".join(f"{k}: {at(k, a1)['ms_per_sentence']:.2f} ms" for k in widths) + ".",
    ]
    intro = (
        f"How wide should the beam be? One `{model}` ({r['params']:,} parameters, {setup['hidden_dim']} units) is "
        f"trained once on {_describe(setup, bundle)}, for {setup['epochs']} epochs, then its {n:,} test "
        f"sources are decoded with beams of {', '.join(map(str, widths))}, ranking finished hypotheses by "
        "log p / |Y|^alpha with alpha = " + " and ".join(f"{a:g}" for a in length_penalties) + " (beam 1 is "
        "greedy decoding, for which alpha does not matter). Reported: corpus BLEU, the mean summed "
        "log-probability of the chosen outputs (what the search maximises), the mean output length, and the "
        f"decoding wall time per sentence (batches of 250 sentences, {threads or 'all'} CPU thread(s))."
        + (" **Quick mode**: a smoke test." if quick else "")
    )
    report = _write(out_dir, "Beam width and length penalty", intro,
                    [("BLEU, model score, length and time against beam width", beam_png)],
                    [("Decodings of the test set", rows)], "\n".join(lines))
    return {
        "report": str(report), "seconds": time.perf_counter() - t0, "rows": rows, "results": results,
        "train_seconds": r["train_seconds"],
        "setup": {**{k: v for k, v in setup.items() if k != "edges"}, "model": model, "quick": quick,
                  "data_root": root, "widths": widths, "length_penalties": [float(a) for a in length_penalties]},
    }  # fmt: skip


def _bleu_trend_line(widths: Sequence[int], es: Sequence[dict[str, Any]], alpha: float) -> str:
    """A conclusion on BLEU against beam width at one length penalty, from the numbers."""
    bleus = [e["bleu"] for e in es]
    k_best = widths[int(np.argmax(bleus))]
    text = (f"- **BLEU against width** (alpha {alpha:g}): " + ", ".join(f"{k}: {b:.2f}" for k, b in zip(widths, bleus))
            + (f"; it peaks at beam {k_best} ({max(bleus) - bleus[0]:+.2f} over greedy) and wider beams do not "
               "improve it" if k_best < widths[-1] else f"; still rising at beam {widths[-1]}"))
    # Steps where the search found more probable outputs but BLEU fell: model errors, not search errors.
    worse = [(widths[i], widths[i + 1]) for i in range(len(es) - 1)
             if es[i + 1]["mean_logprob"] > es[i]["mean_logprob"] + 1e-3 and bleus[i + 1] < bleus[i] - 0.05]
    if worse:
        text += (". From beam " + ", ".join(f"{a} to {b}" for a, b in worse) + " the outputs get more probable under "
                 "the model but BLEU falls: the model's most probable output is not always the better translation "
                 "(a model error, not a search error; Koehn & Knowles 2017, Stahlberg & Byrne 2019).")
    else:
        text += ". Here BLEU never falls while the model score rises."
    return text


# --------------------------------------------------------------------------------------------------
# seq2seq-teacher-forcing
# --------------------------------------------------------------------------------------------------


def _teacher_forcing_lines(runs: list[dict[str, Any]], epochs: int) -> list[str]:
    """Conclusions of ``seq2seq-teacher-forcing`` from the numbers (runs sorted as trained)."""
    by = {r["ratio"]: r for r in runs}
    best = max(runs, key=lambda r: (r["bleu"], -r["curve"][-1]["free_loss"]))
    gaps = {r["ratio"]: r["curve"][-1]["free_loss"] - r["curve"][-1]["tf_loss"] for r in runs}
    lines = ["- **Test BLEU** (greedy) after " + f"{epochs} epochs: "
             + ", ".join(f"p = {r['ratio']:g}: {r['bleu']:.2f} ({r['exact']:.1%} exact)" for r in runs)
             + f". Best: p = {best['ratio']:g}."]
    hi, lo = max(by), min(by)
    c = by[hi]["curve"][-1]
    shrinks = gaps[lo] < gaps[hi] - 0.01
    lines.append(
        f"- **Exposure bias**: trained with p = {hi:g}, the model's teacher-forced val loss is {c['tf_loss']:.4f} but "
        f"fed its own outputs it is {c['free_loss']:.4f} (gap {gaps[hi]:+.4f}): teacher-forced validation "
        "flatters it, since at test time one wrong token changes the input of every later step, a situation it "
        "never trained on. The gap by ratio: " + ", ".join(f"p = {p:g}: {g:+.4f}" for p, g in gaps.items())
        + (": it shrinks as the ratio falls, the models trained on their own outputs have learned to continue "
           "from them." if shrinks else ": it does not shrink with the ratio here.")
    )
    mid = len(by[hi]["curve"]) // 2
    at_mid = {r["ratio"]: r["curve"][mid] for r in runs}
    slower = at_mid[lo]["tf_loss"] > 1.05 * at_mid[hi]["tf_loss"]
    lines.append(
        f"- **Learning speed**: after epoch {at_mid[hi]['epoch']} the teacher-forced val loss is "
        + ", ".join(f"{v['tf_loss']:.3f} (p = {p:g})" for p, v in at_mid.items())
        + (": the lower ratios learn more slowly, since their decoder must condition on its own early outputs, "
           "which are noise at first (Bengio et al. 2015 found 'always sampling' worst and decayed p from 1)."
           if slower else ": the ratio barely changes the speed of learning here.")
    )
    free_best = min(runs, key=lambda r: r["curve"][-1]["free_loss"])
    if free_best["ratio"] < best["ratio"]:
        fb = free_best["curve"][-1]
        lines.append(
            f"- The lowest free-running val loss belongs to p = {free_best['ratio']:g} ({fb['free_loss']:.4f}, free-"
            f"running token accuracy {fb['free_acc']:.3f}), the best greedy output to p = {best['ratio']:g} "
            f"(accuracy {best['curve'][-1]['free_acc']:.3f}): once a greedy output goes wrong, a model that never saw "
            "its own mistakes is confidently wrong at every later step (a high loss), while one trained on them "
            "hedges; the loss and the argmax disagree. Removing exposure bias alone did not make the better "
            "decoder at this budget."
        )
    lines.append(
        "- A fixed ratio is the crudest form of scheduled sampling: Bengio et al. start at p = 1 and decay it, so "
        "the model first learns from clean prefixes and then from its own; `train.teacher_forcing` is constant."
    )
    return lines


@register_experiment(
    "seq2seq-teacher-forcing",
    family="rnn",
    description="Teacher forcing ratios 1/0.75/0.5/0: val loss fed true vs own tokens, test BLEU (exposure bias)",
)
def seq2seq_teacher_forcing(
    out_dir: Path,
    quick: bool = False,
    *,
    ratios: Sequence[float] = TF_RATIOS,
    task: str | None = None,
    model: str | None = None,
    epochs: int | None = None,
    seed: int = 0,
    threads: int | None = 1,
) -> dict[str, Any]:
    """The same model and budget trained with several teacher forcing ratios on a synthetic task.

    Args:
        out_dir: the experiment's folder.
        quick: reversing 3-10 letters with 16 units, 2 epochs (a smoke test).
        ratios: probabilities of feeding the true previous token while training.
        task: ``dates`` (full default), ``reverse``, ``copy`` or ``sort``.
        model: the registered seq2seq model (default ``seq2seq_bahdanau``).
        epochs: the training budget (the same for every ratio).
        seed: initialisation, batch order and the teacher forcing coins (the same for every ratio).
        threads: torch CPU threads.
    """
    from archlab.tasks.seq2seq import bleu_tokenize_for, corpus_bleu
    from archlab.viz._mpl import new_figure, save_figure

    t0 = time.perf_counter()
    setup = dict(TF_QUICK if quick else TF_FULL)
    if task:
        setup["data_options"] = {**setup["data_options"], "task": task}
    if epochs:
        setup["epochs"] = int(epochs)
    model = model or setup["model"]
    ratios = [float(p) for p in ratios]
    if any(not 0.0 <= p <= 1.0 for p in ratios):
        raise ValueError(f"teacher forcing ratios must be in [0, 1], got {ratios}")
    runs = []
    for p in ratios:
        probe = free_running_callback()
        r = train_seq2seq(out_dir, f"tf{p:g}", model, setup, threads=threads, seed=seed, callbacks=[probe],
                          overrides={"train.teacher_forcing": p})
        bundle = r["bundle"]
        tgt_vocab = bundle.info.target_vocab
        d = decode_split(r["model"], bundle.test, tgt_vocab, threads=threads)
        r.update(ratio=p, curve=probe.rows, bleu=corpus_bleu(d["hyp"], d["ref"], bleu_tokenize_for(tgt_vocab)),
                 exact=float(np.mean([h == ref for h, ref in zip(d["hyp"], d["ref"])])))
        runs.append(r)
    bundle = runs[0]["bundle"]
    rows = []
    for r in runs:
        last = r["curve"][-1]
        rows.append({
            "teacher forcing": r["ratio"], "val loss, teacher forced": round(last["tf_loss"], 4),
            "val loss, free running": round(last["free_loss"], 4),
            "gap (free - forced)": round(last["free_loss"] - last["tf_loss"], 4),
            "val token acc, free running": round(last["free_acc"], 4), "test BLEU (greedy)": round(r["bleu"], 2),
            "test exact match": round(r["exact"], 4), "training time (s)": round(r["train_seconds"], 1),
        })  # fmt: skip

    fig = new_figure(15, 4.2)
    axes = [fig.add_subplot(1, 3, i + 1) for i in range(3)]
    for i, r in enumerate(runs):
        ep = [c["epoch"] for c in r["curve"]]
        axes[0].plot(ep, [c["tf_loss"] for c in r["curve"]], "o-", color=f"C{i}", ms=3, label=f"p = {r['ratio']:g}")
        axes[1].plot(ep, [c["free_loss"] for c in r["curve"]], "o-", color=f"C{i}", ms=3, label=f"p = {r['ratio']:g}")
    for ax, what in zip(axes[:2], ("teacher forced (true previous tokens)", "free running (own previous tokens)")):
        ax.set(xlabel="epoch", ylabel="val loss (nats / token)", yscale="log", title=f"Validation, {what}")
        ax.legend(fontsize=8, title="training ratio p", title_fontsize=8)
    xs = np.arange(len(runs))
    axes[2].bar(xs, [r["bleu"] for r in runs], color=[f"C{i}" for i in range(len(runs))])
    axes[2].set_xticks(xs, [f"p = {r['ratio']:g}" for r in runs])
    axes[2].set(ylabel="test BLEU (greedy)", title=f"After {setup['epochs']} epochs")
    for k, r in enumerate(runs):
        axes[2].annotate(f"{r['bleu']:.1f}\n({r['exact']:.0%} exact)", (k, r["bleu"]), ha="center", va="bottom",
                         fontsize=8)
    axes[2].set_ylim(0, max(105.0, max(r["bleu"] for r in runs) * 1.15))
    tf_png = save_figure(fig, out_dir / "teacher_forcing.png")

    lines = _teacher_forcing_lines(runs, setup["epochs"])
    lines.append(
        "- Training with p < 1 runs the decoder step by step (each input depends on the last output), so it "
        "cannot use the one-call teacher-forced path; the training times are in the table. The training loss of "
        "different ratios is not comparable (it is measured on different inputs); both validation losses are."
    )
    intro = (
        f"Does feeding the decoder its own predictions while training help it at test time? `{model}` "
        f"({runs[0]['params']:,} parameters, {setup['hidden_dim']} units, embeddings {setup['embed_dim']}) learns "
        f"{_describe(setup, bundle)} with teacher forcing ratios {', '.join(f'{p:g}' for p in ratios)} (the "
        f"probability of feeding the true previous token at each decoder step; one coin per step and batch), "
        f"the same {setup['epochs']} epochs (Adam lr {setup['lr']}, batches of {setup['batch_size']}, gradient "
        "clipping 1) and seed. Before training and after each epoch the validation loss is measured twice: "
        "decoder fed the true previous tokens (teacher forced, what training minimises at p = 1) and fed its "
        "own argmax (free running, what greedy decoding at test time sees). Test BLEU is that of greedy "
        "decoding." + (" **Quick mode**: a smoke test." if quick else "")
    )
    report = _write(out_dir, "Teacher forcing ratio and exposure bias", intro,
                    [("Validation loss per epoch and test BLEU by teacher forcing ratio", tf_png)],
                    [("Runs", rows)], "\n".join(lines))
    return {
        "report": str(report), "seconds": time.perf_counter() - t0, "rows": rows,
        "curves": {r["ratio"]: r["curve"] for r in runs}, "bleu": {r["ratio"]: r["bleu"] for r in runs},
        "setup": {**setup, "model": model, "ratios": ratios, "quick": quick},
    }  # fmt: skip
