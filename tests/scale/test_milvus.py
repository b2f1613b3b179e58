"""The Milvus store on Milvus Lite: the same answers as the FAISS store (both exact) for
search, filtered search, classification and recommendations; writes persist; a collection
that fell behind its index is mended on open; the HTTP API works unchanged."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pymilvus")
pytest.importorskip("milvus_lite")

from fastapi.testclient import TestClient  # noqa: E402

from stylesearch import StyleSearch, index_catalog  # noqa: E402
from stylesearch.config import IndexConfig  # noqa: E402
from stylesearch.index.backends.milvus import MilvusBackend, client_for, close_client  # noqa: E402
from stylesearch.index.filters import Where  # noqa: E402
from stylesearch.service import Settings, create_app  # noqa: E402

from ..conftest import RUN, SMALL  # noqa: E402


@pytest.fixture
def pair(demo_data, tmp_path: Path) -> tuple[Path, Path, Path]:  # type: ignore[no-untyped-def]
    """The demo catalog indexed twice: FAISS (exact) and Milvus Lite."""
    faiss_index, milvus_index, db = tmp_path / "faiss", tmp_path / "milvus", tmp_path / "m.db"
    index_catalog(demo_data[0], faiss_index, embed=SMALL, run=RUN, options=IndexConfig(index_type="flat"))
    index_catalog(demo_data[0], milvus_index, embed=SMALL, run=RUN, options=IndexConfig(store=f"milvus-lite://{db}"))
    yield faiss_index, milvus_index, db
    close_client(str(db))


def test_milvus_answers_like_faiss(pair: tuple[Path, Path, Path], demo_data) -> None:  # type: ignore[no-untyped-def]
    faiss_index, milvus_index, _ = pair
    queries = [str(p) for p, _, _ in demo_data[1]]
    with StyleSearch.open(faiss_index, run=RUN) as a, StyleSearch.open(milvus_index, run=RUN) as b:
        assert b.info()["search_backend"] == "milvus-lite" and len(a) == len(b)
        for where in (None, {"product": "mug"}, {"product": ["mug", "bag"], "label": ["neon", "floral", "plaid"]}):
            ra, rb = a.query(queries, k=10, where=where), b.query(queries, k=10, where=where)
            same = [[h.id for h in x.results] == [h.id for h in y.results] for x, y in zip(ra, rb)]
            assert np.mean(same) >= 0.95, where
            for x, y in zip(ra, rb):
                assert np.allclose([h.score for h in x.results], [h.score for h in y.results], atol=1e-4)
                if where:
                    assert all(h.attributes["product"] in np.atleast_1d(where["product"]) for h in y.results)
        ca, cb = a.classify(queries), b.classify(queries)
        assert [c.label for c in ca] == [c.label for c in cb]
        item = a.browse(limit=1)[0].id
        assert [h.id for h in a.similar(item, k=5)] == [h.id for h in b.similar(item, k=5)]
        pos, neg = [h.id for h in a.browse(limit=3)], [a.browse(limit=10)[-1].id]
        assert [h.id for h in a.recommend(pos, neg, k=5)] == [h.id for h in b.recommend(pos, neg, k=5)]


def test_writes_persist_and_a_lagging_collection_is_mended(pair: tuple[Path, Path, Path], demo_data) -> None:  # type: ignore[no-untyped-def]
    _, milvus_index, db = pair
    query = str(demo_data[1][0][0])
    with StyleSearch.open(milvus_index, run=RUN) as engine:
        engine.add([query], ids=["new-item"], labels=["neon"], attributes=[{"product": "lamp"}])
        assert engine.query(query, k=1, where={"product": "lamp"}).results[0].id == "new-item"
        engine.remove(["floral-bag-0"])
        n = len(engine)
        store = engine.snapshot.backend
        assert isinstance(store, MilvusBackend)
        collection = store.collection
    with StyleSearch.open(milvus_index, run=RUN) as engine:  # reopened: same items, in Milvus too
        assert len(engine) == n and engine.query(query, k=1, where={"id": "new-item"}).results[0].id == "new-item"
        assert all(h.id != "floral-bag-0" for h in engine.query(query, k=n).results)
    # a write that changed Milvus but never published: the collection holds a row too many
    client_for(engine.snapshot.backend.target).delete(collection, filter="vid in [0, 1]")
    with StyleSearch.open(milvus_index, run=RUN) as engine:
        stats = client_for(engine.snapshot.backend.target).get_collection_stats(collection)
        assert int(stats["row_count"]) == len(engine) == n  # mended on open


def test_filters_become_milvus_expressions() -> None:
    assert Where.of({"label": "neon"}).milvus() == '(label in ["neon"])'
    assert Where.of({"product": ["mug", 'a "b"']}).milvus(labelled=True, exclude=[3]) == (
        '(attributes["product"] == "mug" or attributes["product"] == "a \\"b\\"") and (label != "") and (vid not in [3])'
    )


def test_the_api_serves_a_milvus_index(pair: tuple[Path, Path, Path], demo_data) -> None:  # type: ignore[no-untyped-def]
    _, milvus_index, _ = pair
    photo = Path(demo_data[1][0][0]).read_bytes()
    settings = Settings(index=str(milvus_index), device="cpu")  # type: ignore[call-arg]
    with TestClient(create_app(settings)) as api:
        r = api.post(
            "/v1/search", files={"file": ("q.png", photo, "image/png")}, data={"k": "4", "where": json.dumps({"product": "mug"})}
        )
        assert r.status_code == 200 and len(r.json()["results"]) == 4
        assert {h["attributes"]["product"] for h in r.json()["results"]} == {"mug"}
        assert api.post("/v1/classify", files=[("file", ("q.png", photo, "image/png"))]).status_code == 200
        assert api.get("/v1/index").json()["search_backend"] == "milvus-lite"


def test_store_addresses() -> None:
    from stylesearch.errors import ConfigError
    from stylesearch.index.backends.milvus import MilvusTarget

    cluster = MilvusTarget.parse("milvus://milvus.internal:19530/shop-styles?shards=4&replicas=2")
    assert (cluster.uri, cluster.base_name, cluster.lite, cluster.shards, cluster.replicas) == (
        "http://milvus.internal:19530",
        "shop_styles",
        False,
        4,
        2,
    )
    lite = MilvusTarget.parse("milvus-lite:///tmp/styles.db?collection=cats")
    assert (lite.uri, lite.base_name, lite.lite) == ("/tmp/styles.db", "cats", True)
    for bad in ("milvus-lite:///tmp/styles.sqlite", "milvus://host:19530", "qdrant://x/y"):
        with pytest.raises(ConfigError):
            MilvusTarget.parse(bad)
