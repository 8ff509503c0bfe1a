"""Hugging Face BERT checkpoints in and out, without importing ``transformers``.

A checkpoint folder holds ``config.json`` (the model's shape) and ``model.safetensors`` (or
``pytorch_model.bin``), whose tensor names follow Hugging Face's modules::

    [bert.]embeddings.{word_embeddings,position_embeddings,token_type_embeddings}.weight
    [bert.]embeddings.LayerNorm.{weight,bias}
    [bert.]encoder.layer.{i}.attention.self.{query,key,value}.{weight,bias}
    [bert.]encoder.layer.{i}.attention.output.{dense,LayerNorm}.{weight,bias}
    [bert.]encoder.layer.{i}.intermediate.dense.{weight,bias}
    [bert.]encoder.layer.{i}.output.{dense,LayerNorm}.{weight,bias}
    [bert.]pooler.dense.{weight,bias}
    classifier.{weight,bias}                                   (sequence / token classification)
    cls.predictions.transform.{dense,LayerNorm}.*, cls.predictions.bias   (masked LM; decoder tied)

The ``bert.`` prefix is there in the task models (``BertForSequenceClassification``...) and absent
in a bare ``BertModel`` (sentence-transformers' all-MiniLM-L6-v2). Old TensorFlow-converted files
call the LayerNorm parameters ``gamma``/``beta``; both spellings load.

* :func:`bert_config_from_hf` turns ``config.json`` into :class:`~archlab.models.transformer.bert.BertConfig` fields;
* :func:`load_hf_bert` builds our model with a head (or none) and loads the weights; a head the
  checkpoint lacks is initialised, and ``model.hf_load_info`` lists what was initialised and what
  in the file was not used (a warning says so too);
* :func:`save_hf_bert` writes ``config.json`` + ``model.safetensors`` that
  ``transformers.BertModel`` / ``BertForSequenceClassification`` / ``BertForTokenClassification`` /
  ``BertForMaskedLM`` load with ``from_pretrained``.

Deviations from the paper:
    - Not a paper: a file-format converter. Only BERT itself round-trips: ALBERT's factorised or
      shared layers and RoBERTa's position offsets have no ``BertModel`` equivalent and are
      refused; ``type_vocab_size=0`` is written as one all-zero segment embedding (the same function).
    - ``cls_id`` (our model prepending [CLS]) has no Hugging Face equivalent: it is recorded under
      ``config.json``'s ``"archlab"`` key, and ``transformers`` users must prepend that id themselves.
"""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

__all__ = ["bert_config_from_hf", "load_hf_bert", "save_hf_bert", "hf_state_dict", "hf_config", "hf_name"]

_ACT_FROM_HF = {"gelu": "gelu", "gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh", "gelu_fast": "gelu_tanh",
                "relu": "relu"}
_ACT_TO_HF = {"gelu": "gelu", "gelu_tanh": "gelu_pytorch_tanh", "relu": "relu"}
_ARCH_HEAD = {"BertForSequenceClassification": "sequence", "BertForTokenClassification": "token",
              "BertForMaskedLM": "mlm", "BertForPreTraining": "mlm"}
_HEAD_ARCH = {"sequence": "BertForSequenceClassification", "token": "BertForTokenClassification",
              "mlm": "BertForMaskedLM", None: "BertModel"}

# Our names (inside BertModel) -> Hugging Face's (inside BertModel), one block's worth.
_BLOCK = {
    "self_attn.q_proj": "attention.self.query",
    "self_attn.k_proj": "attention.self.key",
    "self_attn.v_proj": "attention.self.value",
    "self_attn.out_proj": "attention.output.dense",
    "norm1": "attention.output.LayerNorm",
    "ff.fc1": "intermediate.dense",
    "ff.fc2": "output.dense",
    "norm2": "output.LayerNorm",
}
_EMBED = {"embeddings.norm": "embeddings.LayerNorm", "pooler": "pooler.dense"}
_HEAD = {"head.dense": "cls.predictions.transform.dense", "head.norm": "cls.predictions.transform.LayerNorm",
         "head.bias": "cls.predictions.bias", "classifier": "classifier"}


