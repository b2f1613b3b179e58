"""Safe image decoding and the tensors the model reads.

Every image goes through :func:`load_image`: a byte limit, a pixel limit checked from the
header *before* decoding (decompression bombs), EXIF orientation, the first frame of an
animation, transparency flattened onto white, and any mode converted to 8-bit RGB. Anything it
cannot do raises :class:`~stylesearch.errors.ImageError` with the reason. Two fast paths take
plain JPEGs that pass the same limits (:func:`jpeg_frame` reads their header) to libjpeg
directly, to the same pixels: small ones on the CPU (:func:`load_tensor`) and, on a GPU,
batches for nvJPEG (:func:`read_plain_jpeg`, :func:`decode_jpegs`).
"""

from __future__ import annotations

import hashlib
import io
import os
import struct
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from .errors import ConfigError, ImageError, UnsupportedImageTypeError

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


def to_tensor(im: Image.Image, size: int) -> torch.Tensor:
    """RGB PIL image → uint8 tensor [3, size, size] in channels-last memory (a view of
    [size, size, 3]); resized with antialiased bilinear filtering, aspect ratio not kept.

    Product photos are framed around the product; squashing keeps all of it, and the style
    statistics are per-position averages that tolerate the change of aspect ratio. torch's
    uint8 resize matches PIL's bilinear filter to within 0.01 grey levels and, measured,
    takes 40% of its time, which matters on CPUs that the backbone already keeps busy.
    """
    return _resized(torch.from_numpy(np.array(im, dtype=np.uint8)), size)  # [H, W, 3]: channels-last strides


def load_tensor(source: ImageInput, size: int) -> torch.Tensor:
    """:func:`load_image` then :func:`to_tensor`: uint8 [3, size, size].

    A small plain JPEG (:func:`small_plain_jpeg`, most catalog thumbnails) is decoded by
    torchvision's libjpeg-turbo instead, to the same pixels: without PIL's header parsing in
    Python, which holds the GIL, decoding threads run in parallel (measured on 2 cores: 0.33
    against 0.66 ms per 60×80 photo, resize included). Anything it refuses goes through
    :func:`load_image` — given the bytes already read, not the file to read again — which
    decodes it or says why not."""
    data = _read_within(source, MAX_FILE_BYTES)
    if data is None:  # a PIL image, or a file load_image will explain (empty, too large, unreadable)
        return to_tensor(load_image(source, draft_size=size), size)
    if small_plain_jpeg(data, size) is not None:
        from torchvision.io import ImageReadMode, decode_jpeg

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # torchvision 0.29+ points to TorchCodec; libjpeg's notes
                hwc = decode_jpeg(
                    torch.frombuffer(bytearray(data), dtype=torch.uint8), mode=ImageReadMode.RGB, apply_exif_orientation=True
                ).permute(1, 2, 0)
        except (RuntimeError, ValueError):
            pass
        else:
            return _resized(hwc.contiguous(), size)
    return to_tensor(load_image(data, draft_size=size), size)


@dataclass(frozen=True)
class JpegFrame:
    """What a JPEG's markers before its first scan say: the size, bits per sample, colour
    components, whether it has an EXIF block (which may rotate it) and whether it is a
    multi-picture file (MPO: stereo or several pictures in one)."""

    width: int
    height: int
    bits: int
    components: int
    exif: bool
    multi: bool

    def plain(self, max_pixels: int = MAX_PIXELS) -> bool:
        """One 8-bit greyscale or YCbCr picture within the pixel limit: what libjpeg and
        nvJPEG decode as is."""
        return self.bits == 8 and self.components in (1, 3) and not self.multi and 0 < self.width * self.height <= max_pixels


def jpeg_frame(data: bytes) -> JpegFrame | None:
    """Walk a JPEG's marker segments up to its first scan (SOS), in Python but without PIL's
    per-file setup (microseconds, not PIL's ~0.2 ms); ``None`` when they do not parse, or
    there is not exactly one frame header (SOFn) before the scan."""
    pos, exif, multi = 2, False, False
    frame: tuple[int, ...] | None = None
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        if marker == 0xDA:
            return None if frame is None else JpegFrame(*frame, exif, multi)
        if length < 2 or marker in (0x01, 0xD8, 0xD9) or 0xD0 <= marker <= 0xD7 or pos + 2 + length > len(data):
            return None
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            if frame is not None or length < 8:
                return None
            height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
            frame = (width, height, data[pos + 4], data[pos + 9])
        exif = exif or (marker == 0xE1 and data[pos + 4 : pos + 10] == b"Exif\x00\x00")
        multi = multi or (marker == 0xE2 and data[pos + 4 : pos + 8] == b"MPF\x00")
        pos += 2 + length
    return None


