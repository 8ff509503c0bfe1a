"""The data contract: what a dataset loader returns and how the engine iterates it.

A registered dataset loader (``@register_dataset``) returns a :class:`DataBundle`: the
:class:`DatasetInfo` (kind, shapes, classes, normalisation) and in-memory splits
(:class:`ArraySplit`: ``x`` and ``y`` tensors). Images stay ``uint8`` (N, C, H, W) in memory and
are converted, normalised and augmented batch by batch on the training device
(:mod:`archlab.data.transforms`); tabular features are ``float32`` (N, F), standardised with the
training split's statistics.

:class:`TensorLoader` walks a split in mini-batches: a permutation drawn from
``(seed, epoch)`` alone (so a resumed run sees the same order), sharded across ranks, and able
to start mid-epoch (``start_batch``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch

__all__ = ["DatasetInfo", "ArraySplit", "DataBundle", "TensorLoader", "split_off", "subsample_labels"]


@dataclass
class DatasetInfo:
    """What a model and a report need to know about a dataset.

    Attributes:
        name: registered name.
        kind: ``"image"``, ``"tabular"``, ``"graph_nodes"``/``"graph_set"``, and the sequence kinds:
            ``"text"`` (token ids (N, T) -> class labels (N,)), ``"lm"`` (token ids (N, T) -> the
            next tokens (N, T)), ``"seq2seq"`` (source ids (N, S) -> target ids (N, T) framed
            ``<bos> ... <eos>``) and ``"series"`` (windows (N, L, F) -> future values (N, H)).
        input_shape: one sample's shape: (C, H, W) for images, (F,) for tabular data, (T,) for
            token ids (the padded length), (L, F) for time-series windows.
        num_classes: number of classes for classification, else None.
        class_names: a label per class (``"0"``..``"9"`` for digits).
        mean, std: per-channel statistics used to normalise images (in [0, 1] units); for
            ``series`` the per-feature scaling of the windows (raw = scaled * std + mean).
        feature_names: column names of tabular data.
        source: where the data came from (a folder, "scikit-learn", "generated").
        vocab: text kinds: the :class:`archlab.data.text.Vocab` (tokenizer included) of the
            inputs; ``pad_id`` is 0 and padding is on the right.
        target_vocab: ``seq2seq``: the vocab of the targets (None when shared with ``vocab``).
        horizon: ``series``: how many future steps each window predicts.
    """

    name: str
    kind: str
    input_shape: tuple[int, ...]
    num_classes: int | None = None
    class_names: list[str] = field(default_factory=list)
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    feature_names: list[str] = field(default_factory=list)
    source: str = ""
    vocab: Any = None
    target_vocab: Any = None
    horizon: int | None = None

    def model_fields(self) -> dict[str, Any]:
        """Values for the data-dependent fields of model configs."""
        out: dict[str, Any] = {"num_classes": self.num_classes}
        if self.kind in ("image", "image_pair", "image_unpaired"):
            c, h, w = self.input_shape
            out.update(in_channels=c, image_size=h)
            out["in_features"] = c * h * w
        elif self.kind in ("text", "lm", "seq2seq"):
            out["vocab_size"] = len(self.vocab) if self.vocab is not None else None
            out["pad_id"] = getattr(self.vocab, "pad_id", 0)
            if self.kind == "seq2seq":
                tgt = self.target_vocab if self.target_vocab is not None else self.vocab
                out["src_vocab_size"] = out["vocab_size"]
                out["tgt_vocab_size"] = len(tgt) if tgt is not None else None
            out["max_len"] = self.input_shape[0] if self.input_shape else None
            if self.kind in ("text", "lm") and self.vocab is not None:
                from archlab.data.text import BOS_ID, Vocab

                if isinstance(self.vocab, Vocab):  # archlab's vocab has no [CLS]: BERT prepends <bos>
                    out["cls_id"] = BOS_ID
                elif getattr(self.vocab, "mask_id", None) is not None:  # a checkpoint's tokenizer ([CLS] framed)
                    out["mask_id"] = self.vocab.mask_id
        elif self.kind == "series":
            out["in_features"] = self.input_shape[-1]
            out["horizon"] = self.horizon
        else:
            out["in_features"] = int(math.prod(self.input_shape))
        return out


@dataclass
class ArraySplit:
    """One split held in memory: inputs ``x`` (N, ...) and targets ``y`` (N,)."""

    x: torch.Tensor
    y: torch.Tensor

    def __post_init__(self) -> None:
        if len(self.x) != len(self.y):
            raise ValueError(f"x has {len(self.x)} rows but y has {len(self.y)}")

    def __len__(self) -> int:
        return len(self.x)

    def subset(self, index: torch.Tensor) -> ArraySplit:
        return ArraySplit(self.x[index], self.y[index])


@dataclass
class DataBundle:
    """A dataset's splits and description. ``val`` and ``test`` may be None."""

    info: DatasetInfo
    train: ArraySplit
    val: ArraySplit | None = None
    test: ArraySplit | None = None
    # (mean, std) that standardised tabular features: raw inputs at prediction time get the same.
    feature_stats: tuple[torch.Tensor, torch.Tensor] | None = None

    def splits(self) -> dict[str, ArraySplit]:
        return {k: v for k, v in (("train", self.train), ("val", self.val), ("test", self.test)) if v is not None}


def split_off(split: ArraySplit, fraction: float, seed: int = 0) -> tuple[ArraySplit, ArraySplit]:
    """Hold out ``fraction`` of ``split`` (a fixed, seeded choice): returns (rest, held_out)."""
    n_hold = int(round(len(split) * fraction))
    if n_hold <= 0:
        raise ValueError(f"val_split={fraction} holds out no rows of {len(split)}")
    perm = torch.randperm(len(split), generator=torch.Generator().manual_seed(seed))
    return split.subset(perm[n_hold:]), split.subset(perm[:n_hold])