def hf_name(name: str) -> str:
    """The Hugging Face name of one of our parameter names (``bert.layers.0.norm1.weight`` ->
    ``bert.encoder.layer.0.attention.output.LayerNorm.weight``); an unknown name raises KeyError."""
    prefix, inner = ("bert.", name[5:]) if name.startswith("bert.") else ("", name)
    if not prefix:  # a head, or a bare BertModel's own parameter
        for ours, theirs in _HEAD.items():
            if inner == ours or inner.startswith(ours + "."):
                return theirs + inner[len(ours):]
    m = re.fullmatch(r"layers\.(\d+)\.(.+)\.(weight|bias)", inner)
    if m:
        for ours, theirs in _BLOCK.items():
            if m.group(2) == ours:
                return f"{prefix}encoder.layer.{m.group(1)}.{theirs}.{m.group(3)}"
    for ours, theirs in _EMBED.items():
        if inner.startswith(ours + "."):
            return prefix + theirs + inner[len(ours):]
    if inner.startswith("embeddings.") and inner.count(".") == 2:
        return prefix + inner  # word/position/token_type embeddings keep their names
    raise KeyError(f"{name!r} has no Hugging Face BERT equivalent")


def bert_config_from_hf(d: dict[str, Any]) -> dict[str, Any]:
    """:class:`~archlab.models.transformer.bert.BertConfig` fields from a Hugging Face ``config.json`` dict.

    Raises:
        ValueError: the config is not a BERT one (``model_type`` other than ``"bert"``), or uses
            an option our BERT lacks (relative position embeddings, an unknown activation).
    """
    model_type = d.get("model_type")
    archs = d.get("architectures") or []
    if model_type != "bert" and not (model_type is None and any(a.startswith("Bert") for a in archs)):
        raise ValueError(f"not a BERT config: model_type {model_type!r} (architectures {archs}); load_hf_bert reads "
                         f"model_type 'bert' checkpoints only (RoBERTa/ALBERT/DistilBERT files use other names: "
                         f"build those with BertConfig's options and convert the weights yourself)")
    if d.get("position_embedding_type", "absolute") != "absolute":
        raise ValueError(f"position_embedding_type {d['position_embedding_type']!r} is not supported; "
                         f"only 'absolute' (learned) positions")
    act = d.get("hidden_act", "gelu")
    if act not in _ACT_FROM_HF:
        raise ValueError(f"hidden_act {act!r} is not supported; use one of {sorted(_ACT_FROM_HF)}")
    max_position = int(d.get("max_position_embeddings", 512))
    out: dict[str, Any] = {
        "vocab_size": int(d["vocab_size"]),
        "pad_id": int(d.get("pad_token_id") or 0),
        "max_len": min(128, max_position),
        "num_layers": int(d["num_hidden_layers"]),
        "num_heads": int(d["num_attention_heads"]),
        "embed_dim": int(d["hidden_size"]),
        "ff_dim": int(d["intermediate_size"]),
        "dropout": float(d.get("hidden_dropout_prob", 0.1)),
        "attention_dropout": float(d.get("attention_probs_dropout_prob", 0.1)),
        "eps": float(d.get("layer_norm_eps", 1e-12)),
        "type_vocab_size": int(d.get("type_vocab_size", 2)),
        "max_position": max_position,
        "activation": _ACT_FROM_HF[act],
        "cls_id": None,
    }
    labels = d.get("id2label")
    if d.get("num_labels") or labels:
        out["num_classes"] = int(d.get("num_labels") or len(labels))
    extra = d.get("archlab") or {}
    for key in ("cls_id", "mask_id"):
        if key in extra:
            out[key] = extra[key]
    if extra.get("type_vocab_size") == 0:
        out["type_vocab_size"] = 0
    return out


def _checkpoint_files(path: str | Path) -> tuple[Path, Path]:
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{p} does not exist; give a Hugging Face checkpoint folder "
                                f"(config.json + model.safetensors or pytorch_model.bin)")
    folder = p if p.is_dir() else p.parent
    cfg = folder / "config.json"
    if not cfg.is_file():
        raise FileNotFoundError(f"no config.json in {folder}; give a Hugging Face checkpoint folder "
                                f"(config.json + model.safetensors or pytorch_model.bin)")
    if p.is_file():
        return cfg, p
    for name in ("model.safetensors", "pytorch_model.bin"):
        if (folder / name).is_file():
            return cfg, folder / name
    raise FileNotFoundError(f"{folder} has config.json but no model.safetensors or pytorch_model.bin")


def _read_weights(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path))
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
    # TensorFlow-converted checkpoints name LayerNorm's parameters gamma/beta.
    return {re.sub(r"LayerNorm\.gamma$", "LayerNorm.weight", re.sub(r"LayerNorm\.beta$", "LayerNorm.bias", k)): v
            for k, v in state.items()}


