"""Benchmark ``bert_step``: one BERT fine-tuning step, ours against Hugging Face ``transformers``.

Both contenders are a sequence classifier (BERT encoder, tanh pooler on [CLS], dropout, linear
to 2 classes) with the same weights (ours converted by :func:`archlab.models.transformer.hf_bert.hf_state_dict`
into ``transformers.BertForSequenceClassification``, SDPA attention), trained on the same
batch: 16 sequences of 64 token ids, right-padded (lengths uniform in [32, 64], row 0 full) with
the attention mask from the padding. One step = forward, cross-entropy, backward and an AdamW
update, in training mode (dropout 0.1 on).

Cases: ``minilm_l6`` (6 layers, D 384, 12 heads, ff 1536, vocab 30522: all-MiniLM-L6-v2's shape)
and ``bert_mini`` (4 layers, D 256, 4 heads, ff 1024, vocab 30522). Before timing, the two
models' eval-mode logits are compared (``max_abs_logit_diff``). After warm-up steps, the contenders
alternate, one step each in each of ``repeats`` rounds (who goes first alternates too), so drifts
in machine speed hit both;
the figures are medians of the wall time per step, ``ours_over_theirs`` the ratio of the
medians (target <= 1.05), ``ours_over_theirs_paired`` the median of the per-round ratios and
``ours_over_theirs_cpu`` the ratio of the medians of the process's CPU time (less disturbed by
other processes on a shared machine). On a GPU both run there (fp32). ``quick=True`` shrinks everything to a smoke run.
Needs ``transformers`` (the ``transformer`` extra).
"""

from __future__ import annotations

import statistics
from typing import Any

from archlab.bench.timing import interleaved_times
from archlab.registry import register_benchmark

__all__ = ["bert_step", "CASES"]

CASES: list[dict[str, Any]] = [
    {"name": "minilm_l6", "model": "minilm_l6", "batch": 16, "seq_len": 64},
    {"name": "bert_mini", "model": "bert_mini", "batch": 16, "seq_len": 64, "vocab_size": 30522},
]
QUICK = {"batch": 4, "seq_len": 16, "num_layers": 1}


def _contenders(case: dict[str, Any], quick: bool) -> tuple[dict[str, Any], float]:
    """name -> step() for ours and theirs from the same weights, and their eval logits' max difference."""
    import torch
    import torch.nn.functional as F
    import transformers

    import archlab.models.transformer.bert  # noqa: F401  (registers the variants)
    from archlab.models.transformer.hf_bert import hf_config, hf_state_dict
    from archlab.registry import create_model

    B, T = case["batch"], case["seq_len"]
    overrides: dict[str, Any] = {"cls_id": None, "max_len": T, "num_classes": 2}
    if "vocab_size" in case:
        overrides["vocab_size"] = case["vocab_size"]
    if quick:
        overrides["num_layers"] = case["num_layers"]
    torch.manual_seed(0)
    ours = create_model(case["model"], **overrides)
    config = hf_config(ours)
    config.pop("archlab")
    ref_cfg = transformers.BertConfig(**config, attn_implementation="sdpa")
    theirs = transformers.BertForSequenceClassification(ref_cfg)
    missing, unexpected = theirs.load_state_dict(hf_state_dict(ours), strict=False)
    if [k for k in missing if "position_ids" not in k] or unexpected:
        raise RuntimeError(f"weights did not map onto transformers' model: missing {missing}, unexpected {unexpected}")
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    ours, theirs = ours.to(device), theirs.to(device)

    g = torch.Generator().manual_seed(0)
    V = ours.config.vocab_size
    x = torch.randint(1000 if V > 2000 else 4, V, (B, T), generator=g)
    lengths = torch.randint(T // 2, T + 1, (B,), generator=g)
    lengths[0] = T
    mask = torch.arange(T)[None, :] < lengths[:, None]  # (B, T)
    x = x.masked_fill(~mask, ours.config.pad_id)
    y = torch.randint(0, 2, (B,), generator=g)
    x, y, am = x.to(device), y.to(device), mask.long().to(device)

    ours.eval(), theirs.eval()
    with torch.no_grad():
        diff = (ours(x) - theirs(input_ids=x, attention_mask=am).logits).abs().max().item()
    ours.train(), theirs.train()

    def make_step(name: str, model: Any) -> Any:
        opt = torch.optim.AdamW(model.parameters(), lr=2e-5, weight_decay=0.01)

        def step() -> None:
            logits = model(x) if name == "ours" else model(input_ids=x, attention_mask=am).logits  # (B, 2)
            loss = F.cross_entropy(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        return step

    return {"ours": make_step("ours", ours), "theirs": make_step("theirs", theirs)}, diff


def _measure(case: dict[str, Any], steps: int, warmup: int, repeats: int, quick: bool) -> dict[str, Any]:
    fns, diff = _contenders(case, quick)
    wall, cpu = interleaved_times(fns, steps, repeats, warmup, warmup_once=True)
    med = {k: statistics.median(v) for k, v in wall.items()}
    ratio = med["ours"] / med["theirs"]
    row = {k: v for k, v in case.items() if k != "num_layers" or quick}
    row.update({
        "max_abs_logit_diff": diff,
        "ours_step_ms": round(med["ours"] * 1e3, 2),
        "theirs_step_ms": round(med["theirs"] * 1e3, 2),
        "ours_over_theirs": round(ratio, 4),
        "ours_over_theirs_paired": round(statistics.median(o / t for o, t in zip(wall["ours"], wall["theirs"],
                                                                                strict=True)), 4),
        "ours_over_theirs_cpu": round(statistics.median(cpu["ours"]) / statistics.median(cpu["theirs"]), 4),
        "within_target": ratio <= 1.05,
        "step_ms": {k: [round(t * 1e3, 2) for t in v] for k, v in wall.items()},
    })
    return row


@register_benchmark("bert_step", family="transformer",
                    description="BERT fine-tuning step (fwd+bwd+AdamW), ours vs transformers, same weights; "
                                "target ours/theirs <= 1.05")
def bert_step(quick: bool = False) -> dict[str, Any]:
    import torch

    # One step per contender per round, many rounds: on a shared, noisy machine the paired
    # per-round ratios are the steadiest figure.
    steps, warmup, repeats = (1, 1, 2) if quick else (1, 3, 25)
    rows = []
    for case in CASES:
        case = {**case, **QUICK} if quick else dict(case)
        print(f"bert_step: {case['name']}", flush=True)
        rows.append(_measure(case, steps, warmup, repeats, quick))
        print(f"bert_step: {case['name']}: ours/theirs {rows[-1]['ours_over_theirs']} "
              f"({rows[-1]['ours_step_ms']} vs {rows[-1]['theirs_step_ms']} ms)", flush=True)
    import transformers

    return {
        "task": "sequence classification, batch 16 x 64 right-padded tokens, cross-entropy, AdamW; "
                "one step = fwd + bwd + update, train mode",
        "reference": f"transformers {transformers.__version__} BertForSequenceClassification (sdpa)",
        "torch_threads": torch.get_num_threads(),
        "steps": {"per_round": steps, "warmup": warmup, "repeats": repeats},
        "cases": rows,
        "target_ours_over_theirs": 1.05,
        "all_within_target": all(r["within_target"] for r in rows),
    }
