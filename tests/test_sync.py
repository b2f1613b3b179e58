"""Incremental sync: the index ends as the changed catalog, embedding only what changed,
in one generation; a failed sync leaves the previous generation live."""

from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from stylesearch import StyleSearch, demo, index_catalog
from stylesearch.errors import CatalogError
from stylesearch.index.metadata import MetadataStore

from .conftest import RUN, SMALL, noise

Rows = list[list[str]]


def _read(manifest: Path) -> tuple[list[str], Rows]:
    with manifest.open(newline="", encoding="utf-8") as fh:
        header, *rows = list(csv.reader(fh))
    return header, rows


def _write(manifest: Path, header: list[str], rows: Rows) -> None:
    with manifest.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([header, *rows])


def _state(index: Path) -> set[tuple[str, str | None, str]]:
    with StyleSearch.open(index, run=RUN) as engine:
        return {(h.id, h.label, str(sorted(h.attributes.items()))) for h in engine.browse(limit=10_000)}


@pytest.fixture
def catalog(tmp_path: Path) -> tuple[Path, Path]:
    manifest, _ = demo.generate(tmp_path / "demo", per_cell=1, seed=3)
    index = tmp_path / "index"
    index_catalog(manifest, index, embed=SMALL, run=RUN)
    return manifest, index


def change_catalog(manifest: Path) -> None:
    """Remove one item, re-shoot one, relabel one, touch one (same bytes), add two."""
    header, rows = _read(manifest)
    root = manifest.parent
    (root / rows[0][1]).unlink()
    shutil.copyfile(root / rows[10][1], root / rows[1][1])  # new content under the same id
    rows[2][2] = "relabelled-style"
    rows[2][3] = "vase"
    touched = root / rows[3][1]
    touched.write_bytes(touched.read_bytes())
    os.utime(touched, ns=(1, 1))
    for n in range(2):
        noise(root / "new" / f"n{n}.png", seed=n)
        rows.append([f"new-{n}", f"new/n{n}.png", "new-style", "mug"])
    _write(manifest, header, rows[1:])


def test_sync_applies_every_kind_of_change_in_one_generation(catalog: tuple[Path, Path], tmp_path: Path) -> None:
    manifest, index = catalog
    change_catalog(manifest)
    with StyleSearch.open(index, run=RUN) as engine:
        before = engine.snapshot.number
        report = engine.sync(manifest)
        assert (report.added, report.updated, report.relabelled, report.removed, report.unchanged) == (2, 1, 1, 1, 45)
        assert report.items == 49 and engine.snapshot.number == before + 1 and not report.skipped
        # every stored vector is its file's vector now (the index's own model; float noise)
        records = engine.snapshot.meta.records()
        _, stored = engine.snapshot.vectors_of([r.id for r in records])
        fresh = engine.embed([r.path for r in records])
        assert np.abs(stored - fresh).max() < 1e-4
        again = engine.sync(manifest)  # nothing changed: nothing written
        assert (again.added, again.updated, again.relabelled, again.removed, again.unchanged) == (0, 0, 0, 0, 49)
        assert engine.snapshot.number == before + 1
    full = tmp_path / "full"
    index_catalog(manifest, full, embed=SMALL, run=RUN)
    assert _state(index) == _state(full)  # same ids, labels and attributes as a full index


