"""Transfer learning: start from pretrained weights, replace the head, freeze, fine-tune by layer groups.

A network trained on one task is a good start for another: its early layers compute general
features (edges, textures) and its late layers task-specific ones, so the features transfer and
the head is replaced (Yosinski et al. 2014). The ways to reuse it, cheapest first:

    linear_probe   freeze the backbone, train only a new head on its features (feature extraction)
    partial        train the last N layer groups, freeze the rest
    full           train everything, the lower layers slower (discriminative learning rates)
    gradual        start with the head only and unfreeze one more group every N epochs (ULMFiT)

References:
    J. Yosinski, J. Clune, Y. Bengio, H. Lipson, "How transferable are features in deep neural
    networks?", NeurIPS 2014, https://arxiv.org/abs/1411.1792
    J. Howard, S. Ruder, "Universal Language Model Fine-tuning for Text Classification" (ULMFiT:
    discriminative fine-tuning, gradual unfreezing), ACL 2018, https://arxiv.org/abs/1801.06146
    S. Kornblith, J. Shlens, Q. V. Le, "Do Better ImageNet Models Transfer Better?", CVPR 2019
    (linear probe vs fine-tuning), https://arxiv.org/abs/1805.08974
    K. Clark, M.-T. Luong, Q. V. Le, C. D. Manning, "ELECTRA: Pre-training Text Encoders as
    Discriminators Rather Than Generators", ICLR 2020 (layer-wise lr decay), https://arxiv.org/abs/2003.10555

The math. The model's parameters are split into layer groups G_1 .. G_L from input to output,
G_L the head. Group k counted from the top (k = L - l: the head has k = 0) learns with

    lr_k = lr * decay ** k                      (ULMFiT's eta^{l-1} = eta^l / 2.6 is decay = 1/2.6)

``linear_probe`` trains {G_L}; ``partial`` trains {G_{L-N+1} .. G_L}; ``full`` trains all. With
gradual unfreezing every N epochs, after e finished epochs the top ``min(1 + e // N, L)`` groups train.

Layer groups (:func:`layer_groups`), the rule:
    1. a model that defines ``layer_groups()`` gives its own (a list of groups from input to
       output, each a dotted module or parameter name, a module, or a list of them);
    2. otherwise the head is ``model.get_classifier()`` (or, for models without one, the last
       ``nn.Linear``) and is the last group;
    3. the top-level children are walked in registration order, skipping those without
       parameters; a child named ``features``, ``encoder``, ``layers``, ``blocks`` or ``stages``
       (the body of torchvision's VGG/MobileNet/EfficientNet/DenseNet, of ViTs), or the one child
       that holds the whole body, is opened and its children walked instead;
    4. each walked child with parameters starts a group, except that a layer whose parameters are
       all vectors (a norm, a per-channel scale) joins the group before it (ResNet's stem is
       conv1 + bn1), and, inside an opened container, convolutions with no pooling layer between
       them form one stage (VGG's conv stages between max-pools);
    5. parameters held directly by the model or an opened container (a ViT's class token and
       position embedding) join the first group.

    ResNet        conv1+bn1, layer1, layer2, layer3, layer4, fc
    VGG           features stage 1..5 (between max-pools), classifier (fc6, fc7), classifier[-1]
    MobileNet/EfficientNet   features.0, features.1, ..., classifier head
    ViT           conv_proj+class_token+pos_embedding, encoder_layer_0, ..., encoder_layer_11+ln, heads
    MLP           blocks.0, blocks.1, ..., head

Frozen batch norm: a batch-norm layer whose parameters are all frozen runs in eval mode even
while the model trains (its running mean and variance stay those of the pretrained model),
through a forward pre-hook that :func:`freeze_bn` installs. Freezing a group thus freezes all
of its state, and the frozen backbone computes the same features it would at inference.

Deviations from the paper:
    - ULMFiT unfreezes one group per epoch and fine-tunes with slanted triangular learning rates;
      here groups unfreeze every ``train.unfreeze_every`` epochs under whichever ``train.schedule``
      is set (``onecycle`` is the nearest to STLR), and ``layer_lr_decay`` defaults to 1 (no
      decay) rather than 1/2.6.
    - Dropout inside frozen groups still acts during training (only batch norm is frozen).
    - A ViT's final LayerNorm goes with the last encoder block, not with the head, so a linear
      probe trains exactly the classifier.
"""

from __future__ import annotations

