"""JPEG fast paths to the same pixels as :func:`~.safe.load_image`: :func:`load_tensor` hands
small plain JPEGs to libjpeg-turbo (no GIL-bound PIL parsing), and on a GPU batches go to
nvJPEG (:func:`read_plain_jpeg`, :func:`decode_jpegs`). :func:`jpeg_frame` reads the header."""

from __future__ import annotations

import io
import os
import struct
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from PIL import Image

from ..errors import ImageError
from ..stamps import Stamp, read_stamped
from .safe import MAX_FILE_BYTES, MAX_PIXELS, ImageInput, load_image, resize_hwc, to_tensor


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
            return resize_hwc(hwc.contiguous(), size)
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
    return read_stamped(source, max_bytes, stamped=False)[0]


def read_source(source: ImageInput, stamped: bool) -> tuple[ImageInput, Stamp | None]:
    """A file source read once — (its bytes, their stamp when ``stamped``: :mod:`stylesearch.stamps`)
    — for the decoders below to take as bytes; any other source, or a file they should judge
    themselves (empty, too large, unreadable), as it is, with no stamp."""
    if isinstance(source, (str, os.PathLike)):
        data, stamp = read_stamped(source, MAX_FILE_BYTES, stamped=stamped)
        if data is not None:
            return data, stamp
    return source, None


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
