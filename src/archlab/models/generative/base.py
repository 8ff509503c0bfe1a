"""The common interface of archlab's generative methods, and the image range helpers.

Every generative model (GAN, VAE, flow, diffusion, image-to-image) is a :class:`GenerativeMethod`:
an ``nn.Module`` that wraps its networks and whose ``forward`` returns its training losses, so the
engine stays generic (lucidrains' habit). Two tasks train them (``archlab.tasks.generative``):

- ``task = "generative"``: one loss. ``forward(x, y) -> {"loss": ..., <scalar metrics>}`` and the
  :class:`~archlab.tasks.generative.GenerativeTask` minimises ``loss`` with one optimizer.
- ``task = "adversarial"``: two players. The
  :class:`~archlab.tasks.generative.AdversarialTask` alternates ``d_steps`` updates of
  :meth:`GenerativeMethod.discriminator_loss` (calling :meth:`after_discriminator_step` after
  each, e.g. WGAN's weight clipping) with one update of :meth:`GenerativeMethod.generator_loss`,
  each player with its own optimizer built from :meth:`optimizer_settings`. ``forward`` still
  returns ``{"loss_d", "loss_g", "loss" = loss_d + loss_g}`` so a plain backward reaches both
  networks (the registry walk's gradient test).

Data range: the tasks switch off the dataset normalisation (``normalize_inputs = False``), so every
method receives images in [0, 1], float32, ``(B, C, H, W)`` (or raw float features ``(B, D)`` for
tabular data such as the 2-D ring) and maps them to its own working range itself: GANs, DCGAN,
diffusion and Pix2Pix use :func:`to_signed` (x * 2 - 1, matched to a tanh output), and
:meth:`GenerativeMethod.sample` returns images in [0, 1] (:func:`to_unit`, clamped) or raw features.
Labels ``y`` are int64 ``(B,)`` or None.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["GenerativeMethod", "to_signed", "to_unit"]


def to_signed(x: Tensor) -> Tensor:
    """Map images from [0, 1] to [-1, 1] (the range of a tanh output): ``2 x - 1``."""
    return x * 2.0 - 1.0


def to_unit(x: Tensor) -> Tensor:
    """Map images from [-1, 1] back to [0, 1]: ``(x + 1) / 2``, clamped to [0, 1]."""
    return ((x + 1.0) * 0.5).clamp(0.0, 1.0)


class GenerativeMethod(nn.Module):
    """Base class of every generative method (see the module docstring for the contract).

    Class attributes:
        family: the registry family, ``"generative"``.
        task: ``"generative"`` (forward returns ``{"loss", ...}``, one optimizer) or
            ``"adversarial"`` (``discriminator_loss`` / ``generator_loss``, two optimizers).
        conditional: True when ``forward`` and ``sample`` take class labels ``y``.
        has_likelihood: True when :meth:`log_likelihood` exists (VAE: IWAE bound, RealNVP: exact).
        d_steps: adversarial methods: discriminator (critic) updates per generator update.

    Subclasses implement ``forward``, ``sample``, ``data_shape`` and (adversarial) the two losses
    and the two parameter lists; ``example_input`` has a default built from ``self.config``
    (``in_channels`` and ``image_size``, or ``in_features``; ``num_classes`` when conditional).
    """

    family = "generative"
    task: str = "generative"
    conditional: bool = False
    has_likelihood: bool = False
    d_steps: int = 1

    # ---- every method -------------------------------------------------------------------------
    def forward(self, x: Tensor, y: Tensor | None = None) -> dict[str, Tensor]:  # pragma: no cover
        """Training losses on a batch: ``{"loss": scalar, <name>: scalar metric, ...}``.

        Args:
            x: images in [0, 1] ``(B, C, H, W)`` or features ``(B, D)``.
            y: class labels ``(B,)`` int64 (conditional methods), else ignored.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement forward(x, y)")

    def sample(self, n: int, *, y: Tensor | None = None,
               generator: torch.Generator | None = None) -> Tensor:  # pragma: no cover
        """Draw ``n`` samples: images in [0, 1] ``(n, C, H, W)`` or features ``(n, D)``.

        Args:
            n: how many.
            y: conditional methods: class labels ``(n,)``; None draws them uniformly.
            generator: a seeded ``torch.Generator`` for reproducible noise (on the model's device).
        """
        raise NotImplementedError(f"{type(self).__name__} must implement sample(n, y=, generator=)")

    def data_shape(self) -> tuple[int, ...]:
        """What :meth:`sample` returns per item: ``(C, H, W)`` or ``(D,)``, read from ``self.config``.

        Images ``(in_channels, image_size, image_size)``; tabular ``(in_features,)`` when the config
        has no ``image_size`` (or it is None), or when ``in_features`` is not ``C * H * W`` (image
        datasets fill both consistently, tabular ones only ``in_features``).
        """
        cfg = getattr(self, "config", None)
        if cfg is None:
            raise NotImplementedError(f"{type(self).__name__} has no config: override data_shape()")
        in_features = getattr(cfg, "in_features", None)
        image_size = getattr(cfg, "image_size", None)
        if image_size is None:
            return (int(in_features),)
        chw = (int(cfg.in_channels), int(image_size), int(image_size))
        # Image datasets fill in_features = C * H * W too; a different in_features means tabular data.
        if in_features is not None and int(in_features) != chw[0] * chw[1] * chw[2]:
            return (int(in_features),)
        return chw

    def example_input(self, batch_size: int = 2, seed: int = 0) -> tuple[Tensor, ...] | Tensor:
        """A random batch for the registry walk: uniform [0, 1] data (+ labels when conditional)."""
        g = torch.Generator().manual_seed(seed)
        x = torch.rand((batch_size, *self.data_shape()), generator=g)
        if self.conditional:
            num_classes = int(self.config.num_classes)
            y = torch.randint(0, num_classes, (batch_size,), generator=g)
            return x, y
        return x

    @property
    def device(self) -> torch.device:
        """The device of the first parameter (or buffer); CPU for a method with neither."""
        for t in self.parameters():
            return t.device
        for t in self.buffers():
            return t.device
        return torch.device("cpu")

    def sample_labels(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """Conditional methods: ``n`` labels drawn uniformly from ``config.num_classes``."""
        return torch.randint(0, int(self.config.num_classes), (n,), generator=generator,
                             device=self.device)

    # ---- adversarial methods ------------------------------------------------------------------
    def discriminator_loss(self, x: Tensor, y: Tensor | None = None) -> dict[str, Tensor]:  # pragma: no cover
        """The discriminator's (critic's) loss on a real batch; generator output detached."""
        raise NotImplementedError(f"{type(self).__name__} is not adversarial (no discriminator_loss)")

    def generator_loss(self, x: Tensor, y: Tensor | None = None) -> dict[str, Tensor]:  # pragma: no cover
        """The generator's loss (``x`` gives the batch size, labels and, for image-to-image, inputs)."""
        raise NotImplementedError(f"{type(self).__name__} is not adversarial (no generator_loss)")

    def generator_parameters(self) -> list[nn.Parameter]:  # pragma: no cover
        """The parameters the generator optimizer updates."""
        raise NotImplementedError(f"{type(self).__name__} is not adversarial (no generator_parameters)")

    def discriminator_parameters(self) -> list[nn.Parameter]:  # pragma: no cover
        """The parameters the discriminator optimizer updates."""
        raise NotImplementedError(f"{type(self).__name__} is not adversarial (no discriminator_parameters)")

    def after_discriminator_step(self) -> None:
        """Called after each discriminator step (WGAN clips the critic's weights); default no-op."""

    def optimizer_settings(self) -> dict[str, dict[str, Any]]:
        """The paper's optimizers: ``{"generator": {...}, "discriminator": {...}}``.

        Each value holds the optimizer's keyword arguments (``lr``, ``betas``, ``weight_decay``...)
        and optionally ``"name"`` (``"adam"`` when absent; also ``"rmsprop"``, ``"sgd"``, ``"adamw"``).
        Default: Adam 2e-4, betas (0.5, 0.999) for both players (DCGAN's). The run's ``train.lr``
        etc. override these when set explicitly.
        """
        adam = {"name": "adam", "lr": 2e-4, "betas": (0.5, 0.999)}
        return {"generator": dict(adam), "discriminator": dict(adam)}
