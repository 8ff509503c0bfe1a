"""GPT: a decoder-only Transformer language model (GPT-1, GPT-2), with KV-cached generation.

    A. Radford, K. Narasimhan, T. Salimans, I. Sutskever, "Improving Language Understanding by
    Generative Pre-Training", 2018 (GPT-1).
    https://cdn.openai.com/research-covers/language-unsupervised/language_understanding_paper.pdf
    A. Radford, J. Wu, R. Child, D. Luan, D. Amodei, I. Sutskever, "Language Models are
    Unsupervised Multitask Learners", 2019 (GPT-2).
    https://cdn.openai.com/better-language-models/language_models_are_unsupervised_multitask_learners.pdf
    O. Press, L. Wolf, "Using the Output Embedding to Improve Language Models", EACL 2017 (tying).
    https://arxiv.org/abs/1608.05859
    A. Vaswani et al., "Attention is all you need", NeurIPS 2017, https://arxiv.org/abs/1706.03762

A language model factorises a token sequence left to right, p(x_1..x_T) = prod_t p(x_t | x_<t),
and GPT computes every factor at once with causal self-attention (GPT-1 eq. 2, GPT-2 section 2.3)::

    h_0 = dropout(W_e[x] + W_p[0..T-1])                            # (B, T, D) token + position embeddings
    h_l = h_{l-1} + dropout(MHA(LN_1(h_{l-1}); causal))            # pre-LN blocks, l = 1..L (GPT-2)
    h_l = h_l + dropout(W_2 GELU(W_1 LN_2(h_l) + b_1) + b_2)        # W_1 (D, ff_dim), W_2 (ff_dim, D)
    logits = LN_f(h_L) W_e^T                                       # (B, T, V), output tied to W_e (Press & Wolf)

"causal": position t attends to positions <= t only, so logits[:, t] predicts x_{t+1} from the
prefix and one forward pass trains on all T next-token targets (cross-entropy, see
``archlab.tasks.sequence.LanguageModelTask``).

Generation (:meth:`GPT.generate`) feeds the prompt once, then one token at a time, keeping every
layer's keys and values in a :class:`~archlab.models.transformer.attention.KVCache` so each new
token costs one query against the cache (positions continue at ``cache.length``). The context
is ``max_len`` tokens: once prompt + generated text is longer, each step reads only the last
``max_len`` tokens (a sliding window, as nanoGPT; the cache is rebuilt from that window, since
every token's position, hence its keys and values, changes when the window slides). The next
token is drawn from ``softmax(logits / temperature)`` after the filters of
:mod:`archlab.models.transformer.generation` (top-k, nucleus top-p, CTRL's repetition penalty,
no-repeat n-grams); ``temperature=0`` is greedy.

Sizes: GPT-1 12 layers, D=768, 12 heads, ff 3072, context 512 (117M); GPT-2 small the same with
context 1024 and a 50257-token BPE vocab (124M); GPT-2 medium/large/XL 24/1024/16, 36/1280/20,
48/1600/25. Registered: ``gpt2`` (GPT-2 small), ``gpt_mini`` (6/384/6 heads, context 256,
dropout 0.2, no biases: nanoGPT's shakespeare-char) and ``gpt_char`` (4/128/4 heads, context 64, no dropout:
a seconds-per-epoch character model). Parameter names follow nanoGPT/GPT-2 at the top (``wte``,
``wpe``, ``blocks``, ``ln_f``, ``lm_head``) and archlab's :class:`TransformerBlock` inside;
:mod:`archlab.models.transformer.hf_gpt2` converts from and to Hugging Face's ``GPT2LMHeadModel``.

Deviations from the paper:
    - GPT-1 is post-LN (LN after each residual sum); this model is GPT-2's pre-LN with a final
      LayerNorm ``ln_f``. GPT-1 sizes with ``max_len=512`` give GPT-1's shapes, not its function.
    - Initialisation as GPT-2 (and nanoGPT): weights normal(0, 0.02), biases 0, and the two
      residual output projections per block (attention ``out_proj``, feed-forward ``fc2``)
      normal(0, 0.02 / sqrt(2 L)). GPT-2's modified init scales by 1/sqrt(N) for N residual layers;
      N = 2 L as in OpenAI's code.
    - ``activation="gelu_tanh"`` is GPT-2's tanh approximation of GELU (Hugging Face's
      ``gelu_new``); ``"gelu"`` is the exact one.
    - Options beyond GPT-2 (defaults are GPT-2's): ``pos="sinusoidal"`` (Vaswani's fixed encoding,
      added without scaling the embeddings by sqrt(D)) or ``"rotary"`` (RoFormer, applied to q and
      k in every layer; no position table), ``norm="rmsnorm"``, ``bias=False`` (no biases in the
      linear layers and LayerNorms, as nanoGPT's option), ``tie_weights=False`` (a separate
      output matrix), ``impl="math"`` (attention written out instead of the fused kernel).
    - One ``dropout`` for the embeddings, the attention weights and the residual branches (GPT-2
      uses 0.1 for all three); the registered ``gpt_char`` has none.
    - The output layer has no bias (as GPT-2's tied ``lm_head``).
    - ``temperature=0`` in :meth:`GPT.generate` means greedy decoding; prompts longer than the
      context are cropped to their last ``max_len`` tokens (``forward`` raises an error instead).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
from torch import nn

from archlab.models.transformer.attention import KVCache
from archlab.models.transformer.generation import check_generation, sample_next
from archlab.models.transformer.layers import (
    LearnedPositionalEmbedding,
    RotaryEmbedding,
    SinusoidalPositionalEncoding,
    TransformerBlock,
    make_norm,
)
from archlab.registry import register_model

__all__ = ["GPT", "GPTConfig"]


@dataclass
class GPTConfig:
    """Options of :class:`GPT` (defaults: GPT-2 small).

    Attributes:
        vocab_size: number of token ids V (filled from the dataset's vocab).
        pad_id: the padding id (filled from the dataset; unused by the network itself).
        max_len: the context (block size): the longest sequence ``forward`` takes; the length of
            the position table (filled from the dataset's context).
        num_layers: Transformer blocks L.
        num_heads: attention heads (must divide ``embed_dim``).
        embed_dim: model width D.
        ff_dim: feed-forward inner width; None = 4 * embed_dim.
        dropout: on the embeddings, the attention weights and each residual branch.
        bias: biases in the linear layers and LayerNorms (False: none, as nanoGPT's option).
        activation: feed-forward activation: ``gelu_tanh`` (GPT-2), ``gelu``, ``relu``.
        eps: the norms' epsilon.
        tie_weights: the output layer shares the token embedding matrix (Press & Wolf).
        pos: ``learned`` (GPT-2), ``sinusoidal`` or ``rotary`` positions.
        norm: ``layernorm`` (GPT-2) or ``rmsnorm``.
        impl: attention ``fast`` (fused kernel) or ``math`` (written out; same numbers).
    """

    vocab_size: int = 50257
    pad_id: int = 0
    max_len: int = 1024
    num_layers: int = 12
    num_heads: int = 12
    embed_dim: int = 768
    ff_dim: int | None = None
    dropout: float = 0.1
    bias: bool = True
    activation: Literal["gelu_tanh", "gelu", "relu"] = "gelu_tanh"
    eps: float = 1e-5
    tie_weights: bool = True
    pos: Literal["learned", "sinusoidal", "rotary"] = "learned"
    norm: Literal["layernorm", "rmsnorm"] = "layernorm"
    impl: Literal["fast", "math"] = "fast"

    TINY: ClassVar[dict[str, Any]] = {"vocab_size": 30, "max_len": 10, "num_layers": 2, "num_heads": 2,
                                      "embed_dim": 16}

    def __post_init__(self) -> None:
        if self.vocab_size < 2:
            raise ValueError(f"vocab_size must be >= 2, got {self.vocab_size}")
        if min(self.max_len, self.num_layers, self.num_heads, self.embed_dim) < 1:
            raise ValueError("max_len, num_layers, num_heads and embed_dim must be >= 1")
        if self.embed_dim % self.num_heads:
            raise ValueError(f"embed_dim={self.embed_dim} must be divisible by num_heads={self.num_heads}")
        if self.pos == "rotary" and (self.embed_dim // self.num_heads) % 2:
            raise ValueError(f"pos='rotary' needs an even head width, got embed_dim // num_heads = "
                             f"{self.embed_dim // self.num_heads}; change embed_dim or num_heads")
        if self.ff_dim is not None and self.ff_dim < 1:
            raise ValueError(f"ff_dim must be >= 1 (or null for 4 * embed_dim), got {self.ff_dim}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")


class GPT(nn.Module):
    """Token + position embeddings -> L pre-LN causal Transformer blocks -> LayerNorm -> tied head.

    Args:
        config: a :class:`GPTConfig`.

    Shapes:
        x: (B, T) long token ids, T <= max_len (with a cache: cache.length + T <= max_len).
        Returns logits (B, T, V): logits[:, t] scores the token after x[:, t].
    """

    task = "language_model"

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.config = c = config
        D, L = c.embed_dim, c.num_layers
        self.vocab_size, self.max_len = c.vocab_size, c.max_len
        self.wte = nn.Embedding(c.vocab_size, D)  # token embeddings W_e
        self.wpe: nn.Module | None = None  # position embeddings W_p (none for rotary)
        self.rotary: RotaryEmbedding | None = None
        if c.pos == "learned":
            self.wpe = LearnedPositionalEmbedding(c.max_len, D)
        elif c.pos == "sinusoidal":
            self.wpe = SinusoidalPositionalEncoding(c.max_len, D)
        else:
            self.rotary = RotaryEmbedding(D // c.num_heads)
        self.drop = nn.Dropout(c.dropout)
        self.blocks = nn.ModuleList(
            TransformerBlock(D, c.num_heads, c.ff_dim or 4 * D, dropout=c.dropout, attention_dropout=c.dropout,
                             norm_first=True, norm=c.norm, eps=c.eps, activation=c.activation, bias=c.bias,
                             impl=c.impl, packed_qkv=True)  # one (3D, D) q|k|v layer, as GPT-2's c_attn
            for _ in range(L)
        )
        self.ln_f = make_norm(c.norm, D, c.eps, bias=c.bias)
        self.lm_head = nn.Linear(D, c.vocab_size, bias=False)

        # GPT-2 init: N(0, 0.02) everywhere, N(0, 0.02 / sqrt(2 L)) on the residual projections.
        self.apply(self._init_weights)
        for block in self.blocks:
            for proj in (block.self_attn.out_proj, block.ff.fc2):
                nn.init.normal_(proj.weight, std=0.02 / math.sqrt(2 * L))
        if c.tie_weights:
            self.lm_head.weight = self.wte.weight

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, (nn.Embedding, LearnedPositionalEmbedding)):
            nn.init.normal_(module.weight, std=0.02)

    def _check_length(self, T: int, cached: int) -> None:
        if cached + T > self.max_len:
            held = f" after the {cached} tokens in the cache" if cached else ""
            raise ValueError(
                f"prompt of {T} tokens{held} is longer than the model's context of {self.max_len}; "
                f"feed at most the last {self.max_len - cached} tokens (x[:, -{self.max_len - cached}:]), "
                "or use generate(), which crops the context to its last max_len tokens")

    def _embed(self, x: torch.Tensor, offset: int) -> torch.Tensor:
        """dropout(W_e[x] + W_p[offset .. offset + T - 1]) (B, T, D); rotary positions come later."""
        T = x.shape[1]
        self._check_length(T, offset)
        h = self.wte(x)  # (B, T, D)
        if isinstance(self.wpe, LearnedPositionalEmbedding):
            h = h + self.wpe(T, offset)  # (B, T, D) + (T, D)
        elif self.wpe is not None:
            h = self.wpe(h, offset)  # sinusoidal: adds the fixed table
        return self.drop(h) if self.config.dropout > 0 else h

    def forward(self, x: torch.Tensor, *, cache: KVCache | None = None) -> torch.Tensor:
        """Next-token logits (B, T, V) of token ids ``x`` (B, T).

        With ``cache`` (a ``KVCache(num_layers)``), ``x`` continues the tokens cached so far: its
        positions start at ``cache.length`` and its keys/values are appended to the cache.
        """
        if x.dim() != 2 or x.is_floating_point():
            raise ValueError(f"GPT expects token ids (B, T) of an integer type, got {x.dtype} {tuple(x.shape)}")
        h = self._embed(x, cache.length if cache is not None else 0)  # (B, T, D)
        for i, block in enumerate(self.blocks):
            h, _, _ = block(h, is_causal=True, cache=cache, layer=i, rotary=self.rotary)  # (B, T, D)
        return self.lm_head(self.ln_f(h))  # (B, T, V)

    @torch.no_grad()
    def attention_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Every layer's causal attention weights (B, heads, T, T) for ids ``x`` (B, T), in eval mode."""
        was_training = self.training
        self.eval()
        try:
            h = self._embed(x, 0)  # (B, T, D)
            maps = []
            for block in self.blocks:
                h, w, _ = block(h, is_causal=True, need_weights=True, rotary=self.rotary)
                maps.append(w)  # (B, heads, T, T)
        finally:
            self.train(was_training)
        return maps

    @torch.no_grad()
    def generate(
        self,
        ids: torch.Tensor,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        generator: torch.Generator | None = None,
        stream: Callable[[Any], None] | None = None,
        *,
        top_p: float | None = None,
        repetition_penalty: float = 1.0,
        no_repeat_ngram_size: int = 0,
        use_cache: bool = True,
    ) -> torch.Tensor:
        """Continue the prompts ``ids`` (B, T0) by ``max_new_tokens`` tokens.

        Dropout is off while generating (the model's mode is restored afterwards). Only the last
        ``max_len`` tokens are ever read: a longer prompt is cropped, and once the text outgrows
        the context each step re-reads the last ``max_len`` tokens (the returned ids keep all).

        Args:
            ids: prompt token ids (B, T0), T0 >= 1 (a 1-D prompt is taken as one row).
            max_new_tokens: how many tokens to add (>= 0).
            temperature: divides the logits; 0 = greedy (argmax).
            top_k: sample among the k most likely tokens only (None = all).
            generator: a ``torch.Generator`` for reproducible samples.
            stream: called with each new token as soon as it is drawn: its id as an int for one
                prompt, the (B,) ids for several.
            top_p: nucleus sampling: the smallest set of tokens of probability mass >= top_p.
            repetition_penalty: CTRL's penalty (> 1 discourages tokens already in the text).
            no_repeat_ngram_size: n > 0 bans tokens that would repeat an n-gram of the text.
            use_cache: keep keys/values between steps (False recomputes the whole context each
                step; same tokens, slower).

        Returns:
            (B, T0 + max_new_tokens) ids: the prompt followed by the new tokens.
        """
        if ids.dim() == 1:
            ids = ids[None]
        if ids.dim() != 2 or ids.shape[1] == 0:
            raise ValueError(f"generate needs a prompt of at least one token, shape (B, T0); got {tuple(ids.shape)}")
        if max_new_tokens < 0:
            raise ValueError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
        check_generation(temperature, top_k, top_p, repetition_penalty, no_repeat_ngram_size)
        was_training = self.training
        self.eval()
        out, cache, logits = ids, None, None
        try:
            for _ in range(max_new_tokens):
                if not use_cache:
                    logits = self(out[:, -self.max_len:])[:, -1]  # (B, V)
                elif cache is None or cache.length >= self.max_len:
                    # Start (or restart, once the window slides) from the last max_len tokens.
                    cache = KVCache(len(self.blocks))
                    logits = self(out[:, -self.max_len:], cache=cache)[:, -1]  # (B, V)
                else:
                    logits = self(out[:, -1:], cache=cache)[:, -1]  # one new query against the cache
                nxt = sample_next(logits, out, temperature=temperature, top_k=top_k, top_p=top_p,
                                  repetition_penalty=repetition_penalty,
                                  no_repeat_ngram_size=no_repeat_ngram_size, generator=generator)  # (B, 1)
                out = torch.cat([out, nxt], dim=1)
                if stream is not None:
                    stream(int(nxt[0, 0]) if len(nxt) == 1 else nxt[:, 0])
        finally:
            self.train(was_training)
        return out

    def example_input(self, batch_size: int = 1, seed: int = 0) -> torch.Tensor:
        """Random token ids (B, max_len)."""
        g = torch.Generator().manual_seed(seed)
        x = torch.randint(0, self.vocab_size, (batch_size, self.max_len), generator=g)
        return x.to(self.wte.weight.device)


# ----------------------------------------------------------------------------------------------
# registered variants


@register_model("gpt2", family="transformer", config=GPTConfig)
def gpt2(cfg: GPTConfig) -> GPT:
    """GPT-2 small (Radford et al. 2019): 12 layers, 768 wide, 12 heads, context 1024, 124M parameters."""
    return GPT(cfg)


@register_model("gpt_mini", family="transformer", config=GPTConfig, vocab_size=256, max_len=256, num_layers=6,
                num_heads=6, embed_dim=384, dropout=0.2, bias=False)
def gpt_mini(cfg: GPTConfig) -> GPT:
    """A 6-layer, 384-wide GPT, context 256, dropout 0.2, no biases (nanoGPT's shakespeare-char config)."""
    return GPT(cfg)


@register_model("gpt_char", family="transformer", config=GPTConfig, vocab_size=256, max_len=64, num_layers=4,
                num_heads=4, embed_dim=128, dropout=0.0)
def gpt_char(cfg: GPTConfig) -> GPT:
    """A small character-level GPT: 4 layers, 128 wide, 4 heads, context 64, no dropout."""
    return GPT(cfg)
