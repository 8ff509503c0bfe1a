"""Autoencoders, VAE and RealNVP: bounds, closed forms, gradients, inverses and Jacobians."""

from __future__ import annotations

import functools
import math

import pytest
import torch

from archlab.models.generative.flow import RealNVP, bits_per_dim  # re-exported from measures
from archlab.models.generative.vae import VAE, Autoencoder, binarize, gaussian_kl, is_binary
from archlab.registry import create_model


def _tiny_vae(**kw) -> VAE:
    torch.manual_seed(0)
    return create_model("vae", image_size=8, latent_dim=4, hidden_dim=32, **kw)


@functools.lru_cache(maxsize=1)
def _digit_images() -> torch.Tensor:
    from archlab.data import load_dataset

    return load_dataset("digits", val_split=0.0).train.x.float() / 255.0  # (N, 1, 8, 8) in [0, 1]


def _digits(n: int = 512) -> torch.Tensor:
    return _digit_images()[:n].clone()


# ---- VAE ----------------------------------------------------------------------------------------


def test_binarize_is_seeded_and_binary() -> None:
    x = torch.rand(4, 1, 8, 8)
    a = binarize(x, torch.Generator().manual_seed(0))
    b = binarize(x, torch.Generator().manual_seed(0))
    assert is_binary(a) and torch.equal(a, b)
    assert not is_binary(x)
    # the Bernoulli mean is the grey level
    big = binarize(torch.full((20000,), 0.3), torch.Generator().manual_seed(1))
    assert abs(big.mean().item() - 0.3) < 0.02


def test_kl_closed_form_matches_monte_carlo() -> None:
    g = torch.Generator().manual_seed(0)
    mu, logvar = torch.randn(3, 4, generator=g), torch.randn(3, 4, generator=g) * 0.5
    eps = torch.randn(100_000, 3, 4, generator=g)
    z = mu + (0.5 * logvar).exp() * eps
    log_q = -0.5 * (eps.pow(2) + logvar + math.log(2 * math.pi)).sum(-1)
    log_p = -0.5 * (z.pow(2) + math.log(2 * math.pi)).sum(-1)
    mc = (log_q - log_p).mean(0)  # (3,)
    torch.testing.assert_close(gaussian_kl(mu, logvar), mc, atol=0.03, rtol=0.01)


def test_reparameterisation_gives_the_encoder_gradients_from_the_reconstruction() -> None:
    model = _tiny_vae().train()
    out = model(torch.rand(8, 1, 8, 8))
    out["recon"].backward()  # the KL is left out: the encoder is reached only through z
    for name, p in model.encoder.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_iwae_bound_is_above_the_elbo_and_grows_with_k() -> None:
    model = _tiny_vae().eval()
    x = binarize(_digits(16), torch.Generator().manual_seed(0))  # (16, 1, 8, 8), binary
    # The ELBO by Monte Carlo: forward on 200 copies of the batch in eval mode (one z per copy).
    reps = 200
    with torch.no_grad():
        elbo = model(x.repeat(reps, 1, 1, 1))["elbo"].item()
        ll = {k: model.log_likelihood(x, num_samples=k).mean().item() for k in (1, 8, 64)}
        # IWAE with K = 1 is an unbiased estimate of the ELBO
        k1 = model.log_likelihood(x.repeat(reps, 1, 1, 1), num_samples=1).mean().item()
    assert abs(k1 - elbo) < 0.5, (k1, elbo)
    assert elbo < ll[8] < ll[64], (elbo, ll)
    assert ll[64] - elbo > 0.2
    # chunking does not change the estimate
    with torch.no_grad():
        a = model.log_likelihood(x, num_samples=64, chunk_size=64)
        b = model.log_likelihood(x, num_samples=64, chunk_size=64)
    torch.testing.assert_close(a, b)


def test_iwae_is_exact_when_the_posterior_is_the_prior() -> None:
    """Decoder blind to z and q(z|x) = p(z): every weight is p(x), so every K gives log p(x) exactly."""
    model = _tiny_vae().eval()
    with torch.no_grad():
        model.encoder.net[-1][-1].weight.zero_()  # mu = 0, log-variance = 0: q = N(0, I)
        model.encoder.net[-1][-1].bias.zero_()
        model.decoder.net[0].weight.zero_()  # the decoder's output no longer depends on z
        x = binarize(torch.rand(4, 1, 8, 8), torch.Generator().manual_seed(0))
        logits = model.decoder(torch.zeros(1, 4))
        exact = -torch.nn.functional.binary_cross_entropy_with_logits(
            logits.expand_as(x), x, reduction="none").flatten(1).sum(1)
        for k in (1, 5, 64):
            torch.testing.assert_close(model.log_likelihood(x, num_samples=k, chunk_size=7), exact)
        torch.testing.assert_close(model(x)["kl"], torch.tensor(0.0))


