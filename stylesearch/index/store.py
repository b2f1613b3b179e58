"""FAISS vector store keyed by stable int64 ids, with the raw vectors kept beside it.

The raw vectors (``vectors.npy``, float32 or float16, rows in id order) let an index be
rebuilt as another FAISS type without re-embedding. Search is inner product on
L2-normalised vectors (cosine similarity).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..errors import IndexCorruptError, MissingDependencyError

INDEX_FILE = "index.faiss"
VECTORS_FILE = "vectors.npy"
IDS_FILE = "ids.npy"
DEFAULT_INDEX_KEY = "IDMap2,Flat"


def import_faiss() -> Any:
    """The ``faiss`` module, or a :class:`MissingDependencyError` naming the extras."""
    try:
        import faiss
    except ImportError as exc:
        raise MissingDependencyError(
            "FAISS is not installed: pip install 'stylesearch[cpu]' (faiss-cpu) or "
            "'stylesearch[gpu]' (faiss-gpu) — exactly one of them, they install the same module"
        ) from exc
    return faiss


def faiss_backend() -> str:
    """``faiss-gpu`` when faiss has GPU support and sees a GPU, else ``faiss-cpu``."""
    faiss = import_faiss()
    if hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0:
        return "faiss-gpu"
    return "faiss-cpu"


class VectorStore:
    """FAISS inner-product index + raw vectors. ``ids`` int64 [N] ascending, ``vectors``
    [N, D] in the same order."""

    def __init__(self, dim: int, *, vector_dtype: str = "float32", index_key: str = DEFAULT_INDEX_KEY) -> None:
        self.faiss = import_faiss()
        self.dim = dim
        self.vector_dtype = np.dtype(vector_dtype)
        self.index_key = index_key
        self.ids = np.zeros(0, np.int64)
        self.vectors = np.zeros((0, dim), self.vector_dtype)
        self.index = self._new_index()

    def _new_index(self) -> Any:
        return self.faiss.index_factory(self.dim, self.index_key, self.faiss.METRIC_INNER_PRODUCT)

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    def _check(self, vectors: np.ndarray) -> np.ndarray:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.dim:
            raise ValueError(f"expected vectors of shape [N, {self.dim}], got {list(vectors.shape)}")
        return vectors

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add float32 [N, D] vectors under new int64 ``ids`` (each larger than any present)."""
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        vectors = self._check(vectors)
        if len(ids) != len(vectors):
            raise ValueError(f"{len(ids)} ids for {len(vectors)} vectors")
        if len(ids) == 0:
            return
        if np.any(np.diff(ids) <= 0) or (len(self.ids) and ids[0] <= self.ids[-1]):
            raise ValueError("new ids must be increasing and larger than the ids already stored")
        self.index.add_with_ids(vectors, ids)
        self.ids = np.concatenate([self.ids, ids])
        self.vectors = np.concatenate([self.vectors, vectors.astype(self.vector_dtype)])

    def remove(self, ids: np.ndarray) -> int:
        """Remove ``ids``; returns how many were present."""
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        keep = ~np.isin(self.ids, ids)
        removed = int((~keep).sum())
        if removed:
            self.index.remove_ids(self.faiss.IDSelectorBatch(ids))
            self.ids, self.vectors = self.ids[keep], self.vectors[keep]
        return removed

    def get(self, ids: np.ndarray) -> np.ndarray:
        """Stored vectors of ``ids`` as float32 [N, D]; KeyError for an absent id."""
        ids = np.asarray(ids, dtype=np.int64)
        rows = np.searchsorted(self.ids, ids)
        ok = (
            (rows < len(self.ids)) & (self.ids[np.minimum(rows, len(self.ids) - 1)] == ids)
            if len(self.ids)
            else np.zeros(len(ids), bool)
        )
        if not np.all(ok):
            raise KeyError(f"ids not in the store: {ids[~ok][:5].tolist()}")
        return self.vectors[rows].astype(np.float32)

    def search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """k nearest by inner product: (scores float32 [Q, k], ids int64 [Q, k]); missing
        results (fewer than k candidates) are id -1. ``allowed`` restricts to those ids."""
        queries = self._check(queries)
        if k < 1:
            raise ValueError("k must be >= 1")
        if allowed is not None:
            allowed = np.ascontiguousarray(allowed, dtype=np.int64)
            if len(allowed) == 0 or len(self.ids) == 0:
                return (np.full((len(queries), k), -np.inf, np.float32), np.full((len(queries), k), -1, np.int64))
            params = self.faiss.SearchParameters(sel=self.faiss.IDSelectorBatch(allowed))
            # faiss.contrib.torch_utils (imported by pytorch-metric-learning) replaces
            # Index.search with a version without ``params``; the original stays as search_numpy.
            search = getattr(self.index, "search_numpy", self.index.search)
            scores, ids = search(queries, k, params=params)
        else:
            scores, ids = self.index.search(queries, k)
        scores = np.where(ids >= 0, scores, -np.inf).astype(np.float32)
        return scores, ids.astype(np.int64)

    # ----------------------------------------------------------------- persistence

    def save(self, folder: Path) -> None:
        """Write ``index.faiss``, ``vectors.npy`` and ``ids.npy`` into ``folder`` (a new
        generation folder: :class:`~stylesearch.index.layout.IndexDir` fsyncs and publishes it)."""
        np.save(folder / VECTORS_FILE, self.vectors)
        np.save(folder / IDS_FILE, self.ids)
        self.faiss.write_index(self.index, str(folder / INDEX_FILE))

    @classmethod
    def load(cls, folder: Path, *, dim: int, vector_dtype: str, index_key: str = DEFAULT_INDEX_KEY) -> VectorStore:
        store = cls(dim, vector_dtype=vector_dtype, index_key=index_key)
        try:
            store.ids = np.load(folder / IDS_FILE, allow_pickle=False)
            store.vectors = np.load(folder / VECTORS_FILE, allow_pickle=False)
            store.index = store.faiss.read_index(str(folder / INDEX_FILE))
        except (OSError, ValueError, RuntimeError) as exc:
            raise IndexCorruptError(f"cannot read the vector index in {str(folder)!r} ({exc}); rebuild it") from exc
        if store.vectors.shape != (len(store.ids), dim) or store.index.ntotal != len(store.ids) or store.index.d != dim:
            raise IndexCorruptError(
                f"vector files in {str(folder)!r} disagree ({len(store.ids)} ids, vectors "
                f"{list(store.vectors.shape)}, FAISS {store.index.ntotal}x{store.index.d}); rebuild the index"
            )
        return store
