"""The report section of transformer runs: where the attention goes, and what a GPT writes.

* **Text classifiers** with ``attention_maps`` (``bert_*``, ``minilm_l6``, ``transformer_classifier``):
  heat maps of the last layer's self-attention for a few test sentences, the mean over the heads
  for each sentence and every head for the first, tokens on both axes (row i: how token i spreads
  its attention over the keys, columns). A table gives, per layer, the mean attention on the first
  token ([CLS]), on the last real token ([SEP] for a WordPiece input), on the token itself, and
  the mean entropy of the rows: Clark et al. (2019) found that many BERT heads put most of their
  weight on [CLS], [SEP] or the neighbouring token, and that the entropy of the early layers is high
  (broad attention) where later ones are sharper.
* **Language models** with ``generate(..., top_p=, repetition_penalty=, no_repeat_ngram_size=)``
  (GPT): continuations of a held-out prompt with each decoding strategy of
  :data:`DECODING_STRATEGIES`, with the diversity and repetition of the text and its perplexity
  under the model (:func:`decoding_rows`), and the true continuation for reference.

Text statistics of generated samples (used here and by the ``gpt-decoding`` experiment):

    distinct-n  = |unique n-grams| / |n-grams|, pooled over the samples (Li et al. 2016)
    rep-n       = 1 - |unique n-grams| / |n-grams| of one sample: the share of its n-grams that
                  repeat an earlier one (Welleck et al. 2020's seq-rep-n), averaged over samples
    perplexity  = exp(mean over generated tokens of -log p_model(x_t | x_<t)), at temperature 1
                  and without filters: how probable the model itself finds the text

Greedy decoding finds text of very low perplexity that repeats itself; pure sampling (T = 1)
matches the model's distribution but drifts into its unreliable tail; Holtzman et al. (2020) argue
that good text has the perplexity and the diversity of human text, not the lowest perplexity.

References:
    K. Clark, U. Khandelwal, O. Levy, C. D. Manning, "What does BERT look at? An analysis of BERT's
    attention", BlackboxNLP 2019, https://arxiv.org/abs/1906.04341
    J. Li, M. Galley, C. Brockett, J. Gao, B. Dolan, "A diversity-promoting objective function for
    neural conversation models", NAACL 2016, https://arxiv.org/abs/1510.03055 (distinct-n)
    S. Welleck, I. Kulikov, S. Roller, E. Dinan, K. Cho, J. Weston, "Neural text generation with
    unlikelihood training", ICLR 2020, https://arxiv.org/abs/1908.04319 (seq-rep-n)
    A. Holtzman, J. Buys, L. Du, M. Forbes, Y. Choi, "The curious case of neural text degeneration",
    ICLR 2020, https://arxiv.org/abs/1904.09751

Deviations from the papers:
    - distinct-n and rep-n are counted on whitespace-separated words of the decoded text, whatever
      the model's tokens (characters for ``gpt_char``), so that character and sub-word models are
      measured alike; the perplexity is per model token.
    - The perplexity of a long text is computed in windows of the model's context (``max_len``)
      that advance by a quarter of it, so each token is scored with at least 3/4 of a context of
      history (generation itself reads up to a whole context).
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from pathlib import Path
from typing import Any

from archlab.report.common import esc, figure_html, note_html, pre_html, table_html

__all__ = [
    "DECODING_STRATEGIES",
    "distinct_n",
    "repetition_rate",
    "text_stats",
    "sample_nll",
    "generate_samples",
    "decoding_rows",
    "token_labels",
    "sentence_attention",
    "attention_stats",
    "plot_sentence_attention",
    "transformer_section",
]

#: (label, keyword options of ``generate``): the decoding strategies compared. The repetition
#: penalty and the n-gram ban are applied to greedy decoding, as CTRL recommends for its penalty
#: and as trigram blocking is used in summarisation (Paulus et al. 2018).
DECODING_STRATEGIES: tuple[tuple[str, dict[str, Any]], ...] = (
    ("greedy", {"temperature": 0.0}),
    ("temperature 0.7", {"temperature": 0.7}),
    ("temperature 1.0", {"temperature": 1.0}),
    ("temperature 1.3", {"temperature": 1.3}),
    ("top-k 10", {"temperature": 1.0, "top_k": 10}),
    ("top-k 40", {"temperature": 1.0, "top_k": 40}),
    ("top-p 0.9", {"temperature": 1.0, "top_p": 0.9}),
    ("greedy + repetition penalty 1.3", {"temperature": 0.0, "repetition_penalty": 1.3}),
    ("greedy + no-repeat 3-gram", {"temperature": 0.0, "no_repeat_ngram_size": 3}),
)


# ----------------------------------------------------------------------------------------------
# text statistics of samples


def _ngrams(tokens: Sequence[Hashable], n: int) -> list[tuple[Hashable, ...]]:
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


def distinct_n(samples: Sequence[Sequence[Hashable]], n: int) -> float:
    """Li et al.'s distinct-n: unique n-grams / all n-grams, pooled over ``samples`` (NaN if none).

    Args:
        samples: token sequences (words, characters, ids).
        n: the n-gram order (>= 1).
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    grams = [g for s in samples for g in _ngrams(list(s), n)]
    return len(set(grams)) / len(grams) if grams else math.nan