def _mask_id(folder: Path) -> int | None:
    vocab = folder / "vocab.txt"
    if vocab.is_file():
        for i, line in enumerate(vocab.read_text(encoding="utf-8").splitlines()):
            if line.strip() == "[MASK]":
                return i
    return None


def load_hf_bert(path_or_dir: str | Path, head: str | None = "sequence", num_classes: int | None = None,
                 **overrides: Any) -> nn.Module:
    """Our BERT with the weights of a Hugging Face checkpoint.

    Args:
        path_or_dir: a checkpoint folder (``config.json`` + ``model.safetensors`` or
            ``pytorch_model.bin``), or the weights file inside one.
        head: ``"sequence"`` (:class:`BertForSequenceClassification`), ``"token"``, ``"mlm"``, or
            None for the bare encoder (:class:`BertModel` with its pooler, like ``transformers.BertModel``).
        num_classes: classes of a new classifier (default: the checkpoint's ``num_labels``, else 2).
        **overrides: other :class:`BertConfig` fields (``dropout=0.0``, ``max_len=64``, ``impl="math"``).

    Returns:
        the model, in eval mode, with ``hf_load_info = {"initialised": [...], "unused": [...]}``:
        our parameters the file lacked (a new head, freshly initialised) and the file's tensors
        that were not loaded (an NSP head, say). A warning names the initialised ones.

    Raises:
        FileNotFoundError: no checkpoint there. ValueError: not a BERT config, or the file lacks
        encoder weights / has tensors of the wrong shape.
    """
    from archlab.models.transformer.bert import HEADS, BertConfig, BertModel, _init_weights

    if head not in (None, *HEADS):
        raise ValueError(f"head must be one of {sorted(HEADS)} or None (the bare encoder), got {head!r}")
    cfg_path, weights_path = _checkpoint_files(path_or_dir)
    raw = json.loads(cfg_path.read_text(encoding="utf-8"))
    fields = bert_config_from_hf(raw)
    if num_classes is not None:
        fields["num_classes"] = num_classes
    elif head in ("sequence", "token") and fields.get("num_classes") is None:
        fields["num_classes"] = 2
    if head == "mlm" and fields.get("mask_id") is None:
        fields["mask_id"] = _mask_id(cfg_path.parent)
    fields.update(overrides)
    cfg = BertConfig(**fields, head=head or "sequence")
    if head is None:
        model: nn.Module = BertModel(cfg, pooler=True)
        _init_weights(model)
    else:
        model = HEADS[head](cfg)

    state = _read_weights(weights_path)
    prefix = "bert." if any(k.startswith("bert.") for k in state) else ""
    used: set[str] = set()
    initialised: list[str] = []
    ours = model.state_dict()
    with torch.no_grad():
        for name, tensor in ours.items():
            theirs = hf_name(name)
            if theirs.startswith("bert."):
                theirs = prefix + theirs[5:]
            elif head is None and not theirs.startswith(("classifier", "cls.")):
                theirs = prefix + theirs
            src = state.get(theirs)
            if src is None:
                initialised.append(name)
                continue
            if name.endswith("word_embeddings.weight") and src.shape[0] < tensor.shape[0]:
                tensor[: src.shape[0]].copy_(src)  # an added [MASK] row keeps its fresh initialisation
            elif src.shape != tensor.shape:
                raise ValueError(f"{weights_path}: {theirs} is {tuple(src.shape)} but {name} is {tuple(tensor.shape)}")
            else:
                tensor.copy_(src)
            used.add(theirs)
    tied = {"cls.predictions.decoder.weight", "cls.predictions.decoder.bias", f"{prefix}embeddings.position_ids"}
    unused = sorted(k for k in state if k not in used and k not in tied)
    encoder_missing = [n for n in initialised if n.startswith(("bert.embeddings", "bert.layers", "embeddings",
                                                                 "layers"))]
    if encoder_missing:
        raise ValueError(f"{weights_path} lacks encoder weights {encoder_missing[:4]}... (looked for "
                         f"{hf_name(encoder_missing[0])!r}); is it a BERT checkpoint?")
    model.hf_load_info = {"initialised": initialised, "unused": unused}
    if initialised:
        warnings.warn(f"load_hf_bert: {weights_path.parent.name} has no {', '.join(initialised)}; initialised "
                      f"them (train before use)", stacklevel=2)
    model.model_name = f"hf:{cfg_path.parent.name}"
    model.family = "transformer"
    return model.eval()


