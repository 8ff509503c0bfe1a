"""Random Erasing, mixup, CutMix and label_fraction: statistics, exact maths, wiring into a run."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import archlab
from archlab.config import ConfigError, DataSection
from archlab.data import ArraySplit, DatasetInfo
from archlab.data.base import subsample_labels
from archlab.data.transforms import (
    Compose,
    Normalize,
    RandomErasing,
    build_transform,
    cutmix_batch,
    cutmix_box,
    mixup_batch,
    sample_lam,
)
from archlab.tasks.classification import ClassificationTask, classification_loss, mixed_classification_loss

FAST = {"system.progress": False, "system.tensorboard": False, "run.report": False}
SENTINEL = -100.0  # a fill value no [0, 1] pixel has, so erased pixels are exactly visible


def _erased_boxes(x: torch.Tensor, out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(heights, widths) (B,) of the erased rectangles (0 where nothing was erased), checking that
    each hole is one full rectangle, the same in every channel, and that nothing else changed."""
    hole = out == SENTINEL  # (B, C, H, W)
    assert torch.equal(hole, hole[:, :1].expand_as(hole)), "every channel erases the same pixels"
    assert torch.equal(out[~hole], x[~hole]), "pixels outside the box are untouched"
    hole = hole[:, 0]  # (B, H, W)
    rows, cols = hole.any(dim=2), hole.any(dim=1)  # (B, H), (B, W)
    h, w = rows.sum(dim=1), cols.sum(dim=1)  # (B,)
    assert torch.equal(hole.flatten(1).sum(dim=1), h * w), "each hole is a full rectangle"

    def span(m: torch.Tensor) -> torch.Tensor:  # last - first + 1 of the True entries (0 if none)
        idx = torch.arange(m.shape[1]).expand_as(m)
        first = torch.where(m, idx, m.shape[1]).min(dim=1).values
        last = torch.where(m, idx, -1).max(dim=1).values
        return (last - first + 1).clamp_min(0)

    assert torch.equal(span(rows), h) and torch.equal(span(cols), w), "each box is contiguous"
    return h, w


def test_random_erasing_area_and_aspect_statistics():
    torch.manual_seed(0)
    x = torch.rand(600, 2, 64, 64)
    out = RandomErasing(p=1.0, fill=SENTINEL)(x)
    h, w = _erased_boxes(x, out)
    assert (h > 0).all()  # at 64x64 some draw always fits within 10 tries
    frac = (h * w).float() / 64**2
    log_r = (h.float() / w.float()).log()
    # area in [0.02, 0.33] (up to rounding of the sides); mean of U(0.02, 0.33) is 0.175, and
    # redrawing boxes that do not fit favours smaller ones slightly
    assert frac.min() >= 0.015 and frac.max() <= 0.35
    assert 0.15 < float(frac.mean()) < 0.19
    # aspect ratio log-uniform on [0.3, 3.3]: symmetric around 1 in log space, spread to both ends
    assert log_r.min() >= math.log(0.3) - 0.2 and log_r.max() <= math.log(3.3) + 0.2
    assert abs(float(log_r.mean())) < 0.12
    assert (log_r > math.log(2.0)).float().mean() > 0.1 and (log_r < -math.log(2.0)).float().mean() > 0.1


def test_random_erasing_probability_and_reproducibility():
    x = torch.rand(4000, 1, 16, 16)
    torch.manual_seed(1)
    out = RandomErasing(p=0.3, fill=SENTINEL)(x)
    h, _ = _erased_boxes(x, out)
    erased = (h > 0).float()
    assert abs(float(erased.mean()) - 0.3) < 0.03
    assert torch.equal(RandomErasing(p=0.0, fill=SENTINEL)(x), x)
    # same seed, same boxes and (random fill) same noise; another seed differs
    tf = RandomErasing(p=0.5)
    torch.manual_seed(7)
    a = tf(x[:64])
    torch.manual_seed(7)
    b = tf(x[:64])
    torch.manual_seed(8)
    c = tf(x[:64])
    assert torch.equal(a, b) and not torch.equal(a, c)
    changed = a != x[:64]
    assert changed.any() and a[changed].std() > 0.5  # N(0, 1) noise, not a constant


