from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageFilter

from stylesearch.errors import ImageError
from stylesearch.images import (
    ImageDataset,
    collate,
    jpeg_frame,
    load_image,
    load_tensor,
    read_plain_jpeg,
    small_plain_jpeg,
    to_tensor,
)


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header declares width x height (a decompression bomb's opening)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


def _encode(im: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kw)
    return buf.getvalue()


def test_transparency_is_flattened_on_white() -> None:
    im = Image.new("RGBA", (8, 8), (255, 0, 0, 0))
    out = load_image(_encode(im, "PNG"))
    assert out.mode == "RGB" and out.getpixel((0, 0)) == (255, 255, 255)
    pal = Image.new("P", (8, 8), 0)
    pal.putpalette([0, 0, 0, 10, 200, 10] + [0] * 762)
    pal.info["transparency"] = 0
    assert load_image(_encode(pal, "PNG", transparency=0)).getpixel((1, 1)) == (255, 255, 255)


def test_cmyk_16bit_and_gif_frames_become_rgb() -> None:
    cmyk = load_image(_encode(Image.new("CMYK", (8, 8), (0, 255, 255, 0)), "JPEG"))
    assert cmyk.mode == "RGB" and cmyk.getpixel((4, 4))[0] > 200
    deep = Image.fromarray(np.full((8, 8), 65535, np.uint16))
    assert load_image(_encode(deep, "PNG")).getpixel((0, 0)) == (255, 255, 255)
    frames = [Image.new("RGB", (8, 8), c) for c in ((255, 0, 0), (0, 0, 255))]
    gif = _encode(frames[0], "GIF", save_all=True, append_images=frames[1:])
    r, g, b = load_image(gif).getpixel((4, 4))
    assert r > 200 and b < 50


def test_exif_rotation_is_applied() -> None:
    im = Image.new("RGB", (40, 20), (0, 128, 0))
    exif = im.getexif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    out = load_image(_encode(im, "JPEG", exif=exif))
    assert out.size == (20, 40)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"<html><body>not an image</body></html>", "not a recognised image"),
        (b'<svg xmlns="http://www.w3.org/2000/svg"/>', "not a recognised image"),
        (_png_header_only(30000, 30000), "decompression bomb"),
    ],
)
def test_bad_bytes_raise_image_error(data: bytes, message: str) -> None:
    with pytest.raises(ImageError, match=message):
        load_image(data)


