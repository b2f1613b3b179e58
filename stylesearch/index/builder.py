"""Build a :class:`VectorStore` of the planned type and tune its search parameter.

The type comes from :func:`~stylesearch.index.factory.choose_index` (``auto``) or is named;
the search parameter (``nprobe`` / ``efSearch``) is raised until recall@10 against exact
search reaches ``recall_target`` on 200 sample queries (stored vectors with a little noise,
so that no query is its own answer), and is stored with the index.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .factory import IndexPlan, choose_index, plan, tune
from .store import VectorStore

TUNE_QUERIES = 200


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


def pick_plan(n: int, dim: int, index_type: str = "auto", max_memory: int | None = None) -> IndexPlan:
    return choose_index(n, dim, max_memory)[0] if index_type == "auto" else plan(index_type, n, dim)


def build_store(
    ids: np.ndarray,
    vectors: np.ndarray,
    *,
    index_type: str = "auto",
    max_memory: int | None = None,
    recall_target: float = 0.95,
    vector_dtype: str = "float32",
    seed: int = 0,
) -> tuple[VectorStore, BuildInfo]:
    """A store holding float32 [N, D] ``vectors`` under ``ids``, of the planned type, tuned."""
    n, dim = vectors.shape
    chosen = pick_plan(n, dim, index_type, max_memory)
    store = VectorStore(
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
