"""The report section of generative runs: samples through training, the latent space, translations,
the diffusion process, and the measures.

What a run gets depends on what its model can do (the methods of the generative contract):

* every run with ``samples/epoch_XXXX.png`` (written by the generative tasks): the grids through
  training as an animated GIF, and the latest grid;
* models with ``sample``: a fresh grid (seed 0; one row per class for conditional models) and, on
  image data with a judge (``mnist``, ``digits``), the measures of
  :mod:`archlab.models.generative.measures`: FID-MNIST (or FID-digits) of the samples against as
  many test images, the judged-class coverage and entropy, and the class accuracy of conditional
  samples; on the ``ring``, the modes recovered and the share of high-quality samples with a scatter
  of the samples over the modes;
* models with ``encode``/``decode`` (autoencoders, VAEs): reconstructions of test images, a latent
  interpolation between test images and the test codes coloured by class; GANs get an
  interpolation between noise vectors;
* models with ``translate`` (Pix2Pix, CycleGAN): input / output / target triples of test images and
  the mean absolute error of the outputs against the targets;
* models with ``trajectory`` (DDPM): the forward and reverse processes step by step;
* runs whose metrics have ``nll`` / ``bpd``: those, in nats and bits per dimension.

The measures here use a few hundred samples so that the report stays quick on a CPU; FID at small N
is biased upwards, so the section's FID compares runs of the same report settings only (benchmarks
use 10000 samples).
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from archlab.report.common import figure_html, note_html, table_html

__all__ = ["generative_measures", "generative_section", "is_generative"]

#: Datasets whose images the judges of :mod:`archlab.models.generative.measures` know.
JUDGED_DATASETS = ("mnist", "digits")


def is_generative(model: Any) -> bool:
    """True for a model of the ``generative`` family (a ``GenerativeMethod``)."""
    return getattr(model, "family", None) == "generative" or getattr(type(model), "family", None) == "generative"



def _device(model: Any) -> Any:
    import torch

    for p in model.parameters():
        return p.device
    return torch.device("cpu")


def _test_split(bundle: Any) -> Any:
    if bundle is None:
        return None
    return bundle.test if getattr(bundle, "test", None) is not None else getattr(bundle, "val", None)


def _unit_images(x: Any) -> Any:
    import torch

    x = torch.as_tensor(x)
    return x.float() / 255.0 if x.dtype == torch.uint8 else x.float()


def _data_options(run_dir: Path) -> dict[str, Any]:
    try:
        from archlab.config import load_config

        cfg = load_config(config_file=Path(run_dir) / "config.yaml", use_recipe=False)
        return dict(cfg.data.options or {})
    except Exception:  # noqa: BLE001 - a missing config only loses the ring's options
        return {}


def _sample(model: Any, n: int, *, y: Any = None, seed: int = 0, steps: int | None = None) -> Any:
    """``model.sample(n, y=, generator=)`` in eval mode, no grad, with ``steps`` where it takes them."""
    import torch

    device = _device(model)
    g = torch.Generator(device=device).manual_seed(seed)
    kw: dict[str, Any] = {"generator": g}
    if y is not None:
        kw["y"] = torch.as_tensor(y).to(device)
    if steps is not None and "steps" in inspect.signature(model.sample).parameters:
        kw["steps"] = steps
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            return model.sample(n, **kw).float().cpu()
    finally:
        model.train(was)


def _sample_steps(model: Any, cap: int) -> int | None:
    t = getattr(model, "timesteps", None)
    return min(int(t), cap) if isinstance(t, int) else None


def generative_measures(model: Any, bundle: Any, *, run_dir: Path | None = None, n_samples: int = 500,
                        sample_steps: int = 50, seed: int = 0) -> list[dict[str, Any]]:
    """Rows ``{"measure", "value", "how"}`` for the model's samples (see the module docstring).

    Args:
        model: the trained generative method.
        bundle: the run's data (test images for FID, targets for translations).
        run_dir: the run folder (its config gives the ring's options).
        n_samples: samples (and test images) per measure.
        sample_steps: sampler steps of diffusion models (DDIM/DDPM respaced), to stay quick.
        seed: sampling seed.
    """
    import torch

    from archlab.models.generative import measures as M

    rows: list[dict[str, Any]] = []
    info = getattr(bundle, "info", None)
    name = getattr(info, "name", None)
    test = _test_split(bundle)
    shape = tuple(model.data_shape()) if hasattr(model, "data_shape") else ()
    if hasattr(model, "translate") and test is not None and getattr(test, "y", None) is not None:
        x, target = _unit_images(test.x[:n_samples]), _unit_images(test.y[:n_samples])
        was = model.training
        model.eval()
        try:
            with torch.no_grad():
                out = model.translate(x.to(_device(model))).float().cpu()
        finally:
            model.train(was)
        if out.shape == target.shape:
            rows.append({"measure": "test L1 |output - target|", "value": float((out - target).abs().mean()),
                         "how": f"mean absolute pixel error over {len(x)} test pairs, images in [0, 1]"})
        return rows
    if name == "ring" and shape == (2,):
        from archlab.data.generative_data import ring_centers

        opts = _data_options(run_dir) if run_dir is not None else {}
        std = float(opts.get("std", 0.02))
        centers = ring_centers(int(opts.get("modes", 8)), float(opts.get("radius", 2.0)))
        s = _sample(model, max(n_samples, 2500), seed=seed)
        m = M.ring_modes(s, centers, std)
        rows.append({"measure": "modes recovered", "value": f"{m['modes']}/{m['num_modes']}",
                     "how": f"{len(s)} samples; a mode counts with >= 1% of the samples within 3 std of it"})
        rows.append({"measure": "high-quality samples", "value": m["high_quality"],
                     "how": "share of samples within 3 std of their nearest mode (VEEGAN)"})
        return rows
    if len(shape) == 3 and name in JUDGED_DATASETS and not getattr(model, "conditional", False):
        steps = _sample_steps(model, sample_steps)
        s = _sample(model, n_samples, seed=seed, steps=steps)
        label = "FID-MNIST" if shape[-1] == 28 else "FID-digits"
        if test is not None and len(test.x) >= 2:
            real = _unit_images(test.x[:n_samples])
            rows.append({"measure": label, "value": M.fid_mnist(s, real),
                         "how": f"{len(s)} samples vs {len(real)} test images, judge features; not Inception FID, "
                                "biased upwards at this N" + (f"; {steps} sampler steps" if steps else "")})
        cov = M.class_coverage(s)
        rows.append({"measure": "classes covered", "value": f"{cov['classes_covered']}/10",
                     "how": "classes the judge assigns to >= 1% of the samples"})
        rows.append({"measure": "judged-class entropy", "value": cov["entropy"],
                     "how": "H(judged classes) / log 10: 1 = all digits equally often, 0 = one digit"})
    elif len(shape) == 3 and name in JUDGED_DATASETS:
        k = int(model.config.num_classes)
        per = max(1, n_samples // k)
        y = torch.arange(k).repeat_interleave(per)
        s = _sample(model, len(y), y=y, seed=seed)
        rows.append({"measure": "class accuracy", "value": M.class_accuracy(s, y),
                     "how": f"share of {len(y)} samples ({per} per class) the judge assigns to the asked class"})
        if test is not None and len(test.x) >= 2:
            real = _unit_images(test.x[: len(s)])
            label = "FID-MNIST" if shape[-1] == 28 else "FID-digits"
            rows.append({"measure": label, "value": M.fid_mnist(s, real),
                         "how": f"{len(s)} class-balanced samples vs {len(real)} test images; not Inception FID"})
    elif len(shape) == 3:
        rows.append({"measure": "judge measures", "value": None,
                     "how": f"no judge for dataset {name!r} (judges: {', '.join(JUDGED_DATASETS)})"})
    return rows


def _likelihood_rows(run_dir: Path) -> list[dict[str, Any]]:
    import json

    path = Path(run_dir) / "summary.json"
    try:
        final = json.loads(path.read_text()).get("final", {})
    except (OSError, ValueError):
        return []
    rows = []
    for key, value in final.items():
        leaf = key.rsplit("/", 1)[-1]
        if leaf in ("nll", "bpd", "elbo", "kl", "recon"):
            rows.append({"measure": key, "value": value,
                         "how": {"nll": "negative log-likelihood, nats per example",
                                 "bpd": "bits per dimension (nll / (D ln 2) on the 0..255 scale)",
                                 "elbo": "evidence lower bound, nats", "kl": "KL(q(z|x) || p(z)), nats",
                                 "recon": "reconstruction term"}[leaf]})
    return rows


def _figures(model: Any, bundle: Any, run_dir: Path, fig_dir: Path, sample_steps: int) -> list[str]:
    import torch

    from archlab.viz import generative as V

    parts: list[str] = []
    test = _test_split(bundle)
    shape = tuple(model.data_shape()) if hasattr(model, "data_shape") else ()
    name = getattr(getattr(bundle, "info", None), "name", None)
    images = len(shape) == 3
    if hasattr(model, "translate") and test is not None and getattr(test, "y", None) is not None:
        x, target = _unit_images(test.x[:8]), _unit_images(test.y[:8])
        with torch.no_grad():
            model.eval()
            out = model.translate(x.to(_device(model))).float().cpu()
        p = V.plot_triples(x, out, target, fig_dir / "generative_triples.png")
        parts.append(figure_html(p, "Test inputs, the model's translations and the true targets."))
        return parts
    if name == "ring" and shape == (2,):
        from archlab.data.generative_data import ring_centers

        opts = _data_options(run_dir)
        centers = ring_centers(int(opts.get("modes", 8)), float(opts.get("radius", 2.0)))
        s = _sample(model, 2500)
        real = test.x[:2500] if test is not None else None
        p = V.plot_ring(s, centers, fig_dir / "generative_ring.png", std=float(opts.get("std", 0.02)), real=real)
        parts.append(figure_html(p, "2500 samples (blue) over the data (grey) and the mode centres with their 3-std "
                                    "circles (red)."))
        return parts
    if images and hasattr(model, "sample"):
        steps = _sample_steps(model, sample_steps)
        if getattr(model, "conditional", False):
            k = int(model.config.num_classes)
            y = torch.arange(k).repeat_interleave(8)
            s, nrow, cap = _sample(model, len(y), y=y, steps=steps), 8, "one row per class (seed 0)"
        else:
            s, nrow, cap = _sample(model, 64, steps=steps), 8, "64 samples (seed 0)"
        p = V.save_sample_grid(s, fig_dir / "generative_samples.png", nrow=nrow)
        parts.append(figure_html(p, f"Samples of the final model: {cap}"
                                    + (f", {steps} sampler steps." if steps else ".")))
    if images and test is not None and len(test.x) >= 2:
        x = _unit_images(test.x[:512])
        if hasattr(model, "encode") and hasattr(model, "decode"):
            p = V.plot_reconstructions(model, x[:8], fig_dir / "generative_reconstructions.png")
            parts.append(figure_html(p, "Test images and their reconstructions."))
            p = V.plot_interpolation(model, x[0:4], x[4:8], fig_dir / "generative_interpolation.png", steps=8)
            parts.append(figure_html(p, "Decoded points on the line between the codes of two test images (each row)."))
            if getattr(test, "y", None) is not None and torch.as_tensor(test.y).dim() == 1:
                p = V.plot_latent_scatter(model, x, test.y[: len(x)], fig_dir / "generative_latent.png")
                parts.append(figure_html(p, "Codes of test images coloured by class (PCA when the latent space "
                                            "has more than 2 dimensions)."))
        elif hasattr(model, "generator") and getattr(getattr(model, "config", None), "latent_dim", None):
            p = V.plot_interpolation(model, None, None, fig_dir / "generative_interpolation.png", steps=8)
            parts.append(figure_html(p, "Generator outputs along great circles between pairs of noise vectors."))
        if hasattr(model, "trajectory"):
            p = V.plot_diffusion_process(model, fig_dir / "generative_diffusion.png", x0=x[:3], n=3,
                                         steps=_sample_steps(model, sample_steps))
            parts.append(figure_html(p, "The forward process noising test images (q rows) and the reverse process "
                                        "turning noise into digits (p rows), with the step t of each column."))
    return parts


def generative_section(run_dir: Path, model: Any, bundle: Any, fig_dir: Path, *, n_samples: int = 500,
                       sample_steps: int = 50) -> str | None:
    """HTML of the section for a generative run; None for other runs.

    Args:
        run_dir: the run folder (``samples/*.png``, ``summary.json``, ``config.yaml``).
        model: the trained model, or None (then only the saved grids are shown).
        bundle: the run's data.
        fig_dir: where to write the figures.
        n_samples: samples per measure.
        sample_steps: sampler steps of diffusion models in this section.
    """
    run_dir, fig_dir = Path(run_dir), Path(fig_dir)
    grids = sorted((run_dir / "samples").glob("epoch_*.png"))
    if not is_generative(model) and not (model is None and grids):
        return None
    parts: list[str] = []
    if grids:
        from archlab.viz.generative import samples_gif

        gif = samples_gif(grids, fig_dir / "samples.gif")
        parts.append(figure_html(gif, f"Samples from fixed noise after each of {len(grids)} epochs (animated)."))
        parts.append(figure_html(grids[-1], f"The latest grid: {grids[-1].name}."))
    if model is not None:
        fig_dir.mkdir(parents=True, exist_ok=True)
        for build in (lambda: _figures(model, bundle, run_dir, fig_dir, sample_steps),):
            try:
                parts += build()
            except Exception as err:  # noqa: BLE001 - a failing figure becomes a note
                parts.append(note_html(f"Some figures could not be drawn: {type(err).__name__}: {err}"))
        try:
            rows = generative_measures(model, bundle, run_dir=run_dir, n_samples=n_samples,
                                       sample_steps=sample_steps)
        except Exception as err:  # noqa: BLE001
            rows = []
            parts.append(note_html(f"The measures could not be computed: {type(err).__name__}: {err}"))
        rows += _likelihood_rows(run_dir)
        if rows:
            parts.append(table_html(rows, ["measure", "value", "how"],
                                    caption="Measures of the final model (archlab.models.generative.measures)"))
    if not parts:
        return note_html("No sample grids in samples/ and no model to sample from.")
    return "".join(parts)
