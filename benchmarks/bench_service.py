"""HTTP search throughput and latency with and without micro-batching, over loopback.

    .venv/bin/python benchmarks/bench_service.py [--clients 8] [--requests 240] [--json]

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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
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


def run_once(index: Path, photos: list[bytes], clients: int, requests: int, max_images: int) -> dict:  # type: ignore[type-arg]
    import uvicorn

    settings = Settings(index=str(index), device="cpu", batch_max_images=max_images, batch_max_wait_ms=5.0)  # type: ignore[call-arg]
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    url = f"http://127.0.0.1:{port}/v1/search"
    latencies: list[float] = []
    errors = 0
    stop_at = time.monotonic() + DEADLINE_S

    def one(i: int, client: httpx.Client) -> None:
        nonlocal errors
        if time.monotonic() > stop_at:
            return
        t0 = time.perf_counter()
        r = client.post(url, files={"file": (f"{i}.png", photos[i % len(photos)])}, data={"k": "10"})
        latencies.append(time.perf_counter() - t0)
        errors += r.status_code != 200

    with httpx.Client(timeout=60) as warm:
        for i in range(4):
            one(i, warm)
    latencies.clear()
    t0 = time.perf_counter()
    with httpx.Client(timeout=60, limits=httpx.Limits(max_connections=clients)) as client, ThreadPoolExecutor(clients) as pool:
        list(pool.map(lambda i: one(i, client), range(requests)))
    wall = time.perf_counter() - t0
    with httpx.Client(timeout=10) as c:
        metrics = c.get(f"http://127.0.0.1:{port}/metrics").text
    server.should_exit = True
    thread.join(timeout=30)
    count = float(metrics.split("stylesearch_embed_batch_images_count ")[1].split()[0])
    total = float(metrics.split("stylesearch_embed_batch_images_sum ")[1].split()[0])
    ordered = sorted(latencies)
    return {
        "batch_max_images": max_images,
        "requests": len(latencies),
        "errors": errors,
        "requests_per_s": round(len(latencies) / wall, 1),
        "latency_ms_p50": round(1000 * statistics.median(ordered), 1),
        "latency_ms_p95": round(1000 * ordered[int(0.95 * (len(ordered) - 1))], 1),
        "mean_images_per_forward": round(total / count, 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description="HTTP search throughput with and without micro-batching")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=240)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
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