import json
import logging
import os
import re
import weakref
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from archlab.engine.trainer import Callback
from archlab.utils import ArchlabError, atomic_write_json

__all__ = [
    "TransferError",
    "LoadReport",
    "load_pretrained",
    "read_weights",
    "download_weights",
    "weights_cache_dir",
    "layer_groups",
    "group_label",
    "apply_finetune",
    "set_trainable_groups",
    "freeze_bn",
    "GradualUnfreezing",
    "finetune_plan",
    "plan_summary",
    "init_from_config",
    "record_init",
]

_log = logging.getLogger(__name__)

FINETUNE_MODES = ("full", "linear_probe", "partial")
_OPENED = ("features", "encoder", "layers", "blocks", "stages")
_POOLS = (
    nn.MaxPool1d,
    nn.MaxPool2d,
    nn.MaxPool3d,
    nn.AvgPool1d,
    nn.AvgPool2d,
    nn.AvgPool3d,
    nn.AdaptiveAvgPool1d,
    nn.AdaptiveAvgPool2d,
    nn.AdaptiveMaxPool1d,
    nn.AdaptiveMaxPool2d,
    nn.LPPool2d,
)
_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)

Group = list[tuple[str, nn.Parameter]]


class TransferError(ArchlabError, ValueError):
    """Pretrained weights that cannot be read or do not fit, or a fine-tuning setting that cannot apply."""


# ----------------------------------------------------------------------------------------------
# reading weights


@dataclass
class LoadReport:
    """What :func:`load_pretrained` did.

    Attributes:
        source: where the weights came from (the resolved file).
        loaded: model keys that now hold the file's tensors.
        missing: model keys the file does not have (left at their initialisation).
        unexpected: file keys the model does not have (ignored).
        mismatched: ``(key, file shape, model shape)`` of tensors skipped because the shapes differ
            (a head for another number of classes); the model keeps its fresh initialisation.
        excluded: model keys deliberately not loaded (``exclude``, e.g. a head trained on other classes).
        prefix: the prefix stripped from the file's keys (``module.`` of DDP, ``model.``), if any.
    """

    source: str
    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = field(default_factory=list)
    excluded: list[str] = field(default_factory=list)
    prefix: str = ""

    @property
    def fresh(self) -> list[str]:
        """Model keys left at their fresh initialisation: missing, mismatched and excluded."""
        return self.missing + [k for k, _, _ in self.mismatched] + self.excluded

    def summary(self) -> str:
        """One line: how many tensors loaded, and which were skipped and why."""
        total = len(self.loaded) + len(self.fresh)
        parts = [f"loaded {len(self.loaded)}/{total} tensors from {self.source}"]
        if self.prefix:
            parts.append(f"stripped key prefix {self.prefix!r}")
        if self.mismatched:
            shown = [f"{k} {tuple(a)}->{tuple(b)}" for k, a, b in self.mismatched]
            parts.append(f"left fresh (shape differs): {_short(shown)}")
        if self.excluded:
            parts.append(f"left fresh (head for other classes): {_short(self.excluded)}")
        if self.missing:
            parts.append(f"missing in the file: {_short(self.missing)}")
        if self.unexpected:
            parts.append(f"unused from the file: {_short(self.unexpected)}")
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["mismatched"] = [
            {"key": k, "file_shape": list(a), "model_shape": list(b)} for k, a, b in self.mismatched
        ]
        out["summary"] = self.summary()
        return out


def _short(names: Sequence[str], n: int = 6) -> str:
    shown = ", ".join(names[:n])
    return shown + (f" (+{len(names) - n} more)" if len(names) > n else "")


def weights_cache_dir() -> Path:
    """Where downloaded weights go: ``$ARCHLAB_WEIGHTS``, else ``~/.cache/archlab/weights``."""
    env = os.environ.get("ARCHLAB_WEIGHTS")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "archlab" / "weights"


