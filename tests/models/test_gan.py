"""GAN, DCGAN, WGAN, WGAN-GP and the conditional GAN: the penalty, the clipping, the conditioning, the sizes."""

from __future__ import annotations

import contextlib

import pytest
import torch
import torch.nn.functional as F

from archlab.models.generative.gan import GAN, GANConfig, gradient_penalty
from archlab.models.generative.nets import (
    DCGANDiscriminator,
    DCGANGenerator,
    MinibatchDiscrimination,
    dcgan_levels,
)
from archlab.registry import create_model

TINY = dict(image_size=8, in_features=64, latent_dim=8, hidden_dim=16, base_channels=8, mbd_kernels=4, mbd_dim=3)
RING = dict(in_features=2, image_size=None, latent_dim=4, hidden_dim=16)
NAMES = ["gan", "gan_ring", "gan_unrolled", "gan_minibatch", "dcgan", "wgan", "wgan_gp", "wgan_gp_ring", "cgan",
         "cdcgan", "cgan_projection"]


def ctx_for(model: GAN, step: int = 0):
    from archlab.tasks.base import StepContext

    def step_fn(opt: torch.optim.Optimizer) -> None:
        opt.step()
        opt.zero_grad(set_to_none=True)

    return StepContext([], lambda loss: loss.backward(), step_fn, step, contextlib.nullcontext)


# ---- the gradient penalty ---------------------------------------------------------------------
def test_gradient_penalty_of_a_linear_critic_is_closed_form() -> None:
    """f(x) = w.x + b has gradient w everywhere: the penalty is (||w|| - 1)^2 for any interpolate."""
    torch.manual_seed(0)
    critic = torch.nn.Linear(6, 1)
    real, fake = torch.randn(5, 6), torch.randn(5, 6)
    gp = gradient_penalty(lambda v: critic(v).squeeze(1), real, fake)
    w = critic.weight.detach().flatten()
    assert torch.allclose(gp, (w.norm() - 1) ** 2, atol=1e-6)
    # The penalty trains the critic: d/dw (||w|| - 1)^2 = 2 (||w|| - 1) w / ||w||.
    (grad_w,) = torch.autograd.grad(gp, critic.weight)
    assert torch.allclose(grad_w.flatten(), 2 * (w.norm() - 1) * w / w.norm(), atol=1e-6)


def test_gradient_penalty_matches_a_hand_computation_on_the_interpolates() -> None:
    """f(x) = sum(x^2) (B, C, H, W): grad at x_hat is 2 x_hat, x_hat = eps real + (1 - eps) fake."""
    torch.manual_seed(1)
    real, fake = torch.randn(4, 1, 3, 3), torch.randn(4, 1, 3, 3)
    eps = torch.rand(4)
    seen = []

    def critic(v: torch.Tensor) -> torch.Tensor:
        seen.append(v.detach().clone())
        return (v ** 2).flatten(1).sum(1)

    gp = gradient_penalty(critic, real, fake, eps)
    x_hat = eps[:, None, None, None] * real + (1 - eps[:, None, None, None]) * fake
    assert torch.allclose(seen[0], x_hat)
    # The same number through torch.autograd.grad by hand:
    x = x_hat.clone().requires_grad_(True)
    (g,) = torch.autograd.grad((x ** 2).flatten(1).sum(1).sum(), x)
    hand = ((g.flatten(1).norm(dim=1) - 1) ** 2).mean()
    closed = ((2 * x_hat.flatten(1).norm(dim=1) - 1) ** 2).mean()
    assert torch.allclose(gp, hand, atol=1e-6) and torch.allclose(gp, closed, atol=1e-5)
    with torch.no_grad():  # validation runs under no_grad: the penalty still works
        assert torch.allclose(gradient_penalty(critic, real, fake, eps), gp)


def test_wgan_gp_critic_loss_includes_lambda_times_the_penalty() -> None:
    model = create_model("wgan_gp", **TINY).eval()
    x = torch.rand(4, 1, 8, 8)
    out = model.discriminator_loss(x)
    assert model.config.gp_weight == 10.0 and "gp" in out
    assert torch.allclose(out["loss"], -out["wasserstein"] + 10.0 * out["gp"], atol=1e-5)
    # The critic has no batch norm (the penalty is per example).
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.discriminator.modules())


