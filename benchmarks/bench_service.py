"""HTTP search throughput and latency with and without micro-batching, over loopback.

    .venv/bin/python benchmarks/bench_service.py [--clients 8] [--requests 240] [--json]
    .venv/bin/python benchmarks/bench_service.py --items 100000 [--engines torch:fp32 openvino:fp32 openvino:int8]

``--items N`` measures serving at catalog scale instead: per engine, an index of 1,000 real
fashion-usage photos (``train``) grown to N items with synthetic vectors (real vectors plus
noise, renormalised; ``reindex auto`` then builds what a catalog of that size gets), served
by the real app; search-by-id (``GET /v1/items/{id}/similar``) and upload search
(``POST /v1/search`` with real ``test`` photos) from 1 and from 8 clients: p50 / p95 and
requests/s.

Builds the demo index (128 px) in a temporary folder, starts the real app under uvicorn on
127.0.0.1 twice — micro-batching off (1 image per forward pass) and on (up to 32 images,
5 ms wait) — and sends the same uploads (``POST /v1/search``, the demo's held-out photos) from
``--clients`` concurrent clients. Bounded by the request count and a 300 s deadline.
"""

from __future__ import annotations

import argparse
import json
import platform
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stylesearch import demo, index_catalog  # noqa: E402
from stylesearch.config import RunConfig  # noqa: E402
from stylesearch.service import Settings, create_app  # noqa: E402

DEADLINE_S = 300


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(settings: Settings) -> tuple[object, threading.Thread, int]:
    import uvicorn

    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    return server, thread, port


def load(send: Callable[[int, httpx.Client], int], clients: int, requests: int, warm: int = 4) -> dict[str, float]:
    """``requests`` calls of ``send(i, client)`` (→ HTTP status) from ``clients`` threads."""
    latencies: list[float] = []
    errors = 0
    stop_at = time.monotonic() + DEADLINE_S

    def one(i: int, client: httpx.Client) -> None:
        nonlocal errors
        if time.monotonic() > stop_at:
            return
        t0 = time.perf_counter()
        status = send(i, client)
        latencies.append(time.perf_counter() - t0)
        errors += status != 200

    with httpx.Client(timeout=60) as c:
        for i in range(warm):
            one(i, c)
    latencies.clear()
    t0 = time.perf_counter()
    with httpx.Client(timeout=60, limits=httpx.Limits(max_connections=clients)) as client, ThreadPoolExecutor(clients) as pool:
        list(pool.map(lambda i: one(i, client), range(requests)))
    wall = time.perf_counter() - t0
    ordered = sorted(latencies)
    return {
        "clients": clients,
        "requests": len(latencies),
        "errors": errors,
        "requests_per_s": round(len(latencies) / wall, 1),
        "p50_ms": round(1000 * statistics.median(ordered), 1),
        "p95_ms": round(1000 * ordered[int(0.95 * (len(ordered) - 1))], 1),
    }


