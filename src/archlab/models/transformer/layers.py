"""Transformer building blocks: position encodings, norms, the feed-forward layer and the block.

    A. Vaswani et al., "Attention is all you need", NeurIPS 2017, https://arxiv.org/abs/1706.03762
    J. Su, Y. Lu, S. Pan, A. Murtadha, B. Wen, Y. Liu, "RoFormer: Enhanced transformer with rotary
    position embedding", 2021, https://arxiv.org/abs/2104.09864
    B. Zhang, R. Sennrich, "Root mean square layer normalization", NeurIPS 2019,
    https://arxiv.org/abs/1910.07467
    R. Xiong, Y. Yang, D. He, K. Zheng, S. Zheng, C. Xing, H. Zhang, Y. Lan, L. Wang, T.-Y. Liu,
    "On layer normalization in the Transformer architecture", ICML 2020, https://arxiv.org/abs/2002.04745

Positions. Attention is blind to order, so position information is added to the tokens:

* sinusoidal (Vaswani et al. section 3.5), fixed::

      PE(pos, 2i)   = sin(pos / base^(2i / D))                        # base = 10000
      PE(pos, 2i+1) = cos(pos / base^(2i / D))

* learned (BERT, GPT-2, ViT): a (max_len, D) table of embeddings;
* rotary (RoFormer eq. 14-16): no addition; each pair (x_{2i}, x_{2i+1}) of a query or key at
  position m is rotated by the angle m theta_i, theta_i = base^(-2i / d), so that
  ``<R_m q, R_n k> = <q, R_{n-m} k>`` depends only on the offset n - m.

Norms. LayerNorm normalises each token: ``y = (x - mean(x)) / sqrt(var(x) + eps) * g + b``;
RMSNorm (Zhang & Sennrich eq. 4) drops the centring and the bias::

    y = x / sqrt(mean(x^2) + eps) * g

Block (Vaswani et al. section 3.1, 3.3). A self-attention sub-layer and a position-wise
feed-forward sub-layer ``FFN(x) = act(x W_1 + b_1) W_2 + b_2`` (ReLU in the paper, GELU in BERT
and GPT), each wrapped in a residual connection with dropout; a decoder block has a
cross-attention sub-layer over the encoder output ("memory") between the two. Where the norm
goes:

    post-LN (the paper, BERT; ``norm_first=False``):  x = Norm(x + Dropout(Sublayer(x)))
    pre-LN  (GPT-2, ViT; Xiong et al.; ``norm_first=True``): x = x + Dropout(Sublayer(Norm(x)))

Pre-LN keeps an identity path from input to output, so gradients at initialisation are well
behaved and training needs no learning-rate warm-up (Xiong et al.); a pre-LN stack needs a final
norm after the last block (the model's job, not the block's).

Deviations from the paper:
    - ``norm_first=True`` (pre-LN) is this block's default, as GPT-2 and ViT; the paper's
      post-LN is ``norm_first=False``.
    - ``activation="gelu"`` is the default (BERT, GPT); the paper's FFN uses ``"relu"``.
    - ``ff_dropout`` (default 0, as the paper) adds dropout inside the feed-forward layer after
      the activation, as ``nn.TransformerEncoderLayer`` does with its ``dropout``.
    - Rotary embeddings rotate the interleaved pairs (x_{2i}, x_{2i+1}) as the paper;
      ``interleaved=False`` rotates (x_i, x_{i+d/2}) instead (GPT-NeoX, Hugging Face LLaMA).
    - The sinusoidal encoding does not scale the embeddings by sqrt(D) (the paper's section 3.4);
      the model multiplies its token embeddings before adding the encoding.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from archlab.models.transformer.attention import KVCache, MultiHeadAttention

__all__ = [
    "FeedForward",
    "LearnedPositionalEmbedding",
    "RMSNorm",
    "RotaryEmbedding",
    "SinusoidalPositionalEncoding",
    "TransformerBlock",
    "make_norm",
    "sinusoidal_table",
]


# --------------------------------------------------------------------------- positions

def sinusoidal_table(max_len: int, dim: int, base: float = 10000.0) -> Tensor:
    """The (max_len, dim) float32 table PE(pos, 2i) = sin(pos / base^(2i/dim)), PE(pos, 2i+1) = cos(...)."""
    pos = torch.arange(max_len, dtype=torch.float64)[:, None]  # (L, 1)
    inv = base ** (-torch.arange(0, dim, 2, dtype=torch.float64) / dim)  # (ceil(D/2),)
    angles = pos * inv  # (L, ceil(D/2))
    pe = torch.zeros(max_len, dim, dtype=torch.float64)
    pe[:, 0::2] = angles.sin()
    pe[:, 1::2] = angles.cos()[:, : dim // 2]
    return pe.float()


def _check_positions(name: str, end: int, max_len: int) -> None:
    if end > max_len:
        raise ValueError(f"{name}: positions up to {end - 1} but max_len={max_len}; "
                         f"build it with a larger max_len or feed shorter sequences")


class SinusoidalPositionalEncoding(nn.Module):
    """Adds the fixed sinusoidal encoding (Vaswani et al. section 3.5) to token embeddings.

    Args:
        max_len: longest sequence (positions 0 .. max_len - 1).
        dim: embedding width D.
        base: wavelength base (10000 in the paper).

    The table is a non-persistent buffer ``pe`` (max_len, D): it is not in the state dict.
    """

    def __init__(self, max_len: int, dim: int, *, base: float = 10000.0) -> None:
        super().__init__()
        self.max_len, self.dim = max_len, dim
        self.register_buffer("pe", sinusoidal_table(max_len, dim, base), persistent=False)

    def forward(self, x: Tensor, offset: int = 0) -> Tensor:
        """x (B, T, D) at positions offset .. offset + T - 1 -> x + PE (B, T, D)."""
        T = x.shape[-2]
        _check_positions(type(self).__name__, offset + T, self.max_len)
        return x + self.pe[offset: offset + T].to(x.dtype)  # (B, T, D) + (T, D)

    def extra_repr(self) -> str:
        return f"max_len={self.max_len}, dim={self.dim}"


class LearnedPositionalEmbedding(nn.Module):
    """A learned (max_len, D) table of position embeddings (BERT, GPT-2), parameter ``weight``.

    Initialised normal(0, 0.02) as BERT and GPT-2. ``forward`` returns the embeddings; the model
    adds them to its token embeddings.
    """

    def __init__(self, max_len: int, dim: int) -> None:
        super().__init__()
        self.max_len, self.dim = max_len, dim
        self.weight = nn.Parameter(torch.empty(max_len, dim))
        nn.init.normal_(self.weight, std=0.02)

    def forward(self, positions: Tensor | int, offset: int = 0) -> Tensor:
        """Embeddings of ``positions + offset``.

        Args:
            positions: a length T (positions 0 .. T - 1) or a long tensor of positions of any shape.
            offset: added to every position (tokens already in a KV cache).

        Returns:
            (T, D) for an int, else ``positions.shape + (D,)``.
        """
        if isinstance(positions, int):
            _check_positions(type(self).__name__, offset + positions, self.max_len)
            return self.weight[offset: offset + positions]  # (T, D)
        positions = positions + offset
        if positions.numel() and int(positions.max()) >= self.max_len:
            _check_positions(type(self).__name__, int(positions.max()) + 1, self.max_len)
        return F.embedding(positions, self.weight)  # (..., D)

    def extra_repr(self) -> str:
        return f"max_len={self.max_len}, dim={self.dim}"


class RotaryEmbedding(nn.Module):
    """Rotary position embedding (RoFormer, Su et al. 2021) for queries and keys (B, h, T, d).

    Pair i of a vector at position m is rotated by m * theta_i, theta_i = base^(-2i / d)::

        [x_{2i}', x_{2i+1}'] = [x_{2i} cos(m theta_i) - x_{2i+1} sin(m theta_i),
                                x_{2i} sin(m theta_i) + x_{2i+1} cos(m theta_i)]

    Args:
        head_dim: d, the per-head width (even).
        base: 10000 in the paper.
        interleaved: rotate the pairs (x_{2i}, x_{2i+1}) (paper); False rotates (x_i, x_{i+d/2})
            (GPT-NeoX / Hugging Face LLaMA layout).
    """

    def __init__(self, head_dim: int, base: float = 10000.0, *, interleaved: bool = True) -> None:
        super().__init__()
        if head_dim % 2 != 0:
            raise ValueError(f"RotaryEmbedding: head_dim must be even (it rotates pairs), got {head_dim}")
        self.head_dim, self.base, self.interleaved = head_dim, base, interleaved
        inv_freq = base ** (-torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)  # (d/2,)
        self.register_buffer("inv_freq", inv_freq, persistent=False)

    def _rotate(self, x: Tensor, positions: Tensor) -> Tensor:
        angles = positions.to(torch.float32)[..., None] * self.inv_freq  # (T, d/2) or (B, T, d/2)
        if angles.dim() == 3:
            angles = angles[:, None]  # (B, 1, T, d/2): same for every head
        cos, sin = angles.cos(), angles.sin()
        xf = x.float()
        if self.interleaved:
            x1, x2 = xf[..., 0::2], xf[..., 1::2]  # (B, h, T, d/2) each
            out = torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1).flatten(-2)  # (B, h, T, d)
        else:
            x1, x2 = xf.chunk(2, dim=-1)  # (B, h, T, d/2) each
            out = torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)  # (B, h, T, d)
        return out.to(x.dtype)

    def rotate(self, q: Tensor, k: Tensor, offset: int = 0, *,
               positions: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Rotate q (B, h, T, d) and k (B, h, S, d), both starting at position ``offset``.

        ``positions`` (T,) or (B, T) long overrides the positions of both (e.g. per-row positions
        with left padding; then q and k must have the same length).
        """
        if q.shape[-1] != self.head_dim or k.shape[-1] != self.head_dim:
            raise ValueError(f"RotaryEmbedding(head_dim={self.head_dim}) got q {tuple(q.shape)}, k {tuple(k.shape)}")
        if positions is not None:
            return self._rotate(q, positions), self._rotate(k, positions)
        pq = torch.arange(offset, offset + q.shape[-2], device=q.device)  # (T,)
        pk = pq if k.shape[-2] == q.shape[-2] else torch.arange(offset, offset + k.shape[-2], device=k.device)
        return self._rotate(q, pq), self._rotate(k, pk)

    def apply(self, q: Any, k: Tensor | None = None, offset: int = 0, *,  # type: ignore[override]
              positions: Tensor | None = None) -> Any:
        """``apply(q, k, offset=0)`` = :meth:`rotate`. Called with one function, as ``nn.Module.apply(fn)``
        does on every submodule (``model.apply(init_weights)``), it behaves as ``nn.Module.apply``."""
        if k is None and callable(q):
            return super().apply(q)
        if k is None:
            raise TypeError("RotaryEmbedding.apply(q, k, offset=0) needs both q and k")
        return self.rotate(q, k, offset, positions=positions)

    def extra_repr(self) -> str:
        return f"head_dim={self.head_dim}, base={self.base}, interleaved={self.interleaved}"


