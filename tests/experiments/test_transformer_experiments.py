"""The Transformer experiments (``transformer-attention-maps``, ``transformer-cost``,
``transformer-heads-depth``, ``transformer-positional``, ``transformer-vs-lstm``) in quick mode, their
helpers, and the science they rest on at a small scale: the fused attention kernel saves memory
linear in T where the written-out one saves T^2, and without positions the classifier is blind to
order."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from _report_checks import check_quick_report

from archlab.experiments import transformer_experiments as tx

EXPERIMENTS = {
    "transformer-attention-maps": (
        "classifier_attention_1.png",
        "classifier_attention_2.png",
        "negation_heads.png",
        "translator_attention.png",
        "translator_heads.png",
    ),
    "transformer-cost": ("cost.png",),
    "transformer-heads-depth": ("heads_depth.png", "curves.png"),
    "transformer-positional": ("positional_curves.png", "extrapolation.png"),
    "transformer-vs-lstm": ("transformer_vs_lstm.png",),
}


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py: torch on one thread


def _finite(values) -> bool:
    return bool(np.all(np.isfinite(np.asarray(values, dtype=float))))


def test_registered_in_family_transformer():
    from archlab.registry import EXPERIMENTS as REG

    assert set(EXPERIMENTS) <= set(REG.names(family="transformer"))
    assert REG.get("transformer-cost").fn is tx.transformer_cost
    assert REG.get("transformer-vs-lstm").fn is tx.transformer_vs_lstm


@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_quick_mode_writes_report(name, quick_run):
    res, out = quick_run(name)
    check_quick_report(res, out, EXPERIMENTS[name])
    assert res["cpu_seconds"] > 0


def test_attention_maps_quick_results(quick_run):
    res, _ = quick_run("transformer-attention-maps")
    layers, heads = res["setup"]["classifier"]["num_layers"], res["setup"]["classifier"]["num_heads"]
    assert np.asarray(res["negation_lift"]).shape == (layers, heads) and _finite(res["negation_lift"])
    assert all(0.0 <= v <= 1.0 for row in res["polarity_to_negation"] for v in row)
    assert 0.0 < res["negation_baseline"] < 0.5
    assert len(res["rows"]) == layers * heads
    assert all(0.0 <= v <= 1.0 for row in res["aligned"] for v in row) and 0 < res["aligned_baseline"] < 1
    assert 0.0 <= res["bleu"] <= 100.0 and 0.0 <= res["test_acc"] <= 1.0
    assert len(res["examples"]) == 2 and len(set(res["examples"])) == 2


def test_cost_quick_results(quick_run):
    res, _ = quick_run("transformer-cost")
    lengths = res["lengths"]
    assert lengths == sorted(lengths) and len(res["rows"]) == len(lengths)
    for k in ("attention (fast)", "attention (math)", "LSTM"):
        assert len(res["times"][k]) == len(lengths) and all(t > 0 for t in res["times"][k])
        assert all(m > 0 for m in res["memory_mib"][k])
        assert _finite([res["time_slopes"][k], res["memory_slopes"][k]])
    # the math path stores the (h, T, T) weights: more memory than the fused kernel at the longest T
    assert res["memory_mib"]["attention (math)"][-1] > res["memory_mib"]["attention (fast)"][-1]


def test_heads_depth_quick_grid(quick_run):
    res, _ = quick_run("transformer-heads-depth")
    grid = {(r["layers"], r["heads"]) for r in res["runs"]}
    assert grid == {(n, h) for n in res["layers"] for h in res["heads"]}
    assert np.asarray(res["accuracy"]).shape == (len(res["layers"]), len(res["heads"]))
    assert all(0.0 <= a <= 1.0 for row in res["accuracy"] for a in row)
    for n in res["layers"]:  # at a fixed width the number of heads does not change the parameters
        assert len({r["params"] for r in res["runs"] if r["layers"] == n}) == 1
    assert min(r["params"] for r in res["runs"] if r["layers"] == 2) > max(
        r["params"] for r in res["runs"] if r["layers"] == 1
    )


def test_positional_quick_results(quick_run):
    res, _ = quick_run("transformer-positional")
    assert res["positions"] == list(tx.POSITIONS)
    assert set(res["sentiment_acc"]) == set(tx.POSITIONS) and _finite(list(res["sentiment_acc"].values()))
    ranges = [f"{a}-{b}" for a, b in tx.ORDER_QUICK["test_lengths"]]
    for p in tx.POSITIONS:
        assert list(res["order_acc"][p]) == ranges
        assert all(0.0 <= v <= 1.0 for v in res["order_acc"][p].values())


def test_vs_lstm_quick_results(quick_run):
    res, _ = quick_run("transformer-vs-lstm")
    assert res["tasks"] == ["sentiment", "seq2seq_synthetic"] and not res["setup"]["sst2"]
    assert [e["registered"] for e in res["results"]] == [
        "transformer_classifier",
        "bilstm",
        "transformer_tiny",
        "seq2seq_bahdanau",
    ]
    for e in res["results"]:
        assert e["params"] > 0 and e["train_s"] > 0 and e["ms_one"] > 0 and e["ms_batched"] > 0
        assert 0.0 <= e["score"] <= (1.0 if e["metric"] == "test acc" else 100.0)


# ---- building blocks ----------------------------------------------------------------------------


def test_order_task_data():
    x, y = tx.make_order_task(500, 4, 12, width=20, seed=1)
    assert x.shape == (500, 20) and set(y.unique().tolist()) == {0, 1}
    n = (x != 0).sum(1)
    assert int(n.min()) >= 4 and int(n.max()) <= 12
    assert bool(((x == tx.ORDER_A).sum(1) == 1).all()) and bool(((x == tx.ORDER_B).sum(1) == 1).all())
    pos_a, pos_b = (x == tx.ORDER_A).float().argmax(1), (x == tx.ORDER_B).float().argmax(1)
    assert torch.equal((pos_a < pos_b).long(), y)
    # padding only on the right
    assert bool(((x != 0).long().diff(dim=1) <= 0).all())
    a, b = tx.make_order_task(50, 4, 12, seed=3), tx.make_order_task(50, 4, 12, seed=3)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    with pytest.raises(ValueError, match="min_len"):
        tx.make_order_task(10, 1, 5)


def test_without_positions_the_classifier_sees_a_bag_of_words():
    """pos='none' with mean pooling: permuting the tokens cannot change the logits, so the order task
    (whose two classes differ only by order) stays at chance by construction; sinusoidal positions see it."""
    from archlab.registry import create_model

    x, _ = tx.make_order_task(8, 10, 10, seed=0)
    perm = torch.randperm(10, generator=torch.Generator().manual_seed(0))
    for pos, same in (("none", True), ("sinusoidal", False)):
        torch.manual_seed(0)
        net = create_model(
            "transformer_classifier", vocab_size=tx.ORDER_VOCAB, max_len=10, pos=pos, **tx.CLS_QUICK
        ).eval()
        with torch.no_grad():
            close = torch.allclose(net(x), net(x[:, perm]), atol=1e-5)
        assert close == same, pos


def test_attention_shares_on_hand_made_weights():
    real = torch.tensor([[True, True, True, True]])
    key = torch.tensor([[False, True, False, False]])
    w = torch.zeros(1, 2, 4, 4)
    w[0, 0, :, 1] = 1.0  # head 0: everything on token 1
    w[0, 1] = 0.25  # head 1: uniform
    share, base = tx.attention_shares(w, real, key, real)
    torch.testing.assert_close(share, torch.tensor([1.0, 0.25]))
    torch.testing.assert_close(base, torch.tensor([0.25, 0.25]))
    share, base = tx.attention_shares(w, real, torch.zeros_like(key), real)
    assert torch.isnan(share).all() and torch.isnan(base).all()


def test_aligned_share_reverse_and_copy():
    src = torch.tensor([[5, 6, 7, 3, 0]])  # 3 letters, <eos>, padding
    tgt_out = torch.tensor([[7, 6, 5, 3]])  # the reversal, <eos>
    w = torch.zeros(1, 1, 4, 5)
    for i in range(3):
        w[0, 0, i, 2 - i] = 1.0  # anti-diagonal
    w[0, 0, 3, 3] = 1.0
    share, base = tx.aligned_share(w, src, tgt_out, "reverse")
    assert float(share[0]) == pytest.approx(1.0) and float(base[0]) == pytest.approx(1 / 4)
    share, _ = tx.aligned_share(w, src, tgt_out, "copy")
    assert float(share[0]) == pytest.approx(1 / 3)  # only the middle letter sits on the diagonal
    share, _ = tx.aligned_share(w, src, tgt_out, "sort")  # same symbol: the reversal's letters match
    assert float(share[0]) == pytest.approx(1.0)


def test_cross_attention_maps_match_the_model():
    """Two code paths: the per-layer, per-head maps averaged over heads are the last-layer attention
    that the translator's own forward returns."""
    from archlab.data import load_dataset
    from archlab.registry import create_model

    bundle = load_dataset("seq2seq_synthetic", n_samples=40, max_len=6)
    torch.manual_seed(0)
    net = create_model(
        "transformer_tiny", data_info=bundle.info, **{**tx.TR_QUICK, "num_decoder_layers": 2}
    ).eval()
    src, y = bundle.test.x, bundle.test.y
    maps = tx.cross_attention_maps(net, src, y[:, :-1])
    assert len(maps) == 2 and maps[0].shape == (len(src), 2, y.shape[1] - 1, src.shape[1])
    with torch.no_grad():
        _, attn = net(src, y[:, :-1], return_attention=True)
    torch.testing.assert_close(maps[-1].mean(1), attn, atol=1e-5, rtol=1e-4)
    real = src != 0
    torch.testing.assert_close(maps[0].sum(-1), torch.ones_like(maps[0].sum(-1)), atol=1e-5, rtol=0)
    assert float(maps[0][~real[:, None, None, :].expand_as(maps[0])].abs().max()) == 0.0


