"""Hugging Face GPT-2 checkpoints <-> archlab's :class:`~archlab.models.transformer.gpt.GPT`.

Reads and writes the files of ``transformers``' ``GPT2LMHeadModel`` (``config.json`` and
``model.safetensors``, or ``pytorch_model.bin``) with safetensors/torch only: ``transformers``
itself is not needed. Parameter names map one to one, with two reshapes:

    HF (GPT-2, OpenAI's layout)            archlab
    wte, wpe, ln_f                          wte, wpe, ln_f
    h.i.ln_1, h.i.ln_2                      blocks.i.norm1, blocks.i.norm2
    h.i.attn.c_attn  W (D, 3D), b (3D,)     blocks.i.self_attn.qkv_proj: W.T (3D, D), b (q | k | v)
    h.i.attn.c_proj  W (D, D)               blocks.i.self_attn.out_proj: W.T
    h.i.mlp.c_fc     W (D, F)               blocks.i.ff.fc1: W.T
    h.i.mlp.c_proj   W (F, D)               blocks.i.ff.fc2: W.T
    lm_head (absent when tied)              lm_head (tied to wte)

GPT-2's ``Conv1D`` stores weights as (in, out) (``x @ W + b``), ``nn.Linear`` as (out, in), hence
the transposes; ``c_attn`` is the fused query|key|value projection, as our packed ``qkv_proj``. Checkpoint
keys may carry the ``transformer.`` prefix (``save_pretrained``) or not (OpenAI's original
uploads); the causal-mask buffers (``attn.bias``, ``attn.masked_bias``) of old files are ignored.

Example:
    >>> model = load_hf_gpt2("path/to/gpt2")           # a folder with config.json + model.safetensors
    >>> save_hf_gpt2(model, "out/")                     # GPT2LMHeadModel.from_pretrained("out/") loads it

Deviations from the paper:
    - Not a model: a file format converter. GPT-2's three dropout rates (``embd_pdrop``,
      ``attn_pdrop``, ``resid_pdrop``) become archlab's single ``dropout`` (``resid_pdrop``); they
      are all 0.1 in OpenAI's checkpoints.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from archlab.utils import ArchlabError

__all__ = ["gpt2_config_from_hf", "hf_config_from_gpt", "load_hf_gpt2", "save_hf_gpt2",
           "gpt_state_dict_from_hf", "hf_state_dict_from_gpt"]

# HF activation_function -> archlab activation
_ACTIVATIONS = {"gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh", "gelu_fast": "gelu_tanh",
                "gelu": "gelu", "relu": "relu"}
_TO_HF_ACTIVATION = {"gelu_tanh": "gelu_new", "gelu": "gelu", "relu": "relu"}


def gpt2_config_from_hf(hf_config: dict[str, Any]) -> dict[str, Any]:
    """:class:`~archlab.models.transformer.gpt.GPTConfig` fields from a Hugging Face GPT-2 ``config.json``.

    Raises:
        ArchlabError: the config is not GPT-2's (``model_type``), or uses an option this GPT lacks
            (cross-attention, layer-index attention scaling, unscaled attention, another activation).
    """
    kind = hf_config.get("model_type")
    if kind != "gpt2":
        raise ArchlabError(f"this is a {kind!r} checkpoint, not GPT-2 (model_type 'gpt2'); load_hf_gpt2 reads "
                           "GPT-2 checkpoints only (for BERT use archlab.models.transformer.hf_bert)")
    unsupported = [(key, value) for key, value, ok in (
        ("add_cross_attention", hf_config.get("add_cross_attention", False), False),
        ("scale_attn_by_inverse_layer_idx", hf_config.get("scale_attn_by_inverse_layer_idx", False), False),
        ("scale_attn_weights", hf_config.get("scale_attn_weights", True), True),
    ) if bool(value) != ok]
    if unsupported:
        shown = ", ".join(f"{k}={v}" for k, v in unsupported)
        raise ArchlabError(f"GPT-2 options not supported by archlab's GPT: {shown}; only the standard GPT-2 "
                           "architecture converts")
    act = hf_config.get("activation_function", "gelu_new")
    if act not in _ACTIVATIONS:
        raise ArchlabError(f"GPT-2 activation_function {act!r} is not supported; use one of {sorted(_ACTIVATIONS)}")
    D = int(hf_config["n_embd"])
    n_inner = hf_config.get("n_inner")
    pad = hf_config.get("pad_token_id")
    vocab = int(hf_config["vocab_size"])
    return {
        "vocab_size": vocab,
        "pad_id": int(pad) if pad is not None and 0 <= int(pad) < vocab else 0,
        "max_len": int(hf_config.get("n_positions", hf_config.get("n_ctx", 1024))),
        "num_layers": int(hf_config["n_layer"]),
        "num_heads": int(hf_config["n_head"]),
        "embed_dim": D,
        "ff_dim": int(n_inner) if n_inner else None,
        "dropout": float(hf_config.get("resid_pdrop", 0.1)),
        "bias": True,
        "activation": _ACTIVATIONS[act],
        "eps": float(hf_config.get("layer_norm_epsilon", 1e-5)),
        "tie_weights": bool(hf_config.get("tie_word_embeddings", True)),
        "pos": "learned",
        "norm": "layernorm",
    }


def hf_config_from_gpt(config: Any) -> dict[str, Any]:
    """A Hugging Face GPT-2 ``config.json`` for a :class:`GPTConfig` (what ``GPT2Config`` reads).

    Raises:
        ArchlabError: the GPT uses an option GPT-2 lacks (rotary/sinusoidal positions, RMSNorm,
            no biases).
    """
    bad = [f"{k}={getattr(config, k)!r}" for k, ok in (("pos", "learned"), ("norm", "layernorm"), ("bias", True))
           if getattr(config, k) != ok]
    if config.activation not in _TO_HF_ACTIVATION:
        bad.append(f"activation={config.activation!r}")
    if bad:
        raise ArchlabError(f"this GPT cannot be written as GPT-2: {', '.join(bad)} (GPT-2 has learned positions, "
                           "LayerNorm with biases and a GELU)")
    return {
        "model_type": "gpt2",
        "architectures": ["GPT2LMHeadModel"],
        "vocab_size": config.vocab_size,
        "n_positions": config.max_len,
        "n_embd": config.embed_dim,
        "n_layer": config.num_layers,
        "n_head": config.num_heads,
        "n_inner": config.ff_dim,
        "activation_function": _TO_HF_ACTIVATION[config.activation],
        "resid_pdrop": config.dropout,
        "embd_pdrop": config.dropout,
        "attn_pdrop": config.dropout,
        "layer_norm_epsilon": config.eps,
        "initializer_range": 0.02,
        "scale_attn_weights": True,
        "tie_word_embeddings": config.tie_weights,
        "use_cache": True,
        "bos_token_id": None,
        "eos_token_id": None,
    }


def _strip(key: str) -> str:
    return key[len("transformer."):] if key.startswith("transformer.") else key


def gpt_state_dict_from_hf(hf_state: dict[str, torch.Tensor], num_layers: int, tie_weights: bool = True
                           ) -> dict[str, torch.Tensor]:
    """archlab GPT parameter names and layouts from a GPT-2 state dict (see the module docstring)."""
    sd = {_strip(k): v for k, v in hf_state.items()
          if not (k.endswith(".attn.bias") or k.endswith(".attn.masked_bias"))}
    out: dict[str, torch.Tensor] = {}

    def take(key: str) -> torch.Tensor:
        if key not in sd:
            raise ArchlabError(f"the GPT-2 checkpoint lacks {key!r}; is it a complete GPT2LMHeadModel?")
        return sd.pop(key)

    for name in ("wte", "wpe"):
        out[f"{name}.weight"] = take(f"{name}.weight")
    for part in ("weight", "bias"):
        out[f"ln_f.{part}"] = take(f"ln_f.{part}")
    for i in range(num_layers):
        h, b = f"h.{i}.", f"blocks.{i}."
        for hf_ln, ours in (("ln_1", "norm1"), ("ln_2", "norm2")):
            for part in ("weight", "bias"):
                out[f"{b}{ours}.{part}"] = take(f"{h}{hf_ln}.{part}")
        w, bias = take(f"{h}attn.c_attn.weight"), take(f"{h}attn.c_attn.bias")  # (D, 3D), (3D,)
        out[f"{b}self_attn.qkv_proj.weight"] = w.t()  # (3D, D): q | k | v, in -> out
        out[f"{b}self_attn.qkv_proj.bias"] = bias
        for hf_name, ours in (("attn.c_proj", "self_attn.out_proj"), ("mlp.c_fc", "ff.fc1"), ("mlp.c_proj", "ff.fc2")):
            out[f"{b}{ours}.weight"] = take(f"{h}{hf_name}.weight").t()  # Conv1D (in, out) -> Linear (out, in)
            out[f"{b}{ours}.bias"] = take(f"{h}{hf_name}.bias")
    head = sd.pop("lm_head.weight", None)  # a tied checkpoint may still hold a copy of wte
    if tie_weights:
        out["lm_head.weight"] = out["wte.weight"]
    elif head is None:
        raise ArchlabError("the GPT-2 config says tie_word_embeddings=false but the checkpoint has no lm_head.weight")
    else:
        out["lm_head.weight"] = head
    if sd:
        raise ArchlabError(f"the checkpoint has weights a GPT-2 of n_layer={num_layers} does not: "
                           f"{', '.join(sorted(sd)[:5])}{'...' if len(sd) > 5 else ''}")
    return out


def hf_state_dict_from_gpt(model: Any) -> dict[str, torch.Tensor]:
    """GPT-2 names (with the ``transformer.`` prefix) and Conv1D layouts of a GPT's weights."""
    sd = {k: v.detach() for k, v in model.state_dict().items()}
    c = model.config
    out = {"transformer.wte.weight": sd["wte.weight"], "transformer.wpe.weight": sd["wpe.weight"],
           "transformer.ln_f.weight": sd["ln_f.weight"], "transformer.ln_f.bias": sd["ln_f.bias"]}
    for i in range(c.num_layers):
        h, b = f"transformer.h.{i}.", f"blocks.{i}."
        for hf_ln, ours in (("ln_1", "norm1"), ("ln_2", "norm2")):
            for part in ("weight", "bias"):
                out[f"{h}{hf_ln}.{part}"] = sd[f"{b}{ours}.{part}"]
        out[f"{h}attn.c_attn.weight"] = sd[f"{b}self_attn.qkv_proj.weight"].t()  # (3D, D) -> Conv1D (D, 3D)
        out[f"{h}attn.c_attn.bias"] = sd[f"{b}self_attn.qkv_proj.bias"]  # (3D,)
        for hf_name, ours in (("attn.c_proj", "self_attn.out_proj"), ("mlp.c_fc", "ff.fc1"), ("mlp.c_proj", "ff.fc2")):
            out[f"{h}{hf_name}.weight"] = sd[f"{b}{ours}.weight"].t()  # Linear (out, in) -> Conv1D (in, out)
            out[f"{h}{hf_name}.bias"] = sd[f"{b}{ours}.bias"]
    if not c.tie_weights:
        out["lm_head.weight"] = sd["lm_head.weight"]
    return {k: v.contiguous().clone() for k, v in out.items()}


