"""Generative models (family ``generative``): GANs, VAEs, flows, diffusion, image-to-image.

Importing this package registers every method. :mod:`archlab.models.generative.base` holds the
common interface (:class:`GenerativeMethod`) and the [0, 1] <-> [-1, 1] range helpers.
"""

from archlab.models.generative import (  # noqa: F401  # noqa: F401
    base,  # noqa: F401
    diffusion,
    flow,
    gan,  # noqa: F401
    image2image,
    nets,  # noqa: F401
    vae,
)
