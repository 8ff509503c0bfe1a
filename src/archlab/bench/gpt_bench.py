"""Benchmark: a character-level GPT on Tiny Shakespeare, archlab's model against a plain one.

``gpt_char_shakespeare`` trains, in one process and on the same batches,

(a) ``plain``: a minimal GPT written here in nanoGPT's style (fused q|k|v projection,
    ``F.scaled_dot_product_attention``, tied head; written for this file, not copied), trained
    by the hand-written loop below;
(b) ``archlab``: archlab's ``gpt_char`` (:class:`archlab.models.transformer.gpt.GPT`) trained by
    the same loop, on the same batches, from the same seed;
(c) ``archlab_train``: ``archlab.train("gpt_char", "tinyshakespeare", ...)``, the engine with the
    same hyper-parameters (the dataset's own split and windows, see below);

and, only where the CPU computes bfloat16 natively (AVX512-BF16/AMX; elsewhere it is emulated and
several times slower), (b) under ``torch.autocast(bfloat16)``.

The recipe is nanoGPT's shakespeare-char at the issue's size: 4 layers, 4 heads, 128 wide,
context 64, batch 12, 2000 steps, dropout 0, AdamW (lr 1e-3, betas (0.9, 0.99), weight decay 0.1
on the matrices and embeddings only), gradient clipping at 1.0, linear warm-up over 100 steps
then cosine decay to 1e-4 (nanoGPT's ``get_lr``), fp32. Data as nanoGPT's ``prepare.py`` /
``get_batch``: the characters of the text are the vocabulary (65), the first 90% of the text
trains, the last 10% validates, and every batch is 12 windows of 64 + 1 characters at random
offsets. Val (and train) loss: nanoGPT's ``estimate_loss``, the mean of 200 such batches.

Figures: median milliseconds per training step (batch sampling, forward, backward, clipping and
optimizer step), total training seconds, the final losses, and ``ratio`` = archlab / plain ms
per step (target <= 1.0: archlab's model costs nothing over the plain one). (a) and (b) run in
alternating chunks of steps, in turn first and second, so a change in machine load hits both alike.

(c) differs in its data: the ``tinyshakespeare`` dataset splits 90/5/5 (cut at line starts),
builds a 69-token vocab (65 characters + 4 specials) and serves non-overlapping windows of 64
in shuffled epochs instead of random offsets; its loss is measured by the same 200-batch
estimate on the same 10% held-out text, encoded with its vocab.
"""

from __future__ import annotations

import math
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from archlab.bench.suite import root_holding
from archlab.registry import register_benchmark

__all__ = ["gpt_char_shakespeare", "PlainGPT", "RECIPE"]

RECIPE = {"num_layers": 4, "num_heads": 4, "embed_dim": 128, "context": 64, "batch_size": 12, "steps": 2000,
          "dropout": 0.0, "lr": 1e-3, "min_lr": 1e-4, "warmup_steps": 100, "betas": (0.9, 0.99),
          "weight_decay": 0.1, "grad_clip": 1.0, "eval_batches": 200, "precision": "fp32"}


# ----------------------------------------------------------------------------------------------
# (a) the plain model: everything in ~50 lines, nanoGPT's layout


