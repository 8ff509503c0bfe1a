"""Benchmarks of the generative family: MNIST (../shared/data) with the shipped recipes, and the ring.

Every MNIST benchmark trains with ``archlab train MODEL --data mnist`` (the recipe
``src/archlab/recipes/MODEL-mnist.yaml`` applies by itself), then measures the trained model:

* ``cgan_mnist``: a conditional DCGAN (``cdcgan``); 100 samples of each digit, judged by archlab's
  MNIST classifier (``archlab.models.generative.measures``): the share judged the intended digit
  (target >= 95%), plus FID-MNIST against the test set.
* ``vae_mnist``: the MLP VAE on dynamically binarised MNIST; the test images binarised once (seed
  0) and the importance-weighted NLL (Burda et al. 2016) with K samples: target <= 100 nats. Any K
  gives an upper bound on the NLL that tightens as K grows.
* ``dcgan_mnist``, ``wgan_gp_mnist``, ``ddpm_mnist``: FID-MNIST of ``n_samples`` samples against the
  10,000 test images, with the training wall time.
* ``realnvp_mnist``: bits per dimension of the test set (Glow reports 1.05 on MNIST; RealNVP's
  paper does not report MNIST).
* ``ring_modes``: WGAN-GP (``wgan_gp_ring``) and the plain GAN (``gan_ring``) on the ring of 8
  Gaussians over 5 seeds: modes recovered (target: all 8 for WGAN-GP on every seed).

FID-MNIST uses the features of archlab's own MNIST classifier: it is comparable across archlab's
models, not with Inception FID. ``quick=True`` runs a few steps on the embedded digits (a smoke test).
"""

from __future__ import annotations

import tempfile
import time
from typing import Any

from archlab.bench.suite import root_holding
from archlab.registry import register_benchmark

__all__ = ["cgan_mnist", "vae_mnist", "dcgan_mnist", "wgan_gp_mnist", "ddpm_mnist", "realnvp_mnist",
           "ring_modes"]


def _train(model: str, data: str, out: str, quick: bool, extra: dict[str, Any] | None = None) -> tuple[Any, float]:
    import archlab

    ovs: dict[str, Any] = {"run.out_dir": out, "run.name": model, "run.report": False,
                           "system.progress": False, "system.tensorboard": False, **(extra or {})}
    if data == "mnist":
        ovs["data.root"] = root_holding("mnist")
    if quick:
        ovs.update({"train.max_steps": 3, "train.epochs": 1, "train.sample_every": 0})
    t0 = time.perf_counter()
    run = archlab.train(model, data, overrides=ovs)
    return run, round(time.perf_counter() - t0, 1)


def _data(quick: bool) -> str:
    return "digits" if quick else "mnist"


def _test_images(run: Any, limit: int | None = None) -> Any:
    """The run's test images as floats in [0, 1] (N, C, H, W)."""
    x = run.bundle.test.x[:limit] if limit else run.bundle.test.x
    return x.float() / 255.0 if not x.is_floating_point() else x


def _sample(model: Any, n: int, batch: int = 500, **kwargs: Any) -> Any:
    """``n`` samples in batches, seeded (generator 0), in eval mode."""
    import torch

    model.eval()
    g = torch.Generator().manual_seed(0)
    out = []
    with torch.no_grad():
        for i in range(0, n, batch):
            extra = {k: (v[i:i + batch] if k == "y" else v) for k, v in kwargs.items()}
            out.append(model.sample(min(batch, n - i), generator=g, **extra).cpu())
    return torch.cat(out)


def _record(run: Any, wall: float, model: str, recipe_data: str = "mnist") -> dict[str, Any]:
    return {"command": f"archlab train {model} --data {recipe_data}",
            "recipe": f"src/archlab/recipes/{model}-{recipe_data}.yaml", "steps": run.summary.get("steps"),
            "epochs": run.config.train.epochs, "train_time_s": run.summary.get("train_time_s"), "wall_s": wall,
            "status": run.summary.get("status")}


def _threads() -> int:
    import torch

    return torch.get_num_threads()