def repetition_rate(tokens: Sequence[Hashable], n: int = 4) -> float:
    """The share of a sequence's n-grams that repeat an earlier one: 1 - unique / all (NaN if none)."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    grams = _ngrams(list(tokens), n)
    return 1.0 - len(set(grams)) / len(grams) if grams else math.nan


def text_stats(texts: Sequence[str]) -> dict[str, float]:
    """Word-level ``distinct-1/2/3`` (pooled) and ``rep-4`` (mean over the texts) of decoded samples."""
    words = [t.split() for t in texts]
    reps = [r for r in (repetition_rate(w, 4) for w in words) if not math.isnan(r)]
    out = {f"distinct-{n}": distinct_n(words, n) for n in (1, 2, 3)}
    out["rep-4"] = sum(reps) / len(reps) if reps else math.nan
    out["words"] = float(sum(len(w) for w in words))
    return out


def sample_nll(model: Any, ids: Any, start: int, stride: int | None = None) -> Any:
    """Mean negative log-likelihood (nats per token) of ``ids[:, start:]`` under a causal LM, per row.

    Token t is scored from the tokens before it, at most ``max_len`` of them: windows of the
    model's context advance by ``stride`` (default a quarter of the context) and each scores only
    its last ``stride`` targets, so every token but the first few has at least
    ``max_len - stride`` tokens of history.

    Args:
        model: ``model(x (B, T)) -> logits (B, T, V)`` with a ``max_len`` (or ``config.max_len``).
        ids: token ids (B, N).
        start: the first scored position (>= 1: the prompt before it is only read).
        stride: targets per window.

    Returns:
        (B,) float tensor.
    """
    import torch
    import torch.nn.functional as F

    ctx = int(getattr(model, "max_len", None) or model.config.max_len)
    stride = max(1, min(int(stride or ctx // 4), ctx))
    B, N = ids.shape
    if not 1 <= start < N:
        raise ValueError(f"start must be in [1, {N}) for ids of length {N}, got {start}")
    was = model.training
    model.eval()
    total = torch.zeros(B, dtype=torch.float64)
    try:
        with torch.no_grad():
            t0 = start
            while t0 < N:
                t1 = min(t0 + stride, N)  # score targets t0 .. t1 - 1
                w0 = max(0, t1 - 1 - ctx)  # inputs ids[w0 : t1 - 1] (at most ctx tokens)
                logits = model(ids[:, w0 : t1 - 1])  # (B, L, V): position j predicts token w0 + 1 + j
                logp = F.log_softmax(logits[:, t0 - w0 - 1 :].float(), dim=-1)  # (B, t1 - t0, V)
                tgt = ids[:, t0:t1]  # (B, t1 - t0)
                total -= logp.gather(-1, tgt[..., None]).squeeze(-1).double().sum(1).cpu()
                t0 = t1
    finally:
        model.train(was)
    return (total / (N - start)).float()


def generate_samples(
    model: Any,
    prompts: Any,
    max_new_tokens: int,
    strategies: Sequence[tuple[str, dict[str, Any]]] = DECODING_STRATEGIES,
    seed: int = 0,
) -> dict[str, Any]:
    """``{label: ids (B, T0 + max_new_tokens)}``: every prompt continued with each strategy.

    Each strategy draws from its own generator seeded with ``seed``, so a strategy's samples do
    not depend on which others ran before it.
    """
    import torch

    out = {}
    for label, options in strategies:
        g = torch.Generator().manual_seed(seed)
        out[label] = model.generate(prompts, max_new_tokens, generator=g, **options)
    return out


def decoding_rows(
    model: Any,
    vocab: Any,
    prompts: Any,
    max_new_tokens: int,
    strategies: Sequence[tuple[str, dict[str, Any]]] = DECODING_STRATEGIES,
    *,
    seed: int = 0,
    reference: Any = None,
) -> tuple[list[dict[str, Any]], dict[str, list[str]]]:
    """Generate with each strategy and measure the samples (:func:`text_stats`, :func:`sample_nll`).

    Args:
        model: a causal LM with ``generate``.
        vocab: decodes ids to text (``vocab.decode``).
        prompts: (B, T0) ids.
        max_new_tokens: tokens generated per prompt.
        strategies: ``(label, generate options)`` pairs.
        seed: the sampling seed of every strategy.
        reference: (B, T0 + max_new_tokens) ids, the prompts with their true continuations: a row
            ``"reference text"`` measured the same way.

    Returns:
        (rows, texts): one row per strategy (``strategy``, ``distinct-1/2/3``, ``rep-4``,
        ``perplexity``, ``nll``, ``seconds``), and the decoded continuations (prompts excluded) of each.
    """
    import time

    t0 = prompts.shape[1]
    rows, texts = [], {}
    runs: list[tuple[str, Any, float]] = []
    for label, options in strategies:
        tic = time.perf_counter()
        ids = generate_samples(model, prompts, max_new_tokens, [(label, options)], seed)[label]
        runs.append((label, ids, time.perf_counter() - tic))
    if reference is not None:
        runs.append(("reference text", reference[:, : t0 + max_new_tokens], math.nan))
    for label, ids, seconds in runs:
        decoded = [vocab.decode(row[t0:].tolist()) for row in ids]
        nll = float(sample_nll(model, ids, t0).mean()) if max_new_tokens > 0 else math.nan
        rows.append({"strategy": label, **text_stats(decoded), "perplexity": math.exp(nll), "nll": nll,
                     "seconds": seconds})  # fmt: skip
        texts[label] = decoded
    return rows, texts


# ----------------------------------------------------------------------------------------------
# attention of text classifiers


def token_labels(vocab: Any, ids: Sequence[int]) -> list[str]:
    """The vocab's token string of each id (``itos``), else each id decoded alone."""
    itos = getattr(vocab, "itos", None)
    out = []
    for i in ids:
        i = int(i)
        if itos is not None and 0 <= i < len(itos):
            out.append(str(itos[i]))
        else:
            out.append(vocab.decode([i], skip_special=False) if vocab is not None else str(i))
    return [t if t.strip() else repr(t) for t in out]  # a space or newline character stays visible


