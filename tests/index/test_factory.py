from __future__ import annotations

import numpy as np
import pytest

from stylesearch.config import parse_memory
from stylesearch.errors import ConfigError
from stylesearch.index.backends.faiss import import_faiss
from stylesearch.index.factory import choose_index, nlist_for, plan, pq_m_for, recall_at_k, tune


def test_small_catalogs_get_the_exact_scan_and_large_ones_hnsw() -> None:
    assert choose_index(10_000, 256)[0].kind == "flat"
    ranked = [p.kind for p in choose_index(1_000_000, 256)]
    assert ranked[0] == "hnsw" and set(ranked) == {"flat", "hnsw", "ivf", "ivfpq"}


def test_a_memory_budget_picks_a_type_that_fits() -> None:
    budget = parse_memory("512M")
    best = choose_index(1_000_000, 256, max_memory=budget)[0]
    assert best.kind == "ivfpq" and best.memory_bytes <= budget
    assert best.bytes_per_vector <= 80  # codes + id
    with pytest.raises(ConfigError, match="raise --max-memory"):
        choose_index(1_000_000, 256, max_memory=parse_memory("10M"))


def test_a_latency_target_drops_the_exact_scan_at_scale() -> None:
    kinds = [p.kind for p in choose_index(5_000_000, 256, latency_ms=5)]
    assert "flat" not in kinds and kinds


def test_plan_details() -> None:
    assert nlist_for(1_000_000) == 4096 and nlist_for(10) == 16
    assert pq_m_for(256) == 64 and 96 % pq_m_for(96) == 0
    assert plan("ivfpq", 1_000_000, 256).key == "IVF4096,PQ64x8" and plan("ivfpq", 1_000_000, 256).refine > 1
    assert plan("hnsw", 10, 8).search_param == "efSearch" and plan("flat", 10, 8).train_size == 0
    with pytest.raises(ConfigError, match="unknown index type"):
        plan("annoy", 10, 8)
    assert parse_memory("2G") == 2 * 1024**3 and parse_memory("1.5 GB") == int(1.5 * 1024**3) and parse_memory("4096") == 4096
    with pytest.raises(ConfigError, match="512M"):
        parse_memory("lots")


def _clustered(n: int, dim: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = np.random.default_rng(7).standard_normal((50, dim)).astype(np.float32)
    x = centers[rng.integers(0, 50, n)] + 0.8 * rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.parametrize("kind", ["hnsw", "ivf", "ivfpq"])
def test_every_planned_key_builds_and_tuning_reaches_the_recall_target(kind: str) -> None:
    faiss = import_faiss()
    base, queries = _clustered(4000, 32, 0), _clustered(100, 32, 1)
    exact = faiss.IndexFlatIP(32)
    exact.add(base)
    truth = exact.search(queries, 10)[1]
    p = plan(kind, len(base), 32)
    index = faiss.index_factory(32, p.key, faiss.METRIC_INNER_PRODUCT)
    if p.train_size:
        index.train(base[: p.train_size])
    index.add_with_ids(base, np.arange(len(base), dtype=np.int64))
    space = faiss.ParameterSpace()

    def search(value: int) -> np.ndarray:
        space.set_index_parameter(index, p.search_param, value)
        found = index.search(queries, 10 * p.refine)[1]
        if p.refine == 1:
            return found
        return np.array([c[np.argsort(-(base[c] @ q))[:10]] for q, c in zip(queries, found)])

    value, recall = tune(kind, search, truth, target=0.9)
    assert recall >= 0.9 and value is not None
    assert recall_at_k(search(value), truth) == pytest.approx(recall)
    assert tune("flat", search, truth) == (None, 1.0)