def download_weights(url: str, cache_dir: str | Path | None = None, progress: bool = True) -> Path:
    """Download ``url`` once into the weights cache and return the file's path.

    The file goes to a temporary name and is renamed into place when complete, so an interrupted
    download never leaves a truncated file that a later run would trust. A name ending in
    ``-<hex>.ext`` (torchvision's ``resnet18-f37072fd.pth``) is checked against that SHA-256 prefix.
    """
    from urllib.parse import urlparse

    cache = Path(cache_dir) if cache_dir is not None else weights_cache_dir()
    name = Path(urlparse(url).path).name
    if not name:
        import hashlib

        name = hashlib.sha256(url.encode()).hexdigest()[:16] + ".bin"
    dst = cache / name
    if dst.is_file():
        return dst
    cache.mkdir(parents=True, exist_ok=True)
    tmp = cache / f".{name}.{os.getpid()}.part"
    match = re.search(r"-([a-f0-9]{8,64})\.", name)
    try:
        torch.hub.download_url_to_file(
            url, str(tmp), hash_prefix=match.group(1) if match else None, progress=progress
        )
        os.replace(tmp, dst)
    except Exception as err:  # URLError, HTTPError, a hash mismatch, a full disk...
        tmp.unlink(missing_ok=True)
        raise TransferError(
            f"cannot download pretrained weights from {url} ({err}). Without network access, download "
            f"the file on another machine and pass its path (model.init=/path/to/{name}), or put it at {dst}"
        ) from None
    return dst


def _resolve(source: str | Path) -> Path:
    """The weights file a ``model.init`` value names (downloading a URL first)."""
    text = str(source)
    if text.startswith(("http://", "https://")):
        return download_weights(text)
    from archlab.data.pretrained_vocab import resolve_pretrained

    path = resolve_pretrained(text) or Path(text).expanduser()
    if not path.exists():
        raise TransferError(
            f"pretrained weights {text!r} do not exist; model.init takes a .safetensors/.pt/.pth file, "
            f"an archlab run folder or an http(s) URL"
        )
    if path.is_dir():
        if (path / "model.safetensors").is_file():  # the run's final weights (EMA ones if it used EMA)
            return path / "model.safetensors"
        for which in ("last", "best"):
            if (path / "checkpoints" / f"{which}.safetensors").is_file():
                return path / "checkpoints" / f"{which}.safetensors"
        if (path / "pytorch_model.bin").is_file():  # an older Hugging Face checkpoint
            return path / "pytorch_model.bin"
        raise TransferError(
            f"{text!r} is a folder but not an archlab run folder with weights (no model.safetensors "
            f"or checkpoints/last.safetensors); give a weights file or a finished run"
        )
    return path


def _sniff(path: Path) -> str:
    """``safetensors``, ``torch`` (zip or legacy pickle from torch.save) or ``unknown``."""
    with path.open("rb") as f:
        head = f.read(9)
    size = path.stat().st_size
    if len(head) == 9 and head[8:9] == b"{" and 0 < int.from_bytes(head[:8], "little") < size:
        return "safetensors"
    if head.startswith(b"PK\x03\x04") or head[:1] == b"\x80":
        return "torch"
    return "unknown"


def _unwrap(obj: Any, path: Path) -> dict[str, torch.Tensor]:
    """The state dict inside a loaded object: ``{"state_dict": ...}``, ``{"model": ...}`` or itself."""
    for _ in range(4):
        if not isinstance(obj, Mapping):
            break
        inner = next(
            (
                obj[k]
                for k in ("state_dict", "model_state_dict", "model", "module")
                if isinstance(obj.get(k), Mapping)
            ),
            None,
        )
        if inner is None:
            break
        obj = inner
    tensors = (
        {str(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)} if isinstance(obj, Mapping) else {}
    )
    if not tensors:
        raise TransferError(
            f"{str(path)!r} holds no state dict of tensors (found a {type(obj).__name__}); save weights "
            f"with torch.save(model.state_dict(), path) or safetensors"
        )
    return tensors


def read_weights(source: str | Path) -> tuple[dict[str, torch.Tensor], Path]:
    """The tensors of a weights source and the file they came from.

    ``source``: a ``.safetensors`` file (bare weights or an archlab checkpoint), a ``.pt``/``.pth``
    /``.bin`` file saved by ``torch.save`` (read with ``weights_only=True``: never full unpickling;
    ``{"state_dict": ...}`` and ``{"model": ...}`` wrappers are opened), an archlab run folder, or
    an http(s) URL (downloaded once to :func:`weights_cache_dir`).
    """
    from archlab.engine.checkpoint import CheckpointError, load_weights

    path = _resolve(source)
    kind = _sniff(path)
    if kind == "safetensors":
        try:
            return load_weights(path), path
        except CheckpointError as err:
            raise TransferError(str(err)) from None
    if kind == "torch":
        import pickle

        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise TransferError(
                f"{str(path)!r} holds Python objects besides tensors, which a weights-only load refuses "
                f"({first}); archlab never unpickles arbitrary code. Re-save it with "
                f"torch.save(model.state_dict(), path) or as .safetensors"
            ) from None
        except Exception as err:
            raise TransferError(f"{str(path)!r} is not a readable PyTorch weights file ({err})") from None
        return _unwrap(obj, path), path
    raise TransferError(
        f"{str(path)!r} is not a weights file: expected a .safetensors file, a .pt/.pth/.bin file saved "
        f"by torch.save, or an archlab run folder"
    )


