"""Hyperparameter search over any config key, with Optuna (the seeds' Keras Tuner).

    archlab tune mlp --data moons --trials 20 space.lr=log(1e-4,1e-1) space.model.dropout=uniform(0,0.5)

Search-space syntax (``space.KEY=SPEC``; KEY is any dotted config key, bare names when unique):

    log(lo,hi)       float, log-uniform        uniform(lo,hi)   float, uniform
    int(lo,hi)       integer, uniform          logint(lo,hi)    integer, log-uniform
    choice(a,b,...)  one of the values (YAML: choice(sgd,adam), choice([64],[64,64]))

Trials are sampled by TPE (Bergstra et al., 2011); hopeless ones are pruned by the median rule
after each epoch. The study lives in ``STUDY/study.db`` (SQLite): running the same command again
resumes it and only runs the trials still missing. The search ends with a table and a plot.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from archlab.config import ConfigError, parse_value, resolve_key
from archlab.engine.trainer import Callback
from archlab.utils import atomic_write_json, atomic_write_text

__all__ = ["tune", "parse_space"]

_SPEC = re.compile(r"^(log|uniform|int|logint|choice)\((.*)\)$", re.S)


def _split_args(text: str) -> list[str]:
    """Split on commas outside brackets: ``[64],[64,64]`` -> ``["[64]", "[64,64]"]``."""
    out, depth, cur = [], 0, ""
    for ch in text:
        if ch in "[({":
            depth += 1
        elif ch in "])}":
            depth -= 1
        if ch == "," and depth == 0:
            out.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if cur.strip():
        out.append(cur.strip())
    return out


def parse_space(items: list[str] | dict[str, str]) -> dict[str, tuple[str, list[Any]]]:
    """``["space.lr=log(1e-4,1e-1)"]`` -> ``{"train.lr": ("log", [1e-4, 0.1])}``."""
    pairs = items.items() if isinstance(items, dict) else [i.split("=", 1) for i in items]
    space = {}
    for key, spec in pairs:
        key = key.removeprefix("space.")
        m = _SPEC.match(str(spec).strip())
        if not m:
            raise ConfigError(
                f"space.{key}: {spec!r} is not a search range; write log(lo,hi), uniform(lo,hi), "
                f"int(lo,hi), logint(lo,hi) or choice(a,b,...)"
            )
        kind, args = m.group(1), [parse_value(a) for a in _split_args(m.group(2))]
        if kind != "choice" and (len(args) != 2 or not all(isinstance(a, (int, float)) for a in args) or args[0] >= args[1]):
            raise ConfigError(f"space.{key}: {kind}() needs two numbers lo < hi, got {m.group(2)!r}")
        full = key if key.startswith("model.") else resolve_key(key)
        space[full] = (kind, args)
    if not space:
        raise ConfigError("tune needs a search space, e.g. space.lr=log(1e-4,1e-1)")
    return space


def _suggest(trial: Any, key: str, kind: str, args: list[Any]) -> Any:
    if kind == "log":
        return trial.suggest_float(key, args[0], args[1], log=True)
    if kind == "uniform":
        return trial.suggest_float(key, args[0], args[1])
    if kind in ("int", "logint"):
        return trial.suggest_int(key, int(args[0]), int(args[1]), log=kind == "logint")
    labels = [json.dumps(a) for a in args]  # optuna wants hashable, storable choices
    return json.loads(trial.suggest_categorical(key, labels))


class _Pruning(Callback):
    """Reports the metric after each epoch; asks the trainer to stop a trial Optuna prunes."""

    def __init__(self, trial: Any, metric: str) -> None:
        self.trial, self.metric, self.pruned = trial, metric, False

    def on_epoch_end(self, trainer: Any, metrics: dict[str, float]) -> None:
        if self.metric in metrics:
            self.trial.report(metrics[self.metric], trainer.epoch)
            if self.trial.should_prune():
                self.pruned = True
                trainer.request_stop("pruned")


def tune(
    model: str,
    data: str,
    *,
    space: list[str] | dict[str, str],
    trials: int = 20,
    overrides: list[str] | dict[str, Any] | None = None,
    config: str | None = None,
    metric: str | None = None,
    direction: str | None = None,
    study_dir: str | Path | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Search ``space`` for the best ``metric`` of ``model`` on ``data``; resumable.

    Returns a dict with ``best_params``, ``best_value``, ``trials`` (rows), ``table`` (text) and
    ``plot`` (PNG path). Each trial is a normal run folder under ``STUDY/trials/``.
    """
    import optuna

    import archlab
    from archlab.config import parse_overrides

    specs = parse_space(space)
    metric = metric or "val/acc"
    direction = direction or ("minimize" if metric.endswith("loss") else "maximize")
    study_dir = Path(study_dir or Path("runs") / "tune" / f"{model}-{data}")
    study_dir.mkdir(parents=True, exist_ok=True)
    base = parse_overrides(overrides) if isinstance(overrides, list) else dict(overrides or {})
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        study_name="archlab", storage=f"sqlite:///{study_dir / 'study.db'}", load_if_exists=True,
        direction=direction, sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1),
    )
    done = [t for t in study.trials if t.state.is_finished()]
    remaining = max(trials - len(done), 0)
    if done:
        print(f"tune: resuming {study_dir} with {len(done)} finished trials, {remaining} to go")

    def objective(trial: Any) -> float:
        values = {key: _suggest(trial, key, kind, args) for key, (kind, args) in specs.items()}
        pruning = _Pruning(trial, metric)
        ovs = {**base, **values, "run.out_dir": str(study_dir / "trials"), "run.name": f"trial-{trial.number:03d}",
               "run.report": False, "system.progress": False, "system.tensorboard": False}
        run = archlab.train(model, data, config=config, overrides=ovs, callbacks=[pruning])
        if pruning.pruned:
            raise optuna.TrialPruned()
        best = run.summary.get("best", {})
        value = best.get(metric, run.metrics.get(metric))
        if value is None:
            raise ConfigError(f"metric {metric!r} was not measured; measured: {sorted(run.metrics)}")
        print(f"trial {trial.number}: {metric}={value:.4f}  {values}", flush=True)
        return float(value)

    if remaining:
        study.optimize(objective, n_trials=remaining)
    rows = [
        {"trial": t.number, "state": t.state.name.lower(), "value": t.value,
         **{k: (json.loads(v) if isinstance(v, str) and k in specs and specs[k][0] == "choice" else v) for k, v in t.params.items()}}
        for t in study.trials
    ]
    completed = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not completed:
        raise ConfigError("no trial completed; see the trial folders for errors")
    best = study.best_trial
    best_params = {k: (json.loads(v) if specs[k][0] == "choice" else v) for k, v in best.params.items()}
    table = _table(rows, list(specs), metric)
    plot = _plot(rows, list(specs), metric, direction, study_dir / "trials.png")
    result = {"metric": metric, "direction": direction, "best_value": best.value, "best_params": best_params,
              "trials": rows, "table": table, "plot": str(plot), "study": str(study_dir)}
    atomic_write_json(study_dir / "results.json", {k: v for k, v in result.items() if k != "table"})
    atomic_write_text(study_dir / "trials.txt", table + "\n")
    return result


