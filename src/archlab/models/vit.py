"""Vision Transformer (ViT): an image as a sequence of patches, read by a Transformer encoder.

    A. Dosovitskiy, L. Beyer, A. Kolesnikov, D. Weissenborn, X. Zhai, T. Unterthiner, M. Dehghani,
    M. Minderer, G. Heigold, S. Gelly, J. Uszkoreit, N. Houlsby, "An image is worth 16x16 words:
    Transformers for image recognition at scale", ICLR 2021, https://arxiv.org/abs/2010.11929
    H. Touvron, M. Cord, M. Douze, F. Massa, A. Sablayrolles, H. Jegou, "Training data-efficient
    image transformers & distillation through attention" (DeiT; the Ti and S sizes), ICML 2021,
    https://arxiv.org/abs/2012.12877
    A. Vaswani et al., "Attention is all you need", NeurIPS 2017, https://arxiv.org/abs/1706.03762

An image (C, H, W) is cut into N = HW / P^2 patches of P x P pixels; each is flattened and
projected to D dimensions (one strided P x P convolution does both), a learned class token is
prepended and learned position embeddings are added (eq. 1-4 of the paper)::

    z_0 = [x_class; x_p^1 E; ...; x_p^N E] + E_pos                 # (B, N + 1, D)
    z'_l = MSA(LN(z_{l-1})) + z_{l-1}                              # pre-LN residual blocks, l = 1..L
    z_l  = MLP(LN(z'_l)) + z'_l                                    # MLP: Linear(D, M), GELU, Linear(M, D)
    y    = head(LN(z_L^0))                                         # the class token's final state

with multi-head self-attention over all N + 1 tokens, for each head h of d = D / heads dims::

    Q_h, K_h, V_h = z W_h^Q, z W_h^K, z W_h^V                      # (B, N + 1, d)
    A_h = softmax(Q_h K_h^T / sqrt(d))                             # (B, N + 1, N + 1)
    MSA(z) = [A_1 V_1, ..., A_heads V_heads] W^O                   # (B, N + 1, D)

``attention_maps(x)`` returns every layer's A (B, heads, N + 1, N + 1) for visualisation.

Sizes (paper Table 1, DeiT for Ti/S): Ti/16 D=192, L=12, heads 3, M=768 (5.7M params);
S/16 384/12/6/1536 (22.1M); B/16 768/12/12/3072 (86.6M) at 224 pixels and 1000 classes.

Each encoder block is the library's shared pre-LN block,
:class:`archlab.models.transformer.layers.TransformerBlock` (``norm_first=True``, LayerNorm eps
1e-6, GELU), the one BERT, GPT and the translator use. The module paths around the blocks follow
torchvision (``conv_proj``, ``class_token``, ``encoder.pos_embedding``,
``encoder.layers.encoder_layer_{i}``, ``encoder.ln``, ``heads.head``); inside a block the names
are the shared block's. A block's torchvision names map to ours as::

    torchvision (encoder.layers.encoder_layer_{i}.)   ours
    ln_1.{weight,bias}                                norm1.{weight,bias}
    self_attention.in_proj_weight (3D, D)             self_attn.{q,k,v}_proj.weight, (D, D) each, in that order
    self_attention.in_proj_bias (3D,)                 self_attn.{q,k,v}_proj.bias, (D,) each
    self_attention.out_proj.{weight,bias}             self_attn.out_proj.{weight,bias}
    ln_2.{weight,bias}                                norm2.{weight,bias}
    mlp.0.{weight,bias}  (older: mlp.linear_1)        ff.fc1.{weight,bias}
    mlp.3.{weight,bias}  (older: mlp.linear_2)        ff.fc2.{weight,bias}

``model.load_state_dict(torchvision_state, strict=True)`` converts torchvision's keys as it loads
(a load-state-dict pre-hook on the encoder; our own keys load as they are), and
``model.torchvision_state_dict()`` (or :func:`torchvision_state_dict_from_vit`) returns
torchvision's layout (152 entries for ViT-B/16, against 200 in ours).

Deviations from the paper:
    - The classifier is one linear layer (``representation_size=None``), as the paper's fine-tuned
      models and torchvision; ``representation_size=R`` adds the pre-training head's tanh hidden layer.
    - ``pool="mean"`` (default ``"cls"``) averages the patch tokens instead of reading the class
      token (the class token is kept, so the parameters do not change).
    - Initialisation follows torchvision: patch projection truncated normal with std sqrt(1/fan_in),
      position embeddings normal(0, 0.02), class token 0; W^Q, W^K, W^V uniform(-a, a) with
      a = sqrt(6 / (D + 3D)) (torchvision's packed (3D, D) in-projection is Xavier-uniform as one
      matrix) and zero biases, W^O PyTorch's default ``nn.Linear`` init with a zero bias (as
      ``nn.MultiheadAttention``); MLP weights Xavier-uniform with normal(0, 1e-6) biases,
      LayerNorm eps 1e-6, and a zero classifier (``zero_head=True``;
      ``False`` uses truncated normal std 0.02, which the tiny test networks use so that every
      parameter gets a gradient at step 0).
    - Dropout defaults to 0, as torchvision (the paper's pre-training used 0.1 on the smaller
      datasets): ``dropout`` (on the embeddings, after each sub-layer and after the MLP's GELU, as
      torchvision), ``attention_dropout`` (on the attention weights). ``attention_maps`` returns
      the weights before attention dropout (``nn.MultiheadAttention`` returned them after).
    - The position embeddings fix the image size; ``resize_pos_embed(new_size)`` interpolates them
      bicubically to another size (as the paper does for fine-tuning at higher resolution).
    - Small-image variants not in the paper: ``vit_tiny_patch4_32`` (32 px, patch 4, D=192, L=6,
      heads 3, M=384) and ``vit_mnist`` (28 px, 1 channel, patch 7, D=64, L=4, heads 4, M=128).
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections import OrderedDict
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import nn

from archlab.models.common import check_image_input
from archlab.models.transformer.layers import TransformerBlock
from archlab.registry import register_model

__all__ = [
    "ViTConfig",
    "ViTEncoder",
    "VisionTransformer",
    "torchvision_state_dict_from_vit",
    "vit_block",
    "vit_state_dict_from_torchvision",
]


@dataclass
class ViTConfig:
    """Options of :class:`VisionTransformer`.

    Attributes:
        in_channels: input channels.
        num_classes: number of output logits.
        image_size: input side (square images); the position embeddings are made for this size.
        patch_size: side P of the square patches; must divide ``image_size``.
        dim: token width D.
        depth: number of encoder blocks L.
        heads: attention heads; must divide ``dim``.
        mlp_dim: hidden width M of each block's MLP.
        dropout: dropout on the embeddings, after attention and in the MLP.
        attention_dropout: dropout on the attention weights.
        representation_size: width of a tanh "pre-logits" layer before the classifier; None for none.
        pool: ``cls`` reads the class token; ``mean`` averages the patch tokens.
        zero_head: initialise the classifier to zero (torchvision, the paper's fine-tuning).
    """

    in_channels: int = 3
    num_classes: int = 1000
    image_size: int = 224
    patch_size: int = 16
    dim: int = 768
    depth: int = 12
    heads: int = 12
    mlp_dim: int = 3072
    dropout: float = 0.0
    attention_dropout: float = 0.0
    representation_size: int | None = None
    pool: Literal["cls", "mean"] = "cls"
    zero_head: bool = True

    # A zero classifier would leave every other parameter without a gradient at the first step.
    TINY: ClassVar[dict[str, Any]] = {
        "image_size": 16, "patch_size": 4, "dim": 16, "depth": 1, "heads": 2, "mlp_dim": 32, "zero_head": False,
    }  # fmt: skip

    def __post_init__(self) -> None:
        if self.patch_size < 1 or self.image_size % self.patch_size:
            divisors = [p for p in range(2, min(self.image_size, 32) + 1) if self.image_size % p == 0]
            raise ValueError(
                f"patch_size {self.patch_size} must divide image_size {self.image_size}; "
                f"try patch_size in {divisors} or resize the images"
            )
        if self.heads < 1 or self.dim % self.heads:
            raise ValueError(f"heads {self.heads} must divide dim {self.dim}")
        for name in ("depth", "mlp_dim"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("dropout", "attention_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)}")
        if self.representation_size is not None and self.representation_size < 1:
            raise ValueError(f"representation_size must be >= 1 or None, got {self.representation_size}")
        if self.pool not in ("cls", "mean"):
            raise ValueError(f"pool must be 'cls' or 'mean', got {self.pool!r}")


def vit_block(
    dim: int, heads: int, mlp_dim: int, dropout: float = 0.0, attention_dropout: float = 0.0
) -> TransformerBlock:
    """One ViT encoder block: the shared pre-LN :class:`TransformerBlock`, initialised as torchvision's.

    ``x + Dropout(MSA(LN(x)))`` then ``x + Dropout(fc2(Dropout(GELU(fc1(LN(x))))))``; (B, T, D) -> (B, T, D).
    Its forward returns ``(x, attention weights or None, None)``.
    """
    block = TransformerBlock(
        dim, heads, mlp_dim, dropout=dropout, attention_dropout=attention_dropout, norm_first=True,
        eps=1e-6, activation="gelu", ff_dropout=dropout,
    )  # fmt: skip
    attn = block.self_attn
    # torchvision's in_proj_weight (3D, D) is Xavier-uniform as one matrix: bound sqrt(6 / (D + 3D)).
    bound = math.sqrt(6.0 / (dim + 3 * dim))
    with torch.no_grad():
        for proj in (attn.q_proj, attn.k_proj, attn.v_proj):
            nn.init.uniform_(proj.weight, -bound, bound)
            nn.init.zeros_(proj.bias)
        # out_proj keeps nn.Linear's default weight and has a zero bias, as nn.MultiheadAttention.
        nn.init.zeros_(attn.out_proj.bias)
        for fc in (block.ff.fc1, block.ff.fc2):
            nn.init.xavier_uniform_(fc.weight)
            nn.init.normal_(fc.bias, std=1e-6)
    return block


# ----------------------------------------------------------------------------------------------
# torchvision's names inside a block <-> ours (the table in the module docstring)

_RENAMES = (
    ("ln_1", "norm1"),
    ("self_attention.out_proj", "self_attn.out_proj"),
    ("ln_2", "norm2"),
    ("mlp.0", "ff.fc1"),
    ("mlp.3", "ff.fc2"),
    ("mlp.linear_1", "ff.fc1"),  # torchvision checkpoints before its MLPBlock became a Sequential
    ("mlp.linear_2", "ff.fc2"),
)
_QKV = ("q_proj", "k_proj", "v_proj")


def _block_key(key: str, prefix: str) -> tuple[str, str] | None:
    """``(prefix + "layers.encoder_layer_{i}.", rest)`` for a key inside a block under ``prefix``."""
    m = re.match(re.escape(prefix) + r"(layers\.encoder_layer_\d+\.)(.+)$", key)
    return (prefix + m.group(1), m.group(2)) if m else None


def _rename_torchvision_keys(state_dict: MutableMapping[str, torch.Tensor], prefix: str) -> None:
    """Rename, in place, torchvision's block keys under ``prefix`` (the encoder's) to ours."""
    for key in list(state_dict):
        parts = _block_key(key, prefix)
        if parts is None:
            continue
        base, rest = parts
        in_proj = re.fullmatch(r"self_attention\.in_proj_(weight|bias)", rest)
        if in_proj:
            packed = state_dict.pop(key)  # (3D, D) or (3D,): W^Q, W^K, W^V stacked
            if packed.shape[0] % 3:
                raise ValueError(f"{key}: first dimension {packed.shape[0]} is not 3 * dim")
            for proj, part in zip(_QKV, packed.chunk(3), strict=True):
                state_dict[f"{base}self_attn.{proj}.{in_proj.group(1)}"] = part
            continue
        for theirs, ours in _RENAMES:
            if rest.startswith(theirs + "."):
                state_dict[base + ours + rest[len(theirs):]] = state_dict.pop(key)
                break


def vit_state_dict_from_torchvision(
    state_dict: Mapping[str, torch.Tensor], prefix: str = "encoder."
) -> OrderedDict[str, torch.Tensor]:
    """A torchvision ViT state dict (or ours, left as is) with our block names.

    Args:
        state_dict: the model's state dict in torchvision's layout.
        prefix: the encoder's prefix in ``state_dict`` (``"encoder."`` for a whole model's).

    ``load_state_dict`` does this by itself; this is for inspecting or saving a converted copy.
    """
    out = OrderedDict(state_dict)
    _rename_torchvision_keys(out, prefix)
    return out


def torchvision_state_dict_from_vit(
    state_dict: Mapping[str, torch.Tensor], prefix: str = "encoder."
) -> OrderedDict[str, torch.Tensor]:
    """Our ViT state dict in torchvision's layout and key order (152 entries for ViT-B/16).

    Args:
        state_dict: ``model.state_dict()`` of a :class:`VisionTransformer`.
        prefix: the encoder's prefix in ``state_dict``.

    The packed ``in_proj_weight``/``in_proj_bias`` are new tensors (W^Q, W^K, W^V concatenated);
    the other entries are those of ``state_dict``.
    """
    out: OrderedDict[str, torch.Tensor] = OrderedDict()
    done: set[str] = set()
    for key, value in state_dict.items():
        parts = _block_key(key, prefix)
        if parts is None:
            out[key] = value
            continue
        base = parts[0]
        if base in done:
            continue
        done.add(base)
        for theirs, ours in _RENAMES[:5]:  # torchvision's order: ln_1, in_proj, out_proj, ln_2, mlp
            if theirs == "self_attention.out_proj":
                for kind in ("weight", "bias"):
                    packed = [state_dict[f"{base}self_attn.{proj}.{kind}"] for proj in _QKV]
                    out[f"{base}self_attention.in_proj_{kind}"] = torch.cat(packed)  # (3D, D) or (3D,)
            for kind in ("weight", "bias"):
                out[f"{base}{theirs}.{kind}"] = state_dict[f"{base}{ours}.{kind}"]
    return out


def _load_torchvision_keys(
    module: nn.Module, state_dict: dict[str, torch.Tensor], prefix: str, *args: Any
) -> None:
    """Load-state-dict pre-hook of :class:`ViTEncoder`: accept torchvision's block names."""
    _rename_torchvision_keys(state_dict, prefix)