def sentence_attention(model: Any, ids: Any, vocab: Any, pad_id: int = 0, layer: int = -1) -> dict[str, Any]:
    """One sentence's attention in ``layer``: ``{"weights" (heads, n, n), "tokens" [n], "prefix"}``.

    ``ids`` (T,) is right-padded; the padding is cut. A model that prepends its own [CLS]
    (``attention_maps`` longer than the input) gets a ``[CLS]`` label for it (``prefix`` 1).
    """
    import torch

    ids = torch.as_tensor(ids).reshape(-1)
    n_real = int((ids != pad_id).sum()) if bool((ids != pad_id).any()) else len(ids)
    x = ids[:n_real][None]  # (1, n)
    was = model.training
    model.eval()
    try:
        maps = model.attention_maps(x)
    finally:
        model.train(was)
    w = maps[layer][0].float()  # (heads, n', n')
    prefix = int(w.shape[-1]) - n_real
    tokens = ["[CLS]"] * prefix + token_labels(vocab, x[0].tolist())
    return {"weights": w, "tokens": tokens, "prefix": prefix}


def attention_stats(model: Any, x: Any, pad_id: int = 0) -> list[dict[str, Any]]:
    """Per layer, over the real query tokens of the sentences ``x`` (B, T) and all heads: the mean
    attention on the first token, on the last real token and on the token itself, and the mean
    row entropy (nats; log n is uniform over n tokens)."""
    import torch

    was = model.training
    model.eval()
    try:
        maps = model.attention_maps(x)
    finally:
        model.train(was)
    real = x != pad_id  # (B, T)
    prefix = maps[0].shape[-1] - x.shape[1]
    mask = torch.cat([real.new_ones(x.shape[0], prefix), real], dim=1)  # (B, T')
    last = mask.sum(1) - 1  # (B,) index of the last real token
    rows = []
    for i, w in enumerate(maps):
        w = w.float()  # (B, h, T', T')
        q = mask[:, None, :].expand(-1, w.shape[1], -1)  # (B, h, T'): the real query rows
        first = w[..., 0][q].mean()
        on_last = w.gather(-1, last[:, None, None, None].expand(-1, w.shape[1], w.shape[2], 1))[..., 0][q].mean()
        diag = torch.diagonal(w, dim1=-2, dim2=-1)[q].mean()  # (B, h, T')
        ent = -(w * w.clamp_min(1e-12).log()).sum(-1)[q].mean()
        rows.append({"layer": i + 1, "on the first token": round(float(first), 3),
                     "on the last token": round(float(on_last), 3), "on itself": round(float(diag), 3),
                     "entropy (nats)": round(float(ent), 3)})  # fmt: skip
    return rows


