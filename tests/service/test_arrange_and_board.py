"""Grouped / diverse results and mood boards over HTTP."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from .test_api import client_for, png_bytes


@pytest.fixture(scope="module")
def api(built_index: Path) -> Iterator[TestClient]:
    with client_for(built_index) as client:
        yield client


def test_group_by_and_diversity_on_every_search_route(api: TestClient, demo_data) -> None:  # type: ignore[no-untyped-def]
    path = demo_data[1][0][0]
    with open(path, "rb") as fh:
        r = api.post("/v1/search", files={"file": ("q.png", fh)}, data={"k": "3", "group_by": "product", "group_size": "2"})
    assert r.status_code == 200, r.text
    groups = [i["group"] for i in r.json()["results"]]
    assert len(groups) == 6 and len(set(groups)) == 3
    assert [i["attributes"]["product"] for i in r.json()["results"]] == groups
    item_id = r.json()["results"][0]["id"]
    similar = api.get(f"/v1/items/{item_id}/similar", params={"k": 4, "group_by": "product"}).json()["results"]
    assert len({i["group"] for i in similar}) == 4
    by_json = api.post("/v1/search/item", json={"item_id": item_id, "k": 4, "group_by": "product"}).json()["results"]
    assert [i["id"] for i in by_json] == [i["id"] for i in similar]
    where = json.dumps({"label": similar[0]["label"]})
    diverse = api.get(f"/v1/items/{item_id}/similar", params={"k": 5, "diversity": 0.7, "where": where}).json()["results"]
    assert len(diverse) == 5 and {i["label"] for i in diverse} == {similar[0]["label"]}
    rec = api.post("/v1/recommend", json={"positive": [item_id], "k": 3, "group_by": "label"}).json()["results"]
    assert len({i["label"] for i in rec}) == 3


def test_bad_arrangements_are_422(api: TestClient) -> None:
    item_id = api.get("/v1/items", params={"limit": 1}).json()["items"][0]["id"]
    cases = [
        api.get(f"/v1/items/{item_id}/similar", params={"diversity": 2}),
        api.get(f"/v1/items/{item_id}/similar", params={"group_size": 0, "group_by": "product"}),
        api.post("/v1/search/item", json={"item_id": item_id, "diversity": "much"}),
        api.post("/v1/search", files={"file": ("q.png", png_bytes())}, data={"group_size": "x"}),
        api.post("/v1/search", files={"file": ("q.png", png_bytes())}, data={"group_size": "3"}),  # no group_by
        api.get(f"/v1/items/{item_id}/similar", params={"group_by": "Product"}),
    ]
    for response in cases:
        assert response.status_code == 422, (response.request.url, response.text)
    assert "did you mean product" in cases[-1].json()["message"]


def test_mood_board(api: TestClient, demo_data) -> None:  # type: ignore[no-untyped-def]
    ids = [i["id"] for i in api.get("/v1/items", params={"limit": 3}).json()["items"]]
    photo = base64.b64encode(Path(demo_data[1][0][0]).read_bytes()).decode()
    body = {"examples": [{"item": ids[0], "weight": 2}, {"image": photo}, {"item": ids[2], "weight": -0.5}], "k": 5}
    r = api.post("/v1/board", json=body)
    assert r.status_code == 200, r.text
    found = [i["id"] for i in r.json()["results"]]
    assert len(found) == 5 and ids[0] not in found and ids[2] not in found
    best = api.post("/v1/board", json={**body, "strategy": "best_score", "group_by": "product", "k": 3}).json()["results"]
    assert len({i["group"] for i in best}) == 3
    one = api.post("/v1/board", json={"examples": [{"item": ids[0]}], "k": 5}).json()["results"]
    assert [i["id"] for i in one] == [i["id"] for i in api.get(f"/v1/items/{ids[0]}/similar", params={"k": 5}).json()["results"]]


@pytest.mark.parametrize(
    ("examples", "status"),
    [
        ([], 422),
        ([{"item": "x", "image": "aGk="}], 422),  # two kinds in one example
        ([{"item": "a", "weight": 0}], 422),
        ([{"item": "a", "weight": "heavy"}], 422),
        ([{"image": "not base64!!"}], 422),
        ([{"image": base64.b64encode(b"not an image").decode()}], 415),
        ([{"vector": [1.0, 2.0]}], 422),  # wrong dim
        ([{"item": "no-such-item"}], 404),
        ([{"item": "x", "weight": -1}], 422),  # nothing positive
    ],
)
def test_bad_boards(api: TestClient, examples: list, status: int) -> None:
    r = api.post("/v1/board", json={"examples": examples})
    assert r.status_code == status, r.text
    assert r.json()["message"]
