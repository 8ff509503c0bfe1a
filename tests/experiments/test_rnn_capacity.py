"""The recurrent-capacity experiments (``rnn-size-depth``, ``rnn-bidirectional``) in quick mode and
their helpers (parameter matching, the SST-2 folder)."""

from __future__ import annotations

import pytest
from _report_checks import check_quick_report

from archlab.experiments import rnn_capacity as rc

EXPERIMENTS = {
    "rnn-size-depth": ("accuracy_vs_hidden.png", "time_vs_params.png"),
    "rnn-bidirectional": ("bidirectional.png",),
}


def test_registered_in_family_rnn():
    from archlab.registry import EXPERIMENTS as REG

    assert set(EXPERIMENTS) <= set(REG.names(family="rnn"))
    assert REG.get("rnn-bidirectional").fn is rc.rnn_bidirectional


@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_quick_mode_writes_report(name, quick_run):
    res, out = quick_run(name)
    check_quick_report(res, out, EXPERIMENTS[name])


def test_size_depth_quick_grid(quick_run):
    res, _ = quick_run("rnn-size-depth")
    grid = {(r["cell"], r["layers"], r["hidden"]) for r in res["runs"]}
    assert grid == {(m, n, h) for m in res["cells"] for n in res["layers"] for h in res["hidden"]}
    e = res["setup"]["embed_dim"]
    base = min(res["runs"], key=lambda r: r["params"])
    for r in res["runs"]:  # the embedding is the same in every run: differences are the recurrence's
        expect = rc.count_params(
            r["cell"], r["hidden"], embed_dim=e, num_layers=r["layers"]
        ) - rc.count_params(base["cell"], base["hidden"], embed_dim=e, num_layers=base["layers"])
        assert r["params"] - base["params"] == expect
        assert 0.0 <= r["test_acc"] <= 1.0 and r["train_seconds"] > 0
    by = {(r["layers"], r["hidden"]): r["params"] for r in res["runs"]}
    assert by[(2, 16)] > by[(1, 16)] and by[(1, 16)] > by[(1, 8)]  # params grow with depth and width


def test_bidirectional_quick_learns_negation(quick_run):
    res, _ = quick_run("rnn-bidirectional")
    assert res["datasets"] == ["sentiment"] and not res["setup"]["sst2"]
    runs = {(r["variant"], r["pooling"]): r for r in res["runs"]}
    uni, bi, same = res["variants"]["sentiment"]
    assert len(runs) == 6
    # same hidden size per direction: more parameters; matched hidden size: within 5% of the unidirectional
    assert runs[(bi, "last")]["params"] > runs[(uni, "last")]["params"]
    assert abs(runs[(same, "max")]["params"] / runs[(uni, "max")]["params"] - 1) < 0.05
    assert runs[(bi, "max")]["test_acc"] > 0.8  # a BiLSTM with max pooling handles the generated negations


def test_matched_hidden():
    h = rc.matched_hidden(64, embed_dim=32)
    assert 40 <= h <= 46  # about 64 / sqrt(2)
    uni = rc.count_params("lstm", 64, embed_dim=32)
    assert abs(rc.count_params("lstm", h, embed_dim=32, bidirectional=True) - uni) < 0.02 * uni


def test_sst2_root(tmp_path, monkeypatch):
    monkeypatch.delenv("ARCHLAB_DATA", raising=False)
    monkeypatch.setenv("ARCHLAB_SHARED_DATA", str(tmp_path / "none"))
    assert rc.sst2_root(tmp_path) != str(tmp_path)  # no sst2/ there: the next places are tried
    (tmp_path / "sst2").mkdir()
    (tmp_path / "sst2" / "train.tsv").write_text("sentence\tlabel\n")
    assert rc.sst2_root(tmp_path) == str(tmp_path)
    monkeypatch.setenv("ARCHLAB_DATA", str(tmp_path))
    assert rc.sst2_root() == str(tmp_path)