# --------------------------------------------------------------------------- norms and FFN

class RMSNorm(nn.Module):
    """Root-mean-square norm (Zhang & Sennrich 2019): ``x / sqrt(mean(x^2) + eps) * weight``.

    Computed in float32 for half-precision inputs; parameter ``weight`` (dim,) starts at 1.
    """

    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.dim, self.eps = dim, eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: Tensor) -> Tensor:
        xf = x.float() if x.dtype in (torch.float16, torch.bfloat16) else x
        y = xf * torch.rsqrt(xf.pow(2).mean(dim=-1, keepdim=True) + self.eps)  # (..., D)
        return y.to(x.dtype) * self.weight

    def extra_repr(self) -> str:
        return f"{self.dim}, eps={self.eps}"


def make_norm(kind: str, dim: int, eps: float, *, bias: bool = True) -> nn.Module:
    """``"layernorm"`` -> ``nn.LayerNorm(dim, eps)`` (``bias=False`` drops its bias); ``"rmsnorm"`` -> :class:`RMSNorm`."""
    if kind == "layernorm":
        return nn.LayerNorm(dim, eps=eps, bias=bias)
    if kind == "rmsnorm":
        return RMSNorm(dim, eps=eps)
    raise ValueError(f"unknown norm {kind!r}; use 'layernorm' or 'rmsnorm'")