def _plain_classes():
    import torch
    import torch.nn.functional as F
    from torch import nn

    class SelfAttention(nn.Module):
        def __init__(self, d: int, heads: int) -> None:
            super().__init__()
            self.heads = heads
            self.qkv = nn.Linear(d, 3 * d)  # the three projections in one matmul
            self.proj = nn.Linear(d, d)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            B, T, D = x.shape
            q, k, v = self.qkv(x).split(D, dim=2)  # (B, T, D) each
            q, k, v = (t.view(B, T, self.heads, D // self.heads).transpose(1, 2) for t in (q, k, v))  # (B, h, T, d)
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (B, h, T, d)
            return self.proj(y.transpose(1, 2).reshape(B, T, D))  # (B, T, D)

    class Block(nn.Module):
        def __init__(self, d: int, heads: int) -> None:
            super().__init__()
            self.ln1, self.attn = nn.LayerNorm(d), SelfAttention(d, heads)
            self.ln2 = nn.LayerNorm(d)
            self.fc, self.out = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = x + self.attn(self.ln1(x))
            return x + self.out(F.gelu(self.fc(self.ln2(x)), approximate="tanh"))

    class PlainGPT(nn.Module):
        """Token + position embeddings, pre-LN blocks, final LayerNorm, head tied to the embeddings."""

        def __init__(self, vocab: int, context: int, d: int, layers: int, heads: int) -> None:
            super().__init__()
            self.tok, self.pos = nn.Embedding(vocab, d), nn.Embedding(context, d)
            self.blocks = nn.ModuleList(Block(d, heads) for _ in range(layers))
            self.ln = nn.LayerNorm(d)
            self.head = nn.Linear(d, vocab, bias=False)
            for m in self.modules():  # GPT-2's init
                if isinstance(m, (nn.Linear, nn.Embedding)):
                    nn.init.normal_(m.weight, std=0.02)
                if isinstance(m, nn.Linear) and m.bias is not None:
                    nn.init.zeros_(m.bias)
            for b in self.blocks:
                for m in (b.attn.proj, b.out):
                    nn.init.normal_(m.weight, std=0.02 / math.sqrt(2 * layers))
            self.head.weight = self.tok.weight

        def forward(self, idx: torch.Tensor) -> torch.Tensor:
            x = self.tok(idx) + self.pos(torch.arange(idx.shape[1], device=idx.device))  # (B, T, D)
            for block in self.blocks:
                x = block(x)
            return self.head(self.ln(x))  # (B, T, V)

    return PlainGPT


def PlainGPT(vocab: int, context: int = 64, d: int = 128, layers: int = 4, heads: int = 4) -> Any:  # noqa: N802
    """The plain nanoGPT-style model of (a) (built lazily: this module must not import torch)."""
    return _plain_classes()(vocab, context, d, layers, heads)


# ----------------------------------------------------------------------------------------------
# data and the loop


def _text() -> str:
    from archlab.data.download import fetch
    from archlab.data.text_datasets import TINYSHAKESPEARE_FILE

    path = fetch(TINYSHAKESPEARE_FILE, Path(root_holding("tinyshakespeare")), True, dataset="tinyshakespeare")
    return Path(path).read_text(encoding="utf-8")


class _Batches:
    """nanoGPT's ``get_batch``: ``batch_size`` windows at random offsets of ``data``, seeded."""

    def __init__(self, data: Any, batch_size: int, context: int, seed: int, device: Any) -> None:
        import torch

        self.data, self.batch_size, self.context, self.device = data, batch_size, context, device
        self.gen = torch.Generator().manual_seed(seed)

    def __call__(self) -> tuple[Any, Any]:
        import torch

        ix = torch.randint(len(self.data) - self.context, (self.batch_size,), generator=self.gen)
        x = torch.stack([self.data[i:i + self.context] for i in ix.tolist()])  # (B, T)
        y = torch.stack([self.data[i + 1:i + 1 + self.context] for i in ix.tolist()])  # (B, T)
        return x.to(self.device), y.to(self.device)


def _lr(step: int, total: int) -> float:
    """nanoGPT's get_lr: linear warm-up, then cosine from lr to min_lr at the last step."""
    r = RECIPE
    if step < r["warmup_steps"]:
        return r["lr"] * (step + 1) / (r["warmup_steps"] + 1)
    t = min((step - r["warmup_steps"]) / max(total - r["warmup_steps"], 1), 1.0)
    return r["min_lr"] + 0.5 * (1.0 + math.cos(math.pi * t)) * (r["lr"] - r["min_lr"])


class _Runner:
    """One model, its AdamW and its batch stream; ``step()`` is one timed training step."""

    def __init__(self, model: Any, batches: _Batches, total: int, bf16: bool = False) -> None:
        import torch

        self.model, self.batches, self.total, self.bf16 = model.train(), batches, total, bf16
        params = [p for p in model.parameters() if p.requires_grad]  # shared (tied) weights once
        decay = [p for p in params if p.dim() >= 2]  # matrices and embeddings decay, biases and norms do not
        rest = [p for p in params if p.dim() < 2]
        self.opt = torch.optim.AdamW([{"params": decay, "weight_decay": RECIPE["weight_decay"]},
                                      {"params": rest, "weight_decay": 0.0}], lr=RECIPE["lr"], betas=RECIPE["betas"])
        self.it, self.times, self.losses = 0, [], []
        self.device_type = next(model.parameters()).device.type

    def step(self) -> None:
        import torch
        import torch.nn.functional as F

        t0 = time.perf_counter()
        for group in self.opt.param_groups:
            group["lr"] = _lr(self.it, self.total)
        x, y = self.batches()
        with torch.autocast(self.device_type, dtype=torch.bfloat16, enabled=self.bf16):
            logits = self.model(x)  # (B, T, V)
        loss = F.cross_entropy(logits.float().flatten(0, 1), y.flatten())
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), RECIPE["grad_clip"])
        self.opt.step()
        if self.device_type == "cuda":
            torch.cuda.synchronize()
        self.times.append(time.perf_counter() - t0)
        self.it += 1
        if self.it % 100 == 0 or self.it == self.total:
            self.losses.append((self.it, round(loss.item(), 4)))


