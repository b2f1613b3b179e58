"""Sustained load on a real server over loopback: throughput, errors and memory growth.

    .venv/bin/python benchmarks/bench_soak.py [--seconds 600] [--warmup 60] [--clients 8] [--index DIR] [--json]

Starts ``stylesearch serve`` on 127.0.0.1 (a separate process, so its memory is its own) on
the demo index (built at 64 px in a temporary folder unless ``--index`` is given; the index
is copied, never changed), then ``--clients`` threads send a mix for ``--seconds``: photo
uploads to ``/v1/search`` and ``/v1/classify``, searches by item, item pages and item reads,
and — one request in twenty — an add of a new item followed by its delete (so the catalog
keeps its size while generations are published and swapped). The server's resident memory
is sampled every second from ``/proc``. Growth = median RSS over the last 10 s against the
median over the 10 s after ``--warmup``. Everything stops by itself: the clients at the
deadline, the server after them (SIGTERM, then SIGKILL).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stylesearch import demo, index_catalog  # noqa: E402
from stylesearch.config import EmbedConfig, RunConfig  # noqa: E402

KEY = "soak-key"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def soak(index: Path, photos: list[bytes], seconds: float, warmup: float, clients: int) -> dict[str, Any]:
    port = free_port()
    env = dict(os.environ, STYLESEARCH_API_KEYS=KEY, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    cli = [sys.executable, "-m", "stylesearch.cli", "serve", "--index", str(index), "--host", "127.0.0.1", "--port", str(port)]
    log_path = index.parent / "server.log"
    log = log_path.open("wb")
    server = subprocess.Popen([*cli, "--device", "cpu"], env=env, stdout=subprocess.DEVNULL, stderr=log)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"server did not start: {log_path.read_text(errors='replace')[-2000:]}")
            time.sleep(0.2)
        items = [i["id"] for i in httpx.get(f"{base}/v1/items", params={"limit": 500}).json()["items"]]
        samples: list[tuple[float, float]] = []
        counts: dict[str, int] = {}
        errors: list[str] = []
        latencies: list[float] = []
        lock = threading.Lock()
        t_start = time.monotonic()
        stop_at = t_start + seconds

        def client(n: int) -> None:
            rng = random.Random(n)
            added = 0
            with httpx.Client(base_url=base, timeout=60) as http:
                while time.monotonic() < stop_at:
                    roll = rng.random()
                    t0 = time.perf_counter()
                    if roll < 0.05:
                        item_id = f"soak-{n}-{added}"
                        added += 1
                        r = http.post(
                            "/v1/items",
                            files={"file": ("p.png", rng.choice(photos), "image/png")},
                            data={"id": item_id, "label": "soak"},
                            headers={"Authorization": f"Bearer {KEY}"},
                        )
                        ok = r.status_code == 201
                        if ok:
                            r = http.delete(f"/v1/items/{item_id}", headers={"Authorization": f"Bearer {KEY}"})
                            ok = r.status_code == 200
                        kind = "add+delete"
                    elif roll < 0.45:
                        r = http.post("/v1/search", files={"file": ("q.png", rng.choice(photos), "image/png")}, data={"k": "10"})
                        ok, kind = r.status_code == 200, "search upload"
                    elif roll < 0.60:
                        r = http.post("/v1/classify", files=[("file", ("q.png", rng.choice(photos), "image/png"))])
                        ok, kind = r.status_code == 200, "classify"
                    elif roll < 0.80:
                        r = http.post("/v1/search/item", json={"item_id": rng.choice(items), "k": 10})
                        ok, kind = r.status_code == 200, "search by item"
                    elif roll < 0.90:
                        r = http.get("/v1/items", params={"limit": 20, "offset": rng.randrange(len(items))})
                        ok, kind = r.status_code == 200, "browse"
                    else:
                        r = http.get(f"/v1/items/{rng.choice(items)}")
                        ok, kind = r.status_code == 200, "get item"
                    elapsed = time.perf_counter() - t0
                    with lock:
                        counts[kind] = counts.get(kind, 0) + 1
                        latencies.append(elapsed)
                        if not ok:
                            errors.append(f"{kind}: {r.status_code} {r.text[:200]}")

        threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(clients)]
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads):
            samples.append((time.monotonic() - t_start, rss_mib(server.pid)))
            time.sleep(1.0)
        for t in threads:
            t.join(timeout=120)
        wall = time.monotonic() - t_start
        final_items = httpx.get(f"{base}/v1/index").json()["items"]
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=30)
        log.close()
    server_errors = [line for line in log_path.read_text(errors="replace").splitlines() if line.strip()]
    after_warmup = [r for t, r in samples if warmup <= t < warmup + 10] or [samples[0][1]]
    last = [r for t, r in samples if t >= samples[-1][0] - 10]
    baseline, end = statistics.median(after_warmup), statistics.median(last)
    ordered = sorted(latencies)
    return {
        "seconds": round(wall, 1),
        "clients": clients,
        "requests": len(latencies),
        "requests_per_s": round(len(latencies) / wall, 1),
        "errors": len(errors),
        "first_errors": errors[:3],
        "server_log_tail": server_errors[-40:] if errors else [],
        "latency_ms_p50": round(1000 * statistics.median(ordered), 1),
        "latency_ms_p99": round(1000 * ordered[int(0.99 * (len(ordered) - 1))], 1),
        "by_kind": counts,
        "rss_mib_start": round(samples[0][1], 1),
        "rss_mib_after_warmup": round(baseline, 1),
        "rss_mib_end": round(end, 1),
        "rss_mib_max": round(max(r for _, r in samples), 1),
        "rss_growth_after_warmup": round((end - baseline) / baseline, 4),
        "items_before_after": [len(items), final_items],
    }


def build_demo_index(folder: Path) -> tuple[Path, list[bytes]]:
    manifest, held_out = demo.generate(folder / "demo", per_cell=2, seed=0)
    index = folder / "index"
    index_catalog(manifest, index, embed=EmbedConfig(image_size=64), run=RunConfig(device="cpu", progress=False))
    return index, [Path(p).read_bytes() for p, _, _ in held_out]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--warmup", type=float, default=60)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--index", help="an index to serve (a copy is used); default: the demo index at 64 px")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        index, photos = build_demo_index(Path(tmp))
        if args.index:
            index = Path(tmp) / "served"
            shutil.copytree(args.index, index)
        result = soak(index, photos, args.seconds, args.warmup, args.clients)
    print(f"# bench_soak ({platform.machine()}, {os.cpu_count()} cores; {args.clients} clients, {args.seconds:.0f} s)\n")
    print("| requests | requests/s | errors | p50 ms | p99 ms | RSS MiB after warm-up → end (max) | growth |")
    print("|---|---|---|---|---|---|---|")
    r = result
    print(
        f"| {r['requests']:,} | {r['requests_per_s']} | {r['errors']} | {r['latency_ms_p50']} | {r['latency_ms_p99']} | "
        f"{r['rss_mib_after_warmup']} → {r['rss_mib_end']} ({r['rss_mib_max']}) | {r['rss_growth_after_warmup']:.2%} |"
    )
    print(f"\nmix: {r['by_kind']}; items before/after: {r['items_before_after']}")
    if args.json:
        print(json.dumps(result))
    return result


if __name__ == "__main__":
    outcome = main()
    sys.exit(0 if outcome["errors"] == 0 else 1)
