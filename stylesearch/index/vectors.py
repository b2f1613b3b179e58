"""The raw style vectors of a generation, whatever engine searches them.

``ids`` int64 [N] ascending, ``vectors`` [N, D] (float32 or float16) in the same order, and
``tombstones``: ids removed from a search index that cannot delete (HNSW), left out of every
search until the next rebuild. Kept in ``vectors.npy``, ``ids.npy`` and ``tombstones.npy`` so
that an index can be rebuilt as another type, or moved to another store, without re-embedding.

Rows added since (format v2) are further chunks, ``vectors.1.npy`` / ``ids.1.npy`` …: a
generation that only adds links the previous generation's chunks (:mod:`stylesearch.files`)
and writes one new chunk, so a one-photo ``add`` writes one row, not the catalog. A removal,
or more than :data:`MAX_CHUNKS` chunks, writes the arrays whole again as chunk 0.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import IndexCorruptError
from ..files import reuse

VECTORS_FILE = "vectors.npy"
IDS_FILE = "ids.npy"
TOMBSTONES_FILE = "tombstones.npy"
MAX_CHUNKS = 16


def chunk_files(chunk: int) -> tuple[str, str]:
    """(vectors file, ids file) of chunk ``chunk`` (0: ``vectors.npy``, ``ids.npy``)."""
    return (VECTORS_FILE, IDS_FILE) if chunk == 0 else (f"vectors.{chunk}.npy", f"ids.{chunk}.npy")


def chunks_in(folder: Path) -> int:
    """How many chunks ``folder`` holds (chunk 0 counted when present)."""
    n = 0
    while (folder / chunk_files(n)[1]).is_file():
        n += 1
    return n


class Vectors:
    """ids, vectors and tombstones; every change makes new arrays (readers of the old ones
    are never disturbed)."""

    def __init__(self, dim: int, vector_dtype: str = "float32") -> None:
        self.dim = dim
        self.vector_dtype = np.dtype(vector_dtype)
        self.ids = np.zeros(0, np.int64)
        self.vectors = np.zeros((0, dim), self.vector_dtype)
        self.tombstones = np.zeros(0, np.int64)
        # the generation folder whose files hold the first ``origin_rows`` rows (in
        # ``origin_chunks`` chunks), while no row of them was removed
        self.origin: Path | None = None
        self.origin_rows = 0
        self.origin_chunks = 0

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    def check(self, vectors: np.ndarray) -> np.ndarray:
        """``vectors`` as contiguous float32 [N, D]; ValueError for another shape."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.dim:
            raise ValueError(f"expected vectors of shape [N, {self.dim}], got {list(vectors.shape)}")
        return vectors

    def check_new_ids(self, ids: np.ndarray, count: int) -> np.ndarray:
        """``ids`` as int64, checked to be increasing and above every id stored or removed."""
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if len(ids) != count:
            raise ValueError(f"{len(ids)} ids for {count} vectors")
        if len(ids) and (np.any(np.diff(ids) <= 0) or (len(self.ids) and ids[0] <= self.ids[-1])):
            raise ValueError("new ids must be increasing and larger than the ids already stored")
        if len(ids) and len(self.tombstones) and ids[0] <= self.tombstones.max():
            raise ValueError("new ids must be larger than removed ones")
        return ids

    def append(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        self.ids = np.concatenate([self.ids, ids])
        self.vectors = np.concatenate([self.vectors, vectors.astype(self.vector_dtype)])

    def drop(self, ids: np.ndarray) -> np.ndarray:
        """Remove ``ids``; returns the ids that were present."""
        keep = ~np.isin(self.ids, np.asarray(ids, np.int64))
        gone = self.ids[~keep]
        if len(gone):
            self.ids, self.vectors = self.ids[keep], self.vectors[keep]
            self.origin = None
        return gone

    def rows(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(row of each id, whether it is present)."""
        ids = np.asarray(ids, dtype=np.int64)
        if not len(self.ids):
            return np.zeros(len(ids), np.int64), np.zeros(len(ids), bool)
        rows = np.searchsorted(self.ids, ids)
        ok = (rows < len(self.ids)) & (self.ids[np.minimum(rows, len(self.ids) - 1)] == ids)
        return rows, ok

    def get(self, ids: np.ndarray) -> np.ndarray:
        """Stored vectors of ``ids`` as float32 [N, D]; KeyError for an absent id."""
        ids = np.asarray(ids, dtype=np.int64)
        rows, ok = self.rows(ids)
        if not np.all(ok):
            raise KeyError(f"ids not in the store: {ids[~ok][:5].tolist()}")
        return self.vectors[rows].astype(np.float32)

    def copy(self) -> Vectors:
        out = Vectors(self.dim, str(self.vector_dtype))
        out.ids, out.vectors, out.tombstones = self.ids.copy(), self.vectors.copy(), self.tombstones.copy()
        out.origin, out.origin_rows, out.origin_chunks = self.origin, self.origin_rows, self.origin_chunks
        return out

    @property
    def unchanged(self) -> bool:
        """Whether the arrays are exactly those of :attr:`origin`."""
        return self.origin is not None and self.origin_rows == len(self)

    def save(self, folder: Path) -> None:
        """Write the arrays into ``folder``: the chunks of :attr:`origin` linked, and the rows
        added since as one new chunk; whole, as chunk 0, after a removal or at :data:`MAX_CHUNKS`."""
        linked = [name for c in range(self.origin_chunks) for name in chunk_files(c)]
        if len(self.tombstones):
            np.save(folder / TOMBSTONES_FILE, self.tombstones)
        if self.unchanged and reuse(self.origin, folder, linked):
            return
        fresh = self.origin is not None and 0 < self.origin_rows < len(self) and self.origin_chunks < MAX_CHUNKS
        if fresh and reuse(self.origin, folder, linked):
            vectors_file, ids_file = chunk_files(self.origin_chunks)
            np.save(folder / vectors_file, self.vectors[self.origin_rows :])
            np.save(folder / ids_file, self.ids[self.origin_rows :])
            return
        np.save(folder / VECTORS_FILE, self.vectors)
        np.save(folder / IDS_FILE, self.ids)

    def saved_in(self, folder: Path) -> None:
        """Record that ``folder`` (a published generation) now holds these arrays."""
        self.origin, self.origin_rows, self.origin_chunks = folder, len(self), chunks_in(folder)

    @classmethod
    def load(cls, folder: Path, dim: int, vector_dtype: str = "float32") -> Vectors:
        out = cls(dim, vector_dtype)
        try:
            n = max(1, chunks_in(folder))
            chunks = [[np.load(folder / name, allow_pickle=False) for name in chunk_files(c)] for c in range(n)]
            out.vectors = chunks[0][0] if len(chunks) == 1 else np.concatenate([v for v, _ in chunks])
            out.ids = chunks[0][1] if len(chunks) == 1 else np.concatenate([i for _, i in chunks])
            if (folder / TOMBSTONES_FILE).exists():
                out.tombstones = np.load(folder / TOMBSTONES_FILE, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise IndexCorruptError(f"cannot read the vectors in {str(folder)!r} ({exc}); rebuild the index") from exc
        if out.vectors.shape != (len(out.ids), dim):
            raise IndexCorruptError(
                f"vector files in {str(folder)!r} disagree ({len(out.ids)} ids, vectors {list(out.vectors.shape)}); "
                "rebuild the index"
            )
        out.saved_in(folder)
        return out
