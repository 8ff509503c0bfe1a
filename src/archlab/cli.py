"""The ``archlab`` command. Heavy modules (torch, matplotlib) load inside each command, never
at import, so ``archlab --help`` stays instant.

Every command has a Python twin (``archlab.train``, ``archlab.evaluate``...), see README.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

EPILOG = """examples:
  archlab tour                                    train one model per family on embedded data
  archlab list models --family cnn                registered models of a family
  archlab info lenet5 --data mnist                parameters, layer table, FLOPs
  archlab train lenet5 --data digits train.epochs=5
  archlab train lenet5 --data mnist --data-dir ../shared/data
  archlab train mlp --data moons model.hidden_dims=[64,64] train.lr=3e-3 system.precision=bf16-mixed
  archlab train mlp --data iris --devices 2 --strategy ddp
  archlab train --resume runs/lenet5-digits-20260101-120000
  archlab eval runs/lenet5-digits-20260101-120000
  archlab predict runs/lenet5-digits-20260101-120000 digit.png
  archlab train gcn --data cora --data-dir ../shared/data
  archlab train bilstm --data sst2 --data-dir ../shared/data
  archlab predict runs/bilstm-sst2-20260101-120000 "not a bad film at all"
  archlab generate runs/char_lstm-tinyshakespeare-20260101-120000 --prompt "ROMEO:" --top-k 10
  archlab sample runs/cgan-mnist-20260101-120000 --label 7 --n 64
  archlab data list | archlab data download mnist | archlab data verify mnist
  archlab report runs/lenet5-digits-20260101-120000
  archlab explain runs/lenet5-digits-20260101-120000 --method gradcam --count 8
  archlab info resnet18 --receptive-field
  archlab experiment mlp-activations
  archlab tune mlp --data moons --trials 20 space.lr=log(1e-4,1e-1) space.model.hidden_dims=choice([16],[64],[64,64])
  archlab bench lenet5_mnist