_ACTIVATIONS = {
    "gelu": nn.GELU,
    "gelu_tanh": lambda: nn.GELU(approximate="tanh"),
    "relu": nn.ReLU,
    "silu": nn.SiLU,
}


class FeedForward(nn.Module):
    """Position-wise feed-forward layer ``fc2(dropout(act(fc1(x))))`` (Vaswani et al. eq. 2).

    Args:
        dim: model width D.
        hidden_dim: inner width (4 D in the paper, BERT and GPT-2).
        activation: ``"gelu"`` (exact, BERT), ``"gelu_tanh"`` (GPT-2's approximation), ``"relu"``
            (the paper) or ``"silu"``.
        dropout: dropout after the activation (not in the paper; ``nn.TransformerEncoderLayer`` has it).
        bias: biases on ``fc1`` and ``fc2``.
    """

    def __init__(self, dim: int, hidden_dim: int, *, activation: str = "gelu", dropout: float = 0.0,
                 bias: bool = True) -> None:
        super().__init__()
        if activation not in _ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; use one of {sorted(_ACTIVATIONS)}")
        self.fc1 = nn.Linear(dim, hidden_dim, bias=bias)
        self.act = _ACTIVATIONS[activation]()
        self.dropout = nn.Dropout(dropout)
        self.fc2 = nn.Linear(hidden_dim, dim, bias=bias)
        self._use_dropout = dropout > 0  # p = 0: skip the call (a measurable cost in small models)

    def forward(self, x: Tensor) -> Tensor:
        h = self.act(self.fc1(x))  # (B, T, D) -> (B, T, hidden)
        return self.fc2(self.dropout(h) if self._use_dropout else h)  # (B, T, D)