class ViTEncoder(nn.Module):
    """Position embeddings, dropout, ``depth`` shared Transformer blocks, final LayerNorm.

    ``layers`` is an ``nn.Sequential`` for torchvision's names (``layers.encoder_layer_{i}``), but a
    block returns a tuple, so iterate over it rather than calling it.
    """

    def __init__(
        self,
        seq_length: int,
        depth: int,
        dim: int,
        heads: int,
        mlp_dim: int,
        dropout: float = 0.0,
        attention_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.pos_embedding = nn.Parameter(torch.empty(1, seq_length, dim).normal_(std=0.02))  # (1, T, D)
        self.dropout = nn.Dropout(dropout)
        blocks = OrderedDict(
            (f"encoder_layer_{i}", vit_block(dim, heads, mlp_dim, dropout, attention_dropout))
            for i in range(depth)
        )
        self.layers = nn.Sequential(blocks)
        self.ln = nn.LayerNorm(dim, eps=1e-6)
        self.register_load_state_dict_pre_hook(_load_torchvision_keys)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.dropout(x + self.pos_embedding)  # (B, T, D)
        for block in self.layers:
            x = block(x)[0]  # (B, T, D)
        return self.ln(x)  # (B, T, D)


class VisionTransformer(nn.Module):
    """Patch embedding, class token, Transformer encoder, classifier on the class token (or the mean).

    Args:
        image_size: input side; the position embeddings are sized for it.
        patch_size: patch side P.
        in_channels: input channels.
        num_classes: number of logits.
        dim: token width D.
        depth: encoder blocks.
        heads: attention heads.
        mlp_dim: MLP hidden width.
        dropout: dropout on embeddings, attention output and MLP.
        attention_dropout: dropout on attention weights.
        representation_size: width of a tanh pre-logits layer, or None.
        pool: ``"cls"`` or ``"mean"``.
        zero_head: zero-initialise the classifier.

    Shapes:
        x: (B, in_channels, image_size, image_size). Returns logits (B, num_classes).
    """

    def __init__(
        self,
        image_size: int = 224,
        patch_size: int = 16,
        in_channels: int = 3,
        num_classes: int = 1000,
        *,
        dim: int = 768,
        depth: int = 12,
        heads: int = 12,
        mlp_dim: int = 3072,
        dropout: float = 0.0,
        attention_dropout: float = 0.0,
        representation_size: int | None = None,
        pool: str = "cls",
        zero_head: bool = True,
    ) -> None:
        super().__init__()
        if image_size % patch_size:
            raise ValueError(f"patch_size {patch_size} must divide image_size {image_size}")
        self.image_size = image_size
        self.patch_size = patch_size
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.dim = dim
        self.representation_size = representation_size
        self.pool = pool
        self.zero_head = zero_head
        # Grad-CAM needs a spatial feature map; for ViT use saliency or attention_maps instead.
        self.cam_layer = None

        self.conv_proj = nn.Conv2d(in_channels, dim, kernel_size=patch_size, stride=patch_size)
        self.class_token = nn.Parameter(torch.zeros(1, 1, dim))  # (1, 1, D)
        self.seq_length = (image_size // patch_size) ** 2 + 1
        self.encoder = ViTEncoder(self.seq_length, depth, dim, heads, mlp_dim, dropout, attention_dropout)
        self.heads = self._make_heads(num_classes)

        fan_in = in_channels * patch_size * patch_size
        nn.init.trunc_normal_(self.conv_proj.weight, std=math.sqrt(1 / fan_in))
        nn.init.zeros_(self.conv_proj.bias)

    def _make_heads(self, num_classes: int) -> nn.Sequential:
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        width = self.dim
        if self.representation_size is not None:
            layers["pre_logits"] = nn.Linear(self.dim, self.representation_size)
            layers["act"] = nn.Tanh()
            nn.init.trunc_normal_(layers["pre_logits"].weight, std=math.sqrt(1 / self.dim))
            nn.init.zeros_(layers["pre_logits"].bias)
            width = self.representation_size
        head = nn.Linear(width, num_classes)
        if self.zero_head:
            nn.init.zeros_(head.weight)
        else:
            nn.init.trunc_normal_(head.weight, std=0.02)
        nn.init.zeros_(head.bias)
        layers["head"] = head
        return nn.Sequential(layers)

    def _check_input(self, x: torch.Tensor) -> None:
        try:
            check_image_input(self, x, self.in_channels, image_size=self.image_size)
        except ValueError as err:
            if x.dim() == 4 and x.shape[-1] == x.shape[-2] and x.shape[-1] % self.patch_size == 0:
                hint = (
                    f"; or call model.resize_pos_embed({x.shape[-1]}) to interpolate the position embeddings"
                )
                raise ValueError(f"{err}{hint}") from None
            raise

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        """Patch embeddings with the class token prepended (before position embeddings): (B, N + 1, D)."""
        self._check_input(x)
        x = self.conv_proj(x)  # (B, D, H/P, W/P)
        x = x.flatten(2).transpose(1, 2)  # (B, N, D)
        cls = self.class_token.expand(x.shape[0], -1, -1)  # (B, 1, D)
        return torch.cat([cls, x], dim=1)  # (B, N + 1, D)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The token sequence after the encoder's final LayerNorm: (B, N + 1, D), class token first."""
        return self.encoder(self.tokens(x))  # (B, N + 1, D)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """Pool the tokens (class token, or mean of the patch tokens) and classify: (B, T, D) -> (B, K)."""
        x = features[:, 0] if self.pool == "cls" else features[:, 1:].mean(dim=1)  # (B, D)
        return self.heads(x)  # (B, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))  # (B, num_classes)

    def attention_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Every layer's attention weights, a list of ``depth`` tensors (B, heads, N + 1, N + 1).

        Row i of a map is how token i (0: the class token) distributes its attention; rows sum
        to 1 (weights before attention dropout). Call under ``torch.no_grad()`` and in eval mode for visualisation.
        """
        z = self.encoder.dropout(self.tokens(x) + self.encoder.pos_embedding)  # (B, N + 1, D)
        maps = []
        for block in self.encoder.layers:
            z, attn, _ = block(z, need_weights=True)  # (B, N + 1, D), (B, heads, N + 1, N + 1)
            maps.append(attn)
        return maps

    def torchvision_state_dict(self) -> OrderedDict[str, torch.Tensor]:
        """The state dict in torchvision's layout (``load_state_dict`` accepts it, and ours)."""
        return torchvision_state_dict_from_vit(self.state_dict())

    @torch.no_grad()
    def resize_pos_embed(self, new_size: int) -> None:
        """Interpolate the position embeddings (bicubic, as torchvision) for ``new_size`` images.

        The class token's embedding is kept; the (H/P, W/P) grid of patch embeddings is resized.
        """
        if new_size % self.patch_size:
            raise ValueError(f"new_size {new_size} must be a multiple of patch_size {self.patch_size}")
        pos = self.encoder.pos_embedding  # (1, 1 + g*g, D)
        old, new = self.image_size // self.patch_size, new_size // self.patch_size
        grid = pos[:, 1:].reshape(1, old, old, self.dim).permute(0, 3, 1, 2)  # (1, D, g, g)
        grid = F.interpolate(grid, size=(new, new), mode="bicubic", align_corners=True)  # (1, D, g', g')
        grid = grid.permute(0, 2, 3, 1).reshape(1, new * new, self.dim)  # (1, g'*g', D)
        self.encoder.pos_embedding = nn.Parameter(torch.cat([pos[:, :1], grid], dim=1))
        self.image_size = new_size
        self.seq_length = new * new + 1
        if dataclasses.is_dataclass(getattr(self, "config", None)):
            self.config = dataclasses.replace(self.config, image_size=new_size)

    def get_classifier(self) -> nn.Module:
        return self.heads.head

    def reset_classifier(self, num_classes: int) -> None:
        """A fresh ``heads.head`` with ``num_classes`` outputs (zero or truncated normal, as built)."""
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        device = self.heads.head.weight.device
        head = nn.Linear(self.heads.head.in_features, num_classes, device=device)
        if self.zero_head:
            nn.init.zeros_(head.weight)
        else:
            nn.init.trunc_normal_(head.weight, std=0.02)
        nn.init.zeros_(head.bias)
        self.heads.head = head
        self.num_classes = num_classes
        if dataclasses.is_dataclass(getattr(self, "config", None)):
            self.config = dataclasses.replace(self.config, num_classes=num_classes)


# ----------------------------------------------------------------------------------------------
# registered variants


def _vit(cfg: ViTConfig) -> VisionTransformer:
    return VisionTransformer(
        cfg.image_size,
        cfg.patch_size,
        cfg.in_channels,
        cfg.num_classes,
        dim=cfg.dim,
        depth=cfg.depth,
        heads=cfg.heads,
        mlp_dim=cfg.mlp_dim,
        dropout=cfg.dropout,
        attention_dropout=cfg.attention_dropout,
        representation_size=cfg.representation_size,
        pool=cfg.pool,
        zero_head=cfg.zero_head,
    )


@register_model("vit_b_16", family="vit", config=ViTConfig)
def vit_b_16(cfg: ViTConfig) -> VisionTransformer:
    """ViT-B/16 (Dosovitskiy et al. 2021): D 768, 12 layers, 12 heads, MLP 3072; 86.6M params at 224."""
    return _vit(cfg)


@register_model("vit_s_16", family="vit", config=ViTConfig, dim=384, depth=12, heads=6, mlp_dim=1536)
def vit_s_16(cfg: ViTConfig) -> VisionTransformer:
    """ViT-S/16 (DeiT-S size): D 384, 12 layers, 6 heads, MLP 1536; 22.1M params at 224."""
    return _vit(cfg)


@register_model("vit_ti_16", family="vit", config=ViTConfig, dim=192, depth=12, heads=3, mlp_dim=768)
def vit_ti_16(cfg: ViTConfig) -> VisionTransformer:
    """ViT-Ti/16 (DeiT-Ti size): D 192, 12 layers, 3 heads, MLP 768; 5.7M params at 224."""
    return _vit(cfg)


@register_model(
    "vit_tiny_patch4_32", family="vit", config=ViTConfig, image_size=32, patch_size=4, dim=192, depth=6,
    heads=3, mlp_dim=384, num_classes=10,
)  # fmt: skip
def vit_tiny_patch4_32(cfg: ViTConfig) -> VisionTransformer:
    """Small ViT for 32-pixel images (CIFAR): patch 4 (64 tokens), D 192, 6 layers, 3 heads, MLP 384."""
    return _vit(cfg)


@register_model(
    "vit_mnist", family="vit", config=ViTConfig, image_size=28, patch_size=7, in_channels=1, dim=64, depth=4,
    heads=4, mlp_dim=128, num_classes=10,
)  # fmt: skip
def vit_mnist(cfg: ViTConfig) -> VisionTransformer:
    """Small ViT for 28-pixel MNIST: patch 7 (16 tokens), D 64, 4 layers, 4 heads, MLP 128."""
    return _vit(cfg)