def at_scale(args: argparse.Namespace) -> list[dict[str, object]]:
    """The ``--items`` measurement (see the module's docstring)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from protocols import dataset_root, read_rows, write_manifest

    from stylesearch import StyleSearch

    root = dataset_root()
    rows = read_rows(root)
    train = [r for r in rows if r["split"] == "train"][:1000]
    photos = [(root / r["path"]).read_bytes() for r in rows if r["split"] == "test"][:200]
    out: list[dict[str, object]] = []
    for spec in args.engines:
        engine, precision = spec.split(":")
        run = RunConfig(device="cpu", progress=False, engine=engine, precision=precision)
        with tempfile.TemporaryDirectory() as tmp:
            index = Path(tmp) / "index"
            index_catalog(write_manifest(train, root, Path(tmp) / "m.csv"), index, run=run)
            t0 = time.perf_counter()
            with StyleSearch.open(index, run=run) as search:
                real = np.asarray(search.snapshot.backend.vectors)
                rng = np.random.default_rng(0)
                extra = args.items - len(train)
                for start in range(0, extra, 20_000):
                    n = min(20_000, extra - start)
                    base = real[rng.integers(0, len(real), n)]
                    noisy = base + rng.normal(0, 0.35 / np.sqrt(base.shape[1]), base.shape).astype(np.float32)
                    noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
                    ids = [f"syn-{start + i}" for i in range(n)]
                    search.add_vectors(noisy, ids, [str(root / train[i % len(train)]["path"]) for i in range(n)],
                                       [None] * n, [{}] * n)  # fmt: skip
                built = search.reindex("auto")
            grow_s = round(time.perf_counter() - t0, 1)
            settings = Settings(index=str(index), device="cpu", engine=engine)  # type: ignore[call-arg]
            server, thread, port = serve(settings)
            base_url = f"http://127.0.0.1:{port}/v1"
            item_ids = [r["id"] for r in train]

            def by_id(i: int, client: httpx.Client, url: str = base_url, ids: list[str] = item_ids) -> int:
                return client.get(f"{url}/items/{ids[i % len(ids)]}/similar", params={"k": 10}).status_code

            def upload(i: int, client: httpx.Client, url: str = base_url) -> int:
                files = {"file": (f"{i}.jpg", photos[i % len(photos)])}
                return client.post(f"{url}/search", files=files, data={"k": "10"}).status_code

            row: dict[str, object] = {
                "engine": spec,
                "items": args.items,
                "index": built.get("index_key"),
                "grow_s": grow_s,
            }
            for clients in (1, 8):
                row[f"by_id_{clients}"] = load(by_id, clients, args.requests * 2)
                row[f"upload_{clients}"] = load(upload, clients, args.requests)
            server.should_exit = True  # type: ignore[attr-defined]
            thread.join(timeout=30)
        out.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    return out


def run_once(index: Path, photos: list[bytes], clients: int, requests: int, max_images: int) -> dict:  # type: ignore[type-arg]
    settings = Settings(index=str(index), device="cpu", batch_max_images=max_images, batch_max_wait_ms=5.0)  # type: ignore[call-arg]
    server, thread, port = serve(settings)
    url = f"http://127.0.0.1:{port}/v1/search"

    def upload(i: int, client: httpx.Client) -> int:
        return client.post(url, files={"file": (f"{i}.png", photos[i % len(photos)])}, data={"k": "10"}).status_code

    result = load(upload, clients, requests)
    with httpx.Client(timeout=10) as c:
        metrics = c.get(f"http://127.0.0.1:{port}/metrics").text
    server.should_exit = True  # type: ignore[attr-defined]
    thread.join(timeout=30)
    count = float(metrics.split("stylesearch_embed_batch_images_count ")[1].split()[0])
    total = float(metrics.split("stylesearch_embed_batch_images_sum ")[1].split()[0])
    return {
        "batch_max_images": max_images,
        "requests": result["requests"],
        "errors": result["errors"],
        "requests_per_s": result["requests_per_s"],
        "latency_ms_p50": result["p50_ms"],
        "latency_ms_p95": result["p95_ms"],
        "mean_images_per_forward": round(total / count, 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description="HTTP search throughput with and without micro-batching")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=240)
    parser.add_argument("--items", type=int, default=0, help="serve an index grown to this many items (see above)")
    parser.add_argument("--engines", nargs="+", default=["torch:fp32", "openvino:fp32", "openvino:int8"])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.items:
        table = at_scale(args)
        machine = f"{platform.machine()}, {torch.get_num_threads()} threads, CPU"
        print(f"# bench_service --items {args.items} ({machine})\n")
        print(
            "| engine | index | clients | search-by-id p50 / p95 ms | by id req/s | upload p50 / p95 ms | upload req/s | errors |"
        )
        print("|---|---|---|---|---|---|---|---|")
        for r in table:
            for c in (1, 8):
                a, b = r[f"by_id_{c}"], r[f"upload_{c}"]
                print(
                    f"| {r['engine']} | {r['index']} | {c} | {a['p50_ms']} / {a['p95_ms']} | {a['requests_per_s']} | "  # type: ignore[index]
                    f"{b['p50_ms']} / {b['p95_ms']} | {b['requests_per_s']} | {a['errors'] + b['errors']} |"  # type: ignore[index]
                )
        if args.json:
            print(json.dumps(table))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        manifest, held_out = demo.generate(Path(tmp) / "demo", per_cell=4, seed=0)
        index = Path(tmp) / "index"
        index_catalog(manifest, index, run=RunConfig(device="cpu", progress=False))
        photos = [Path(p).read_bytes() for p, _, _ in held_out]
        rows = [run_once(index, photos, args.clients, args.requests, m) for m in (1, 32)]
    machine = f"{platform.machine()}, {torch.get_num_threads()} threads, CPU"
    print(f"# bench_service ({machine}; {args.clients} clients, {args.requests} uploads each run)\n")
    print("| micro-batch (max images) | requests/s | p50 ms | p95 ms | images per forward pass | errors |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['batch_max_images']} | {r['requests_per_s']} | {r['latency_ms_p50']} | {r['latency_ms_p95']} | "
            f"{r['mean_images_per_forward']} | {r['errors']} |"
        )
    if args.json:
        print(json.dumps({"machine": machine, "clients": args.clients, "runs": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
