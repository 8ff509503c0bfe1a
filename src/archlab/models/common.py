"""Small helpers the model files share: activation and norm layers by name, weight initialisation.

Config dataclasses name activations with a ``Literal`` (``"relu"``, ``"tanh"``...) so that a bad
value lists the allowed ones; model classes take the layer *class* (``act_layer=nn.ReLU``), as
timm does. :func:`get_act_layer` turns the one into the other.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

import torch
from torch import nn

__all__ = [
    "ACTIVATIONS",
    "Activation",
    "InitScheme",
    "ScaledTanh",
    "check_image_input",
    "get_act_layer",
    "init_linear_",
]

Activation = Literal["relu", "tanh", "sigmoid", "gelu", "leaky_relu", "elu", "selu", "silu"]
InitScheme = Literal["default", "xavier_uniform", "xavier_normal", "kaiming_uniform", "kaiming_normal"]


class ScaledTanh(nn.Module):
    """LeCun's squashing function ``f(a) = A tanh(S a)`` with A = 1.7159, S = 2/3.

    Chosen so that f(±1) = ±1 and the second derivative peaks at ±1 (LeCun et al. 1998,
    Appendix A; "Efficient BackProp", 1998).
    """

    def __init__(self, amplitude: float = 1.7159, slope: float = 2.0 / 3.0) -> None:
        super().__init__()
        self.amplitude = amplitude
        self.slope = slope

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.amplitude * torch.tanh(self.slope * x)

    def extra_repr(self) -> str:
        return f"amplitude={self.amplitude}, slope={self.slope:.4f}"


ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "gelu": nn.GELU,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
    "selu": nn.SELU,
    "silu": nn.SiLU,
    "scaled_tanh": ScaledTanh,
}


def get_act_layer(name: str) -> type[nn.Module]:
    """The activation class called ``name`` (a key of :data:`ACTIVATIONS`)."""
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; choose one of {', '.join(ACTIVATIONS)}") from None


def _nonlinearity(act_layer: Callable[..., nn.Module] | None) -> tuple[str, float]:
    """The ``nn.init`` name (and leaky slope) closest to ``act_layer``, for Kaiming's gain."""
    if act_layer is nn.LeakyReLU:
        return "leaky_relu", 0.01
    if act_layer in (nn.Tanh, ScaledTanh):
        return "tanh", 0.0
    if act_layer is nn.Sigmoid:
        return "sigmoid", 0.0
    if act_layer is nn.SELU:
        return "selu", 0.0
    # ReLU and its smooth cousins (GELU, SiLU, ELU) are close enough to ReLU's sqrt(2) gain.
    return "relu", 0.0


def init_linear_(module: nn.Module, scheme: str, act_layer: Callable[..., nn.Module] | None = None) -> None:
    """Initialise every ``nn.Linear`` / ``nn.Conv*`` weight in ``module`` with ``scheme``; zero their biases.

    ``"default"`` leaves PyTorch's own initialisation (Kaiming-uniform with a = sqrt(5)) alone.
    Xavier/Glorot uses gain 1 as in Glorot & Bengio (2010); Kaiming/He uses the gain of
    ``act_layer`` (He et al. 2015).
    """
    if scheme == "default":
        return
    nonlinearity, slope = _nonlinearity(act_layer)
    for m in module.modules():
        if not isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            continue
        w = m.weight
        if scheme == "xavier_uniform":
            nn.init.xavier_uniform_(w)
        elif scheme == "xavier_normal":
            nn.init.xavier_normal_(w)
        elif scheme in ("kaiming_uniform", "kaiming_normal"):
            if nonlinearity in ("relu", "leaky_relu"):
                fn = nn.init.kaiming_uniform_ if scheme == "kaiming_uniform" else nn.init.kaiming_normal_
                fn(w, a=slope, nonlinearity=nonlinearity)
            else:
                # kaiming_* only knows ReLU-like gains; use std = gain / sqrt(fan_in) directly.
                fan_in = nn.init._calculate_fan_in_and_fan_out(w)[0]
                std = nn.init.calculate_gain(nonlinearity) / math.sqrt(fan_in)
                with torch.no_grad():
                    if scheme == "kaiming_uniform":
                        w.uniform_(-math.sqrt(3.0) * std, math.sqrt(3.0) * std)
                    else:
                        w.normal_(0.0, std)
        else:
            raise ValueError(
                f"unknown init {scheme!r}; choose one of default, xavier_uniform, "
                "xavier_normal, kaiming_uniform, kaiming_normal"
            )
        if m.bias is not None:
            nn.init.zeros_(m.bias)