def _read_within(source: ImageInput, max_bytes: int) -> bytes | None:
    """The bytes of a path or bytes source of 1 to ``max_bytes`` bytes; ``None`` for a PIL
    image, or a file that is empty, too large or unreadable (:func:`load_image` says which)."""
    if isinstance(source, Image.Image):
        return None
    if isinstance(source, bytes):
        return source if 0 < len(source) <= max_bytes else None
    try:
        path = Path(source)
        return path.read_bytes() if 0 < path.stat().st_size <= max_bytes else None  # a folder: OSError
    except OSError:
        return None


def _plain_jpeg(data: bytes | None, max_pixels: int = MAX_PIXELS) -> JpegFrame | None:
    """The frame of a complete (ends with EOI, trailing zero padding allowed) plain JPEG
    (:meth:`JpegFrame.plain`), else ``None``."""
    if not data or not data.startswith(b"\xff\xd8\xff") or not data[-4096:].rstrip(b"\x00").endswith(b"\xff\xd9"):
        return None
    frame = jpeg_frame(data)
    return frame if frame is not None and frame.plain(max_pixels) else None


def small_plain_jpeg(source: ImageInput, size: int, *, max_bytes: int = MAX_FILE_BYTES) -> bytes | None:
    """The bytes of a JPEG (a path or bytes) that :func:`load_tensor` may hand to libjpeg as
    they are: complete (ends with EOI), 8-bit greyscale or YCbCr, within the byte and pixel
    limits, and too small for scaled decoding to help (``Image.draft`` halves an image only
    when both sides are at least twice ``size``: larger photos decode faster through PIL).
    ``None`` for anything else. Reads the header only, never the pixels."""
    data = _read_within(source, max_bytes)
    frame = _plain_jpeg(data)
    if frame is None or (frame.width >= 2 * size and frame.height >= 2 * size):
        return None
    return data


