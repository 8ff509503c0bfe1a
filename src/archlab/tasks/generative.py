"""Training generative models: one loss (VAE, flow, diffusion) or two players (GANs, Pix2Pix, CycleGAN).

The methods (:class:`~archlab.models.generative.base.GenerativeMethod`) carry their losses; these
tasks only feed them batches and step the optimizers.

:class:`GenerativeTask` (``model.task == "generative"``): ``training_step`` returns
``model(x, y)`` (``{"loss", metrics}``) and the engine minimises ``loss`` with the run's optimizer.
Validation gives the same dict in eval mode; the final evaluation adds ``nll`` (nats per example,
the method's ``log_likelihood``) and, for images, ``bpd = nll / (D ln 2)`` (bits per dimension,
D = C * H * W) for methods with ``has_likelihood``.

:class:`AdversarialTask` (``model.task == "adversarial"``) optimises by hand (Goodfellow et al.
2014, Algorithm 1; Arjovsky et al. 2017, Algorithm 1), each engine step being::

    critic step:     loss_d = model.discriminator_loss(x, y)   -> opt_d step -> model.after_discriminator_step()
    every d_steps-th step (step + 1 divisible by d_steps):
    generator step:  loss_g = model.generator_loss(x, y)       -> opt_g step

so each critic step takes its own real batch (as both papers' algorithms draw a fresh minibatch
for each critic iteration) and the generator step reuses the last batch only for its size and
labels (image-to-image methods: its inputs). The two optimizers come from
``model.optimizer_settings()`` (the paper's: DCGAN Adam 2e-4 (0.5, 0.999), WGAN RMSprop 5e-5,
WGAN-GP Adam 1e-4 (0, 0.9)); a run that sets ``train.lr`` (anything but the default 1e-3) scales
both players' rates so the discriminator gets ``train.lr`` (the ratio stays the model's: set
``model.options.lr_g``/``lr_d`` to change it); ``train.optimizer`` and ``train.betas``, when not
the defaults, replace the model's too; ``train.schedule`` (with its warmup) drives both optimizers,
one scheduler step per batch, so both players' rates follow the same curve. Logged: ``loss_d``,
``loss_g``, ``loss = loss_d + loss_g`` and the methods' metrics (between generator steps, the last
generator step's figures).

Each loss is checked before its backward pass and each player's gradients before its optimizer
step: a NaN or infinite value stops the run with the engine's message naming the network
("the discriminator loss (loss_d) became nan at step ..."), before any weight changes, so the last
checkpoint and the last sample grid stay good.

Both tasks switch off the dataset normalisation (``normalize_inputs = False``: images reach the
methods in [0, 1]) and write a picture of samples every ``sample_every`` epochs into
``<run_dir>/samples/epoch_XXXX.png`` from fixed seeded noise: a grid of 64 images (conditional
methods: one row per class), a scatter of 1000 points over the data for 2-D tabular data (the ring),
or input / output / target rows for image-to-image methods (those with ``translate``). A grid
whose samples are not finite is not written (the previous one stays). The run folder comes from the
trainer: :meth:`make_loaders` receives it and registers a callback that writes at each epoch end.

Deviations from the papers:
    - The generator step uses the engine step's batch size; the papers draw the same m for both.
"""

from __future__ import annotations

import math
import weakref
from pathlib import Path
from typing import Any

import torch

from archlab.engine.trainer import Callback, NonFiniteLossError
from archlab.tasks.base import StepContext, Task

__all__ = ["GenerativeTask", "AdversarialTask", "build_generative_task", "SampleWriter"]


class SampleWriter(Callback):
    """Writes the task's sample picture at the end of every ``task.sample_every``-th epoch (rank 0)."""

    def __init__(self, task: _GenerativeBase) -> None:
        self.task = task

    def on_epoch_end(self, trainer: Any, metrics: dict[str, float]) -> None:
        every = self.task.sample_every
        if every and trainer.epoch % every == 0 and trainer.is_main:
            self.task.write_samples(Path(trainer.run_dir) / "samples" / f"epoch_{trainer.epoch:04d}.png")


