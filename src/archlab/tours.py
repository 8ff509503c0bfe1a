"""``archlab tour`` (and ``make demo``): one representative model per family, trained on
embedded data in a few minutes on a laptop, with an ``index.html`` linking every run's report.

Each family adds its stop to :data:`STOPS`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Stop", "STOPS", "tour"]


@dataclass
class Stop:
    """One stop of the tour: a model trained on an embedded dataset."""

    name: str
    model: str
    data: str
    family: str
    blurb: str
    metric: str = "test/acc"
    overrides: dict[str, Any] = field(default_factory=dict)


STOPS: list[Stop] = [
    Stop("perceptron-iris", "perceptron", "iris", "mlp",
         "Rosenblatt's perceptron (1958), trained with the perceptron criterion on the iris flowers."),
    Stop("mlp-spirals", "mlp", "spirals", "mlp",
         "A two-hidden-layer MLP separating two interleaved spirals, which no linear model can."),
    Stop("scratch_mlp-digits", "scratch_mlp", "digits", "scratch",
         "An MLP written from scratch in NumPy (archlab.scratch): autograd, backpropagation, Adam."),
    Stop("gcn-karate", "gcn", "karate", "graph",
         "A GCN (Kipf & Welling, 2017) on Zachary's Karate Club, from one labelled member per faction."),
    Stop("lenet5-digits", "lenet5", "digits", "cnn",
         "LeNet-5 (LeCun et al., 1998) on scikit-learn's 8x8 handwritten digits."),
    Stop("simple_cnn-digits", "simple_cnn", "digits", "cnn",
         "The seeds' simple CNN: Conv-BatchNorm-ReLU blocks with max pooling."),
    Stop("resnet20-digits", "resnet18_cifar", "digits", "cnn",
         "He et al.'s (2016) CIFAR ResNet-20: three stages of 3 residual blocks (16/32/64 planes, 3x3 stem, "
         "zero-padding shortcuts), on the 8x8 digits; its last 2x2 map feeds Grad-CAM.",
         overrides={"model.layers": [3, 3, 3], "model.shortcut": "zero_pad"}),
    Stop("gru-sentiment", "gru_classifier", "sentiment", "rnn",
         "A GRU (Cho et al., 2014) reading generated movie reviews word by word; negation ('not good', "
         "'never boring') flips the label, so word counts alone do not suffice."),
    Stop("seq2seq-dates", "seq2seq_bahdanau", "seq2seq_synthetic", "rnn",
         "A GRU encoder-decoder with Bahdanau attention (2015) rewriting dates such as 'march 5 2021' or "
         "'5.3.21' as 2021-03-05, character by character; its report shows where the decoder attends.",
         metric="test/bleu", overrides={"data.options.task": "dates", "train.epochs": 4}),
    Stop("transformer-sentiment", "transformer_classifier", "sentiment", "transformer",
         "A 2-layer Transformer encoder (Vaswani et al., 2017) classifying the generated reviews; its report "
         "shows which words each head attends to (the negations among them)."),
    Stop("gpt-corpus", "gpt_char", "corpus", "transformer",
         "A tiny GPT (4 layers, 4 heads, 128 wide; Radford et al., 2018) learning archlab's embedded prose "
         "character by character; its report holds samples drawn greedily, with temperature, top-k and top-p.",
         metric="test/ppl", overrides={"train.epochs": 40, "train.batch_size": 8, "model.dropout": 0.2}),
    Stop("vae-digits", "vae", "digits", "generative",
         "A variational autoencoder (Kingma & Welling, 2014) on the 8x8 digits: an 8-dimensional code, a Bernoulli "
         "decoder, the ELBO; its report shows samples through training, reconstructions, a latent interpolation "
         "and the codes coloured by digit. Metric: the importance-weighted test NLL in nats per image.",
         metric="test/nll", overrides={"train.epochs": 40, "model.latent_dim": 8, "model.hidden_dim": 256}),
    Stop("cgan-digits", "cgan", "digits", "generative",
         "A conditional GAN (Mirza & Osindero, 2014) that draws the digit it is asked for: label embeddings "
         "given to both players; its report shows one row of samples per digit and the share a digits "
         "classifier judges to be the intended class. Metric: the discriminator's test loss.",
         metric="test/loss_d", overrides={"train.epochs": 40, "train.batch_size": 32, "model.latent_dim": 32,
                                          "model.hidden_dim": 256}),
]


def tour(out_dir: str | Path = "tour", only: list[str] | None = None) -> Path:
    """Train every stop (or ``only`` those named) into ``out_dir`` and write ``out_dir/index.html``."""
    import archlab
    from archlab.report.index import build_index

    out_dir = Path(out_dir)
    stops = [s for s in STOPS if not only or s.name in only]
    if only and len(stops) != len(only):
        from archlab.registry import UnknownNameError, closest

        missing = [n for n in only if n not in {s.name for s in STOPS}]
        raise UnknownNameError(f"unknown tour stop(s) {missing}; stops: {', '.join(s.name for s in STOPS)}"
                               + (f" (did you mean {closest(missing[0], [s.name for s in STOPS])}?)" if missing else ""))
    entries = []
    t_all = time.perf_counter()
    for i, stop in enumerate(stops, 1):
        print(f"[{i}/{len(stops)}] {stop.name}: {stop.blurb}", flush=True)
        t0 = time.perf_counter()
        ovs = {"run.out_dir": str(out_dir), "run.name": stop.name, "system.progress": False, **stop.overrides}
        run = archlab.train(stop.model, stop.data, overrides=ovs)
        seconds = time.perf_counter() - t0
        value = run.metrics.get(stop.metric)
        print(f"    {stop.metric} = {value:.4f}  ({seconds:.1f} s)  {run.path / 'report.html'}", flush=True)
        entries.append({"name": stop.name, "model": stop.model, "dataset": stop.data, "family": stop.family,
                        "description": stop.blurb, "metric": stop.metric, "value": value,
                        "time_s": round(seconds, 1), "report": f"{stop.name}/report.html"})
    index = build_index(out_dir, entries, title="archlab tour")
    print(f"tour: {len(entries)} stops in {time.perf_counter() - t_all:.0f} s; open {index}", flush=True)
    return index
