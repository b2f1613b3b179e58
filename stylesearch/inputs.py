"""The facade's input shaping: one image or many, one value for all or one per image, the
name and default id of an input."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from PIL import Image

from .errors import ConfigError
from .images import ImageInput


def describe_input(image: ImageInput, position: int) -> str:
    """An input's name in an answer: its path, or its place in the request."""
    if isinstance(image, (str, os.PathLike)):
        return str(image)
    return f"<image {position + 1}>"


def as_batch(images: Any) -> tuple[bool, list[ImageInput]]:
    """(whether one image was given, the images as a list); a list must not be empty."""
    if isinstance(images, (str, os.PathLike, bytes, Image.Image)):
        return True, [images]
    batch = list(images)
    if not batch:
        raise ConfigError("no images given")
    return False, batch


def per_item(value: Any, n: int, what: str) -> list[Any]:
    """One value for all ``n`` images, or one per image."""
    if value is None or isinstance(value, (str, Mapping)):
        return [value] * n
    values = list(value)
    if len(values) != n:
        raise ConfigError(f"{len(values)} {what} for {n} images: give one for all or one per image")
    return values


def default_id(image: ImageInput) -> str:
    """An item id for an image added without one: its file's stem, or a digest of its bytes."""
    if isinstance(image, (str, os.PathLike)):
        return Path(image).stem
    data = image if isinstance(image, bytes) else image.tobytes()
    return "img-" + hashlib.sha1(data).hexdigest()[:12]