def test_log_likelihood_binarises_grey_inputs_with_the_eval_seed() -> None:
    model = _tiny_vae().eval()
    x = _digits(8)
    xb = binarize(x, torch.Generator().manual_seed(model.config.eval_seed))
    torch.testing.assert_close(model.log_likelihood(x, num_samples=4), model.log_likelihood(xb, num_samples=4))


def test_eval_forward_is_deterministic_and_training_is_not() -> None:
    model = _tiny_vae()
    x = torch.rand(4, 1, 8, 8)
    model.eval()
    assert torch.equal(model(x)["loss"], model(x)["loss"])
    model.train()
    assert not torch.equal(model(x)["loss"], model(x)["loss"])


def test_beta_weights_only_the_kl() -> None:
    x = torch.rand(4, 1, 8, 8)
    a, b = _tiny_vae().eval(), _tiny_vae(beta=4.0).eval()
    oa, ob = a(x), b(x)
    torch.testing.assert_close(ob["loss"], oa["recon"] + 4.0 * oa["kl"])
    torch.testing.assert_close(ob["elbo"], oa["elbo"])


@pytest.mark.parametrize("size", [8, 16, 28, 32])
def test_conv_vae_sizes(size: int) -> None:
    torch.manual_seed(0)
    model = create_model("conv_vae", image_size=size, latent_dim=3, hidden_dim=16, hidden_channels=4).eval()
    x = torch.rand(2, 1, size, size)
    assert model.encode(x).shape == (2, 3)
    img = model.sample(3, generator=torch.Generator().manual_seed(0))
    assert img.shape == (3, 1, size, size) and img.min() >= 0 and img.max() <= 1
    assert torch.isfinite(model(x)["loss"])


def test_conv_vae_rejects_sizes_that_do_not_halve() -> None:
    with pytest.raises(ValueError, match="arch='mlp'"):
        create_model("conv_vae", image_size=9)


def test_gaussian_likelihood_and_interpolation() -> None:
    model = _tiny_vae(likelihood="gaussian").eval()
    x = torch.rand(2, 1, 8, 8)
    assert torch.isfinite(model(x)["loss"])
    for spherical in (False, True):
        path = model.interpolate(x[0], x[1], steps=5, spherical=spherical)
        assert path.shape == (5, 1, 8, 8)
        torch.testing.assert_close(path[0], model.reconstruct(x[:1])[0], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(path[-1], model.reconstruct(x[1:])[0], atol=1e-5, rtol=1e-5)


def test_wrong_input_shape_says_what_to_do() -> None:
    with pytest.raises(ValueError, match=r"expects images \(B, 1, 8, 8\)"):
        _tiny_vae()(torch.rand(2, 1, 28, 28))


def test_tiny_vae_learns_digits() -> None:
    torch.manual_seed(0)
    x = _digits(512)
    model = create_model("vae", image_size=8, latent_dim=8, hidden_dim=64, activation="relu")
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)

    def val_loss() -> float:
        model.eval()
        with torch.no_grad():
            return model(x[:256])["loss"].item()

    before = val_loss()
    model.train()
    g = torch.Generator().manual_seed(0)
    for _ in range(100):
        batch = x[torch.randint(0, len(x), (64,), generator=g)]
        loss = model(batch)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = val_loss()
    assert after < 0.75 * before, (before, after)


def test_denoising_autoencoder_masks_and_samples() -> None:
    torch.manual_seed(0)
    model = create_model("denoising_autoencoder", image_size=8, latent_dim=3, hidden_dim=16)
    assert isinstance(model, Autoencoder)
    x = torch.ones(64, 1, 8, 8)
    masked = model.corrupt(x, torch.Generator().manual_seed(0))
    assert abs((masked == 0).float().mean().item() - 0.25) < 0.05
    plain = create_model("autoencoder", image_size=8, latent_dim=3, hidden_dim=16)
    assert torch.equal(plain.corrupt(x), x)
    model.train()
    model(torch.rand(32, 1, 8, 8) + 1.0)  # codes move the running statistics
    assert not torch.equal(model.code_mean, torch.zeros(3))
    img = model.eval().sample(4, generator=torch.Generator().manual_seed(0))
    assert img.shape == (4, 1, 8, 8) and 0 <= img.min() and img.max() <= 1


def test_variational_flag_must_fit_the_name() -> None:
    with pytest.raises(ValueError, match="use vae"):
        create_model("autoencoder", variational=True)


# ---- RealNVP ------------------------------------------------------------------------------------