def plot_sentence_attention(
    model: Any, sentences: Any, vocab: Any, out_dir: str | Path, *, pad_id: int = 0, layer: int = -1,
    prefix: str = "attention", titles: Sequence[str] | None = None, heads: bool = True,
) -> tuple[Path, Path | None]:
    """Two figures of ``layer``'s attention: ``{prefix}_mean.png`` (each sentence, mean over the heads)
    and, with ``heads``, ``{prefix}_heads.png`` (every head of the first sentence; else None).
    ``sentences`` (B, T) right-padded ids."""
    from archlab.viz.attention import plot_attention, plot_attention_grid

    out_dir = Path(out_dir)
    per = [sentence_attention(model, s, vocab, pad_id, layer) for s in sentences]
    n_layers = len(model.attention_maps(sentences[:1, :1]))
    which = n_layers + layer + 1 if layer < 0 else layer + 1
    examples = [{"attention": p["weights"].mean(0), "source_tokens": p["tokens"], "output_tokens": p["tokens"],
                 "title": titles[i] if titles and i < len(titles) else f"sentence {i + 1}"}
                for i, p in enumerate(per)]  # fmt: skip
    mean_png = plot_attention_grid(examples, out_dir / f"{prefix}_mean.png", ncols=min(3, len(examples)),
                                   title=f"Layer {which} of {n_layers}, mean over heads (row: query token, "
                                   "column: key token)")
    if not heads:
        return mean_png, None
    # No numbers in the cells: a dozen annotated panels take matplotlib seconds to lay out.
    heads_png = plot_attention(per[0]["weights"], per[0]["tokens"], per[0]["tokens"], out_dir / f"{prefix}_heads.png",
                               title=f"Layer {which}, each head: {examples[0]['title']}", annotate=False)
    return mean_png, heads_png


def _pick_sentences(x: Any, pad_id: int, count: int, lo: int = 5, hi: int = 14) -> Any:
    """``count`` rows of ``x`` with lo..hi real tokens (else the shortest non-empty ones)."""
    lengths = (x != pad_id).sum(1)
    idx = [i for i, n in enumerate(lengths.tolist()) if lo <= n <= hi][:count]
    if len(idx) < count:
        order = sorted(range(len(x)), key=lambda i: int(lengths[i]))
        idx += [i for i in order if i not in idx and int(lengths[i]) > 0][: count - len(idx)]
    return x[idx]


