"""GPT and BERT experiments: how to decode a language model, and what pre-training buys with little data.

Two experiments (family ``transformer``), each writing ``report.html`` with figures, result tables
and conclusions computed from the numbers. Both train with a plain loop written here (AdamW on
seeded mini-batches, gradient clipping at 1.0), by default on one CPU thread for the GPT and two for
the MiniLM; ``quick=True`` shrinks every budget to a smoke test of seconds (on one thread).

``gpt-decoding``              ``gpt_char`` (4 layers, 128 wide, 4 heads, context 64) trained on
                              Tiny Shakespeare's characters (the embedded ``corpus`` when
                              ``tinyshakespeare/`` is not at hand) for a few minutes, then held-out
                              prompts continued with nine decoding strategies (greedy; temperature
                              0.7, 1.0, 1.3; top-k 10 and 40; top-p 0.9; greedy with a repetition
                              penalty of 1.3; greedy with no repeated 3-gram): distinct-1/2/3 and
                              repeated 4-grams of the words, the perplexity of the samples under
                              the model, and the samples themselves, against the true continuations.
``bert-finetune-vs-scratch``  the pretrained MiniLM (all-MiniLM-L6-v2's weights in ``minilm_l6``)
                              fine-tuned on 100, 500 and 2,000 SST-2 training sentences (the
                              embedded ``sentiment`` set when ``sst2/`` is not at hand), against the
                              same architecture from random weights and a smaller ``bert_mini``
                              from random weights, with the same recipe: test accuracy against the
                              number of training sentences.

Decoding. The model gives p(x_t | x_<t); a decoder picks x_t. Greedy takes the argmax, sampling
draws from ``softmax(logits / T)`` (T < 1 sharper, T > 1 flatter), top-k samples among the k most
likely tokens (Fan et al. 2018), top-p among the smallest set of probability >= p (Holtzman et
al. 2020). Greedy (and beam) text is far more probable than human text and falls into loops;
pure sampling wanders into the unreliable tail of the distribution; truncation (top-k, top-p,
T < 1) trades the two. CTRL's repetition penalty divides the scores of tokens already in the text
(Keskar et al. 2019); the n-gram ban forbids any n-gram from occurring twice (Paulus et al. 2018).
The statistics (:mod:`archlab.report.transformer`): distinct-n = unique / all n-grams pooled over
the samples (Li et al. 2016); rep-4 = the share of a sample's 4-grams that repeat an earlier one
(Welleck et al. 2020); perplexity = exp of the mean -log p_model of the generated tokens.

Fine-tuning. BERT-style pre-training (masked language modelling on large text) gives an encoder
whose features already separate meanings; fine-tuning learns a linear head on the pooled [CLS]
state and adjusts every weight a little (Devlin et al. 2019). From random weights the same 22M
parameters must learn the language from the labelled sentences alone, which with a few hundred
of them overfits long before it generalises. all-MiniLM-L6-v2 is MiniLM-L6-H384 (Wang et al.
2020, distilled from a larger BERT) further trained contrastively on sentence pairs by
sentence-transformers.

References:
    A. Radford, J. Wu, R. Child, D. Luan, D. Amodei, I. Sutskever, "Language models are unsupervised
    multitask learners", 2019 (GPT-2)
    A. Holtzman, J. Buys, L. Du, M. Forbes, Y. Choi, "The curious case of neural text degeneration",
    ICLR 2020, https://arxiv.org/abs/1904.09751
    A. Fan, M. Lewis, Y. Dauphin, "Hierarchical neural story generation", ACL 2018,
    https://arxiv.org/abs/1805.04833 (top-k)
    N. S. Keskar, B. McCann, L. R. Varshney, C. Xiong, R. Socher, "CTRL: a conditional transformer
    language model for controllable generation", 2019, https://arxiv.org/abs/1909.05858
    R. Paulus, C. Xiong, R. Socher, "A deep reinforced model for abstractive summarization", ICLR
    2018, https://arxiv.org/abs/1705.04304 (trigram blocking)
    J. Li, M. Galley, C. Brockett, J. Gao, B. Dolan, "A diversity-promoting objective function for
    neural conversation models", NAACL 2016, https://arxiv.org/abs/1510.03055 (distinct-n)
    S. Welleck et al., "Neural text generation with unlikelihood training", ICLR 2020,
    https://arxiv.org/abs/1908.04319 (seq-rep-n)
    J. Devlin, M.-W. Chang, K. Lee, K. Toutanova, "BERT: pre-training of deep bidirectional
    transformers for language understanding", NAACL 2019, https://arxiv.org/abs/1810.04805
    W. Wang, F. Wei, L. Dong, H. Bao, N. Yang, M. Zhou, "MiniLM: deep self-attention distillation for
    task-agnostic compression of pre-trained transformers", NeurIPS 2020, https://arxiv.org/abs/2002.10957
    I. Turc, M.-W. Chang, K. Lee, K. Toutanova, "Well-read students learn better: on the importance
    of pre-training compact models", 2019, https://arxiv.org/abs/1908.08962 (BERT-Tiny/Mini)
    R. Socher et al., "Recursive deep models for semantic compositionality over a sentiment
    treebank", EMNLP 2013 (SST)

Deviations from the paper:
    - ``gpt-decoding`` trains a 0.8M-parameter character model for 800 steps of 32 x 64 characters
      (a few CPU minutes; nanoGPT's shakespeare-char trains 10.7M parameters for 5,000 steps of
      64 x 256), so its text is far from Shakespeare's and its test loss far above nanoGPT's 1.47.
      Holtzman et al. studied GPT-2 large on web text, with sub-word tokens. distinct-n and rep-4
      are counted on whitespace-separated words of the decoded text; the repetition penalty and
      the n-gram ban act on the model's tokens, here characters (see the conclusions).
    - ``bert-finetune-vs-scratch``: one seed and one recipe for every model (AdamW, weight decay
      0.01, batch 16, 10% linear warm-up then linear decay, dropout 0.1, as BERT's fine-tuning),
      with lr 1e-4 from the pretrained weights and 5e-4 from random ones (a model trained from
      scratch needs larger steps; no search per model or size), and a fixed budget: min(10,
      ceil(2000 / n)) epochs on n sentences, so that the three sizes fit ten CPU minutes. Sentences
      are cut to 48 word pieces (SST-2; 32 on ``sentiment``), [CLS] and [SEP] included (a few long
      SST-2 test sentences lose their ends). The scratch models read the same WordPiece ids as the
      pretrained one (30,522-word table, mostly unused) so that only the initial weights differ.
      The MiniLM is loaded with :func:`archlab.models.transformer.hf_bert.load_hf_bert` (its
      pooler included; the classifier is new); ``archlab train minilm_l6 --data sst2 --init minilm``
      is the CLI's path to the same weights. The subsets are nested (the 100 sentences are the
      first of the 500...), drawn at random from SST-2's training phrases and sentences.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from archlab.experiments.resnet_experiments import num_threads
from archlab.registry import register_experiment

__all__ = [
    "BERT_MODELS",
    "lm_streams",
    "lm_batch",
    "train_char_gpt",
    "lm_loss",
    "nested_subsets",
    "build_sentence_classifier",
    "finetune_classifier",
    "classifier_accuracy",
]

# --------------------------------------------------------------------------------------------------
# gpt-decoding: budgets
# --------------------------------------------------------------------------------------------------

#: Tiny Shakespeare: ``gpt_char`` at its registered size, a few CPU minutes of AdamW.
GPT_FULL: dict[str, Any] = {
    "steps": 800, "batch_size": 32, "lr": 3e-3, "warmup": 50, "min_lr_ratio": 0.1, "weight_decay": 0.1,
    "grad_clip": 1.0, "eval_every": 50, "eval_windows": 128, "n_prompts": 6, "prompt_len": 16,
    "new_tokens": 400, "model_options": {},
}  # fmt: skip
#: The embedded corpus (6.6 KB): fewer steps, it is learned by heart long before 800.
GPT_CORPUS: dict[str, Any] = {**GPT_FULL, "steps": 300, "eval_every": 25, "n_prompts": 2, "new_tokens": 150}
#: Quick mode: a one-layer, 32-wide model on the corpus, 30 steps (a smoke test).
GPT_QUICK: dict[str, Any] = {
    "steps": 30, "batch_size": 16, "lr": 3e-3, "warmup": 5, "min_lr_ratio": 0.1, "weight_decay": 0.1,
    "grad_clip": 1.0, "eval_every": 10, "eval_windows": 16, "n_prompts": 2, "prompt_len": 8, "new_tokens": 40,
    "model_options": {"num_layers": 1, "num_heads": 2, "embed_dim": 32, "max_len": 32},
}  # fmt: skip

# --------------------------------------------------------------------------------------------------
# bert-finetune-vs-scratch: models and budgets
# --------------------------------------------------------------------------------------------------

#: (label, registered architecture, starts from the pretrained MiniLM).
BERT_MODELS: tuple[tuple[str, str, bool], ...] = (
    ("MiniLM pretrained", "minilm_l6", True),
    ("MiniLM from scratch", "minilm_l6", False),
    ("BERT-Mini from scratch", "bert_mini", False),
)
BERT_FULL: dict[str, Any] = {
    "sizes": (100, 500, 2000), "seen": 2000, "max_epochs": 10, "batch_size": 16,
    "lr": {"pretrained": 1e-4, "scratch": 5e-4},
    "weight_decay": 0.01, "warmup": 0.1, "grad_clip": 1.0, "max_len": {"sst2": 48, "sentiment": 32},
    "data_options": {"sentiment": {"n_samples": 4000}}, "test_limit": None, "eval_batch": 64,
}  # fmt: skip
BERT_QUICK: dict[str, Any] = {
    "sizes": (8, 16), "seen": 16, "max_epochs": 1, "batch_size": 16, "lr": {"pretrained": 1e-4, "scratch": 5e-4},
    "weight_decay": 0.01,
    "warmup": 0.1, "grad_clip": 1.0, "max_len": {"sst2": 16, "sentiment": 16},
    "data_options": {"sentiment": {"n_samples": 200}}, "test_limit": 16, "eval_batch": 16,
}  # fmt: skip


def _write(out_dir: Path, title: str, intro: str, figures: list[tuple[str, Path]],
           tables: list[tuple[str, list[dict[str, Any]]]], conclusions: str) -> Path:
    from archlab.report.experiment import write_experiment_report

    return write_experiment_report(out_dir, title, intro, figures=figures, tables=tables, conclusions=conclusions)


def _r(v: float, digits: int = 3) -> float | str:
    return round(float(v), digits) if math.isfinite(float(v)) else "-"


# --------------------------------------------------------------------------------------------------
# The character GPT: data, training
# --------------------------------------------------------------------------------------------------


def lm_streams(bundle: Any) -> dict[str, Tensor]:
    """The train/val/test token streams (N,) of an ``lm`` bundle cut with ``stride = context``.

    Windows of ``context + 1`` tokens starting every ``context`` tokens hold the stream as
    ``x`` rows laid end to end, plus the last target.
    """
    out = {}
    for name in ("train", "val", "test"):
        part = getattr(bundle, name)
        out[name] = torch.cat([part.x.reshape(-1), part.y[-1, -1:]])  # (M * context + 1,)
    return out


def lm_batch(stream: Tensor, batch_size: int, context: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Random windows of a stream (nanoGPT's ``get_batch``): x (B, context), y = x shifted by one."""
    if len(stream) < context + 2:
        raise ValueError(f"a stream of {len(stream)} tokens is too short for windows of {context} + 1")
    start = torch.randint(0, len(stream) - context - 1, (batch_size,), generator=generator)  # (B,)
    idx = start[:, None] + torch.arange(context)[None, :]  # (B, context)
    return stream[idx], stream[idx + 1]


