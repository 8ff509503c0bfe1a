"""The Python API behind every CLI command: ``archlab.train``, ``evaluate``, ``predict``, ``write_report``...

    >>> import archlab
    >>> run = archlab.train("lenet5", data="digits", overrides={"train.epochs": 3})
    >>> run.metrics["test/acc"], run.path, run.report_path
    >>> archlab.evaluate(run.path)["test/acc"]
    >>> archlab.predict(run.path, "my_digit.png")

A run folder holds everything needed to reproduce and inspect a run: ``config.yaml``,
``metrics.jsonl``, ``summary.json``, ``checkpoints/{last,best}.safetensors``,
``model.safetensors``, ``tb/``, ``figures/``, ``predictions.safetensors`` and ``report.html``.
"""

from __future__ import annotations

import inspect
import json
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from archlab.config import RunConfig, apply_overrides, config_from_dict, load_config, save_yaml
from archlab.utils import ArchlabError

_log = logging.getLogger("archlab")

__all__ = ["Run", "train", "evaluate", "predict", "generate", "sample", "load_run", "write_report", "experiment",
           "build_model_for"]

VOCAB_FILE = "vocab.json"
TARGET_VOCAB_FILE = "target_vocab.json"
TEXT_KINDS = ("text", "lm", "seq2seq")


@dataclass
class Run:
    """A finished (or stopped) run: its folder, config, summary, metrics history and model."""

    path: Path
    config: RunConfig
    summary: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)
    model: Any = None
    bundle: Any = None

    @property
    def metrics(self) -> dict[str, float]:
        """Final metrics: ``val/acc``, ``test/acc``, ``test/loss``..."""
        return dict(self.summary.get("final", {}))

    @property
    def status(self) -> str:
        return self.summary.get("status", "unknown")

    @property
    def report_path(self) -> Path | None:
        p = self.path / "report.html"
        return p if p.exists() else None

    @property
    def figures(self) -> list[Path]:
        return sorted((self.path / "figures").glob("*.png"))

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v:.4g}" for k, v in self.metrics.items())
        return f"Run({str(self.path)!r}, status={self.status!r}, {shown})"


def _run_dir(cfg: RunConfig, fabric: Any = None) -> Path:
    name = cfg.run.name
    if not name:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        name = f"{cfg.model.name}-{cfg.data.name}-{stamp}"
    if fabric is not None:
        name = fabric.broadcast(name, src=0)  # every rank writes to (or reads) the same folder
    path = Path(cfg.run.out_dir) / name
    if fabric is None or fabric.is_global_zero:
        path.mkdir(parents=True, exist_ok=True)
    if fabric is not None:
        fabric.barrier()
    return path


def _is_scratch(cfg: RunConfig) -> bool:
    from archlab.registry import MODELS

    return MODELS.get(cfg.model.name).family == "scratch"


def _scratch_data(bundle: Any) -> Any:
    """The NumPy view of a DataBundle that the scratch engine trains on."""
    from archlab.scratch.engine import ArraySplitNP, ScratchData

    def conv(split: Any) -> Any:
        return None if split is None else ArraySplitNP(split.x.numpy(), split.y.numpy())

    info = bundle.info
    return ScratchData(conv(bundle.train), conv(bundle.val), conv(bundle.test), info.kind, info.mean, info.std)


def _train_scratch(cfg: RunConfig, ckpt: Path | None, callbacks: list[Any] | None, report: bool | None) -> Run:
    """The engine's scratch path: NumPy models train in :func:`archlab.scratch.engine.fit`."""
    from archlab.scratch.engine import fit

    bundle = _load_bundle(cfg)
    net = build_model_for(cfg, bundle)
    run_dir = _run_dir(cfg)
    save_yaml(cfg, run_dir / "config.yaml")
    _write_header(run_dir, cfg, net, bundle)
    summary = fit(net, _scratch_data(bundle), cfg, run_dir, resume=ckpt, callbacks=callbacks)
    history = summary.pop("records", [])
    run = Run(run_dir, cfg, summary, history, net, bundle)
    if summary.get("status") != "interrupted" and (cfg.run.report if report is None else report):
        from archlab.report.html import build_report

        build_report(run_dir, model=None, bundle=bundle)
    return run


def build_model_for(cfg: RunConfig, bundle: Any) -> Any:
    """The model named in ``cfg`` with its options, sized for ``bundle``'s data."""
    from archlab.registry import create_model

    return create_model(cfg.model.name, bundle.info, **cfg.model.options)


