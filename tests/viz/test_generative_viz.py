"""Pictures of generative models: every plot writes a non-empty PNG (GIF), with stand-in tiny models
that implement the generative contract's methods, and with the registered models where they exist."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from archlab.viz import generative as V


def _png(path):
    assert path.is_file() and path.stat().st_size > 100
    assert path.read_bytes()[:4] == b"\x89PNG"
    return Image.open(path)


class TinyAE(nn.Module):
    """encode/decode/corrupt over 1x8x8 images, a 3-D latent space."""

    family = "generative"

    def __init__(self, latent: int = 3, noisy: bool = False) -> None:
        super().__init__()
        self.enc, self.dec, self.noisy = nn.Linear(64, latent), nn.Linear(latent, 64), noisy

    def data_shape(self):
        return (1, 8, 8)

    def encode(self, x):
        return self.enc(x.flatten(1))

    def decode(self, z):
        return torch.sigmoid(self.dec(z)).view(-1, 1, 8, 8)

    def corrupt(self, x, generator=None):
        if not self.noisy:
            return x
        return x * (torch.rand(x.shape, generator=generator) > 0.3)


class TinyGAN(nn.Module):
    family = "generative"

    def __init__(self, conditional: bool = False) -> None:
        super().__init__()
        self.conditional = conditional

        class Cfg:
            latent_dim, num_classes = 4, 3

        self.config = Cfg()
        self.generator = _Gen()

    def data_shape(self):
        return (1, 8, 8)

    def sample(self, n, *, y=None, generator=None):
        return (self.generator(torch.randn(n, 4, generator=generator), y) + 1) / 2


class _Gen(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 64)
        self.emb = nn.Embedding(3, 64)

    def forward(self, z, y=None):
        h = self.lin(z) + (self.emb(y) if y is not None else 0)
        return torch.tanh(h).view(-1, 1, 8, 8)


class TinyDiffusion(nn.Module):
    """Only q_sample and timesteps (no trajectory): the forward rows."""

    timesteps = 20

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("abar", torch.cumprod(1 - torch.linspace(1e-3, 0.3, 20), 0))

    def q_sample(self, x0, t, noise=None):
        a = self.abar[t].view(-1, 1, 1, 1)
        return a.sqrt() * x0 + (1 - a).sqrt() * noise


def test_save_sample_grid_sizes_and_pixels(tmp_path):
    x = torch.zeros(10, 1, 8, 8)
    x[3] = 1.0
    img = _png(V.save_sample_grid(x, tmp_path / "g.png", nrow=4))
    # 3 rows of 4 tiles of 8 pixels with 1-pixel gaps, enlarged x4 to >= 32-pixel tiles
    assert img.size == ((4 * 9 + 1) * 4, (3 * 9 + 1) * 4)
    a = np.asarray(img.convert("L"))
    assert a[4 * 1 + 4, 4 * (1 + 3 * 9) + 4] == 255  # inside tile 3: white
    assert a[4 * 1 + 4, 4 * 1 + 4] == 0  # inside tile 0: black
    # NaN becomes black, values are clipped, (N, H, W) and uint8 are accepted
    _png(V.save_sample_grid(torch.full((2, 8, 8), float("nan")), tmp_path / "nan.png"))
    _png(V.save_sample_grid(np.full((2, 3, 8, 8), 200, dtype=np.uint8), tmp_path / "rgb.png"))
    with pytest.raises(ValueError, match="C = 1 or 3"):
        V.save_sample_grid(torch.rand(2, 2, 8, 8), tmp_path / "bad.png")


def test_samples_gif_from_pngs_and_tensors(tmp_path):
    paths = [V.save_sample_grid(torch.rand(16, 1, 8, 8), tmp_path / f"epoch_{i:04d}.png", nrow=4)
             for i in range(1, 4)]
    gif = V.samples_gif(paths, tmp_path / "s.gif")
    assert gif.read_bytes()[:6] == b"GIF89a"
    im = Image.open(gif)
    assert im.n_frames == 3
    gif2 = V.samples_gif([torch.rand(4, 1, 8, 8), torch.rand(9, 1, 8, 8)], tmp_path / "t.gif", labels=["a", "b"])
    assert Image.open(gif2).n_frames == 2
    many = V.samples_gif([torch.rand(1, 1, 8, 8)] * 100, tmp_path / "m.gif", max_frames=10)
    assert Image.open(many).n_frames == 10
    with pytest.raises(ValueError):
        V.samples_gif([], tmp_path / "e.gif")


def test_interpolation_autoencoder_gan(tmp_path):
    torch.manual_seed(0)
    ae = TinyAE()
    xa, xb = torch.rand(2, 1, 8, 8), torch.rand(2, 1, 8, 8)
    imgs, _ = V.interpolation_images(ae, xa, xb, steps=5)
    assert imgs.shape == (2, 5, 1, 8, 8)
    # the ends decode the two codes exactly
    assert torch.allclose(imgs[:, 0], ae.decode(ae.encode(xa)).detach(), atol=1e-6)
    assert torch.allclose(imgs[:, -1], ae.decode(ae.encode(xb)).detach(), atol=1e-6)
    _png(V.plot_interpolation(ae, xa, xb, tmp_path / "ae.png", steps=5))
    gan = TinyGAN()
    g_imgs, how = V.interpolation_images(gan, None, None, steps=4, n=3)
    assert g_imgs.shape == (3, 4, 1, 8, 8) and "slerp" in how
    assert g_imgs.min() >= 0 and g_imgs.max() <= 1
    _png(V.plot_interpolation(TinyGAN(conditional=True), None, None, tmp_path / "cgan.png", steps=4, n=3))
    with pytest.raises(ValueError, match="no latent space"):
        V.interpolation_images(nn.Linear(2, 2), None, None)


def test_latent_scatter_pca_and_2d(tmp_path):
    x, y = torch.rand(60, 1, 8, 8), torch.arange(60) % 10
    _png(V.plot_latent_scatter(TinyAE(latent=5), x, y, tmp_path / "pca.png"))
    _png(V.plot_latent_scatter(TinyAE(latent=2), x, y, tmp_path / "2d.png"))
    z, var = V._pca_2d(np.random.default_rng(0).normal(size=(100, 5)) * [10, 1, 1, 1, 1])
    assert z.shape == (100, 2) and var[0] > 0.8
    with pytest.raises(ValueError, match="encode"):
        V.plot_latent_scatter(TinyGAN(), x, y, tmp_path / "no.png")


def test_reconstructions_and_triples(tmp_path):
    x = torch.rand(8, 1, 8, 8)
    _png(V.plot_reconstructions(TinyAE(), x, tmp_path / "r.png"))
    _png(V.plot_reconstructions(TinyAE(noisy=True), x, tmp_path / "rd.png"))  # 3 rows with the corrupted one
    _png(V.plot_triples(x, 1 - x, x, tmp_path / "t.png"))
    _png(V.plot_triples(x, 1 - x, None, tmp_path / "t2.png"))  # unpaired: no target row


def test_diffusion_process_from_trajectory_and_q_sample(tmp_path):
    traj = {"forward": torch.rand(5, 2, 1, 8, 8), "forward_t": torch.tensor([0, 5, 10, 15, 20]),
            "reverse": torch.rand(5, 2, 1, 8, 8), "reverse_t": torch.tensor([20, 15, 10, 5, 0]),
            "reverse_x0": torch.rand(5, 2, 1, 8, 8)}
    _png(V.plot_diffusion_process(None, tmp_path / "d.png", trajectory=traj, n=2))
    _png(V.plot_diffusion_process(TinyDiffusion(), tmp_path / "q.png", x0=torch.rand(2, 1, 8, 8), num_frames=4))
    with pytest.raises(ValueError, match="x0"):
        V.plot_diffusion_process(TinyDiffusion(), tmp_path / "q2.png")
    with pytest.raises(ValueError, match="not a diffusion model"):
        V.plot_diffusion_process(TinyAE(), tmp_path / "q3.png")


def test_plot_ring(tmp_path):
    angle = 2 * math.pi * torch.arange(8) / 8
    centers = 2 * torch.stack([torch.cos(angle), torch.sin(angle)], 1)
    pts = centers[torch.arange(400) % 8] + 0.02 * torch.randn(400, 2)
    _png(V.plot_ring(pts, centers, tmp_path / "ring.png", std=0.02, real=pts))
    _png(V.plot_ring({"GAN": pts[:50] * 0, "WGAN-GP": pts}, centers, tmp_path / "ring2.png", std=0.02))
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        V.plot_ring(torch.rand(5, 3), centers, tmp_path / "bad.png")


@pytest.mark.parametrize("name", ["vae", "dcgan", "ddpm"])
def test_plots_with_registered_models(name, tmp_path):
    import archlab.models  # noqa: F401
    from archlab.registry import MODELS, create_model

    if name not in MODELS:
        pytest.skip(f"{name} is not registered")
    cfg = MODELS.get(name).tags["config"]
    torch.manual_seed(0)
    model = create_model(name, **{"image_size": 8, **cfg.TINY, "in_channels": 1}).eval()
    x = torch.rand(4, 1, 8, 8)
    if name == "vae":
        _png(V.plot_interpolation(model, x[:2], x[2:], tmp_path / "i.png", steps=4))
        _png(V.plot_latent_scatter(model, x, torch.tensor([0, 1, 2, 3]), tmp_path / "s.png"))
        _png(V.plot_reconstructions(model, x, tmp_path / "r.png"))
    elif name == "dcgan":
        _png(V.plot_interpolation(model, None, None, tmp_path / "i.png", steps=4, n=2))
    else:
        _png(V.plot_diffusion_process(model, tmp_path / "d.png", x0=x[:2], n=2, num_frames=4, steps=4))
        _png(V.plot_interpolation(model, None, None, tmp_path / "i.png", steps=3, n=1, diffusion_steps=3))
