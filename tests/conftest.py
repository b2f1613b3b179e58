"""Shared fixtures: small generated catalogs (64–128 px), built indexes, helpers."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("STYLESEARCH_OFFLINE", "1")  # never download weights in tests
# "auto" runs torch here (each recipe converted to OpenVINO would add seconds to hundreds of
# tests); tests/model/test_engines.py runs OpenVINO by name, and converts into a fresh cache.
os.environ.setdefault("STYLESEARCH_ENGINE", "torch")
os.environ.setdefault("STYLESEARCH_CACHE", tempfile.mkdtemp(prefix="stylesearch-test-cache-"))

from stylesearch import (
    demo,  # noqa: E402
    index_catalog,  # noqa: E402
)
from stylesearch.config import EmbedConfig, RunConfig  # noqa: E402

SMALL = EmbedConfig(image_size=64)
RUN = RunConfig(device="cpu", batch_size=32, workers=0, progress=False)


def solid(path: Path, color: tuple[int, int, int], size: tuple[int, int] = (64, 64), fmt: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path, format=fmt)
    return path


def noise(path: Path, seed: int, size: int = 64) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    Image.fromarray(arr).save(path)
    return path


@pytest.fixture(scope="session")
def demo_data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[tuple[Path, str, str]]]:
    """The demo catalog with 2 images per (product, style): 96 images, plus 48 held-out queries."""
    folder = tmp_path_factory.mktemp("demo")
    return demo.generate(folder, per_cell=2, seed=1)


@pytest.fixture(scope="session")
def built_index(tmp_path_factory: pytest.TempPathFactory, demo_data) -> Path:  # type: ignore[no-untyped-def]
    """A read-only index of the demo catalog (64 px). Copy it (``index_copy``) to write."""
    out = tmp_path_factory.mktemp("built") / "index"
    index_catalog(demo_data[0], out, embed=SMALL, run=RUN)
    return out


@pytest.fixture
def index_copy(built_index: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "index"
    shutil.copytree(built_index, dest)
    return dest
