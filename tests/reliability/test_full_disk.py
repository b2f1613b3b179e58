"""A full disk (ENOSPC) while a new generation is written: the write fails with a one-line
error, the previous generation stays live and whole, and no temporary folder is left."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from stylesearch import StyleSearch
from stylesearch.cli import main
from stylesearch.index import layout

from ..conftest import RUN, solid


def full_disk(*_: object, **__: object) -> None:
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize("where", ["fsync_tree", "write_json"])
def test_a_full_disk_costs_nothing_already_indexed(
    where: str, index_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with StyleSearch.open(index_copy, run=RUN) as engine:
        before = {h.id for h in engine.browse(limit=1000)}
        live = engine.snapshot.gen
    image = solid(tmp_path / "new.png", (5, 200, 5))
    monkeypatch.setattr(layout, where, full_disk)
    if where == "write_json":  # the manifest is written through the engine's own import
        import stylesearch.generation as generation

        monkeypatch.setattr(generation, "write_json", full_disk)
    code = main(["add", str(image), "--id", "new", "--index", str(index_copy), "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 1 and "No space left on device" in err and "Traceback" not in err
    monkeypatch.undo()
    with StyleSearch.open(index_copy, run=RUN) as engine:
        assert engine.snapshot.gen == live
        assert {h.id for h in engine.browse(limit=1000)} == before
        assert len(engine) == engine.snapshot.meta.count()
    assert not list(index_copy.glob("gen-*.tmp"))
    assert main(["add", str(image), "--id", "new", "--index", str(index_copy), "--device", "cpu"]) == 0  # space again
