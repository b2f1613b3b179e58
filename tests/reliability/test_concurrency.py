"""16 concurrent readers and 4 writers against one index through the HTTP API, for a bounded
time: no errors, and the final item set is exactly what the writes say (also after
reopening the index from disk)."""

from __future__ import annotations

import io
import os
import random
import threading
import time
from pathlib import Path

from fastapi.testclient import TestClient
from PIL import Image

from stylesearch import StyleSearch
from stylesearch.service import Settings, create_app

from ..conftest import RUN

KEY = "concurrency-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
SECONDS = float(os.environ.get("CONCURRENCY_SECONDS", "15"))
READERS, WRITERS = 16, 4


def png(seed: int) -> bytes:
    rng = random.Random(seed)
    buf = io.BytesIO()
    Image.new("RGB", (48, 48), (rng.randrange(256), rng.randrange(256), rng.randrange(256))).save(buf, format="PNG")
    return buf.getvalue()


def test_sixteen_readers_and_four_writers(index_copy: Path) -> None:
    settings = Settings(index=str(index_copy), device="cpu", api_keys=KEY)  # type: ignore[call-arg]
    errors: list[str] = []
    counts = {"reads": 0, "adds": 0, "deletes": 0}
    lock = threading.Lock()
    with TestClient(create_app(settings)) as client:
        initial = {i["id"] for i in client.get("/v1/items", params={"limit": 500}).json()["items"]}
        expected = set(initial)
        stop = time.monotonic() + SECONDS
        start = threading.Barrier(READERS + WRITERS)

        def reader(n: int) -> None:
            rng = random.Random(n)
            pool = sorted(initial)
            start.wait()
            while time.monotonic() < stop:
                item = rng.choice(pool)
                kind = n % 4
                if kind == 0:
                    r = client.post(
                        "/v1/search", files={"file": ("q.png", png(rng.randrange(10**6)), "image/png")}, data={"k": "5"}
                    )
                elif kind == 1:
                    r = client.post("/v1/search/item", json={"item_id": item, "k": 5})
                elif kind == 2:
                    r = client.get(f"/v1/items/{item}")
                else:
                    r = client.get("/v1/items", params={"limit": 20, "offset": rng.randrange(80)})
                if r.status_code != 200:
                    errors.append(f"read {kind}: {r.status_code} {r.text[:200]}")
                with lock:
                    counts["reads"] += 1

        def writer(n: int) -> None:
            rng = random.Random(100 + n)
            mine: list[str] = []
            start.wait()
            i = 0
            while time.monotonic() < stop:
                if mine and rng.random() < 0.3:
                    gone = mine.pop(rng.randrange(len(mine)))
                    r = client.delete(f"/v1/items/{gone}", headers=AUTH)
                    ok, what = r.status_code == 200, "deletes"
                    if ok:
                        with lock:
                            expected.discard(gone)
                else:
                    item_id = f"w{n}-{i}"
                    i += 1
                    r = client.post(
                        "/v1/items",
                        files={"file": ("n.png", png(n * 10_000 + i), "image/png")},
                        data={"id": item_id, "label": f"writer{n}"},
                        headers=AUTH,
                    )
                    ok, what = r.status_code == 201, "adds"
                    if ok:
                        mine.append(item_id)
                        with lock:
                            expected.add(item_id)
                if not ok:
                    errors.append(f"write: {r.status_code} {r.text[:200]}")
                with lock:
                    counts[what] += 1

        threads = [threading.Thread(target=reader, args=(n,)) for n in range(READERS)]
        threads += [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=SECONDS + 120)
        assert not any(t.is_alive() for t in threads), "a client hung"
        final = {i["id"] for i in client.get("/v1/items", params={"limit": 500}).json()["items"]}
        print(f"\n{SECONDS:.0f} s: {counts}, {len(errors)} errors")
    assert not errors, errors[:5]
    assert counts["adds"] >= WRITERS and counts["deletes"] >= 1 and counts["reads"] >= READERS
    assert final == expected
    with StyleSearch.open(index_copy, run=RUN) as engine:
        assert len(engine) == engine.snapshot.meta.count() == len(expected)
        assert {h.id for h in engine.browse(limit=500)} == expected