def _load_bundle(cfg: RunConfig) -> Any:
    """The run's dataset; ``data.label_fraction < 1`` keeps that stratified share of the training
    labels (chosen from ``train.seed``, after the validation rows were held out)."""
    from archlab.config import ConfigError
    from archlab.data import load_dataset
    from archlab.data.base import ArraySplit, select_classes, subsample_labels

    fraction = cfg.data.label_fraction
    if not 0.0 < fraction <= 1.0:
        raise ConfigError(f"data.label_fraction: {fraction!r} must be in (0, 1] (the share of training labels kept)")
    options = dict(cfg.data.options)
    if cfg.model.init and "tokenizer" not in options:  # a checkpoint's own tokenizer (BERT's WordPiece)
        from archlab.data import dataset_options
        from archlab.data.pretrained_vocab import tokenizer_for_init

        spec = tokenizer_for_init(str(cfg.model.init))
        if spec is not None and "tokenizer" in dataset_options(cfg.data.name):
            options["tokenizer"] = cfg.data.options["tokenizer"] = spec  # recorded in config.yaml
    bundle = load_dataset(cfg.data.name, cfg.data.root, val_split=cfg.data.val_split, seed=cfg.train.seed,
                          download=cfg.data.download, **options)
    if cfg.data.classes is not None:
        if not isinstance(getattr(bundle, "train", None), ArraySplit):
            raise ConfigError(f"data.classes works on image and tabular datasets; {cfg.data.name!r} is {bundle.info.kind} data")
        try:
            bundle = select_classes(bundle, cfg.data.classes)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    if fraction < 1.0:
        if not isinstance(getattr(bundle, "train", None), ArraySplit):
            raise ConfigError(f"data.label_fraction works on image and tabular datasets (an in-memory train split); "
                              f"{cfg.data.name!r} is {bundle.info.kind} data: leave data.label_fraction at 1")
        bundle.train = subsample_labels(bundle.train, fraction, cfg.train.seed)
    return bundle


def train(
    model: str | None = None,
    data: str | None = None,
    *,
    config: str | Path | RunConfig | None = None,
    overrides: dict[str, Any] | list[str] | None = None,
    resume: str | Path | None = None,
    callbacks: list[Any] | None = None,
    report: bool | None = None,
) -> Run:
    """Train ``model`` on ``data`` and write a run folder.

    Args:
        model: a registered model name (``archlab list models``).
        data: a registered dataset name (``archlab list datasets``).
        config: a YAML file, or a :class:`RunConfig`.
        overrides: dotted keys, ``{"train.lr": 3e-4}`` or ``["train.lr=3e-4"]``.
        resume: a run folder or a checkpoint file to continue from; the run's own config is used
            (overrides apply on top, e.g. more ``train.epochs``).
        callbacks: :class:`archlab.engine.Callback` objects.
        report: write report.html (default: ``run.report`` from the config).

    Returns:
        the :class:`Run`, with ``metrics``, ``history``, ``model`` and ``report_path``.
    """
    from archlab.engine.trainer import Trainer, make_fabric
    from archlab.tasks import build_task
    from archlab.utils import seed_everything

    ckpt = None
    if resume is not None:
        ckpt, run_path = _find_checkpoint(resume)
        cfg = _run_config(run_path)
        if overrides:
            cfg = apply_overrides(cfg, overrides)
        cfg.run.out_dir, cfg.run.name = str(run_path.parent), run_path.name
    elif isinstance(config, RunConfig):
        cfg = apply_overrides(config, overrides or {})
        if model:
            cfg.model.name = model
        if data:
            cfg.data.name = data
    else:
        cfg = load_config(model, data, config, overrides)
    if not cfg.model.name or not cfg.data.name:
        raise ArchlabError("say which model and dataset to train: archlab train MODEL --data DATASET")
    if cfg.system.threads:
        import torch

        torch.set_num_threads(cfg.system.threads)
    t = cfg.train
    finetuning = t.finetune != "full" or t.layer_lr_decay != 1.0 or bool(t.unfreeze_every)
    if _is_scratch(cfg):
        if cfg.model.init or finetuning:
            raise ArchlabError("model.init and train.finetune/layer_lr_decay/unfreeze_every apply to torch models; "
                               f"{cfg.model.name} is a NumPy (scratch) model")
        return _train_scratch(cfg, ckpt, callbacks, report)

    fabric = make_fabric(cfg.system)
    fabric.launch()
    seed_everything(cfg.train.seed, cfg.train.deterministic)
    with fabric.rank_zero_first():
        bundle = _load_bundle(cfg)
    net = build_model_for(cfg, bundle)
    init_report = None
    if cfg.model.init and ckpt is None:  # a resumed run gets its weights from its checkpoint
        from archlab.transfer import init_from_config

        with fabric.rank_zero_first():  # rank 0 downloads into the shared cache, the others read it
            init_report = init_from_config(net, cfg.model.init, cfg.model.init_strict, bundle.info.class_names)
    task = build_task(net, bundle.info, cfg)
    run_dir = _run_dir(cfg, fabric)
    callbacks = list(callbacks or [])
    if finetuning:
        from archlab.transfer import GradualUnfreezing, finetune_plan, plan_summary

        plan = finetune_plan(net, t.finetune, t.trainable_groups, t.lr, t.layer_lr_decay, t.unfreeze_every)
        if t.unfreeze_every:
            callbacks.append(GradualUnfreezing(t.unfreeze_every))
    if fabric.is_global_zero:
        save_yaml(cfg, run_dir / "config.yaml")
        _write_header(run_dir, cfg, net, bundle)
        if init_report is not None:
            from archlab.transfer import record_init

            record_init(run_dir, init_report)
            print(f"archlab: init: {init_report.summary()}", flush=True)
        if finetuning:
            print(f"archlab: {plan_summary(plan)}", flush=True)
    trainer = Trainer(cfg, run_dir, fabric, callbacks)
    summary = trainer.fit(task, bundle, resume=ckpt)
    if fabric.is_global_zero and getattr(task, "samples", None):
        from archlab.utils import atomic_write_json

        atomic_write_json(run_dir / "translations.json", task.samples)  # decoded sentences, for the report
    history = trainer.logger.records if trainer.logger else []
    run = Run(run_dir, cfg, summary, history, net, bundle)
    if fabric.is_global_zero and summary.get("status") != "interrupted":
        _write_predictions(trainer, run_dir)
        if cfg.run.report if report is None else report:
            from archlab.report.html import build_report

            build_report(run_dir, model=net, bundle=bundle)
    _close_process_group(fabric)
    return run


