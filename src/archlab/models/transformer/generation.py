"""Decoding strategies for language models: pure functions on next-token logits.

A language model gives scores ``logits`` (B, V) for the next token of each of B sequences. Each
function here turns them into other scores (or, for :func:`sample_next`, into tokens), so they
can be chained, tested alone, and shared by every autoregressive model (GPT, the RNN LMs)::

    logits = apply_repetition_penalty(logits, ids, theta)  # Keskar et al. 2019 (CTRL), eq. below
    logits = ban_repeated_ngrams(logits, ids, n)           # no n-gram occurs twice (Paulus et al. 2018)
    logits = logits / temperature                          # T -> 0: greedy, T > 1: flatter
    logits = top_k_filter(logits, k)                       # keep the k highest scores
    logits = top_p_filter(logits, p)                       # nucleus: the smallest set of mass >= p
    x ~ softmax(logits)                                    # or argmax when temperature = 0

Removed tokens get the score ``-inf`` (probability 0).

* Repetition penalty (CTRL, eq. 2 divides the logits of generated tokens by theta; the common
  implementation, Hugging Face's, keeps the sign right for negative scores): for every token
  ``v`` that occurs in ``ids``, ``l_v / theta`` if ``l_v > 0`` else ``l_v * theta``, so theta > 1
  always makes a seen token less likely (theta = 1.2 is CTRL's recommendation).
* Top-k (Fan et al. 2018): ``V^(k)`` the k tokens of highest score; the rest get -inf.
* Nucleus / top-p (Holtzman et al. 2020): sort the probabilities ``p_(1) >= p_(2) >= ...``; keep
  the smallest prefix ``V^(p)`` with ``sum_{v in V^(p)} p_v >= p`` (so the most likely token is
  always kept).
* No-repeat n-gram (Paulus et al. 2018, "trigram blocking"; ``no_repeat_ngram_size`` of
  fairseq/Hugging Face): a token is banned when it would complete an n-gram that already occurs
  in ``ids``, i.e. when the last n-1 tokens have occurred before followed by that token.

Papers:
    A. Holtzman, J. Buys, L. Du, M. Forbes, Y. Choi, "The Curious Case of Neural Text
    Degeneration", ICLR 2020. https://arxiv.org/abs/1904.09751
    N. S. Keskar, B. McCann, L. R. Varshney, C. Xiong, R. Socher, "CTRL: A Conditional Transformer
    Language Model for Controllable Generation", 2019. https://arxiv.org/abs/1909.05858
    A. Fan, M. Lewis, Y. Dauphin, "Hierarchical Neural Story Generation", ACL 2018 (top-k).
    https://arxiv.org/abs/1805.04833
    R. Paulus, C. Xiong, R. Socher, "A Deep Reinforced Model for Abstractive Summarization", ICLR
    2018 (repeated trigram blocking). https://arxiv.org/abs/1705.04304

Deviations from the paper:
    - The repetition penalty multiplies negative scores by theta instead of dividing them (CTRL's
      eq. 2 divides every score, which would make a seen token with a negative score *more*
      likely); this is Hugging Face's ``RepetitionPenaltyLogitsProcessor``. As there, every token
      of ``ids`` counts, the prompt included, each once however often it occurs.
    - If the n-gram ban would remove every token of a row, that row is left unbanned (otherwise
      no token could be drawn); with any realistic vocabulary this never happens.
    - Ties at the top-k threshold keep every tied token (as nanoGPT), so a row may keep more
      than k tokens when scores are exactly equal.
"""

from __future__ import annotations

import math
import numbers

import torch

from archlab.models.rnn.lm import check_sampling

__all__ = [
    "check_generation",
    "apply_temperature",
    "top_k_filter",
    "top_p_filter",
    "apply_repetition_penalty",
    "ban_repeated_ngrams",
    "process_logits",
    "sample_next",
]


def check_generation(
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    repetition_penalty: float = 1.0,
    no_repeat_ngram_size: int = 0,
) -> None:
    """Raise a ValueError saying what is allowed when a decoding option has a bad value."""
    check_sampling(temperature, top_k)
    if top_p is not None and (isinstance(top_p, bool) or not isinstance(top_p, numbers.Real)
                              or not 0.0 < top_p <= 1.0):
        raise ValueError(f"top_p must be a probability mass in (0, 1] (or None for all tokens), got {top_p!r}")
    if isinstance(repetition_penalty, bool) or not isinstance(repetition_penalty, numbers.Real) \
            or not repetition_penalty > 0 or not math.isfinite(repetition_penalty):
        raise ValueError(f"repetition_penalty must be a number > 0 (1.0 = none; CTRL uses 1.2), "
                         f"got {repetition_penalty!r}")
    if isinstance(no_repeat_ngram_size, bool) or not isinstance(no_repeat_ngram_size, numbers.Integral) \
            or no_repeat_ngram_size < 0:
        raise ValueError(f"no_repeat_ngram_size must be an integer >= 0 (0 = off), got {no_repeat_ngram_size!r}")


def _check_logits(logits: torch.Tensor) -> None:
    if logits.dim() != 2:
        raise ValueError(f"expected next-token logits (B, V), got shape {tuple(logits.shape)}; "
                         "take logits[:, -1] of a model's (B, T, V) output")


