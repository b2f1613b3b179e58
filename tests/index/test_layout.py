from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from stylesearch.errors import IndexCorruptError, IndexLockedError, IndexNotFoundError
from stylesearch.index import IndexDir
from stylesearch.index.layout import write_json


def _publish(folder: IndexDir, n: int) -> None:
    with folder.lock(), folder.new_generation() as gen:
        write_json(gen / "manifest.json", {"n": n})


def test_generations_publish_atomically_and_are_collected(tmp_path: Path) -> None:
    folder = IndexDir(tmp_path / "idx")
    with pytest.raises(IndexNotFoundError, match="stylesearch index"):
        folder.current()
    for n in range(4):
        _publish(folder, n)
    assert folder.manifest() == {"n": 3}
    assert sorted(p.name for p in folder.root.glob("gen-*")) == ["gen-000003", "gen-000004"]


def test_failed_write_keeps_the_old_generation(tmp_path: Path) -> None:
    folder = IndexDir(tmp_path / "idx")
    _publish(folder, 1)
    with pytest.raises(RuntimeError), folder.lock(), folder.new_generation() as gen:
        write_json(gen / "manifest.json", {"n": 2})
        raise RuntimeError("crash while writing")
    assert folder.manifest() == {"n": 1}
    assert not list(folder.root.glob("*.tmp"))
    (folder.root / "gen-000009.tmp").mkdir()  # left by a killed writer
    _publish(folder, 3)
    assert folder.manifest() == {"n": 3} and not (folder.root / "gen-000009.tmp").exists()


def test_dangling_pointer_is_reported(tmp_path: Path) -> None:
    folder = IndexDir(tmp_path)
    _publish(folder, 1)
    (tmp_path / "CURRENT").write_text("gen-000777\n")
    with pytest.raises(IndexCorruptError, match="missing generation"):
        folder.current()


def test_writer_lock_excludes_other_writers(tmp_path: Path) -> None:
    folder = IndexDir(tmp_path)
    held = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with IndexDir(tmp_path).lock():
            held.set()
            release.wait(5)

    t = threading.Thread(target=hold)
    t.start()
    held.wait(5)
    start = time.monotonic()
    with pytest.raises(IndexLockedError, match="another process"), folder.lock(timeout=0.2):
        pass
    assert time.monotonic() - start < 2
    release.set()
    t.join()
    with folder.lock(timeout=1):
        pass
