"""Training augmentations that keep style."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from .safe import ImageInput, load_image, to_tensor


def random_resized_crop(im: Image.Image, rng: np.random.Generator, min_scale: float = 0.6) -> Image.Image:
    """A random crop keeping ``min_scale``..1 of the area, aspect ratio 3/4..4/3, mirrored
    with probability ½: augmentations that keep style (colour is left alone, since it is part
    of style)."""
    width, height = im.size
    scale = rng.uniform(min_scale, 1.0)
    ratio = float(np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3))))
    w = int(round(min(width, max(1.0, np.sqrt(scale * ratio) * width))))
    h = int(round(min(height, max(1.0, np.sqrt(scale / ratio) * height))))
    left = int(rng.integers(0, width - w + 1))
    top = int(rng.integers(0, height - h + 1))
    out = im.crop((left, top, left + w, top + h))
    return out.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if rng.random() < 0.5 else out


def load_augmented(source: ImageInput, size: int, rng: np.random.Generator) -> torch.Tensor:
    """:func:`load_image`, :func:`random_resized_crop`, then :func:`to_tensor`: uint8 [3, size, size]."""
    return to_tensor(random_resized_crop(load_image(source, draft_size=size), rng), size)