def test_random_erasing_validation_and_build_transform():
    with pytest.raises(ValueError, match="p must be"):
        RandomErasing(p=1.5)
    with pytest.raises(TypeError, match="float"):
        RandomErasing(p=1.0)(torch.zeros(2, 1, 8, 8, dtype=torch.uint8))
    info = DatasetInfo("d", "image", (1, 8, 8), 10, mean=(0.5,), std=(0.25,))
    tf = build_transform(info, DataSection(random_erasing=0.25, cutout=2), train=True)
    assert isinstance(tf, Compose)
    names = [type(t).__name__ for t in tf.transforms]
    assert names.index("RandomErasing") > names.index("Normalize")
    assert tf.transforms[-1].p == 0.25
    ev = build_transform(info, DataSection(random_erasing=0.25), train=False)
    assert not any(isinstance(t, RandomErasing) for t in ev.transforms)
    assert isinstance(ev.transforms[-1], Normalize)
    with pytest.raises(ValueError, match="random_erasing"):
        build_transform(info, DataSection(random_erasing=2.0), train=True)


def test_sample_lam_is_beta_and_seeded():
    torch.manual_seed(0)
    lams = torch.tensor([sample_lam(0.4) for _ in range(3000)])
    # Beta(a, a): mean 1/2, variance 1 / (4 (2a + 1)) = 0.1389 for a = 0.4
    assert abs(float(lams.mean()) - 0.5) < 0.03
    assert abs(float(lams.var()) - 1 / (4 * 1.8)) < 0.015
    torch.manual_seed(3)
    a = sample_lam(1.0)
    torch.manual_seed(3)
    assert sample_lam(1.0) == a
    with pytest.raises(ValueError, match="alpha"):
        sample_lam(0.0)


def test_mixup_batch_math():
    x = torch.randn(8, 3, 5, 5)
    y = torch.arange(8) % 4
    torch.manual_seed(5)
    mixed, y_a, y_b, lam = mixup_batch(x, y, 0.5)
    # replay the draws: lam, then the permutation
    torch.manual_seed(5)
    lam_ref = sample_lam(0.5)
    perm = torch.randperm(8)
    assert lam == pytest.approx(lam_ref) and 0.0 <= lam <= 1.0
    assert torch.equal(y_a, y) and torch.equal(y_b, y[perm])
    assert torch.allclose(mixed, lam * x + (1 - lam) * x[perm], atol=1e-6)
    with pytest.raises(TypeError, match="float"):
        mixup_batch(x.to(torch.uint8), y, 0.5)


def test_cutmix_box_area_correction():
    x = torch.randn(6, 2, 10, 12)
    x_before = x.clone()
    y = torch.arange(6)
    corrected = 0
    for seed in range(40):  # centres near the borders clip the box: lam must follow the clipped area
        torch.manual_seed(seed)
        mixed, y_a, y_b, lam = cutmix_batch(x, y, 1.0)
        torch.manual_seed(seed)
        lam0 = sample_lam(1.0)
        perm = torch.randperm(6)
        y0, y1, x0, x1 = cutmix_box(10, 12, lam0)
        inside = torch.zeros(10, 12, dtype=torch.bool)
        inside[y0:y1, x0:x1] = True
        assert lam == pytest.approx(1 - int(inside.sum()) / 120)  # the true share of each image kept
        assert torch.equal(y_a, y) and torch.equal(y_b, y[perm])
        assert torch.equal(mixed[:, :, inside], x[perm][:, :, inside])
        assert torch.equal(mixed[:, :, ~inside], x[:, :, ~inside])
        # the box side is sqrt(1 - lam0) of the image's before clipping
        assert y1 - y0 <= int(10 * math.sqrt(1 - lam0)) and x1 - x0 <= int(12 * math.sqrt(1 - lam0))
        corrected += abs(lam - lam0) > 0.05
    assert corrected >= 5  # clipped boxes happen, and then the drawn lam is not the kept share
    assert torch.equal(x, x_before)  # the input is not modified in place


