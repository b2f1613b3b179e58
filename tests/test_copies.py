"""Copy signatures: the same photo re-encoded, resized, mirrored or cropped scores near 1,
another photo (or another colourway of the same shape) does not."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw

from stylesearch.copies import SIGNATURE_BYTES, THUMB, coarse, copy_score, copy_scores, thumbnails, views
from stylesearch.images import load_tensor


def product(seed: int, colour: tuple[int, int, int] | None = None, size: tuple[int, int] = (90, 120)) -> Image.Image:
    """A product-like photo: shapes on a light background."""
    rng = np.random.default_rng(seed)
    im = Image.new("RGB", size, (245, 245, 245))
    draw = ImageDraw.Draw(im)
    for _ in range(6):
        x0, y0 = int(rng.integers(0, size[0] - 30)), int(rng.integers(0, size[1] - 30))
        fill = colour or tuple(int(c) for c in rng.integers(0, 255, 3))
        draw.rectangle((x0, y0, x0 + int(rng.integers(10, 40)), y0 + int(rng.integers(10, 50))), fill=fill)
    return im


def signature(im: Image.Image, quality: int = 95, size: int = 128) -> np.ndarray:
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=quality)
    return thumbnails(load_tensor(buf.getvalue(), size).numpy()[None])[0]


def test_thumbnails_are_area_averages() -> None:
    images = np.random.default_rng(0).integers(0, 256, (2, 3, 128, 128), dtype=np.uint8)
    out = thumbnails(images)
    assert out.shape == (2, SIGNATURE_BYTES) and out.dtype == np.uint8
    expected = images.reshape(2, 3, THUMB, 4, THUMB, 4).mean((3, 5))
    assert np.abs(out.reshape(2, 3, THUMB, THUMB) - expected).max() <= 0.5
    odd = thumbnails(np.full((1, 3, 100, 100), 7, np.uint8))  # not whole blocks: the general path
    assert np.all(odd == 7)
    with pytest.raises(ValueError):
        thumbnails(np.zeros((2, 128, 128), np.uint8))


@pytest.mark.parametrize(
    "make",
    [
        lambda im: (im, 50),
        lambda im: (im.resize((im.width // 2, im.height // 2)), 95),
        lambda im: (im.resize((im.width * 2, im.height * 2)), 95),
        lambda im: (im.transpose(Image.FLIP_LEFT_RIGHT), 95),
        lambda im: (im.crop((5, 6, 5 + int(im.width * 0.9), 6 + int(im.height * 0.9))), 95),
    ],
    ids=["jpeg50", "half", "double", "mirror", "crop90"],
)
def test_a_copy_scores_near_one_and_another_photo_does_not(make) -> None:  # type: ignore[no-untyped-def]
    original = product(1)
    copy, quality = make(original)
    score = copy_score(signature(original), signature(copy, quality))
    others = [copy_score(signature(original), signature(product(seed))) for seed in range(2, 8)]
    assert score >= 0.95 and score > max(others) + 0.05, (score, others)


def test_colourways_are_not_copies() -> None:
    red, blue = product(3, colour=(200, 30, 30)), product(3, colour=(30, 30, 200))
    assert copy_score(signature(red), signature(red, 70)) > 0.98
    assert copy_score(signature(red), signature(blue)) < 0.9


def test_scores_are_symmetric_and_batched_like_single_pairs() -> None:
    sigs = np.stack([signature(product(s)) for s in range(5)] + [signature(product(0).transpose(Image.FLIP_LEFT_RIGHT))])
    pairs = np.array([[0, 5], [5, 0], [1, 2], [3, 4], [0, 0]])
    batched = copy_scores(sigs, pairs, batch=2)
    assert batched[0] == pytest.approx(batched[1]) and batched[4] == pytest.approx(1.0, abs=1e-5)
    assert batched[2] == pytest.approx(copy_score(sigs[1], sigs[2]), abs=1e-6)
    assert copy_scores(sigs, np.zeros((0, 2), np.int64)).shape == (0,)
    assert views(sigs[:2]).shape[:2] == (2, 26) and coarse(sigs).shape == (6, 3 * 64)
    assert np.allclose(np.linalg.norm(coarse(sigs, mirrored=True), axis=1), 1.0, atol=1e-5)
