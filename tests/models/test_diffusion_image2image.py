"""DDPM (forward process, schedules, samplers, U-Net) and Pix2Pix / CycleGAN (losses by hand, image pool)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from archlab.models.generative.base import to_signed
from archlab.models.generative.diffusion import (
    DDPM,
    DDPMConfig,
    UNet,
    cosine_alpha_bar,
    cosine_betas,
    linear_betas,
)
from archlab.models.generative.image2image import (
    CycleGAN,
    CycleGANConfig,
    ImagePool,
    Pix2Pix,
    Pix2PixConfig,
    ResnetGenerator,
)
from archlab.registry import create_model


def tiny_ddpm(**overrides) -> DDPM:
    torch.manual_seed(0)
    kw = {**DDPMConfig.TINY, **overrides}
    return DDPM(DDPMConfig(**kw))


# --------------------------------------------------------------------------- DDPM: forward process

def test_q_sample_is_the_closed_form() -> None:
    model = tiny_ddpm(timesteps=1000)
    g = torch.Generator().manual_seed(0)
    x0 = torch.rand(5, 1, 8, 8, generator=g) * 2 - 1
    noise = torch.randn(5, 1, 8, 8, generator=g)
    t = torch.tensor([0, 1, 250, 998, 999])
    abar = torch.cumprod(1 - linear_betas(1000), 0)[t].reshape(-1, 1, 1, 1)  # float64, independent of the model
    expected = abar.sqrt() * x0.double() + (1 - abar).sqrt() * noise.double()
    torch.testing.assert_close(model.q_sample(x0, t, noise).double(), expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_single_steps_match_the_closed_form_in_distribution(schedule: str) -> None:
    """t applications of q(x_t | x_{t-1}) give mean sqrt(abar_t) x0 and variance 1 - abar_t (Ho eq. 4)."""
    model = tiny_ddpm(timesteps=200, schedule=schedule)
    g = torch.Generator().manual_seed(1)
    N = 20000
    x0 = torch.tensor([-1.0, -0.3, 0.4, 1.0]).reshape(1, 1, 2, 2)
    x = x0.expand(N, 1, 2, 2).clone()
    for t_stop in (10, 100, 200):
        x = x0.expand(N, 1, 2, 2).clone()
        for t in range(t_stop):
            x = model.q_step(x, torch.full((N,), t), torch.randn(x.shape, generator=g))
        abar = model.alphas_cumprod[t_stop - 1].double()
        mean, var = x.double().mean(0), x.double().var(0)
        torch.testing.assert_close(mean, abar.sqrt() * x0[0].double(), atol=0.03, rtol=0)
        torch.testing.assert_close(var, (1 - abar).expand_as(var), atol=0.03, rtol=0.03)
        # and the closed form itself, drawn directly, has the same moments
        direct = model.q_sample(x0.expand(N, 1, 2, 2), torch.full((N,), t_stop - 1),
                                torch.randn(N, 1, 2, 2, generator=g)).double()
        torch.testing.assert_close(direct.mean(0), mean, atol=0.04, rtol=0)


def test_schedules() -> None:
    T = 1000
    lin = linear_betas(T)
    assert lin[0].item() == pytest.approx(1e-4) and lin[-1].item() == pytest.approx(0.02)
    abar_lin = torch.cumprod(1 - lin, 0)
    cos_b = cosine_betas(T)
    abar_cos = torch.cumprod(1 - cos_b, 0)
    for abar in (abar_lin, abar_cos):
        assert (abar[1:] < abar[:-1]).all(), "alpha_bar must decrease strictly"
        assert 0 < abar[-1] < 1e-4 and abar[0] > 0.999
    # cosine (Nichol & Dhariwal eq. 17): abar_0 = 1, abar_T = 0, betas clipped at 0.999 (only the last ones)
    raw = cosine_alpha_bar(T)
    assert raw[0].item() == 1.0 and raw[-1].item() == pytest.approx(0.0, abs=1e-12)
    assert cos_b.max().item() == pytest.approx(0.999) and (cos_b[:-5] < 0.999).all()
    torch.testing.assert_close(abar_cos[:-1], raw[1:-1])  # unclipped steps: abar_t = f(t) / f(0) exactly
    # s = 0.008 makes sqrt(beta_1) a little smaller than the pixel bin width 2/255 (their section 3.2)
    assert math.sqrt(cos_b[0].item()) < 2 / 255
    # the cosine schedule destroys information more slowly than the linear one in the middle
    assert abar_cos[T // 2] > abar_lin[T // 2]
    assert abar_cos[T // 2 - 1].item() == pytest.approx(  # index T/2 - 1 is paper step t = T/2
        math.cos((0.5 + 0.008) / 1.008 * math.pi / 2) ** 2 / math.cos(0.008 / 1.008 * math.pi / 2) ** 2, rel=1e-6)
    model = tiny_ddpm(timesteps=T, schedule="cosine")
    torch.testing.assert_close(model.alphas_cumprod, abar_cos.float())


# --------------------------------------------------------------------------- DDPM: samplers, network, loss

def test_ddim_eta0_all_steps_is_deterministic() -> None:
    model = tiny_ddpm().eval()
    T = model.timesteps
    x_T = torch.randn(3, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    a = model.sample(3, steps=T, method="ddim", eta=0.0, noise=x_T, generator=torch.Generator().manual_seed(1))
    b = model.sample(3, steps=T, method="ddim", eta=0.0, noise=x_T, generator=torch.Generator().manual_seed(2))
    assert torch.equal(a, b)
    c = model.sample(3, steps=T, method="ddim", eta=1.0, noise=x_T, generator=torch.Generator().manual_seed(1))
    d = model.sample(3, steps=T, method="ddim", eta=1.0, noise=x_T, generator=torch.Generator().manual_seed(2))
    assert not torch.allclose(c, d)
    assert a.shape == (3, 1, 8, 8) and 0 <= a.min() and a.max() <= 1


def test_ancestral_sampler_is_algorithm_2() -> None:
    """Full chain, no clipping, sigma^2 = beta: our x0_hat/posterior form equals Ho's Algorithm 2 line by line."""
    model = tiny_ddpm().eval()
    T, n = model.timesteps, 2
    ours = model.sample(n, method="ddpm", clip_denoised=False, generator=torch.Generator().manual_seed(3))
    g = torch.Generator().manual_seed(3)
    betas = model.betas
    alphas, abar = 1 - betas, model.alphas_cumprod
    x = torch.randn(n, 1, 8, 8, generator=g)
    with torch.no_grad():
        for t in reversed(range(T)):
            z = torch.randn(x.shape, generator=g) if t > 0 else torch.zeros_like(x)
            eps = model.unet(x, torch.full((n,), t))
            x = (x - betas[t] / (1 - abar[t]).sqrt() * eps) / alphas[t].sqrt() + betas[t].sqrt() * z
    torch.testing.assert_close(ours, ((x + 1) / 2).clamp(0, 1), atol=1e-4, rtol=1e-4)