def apply_temperature(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """``logits / temperature`` (B, V); temperature must be > 0 (0 means greedy: use argmax instead)."""
    check_sampling(temperature, None)
    if temperature == 0:
        raise ValueError("temperature 0 means greedy decoding: take logits.argmax(-1) (sample_next does)")
    return logits / temperature


def top_k_filter(logits: torch.Tensor, k: int | None) -> torch.Tensor:
    """Keep the ``k`` highest scores of each row (B, V); the others become -inf. None or k >= V: all."""
    _check_logits(logits)
    check_sampling(1.0, k)
    if k is None or k >= logits.shape[-1]:
        return logits
    kth = torch.topk(logits, k, dim=-1).values[:, -1:]  # (B, 1): the k-th highest score
    return logits.masked_fill(logits < kth, float("-inf"))


def top_p_filter(logits: torch.Tensor, p: float | None) -> torch.Tensor:
    """Nucleus filtering: keep, per row, the smallest set of most likely tokens whose probability
    mass is >= ``p``; the others become -inf. None or p = 1: all tokens."""
    _check_logits(logits)
    check_generation(top_p=p)
    if p is None or p >= 1.0:
        return logits
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True)  # (B, V)
    probs = sorted_logits.float().softmax(dim=-1)
    mass_before = probs.cumsum(dim=-1) - probs  # (B, V): mass of the strictly more likely tokens
    remove_sorted = mass_before >= p  # the set already reached p without this token
    remove_sorted[:, 0] = False  # the most likely token always stays
    remove = torch.zeros_like(remove_sorted).scatter(-1, order, remove_sorted)  # back to vocab order
    return logits.masked_fill(remove, float("-inf"))


def apply_repetition_penalty(logits: torch.Tensor, ids: torch.Tensor, penalty: float) -> torch.Tensor:
    """CTRL's repetition penalty: the scores (B, V) of tokens occurring in ``ids`` (B, T) are
    divided by ``penalty`` where positive and multiplied by it where negative. 1.0: unchanged."""
    _check_logits(logits)
    check_generation(repetition_penalty=penalty)
    if penalty == 1.0 or ids.shape[-1] == 0:
        return logits
    seen = logits.gather(-1, ids)  # (B, T): the scores of the tokens already there
    seen = torch.where(seen > 0, seen / penalty, seen * penalty)
    return logits.scatter(-1, ids, seen)  # a token seen twice is written twice with the same value


def ban_repeated_ngrams(logits: torch.Tensor, ids: torch.Tensor, n: int) -> torch.Tensor:
    """Ban (-inf) every token that would complete an n-gram already in ``ids`` (B, T).

    The candidates are the tokens that followed an earlier occurrence of the last ``n - 1``
    tokens (n = 1: every token seen so far). 0 (or a sequence shorter than n - 1): unchanged.
    """
    _check_logits(logits)
    check_generation(no_repeat_ngram_size=n)
    B, T = ids.shape
    if n == 0 or T < n:
        return logits
    windows = ids.unfold(1, n, 1)  # (B, T - n + 1, n): every n-gram of ids
    prefix = ids[:, T - n + 1:]  # (B, n - 1): the n-1 tokens the next one would extend
    match = (windows[:, :, :-1] == prefix[:, None, :]).all(dim=-1)  # (B, T - n + 1)
    counts = torch.zeros(logits.shape, dtype=torch.long, device=logits.device)
    counts.scatter_add_(-1, windows[:, :, -1], match.long())  # (B, V): completions seen per token
    banned = counts > 0
    banned &= ~banned.all(dim=-1, keepdim=True)  # never ban a whole row (see the module docstring)
    return logits.masked_fill(banned, float("-inf"))


def process_logits(
    logits: torch.Tensor,
    ids: torch.Tensor | None = None,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    repetition_penalty: float = 1.0,
    no_repeat_ngram_size: int = 0,
) -> torch.Tensor:
    """All the filters in order (penalty, n-gram ban, temperature, top-k, top-p) on scores (B, V).

    ``ids`` (B, T) are the tokens so far (needed by the penalty and the n-gram ban). With
    ``temperature=0`` the temperature, top-k and top-p steps are skipped (greedy takes the argmax).
    Returns float32 scores (B, V).
    """
    check_generation(temperature, top_k, top_p, repetition_penalty, no_repeat_ngram_size)
    _check_logits(logits)
    logits = logits.float()
    if ids is not None:
        logits = apply_repetition_penalty(logits, ids, repetition_penalty)
        logits = ban_repeated_ngrams(logits, ids, no_repeat_ngram_size)
    if temperature == 0:
        return logits
    logits = logits / temperature
    return top_p_filter(top_k_filter(logits, top_k), top_p)



def sample_next(
    logits: torch.Tensor,
    ids: torch.Tensor | None = None,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    repetition_penalty: float = 1.0,
    no_repeat_ngram_size: int = 0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """The next token of each row (B, 1) from scores (B, V): :func:`process_logits`, then the
    argmax (``temperature=0``) or a draw from the softmax (``generator`` makes it reproducible)."""
    logits = process_logits(logits, ids, temperature=temperature, top_k=top_k, top_p=top_p,
                            repetition_penalty=repetition_penalty, no_repeat_ngram_size=no_repeat_ngram_size)
    if temperature == 0:
        return logits.argmax(dim=-1, keepdim=True)  # (B, 1)
    probs = logits.softmax(dim=-1)  # (B, V)
    device = generator.device if generator is not None else probs.device
    return torch.multinomial(probs.to(device), 1, generator=generator).to(probs.device)  # (B, 1)