def _estimate_loss(model: Any, data: Any, batches: int, seed: int, device: Any, bf16: bool = False) -> float:
    """nanoGPT's estimate_loss: the mean loss of ``batches`` random batches (eval mode, seeded)."""
    import torch
    import torch.nn.functional as F

    get = _Batches(data, RECIPE["batch_size"], RECIPE["context"], seed, device)
    was_training = model.training
    model.eval()
    total = 0.0
    with torch.no_grad(), torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=bf16):
        for _ in range(batches):
            x, y = get()
            total += F.cross_entropy(model(x).float().flatten(0, 1), y.flatten()).item()
    model.train(was_training)
    return total / batches


def _summary(r: _Runner) -> dict[str, Any]:
    return {"ms_per_step": round(statistics.median(r.times) * 1e3, 3),
            "ms_per_step_mean": round(statistics.fmean(r.times) * 1e3, 3),
            "train_time_s": round(sum(r.times), 2), "steps": r.it, "loss_curve": r.losses}


# ----------------------------------------------------------------------------------------------
# (c) the engine


def _engine_run(steps: int, out: str, text: str, val_text: str, device: Any) -> dict[str, Any]:
    import torch

    import archlab
    from archlab.engine.trainer import Callback

    class StepTimes(Callback):
        def __init__(self) -> None:
            self.last, self.times = None, []

        def on_step_end(self, trainer: Any, out: Any) -> None:
            now = time.perf_counter()
            if self.last is not None:
                self.times.append(now - self.last)
            self.last = now

    r = RECIPE
    train_tokens = int(len(text) * 0.9)
    steps_per_epoch = (train_tokens // r["context"]) // r["batch_size"]  # about; only sizes the warm-up
    ovs = {"data.root": root_holding("tinyshakespeare"), "data.options.context": r["context"],
           "train.batch_size": r["batch_size"], "train.max_steps": steps, "train.epochs": 1000,
           "train.optimizer": "adamw", "train.lr": r["lr"], "train.betas": list(r["betas"]),
           "train.weight_decay": r["weight_decay"], "train.grad_clip": r["grad_clip"], "train.schedule": "cosine",
           "train.warmup_epochs": r["warmup_steps"] / steps_per_epoch, "train.min_lr": r["min_lr"], "train.seed": 0,
           "model.dropout": r["dropout"], "model.num_layers": r["num_layers"], "model.num_heads": r["num_heads"],
           "model.embed_dim": r["embed_dim"],
           "system.precision": "32-true", "system.progress": False, "system.tensorboard": False,
           "system.accelerator": "cuda" if torch.device(device).type == "cuda" else "cpu",
           "run.out_dir": out, "run.name": "gpt_char", "run.report": False}
    timer = StepTimes()
    t0 = time.perf_counter()
    run = archlab.train("gpt_char", "tinyshakespeare", overrides=ovs, callbacks=[timer])
    wall = time.perf_counter() - t0
    vocab = run.bundle.info.vocab
    val = torch.tensor(vocab.encode(val_text), dtype=torch.long)
    model = run.model.to(device)
    m = run.metrics
    return {"ms_per_step": round(statistics.median(timer.times) * 1e3, 3) if timer.times else None,
            "train_time_s": run.summary.get("train_time_s"), "wall_s": round(wall, 2),
            "steps": run.summary.get("steps"), "vocab_size": len(vocab),
            "val_loss": round(_estimate_loss(model, val, r["eval_batches"], 1, device), 4),
            "engine_val_loss": round(m["val/loss"], 4) if "val/loss" in m else None,
            "engine_test_loss": round(m["test/loss"], 4) if "test/loss" in m else None}


# ----------------------------------------------------------------------------------------------
# the benchmark


@register_benchmark("gpt_char_shakespeare", family="transformer",
                    description="char GPT on Tiny Shakespeare: archlab's GPT vs a plain nanoGPT-style loop "
                                "(ms/step ratio <= 1.0), val loss, and archlab.train")
def gpt_char_shakespeare(quick: bool = False, steps: int | None = None, engine: bool = True,
                         chunk: int = 50) -> dict[str, Any]:
    """``steps`` overrides the recipe's 2000 (``quick``: 20); ``engine=False`` skips (c);
    ``chunk``: steps each of (a) and (b) runs before the other takes over."""
    import torch

    from archlab.bench import cpu_has_native_bf16
    from archlab.models.transformer import gpt as _gpt  # noqa: F401  (registers gpt_char)
    from archlab.registry import create_model

    r = RECIPE
    steps = steps or (20 if quick else r["steps"])
    eval_batches = 5 if quick else r["eval_batches"]
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    text = _text()
    chars = sorted(set(text))
    stoi = {c: i for i, c in enumerate(chars)}
    data = torch.tensor([stoi[c] for c in text], dtype=torch.long)
    n = int(0.9 * len(data))
    train_data, val_data = data[:n], data[n:]
    V = len(chars)

    def build(kind: str) -> Any:
        torch.manual_seed(0)
        if kind == "plain":
            return PlainGPT(V, r["context"], r["embed_dim"], r["num_layers"], r["num_heads"]).to(device)
        return create_model("gpt_char", vocab_size=V, max_len=r["context"], num_layers=r["num_layers"],
                            num_heads=r["num_heads"], embed_dim=r["embed_dim"], dropout=r["dropout"]).to(device)

    native_bf16 = cpu_has_native_bf16() or device.type == "cuda"
    kinds = ["plain", "archlab"] + (["archlab_bf16"] if native_bf16 else [])
    runners = {k: _Runner(build(k.replace("_bf16", "")), _Batches(train_data, r["batch_size"], r["context"], 0, device),
                          steps, bf16=k.endswith("_bf16")) for k in kinds}
    for i, start in enumerate(range(0, steps, chunk)):  # alternate chunks, so load drifts hit every runner alike,
        order = list(runners.values())                      # and who goes first, so switching costs do too
        for runner in (order if i % 2 == 0 else order[::-1]):
            for _ in range(min(chunk, steps - start)):
                runner.step()
        done = min(start + chunk, steps)
        if not quick and (done % 500 == 0 or done == steps):
            shown = ", ".join(f"{k} {statistics.median(r.times) * 1e3:.1f} ms/step" for k, r in runners.items())
            print(f"gpt_char_shakespeare: step {done}/{steps}: {shown}", flush=True)
    results: dict[str, Any] = {}
    for kind, runner in runners.items():
        row = _summary(runner)
        row["params"] = sum(p.numel() for p in runner.model.parameters())
        row["val_loss"] = round(_estimate_loss(runner.model, val_data, eval_batches, 1, device, runner.bf16), 4)
        row["train_loss"] = round(_estimate_loss(runner.model, train_data, eval_batches, 2, device, runner.bf16), 4)
        results[kind] = row
    if not native_bf16:
        results["archlab_bf16"] = "skipped: this CPU has no native bf16 (AVX512-BF16/AMX); emulated bf16 is slower"
    plain, ours = results["plain"], results["archlab"]
    ratio = ours["ms_per_step"] / plain["ms_per_step"]

    if engine:
        with tempfile.TemporaryDirectory() as out:
            results["archlab_train"] = _engine_run(steps, out, text, text[n:], device)
    else:
        results["archlab_train"] = "skipped (engine=False)"

    sample = ""
    if not quick:
        model = runners["archlab"].model
        ids = torch.tensor([[stoi["\n"]]], device=device)
        out_ids = model.generate(ids, 200, temperature=0.8, top_k=None, generator=torch.Generator().manual_seed(0))
        sample = "".join(chars[i] for i in out_ids[0].tolist())
    return {"recipe": {**r, "betas": list(r["betas"]), "steps": steps, "eval_batches": eval_batches,
                       "vocab_size": V, "train_chars": len(train_data), "val_chars": len(val_data)},
            "device": str(device), "chunk": chunk,
            "ratio": round(ratio, 4), "target_ratio": 1.0, "meets_target": ratio <= 1.0,
            "runs": results, "sample": sample}
