"""Scaled dot-product and multi-head attention, masks and a key/value cache for decoding.

    A. Vaswani, N. Shazeer, N. Parmar, J. Uszkoreit, L. Jones, A. N. Gomez, L. Kaiser, I. Polosukhin,
    "Attention is all you need", NeurIPS 2017, https://arxiv.org/abs/1706.03762 (section 3.2)

Scaled dot-product attention (eq. 1) of T queries over S keys/values of d dimensions::

    Attention(Q, K, V) = softmax(Q K^T / sqrt(d) + M) V            # Q (T, d), K (S, d), V (S, d) -> (T, d)

where the mask M is 0 where query i may attend to key j and -inf elsewhere: padding keys are
hidden from every query, and in a decoder query i only sees keys j <= i ("causal"; with a
key/value cache of S - T earlier tokens, j <= i + S - T). Multi-head attention (section 3.2.2)
runs h such attentions side by side on d = D / h dimensional projections and mixes them::

    head_i = Attention(Q W_i^Q, K W_i^K, V W_i^V)                   # W_i^Q, W_i^K, W_i^V (D, d)
    MultiHead(Q, K, V) = Concat(head_1, ..., head_h) W^O             # W^O (D, D)

The h projections of each of Q, K and V are one (D, D) linear layer (``q_proj``, ``k_proj``,
``v_proj``) whose output is split into heads; ``out_proj`` is W^O. A self-attention-only layer
may hold the three as one (3D, D) layer instead (``packed=True``: ``qkv_proj``, GPT-2's
``c_attn``), which saves a weight concatenation each step and gives the optimizer one tensor
instead of three.

Two implementations give the same numbers: ``impl="math"`` is :func:`scaled_dot_product_attention`
below, the equation written out (and the one that returns the attention weights), and
``impl="fast"`` calls :func:`torch.nn.functional.scaled_dot_product_attention` (fused kernels).
:class:`KVCache` keeps each layer's keys and values during autoregressive decoding so that each
new token costs one query against the cache instead of recomputing the whole prefix.

Mask convention: boolean masks are True where attention is ALLOWED (``True`` = a real token in a
key padding mask), as in ``F.scaled_dot_product_attention`` -- the opposite of
``nn.MultiheadAttention``'s ``key_padding_mask`` / boolean ``attn_mask``, where True means ignore.

Deviations from the paper:
    - A query whose keys are all masked (a padding query in a causal decoder with left padding,
      say) gets zero attention weights and a zero output instead of the NaN that softmax over
      an all -inf row gives.
    - The returned attention weights are those before attention dropout (what one wants to plot);
      ``nn.MultiheadAttention`` returns them after dropout. Attention dropout (``dropout``; the
      paper has none, BERT and GPT-2 use 0.1) is applied only in training mode.
    - Biases on the projections (``bias=True``) as in BERT, GPT-2 and ``nn.MultiheadAttention``;
      the paper's projections are plain matrices (``bias=False``).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

if TYPE_CHECKING:
    from archlab.models.transformer.layers import RotaryEmbedding

__all__ = ["KVCache", "MultiHeadAttention", "causal_mask", "padding_mask", "scaled_dot_product_attention"]


def causal_mask(T: int, S: int | None = None, device: torch.device | str | None = None) -> Tensor:
    """Boolean (T, S) mask, True where query i may see key j, i.e. j <= i + (S - T).

    With S == T this is the lower triangle; with S > T the T queries are the last T of the S
    positions (decoding with S - T cached tokens in front).

    Args:
        T: number of queries.
        S: number of keys (default T); must be >= T.
        device: where to create the mask.
    """
    S = T if S is None else S
    if S < T:
        raise ValueError(f"causal_mask: S={S} keys < T={T} queries; the queries must be the last T of "
                         f"the S positions (pass S >= T)")
    return torch.ones(T, S, dtype=torch.bool, device=device).tril(diagonal=S - T)  # (T, S)


def padding_mask(ids: Tensor, pad_id: int) -> Tensor:
    """Boolean (B, S) key padding mask of token ids (B, S): True = real token, False = ``pad_id``."""
    return ids != pad_id


def scaled_dot_product_attention(q: Tensor, k: Tensor, v: Tensor, *, attn_mask: Tensor | None = None,
                                 dropout_p: float = 0.0, is_causal: bool = False, scale: float | None = None,
                                 training: bool = False) -> tuple[Tensor, Tensor]:
    """Attention written out: ``softmax(q k^T * scale + mask) v`` (Vaswani et al. eq. 1).

    Args:
        q: queries (B, h, T, d) (any leading dimensions work).
        k: keys (B, h, S, d).
        v: values (B, h, S, d_v).
        attn_mask: boolean mask broadcastable to (B, h, T, S), True = may attend; or a float mask
            added to the scores (-inf = may not attend).
        dropout_p: dropout on the attention weights, applied only when ``training``.
        is_causal: query i sees keys j <= i + (S - T) (combined with ``attn_mask`` if both given),
            so it also works for the last T queries against a key/value cache.
        scale: score scale, default 1 / sqrt(d).
        training: whether to apply ``dropout_p``.

    Returns:
        ``(out, weights)``: out (B, h, T, d_v) and the attention weights (B, h, T, S) before
        dropout. Rows whose keys are all masked have zero weights and zero output, not NaN.
    """
    T, S = q.shape[-2], k.shape[-2]
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    scores = (q @ k.transpose(-2, -1)) * scale  # (B, h, T, d) @ (B, h, d, S) -> (B, h, T, S)
    if is_causal:
        scores = scores.masked_fill(~causal_mask(T, S, device=q.device), float("-inf"))
    if attn_mask is not None:
        if attn_mask.dtype == torch.bool:
            scores = scores.masked_fill(~attn_mask, float("-inf"))
        else:
            scores = scores + attn_mask
    # A row of -inf only would give softmax 0/0 = NaN: give it finite scores, then zero weights.
    fully_masked = torch.isneginf(scores).all(dim=-1, keepdim=True)  # (B, h, T, 1)
    scores = scores.masked_fill(fully_masked, 0.0)
    # Softmax in float32 for half-precision inputs (as the fused kernels do internally).
    low = q.dtype in (torch.float16, torch.bfloat16)
    weights = torch.softmax(scores, dim=-1, dtype=torch.float32 if low else None).to(q.dtype)  # (B, h, T, S)
    weights = weights.masked_fill(fully_masked, 0.0)
    dropped = F.dropout(weights, dropout_p, training=True) if (training and dropout_p > 0) else weights
    return dropped @ v, weights  # (B, h, T, S) @ (B, h, S, d_v) -> (B, h, T, d_v)


class KVCache:
    """Keys and values of every attention layer of a model, grown one decoding step at a time.

    Make one per model and per generation (``KVCache(num_layers)``) and pass it with ``layer=i``
    to layer i's attention. ``layers[i]`` is ``None`` or ``(k, v)``, each (B, h, S, d).
    Self-attention appends the new tokens' keys/values (:meth:`update`); cross-attention
    (``static_kv=True``) stores the encoder memory's keys/values once and reuses them.

    Appending concatenates (O(S) copies per step), which is simple and fast enough for the
    sequence lengths this library decodes.
    """

    def __init__(self, num_layers: int) -> None:
        if num_layers < 1:
            raise ValueError(f"KVCache: num_layers must be >= 1, got {num_layers}")
        self.layers: list[tuple[Tensor, Tensor] | None] = [None] * num_layers

    def _check(self, layer: int) -> None:
        if not 0 <= layer < len(self.layers):
            raise IndexError(f"KVCache has {len(self.layers)} layers, got layer={layer}; "
                             f"create it with KVCache(num_layers) for the model's number of layers")

    def seq_len(self, layer: int = 0) -> int:
        """Number of tokens cached in ``layer`` (0 if empty)."""
        self._check(layer)
        kv = self.layers[layer]
        return 0 if kv is None else kv[0].shape[-2]

    @property
    def length(self) -> int:
        """Tokens cached so far (in layer 0): the position of the next token."""
        return self.seq_len(0)

    def update(self, layer: int, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Append ``k``, ``v`` (B, h, T, d) to layer ``layer`` and return all its keys/values (B, h, S, d)."""
        self._check(layer)
        prev = self.layers[layer]
        if prev is not None:
            k = torch.cat([prev[0], k], dim=-2)  # (B, h, S_old + T, d)
            v = torch.cat([prev[1], v], dim=-2)
        self.layers[layer] = (k, v)
        return k, v

    def reorder(self, rows: Tensor) -> None:
        """Keep batch rows ``rows`` (index_select on dim 0), e.g. the surviving beams in beam search."""
        self.layers = [None if kv is None else (kv[0].index_select(0, rows), kv[1].index_select(0, rows))
                       for kv in self.layers]

    def reset(self) -> None:
        """Forget everything cached."""
        self.layers = [None] * len(self.layers)

    def __repr__(self) -> str:
        return f"KVCache(num_layers={len(self.layers)}, length={self.length})"