"""


def _add_train_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", nargs="?", help="registered model name (archlab list models)")
    p.add_argument("--data", "-d", help="registered dataset name (archlab list datasets)")
    p.add_argument("--config", "-c", help="YAML config file (sections model/data/train/system/run, or dotted keys)")
    p.add_argument("--data-dir", help="data folder (default: $ARCHLAB_DATA or ~/.cache/archlab/data)")
    p.add_argument("--out", help="parent folder of the run folder (run.out_dir, default runs)")
    p.add_argument("--name", help="run folder name (run.name)")
    p.add_argument("--epochs", type=int, help="train.epochs")
    p.add_argument("--lr", type=float, help="train.lr")
    p.add_argument("--batch-size", type=int, help="train.batch_size")
    p.add_argument("--seed", type=int, help="train.seed")
    p.add_argument("--devices", help="system.devices: a count, or 'auto'")
    p.add_argument("--num-nodes", type=int, help="system.num_nodes")
    p.add_argument("--strategy", help="system.strategy: auto, ddp, ddp_spawn, fsdp")
    p.add_argument("--accelerator", help="system.accelerator: auto, cpu, cuda, mps")
    p.add_argument("--precision", help="system.precision: 32-true, bf16-mixed, 16-mixed, bf16-true")
    p.add_argument("--compile", action="store_true", help="system.compile: torch.compile the model")
    p.add_argument("--init", help="model.init: pretrained weights (a file, a run folder, a Hugging Face BERT/GPT-2 "
                   "folder, or 'minilm' for the offline all-MiniLM-L6-v2)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("overrides", nargs="*", metavar="key=value",
                   help="dotted config overrides, e.g. train.lr=3e-4 model.dropout=0.2 (bare names like lr=3e-4 work when unique)")


def _collect_overrides(args: argparse.Namespace) -> list[str]:
    items = list(args.overrides)
    flags = {
        "data_dir": "data.root", "out": "run.out_dir", "name": "run.name", "epochs": "train.epochs",
        "lr": "train.lr", "batch_size": "train.batch_size", "seed": "train.seed", "devices": "system.devices",
        "num_nodes": "system.num_nodes", "strategy": "system.strategy", "accelerator": "system.accelerator",
        "precision": "system.precision", "init": "model.init",
    }
    for attr, key in flags.items():
        value = getattr(args, attr, None)
        if value is not None:
            items.append(f"{key}={value}")
    if getattr(args, "compile", False):
        items.append("system.compile=true")
    if getattr(args, "no_progress", False):
        items.append("system.progress=false")
    return items


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="archlab",
        description="Implement, train, compare and explain the neural-network architectures of deep learning.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("list", help="list registered models, datasets, experiments or benchmarks")
    p.add_argument("what", nargs="?", default="models", choices=["models", "datasets", "experiments", "benchmarks"])
    p.add_argument("--family", help="only this family (mlp, cnn, tabular, image...)")
    p.add_argument("--json", action="store_true", help="machine-readable output")

    p = sub.add_parser("info", help="a model's parameters, layer table and FLOPs",
                       epilog="examples: archlab info lenet5 --data mnist model.activation=relu | "
                              "archlab info resnet18 --receptive-field")
    p.add_argument("model")
    p.add_argument("--receptive-field", action="store_true",
                   help="also print each conv/pool layer's receptive field (size, jump, centre)")
    p.add_argument("--data", help="size the model for this dataset")
    p.add_argument("--data-dir", help="data folder (default: $ARCHLAB_DATA or ~/.cache/archlab/data)")
    p.add_argument("--input-shape", help="one sample's shape, e.g. 1,28,28 or 4")
    p.add_argument("options", nargs="*", metavar="key=value", help="model options (model.x=... or x=...)")

    p = sub.add_parser("train", help="train a model on a dataset, writing a run folder",
                       epilog="examples: archlab train lenet5 --data digits train.epochs=5 train.lr=2e-3 | "
                              "archlab train minilm_l6 --data sst2 --init minilm")
    _add_train_args(p)
    p.add_argument("--resume", help="run folder or checkpoint to continue")

    p = sub.add_parser("eval", help="evaluate a run or checkpoint on a split",
                       epilog="example: archlab eval runs/lenet5-digits-... --split test")
    p.add_argument("target", help="run folder or checkpoint file")
    p.add_argument("--split", default="test")
    p.add_argument("--weights", default="final", choices=["final", "last", "best"])

    p = sub.add_parser("predict", help="classify, translate or forecast inputs with a trained run",
                       epilog="examples: archlab predict runs/lenet5-digits-... digit.png | archlab predict runs/mlp-iris-... "
                              "5.1,3.5,1.4,0.2 | archlab predict runs/bilstm-sst2-... \"a gripping, funny film\" | "
                              "archlab predict runs/seq2seq_bahdanau-fra_eng-... \"i am cold .\"")
    p.add_argument("target", help="run folder or checkpoint file")
    p.add_argument("inputs", nargs="+", help="image files, .npy files, comma-separated feature rows, node ids (graph "
                   "runs), sentences (text runs) or comma-separated windows (forecasters)")
    p.add_argument("--top-k", type=int, default=3)

    p = sub.add_parser("generate", help="sample text from a trained language model, streaming tokens",
                       epilog='examples: archlab generate runs/char_lstm-tinyshakespeare-... --prompt "ROMEO:" --top-k 10 | '
                              'archlab generate runs/gpt_char-tinyshakespeare-... --prompt "ROMEO:" --top-p 0.9 '
                              '--repetition-penalty 1.2')
    p.add_argument("target", help="run folder of a language model")
    p.add_argument("--prompt", default="", help="text to continue (default: start from a newline)")
    p.add_argument("--max-new-tokens", type=int, default=300)
    p.add_argument("--temperature", type=float, default=0.8)
    p.add_argument("--top-k", type=int, default=None, help="sample among the k most likely tokens")
    p.add_argument("--top-p", type=float, default=None,
                   help="nucleus sampling: the smallest set of tokens with probability >= p (transformer LMs)")
    p.add_argument("--repetition-penalty", type=float, default=1.0,
                   help="> 1 discourages tokens already in the text (CTRL; transformer LMs)")
    p.add_argument("--no-repeat-ngram", type=int, default=0, help="never repeat an n-gram of this size (transformer LMs)")
    p.add_argument("--greedy", action="store_true", help="argmax decoding (temperature 0)")
    p.add_argument("--seed", type=int, default=None)

    p = sub.add_parser("sample", help="draw samples from a trained generative model into a PNG grid",
                       epilog="examples: archlab sample runs/dcgan-mnist-... --n 64 | "
                              "archlab sample runs/cgan-mnist-... --label 7 --out sevens.png | "
                              "archlab sample runs/ddpm-digits-... --steps 50")
    p.add_argument("target", help="run folder (or checkpoint) of a generative model")
    p.add_argument("--n", type=int, default=64, help="number of samples (default 64)")
    p.add_argument("--label", type=int, default=None,
                   help="conditional models: the class to draw (default: one row per class)")
    p.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    p.add_argument("--out", default=None, help="PNG to write (default RUN/samples/sample.png)")
    p.add_argument("--steps", type=int, default=None, help="diffusion models: sampler steps (default: the model's)")
    p.add_argument("--nrow", type=int, default=None, help="images per row")

    p = sub.add_parser("data", help="list, download or verify datasets",
                       epilog="examples: archlab data list | archlab data download mnist | archlab data verify mnist --data-dir ../shared/data")
    p.add_argument("action", choices=["list", "download", "verify"])
    p.add_argument("names", nargs="*", help="dataset names (download/verify)")
    p.add_argument("--data-dir", help="data folder (default: $ARCHLAB_DATA or ~/.cache/archlab/data)")

    p = sub.add_parser("report", help="(re)write a run's report.html", epilog="example: archlab report runs/lenet5-digits-...")
    p.add_argument("target")

    p = sub.add_parser("explain", help="Grad-CAM or saliency maps of a trained CNN on dataset images",
                       epilog="examples: archlab explain runs/simple_cnn-digits-... --count 8 | "
                              "archlab explain runs/resnet18_cifar-cifar10-... --method smoothgrad --index 3 7 "
                              "--out why.png")
    p.add_argument("target", help="run folder or checkpoint file of an image classification run")
    p.add_argument("--method", default="gradcam",
                   choices=["gradcam", "gradcam++", "saliency", "smoothgrad", "input_x_gradient"],
                   help="attribution method (default gradcam)")
    p.add_argument("--split", default="test", help="dataset split the images come from (default test)")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--index", type=int, nargs="+", help="indices of the images in the split")
    which.add_argument("--count", type=int, default=8, help="the first COUNT images of the split (default 8)")
    p.add_argument("--layer", help="Grad-CAM layer, a dotted module name (default: the model's cam_layer)")
    p.add_argument("--out", help="PNG path (default RUN/figures/explain_METHOD_SPLIT.png)")
    p.add_argument("--weights", default="final", choices=["final", "last", "best"])

    p = sub.add_parser("experiment", help="run a registered experiment and write its report",
                       epilog="example: archlab experiment mlp-activations --quick")
    p.add_argument("name")
    p.add_argument("--out", default="runs/experiments")
    p.add_argument("--quick", action="store_true", help="a smaller, faster version")

    p = sub.add_parser("tune", help="hyperparameter search with Optuna (TPE, pruning), resumable",
                       epilog="example: archlab tune mlp --data moons --trials 20 space.lr=log(1e-4,1e-1) space.model.dropout=uniform(0,0.5)")
    _add_train_args(p)
    p.add_argument("--trials", type=int, default=20)
    p.add_argument("--metric", default=None, help="metric to optimise (default val/acc, maximised)")
    p.add_argument("--direction", choices=["maximize", "minimize"], default=None)
    p.add_argument("--study", help="study folder (default runs/tune/MODEL-DATA); an existing one is resumed")

    p = sub.add_parser("bench", help="run registered benchmarks and write JSON under benchmarks/results/",
                       epilog="example: archlab bench lenet5_mnist --quick")
    p.add_argument("names", nargs="*", help="benchmark names (default: all)")
    p.add_argument("--quick", action="store_true", help="fewer seeds and steps (a smoke run; results not written)")
    p.add_argument("--out", default="benchmarks/results")

    p = sub.add_parser("tour", help="train a representative model of each family on embedded data",
                       epilog="example: archlab tour --out tour")
    p.add_argument("--out", default="tour")
    p.add_argument("--only", nargs="*", help="only these stops")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    # key=value overrides may come before or after --flags; argparse only takes them in one run.
    args, extra = parser.parse_known_args(argv)
    stray = [e for e in extra if e.startswith("-") or "=" not in e]
    if stray:
        parser.error(f"unrecognized arguments: {' '.join(stray)}")
    if getattr(args, "model", None) and "=" in args.model:  # `train --resume RUN key=value`
        args.overrides = [args.model, *args.overrides]
        args.model = None
    if extra:
        target = "options" if args.command == "info" else "overrides"
        if not hasattr(args, target):
            parser.error(f"{args.command} takes no key=value arguments: {' '.join(extra)}")
        setattr(args, target, list(getattr(args, target)) + extra)
    if args.version:
        from archlab import __version__

        print(__version__)
        return 0
    if not args.command:
        parser.print_help()
        return 0
    from archlab.config import ConfigError
    from archlab.registry import UnknownNameError
    from archlab.utils import ArchlabError

    try:
        return int(_COMMANDS[args.command](args) or 0)
    except (ArchlabError, ConfigError, UnknownNameError) as err:
        print(f"archlab {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("archlab: interrupted", file=sys.stderr)
        return 130


# ----------------------------------------------------------------------------------------------
# commands


def cmd_list(args: argparse.Namespace) -> int:
    from archlab import registry

    reg = {"models": registry.MODELS, "datasets": registry.DATASETS, "experiments": registry.EXPERIMENTS,
           "benchmarks": registry.BENCHMARKS}[args.what]
    entries = [e for e in reg if args.family is None or e.family == args.family]
    if args.json:
        print(json.dumps([{"name": e.name, "family": e.family, "summary": e.summary} for e in entries], indent=2))
        return 0
    width = max((len(e.name) for e in entries), default=4)
    fam = max((len(e.family) for e in entries), default=6)
    for e in entries:
        print(f"{e.name:<{width}}  {e.family:<{fam}}  {e.summary}")
    if not entries:
        print(f"no {args.what}" + (f" in family {args.family!r}; families: {', '.join(reg.families())}" if args.family else ""))
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from archlab.config import parse_overrides
    from archlab.inspect import info

    options = {k.removeprefix("model."): v for k, v in parse_overrides(args.options).items()}
    shape = tuple(int(s) for s in args.input_shape.split(",")) if args.input_shape else None
    data_info = None
    if args.data:
        from archlab.data import load_dataset

        data_info = load_dataset(args.data, args.data_dir, val_split=0.0).info
    print(info(args.model, input_shape=shape, data_info=data_info, **options).to_text())
    if args.receptive_field:
        from archlab.receptive_field import receptive_fields

        try:
            table = receptive_fields(args.model, shape, data_info, **options)
        except ValueError as err:
            raise _usage(f"no receptive fields for {args.model}: {err}") from None
        print()
        print(table.to_text())
    return 0


def _print_metrics(run: Any) -> None:
    shown = "  ".join(f"{k}={v:.4f}" for k, v in run.metrics.items())
    print(f"{run.status}: {run.path}  {shown}")
    if run.report_path:
        print(f"report: {run.report_path}")


def cmd_train(args: argparse.Namespace) -> int:
    import archlab

    overrides = _collect_overrides(args)
    if args.resume:
        run = archlab.train(resume=args.resume, overrides=overrides)
    else:
        if not args.model or not (args.data or args.config):
            raise _usage("train needs a MODEL and --data DATASET, e.g. archlab train lenet5 --data digits")
        run = archlab.train(args.model, args.data, config=args.config, overrides=overrides)
    from lightning_fabric.utilities.rank_zero import rank_zero_only

    if rank_zero_only.rank == 0:
        _print_metrics(run)
    if run.status == "interrupted":
        return 130  # as a shell reports Ctrl-C
    return 0 if run.status in ("completed", "stopped_early") else 1


def _usage(msg: str) -> Exception:
    from archlab.utils import ArchlabError

    return ArchlabError(msg)


def cmd_eval(args: argparse.Namespace) -> int:
    import archlab

    metrics = archlab.evaluate(args.target, split=args.split, weights=args.weights)
    print(json.dumps(metrics, indent=2))
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    import archlab

    for row in archlab.predict(args.target, args.inputs, top_k=args.top_k):
        note = f"  [{row['note']}]" if row.get("note") else ""
        if "output" in row:  # a translator
            print(f"{row['input']} -> {row['output']}{note}")
        elif "forecast" in row:
            print(f"{row['input']} -> {', '.join(f'{v:g}' for v in row['forecast'])}")
        else:
            top = ", ".join(f"{label!r} {p:.3f}" if label.strip() != label or not label else f"{label} {p:.3f}"
                            for label, p in row["top"])
            print(f"{row['input']}: {row['label']}  ({top}){note}")
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    import archlab

    print(args.prompt, end="", flush=True)
    archlab.generate(args.target, args.prompt, max_new_tokens=args.max_new_tokens, temperature=args.temperature,
                     top_k=args.top_k, top_p=args.top_p, repetition_penalty=args.repetition_penalty,
                     no_repeat_ngram_size=args.no_repeat_ngram, greedy=args.greedy, seed=args.seed,
                     stream=lambda piece: print(piece, end="", flush=True), notes=lambda m: print(m, file=sys.stderr))
    print()
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    from archlab.api import sample

    path = sample(args.target, n=args.n, label=args.label, seed=args.seed, out=args.out, steps=args.steps,
                  nrow=args.nrow)
    print(path)
    return 0


def cmd_data(args: argparse.Namespace) -> int:
    from archlab import data, registry

    if args.action == "list":
        for e in registry.DATASETS:
            where = "download" if e.tags.get("download") else "embedded"
            print(f"{e.name:<16} {e.family:<8} {where:<9} {e.summary}")
        return 0
    if not args.names:
        raise _usage(f"data {args.action} needs dataset names, e.g. archlab data {args.action} mnist")
    ok = True
    for name in args.names:
        if args.action == "download":
            data.download_dataset(name, args.data_dir)
            print(f"{name}: ready")
        else:
            rows = data.verify_dataset(name, args.data_dir)
            for r in rows:
                print(f"{name}: {r['file']}: {'ok' if r['ok'] else 'BAD'}  {r.get('path') or 'missing'}")
                ok = ok and r["ok"]
    return 0 if ok else 1


def cmd_report(args: argparse.Namespace) -> int:
    import archlab

    print(archlab.write_report(args.target))
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    from archlab.viz.attribution import explain_run

    result = explain_run(args.target, method=args.method, split=args.split, indices=args.index, count=args.count,
                         layer=args.layer, out=args.out, weights=args.weights)
    for r in result["rows"]:
        mark = "" if r["correct"] else "  (wrong)"
        print(f"{args.split} #{r['index']}: true {r['true']}, predicted {r['pred']} ({r['prob']:.3f}){mark}")
    print(result["path"])
    return 0


def cmd_experiment(args: argparse.Namespace) -> int:
    import archlab

    result = archlab.experiment(args.name, out_dir=args.out, quick=args.quick)
    print(f"report: {result.get('report')}")
    return 0


def cmd_tune(args: argparse.Namespace) -> int:
    from archlab.tuning import tune

    if not args.model or not args.data:
        raise _usage("tune needs a MODEL and --data DATASET")
    overrides = _collect_overrides(args)
    space = [o for o in overrides if o.startswith("space.")]
    rest = [o for o in overrides if not o.startswith("space.")]
    result = tune(args.model, args.data, space=space, trials=args.trials, overrides=rest, config=args.config,
                  metric=args.metric, direction=args.direction, study_dir=args.study)
    print(result["table"])
    print(f"best: {result['best_value']:.4f} with {result['best_params']}")
    print(f"plot: {result['plot']}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from archlab.bench import run_benchmarks

    run_benchmarks(args.names or None, quick=args.quick, out_dir=args.out)
    return 0


def cmd_tour(args: argparse.Namespace) -> int:
    from archlab.tours import tour

    index = tour(out_dir=args.out, only=args.only)
    print(f"tour: {index}")
    return 0


_COMMANDS = {
    "list": cmd_list, "info": cmd_info, "train": cmd_train, "eval": cmd_eval, "predict": cmd_predict, "generate": cmd_generate,
    "sample": cmd_sample,
    "data": cmd_data, "report": cmd_report, "explain": cmd_explain, "experiment": cmd_experiment, "tune": cmd_tune,
    "bench": cmd_bench, "tour": cmd_tour,
}


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
