"""Benchmarks of the sequence family on real data (../shared/data), with the shipped recipes.

* ``sst2_bilstm``: ``archlab train bilstm --data sst2``: test accuracy on the 872 sentences of
  test.tsv (the GLUE dev set), target >= 83%, and the wall time.
* ``char_lstm_shakespeare``: ``archlab train char_lstm --data tinyshakespeare``: validation loss
  (nats per character) and the wall time.
* ``fra_eng_bleu``: English -> French on pairs of up to 10 words (a held-out, seeded 5% test split
  of fra_eng): corpus BLEU (sacrebleu) of a GRU encoder-decoder without attention, with Bahdanau
  attention and with Luong attention, each decoded greedily and with a beam of 5.

Each records the command, the recipe and the figures; ``quick=True`` runs a few steps on a subset
(a smoke test that writes nothing).
"""

from __future__ import annotations

import tempfile
import time
from typing import Any

from archlab.bench.suite import root_holding
from archlab.registry import register_benchmark

__all__ = ["sst2_bilstm", "char_lstm_shakespeare", "fra_eng_bleu"]


def _common(out: str, name: str, root: str) -> dict[str, Any]:
    return {"data.root": root, "run.out_dir": out, "run.name": name, "run.report": False,
            "system.progress": False, "system.tensorboard": False}


def _train(model: str, data: str, overrides: dict[str, Any]) -> tuple[Any, float]:
    import archlab

    t0 = time.perf_counter()
    run = archlab.train(model, data, overrides=overrides)
    return run, round(time.perf_counter() - t0, 2)


@register_benchmark("sst2_bilstm", family="rnn", description="BiLSTM on SST-2: test accuracy >= 83% (872 sentences), wall time")
def sst2_bilstm(quick: bool = False, seeds: tuple[int, ...] = (0,)) -> dict[str, Any]:
    rows = []
    with tempfile.TemporaryDirectory() as out:
        for seed in seeds:
            ovs = {**_common(out, f"seed{seed}", root_holding("sst2")), "train.seed": seed}
            if quick:
                ovs.update({"train.max_steps": 5, "train.epochs": 1})
            run, wall = _train("bilstm", "sst2", ovs)
            rows.append({"seed": seed, "test_acc": round(run.metrics["test/acc"], 4),
                         "val_acc": round(run.metrics.get("val/acc", float("nan")), 4),
                         "train_time_s": run.summary.get("train_time_s"), "wall_s": wall})
    return {"command": "archlab train bilstm --data sst2", "recipe": "src/archlab/recipes/bilstm-sst2.yaml",
            "target": 0.83, "runs": rows, "min_test_acc": min(r["test_acc"] for r in rows)}


@register_benchmark("char_lstm_shakespeare", family="rnn",
                    description="character LSTM on Tiny Shakespeare: validation loss and wall time")
def char_lstm_shakespeare(quick: bool = False) -> dict[str, Any]:
    import math

    with tempfile.TemporaryDirectory() as out:
        ovs = _common(out, "run", root_holding("tinyshakespeare"))
        if quick:
            ovs.update({"train.max_steps": 5, "train.epochs": 1})
        run, wall = _train("char_lstm", "tinyshakespeare", ovs)
        m = run.metrics
        import archlab

        sample = archlab.generate(run.path, "ROMEO:", max_new_tokens=200, temperature=0.8, seed=0)
    val = m.get("val/loss")
    return {"command": "archlab train char_lstm --data tinyshakespeare",
            "recipe": "src/archlab/recipes/char_lstm-tinyshakespeare.yaml",
            "val_loss": round(val, 4) if val is not None else None,
            "val_ppl": round(math.exp(val), 3) if val is not None else None,
            "test_loss": round(m["test/loss"], 4) if "test/loss" in m else None,
            "steps": run.summary.get("steps"), "train_time_s": run.summary.get("train_time_s"), "wall_s": wall,
            "sample": sample}


FRA_ENG_MODELS = (("none", "seq2seq_gru"), ("bahdanau", "seq2seq_bahdanau"), ("luong", "seq2seq_luong"))


@register_benchmark("fra_eng_bleu", family="rnn",
                    description="English-French seq2seq: BLEU without attention, Bahdanau, Luong; greedy and beam 5")
def fra_eng_bleu(quick: bool = False, beam_size: int = 5, epochs: int | None = 1) -> dict[str, Any]:
    """``epochs`` overrides the recipes' (1 here: one pass over the 111,940 training pairs keeps the
    three trainings within an hour on 2 CPU cores; None trains as the recipes say)."""
    rows = []
    with tempfile.TemporaryDirectory() as out:
        for attention, model in FRA_ENG_MODELS:
            ovs = {**_common(out, model, root_holding("fra_eng")), "train.beam_size": beam_size}
            if epochs is not None:
                ovs["train.epochs"] = epochs
            if quick:
                ovs.update({"train.max_steps": 5, "train.epochs": 1, "data.options.num_pairs": 2000})
            run, wall = _train(model, "fra_eng", ovs)
            m = run.metrics
            rows.append({"attention": attention, "model": model,
                         "bleu_greedy": round(m.get("test/bleu", float("nan")), 2),
                         f"bleu_beam{beam_size}": round(m.get("test/bleu_beam", float("nan")), 2),
                         "test_loss": round(m.get("test/loss", float("nan")), 4),
                         "params": run.summary.get("params"),
                         "train_time_s": run.summary.get("train_time_s"), "wall_s": wall})
    return {"command": "archlab train MODEL --data fra_eng train.beam_size=5"
                       + (f" train.epochs={epochs}" if epochs is not None else ""),
            "recipes": [f"src/archlab/recipes/{m}-fra_eng.yaml" for _, m in FRA_ENG_MODELS],
            "split": "held-out seeded 5% of the pairs of <= 10 words", "runs": rows}
