"""The sequence models: text classifiers, language models, forecasters and the forecasting baselines.

The registry walk (test_all_models.py) checks shapes, gradients and determinism of every variant;
here: packing (padding changes nothing), each pooling against a per-sentence computation, the two
implementations agreeing, state carrying in the language model, sampling, and the baselines.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from archlab.data.base import ArraySplit, DataBundle, DatasetInfo
from archlab.models.rnn.forecast import (
    LinearForecaster,
    RNNForecaster,
    baseline_forecasts,
    forecast_errors,
    naive_forecast,
)
from archlab.models.rnn.lm import RNNLanguageModel, sample_logits
from archlab.models.rnn.text import RNNClassifier
from archlab.registry import create_model

POOLINGS = ["last", "mean", "max", "attention"]


def classifier(pooling: str = "last", cell: str = "lstm", bidirectional: bool = True, impl: str = "fast",
               num_layers: int = 2, seed: int = 0) -> RNNClassifier:
    torch.manual_seed(seed)
    return RNNClassifier(30, 3, embed_dim=8, hidden_dim=6, num_layers=num_layers, bidirectional=bidirectional,
                         cell=cell, pooling=pooling, attention_dim=5, impl=impl, max_len=9).eval()


def padded(rows: list[list[int]], total: int | None = None, pad: int = 0) -> torch.Tensor:
    t = total or max(len(r) for r in rows)
    return torch.tensor([r + [pad] * (t - len(r)) for r in rows])


ROWS = [[5, 6, 7, 8, 9, 10, 11], [12, 13], [14, 15, 16, 17], [18]]


# ----------------------------------------------------------------------------------------------
# text classifier


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("pooling", POOLINGS)
def test_classifier_shapes_and_padding_invariance(cell: str, pooling: str) -> None:
    model = classifier(pooling, cell)
    with torch.no_grad():
        a = model(padded(ROWS))
        b = model(padded(ROWS, total=15))  # 8 more padding columns
    assert a.shape == (4, 3) and torch.isfinite(a).all()
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("pooling", POOLINGS)
@pytest.mark.parametrize("bidirectional", [False, True])
def test_batched_equals_one_sentence_at_a_time(pooling: str, bidirectional: bool) -> None:
    """Packing: each row of a padded batch gets the logits of that sentence run alone, unpadded."""
    model = classifier(pooling, bidirectional=bidirectional)
    with torch.no_grad():
        batch = model(padded(ROWS))
        alone = torch.cat([model(torch.tensor([r])) for r in ROWS])
    torch.testing.assert_close(batch, alone, rtol=1e-5, atol=1e-6)


def test_last_pooling_is_forward_final_and_backward_first_state() -> None:
    model = classifier("last", bidirectional=True, num_layers=1)
    x = padded(ROWS)
    with torch.no_grad():
        emb = model.embedding(x)
        out = [model.rnn(emb[i:i + 1, :len(r)])[0][0] for i, r in enumerate(ROWS)]  # (n_i, 2H) each
        h = model.rnn.hidden_size
        pooled = torch.stack([torch.cat([o[-1, :h], o[0, h:]]) for o in out])  # [fwd at n ; bwd at 1]
        torch.testing.assert_close(model(x), model.head(pooled), rtol=1e-5, atol=1e-6)


def test_mean_and_max_pooling_by_hand() -> None:
    for pooling, reduce in (("mean", lambda o: o.mean(0)), ("max", lambda o: o.max(0).values)):
        model = classifier(pooling, bidirectional=False, num_layers=1)
        x = padded(ROWS)
        with torch.no_grad():
            emb = model.embedding(x)
            pooled = torch.stack([reduce(model.rnn(emb[i:i + 1, :len(r)])[0][0]) for i, r in enumerate(ROWS)])
            torch.testing.assert_close(model(x), model.head(pooled), rtol=1e-5, atol=1e-6)


def test_attention_weights_are_a_distribution_over_real_tokens() -> None:
    model = classifier("attention")
    x = padded(ROWS, total=10)
    with torch.no_grad():
        logits, weights = model(x, return_attention=True)
    assert weights.shape == (4, 10)
    lengths = torch.tensor([len(r) for r in ROWS])
    pad = torch.arange(10)[None] >= lengths[:, None]
    assert (weights[pad] == 0).all() and (weights[~pad] > 0).all()
    torch.testing.assert_close(weights.sum(1), torch.ones(4))
    torch.testing.assert_close(logits, model(x))
    with pytest.raises(ValueError, match="pooling='attention'"):
        classifier("max")(x, return_attention=True)


@pytest.mark.parametrize("pooling", POOLINGS)
def test_fast_and_cells_implementations_agree(pooling: str) -> None:
    fast = classifier(pooling, "gru", impl="fast")
    cells = classifier(pooling, "gru", impl="cells", seed=1)
    cells.load_state_dict(fast.state_dict())
    x = padded(ROWS)
    with torch.no_grad():
        torch.testing.assert_close(fast(x), cells(x), rtol=1e-5, atol=1e-5)


def test_empty_sentence_and_bad_input() -> None:
    model = classifier("max")
    x = padded([[], [5, 6]], total=4)  # an all-padding row (an empty string)
    with torch.no_grad():
        assert torch.isfinite(model(x)).all()
    with pytest.raises(ValueError, match="token ids"):
        model(torch.randn(2, 4))


def test_example_input_is_right_padded_with_varied_lengths() -> None:
    model = create_model("bilstm", vocab_size=50, max_len=20)
    x = model.example_input(8)
    lengths = (x != 0).sum(1)
    assert x.shape == (8, 20) and lengths[0] == 20 and len(set(lengths.tolist())) > 1
    for row, n in zip(x, lengths):  # right padding: no real token after a pad
        assert (row[:n] != 0).all() and (row[n:] == 0).all()
    assert model.rnn.bidirectional and model.rnn.num_layers == 2


# ----------------------------------------------------------------------------------------------
# language model


def lm(cell: str = "lstm", tie: bool = False, seed: int = 0) -> RNNLanguageModel:
    torch.manual_seed(seed)
    return RNNLanguageModel(20, embed_dim=8, hidden_dim=8, num_layers=2, cell=cell, tie_weights=tie,
                            max_len=6).eval()


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_lm_state_carries_across_chunks(cell: str) -> None:
    model = lm(cell)
    x = torch.randint(0, 20, (3, 10), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        full = model(x)
        a, state = model(x[:, :4], return_state=True)
        b = model(x[:, 4:], state)
    assert full.shape == (3, 10, 20)
    torch.testing.assert_close(torch.cat([a, b], 1), full, rtol=1e-5, atol=1e-6)


def test_generate_is_deterministic_with_a_generator_and_carries_state() -> None:
    model = lm()
    prompt = torch.tensor([[1, 2, 3]])
    a = model.generate(prompt, 12, temperature=0.8, top_k=5, generator=torch.Generator().manual_seed(7))
    b = model.generate(prompt, 12, temperature=0.8, top_k=5, generator=torch.Generator().manual_seed(7))
    assert a.shape == (1, 15) and torch.equal(a, b) and torch.equal(a[:, :3], prompt)
    seen: list[int] = []
    c = model.generate(prompt, 12, temperature=0.8, top_k=5, generator=torch.Generator().manual_seed(7),
                       stream=seen.append)
    assert torch.equal(c, a) and seen == a[0, 3:].tolist()  # each token streamed as it is drawn
    # Greedy decoding with the carried state equals re-running the whole prefix every step.
    greedy = model.generate(prompt, 6, temperature=0)
    ids = prompt
    with torch.no_grad():
        for _ in range(6):
            ids = torch.cat([ids, model(ids)[:, -1].argmax(-1, keepdim=True)], 1)
    assert torch.equal(greedy, ids)
    assert torch.equal(model.generate(prompt, 6, top_k=1), greedy)  # top_k=1 is greedy too
    assert not model.training and model.train().generate(prompt, 1).shape == (1, 4) and model.training


def test_generation_options_are_validated() -> None:
    model = lm()
    prompt = torch.tensor([[1, 2]])
    with pytest.raises(ValueError, match="temperature"):
        model.generate(prompt, 3, temperature=-1.0)
    with pytest.raises(ValueError, match="top_k"):
        model.generate(prompt, 3, top_k=0)
    with pytest.raises(ValueError, match="at least one token"):
        model.generate(torch.zeros(1, 0, dtype=torch.long), 3)
    with pytest.raises(ValueError, match="max_new_tokens"):
        model.generate(prompt, -1)


def test_sample_logits_top_k_restricts_the_support() -> None:
    logits = torch.tensor([[0.0, 5.0, 4.0, -1.0, 3.0]]).expand(400, -1)
    draws = sample_logits(logits, temperature=2.0, top_k=2, generator=torch.Generator().manual_seed(0))
    assert set(draws.flatten().tolist()) == {1, 2}


def test_weight_tying_and_perplexity() -> None:
    model = lm(tie=True)
    assert model.head.weight is model.embedding.weight
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in lm().parameters()) - 20 * 8
    with pytest.raises(ValueError, match="tie_weights"):
        create_model("char_lstm", vocab_size=20, embed_dim=8, hidden_dim=16, tie_weights=True)
    # A model that scores every token alike has perplexity V.
    flat = lm()
    with torch.no_grad():
        flat.head.weight.zero_()
        flat.head.bias.zero_()
    x = torch.randint(0, 20, (2, 5))
    assert flat.perplexity(x, x) == pytest.approx(20.0, rel=1e-5)
    y = x.clone()
    y[:, :3] = -100  # ignored positions do not count
    model = lm()
    with torch.no_grad():
        expected = math.exp(F.cross_entropy(model(x)[:, 3:].flatten(0, 1), x[:, 3:].flatten()).item())
    assert model.perplexity(x, y) == pytest.approx(expected, rel=1e-5)


# ----------------------------------------------------------------------------------------------
# forecasting


def sine_bundle(n: int = 400, window: int = 12, horizon: int = 3, noise: float = 0.0) -> DataBundle:
    g = torch.Generator().manual_seed(0)
    t = torch.arange(n + window + horizon, dtype=torch.float64)
    s = torch.sin(0.3 * t) + 0.5 * torch.sin(0.05 * t) + noise * torch.randn(len(t), generator=g, dtype=torch.float64)
    mean, std = float(s[: int(0.7 * n)].mean()), float(s[: int(0.7 * n)].std())
    z = ((s - mean) / std).float()
    x = torch.stack([z[i:i + window] for i in range(n)])[..., None]  # (N, L, 1)
    y = torch.stack([z[i + window:i + window + horizon] for i in range(n)])  # (N, H)
    a, b = int(0.7 * n), int(0.85 * n)
    info = DatasetInfo("sines_test", "series", (window, 1), mean=(mean,), std=(std,), horizon=horizon)
    return DataBundle(info, ArraySplit(x[:a], y[:a]), ArraySplit(x[a:b], y[a:b]), ArraySplit(x[b:], y[b:]))


def test_forecaster_shapes_and_input_check() -> None:
    model = create_model("gru_forecaster", in_features=2, horizon=4, window=7, hidden_dim=8)
    x = model.example_input(5)
    assert x.shape == (5, 7, 2) and model(x).shape == (5, 4)
    assert model(torch.randn(5, 30, 2)).shape == (5, 4)  # any window length
    with pytest.raises(ValueError, match=r"\(B, L, 2\)"):
        model(torch.randn(5, 7, 3))
    assert isinstance(model, RNNForecaster)


def test_baselines_linear_beats_naive_on_sines() -> None:
    bundle = sine_bundle(noise=0.01)
    scores = baseline_forecasts(bundle)
    (naive_rmse, naive_mae), (lin_rmse, lin_mae) = scores["naive"], scores["linear"]
    assert lin_rmse < 0.2 * naive_rmse and lin_mae < 0.2 * naive_mae
    # Raw units: the scaled errors times feature 0's std.
    test = bundle.test
    scaled = forecast_errors(naive_forecast(test.x, 3), test.y)
    assert naive_rmse == pytest.approx(scaled[0] * bundle.info.std[0])


def test_linear_forecaster_recovers_an_exact_autoregression() -> None:
    # sin(w t) obeys x_{t+1} = 2 cos(w) x_t - x_{t-1}: a window of 2 predicts it exactly.
    t = torch.arange(300, dtype=torch.float32)
    s = torch.sin(0.3 * t)
    x, y = torch.stack([s[i:i + 2] for i in range(297)])[..., None], s[2:299, None]
    model = LinearForecaster(2, 1, 1).fit(x, y)
    torch.testing.assert_close(model.linear.weight, torch.tensor([[-1.0, 2 * math.cos(0.3)]]), rtol=1e-4, atol=1e-4)
    assert forecast_errors(model(x), y)[0] < 1e-4
    assert naive_forecast(x, 1).shape == (297, 1) and torch.equal(naive_forecast(x, 1)[:, 0], x[:, -1, 0])