def test_ddim_eta1_is_ddpm_with_posterior_variance() -> None:
    model = tiny_ddpm(variance="posterior").eval()
    a = model.sample(2, steps=7, method="ddim", eta=1.0, clip_denoised=False,
                     generator=torch.Generator().manual_seed(4))
    b = model.sample(2, steps=7, method="ddpm", clip_denoised=False, generator=torch.Generator().manual_seed(4))
    torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


class _ConstantEps(torch.nn.Module):
    """A 'network' predicting eps = c everywhere: at large t, x0_hat leaves [-1, 1] and the clamp acts."""

    def __init__(self, c: float) -> None:
        super().__init__()
        self.c = c

    def forward(self, x, t):
        return torch.full_like(x, self.c)


def test_clamped_ddim_uses_the_noise_of_the_clamped_x0() -> None:
    """DDIM (eta 0) with clip_denoised: after clamping x0_hat, eps is recomputed from x_t and the clamped x_0
    (hand computation of every step of a 3-step chain); mixing the clamped x_0 with the raw eps differs."""
    model = tiny_ddpm(timesteps=1000).eval()
    model.unet = _ConstantEps(0.5)
    x_T = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(5))
    seq = model.sampling_timesteps(3)  # [0, 500, 999]
    frames: list[torch.Tensor] = []
    with torch.no_grad():
        model._reverse(x_T.clone(), seq, method="ddim", eta=0.0, clip=True, generator=None,
                       callback=lambda i, x, x0: frames.append(x.clone()))
    abar = model.alphas_cumprod.double()
    x, raw = x_T.double(), x_T.double()
    hand, mixed = [], []
    for i in reversed(range(len(seq))):
        a_t = abar[int(seq[i])]
        a_prev = abar[int(seq[i - 1])] if i > 0 else torch.tensor(1.0, dtype=torch.float64)
        x0 = ((x - 0.5 * (1 - a_t).sqrt()) / a_t.sqrt()).clamp(-1, 1)
        eps = (x - a_t.sqrt() * x0) / (1 - a_t).sqrt()
        x = a_prev.sqrt() * x0 + (1 - a_prev).sqrt() * eps
        hand.append(x.float())
        x0_raw = ((raw - 0.5 * (1 - a_t).sqrt()) / a_t.sqrt()).clamp(-1, 1)
        raw = a_prev.sqrt() * x0_raw + (1 - a_prev).sqrt() * torch.full_like(raw, 0.5)
        mixed.append(raw.float())
    assert len(frames) == 3
    for ours, ref in zip(frames, hand):
        torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(frames[0], mixed[0], atol=1e-2)  # the first step differs from the raw-eps mix


