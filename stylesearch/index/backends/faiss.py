"""FAISS in the generation folder (``--store faiss``, the default).

Any FAISS factory string works (see :mod:`stylesearch.index.factory`); an untrained index
(IVF) is trained on the first vectors added. ``search_params`` (``nprobe`` / ``efSearch``)
apply to every search; ``refine > 1`` re-scores ``refine·k`` candidates exactly on the raw
vectors. Types that cannot remove (HNSW) keep removed ids as tombstones, filtered out of
every search (which still returns k results) until the next rebuild.

A full build (:meth:`FaissBackend.build`) picks the type from
:func:`~stylesearch.index.factory.choose_index` (``auto``) or by name, then raises the search
parameter until recall@10 against exact search reaches ``recall_target`` on 200 sample
queries (stored vectors with a little noise, so that no query is its own answer).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ...config import IndexConfig
from ...errors import IndexCorruptError, MissingDependencyError
from ...files import reuse
from ..factory import IndexPlan, choose_index, kind_of_key, plan, tune
from ..metadata import MetadataStore
from ..vectors import Vectors
from .base import SearchBackend, register_backend

INDEX_FILE = "index.faiss"
DEFAULT_INDEX_KEY = "IDMap2,Flat"
TUNE_QUERIES = 200


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


@dataclass
class BuildInfo:
    plan: IndexPlan
    search_params: dict[str, int] = field(default_factory=dict)
    tuned_recall: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "index_type": self.plan.kind,
            "index_key": self.plan.key,
            "search_params": self.search_params,
            "refine": self.plan.refine,
            "tuned_recall_at_10": self.tuned_recall,
            "estimated_bytes_per_vector": round(self.plan.bytes_per_vector, 1),
        }


@register_backend("faiss")
class FaissBackend(SearchBackend):
    """A FAISS inner-product index over :attr:`data`."""

    def __init__(
        self,
        dim: int,
        *,
        vector_dtype: str = "float32",
        index_key: str = DEFAULT_INDEX_KEY,
        search_params: dict[str, int] | None = None,
        refine: int = 1,
        train_size: int = 131_072,
        data: Vectors | None = None,
    ) -> None:
        super().__init__(data if data is not None else Vectors(dim, vector_dtype))
        self.faiss = import_faiss()
        self.index_key = index_key
        self.search_params = dict(search_params or {})
        self.refine = max(1, int(refine))
        self.train_size = train_size
        self.index = self.faiss.index_factory(dim, index_key, self.faiss.METRIC_INNER_PRODUCT)
        self._live: tuple[np.ndarray, Any] | None = None  # (tombstones, selector of the other ids)

    @property
    def name(self) -> str:
        return "faiss-cpu"

    # ------------------------------------------------------------------ building and files

    @classmethod
    def build(cls, store: str, ids: np.ndarray, vectors: np.ndarray, options: IndexConfig) -> tuple[FaissBackend, dict[str, Any]]:
        backend, info = build_faiss(
            ids,
            vectors,
            index_type=options.index_type,
            max_memory=options.max_memory,
            recall_target=options.recall_target,
            vector_dtype=options.vector_dtype,
            seed=options.seed,
        )
        return backend, info.to_dict()

    @classmethod
    def load(cls, folder: Path, manifest: Mapping[str, Any], meta: MetadataStore) -> FaissBackend:
        return cls.read(
            folder,
            dim=int(manifest["dim"]),
            vector_dtype=manifest.get("vector_dtype", "float32"),
            index_key=manifest.get("index_key", DEFAULT_INDEX_KEY),
            search_params=manifest.get("search_params") or {},
            refine=int(manifest.get("refine", 1)),
        )

    @classmethod
    def read(
        cls,
        folder: Path,
        *,
        dim: int,
        vector_dtype: str,
        index_key: str = DEFAULT_INDEX_KEY,
        search_params: dict[str, int] | None = None,
        refine: int = 1,
    ) -> FaissBackend:
        """The FAISS index and vectors written by :meth:`save` into ``folder``."""
        data = Vectors.load(folder, dim, vector_dtype)
        out = cls(dim, vector_dtype=vector_dtype, index_key=index_key, search_params=search_params, refine=refine, data=data)
        if out.rebuilt_on_load and not (folder / INDEX_FILE).is_file():
            out.index.add_with_ids(np.ascontiguousarray(data.vectors, np.float32), data.ids)
            return out
        try:
            out.index = out.faiss.read_index(str(folder / INDEX_FILE))
        except (OSError, RuntimeError) as exc:
            raise IndexCorruptError(f"cannot read the vector index in {str(folder)!r} ({exc}); rebuild it") from exc
        in_faiss = len(data) + len(data.tombstones)
        if out.index.ntotal != in_faiss or out.index.d != dim:
            raise IndexCorruptError(
                f"the FAISS index in {str(folder)!r} holds {out.index.ntotal}x{out.index.d}, not "
                f"{in_faiss}x{dim} like its vector files; rebuild the index"
            )
        return out

    @property
    def rebuilt_on_load(self) -> bool:
        """An exact float32 index is the stored vectors and nothing more: it is not written
        (format v2) but rebuilt from them when read — the same vectors in the same order."""
        return self.index_key == DEFAULT_INDEX_KEY and self.vector_dtype == np.float32

    def _save_index(self, folder: Path) -> None:
        if self.rebuilt_on_load:
            return
        if self.data.unchanged and reuse(self.data.origin, folder, [INDEX_FILE]):  # unchanged vectors, unchanged index
            return
        self.faiss.write_index(self.index, str(folder / INDEX_FILE))

    def copy(self) -> FaissBackend:
        out = FaissBackend(
            self.dim,
            vector_dtype=str(self.vector_dtype),
            index_key=self.index_key,
            search_params=self.search_params,
            refine=self.refine,
            train_size=self.train_size,
            data=self.data.copy(),
        )
        out.index = self.faiss.clone_index(self.index)
        return out

    def manifest_entries(self) -> dict[str, Any]:
        return {
            "index_key": self.index_key,
            "index_type": kind_of_key(self.index_key),
            "search_params": self.search_params,
            "refine": self.refine,
            "tombstones": len(self.tombstones),
            "vector_dtype": str(self.vector_dtype),
            "store": None,
        }

    # ------------------------------------------------------------------ hooks

    def _index_add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if not self.index.is_trained:
            sample = np.random.default_rng(0).permutation(len(vectors))[: self.train_size]
            self.index.train(vectors[np.sort(sample)])
        self.index.add_with_ids(vectors, ids)

    def _index_remove(self, gone: np.ndarray) -> None:
        try:
            self.index.remove_ids(self.faiss.IDSelectorBatch(gone))
        except RuntimeError:  # e.g. HNSW: no removal; tombstone until the next rebuild
            self.data.tombstones = np.union1d(self.data.tombstones, gone)

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

    def _search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        selector: Any = None
        if allowed is not None:
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

    def _refine(self, queries: np.ndarray, candidates: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Exact scores of the candidate ids [Q, C] on the raw vectors; the best ``k``."""
        scores = np.full((len(queries), k), -np.inf, np.float32)
        ids = np.full((len(queries), k), -1, np.int64)
        for row, (query, cand) in enumerate(zip(queries, candidates)):
            cand = cand[cand >= 0]
            rows, ok = self.data.rows(cand)
            cand, rows = cand[ok], rows[ok]
            exact = self.vectors[rows].astype(np.float32) @ query
            best = np.argsort(-exact)[:k]
            scores[row, : len(best)], ids[row, : len(best)] = exact[best], cand[best]
        return scores, ids