def _resized(hwc: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 [H, W, 3] → uint8 [3, size, size] channels-last, as :func:`to_tensor` resizes."""
    x = hwc.permute(2, 0, 1).unsqueeze(0)
    if x.shape[-2:] != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return x[0]


_JPEG_EXIF_ORIENTATION = 0x0112


def read_plain_jpeg(source: ImageInput, *, max_pixels: int = MAX_PIXELS, max_bytes: int = MAX_FILE_BYTES) -> bytes | None:
    """The encoded bytes of a JPEG that a batched JPEG decoder may decode as it
    is — 8-bit RGB or greyscale, within the byte and pixel limits, complete (ends with the
    EOI marker), with no EXIF rotation — or ``None`` when the image needs
    :func:`load_image` (PNG, CMYK, rotated, truncated, too large…), which also gives the
    reason when it is bad. Reads the header only, never the pixels."""
    data = _read_within(source, max_bytes)
    frame = _plain_jpeg(data, max_pixels)
    if data is None or frame is None:
        return None
    try:
        if frame.exif:  # PIL reads the orientation (only then: parsing a header with PIL costs ~0.2 ms)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                with Image.open(io.BytesIO(data)) as im:
                    if im.format != "JPEG" or im.getexif().get(_JPEG_EXIF_ORIENTATION, 1) != 1:
                        return None
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError):
        return None
    return data


def resize_batch(images: Sequence[torch.Tensor], size: int) -> torch.Tensor:
    """uint8 [3, H, W] images (any sizes, on one device) → uint8 [B, 3, size, size] with the
    same antialiased bilinear filter as :func:`to_tensor` (in float32 then rounded, since
    not every device resizes uint8). Images of one shape are resized together."""
    if not images:
        return torch.empty((0, 3, size, size), dtype=torch.uint8)
    device = images[0].device
    out = torch.empty((len(images), 3, size, size), dtype=torch.uint8, device=device).contiguous(
        memory_format=torch.channels_last
    )
    groups: dict[tuple[int, ...], list[int]] = {}
    for row, image in enumerate(images):
        groups.setdefault(tuple(image.shape), []).append(row)
    for shape, rows in groups.items():
        x = torch.stack([images[r] for r in rows])
        if shape[-2:] != (size, size):
            y = F.interpolate(x.float(), size=(size, size), mode="bilinear", antialias=True, align_corners=False)
            x = y.round_().clamp_(0, 255).to(torch.uint8)
        out[torch.as_tensor(rows, device=device)] = x
    return out


def decode_jpegs(encoded: Sequence[bytes], size: int, device: torch.device) -> tuple[list[torch.Tensor | None], list[str | None]]:
    """Decode checked JPEG bytes (:func:`read_plain_jpeg`) in one batched call on ``device``
    (nvJPEG on a GPU) → per input a uint8 [3, H, W] image on ``device``, or ``None`` with the
    reason. A batch the decoder refuses is retried one image at a time, and an image it
    still refuses goes through :func:`load_image` on the CPU, which decides or explains it."""
    if not encoded:
        return [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torchvision 0.29+ points to TorchCodec
        return _decode_jpegs(encoded, size, device)


def _decode_jpegs(
    encoded: Sequence[bytes], size: int, device: torch.device
) -> tuple[list[torch.Tensor | None], list[str | None]]:
    from torchvision.io import ImageReadMode, decode_jpeg

    try:
        tensors = [torch.frombuffer(bytearray(data), dtype=torch.uint8) for data in encoded]
        images: list[torch.Tensor | None] = list(decode_jpeg(tensors, mode=ImageReadMode.RGB, device=device))
        return images, [None] * len(images)
    except (RuntimeError, ValueError):
        pass
    images = []
    errors: list[str | None] = []
    for data in encoded:
        try:
            images.append(
                decode_jpeg(torch.frombuffer(bytearray(data), dtype=torch.uint8), mode=ImageReadMode.RGB, device=device)
            )
            errors.append(None)
        except (RuntimeError, ValueError):
            try:
                images.append(to_tensor(load_image(data), size).to(device))
                errors.append(None)
            except ImageError as exc:
                images.append(None)
                errors.append(str(exc))
    return images, errors


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


@dataclass
class Batch:
    """A collated batch: ``positions`` index the dataset; ``failures`` are (position, reason)."""

    positions: list[int]
    images: torch.Tensor  # uint8 [B, 3, S, S]; B may be 0
    failures: list[tuple[int, str]]
    encoded: list[tuple[int, bytes]] = field(default_factory=list)  # JPEG bytes, not decoded yet

    def pin_memory(self) -> Batch:
        """Called by a DataLoader with ``pin_memory=True``: page-locked images copy to a GPU
        asynchronously. (Encoded JPEGs stay as bytes: many small pinned buffers cost more
        than they save.)"""
        return Batch(self.positions, self.images.pin_memory(), self.failures, self.encoded)


# (position, decoded uint8 [3, S, S] or None, error or None, JPEG bytes left to decode or None)
Sample = tuple[int, Union[torch.Tensor, None], Union[str, None], Union[bytes, None]]  # noqa: UP007


class ImageDataset(torch.utils.data.Dataset):
    """Decodes images in DataLoader workers; a failure is returned, never raised.

    With ``encoded=True`` a plain JPEG (:func:`read_plain_jpeg`) is returned undecoded, as
    its bytes, for a batched decoder on the GPU; every other image is decoded here."""

    def __init__(self, sources: Sequence[ImageInput], size: int, *, flip: bool = False, encoded: bool = False) -> None:
        self.sources = sources
        self.size = size
        self.flip = flip  # mirror left-right (a style-preserving augmentation)
        self.encoded = encoded

    def __len__(self) -> int:
        return len(self.sources)

    def __getitem__(self, position: int) -> Sample:
        if self.encoded:
            data = read_plain_jpeg(self.sources[position])
            if data is not None:
                return position, None, None, data
        try:
            tensor = load_tensor(self.sources[position], self.size)
            return position, tensor.flip(-1) if self.flip else tensor, None, None
        except ImageError as exc:
            return position, None, str(exc), None


def collate(samples: list[Sample]) -> Batch:
    """Stack decoded images into one uint8 [B, 3, S, S] batch in channels-last memory (what
    the backbone runs on, so the main process copies nothing); undecoded JPEG bytes travel
    in ``encoded``."""
    good = [(s[0], s[1]) for s in samples if s[1] is not None]
    failures = [(s[0], s[2] or "unknown error") for s in samples if s[1] is None and s[3] is None]
    encoded = [(s[0], s[3]) for s in samples if s[3] is not None]
    if not good:
        return Batch([], torch.empty((0, 3, 1, 1), dtype=torch.uint8), failures, encoded)
    _, height, width = good[0][1].shape
    out = torch.empty((len(good), height, width, 3), dtype=torch.uint8)
    for row, (_, t) in enumerate(good):
        out[row] = t.permute(1, 2, 0)
    return Batch([p for p, _ in good], out.permute(0, 3, 1, 2), failures, encoded)


def decode_encoded(batch: Batch, size: int, device: torch.device, *, flip: bool = False) -> Batch:
    """A batch whose ``encoded`` JPEGs are decoded on ``device`` (:func:`decode_jpegs`) and
    resized (:func:`resize_batch`), appended after its already-decoded images (moved there)."""
    if not batch.encoded:
        return batch
    positions = [p for p, _ in batch.encoded]
    decoded, errors = decode_jpegs([data for _, data in batch.encoded], size, device)
    kept = [i for i, image in enumerate(decoded) if image is not None]
    fresh = resize_batch([decoded[i] for i in kept], size)  # type: ignore[misc]
    if flip:
        fresh = fresh.flip(-1)
    images = torch.cat([batch.images.to(device), fresh]) if len(batch.positions) else fresh
    failures = batch.failures + [
        (positions[i], errors[i] or "unknown error") for i in range(len(positions)) if decoded[i] is None
    ]
    return Batch(batch.positions + [positions[i] for i in kept], images, failures)


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
