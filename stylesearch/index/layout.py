"""An index folder on disk, written in crash-safe generations.

``<root>/CURRENT`` names the live generation folder ``<root>/gen-NNNNNN``. A writer takes
``<root>/.lock``, builds ``gen-NNNNNN.tmp``, fsyncs it, renames it to ``gen-NNNNNN`` and then
atomically replaces ``CURRENT``. A crash at any point leaves the previous generation live;
leftover ``*.tmp`` folders are removed by the next writer. The two newest generations are kept
so that a reader that opened the older one keeps working.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import IndexCorruptError, IndexLockedError, IndexNotFoundError

log = logging.getLogger(__name__)

CURRENT_FILE = "CURRENT"
MANIFEST_FILE = "manifest.json"
LOCK_FILE = ".lock"
KEEP_GENERATIONS = 2


def fsync_path(path: Path) -> None:
    """fsync a file or a folder (a folder's entry list: renames in it become durable)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_json(path: Path, data: Any) -> None:
    """Write JSON to ``path`` atomically (temp file, fsync, rename)."""
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2, sort_keys=True)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def fsync_tree(folder: Path) -> None:
    for dirpath, _, filenames in os.walk(folder):
        for name in filenames:
            fsync_path(Path(dirpath) / name)
        fsync_path(Path(dirpath))


class IndexDir:
    """The folder of one index: generations, the live pointer and the writer lock."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def exists(self) -> bool:
        return (self.root / CURRENT_FILE).is_file()

    def current(self) -> Path:
        """Folder of the live generation; :class:`IndexNotFoundError` if there is none."""
        pointer = self.root / CURRENT_FILE
        try:
            name = pointer.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            if self.root.is_dir() and any(self.root.glob("gen-*")):
                raise IndexCorruptError(f"{str(self.root)!r} has generations but no CURRENT file; rebuild the index") from None
            raise IndexNotFoundError(
                f"no index at {str(self.root)!r}: build one with 'stylesearch index CATALOG --index {self.root}'"
            ) from None
        gen = self.root / name
        if not name.startswith("gen-") or not (gen / MANIFEST_FILE).is_file():
            raise IndexCorruptError(f"CURRENT in {str(self.root)!r} points at a missing generation {name!r}; rebuild the index")
        return gen

    def manifest(self, gen: Path | None = None) -> dict[str, Any]:
        path = (gen or self.current()) / MANIFEST_FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise IndexCorruptError(f"cannot read {str(path)!r} ({exc}); rebuild the index") from exc
        if not isinstance(data, dict):
            raise IndexCorruptError(f"{str(path)!r} is not a manifest object; rebuild the index")
        return data

    @contextlib.contextmanager
    def lock(self, timeout: float = 120.0) -> Iterator[None]:
        """Exclusive writer lock across processes (waits up to ``timeout`` seconds)."""
        self.root.mkdir(parents=True, exist_ok=True)
        fh = (self.root / LOCK_FILE).open("a")
        deadline = time.monotonic() + timeout
        try:
            while True:
                try:
                    fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise IndexLockedError(
                            f"another process has been writing to {str(self.root)!r} for over {timeout:.0f} s: "
                            "wait for it to finish, then retry"
                        ) from None
                    time.sleep(0.05)
            yield
        finally:
            fh.close()

    def _generation_numbers(self) -> list[int]:
        numbers = []
        for p in self.root.glob("gen-*"):
            suffix = p.name[4:]
            if suffix.isdigit():
                numbers.append(int(suffix))
        return sorted(numbers)

    @contextlib.contextmanager
    def new_generation(self) -> Iterator[Path]:
        """Yield an empty folder to write a generation into; publish it when the block ends
        without error, delete it otherwise. Call with :meth:`lock` held."""
        for stale in self.root.glob("gen-*.tmp"):
            shutil.rmtree(stale, ignore_errors=True)
        number = (self._generation_numbers() or [0])[-1] + 1
        tmp = self.root / f"gen-{number:06d}.tmp"
        tmp.mkdir(parents=True)
        try:
            yield tmp
            fsync_tree(tmp)
            final = self.root / f"gen-{number:06d}"
            os.rename(tmp, final)
            fsync_path(self.root)
            pointer_tmp = self.root / (CURRENT_FILE + ".tmp")
            with pointer_tmp.open("w", encoding="utf-8") as fh:
                fh.write(final.name + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(pointer_tmp, self.root / CURRENT_FILE)
            fsync_path(self.root)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        self._collect_garbage()

    def _collect_garbage(self) -> None:
        live = self.current().name
        for number in self._generation_numbers()[:-KEEP_GENERATIONS]:
            name = f"gen-{number:06d}"
            if name != live:
                shutil.rmtree(self.root / name, ignore_errors=True)
