"""Embedded and generated datasets, load_dataset's validation split and options."""

from __future__ import annotations

import time

import pytest
import torch

from archlab.data import DataOptionError, dataset_options, load_dataset
from archlab.registry import DATASETS, UnknownNameError, list_datasets

# name -> (kind, input_shape, num_classes, total rows or None)
EXPECTED = {
    "iris": ("tabular", (4,), 3, 150),
    "wine": ("tabular", (13,), 3, 178),
    "breast_cancer": ("tabular", (30,), 2, 569),
    "digits": ("image", (1, 8, 8), 10, 1797),
    "xor": ("tabular", (2,), 2, 1000),
    "moons": ("tabular", (2,), 2, 1000),
    "circles": ("tabular", (2,), 2, 1000),
    "spirals": ("tabular", (2,), 2, 1000),
}


def test_registry_lists_all_datasets():
    names = set(list_datasets())
    assert set(EXPECTED) <= names
    assert {"mnist", "fashion_mnist", "kmnist", "cifar10", "cifar100"} <= names
    assert DATASETS.get("digits").family == "image"
    assert DATASETS.get("iris").family == "tabular"
    assert DATASETS.get("cifar10").tags.get("download") is True


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_embedded_dataset_loads(name, tmp_path):
    kind, shape, k, total = EXPECTED[name]
    t0 = time.perf_counter()
    b = load_dataset(name, tmp_path, val_split=0.1, download=False)
    assert time.perf_counter() - t0 < 5.0  # < 1 s once sklearn is imported; generous for CI
    info = b.info
    assert (info.name, info.kind, info.input_shape, info.num_classes) == (name, kind, shape, k)
    assert len(info.class_names) == k
    assert sum(len(s) for s in b.splits().values()) == total
    assert len(b.test) == pytest.approx(0.2 * total, abs=k)  # stratified: rounding per class
    assert len(b.val) == round(0.1 * (total - len(b.test)))
    for split in b.splits().values():
        assert split.x.shape[1:] == shape
        assert split.y.dtype == torch.int64
        assert int(split.y.min()) >= 0 and int(split.y.max()) < k
    if kind == "image":
        assert b.train.x.dtype == torch.uint8
        assert info.mean is not None and len(info.mean) == shape[0] and 0 < info.std[0] < 1
        assert info.model_fields()["in_features"] == 64
    else:
        assert b.train.x.dtype == torch.float32
        assert len(info.feature_names) == shape[0]
        # standardised with the training split's statistics (train: val was carved from it)
        train_all = torch.cat([b.train.x, b.val.x])
        assert train_all.mean(0).abs().max() < 1e-4
        assert (train_all.std(0, unbiased=False) - 1).abs().max() < 1e-3
        mean, std = b.feature_stats
        assert mean.shape == std.shape == shape
    # every class appears in test (stratified split)
    assert set(b.test.y.tolist()) == set(range(k))


def test_class_names_and_digits_pixels(tmp_path):
    iris = load_dataset("iris", tmp_path)
    assert iris.info.class_names == ["setosa", "versicolor", "virginica"]
    d = load_dataset("digits", tmp_path, val_split=0.0)
    assert d.info.class_names == [str(i) for i in range(10)]
    assert int(d.train.x.max()) == 255 and int(d.train.x.min()) == 0
    assert d.val is None


def test_test_split_is_fixed_and_val_depends_on_seed(tmp_path):
    a = load_dataset("iris", tmp_path, seed=0)
    b = load_dataset("iris", tmp_path, seed=0)
    c = load_dataset("iris", tmp_path, seed=1)
    assert torch.equal(a.test.x, b.test.x) and torch.equal(a.test.x, c.test.x)
    assert torch.equal(a.val.x, b.val.x)
    assert not torch.equal(a.val.x, c.val.x)


def test_generated_options(tmp_path):
    s = load_dataset("spirals", tmp_path, val_split=0.0, n_samples=300, classes=3, noise=0.0)
    assert s.info.num_classes == 3 and len(s.info.class_names) == 3
    assert len(s.train) + len(s.test) == 300
    assert torch.bincount(torch.cat([s.train.y, s.test.y])).tolist() == [100, 100, 100]
    m1 = load_dataset("moons", tmp_path, val_split=0.0, data_seed=1)
    m2 = load_dataset("moons", tmp_path, val_split=0.0, data_seed=2)
    assert not torch.equal(m1.train.x, m2.train.x)
    raw = load_dataset("circles", tmp_path, val_split=0.0, noise=0.0, standardize=False)
    r = raw.train.x.norm(dim=1)
    outer, inner = r[raw.train.y == 0], r[raw.train.y == 1]
    assert torch.allclose(outer, torch.ones_like(outer), atol=1e-5)
    assert torch.allclose(inner, torch.full_like(inner, 0.5), atol=1e-5)
    assert raw.feature_stats is None
    x = load_dataset("xor", tmp_path, val_split=0.0, noise=0.0, standardize=False).train
    assert torch.equal(((x.x[:, 0] > 0) ^ (x.x[:, 1] > 0)).long(), x.y)


def test_unknown_option_lists_allowed(tmp_path):
    with pytest.raises(DataOptionError, match="n_samples") as e:
        load_dataset("moons", tmp_path, n_sample=10)
    assert "'n_sample'" in str(e.value)
    assert isinstance(e.value, TypeError)
    assert "noise" in dataset_options("moons")


def test_bad_values_are_clear(tmp_path):
    with pytest.raises(DataOptionError, match="val_split"):
        load_dataset("iris", tmp_path, val_split=1.5)
    with pytest.raises(Exception, match="classes"):
        load_dataset("spirals", tmp_path, classes=1)
    with pytest.raises(UnknownNameError, match="mnist"):
        load_dataset("mnsit", tmp_path)
    # '-' and '_' are alike
    assert load_dataset("breast-cancer", tmp_path).info.name == "breast_cancer"