def check_image_input(
    model: nn.Module,
    x: torch.Tensor,
    in_channels: int,
    *,
    image_size: int | None = None,
    min_size: int = 1,
) -> None:
    """Raise a ValueError naming the model's expected input when ``x`` is not (B, C, H, W) it can take.

    Args:
        model: the model (its ``model_name``, set by ``create_model``, names it in the message).
        x: the input batch.
        in_channels: channels the model was built for.
        image_size: the only side it accepts (models with a flatten head or position embeddings);
            ``None`` when any size from ``min_size`` up works (global pooling).
        min_size: the smallest side the stride/pooling stack can take.
    """
    name = getattr(model, "model_name", type(model).__name__)
    side = f"{image_size}x{image_size}" if image_size is not None else f"H, W >= {min_size}"
    expected = f"{name} expects images (B, {in_channels}, H, W) with {side}"
    if x.dim() != 4:
        hint = " (add a batch dimension: x[None])" if x.dim() == 3 else ""
        raise ValueError(f"{expected}, got a {x.dim()}-D tensor of shape {tuple(x.shape)}{hint}")
    if x.shape[1] != in_channels:
        raise ValueError(
            f"{expected}, got {x.shape[1]} channels (shape {tuple(x.shape)}); build it with "
            f"in_channels={x.shape[1]} (model.in_channels={x.shape[1]}) or convert the images"
        )
    h, w = x.shape[-2:]
    if image_size is not None and (h, w) != (image_size, image_size):
        raise ValueError(
            f"{expected}, got {h}x{w}; build it with image_size={h} (model.image_size={h}) or resize"
        )
    if min(h, w) < min_size:
        raise ValueError(f"{expected}, got {h}x{w}: too small for its strides; upsample the images")


def seq2seq_example_input(cfg: object, batch_size: int, device: torch.device | str) -> tuple[torch.Tensor, torch.Tensor]:
    """(src (B, 6), tgt_in (B, 5)) of random tokens with some right padding, for any encoder-decoder
    whose config has ``pad_id``, ``bos_id``, ``eos_id``, ``src_vocab_size`` and ``tgt_vocab_size``.

    Sources end in <eos> at lengths 6, 5, 4, 6, ...; targets start with <bos>; every other target
    ends in padding.
    """
    g = torch.Generator().manual_seed(0)
    S, T = 6, 5
    low = max(cfg.pad_id, cfg.bos_id, cfg.eos_id) + 1  # type: ignore[attr-defined]
    src = torch.randint(low, cfg.src_vocab_size, (batch_size, S), generator=g)  # type: ignore[attr-defined]
    tgt = torch.randint(low, cfg.tgt_vocab_size, (batch_size, T), generator=g)  # type: ignore[attr-defined]
    tgt[:, 0] = cfg.bos_id  # type: ignore[attr-defined]
    for b in range(batch_size):
        n = S - b % 3  # lengths S, S-1, S-2, ...
        src[b, n - 1] = cfg.eos_id  # type: ignore[attr-defined]
        src[b, n:] = cfg.pad_id  # type: ignore[attr-defined]
        if b % 2:
            tgt[b, -1] = cfg.pad_id  # type: ignore[attr-defined]
    return src.to(device), tgt.to(device)
