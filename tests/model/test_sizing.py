"""The input size a catalog chooses from its photos when none is given (image size 0)."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from stylesearch.config import DEFAULT_IMAGE_SIZE, EmbedConfig
from stylesearch.errors import ConfigError
from stylesearch.model.embed import Embedder
from stylesearch.model.sizing import LARGE_PHOTO_SIZE, choose_image_size, resolve_image_size

from ..conftest import RUN


def photos(folder: Path, size: tuple[int, int], n: int = 5) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        Image.new("RGB", size, (i * 40, 90, 200)).save(folder / f"{i}.jpg")
        out.append(folder / f"{i}.jpg")
    return out


def test_large_photos_get_a_larger_input_and_small_ones_the_default(tmp_path: Path) -> None:
    assert choose_image_size(photos(tmp_path / "interior", (354, 236))) == LARGE_PHOTO_SIZE
    assert choose_image_size(photos(tmp_path / "fashion", (60, 80))) == DEFAULT_IMAGE_SIZE
    assert choose_image_size([tmp_path / "missing.jpg"]) == DEFAULT_IMAGE_SIZE  # unreadable: the decoder reports it


def test_a_given_size_is_kept_and_auto_is_resolved(tmp_path: Path) -> None:
    large = photos(tmp_path / "large", (400, 300))
    assert EmbedConfig().image_size == 0
    assert resolve_image_size(EmbedConfig(image_size=96), large).image_size == 96
    assert resolve_image_size(EmbedConfig(), large).image_size == LARGE_PHOTO_SIZE
    assert Embedder(EmbedConfig(weights="none", dim=0), RUN).config.image_size == DEFAULT_IMAGE_SIZE  # no catalog
    with pytest.raises(ConfigError, match="0 \\(auto\\)"):
        EmbedConfig(image_size=16)


def test_an_index_records_the_size_its_catalog_chose(tmp_path: Path) -> None:
    from stylesearch import StyleSearch, index_catalog

    for label in ("a", "b"):
        photos(tmp_path / "catalog" / label, (300, 240), 3)
    index_catalog(tmp_path / "catalog", tmp_path / "idx", embed=EmbedConfig(weights="none", dim=4), run=RUN)
    with StyleSearch.open(tmp_path / "idx", run=RUN) as engine:
        assert engine.embedder.config.image_size == LARGE_PHOTO_SIZE
        assert engine.info()["embed"]["image_size"] == LARGE_PHOTO_SIZE