# --------------------------------------------------------------------------- the block

class TransformerBlock(nn.Module):
    """One encoder block, or a decoder block with ``cross_attention=True``.

    Args:
        dim: model width D.
        num_heads: attention heads.
        ff_dim: feed-forward inner width.
        dropout: residual dropout on each sub-layer's output before it is added (paper's P_drop).
        attention_dropout: dropout on the attention weights.
        norm_first: pre-LN (True, GPT-2/ViT) or post-LN (False, the paper/BERT).
        norm: ``"layernorm"`` or ``"rmsnorm"``.
        eps: the norms' epsilon.
        activation: the feed-forward activation (see :class:`FeedForward`).
        bias: biases in attention, feed-forward and LayerNorm.
        cross_attention: add a cross-attention sub-layer over ``memory`` (decoder block).
        impl: attention implementation, ``"fast"`` or ``"math"``.
        ff_dropout: dropout inside the feed-forward layer (default 0, as the paper).
        packed_qkv: self-attention holds W^Q|W^K|W^V as one layer ``qkv_proj`` (GPT-2's layout).

    Submodules: ``self_attn``, ``norm1``, ``cross_attn`` and ``norm_cross`` (decoder only), ``ff``,
    ``norm2``; ``norm1`` goes with self-attention, ``norm_cross`` with cross-attention and
    ``norm2`` with the feed-forward layer.
    """

    def __init__(self, dim: int, num_heads: int, ff_dim: int, *, dropout: float = 0.0,
                 attention_dropout: float = 0.0, norm_first: bool = True, norm: str = "layernorm",
                 eps: float = 1e-5, activation: str = "gelu", bias: bool = True, cross_attention: bool = False,
                 impl: Literal["fast", "math"] = "fast", ff_dropout: float = 0.0, packed_qkv: bool = False) -> None:
        super().__init__()
        self.norm_first, self.has_cross = norm_first, cross_attention
        self.self_attn = MultiHeadAttention(dim, num_heads, dropout=attention_dropout, bias=bias, impl=impl,
                                            packed=packed_qkv)
        self.norm1 = make_norm(norm, dim, eps, bias=bias)
        if cross_attention:
            self.cross_attn = MultiHeadAttention(dim, num_heads, dropout=attention_dropout, bias=bias, impl=impl)
            self.norm_cross = make_norm(norm, dim, eps, bias=bias)
        self.ff = FeedForward(dim, ff_dim, activation=activation, dropout=ff_dropout, bias=bias)
        self.norm2 = make_norm(norm, dim, eps, bias=bias)
        self.dropout = nn.Dropout(dropout)
        self._use_dropout = dropout > 0  # p = 0: skip the call (a measurable cost in small models)

    def forward(self, x: Tensor, *, memory: Tensor | None = None, key_padding_mask: Tensor | None = None,
                memory_padding_mask: Tensor | None = None, attn_mask: Tensor | None = None,
                is_causal: bool = False, need_weights: bool = False, cache: KVCache | None = None,
                cross_cache: KVCache | None = None, layer: int = 0,
                rotary: RotaryEmbedding | None = None) -> tuple[Tensor, Tensor | None, Tensor | None]:
        """Run the block.

        Args:
            x: (B, T, D).
            memory: encoder output (B, S_m, D) for cross-attention; may be None once
                ``cross_cache`` holds this layer's keys/values.
            key_padding_mask: (B, S) bool, True = real token, over the self-attention keys
                (including cached ones).
            memory_padding_mask: (B, S_m) bool, True = real token.
            attn_mask: self-attention mask (T, S) or (B, T, S), bool True = allowed, or float.
            is_causal: causal self-attention (query i sees keys j <= i + S - T).
            need_weights: return the attention weights (B, h, T, S) and (B, h, T, S_m).
            cache: :class:`KVCache` for self-attention (decoding).
            cross_cache: :class:`KVCache` for cross-attention's keys/values of the memory.
            layer: this block's index in the caches.
            rotary: a :class:`RotaryEmbedding` for the self-attention.

        Returns:
            ``(x (B, T, D), self-attention weights or None, cross-attention weights or None)``.
        """
        cross_w = None

        def self_attention(h: Tensor) -> tuple[Tensor, Tensor | None]:
            return self.self_attn(h, key_padding_mask=key_padding_mask, attn_mask=attn_mask, is_causal=is_causal,
                                  need_weights=need_weights, cache=cache, layer=layer, rotary=rotary)

        def cross_attention(h: Tensor) -> tuple[Tensor, Tensor | None]:
            return self.cross_attn(h, memory, key_padding_mask=memory_padding_mask, need_weights=need_weights,
                                   cache=cross_cache, layer=layer, static_kv=True)

        if self.has_cross and memory is None and (cross_cache is None or cross_cache.layers[layer] is None):
            raise ValueError("a cross-attention block needs memory= (the encoder output), or a cross_cache "
                             "that already holds this layer's keys/values")
        if not self.has_cross and memory is not None:
            raise ValueError("memory= given to a block without cross-attention; build it with cross_attention=True")

        drop = self.dropout if self._use_dropout else _identity
        if self.norm_first:
            h, self_w = self_attention(self.norm1(x))
            x = x + drop(h)
            if self.has_cross:
                h, cross_w = cross_attention(self.norm_cross(x))
                x = x + drop(h)
            x = x + drop(self.ff(self.norm2(x)))
        else:
            h, self_w = self_attention(x)
            x = self.norm1(x + drop(h))
            if self.has_cross:
                h, cross_w = cross_attention(x)
                x = self.norm_cross(x + drop(h))
            x = self.norm2(x + drop(self.ff(x)))
        return x, self_w, cross_w


def _identity(x: Tensor) -> Tensor:
    return x
