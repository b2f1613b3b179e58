"""The search backend registry: every backend answers the same contract, and a new store is
one class plus a registration (the in-memory toy below), with no engine change."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from stylesearch import StyleSearch, index_catalog
from stylesearch.config import IndexConfig
from stylesearch.errors import ConfigError
from stylesearch.index import MetadataStore, Record, SearchBackend, backend_class, list_backends, register_backend
from stylesearch.index.backends import base
from stylesearch.index.vectors import Vectors
from tests.conftest import RUN, SMALL


class MemoryBackend(SearchBackend):
    """Exact numpy search over the generation's raw vectors (``memory://NAME``): a store with
    no files of its own."""

    def __init__(self, data: Vectors, collection: str) -> None:
        super().__init__(data)
        self.collection = collection

    @classmethod
    def check_uri(cls, store: str) -> None:
        if not store.startswith("memory://") or not store[len("memory://") :]:
            raise ConfigError(f"--store {store!r}: use memory://NAME")

    @classmethod
    def build(
        cls, store: str, ids: np.ndarray, vectors: np.ndarray, options: IndexConfig
    ) -> tuple[SearchBackend, dict[str, Any]]:
        backend = cls(Vectors(vectors.shape[1], options.vector_dtype), store[len("memory://") :])
        backend.add(ids, vectors)
        return backend, {"store": "memory"}

    @classmethod
    def load(cls, folder: Path, manifest: Mapping[str, Any], meta: MetadataStore) -> SearchBackend:
        return cls(Vectors.load(folder, int(manifest["dim"])), manifest["store"]["collection"])

    def copy(self) -> SearchBackend:
        return MemoryBackend(self.data.copy(), self.collection)

    def manifest_entries(self) -> dict[str, Any]:
        return {"index_key": "memory", "index_type": "flat", "vector_dtype": str(self.vector_dtype),
                "store": {"kind": "memory", "collection": self.collection}}  # fmt: skip

    def _index_add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        return None

    def _index_remove(self, ids: np.ndarray) -> None:
        return None

    def _search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        ids, vectors = self.ids, self.vectors.astype(np.float32)
        if allowed is not None:
            keep = np.isin(ids, allowed)
            ids, vectors = ids[keep], vectors[keep]
        scores = queries @ vectors.T
        order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        out_s, out_i = base.empty_result(len(queries), k)
        out_s[:, : order.shape[1]] = np.take_along_axis(scores, order, 1)
        out_i[:, : order.shape[1]] = ids[order]
        return out_s, out_i


@pytest.fixture
def memory_store() -> Iterator[type[SearchBackend]]:
    register_backend("memory")(MemoryBackend)
    yield MemoryBackend
    del base._BACKENDS["memory"]


def test_unknown_stores_are_refused_before_any_work(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown store.*registered: faiss"):
        index_catalog(tmp_path / "nowhere", tmp_path / "index", options=IndexConfig(store="redis://localhost/x"))
    with pytest.raises(ConfigError, match="milvus-lite:///path/file.db"):
        backend_class("milvus-lite:///tmp/no-suffix")
    assert {"faiss", "milvus", "milvus-lite"} <= set(list_backends())


def _uri(scheme: str, tmp_path: Path) -> str:
    """A store URI for each registered scheme; a server-only one is skipped without a server."""
    if scheme == "milvus":
        pytest.skip("milvus:// needs a Milvus server; milvus-lite:// runs the same backend here")
    if scheme == "milvus-lite":
        pytest.importorskip("milvus_lite")
        return f"milvus-lite://{tmp_path / 'contract.db'}"
    return {"faiss": "faiss", "memory": "memory://t"}[scheme]


@pytest.mark.parametrize("scheme", sorted({*list_backends(), "memory"}))
def test_every_backend_keeps_the_contract(scheme: str, memory_store: type[SearchBackend], tmp_path: Path) -> None:
    """Every registered store (and the toy one) gives the same answers to the same calls."""
    store = _uri(scheme, tmp_path)
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((50, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    backend, _ = backend_class(store).build(store, np.arange(50, dtype=np.int64), vectors, IndexConfig())
    meta = MetadataStore(tmp_path / "m.sqlite")
    meta.add([Record(i, f"i{i}", f"/{i}", "a" if i % 2 else None, {"c": str(i % 3)}) for i in range(50)])
    backend.sync(meta)
    scores, ids = backend.search(vectors[:3], 5)
    assert ids[:, 0].tolist() == [0, 1, 2] and np.allclose(scores[:, 0], 1.0, atol=1e-5)
    _, ids = backend.search_where(vectors[:3], 5, meta, {"c": "0"}, labelled=True, exclude=[3])
    assert set(ids[ids >= 0].tolist()) <= {i for i in range(50) if i % 3 == 0 and i % 2 and i != 3}
    changed = backend.copy()
    changed.remove(np.array([0]))
    changed.add(np.array([60]), vectors[:1])
    if not backend.local_search:  # an external engine learns a generation's changes when it is written
        meta.remove(["i0"])
        meta.add([Record(60, "i60", "/60", None, {"c": "0"})])
        changed.sync(meta)
    assert changed.search(vectors[:1], 3)[1][0].tolist()[:1] == [60] and 0 not in changed.search(vectors[:1], 3)[1]
    assert len(backend) == 50 and np.allclose(backend.get(np.array([0])), vectors[:1], atol=1e-6)
    if backend.local_search:  # the original's searches are untouched (an external engine serves the latest)
        assert backend.search(vectors[:1], 1)[1][0, 0] == 0
    assert np.allclose(backend.get(np.array([7])), vectors[7:8], atol=1e-6)


def test_a_new_store_is_one_module(memory_store: type[SearchBackend], demo_data, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Index, query, add, remove and reopen on the toy store, with answers equal to FAISS's."""
    faiss_dir, memory_dir = tmp_path / "faiss", tmp_path / "memory"
    index_catalog(demo_data[0], faiss_dir, embed=SMALL, run=RUN)
    index_catalog(demo_data[0], memory_dir, embed=SMALL, run=RUN, options=IndexConfig(store="memory://demo"))
    query = str(demo_data[1][0][0])
    with StyleSearch.open(faiss_dir, run=RUN) as a, StyleSearch.open(memory_dir, run=RUN) as b:
        assert b.info()["search_backend"] == "memory"
        ra, rb = a.query(query, k=8), b.query(query, k=8)
        assert [h.id for h in ra.results] == [h.id for h in rb.results]
        assert [h.id for h in a.query(query, k=4, where={"product": "mug"}).results] == [
            h.id for h in b.query(query, k=4, where={"product": "mug"}).results
        ]
        b.add([query], labels="new", ids=["added"])
        assert b.query(query, k=1).results[0].id == "added"
        b.remove(["added"])
        items = len(a)
    with StyleSearch.open(memory_dir, run=RUN) as again:
        assert len(again) == items and again.info()["search_backend"] == "memory"
        assert "added" not in {h.id for h in again.query(query, k=3).results}