# ----------------------------------------------------------------------------------------------
# the section


def _device(model: Any) -> Any:
    """Where the model's weights are (the inputs go there; the model is not moved)."""
    import torch

    p = next(iter(model.parameters()), None)
    return p.device if p is not None else torch.device("cpu")


def _is_transformer(model: Any) -> bool:
    return getattr(model, "family", None) == "transformer" or hasattr(model, "attention_maps")


def transformer_section(run_dir: Path, model: Any, bundle: Any, fig_dir: Path, *, n_sentences: int = 3,
                        n_prompts: int = 2, max_new_tokens: int = 150) -> str | None:
    """HTML of the section for a transformer text classifier or language model; None for other runs."""
    kind = getattr(getattr(bundle, "info", None), "kind", None)
    if model is None or kind not in ("text", "lm") or not _is_transformer(model):
        return None
    if kind == "text":
        if not hasattr(model, "attention_maps"):
            return None
        return _text_attention(model, bundle, Path(fig_dir), n_sentences)
    if not hasattr(model, "generate"):
        return None
    return _decoding(model, bundle, n_prompts, max_new_tokens)


def _text_attention(model: Any, bundle: Any, fig_dir: Path, n_sentences: int) -> str:
    import torch

    part = bundle.test if getattr(bundle, "test", None) is not None else bundle.val
    vocab = bundle.info.vocab
    pad_id = int(getattr(vocab, "pad_id", 0))
    x = torch.as_tensor(part.x).to(_device(model))
    picks = _pick_sentences(x, pad_id, n_sentences)
    titles = [vocab.decode(s.tolist())[:40] for s in picks]
    mean_png, heads_png = plot_sentence_attention(model, picks, vocab, fig_dir, pad_id=pad_id, titles=titles)
    sample = x[: min(len(x), 64)]
    trim = int((sample != pad_id).sum(1).max())
    stats = attention_stats(model, sample[:, : max(trim, 1)], pad_id)
    return (
        figure_html(mean_png, "Last layer's self-attention of test sentences, mean over heads: row i is how "
                              "token i spreads its attention over the tokens (columns).")
        + figure_html(heads_png, "The same layer, head by head, for the first sentence: heads specialise "
                                 "(the next or previous token, [CLS]/[SEP], the sentence as a whole).")
        + table_html(stats, caption=f"Mean attention per layer over {len(sample)} test sentences (all heads, "
                                    "real query tokens)")
    )


def _decoding(model: Any, bundle: Any, n_prompts: int, max_new_tokens: int, prompt_len: int = 16) -> str:
    import torch

    part = bundle.test if getattr(bundle, "test", None) is not None else bundle.val
    vocab = bundle.info.vocab
    if len(part.x) == 0:
        return note_html("The test split is empty: no prompt to continue.")
    x = torch.as_tensor(part.x).to(_device(model))
    prompt_len = min(prompt_len, x.shape[1])
    step = max(1, len(x) // n_prompts)
    prompts = torch.stack([x[i * step, :prompt_len] for i in range(min(n_prompts, len(x)))])  # (B, prompt_len)
    rows, texts = decoding_rows(model, vocab, prompts, max_new_tokens, seed=0)
    table = [{"strategy": r["strategy"], "distinct-2": round(r["distinct-2"], 3), "rep-4": round(r["rep-4"], 3),
              "perplexity": round(r["perplexity"], 2)} for r in rows]  # fmt: skip
    prompt = vocab.decode(prompts[0].tolist())
    parts = [f"<p>Each strategy continues {len(prompts)} prompts of {prompt_len} test tokens by {max_new_tokens} "
             "tokens (seed 0). distinct-2: unique word bigrams / all; rep-4: the share of a sample's word 4-grams "
             "that repeat an earlier one; perplexity: of the generated tokens under the model itself (temperature "
             "1, no filter).</p>", table_html(table)]
    for label, _ in DECODING_STRATEGIES:
        parts.append(f"<h3>{esc(label)}</h3>" + pre_html(prompt + texts[label][0]))
    return "".join(parts)