def select_classes(bundle: DataBundle, classes: list[int]) -> DataBundle:
    """Keep only the rows of ``classes`` in every split, relabelled 0..k-1 in the order given.

    ``data.classes=[5,6,7,8,9]`` turns MNIST into a 5-way task whose label 0 is the digit 5 (the
    transfer-learning experiment pretrains on digits 0-4 and transfers to 5-9 this way).
    """
    import dataclasses

    k = bundle.info.num_classes
    if k is None:
        raise ValueError("data.classes needs a classification dataset (integer labels)")
    bad = [c for c in classes if not 0 <= int(c) < k]
    if bad or len(set(classes)) != len(classes) or not classes:
        raise ValueError(f"data.classes must be distinct class indices in 0..{k - 1}, got {list(classes)}")
    lut = torch.full((k,), -1, dtype=torch.long)
    lut[torch.tensor([int(c) for c in classes])] = torch.arange(len(classes))

    def keep(split: ArraySplit | None) -> ArraySplit | None:
        if split is None:
            return None
        new = lut[split.y.long()]  # (N,), -1 for the classes dropped
        index = torch.nonzero(new >= 0).squeeze(1)
        return ArraySplit(split.x[index], new[index].to(split.y.dtype))

    names = bundle.info.class_names
    info = dataclasses.replace(
        bundle.info,
        num_classes=len(classes),
        class_names=[names[int(c)] if len(names) == k else str(c) for c in classes],
    )
    return dataclasses.replace(bundle, info=info, train=keep(bundle.train), val=keep(bundle.val), test=keep(bundle.test))


def subsample_labels(split: ArraySplit, fraction: float, seed: int = 0) -> ArraySplit:
    """Keep a stratified, seeded ``fraction`` of a labelled split (``data.label_fraction``).

    Each class keeps ``max(1, round(n_c * fraction))`` of its ``n_c`` rows, chosen at random from
    ``seed`` alone; the kept rows stay in their original order. The rest is dropped (this
    simulates a smaller labelled training set; nothing is kept as unlabelled data).

    Args:
        split: the split, with integer class labels ``y`` (N,).
        fraction: in (0, 1]; 1 returns ``split`` itself.
        seed: seed of the choice.

    Raises:
        ValueError: ``fraction`` outside (0, 1], or labels that are not integer classes (N,).
    """
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"label_fraction must be in (0, 1], got {fraction}")
    if fraction == 1.0:
        return split
    y = split.y
    if y.dim() != 1 or y.is_floating_point() or y.is_complex():
        raise ValueError(f"label_fraction needs integer class labels (N,), got {y.dtype} {tuple(y.shape)}")
    g = torch.Generator().manual_seed(seed)
    keep = []
    for c in torch.unique(y):  # sorted classes: the draw does not depend on the row order
        idx = torch.nonzero(y == c).squeeze(1)  # (n_c,)
        k = max(1, round(len(idx) * fraction))
        keep.append(idx[torch.randperm(len(idx), generator=g)[:k]])
    return split.subset(torch.cat(keep).sort().values)


class TensorLoader:
    """Mini-batches of an :class:`ArraySplit`, moved to ``device`` and passed through ``transform``.

    Args:
        split: the data.
        batch_size: per-rank batch size.
        shuffle: draw a new permutation each epoch from ``(seed, epoch)``.
        drop_last: drop a last, smaller batch (training) or keep it (evaluation).
        rank, world_size: this process's shard; every rank gets the same number of batches
            (the permutation is padded by wrapping around, as DistributedSampler does).
        transform: ``fn(x) -> x`` on a batch already on ``device`` (normalisation, augmentation).
        device: where batches go.
    """

    def __init__(
        self,
        split: ArraySplit,
        batch_size: int,
        *,
        shuffle: bool = False,
        drop_last: bool = False,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
        device: torch.device | str = "cpu",
    ) -> None:
        self.split = split
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.transform = transform
        self.device = torch.device(device)
        self.epoch = 0
        self.start_batch = 0
        n = len(split)
        self.per_rank = math.ceil(n / world_size) if world_size > 1 else n
        if drop_last and self.per_rank < batch_size:
            raise ValueError(
                f"batch_size {batch_size} is larger than the {self.per_rank} training rows per "
                f"process; lower train.batch_size"
            )
        # Whole dataset on the device when it fits comfortably: indexing then costs no copy.
        self._on_device = split if self.device.type == "cpu" else None

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        """Choose the epoch (its permutation) and the batch to start from (for resuming)."""
        self.epoch = epoch
        self.start_batch = start_batch

    def __len__(self) -> int:
        if self.drop_last:
            return self.per_rank // self.batch_size
        return math.ceil(self.per_rank / self.batch_size)

    def indices(self) -> torch.Tensor:
        n = len(self.split)
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
            order = torch.randperm(n, generator=g)
        else:
            order = torch.arange(n)
        if self.world_size > 1:
            total = self.per_rank * self.world_size
            if total > n:
                order = torch.cat([order, order[: total - n]])
            order = order[self.rank :: self.world_size]
        return order

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        if self._on_device is None:
            self._on_device = ArraySplit(
                self.split.x.to(self.device, non_blocking=True), self.split.y.to(self.device, non_blocking=True)
            )
        data = self._on_device
        order = self.indices().to(self.device)
        for b in range(self.start_batch, len(self)):
            idx = order[b * self.batch_size : (b + 1) * self.batch_size]
            x = data.x[idx]
            if self.transform is not None:
                x = self.transform(x)
            yield x, data.y[idx]
        self.start_batch = 0