def test_token_roles_on_the_sentiment_vocab():
    from archlab.data import load_dataset

    bundle = load_dataset("sentiment", n_samples=200)
    vocab = bundle.info.vocab
    ids = torch.tensor([vocab.lookup(["the", "plot", "was", "n't", "good", ",", "but", "i", "loved", "it"])])
    roles = tx.token_roles(ids, vocab)
    assert roles["negation"][0].nonzero().flatten().tolist() == [3]
    assert roles["polarity"][0].nonzero().flatten().tolist() == [4, 8]
    assert roles["contrast"][0].nonzero().flatten().tolist() == [6]


def test_fused_attention_memory_is_linear_math_quadratic():
    from archlab.models.transformer.attention import MultiHeadAttention

    mem = {}
    for impl in ("fast", "math"):
        m = MultiHeadAttention(32, 2, impl=impl)
        mem[impl] = [
            tx.saved_tensor_bytes(lambda t=t, m=m: m(torch.randn(1, t, 32, requires_grad=True))[0])[1]
            for t in (128, 512)
        ]
    assert mem["math"][1] / mem["math"][0] > 10  # ~ T^2: 16x for 4x the length
    assert mem["fast"][1] / mem["fast"][0] < 5  # ~ T
    assert mem["math"][1] >= 2 * 512 * 512 * 4  # at least the (h, T, T) float32 weights


def test_slope_and_crossover():
    ts = [64, 128, 256, 512]
    assert tx.loglog_slope(ts, [t**2 for t in ts]) == pytest.approx(2.0)
    assert tx.loglog_slope(ts, [3 * t for t in ts]) == pytest.approx(1.0)
    assert math.isnan(tx.loglog_slope([64], [1.0]))
    lstm = [float(t) for t in ts]  # ~ T
    attn = [t * t / 200 for t in ts]  # ~ T^2: equal at T = 200
    assert tx.crossover(ts, attn, lstm) == pytest.approx(200.0, rel=1e-6)
    assert tx.crossover(ts, [t / 10 for t in ts], lstm) is None
    assert tx.crossover(ts, [2 * t for t in ts], lstm) == 64.0
