"""The sequence tasks: text classification, language modelling with truncated BPTT, forecasting."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from archlab.config import RunConfig
from archlab.data.base import ArraySplit, DataBundle, DatasetInfo, TensorLoader
from archlab.models.rnn.forecast import RNNForecaster
from archlab.models.rnn.lm import RNNLanguageModel
from archlab.models.rnn.text import RNNClassifier
from archlab.registry import list_datasets
from archlab.tasks import build_task
from archlab.tasks.sequence import (
    ForecastTask,
    LanguageModelTask,
    StreamLoader,
    TextClassificationTask,
    build_sequence_task,
)


def fake_trainer(**train: object) -> SimpleNamespace:
    cfg = RunConfig()
    cfg.train.batch_size = 4
    cfg.data.eval_batch_size = 8
    for k, v in train.items():
        setattr(cfg.train, k, v)
    return SimpleNamespace(cfg=cfg, fabric=SimpleNamespace(device=torch.device("cpu"), global_rank=0, world_size=1))


def text_bundle(n: int = 24, t: int = 10) -> DataBundle:
    g = torch.Generator().manual_seed(0)
    x = torch.randint(4, 30, (n, t), generator=g)
    lengths = torch.randint(1, t - 2, (n,), generator=g)  # every batch has trailing all-pad columns
    x[torch.arange(t)[None] >= lengths[:, None]] = 0
    y = (x[:, 0] % 2).long()
    vocab = SimpleNamespace(pad_id=0)
    info = DatasetInfo("toy_text", "text", (t,), num_classes=2, class_names=["neg", "pos"], vocab=vocab)
    return DataBundle(info, ArraySplit(x[:16], y[:16]), ArraySplit(x[16:], y[16:]), ArraySplit(x[16:], y[16:]))


def lm_bundle(n: int = 12, t: int = 8) -> DataBundle:
    stream = torch.arange(n * t + 1) % 17 + 4
    x, y = stream[:-1].view(n, t), stream[1:].view(n, t)
    info = DatasetInfo("toy_lm", "lm", (t,), vocab=None)
    return DataBundle(info, ArraySplit(x, y), ArraySplit(x[:4], y[:4]), None)


def classifier() -> RNNClassifier:
    torch.manual_seed(0)
    return RNNClassifier(30, 2, embed_dim=8, hidden_dim=8, pooling="mean", max_len=10)


def lm(tbptt: int | None = None) -> tuple[RNNLanguageModel, LanguageModelTask]:
    torch.manual_seed(0)
    model = RNNLanguageModel(21, embed_dim=8, hidden_dim=8, num_layers=1, max_len=8)
    return model, LanguageModelTask(model, tbptt=tbptt, vocab_size=21)


# ----------------------------------------------------------------------------------------------
# text classification


def test_text_task_steps_trim_padding() -> None:
    bundle = text_bundle()
    task = TextClassificationTask(classifier())
    x, y = bundle.train.x, bundle.train.y
    wide = torch.cat([x, torch.zeros(len(x), 5, dtype=torch.long)], 1)
    seen = []
    task.model.register_forward_pre_hook(lambda m, args: seen.append(args[0].shape[1]))
    task.eval()
    a = task.validation_step((x, y))
    b = task.validation_step((wide, y))
    assert seen == [int((x != 0).sum(1).max())] * 2  # the model saw only the real columns
    assert set(a) == {"loss", "acc"}
    torch.testing.assert_close(a["loss"], b["loss"])
    task.train()
    out = task.training_step((x, y))
    out["loss"].backward()
    assert task.model.head.weight.grad is not None
    assert task.predict_step((x, y)).shape == (16, 2)
    logits, targets = task.predict_with_targets((x, y))
    assert logits.shape == (16, 2) and torch.equal(targets, y)


def test_text_task_loaders_bucket_the_training_split_only() -> None:
    from archlab.data.text import BucketLoader

    bundle = text_bundle()
    for bucket in (True, False):
        task = build_sequence_task("text_classification", classifier(), bundle.info,
                                   fake_trainer(bucket_by_length=bucket).cfg)
        train, val, test = task.make_loaders(bundle, fake_trainer())
        assert isinstance(train, BucketLoader) == bucket and isinstance(train, TensorLoader)
        assert type(val) is TensorLoader and type(test) is TensorLoader
        assert len(train) == 4 and len(val) == 1
        rows = torch.cat([xb for xb, _ in train])
        assert sorted(map(tuple, rows.tolist())) == sorted(map(tuple, bundle.train.x.tolist()))


def test_build_task_checks_the_kind() -> None:
    bundle = text_bundle()
    cfg = RunConfig()
    assert isinstance(build_task(classifier(), bundle.info, cfg), TextClassificationTask)
    with pytest.raises(ValueError, match="text classification, but toy_lm is lm data"):
        build_task(classifier(), lm_bundle().info, cfg)
    with pytest.raises(ValueError, match="unknown sequence task"):
        build_sequence_task("tagging", classifier(), bundle.info, cfg)


# ----------------------------------------------------------------------------------------------
# language modelling


def test_lm_task_metrics_and_final_perplexity() -> None:
    bundle = lm_bundle()
    model, task = lm()
    x, y = bundle.train.x, bundle.train.y
    out = task.validation_step((x, y))
    with torch.no_grad():
        logits = model(x)
    expected = F.cross_entropy(logits.flatten(0, 1), y.flatten())
    torch.testing.assert_close(out["loss"], expected)
    torch.testing.assert_close(out["bpc"], expected / math.log(2))
    torch.testing.assert_close(out["acc"], (logits.argmax(-1) == y).float().mean())
    ppl = task.final_metrics(TensorLoader(bundle.train, 5), "val")["ppl"]  # uneven batches: token-weighted
    assert ppl == pytest.approx(math.exp(expected.item()), rel=1e-5)
    out_last, y_last = task.predict_with_targets((x, y))
    assert out_last.shape == (12, 21) and torch.equal(y_last, y[:, -1])
    y2 = y.clone()
    y2[:, :4] = -100  # ignored positions
    out2 = task.validation_step((x, y2))
    torch.testing.assert_close(out2["loss"], F.cross_entropy(logits[:, 4:].flatten(0, 1), y[:, 4:].flatten()))


def test_stream_loader_yields_consecutive_chunks_of_parallel_streams() -> None:
    bundle = lm_bundle()  # 96 tokens
    loader = StreamLoader(bundle.train.x, bundle.train.y, batch_size=4, steps=5)
    chunks = list(loader)
    assert len(loader) == len(chunks) == 5  # 24 tokens per stream: 4 chunks of 5, then 4
    assert [c[2] for c in chunks] == [0, 1, 2, 3, 4] and chunks[-1][0].shape == (4, 4)
    xs = torch.cat([c[0] for c in chunks], 1)
    ys = torch.cat([c[1] for c in chunks], 1)
    flat = bundle.train.x.flatten()
    for r in range(4):  # row r is the r-th quarter of the joined text, in order
        assert torch.equal(xs[r], flat[r * 24:(r + 1) * 24])
        assert torch.equal(ys[r, :-1], xs[r, 1:])  # targets are the next tokens
    loader.set_epoch(1, start_batch=3)  # resuming mid-epoch
    assert [c[2] for c in loader] == [3, 4]
    assert [c[2] for c in loader] == [0, 1, 2, 3, 4]
    shards = [StreamLoader(bundle.train.x, bundle.train.y, 2, 5, rank=r, world_size=2) for r in range(2)]
    firsts = torch.cat([next(iter(s))[0] for s in shards])
    assert torch.equal(firsts, chunks[0][0])  # two ranks of 2 streams = one rank of 4


def test_tbptt_carries_the_detached_state_and_resets_each_epoch() -> None:
    bundle = lm_bundle()
    model, task = lm(tbptt=5)
    train, val, _ = task.make_loaders(bundle, fake_trainer(tbptt=5))
    assert isinstance(train, StreamLoader) and isinstance(val, TensorLoader)
    task.eval()  # no dropout anyway; eval only to compare numbers
    chunks = list(train)
    out0 = task.training_step(chunks[0])
    h, c = task._state
    assert not h.requires_grad and h.shape == (1, 4, 8)
    out1 = task.training_step(chunks[1])
    with torch.no_grad():  # chunk 1 continues chunk 0: the same as one pass over both
        both = model(torch.cat([chunks[0][0], chunks[1][0]], 1))[:, 5:]
    torch.testing.assert_close(out1["loss"], F.cross_entropy(both.flatten(0, 1), chunks[1][1].flatten()))
    again = task.training_step(chunks[0])  # index 0: a new epoch starts from zeros
    torch.testing.assert_close(again["loss"], out0["loss"])
    # The gradient of a chunk stops at its first step (the carried state is a constant).
    task.train()
    task.training_step(chunks[0])
    loss = task.training_step(chunks[1])["loss"]
    loss.backward()
    assert model.rnn.weight_hh_l0.grad is not None


def test_tbptt_needs_a_stateful_model() -> None:
    class Plain(nn.Module):
        def forward(self, x):
            return torch.zeros(*x.shape, 5)

    with pytest.raises(ValueError, match="leave train.tbptt unset"):
        LanguageModelTask(Plain(), tbptt=8)
    with pytest.raises(ValueError, match="tbptt"):
        lm(tbptt=0)


def test_lm_eval_batches_are_bounded_by_the_logit_count() -> None:
    bundle = lm_bundle()
    model = RNNLanguageModel(21, embed_dim=4, hidden_dim=4, num_layers=1)
    task = LanguageModelTask(model, vocab_size=2**22)
    _, val, _ = task.make_loaders(bundle, fake_trainer())
    assert val.batch_size == 1  # 8 * 2**22 logits per row already


# ----------------------------------------------------------------------------------------------
# forecasting


def series_bundle() -> DataBundle:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(40, 6, 1, generator=g)
    y = x[:, -1, :].repeat(1, 2) + 0.1 * torch.randn(40, 2, generator=g)
    info = DatasetInfo("toy_series", "series", (6, 1), mean=(10.0,), std=(3.0,), horizon=2)
    return DataBundle(info, ArraySplit(x[:30], y[:30]), ArraySplit(x[30:], y[30:]), ArraySplit(x[30:], y[30:]))


def test_forecast_task_metrics_are_in_raw_units() -> None:
    bundle = series_bundle()
    torch.manual_seed(0)
    model = RNNForecaster(1, 2, hidden_dim=8)
    task = build_sequence_task("forecast", model, bundle.info, RunConfig())
    assert isinstance(task, ForecastTask) and (task.mean, task.std) == (10.0, 3.0)
    x, y = bundle.val.x, bundle.val.y
    out = task.validation_step((x, y))
    with torch.no_grad():
        pred = model(x)
    torch.testing.assert_close(out["loss"], F.mse_loss(pred, y))
    torch.testing.assert_close(out["rmse"], F.mse_loss(pred, y).sqrt() * 3.0)
    torch.testing.assert_close(out["mae"], (pred - y).abs().mean() * 3.0)
    raw, target = task.predict_with_targets((x, y))
    torch.testing.assert_close(raw, pred * 3.0 + 10.0)
    torch.testing.assert_close(target, y * 3.0 + 10.0)
    task.training_step((x, y))["loss"].backward()
    _, val, _ = task.make_loaders(bundle, fake_trainer())
    final = task.final_metrics(TensorLoader(bundle.val, 3), "val")  # uneven batches: exact over the split
    assert final["rmse"] == pytest.approx(out["rmse"].item(), rel=1e-5)
    assert final["mae"] == pytest.approx(out["mae"].item(), rel=1e-5)
    assert final["naive_rmse"] < 0.5 and final["linear_rmse"] < 0.5  # y is near the last value


# ----------------------------------------------------------------------------------------------
# end to end (the registered datasets, when the data helper's modules are present)


def _needs(name: str) -> None:
    import archlab.data  # noqa: F401  (registers the datasets)

    if name not in list_datasets():
        pytest.skip(f"dataset {name!r} is not registered")


def test_train_gru_classifier_on_sentiment(tmp_path) -> None:
    _needs("sentiment")
    import archlab

    run = archlab.train("gru_classifier", data="sentiment", overrides={
        "train.epochs": 1, "train.max_steps": 5, "train.batch_size": 16, "model.embed_dim": 8,
        "model.hidden_dim": 8, "run.out_dir": str(tmp_path), "system.progress": False,
        "system.tensorboard": False, "run.report": False, "data.options.n_samples": 200})
    assert run.status == "completed" and 0.0 <= run.metrics["test/acc"] <= 1.0
    assert (run.path / "predictions.safetensors").exists()


def test_train_char_lstm_with_tbptt_on_the_corpus(tmp_path) -> None:
    _needs("corpus")
    import archlab

    run = archlab.train("char_lstm", data="corpus", overrides={
        "train.epochs": 1, "train.max_steps": 4, "train.batch_size": 4, "train.tbptt": 16,
        "model.embed_dim": 8, "model.hidden_dim": 8, "model.num_layers": 1, "run.out_dir": str(tmp_path),
        "system.progress": False, "system.tensorboard": False, "run.report": False})
    assert run.status == "completed"
    assert run.metrics["val/ppl"] == pytest.approx(math.exp(run.metrics["val/loss"]), rel=1e-3)


def test_train_lstm_forecaster_on_sines(tmp_path) -> None:
    _needs("sines")
    import archlab

    run = archlab.train("lstm_forecaster", data="sines", overrides={
        "train.epochs": 1, "train.max_steps": 3, "model.hidden_dim": 8, "run.out_dir": str(tmp_path),
        "system.progress": False, "system.tensorboard": False, "run.report": False})
    assert run.status == "completed"
    assert {"test/rmse", "test/mae", "test/naive_rmse", "test/linear_rmse"} <= set(run.metrics)


@pytest.mark.real_data
def test_real_sst2_and_tinyshakespeare_batches_fit_the_tasks(shared_data) -> None:
    """The real files: one test batch of each through a tiny model and its task."""
    from archlab.data import load_dataset
    from archlab.registry import create_model

    if not (shared_data / "sst2").is_dir() or not (shared_data / "tinyshakespeare").is_dir():
        pytest.skip("no sst2 / tinyshakespeare in the shared data folder")
    sst2 = load_dataset("sst2", shared_data, download=False)
    model = create_model("bilstm", sst2.info, embed_dim=8, hidden_dim=8)
    task = build_task(model, sst2.info, RunConfig())
    batch = (sst2.test.x[:64], sst2.test.y[:64])
    out = task.validation_step(batch)
    assert len(sst2.test) == 872 and 0.0 <= out["acc"] <= 1.0
    assert task.predict_step(batch).shape == (64, 2)
    shk = load_dataset("tinyshakespeare", shared_data, download=False, context=32)
    lm_model = create_model("char_lstm", shk.info, embed_dim=8, hidden_dim=8, num_layers=1)
    lm_task = build_task(lm_model, shk.info, RunConfig())
    out = lm_task.validation_step((shk.val.x[:4], shk.val.y[:4]))
    assert out["loss"].item() == pytest.approx(math.log(len(shk.info.vocab)), rel=0.1)  # untrained: near uniform