def test_mixed_loss_equals_hand_formula():
    torch.manual_seed(0)
    logits = torch.randn(5, 4)
    y_a, y_b, lam, eps = torch.tensor([0, 1, 2, 3, 0]), torch.tensor([3, 3, 1, 0, 2]), 0.3, 0.1
    got = mixed_classification_loss(logits, y_a, y_b, lam, "cross_entropy", eps)
    # by hand: smoothed targets q = (1 - eps) onehot + eps / K, loss = -sum q log p, mixed by lam
    logp = logits.log_softmax(dim=1)

    def ce(y):
        q = (1 - eps) * F.one_hot(y, 4).float() + eps / 4
        return -(q * logp).sum(dim=1).mean()

    assert float(got) == pytest.approx(float(lam * ce(y_a) + (1 - lam) * ce(y_b)), rel=1e-6)
    # for cross-entropy it is the loss against the mixed soft target
    q = lam * F.one_hot(y_a, 4).float() + (1 - lam) * F.one_hot(y_b, 4).float()
    q = (1 - eps) * q + eps / 4
    assert float(got) == pytest.approx(float(-(q * logp).sum(dim=1).mean()), rel=1e-6)
    assert float(mixed_classification_loss(logits, y_a, y_b, 1.0, "hinge")) == pytest.approx(
        float(classification_loss(logits, y_a, "hinge"))
    )


