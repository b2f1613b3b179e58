"""Every index type through the engine: built, tuned, searched, written to, reopened."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from stylesearch import StyleSearch, index_catalog
from stylesearch.config import IndexConfig
from stylesearch.index.backends.faiss import FaissBackend, build_faiss

from ..conftest import RUN, SMALL


def _clustered(n: int, dim: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = np.random.default_rng(3).standard_normal((40, dim)).astype(np.float32)
    x = centers[rng.integers(0, 40, n)] + 0.9 * rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf", "ivfpq"])
def test_built_stores_reach_the_recall_target_and_survive_removal(kind: str, tmp_path: Path) -> None:
    base = _clustered(3000, 32, 0)
    ids = np.arange(10, 3010, dtype=np.int64)
    store, info = build_faiss(ids, base, index_type=kind, recall_target=0.9)
    assert info.plan.kind == kind and (kind == "flat" or info.tuned_recall >= 0.9)
    queries = _clustered(50, 32, 1)
    exact = ids[np.argsort(-(queries @ base.T), axis=1)[:, :10]]
    found = store.search(queries, 10)[1]
    recall = np.mean([len(set(f) & set(e)) / 10 for f, e in zip(found, exact)])
    assert recall >= 0.85
    # removal works everywhere (HNSW tombstones) and a search still returns k live results
    gone = found[:, 0][:20]
    store.remove(gone)
    after = store.search(queries, 10)[1]
    assert not np.isin(after, gone).any() and (after >= 0).all()
    assert (len(store.tombstones) > 0) == (kind == "hnsw")
    store.save(tmp_path)
    again = FaissBackend.read(
        tmp_path,
        dim=32,
        vector_dtype="float32",
        index_key=store.index_key,
        search_params=store.search_params,
        refine=store.refine,
    )
    assert np.array_equal(again.search(queries, 10)[1], after)
    copy = again.copy()
    copy.add(np.array([5000], np.int64), queries[:1])
    assert copy.search(queries[:1], 1)[1][0, 0] == 5000 and len(again) == len(store)


def test_index_type_through_the_engine(demo_data, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    manifest, held_out = demo_data
    index_catalog(manifest, tmp_path / "idx", embed=SMALL, run=RUN, options=IndexConfig(index_type="hnsw"))
    with StyleSearch.open(tmp_path / "idx", run=RUN) as engine:
        info = engine.info()
        assert info["index_type"] == "hnsw" and "efSearch" in info["search_params"]
        first = engine.query(held_out[0][0], k=5).results
        engine.remove([first[0].id])
    with StyleSearch.open(tmp_path / "idx", run=RUN) as engine:
        again = engine.query(held_out[0][0], k=5).results
        assert len(again) == 5 and first[0].id not in [h.id for h in again]
        assert engine.info()["items"] == 95