# ---- WGAN -------------------------------------------------------------------------------------
def test_wgan_clipping_keeps_critic_weights_in_range_after_a_training_step() -> None:
    from archlab.tasks.generative import AdversarialTask

    torch.manual_seed(0)
    model = create_model("wgan", **TINY)
    with torch.no_grad():
        for p in model.discriminator.parameters():
            p.mul_(100.0)
    task = AdversarialTask(model)
    opt_g, opt_d = task.configure_optimizers(_train_section())
    assert isinstance(opt_d, torch.optim.RMSprop) and opt_d.defaults["lr"] == 5e-5 and opt_d.defaults["momentum"] == 0
    ctx = ctx_for(model)
    ctx.optimizers[:] = [opt_g, opt_d]
    g_before = [p.detach().clone() for p in model.generator_parameters()]
    out = task.training_step((torch.rand(4, 1, 8, 8), torch.zeros(4, dtype=torch.long)), ctx)
    assert all(torch.isfinite(v).all() for v in out.values())
    c = model.config.clip
    assert c == 0.01
    for p in model.discriminator.parameters():
        assert p.abs().max() <= c
    # n_critic = 5: the generator moves only on the 5th step.
    assert all(torch.equal(a, b) for a, b in zip(g_before, model.generator_parameters()))
    ctx.global_step = 4
    task.training_step((torch.rand(4, 1, 8, 8), torch.zeros(4, dtype=torch.long)), ctx)
    assert any(not torch.equal(a, b) for a, b in zip(g_before, model.generator_parameters()))


def _train_section(**kw):
    from archlab.config import TrainSection

    return TrainSection(**kw)


def test_optimizer_settings_are_the_papers_and_train_lr_scales_both() -> None:
    s = create_model("dcgan", **TINY).optimizer_settings()
    assert s["generator"] == {"name": "adam", "lr": 2e-4, "betas": (0.5, 0.999)} == s["discriminator"]
    s = create_model("wgan_gp", **TINY).optimizer_settings()
    assert s["discriminator"] == {"name": "adam", "lr": 1e-4, "betas": (0.0, 0.9)}
    assert create_model("wgan_gp", **TINY).d_steps == 5 and create_model("dcgan", **TINY).d_steps == 1
    from archlab.tasks.generative import AdversarialTask

    model = create_model("gan", **TINY, lr_g=4e-4, lr_d=1e-4)
    opt_g, opt_d = AdversarialTask(model).configure_optimizers(_train_section(lr=1e-2))
    assert opt_d.defaults["lr"] == pytest.approx(1e-2) and opt_g.defaults["lr"] == pytest.approx(4e-2)
    opt_g, opt_d = AdversarialTask(model).configure_optimizers(_train_section())
    assert opt_d.defaults["lr"] == pytest.approx(1e-4) and opt_g.defaults["lr"] == pytest.approx(4e-4)


# ---- losses -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_every_variant_gives_finite_losses_and_samples_in_range(name: str) -> None:
    torch.manual_seed(0)
    model = create_model(name, **TINY)
    x = model.example_input(4)
    out = model(*x) if isinstance(x, tuple) else model(x)
    assert {"loss", "loss_d", "loss_g"} <= set(out) and all(torch.isfinite(v) for v in out.values())
    s = model.eval().sample(6, generator=torch.Generator().manual_seed(0))
    assert s.shape == (6, 1, 8, 8) and s.min() >= 0 and s.max() <= 1


def test_generator_losses_are_the_papers() -> None:
    model = create_model("gan", **TINY)
    d_fake = torch.tensor([-2.0, 0.5, 3.0])
    p = torch.sigmoid(d_fake)
    assert torch.allclose(model._g_term(d_fake), -torch.log(p).mean())  # non-saturating
    model.config.loss = "minimax"
    assert torch.allclose(model._g_term(d_fake), torch.log(1 - p).mean(), atol=1e-6)
    d_real = torch.tensor([1.0, -1.0, 0.0])
    expected = F.binary_cross_entropy_with_logits(d_real, torch.ones(3)) + F.binary_cross_entropy_with_logits(
        d_fake, torch.zeros(3))
    assert torch.allclose(model._d_terms(d_real, d_fake), expected)