def _merge_masks(T: int, S: int, *, key_padding_mask: Tensor | None, attn_mask: Tensor | None,
                 is_causal: bool, device: torch.device, dtype: torch.dtype) -> Tensor | None:
    """One mask broadcastable to (B, h, T, S): boolean (True = allowed), or float if ``attn_mask`` is."""
    mask: Tensor | None = None
    if is_causal and T > 1:
        mask = causal_mask(T, S, device=device)[None, None]  # (1, 1, T, S)
    if key_padding_mask is not None:
        if key_padding_mask.dtype != torch.bool:
            raise TypeError("key_padding_mask must be a bool tensor (B, S), True = real token "
                            "(archlab.models.transformer.padding_mask(ids, pad_id) makes one)")
        if key_padding_mask.dim() != 2 or key_padding_mask.shape[-1] != S:
            raise ValueError(f"key_padding_mask must be (B, S={S}) (covering cached keys too), "
                             f"got {tuple(key_padding_mask.shape)}")
        kpm = key_padding_mask[:, None, None, :]  # (B, 1, 1, S)
        mask = kpm if mask is None else mask & kpm
    if attn_mask is not None:
        if attn_mask.dim() == 2:
            am = attn_mask[None, None]  # (1, 1, T, S)
        elif attn_mask.dim() == 3:
            am = attn_mask[:, None]  # (B, 1, T, S)
        elif attn_mask.dim() == 4:
            am = attn_mask  # (B, h, T, S)
        else:
            raise ValueError(f"attn_mask must be (T, S), (B, T, S) or (B, h, T, S), got {tuple(attn_mask.shape)}")
        if am.dtype == torch.bool:
            mask = am if mask is None else mask & am
        else:
            am = am.to(dtype)
            if mask is not None:
                am = am.masked_fill(~mask, float("-inf"))
            mask = am
    return mask


