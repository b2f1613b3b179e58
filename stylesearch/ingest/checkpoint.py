"""Resumable ingestion: what ``stylesearch index`` has embedded so far, on disk.

While a large catalog is embedded, every ``every`` images the new vectors are appended as a
chunk file under ``<index>/.ingest/`` (written to a temporary name, fsynced, renamed) and a
small ``progress.json`` records how far the (deterministic) embedding order has got. After a
crash, ``index --resume`` reads the chunks back, skips what they cover and goes on; the
fingerprint (catalog paths and ids, style settings, weights, seed) must match, so that a
resumed run ends with exactly the items of an uninterrupted one. The folder is removed once
the index is published.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from ..index.layout import fsync_path
from ..model.bundle import PROJECTION_FILE
from ..model.projection import Projection

INGEST_DIR = ".ingest"
PROGRESS_FILE = "progress.json"


def fingerprint(parts: list[str]) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode("utf-8", "surrogateescape"))
        digest.update(b"\0")
    return digest.hexdigest()


@dataclass
class Progress:
    seen: int = 0  # entries of the embedding order consumed (embedded or failed)
    positions: list[np.ndarray] = field(default_factory=list)
    vectors: list[np.ndarray] = field(default_factory=list)
    failures: list[tuple[int, str]] = field(default_factory=list)
    projection: Projection | None = None


class IngestCheckpoint:
    def __init__(self, index_root: Path, key: str) -> None:
        self.folder = Path(index_root) / INGEST_DIR
        self.key = key
        self.chunks = 0

    def start(self, resume: bool) -> Progress:
        """A fresh checkpoint (any old one is discarded), or with ``resume`` the saved progress."""
        progress_file = self.folder / PROGRESS_FILE
        if not resume:
            self.clear()
            return Progress()
        if not progress_file.is_file():  # killed before the first checkpoint: start over
            self.clear()
            return Progress()
        state = json.loads(progress_file.read_text())
        if state.get("key") != self.key:
            raise ConfigError(
                "the interrupted run in this index folder was for another catalog or other settings: "
                "run the same command again with --resume, or without --resume to start over"
            )
        out = Progress(seen=int(state["seen"]), failures=[(int(p), str(r)) for p, r in state["failures"]])
        self.chunks = int(state["chunks"])
        for i in range(self.chunks):
            with np.load(self.folder / f"chunk-{i:06d}.npz") as data:
                out.positions.append(data["positions"])
                out.vectors.append(data["vectors"])
        if (self.folder / PROJECTION_FILE).is_file():
            out.projection = Projection.load(self.folder / PROJECTION_FILE)
        return out

    def save(
        self,
        seen: int,
        positions: np.ndarray,
        vectors: np.ndarray,
        failures: list[tuple[int, str]],
        projection: Projection | None,
    ) -> None:
        """Append a chunk (may be empty) and record that ``seen`` order entries are done."""
        self.folder.mkdir(parents=True, exist_ok=True)
        if projection is not None and not (self.folder / PROJECTION_FILE).exists():
            tmp = self.folder / (PROJECTION_FILE + ".tmp")
            projection.save(tmp)
            fsync_path(tmp)
            os.replace(tmp, self.folder / PROJECTION_FILE)
        chunk = self.folder / f"chunk-{self.chunks:06d}.npz"
        with open(str(chunk) + ".tmp", "wb") as fh:
            np.savez(fh, positions=positions.astype(np.int64), vectors=vectors.astype(np.float32))
        fsync_path(Path(str(chunk) + ".tmp"))
        os.replace(str(chunk) + ".tmp", chunk)
        self.chunks += 1
        state = {"key": self.key, "seen": seen, "chunks": self.chunks, "failures": failures}
        tmp = self.folder / (PROGRESS_FILE + ".tmp")
        tmp.write_text(json.dumps(state))
        fsync_path(tmp)
        os.replace(tmp, self.folder / PROGRESS_FILE)

    def clear(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