def _close_process_group(fabric: Any) -> None:
    """Wait for rank 0's writing, then tear the process group down before the interpreter exits
    (gloo aborts a process that exits with its group still open: "terminate called without an
    active exception")."""
    import torch.distributed as dist

    if fabric.world_size > 1 and dist.is_available() and dist.is_initialized():
        fabric.barrier()
        dist.destroy_process_group()


def _write_header(run_dir: Path, cfg: RunConfig, net: Any, bundle: Any) -> None:
    from archlab.utils import atomic_write_json

    path = run_dir / "summary.json"
    old = json.loads(path.read_text()) if path.exists() else {}
    old.update({
        "model": cfg.model.name,
        "dataset": cfg.data.name,
        "family": getattr(net, "family", ""),
        "task": getattr(net, "task", "classification"),
        "params": sum(math.prod(p.shape) for p in net.parameters()),
        "class_names": list(bundle.info.class_names),
    })
    atomic_write_json(path, old)
    # Text runs keep their tokenizer and vocab beside the weights: predict/generate encode raw text
    # with exactly what the model was trained on.
    for attr, fname in (("vocab", VOCAB_FILE), ("target_vocab", TARGET_VOCAB_FILE)):
        vocab = getattr(bundle.info, attr, None)
        if vocab is not None:
            vocab.save(run_dir / fname)


def _write_predictions(trainer: Any, run_dir: Path) -> None:
    """Logits and targets of the test split (else val), for the confusion matrix and worst examples."""
    import torch

    from archlab.engine.checkpoint import save_weights

    loader = trainer.test_loader or trainer.val_loader
    if loader is None or not hasattr(trainer.task, "predict_step"):
        return
    if getattr(trainer.task, "predictions_kind", "classification") != "classification":
        return  # per-token logits of language models and translators would be huge; reports decode instead
    logits, targets = [], []
    trainer.task.model.eval()  # after fit: the weights the run saved (the averaged ones with train.ema_decay)
    with torch.no_grad(), trainer.fabric.autocast():
        for batch in loader:
            out, y = trainer.task.predict_with_targets(batch)
            logits.append(out.float().cpu())
            targets.append(y.cpu())
    if trainer.fabric.world_size > 1:
        return  # each rank saw a shard; the report then skips per-example figures
    save_weights(run_dir / "predictions.safetensors",
                 {"logits": torch.cat(logits), "targets": torch.cat(targets)},
                 {"split": "test" if trainer.test_loader is not None else "val"})


def _run_config(run_dir: Path) -> RunConfig:
    """The resolved config saved in a run folder."""
    path = run_dir / "config.yaml"
    if not path.is_file():
        raise ArchlabError(f"{path} is missing: is {run_dir} an archlab run folder?")
    return load_config(config_file=path, use_recipe=False)


def _find_checkpoint(target: str | Path) -> tuple[Path, Path]:
    """(checkpoint file, run folder) for a run folder or a checkpoint path."""
    target = Path(target)
    if target.is_dir():
        for name in ("last", "best"):
            p = target / "checkpoints" / f"{name}.safetensors"
            if p.exists():
                return p, target
        raise ArchlabError(f"{target} holds no checkpoints/last.safetensors: nothing to resume or load")
    if target.is_file():
        run_dir = target.parent.parent if target.parent.name == "checkpoints" else target.parent
        return target, run_dir
    raise ArchlabError(f"{target} is neither a run folder nor a checkpoint file")


