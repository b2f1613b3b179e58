"""The input size a catalog gets when none is given (``EmbedConfig.image_size`` 0): read from
its photos' sizes, since a larger input only pays where the photos carry more detail.

Chosen on validation splits carved from the shared domains' ``train`` photos
(benchmarks/sweep_untrained.py, RESULTS 2026-12-04 third session): interior photos (median
short side 236 px) gain 1–3 points of kNN macro-F1 at 160 px over 128 (224 px gains less);
fashion (60 × 80 px) and architecture (128 px) photos are no larger than 128 px, where a larger
input is only an upscaled copy that costs time.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
from PIL import Image

from ..config import DEFAULT_IMAGE_SIZE, EmbedConfig

log = logging.getLogger(__name__)

LARGE_PHOTOS = 200  # median short side (px) from which a catalog's photos count as large
LARGE_PHOTO_SIZE = 160  # the input size for them
SAMPLE = 200  # photos whose headers are read (seeded)


def median_short_side(paths: Sequence[str | Path], seed: int = 0) -> float | None:
    """The median short side of a seeded sample of ``paths`` (headers only), or ``None`` when
    none can be read."""
    picks = np.random.default_rng(seed).permutation(len(paths))[:SAMPLE]
    sides = []
    for i in sorted(picks.tolist()):
        try:
            with Image.open(paths[i]) as image:
                sides.append(min(image.size))
        except Exception:  # noqa: BLE001 - an unreadable photo is reported by the decoder, not here
            continue
    return float(np.median(sides)) if sides else None


def choose_image_size(paths: Sequence[str | Path]) -> int:
    side = median_short_side(paths)
    return LARGE_PHOTO_SIZE if side is not None and side >= LARGE_PHOTOS else DEFAULT_IMAGE_SIZE


def resolve_image_size(config: EmbedConfig, paths: Sequence[str | Path]) -> EmbedConfig:
    """``config`` with its input size chosen from ``paths`` when it says 0 (auto)."""
    if config.image_size:
        return config
    size = choose_image_size(paths)
    log.info("input size %d px, chosen from the catalog's photos (give --image-size to choose)", size)
    return replace(config, image_size=size)