def test_sampling_timesteps() -> None:
    model = tiny_ddpm(timesteps=1000)
    assert model.sampling_timesteps().tolist() == list(range(1000))
    seq = model.sampling_timesteps(50)
    assert len(seq) == 50 and seq[0] == 0 and seq[-1] == 999 and (seq[1:] > seq[:-1]).all()
    assert model.sampling_timesteps(1).tolist() == [999]
    with pytest.raises(ValueError, match="steps must be in"):
        model.sampling_timesteps(1001)


@pytest.mark.parametrize("size", [8, 16, 28, 32])
def test_unet_output_shape_is_input_shape(size: int) -> None:
    torch.manual_seed(0)
    for mults in ((1, 2, 2), (1, 2, 2, 2)):
        net = UNet(in_channels=3, base_channels=8, channel_mults=mults, num_res_blocks=1, num_groups=4)
        x = torch.randn(2, 3, size, size)
        assert net(x, torch.tensor([0, 999])).shape == x.shape


def test_ddpm_loss_and_zero_init() -> None:
    model = tiny_ddpm(zero_init=True)
    x = torch.rand(64, 1, 8, 8)
    out = model.eval()(x)
    # the zero-initialised output predicts eps = 0, so the loss is E[eps^2] = 1
    assert out["loss"].item() == pytest.approx(1.0, abs=0.1)
    assert torch.equal(model(x)["loss"], out["loss"])  # eval: the same seeded draws each call
    model.train()
    assert not torch.equal(model(x)["loss"], model(x)["loss"])
    with pytest.raises(ValueError, match=r"expects images \(B, 1, H, W\)"):
        model(torch.rand(2, 3, 8, 8))