def _tiny_flow(image_size: int = 8, **kw) -> RealNVP:
    torch.manual_seed(0)
    model = create_model("realnvp", image_size=image_size, hidden_channels=8, num_blocks=1, **kw)
    with torch.no_grad():  # couplings far from the identity, so the checks below mean something
        for m in model.modules():
            if hasattr(m, "out") and isinstance(m.out, torch.nn.Conv2d):
                m.out.weight.normal_(0.0, 0.05)
                m.out.bias.normal_(0.0, 0.05)
    return model


@pytest.mark.parametrize("norm", ["batchnorm", "actnorm", "none"])
def test_realnvp_inverse_inverts_forward(norm: str) -> None:
    model = _tiny_flow(num_scales=2, norm=norm)
    x = torch.rand(16, 1, 8, 8)
    model.train()
    model(x)  # batch norm running statistics / act-norm initialisation move off their defaults
    model.eval()
    with torch.no_grad():
        y = model.dequantize(x, torch.Generator().manual_seed(0))
        v, _ = model.preprocess(y)
        z, _ = model.flow_forward(v)
        assert z.shape == (16, 64)
        v2 = model.inverse(z)
        torch.testing.assert_close(v2, v, atol=1e-5, rtol=0)
        torch.testing.assert_close(model.postprocess(v2), y, atol=1e-5, rtol=0)
        assert not torch.allclose(z, v.flatten(1), atol=1e-2)  # not the identity


@pytest.mark.parametrize("norm", ["batchnorm", "actnorm"])
def test_realnvp_log_det_equals_autograd_jacobian(norm: str) -> None:
    model = _tiny_flow(image_size=4, num_scales=1, norm=norm).double()
    model.train()
    model(torch.rand(8, 1, 4, 4, dtype=torch.float64))
    model.eval()
    v = torch.randn(1, 1, 4, 4, dtype=torch.float64)
    _, logdet = model.flow_forward(v)
    jac = torch.autograd.functional.jacobian(lambda t: model.flow_forward(t.view(1, 1, 4, 4))[0].view(16),
                                             v.view(16))  # (16, 16)
    sign, logabsdet = torch.linalg.slogdet(jac)
    assert sign != 0
    torch.testing.assert_close(logdet[0], logabsdet, atol=1e-8, rtol=1e-8)
    assert abs(logabsdet.item()) > 0.1  # a volume change worth checking
    # the preprocessing (logit transform) log-det, diagonal Jacobian
    y = torch.rand(1, 1, 4, 4, dtype=torch.float64)
    _, ld_pre = model.preprocess(y)
    jac_pre = torch.autograd.functional.jacobian(lambda t: model.preprocess(t.view(1, 1, 4, 4))[0].view(16),
                                                 y.view(16))
    torch.testing.assert_close(ld_pre[0], torch.linalg.slogdet(jac_pre)[1])


def test_realnvp_bits_per_dim_convention() -> None:
    assert bits_per_dim(784 * math.log(2.0) * 1.05, 784) == pytest.approx(1.05)
    model = _tiny_flow().eval()
    x = torch.rand(4, 1, 8, 8)
    out = model(x)
    assert out["bpd"].item() == pytest.approx(out["loss"].item() / (64 * math.log(2.0)))
    # log_likelihood (K = 1) is minus forward's NLL: same seeded dequantisation in eval mode
    ll = model.log_likelihood(x, num_samples=1)
    assert -ll.mean().item() == pytest.approx(out["loss"].item(), rel=1e-5)
    # more dequantisation draws: a tighter (larger) bound on average
    assert model.log_likelihood(x, num_samples=16).mean() >= ll.mean() - 0.5
    # discrete convention: a density on [0, 256)^D; uniform on [0, 1)^D in y would be 8 bits/dim
    assert bits_per_dim(64 * math.log(256.0), 64) == pytest.approx(8.0)


def test_realnvp_samples_and_learns() -> None:
    torch.manual_seed(0)
    x = _digits(256)
    model = create_model("realnvp", image_size=8, hidden_channels=8, num_blocks=1, num_scales=1)
    img = model.eval().sample(4, generator=torch.Generator().manual_seed(0))
    assert img.shape == (4, 1, 8, 8) and 0 <= img.min() and img.max() <= 1
    before = model(x)["bpd"].item()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    g = torch.Generator().manual_seed(0)
    for _ in range(25):
        loss = model(x[torch.randint(0, len(x), (32,), generator=g)])["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = model.eval()(x)["bpd"].item()
    assert after < before - 0.5, (before, after)


def test_realnvp_config_errors_say_what_to_do() -> None:
    with pytest.raises(ValueError, match="lower num_scales"):
        create_model("realnvp", image_size=28, num_scales=3)
