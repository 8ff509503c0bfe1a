"""Pictures of generative models: sample grids and their GIF through training, latent
interpolations, 2-D latent scatter, reconstructions, image-to-image triples, the diffusion process
step by step and samples on the ring of Gaussians.

* :func:`make_grid` / :func:`save_sample_grid`: tile images (N, C, H, W) in [0, 1] into one PNG.
* :func:`samples_gif`: an animated GIF of sample grids (the PNGs a training run writes into
  ``run_dir/samples/epoch_XXXX.png``), each frame labelled with its epoch.
* :func:`plot_interpolation`: decode points on the line between two codes: ``encode(x_a)`` and
  ``encode(x_b)`` for autoencoders and VAEs; two noise vectors ``z_a``, ``z_b`` for GANs (through
  ``model.generator``); two x_T for a diffusion model (deterministic DDIM, eta = 0, as in Song et
  al. 2021, spherical interpolation since x_T is Gaussian).
* :func:`plot_latent_scatter`: ``encode(x)`` coloured by class; a PCA projection when the latent
  space has more than two dimensions (the axes give the variance each component explains).
* :func:`plot_reconstructions`: inputs (their corrupted version for a denoising autoencoder) over
  their reconstructions.
* :func:`plot_triples`: Pix2Pix/CycleGAN input, output and target rows.
* :func:`plot_diffusion_process`: the forward process q(x_t | x_0) and the reverse process
  p(x_{t-1} | x_t) as rows of frames, with the step t above each column (``model.trajectory``
  of the DDPM, or ``q_sample`` alone for the forward rows).
* :func:`plot_ring`: 2-D samples over the ring's mode centres (3-sigma circles) with the modes
  recovered (:func:`archlab.models.generative.measures.ring_modes`).

Models are used through the methods of the generative contract (``encode``, ``decode``,
``reconstruct``, ``corrupt``, ``translate``, ``trajectory``, ``q_sample``, ``sample``), each
guarded by ``hasattr``: a model without the method gets a clear error, never a half-drawn figure.
Every ``plot_*`` function saves a PNG (folders created) and returns its path.

References:
    T. White, "Sampling generative networks", 2016, https://arxiv.org/abs/1609.04468 (slerp)
    J. Song, C. Meng, S. Ermon, "Denoising diffusion implicit models", ICLR 2021,
    https://arxiv.org/abs/2010.02502 (interpolation of x_T under DDIM)
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from archlab.viz._mpl import new_figure, save_figure, style, to_numpy

__all__ = [
    "make_grid",
    "plot_diffusion_process",
    "plot_interpolation",
    "plot_latent_scatter",
    "plot_reconstructions",
    "plot_ring",
    "plot_triples",
    "samples_gif",
    "save_sample_grid",
]


# ----------------------------------------------------------------------------------------------
# grids and GIFs


def _as_images(images: Any) -> np.ndarray:
    """(N, C, H, W) float32 in [0, 1] from (N, C, H, W), (N, H, W) or (C, H, W)... arrays/tensors."""
    x = to_numpy(images)
    if x.dtype == np.uint8:
        x = x.astype(np.float32) / 255.0
    x = x.astype(np.float32)
    if x.ndim == 3:
        x = x[:, None]  # (N, H, W) -> (N, 1, H, W)
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise ValueError(f"images must be (N, C, H, W) with C = 1 or 3 (or (N, H, W)), got shape {x.shape}")
    return np.clip(np.nan_to_num(x, nan=0.0, posinf=1.0, neginf=0.0), 0.0, 1.0)


def make_grid(images: Any, nrow: int = 8, pad: int = 1, pad_value: float = 1.0) -> np.ndarray:
    """Tile images (N, C, H, W) in [0, 1] into an array (rows*(H+pad)+pad, nrow*(W+pad)+pad, 3).

    One-channel images become grey RGB; values are clipped to [0, 1] (NaN shows as black).
    """
    if nrow < 1:
        raise ValueError(f"nrow must be >= 1, got {nrow}")
    x = _as_images(images)
    if x.shape[1] == 1:
        x = np.repeat(x, 3, axis=1)
    n, _, h, w = x.shape
    cols = min(nrow, max(n, 1))
    rows = -(-n // cols) if n else 1
    grid = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, 3), pad_value, dtype=np.float32)
    for i in range(n):
        r, c = divmod(i, cols)
        top, left = pad + r * (h + pad), pad + c * (w + pad)
        grid[top:top + h, left:left + w] = x[i].transpose(1, 2, 0)
    return grid


def _upscale(grid: np.ndarray, tile_side: int, min_side: int = 32) -> np.ndarray:
    scale = max(1, -(-min_side // max(tile_side, 1)))
    return grid.repeat(scale, axis=0).repeat(scale, axis=1) if scale > 1 else grid


def _to_uint8(grid: np.ndarray) -> np.ndarray:
    return (np.clip(grid, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def save_sample_grid(images: Any, path: str | Path, nrow: int = 8, *, pad: int = 1,
                     min_tile: int = 32) -> Path:
    """Write images (N, C, H, W) in [0, 1] as one PNG grid, ``nrow`` images per row; returns the path.

    Small images are enlarged by an integer factor (nearest neighbour, so pixels stay sharp) until
    each tile is at least ``min_tile`` pixels high: 8x8 digits become 32x32 tiles.

    Args:
        images: (N, C, H, W) or (N, H, W), C = 1 or 3, floats in [0, 1] (uint8 0..255 accepted).
        path: the PNG to write (folders created).
        nrow: images per row.
        pad: white pixels between tiles (before enlarging).
        min_tile: smallest tile side in the written image.
    """
    from PIL import Image

    x = _as_images(images)
    grid = _upscale(make_grid(x, nrow, pad=pad), x.shape[-2], min_tile)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(_to_uint8(grid)).save(path, format="PNG")
    return path


def _frame_label(item: Any, index: int) -> str:
    if isinstance(item, (str, Path)):
        m = re.search(r"(\d+)$", Path(item).stem)
        if m and "epoch" in Path(item).stem:
            return f"epoch {int(m.group(1))}"
        return Path(item).stem
    return f"frame {index + 1}"


def samples_gif(frames: Sequence[Any], path: str | Path, *, duration_ms: int = 500, nrow: int = 8,
                labels: Sequence[str] | None = None, hold_last_ms: int = 1500, max_frames: int = 60) -> Path:
    """An animated GIF of sample grids, e.g. through training; loops forever.

    Args:
        frames: PNG paths (the grids a run writes: ``samples/epoch_0001.png``...) or image batches
            (N, C, H, W) in [0, 1] (tiled with :func:`make_grid`, ``nrow`` per row), or a mix.
        path: the ``.gif`` to write.
        duration_ms: how long each frame shows.
        labels: a caption per frame; default "epoch k" from ``epoch_XXXX`` file names.
        hold_last_ms: how long the last frame shows before the loop restarts.
        max_frames: at most this many frames, evenly chosen (always the first and last).
    """
    from PIL import Image, ImageDraw

    if not frames:
        raise ValueError("samples_gif needs at least one frame")
    if labels is not None and len(labels) != len(frames):
        raise ValueError(f"got {len(labels)} labels for {len(frames)} frames")
    keep = np.unique(np.linspace(0, len(frames) - 1, min(len(frames), max_frames)).round().astype(int))
    images, captions = [], []
    for i in keep:
        item = frames[i]
        if isinstance(item, (str, Path)):
            im = Image.open(item).convert("RGB")
        else:
            x = _as_images(item)
            im = Image.fromarray(_to_uint8(_upscale(make_grid(x, nrow), x.shape[-2])))
        images.append(im)
        captions.append(labels[i] if labels is not None else _frame_label(item, int(i)))
    width = max(im.width for im in images)
    height = max(im.height for im in images)
    strip = 14  # caption band on top
    out = []
    for im, caption in zip(images, captions):
        canvas = Image.new("RGB", (width, height + strip), "white")
        canvas.paste(im, ((width - im.width) // 2, strip + (height - im.height) // 2))
        ImageDraw.Draw(canvas).text((3, 1), caption, fill=(0, 0, 0))
        out.append(canvas.convert("P", palette=Image.Palette.ADAPTIVE, colors=255))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    durations = [duration_ms] * (len(out) - 1) + [max(duration_ms, hold_last_ms)]
    out[0].save(path, format="GIF", save_all=True, append_images=out[1:], duration=durations, loop=0,
                disposal=2)
    return path


# ----------------------------------------------------------------------------------------------
# model pictures


def _image_rows(rows: Sequence[tuple[str, Any]], path: str | Path, title: str | None = None,
                col_titles: Sequence[str] | Mapping[int, Sequence[str]] | None = None, tile: float = 0.8) -> Path:
    """Rows of images (each (N, C, H, W) in [0, 1]) with a label at the left of each row.

    ``col_titles``: titles over the first row's columns, or ``{row index: titles}`` to title the
    columns above several rows (blocks of rows with different column meanings).
    """
    arrays = [(name, _as_images(x)) for name, x in rows]
    ncols = max(len(x) for _, x in arrays)
    titled = dict(col_titles) if isinstance(col_titles, Mapping) else ({0: col_titles} if col_titles else {})
    # One axes per row showing the row's tiles side by side (far faster than an axes per image).
    with style():
        fig = new_figure(tile * ncols + 1.4, tile * len(arrays) + (0.5 if title else 0.2) + 0.25 * len(titled))
        axes = fig.subplots(len(arrays), 1, squeeze=False)[:, 0]
        for r, (ax, (name, x)) in enumerate(zip(axes, arrays)):
            h, w = x.shape[-2:]
            padded = np.concatenate([x, np.ones((ncols - len(x), *x.shape[1:]), np.float32)]) if len(x) < ncols else x
            strip = make_grid(padded, nrow=ncols, pad=1)  # (H + 2, ncols * (W + 1) + 1, 3)
            ax.imshow(strip, interpolation="nearest")
            for spine in ax.spines.values():
                spine.set_visible(False)
            ax.set_yticks([])
            ax.set_ylabel(name, rotation=0, ha="right", va="center")
            if r in titled:
                ax.xaxis.tick_top()
                ax.set_xticks([1 + c * (w + 1) + (w - 1) / 2 for c in range(len(titled[r][:ncols]))],
                              list(titled[r][:ncols]), fontsize=8)
                ax.tick_params(axis="x", length=0)
            else:
                ax.set_xticks([])
        if title:
            fig.suptitle(title)
        return save_figure(fig, path)


def _no_grad_eval(model: Any):
    """A context: torch.no_grad() and eval mode, restoring the mode after."""
    import contextlib

    import torch

    @contextlib.contextmanager
    def ctx():
        was = getattr(model, "training", False)
        if hasattr(model, "eval"):
            model.eval()
        try:
            with torch.no_grad():
                yield
        finally:
            if hasattr(model, "train"):
                model.train(was)

    return ctx()


def _model_device(model: Any) -> Any:
    import torch

    for p in getattr(model, "parameters", lambda: iter(()))():
        return p.device
    return torch.device("cpu")


def _slerp(a: Any, b: Any, t: Any) -> Any:
    """Spherical interpolation of (B, ...) tensors a, b at weights t (S, 1): (S, B, ...)."""
    import torch

    af, bf = a.flatten(1), b.flatten(1)  # (B, D)
    cos = torch.nn.functional.cosine_similarity(af, bf).clamp(-1 + 1e-7, 1 - 1e-7)  # (B,)
    omega = torch.acos(cos)[None, :, None]  # (1, B, 1)
    t = t[:, :, None]  # (S, 1, 1)
    out = (torch.sin((1 - t) * omega) * af + torch.sin(t * omega) * bf) / torch.sin(omega)  # (S, B, D)
    return out.reshape(t.shape[0], *a.shape)


def interpolation_images(model: Any, x_a: Any = None, x_b: Any = None, steps: int = 8, *, n: int = 4,
                         seed: int = 0, spherical: bool | None = None, y: Any = None,
                         diffusion_steps: int = 20) -> tuple[Any, str]:
    """(rows, steps, C, H, W) images on the path between two codes, and how they were made.

    Autoencoders/VAEs (``encode``/``decode``): x_a, x_b are images (B, C, H, W) in [0, 1].
    GANs (``generator`` and ``config.latent_dim``): x_a, x_b are noise vectors (B, latent_dim), or
    None to draw ``n`` pairs from ``seed``; ``y`` (B,) labels for a conditional GAN (default 0..B-1).
    Diffusion (``sample(noise=...)``): x_a, x_b are x_T (B, C, H, W) or None; decoded with DDIM, eta 0.
    """
    import torch

    if steps < 2:
        raise ValueError(f"steps must be >= 2 (both ends), got {steps}")
    device = _model_device(model)
    t = torch.linspace(0.0, 1.0, steps, device=device)[:, None]  # (S, 1)
    g = torch.Generator(device="cpu").manual_seed(seed)
    with _no_grad_eval(model):
        if hasattr(model, "encode") and hasattr(model, "decode"):
            if x_a is None or x_b is None:
                raise ValueError("interpolating an autoencoder needs two image batches x_a, x_b (B, C, H, W)")
            xa, xb = (torch.as_tensor(v).float().to(device) for v in (x_a, x_b))
            if xa.dim() == 3:
                xa, xb = xa[None], xb[None]
            za, zb = model.encode(xa), model.encode(xb)  # (B, L)
            z = _slerp(za, zb, t) if spherical else (1 - t)[:, :, None] * za + t[:, :, None] * zb  # (S, B, L)
            out = model.decode(z.reshape(-1, za.shape[-1]))  # (S * B, C, H, W)
            how = f"decode((1 - t) encode(x_a) + t encode(x_b)), {steps} steps" if not spherical else \
                "decode(slerp(encode(x_a), encode(x_b), t))"
            return out.reshape(steps, len(za), *out.shape[1:]).transpose(0, 1).cpu(), how
        cfg = getattr(model, "config", None)
        if hasattr(model, "generator") and getattr(cfg, "latent_dim", None):
            latent = int(cfg.latent_dim)
            za = torch.randn(n, latent, generator=g) if x_a is None else torch.as_tensor(x_a).float()
            zb = torch.randn(n, latent, generator=g) if x_b is None else torch.as_tensor(x_b).float()
            za, zb = za.to(device), zb.to(device)
            sph = True if spherical is None else spherical  # Gaussian noise: slerp (White 2016)
            z = _slerp(za, zb, t) if sph else (1 - t)[:, :, None] * za + t[:, :, None] * zb  # (S, B, L)
            labels = None
            if getattr(model, "conditional", False):
                k = int(cfg.num_classes)
                yb = torch.arange(len(za)) % k if y is None else torch.as_tensor(y).long()
                labels = yb.to(device).repeat(steps)  # (S * B,)
            out = model.generator(z.reshape(-1, latent), labels)  # (S * B, C, H, W) in [-1, 1]
            if out.dim() != 4:
                raise ValueError(f"{type(model).__name__} generates {tuple(out.shape[1:])} points, not images: "
                                 "plot its samples with plot_ring instead")
            from archlab.models.generative.base import to_unit

            out = to_unit(out)
            how = f"G({'slerp' if sph else 'lerp'}(z_a, z_b, t)), {steps} steps"
            return out.reshape(steps, len(za), *out.shape[1:]).transpose(0, 1).cpu(), how
        if hasattr(model, "sample") and hasattr(model, "trajectory") and hasattr(model, "data_shape"):
            shape = tuple(model.data_shape())
            xa = torch.randn(n, *shape, generator=g) if x_a is None else torch.as_tensor(x_a).float()
            xb = torch.randn(n, *shape, generator=g) if x_b is None else torch.as_tensor(x_b).float()
            xt = _slerp(xa.to(device), xb.to(device), t).reshape(-1, *shape)  # (S * B, C, H, W)
            out = model.sample(len(xt), noise=xt, method="ddim", eta=0.0, steps=diffusion_steps)
            how = f"DDIM (eta 0, {diffusion_steps} steps) from slerp(x_T^a, x_T^b, t)"
            return out.reshape(steps, len(xa), *out.shape[1:]).transpose(0, 1).cpu(), how
    raise ValueError(f"{type(model).__name__} has no latent space to interpolate: it needs encode/decode "
                     "(autoencoders, VAEs), a generator with config.latent_dim (GANs) or trajectory/sample(noise=) "
                     "(diffusion)")


def plot_interpolation(model: Any, x_a: Any, x_b: Any, path: str | Path, steps: int = 8, *,
                       spherical: bool | None = None, n: int = 4, seed: int = 0, y: Any = None,
                       diffusion_steps: int = 20) -> Path:
    """Latent interpolation: one row per pair, ``steps`` images from the first end to the second.

    See :func:`interpolation_images` for what x_a and x_b are for each kind of model (images for
    autoencoders/VAEs, noise vectors or None for GANs and diffusion models).
    """
    images, how = interpolation_images(model, x_a, x_b, steps, n=n, seed=seed, spherical=spherical, y=y,
                                       diffusion_steps=diffusion_steps)
    cols = [f"t={v:.2f}" for v in np.linspace(0, 1, steps)]
    if hasattr(model, "encode") and x_a is not None and x_b is not None:
        # autoencoders: the two input images at the ends, to compare with their decoded codes (t = 0, 1)
        xa, xb = _as_images(x_a).reshape(-1, *images.shape[2:]), _as_images(x_b).reshape(-1, *images.shape[2:])
        images = np.concatenate([xa[:, None], to_numpy(images), xb[:, None]], 1)  # (B, steps + 2, C, H, W)
        cols = ["x_a", *cols, "x_b"]
    rows = [(f"pair {i + 1}", images[i]) for i in range(len(images))]
    return _image_rows(rows, path, title=f"Interpolation: {how}", col_titles=cols)


def _pca_2d(z: np.ndarray) -> tuple[np.ndarray, list[float]]:
    zc = z - z.mean(0, keepdims=True)
    _, s, vt = np.linalg.svd(zc, full_matrices=False)
    var = s**2 / max((s**2).sum(), 1e-12)
    return zc @ vt[:2].T, [float(v) for v in var[:2]]


def plot_latent_scatter(model: Any, x: Any, y: Any, path: str | Path, *, max_points: int = 3000,
                        class_names: Sequence[str] | None = None, batch_size: int = 500) -> Path:
    """2-D latent codes ``encode(x)`` coloured by class ``y``; PCA to 2-D when latent_dim > 2.

    Args:
        model: has ``encode(x) -> (B, latent_dim)``.
        x: images (N, C, H, W) in [0, 1].
        y: (N,) class labels.
        path: the PNG.
        max_points: plot at most this many (the first ones).
        class_names: legend names per class index.
    """
    import torch

    if not hasattr(model, "encode"):
        raise ValueError(f"{type(model).__name__} has no encode(x): latent scatter plots need an autoencoder or VAE")
    x = torch.as_tensor(x)[:max_points]
    labels = to_numpy(y)[:max_points].astype(int)
    if x.dtype == torch.uint8:
        x = x.float() / 255.0
    device = _model_device(model)
    with _no_grad_eval(model):
        z = torch.cat([model.encode(x[i:i + batch_size].float().to(device)).cpu()
                       for i in range(0, len(x), batch_size)]).double().numpy()  # (N, L)
    if z.shape[1] == 1:
        z = np.concatenate([z, np.zeros_like(z)], 1)
        axes_names = ["z_1", ""]
    elif z.shape[1] == 2:
        axes_names = ["z_1", "z_2"]
    else:
        z, var = _pca_2d(z)
        axes_names = [f"PC1 ({var[0]:.0%} of variance)", f"PC2 ({var[1]:.0%})"]
    import matplotlib

    cmap = matplotlib.colormaps["tab10"]
    with style():
        fig = new_figure(5.5, 4.8)
        ax = fig.add_subplot()
        for k in np.unique(labels):
            m = labels == k
            name = class_names[k] if class_names is not None and k < len(class_names) else str(k)
            ax.scatter(z[m, 0], z[m, 1], s=5, alpha=0.6, color=cmap(int(k) % 10), label=name)
        ax.set_xlabel(axes_names[0])
        ax.set_ylabel(axes_names[1])
        ax.set_title(f"Latent codes of {len(z)} images" + (" (PCA)" if "PC1" in axes_names[0] else ""))
        ax.legend(markerscale=3, fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5), title="class")
        return save_figure(fig, path)


def plot_reconstructions(model: Any, x: Any, path: str | Path, *, n: int = 8, seed: int = 0) -> Path:
    """Inputs over their reconstructions (``reconstruct`` or ``decode(encode(x))``).

    A denoising autoencoder (``corrupt`` changes the input) shows three rows: clean input,
    corrupted input and the reconstruction from the corrupted one.
    """
    import torch

    if not (hasattr(model, "reconstruct") or (hasattr(model, "encode") and hasattr(model, "decode"))):
        raise ValueError(f"{type(model).__name__} cannot reconstruct: it needs reconstruct(x) or encode/decode")
    x = torch.as_tensor(x)[:n]
    if x.dtype == torch.uint8:
        x = x.float() / 255.0
    x = x.float().to(_model_device(model))
    rows = [("input", x.cpu())]
    with _no_grad_eval(model):
        source = x
        if hasattr(model, "corrupt"):
            noisy = model.corrupt(x, torch.Generator(device=x.device).manual_seed(seed))
            if not torch.equal(noisy, x):
                source = noisy
                rows.append(("corrupted", noisy.cpu()))
        out = model.reconstruct(source) if hasattr(model, "reconstruct") else model.decode(model.encode(source))
    rows.append(("reconstruction", out.cpu()))
    return _image_rows(rows, path, title="Reconstructions")


def plot_triples(inputs: Any, outputs: Any, targets: Any, path: str | Path, *, n: int = 8,
                 names: Sequence[str] = ("input", "output", "target"), title: str | None = None) -> Path:
    """Image-to-image results: rows of inputs, outputs and targets (Pix2Pix; CycleGAN without targets).

    Args:
        inputs, outputs: (N, C, H, W) in [0, 1].
        targets: (N, C, H, W) in [0, 1], or None (unpaired translation has no target).
        n: columns (examples) shown.
        names: row labels.
    """
    rows = [(names[0], _as_images(inputs)[:n]), (names[1], _as_images(outputs)[:n])]
    if targets is not None:
        rows.append((names[2], _as_images(targets)[:n]))
    return _image_rows(rows, path, title=title or " / ".join(name for name, _ in rows))


def plot_diffusion_process(model: Any, path: str | Path, *, x0: Any = None, n: int = 3, num_frames: int = 10,
                           steps: int | None = None, seed: int = 0, trajectory: Mapping[str, Any] | None = None
                           ) -> Path:
    """The diffusion process step by step: forward noising rows, then reverse denoising rows.

    Uses the DDPM's ``trajectory(x0, n=, num_frames=, steps=, generator=)`` (frames of the forward
    chain from ``x0`` and of the reverse chain from fresh noise). A model with only
    ``q_sample(x0, t, noise)`` and ``timesteps`` gets the forward rows alone (x0 needed).

    Args:
        model: the diffusion model (ignored when ``trajectory`` is given).
        path: the PNG.
        x0: (B, C, H, W) clean images in [0, 1] for the forward rows (None: the reverse chain's outputs).
        n: how many chains to show.
        num_frames: columns.
        steps: sampler steps of the reverse chain (None: the model's default).
        seed: noise seed.
        trajectory: a precomputed ``trajectory`` dict (``forward``, ``forward_t``, ``reverse``,
            ``reverse_t``, optionally ``reverse_x0``).
    """
    import torch

    if trajectory is None:
        g = torch.Generator(device=_model_device(model)).manual_seed(seed)
        x0_t = None if x0 is None else torch.as_tensor(x0)[:n].float().to(_model_device(model))
        if hasattr(model, "trajectory"):
            with _no_grad_eval(model):
                trajectory = model.trajectory(x0_t, n=n, num_frames=num_frames, steps=steps, generator=g)
        elif hasattr(model, "q_sample") and hasattr(model, "timesteps"):
            if x0_t is None:
                raise ValueError("a model without trajectory() needs x0 to show its forward process")
            T = int(model.timesteps)
            ts = np.unique(np.linspace(0, T, num_frames).round().astype(int))
            from archlab.models.generative.base import to_signed, to_unit

            with _no_grad_eval(model):
                noise = torch.randn(x0_t.shape, generator=g, device=x0_t.device)
                frames = [x0_t] + [to_unit(model.q_sample(to_signed(x0_t), torch.full((len(x0_t),), t - 1,
                                                                                      device=x0_t.device), noise))
                                   for t in ts[1:]]
            trajectory = {"forward": torch.stack(frames), "forward_t": torch.as_tensor(ts)}
        else:
            raise ValueError(f"{type(model).__name__} is not a diffusion model: it has neither trajectory() "
                             "nor q_sample()")
    rows: list[tuple[str, Any]] = []
    col_titles: dict[int, list[str]] = {}
    parts = []
    fwd = trajectory.get("forward")
    if fwd is not None:
        fwd = to_numpy(fwd)  # (F, B, C, H, W)
        f_t = [int(v) for v in to_numpy(trajectory.get("forward_t", np.arange(len(fwd))))]
        col_titles[len(rows)] = [f"t={t}" for t in f_t]
        rows += [(f"q: x_0 #{b + 1}", fwd[:, b]) for b in range(min(n, fwd.shape[1]))]
        parts.append("forward q(x_t | x_0) (rows q)")
    rev = trajectory.get("reverse")
    if rev is not None:
        rev = to_numpy(rev)  # (F, n, C, H, W)
        r_t = [int(v) for v in to_numpy(trajectory.get("reverse_t", np.arange(len(rev))))]
        col_titles[len(rows)] = [f"t={t}" for t in r_t]
        rows += [(f"p: chain #{b + 1}", rev[:, b]) for b in range(min(n, rev.shape[1]))]
        parts.append("reverse p(x_{t-1} | x_t) from noise (rows p)")
        x0_hat = trajectory.get("reverse_x0")
        if x0_hat is not None:
            rows.append(("p: predicted x_0, #1", to_numpy(x0_hat)[:, 0]))
    if not rows:
        raise ValueError("the trajectory holds neither 'forward' nor 'reverse' frames")
    return _image_rows(rows, path, title="Diffusion: " + "; ".join(parts), col_titles=col_titles)


def plot_ring(samples: Any, centers: Any, path: str | Path, *, std: float | None = None,
              real: Any = None, title: str | None = None, max_points: int = 2000) -> Path:
    """2-D samples over the mode centres of the ring of Gaussians, one panel per sample set.

    Args:
        samples: (N, 2) points, or a mapping ``{panel title: (N, 2) points}`` for side-by-side panels
            (e.g. several epochs, or GAN against WGAN-GP).
        centers: (K, 2) mode centres (red crosses).
        path: the PNG.
        std: the modes' standard deviation: draws the 3-sigma circles and puts the modes recovered
            and the share of high-quality samples (:func:`~archlab.models.generative.measures.ring_modes`)
            in each panel's title.
        real: optional (M, 2) real samples shown in light grey underneath.
        title: figure title.
        max_points: points drawn per panel (the first ones).
    """
    from matplotlib.patches import Circle

    panels = dict(samples) if isinstance(samples, Mapping) else {"samples": samples}
    c = to_numpy(centers).astype(float)
    if c.ndim != 2 or c.shape[1] != 2:
        raise ValueError(f"centers must be (K, 2), got {c.shape}")
    span = np.abs(c).max() * 1.6 + (3 * std if std else 0.5)
    with style():
        fig = new_figure(3.6 * len(panels) + 0.3, 3.9)
        axes = fig.subplots(1, len(panels), squeeze=False)[0]
        for ax, (name, pts) in zip(axes, panels.items()):
            p = to_numpy(pts).astype(float)
            if p.ndim != 2 or p.shape[1] != 2:
                raise ValueError(f"samples {name!r} must be (N, 2) points, got {p.shape}")
            if real is not None:
                r = to_numpy(real).astype(float)[:max_points]
                ax.scatter(r[:, 0], r[:, 1], s=3, color="0.8", label="data")
            shown = p[:max_points]
            ax.scatter(shown[:, 0], shown[:, 1], s=3, alpha=0.5, color="tab:blue", label="samples")
            ax.scatter(c[:, 0], c[:, 1], marker="x", s=40, color="tab:red", label="modes")
            label = str(name)
            if std:
                from archlab.models.generative.measures import ring_modes

                for cx, cy in c:
                    ax.add_patch(Circle((cx, cy), 3 * std, fill=False, color="tab:red", lw=0.6, alpha=0.6))
                m = ring_modes(p, c, std)
                label += f"\n{m['modes']}/{m['num_modes']} modes, {m['high_quality']:.0%} high quality"
            ax.set_title(label)
            ax.set_xlim(-span, span)
            ax.set_ylim(-span, span)
            ax.set_aspect("equal")
        if title:
            fig.suptitle(title)
        return save_figure(fig, path)