def test_trajectory() -> None:
    model = tiny_ddpm().eval()
    x0 = torch.rand(2, 1, 8, 8)
    tr = model.trajectory(x0, n=3, num_frames=5, generator=torch.Generator().manual_seed(0))
    assert tr["forward"].shape == (5, 2, 1, 8, 8) and tr["reverse"].shape == (5, 3, 1, 8, 8)
    assert tr["reverse_x0"].shape == (5, 3, 1, 8, 8)
    assert tr["forward_t"].tolist() == [0, 5, 10, 15, 20] and tr["reverse_t"].tolist() == [20, 15, 10, 5, 0]
    torch.testing.assert_close(tr["forward"][0], x0)
    final = model.sample(3, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(tr["reverse"][-1], final)
    assert ((tr["forward"] >= 0) & (tr["forward"] <= 1)).all()


# --------------------------------------------------------------------------- Pix2Pix

def tiny_pix2pix(**overrides) -> Pix2Pix:
    torch.manual_seed(0)
    return Pix2Pix(Pix2PixConfig(**{**Pix2PixConfig.TINY, **overrides}))


def test_pix2pix_losses_by_hand() -> None:
    model = tiny_pix2pix().eval()  # no dropout, running statistics: deterministic
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(3, 1, 8, 8, generator=g), torch.rand(3, 1, 8, 8, generator=g)
    with torch.no_grad():
        out = model.generator_loss(x, y)
        fake01 = model.translate(x)  # (3, 1, 8, 8) in [0, 1]
        logits = model.discriminator(torch.cat([to_signed(x), to_signed(fake01)], 1))
        gan = F.softplus(-logits).mean()  # -log sigmoid(l): BCE against "real"
        l1 = 2 * (fake01 - y).abs().mean()  # the L1 term is taken in the [-1, 1] range
        torch.testing.assert_close(out["loss"], gan + 100 * l1, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(out["l1"], l1, atol=1e-6, rtol=1e-5)
        d = model.discriminator_loss(x, y)
        real_logits = model.discriminator(torch.cat([to_signed(x), to_signed(y)], 1))
        expected_d = 0.5 * (F.softplus(-real_logits).mean() + F.softplus(logits).mean())
        torch.testing.assert_close(d["loss"], expected_d, atol=1e-5, rtol=1e-5)
        forward = model(x, y)
        torch.testing.assert_close(forward["loss_g"], out["loss"])
        torch.testing.assert_close(forward["loss_d"], d["loss"])
    assert model.optimizer_settings()["generator"] == {"name": "adam", "lr": 2e-4, "betas": (0.5, 0.999)}


@pytest.mark.parametrize("size", [8, 16, 28, 32])
def test_pix2pix_shapes(size: int) -> None:
    model = tiny_pix2pix(image_size=size, out_channels=3).eval()
    x = torch.rand(2, 1, size, size)
    assert model.translate(x).shape == (2, 3, size, size)
    assert model.padded_size == 2 ** math.ceil(math.log2(size))


def test_pix2pix_train_mode_inference_keeps_dropout() -> None:
    model = tiny_pix2pix(train_mode_inference=True).eval()
    x = torch.rand(4, 1, 8, 8)
    with torch.no_grad():
        assert not torch.equal(model.translate(x), model.translate(x))  # the paper's test-time dropout
    assert not any(isinstance(m, nn.BatchNorm2d) and m.track_running_stats for m in model.generator.modules())


def test_image_to_image_errors() -> None:
    model = tiny_pix2pix()
    with pytest.raises(ValueError, match="needs image batches"):
        model.generator_loss(torch.rand(2, 1, 8, 8), torch.tensor([1, 2]))
    with pytest.raises(NotImplementedError, match="translate"):
        model.sample(4)
    with pytest.raises(ValueError, match="divisible by 4"):
        CycleGANConfig(image_size=30)


# --------------------------------------------------------------------------- CycleGAN

class Scale(nn.Module):
    def __init__(self, k: float) -> None:
        super().__init__()
        self.k = k

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.k * x


def tiny_cyclegan(**overrides) -> CycleGAN:
    torch.manual_seed(0)
    return CycleGAN(CycleGANConfig(**{**CycleGANConfig.TINY, **overrides}))


def test_cyclegan_cycle_and_identity_by_hand() -> None:
    model = tiny_cyclegan().eval()
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(2, 1, 8, 8, generator=g), torch.rand(2, 1, 8, 8, generator=g)
    a, b = to_signed(x), to_signed(y)
    with torch.no_grad():
        # identity generators: no cycle or identity loss; the GAN terms are the discriminators' on the inputs
        model.g_ab, model.g_ba = nn.Identity(), nn.Identity()
        out = model.generator_loss(x, y)
        assert out["cycle"].item() == 0 and out["identity"].item() == 0
        gan = ((model.d_b(a) - 1) ** 2).mean() + ((model.d_a(b) - 1) ** 2).mean()
        torch.testing.assert_close(out["loss"], gan)
        # G = -x, F = x / 2: cycle = mean|-a/2 - a| + mean|-b/2 - b|, identity = mean|-b - b| + mean|a/2 - a|
        model.g_ab, model.g_ba = Scale(-1.0), Scale(0.5)
        out = model.generator_loss(x, y)
        cycle = 1.5 * a.abs().mean() + 1.5 * b.abs().mean()
        identity = 2 * b.abs().mean() + 0.5 * a.abs().mean()
        torch.testing.assert_close(out["cycle"], cycle)
        torch.testing.assert_close(out["identity"], identity)
        gan = ((model.d_b(-a) - 1) ** 2).mean() + ((model.d_a(0.5 * b) - 1) ** 2).mean()
        torch.testing.assert_close(out["loss"], gan + 10 * cycle + 5 * identity)


def test_cyclegan_discriminator_uses_the_pool_in_training() -> None:
    model = tiny_cyclegan()
    x, y = torch.rand(3, 1, 8, 8), torch.rand(3, 1, 8, 8)
    model.eval().discriminator_loss(x, y)
    assert len(model.pool_a.images) == 0
    out = model.train().discriminator_loss(x, y)
    assert len(model.pool_a.images) == 3 and len(model.pool_b.images) == 3
    assert set(out) == {"loss", "loss_d_a", "loss_d_b"}
    assert {n for n, _ in model.named_parameters()} >= {n for n, _ in model.d_a.named_parameters(prefix="d_a")}


@pytest.mark.parametrize("size", [8, 16, 28, 32])
def test_resnet_generator_shape(size: int) -> None:
    torch.manual_seed(0)
    net = ResnetGenerator(3, base_channels=4, num_res_blocks=1)
    x = torch.randn(2, 3, size, size)
    assert net(x).shape == x.shape


def test_image_pool_returns_stored_images_half_the_time_once_full() -> None:
    pool = ImagePool(50)
    g = torch.Generator().manual_seed(0)
    first = torch.arange(50, dtype=torch.float32).reshape(50, 1, 1, 1)  # image i holds the value i
    assert torch.equal(pool.query(first, generator=g), first)  # filling: everything passes through
    stored_values = set(range(50))
    swapped, total = 0, 0
    for k in range(40):
        new = (1000 + 100 * k + torch.arange(100, dtype=torch.float32)).reshape(100, 1, 1, 1)
        before = {float(im) for im in pool.images}
        out = pool.query(new, generator=g)
        assert out.shape == new.shape
        from_pool = out.flatten() != new.flatten()
        assert all(float(v) in before or float(v) in set(new.flatten().tolist()) for v in out.flatten())
        swapped += int(from_pool.sum())
        total += 100
        assert len(pool.images) == 50
    assert 0.46 < swapped / total < 0.54
    assert stored_values.isdisjoint({float(im) for im in pool.images})  # the first images have been replaced
    assert torch.equal(ImagePool(0).query(first), first)


def test_registered_models_build() -> None:
    for name in ("ddpm", "pix2pix", "cyclegan"):
        model = create_model(name, image_size=8, in_channels=1)
        assert model.family == "generative"
    assert create_model("pix2pix").task == "adversarial" and create_model("ddpm").task == "generative"