class _GenerativeBase(Task):
    """What both tasks share: [0, 1] inputs, loaders, sample pictures, the non-finite checks."""

    normalize_inputs = False
    predictions_kind = "generative"

    def __init__(self, model: torch.nn.Module, *, sample_every: int = 1, num_samples: int = 64,
                 sample_seed: int = 0) -> None:
        super().__init__(model)
        self.sample_every, self.num_samples, self.sample_seed = sample_every, num_samples, sample_seed
        self._trainer_ref: Any = None
        self._fixed: tuple[torch.Tensor, torch.Tensor] | None = None  # image-to-image inputs and targets
        self._reference: torch.Tensor | None = None  # 2-D data drawn under the scatter

    @classmethod
    def from_config(cls, model: torch.nn.Module, info: Any, cfg: Any) -> _GenerativeBase:
        """The task for ``model`` under run config ``cfg`` (``train.sample_every``/``num_samples`` if present)."""
        t = cfg.train
        return cls(model, sample_every=int(getattr(t, "sample_every", 1)), num_samples=int(getattr(t, "num_samples", 64)),
                   sample_seed=int(t.seed))

    # ---- data ---------------------------------------------------------------------------------
    @staticmethod
    def _xy(batch: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(x, y): x float (uint8 images / 255); y int64 labels, a float image (pairs), or None."""
        x, y = (batch[0], batch[1]) if isinstance(batch, (tuple, list)) else (batch, None)
        x = x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()
        if y is not None:
            if y.dtype == torch.uint8 and y.dim() > 1:
                y = y.float().div_(255.0)
            elif y.is_floating_point():
                y = y.float()
            else:
                y = y.long()
        return x, y

    def batch_size(self, batch: Any) -> int:
        return len(batch[0] if isinstance(batch, (tuple, list)) else batch)

    def make_loaders(self, bundle: Any, trainer: Any) -> tuple[Any, Any, Any]:
        """(train, val, test) loaders with images in [0, 1]; with a real trainer, also the sample writer.

        Uses only ``trainer.cfg`` and ``trainer.fabric`` for the loaders (what ``archlab.evaluate``
        provides too); a trainer with a ``run_dir`` gets a :class:`SampleWriter` callback.
        """
        from archlab.data.base import TensorLoader
        from archlab.data.transforms import build_transform

        t, f = trainer.cfg.train, trainer.fabric

        def make(split: Any, train: bool) -> Any:
            if split is None:
                return None
            bs = t.batch_size if train else trainer.cfg.data.eval_batch_size
            tf = build_transform(bundle.info, trainer.cfg.data, train=train, normalize=False)
            return TensorLoader(split, bs, shuffle=train, drop_last=train and len(split) >= bs * f.world_size,
                                seed=t.seed, rank=f.global_rank, world_size=f.world_size, transform=tf,
                                device=f.device)

        loaders = make(bundle.train, True), make(bundle.val, False), make(bundle.test, False)
        self._remember_data(bundle)
        if hasattr(trainer, "run_dir") and hasattr(trainer, "callbacks"):
            self._trainer_ref = weakref.ref(trainer)
            if not any(isinstance(cb, SampleWriter) and cb.task is self for cb in trainer.callbacks):
                trainer.callbacks.append(SampleWriter(self))
        return loaders

    def _remember_data(self, bundle: Any) -> None:
        split = bundle.val if bundle.val is not None else (bundle.test if bundle.test is not None else bundle.train)
        if hasattr(self.model, "translate"):
            # The test split of the translation datasets is paired (unpaired_digits' val is not).
            split = bundle.test if bundle.test is not None else split
            x, y = self._xy((split.x[:8], split.y[:8]))
            self._fixed = (x, y)
        elif split.x.dim() == 2 and split.x.shape[1] == 2:
            self._reference = split.x[:1000].float()

    # ---- sample pictures ----------------------------------------------------------------------
    @torch.no_grad()
    def make_samples(self) -> tuple[torch.Tensor, int]:
        """(samples, per_row) from fixed noise: images (N, C, H, W) in [0, 1] or points (N, D)."""
        model = self.model
        device = next(iter(model.parameters()), torch.empty(0)).device
        g = torch.Generator(device=device).manual_seed(self.sample_seed)
        if self._fixed is not None:
            x, y = (v.to(device) for v in self._fixed)
            out = model.translate(x)  # (8, C, H, W)
            rows = [x, out] + ([y] if y is not None and y.shape == out.shape else [])
            rows = [r if r.shape[1] == out.shape[1] else r.expand(-1, out.shape[1], -1, -1) for r in rows]
            return torch.cat(rows), len(x)
        shape = model.data_shape()
        if len(shape) == 1:
            return model.sample(1000, generator=g), 0
        if getattr(model, "conditional", False):
            k = int(model.config.num_classes)
            per_row = 10 if k <= 20 else 4
            y = torch.arange(k, device=device).repeat_interleave(per_row)  # a row per class
            return model.sample(len(y), y=y, generator=g), per_row
        return model.sample(self.num_samples, generator=g), 8

    def write_samples(self, path: str | Path) -> Path | None:
        """Write the sample picture to ``path``; None (nothing written) when the samples are not finite."""
        was_training = self.model.training
        self.model.eval()
        try:
            samples, per_row = self.make_samples()
        finally:
            self.model.train(was_training)
        if not torch.isfinite(samples).all():
            print(f"archlab: the samples are not finite; {path} not written (the previous grid is kept)", flush=True)
            return None
        if samples.dim() == 2:
            return _save_scatter(samples, path, self._reference)
        from archlab.viz.generative import save_sample_grid

        return save_sample_grid(samples.float().cpu(), path, nrow=per_row)

    # ---- non-finite checks --------------------------------------------------------------------
    def _check(self, value: torch.Tensor, what: str, step: int) -> None:
        if torch.isfinite(value.detach()).all():
            return
        trainer = self._trainer_ref() if self._trainer_ref is not None else None
        if trainer is not None:
            trainer._nonfinite(value.detach(), what=what)
        raise NonFiniteLossError(f"the {what} became {value.detach().flatten()[0].item()} at step {step}; "
                                 f"training stopped before the update. Try a lower learning rate or gradient clipping.")

    def _check_grads(self, params: list[torch.nn.Parameter], what: str, step: int) -> None:
        grads = [p.grad for p in params if p.grad is not None]
        if grads:
            self._check(torch.nn.utils.get_total_norm(grads), what, step)


class GenerativeTask(_GenerativeBase):
    """One loss, ``model(x, y)["loss"]``, minimised by the engine; see the module docstring.

    Args:
        model: a generative method with ``task = "generative"``.
        sample_every: write a sample picture every this many epochs (0: never).
        num_samples: images in an unconditional grid.
        sample_seed: seed of the fixed noise.
    """

    def training_step(self, batch: Any, ctx: StepContext | None = None) -> dict[str, torch.Tensor]:
        return self.model(*self._xy(batch))

    def validation_step(self, batch: Any) -> dict[str, torch.Tensor]:
        return self.model(*self._xy(batch))

    def predict_step(self, batch: Any) -> Any:
        return self.model(*self._xy(batch))

    def final_metrics(self, loader: Any, split: str) -> dict[str, float]:
        """``nll`` (nats per example) and, for images, ``bpd`` of methods with a likelihood."""
        if not getattr(self.model, "has_likelihood", False):
            return {}
        total, n = 0.0, 0
        for batch in loader:
            x, _ = self._xy(batch)
            total += float(-self.model.log_likelihood(x).double().sum())
            n += len(x)
        nll = total / max(n, 1)
        out = {"nll": nll}
        shape = self.model.data_shape()
        if len(shape) == 3:
            out["bpd"] = nll / (math.prod(shape) * math.log(2.0))
        return out


class AdversarialTask(_GenerativeBase):
    """Alternating discriminator and generator steps with two optimizers; see the module docstring.

    Args:
        model: a generative method with ``task = "adversarial"``.
        sample_every: write a sample picture every this many epochs (0: never).
        num_samples: images in an unconditional grid.
        sample_seed: seed of the fixed noise.
    """

    automatic_optimization = False

    def __init__(self, model: torch.nn.Module, **kwargs: Any) -> None:
        super().__init__(model, **kwargs)
        self._last_g: dict[str, torch.Tensor] | None = None

    def configure_optimizers(self, cfg: Any) -> list[torch.optim.Optimizer]:
        """[generator optimizer, discriminator optimizer] from the model's settings and ``cfg`` overrides."""
        from archlab.config import TrainSection

        default = TrainSection()
        settings = self.model.optimizer_settings()
        g, d = dict(settings["generator"]), dict(settings["discriminator"])
        if cfg.lr != default.lr:
            scale = cfg.lr / d["lr"]
            g["lr"], d["lr"] = g["lr"] * scale, cfg.lr
        for s in (g, d):
            if cfg.optimizer != default.optimizer:
                s["name"] = cfg.optimizer
            if tuple(cfg.betas) != tuple(default.betas):
                s["betas"] = tuple(cfg.betas)
        return [make_optimizer(self.model.generator_parameters(), g, cfg.weight_decay),
                make_optimizer(self.model.discriminator_parameters(), d, cfg.weight_decay)]

    def training_step(self, batch: Any, ctx: StepContext | None = None) -> dict[str, torch.Tensor]:
        if ctx is None:
            raise RuntimeError("AdversarialTask steps its own optimizers: call training_step(batch, ctx)")
        model = self.model
        x, y = self._xy(batch)
        opt_g, opt_d = ctx.optimizers
        step = ctx.global_step
        # Critic step. D's gradients may hold the last generator step's leftovers: clear them first.
        opt_d.zero_grad(set_to_none=True)
        with ctx.autocast():
            d = model.discriminator_loss(x, y)
        self._check(d["loss"], "discriminator loss (loss_d)", step)
        ctx.backward(d["loss"])
        self._check_grads(model.discriminator_parameters(), "discriminator gradient norm", step)
        ctx.step(opt_d)
        model.after_discriminator_step()
        if (step + 1) % max(int(getattr(model, "d_steps", 1)), 1) == 0:
            opt_g.zero_grad(set_to_none=True)
            with ctx.autocast():
                g = model.generator_loss(x, y)
            self._check(g["loss"], "generator loss (loss_g)", step)
            ctx.backward(g["loss"])
            self._check_grads(model.generator_parameters(), "generator gradient norm", step)
            ctx.step(opt_g)
            self._last_g = {k: v.detach() for k, v in g.items()}
        elif self._last_g is None:  # no generator step yet: report its loss without a step
            with torch.no_grad(), ctx.autocast():
                self._last_g = {k: v.detach() for k, v in model.generator_loss(x, y).items()}
        return self._merge(d, self._last_g)

    @staticmethod
    def _merge(d: dict[str, torch.Tensor], g: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        out = {"loss": d["loss"].detach() + g["loss"], "loss_d": d["loss"].detach(), "loss_g": g["loss"]}
        for k, v in g.items():
            if k != "loss":
                out[k] = v.detach()
        for k, v in d.items():
            if k != "loss":
                out[k if k not in out else f"d_{k}"] = v.detach()
        return out

    def validation_step(self, batch: Any) -> dict[str, torch.Tensor]:
        x, y = self._xy(batch)
        return self._merge(self.model.discriminator_loss(x, y), self.model.generator_loss(x, y))

    def predict_step(self, batch: Any) -> Any:
        return self.validation_step(batch)


def make_optimizer(params: list[torch.nn.Parameter], settings: dict[str, Any],
                   weight_decay: float = 0.0) -> torch.optim.Optimizer:
    """The optimizer one player's ``optimizer_settings()`` entry names (``{"name", "lr", "betas"...}``)."""
    s = dict(settings)
    name = s.pop("name", "adam")
    s.setdefault("weight_decay", weight_decay)
    classes = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "rmsprop": torch.optim.RMSprop,
               "sgd": torch.optim.SGD, "adagrad": torch.optim.Adagrad}
    if name not in classes:
        raise ValueError(f"unknown optimizer {name!r} in optimizer_settings; use one of {sorted(classes)}")
    if name not in ("adam", "adamw"):
        s.pop("betas", None)
    return classes[name](params, **s)


def _save_scatter(points: torch.Tensor, path: str | Path, reference: torch.Tensor | None = None) -> Path:
    """2-D samples (N, 2) in orange over the data (grey), as a PNG."""
    from archlab.viz._mpl import new_figure, save_figure, style, to_numpy

    p = to_numpy(points.float())
    with style():
        fig = new_figure(4.0, 4.0)
        ax = fig.add_subplot()
        if reference is not None:
            r = to_numpy(reference)
            ax.scatter(r[:, 0], r[:, 1], s=4, c="0.7", label="data")
        ax.scatter(p[:, 0], p[:, 1], s=4, c="tab:orange", alpha=0.6, label="samples")
        ax.set_aspect("equal", adjustable="datalim")
        ax.legend(loc="upper right", markerscale=3)
        return save_figure(fig, path)


def build_generative_task(model: torch.nn.Module, info: Any, cfg: Any) -> _GenerativeBase:
    """The task named by ``model.task`` (``"generative"`` or ``"adversarial"``)."""
    cls = AdversarialTask if model.task == "adversarial" else GenerativeTask
    return cls.from_config(model, info, cfg)
