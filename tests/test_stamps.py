"""File stamps come from the bytes the decoders read (each file read once while indexing),
a catalog is listed by folder with the order and refusals it always had, and sync reads a
file only when its size or time changed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from stylesearch import StyleSearch, demo, index_catalog, stamps
from stylesearch.catalog import load_catalog
from stylesearch.index.metadata import MetadataStore

from .conftest import RUN, SMALL, noise


def test_read_stamped_gives_the_stamp_of_exactly_the_bytes_read(tmp_path: Path) -> None:
    photo = noise(tmp_path / "a.png", seed=1)
    data, stamp = stamps.read_stamped(photo, 1 << 20)
    assert data == photo.read_bytes() and stamp == stamps.stamp(photo)
    assert stamps.read_stamped(photo, 10) == (None, None)  # over the limit: the decoder explains
    (tmp_path / "empty.jpg").write_bytes(b"")
    assert stamps.read_stamped(tmp_path / "empty.jpg", 1 << 20) == (None, None)
    assert stamps.read_stamped(tmp_path, 1 << 20) == (None, None)  # a folder
    assert stamps.read_stamped(tmp_path / "gone.jpg", 1 << 20) == (None, None)
    assert stamps.read_stamped(photo, 1 << 20, stamped=False) == (photo.read_bytes(), None)


def test_an_index_records_each_files_stamp_without_reading_it_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    manifest, _ = demo.generate(tmp_path / "demo", per_cell=1, seed=3)
    read_again: list[Path] = []
    real = stamps.digest
    monkeypatch.setattr(stamps, "digest", lambda path: read_again.append(Path(path)) or real(path))
    report = index_catalog(manifest, tmp_path / "index", embed=SMALL, run=RUN)
    assert not read_again, "a file was read again after its photo was embedded"
    assert report.stages.get("stamp", 0.0) < 0.5
    meta = MetadataStore(next((tmp_path / "index").glob("gen-*")) / "metadata.sqlite")
    recorded = meta.stamps()
    records = meta.records()
    meta.close()
    assert len(recorded) == len(records) == report.items
    for record in records:
        assert recorded[record.vid] == stamps.stamp(record.path)  # size, time and BLAKE2b of the file
    with StyleSearch.open(tmp_path / "index", run=RUN) as engine:  # the manifest says what computed the vectors
        assert engine.info()["computed_by"] == [engine.embedder.describe_runtime()]
        assert engine.embedder.describe_runtime() in ("torch fp32 on cpu", "openvino fp32")


def test_sync_reads_only_files_whose_size_or_time_changed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "cat"
    for n in range(6):
        noise(folder / "style" / f"p{n}.png", seed=n)
    index_catalog(folder, tmp_path / "index", embed=SMALL, run=RUN)
    touched = folder / "style" / "p1.png"
    os.utime(touched, ns=(1, 1))  # same bytes, another time
    noise(folder / "style" / "p9.png", seed=9)  # new: read by the decoder only
    hashed: list[str] = []
    real = stamps.digest
    monkeypatch.setattr(stamps, "digest", lambda path: hashed.append(Path(path).name) or real(path))
    with StyleSearch.open(tmp_path / "index", run=RUN) as engine:
        report = engine.sync(folder)
        assert (report.added, report.updated, report.restamped, report.unchanged) == (1, 0, 1, 6)
        assert hashed == ["p1.png"]
        recorded = engine.snapshot.meta.stamps()
        by_id = {r.id: r.vid for r in engine.snapshot.meta.records()}
        assert recorded[by_id["style/p9"]] == stamps.stamp(folder / "style" / "p9.png")
        assert recorded[by_id["style/p1"]] == stamps.stamp(touched)


def test_folder_listing_keeps_its_order_and_refusals(tmp_path: Path) -> None:
    root = tmp_path / "cat"
    names = ("b/z.jpg", "b/a.JPG", "b/sub/m.png", "b/sub/deeper/k.webp", "a/x.jpeg", "top.png", "b/notes.txt", "b/.hidden.jpg")
    names += ("b/odd.",)
    for rel in names:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"x")
    (root / ".git").mkdir()
    (root / ".git" / "c.jpg").write_bytes(b"x")
    os.symlink(root / "b" / "sub", root / "b" / "loop")  # a link to a folder: not followed
    os.symlink(root / "missing.jpg", root / "b" / "broken.jpg")
    catalog = load_catalog(root)
    assert [(i.id, i.label) for i in catalog.items] == [
        ("a/x", "a"),
        ("b/a", "b"),
        ("b/z", "b"),
        ("b/sub/m", "b"),
        ("b/sub/deeper/k", "b"),
        ("top", None),
    ]
    assert all(i.path == root / f"{i.id}{Path(i.path).suffix}" for i in catalog.items)
    assert {(s.path, s.reason.split(" (")[0]) for s in catalog.skipped} == {
        ("b/broken.jpg", "not a regular file"),
        ("b/notes.txt", "not an image file name"),
        ("b/odd.", "not an image file name"),
    }
    odd = {s.reason for s in catalog.skipped if s.path == "b/odd."}
    assert odd == {"not an image file name (no suffix)"}  # as Path.suffix says


def test_manifest_paths_are_normalised_and_checked(tmp_path: Path) -> None:
    root = tmp_path / "cat"
    for n in range(40):  # enough rows in one folder for it to be listed once
        noise(root / "many" / f"{n}.png", seed=n)
    noise(root / "one.png", seed=99)
    (root / "folder.png").mkdir()
    rows = [f"many/{n}.png,m{n}" for n in range(40)] + ["./one.png,a", "many//../one.png,b", "folder.png,c"]
    (root / "m.csv").write_text("path,id\n" + "\n".join(rows) + "\n")
    catalog = load_catalog(root / "m.csv")
    assert len(catalog.items) == 42 and [s.path for s in catalog.skipped] == ["folder.png"]
    assert {str(i.path) for i in catalog.items if i.id in ("a", "b")} == {str(root / "one.png")}
    (root / "bad.csv").write_text("path\nmany/../../outside.png\n")
    with pytest.raises(Exception, match="leaves the catalog folder"):
        load_catalog(root / "bad.csv")
    (root / "gone.csv").write_text("path\n" + "\n".join(f"many/{n}.png" for n in range(35)) + "\nmany/nope.png\n")
    with pytest.raises(Exception, match="1 missing file"):
        load_catalog(root / "gone.csv")


def test_an_unreadable_catalog_folder_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "cat"
    noise(root / "a" / "p.png", seed=1)
    real = os.scandir

    def refuse(path: str) -> object:
        if Path(path) == root:
            raise PermissionError(13, "Permission denied")
        return real(path)

    monkeypatch.setattr(os, "scandir", refuse)  # as for a folder without read permission (root reads any)
    with pytest.raises(Exception, match="cannot read catalog folder .*Permission denied.*check its permissions"):
        load_catalog(root)


def test_the_listing_shortcuts_make_the_paths_the_library_would() -> None:
    """``parent_and_name`` is ``os.path.split`` and ``child`` is ``folder / name`` for the paths
    a listing or a normalised manifest row gives (the shortcuts only skip the parsing)."""
    from stylesearch.listing import child, parent_and_name

    for path in ("/a.jpg", "/x/y/z.jpg", "/x/y/", "/x/a b/café.png", "//net/share/p.jpg", "/x/..", "rel/p.jpg", "p.jpg"):
        assert parent_and_name(path) == os.path.split(path), path
    for folder in (Path("/"), Path("/x/y"), Path("rel"), Path(".")):
        for name in ("p.jpg", "a b.PNG", "café.webp", "..."):
            made = child(folder, name)
            assert made == folder / name and str(made) == str(folder / name) and made.parts == (folder / name).parts
            assert made.name == name and made.parent == folder
