"""The HTTP API, in process (FastAPI's TestClient runs the real app with its lifespan)."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from stylesearch.service import Settings, create_app

KEY = "test-key-123"
AUTH = {"Authorization": f"Bearer {KEY}"}


def png_bytes(color: tuple[int, int, int] = (200, 30, 30), size: tuple[int, int] = (64, 64)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()


def client_for(index: Path, **settings: object) -> TestClient:
    opts: dict[str, object] = {"index": str(index), "device": "cpu", "api_keys": KEY}
    opts.update(settings)
    return TestClient(create_app(Settings(**opts)))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def api(built_index: Path) -> Iterator[TestClient]:
    """A read-only client on the demo index (writes go to :func:`writable`)."""
    with client_for(built_index) as client:
        yield client


@pytest.fixture
def writable(index_copy: Path) -> Iterator[TestClient]:
    with client_for(index_copy) as client:
        yield client


def test_health_ready_and_index(api: TestClient) -> None:
    assert api.get("/healthz").json() == {"status": "ok"}
    assert api.get("/readyz").json() == {"status": "ready"}
    info = api.get("/v1/index").json()
    assert info["items"] == 96 and info["search_backend"] == "faiss-cpu" and "index" not in info
    assert sum(api.get("/v1/labels").json()["labels"].values()) == 96
    assert set(api.get("/v1/attributes").json()["product"]) == {"shirt", "dress", "mug", "bag", "lamp", "chair"}


def test_search_by_upload_returns_same_style_items(api: TestClient, demo_data) -> None:  # type: ignore[no-untyped-def]
    path, style, product = demo_data[1][0]
    with open(path, "rb") as fh:
        r = api.post("/v1/search", files={"file": ("q.png", fh, "image/png")}, data={"k": "5"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert len(body["results"]) == 5 and body["query"] == "q.png"
    assert sum(item["label"] == style for item in body["results"]) >= 3
    top = body["results"][0]
    assert top["score"] > 0.5 and top["image_url"].startswith("/v1/items/")
    image = api.get(top["image_url"])
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    # a filter keeps only matching items
    with open(path, "rb") as fh:
        r = api.post("/v1/search", files={"file": ("q.png", fh)}, data={"k": "4", "where": json.dumps({"product": "mug"})})
    assert [i["attributes"]["product"] for i in r.json()["results"]] == ["mug"] * 4


def test_search_by_item_similar_recommend_and_get(api: TestClient) -> None:
    first = api.get("/v1/items", params={"limit": 2}).json()
    assert first["total"] == 96 and len(first["items"]) == 2
    item_id = first["items"][0]["id"]
    by_json = api.post("/v1/search/item", json={"item_id": item_id, "k": 5}).json()
    similar = api.get(f"/v1/items/{item_id}/similar", params={"k": 5}).json()
    assert [i["id"] for i in by_json["results"]] == [i["id"] for i in similar["results"]]
    assert item_id not in [i["id"] for i in similar["results"]]
    got = api.get(f"/v1/items/{item_id}").json()
    assert got["id"] == item_id and got["score"] is None
    rec = api.post("/v1/recommend", json={"positive": [item_id], "negative": [first["items"][1]["id"]], "k": 3}).json()
    assert len(rec["results"]) == 3 and item_id not in [i["id"] for i in rec["results"]]
    page = api.get("/v1/items", params={"where": json.dumps({"label": got["label"]}), "limit": 500}).json()
    assert page["total"] == 12 and {i["label"] for i in page["items"]} == {got["label"]}


def test_classify_uploads(api: TestClient, demo_data) -> None:  # type: ignore[no-untyped-def]
    held_out = demo_data[1][:6]
    files = [("file", (Path(p).name, Path(p).read_bytes(), "image/png")) for p, _, _ in held_out]
    r = api.post("/v1/classify", files=files, data={"method": "knn", "k": "5"})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [c["image"] for c in results] == [Path(p).name for p, _, _ in held_out]
    assert sum(c["label"] == s for c, (_, s, _) in zip(results, held_out)) >= 5
    assert all(c["method"] == "knn" and len(c["neighbors"]) == 5 and c["knn"]["label"] for c in results)
    # evidence in every answer: how many neighbours carry it, and one never backs 0.5
    assert all(c["support"] == sum(n["label"] == c["answer"] for n in c["neighbors"]) for c in results)
    assert not [c for c in results if c["support"] <= 1 and c["confidence"] >= 0.5]
    assert all(c["prior"] == "catalog" and c["out_of_catalog"] is False for c in results)
    uniform = api.post("/v1/classify", files=files[:1], data={"prior": "uniform"})
    assert uniform.status_code == 200 and uniform.json()["results"][0]["prior"] == "uniform"
    bad = api.post("/v1/classify", files=files[:1], data={"prior": "popular"})
    assert bad.status_code == 422
    no_head = api.post("/v1/classify", files=files[:1], data={"method": "linear"})
    assert no_head.status_code == 422 and no_head.json()["code"] == "bad_config"


def test_style_shares_of_uploads_and_items(api: TestClient, demo_data) -> None:  # type: ignore[no-untyped-def]
    held_out = demo_data[1][:8]
    files = [("file", (Path(p).name, Path(p).read_bytes(), "image/png")) for p, _, _ in held_out]
    items = [i["id"] for i in api.get("/v1/items", params={"limit": 4}).json()["items"]]
    r = api.post("/v1/shares", files=files, data={"items": json.dumps(items)})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["photos"] == 12 and body["method"].startswith("adjusted classify-and-count")
    assert sum(s["share"] for s in body["shares"].values()) == pytest.approx(1.0, abs=1e-3)
    assert all(s["low"] <= s["share"] <= s["high"] for s in body["shares"].values())
    assert set(body["classify_and_count"]) == set(body["shares"])
    assert api.post("/v1/shares", data={"k": "5"}).status_code == 422  # nothing to count
    assert api.post("/v1/shares", data={"items": "not json"}).json()["code"] == "invalid_request"
    assert api.post("/v1/shares", data={"items": json.dumps(["no-such-item"])}).status_code == 404


def test_errors_are_json_with_a_code(api: TestClient) -> None:
    cases = [
        (api.get("/v1/items/nope"), 404, "item_not_found"),
        (api.get("/v1/items/nope/image"), 404, "item_not_found"),
        (api.get("/v1/nothing-here"), 404, "not_found"),
        (api.post("/v1/search", files={"file": ("x.jpg", b"<html>not an image</html>")}), 415, "unsupported_media_type"),
        (api.post("/v1/search", files={"file": ("x.png", png_bytes()[:40])}), 422, "bad_image"),
        (api.post("/v1/search", files={"file": ("x.png", b"")}), 422, "bad_image"),
        (api.post("/v1/search/item", json={"item_id": "a", "k": 0}), 422, "invalid_request"),
        (api.post("/v1/search/item", json={"item_id": "a", "k": 100000}), 422, "invalid_request"),
        (api.post("/v1/search/item", content=b"{", headers={"content-type": "application/json"}), 422, "invalid_request"),
        (api.post("/v1/search", json={"item_id": "a"}), 415, "unsupported_media_type"),
        (api.post("/v1/search", content=b"k=1", headers={"content-type": "text/plain"}), 415, "unsupported_media_type"),
        (api.post("/v1/search", files={"file": ("q.png", png_bytes())}, data={"where": "[1]"}), 422, "invalid_request"),
        (api.post("/v1/recommend", json={"positive": []}), 422, "invalid_request"),
        (api.post("/v1/classify", data={"method": "knn"}), 422, "invalid_request"),
        (api.get("/v1/items", params={"limit": 0}), 422, "invalid_request"),
    ]
    for response, status, code in cases:
        assert response.status_code == status, (response.request.url, response.text)
        body = response.json()
        assert body["code"] == code and body["status"] == status and body["message"]


def test_upload_limits(built_index: Path) -> None:
    with client_for(built_index, max_upload_bytes=2000, max_pixels=100 * 100) as api:
        big = api.post("/v1/search", files={"file": ("big.png", png_bytes(size=(400, 400)) + b"\0" * 3000)})
        assert big.status_code == 413 and big.json()["code"] == "payload_too_large"
        wide = api.post("/v1/search", files={"file": ("wide.png", png_bytes(size=(200, 200)))})
        assert wide.status_code == 422 and "pixel limit" in wide.json()["message"]


def test_writes_need_a_key(writable: TestClient, built_index: Path) -> None:
    files = {"file": ("new.png", png_bytes(), "image/png")}
    assert writable.post("/v1/items", files=files).status_code == 401
    bad = writable.post("/v1/items", files=files, headers={"Authorization": "Bearer wrong"})
    assert bad.status_code == 401 and bad.json()["code"] == "unauthorized"
    assert writable.delete("/v1/items/x", headers={"Authorization": "Bearer wrong"}).status_code == 401
    with client_for(built_index, api_keys="") as no_keys:
        refused = no_keys.post("/v1/items", files=files, headers=AUTH)
        assert refused.status_code == 403 and refused.json()["code"] == "writes_disabled"
        assert no_keys.get("/v1/labels").status_code == 200  # reads stay open
    with client_for(built_index, read_requires_key=True) as locked:
        assert locked.get("/v1/labels").status_code == 401
        assert locked.get("/v1/labels", headers=AUTH).status_code == 200


def test_add_and_remove_items_persist(writable: TestClient, index_copy: Path) -> None:
    r = writable.post(
        "/v1/items",
        files={"file": ("new.png", png_bytes((10, 200, 10)), "image/png")},
        data={"id": "green/1", "label": "green", "attributes": json.dumps({"product": "swatch"})},
        headers=AUTH,
    )
    assert r.status_code == 201, r.text
    assert r.json()["items"] == 97 and r.json()["item"]["id"] == "green/1"
    assert writable.get("/v1/items/green/1").json()["attributes"] == {"product": "swatch"}
    assert writable.get("/v1/items/green%2F1/image").headers["content-type"] == "image/png"
    dup = writable.post("/v1/items", files={"file": ("n.png", png_bytes())}, data={"id": "green/1"}, headers=AUTH)
    assert dup.status_code == 409 and dup.json()["code"] == "duplicate_item"
    hostile = writable.post("/v1/items", files={"file": ("n.jpg", b"GIF89a" + b"\0" * 50)}, headers=AUTH)
    assert hostile.status_code == 422
    with client_for(index_copy) as reopened:  # persisted
        assert reopened.get("/v1/index").json()["items"] == 97
    assert writable.delete("/v1/items/green/1", headers=AUTH).json() == {"removed": "green/1", "items": 96}
    assert writable.delete("/v1/items/green/1", headers=AUTH).status_code == 404


def test_concurrent_uploads_share_forward_passes_and_reads_go_on_during_writes(writable: TestClient) -> None:
    errors: list[str] = []

    def search(i: int) -> None:
        r = writable.post("/v1/search", files={"file": (f"{i}.png", png_bytes((i * 20 % 255, 90, 160)))}, data={"k": "3"})
        if r.status_code != 200:
            errors.append(r.text)

    def add(i: int) -> None:
        r = writable.post("/v1/items", files={"file": ("a.png", png_bytes((5, i * 40, 5)))}, data={"id": f"c{i}"}, headers=AUTH)
        if r.status_code != 201:
            errors.append(r.text)

    threads = [threading.Thread(target=search, args=(i,)) for i in range(12)]
    threads += [threading.Thread(target=add, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    assert writable.get("/v1/index").json()["items"] == 99
    metrics = writable.get("/metrics").text
    assert "stylesearch_embed_batch_images_count" in metrics and "stylesearch_index_items 99.0" in metrics
    batches = float(metrics.split("stylesearch_embed_batch_images_count ")[1].split()[0])
    assert batches < 15  # 15 uploads, fewer forward passes: requests were micro-batched
    assert 'route="/v1/search"' in metrics


def test_openapi_document_is_complete(api: TestClient) -> None:
    doc = api.get("/openapi.json").json()
    paths = doc["paths"]
    for path in ("/v1/search", "/v1/recommend", "/v1/classify", "/v1/items", "/v1/items/{item_id}", "/v1/labels", "/v1/index"):
        assert path in paths, path
    upload = paths["/v1/search"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    by_item = paths["/v1/search/item"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    schemas = doc["components"]["schemas"]
    assert {"file", "k", "where", "group_by", "diversity"} <= set(schemas[upload["$ref"].rsplit("/", 1)[1]]["properties"])
    assert "item_id" in schemas[by_item["$ref"].rsplit("/", 1)[1]]["properties"]
    assert "ErrorBody" in doc["components"]["schemas"]
    assert "HTTPBearer" in doc["components"]["securitySchemes"]


def test_web_page_is_served(api: TestClient) -> None:
    page = api.get("/")
    assert page.status_code == 200 and "stylesearch" in page.text and "/static/app.js" in page.text
    assert api.get("/static/app.js").status_code == 200


def test_reads_see_writes_from_another_process(writable: TestClient, index_copy: Path, demo_data) -> None:  # type: ignore[no-untyped-def]
    from stylesearch import StyleSearch
    from stylesearch.config import RunConfig

    before = writable.get("/v1/index").json()["items"]
    with StyleSearch.open(index_copy, run=RunConfig(device="cpu", progress=False)) as other:  # e.g. `stylesearch add`
        other.add([demo_data[1][0][0]], ids=["from-elsewhere"], labels="x")
    assert writable.get("/v1/index").json()["items"] == before + 1
    assert writable.get("/v1/items/from-elsewhere").status_code == 200