def test_the_cli_says_what_changed(catalog: tuple[Path, Path], capsys) -> None:  # type: ignore[no-untyped-def]
    import json

    from stylesearch.cli import main

    manifest, index = catalog
    change_catalog(manifest)
    assert main(["sync", str(manifest), "--index", str(index), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert {k: report[k] for k in ("added", "updated", "relabelled", "removed", "unchanged")} == {
        "added": 2, "updated": 1, "relabelled": 1, "removed": 1, "unchanged": 45}  # fmt: skip
    assert main(["sync", str(manifest.parent / "gone"), "--index", str(index)]) == 1
    assert "gone" in capsys.readouterr().err
    (manifest.parent / "empty").mkdir()
    assert main(["sync", str(manifest.parent / "empty"), "--index", str(index)]) == 1
    assert "has no images" in capsys.readouterr().err  # refused before anything is removed


def test_a_failed_sync_leaves_the_index_as_it_was_and_the_next_run_finishes(
    catalog: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest, index = catalog
    state = _state(index)
    change_catalog(manifest)

    def crash(*args: object) -> None:
        raise KeyboardInterrupt  # killed while the new generation is being written

    with StyleSearch.open(index, run=RUN) as engine:
        number = engine.snapshot.number
        monkeypatch.setattr(MetadataStore, "set_stamps", crash)
        with pytest.raises(KeyboardInterrupt):
            engine.sync(manifest)
        monkeypatch.undo()
    assert _state(index) == state
    with StyleSearch.open(index, run=RUN) as engine:
        assert engine.snapshot.number == number
        report = engine.sync(manifest)
        assert (report.added, report.updated, report.removed) == (2, 1, 1)


def test_bad_files_are_skipped_and_cost_nothing_indexed(catalog: tuple[Path, Path]) -> None:
    manifest, index = catalog
    header, rows = _read(manifest)
    root = manifest.parent
    (root / rows[5][1]).write_bytes(b"not an image any more")  # an update that cannot be read
    (root / "broken.png").write_bytes(b"\x89PNG truncated")
    rows.append(["broken", "broken.png", "x", "mug"])
    _write(manifest, header, rows)
    with StyleSearch.open(index, run=RUN) as engine:
        _, before = engine.snapshot.vectors_of([rows[5][0]])
        report = engine.sync(manifest)
        assert report.added == 0 and report.updated == 0 and len(report.skipped) == 2
        _, after = engine.snapshot.vectors_of([rows[5][0]])
        assert np.array_equal(before, after) and len(engine) == 48  # the old vector stays
        with pytest.raises(CatalogError):
            engine.sync(root / "no-such-folder")
        assert len(engine) == 48


def test_uploaded_items_are_kept(catalog: tuple[Path, Path]) -> None:
    manifest, index = catalog
    with StyleSearch.open(index, run=RUN) as engine:
        engine.add([(manifest.parent / _read(manifest)[1][0][1]).read_bytes()], ids=["upload-1"], labels="x")
        report = engine.sync(manifest)
        assert report.removed == 0 and engine.get("upload-1").label == "x"


def test_sync_over_http_needs_the_key(catalog: tuple[Path, Path]) -> None:
    from .service.test_api import AUTH, client_for

    manifest, index = catalog
    change_catalog(manifest)
    with client_for(index) as api:  # no sync roots: refused
        refused = api.post("/v1/sync", json={"catalog": str(manifest)}, headers=AUTH)
        assert refused.status_code == 403 and refused.json()["code"] == "sync_not_allowed"
    with client_for(index, sync_roots=str(manifest.parent.parent)) as api:
        assert api.post("/v1/sync", json={"catalog": str(manifest)}).status_code == 401
        outside = api.post("/v1/sync", json={"catalog": "/etc"}, headers=AUTH)
        assert outside.status_code == 403 and "not under a folder" in outside.json()["message"]
        missing = api.post("/v1/sync", json={"catalog": str(manifest.parent / "gone")}, headers=AUTH)
        assert missing.status_code == 422 and missing.json()["code"] == "bad_catalog"
        assert api.post("/v1/sync", json={"catalog": str(manifest), "extra": 1}, headers=AUTH).status_code == 422
        r = api.post("/v1/sync", json={"catalog": str(manifest)}, headers=AUTH)
        assert r.status_code == 200, r.text
        body = r.json()
        assert (body["added"], body["updated"], body["removed"], body["items"]) == (2, 1, 1, 49)
        assert api.get("/v1/index").json()["items"] == 49


def _inode(gen: Path, name: str) -> int:
    return (gen / name).stat().st_ino


def test_generations_share_unchanged_files_and_a_stamp_only_sync_writes_nothing_large(catalog: tuple[Path, Path]) -> None:
    """A one-photo add links the projection (the model is unchanged); a sync that finds only
    touched files (same content) links the vectors and the search index too, and says so."""
    manifest, index = catalog
    with StyleSearch.open(index, run=RUN) as engine:
        first = engine.snapshot.gen
        engine.add([noise(index.parent / "one.png", seed=9)], ids=["one"])
        second = engine.snapshot.gen
        assert _inode(second, "model/projection.npz") == _inode(first, "model/projection.npz")
        # the catalog's vectors are linked; the added row is a chunk of its own; the exact
        # index is rebuilt from them when read, never written
        assert _inode(second, "vectors.npy") == _inode(first, "vectors.npy")
        assert np.load(second / "ids.1.npy").shape == (1,) and not (second / "index.faiss").exists()
        engine.remove(["one"])
        assert _inode(engine.snapshot.gen, "vectors.npy") != _inode(second, "vectors.npy")  # a removal writes them whole
        third = engine.snapshot.gen
        header, rows = _read(manifest)
        for row in rows[:3]:  # touched: same bytes, new time
            os.utime(manifest.parent / row[1], ns=(2, 2))
        report = engine.sync(manifest)
        assert (report.added, report.updated, report.relabelled, report.removed, report.restamped) == (0, 0, 0, 0, 3)
        assert report.generation == engine.snapshot.number
        fourth = engine.snapshot.gen
        for name in ("vectors.npy", "ids.npy", "model/projection.npz"):
            assert _inode(fourth, name) == _inode(third, name), name
        assert engine.sync(manifest).generation is None  # nothing new: nothing published
