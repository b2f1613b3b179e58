"""A corpus of hostile and broken image files, generated (never downloaded).

:func:`write_corpus` writes every case into a folder and returns what should happen to each:
``GOOD`` files must be indexed (rotated, first frame, converted to RGB as needed), ``BAD``
ones rejected with a reason. :func:`upload_cases` gives the same cases as bytes for the API.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

GOOD = "good"
BAD = "bad"


def _encode(im: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _png_bomb(width: int = 30000, height: int = 30000) -> bytes:
    """A small PNG whose header declares width x height pixels (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = zlib.compress(b"\x00" * (1 + 3 * width) * 16, 9)  # a few rows; the rest "to come"
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


def _picture(seed: int, size: tuple[int, int] = (96, 80)) -> Image.Image:
    rng = np.random.default_rng(seed)
    small = Image.fromarray(rng.integers(0, 255, (6, 5, 3), np.uint8))
    return small.resize(size, Image.Resampling.BICUBIC)


def cases() -> dict[str, tuple[str, bytes]]:
    """name → (expected, file bytes) for every case that is a regular file."""
    pic = _picture(1)
    rotated = _picture(2, (120, 60))
    exif = rotated.getexif()
    exif[0x0112] = 6  # display rotated 90° clockwise
    deep = Image.fromarray((np.linspace(0, 65535, 64 * 48).reshape(48, 64)).astype(np.uint16))
    palette = _picture(3).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    frames = [_picture(s) for s in (4, 5, 6)]
    ramp = np.linspace(0, 255, 6000, dtype=np.float32)
    large = Image.fromarray(np.stack([np.add.outer(ramp[:4000] * 0.5, ramp * 0.5)] * 3, axis=-1).astype(np.uint8))
    full_jpeg = _encode(_picture(7), "JPEG", quality=90)
    return {
        "plain.jpg": (GOOD, _encode(pic, "JPEG", quality=90)),
        "one_pixel.png": (GOOD, _encode(Image.new("RGB", (1, 1), (200, 10, 10)), "PNG")),
        "large_6000x4000.jpg": (GOOD, _encode(large, "JPEG", quality=80)),
        "cmyk.jpg": (GOOD, _encode(pic.convert("CMYK"), "JPEG")),
        "deep_16bit.png": (GOOD, _encode(deep, "PNG")),
        "palette_transparent.png": (GOOD, _encode(palette, "PNG", transparency=0)),
        "animated.gif": (GOOD, _encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)),
        "exif_rotated.jpg": (GOOD, _encode(rotated, "JPEG", exif=exif)),
        "photo.webp": (GOOD, _encode(pic, "WEBP")),
        "zero_bytes.jpg": (BAD, b""),
        "truncated.jpg": (BAD, full_jpeg[: len(full_jpeg) // 2]),
        "bomb_30000x30000.png": (BAD, _png_bomb()),
        "text.jpg": (BAD, b"just some text, not an image\n"),
        "page.jpg": (BAD, b"<!doctype html><html><body><img src=x onerror=alert(1)></body></html>"),
        "vector.jpg": (
            BAD,
            b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>',
        ),
    }


NON_UTF8_NAME = b"caf\xe9_latin1.jpg"  # a Latin-1 file name: not valid UTF-8


def write_corpus(folder: Path) -> dict[str, str]:
    """Every case as a file in ``folder``, plus a folder named like an image, a symlink loop
    and a non-UTF-8 file name (holding a good JPEG). Returns file name → expected; the
    non-UTF-8 name appears as ``os.fsdecode`` gives it."""
    folder.mkdir(parents=True, exist_ok=True)
    expected = {}
    for name, (outcome, data) in cases().items():
        (folder / name).write_bytes(data)
        expected[name] = outcome
    (folder / "folder.jpg").mkdir()
    (folder / "folder.jpg" / "inside.txt").write_text("a folder named like an image")
    os.symlink("loop_b.jpg", folder / "loop_a.jpg")
    os.symlink("loop_a.jpg", folder / "loop_b.jpg")
    expected["loop_a.jpg"] = BAD
    expected["loop_b.jpg"] = BAD
    with open(os.path.join(os.fsencode(folder), NON_UTF8_NAME), "wb") as fh:
        fh.write(cases()["plain.jpg"][1])
    expected[os.fsdecode(NON_UTF8_NAME)] = GOOD  # a valid file: indexed, its path kept as bytes, its id escaped
    return expected


def upload_cases() -> dict[str, tuple[str, bytes]]:
    """The regular-file cases, for uploads."""
    return cases()
