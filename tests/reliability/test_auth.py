"""Auth, proven: writes need a valid key (401 without or with a wrong one, 403 when the
server has none), reads are open unless configured, keys are compared in constant time
against every configured key, and no key ever reaches a log, a response or the metrics."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from stylesearch.service import Settings, create_app, deps

KEYS = ["first-key-aaaaaaaa", "second-key-bbbbbbb", "third-key-cccccccc"]
WRONG = "wrong-key-zzzzzzzz"


def png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (32, 32), (1, 2, 3)).save(buf, format="PNG")
    return buf.getvalue()


def client(index: Path, **opts: object) -> TestClient:
    settings = Settings(index=str(index), device="cpu", **opts)  # type: ignore[arg-type]
    return TestClient(create_app(settings))


WRITES = [
    ("post", "/v1/items", {"files": {"file": ("a.png", png(), "image/png")}, "data": {"id": "auth-1"}}),
    ("delete", "/v1/items/auth-1", {}),
]


def test_every_write_is_refused_without_a_valid_key(index_copy: Path) -> None:
    with client(index_copy, api_keys=",".join(KEYS)) as api:
        for method, path, kwargs in WRITES:
            for headers in (
                {},
                {"Authorization": f"Bearer {WRONG}"},
                {"Authorization": KEYS[0]},
                {"Authorization": "Basic eA=="},
            ):
                r = getattr(api, method)(path, headers=headers, **kwargs)
                assert r.status_code == 401 and r.headers["WWW-Authenticate"] == "Bearer", (method, headers, r.text)
        assert api.get("/v1/labels").status_code == 200  # reads need no key
        r = api.post("/v1/items", headers={"Authorization": f"Bearer {KEYS[2]}"}, **WRITES[0][2])  # type: ignore[arg-type]
        assert r.status_code == 201
        assert api.delete("/v1/items/auth-1", headers={"Authorization": f"Bearer {KEYS[1]}"}).status_code == 200
    with client(index_copy, api_keys="") as api:
        for method, path, kwargs in WRITES:
            r = getattr(api, method)(path, headers={"Authorization": f"Bearer {KEYS[0]}"}, **kwargs)
            assert r.status_code == 403 and r.json()["code"] == "writes_disabled"
    with client(index_copy, api_keys=KEYS[0], read_requires_key=True) as api:
        assert api.get("/v1/labels").status_code == 401
        assert api.get("/v1/labels", headers={"Authorization": f"Bearer {WRONG}"}).status_code == 401
        assert api.get("/v1/labels", headers={"Authorization": f"Bearer {KEYS[0]}"}).status_code == 200
        assert api.get("/healthz").status_code == 200  # liveness stays open
        assert "security" in api.get("/openapi.json").json()["paths"]["/v1/labels"]["get"]


def test_keys_are_compared_in_constant_time_against_every_key(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = deps.hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(deps.hmac, "compare_digest", spy)
    for given, expected in ((KEYS[0], True), (KEYS[2], True), (WRONG, False), ("", False)):
        calls.clear()
        assert deps._key_matches(given, KEYS) is expected
        assert len(calls) == len(KEYS)  # no early exit that would tell which key matched, or how far


def test_keys_never_reach_logs_responses_or_metrics(index_copy: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with client(index_copy, api_keys=",".join(KEYS)) as api:
        bodies = []
        for key in (KEYS[0], WRONG):
            headers = {"Authorization": f"Bearer {key}"}
            bodies.append(api.post("/v1/items", headers=headers, **WRITES[0][2]).text)  # type: ignore[arg-type]
            bodies.append(api.delete("/v1/items/auth-1", headers=headers).text)
            bodies.append(api.delete("/v1/items/no-such-item", headers=headers).text)
        bodies.append(api.get("/metrics").text)
        bodies.append(api.get("/v1/index").text)
        bodies.append(api.get("/openapi.json").text)
    text = caplog.text + "".join(bodies)
    for key in (*KEYS, WRONG):
        assert key not in text