def _check_exportable(model: nn.Module) -> Any:
    cfg = getattr(model, "config", None)
    if cfg is None or not hasattr(cfg, "share_layers"):
        raise TypeError(f"save_hf_bert takes an archlab BERT model (BertModel or a Bert* head), got {type(model).__name__}")
    if cfg.share_layers or cfg.embedding_width != cfg.embed_dim:
        raise ValueError("ALBERT options (share_layers, embedding_dim) have no Hugging Face BertModel equivalent; "
                         "build the model without them to export it")
    if cfg.pad_offset_positions:
        raise ValueError("pad_offset_positions (RoBERTa positions) has no BertModel equivalent; export is BERT only")
    return cfg


def _head_of(model: nn.Module) -> str | None:
    from archlab.models.transformer.bert import HEADS

    for head, cls in HEADS.items():
        if isinstance(model, cls):
            return head
    return None


def hf_config(model: nn.Module) -> dict[str, Any]:
    """The Hugging Face ``config.json`` dict of one of our BERT models."""
    cfg = _check_exportable(model)
    head = _head_of(model)
    out: dict[str, Any] = {
        "architectures": [_HEAD_ARCH[head]],
        "model_type": "bert",
        "vocab_size": model.state_dict()[_word_key(model)].shape[0],
        "hidden_size": cfg.embed_dim,
        "num_hidden_layers": cfg.num_layers,
        "num_attention_heads": cfg.num_heads,
        "intermediate_size": cfg.ff_dim,
        "hidden_act": _ACT_TO_HF[cfg.activation],
        "hidden_dropout_prob": cfg.dropout,
        "attention_probs_dropout_prob": cfg.attention_dropout,
        "max_position_embeddings": cfg.max_position,
        "type_vocab_size": max(1, cfg.type_vocab_size),
        "initializer_range": 0.02,
        "layer_norm_eps": cfg.eps,
        "pad_token_id": cfg.pad_id,
        "position_embedding_type": "absolute",
        "classifier_dropout": None,
        "archlab": {"cls_id": cfg.cls_id, "mask_id": getattr(model, "mask_id", cfg.mask_id),
                    "type_vocab_size": cfg.type_vocab_size},
    }
    if head in ("sequence", "token"):
        k = cfg.num_classes
        out["id2label"] = {str(i): f"LABEL_{i}" for i in range(k)}
        out["label2id"] = {f"LABEL_{i}": i for i in range(k)}
    return out


def _word_key(model: nn.Module) -> str:
    return "bert.embeddings.word_embeddings.weight" if _head_of(model) else "embeddings.word_embeddings.weight"


def hf_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """Our model's weights under Hugging Face's names (contiguous copies; the decoder's tied copy included)."""
    cfg = _check_exportable(model)
    out: dict[str, torch.Tensor] = {}
    for name, tensor in model.state_dict().items():
        out[hf_name(name)] = tensor.detach().contiguous().clone()
    prefix = "bert." if _head_of(model) else ""
    if cfg.type_vocab_size == 0:
        word = out[prefix + "embeddings.word_embeddings.weight"]
        out[prefix + "embeddings.token_type_embeddings.weight"] = torch.zeros(1, word.shape[1], dtype=word.dtype)
    if _head_of(model) == "mlm":
        word = out["bert.embeddings.word_embeddings.weight"]
        bias = out["cls.predictions.bias"]
        # Hugging Face's decoder spans the whole table; an added [MASK] row gets a very low bias.
        full_bias = torch.full((word.shape[0],), -1e4, dtype=bias.dtype)
        full_bias[: bias.shape[0]] = bias
        out["cls.predictions.bias"] = full_bias
        out["cls.predictions.decoder.weight"] = word.clone()
        out["cls.predictions.decoder.bias"] = full_bias.clone()
    return out


def save_hf_bert(model: nn.Module, out_dir: str | Path) -> Path:
    """Write ``config.json`` + ``model.safetensors`` that ``transformers`` loads with ``from_pretrained``.

    Args:
        model: a :class:`BertModel`, :class:`BertForSequenceClassification`,
            :class:`BertForTokenClassification` or :class:`BertForMaskedLM` without ALBERT/RoBERTa options.
        out_dir: the folder (created).

    Returns:
        the folder. ``load_hf_bert`` reads it back (``cls_id``/``mask_id`` included).
    """
    from safetensors.torch import save_file

    from archlab.utils import atomic_write_json

    config = hf_config(model)
    state = hf_state_dict(model)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_file(state, str(out / "model.safetensors"), metadata={"format": "pt"})
    atomic_write_json(out / "config.json", config)
    return out
