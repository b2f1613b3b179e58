"""An index written before Architecture v2 (tests/data/index-v1, format v1, built by the code of
commit de06cf4 with ``meanstd``, 8 dims, 64 px) opens and answers exactly as it did then
(tests/data/index-v1-answers.json, recorded by that code)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from stylesearch import StyleSearch
from tests.conftest import RUN

DATA = Path(__file__).parent / "data"


def draw(path: Path, style: str, seed: int) -> Path:
    """The query images of the recording (same drawing, same seed)."""
    rng = np.random.default_rng(seed)
    a = np.zeros((64, 64, 3), np.uint8)
    if style == "stripes":
        a[:, :] = rng.integers(150, 255, 3)
        a[::8] = rng.integers(0, 80, 3)
    elif style == "dots":
        a[:, :] = rng.integers(0, 90, 3)
        a[4::12, 4::12] = 255
    else:
        a = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(a).save(path)
    return path


def same(hits: list, want: list) -> None:  # type: ignore[type-arg]
    assert [h.id for h in hits] == [w[0] for w in want]
    assert np.allclose([h.score for h in hits], [w[1] for w in want], atol=1e-5)


@pytest.fixture
def old_index(tmp_path: Path) -> Path:
    dest = tmp_path / "index-v1"
    shutil.copytree(DATA / "index-v1", dest)
    return dest


def test_an_index_from_before_opens_and_answers_identically(old_index: Path, tmp_path: Path) -> None:
    expected = json.loads((DATA / "index-v1-answers.json").read_text())
    with StyleSearch.open(old_index, run=RUN) as engine:
        info = engine.info()
        assert {k: info[k] for k in expected["info"]} == expected["info"]
        for style in ("stripes", "dots", "noise"):
            query = str(draw(tmp_path / f"{style}.png", style, 99))
            want = expected[style]
            same(engine.query(query, k=5).results, want["query"])
            same(engine.query(query, k=3, where={"colour": "red"}).results, want["red"])
            same(engine.similar(f"{style}-0", k=3), want["similar"])
            c = engine.classify(query, k=5)
            # the same answer; its confidence is now a probability calibrated on the index's own
            # items (fitted when opened: the old manifest has none), not the old vote share
            assert c.label == want["classify"][0] and 0.5 < c.confidence <= want["classify"][1] and c.support >= 4
        # and it can still be written: a new generation, in the current format (v2)
        engine.add([query], labels="noise", ids=["new-noise"])
        engine.remove(["stripes-0"])
        engine.add([query], labels="noise", ids=["newer-noise"])  # appended as a second vector chunk
        written = [(h.id, h.score) for h in engine.similar("newer-noise", k=4)]
    with StyleSearch.open(old_index, run=RUN) as again:
        assert len(again) == expected["info"]["items"] + 1 and again.snapshot.manifest["format_version"] == 2
        assert (again.snapshot.gen / "vectors.1.npy").is_file() and not (again.snapshot.gen / "index.faiss").exists()
        same(again.similar("newer-noise", k=4), written)  # read back from its chunks, the flat index rebuilt
