"""BERT: a bidirectional Transformer encoder pre-trained by masked language modelling, then fine-tuned.

    J. Devlin, M.-W. Chang, K. Lee, K. Toutanova, "BERT: Pre-training of Deep Bidirectional
    Transformers for Language Understanding", NAACL 2019, https://arxiv.org/abs/1810.04805

Options for three of its descendants (a config switch each, defaults = BERT):

    Z. Lan, M. Chen, S. Goodman, K. Gimpel, P. Sharma, R. Soricut, "ALBERT: A Lite BERT for
    Self-supervised Learning of Language Representations", ICLR 2020, https://arxiv.org/abs/1909.11942
    Y. Liu, M. Ott, N. Goyal, J. Du, M. Joshi, D. Chen, O. Levy, M. Lewis, L. Zettlemoyer,
    V. Stoyanov, "RoBERTa: A Robustly Optimized BERT Pretraining Approach", 2019,
    https://arxiv.org/abs/1907.11692
    V. Sanh, L. Debut, J. Chaumond, T. Wolf, "DistilBERT, a distilled version of BERT: smaller,
    faster, cheaper and lighter", 2019, https://arxiv.org/abs/1910.01108

Token ids x (B, T), right-padded with ``pad_id``, become hidden states (section 3, figure 2)::

    e_t = LN(E_word[x_t] + E_pos[t] + E_type[s_t])                 # (B, T, D); s_t the segment (0 or 1)
    h_0 = dropout(e)
    h_l = PostLN-Block(h_{l-1}),  l = 1..L                         # Vaswani et al.'s encoder block:
        a = LN(h + dropout(MHA(h, h, h; padding keys masked)))
        h_l = LN(a + dropout(W_2 GELU(W_1 a + b_1) + b_2))          # W_1 (D, ff_dim), W_2 (ff_dim, D)
    pooled = tanh(W_p h_L[:, 0] + b_p)                             # the [CLS] position, (B, D)

Heads (section 3.1, 3.2 and appendix A):

* :class:`BertForMaskedLM` (pre-training task 1): ``logits = LN(GELU(W_t h + b_t)) E_word^T + b``
  (B, T, V), the decoder tied to the word embeddings; trained on the 15% chosen tokens only
  (:mod:`archlab.models.transformer.mlm`, :class:`archlab.tasks.mlm.MaskedLMTask`).
* :class:`BertForSequenceClassification`: ``logits = W_c dropout(pooled) + b_c`` (B, K).
* :class:`BertForTokenClassification`: ``logits = W_c dropout(h_L) + b_c`` (B, T, K).

Sizes: BERT-base L=12, D=768, 12 heads, ff 3072 (110M parameters); BERT-large 24/1024/16/4096.
Registered: ``bert_tiny`` (2/128/2 heads, the Turc et al. 2019 "BERT-Tiny" shape), ``bert_mini``
(4/256/4), ``bert_base`` (12/768/12) and ``minilm_l6`` (6/384/12 heads, ff 1536, the shape of
sentence-transformers' all-MiniLM-L6-v2) as sequence classifiers; ``bert_mlm_tiny`` and
``bert_mlm_mini`` as masked language models. ``head="token"`` (or ``"mlm"``) turns any of them
into the other heads. Parameter names differ from Hugging Face's; :mod:`archlab.models.transformer.hf_bert`
converts both ways, and the MiniLM checkpoint gives transformers' hidden states to 1e-5.

Style options (each a config field whose default is BERT's):

* ALBERT: ``embedding_dim`` E < D factorises the embeddings (V x E then a linear E -> D, so the
  table costs V E instead of V D); ``share_layers=True`` applies one block L times (cross-layer
  parameter sharing). The MLM head then maps D -> E before the tied decoder. (ALBERT's
  sentence-order prediction is not implemented.)
* DistilBERT / RoBERTa: ``type_vocab_size=0`` drops the segment embeddings (DistilBERT has none;
  RoBERTa keeps a single, constant one, which is the same function).
* RoBERTa: ``pad_offset_positions=True`` numbers the real tokens pad_id + 1, pad_id + 2, ... and
  gives padding the position pad_id (fairseq's ``make_positions``); ``max_position`` must then
  be at least ``max_len + pad_id + 1`` (RoBERTa's 514 = 512 + 1 + 1).

Deviations from the paper:
    - ``cls_id``: sentences encoded with archlab's own vocab have no ``[CLS]``, so when ``cls_id``
      is set the model prepends that id to every sequence itself (archlab's ``<bos>`` = 2 serves;
      the dataset fills it in for such a vocab) and the heads read or drop that position. The
      default ``cls_id=None`` (also what :func:`~archlab.models.transformer.hf_bert.load_hf_bert`
      sets) expects ``[CLS] ... [SEP]`` in the input already, as a checkpoint's WordPiece
      tokenizer frames it; without either, the pooler reads the first token.
    - ``mask_id=None`` (an archlab vocab has no ``[MASK]``): the masked LM adds one row to the
      word-embedding table for it (id ``vocab_size``); its logits still cover ``vocab_size`` ids.
    - No next-sentence prediction head (RoBERTa showed it unnecessary); segment ids default to 0.
    - The registered variants default to ``max_len=128`` (the paper pre-trains 90% of steps at 128).
    - Initialisation as the paper's code / Hugging Face: normal(0, 0.02) weights, zero biases,
      LayerNorm (1, 0), the padding row of the word embeddings zero.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from archlab.models.transformer.attention import padding_mask
from archlab.models.transformer.layers import TransformerBlock
from archlab.registry import register_model

__all__ = [
    "BertConfig",
    "BertEmbeddings",
    "BertModel",
    "BertOutput",
    "BertForMaskedLM",
    "BertForSequenceClassification",
    "BertForTokenClassification",
    "build_bert",
]

ACTIVATIONS = ("gelu", "gelu_tanh", "relu")


@dataclass
class BertConfig:
    """Options of the BERT models.

    Attributes:
        vocab_size: word-piece (or token) ids V; filled from the dataset.
        pad_id: the padding id: its positions are hidden from attention; filled from the dataset.
        max_len: the dataset's padded length T (``example_input``; checked against ``max_position``).
        num_layers: encoder blocks L.
        num_heads: attention heads; must divide ``embed_dim``.
        embed_dim: hidden size D.
        ff_dim: feed-forward inner width (4 D in the paper).
        dropout: on the embeddings, after attention and after the feed-forward (and the classifier).
        attention_dropout: on the attention weights.
        eps: LayerNorm epsilon.
        type_vocab_size: segment embeddings (2: sentence A/B); 0 = none (DistilBERT, RoBERTa).
        max_position: learned positions (512).
        activation: feed-forward nonlinearity: ``gelu`` (exact, BERT), ``gelu_tanh``, ``relu``.
        num_classes: outputs of the sequence/token classifier; filled from the dataset.
        head: ``sequence`` (classifier on [CLS]), ``token`` (classifier per token) or ``mlm``.
        embedding_dim: ALBERT's factorised embedding width E (None = ``embed_dim``).
        share_layers: ALBERT's cross-layer sharing: one block applied ``num_layers`` times.
        pad_offset_positions: RoBERTa's position ids, starting at ``pad_id + 1``.
        cls_id: an id prepended to every sequence as ``[CLS]`` (None: the input has it, or none).
        mask_id: the ``[MASK]`` id for the masked LM (None: an extra id ``vocab_size`` is added).
        impl: attention implementation, ``fast`` (fused kernel) or ``math`` (written out).
    """

    vocab_size: int = 30522
    pad_id: int = 0
    max_len: int = 128
    num_layers: int = 12
    num_heads: int = 12
    embed_dim: int = 768
    ff_dim: int = 3072
    dropout: float = 0.1
    attention_dropout: float = 0.1
    eps: float = 1e-12
    type_vocab_size: int = 2
    max_position: int = 512
    activation: Literal["gelu", "gelu_tanh", "relu"] = "gelu"
    num_classes: int | None = 2
    head: Literal["sequence", "token", "mlm"] = "sequence"
    embedding_dim: int | None = None
    share_layers: bool = False
    pad_offset_positions: bool = False
    cls_id: int | None = None
    mask_id: int | None = None
    impl: Literal["fast", "math"] = "fast"

    TINY: ClassVar[dict[str, Any]] = {
        "vocab_size": 50, "max_len": 12, "num_layers": 1, "num_heads": 2, "embed_dim": 16, "ff_dim": 32,
        "max_position": 16,
    }  # fmt: skip

    def __post_init__(self) -> None:
        if self.vocab_size < 2:
            raise ValueError(f"vocab_size must be >= 2, got {self.vocab_size}")
        for name in ("num_layers", "num_heads", "embed_dim", "ff_dim", "max_len", "max_position"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.embed_dim % self.num_heads:
            raise ValueError(f"num_heads {self.num_heads} must divide embed_dim {self.embed_dim}")
        for name in ("dropout", "attention_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)}")
        if self.type_vocab_size < 0:
            raise ValueError(f"type_vocab_size must be >= 0 (0 = no segment embeddings), got {self.type_vocab_size}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {self.activation!r}")
        if self.head not in ("sequence", "token", "mlm"):
            raise ValueError(f"head must be 'sequence', 'token' or 'mlm', got {self.head!r}")
        if self.head != "mlm" and (self.num_classes is None or self.num_classes < 1):
            raise ValueError(f"a {self.head} classifier needs num_classes >= 1, got {self.num_classes}")
        if self.embedding_dim is not None and self.embedding_dim < 1:
            raise ValueError(f"embedding_dim must be >= 1 or None, got {self.embedding_dim}")
        for name in ("pad_id", "cls_id", "mask_id"):
            value = getattr(self, name)
            if value is not None and not 0 <= value < self.vocab_size:
                raise ValueError(f"{name} {value} is not an id of the vocabulary of {self.vocab_size}")
        need = self.positions_needed(self.max_len)
        if need > self.max_position:
            raise ValueError(
                f"max_len {self.max_len} needs {need} positions but max_position is {self.max_position}; "
                f"raise model.max_position to {need} or shorten the sequences (data.max_len)"
            )

    def positions_needed(self, length: int) -> int:
        """Position embeddings a sequence of ``length`` input ids uses (the [CLS] and RoBERTa offsets)."""
        length += self.cls_id is not None
        return length + (self.pad_id + 1 if self.pad_offset_positions else 0)

    @property
    def embedding_width(self) -> int:
        """E: the width of the embedding tables (``embedding_dim`` or ``embed_dim``)."""
        return self.embedding_dim or self.embed_dim

    @property
    def table_size(self) -> int:
        """Rows of the word-embedding table: ``vocab_size``, plus one for an added ``[MASK]``."""
        return self.vocab_size + (self.head == "mlm" and self.mask_id is None)


@dataclass
class BertOutput:
    """Everything :meth:`BertModel.encode` computes.

    Attributes:
        last_hidden_state: h_L (B, T, D) (T includes a prepended [CLS]).
        pooler_output: tanh(W_p h_L[:, 0] + b_p) (B, D), or None without a pooler.
        hidden_states: (h_0, ..., h_L), each (B, T, D), when asked for.
        attentions: every layer's attention weights (B, heads, T, T), when asked for.
        mask: (B, T) bool, True = real token.
    """

    last_hidden_state: Tensor
    pooler_output: Tensor | None = None
    hidden_states: tuple[Tensor, ...] | None = None
    attentions: tuple[Tensor, ...] | None = None
    mask: Tensor | None = None


class BertEmbeddings(nn.Module):
    """Word + position (+ segment) embeddings, LayerNorm, dropout (+ ALBERT's E -> D projection)."""

    def __init__(self, cfg: BertConfig) -> None:
        super().__init__()
        E = cfg.embedding_width
        self.pad_id, self.pad_offset_positions = cfg.pad_id, cfg.pad_offset_positions
        self.word_embeddings = nn.Embedding(cfg.table_size, E, padding_idx=cfg.pad_id)
        self.position_embeddings = nn.Embedding(cfg.max_position, E)
        self.token_type_embeddings = nn.Embedding(cfg.type_vocab_size, E) if cfg.type_vocab_size else None
        self.norm = nn.LayerNorm(E, eps=cfg.eps)
        self.dropout = nn.Dropout(cfg.dropout)
        self.projection = nn.Linear(E, cfg.embed_dim) if E != cfg.embed_dim else None

    def position_ids(self, x: Tensor, mask: Tensor) -> Tensor:
        """(B, T) positions: 0..T-1, or RoBERTa's pad_id + 1 + (index among the real tokens)."""
        if self.pad_offset_positions:
            m = mask.long()  # (B, T)
            return torch.cumsum(m, dim=1) * m + self.pad_id  # (B, T)
        return torch.arange(x.shape[1], device=x.device).expand_as(x)  # (B, T)

    def forward(self, x: Tensor, mask: Tensor, token_type_ids: Tensor | None = None,
                position_ids: Tensor | None = None) -> Tensor:
        n_pos = self.position_embeddings.num_embeddings
        last = x.shape[1] - 1 + (self.pad_id + 1 if self.pad_offset_positions else 0)  # the largest position id
        if position_ids is None and last >= n_pos:
            raise ValueError(f"{x.shape[1]} tokens need position {last} but max_position is {n_pos}; shorten "
                             f"the input or raise model.max_position")
        if position_ids is None:
            position_ids = self.position_ids(x, mask)  # (B, T)
        e = self.word_embeddings(x) + self.position_embeddings(position_ids)  # (B, T, E)
        if self.token_type_embeddings is not None:
            if token_type_ids is None:
                e = e + self.token_type_embeddings.weight[0]  # segment 0 everywhere, no gather needed
            else:
                e = e + self.token_type_embeddings(token_type_ids)
        elif token_type_ids is not None:
            raise ValueError("this model has no segment embeddings (type_vocab_size=0); drop token_type_ids")
        e = self.dropout(self.norm(e))  # (B, T, E)
        return self.projection(e) if self.projection is not None else e  # (B, T, D)


class BertModel(nn.Module):
    """The encoder: embeddings, L post-LN Transformer blocks and (optionally) the [CLS] pooler.

    Args:
        cfg: a :class:`BertConfig`.
        pooler: add the tanh pooler on the first position (the sequence classifier uses it).

    Shapes:
        ``forward(x)``: x (B, T) long, right-padded with ``pad_id`` -> hidden states (B, T', D),
        T' = T + 1 when ``cfg.cls_id`` is prepended. :meth:`encode` returns a :class:`BertOutput`
        with the pooled output and, on request, every layer's hidden states and attention weights.
    """

    def __init__(self, cfg: BertConfig, pooler: bool = True) -> None:
        super().__init__()
        self.config = cfg
        self.embeddings = BertEmbeddings(cfg)
        n_blocks = 1 if cfg.share_layers else cfg.num_layers
        self.layers = nn.ModuleList(
            TransformerBlock(cfg.embed_dim, cfg.num_heads, cfg.ff_dim, dropout=cfg.dropout,
                             attention_dropout=cfg.attention_dropout, norm_first=False, eps=cfg.eps,
                             activation=cfg.activation, impl=cfg.impl)
            for _ in range(n_blocks)
        )
        self.pooler = nn.Linear(cfg.embed_dim, cfg.embed_dim) if pooler else None

    def blocks(self) -> list[nn.Module]:
        """The block applied at each of the L layers (the same module L times with ``share_layers``)."""
        return [self.layers[0 if self.config.share_layers else i] for i in range(self.config.num_layers)]

    def prepare(self, x: Tensor, attention_mask: Tensor | None = None,
                token_type_ids: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor | None]:
        """(ids, mask, token types) with ``cls_id`` prepended when set; mask True = real token."""
        if x.dim() != 2 or x.is_floating_point():
            raise ValueError(f"BERT expects token ids (B, T) of an integer type, got {x.dtype} {tuple(x.shape)}")
        mask = padding_mask(x, self.config.pad_id) if attention_mask is None else attention_mask.bool()  # (B, T)
        cls = self.config.cls_id
        if cls is not None:
            x = F.pad(x, (1, 0), value=cls)  # (B, T + 1)
            mask = F.pad(mask, (1, 0), value=True)
            if token_type_ids is not None:
                token_type_ids = F.pad(token_type_ids, (1, 0), value=0)
        return x, mask, token_type_ids

    def encode(self, x: Tensor, *, attention_mask: Tensor | None = None, token_type_ids: Tensor | None = None,
               position_ids: Tensor | None = None, output_hidden_states: bool = False,
               output_attentions: bool = False) -> BertOutput:
        """Run the encoder; see :class:`BertOutput`.

        Args:
            x: token ids (B, T), right-padded with ``pad_id``.
            attention_mask: (B, T), 1/True = real token (default: ``x != pad_id``).
            token_type_ids: segment ids (B, T) (default 0).
            position_ids: (B, T') (default 0.., or RoBERTa's offsets).
            output_hidden_states: also return h_0..h_L.
            output_attentions: also return every layer's attention weights (the math path).
        """
        x, mask, token_type_ids = self.prepare(x, attention_mask, token_type_ids)
        h = self.embeddings(x, mask, token_type_ids, position_ids)  # (B, T, D)
        kpm = None if bool(mask.all()) else mask  # no mask at all lets the fused kernels run unmasked
        hidden, attns = [h], []
        for i, block in enumerate(self.blocks()):
            h, w, _ = block(h, key_padding_mask=kpm, need_weights=output_attentions, layer=i)  # (B, T, D)
            hidden.append(h)
            attns.append(w)
        pooled = torch.tanh(self.pooler(h[:, 0])) if self.pooler is not None else None  # (B, D)
        return BertOutput(h, pooled, tuple(hidden) if output_hidden_states else None,
                          tuple(attns) if output_attentions else None, mask)

    def forward(self, x: Tensor, *, attention_mask: Tensor | None = None,
                token_type_ids: Tensor | None = None) -> Tensor:
        return self.encode(x, attention_mask=attention_mask, token_type_ids=token_type_ids).last_hidden_state


def _init_weights(module: nn.Module) -> None:
    """BERT's initialisation (the paper's code, Hugging Face): N(0, 0.02), zero biases, LN (1, 0)."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, std=0.02)
            if m.padding_idx is not None:
                with torch.no_grad():
                    m.weight[m.padding_idx].zero_()
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class _BertTask(nn.Module):
    """What the three heads share: the encoder ``bert``, the config, ``example_input``, attention maps."""

    def __init__(self, cfg: BertConfig, pooler: bool) -> None:
        super().__init__()
        self.config = cfg
        self.vocab_size, self.pad_id, self.max_len = cfg.vocab_size, cfg.pad_id, cfg.max_len
        self.bert = BertModel(cfg, pooler=pooler)

    def example_input(self, batch_size: int = 1, seed: int = 0) -> Tensor:
        """Random token ids (B, max_len), right-padded to varied lengths (row 0 full length)."""
        g = torch.Generator().manual_seed(seed)
        t, v = self.max_len, self.vocab_size
        low = 4 if v > 5 else 0  # skip archlab's special ids when there is room
        ids = torch.randint(low, v, (batch_size, t), generator=g)
        ids[ids == self.pad_id] = (self.pad_id + 1) % v
        lengths = torch.randint(1, t + 1, (batch_size,), generator=g)
        lengths[0] = t
        ids[torch.arange(t)[None, :] >= lengths[:, None]] = self.pad_id
        return ids.to(self.bert.embeddings.word_embeddings.weight.device)

    def _tokens(self, out: BertOutput) -> Tensor:
        """h_L without a prepended [CLS], aligned with the input ids: (B, T, D)."""
        h = out.last_hidden_state
        return h[:, 1:] if self.config.cls_id is not None else h

    @torch.no_grad()
    def attention_maps(self, x: Tensor, **kwargs: Any) -> list[Tensor]:
        """Every layer's attention weights, a list of L tensors (B, heads, T', T').

        Row i is how token i spreads its attention (rows sum to 1; padding keys get 0). T' counts
        a prepended [CLS]. Call in eval mode for visualisation.
        """
        return list(self.bert.encode(x, output_attentions=True, **kwargs).attentions)


class BertForSequenceClassification(_BertTask):
    """Pooled [CLS] -> dropout -> linear: token ids (B, T) -> logits (B, K) (section 3.2)."""

    def __init__(self, cfg: BertConfig) -> None:
        super().__init__(cfg, pooler=True)
        self.dropout = nn.Dropout(cfg.dropout)
        self.classifier = nn.Linear(cfg.embed_dim, cfg.num_classes)
        _init_weights(self)

    def forward(self, x: Tensor, *, attention_mask: Tensor | None = None,
                token_type_ids: Tensor | None = None) -> Tensor:
        out = self.bert.encode(x, attention_mask=attention_mask, token_type_ids=token_type_ids)
        return self.classifier(self.dropout(out.pooler_output))  # (B, K)

    def get_classifier(self) -> nn.Module:
        return self.classifier

    def reset_classifier(self, num_classes: int) -> None:
        """A fresh ``classifier`` with ``num_classes`` outputs (N(0, 0.02), zero bias)."""
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        head = nn.Linear(self.config.embed_dim, num_classes, device=self.classifier.weight.device)
        _init_weights(head)
        self.classifier = head
        self.config = dataclasses.replace(self.config, num_classes=num_classes)


class BertForTokenClassification(_BertTask):
    """h_L -> dropout -> linear per token: token ids (B, T) -> logits (B, T, K) (tagging, NER)."""

    def __init__(self, cfg: BertConfig) -> None:
        super().__init__(cfg, pooler=False)
        self.dropout = nn.Dropout(cfg.dropout)
        self.classifier = nn.Linear(cfg.embed_dim, cfg.num_classes)
        _init_weights(self)

    def forward(self, x: Tensor, *, attention_mask: Tensor | None = None,
                token_type_ids: Tensor | None = None) -> Tensor:
        out = self.bert.encode(x, attention_mask=attention_mask, token_type_ids=token_type_ids)
        return self.classifier(self.dropout(self._tokens(out)))  # (B, T, K)

    def get_classifier(self) -> nn.Module:
        return self.classifier


class MaskedLMHead(nn.Module):
    """BERT's prediction head: dense D -> E, GELU, LayerNorm, then the tied decoder + a bias."""

    def __init__(self, cfg: BertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(cfg.embed_dim, cfg.embedding_width)
        self.activation = cfg.activation
        self.norm = nn.LayerNorm(cfg.embedding_width, eps=cfg.eps)
        self.bias = nn.Parameter(torch.zeros(cfg.vocab_size))

    def forward(self, h: Tensor, decoder_weight: Tensor) -> Tensor:
        act = {"gelu": F.gelu, "relu": F.relu}.get(self.activation) or (lambda t: F.gelu(t, approximate="tanh"))
        h = self.norm(act(self.dense(h)))  # (B, T, E)
        return F.linear(h, decoder_weight[: self.bias.shape[0]], self.bias)  # (B, T, V)


class BertForMaskedLM(_BertTask):
    """The masked-LM pre-training model: token ids (B, T) -> logits (B, T, V) (section 3.1, task 1).

    ``mask_id`` is the ``[MASK]`` id (``config.mask_id``, or ``vocab_size`` when the data has
    none); :class:`archlab.tasks.mlm.MaskedLMTask` trains it. ``num_classes`` does not apply
    (``config.num_classes`` is None).
    """

    task = "masked_lm"

    def __init__(self, cfg: BertConfig) -> None:
        cfg = dataclasses.replace(cfg, num_classes=None, head="mlm")
        super().__init__(cfg, pooler=False)
        self.mask_id = cfg.mask_id if cfg.mask_id is not None else cfg.vocab_size
        self.head = MaskedLMHead(cfg)
        _init_weights(self)

    def special_ids(self) -> list[int]:
        """Ids never chosen for masking: padding, [CLS], [MASK] (the task adds the data's own)."""
        return sorted({self.config.pad_id, self.mask_id} | ({self.config.cls_id} - {None}))

    def forward(self, x: Tensor, *, attention_mask: Tensor | None = None,
                token_type_ids: Tensor | None = None) -> Tensor:
        out = self.bert.encode(x, attention_mask=attention_mask, token_type_ids=token_type_ids)
        return self.head(self._tokens(out), self.bert.embeddings.word_embeddings.weight)  # (B, T, V)


# ----------------------------------------------------------------------------------------------
# registered variants

HEADS = {"sequence": BertForSequenceClassification, "token": BertForTokenClassification, "mlm": BertForMaskedLM}


def build_bert(cfg: BertConfig) -> nn.Module:
    """The model of ``cfg.head``: a sequence classifier, a token classifier or a masked LM."""
    return HEADS[cfg.head](cfg)


@register_model("bert_tiny", family="transformer", config=BertConfig, num_layers=2, embed_dim=128, num_heads=2,
                ff_dim=512)
def bert_tiny(cfg: BertConfig) -> nn.Module:
    """BERT-Tiny (Turc et al. 2019 shape): 2 layers, D 128, 2 heads, ff 512; a sequence classifier."""
    return build_bert(cfg)


@register_model("bert_mini", family="transformer", config=BertConfig, num_layers=4, embed_dim=256, num_heads=4,
                ff_dim=1024)
def bert_mini(cfg: BertConfig) -> nn.Module:
    """BERT-Mini: 4 layers, D 256, 4 heads, ff 1024; a sequence classifier."""
    return build_bert(cfg)


@register_model("bert_base", family="transformer", config=BertConfig)
def bert_base(cfg: BertConfig) -> nn.Module:
    """BERT-base (Devlin et al. 2019): 12 layers, D 768, 12 heads, ff 3072 (110M); a sequence classifier."""
    return build_bert(cfg)


@register_model("minilm_l6", family="transformer", config=BertConfig, num_layers=6, embed_dim=384, num_heads=12,
                ff_dim=1536, vocab_size=30522)
def minilm_l6(cfg: BertConfig) -> nn.Module:
    """MiniLM-L6-H384 (all-MiniLM-L6-v2's shape): 6 layers, D 384, 12 heads, ff 1536; a sequence classifier."""
    return build_bert(cfg)


@register_model("bert_mlm_tiny", family="transformer", config=BertConfig, num_layers=2, embed_dim=128,
                num_heads=2, ff_dim=512, head="mlm")
def bert_mlm_tiny(cfg: BertConfig) -> nn.Module:
    """BERT-Tiny as a masked language model (pre-training): 2 layers, D 128, 2 heads."""
    return build_bert(cfg)


@register_model("bert_mlm_mini", family="transformer", config=BertConfig, num_layers=4, embed_dim=256,
                num_heads=4, ff_dim=1024, head="mlm")
def bert_mlm_mini(cfg: BertConfig) -> nn.Module:
    """BERT-Mini as a masked language model (pre-training): 4 layers, D 256, 4 heads."""
    return build_bert(cfg)