def _fid_benchmark(model: str, quick: bool, n_samples: int, **sample_kwargs: Any) -> dict[str, Any]:
    from archlab.models.generative.measures import class_coverage, fid_mnist

    with tempfile.TemporaryDirectory() as out:
        run, wall = _train(model, _data(quick), out, quick)
        n = 64 if quick else n_samples
        if quick and hasattr(run.model, "trajectory"):  # a diffusion model: a short chain for the smoke test
            sample_kwargs = {**sample_kwargs, "steps": 5}
        t0 = time.perf_counter()
        samples = _sample(run.model, n, **sample_kwargs)
        sample_s = round(time.perf_counter() - t0, 1)
        real = _test_images(run)
        fid = fid_mnist(samples, real)
        cover = class_coverage(samples)
        ref = fid_mnist(real[: len(real) // 2], real[len(real) // 2:])  # the floor: test set against itself
        return {**_record(run, wall, model), "n_samples": n, "fid_mnist": round(fid, 3),
                "fid_test_halves": round(ref, 3), "class_coverage": cover["coverage"],
                "class_entropy": round(cover["entropy"], 4), "sample_time_s": sample_s, "threads": _threads()}


@register_benchmark("cgan_mnist", family="generative",
                    description="conditional DCGAN on MNIST: samples judged the intended digit >= 95%, FID-MNIST")
def cgan_mnist(quick: bool = False) -> dict[str, Any]:
    import torch

    from archlab.models.generative.measures import class_accuracy, fid_mnist

    model = "cdcgan"
    with tempfile.TemporaryDirectory() as out:
        run, wall = _train(model, _data(quick), out, quick)
        per_class = 10 if quick else 100
        labels = torch.arange(10).repeat_interleave(per_class)  # (1000,) 100 of each digit
        samples = _sample(run.model, len(labels), y=labels)
        acc = class_accuracy(samples, labels)
        per_digit = [class_accuracy(samples[labels == k], labels[labels == k]) for k in range(10)]
        fid = fid_mnist(samples, _test_images(run))
        return {**_record(run, wall, model), "samples": len(labels), "judged_intended": round(acc, 4),
                "per_digit": [round(a, 3) for a in per_digit], "target": 0.95, "fid_mnist": round(fid, 3),
                "threads": _threads()}


@register_benchmark("vae_mnist", family="generative",
                    description="VAE on binarised MNIST: importance-weighted test NLL <= 100 nats")
def vae_mnist(quick: bool = False, num_samples: int = 500) -> dict[str, Any]:
    import torch

    from archlab.models.generative.vae import binarize

    model = "vae"
    with tempfile.TemporaryDirectory() as out:
        run, wall = _train(model, _data(quick), out, quick)
        net = run.model.eval()
        x = binarize(_test_images(run), torch.Generator().manual_seed(0))  # the test set, binarised once
        k = 8 if quick else num_samples
        t0 = time.perf_counter()
        with torch.no_grad():
            nll = torch.cat([-net.log_likelihood(x[i:i + 250], num_samples=k).double().cpu()
                             for i in range(0, len(x), 250)])
            elbo = torch.cat([net(x[i:i + 500])["elbo"].double().reshape(-1).cpu()
                              for i in range(0, len(x), 500)])
        return {**_record(run, wall, model), "test_images": len(x), "importance_samples": k,
                "test_nll_nats": round(float(nll.mean()), 3), "test_elbo_nats": round(float(elbo.mean()), 3),
                "target_nats": 100.0, "nll_time_s": round(time.perf_counter() - t0, 1), "threads": _threads()}


@register_benchmark("dcgan_mnist", family="generative", description="DCGAN on MNIST: FID-MNIST and wall time")
def dcgan_mnist(quick: bool = False) -> dict[str, Any]:
    return _fid_benchmark("dcgan", quick, 5000)


@register_benchmark("wgan_gp_mnist", family="generative", description="WGAN-GP on MNIST: FID-MNIST and wall time")
def wgan_gp_mnist(quick: bool = False) -> dict[str, Any]:
    return _fid_benchmark("wgan_gp", quick, 5000)


@register_benchmark("ddpm_mnist", family="generative",
                    description="DDPM on MNIST (DDIM sampling): FID-MNIST and wall time")
def ddpm_mnist(quick: bool = False) -> dict[str, Any]:
    return _fid_benchmark("ddpm", quick, 1000)


@register_benchmark("realnvp_mnist", family="generative", description="RealNVP on MNIST: test bits per dimension")
def realnvp_mnist(quick: bool = False) -> dict[str, Any]:
    import torch

    from archlab.models.generative.measures import bits_per_dim

    model = "realnvp"
    with tempfile.TemporaryDirectory() as out:
        small = {"model.options.hidden_channels": 8, "model.options.num_blocks": 1}  # the smoke test only
        run, wall = _train(model, _data(quick), out, quick, small if quick else None)
        net = run.model.eval()
        x = _test_images(run)
        with torch.no_grad():
            nll = torch.cat([-net.log_likelihood(x[i:i + 500]).double().cpu() for i in range(0, len(x), 500)])
        bpd = bits_per_dim(float(nll.mean()), x[0].numel())
        return {**_record(run, wall, model), "test_images": len(x), "test_nll_nats": round(float(nll.mean()), 3),
                "test_bpd": round(bpd, 4), "glow_reported_bpd": 1.05, "threads": _threads()}


@register_benchmark("ring_modes", family="generative",
                    description="ring of 8 Gaussians: modes recovered by WGAN-GP (target 8 on 5 seeds) and a plain GAN")
def ring_modes(quick: bool = False, seeds: tuple[int, ...] = (0, 1, 2, 3, 4)) -> dict[str, Any]:
    from archlab.data.generative_data import ring_centers
    from archlab.models.generative import measures

    rows = []
    with tempfile.TemporaryDirectory() as out:
        for model in ("wgan_gp_ring", "gan_ring"):
            for seed in (seeds[:1] if quick else seeds):
                run, wall = _train(model, "ring", out, quick, {"train.seed": seed, "run.name": f"{model}{seed}"})
                samples = _sample(run.model, 2000)
                r = measures.ring_modes(samples, ring_centers(), std=0.02)
                rows.append({"model": model, "seed": seed, "modes": r["modes"], "high_quality": round(r["high_quality"], 4),
                             "per_mode": r["per_mode"], "steps": run.summary.get("steps"), "wall_s": wall})
    by = {m: [r["modes"] for r in rows if r["model"] == m] for m in ("wgan_gp_ring", "gan_ring")}
    return {"command": "archlab train wgan_gp_ring --data ring; archlab train gan_ring --data ring",
            "recipes": ["src/archlab/recipes/wgan_gp_ring-ring.yaml", "src/archlab/recipes/gan_ring-ring.yaml"],
            "measure": "a mode is recovered when >= 1% of 2000 samples lie within 3 std (0.06) of its centre",
            "runs": rows, "wgan_gp_modes": by["wgan_gp_ring"], "gan_modes": by["gan_ring"],
            "wgan_gp_all_modes_every_seed": all(m == 8 for m in by["wgan_gp_ring"]), "threads": _threads()}