def _strip_prefixes(sd: dict[str, torch.Tensor], wanted: set[str]) -> tuple[dict[str, torch.Tensor], str]:
    """Drop ``module.`` (DDP), ``model.`` (a wrapper) and ``_orig_mod.`` (torch.compile) prefixes
    while that makes more keys match the model's."""
    stripped = ""
    overlap = len(wanted & sd.keys())
    changed = True
    while changed:
        changed = False
        for prefix in ("module.", "model.", "_orig_mod."):
            if not any(k.startswith(prefix) for k in sd):
                continue
            cand = {k.removeprefix(prefix): v for k, v in sd.items()}
            n = len(wanted & cand.keys())
            if n > overlap and len(cand) == len(sd):
                sd, overlap, stripped, changed = cand, n, stripped + prefix, True
    return sd, stripped


def _matches(key: str, prefixes: Iterable[str]) -> bool:
    return any(key == p.rstrip(".") or key.startswith(p.rstrip(".") + ".") for p in prefixes)


def load_pretrained(
    model: nn.Module,
    source: str | Path | Mapping[str, torch.Tensor],
    strict: bool = False,
    *,
    exclude: Sequence[str] = (),
) -> LoadReport:
    """Load pretrained weights into ``model`` where names and shapes match; report the rest.

    Args:
        model: the freshly built network (its head sized for the new task).
        source: a weights file, an archlab run folder or checkpoint, an http(s) URL (see
            :func:`read_weights`), or a state dict.
        strict: every key must match in name and shape (torch's ``strict=True``); otherwise a
            ``ValueError`` lists the differences and nothing is loaded.
        exclude: key prefixes not to load (e.g. the head's module name), left freshly initialised.

    Returns:
        a :class:`LoadReport`. Tensors whose shape differs (a head for another number of classes)
        are skipped, not errors, unless ``strict``.
    """
    if isinstance(source, Mapping):
        sd, where = _unwrap(source, Path("<state dict>")), "<state dict>"
    else:
        sd, path = read_weights(source)
        where = str(path)
    target = model.state_dict()
    sd, prefix = _strip_prefixes(sd, set(target))
    report = LoadReport(source=where, prefix=prefix)
    take: dict[str, torch.Tensor] = {}
    for key, value in sd.items():
        if _matches(key, exclude):
            continue
        if key not in target:
            report.unexpected.append(key)
        elif tuple(value.shape) != tuple(target[key].shape):
            report.mismatched.append((key, tuple(value.shape), tuple(target[key].shape)))
        else:
            take[key] = value
    report.excluded = [k for k in target if _matches(k, exclude)]
    report.missing = [k for k in target if k not in sd and k not in report.excluded]
    report.loaded = [k for k in target if k in take]
    if strict and (report.missing or report.unexpected or report.mismatched):
        lines = []
        if report.missing:
            lines.append(f"missing keys: {', '.join(report.missing)}")
        if report.unexpected:
            lines.append(f"unexpected keys: {', '.join(report.unexpected)}")
        if report.mismatched:
            lines.append(
                "shape mismatches: "
                + ", ".join(f"{k} (file {a}, model {b})" for k, a, b in report.mismatched)
            )
        raise TransferError(
            f"the weights in {where} do not fit {type(model).__name__} exactly (strict): "
            + "; ".join(lines)
            + ". Set model.init_strict=false to load what fits and keep the rest freshly initialised."
        )
    model.load_state_dict(take, strict=False)
    _log.info(report.summary())
    return report


# ----------------------------------------------------------------------------------------------
# layer groups


def _head_module(model: nn.Module) -> nn.Module | None:
    """``model.get_classifier()``, else the last ``nn.Linear`` (LeNet, SimpleCNN, MLP)."""
    get = getattr(model, "get_classifier", None)
    if callable(get):
        head = get()
        if isinstance(head, nn.Module) and any(True for _ in head.parameters()):
            return head
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    return linears[-1] if linears else None


