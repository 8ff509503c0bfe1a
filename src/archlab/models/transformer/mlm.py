"""BERT's masked-language-model corruption: which tokens to predict and what the encoder sees instead.

    J. Devlin, M.-W. Chang, K. Lee, K. Toutanova, "BERT: Pre-training of Deep Bidirectional
    Transformers for Language Understanding", NAACL 2019, https://arxiv.org/abs/1810.04805
    (section 3.1 "Task #1: Masked LM" and appendix A.1)

For each row of token ids, the candidates are the tokens that are neither special nor padding.
``n = max(1, round(prob * #candidates))`` of them are chosen uniformly at random (prob = 15%);
each chosen token is then replaced::

    with probability 0.8  ->  [MASK]
    with probability 0.1  ->  a random token (uniform over the non-special ids)
    with probability 0.1  ->  left unchanged

``labels`` hold the original id at the chosen positions and ``-100`` (ignored by
``F.cross_entropy``) elsewhere, so the loss is computed on the chosen 15% only, whether the
encoder saw ``[MASK]``, a random token or the token itself (the last two keep the encoder from
learning that only ``[MASK]`` positions matter).

Deviations from the paper:
    - The corruption is drawn afresh for every batch (RoBERTa's "dynamic masking", Liu et al.
      2019, https://arxiv.org/abs/1907.11692), not fixed once per example when the data is made.
    - Random replacements avoid the special ids (the paper draws from the whole vocabulary, so it
      could insert a ``[PAD]`` or ``[CLS]``); the paper's cap ``max_predictions_per_seq`` is not
      applied, and every row with a candidate gets at least one prediction (``max(1, .)``, as the
      paper's data script).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

__all__ = ["mask_tokens", "IGNORE_INDEX"]

IGNORE_INDEX = -100


def mask_tokens(
    ids: torch.Tensor,
    *,
    mask_id: int,
    vocab_size: int,
    special_ids: Iterable[int] = (),
    prob: float = 0.15,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Corrupt token ids for masked-language-model training (Devlin et al. 2019; see the module).

    A pure function: ``ids`` is not modified and the result depends only on the inputs and the
    generator's state.

    Args:
        ids: token ids (B, T) (or (T,)), integer.
        mask_id: the ``[MASK]`` id (may be ``vocab_size``: a row the model added for it).
        vocab_size: random replacements are drawn from ``[0, vocab_size)`` minus ``special_ids``.
        special_ids: ids never chosen (padding, ``[CLS]``, ``[SEP]``, ``<bos>``...). ``mask_id``
            is always treated as special.
        prob: fraction of each row's candidates chosen for prediction.
        generator: a ``torch.Generator`` for reproducible draws (on any device; the draws are
            moved to ``ids``' device).

    Returns:
        ``(inputs, labels)``, both shaped like ``ids``: the corrupted inputs, and the original ids
        at the chosen positions with ``-100`` elsewhere.
    """
    if ids.is_floating_point():
        raise ValueError(f"mask_tokens expects integer token ids, got {ids.dtype}")
    if not 0.0 < prob <= 1.0:
        raise ValueError(f"prob must be in (0, 1], got {prob}")
    if mask_id < 0:
        raise ValueError(f"mask_id must be the [MASK] id (>= 0), got {mask_id}")
    squeeze = ids.dim() == 1
    x = ids[None] if squeeze else ids  # (B, T)
    if x.dim() != 2:
        raise ValueError(f"mask_tokens expects ids (B, T) or (T,), got shape {tuple(ids.shape)}")
    device = x.device
    gen_device = generator.device if generator is not None else device
    specials = torch.tensor(sorted({int(i) for i in special_ids} | {mask_id}), dtype=x.dtype, device=device)
    candidate = ~torch.isin(x, specials)  # (B, T)

    def rand(*shape: int) -> torch.Tensor:
        return torch.rand(shape, generator=generator, device=gen_device).to(device)

    # Choose exactly n_b = max(1, round(prob * candidates_b)) positions per row: the n_b smallest of
    # uniform scores, non-candidates scored above every candidate.
    scores = rand(*x.shape).masked_fill(~candidate, 2.0)  # (B, T)
    rank = scores.argsort(dim=1).argsort(dim=1)  # (B, T): 0 = lowest score
    count = candidate.sum(dim=1)  # (B,)
    n = torch.where(count > 0, (count.float() * prob).round().long().clamp_min(1), 0)  # (B,)
    chosen = (rank < n[:, None]) & candidate  # (B, T)

    labels = x.masked_fill(~chosen, IGNORE_INDEX)  # (B, T)
    r = rand(*x.shape)  # (B, T): 80% [MASK], 10% random, 10% unchanged
    to_mask = chosen & (r < 0.8)
    to_random = chosen & (r >= 0.8) & (r < 0.9)
    allowed = torch.ones(vocab_size, dtype=torch.bool, device=device)
    allowed[specials[(specials >= 0) & (specials < vocab_size)]] = False
    pool = allowed.nonzero().squeeze(1)  # (V',) the ids a random replacement may take
    if len(pool) == 0:
        raise ValueError(f"every id of the vocabulary of {vocab_size} is special; nothing to draw replacements from")
    pick = (rand(*x.shape) * len(pool)).long().clamp_max(len(pool) - 1)  # (B, T)
    inputs = torch.where(to_mask, torch.full_like(x, mask_id), x)
    inputs = torch.where(to_random, pool[pick].to(x.dtype), inputs)
    if squeeze:
        return inputs[0], labels[0]
    return inputs, labels