def load_run(target: str | Path, *, weights: str = "final", load_data: bool = True) -> Run:
    """Open a run folder (or a checkpoint): config, summary, history, and the model with its weights.

    Args:
        target: a run folder or a checkpoint file.
        weights: ``final`` (model.safetensors, falling back to the last checkpoint), ``last`` or ``best``.
        load_data: also load the dataset (needed to size some models and for reports).
    """
    from archlab.engine.checkpoint import load_checkpoint, load_weights
    from archlab.engine.loggers import read_metrics

    target = Path(target)
    if target.is_file():
        state = load_checkpoint(target)
        run_dir = target.parent.parent if target.parent.name == "checkpoints" else target.parent
        cfg = config_from_dict(state["config"])
        sd = state["model"]
    else:
        run_dir = target
        cfg = _run_config(run_dir)
        final = run_dir / "model.safetensors"
        if weights == "final" and final.exists():
            sd = load_weights(final)
        else:
            ckpt, _ = _find_checkpoint(run_dir) if weights == "final" else (run_dir / "checkpoints" / f"{weights}.safetensors", run_dir)
            sd = load_checkpoint(ckpt)["model"]
    bundle = _load_bundle(cfg) if load_data else None
    if bundle is None:
        raise ArchlabError("load_run needs the dataset to size the model; pass load_data=True")
    net = build_model_for(cfg, bundle)
    if _is_scratch(cfg):
        sd = {k: v.numpy() for k, v in sd.items()}
    net.load_state_dict(sd)
    net.eval()
    summary_path = run_dir / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    return Run(run_dir, cfg, summary, read_metrics(run_dir), net, bundle)


def evaluate(target: str | Path, *, split: str = "test", weights: str = "final") -> dict[str, float]:
    """Evaluate a run's model on a split of its dataset: ``{"test/loss": .., "test/acc": ..}``."""
    import torch

    from archlab.data.base import TensorLoader
    from archlab.data.transforms import build_transform
    from archlab.tasks import build_task

    run = load_run(target, weights=weights)
    splits = run.bundle.splits()
    if split not in splits:
        raise ArchlabError(f"dataset {run.config.data.name!r} has no {split!r} split; use one of {list(splits)}")
    part = splits[split]
    if _is_scratch(run.config):
        from archlab.scratch import engine as scratch_engine

        data = _scratch_data(run.bundle)
        values = scratch_engine.evaluate(run.model, data, getattr(data, split))
        return {f"{split}/{k}": v for k, v in values.items()}
    task = build_task(run.model, run.bundle.info, run.config)
    if hasattr(task, "make_loaders"):  # graphs: the task knows how to read its data
        from types import SimpleNamespace

        shim = SimpleNamespace(cfg=run.config, fabric=SimpleNamespace(device=torch.device("cpu"), global_rank=0, world_size=1))
        loader = dict(zip(("train", "val", "test"), task.make_loaders(run.bundle, shim)))[split]
    else:
        loader = TensorLoader(part, run.config.data.eval_batch_size,
                              transform=build_transform(run.bundle.info, run.config.data, train=False))
    sums: dict[str, float] = {}
    n = 0
    with torch.no_grad():
        for batch in loader:
            out = task.validation_step(batch)
            b = task.batch_size(batch)
            for k, v in out.items():
                sums[k] = sums.get(k, 0.0) + float(v) * b
            n += b
        result = {f"{split}/{k}": v / n for k, v in sums.items()}
        if hasattr(task, "final_metrics"):  # corpus-level figures: exact perplexity, BLEU, baselines
            task.eval()
            result.update({f"{split}/{k}": v for k, v in task.final_metrics(loader, split).items()})
    return result