def _table(rows: list[dict[str, Any]], keys: list[str], metric: str) -> str:
    head = ["trial", "state", metric] + keys
    lines = [[str(r["trial"]), r["state"], "" if r["value"] is None else f"{r['value']:.4f}"]
             + [_fmt(r.get(k)) for k in keys] for r in rows]
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(head)]
    out = ["  ".join(h.ljust(w) for h, w in zip(head, widths))]
    out += ["  ".join(c.ljust(w) for c, w in zip(line, widths)) for line in lines]
    return "\n".join(out)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return "" if v is None else str(v)


def _plot(rows: list[dict[str, Any]], keys: list[str], metric: str, direction: str, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = [r for r in rows if r["value"] is not None]
    fig, axes = plt.subplots(1, 1 + len(keys), figsize=(4.2 * (1 + len(keys)), 3.4), squeeze=False)
    ax = axes[0, 0]
    xs = [r["trial"] for r in done]
    ys = [r["value"] for r in done]
    ax.scatter(xs, ys, s=18, label="trial")
    best, running = None, []
    for y in ys:
        best = y if best is None else (max(best, y) if direction == "maximize" else min(best, y))
        running.append(best)
    ax.step(xs, running, where="post", color="C3", label="best so far")
    ax.set_xlabel("trial")
    ax.set_ylabel(metric)
    ax.legend(fontsize=8)
    for ax, key in zip(axes[0, 1:], keys):
        vals = [r.get(key) for r in done]
        if all(isinstance(v, (int, float)) for v in vals):
            ax.scatter(vals, ys, s=18)
            if all(v > 0 for v in vals) and max(vals) / max(min(vals), 1e-12) > 50:
                ax.set_xscale("log")
        else:
            labels = sorted({json.dumps(v) for v in vals})
            ax.scatter([labels.index(json.dumps(v)) for v in vals], ys, s=18)
            ax.set_xticks(range(len(labels)), labels, rotation=30, fontsize=7)
        ax.set_xlabel(key)
    fig.suptitle(f"{len(done)} trials, pruned: {sum(r['state'] == 'pruned' for r in rows)}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
