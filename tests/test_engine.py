from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from stylesearch import StyleSearch, index_catalog
from stylesearch.config import EmbedConfig
from stylesearch.demo import render
from stylesearch.errors import (
    CatalogError,
    DuplicateItemError,
    ImageError,
    IndexMismatchError,
    IndexNotFoundError,
    ItemNotFoundError,
)

from .conftest import RUN, SMALL, noise, solid


def test_query_finds_the_same_style_across_products(built_index: Path, demo_data) -> None:  # type: ignore[no-untyped-def]
    _, held_out = demo_data
    with StyleSearch.open(built_index, run=RUN) as engine:
        results = engine.query([p for p, _, _ in held_out], k=5)
        assert [r.image for r in results] == [str(p) for p, _, _ in held_out]
        same = np.mean([[h.label == style for h in r.results] for r, (_, style, _) in zip(results, held_out)])
        assert same > 0.6  # chance is 1/8
        hit = results[0].results[0]
        assert hit.attributes["product"] in {"shirt", "dress", "mug", "bag", "lamp", "chair"}
        assert Path(hit.path).is_file() and -1.0 <= hit.score <= 1.0001
        assert results[0].results == sorted(results[0].results, key=lambda h: -h.score)


def test_classify_and_filters(built_index: Path, demo_data) -> None:  # type: ignore[no-untyped-def]
    _, held_out = demo_data
    with StyleSearch.open(built_index, run=RUN) as engine:
        verdicts = engine.classify([p for p, _, _ in held_out], k=10, min_confidence=0.0)
        accuracy = np.mean([v.label == style for v, (_, style, _) in zip(verdicts, held_out)])
        assert accuracy > 0.7
        single = engine.classify(held_out[0][0], k=5)
        assert single.neighbors and abs(sum(single.scores.values()) - 1) < 1e-4
        assert single.confidence == max(single.scores.values())
        strict = engine.classify(held_out[0][0], k=10, min_confidence=1.01)
        assert strict.label is None and strict.scores  # "unknown", with the evidence still there
        mugs = engine.query(held_out[0][0], k=20, where={"product": "mug"})
        assert len(mugs.results) == 16 and all(h.attributes["product"] == "mug" for h in mugs.results)
        two = engine.query(held_out[0][0], k=30, where={"product": ["mug", "bag"], "label": "neon"})
        assert len(two.results) == 4
        assert engine.query(held_out[0][0], k=3, where={"product": "spaceship"}).results == []


def test_similar_excludes_the_item_and_get(built_index: Path) -> None:
    with StyleSearch.open(built_index, run=RUN) as engine:
        hits = engine.similar("plaid-mug-0", k=5)
        assert len(hits) == 5 and "plaid-mug-0" not in [h.id for h in hits]
        assert engine.get("plaid-mug-0").label == "plaid"
        with pytest.raises(ItemNotFoundError):
            engine.similar("nope")


def test_cold_start_label_is_classifiable_at_once(index_copy: Path, tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    new = []
    for i in range(6):
        im = render(["shirt", "mug", "bag"][i % 3], "stripes", rng).convert("L").point(lambda v: 255 - v).convert("RGB")
        path = tmp_path / f"inverted-{i}.png"
        im.save(path)
        new.append(path)
    engine = StyleSearch.open(index_copy, run=RUN)
    report = engine.add(new[:5], labels="inverted_stripes", attributes={"product": "mixed"})
    assert report.added == 5 and report.items == 96 + 5 and report.labels["inverted_stripes"] == 5
    verdict = engine.classify(new[5], k=5, min_confidence=0.0)
    assert verdict.label == "inverted_stripes"
    engine.close()
    with StyleSearch.open(index_copy, run=RUN) as reopened:  # persisted
        assert len(reopened) == 101 and reopened.get("inverted-0").label == "inverted_stripes"
        assert reopened.remove(["inverted-0", "inverted-1"]) == 2
        assert len(reopened) == 99
        with pytest.raises(ItemNotFoundError):
            reopened.remove(["inverted-2", "missing"])
        assert len(reopened) == 99
    with StyleSearch.open(index_copy, run=RUN) as third:
        assert len(third) == 99 and third.labels()["inverted_stripes"] == 3


def test_add_in_memory_images_and_bad_input_never_damages_the_index(index_copy: Path, tmp_path: Path) -> None:
    engine = StyleSearch.open(index_copy, run=RUN)
    before = engine.info()
    with pytest.raises(ImageError, match="no image could be added"):
        engine.add([b"not an image"], ids=["x"])
    with pytest.raises(DuplicateItemError, match="already in the index"):
        engine.add([solid(tmp_path / "s.png", (1, 2, 3))], ids=["plaid-mug-0"])
    assert engine.info()["items"] == before["items"] and engine.info()["generation"] == before["generation"]
    report = engine.add([Image.new("RGB", (50, 70), (9, 200, 9)), b"junk"], ids=["pil", "junk"], labels=["green", None])
    assert report.added == 1 and report.skipped[0].path == "<image 2>"
    assert Path(engine.get("pil").path).is_file()
    engine.close()


def test_open_errors(built_index: Path, tmp_path: Path) -> None:
    with pytest.raises(IndexNotFoundError, match="stylesearch index"):
        StyleSearch.open(tmp_path / "none")
    with pytest.raises(IndexMismatchError, match="recipe"):
        StyleSearch.open(built_index, run=RUN, expect=EmbedConfig(image_size=64, recipe="gap"))
    StyleSearch.open(built_index, run=RUN, expect=SMALL).close()


def test_tampered_manifest_is_a_mismatch(index_copy: Path) -> None:
    gen = index_copy / (index_copy / "CURRENT").read_text().strip()
    manifest = json.loads((gen / "manifest.json").read_text())
    manifest["weights_id"] = "someone-else"
    (gen / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IndexMismatchError, match="rebuild"):
        StyleSearch.open(index_copy, run=RUN)


def test_failed_index_run_keeps_the_existing_index(index_copy: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "a.jpg").write_text("not really")
    (bad / "b.jpg").write_bytes(b"")
    with pytest.raises(CatalogError, match="none of the 2"):
        index_catalog(bad, index_copy, embed=SMALL, run=RUN)
    with StyleSearch.open(index_copy, run=RUN) as engine:
        assert len(engine) == 96


def test_index_reports_skipped_files(tmp_path: Path) -> None:
    for i in range(4):
        noise(tmp_path / "cat" / "dots" / f"{i}.png", i)
    (tmp_path / "cat" / "dots" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    (tmp_path / "cat" / "readme.txt").write_text("hi")
    report = index_catalog(tmp_path / "cat", tmp_path / "idx", embed=EmbedConfig(image_size=64, dim=8), run=RUN)
    assert report.added == 4 and sorted(s.path for s in report.skipped) == ["dots/broken.jpg", "readme.txt"]
    with StyleSearch.open(tmp_path / "idx", run=RUN) as engine:
        info = engine.info()
        assert info["items"] == 4 and info["dim"] == 8 and info["labels"] == {"dots": 4}  # 3 fitted + 5 random
        assert info["search_backend"] in {"faiss-cpu", "faiss-gpu"}