def predict(target: str | Path, inputs: Any, *, top_k: int = 3) -> list[dict[str, Any]]:
    """Class probabilities for ``inputs`` from a run's model.

    ``inputs``: image files (PNG/JPEG; converted to the dataset's channels and size), ``.npy``
    files, comma-separated feature rows (``"5.1,3.5,1.4,0.2"``), a tensor of raw inputs, or, for
    node classification runs, node ids of the run's graph. Text runs take raw strings
    (:func:`_predict_sequence`): a text classifier returns labels, a translator its translation,
    a forecaster (comma-separated window values) the next values, a language model the most likely
    next tokens.
    Returns one ``{"input", "label", "prob", "top": [(label, prob), ...]}`` per input (translators:
    ``{"input", "output"}``; forecasters: ``{"input", "forecast"}``).
    """
    import torch

    from archlab.data.transforms import build_transform

    run = load_run(target)
    info = run.bundle.info
    if info.kind in TEXT_KINDS or info.kind == "series":
        return _predict_sequence(run, inputs, top_k)
    if info.kind.startswith("graph"):
        probs, names = _predict_nodes(run, inputs)
    elif _is_scratch(run.config):
        from archlab.scratch.autograd import Tensor, no_grad

        x, names = _read_inputs(inputs, info, run.bundle)
        with no_grad():
            logits = run.model(Tensor(_scratch_data(run.bundle).prepare(x.numpy()))).data
        probs = torch.from_numpy(logits).float().softmax(dim=1)
    else:
        x, names = _read_inputs(inputs, info, run.bundle)
        tf = build_transform(info, run.config.data, train=False)
        with torch.no_grad():
            probs = run.model(tf(x)).float().softmax(dim=1)
    classes = info.class_names or [str(i) for i in range(probs.shape[1])]
    out = []
    for name, p in zip(names, probs):
        values, idx = p.topk(min(top_k, len(p)))
        top = [(classes[i], round(float(v), 4)) for v, i in zip(values, idx)]
        out.append({"input": name, "label": top[0][0], "prob": top[0][1], "top": top})
    return out


def _run_vocab(run: Run, fname: str = VOCAB_FILE) -> Any:
    """The vocab saved with a run (``vocab.json``), else the one of its reloaded dataset."""
    from archlab.data.text import Vocab

    path = run.path / fname
    if path.is_file():
        return Vocab.load(path)
    vocab = run.bundle.info.vocab if fname == VOCAB_FILE else run.bundle.info.target_vocab
    return vocab if vocab is not None else run.bundle.info.vocab


def _encode_texts(vocab: Any, texts: list[str], max_len: int, **kw: Any) -> tuple[Any, list[str]]:
    """Token ids (N, T) of raw strings, and a note per string (unknown words, truncation).

    Empty strings are an error; words the vocab lacks become ``<unk>`` (named in the note); text
    longer than ``max_len`` tokens is cut to its first ``max_len`` (said in the note)."""
    import torch

    rows, notes = [], []
    for text in texts:
        tokens = vocab.tokenize(text)
        if not text.strip() or not tokens:
            raise ArchlabError("empty input: give some text to predict on (e.g. archlab predict RUN \"a fine film\")")
        ids = vocab.encode(text, max_len=max_len, **kw)  # a cut keeps room for <bos>/<eos>
        unknown = sorted({t for t in tokens if vocab.stoi.get(t, vocab.unk_id) == vocab.unk_id})
        note = []
        if unknown:
            note.append(f"{len(unknown)} unknown token(s) read as <unk>: {' '.join(unknown[:8])}")
        n_tok = len(tokens) + int(bool(kw.get("add_eos"))) + int(bool(kw.get("add_bos")))
        if n_tok > max_len:
            note.append(f"truncated to the first {max_len} of {n_tok} tokens")
        rows.append(torch.tensor(ids, dtype=torch.long))
        notes.append("; ".join(note))
    x = torch.nn.utils.rnn.pad_sequence(rows, batch_first=True, padding_value=vocab.pad_id)  # (N, T)
    return x, notes


def _predict_sequence(run: Run, inputs: Any, top_k: int) -> list[dict[str, Any]]:
    """``predict`` for text, language-model, translation and forecasting runs (raw inputs)."""
    import torch

    info, model = run.bundle.info, run.model
    texts = [inputs] if isinstance(inputs, str) else [str(i) for i in inputs]
    if info.kind == "series":
        return _predict_series(run, texts)
    vocab = _run_vocab(run)
    max_len = int(info.input_shape[0]) if info.input_shape else 512
    out: list[dict[str, Any]] = []
    if info.kind == "seq2seq":
        target = _run_vocab(run, TARGET_VOCAB_FILE)
        x, notes = _encode_texts(vocab, texts, max_len, add_eos=True)
        beam = max(run.config.train.beam_size, 1)
        with torch.no_grad():
            ids = model.beam_search(x, beam, max_len=max_len + 10, length_penalty=run.config.train.length_penalty) \
                if beam > 1 else model.greedy(x, max_len=max_len + 10)
        for text, row, note in zip(texts, ids, notes):
            out.append({"input": text, "output": target.decode(row.tolist(), stop_at_eos=True), "note": note})
        return out
    x, notes = _encode_texts(vocab, texts, max_len)
    with torch.no_grad():
        logits = model(x).float()
    if info.kind == "lm":  # the distribution of the next token after each prompt
        lengths = (x != vocab.pad_id).sum(dim=1)
        logits = logits[torch.arange(len(x)), lengths - 1]  # (N, V)
        classes = list(vocab.itos)
    else:
        classes = info.class_names or [str(i) for i in range(logits.shape[1])]
    probs = logits.softmax(dim=1)
    for text, p, note in zip(texts, probs, notes):
        values, idx = p.topk(min(top_k, len(p)))
        top = [(classes[i], round(float(v), 4)) for v, i in zip(values, idx)]
        out.append({"input": text, "label": top[0][0], "prob": top[0][1], "top": top, "note": note})
    return out