def pick_plan(n: int, dim: int, index_type: str = "auto", max_memory: int | None = None) -> IndexPlan:
    return choose_index(n, dim, max_memory)[0] if index_type == "auto" else plan(index_type, n, dim)


def build_faiss(
    ids: np.ndarray,
    vectors: np.ndarray,
    *,
    index_type: str = "auto",
    max_memory: int | None = None,
    recall_target: float = 0.95,
    vector_dtype: str = "float32",
    seed: int = 0,
) -> tuple[FaissBackend, BuildInfo]:
    """A FAISS backend holding float32 [N, D] ``vectors`` under ``ids``, of the planned type, tuned."""
    n, dim = vectors.shape
    chosen = pick_plan(n, dim, index_type, max_memory)
    store = FaissBackend(
        dim, vector_dtype=vector_dtype, index_key=chosen.key, refine=chosen.refine, train_size=max(chosen.train_size, 1)
    )
    store.add(ids, vectors)
    info = BuildInfo(chosen)
    if chosen.search_param is None or n == 0:
        return store, info
    rng = np.random.default_rng(seed)
    sample = vectors[rng.choice(n, size=min(n, TUNE_QUERIES), replace=False)]
    queries = sample + 0.05 * rng.standard_normal(sample.shape).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    k = min(10, n)
    faiss = store.faiss
    exact = faiss.knn(queries, np.ascontiguousarray(vectors, np.float32), k, metric=faiss.METRIC_INNER_PRODUCT)[1]
    truth = ids[exact]

    def search(value: int) -> np.ndarray:
        store.search_params = {chosen.search_param: value}  # type: ignore[dict-item]
        return store.search(queries, k)[1]

    nlist = None
    if chosen.kind in ("ivf", "ivfpq"):
        nlist = int(store.faiss.extract_index_ivf(store.index).nlist)
    value, recall = tune(chosen.kind, search, truth, recall_target, k, nlist)
    store.search_params = {chosen.search_param: int(value)} if value is not None else {}
    info.search_params, info.tuned_recall = dict(store.search_params), round(recall, 4)
    return store, info