def _own_groups(model: nn.Module, spec: Sequence[Any]) -> list[Group]:
    """Normalise a model's own ``layer_groups()`` (names, modules, parameters or lists of them)."""
    modules = {id(m): n for n, m in model.named_modules()}
    named = dict(model.named_parameters())
    by_id = {id(p): n for n, p in named.items()}
    submodules = dict(model.named_modules())

    def params_of(item: Any) -> list[tuple[str, nn.Parameter]]:
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
            return [item]
        if isinstance(item, nn.Parameter):
            return [(by_id[id(item)], item)]
        if isinstance(item, nn.Module):
            return list(item.named_parameters(prefix=modules[id(item)]))
        if isinstance(item, str):
            if item in named:
                return [(item, named[item])]
            if item in submodules:
                return list(submodules[item].named_parameters(prefix=item))
            raise TransferError(
                f"{type(model).__name__}.layer_groups() names {item!r}, which is no module or parameter"
            )
        raise TransferError(
            f"{type(model).__name__}.layer_groups() gave a {type(item).__name__}; give names or modules"
        )

    groups: list[Group] = []
    seen: set[int] = set()
    for entry in spec:
        items = (
            entry
            if isinstance(entry, (list, tuple))
            and not (len(entry) == 2 and isinstance(entry[0], str) and isinstance(entry[1], nn.Parameter))
            else [entry]
        )
        group = [(n, p) for item in items for n, p in params_of(item) if id(p) not in seen]
        seen.update(id(p) for _, p in group)
        if group:
            groups.append(group)
    left = [n for n, p in named.items() if id(p) not in seen]
    if left:
        raise TransferError(
            f"{type(model).__name__}.layer_groups() leaves parameters in no group: {_short(left)}"
        )
    return groups


def layer_groups(model: nn.Module) -> list[Group]:
    """The model's parameters as layer groups from input to output; the last group is the head.

    Each group is a list of ``(name, parameter)``. The rule is in the module docstring: the
    model's own ``layer_groups()``, else its top-level children (opening a ``features`` or
    ``encoder`` body), a norm joining the layer before it, the classifier last.
    """
    own = getattr(model, "layer_groups", None)
    if callable(own):
        return _own_groups(model, own())
    head = _head_module(model)
    head_params = list(head.parameters()) if head is not None else []
    head_ids = {id(p) for p in head_params}
    by_id = {id(p): n for n, p in model.named_parameters()}
    seen = set(head_ids)
    groups: list[Group] = []
    first: Group = []  # parameters held directly by the model or an opened container

    def body_params(module: nn.Module, prefix: str) -> Group:
        out = []
        for n, p in module.named_parameters(prefix=prefix):
            if id(p) not in seen:
                out.append((n, p))
        return out

    def walk(container: nn.Module, prefix: str, opened: bool) -> None:
        first.extend(
            (f"{prefix}{n}", p) for n, p in container.named_parameters(recurse=False) if id(p) not in seen
        )
        seen.update(id(p) for _, p in first)
        children = [(n, c) for n, c in container.named_children()]
        holders = [(n, c) for n, c in children if body_params(c, "")]
        last = "none"  # the kind of the previous layer: "conv" lets the next conv join its stage
        for name, child in children:
            full = f"{prefix}{name}"
            has_children = any(True for _ in child.children())
            sole_body = len(holders) == 1 and holders[0][1] is child
            if has_children and (name in _OPENED or sole_body):
                walk(child, full + ".", True)
                last = "none"
                continue
            params = body_params(child, full)
            if not params:
                if isinstance(child, _POOLS):
                    last = "pool"
                continue
            seen.update(id(p) for _, p in params)
            vector_only = all(p.ndim <= 1 for _, p in params)
            conv = not has_children and isinstance(child, _CONVS)
            if groups and vector_only:
                groups[-1].extend(params)  # a norm belongs to the layer it normalises
            elif groups and opened and conv and last == "conv":
                groups[-1].extend(params)  # VGG: convolutions between two poolings are one stage
            else:
                groups.append(params)
            if not vector_only:
                last = "conv" if conv else "other"

    walk(model, "", False)
    if first:
        if groups:
            groups[0][:0] = first
        else:
            groups.append(first)
    if head_params:
        groups.append([(by_id[id(p)], p) for p in head_params])
    placed = {id(p) for g in groups for _, p in g}
    left = [(n, p) for n, p in model.named_parameters() if id(p) not in placed]
    if left:  # parameters of modules the walk did not reach (e.g. registered oddly): with the first group
        if groups:
            groups[0].extend(left)
        else:
            groups.append(left)
    return [g for g in groups if g]