class _Linear(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(2 * 4 * 4, 3)

    def forward(self, x):
        return self.fc(x.flatten(1))


@pytest.mark.parametrize("mix", ["mixup", "cutmix", "both"])
def test_training_step_mixes_and_validation_does_not(mix):
    torch.manual_seed(0)
    model = _Linear()
    alphas = {"mixup": (0.4, 0.0), "cutmix": (0.0, 1.0), "both": (0.4, 1.0)}[mix]
    task = ClassificationTask(model, label_smoothing=0.1, mixup=alphas[0], cutmix=alphas[1])
    x, y = torch.randn(16, 2, 4, 4), torch.arange(16) % 3
    torch.manual_seed(11)
    with torch.no_grad():
        out = task.training_step((x, y))
    # replay: the coin (only when both are on), then the mixing function's own draws
    torch.manual_seed(11)
    fn, alpha = (mixup_batch, 0.4) if mix == "mixup" else (cutmix_batch, 1.0)
    if mix == "both":
        fn, alpha = (cutmix_batch, 1.0) if bool(torch.rand(()) < 0.5) else (mixup_batch, 0.4)
    xm, y_a, y_b, lam = fn(x, y, alpha)
    with torch.no_grad():
        logits = model(xm)
    ref = lam * F.cross_entropy(logits, y_a, label_smoothing=0.1) + (1 - lam) * F.cross_entropy(
        logits, y_b, label_smoothing=0.1
    )
    assert float(out["loss"]) == pytest.approx(float(ref), rel=1e-6)
    pred = logits.argmax(dim=1)
    acc = lam * (pred == y_a).float().mean() + (1 - lam) * (pred == y_b).float().mean()
    assert float(out["acc"]) == pytest.approx(float(acc))
    # validation: the plain loss, no smoothing, no mixing
    with torch.no_grad():
        val = task.validation_step((x, y))
        assert float(val["loss"]) == pytest.approx(float(F.cross_entropy(model(x), y)))


def test_both_on_chooses_each_about_half_the_time(monkeypatch):
    import archlab.tasks.classification as cls

    used = []
    monkeypatch.setattr(cls, "mixup_batch", lambda x, y, a: (used.append("mixup"), (x, y, y, 1.0))[1])
    monkeypatch.setattr(cls, "cutmix_batch", lambda x, y, a: (used.append("cutmix"), (x, y, y, 1.0))[1])
    task = ClassificationTask(_Linear(), mixup=0.2, cutmix=1.0)
    torch.manual_seed(0)
    for _ in range(200):
        task.training_step((torch.randn(4, 2, 4, 4), torch.arange(4) % 3))
    assert 70 < used.count("cutmix") < 130 and used.count("mixup") + used.count("cutmix") == 200
    with pytest.raises(ValueError, match="alpha"):
        ClassificationTask(_Linear(), mixup=-1.0)


def test_cutmix_on_features_is_a_clear_error():
    task = ClassificationTask(nn.Linear(5, 3), cutmix=1.0)
    with pytest.raises(ValueError, match="image batches"):
        task.training_step((torch.randn(4, 5), torch.arange(4) % 3))


def test_tiny_mixup_run_on_digits(tmp_path):
    run = archlab.train(
        "lenet5",
        "digits",
        overrides={
            **FAST,
            "run.out_dir": str(tmp_path),
            "run.name": "mix",
            "data.mixup": 0.2,
            "data.cutmix": 1.0,
            "data.random_erasing": 0.5,
            "train.epochs": 1,
            "train.batch_size": 64,
            "train.label_smoothing": 0.1,
        },
    )
    assert run.status == "completed"
    assert math.isfinite(run.metrics["test/loss"])
    losses = [r["loss"] for r in run.history if r["split"] == "train"]
    assert losses and all(math.isfinite(v) for v in losses)


# --------------------------------------------------------------------------------------------
# label_fraction
# --------------------------------------------------------------------------------------------


def test_subsample_labels_counts_per_class():
    y = torch.cat([torch.full((n,), c) for c, n in enumerate([100, 40, 7, 1])])
    split = ArraySplit(
        torch.arange(len(y)).float()[:, None],
        y[torch.randperm(len(y), generator=torch.Generator().manual_seed(0))],
    )
    sub = subsample_labels(split, 0.1, seed=3)
    counts = torch.bincount(sub.y, minlength=4).tolist()
    assert counts == [10, 4, 1, 1]  # round(n * 0.1), at least one per class
    # rows keep their pairing and their original order
    rows = sub.x[:, 0].long()
    assert torch.equal(split.y[rows], sub.y) and torch.equal(rows, rows.sort().values)
    assert torch.equal(subsample_labels(split, 0.1, seed=3).x, sub.x)  # seeded
    assert not torch.equal(subsample_labels(split, 0.1, seed=4).x, sub.x)
    assert subsample_labels(split, 1.0) is split
    for bad in (0.0, 1.5, -0.1):
        with pytest.raises(ValueError, match="label_fraction"):
            subsample_labels(split, bad)


def test_label_fraction_in_a_run_config():
    from archlab.api import _load_bundle
    from archlab.config import load_config

    full = _load_bundle(load_config("mlp", "digits", None, {"data.val_split": 0.1}))
    cfg = load_config("mlp", "digits", None, {"data.label_fraction": 0.25, "data.val_split": 0.1})
    part = _load_bundle(cfg)
    want = [max(1, round(int(n) * 0.25)) for n in torch.bincount(full.train.y, minlength=10)]
    assert torch.bincount(part.train.y, minlength=10).tolist() == want
    assert len(part.val) == len(full.val) and len(part.test) == len(full.test)  # eval splits untouched
    with pytest.raises(ConfigError, match="label_fraction"):
        _load_bundle(load_config("mlp", "digits", None, {"data.label_fraction": 0.0}))
    with pytest.raises(ConfigError, match="label_fraction"):
        _load_bundle(load_config("gcn", "karate", None, {"data.label_fraction": 0.5}))


def test_resume_with_mixing_gives_identical_weights(tmp_path):
    """mixup/CutMix coins, lam, permutations and erasing boxes all come from the checkpointed RNG."""
    from archlab.engine.checkpoint import load_checkpoint
    from archlab.engine.trainer import Callback

    class StopAt(Callback):
        def on_step_end(self, trainer, out):
            if trainer.global_step == 13:
                trainer.request_stop("interrupted")

    over = {
        **FAST,
        "run.out_dir": str(tmp_path),
        "train.epochs": 2,
        "train.batch_size": 64,
        "model.hidden_dims": [16],
        "data.mixup": 0.4,
        "data.cutmix": 1.0,
        "data.random_erasing": 0.5,
    }
    archlab.train("mlp", "digits", overrides={**over, "run.name": "full"})
    part = archlab.train("mlp", "digits", overrides={**over, "run.name": "part"}, callbacks=[StopAt()])
    assert part.status == "interrupted"
    assert archlab.train(resume=tmp_path / "part").status == "completed"
    a = load_checkpoint(tmp_path / "full" / "checkpoints" / "last.safetensors")["model"]
    b = load_checkpoint(tmp_path / "part" / "checkpoints" / "last.safetensors")["model"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