def test_tabular_gan_on_the_ring_samples_raw_points() -> None:
    model = create_model("gan_ring", latent_dim=4, hidden_dim=16)
    assert model.data_shape() == (2,)
    assert model.sample(5).shape == (5, 2)
    assert isinstance(model.generator.net.net[-1], torch.nn.Linear)  # no tanh: raw coordinates
    with pytest.raises(ValueError, match="DCGAN networks need image data"):
        create_model("dcgan", **RING)
    assert create_model("wgan_gp", **RING).data_shape() == (2,)  # net="auto": an MLP on tabular data


def test_unrolled_with_zero_step_size_equals_the_plain_generator_loss() -> None:
    """Two code paths of the same number: unrolling with eta = 0 leaves D where it was."""
    plain = create_model("gan", **RING)
    unrolled = create_model("gan", **RING, unroll_steps=3, unroll_lr=0.0)
    unrolled.load_state_dict(plain.state_dict())
    x = torch.randn(8, 2)
    torch.manual_seed(3)
    a = plain.generator_loss(x)["loss"]
    torch.manual_seed(3)
    b = unrolled.generator_loss(x)["loss"]
    assert torch.allclose(a, b, atol=1e-6)
    stepped = create_model("gan", **RING, unroll_steps=3, unroll_lr=0.5)
    stepped.load_state_dict(plain.state_dict())
    torch.manual_seed(3)
    c = stepped.generator_loss(x)["loss"]
    assert not torch.allclose(a, c)
    c.backward()  # through the unrolled steps (second order)
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in stepped.generator_parameters())


def test_minibatch_discrimination_counts_identical_samples() -> None:
    mbd = MinibatchDiscrimination(6, num_kernels=3, kernel_dim=2)
    same = mbd(torch.ones(5, 6))  # every pair at distance 0: o_b = sum_j exp(0) = 5
    assert same.shape == (5, 9) and torch.allclose(same[:, 6:], torch.full((5, 3), 5.0))
    f = torch.randn(7, 6)
    m = (f @ mbd.T).view(7, 3, 2)  # (N, B, C): the paper's sum written out
    o = torch.exp(-(m[:, None] - m[None, :]).abs().sum(-1)).sum(1)  # (N, B)
    assert torch.allclose(mbd(f), torch.cat([f, o], 1), atol=1e-5)
    spread = mbd(torch.randn(5, 6) * 100)
    assert torch.allclose(spread[:, 6:], torch.ones(5, 3), atol=1e-3)  # only the j = i term left


# ---- conditioning -----------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["cgan", "cdcgan", "cgan_projection"])
def test_conditional_gan_uses_the_labels(name: str) -> None:
    torch.manual_seed(0)
    model = create_model(name, **TINY, num_classes=3).eval()
    assert model.conditional
    z = torch.randn(2, model.config.latent_dim)
    a = model.generator(z, torch.tensor([0, 0]))
    b = model.generator(z, torch.tensor([1, 2]))
    assert not torch.allclose(a, b)
    x = torch.rand(2, 1, 8, 8) * 2 - 1
    assert not torch.allclose(model.discriminator(x, torch.tensor([0, 0])), model.discriminator(x, torch.tensor([1, 2])))
    s = model.sample(3, y=torch.tensor([0, 1, 2]), generator=torch.Generator().manual_seed(0))
    assert s.shape == (3, 1, 8, 8)
    with pytest.raises(ValueError, match="needs class labels"):
        model.discriminator_loss(torch.rand(2, 1, 8, 8))
    if name == "cgan_projection":
        assert model.discriminator.proj is not None and model.discriminator.embed is None


# ---- DCGAN sizes ------------------------------------------------------------------------------
@pytest.mark.parametrize("size,channels", [(8, 1), (16, 3), (28, 1), (32, 3)])
def test_dcgan_networks_fit_each_image_size(size: int, channels: int) -> None:
    k, s0 = dcgan_levels(size)
    assert s0 * 2 ** k == size and s0 in (4, 7)
    g = DCGANGenerator(8, channels, size, base_channels=4)
    d = DCGANDiscriminator(channels, size, base_channels=4)
    img = g(torch.randn(3, 8))
    assert img.shape == (3, channels, size, size) and img.abs().max() <= 1
    assert d.features(img).shape == (3, d.out_features)
    model = GAN(GANConfig(in_channels=channels, image_size=size, in_features=channels * size * size, net="dcgan",
                          latent_dim=8, base_channels=4, d_norm="batch"))
    assert model.sample(2).shape == (2, channels, size, size)