def group_label(group: Group, model: nn.Module | None = None) -> str:
    """A short name for a group: the largest modules (and loose parameters) that make it up,
    joined by ``+`` (``layer1``, ``conv1+bn1``, ``features.0+features.2``)."""
    ids = {id(p) for _, p in group}
    names: list[str] = []
    if model is not None:
        covered: set[int] = set()
        for name, module in model.named_modules():
            own = {id(p) for p in module.parameters()}
            if name and own and own <= ids and not own <= covered:
                names.append(name)
                covered |= own
        names += [n for n, p in group if id(p) not in covered]  # loose parameters (a class token)
    else:
        names = list(dict.fromkeys(n.rsplit(".", 1)[0] if "." in n else n for n, _ in group))
    return "+".join(names) if len(names) <= 3 else f"{names[0]}+...+{names[-1]}"


# ----------------------------------------------------------------------------------------------
# freezing and discriminative learning rates

# Parameters a model had frozen itself before apply_finetune first saw it; they are never unfrozen.
_USER_FROZEN: weakref.WeakKeyDictionary[nn.Module, frozenset[str]] = weakref.WeakKeyDictionary()


class _FrozenBatchNorm:
    """Forward pre-hook: a batch norm whose owner's parameters are all frozen runs in eval mode."""

    def __init__(self, owner: nn.Module) -> None:
        self.owner = owner  # the norm itself, or for an affine-free norm the module holding it

    def __call__(self, module: nn.Module, args: Any) -> None:
        if module.training:
            params = list(self.owner.parameters())
            if params and not any(p.requires_grad for p in params):
                module.training = False  # the next model.train() sets it back; this hook runs again


def freeze_bn(model: nn.Module) -> int:
    """Keep the running statistics of frozen batch-norm layers fixed while the model trains.

    Installs a forward pre-hook on every batch-norm layer: while all of its parameters are frozen
    (``requires_grad=False``; for an affine-free norm, those of its parent module) the layer runs
    in eval mode, using and keeping the pretrained running mean and variance. The check happens
    at each forward, so unfreezing a group (gradual unfreezing) lets its norms learn again at the
    next ``model.train()``. Idempotent; returns the number of norms hooked.
    """
    parents = {id(c): m for m in model.modules() for c in m.children()}
    count = 0
    for module in model.modules():
        if not isinstance(module, _BATCH_NORMS):
            continue
        if any(isinstance(h, _FrozenBatchNorm) for h in module._forward_pre_hooks.values()):
            count += 1
            continue
        owner = module if any(True for _ in module.parameters()) else parents.get(id(module), module)
        module.register_forward_pre_hook(_FrozenBatchNorm(owner))
        count += 1
    return count


def set_trainable_groups(groups: Sequence[Group], n: int, managed: set[int] | None = None) -> None:
    """Let the top ``n`` groups train and freeze the others (only parameters in ``managed``, by id)."""
    for k, group in enumerate(reversed(groups)):
        for _, p in group:
            if managed is None or id(p) in managed:
                p.requires_grad_(k < n)


def _check(mode: str, trainable_groups: int, layer_lr_decay: float) -> None:
    if mode not in FINETUNE_MODES:
        raise TransferError(f"train.finetune must be one of {', '.join(FINETUNE_MODES)}, got {mode!r}")
    if trainable_groups < 1:
        raise TransferError(
            f"train.trainable_groups must be >= 1 (the head is group 1), got {trainable_groups}"
        )
    if not layer_lr_decay > 0:
        raise TransferError(
            f"train.layer_lr_decay must be > 0 (1 = the same lr everywhere), got {layer_lr_decay}"
        )


def _ceiling(mode: str, trainable_groups: int, n_groups: int) -> int:
    """How many groups (from the top) may ever train."""
    return {"full": n_groups, "linear_probe": 1, "partial": min(trainable_groups, n_groups)}[mode]