def _predict_series(run: Run, texts: list[str]) -> list[dict[str, Any]]:
    """Forecasts from comma-separated windows of raw values (feature 0; one feature per step)."""
    import torch

    info = run.bundle.info
    window, features = int(info.input_shape[0]), int(info.input_shape[-1])
    mean = torch.tensor(info.mean or (0.0,) * features)
    std = torch.tensor(info.std or (1.0,) * features)
    out = []
    for text in texts:
        try:
            values = [float(v) for v in text.replace(" ", "").split(",") if v]
        except ValueError:
            raise ArchlabError(f"a forecaster reads comma-separated numbers, got {text!r}") from None
        if len(values) != window * features:
            raise ArchlabError(f"{info.name} windows are {window} steps x {features} feature(s) = "
                               f"{window * features} numbers; got {len(values)}")
        x = (torch.tensor(values).reshape(1, window, features) - mean) / std  # (1, L, F)
        with torch.no_grad():
            y = run.model(x).float()[0] * std[0] + mean[0]  # (H,) raw units
        out.append({"input": text, "forecast": [round(float(v), 5) for v in y]})
    return out


def generate(target: str | Path, prompt: str = "", *, max_new_tokens: int = 200, temperature: float = 1.0,
             top_k: int | None = None, top_p: float | None = None, repetition_penalty: float = 1.0,
             no_repeat_ngram_size: int = 0, greedy: bool = False, seed: int | None = None, stream: Any = None,
             notes: Any = None) -> str:
    """Sample text from a language-model run, continuing ``prompt``.

    Args:
        target: a run folder of a language model (``archlab train char_lstm --data tinyshakespeare``).
        prompt: text to continue; empty starts from a newline (or the first vocab token). Tokens the
            vocab lacks become ``<unk>``; a prompt longer than the training context keeps its last
            ``context`` tokens (the model carries its state, so nothing else is lost).
        max_new_tokens: how many tokens to add.
        temperature: > 0; lower is more conservative.
        top_k: sample among the k most likely tokens only (None: all).
        top_p: nucleus sampling, the smallest set of tokens holding probability >= p (Holtzman et
            al. 2020); transformer language models (GPT) only, as the next three.
        repetition_penalty: > 1 divides the positive scores (multiplies the negative) of tokens
            already in the text (Keskar et al. 2019).
        no_repeat_ngram_size: n > 0 bans any token that would repeat an n-gram of the text.
        greedy: argmax decoding (ignores temperature, top_k and top_p).
        seed: seed of the sampling (None: nondeterministic).
        stream: ``fn(text_piece)`` called with each new token's text as it comes (the CLI prints).
        notes: ``fn(message)`` told about truncated prompts and unknown tokens (the CLI prints to
            stderr); None: they are logged as warnings.

    A transformer's prompt longer than its context (``model.max_len``) keeps its last ``max_len``
    tokens, and so does the text as it grows (a sliding window); a note says so.

    Returns:
        the prompt followed by the generated text.
    """
    import torch

    if max_new_tokens < 0:
        raise ArchlabError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
    if temperature <= 0 and not greedy:
        raise ArchlabError(f"temperature must be > 0, got {temperature} (use --greedy for argmax decoding)")
    if top_k is not None and top_k < 1:
        raise ArchlabError(f"top_k must be >= 1, got {top_k}")
    run = load_run(target)
    if run.bundle.info.kind != "lm" or not hasattr(run.model, "generate"):
        raise ArchlabError(f"{run.path} is a {run.bundle.info.kind} run of {run.config.model.name}; "
                           "generate needs a language model run (e.g. archlab train char_lstm --data tinyshakespeare)")
    extra = {k: v for k, v, off in (("top_p", top_p, None), ("repetition_penalty", repetition_penalty, 1.0),
                                    ("no_repeat_ngram_size", no_repeat_ngram_size, 0)) if v != off}
    if extra and "top_p" not in inspect.signature(run.model.generate).parameters:
        raise ArchlabError(f"{', '.join(extra)} apply to transformer language models; {run.config.model.name} "
                           "samples with --temperature and --top-k only")
    say = notes or (lambda m: _log.warning(m))
    vocab = _run_vocab(run)
    ids = vocab.encode(prompt) if prompt else []
    unknown = sum(1 for i in ids if i == vocab.unk_id)
    if unknown:
        say(f"note: {unknown} token(s) of the prompt are not in the model's vocab and read as <unk>")
    if not ids:
        start = vocab.stoi.get("\n", vocab.stoi.get(".", 4 if len(vocab) > 4 else vocab.unk_id))
        ids = [start]
    context = getattr(getattr(run.model, "config", None), "max_len", None)
    if context and "top_p" in inspect.signature(run.model.generate).parameters and len(ids) > context:
        say(f"note: the prompt has {len(ids)} tokens, more than the model's context of {context}: "
            f"only its last {context} are read")
    x = torch.tensor([ids], dtype=torch.long)  # (1, T0)
    gen = torch.Generator().manual_seed(seed) if seed is not None else None
    kw: dict[str, Any] = {"temperature": 0.0 if greedy else temperature, "top_k": top_k, "generator": gen, **extra}
    if stream is not None:
        kw["stream"] = lambda token_id: stream(vocab.decode([int(token_id)]))
    with torch.no_grad():
        out = run.model.generate(x, max_new_tokens, **kw)
    new = out[0, x.shape[1]:].tolist()
    return prompt + vocab.decode(new)


