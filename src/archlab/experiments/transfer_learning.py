"""Experiment ``transfer_learning``: pretrain on digits 0-4, transfer to 5-9 with 1%, 10% and 100% of the labels.

A small ResNet (``resnet18_cifar`` at ``width=8``: 176k parameters) learns MNIST's digits 0-4
(``data.classes=[0,1,2,3,4]``). Its weights then start a network for a new task, digits 5-9
(``data.classes=[5,6,7,8,9]``), trained on a stratified 1%, 10% or all of their training labels
(``data.label_fraction``). Three ways to train it, under the same budget at each fraction (the same
number of optimizer steps, batch size and learning-rate schedule):

    scratch        random initialisation, everything trains
    linear probe   pretrained body frozen (its batch norms keep their statistics), a new head trains
                   (``model.init=<pretrain run>``, ``train.finetune=linear_probe``)
    fine-tune      pretrained body, new head, everything trains, lower layers more slowly
                   (``train.finetune=full``, ``train.layer_lr_decay``: group k from the top learns at
                   ``lr * decay**k``)

The question (Yosinski et al. 2014; Kornblith et al. 2019): how much do features learnt on other
classes help when labels are scarce, and does it pay to adapt them or only to read them out? The
budget: ``steps = max(min_steps, one epoch)`` at each fraction, so that at 1% (~290 images) every
method sees the data for ~20 epochs, and at 100% for one epoch. At the smallest fraction every method
runs with several seeds (the subset, the head's initialisation and the batch order change with the
seed; the pretrained network is the same).

References:
    J. Yosinski, J. Clune, Y. Bengio, H. Lipson, "How transferable are features in deep neural
    networks?", NeurIPS 2014, https://arxiv.org/abs/1411.1792
    S. Kornblith, J. Shlens, Q. V. Le, "Do better ImageNet models transfer better?", CVPR 2019,
    https://arxiv.org/abs/1805.08974 (linear probe against fine-tuning, and from scratch)
    J. Howard, S. Ruder, "Universal language model fine-tuning for text classification", ACL 2018,
    https://arxiv.org/abs/1801.06146 (discriminative, layer-wise learning rates)
    K. He, R. Girshick, P. Dollar, "Rethinking ImageNet pre-training", ICCV 2019,
    https://arxiv.org/abs/1811.08883 (scratch catches up with enough data and steps)

Deviations from the paper:
    - The papers transfer from ImageNet to other datasets; here the source and target are two
      halves of MNIST (digits 0-4 and 5-9): the same image statistics, different classes, the
      setting of Yosinski et al.'s "A/B" split on a tiny scale. The network is narrow (width 8)
      and trained for one epoch so the whole experiment fits ten CPU minutes.
    - No validation split and no early stopping: every run trains for its fixed budget and is
      tested once, on all test images of digits 5-9, with its final weights.
    - Fine-tuning uses ``layer_lr_decay=0.5`` over the six layer groups of the ResNet (stem,
      four stages, head) rather than ULMFiT's 1/2.6 per layer and slanted triangular schedule;
      every method uses Adam with a cosine schedule. Scratch and fine-tuning share the base learning
      rate (1e-3); the linear probe, a convex problem on 64 features, gets 100x that (0.1): at 1e-3
      it stops far from its optimum within the budget (63% at 1% of the labels, training loss 1.0),
      and of 0.01, 0.03 and 0.1 (tried at 1% of the labels, seed 0) the largest was the best
      (81.6%, 84.9%, 86.8%), so the probe is a fair, strong baseline rather than an undertrained one.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from archlab.registry import register_experiment

__all__ = ["METHODS", "budget", "transfer_learning"]

#: method -> (starts from the pretrained weights, dotted overrides, learning rate as a multiple of the base lr)
METHODS: dict[str, tuple[bool, dict[str, Any], float]] = {
    "scratch": (False, {}, 1.0),
    "linear probe": (True, {"train.finetune": "linear_probe"}, 100.0),
    "fine-tune": (True, {"train.finetune": "full", "train.layer_lr_decay": 0.5}, 1.0),
}

FULL = {
    "dataset": "mnist",
    "model": "resnet18_cifar",
    "width": 8,
    "fractions": (0.01, 0.1, 1.0),
    "source": (0, 1, 2, 3, 4),
    "target": (5, 6, 7, 8, 9),
    "pretrain_epochs": 1,
    "batch_size": 64,
    "small_batch_size": 32,
    "min_steps": 200,
    "seeds_smallest": (0, 1, 2),
    "lr": 1e-3,
    "log_every": 10,
}
QUICK = {
    "dataset": "digits",
    "model": "resnet18_cifar",
    "width": 8,
    "fractions": (0.01, 0.1, 1.0),
    "source": (0, 1, 2, 3, 4),
    "target": (5, 6, 7, 8, 9),
    "pretrain_epochs": 5,
    "batch_size": 32,
    "small_batch_size": 16,
    "min_steps": 12,
    "seeds_smallest": (0,),
    "lr": 3e-3,
    "log_every": 2,
}


def budget(n_labelled: int, batch_size: int, small_batch_size: int, min_steps: int) -> tuple[int, int]:
    """(batch size, optimizer steps) for ``n_labelled`` training images: the small batch when fewer than
    ten batches fit, and at least ``min_steps`` steps and at least one epoch."""
    bs = small_batch_size if n_labelled < 10 * batch_size else batch_size
    bs = max(1, min(bs, n_labelled))
    return bs, max(min_steps, math.ceil(n_labelled / bs))


def _subset_size(labels: Any, fraction: float) -> int:
    """Images kept by ``data.label_fraction`` (archlab's stratified rule: max(1, round(n_c * f)) per class)."""
    counts = np.bincount(np.asarray(labels))
    return (
        int(sum(max(1, round(int(n) * fraction)) for n in counts if n > 0))
        if fraction < 1
        else int(len(labels))
    )


@register_experiment(
    "transfer_learning",
    family="cnn",
    description="Pretrain on digits 0-4, transfer to 5-9 with 1/10/100% of the labels: "
    "scratch vs linear probe vs fine-tuning",
)
def transfer_learning(
    out_dir: Path,
    quick: bool = False,
    *,
    dataset: str | None = None,
    data_root: str | None = None,
    width: int | None = None,
    fractions: tuple[float, ...] | list[float] | None = None,
    seeds_smallest: tuple[int, ...] | list[int] | None = None,
    min_steps: int | None = None,
    threads: int | None = 1,
) -> dict[str, Any]:
    """Scratch against linear probe against fine-tuning at several label fractions (see the module doc).

    Args:
        out_dir: the experiment's folder (``runs/`` holds every sub-run, ``runs/pretrain`` the source model).
        quick: digits (8x8), a few steps (a smoke test).
        dataset: ``mnist`` (full default) or ``digits`` (quick default).
        data_root: the folder holding ``mnist/``.
        width: base width of the ResNet.
        fractions: shares of the target task's training labels.
        seeds_smallest: seeds of every method at the smallest fraction (others: seed 0).
        min_steps: the fewest optimizer steps of a run.
        threads: torch CPU threads.
    """
    from archlab.data import load_dataset
    from archlab.data.base import select_classes
    from archlab.experiments.resnet_experiments import (
        accuracy,
        num_threads,
        prepare_images,
        resolve_root,
        skip_test_callback,
        train_run,
    )
    from archlab.report.experiment import write_experiment_report
    from archlab.viz._mpl import new_figure, save_figure

    t0 = time.perf_counter()
    c = dict(QUICK if quick else FULL)
    ds = dataset or c["dataset"]
    width = int(width or c["width"])
    fractions = sorted(float(f) for f in (fractions or c["fractions"]))
    seeds_small = tuple(
        int(s) for s in (seeds_smallest if seeds_smallest is not None else c["seeds_smallest"])
    )
    min_steps = int(min_steps or c["min_steps"])
    root = resolve_root(ds, data_root)
    bundle = load_dataset(ds, root, val_split=0.0)
    target = select_classes(bundle, list(c["target"]))
    x_test, y_test = prepare_images(target.info, target.test.x), target.test.y
    common = {
        "data.val_split": 0.0,
        "train.optimizer": "adam",
        "train.lr": c["lr"],
        "train.schedule": "cosine",
        "train.log_every": c["log_every"],
        "train.epochs": 1,
    }
    options = {"width": width}

    # 1. the source model
    pre = train_run(
        out_dir,
        "pretrain",
        c["model"],
        ds,
        root=root,
        threads=threads,
        options=options,
        overrides={
            **common,
            "data.classes": list(c["source"]),
            "train.epochs": c["pretrain_epochs"],
            "train.batch_size": c["batch_size"],
            "train.seed": 0,
        },
    )
    pretrain_dir = pre["run_dir"]

    # 2. every method at every fraction, the same budget per fraction
    results: list[dict[str, Any]] = []
    for f in fractions:
        n = _subset_size(target.train.y, f)
        bs, steps = budget(n, c["batch_size"], c["small_batch_size"], min_steps)
        seeds = seeds_small if f == fractions[0] else (0,)
        for method, (pretrained, ovs, lr_scale) in METHODS.items():
            for seed in seeds:
                name = f"{method.replace(' ', '_')}-f{f:g}-s{seed}"
                overrides = {
                    **common,
                    **ovs,
                    "data.classes": list(c["target"]),
                    "train.batch_size": bs,
                    "train.max_steps": steps,
                    "train.epochs": math.ceil(steps / max(1, n // bs)),
                    "train.seed": seed,
                    "train.lr": c["lr"] * lr_scale,
                }
                if f < 1.0:
                    overrides["data.label_fraction"] = f
                if pretrained:
                    overrides["model.init"] = pretrain_dir
                r = train_run(
                    out_dir,
                    name,
                    c["model"],
                    ds,
                    root=root,
                    threads=threads,
                    options=options,
                    overrides=overrides,
                    callbacks=[skip_test_callback()],
                )
                net = r.pop("model")
                with num_threads(threads):
                    r["test_acc"], r["test_loss"] = accuracy(net, x_test, y_test)
                r.update(
                    method=method,
                    fraction=f,
                    seed=seed,
                    batch_size=bs,
                    max_steps=steps,
                    trainable=sum(p.numel() for p in net.parameters() if p.requires_grad),
                )
                results.append(r)

    # 3. tables and figures
    rows, table = [], {}
    for f in fractions:
        for method in METHODS:
            rs = [r for r in results if r["fraction"] == f and r["method"] == method]
            accs = np.array([r["test_acc"] for r in rs])
            table.setdefault(method, {})[f] = {
                "mean": float(accs.mean()),
                "std": float(accs.std()),
                "accs": accs.tolist(),
            }
            rows.append({
                "label fraction": f"{f:.0%}", "labelled images": rs[0]["n_train"], "method": method,
                "steps": rs[0]["steps"], "batch": rs[0]["batch_size"],
                "epochs": f"{rs[0]['steps'] * rs[0]['batch_size'] / max(rs[0]['n_train'], 1):.1f}",
                "trainable params": f"{rs[0]['trainable']:,}", "test acc": round(float(accs.mean()), 4),
                "± (seeds)": round(float(accs.std()), 4) if len(rs) > 1 else "", "seeds": len(rs),
                "train s": f"{np.mean([r['train_seconds'] for r in rs]):.1f}",
            })  # fmt: skip

    fig = new_figure(11, 4)
    ax1, ax2 = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    for i, method in enumerate(METHODS):
        means = [table[method][f]["mean"] for f in fractions]
        stds = [table[method][f]["std"] for f in fractions]
        ax1.errorbar(
            [100 * f for f in fractions], means, yerr=stds, marker="o", capsize=3, color=f"C{i}", label=method
        )
        r0 = next(r for r in results if r["method"] == method and r["fraction"] == fractions[0])
        ax2.plot(r0["history"]["step"], r0["history"]["loss"], color=f"C{i}", label=method)
    ax1.set(
        xscale="log",
        xlabel="labels of digits 5-9 used (%)",
        ylabel="test accuracy (digits 5-9)",
        title="Accuracy against label fraction",
    )
    ax1.set_xticks([100 * f for f in fractions], [f"{100 * f:g}%" for f in fractions])
    ax1.legend()
    ax2.set(
        xlabel="step",
        ylabel="training loss",
        yscale="log",
        title=f"Training at {fractions[0]:.0%} of the labels (seed {results[0]['seed']})",
    )
    ax2.legend()
    png = save_figure(fig, out_dir / "transfer.png")

    small = fractions[0]
    acc = {m: table[m][small]["mean"] for m in METHODS}
    beats = acc["fine-tune"] > acc["scratch"]
    lines = [
        f"- **At {small:.0%} of the labels** ({rows[0]['labelled images']} images, {len(seeds_small)} seed(s)): "
        f"scratch {acc['scratch']:.4f}, linear probe {acc['linear probe']:.4f}, fine-tune {acc['fine-tune']:.4f}. "
        + (
            f"Fine-tuning **beats** training from scratch by {100 * (acc['fine-tune'] - acc['scratch']):.1f} points."
            if beats
            else f"Fine-tuning does **not** beat training from scratch "
            f"({100 * (acc['fine-tune'] - acc['scratch']):+.1f} points)."
        ),
    ]
    for f in fractions:
        best = max(METHODS, key=lambda m: table[m][f]["mean"])
        gap = table["fine-tune"][f]["mean"] - table["scratch"][f]["mean"]
        lines.append(
            f"- {f:.0%} of the labels: best {best} ({table[best][f]['mean']:.4f}); fine-tune minus scratch "
            f"{100 * gap:+.1f} points, linear probe minus scratch "
            f"{100 * (table['linear probe'][f]['mean'] - table['scratch'][f]['mean']):+.1f} points."
        )
    gaps = [table["fine-tune"][f]["mean"] - table["scratch"][f]["mean"] for f in fractions]
    lines.append(
        "- The head start of pretraining "
        + ("shrinks as labels grow" if gaps[-1] < gaps[0] else "does not shrink as labels grow")
        + f" ({100 * gaps[0]:+.1f} points at {fractions[0]:.0%}, {100 * gaps[-1]:+.1f} at {fractions[-1]:.0%}): "
        "with enough labels a network learns the features itself. The linear probe, which can only reweight "
        "features learnt for other digits, "
        + (
            "keeps up with fine-tuning"
            if table["linear probe"][fractions[-1]]["mean"] >= table["fine-tune"][fractions[-1]]["mean"]
            else "falls behind fine-tuning"
        )
        + f" at {fractions[-1]:.0%} ({table['linear probe'][fractions[-1]]['mean']:.4f} against "
        f"{table['fine-tune'][fractions[-1]]['mean']:.4f})."
    )
    behind = [f for f in fractions if table["fine-tune"][f]["mean"] < table["scratch"][f]["mean"]]
    if behind:
        from archlab.registry import create_model
        from archlab.transfer import group_label, layer_groups

        decay = float(METHODS["fine-tune"][1].get("train.layer_lr_decay", 1.0))
        net = create_model(c["model"], target.info, **options)
        groups = layer_groups(net)
        slow = ", ".join(
            f"{group_label(g, net)} at lr x {decay ** (len(groups) - 1 - i):.3g}"
            for i, g in enumerate(groups[:2])
        )
        lines.append(
            f"- Fine-tuning falls behind scratch at {', '.join(f'{f:.0%}' for f in behind)} of the labels: with "
            f"`layer_lr_decay={decay:g}` the lowest layer groups learn slowly ({slow}), so features tuned to "
            "digits 0-4 adapt slowly, which costs more than the head start saves once labels are plentiful."
        )
    total = time.perf_counter() - t0
    lines.append(
        f"- Source model: test accuracy {pre['test_acc']:.4f} on digits {c['source'][0]}-{c['source'][-1]} "
        f"after {pre['steps']} steps; the whole experiment took {total:.0f} s."
    )
    intro = (
        "How much do features learnt on other classes help when labels are scarce, and is it worth adapting "
        "them or only reading them out? A small ResNet learns MNIST's digits 0-4 (`data.classes=[0,1,2,3,4]`); "
        "its weights then start a network for digits 5-9 (`data.classes=[5,6,7,8,9]`), trained on a stratified "
        "share of their training labels (`data.label_fraction`). Three methods, with the same number of "
        "optimizer steps, batch size and schedule at each fraction:\n\n"
        "- **scratch**: random initialisation, everything trains;\n"
        "- **linear probe**: the pretrained body is frozen (its batch norms keep their statistics) and only a new "
        "head trains (`model.init=<pretrain run>`, `train.finetune=linear_probe`);\n"
        "- **fine-tune**: the pretrained body and a new head all train, lower layers more slowly "
        "(`train.finetune=full`, `train.layer_lr_decay=0.5`: layer group k from the top learns at lr x 0.5^k).\n\n"
        f"Setup: `{c['model']}` with `width={width}`; {'MNIST (28x28)' if ds == 'mnist' else ds}, no validation "
        f"split; the source model trains {c['pretrain_epochs']} epoch(s) on digits {c['source'][0]}-"
        f"{c['source'][-1]} ({pre['n_train']:,} images); every target run uses Adam (lr {c['lr']}; the "
        f"linear probe {c['lr'] * METHODS['linear probe'][2]:g}) with a cosine schedule for `max(min_steps={min_steps}, one epoch)` steps; the test accuracy is on all "
        f"{len(x_test):,} test images of digits {c['target'][0]}-{c['target'][-1]}. The fine-tune runs use "
        f"`train.layer_lr_decay=0.5`."
        + (" **Quick mode**: a smoke test, too short for the numbers to mean much." if quick else "")
    )
    report = write_experiment_report(
        out_dir,
        "Transfer learning: digits 0-4 to digits 5-9",
        intro,
        figures=[("Test accuracy against label fraction, and training curves at the smallest fraction", png)],
        tables=[("Target task (digits 5-9)", rows)],
        conclusions="\n".join(lines),
    )
    return {
        "report": str(report),
        "seconds": time.perf_counter() - t0,
        "rows": rows,
        "table": table,
        "fractions": fractions,
        "methods": list(METHODS),
        "pretrain": {
            "test_acc": pre["test_acc"],
            "steps": pre["steps"],
            "n_train": pre["n_train"],
            "run_dir": pretrain_dir,
        },
        "acceptance": {
            "fraction": small,
            "finetune_beats_scratch": beats,
            "finetune": acc["fine-tune"],
            "scratch": acc["scratch"],
            "linear_probe": acc["linear probe"],
        },
        "runs": [{k: v for k, v in r.items() if k != "model"} for r in results],
        "setup": {
            "dataset": ds,
            "width": width,
            "quick": quick,
            "seeds_smallest": list(seeds_small),
            "min_steps": min_steps,
        },
    }