def _read_weights(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    single, index = folder / "model.safetensors", folder / "model.safetensors.index.json"
    if single.exists():
        return load_file(str(single))
    if index.exists():  # sharded: {"weight_map": {name: file}}
        shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        state: dict[str, torch.Tensor] = {}
        for shard in shards:
            state.update(load_file(str(folder / shard)))
        return state
    for name in ("pytorch_model.bin", "model.bin"):
        if (folder / name).exists():
            return torch.load(folder / name, map_location="cpu", weights_only=True)
    raise ArchlabError(f"{folder} holds no model.safetensors, model.safetensors.index.json or pytorch_model.bin; "
                       "save the model with GPT2LMHeadModel.save_pretrained(folder) or download all its files")


def load_hf_gpt2(path_or_dir: str | Path) -> Any:
    """A :class:`~archlab.models.transformer.gpt.GPT` with the weights of a Hugging Face GPT-2 folder.

    Args:
        path_or_dir: a folder with ``config.json`` and ``model.safetensors`` (or a sharded
            safetensors index, or ``pytorch_model.bin``), or the path of its ``config.json``.

    Returns:
        the model (``model_name`` ``gpt2``, its config from :func:`gpt2_config_from_hf`), in eval mode.
    """
    from archlab.models.transformer import gpt  # noqa: F401  (registers "gpt2")
    from archlab.registry import create_model

    folder = Path(path_or_dir)
    if folder.is_file():
        folder = folder.parent
    cfg_path = folder / "config.json"
    if not cfg_path.exists():
        raise ArchlabError(f"{cfg_path} not found: point load_hf_gpt2 at a Hugging Face GPT-2 folder "
                           "(config.json + model.safetensors)")
    cfg = gpt2_config_from_hf(json.loads(cfg_path.read_text()))
    model = create_model("gpt2", **cfg)
    state = gpt_state_dict_from_hf(_read_weights(folder), cfg["num_layers"], cfg["tie_weights"])
    expected = dict(model.state_dict())
    for key, value in state.items():
        if key in expected and expected[key].shape != value.shape:
            raise ArchlabError(f"{key}: the checkpoint has shape {tuple(value.shape)} but its config.json implies "
                               f"{tuple(expected[key].shape)}")
    model.load_state_dict(state, strict=True)
    return model.eval()


def save_hf_gpt2(model: Any, out_dir: str | Path) -> Path:
    """Write ``model`` (a GPT with GPT-2's options) as ``config.json`` + ``model.safetensors``
    that ``transformers.GPT2LMHeadModel.from_pretrained(out_dir)`` loads. Returns ``out_dir``."""
    from safetensors.torch import save_file

    from archlab.utils import atomic_write_json

    config = hf_config_from_gpt(model.config)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.float().cpu() for k, v in hf_state_dict_from_gpt(model).items()}
    save_file(tensors, str(out / "model.safetensors"), metadata={"format": "pt"})
    atomic_write_json(out / "config.json", config)
    return out
