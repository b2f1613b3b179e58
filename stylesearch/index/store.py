"""FAISS vector store keyed by stable int64 ids, with the raw vectors kept beside it.

The raw vectors (``vectors.npy``, float32 or float16, rows in id order) let an index be
rebuilt as another FAISS type without re-embedding. Search is inner product on
L2-normalised vectors (cosine similarity).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import IndexCorruptError, MissingDependencyError
from .factory import kind_of_key
from .metadata import MetadataStore, WhereValue

INDEX_FILE = "index.faiss"
VECTORS_FILE = "vectors.npy"
IDS_FILE = "ids.npy"
TOMBSTONES_FILE = "tombstones.npy"
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
    [N, D] in the same order.

    ``index_key`` is any FAISS factory string (see :mod:`stylesearch.index.factory`); an
    untrained index (IVF) is trained on the first vectors added. ``search_params`` (``nprobe``
    or ``efSearch``) apply to every search; ``refine > 1`` re-scores ``refine·k`` candidates
    exactly on the raw vectors. Types that cannot remove (HNSW) keep removed ids as
    ``tombstones``: filtered out of every search (which still returns k results) until the
    next rebuild."""

    def __init__(
        self,
        dim: int,
        *,
        vector_dtype: str = "float32",
        index_key: str = DEFAULT_INDEX_KEY,
        search_params: dict[str, int] | None = None,
        refine: int = 1,
        train_size: int = 131_072,
    ) -> None:
        self.faiss = import_faiss()
        self.dim = dim
        self.vector_dtype = np.dtype(vector_dtype)
        self.index_key = index_key
        self.search_params = dict(search_params or {})
        self.refine = max(1, int(refine))
        self.train_size = train_size
        self.ids = np.zeros(0, np.int64)
        self.vectors = np.zeros((0, dim), self.vector_dtype)
        self.tombstones = np.zeros(0, np.int64)
        self.index = self._new_index()
        self._live: tuple[np.ndarray, Any] | None = None  # (tombstones, selector of the other ids)
        self.torch_device: str | None = None  # exact torch search on this device instead of FAISS
        self.faiss_gpu = False  # unfiltered searches on a faiss-gpu copy of the index (flat, IVF)
        self._accelerated: Any = None

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
        if len(self.tombstones) and ids[0] <= self.tombstones.max():
            raise ValueError("new ids must be larger than removed ones")
        self._accelerated = None
        self._index_add(ids, vectors)
        self.ids = np.concatenate([self.ids, ids])
        self.vectors = np.concatenate([self.vectors, vectors.astype(self.vector_dtype)])

    def remove(self, ids: np.ndarray) -> int:
        """Remove ``ids``; returns how many were present."""
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        keep = ~np.isin(self.ids, ids)
        removed = int((~keep).sum())
        if removed:
            self._accelerated = None
            self._index_remove(self.ids[~keep])
            self.ids, self.vectors = self.ids[keep], self.vectors[keep]
        return removed

    # What searches (the FAISS index here; :class:`~stylesearch.index.milvus_store.MilvusStore`
    # overrides these four) — the raw ids and vectors above are kept the same way by every store.

    def _index_add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if not self.index.is_trained:
            sample = np.random.default_rng(0).permutation(len(vectors))[: self.train_size]
            self.index.train(vectors[np.sort(sample)])
        self.index.add_with_ids(vectors, ids)

    def _index_remove(self, gone: np.ndarray) -> None:
        try:
            self.index.remove_ids(self.faiss.IDSelectorBatch(gone))
        except RuntimeError:  # e.g. HNSW: no removal; tombstone until the next rebuild
            self.tombstones = np.union1d(self.tombstones, gone)

    def _save_index(self, folder: Path) -> None:
        self.faiss.write_index(self.index, str(folder / INDEX_FILE))

    def manifest_entries(self) -> dict[str, Any]:
        """What the generation's manifest records about this store."""
        return {
            "index_key": self.index_key,
            "index_type": kind_of_key(self.index_key),
            "search_params": self.search_params,
            "refine": self.refine,
            "tombstones": len(self.tombstones),
            "vector_dtype": str(self.vector_dtype),
            "store": None,
        }

    def sync(self, meta: MetadataStore) -> None:
        """Bring an external search engine up to date with this generation (nothing to do
        for FAISS, which lives in the generation folder)."""

    def search_where(
        self,
        queries: np.ndarray,
        k: int,
        meta: MetadataStore,
        where: Mapping[str, WhereValue] | None = None,
        *,
        labelled: bool = False,
        exclude: Sequence[int] = (),
    ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`search` among the items matching ``where`` (labelled ones only with
        ``labelled``, without the vids in ``exclude``), resolved through ``meta``."""
        allowed = meta.vids_where(where, labelled=labelled)
        if len(exclude):
            base = self.ids if allowed is None else allowed
            allowed = base[~np.isin(base, np.asarray(exclude, np.int64))]
        return self.search(queries, k, allowed)

    def copy(self) -> VectorStore:
        """A private copy to change, so that readers of this one are never disturbed."""
        out = VectorStore(
            self.dim,
            vector_dtype=str(self.vector_dtype),
            index_key=self.index_key,
            search_params=self.search_params,
            refine=self.refine,
            train_size=self.train_size,
        )
        out.index = self.faiss.clone_index(self.index)
        out.ids, out.vectors, out.tombstones = self.ids.copy(), self.vectors.copy(), self.tombstones.copy()
        out.torch_device, out.faiss_gpu = self.torch_device, self.faiss_gpu
        return out

    @property
    def backend(self) -> str:
        """What answers searches: ``torch-cuda`` (exact, :meth:`use_torch`), else FAISS."""
        if self.torch_device:
            return "torch-exact"
        return "faiss-gpu" if self.faiss_gpu else "faiss-cpu"

    def use_faiss_gpu(self) -> bool:
        """Answer unfiltered searches with a copy of the index on GPU 0 (faiss-gpu installed
        and a GPU visible; flat and IVF types — FAISS has no GPU HNSW, which stays on the CPU,
        as do filtered searches). The copy is made on the first search after each change.
        Returns whether it is used."""
        if faiss_backend() != "faiss-gpu" or "HNSW" in self.index_key:
            return False
        self.faiss_gpu = True
        self._accelerated = None
        return True

    def use_torch(self, device: str) -> None:
        """Answer searches with an exact torch matmul + top-k on ``device`` (a GPU without
        faiss-gpu); the vectors are copied there on the first search after each change."""
        self.torch_device = device
        self._accelerated = None

    def _live_selector(self) -> Any:
        """Selects every id but the tombstoned ones (built once per change of tombstones)."""
        if self._live is None or self._live[0] is not self.tombstones:
            inner = self.faiss.IDSelectorBatch(self.tombstones)
            selector = self.faiss.IDSelectorNot(inner)
            selector.inner = inner  # keep it alive as long as the selector
            self._live = (self.tombstones, selector)
        return self._live[1]

    def _params(self, selector: Any) -> Any:
        """Typed FAISS search parameters (HNSW and IVF indexes refuse the generic ones)."""
        faiss = self.faiss
        if "HNSW" in self.index_key:
            params = faiss.SearchParametersHNSW()
            params.efSearch = int(self.search_params.get("efSearch", 64))
        elif "IVF" in self.index_key:
            params = faiss.SearchParametersIVF()
            params.nprobe = int(self.search_params.get("nprobe", 16))
        elif selector is None:
            return None
        else:
            params = faiss.SearchParameters()
        if selector is not None:
            params.sel = selector
        return params

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
        if self.torch_device:
            if self._accelerated is None:
                from .torch_search import TorchExactSearch

                self._accelerated = TorchExactSearch(self.ids, self.vectors, self.torch_device)
            return self._accelerated.search(queries, k, allowed)
        if self.faiss_gpu and allowed is None and not len(self.tombstones) and self.refine == 1:
            return self._search_faiss_gpu(queries, k)
        selector: Any = None
        if allowed is not None:
            allowed = np.ascontiguousarray(allowed, dtype=np.int64)
            if len(allowed) == 0 or len(self.ids) == 0:
                return (np.full((len(queries), k), -np.inf, np.float32), np.full((len(queries), k), -1, np.int64))
            selector = self.faiss.IDSelectorBatch(allowed)
        elif len(self.tombstones):
            selector = self._live_selector()
        params = self._params(selector)
        fetch = k * self.refine
        if params is not None:
            # faiss.contrib.torch_utils (imported by pytorch-metric-learning) replaces
            # Index.search with a version without ``params``; the original stays as search_numpy.
            search = getattr(self.index, "search_numpy", self.index.search)
            scores, ids = search(queries, fetch, params=params)
        else:
            scores, ids = self.index.search(queries, fetch)
        if self.refine > 1:
            scores, ids = self._refine(queries, ids, k)
        scores = np.where(ids >= 0, scores, -np.inf).astype(np.float32)
        return scores, ids.astype(np.int64)

    def _search_faiss_gpu(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        faiss = self.faiss
        if self._accelerated is None:
            resources = faiss.StandardGpuResources()
            gpu_index = faiss.index_cpu_to_gpu(resources, 0, self.index)
            if "nprobe" in self.search_params:
                faiss.GpuParameterSpace().set_index_parameter(gpu_index, "nprobe", int(self.search_params["nprobe"]))
            self._accelerated = (resources, gpu_index)
        scores, ids = self._accelerated[1].search(queries, k)
        return np.where(ids >= 0, scores, -np.inf).astype(np.float32), ids.astype(np.int64)

    def _refine(self, queries: np.ndarray, candidates: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Exact scores of the candidate ids [Q, C] on the raw vectors; the best ``k``."""
        scores = np.full((len(queries), k), -np.inf, np.float32)
        ids = np.full((len(queries), k), -1, np.int64)
        for row, (query, cand) in enumerate(zip(queries, candidates)):
            cand = cand[cand >= 0]
            rows = np.searchsorted(self.ids, cand)
            ok = (rows < len(self.ids)) & (self.ids[np.minimum(rows, max(len(self.ids) - 1, 0))] == cand)
            cand, rows = cand[ok], rows[ok]
            exact = self.vectors[rows].astype(np.float32) @ query
            best = np.argsort(-exact)[:k]
            scores[row, : len(best)], ids[row, : len(best)] = exact[best], cand[best]
        return scores, ids

    # ----------------------------------------------------------------- persistence

    def save(self, folder: Path) -> None:
        """Write ``index.faiss``, ``vectors.npy`` and ``ids.npy`` into ``folder`` (a new
        generation folder: :class:`~stylesearch.index.layout.IndexDir` fsyncs and publishes it)."""
        np.save(folder / VECTORS_FILE, self.vectors)
        np.save(folder / IDS_FILE, self.ids)
        if len(self.tombstones):
            np.save(folder / TOMBSTONES_FILE, self.tombstones)
        self._save_index(folder)

    def _load_arrays(self, folder: Path) -> None:
        """Read ``ids.npy``, ``vectors.npy`` (and tombstones) written by :meth:`save`."""
        try:
            self.ids = np.load(folder / IDS_FILE, allow_pickle=False)
            self.vectors = np.load(folder / VECTORS_FILE, allow_pickle=False)
            if (folder / TOMBSTONES_FILE).exists():
                self.tombstones = np.load(folder / TOMBSTONES_FILE, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise IndexCorruptError(f"cannot read the vectors in {str(folder)!r} ({exc}); rebuild the index") from exc
        if self.vectors.shape != (len(self.ids), self.dim):
            raise IndexCorruptError(
                f"vector files in {str(folder)!r} disagree ({len(self.ids)} ids, vectors {list(self.vectors.shape)}); "
                "rebuild the index"
            )

    @classmethod
    def load(
        cls,
        folder: Path,
        *,
        dim: int,
        vector_dtype: str,
        index_key: str = DEFAULT_INDEX_KEY,
        search_params: dict[str, int] | None = None,
        refine: int = 1,
    ) -> VectorStore:
        store = cls(dim, vector_dtype=vector_dtype, index_key=index_key, search_params=search_params, refine=refine)
        store._load_arrays(folder)
        try:
            store.index = store.faiss.read_index(str(folder / INDEX_FILE))
        except (OSError, RuntimeError) as exc:
            raise IndexCorruptError(f"cannot read the vector index in {str(folder)!r} ({exc}); rebuild it") from exc
        in_faiss = len(store.ids) + len(store.tombstones)
        if store.index.ntotal != in_faiss or store.index.d != dim:
            raise IndexCorruptError(
                f"the FAISS index in {str(folder)!r} holds {store.index.ntotal}x{store.index.d}, not "
                f"{in_faiss}x{dim} like its vector files; rebuild the index"
            )
        return store