def sample(target: str | Path, *, n: int = 64, label: int | None = None, seed: int = 0,
           out: str | Path | None = None, steps: int | None = None, nrow: int | None = None) -> Path:
    """Draw samples from a generative run and write them as a PNG grid.

    Args:
        target: a run folder (or checkpoint) of a generative model (``archlab train dcgan --data mnist``).
        n: how many samples.
        label: conditional models only: the class to draw (else one row per class).
        seed: noise seed.
        out: the PNG to write; default ``RUN/samples/sample.png`` (``sample_7.png`` with ``label=7``).
        steps: diffusion models only: sampler steps (fewer is faster; DDIM with ``model.sample_method=ddim``).
        nrow: images per row (default 8, or ``n / num_classes`` per class row for conditional models).

    Image-to-image runs (Pix2Pix, CycleGAN) have nothing to sample from a prior: their grid shows
    ``n`` test inputs (top rows) over their translations (bottom rows). 2-D runs (the ring) get a
    scatter of the samples over the mode centres.

    Returns:
        the path of the PNG.
    """
    import torch

    from archlab.viz.generative import save_sample_grid

    if n < 1:
        raise ArchlabError(f"n must be >= 1, got {n}")
    run = load_run(target)
    model, name = run.model, run.config.model.name
    if getattr(model, "family", None) != "generative":
        raise ArchlabError(f"{run.path} is a run of {name} ({getattr(model, 'family', 'unknown')} family), not of a "
                           "generative model; sample needs a run of e.g. dcgan, vae, ddpm or cgan "
                           "(archlab list models --family generative)")
    conditional = bool(getattr(model, "conditional", False))
    if label is not None:
        if not conditional:
            raise ArchlabError(f"{name} is not conditional, so --label does not apply; drop it, or train a conditional "
                               "model (cgan, cdcgan, cgan_projection) to choose the class")
        k = int(model.config.num_classes)
        if not 0 <= int(label) < k:
            names = getattr(run.bundle.info, "class_names", None) or [str(i) for i in range(k)]
            valid = ", ".join(f"{i} ({c})" if c != str(i) else str(i) for i, c in enumerate(names[:k]))
            raise ArchlabError(f"--label {label} is not a class of {name}; the valid labels are {valid}")
    kw: dict[str, Any] = {}
    if steps is not None:
        if "steps" not in inspect.signature(model.sample).parameters:
            raise ArchlabError(f"--steps applies to diffusion models (ddpm); {name} samples in one pass")
        kw["steps"] = int(steps)
    run_dir = run.path
    path = Path(out) if out is not None else run_dir / "samples" / (f"sample_{label}.png" if label is not None
                                                                   else "sample.png")
    g = torch.Generator().manual_seed(seed)
    model.eval()
    with torch.no_grad():
        if hasattr(model, "translate") and run.bundle.test is not None:
            x = run.bundle.test.x[:n].float()
            if x.max() > 1.0:
                x = x / 255.0
            y_out = model.translate(x)
            return save_sample_grid(torch.cat([x.expand_as(y_out), y_out]), path, nrow=nrow or min(8, len(x)))
        shape = tuple(model.data_shape())
        if conditional:
            k = int(model.config.num_classes)
            if label is not None:
                y = torch.full((n,), int(label), dtype=torch.long)
            else:
                per = max(1, n // k)
                y = torch.arange(k).repeat_interleave(per)
                nrow = nrow or per
            samples = model.sample(len(y), y=y, generator=g, **kw)
        else:
            samples = model.sample(n, generator=g, **kw)
    if not torch.isfinite(samples).all():
        raise ArchlabError(f"the samples of {run_dir} are not finite (NaN/inf): the model diverged; "
                           "see its metrics.jsonl and sample from an earlier checkpoint")
    if len(shape) == 1:
        from archlab.viz.generative import plot_ring

        if run.config.data.name == "ring" and shape == (2,):
            from archlab.data.generative_data import ring_centers

            opts = dict(run.config.data.options or {})
            centers = ring_centers(int(opts.get("modes", 8)), float(opts.get("radius", 2.0)))
            return plot_ring(samples, centers, path, std=float(opts.get("std", 0.02)),
                             real=run.bundle.test.x if run.bundle.test is not None else None)
        raise ArchlabError(f"{name} samples {shape[0]}-D points, not images; only 2-D ring runs have a picture")
    return save_sample_grid(samples.float().cpu(), path, nrow=nrow or 8)


def _predict_nodes(run: Run, inputs: Any) -> tuple[Any, list[str]]:
    """Node classification runs: ``inputs`` are node ids of the run's graph."""
    import torch

    if run.bundle.info.kind != "graph_nodes":
        raise ArchlabError("predict on graph classification runs is not supported yet; use archlab eval")
    g = run.bundle.graph
    items = [inputs] if isinstance(inputs, (str, int)) else list(inputs)
    try:
        ids = [int(i) for i in items]
    except ValueError:
        raise ArchlabError(f"for a node classification run give node ids (0..{g.num_nodes - 1}), got {items}") from None
    bad = [i for i in ids if not 0 <= i < g.num_nodes]
    if bad:
        raise ArchlabError(f"node ids {bad} are outside the graph's 0..{g.num_nodes - 1}")
    with torch.no_grad():
        probs = run.model(g.x, g.edge_index).float().softmax(dim=1)[ids]
    return probs, [f"node {i}" for i in ids]


def _read_inputs(inputs: Any, info: Any, bundle: Any) -> tuple[Any, list[str]]:
    import numpy as np
    import torch

    if isinstance(inputs, torch.Tensor):
        return inputs, [f"#{i}" for i in range(len(inputs))]
    if isinstance(inputs, (str, Path)):
        inputs = [inputs]
    rows, names = [], []
    for item in inputs:
        s = str(item)
        p = Path(s)
        if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".bmp", ".gif") and p.is_file():
            from PIL import Image

            c, h, w = info.input_shape
            img = Image.open(p).convert("RGB" if c == 3 else "L").resize((w, h), Image.BILINEAR)
            arr = np.asarray(img, dtype=np.uint8)
            arr = arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)
            rows.append(torch.from_numpy(arr.copy()))
        elif p.suffix == ".npy" and p.is_file():
            rows.append(torch.from_numpy(np.load(p, allow_pickle=False)))
        elif "," in s or s.replace(".", "", 1).replace("-", "", 1).isdigit():
            values = [float(v) for v in s.split(",")]
            if len(values) != int(np.prod(info.input_shape)):
                raise ArchlabError(f"input {s!r} has {len(values)} values; {info.name} rows have {int(np.prod(info.input_shape))}")
            rows.append(torch.tensor(values, dtype=torch.float32).reshape(info.input_shape))
        elif p.suffix and not p.exists():
            raise ArchlabError(f"input file {s!r} does not exist")
        else:
            raise ArchlabError(f"cannot read input {s!r}: give an image file, a .npy file or comma-separated numbers")
        names.append(s)
    x = torch.stack(rows)
    if info.kind == "tabular" and bundle.feature_stats is not None:
        mean, std = bundle.feature_stats  # raw features are standardised as the training data was
        x = (x - mean) / std
    return x, names


def write_report(target: str | Path) -> Path:
    """(Re)write ``report.html`` of a run folder; returns its path."""
    from archlab.report.html import build_report

    run = load_run(target)
    return build_report(run.path, model=run.model, bundle=run.bundle)


def experiment(name: str, out_dir: str | Path = "runs/experiments", quick: bool = False, **options: Any) -> dict[str, Any]:
    """Run the registered experiment ``name`` (``archlab list experiments``); returns its results."""
    from archlab.registry import EXPERIMENTS

    entry = EXPERIMENTS.get(name)
    out = Path(out_dir) / name
    out.mkdir(parents=True, exist_ok=True)
    return entry.fn(out, quick=quick, **options)


def explain(run: str | Path, **options: Any) -> Any:
    """Grad-CAM or saliency maps for images of a run's dataset: the twin of ``archlab explain``.

    ``archlab.explain("runs/resnet18_cifar-mnist-...", method="gradcam", count=8)``; the options
    are those of :func:`archlab.viz.attribution.explain_run` (method, split, indices, count, layer,
    out).
    """
    from archlab.viz.attribution import explain_run

    return explain_run(run, **options)
