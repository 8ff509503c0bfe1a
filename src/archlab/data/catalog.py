"""Imports every module that registers datasets, so ``archlab.registry.DATASETS`` is complete.

The registry imports this module the first time it is read. A dataset loader has the signature
``fn(root: Path, download: bool = True, **options) -> DataBundle``; its keyword options are what
``load_dataset(name, **options)`` and the config's ``data.options`` may pass.
"""

from __future__ import annotations

from archlab.data import (  # noqa: F401  (imported for their registrations)
    embedded,
    generative_data,
    graph_datasets,
    image_folder,
    series,
    text_datasets,
    vision,
)
