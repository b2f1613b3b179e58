"""Safe image decoding: byte and pixel limits (checked from the header, before decoding),
EXIF orientation, the first frame of an animation, transparency flattened onto white, any
mode to 8-bit RGB; every refusal an :class:`~stylesearch.errors.ImageError` with the reason."""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path
from typing import Union

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from ..errors import ImageError, UnsupportedImageTypeError

ImageInput = Union[str, os.PathLike, bytes, Image.Image]  # noqa: UP007 - a runtime alias, valid on 3.10

MAX_FILE_BYTES = 64 * 1024 * 1024
MAX_PIXELS = 60_000_000
ALLOWED_FORMATS = frozenset({"JPEG", "MPO", "PNG", "WEBP", "GIF", "BMP", "TIFF"})
_WHITE = (255, 255, 255)

ImageFile.LOAD_TRUNCATED_IMAGES = False


def describe(source: ImageInput) -> str:
    """How to name an input in a message: its path, or what kind of in-memory image it is."""
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    return "<image bytes>" if isinstance(source, bytes) else "<PIL image>"


def _open(source: ImageInput, max_bytes: int) -> Image.Image:
    if isinstance(source, Image.Image):
        return source
    if isinstance(source, bytes):
        if not source:
            raise ImageError("empty file (0 bytes): upload a JPEG, PNG, WebP, GIF, BMP or TIFF image")
        if len(source) > max_bytes:
            raise ImageError(f"file is {len(source)} bytes, over the {max_bytes}-byte limit: send a smaller image")
        return Image.open(io.BytesIO(source))
    path = Path(source)
    if path.is_dir():
        raise ImageError("is a folder, not an image file")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ImageError(f"cannot read file ({exc.strerror or exc})") from exc
    if size == 0:
        raise ImageError("empty file (0 bytes)")
    if size > max_bytes:
        raise ImageError(f"file is {size} bytes, over the {max_bytes}-byte limit")
    return Image.open(path)


_MAGIC: tuple[tuple[bytes, str, str], ...] = (
    (b"\xff\xd8\xff", "JPEG", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "PNG", "image/png"),
    (b"GIF87a", "GIF", "image/gif"),
    (b"GIF89a", "GIF", "image/gif"),
    (b"BM", "BMP", "image/bmp"),
    (b"II*\x00", "TIFF", "image/tiff"),
    (b"MM\x00*", "TIFF", "image/tiff"),
)


def sniff_image_type(head: bytes) -> str | None:
    """The MIME type an image file's first bytes announce (never its name), or ``None``."""
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return next((mime for magic, _, mime in _MAGIC if head.startswith(magic)), None)


def check_upload(data: bytes, *, max_bytes: int = MAX_FILE_BYTES, max_pixels: int = MAX_PIXELS) -> tuple[str, int, int]:
    """Cheap checks of uploaded bytes before any decoding: size, type from the magic bytes,
    and the pixel count from the header. Returns (MIME type, width, height)."""
    if not data:
        raise ImageError("empty file (0 bytes): upload a JPEG, PNG, WebP, GIF, BMP or TIFF image")
    if len(data) > max_bytes:
        raise ImageError(f"file is {len(data)} bytes, over the {max_bytes}-byte limit: send a smaller image")
    mime = sniff_image_type(data[:16])
    if mime is None:
        raise UnsupportedImageTypeError("not a JPEG, PNG, WebP, GIF, BMP or TIFF image (judged from its bytes, not its name)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data)) as im:
                width, height = im.size
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise ImageError(f"cannot read the image header ({exc}); the file may be truncated or corrupt") from exc
    if width * height > max_pixels:
        raise ImageError(f"image is {width}x{height} pixels, over the {max_pixels}-pixel limit: resize it first")
    return mime, width, height


def _to_rgb(im: Image.Image) -> Image.Image:
    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        arr = np.asarray(im, dtype=np.float64)
        top = 65535.0 if im.mode.startswith("I;16") or arr.max() > 255 else 255.0
        im = Image.fromarray(np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    elif im.mode == "F":
        arr = np.asarray(im, dtype=np.float64)
        im = Image.fromarray(np.clip(arr * 255.0 if arr.max() <= 1.0 else arr, 0, 255).astype(np.uint8), "L")
    if im.mode == "P":
        im = im.convert("RGBA") if "transparency" in im.info else im.convert("RGB")
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = im.convert("RGBA")
        background = Image.new("RGBA", rgba.size, _WHITE + (255,))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return im if im.mode == "RGB" else im.convert("RGB")


def load_image(
    source: ImageInput,
    *,
    max_pixels: int = MAX_PIXELS,
    max_bytes: int = MAX_FILE_BYTES,
    draft_size: int | None = None,
) -> Image.Image:
    """Decode ``source`` (a path, raw bytes or a PIL image) into an 8-bit RGB PIL image.

    ``draft_size`` lets JPEG decoding scale down by 2/4/8 while staying at least that large.
    Raises :class:`ImageError` for anything that is not a safe, decodable image; the message
    gives the reason only (callers say which input it was).
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = _open(source, max_bytes)
            if im.format is not None and im.format not in ALLOWED_FORMATS:
                raise ImageError(f"unsupported image format {im.format}: use JPEG, PNG, WebP, GIF, BMP or TIFF")
            width, height = im.size
            if width < 1 or height < 1:
                raise ImageError("image has no pixels")
            if width * height > max_pixels:
                raise ImageError(
                    f"image declares {width}x{height} pixels, over the {max_pixels}-pixel limit "
                    "(possible decompression bomb): resize it first"
                )
            if getattr(im, "n_frames", 1) > 1:
                im.seek(0)
            if draft_size and im.format == "JPEG":
                im.draft("RGB", (draft_size, draft_size))
            im.load()
            im = ImageOps.exif_transpose(im) or im
            return _to_rgb(im)
    except ImageError:
        raise
    except UnidentifiedImageError as exc:
        raise ImageError("not a recognised image (JPEG, PNG, WebP, GIF, BMP or TIFF)") from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError("too many pixels (possible decompression bomb)") from exc
    except (OSError, SyntaxError, ValueError, EOFError, MemoryError, TypeError) as exc:
        raise ImageError(f"cannot decode ({exc}); the file may be truncated or corrupt") from exc


def resize_hwc(hwc: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 [H, W, 3] → uint8 [3, size, size] channels-last, as :func:`to_tensor` resizes."""
    x = hwc.permute(2, 0, 1).unsqueeze(0)
    if x.shape[-2:] != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return x[0]


def to_tensor(im: Image.Image, size: int) -> torch.Tensor:
    """RGB PIL image → uint8 tensor [3, size, size] in channels-last memory (a view of
    [size, size, 3]); resized with antialiased bilinear filtering, aspect ratio not kept.

    Product photos are framed around the product; squashing keeps all of it, and the style
    statistics are per-position averages that tolerate the change of aspect ratio. torch's
    uint8 resize matches PIL's bilinear filter to within 0.01 grey levels and, measured,
    takes 40% of its time, which matters on CPUs that the backbone already keeps busy.
    """
    return resize_hwc(torch.from_numpy(np.array(im, dtype=np.uint8)), size)  # [H, W, 3]: channels-last strides