def apply_finetune(
    model: nn.Module,
    mode: str = "full",
    trainable_groups: int = 1,
    lr: float = 1e-3,
    layer_lr_decay: float = 1.0,
    *,
    weight_decay: float = 0.0,
    no_weight_decay: Iterable[str] = (),
    gradual: bool = False,
) -> list[dict[str, Any]]:
    """Freeze what should not train and return optimizer param groups with per-group learning rates.

    Args:
        model: the network (after :func:`load_pretrained`).
        mode: ``linear_probe`` (only the head trains), ``partial`` (the last ``trainable_groups``
            groups) or ``full`` (all).
        trainable_groups: for ``partial``, how many groups from the top train (the head is 1).
        lr: the head's learning rate.
        layer_lr_decay: group k from the top (head k = 0) gets ``lr * layer_lr_decay ** k``.
        weight_decay: applied to matrices and kernels only, as :func:`archlab.engine.optim.param_groups`.
        no_weight_decay: parameter names kept out of weight decay (a model's ``no_weight_decay()``).
        gradual: gradual unfreezing: every group that may train is in the returned groups, but only
            the head starts trainable; :class:`GradualUnfreezing` unfreezes the rest.

    Returns:
        torch optimizer param groups (head first), each with ``params``, ``lr``, ``weight_decay``
        and ``layer_group`` (k). Pass them to :func:`archlab.engine.optim.build_optimizer`.
    """
    from archlab.engine.optim import param_groups

    _check(mode, trainable_groups, layer_lr_decay)
    if gradual and mode == "linear_probe":
        raise TransferError(
            "gradual unfreezing (train.unfreeze_every) needs train.finetune=full or partial; "
            "a linear probe never unfreezes anything"
        )
    if model not in _USER_FROZEN:
        _USER_FROZEN[model] = frozenset(n for n, p in model.named_parameters() if not p.requires_grad)
    user_frozen = _USER_FROZEN[model]
    groups = [[(n, p) for n, p in g if n not in user_frozen] for g in layer_groups(model)]
    groups = [g for g in groups if g]
    if not groups:
        raise TransferError(f"{type(model).__name__} has no trainable parameters to fine-tune")
    ceiling = _ceiling(mode, trainable_groups, len(groups))
    set_trainable_groups(groups, ceiling)
    skip = set(no_weight_decay)
    out: list[dict[str, Any]] = []
    for k, group in enumerate(reversed(groups[len(groups) - ceiling :])):
        for g in param_groups(group, weight_decay, skip, lr=lr * layer_lr_decay**k):
            if g["params"]:
                out.append({**g, "layer_group": k})
    if gradual:
        set_trainable_groups(groups, 1)
    if ceiling < len(groups) or gradual:
        freeze_bn(model)
    return out


def finetune_plan(
    model: nn.Module,
    mode: str = "full",
    trainable_groups: int = 1,
    lr: float = 1e-3,
    layer_lr_decay: float = 1.0,
    unfreeze_every: int | None = None,
) -> dict[str, Any]:
    """What a fine-tuning setting does to ``model``, without changing it: groups, lrs, what trains.

    Returns ``{"mode", "unfreeze_every", "groups": [{"name", "params", "lr", "trains"}...]}`` from
    input to output (``trains``: from the start; with gradual unfreezing, after all unfreezing).
    """
    _check(mode, trainable_groups, layer_lr_decay)
    groups = layer_groups(model)
    ceiling = _ceiling(mode, trainable_groups, len(groups))
    rows = []
    for i, g in enumerate(groups):
        k = len(groups) - 1 - i
        rows.append(
            {
                "name": group_label(g, model),
                "params": sum(p.numel() for _, p in g),
                "lr": lr * layer_lr_decay**k if k < ceiling else 0.0,
                "trains": k < ceiling,
            }
        )
    return {"mode": mode, "unfreeze_every": unfreeze_every, "groups": rows}


def plan_summary(plan: dict[str, Any]) -> str:
    rows = plan["groups"]
    training = [r for r in rows if r["trains"]]
    names = ", ".join(f"{r['name']} lr={r['lr']:.3g}" for r in training[-4:][::-1])
    more = f" (+{len(training) - 4} lower)" if len(training) > 4 else ""
    grad = (
        f"; gradual unfreezing every {plan['unfreeze_every']} epoch(s) from the head down"
        if plan["unfreeze_every"]
        else ""
    )
    trainable = sum(r["params"] for r in training)
    return (
        f"finetune {plan['mode']}: {len(training)} of {len(rows)} layer groups train "
        f"({trainable:,} of {sum(r['params'] for r in rows):,} parameters): {names}{more}{grad}"
    )


