"""Malformed manifests through `stylesearch index` (the CLI's own entry point, in process):
one clear line on stderr, exit 1, and the index that was live before is untouched — nothing
is indexed half-way."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from stylesearch.cli import main
from stylesearch.index.layout import IndexDir

from ..conftest import solid


def snapshot(index: Path) -> tuple[str, dict[str, float]]:
    """The live generation and every file's modification time."""
    live = IndexDir(index).current()
    files = {str(p.relative_to(index)): p.stat().st_mtime for p in index.rglob("*") if p.is_file()}
    return str(live), files


CASES = {
    "bad quoting": ("m.csv", 'path,label\n"good.jpg,x\n', "not valid CSV"),
    "extra fields": ("m.csv", "path,label\ngood.jpg,x,extra\n", "more fields than header"),
    "no path column": ("m.csv", "file,label\ngood.jpg,x\n", "no 'path' column"),
    "duplicate ids": ("m.csv", "id,path\n1,good.jpg\n1,other.jpg\n", "appears on lines 2 and 3"),
    "leaves the folder": ("m.csv", "path\ngood.jpg\n../../etc/passwd\n", "leaves the catalog folder"),
    "missing file after good ones": ("m.csv", "path\ngood.jpg\nother.jpg\nnot-there.jpg\n", "missing file"),
    "empty path": ("m.csv", "path,label\n,x\n", "empty 'path'"),
    "header only": ("m.csv", "path,label\n", "lists no usable images"),
    "not UTF-8": ("m.csv", "path,label\ngood.jpg,caf\xe9\n".encode("latin-1"), "not UTF-8"),
    "JSONL not objects": ("m.jsonl", '{"path": "good.jpg"}\n[1, 2]\n', "expected a JSON object"),
    "JSONL broken": ("m.jsonl", '{"path": "good.jpg"\n', "invalid JSON"),
    "not a manifest": ("m.txt", "good.jpg\n", "not a folder"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_malformed_manifest_is_one_clear_error_and_changes_nothing(
    case: str, index_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name, content, message = CASES[case]
    folder = tmp_path / "catalog"
    solid(folder / "good.jpg", (200, 20, 20))
    solid(folder / "other.jpg", (20, 200, 20))
    manifest = folder / name
    manifest.write_bytes(content if isinstance(content, bytes) else content.encode())
    before = snapshot(index_copy)
    code = main(["index", str(manifest), "--index", str(index_copy), "--device", "cpu", "--image-size", "64"])
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("stylesearch: error:") and message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert snapshot(index_copy) == before


def test_confined_catalogs_refuse_absolute_paths_and_outside_links(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "catalog"
    solid(folder / "good.jpg", (200, 20, 20))
    outside = solid(tmp_path / "secret.png", (1, 2, 3))
    (folder / "m.csv").write_text(f"path\ngood.jpg\n{outside}\n")
    index = tmp_path / "idx"
    args = ["index", str(folder / "m.csv"), "--index", str(index), "--device", "cpu", "--image-size", "64", "--json"]
    assert main([*args, "--confine-paths"]) == 1
    assert "absolute path" in capsys.readouterr().err and not index.exists()
    assert main(args) == 0  # absolute paths are the catalog owner's choice unless confined
    capsys.readouterr()

    linked = tmp_path / "linked"
    solid(linked / "style" / "good.jpg", (200, 20, 20))
    solid(linked / "style" / "good2.jpg", (20, 20, 200))
    os.symlink(outside, linked / "style" / "sneaky.png")
    assert (
        main(
            [
                "index",
                str(linked),
                "--index",
                str(tmp_path / "idx2"),
                "--device",
                "cpu",
                "--image-size",
                "64",
                "--confine-paths",
                "--json",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "outside the catalog folder" in out and '"added": 2' in out
    shutil.rmtree(tmp_path / "idx2")


def test_manifest_links_outside_the_folder_need_trust(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "catalog"
    solid(folder / "good.jpg", (200, 20, 20))
    os.symlink(solid(tmp_path / "elsewhere.png", (1, 2, 3)), folder / "link.png")
    (folder / "m.csv").write_text("path\ngood.jpg\nlink.png\n")
    args = ["index", str(folder / "m.csv"), "--device", "cpu", "--image-size", "64", "--json"]
    assert main([*args, "--index", str(tmp_path / "a"), "--confine-paths"]) == 1
    assert "leads outside the catalog folder" in capsys.readouterr().err
    assert main([*args, "--index", str(tmp_path / "b")]) == 0  # the catalog owner's own link
    assert '"added": 2' in capsys.readouterr().out