def test_truncated_jpeg_and_folders_are_rejected(tmp_path: Path) -> None:
    full = _encode(Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)), "JPEG")
    (tmp_path / "cut.jpg").write_bytes(full[: len(full) // 2])
    with pytest.raises(ImageError, match="truncated or corrupt"):
        load_image(tmp_path / "cut.jpg")
    (tmp_path / "dir.jpg").mkdir()
    with pytest.raises(ImageError, match="folder"):
        load_image(tmp_path / "dir.jpg")
    with pytest.raises(ImageError, match="bytes, over"):
        load_image(full, max_bytes=100)


def test_tensors_and_dataset_failures(tmp_path: Path) -> None:
    Image.new("RGB", (30, 50), (10, 20, 30)).save(tmp_path / "ok.png")
    (tmp_path / "bad.jpg").write_text("nope")
    t = load_tensor(tmp_path / "ok.png", 48)
    assert t.shape == (3, 48, 48) and t.dtype == torch.uint8 and int(t[2, 0, 0]) == 30
    ds = ImageDataset([tmp_path / "ok.png", tmp_path / "bad.jpg"], 32)
    batch = collate([ds[0], ds[1]])
    assert batch.positions == [0] and batch.images.shape == (1, 3, 32, 32)
    assert batch.failures[0][0] == 1 and "not a recognised image" in batch.failures[0][1]


def test_device_decoding_matches_cpu_decoding(tmp_path: Path) -> None:
    """The batched JPEG path (``--decode device``; nvJPEG on a GPU, libjpeg here) passes on
    plain JPEGs only, decodes them to within a grey level of the CPU path, and leaves
    rotated, CMYK, truncated, non-JPEG and bad files to the CPU path with the same results."""
    from stylesearch.images import decode_encoded, read_plain_jpeg

    rng = np.random.default_rng(0)
    smooth = Image.fromarray(rng.integers(0, 255, (6, 8, 3), np.uint8)).resize((64, 48), Image.Resampling.BICUBIC)
    files = {
        "plain.jpg": _encode(smooth, "JPEG", quality=95),
        "grey.jpg": _encode(smooth.convert("L"), "JPEG", quality=95),
        "plain2.jpg": _encode(smooth.rotate(180), "JPEG", quality=95),
        "cmyk.jpg": _encode(Image.new("CMYK", (8, 8), (0, 255, 255, 0)), "JPEG"),
        "page.png": _encode(smooth, "PNG"),
        "html.jpg": b"<html></html>",
    }
    rotated = smooth.copy()
    exif = rotated.getexif()
    exif[0x0112] = 6
    files["rotated.jpg"] = _encode(rotated, "JPEG", exif=exif)
    full = files["plain.jpg"]
    files["cut.jpg"] = full[: len(full) // 2]
    paths = []
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
        paths.append(tmp_path / name)
    plain = {"plain.jpg", "grey.jpg", "plain2.jpg"}
    assert {p.name for p in paths if read_plain_jpeg(p) is not None} == plain

    cpu = collate([ImageDataset(paths, 32)[i] for i in range(len(paths))])
    for flip in (False, True):
        ds = ImageDataset(paths, 32, encoded=True, flip=flip)
        raw = collate([ds[i] for i in range(len(paths))])
        assert sorted(paths[p].name for p, _ in raw.encoded) == sorted(plain)
        dev = decode_encoded(raw, 32, torch.device("cpu"), flip=flip)
        assert sorted(dev.positions) == sorted(cpu.positions) and not dev.encoded
        assert dict(dev.failures) == dict(cpu.failures)
        by_position = dict(zip(cpu.positions, cpu.images))
        for position, image in zip(dev.positions, dev.images):
            expected = by_position[position].flip(-1) if flip else by_position[position]
            assert image.shape == (3, 32, 32)
            assert (image.int() - expected.int()).abs().max() <= 2, paths[position].name


def test_small_plain_jpegs_take_libjpeg_directly_and_decode_to_the_same_pixels(tmp_path: Path) -> None:
    """load_tensor's fast path (torchvision's libjpeg, no PIL) gives PIL's pixels, and leaves
    every JPEG it is not made for to load_image: large, CMYK, truncated, bomb-sized."""
    rng = np.random.default_rng(0)
    photo = Image.fromarray(rng.integers(0, 255, (80, 60, 3), dtype=np.uint8)).filter(ImageFilter.SMOOTH)
    rotated = Image.Exif()
    rotated[0x0112] = 6  # rotate 90° clockwise when shown
    cases = {
        "plain": _encode(photo, "JPEG", quality=90),
        "grey": _encode(photo.convert("L"), "JPEG"),
        "progressive": _encode(photo, "JPEG", progressive=True),
        "rotated": _encode(photo, "JPEG", exif=rotated.tobytes()),
    }
    for name, data in cases.items():
        assert small_plain_jpeg(data, 128) is not None, name
        path = tmp_path / f"{name}.jpg"
        path.write_bytes(data)
        for source in (data, path, str(path)):
            fast = load_tensor(source, 128)
            slow = to_tensor(load_image(source, draft_size=128), 128)
            assert torch.equal(fast, slow) and fast.stride() == slow.stride(), name
    assert load_tensor(cases["rotated"], 32).shape == (3, 32, 32)
    big = Image.fromarray(rng.integers(0, 255, (600, 500, 3), dtype=np.uint8))
    assert small_plain_jpeg(_encode(big, "JPEG"), 128) is None  # scaled decoding (Image.draft) is faster
    assert small_plain_jpeg(_encode(big, "JPEG"), 256) is not None
    assert small_plain_jpeg(_encode(photo.convert("CMYK"), "JPEG"), 128) is None
    truncated = cases["plain"][: len(cases["plain"]) // 2]
    assert small_plain_jpeg(truncated, 128) is None
    with pytest.raises(ImageError, match="truncated|corrupt"):
        load_tensor(truncated, 128)
    plain = cases["plain"]
    sof = plain.index(b"\xff\xc0")
    bomb = plain[: sof + 5] + struct.pack(">HH", 60_000, 60_000) + plain[sof + 9 :]  # the frame declares 3.6 gigapixels
    assert small_plain_jpeg(bomb, 128) is None
    with pytest.raises(ImageError):
        load_tensor(bomb, 128)
    assert small_plain_jpeg(photo, 128) is None and small_plain_jpeg(tmp_path, 128) is None


def test_jpeg_frame_reads_the_header_without_pil() -> None:
    """The marker walk behind both JPEG fast paths: size, bits, components, EXIF, MPO; and
    None for anything it cannot follow up to the scan."""
    im = Image.new("RGB", (40, 30), (10, 200, 30))
    plain = jpeg_frame(_encode(im, "JPEG"))
    assert plain is not None and (plain.width, plain.height, plain.bits, plain.components) == (40, 30, 8, 3)
    assert plain.plain() and not plain.exif and not plain.plain(max_pixels=1000)
    exif = Image.Exif()
    exif[0x0112] = 1
    tagged = jpeg_frame(_encode(im, "JPEG", exif=exif.tobytes()))
    assert tagged is not None and tagged.exif and tagged.plain()
    grey = jpeg_frame(_encode(im.convert("L"), "JPEG"))
    cmyk = jpeg_frame(_encode(im.convert("CMYK"), "JPEG"))
    assert grey is not None and grey.components == 1 and grey.plain()
    assert cmyk is not None and cmyk.components == 4 and not cmyk.plain()
    mpo = _encode(im, "MPO", save_all=True, append_images=[im.rotate(90)])
    frame = jpeg_frame(mpo)
    assert frame is not None and frame.multi and not frame.plain()
    assert read_plain_jpeg(mpo) is None and small_plain_jpeg(mpo, 128) is None
    data = _encode(im, "JPEG")
    sof = data.index(b"\xff\xc0")
    assert jpeg_frame(data[:sof] + data[sof : sof + 19] + data[sof:]) is None  # two frame headers
    assert jpeg_frame(data[: sof + 4]) is None and jpeg_frame(b"\xff\xd8\xff\xd9") is None
    assert jpeg_frame(b"\xff\xd8" + b"\x00" * 20) is None
