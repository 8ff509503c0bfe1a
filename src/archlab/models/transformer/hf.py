"""Hugging Face checkpoints as ``model.init``: map a BERT or GPT-2 state dict onto an archlab model.

``archlab train minilm_l6 --data sst2 --init minilm`` builds archlab's model from the registry (its
head sized for the dataset), then :func:`to_archlab_state_dict` renames and re-lays the checkpoint's
tensors (:mod:`~archlab.models.transformer.hf_bert`, :mod:`~archlab.models.transformer.hf_gpt2`) so
that :func:`archlab.transfer.load_pretrained` loads them by name; what the checkpoint lacks (a new
classifier) stays freshly initialised and is listed in the run's ``init.json``.

The model's shape must be the checkpoint's: layers, width, heads, feed-forward width and
activation are compared first, because a different number of heads has the same tensor shapes
and would load silently into a different function.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from archlab.utils import ArchlabError

__all__ = ["to_archlab_state_dict"]

_SHAPE = ("num_layers", "embed_dim", "num_heads", "ff_dim", "activation")


def _check_shape(model: nn.Module, wanted: dict[str, Any], kind: str) -> None:
    cfg = getattr(model, "config", None)
    if cfg is None:
        raise ArchlabError(f"a {kind} checkpoint loads into archlab's transformer models; {type(model).__name__} "
                           f"has no transformer config")
    def ours(k: str) -> Any:
        value = getattr(cfg, k, None)
        return 4 * cfg.embed_dim if k == "ff_dim" and value is None else value  # GPT's default width

    diff = [f"{k} {ours(k)} (checkpoint {wanted[k]})" for k in _SHAPE
            if wanted.get(k) is not None and hasattr(cfg, k) and ours(k) != wanted[k]]
    if diff:
        raise ArchlabError(f"the {kind} checkpoint does not fit {type(model).__name__}: {', '.join(diff)}; pick the "
                           f"registered model of its shape (minilm_l6 for all-MiniLM-L6-v2, gpt2 for GPT-2 small) or "
                           f"set those model options")


def _bert(hf_config: dict[str, Any], sd: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    from archlab.models.transformer.hf_bert import bert_config_from_hf, hf_name

    _check_shape(model, bert_config_from_hf(hf_config), "BERT")
    bare = {k[5:] if k.startswith("bert.") else k: v for k, v in sd.items()}  # the checkpoint without "bert."
    out: dict[str, torch.Tensor] = {}
    for name, tensor in model.state_dict().items():
        try:
            theirs = hf_name(name)
        except KeyError:
            continue  # an archlab-only buffer or parameter: stays as built
        key = theirs[5:] if theirs.startswith("bert.") else theirs
        src = sd.get(theirs, bare.get(key))
        if src is None:
            continue  # e.g. the new classifier: reported as freshly initialised
        if name.endswith("word_embeddings.weight") and src.shape[0] < tensor.shape[0]:
            src = torch.cat([src, tensor[src.shape[0]:]])  # added token rows keep their fresh values
        out[name] = src
    return out


def _gpt2(hf_config: dict[str, Any], sd: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    from archlab.models.transformer.hf_gpt2 import gpt2_config_from_hf, gpt_state_dict_from_hf

    wanted = gpt2_config_from_hf(hf_config)
    if wanted.get("ff_dim") is None:
        wanted["ff_dim"] = 4 * wanted["embed_dim"]
    _check_shape(model, wanted, "GPT-2")
    return gpt_state_dict_from_hf(sd, num_layers=model.config.num_layers, tie_weights=model.config.tie_weights)


def to_archlab_state_dict(hf_config: dict[str, Any], sd: dict[str, torch.Tensor], model: nn.Module
                          ) -> dict[str, torch.Tensor]:
    """The tensors of a Hugging Face checkpoint under ``model``'s parameter names.

    Args:
        hf_config: the checkpoint's ``config.json``.
        sd: its state dict (``model.safetensors`` or ``pytorch_model.bin``).
        model: the archlab model to load into (``minilm_l6``, ``bert_*``, ``gpt2``...).

    Raises:
        ArchlabError: a model type other than BERT or GPT-2, or a model of another shape.
    """
    kind = hf_config.get("model_type")
    if kind == "bert":
        return _bert(hf_config, sd, model)
    if kind == "gpt2":
        return _gpt2(hf_config, sd, model)
    raise ArchlabError(f"model.init: Hugging Face checkpoints of model_type 'bert' and 'gpt2' convert; this one is "
                       f"{kind!r}")
