from __future__ import annotations

import json
from pathlib import Path

import pytest

from stylesearch.catalog import load_catalog
from stylesearch.errors import CatalogError

from .conftest import solid


def test_folder_per_label_and_unlabeled(tmp_path: Path) -> None:
    solid(tmp_path / "boho" / "a.jpg", (200, 100, 50))
    solid(tmp_path / "boho" / "nested" / "b.png", (10, 100, 50))
    solid(tmp_path / "minimal" / "c.jpg", (240, 240, 240))
    solid(tmp_path / "loose.jpg", (1, 2, 3))
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / ".hidden.jpg").write_text("x")
    cat = load_catalog(tmp_path)
    by_id = {i.id: i for i in cat}
    assert set(by_id) == {"boho/a", "boho/nested/b", "minimal/c", "loose"}
    assert by_id["boho/nested/b"].label == "boho"
    assert by_id["loose"].label is None
    assert cat.labels == ["boho", "minimal"]
    assert [s.path for s in cat.skipped] == ["notes.txt"]
    assert "not an image" in cat.skipped[0].reason


def test_csv_manifest_with_attributes_and_absolute_paths(tmp_path: Path) -> None:
    solid(tmp_path / "img" / "a.jpg", (1, 2, 3))
    outside = solid(tmp_path.parent / f"{tmp_path.name}-abs.jpg", (4, 5, 6))
    (tmp_path / "m.csv").write_text(f"path,id,label,category,color\nimg/a.jpg,A,boho,dress,red\n{outside},,,mug,\n")
    cat = load_catalog(tmp_path / "m.csv")
    a, b = cat.items
    assert (a.id, a.label, a.attributes) == ("A", "boho", {"category": "dress", "color": "red"})
    assert a.path == (tmp_path / "img" / "a.jpg").resolve()
    assert b.label is None and b.attributes == {"category": "mug"}
    assert b.path == outside


def test_jsonl_manifest_relative_to_catalog_folder(tmp_path: Path) -> None:
    solid(tmp_path / "cat" / "x.png", (9, 9, 9))
    manifest = tmp_path / "items.jsonl"
    manifest.write_text(json.dumps({"path": "x.png", "label": "neon", "size": 3}) + "\n\n")
    cat = load_catalog(tmp_path / "cat", manifest)
    assert cat.items[0].id == "x" and cat.items[0].attributes == {"size": "3"}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("path,id\na.jpg,1\na.jpg,1\n", "appears on lines"),
        ("path\nmissing.jpg\n", "missing file"),
        ("file,label\na.jpg,x\n", "no 'path' column"),
        ("path\n../../etc/passwd\n", "leaves the catalog folder"),
        ('path,label\n"a.jpg,x\n', "not valid CSV"),
        ("path,label\na.jpg,x,extra\n", "more fields than header"),
    ],
)
def test_bad_manifests_are_clear_errors(tmp_path: Path, content: str, message: str) -> None:
    solid(tmp_path / "a.jpg", (1, 1, 1))
    (tmp_path / "m.csv").write_text(content)
    with pytest.raises(CatalogError, match=message):
        load_catalog(tmp_path / "m.csv")


def test_missing_and_empty_catalogs(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="does not exist"):
        load_catalog(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CatalogError, match="no images"):
        load_catalog(tmp_path / "empty")
    (tmp_path / "bad.jsonl").write_text("[1, 2]\n")
    with pytest.raises(CatalogError, match="JSON object"):
        load_catalog(tmp_path / "bad.jsonl")