class GradualUnfreezing(Callback):
    """Gradual unfreezing (ULMFiT): the head trains alone first; one more group every ``every`` epochs.

    The optimizer holds every parameter that may ever train from the start (frozen ones get no
    gradient, so the optimizer skips them), so unfreezing needs no new optimizer. The frozen
    state is derived from the epoch at the start of the fit, so a resumed run continues with the
    groups it had. Single process only: DDP fixes the set of synchronised parameters when it wraps
    the model.
    """

    def __init__(self, every: int) -> None:
        if every < 1:
            raise TransferError(f"train.unfreeze_every must be >= 1 epoch, got {every}")
        self.every = every
        self.groups: list[Group] = []
        self.managed: set[int] = set()

    def unfrozen(self, epoch: int) -> int:
        """How many groups from the top train during ``epoch`` (0-based)."""
        return min(1 + epoch // self.every, len(self.groups))

    def on_fit_start(self, trainer: Any) -> None:
        if trainer.fabric.world_size > 1:
            raise TransferError(
                "train.unfreeze_every works in a single process: DDP fixes which parameters "
                "it synchronises when it wraps the model; use train.finetune=partial instead"
            )
        in_optimizer = {id(p) for opt in trainer.optimizers for g in opt.param_groups for p in g["params"]}
        groups = [[(n, p) for n, p in g if id(p) in in_optimizer] for g in layer_groups(trainer.task.model)]
        self.groups = [g for g in groups if g]
        self.managed = {id(p) for g in self.groups for _, p in g}
        self._apply(trainer.epoch)

    def on_epoch_end(self, trainer: Any, metrics: dict[str, float]) -> None:
        self._apply(trainer.epoch)

    def _apply(self, epoch: int) -> None:
        set_trainable_groups(self.groups, self.unfrozen(epoch), self.managed)


# ----------------------------------------------------------------------------------------------
# the run-level glue (archlab.train)


def _source_class_names(source: str) -> list[str] | None:
    """The class names of the run a local source belongs to (from its summary.json), if any."""
    if source.startswith(("http://", "https://")):
        return None
    path = Path(source).expanduser()
    if path.is_file():
        path = path.parent.parent if path.parent.name == "checkpoints" else path.parent
    summary = path / "summary.json"
    if not (path / "config.yaml").is_file() or not summary.is_file():
        return None
    try:
        names = json.loads(summary.read_text()).get("class_names")
    except ValueError:
        return None
    return list(names) if names else None


def hf_checkpoint_config(source: str | Path) -> dict[str, Any] | None:
    """The ``config.json`` of a Hugging Face checkpoint folder (or pretrained name), else None."""
    text = str(source)
    if text.startswith(("http://", "https://")):
        return None
    from archlab.data.pretrained_vocab import resolve_pretrained

    path = resolve_pretrained(text) or Path(text).expanduser()
    cfg = path / "config.json"
    if not (path.is_dir() and cfg.is_file()):
        return None
    try:
        d = json.loads(cfg.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return d if isinstance(d, dict) and "model_type" in d else None


def init_from_config(
    model: nn.Module, source: str, strict: bool = False, class_names: Sequence[str] | None = None
) -> LoadReport:
    """``model.init``: load pretrained weights; a head for other classes stays freshly initialised.

    When ``source`` is an archlab run trained on other classes than ``class_names`` (the new
    dataset's), its head is not loaded even if the shapes agree: its rows mean other classes.
    """
    hf = hf_checkpoint_config(source)
    if hf is not None:  # a Hugging Face folder (BERT, GPT-2): its names are mapped onto ours first
        from archlab.models.transformer.hf import to_archlab_state_dict

        sd, path = read_weights(source)
        report = load_pretrained(model, to_archlab_state_dict(hf, sd, model), strict=strict)
        report.source = f"{path} (Hugging Face {hf['model_type']})"
        return report
    exclude: list[str] = []
    old = _source_class_names(source)
    if old is not None and class_names is not None and list(class_names) != old:
        exclude = [n for n, _ in layer_groups(model)[-1]]
    return load_pretrained(model, source, strict=strict, exclude=exclude)


def record_init(run_dir: str | Path, report: LoadReport) -> None:
    """Write ``init.json`` (the full report) and an ``init`` entry in ``summary.json``."""
    run_dir = Path(run_dir)
    atomic_write_json(run_dir / "init.json", report.to_dict())
    path = run_dir / "summary.json"
    summary = json.loads(path.read_text()) if path.exists() else {}
    summary["init"] = {
        "source": report.source,
        "loaded": len(report.loaded),
        "fresh": report.fresh,
        "summary": report.summary(),
    }
    atomic_write_json(path, summary)