@torch.no_grad()
def lm_loss(model: nn.Module, x: Tensor, y: Tensor, batch_size: int = 64) -> float:
    """Mean next-token cross-entropy (nats per token) of windows x, y (N, T), in eval mode."""
    was = model.training
    model.eval()
    total, n = 0.0, 0
    try:
        for i in range(0, len(x), batch_size):
            logits = model(x[i : i + batch_size])  # (B, T, V)
            yb = y[i : i + batch_size]
            total += float(F.cross_entropy(logits.flatten(0, 1), yb.reshape(-1), reduction="sum"))
            n += yb.numel()
    finally:
        model.train(was)
    return total / max(n, 1)


def _lr_at(step: int, steps: int, lr: float, warmup: int, min_ratio: float) -> float:
    """Linear warm-up over ``warmup`` steps, then cosine decay to ``min_ratio * lr`` (nanoGPT)."""
    if step < warmup:
        return lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return lr * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0))))


def train_char_gpt(
    bundle: Any,
    *,
    steps: int,
    batch_size: int,
    lr: float,
    warmup: int = 50,
    min_lr_ratio: float = 0.1,
    weight_decay: float = 0.1,
    grad_clip: float | None = 1.0,
    eval_every: int = 50,
    eval_windows: int = 128,
    model_options: dict[str, Any] | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Train ``gpt_char`` on an ``lm`` bundle's training stream with AdamW.

    Each step reads ``batch_size`` random windows of the model's context. Every ``eval_every``
    steps the validation loss is measured on ``eval_windows`` fixed validation windows.

    Args:
        bundle: a character (or any token) ``lm`` bundle.
        steps, batch_size, lr, warmup, min_lr_ratio: the budget and the warm-up + cosine schedule.
        weight_decay: AdamW's, on the matrices and embeddings only (not on biases and norms).
        grad_clip: clip the gradient's global norm (None: never).
        eval_every, eval_windows: the validation curve.
        model_options: ``gpt_char`` config fields (``num_layers``, ``embed_dim``, ``max_len``...).
        seed: initialisation and batch order.

    Returns:
        ``{"model" (eval mode), "history" ({"step", "train_loss", "val_loss"}), "train_seconds",
        "params", "context", "val_loss", "test_loss"}`` (losses in nats per token).
    """
    import archlab.models.transformer.gpt  # noqa: F401  (registers gpt_char)
    from archlab.registry import create_model

    vocab = bundle.info.vocab
    opts = dict(model_options or {})
    torch.manual_seed(seed)
    model = create_model("gpt_char", vocab_size=len(vocab), pad_id=int(vocab.pad_id), **opts)
    context = int(model.config.max_len)
    streams = lm_streams(bundle)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=lr, betas=(0.9, 0.99))
    g = torch.Generator().manual_seed(seed + 1)
    gv = torch.Generator().manual_seed(seed + 2)
    vx, vy = lm_batch(streams["val"], eval_windows, context, gv)  # fixed validation windows
    history: dict[str, list[float]] = {"step": [], "train_loss": [], "val_loss": []}
    window: list[float] = []
    model.train()
    t0 = time.perf_counter()
    for step in range(steps):
        for group in opt.param_groups:
            group["lr"] = _lr_at(step, steps, lr, warmup, min_lr_ratio)
        x, y = lm_batch(streams["train"], batch_size, context, g)
        loss = F.cross_entropy(model(x).flatten(0, 1), y.reshape(-1))  # (B*T, V) vs (B*T,)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        opt.step()
        window.append(loss.item())
        if (step + 1) % eval_every == 0 or step + 1 == steps:
            history["step"].append(step + 1)
            history["train_loss"].append(float(np.mean(window)))
            history["val_loss"].append(lm_loss(model, vx, vy))
            window = []
    train_seconds = time.perf_counter() - t0
    test = bundle.test
    return {
        "model": model.eval(), "history": history, "train_seconds": train_seconds,
        "params": sum(p.numel() for p in model.parameters()), "context": context,
        "val_loss": history["val_loss"][-1], "test_loss": lm_loss(model, test.x[:, :context], test.y[:, :context]),
    }  # fmt: skip


def _lm_data(quick: bool, dataset: str | None, data_root: str | None) -> tuple[str, str | None, dict[str, Any]]:
    """(dataset, root, budget): quick -> corpus; else tinyshakespeare when found (or asked), else corpus."""
    from archlab.utils import find_data_root

    if quick:
        return "corpus", None, dict(GPT_QUICK)
    if dataset not in (None, "tinyshakespeare", "corpus"):
        raise ValueError(f"dataset must be 'tinyshakespeare' or 'corpus', got {dataset!r}")
    root = find_data_root("tinyshakespeare", data_root)
    if dataset == "tinyshakespeare" and root is None:
        raise FileNotFoundError("tinyshakespeare/input.txt was not found under data_root, $ARCHLAB_DATA, "
                                "$ARCHLAB_SHARED_DATA or ../shared/data; pass data_root= (the folder holding "
                                "tinyshakespeare/) or dataset='corpus'")
    if dataset == "corpus" or root is None:
        return "corpus", None, dict(GPT_CORPUS)
    return "tinyshakespeare", root, dict(GPT_FULL)


# --------------------------------------------------------------------------------------------------
# gpt-decoding
# --------------------------------------------------------------------------------------------------


def _strategy_options(options: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in options.items())


@register_experiment(
    "gpt-decoding",
    family="transformer",
    description="gpt_char decoded greedily, with temperature, top-k, top-p, repetition penalty, n-gram ban",
)
def gpt_decoding(
    out_dir: Path,
    quick: bool = False,
    *,
    dataset: str | None = None,
    data_root: str | None = None,
    steps: int | None = None,
    new_tokens: int | None = None,
    n_prompts: int | None = None,
    seed: int = 0,
    threads: int | None = None,
) -> dict[str, Any]:
    """Train ``gpt_char`` for a few minutes, then compare nine decoding strategies on held-out prompts.

    Args:
        out_dir: the experiment's folder.
        quick: a one-layer, 32-wide model on the embedded corpus, 30 steps, 40 new characters.
        dataset: ``tinyshakespeare`` (the default when its file is found) or ``corpus``.
        data_root: the folder holding ``tinyshakespeare/``.
        steps: AdamW steps (default 800 on Tiny Shakespeare).
        new_tokens: characters generated per prompt (cut to what the test text can match).
        n_prompts: prompts, taken evenly from the test text.
        seed: initialisation, batch order and sampling.
        threads: torch CPU threads (default 1: this 0.8M-parameter model gains little from a second,
            and a second thread on a busy core makes every step wait for it).
    """
    from archlab.data import load_dataset
    from archlab.report.transformer import DECODING_STRATEGIES, decoding_rows
    from archlab.viz._mpl import new_figure, save_figure

    t0, c0 = time.perf_counter(), time.process_time()
    threads = threads or 1
    name, root, c = _lm_data(quick, dataset, data_root)
    c["steps"] = int(steps or c["steps"])
    c["n_prompts"] = int(n_prompts or c["n_prompts"])
    context = int(c["model_options"].get("max_len", 64))
    with num_threads(threads):
        bundle = load_dataset(name, root, context=context)
        vocab = bundle.info.vocab
        r = train_char_gpt(bundle, **{k: c[k] for k in ("steps", "batch_size", "lr", "warmup", "min_lr_ratio",
                                                         "weight_decay", "grad_clip", "eval_every", "eval_windows",
                                                         "model_options")}, seed=seed)
        model = r["model"]
        # Prompts and their true continuations: evenly spaced, non-overlapping chunks of the test text.
        test = lm_streams(bundle)["test"]
        P = int(c["prompt_len"])
        chunk = len(test) // c["n_prompts"]
        n_new = max(1, min(int(new_tokens or c["new_tokens"]), chunk - P))
        reference = torch.stack([test[i * chunk : i * chunk + P + n_new] for i in range(c["n_prompts"])])  # (B, P+n)
        prompts = reference[:, :P]
        rows, texts = decoding_rows(model, vocab, prompts, n_new, DECODING_STRATEGIES, seed=seed,
                                    reference=reference)
    options = dict(DECODING_STRATEGIES)
    by = {row["strategy"]: row for row in rows}
    ref = by["reference text"]
    table = [{
        "strategy": row["strategy"], "options": _strategy_options(options.get(row["strategy"], {})) or "-",
        "distinct-1": _r(row["distinct-1"]), "distinct-2": _r(row["distinct-2"]), "distinct-3": _r(row["distinct-3"]),
        "rep-4": _r(row["rep-4"]), "perplexity": _r(row["perplexity"], 2),
        "ms / token": _r(1000 * row["seconds"] / (n_new * len(prompts)), 2),
    } for row in rows]  # fmt: skip
    sample_rows = [{"strategy": label, "prompt + continuation (first prompt)":
                    vocab.decode(prompts[0].tolist()) + texts[label][0][:300]} for label in texts]  # fmt: skip
    bpc = r["test_loss"] / math.log(2)
    train_rows = [{
        "data": name, "model": "gpt_char" + (" (quick: 1 layer, 32 wide)" if quick else ""), "params": f"{r['params']:,}",
        "context": r["context"], "steps": c["steps"], "batch": c["batch_size"],
        "final train loss": _r(r["history"]["train_loss"][-1]), "val loss": _r(r["val_loss"]),
        "test loss": _r(r["test_loss"]), "test perplexity": _r(math.exp(r["test_loss"]), 2),
        "bits / char": _r(bpc), "train s": round(r["train_seconds"], 1),
    }]  # fmt: skip

    # Figure 1: the training curve.
    h = r["history"]
    fig = new_figure(6, 3.8)
    ax = fig.add_subplot(111)
    ax.plot(h["step"], h["train_loss"], label="train (mean since the last point)")
    ax.plot(h["step"], h["val_loss"], label=f"validation ({c['eval_windows']} windows)")
    ax.axhline(math.log(len(vocab)), color="grey", ls="--", label=f"uniform over {len(vocab)} tokens")
    ax.set(xlabel="step", ylabel="cross-entropy (nats / character)", title=f"gpt_char on {name}")
    ax.legend(fontsize=8)
    curve_png = save_figure(fig, out_dir / "training_curve.png")

    # Figure 2: diversity against perplexity, and repetition.
    fig = new_figure(12, 4.4)
    ax1, ax2 = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    labels = [row["strategy"] for row in rows]
    for i, row in enumerate(rows):
        is_ref = row["strategy"] == "reference text"
        ax1.scatter(row["perplexity"], row["distinct-2"], s=90 if is_ref else 40, marker="*" if is_ref else "o",
                    color="black" if is_ref else f"C{i % 10}", zorder=3, label=row["strategy"])
        ax1.annotate(row["strategy"], (row["perplexity"], row["distinct-2"]), fontsize=7, xytext=(4, 3),
                     textcoords="offset points")
    ax1.set(xscale="log", xlabel="perplexity of the samples under the model (log)",
            ylabel="distinct-2 (unique word bigrams / all)", title="Diversity against model probability")
    reps = [0.0 if math.isnan(row["rep-4"]) else row["rep-4"] for row in rows]
    ax2.barh(range(len(rows)), reps, color=["black" if lab == "reference text" else "C0" for lab in labels])
    ax2.set_yticks(range(len(rows)), labels)
    ax2.invert_yaxis()
    ax2.set(xlabel="rep-4: share of word 4-grams repeating an earlier one", title="Repetition")
    decoding_png = save_figure(fig, out_dir / "decoding.png")

    lines = _decoding_conclusions(by, ref, tokens="characters" if name in ("corpus", "tinyshakespeare") else "tokens")
    if "top-k 40" in texts and "temperature 1.0" in texts:
        # The same seed: the filter changes a draw only when it lands in the cut tail.
        same = [_shared_prefix(a, b) / max(len(b), 1) for a, b in zip(texts["top-k 40"], texts["temperature 1.0"])]
        lines.append(f"- **Top-k 40 against pure sampling** (the same seed): their samples agree on their first "
                     f"{np.mean(same):.0%} of characters on average"
                     + (f": with {len(vocab)} tokens, keeping the top 40 cuts only a tail that the sampler rarely "
                        "reaches." if np.mean(same) >= 0.5 else
                        f"; with {len(vocab)} tokens the cut tail is drawn often enough to change the text early."))
    intro = (
        "How should one draw text from a language model? `gpt_char` (pre-LN GPT, "
        f"{r['params']:,} parameters, context {r['context']}) is trained on {name} characters for {c['steps']} AdamW "
        f"steps (batches of {c['batch_size']} random windows, lr {c['lr']} with {c['warmup']} warm-up steps and cosine "
        f"decay, weight decay {c['weight_decay']}, clipping 1). Then {len(prompts)} prompts of {P} characters, taken "
        f"evenly from the test text, are continued by {n_new} characters with each strategy (seed {seed}); the "
        "*reference text* row is the prompts' true continuation in the test text, measured the same way. "
        "distinct-n: unique word n-grams / all, pooled over the samples (Li et al. 2016); rep-4: the share of a "
        "sample's word 4-grams that repeat an earlier one, averaged (Welleck et al. 2020); perplexity: exp of the "
        "mean -log p of the generated characters under the model at temperature 1 without filters (lower = the "
        "model finds the text more probable). The repetition penalty and the 3-gram ban are applied to greedy "
        f"decoding. Threads: {threads}."
        + (" **Quick mode**: a smoke test; the model has learned next to nothing." if quick else "")
    )
    report = _write(
        out_dir, "Decoding a GPT: greedy, temperature, top-k, top-p, penalties", intro,
        [("Training and validation loss", curve_png),
         ("Diversity (distinct-2) against perplexity, and repetition, per strategy (star: reference text)",
          decoding_png)],
        [("The model", train_rows), ("Decoding strategies", table), ("Samples", sample_rows)],
        "\n".join(lines),
    )  # fmt: skip
    return {
        "report": str(report), "seconds": time.perf_counter() - t0, "cpu_seconds": time.process_time() - c0,
        "rows": table, "strategies": by, "texts": texts, "training": train_rows[0], "history": r["history"],
        "test_loss": r["test_loss"],
        "setup": {**c, "dataset": name, "data_root": root, "new_tokens": n_new, "seed": seed, "threads": threads,
                  "quick": quick},
    }  # fmt: skip


def _shared_prefix(a: str, b: str) -> int:
    """Length of the common prefix of two strings."""
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def _decoding_conclusions(by: dict[str, dict[str, Any]], ref: dict[str, Any], tokens: str) -> list[str]:
    """Conclusion lines from the strategies' numbers (rows of :func:`archlab.report.transformer.decoding_rows`)."""
    g = by["greedy"]
    lines = [
        f"- **Greedy** text has perplexity {g['perplexity']:.2f} under the model against {ref['perplexity']:.2f} for "
        f"the true continuation ({ref['perplexity'] / g['perplexity']:.1f} x lower): the argmax path is far more "
        f"probable than real text. Its rep-4 is {g['rep-4']:.2f} against {ref['rep-4']:.2f} for the reference"
        + (" and its distinct-2 "
           f"{g['distinct-2']:.2f} against {ref['distinct-2']:.2f}: it loops (Holtzman et al.'s degeneration)."
           if g["rep-4"] > ref["rep-4"] + 0.05 else
           f": at this length greedy does not loop more than the text it imitates (distinct-2 {g['distinct-2']:.2f} "
           f"against {ref['distinct-2']:.2f}).")
    ]
    temps = [t for t in ("temperature 0.7", "temperature 1.0", "temperature 1.3") if t in by]
    ppl = [by[t]["perplexity"] for t in temps]
    d2 = [by[t]["distinct-2"] for t in temps]
    rising = all(a < b for a, b in zip(ppl, ppl[1:]))
    lines.append(
        "- **Temperature** " + ", ".join(f"{t.split()[-1]}: perplexity {by[t]['perplexity']:.2f}, distinct-2 "
                                         f"{by[t]['distinct-2']:.2f}, rep-4 {by[t]['rep-4']:.2f}" for t in temps)
        + ". " + ("The perplexity rises with the temperature: a flatter distribution draws less likely characters"
                  if rising else "The perplexity does not rise monotonically with the temperature in these samples")
        + (", and the diversity rises with it." if all(a <= b for a, b in zip(d2, d2[1:])) else ".")
        + (f" Pure sampling (T = 1) gives perplexity {by['temperature 1.0']['perplexity']:.2f}, "
           f"{'close to' if abs(math.log(by['temperature 1.0']['perplexity'] / ref['perplexity'])) < 0.15 else 'unlike'}"
           f" the reference's {ref['perplexity']:.2f}: samples from the model are as probable to it as the text it was "
           "trained to imitate, in expectation its entropy." if "temperature 1.0" in by else "")
    )
    trunc = [t for t in ("top-k 10", "top-k 40", "top-p 0.9") if t in by]
    if trunc and "temperature 1.0" in by:
        t1 = by["temperature 1.0"]
        lines.append(
            "- **Truncation** (T = 1 after the filter): " + ", ".join(
                f"{t} perplexity {by[t]['perplexity']:.2f} (distinct-2 {by[t]['distinct-2']:.2f})" for t in trunc)
            + f", against {t1['perplexity']:.2f} for untruncated sampling: cutting the tail of the distribution "
            + ("removes the least likely draws and lowers the perplexity" if all(by[t]["perplexity"] <= t1["perplexity"]
                                                                                 for t in trunc)
               else "does not lower the perplexity everywhere in these samples")
            + ". Top-k keeps a fixed number of characters whatever the model's confidence; top-p keeps as many as "
            "the mass needs, few after 'q', many after a space."
        )
    sampled = [k for k in by if k not in ("reference text",) and not k.startswith("greedy")]
    if sampled:
        close = min(sampled, key=lambda k: abs(math.log(by[k]["perplexity"] / ref["perplexity"]))
                    + abs(by[k]["distinct-2"] - ref["distinct-2"]) + abs(by[k]["rep-4"] - ref["rep-4"]))
        lines.append(f"- **Closest to the reference text** (|log perplexity ratio| + |distinct-2 gap| + |rep-4 gap|): "
                     f"{close} (perplexity {by[close]['perplexity']:.2f}, distinct-2 {by[close]['distinct-2']:.2f}, "
                     f"rep-4 {by[close]['rep-4']:.2f}). Holtzman et al.'s criterion: good decoding matches the "
                     "statistics of human text rather than maximising probability.")
    for key, what in (("greedy + repetition penalty 1.3", "the repetition penalty"),
                      ("greedy + no-repeat 3-gram", "the 3-gram ban")):
        if key not in by:
            continue
        p = by[key]
        fixed = p["rep-4"] < 0.5 * g["rep-4"] if g["rep-4"] > 0 else False
        cost = p["perplexity"] / g["perplexity"]
        line = (f"- **Greedy with {what}**: rep-4 {g['rep-4']:.2f} -> {p['rep-4']:.2f}, perplexity "
                f"{g['perplexity']:.2f} -> {p['perplexity']:.2f} ({cost:.1f} x). ")
        if tokens == "characters" and key.endswith("3-gram"):
            line += ("It acts on characters: once ' th' or 'he ' has occurred, it may never occur again, so "
                     + ("the text is pushed into improbable spellings (the perplexity jumps)." if cost > 2 else
                        "the continuation drifts into rarer spellings.")
                     + " Trigram blocking was designed for words (Paulus et al.); on characters it bans English itself.")
        elif tokens == "characters":
            line += ("It acts on characters: after a few words nearly every letter is already in the text, so the "
                     "penalty rescales almost every score alike and "
                     + ("still breaks greedy's loops." if fixed else
                        f"greedy still loops (rep-4 {p['rep-4']:.2f} against {ref['rep-4']:.2f} for the reference).")
                     + " CTRL applied it to words and sub-words.")
        else:
            line += "It breaks greedy's loops." if fixed else "It does not remove greedy's repetitions here."
        lines.append(line)
    return lines


# --------------------------------------------------------------------------------------------------
# Sentence classifiers: data, models, training
# --------------------------------------------------------------------------------------------------


def nested_subsets(n_total: int, sizes: Sequence[int], seed: int = 0) -> dict[int, Tensor]:
    """Nested random index sets: ``{n: the first n of one seeded permutation of range(n_total)}``."""
    bad = [n for n in sizes if not 1 <= n <= n_total]
    if bad:
        raise ValueError(f"subset sizes {bad} must be in [1, {n_total}] (the training sentences available)")
    perm = torch.randperm(n_total, generator=torch.Generator().manual_seed(seed))
    return {int(n): perm[: int(n)] for n in sizes}


def build_sentence_classifier(name: str, pretrained: bool, *, vocab_size: int, max_len: int, num_classes: int = 2,
                              seed: int = 0) -> nn.Module:
    """A BERT-family sentence classifier reading WordPiece ids framed as ``[CLS] ... [SEP]``.

    ``pretrained``: the MiniLM checkpoint's encoder (and pooler) with a new classifier
    (:func:`~archlab.models.transformer.hf_bert.load_hf_bert`; only ``minilm_l6`` has one);
    otherwise the registered architecture ``name`` from random weights (``cls_id=None``: the
    tokenizer's [CLS] is already the first id).
    """
    import archlab.models.transformer.bert  # noqa: F401  (registers the BERT variants)
    from archlab.registry import create_model

    torch.manual_seed(seed)
    if pretrained:
        if name != "minilm_l6":
            raise ValueError(f"only minilm_l6 has pretrained weights offline (all-MiniLM-L6-v2), got {name!r}")
        from archlab.data.pretrained_vocab import resolve_pretrained
        from archlab.models.transformer.hf_bert import load_hf_bert

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "classifier initialised": that is the point of fine-tuning
            model = load_hf_bert(resolve_pretrained("minilm"), head="sequence", num_classes=num_classes,
                                 max_len=max_len)
        return model
    return create_model(name, cls_id=None, vocab_size=vocab_size, pad_id=0, max_len=max_len, num_classes=num_classes)


def _trim(x: Tensor, pad_id: int) -> Tensor:
    """Right-padded ids cut to the longest real length of the batch (same logits, less work)."""
    n = int((x != pad_id).sum(1).max()) if x.numel() else 1
    return x[:, : max(n, 1)]


@torch.no_grad()
def classifier_accuracy(model: nn.Module, x: Tensor, y: Tensor, pad_id: int = 0, batch_size: int = 64) -> float:
    """Accuracy in eval mode; sentences are batched by length so that little padding is computed."""
    was = model.training
    model.eval()
    order = torch.argsort((x != pad_id).sum(1))
    correct = 0
    try:
        for i in range(0, len(x), batch_size):
            idx = order[i : i + batch_size]
            correct += int((model(_trim(x[idx], pad_id)).argmax(-1) == y[idx]).sum())
    finally:
        model.train(was)
    return correct / max(len(x), 1)


def finetune_classifier(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    *,
    epochs: int,
    batch_size: int = 16,
    lr: float = 1e-4,
    weight_decay: float = 0.01,
    warmup: float = 0.1,
    grad_clip: float | None = 1.0,
    pad_id: int = 0,
    seed: int = 0,
) -> dict[str, Any]:
    """Train every weight of a sentence classifier with AdamW, BERT's fine-tuning schedule
    (linear warm-up over ``warmup`` of the steps, then linear decay to 0), shuffled batches.

    Returns:
        ``{"history" ({"step", "loss"} per step), "steps", "train_seconds"}``.
    """
    steps = epochs * math.ceil(len(x) / batch_size)
    n_warm = max(1, int(warmup * steps))
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2 and "norm" not in n.lower()]
    ids = {id(p) for p in decay}
    rest = [p for p in model.parameters() if id(p) not in ids]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                             {"params": rest, "weight_decay": 0.0}], lr=lr)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / n_warm if s < n_warm else max(0.0, (steps - s) / max(1, steps - n_warm)))
    g = torch.Generator().manual_seed(seed + 1)
    history: dict[str, list[float]] = {"step": [], "loss": []}
    model.train()
    t0 = time.perf_counter()
    step = 0
    for _ in range(epochs):
        perm = torch.randperm(len(x), generator=g)
        for i in range(0, len(x), batch_size):
            idx = perm[i : i + batch_size]
            loss = F.cross_entropy(model(_trim(x[idx], pad_id)), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            opt.step()
            sched.step()
            step += 1
            history["step"].append(step)
            history["loss"].append(loss.item())
    return {"history": history, "steps": step, "train_seconds": time.perf_counter() - t0}


def _sentiment_data(quick: bool, dataset: str | None, data_root: str | None,
                    c: dict[str, Any]) -> tuple[Any, str, str | None]:
    """(bundle tokenized with MiniLM's WordPiece, dataset name, root)."""
    from archlab.data import load_dataset
    from archlab.utils import find_data_root

    if dataset not in (None, "sst2", "sentiment"):
        raise ValueError(f"dataset must be 'sst2' or 'sentiment', got {dataset!r}")
    root = None if quick else find_data_root("sst2", data_root)
    if dataset == "sst2" and root is None:
        raise FileNotFoundError("sst2/{train,dev,test}.tsv were not found under data_root, $ARCHLAB_DATA, "
                                "$ARCHLAB_SHARED_DATA or ../shared/data; pass data_root= (the folder holding sst2/) "
                                "or dataset='sentiment'")
    name = "sentiment" if quick or dataset == "sentiment" or root is None else "sst2"
    options = dict(c["data_options"].get(name, {}))
    bundle = load_dataset(name, root, tokenizer="minilm", max_len=int(c["max_len"][name]), **options)
    return bundle, name, root


# --------------------------------------------------------------------------------------------------
# bert-finetune-vs-scratch
# --------------------------------------------------------------------------------------------------


@register_experiment(
    "bert-finetune-vs-scratch",
    family="transformer",
    description="Pretrained MiniLM fine-tuned vs the same net (and bert_mini) from scratch on 100-2000 sentences",
)
def bert_finetune_vs_scratch(
    out_dir: Path,
    quick: bool = False,
    *,
    dataset: str | None = None,
    data_root: str | None = None,
    sizes: Sequence[int] | None = None,
    models: Sequence[str] | None = None,
    seed: int = 0,
    threads: int | None = None,
) -> dict[str, Any]:
    """Test accuracy against the number of training sentences: pretrained MiniLM vs random initialisation.

    Args:
        out_dir: the experiment's folder.
        quick: 8 and 16 generated sentences, 16 word pieces, one step each, 16 test sentences (a smoke test).
        dataset: ``sst2`` (the default when its files are found) or ``sentiment``.
        data_root: the folder holding ``sst2/``.
        sizes: training sentences per run (default 100, 500, 2000).
        models: labels of :data:`BERT_MODELS` to run (default all three).
        seed: subsets, initialisation and batch order.
        threads: torch CPU threads (default 2: MiniLM's 22M parameters are slow on one; 1 in quick mode,
            where a second thread only waits).
    """
    from archlab.report.transformer import plot_sentence_attention
    from archlab.viz._mpl import new_figure, save_figure

    t0, c0 = time.perf_counter(), time.process_time()
    threads = threads or (1 if quick else 2)
    c = dict(BERT_QUICK if quick else BERT_FULL)
    sizes = sorted(int(n) for n in (sizes or c["sizes"]))
    chosen = [m for m in BERT_MODELS if models is None or m[0] in models]
    if not chosen:
        raise ValueError(f"models must be some of {[m[0] for m in BERT_MODELS]}, got {list(models or [])}")
    with num_threads(threads):
        bundle, name, root = _sentiment_data(quick, dataset, data_root, c)
        vocab = bundle.info.vocab
        pad_id = int(vocab.pad_id)
        max_len = int(c["max_len"][name])
        xt, yt = bundle.test.x, bundle.test.y
        if c["test_limit"]:
            xt, yt = xt[: c["test_limit"]], yt[: c["test_limit"]]
        subsets = nested_subsets(len(bundle.train), sizes, seed)
        results: dict[str, list[float]] = {label: [] for label, _, _ in chosen}
        curves: dict[str, dict[int, dict[str, list[float]]]] = {label: {} for label, _, _ in chosen}
        rows, kept = [], {}
        for n in sizes:
            idx = subsets[n]
            x, y = bundle.train.x[idx], bundle.train.y[idx]
            epochs = max(1, min(int(c["max_epochs"]), math.ceil(c["seen"] / n)))
            for label, arch, pretrained in chosen:
                tic = time.perf_counter()
                model = build_sentence_classifier(arch, pretrained, vocab_size=len(vocab), max_len=max_len, seed=seed)
                lr = c["lr"]["pretrained" if pretrained else "scratch"]
                fit = finetune_classifier(model, x, y, epochs=epochs, batch_size=c["batch_size"], lr=lr,
                                          weight_decay=c["weight_decay"], warmup=c["warmup"],
                                          grad_clip=c["grad_clip"], pad_id=pad_id, seed=seed)
                acc = classifier_accuracy(model, xt, yt, pad_id, c["eval_batch"])
                results[label].append(acc)
                curves[label][n] = fit["history"]
                if n == sizes[-1] and (label, arch, pretrained) in chosen[:2]:  # drawn as attention maps
                    kept[label] = model.eval()
                rows.append({
                    "training sentences": n, "model": label, "architecture": arch,
                    "params": f"{sum(p.numel() for p in model.parameters()):,}",
                    "init": "all-MiniLM-L6-v2" if pretrained else "random",
                    "lr": lr, "epochs": epochs, "steps": fit["steps"], "test accuracy": round(acc, 4),
                    "final train loss (last 10 steps)": _r(float(np.mean(fit["history"]["loss"][-10:]))),
                    "train s": round(fit["train_seconds"], 1), "total s": round(time.perf_counter() - tic, 1),
                })  # fmt: skip
        majority = float(max((yt == k).float().mean() for k in yt.unique())) if len(yt) else math.nan
        # Attention of the largest-size models on two short test sentences.
        lengths = (xt != pad_id).sum(1)
        pick = [i for i in range(len(xt)) if 6 <= int(lengths[i]) <= 14][:2] or [0]
        titles = [vocab.decode(xt[i].tolist())[:40] for i in pick]
        attention_figs = []
        for label, arch, pretrained in chosen[:2]:
            tag = "pretrained" if pretrained else "scratch" if arch == "minilm_l6" else arch
            mean_png, heads_png = plot_sentence_attention(kept[label], xt[pick], vocab, out_dir, pad_id=pad_id,
                                                          prefix=f"attention_{tag}", titles=titles,
                                                          heads=pretrained)
            attention_figs.append((f"{label} after fine-tuning on {sizes[-1]} sentences: last layer, mean over "
                                   "heads", mean_png))
            if heads_png is not None:
                attention_figs.append((f"{label}: every head of the last layer, first sentence", heads_png))

    # Figure 1: test accuracy against the training set size.
    fig = new_figure(6.5, 4.2)
    ax = fig.add_subplot(111)
    for i, (label, _, _) in enumerate(chosen):
        ax.plot(sizes, results[label], "o-", color=f"C{i}", label=label)
    ax.axhline(majority, color="grey", ls="--", label=f"majority class ({majority:.1%})")
    ax.set(xscale="log", xlabel="training sentences (log)", ylabel="test accuracy", ylim=(0.4, 1.0),
           title=f"{name}: accuracy on {len(xt)} test sentences")
    ax.set_xticks(sizes, [str(n) for n in sizes])
    ax.legend(fontsize=8)
    acc_png = save_figure(fig, out_dir / "accuracy_vs_size.png")

    # Figure 2: training loss per step, one panel per size.
    fig = new_figure(4.2 * len(sizes), 3.6)
    for k, n in enumerate(sizes):
        ax = fig.add_subplot(1, len(sizes), k + 1)
        for i, (label, _, _) in enumerate(chosen):
            hist = curves[label][n]
            loss = np.asarray(hist["loss"])
            w = max(1, min(10, len(loss) // 5))
            smooth = np.convolve(loss, np.ones(w) / w, mode="valid")
            ax.plot(hist["step"][w - 1 :], smooth, color=f"C{i}", label=label)
        ax.axhline(math.log(2), color="grey", ls="--", lw=0.8, label="chance (ln 2)")
        ax.set(xlabel="step", ylabel="training loss (running mean)", title=f"{n} sentences")
        if k == 0:
            ax.legend(fontsize=7)
    loss_png = save_figure(fig, out_dir / "training_loss.png")

    lines = _finetune_conclusions(results, sizes, chosen, majority, int(c["seen"]), int(c["max_epochs"]))
    intro = (
        "How much does pre-training buy when labels are scarce? "
        + ("SST-2 (binary sentiment of movie-review sentences and phrases; the test split is GLUE's 872 dev "
           "sentences)" if name == "sst2" else
           f"The embedded `sentiment` set (generated review sentences with negation and contrast; {len(xt)} test "
           "sentences)")
        + f", tokenized with MiniLM's WordPiece (uncased, 30,522 pieces) to at most {max_len} pieces, [CLS] and [SEP] "
        "included. Three classifiers read the same ids: "
        + "; ".join(f"**{label}** (`{arch}`, {'the all-MiniLM-L6-v2 weights and a new linear head' if p else 'random weights'})"
                    for label, arch, p in chosen)
        + f". Each is trained on the first {', '.join(map(str, sizes))} sentences of one seeded permutation of the "
        f"training split (nested subsets), every weight with AdamW (lr {c['lr']['pretrained']} from the pretrained "
        f"weights, {c['lr']['scratch']} from random ones, weight decay {c['weight_decay']}, "
        f"batch {c['batch_size']}, {c['warmup']:.0%} warm-up then linear decay, clipping 1, dropout 0.1) for "
        f"min({c['max_epochs']}, ceil({c['seen']} / n)) epochs; the pooled [CLS] state feeds the head. Test accuracy "
        f"on {len(xt)} sentences. Threads: {threads} (torch on one thread is slow for MiniLM's 22M parameters)."
        + (" **Quick mode**: a smoke test." if quick else "")
    )
    report = _write(
        out_dir, "Fine-tuning a pretrained MiniLM against training from scratch", intro,
        [("Test accuracy against the number of training sentences", acc_png),
         ("Training loss (running mean over 10 steps)", loss_png), *attention_figs],
        [("Runs", rows)],
        "\n".join(lines),
    )  # fmt: skip
    return {
        "report": str(report), "seconds": time.perf_counter() - t0, "cpu_seconds": time.process_time() - c0,
        "rows": rows, "sizes": sizes, "results": results, "majority": majority,
        "curves": {label: {str(n): h for n, h in d.items()} for label, d in curves.items()},
        "setup": {**{k: v for k, v in c.items() if k not in ("max_len", "data_options")}, "sizes": sizes,
                  "dataset": name, "data_root": root, "max_len": max_len, "n_test": len(xt), "seed": seed,
                  "threads": threads, "quick": quick},
    }  # fmt: skip


def _finetune_conclusions(results: dict[str, list[float]], sizes: list[int],
                          chosen: Sequence[tuple[str, str, bool]], majority: float, seen: int,
                          max_epochs: int) -> list[str]:
    lines = []
    pre = next((label for label, _, p in chosen if p), None)
    scratch = [label for label, _, p in chosen if not p]
    for label, arch, _ in chosen:
        accs = results[label]
        lines.append(f"- **{label}** (`{arch}`): " + ", ".join(f"{n}: {a:.1%}" for n, a in zip(sizes, accs))
                     + f" (majority class {majority:.1%}); "
                     + ("it gains " if accs[-1] >= accs[0] else "it changes by ")
                     + f"{100 * (accs[-1] - accs[0]):+.1f} points from {sizes[0]} to {sizes[-1]} sentences.")
    if pre is not None and scratch:
        best_scratch = max(scratch, key=lambda s: max(results[s]))
        best_acc = max(results[best_scratch])
        best_n = sizes[int(np.argmax(results[best_scratch]))]
        gaps = [results[pre][i] - max(results[s][i] for s in scratch) for i in range(len(sizes))]
        lines.append(
            f"- **Pre-training** is worth {', '.join(f'{100 * g:+.1f} points at {n}' for g, n in zip(gaps, sizes))} "
            f"over the best model from random weights. "
            + (f"With {sizes[0]} sentences the pretrained MiniLM ({results[pre][0]:.1%}) already "
               + ("beats" if results[pre][0] > best_acc else "does not reach")
               + f" the best that a model from random weights reaches at any size ({best_scratch} with {best_n}, "
               f"{best_acc:.1%}): "
               + ("the labelled sentences only have to place a decision boundary in a space where sentiment is "
                  "already separated, rather than teach the language." if results[pre][0] > best_acc
                  else "at this scale the pretrained features do not yet substitute for more labels.")
               if len(sizes) > 1 else "")
        )
        near = [s for s in scratch if max(results[s]) < majority + 0.1]
        if near:
            lines.append("- From random weights " + " and ".join(near) + (" stay" if len(near) > 1 else " stays")
                         + " within 10 points of the majority class at every size: in a budget of a few hundred "
                         "steps on at most a few thousand sentences, millions of weights (and a 30,522-row "
                         "embedding table of which the sentences use a sliver) learn next to nothing; the "
                         "pretrained encoder starts from features that a linear head can already read.")
        epochs = [max(1, min(max_epochs, math.ceil(seen / n))) for n in sizes]
        worse = [s for s in scratch if len(sizes) > 1 and results[s][-1] < max(results[s][:-1]) - 0.02]
        if worse and epochs[-1] < max(epochs[:-1]):
            best_i = {s: int(np.argmax(results[s][:-1])) for s in worse}
            lines.append("- From random weights " + " and ".join(
                f"{s} does worse with {sizes[-1]} sentences ({results[s][-1]:.1%}, {epochs[-1]} "
                f"epoch{'s' if epochs[-1] > 1 else ''}) than with {sizes[best_i[s]]} ({results[s][best_i[s]]:.1%}, "
                f"{epochs[best_i[s]]} epochs)" for s in worse)
                + ": a randomly initialised network needs many passes to leave the chance plateau, so within this "
                "budget more sentences seen fewer times do not help it, while the pretrained encoder "
                + ("gains from every new sentence." if all(a <= b for a, b in zip(results[pre], results[pre][1:]))
                   else "is less sensitive to the number of passes."))
        if len(scratch) > 1:
            a, b = scratch[0], scratch[1]
            lines.append(f"- Same recipe, different size from scratch: {a} {results[a][-1]:.1%} vs {b} "
                         f"{results[b][-1]:.1%} at {sizes[-1]} sentences.")
    return lines
