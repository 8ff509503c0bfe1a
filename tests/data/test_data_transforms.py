"""Batched transforms: shapes, exact effects, agreement with per-sample loops, determinism."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from archlab.config import DataSection
from archlab.data import DatasetInfo
from archlab.data.transforms import (
    Compose,
    Cutout,
    Identity,
    Normalize,
    RandomCrop,
    RandomHorizontalFlip,
    Resize,
    ToFloat,
    build_transform,
)


def _batch(b=6, c=3, h=8, w=10, dtype=torch.uint8):
    g = torch.Generator().manual_seed(0)
    x = torch.randint(1, 256, (b, c, h, w), generator=g)  # no zeros, so erased pixels are visible
    return x.to(dtype)


def test_to_float_and_normalize():
    x = _batch()
    f = ToFloat()(x)
    assert f.dtype == torch.float32 and torch.allclose(f * 255, x.float())
    assert ToFloat()(f) is not None and torch.equal(ToFloat()(f), f)
    n = Normalize((0.5, 0.25, 0.0), (0.5, 0.5, 2.0))(f)
    assert torch.allclose(n[:, 1], (f[:, 1] - 0.25) / 0.5)
    with pytest.raises(TypeError, match="ToFloat"):
        Normalize((0.5,) * 3, (1.0,) * 3)(x)
    with pytest.raises(ValueError, match="channels"):
        Normalize((0.5,), (1.0,))(f)


def test_random_crop_keeps_size_and_matches_loop():
    x = _batch()
    torch.manual_seed(3)
    out = RandomCrop(padding=2)(x)
    assert out.shape == x.shape and out.dtype == x.dtype
    # reference: the same offsets, one sample at a time
    torch.manual_seed(3)
    oy = torch.randint(0, 8 + 4 - 8 + 1, (6,))
    ox = torch.randint(0, 10 + 4 - 10 + 1, (6,))
    padded = F.pad(x, (2, 2, 2, 2))
    ref = torch.stack([padded[i, :, oy[i]:oy[i] + 8, ox[i]:ox[i] + 10] for i in range(6)])
    assert torch.equal(out, ref)
    # no padding and full size: identity; smaller size: that shape and a window of the input
    assert torch.equal(RandomCrop(padding=0)(x), x)
    small = RandomCrop((5, 4))(x)
    assert small.shape == (6, 3, 5, 4)
    with pytest.raises(ValueError, match="larger"):
        RandomCrop(20)(x)


def test_flip():
    x = _batch()
    assert torch.equal(RandomHorizontalFlip(1.0)(x), x.flip(-1))
    assert torch.equal(RandomHorizontalFlip(0.0)(x), x)
    torch.manual_seed(0)
    y = RandomHorizontalFlip(0.5)(x)
    flipped = [torch.equal(y[i], x[i].flip(-1)) for i in range(len(x))]
    kept = [torch.equal(y[i], x[i]) for i in range(len(x))]
    assert all(a or b for a, b in zip(flipped, kept))


def test_cutout_zeroes_a_square_per_sample():
    x = _batch(b=32, c=2, h=16, w=16).float()
    torch.manual_seed(1)
    out = Cutout(4)(x)
    assert out.shape == x.shape
    zeros = (out == 0).all(dim=1)  # (B, H, W): erased in every channel
    assert torch.equal(out[~zeros[:, None].expand_as(out)], x[~zeros[:, None].expand_as(x)])
    counts = zeros.flatten(1).sum(1)
    assert (counts > 0).all() and (counts <= 16).all()
    # reference loop with the same centres
    torch.manual_seed(1)
    cy, cx = torch.randint(0, 16, (32,)), torch.randint(0, 16, (32,))
    ref = x.clone()
    for i in range(32):
        y0, x0 = max(int(cy[i]) - 2, 0), max(int(cx[i]) - 2, 0)
        ref[i, :, y0:max(int(cy[i]) + 2, 0), x0:max(int(cx[i]) + 2, 0)] = 0
    assert torch.equal(out, ref)


def test_resize():
    x = _batch(h=8, w=8)
    up = Resize(16)(x)
    assert up.shape == (6, 3, 16, 16) and up.dtype == torch.uint8
    f = ToFloat()(x)
    assert Resize((4, 6))(f).shape == (6, 3, 4, 6)
    const = torch.full((1, 1, 8, 8), 0.5)
    assert torch.allclose(Resize(5)(const), torch.full((1, 1, 5, 5), 0.5))


def test_determinism_under_manual_seed():
    x = _batch(b=16, h=12, w=12)
    tf = Compose([ToFloat(), RandomCrop(padding=3), RandomHorizontalFlip(), Normalize((0.5,) * 3, (0.2,) * 3),
                  Cutout(5)])
    torch.manual_seed(123)
    a = tf(x)
    torch.manual_seed(123)
    b = tf(x)
    c = tf(x)
    assert torch.equal(a, b)
    assert not torch.equal(b, c)
    # restoring the RNG state reproduces what follows (as a resumed run does)
    torch.manual_seed(5)
    tf(x)
    state = torch.get_rng_state()
    d = tf(x)
    torch.set_rng_state(state)
    assert torch.equal(tf(x), d)


def test_build_transform():
    info = DatasetInfo("fake", "image", (3, 8, 8), 10, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    section = DataSection(random_crop_padding=2, hflip=True, cutout=3)
    train = build_transform(info, section, train=True)
    ev = build_transform(info, section, train=False)
    kinds = [type(t).__name__ for t in train.transforms]
    assert kinds == ["ToFloat", "RandomCrop", "RandomHorizontalFlip", "Normalize", "Cutout"]
    assert [type(t).__name__ for t in ev.transforms] == ["ToFloat", "Normalize"]
    x = torch.full((4, 3, 8, 8), 128, dtype=torch.uint8)
    assert torch.allclose(ev(x), torch.full((4, 3, 8, 8), (128 / 255 - 0.5) / 0.25), atol=1e-6)
    assert train(x).shape == (4, 3, 8, 8) and train(x).dtype == torch.float32
    assert [type(t).__name__ for t in build_transform(info, None, train=True).transforms] == ["ToFloat", "Normalize"]
    tab = build_transform(DatasetInfo("t", "tabular", (4,), 3), section, train=True)
    assert isinstance(tab, Identity)
    z = torch.randn(5, 4)
    assert tab(z) is z