class MultiHeadAttention(nn.Module):
    """Multi-head attention (Vaswani et al. section 3.2.2) with separate q/k/v projections.

    Args:
        embed_dim: model width D (queries and output).
        num_heads: number of heads h; must divide ``embed_dim``.
        dropout: dropout on the attention weights (training only).
        bias: biases on the four projections.
        kdim: width of the keys' input (default ``embed_dim``).
        vdim: width of the values' input (default ``embed_dim``).
        impl: ``"fast"`` (``F.scaled_dot_product_attention``) or ``"math"``
            (:func:`scaled_dot_product_attention`); same results. ``need_weights=True`` always
            uses the math path.
        packed: hold W^Q|W^K|W^V as one (3D, D) layer ``qkv_proj`` (self-attention only).

    Parameters: ``q_proj``, ``k_proj``, ``v_proj`` (or ``qkv_proj`` when packed), ``out_proj``
    (``nn.Linear``). Initialised as ``nn.MultiheadAttention``: Xavier-uniform input projections
    (each (D, D) block on its own when packed), zero biases.
    """

    def __init__(self, embed_dim: int, num_heads: int, *, dropout: float = 0.0, bias: bool = True,
                 kdim: int | None = None, vdim: int | None = None, impl: Literal["fast", "math"] = "fast",
                 packed: bool = False) -> None:
        super().__init__()
        if embed_dim % num_heads != 0:
            raise ValueError(f"embed_dim={embed_dim} must be divisible by num_heads={num_heads} "
                             f"(each head gets embed_dim // num_heads dimensions)")
        if impl not in ("fast", "math"):
            raise ValueError(f"impl must be 'fast' or 'math', got {impl!r}")
        if packed and (kdim not in (None, embed_dim) or vdim not in (None, embed_dim)):
            raise ValueError("packed=True is for self-attention (keys and values of width embed_dim); "
                             "leave kdim/vdim unset or use packed=False")
        self.embed_dim, self.num_heads, self.head_dim = embed_dim, num_heads, embed_dim // num_heads
        self.dropout, self.impl, self.packed = dropout, impl, packed
        if packed:
            self.qkv_proj = nn.Linear(embed_dim, 3 * embed_dim, bias=bias)
        else:
            self.q_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
            self.k_proj = nn.Linear(kdim or embed_dim, embed_dim, bias=bias)
            self.v_proj = nn.Linear(vdim or embed_dim, embed_dim, bias=bias)
        self.out_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self.packed:
            with torch.no_grad():
                for block in self.qkv_proj.weight.split(self.embed_dim):  # (D, D) views: W^Q, W^K, W^V
                    nn.init.xavier_uniform_(block)
            projs = [self.qkv_proj, self.out_proj]
        else:
            for proj in (self.q_proj, self.k_proj, self.v_proj):
                nn.init.xavier_uniform_(proj.weight)
            projs = [self.q_proj, self.k_proj, self.v_proj, self.out_proj]
        for proj in projs:
            if proj.bias is not None:
                nn.init.zeros_(proj.bias)

    def _heads(self, x: Tensor) -> Tensor:
        B, L, _ = x.shape
        return x.view(B, L, self.num_heads, self.head_dim).transpose(1, 2)  # (B, L, D) -> (B, h, L, d)

    def forward(self, query: Tensor, key: Tensor | None = None, value: Tensor | None = None, *,
                key_padding_mask: Tensor | None = None, attn_mask: Tensor | None = None,
                is_causal: bool = False, need_weights: bool = False, cache: KVCache | None = None,
                layer: int = 0, rotary: RotaryEmbedding | None = None,
                static_kv: bool = False) -> tuple[Tensor, Tensor | None]:
        """Attend from ``query`` to ``key``/``value``.

        Args:
            query: (B, T, D).
            key: (B, S, kdim); default ``query`` (self-attention).
            value: (B, S, vdim); default ``key``.
            key_padding_mask: (B, S) bool, True = real token. With a cache, S counts the cached
                keys too (self-attention) or the memory's length (cross-attention).
            attn_mask: (T, S), (B, T, S) or (B, h, T, S); bool (True = allowed) or float (added).
            is_causal: query i sees keys j <= i + (S - T) (works with a cache).
            need_weights: also return the attention weights (B, h, T, S) (math path).
            cache: a :class:`KVCache`. Self-attention appends this call's keys/values to
                ``cache.layers[layer]`` and attends over all of them; with ``static_kv=True``
                (cross-attention) the keys/values are computed from ``key``/``value`` on the first
                call, stored, and reused afterwards (``key`` may then be None).
            layer: this layer's index in ``cache``.
            rotary: a ``RotaryEmbedding`` applied to q and k at positions ``cache.seq_len(layer)``
                onwards (0 without cache); not applied when ``static_kv``.
            static_kv: the keys/values do not change between calls (cross-attention over a memory).

        Returns:
            ``(out (B, T, D), weights (B, h, T, S) or None)``.
        """
        if query.dim() != 3 or query.shape[-1] != self.embed_dim:
            raise ValueError(f"query must be (B, T, {self.embed_dim}), got {tuple(query.shape)}")
        B, T, D = query.shape
        cached = cache.layers[layer] if (cache is not None and static_kv) else None
        self_attention = cached is None and not static_kv and value is None and (key is None or key is query)
        if self.packed:
            if not self_attention:
                raise ValueError("this attention layer is packed (qkv_proj): self-attention only; "
                                 "call it with the query alone, or build it with packed=False for cross-attention")
            q, k, v = (self._heads(t) for t in self.qkv_proj(query).split(D, dim=-1))  # (B, h, T, d) each
        fused = self_attention and not self.packed and self.k_proj.in_features == D and self.v_proj.in_features == D
        if fused:  # self-attention: one (D -> 3D) product instead of three (same weights, same result)
            w = torch.cat([self.q_proj.weight, self.k_proj.weight, self.v_proj.weight])  # (3D, D)
            b = None if self.q_proj.bias is None else torch.cat([self.q_proj.bias, self.k_proj.bias,
                                                                 self.v_proj.bias])
            q, k, v = (self._heads(t) for t in F.linear(query, w, b).split(D, dim=-1))  # (B, h, T, d) each
        elif not self.packed:
            q = self._heads(self.q_proj(query))  # (B, h, T, d)
        if cached is not None:
            k, v = cached  # (B, h, S, d), computed on the first call
        else:
            if not (fused or self.packed):
                if key is None:
                    if static_kv:
                        raise ValueError("static_kv=True needs key (the memory) on the first call, "
                                         "when the cache does not hold this layer's keys/values yet")
                    key = query
                value = key if value is None else value
                k = self._heads(self.k_proj(key))  # (B, h, S_new, d)
                v = self._heads(self.v_proj(value))  # (B, h, S_new, d)
            if rotary is not None and not static_kv:
                offset = cache.seq_len(layer) if cache is not None else 0
                q, k = rotary.apply(q, k, offset=offset)
            if cache is not None:
                k, v = cache.update(layer, k, v)  # (B, h, S, d): cached + new
        S = k.shape[-2]
        dropout_p = self.dropout if self.training else 0.0

        if need_weights or self.impl == "math":
            mask = _merge_masks(T, S, key_padding_mask=key_padding_mask, attn_mask=attn_mask,
                                is_causal=is_causal, device=q.device, dtype=q.dtype)
            out, weights = scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p,
                                                        training=self.training)
        else:
            weights = None
            if is_causal and T == S and key_padding_mask is None and attn_mask is None:
                out = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p, is_causal=True)
            else:
                mask = _merge_masks(T, S, key_padding_mask=key_padding_mask, attn_mask=attn_mask,
                                    is_causal=is_causal, device=q.device, dtype=q.dtype)
                fully_masked = None
                if mask is not None:
                    # Rows with no allowed key: let them attend to everything, zero their output
                    # afterwards, so no kernel ever sees an all -inf row (NaN on some backends).
                    if mask.dtype == torch.bool:
                        fully_masked = ~mask.any(dim=-1, keepdim=True)  # (B|1, h|1, T, 1)
                        mask = mask | fully_masked
                    else:
                        fully_masked = torch.isneginf(mask).all(dim=-1, keepdim=True)
                        mask = mask.masked_fill(fully_masked, 0.0)
                out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p)
                if fully_masked is not None:
                    out = out.masked_fill(fully_masked, 0.0)
        out = out.transpose(1, 2).reshape(B, T, D)  # (B, h, T, d) -> (B, T, D)
        return self.out_proj(out), (weights if need_weights else None)

    def extra_repr(self) -> str:
        return (f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, dropout={self.dropout}, impl={self.impl!r}"
                + (", packed=True" if self.packed else ""))
