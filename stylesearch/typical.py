"""What a typical pair of this catalog looks like to each style block — the yardstick an
explanation measures a match against (:func:`stylesearch.model.explain.block_reference`).
Made once per generation from a seeded sample of its photos and kept in the snapshot's cache."""

from __future__ import annotations

import numpy as np
import torch

from .catalog import path_of
from .errors import StyleSearchError
from .images import load_tensor
from .index import Snapshot
from .model.embed import Embedder
from .model.explain import REFERENCE_PHOTOS, block_reference


def catalog_reference(embedder: Embedder, snapshot: Snapshot) -> np.ndarray | None:
    """The per-block cosines of every pair of up to :data:`REFERENCE_PHOTOS` catalog photos
    (seeded), sorted per block; ``None`` when fewer than 3 of them can be read."""
    if "block_reference" not in snapshot.cache:
        vids = snapshot.meta.vids()
        pick = np.sort(np.random.default_rng(0).choice(len(vids), size=min(REFERENCE_PHOTOS, len(vids)), replace=False))
        images = []
        for record in snapshot.meta.by_vids(vids[pick].tolist()).values():
            try:
                images.append(load_tensor(path_of(record.path), embedder.config.image_size))
            except (StyleSearchError, OSError):
                continue  # a photo gone since it was indexed: the others make the yardstick
        snapshot.cache["block_reference"] = block_reference(embedder, torch.stack(images)) if len(images) >= 3 else None
    return snapshot.cache["block_reference"]
