"""An encoder-only Transformer text classifier: token embeddings + positions -> encoder -> pooling -> Linear.

    A. Vaswani et al., "Attention is all you need", NeurIPS 2017. https://arxiv.org/abs/1706.03762
    J. Devlin, M.-W. Chang, K. Lee, K. Toutanova, "BERT: Pre-training of Deep Bidirectional
    Transformers for Language Understanding", NAACL 2019. https://arxiv.org/abs/1810.04805
    J. Su, Y. Lu, S. Pan, A. Murtadha, B. Wen, Y. Liu, "RoFormer: Enhanced Transformer with Rotary
    Position Embedding", 2021. https://arxiv.org/abs/2104.09864

A sentence of token ids x_1..x_n (right-padded with ``pad_id`` to the batch length T) is embedded,
given positions, read by L bidirectional self-attention blocks in which padding is masked as a
key, pooled into one vector and mapped to class logits::

    h_0 = dropout(sqrt(d) E[x] + P)                        # (B, T, d); with "cls" [CLS] first: (B, 1 + T, d)
    h_l = Block(h_{l-1}),  l = 1..L                        # softmax(Q K^T / sqrt(d_k) + mask) V per head
    s   = h_L[CLS]            (pooling "cls", BERT)        # (B, d)
        = (1/n) sum_{t<=n} h_L[t]  (pooling "mean")
    logits = W dropout(s) + b                              # (B, K)

Positions (``pos``), the ablation of Vaswani et al.'s Section 3.5 / Table 3 (E):

    sinusoidal  P = PE(pos) added to the embeddings (Vaswani et al.)
    learned     P = a learned table of max_len (+1 for [CLS]) rows (BERT)
    rotary      no additive P: queries and keys of every layer are rotated by their position
                (RoFormer), so attention scores depend on relative offsets only
    none        no position information: the encoder is permutation-equivariant and, with mean
                pooling, the classifier sees a bag of words

Blocks are post-LN (``x = LN(x + Sublayer(x))``, Vaswani et al. and BERT) with
``norm_first=False``, pre-LN (``x + Sublayer(LN(x))``, Xiong et al. 2020) with a final LayerNorm
with ``norm_first=True`` (the registered variants).
``attention_maps(x)`` returns every layer's attention weights for plots.

Registered variants (pre-LN, mean pooling, sinusoidal positions): ``transformer_classifier``
(2 layers, d 128, 4 heads, d_ff 256) and ``transformer_classifier_small`` (4 layers, d 256,
4 heads, d_ff 512).

Deviations from the paper:
    - The model is a small encoder trained from scratch on the task, not a pre-trained BERT:
      there is no masked-LM pre-training, no segment embeddings and no pooler (BERT's tanh layer
      on [CLS]); the head is one linear layer on the pooled vector.
    - ``pooling`` ["mean"]: a masked mean over the real tokens (as Sentence-BERT); "cls" prepends
      a learned [CLS] vector and reads its final state (BERT).
    - ``norm_first`` [False; True in the registered variants]: pre-LN blocks (Xiong et al. 2020,
      https://arxiv.org/abs/2002.04745) train at a constant learning rate without warmup; on the
      sentiment set (d 64, 2 layers, Adam 3e-3, no warmup, batches of 32) post-LN reached 88%
      validation accuracy after 300 steps and pre-LN 97%. ``model.norm_first=false`` gives the
      papers' post-LN block.
    - ``activation`` ["gelu"] is BERT's; Vaswani et al. used ReLU (``activation=relu``).
    - ``scale_embeddings`` [True]: the embeddings are multiplied by sqrt(d) (Vaswani et al.
      Section 3.4; BERT does not) and initialised N(0, d^-1/2); the [CLS] vector is initialised
      N(0, 1), the scale of a scaled embedding.
    - Dropout (``dropout``, 0.1) is on the embedding + position sums, on each sub-layer's output
      and before the head; ``attention_dropout`` on the attention weights is 0 by default.
    - Block weights are Xavier-uniform with zero biases (fairseq's choice; the papers do not give one).
    - A row that is all padding (an empty sentence) attends to nothing: with mean pooling its
      pooled vector is 0 and its logits are the head's bias.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor, nn

from archlab.models.transformer.layers import (
    LearnedPositionalEmbedding,
    RotaryEmbedding,
    SinusoidalPositionalEncoding,
    TransformerBlock,
)
from archlab.registry import register_model

__all__ = ["TransformerClassifier", "TransformerClassifierConfig"]

Positions = Literal["sinusoidal", "learned", "rotary", "none"]


@dataclass
class TransformerClassifierConfig:
    """Options of :class:`TransformerClassifier`.

    Attributes:
        vocab_size: number of token ids (filled from the dataset's vocab).
        pad_id: the padding id (filled from the dataset; padding is on the right).
        num_classes: number of classes (filled from the dataset).
        max_len: the dataset's padded length: the longest input the position table covers, and
            the length of ``example_input``.
        dim: model width d.
        num_layers: encoder blocks L.
        num_heads: attention heads (d_k = d / heads).
        ff_dim: hidden width of the feed-forward networks.
        dropout: on the embeddings, on each sub-layer's output and before the head.
        attention_dropout: on the attention weights.
        activation: of the feed-forward networks: ``gelu``, ``gelu_tanh`` or ``relu``.
        norm_first: pre-LN blocks and a final LayerNorm, instead of post-LN.
        eps: LayerNorm epsilon.
        pos: ``sinusoidal``, ``learned``, ``rotary`` or ``none`` (see the module docstring).
        pooling: ``mean`` (masked mean of the real tokens) or ``cls`` (a learned [CLS] token).
        scale_embeddings: multiply the embeddings by sqrt(d).
        impl: attention kernels: ``fast`` or ``math`` (written out).
    """

    vocab_size: int = 1000
    pad_id: int = 0
    num_classes: int = 2
    max_len: int = 64
    dim: int = 128
    num_layers: int = 2
    num_heads: int = 4
    ff_dim: int = 256
    dropout: float = 0.1
    attention_dropout: float = 0.0
    activation: Literal["gelu", "gelu_tanh", "relu"] = "gelu"
    norm_first: bool = False
    eps: float = 1e-5
    pos: Positions = "sinusoidal"
    pooling: Literal["mean", "cls"] = "mean"
    scale_embeddings: bool = True
    impl: Literal["fast", "math"] = "fast"

    # Small sizes for the model walk in tests/models/test_all_models.py.
    TINY: ClassVar[dict[str, Any]] = {"vocab_size": 40, "dim": 16, "num_heads": 2, "ff_dim": 32, "max_len": 12}

    def __post_init__(self) -> None:
        if self.vocab_size < 2 or not 0 <= self.pad_id < self.vocab_size:
            raise ValueError(f"vocab_size must be >= 2 and pad_id in [0, vocab_size), got {self.vocab_size}, "
                             f"{self.pad_id}")
        if self.num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {self.num_classes}")
        if self.dim % self.num_heads:
            raise ValueError(f"dim ({self.dim}) must be divisible by num_heads ({self.num_heads})")
        if self.pos == "rotary" and (self.dim // self.num_heads) % 2:
            raise ValueError(f"pos='rotary' rotates pairs of features: the head width dim / num_heads "
                             f"({self.dim // self.num_heads}) must be even")
        if min(self.num_layers, self.ff_dim, self.max_len) < 1:
            raise ValueError("num_layers, ff_dim and max_len must be >= 1")
        for name in ("dropout", "attention_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)}")


class TransformerClassifier(nn.Module):
    """Embeddings + positions -> Transformer encoder -> mean or [CLS] pooling -> dropout -> Linear.

    Args:
        cfg: a :class:`TransformerClassifierConfig`.

    Shapes:
        x: (B, T) token ids, right-padded with ``pad_id``, T <= max_len. Returns logits
        (B, num_classes). ``attention_maps(x)``: one (B, heads, T', T') tensor per layer, with
        T' = T + 1 when ``pooling="cls"`` (the [CLS] token is position 0).
    """

    task: ClassVar[str] = "text_classification"

    def __init__(self, cfg: TransformerClassifierConfig) -> None:
        super().__init__()
        self.config = cfg
        d = cfg.dim
        n_pos = cfg.max_len + (1 if cfg.pooling == "cls" else 0)
        self.embedding = nn.Embedding(cfg.vocab_size, d, padding_idx=cfg.pad_id)
        self.cls_token = nn.Parameter(torch.randn(1, 1, d)) if cfg.pooling == "cls" else None
        self.pos = None
        if cfg.pos == "sinusoidal":
            self.pos = SinusoidalPositionalEncoding(n_pos, d)
        elif cfg.pos == "learned":
            self.pos = LearnedPositionalEmbedding(n_pos, d)
        self.rotary = RotaryEmbedding(d // cfg.num_heads) if cfg.pos == "rotary" else None
        self.drop = nn.Dropout(cfg.dropout)
        self.layers = nn.ModuleList([
            TransformerBlock(d, cfg.num_heads, cfg.ff_dim, dropout=cfg.dropout, attention_dropout=cfg.attention_dropout,
                             norm_first=cfg.norm_first, eps=cfg.eps, activation=cfg.activation, impl=cfg.impl)
            for _ in range(cfg.num_layers)])
        self.norm = nn.LayerNorm(d, eps=cfg.eps) if cfg.norm_first else nn.Identity()
        self.head = nn.Linear(d, cfg.num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        for sub in self.layers.modules():
            if isinstance(sub, nn.Linear):
                nn.init.xavier_uniform_(sub.weight)
                if sub.bias is not None:
                    nn.init.zeros_(sub.bias)
        d = self.config.dim
        nn.init.normal_(self.embedding.weight, std=d**-0.5)
        with torch.no_grad():
            self.embedding.weight[self.config.pad_id].zero_()
        if isinstance(self.pos, LearnedPositionalEmbedding):
            nn.init.normal_(self.pos.weight, std=d**-0.5)

    def example_input(self, batch_size: int = 1, seed: int = 0) -> Tensor:
        """Random token ids (B, max_len), right-padded to varied lengths (row 0 full length)."""
        cfg = self.config
        g = torch.Generator().manual_seed(seed)
        t = cfg.max_len
        low = 4 if cfg.vocab_size > 5 else 0  # skip the special tokens when there is room
        ids = torch.randint(low, cfg.vocab_size, (batch_size, t), generator=g)
        ids[ids == cfg.pad_id] = (cfg.pad_id + 1) % cfg.vocab_size
        lengths = torch.randint(1, t + 1, (batch_size,), generator=g)
        lengths[0] = t
        ids[torch.arange(t)[None, :] >= lengths[:, None]] = cfg.pad_id
        return ids.to(self.embedding.weight.device)

    def encode(self, x: Tensor, need_weights: bool = False) -> tuple[Tensor, Tensor, list[Tensor]]:
        """The encoder's output (B, T', d), its mask (B, T') (True = real token, [CLS] included)
        and, with ``need_weights``, every layer's attention (B, heads, T', T')."""
        cfg = self.config
        if x.dim() != 2 or x.is_floating_point():
            raise ValueError(f"{type(self).__name__} expects token ids (B, T) of an integer type, got "
                             f"{x.dtype} {tuple(x.shape)}; encode text with the dataset's vocab first")
        if x.shape[1] > cfg.max_len:
            raise ValueError(f"inputs of {x.shape[1]} tokens exceed max_len={cfg.max_len}; cut them or build the "
                             f"model with a larger model.max_len")
        mask = x != cfg.pad_id  # (B, T)
        h = self.embedding(x)  # (B, T, d)
        if cfg.scale_embeddings:
            h = h * math.sqrt(cfg.dim)
        if self.cls_token is not None:
            h = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), h], dim=1)  # (B, 1 + T, d)
            mask = torch.cat([mask.new_ones(x.shape[0], 1), mask], dim=1)  # (B, 1 + T)
        if isinstance(self.pos, SinusoidalPositionalEncoding):
            h = self.pos(h)  # h + PE[:T']
        elif self.pos is not None:
            h = h + self.pos(h.shape[1])  # (B, T', d) + (T', d)
        h = self.drop(h)
        maps = []
        for block in self.layers:
            h, w, _ = block(h, key_padding_mask=mask, need_weights=need_weights, rotary=self.rotary)  # (B, T', d)
            if need_weights:
                maps.append(w)  # (B, heads, T', T')
        return self.norm(h), mask, maps

    def pool(self, h: Tensor, mask: Tensor) -> Tensor:
        """(B, d): the [CLS] state, or the mean of the real tokens' states."""
        if self.config.pooling == "cls":
            return h[:, 0]
        m = mask[:, :, None].to(h.dtype)  # (B, T, 1)
        return (h * m).sum(1) / m.sum(1).clamp_min(1)  # (B, d)

    def forward(self, x: Tensor) -> Tensor:
        h, mask, _ = self.encode(x)  # (B, T', d), (B, T')
        return self.head(self.drop(self.pool(h, mask)))  # (B, K)

    @torch.no_grad()
    def attention_maps(self, x: Tensor) -> list[Tensor]:
        """Every layer's attention weights (B, heads, T', T') for ``x`` (B, T) (T' = T + 1 with [CLS]).

        Rows of real tokens sum to 1 over the real keys (padding keys get 0). Call in eval mode
        for maps without dropout.
        """
        return self.encode(x, need_weights=True)[2]


# ----------------------------------------------------------------------------------------------
# registered variants


@register_model("transformer_classifier", family="transformer", config=TransformerClassifierConfig,
                norm_first=True)
def transformer_classifier(cfg: TransformerClassifierConfig) -> TransformerClassifier:
    """Transformer encoder text classifier: 2 pre-LN layers, d 128, 4 heads, d_ff 256, mean pooling."""
    return TransformerClassifier(cfg)


@register_model("transformer_classifier_small", family="transformer", config=TransformerClassifierConfig,
                norm_first=True, num_layers=4, dim=256, num_heads=4, ff_dim=512)
def transformer_classifier_small(cfg: TransformerClassifierConfig) -> TransformerClassifier:
    """Transformer encoder text classifier: 4 pre-LN layers, d 256, 4 heads, d_ff 512, mean pooling."""
    return TransformerClassifier(cfg)
