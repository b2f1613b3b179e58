"""GPU search and parity: exact torch-on-CUDA search at scale, and GPU vs CPU results.

    python benchmarks/bench_gpu.py [--n 1000000] [--dim 256] [--queries-n 20000] [--parity 4096] [--json]

Needs a CUDA GPU (run it through ``benchmarks/bench_gpu.sh``). Two parts:

- **search**: ``--n`` structured vectors (the generator of ``bench_index.py``) in a
  ``FaissBackend`` whose searches run on the GPU (the ``TorchExact`` accelerator), in each scoring precision of
  :class:`~stylesearch.index.backends.accelerators.TorchExactSearch` (``fp32``; ``bf16`` shortlist
  re-scored in float32, the default). Batched queries/s over ``--queries-n`` queries,
  single-query latency, and agreement with FAISS's exact CPU search (``IndexFlatIP``) on 1,000
  queries: the share of queries with the same top-10 id set, and recall@10.
- **parity** (skipped with ``--parity 0``): ``--parity`` fashion-usage photos indexed on the
  CPU (fp32, CPU decoding, FAISS) and on the GPU (the defaults: fp16, nvJPEG decoding, torch
  search); test photos queried on both: the share of queries with the same top-10, and the
  mean cosine between the two paths' vectors of the same photo.

With ``--json`` the last line is a JSON object ``{"search": [...], "parity": {...}}``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_index import structured  # noqa: E402
from protocols import dataset_root, read_rows, write_manifest  # noqa: E402

from stylesearch import StyleSearch, index_catalog  # noqa: E402
from stylesearch.config import EmbedConfig, RunConfig  # noqa: E402
from stylesearch.index.backends.accelerators import TorchExact, TorchExactSearch  # noqa: E402
from stylesearch.index.backends.faiss import FaissBackend, import_faiss  # noqa: E402
from stylesearch.index.factory import recall_at_k  # noqa: E402
from stylesearch.model.embed import Embedder  # noqa: E402

K = 10


def same_sets(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean([set(x.tolist()) == set(y.tolist()) for x, y in zip(a, b)]))


def search_part(n: int, dim: int, queries_n: int, device: str) -> list[dict[str, Any]]:
    faiss = import_faiss()
    base = structured(n, dim, seed=0)
    queries = structured(queries_n, dim, seed=1)
    t0 = time.perf_counter()
    truth = faiss.knn(queries[:1000], base, K, metric=faiss.METRIC_INNER_PRODUCT)[1]
    cpu_s = time.perf_counter() - t0
    print(f"faiss-cpu exact: 1000 queries in {cpu_s:.2f} s ({1000 / cpu_s:.0f} q/s)", file=sys.stderr, flush=True)
    store = FaissBackend(dim)
    store.add(np.arange(n, dtype=np.int64), base)
    cuda = device.startswith("cuda")
    rows = []
    for precision in ("fp32", "bf16"):
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        store.accelerator = TorchExact(device, precision=precision)
        store.accelerator.prepare(store)
        if cuda:
            torch.cuda.synchronize()
        load_s = time.perf_counter() - t0
        store.search(queries[:4096], K)  # warm-up
        found = store.search(queries[:1000], K)[1]
        best = 0.0
        for _ in range(3):
            t0 = time.perf_counter()
            store.search(queries, K)
            best = max(best, queries_n / (time.perf_counter() - t0))
        singles = []
        for q in queries[:200]:
            t0 = time.perf_counter()
            store.search(q[None], K)
            singles.append(time.perf_counter() - t0)
        rows.append(
            {
                "search": f"torch exact on {device}, {precision}",
                "n": n,
                "dim": dim,
                "qps_batch": round(best, 1),
                "latency_ms_single": round(1000 * float(np.median(singles)), 3),
                "same_top10_as_faiss_cpu": round(same_sets(found, truth), 4),
                "recall_at_10": round(recall_at_k(found, truth, K), 4),
                "load_s": round(load_s, 2),
                "gpu_peak_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if cuda else None,
            }
        )
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    rows.append(
        {
            "search": "faiss-cpu exact (IndexFlatIP), same machine",
            "n": n,
            "dim": dim,
            "qps_batch": round(1000 / cpu_s, 1),
            "same_top10_as_faiss_cpu": 1.0,
            "recall_at_10": 1.0,
        }
    )
    return rows


def parity_part(n: int, image_size: int, device: str) -> dict[str, Any]:
    root = dataset_root()
    rows = read_rows(root)
    train = [r for r in rows if r["split"] == "train"][:n]
    test = [r for r in rows if r["split"] == "test"][:1000]
    query_paths = [str(root / r["path"]) for r in test]
    config = EmbedConfig(image_size=image_size)
    out: dict[str, Any] = {"indexed": len(train), "queries": len(test), "image_size": image_size}
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        manifest = write_manifest(train, root, Path(tmp) / "m.csv")
        for name, run in (
            ("cpu", RunConfig(device="cpu", precision="fp32", decode="cpu", progress=False)),
            ("gpu", RunConfig(device=device, batch_size=256, progress=False)),
        ):
            t0 = time.perf_counter()
            index_catalog(manifest, Path(tmp) / name, embed=config, run=run)
            out[f"index_s_{name}"] = round(time.perf_counter() - t0, 2)
            engine = StyleSearch.open(Path(tmp) / name, run=run)
            out[f"search_backend_{name}"] = engine.info()["search_backend"]
            vectors = engine.embedder.embed(query_paths)
            scores, ids = engine.snapshot.backend.search(vectors, K)
            stored = engine.snapshot.backend.vectors.astype(np.float32)
            results[name] = (vectors, ids, stored)
        # the GPU path (nvJPEG, fp16) with the CPU index's projection: the same vector space
        cpu_engine = StyleSearch.open(Path(tmp) / "cpu", run=RunConfig(device="cpu", progress=False))
        projection = cpu_engine.embedder.projection
        gpu_embedder = Embedder(config, RunConfig(device=device, batch_size=256, progress=False), projection=projection)
        gpu_vectors = np.zeros_like(results["cpu"][0])
        for batch in gpu_embedder.iter_raw(query_paths, project=True):
            gpu_vectors[batch.positions] = batch.values
        cpu_store = cpu_engine.snapshot.backend
        same_space_ids = cpu_store.search(gpu_vectors, K)[1]
    (v_cpu, ids_cpu, s_cpu), (_, ids_gpu, _) = results["cpu"], results["gpu"]
    cosine = np.sum(v_cpu * gpu_vectors, axis=1)
    out["same_projection_vector_cosine_mean"] = round(float(np.mean(cosine)), 5)
    out["same_projection_vector_cosine_min"] = round(float(np.min(cosine)), 5)
    out["same_projection_same_top10"] = round(same_sets(ids_cpu, same_space_ids), 4)
    out["same_projection_top10_overlap"] = round(recall_at_k(same_space_ids, ids_cpu, K), 4)
    # two indexes, each with its own PCA fit (components of near-equal variance may rotate)
    out["own_index_same_top10"] = round(same_sets(ids_cpu, ids_gpu), 4)
    out["own_index_top10_overlap"] = round(recall_at_k(ids_gpu, ids_cpu, K), 4)
    # the same stored (CPU-embedded) vectors searched on the GPU and by FAISS on the CPU
    faiss = import_faiss()
    truth = faiss.knn(v_cpu, s_cpu, K, metric=faiss.METRIC_INNER_PRODUCT)[1]
    gpu_found = TorchExactSearch(np.arange(len(s_cpu)), s_cpu, device).search(v_cpu, K)[1]
    out["same_vectors_same_top10"] = round(same_sets(truth, gpu_found), 4)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--queries-n", type=int, default=20_000)
    parser.add_argument("--parity", type=int, default=4096, help="photos indexed for the CPU/GPU parity check (0: skip)")
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--device", default="cuda", help="cpu only to try the script out")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("bench_gpu.py needs a CUDA GPU", file=sys.stderr)
        return 2
    name = torch.cuda.get_device_name() if args.device.startswith("cuda") else "CPU dry run"
    print(f"# bench_gpu ({name}, torch {torch.__version__})\n")
    search = search_part(args.n, args.dim, args.queries_n, args.device)
    print("| search | vectors | batched q/s | single-query ms | same top-10 as faiss-cpu | recall@10 | GPU peak GiB |")
    print("|---|---|---|---|---|---|---|")
    for r in search:
        print(
            f"| {r['search']} | {r['n']:,} × {r['dim']} | {r['qps_batch']:,.0f} | {r.get('latency_ms_single', '')} | "
            f"{r['same_top10_as_faiss_cpu']:.2%} | {r['recall_at_10']} | {r.get('gpu_peak_gib', '')} |"
        )
    parity = parity_part(args.parity, args.image_size, args.device) if args.parity else {}
    if parity:
        print(f"\nparity (CPU fp32 vs GPU defaults, {parity['indexed']} photos, {parity['queries']} queries): {parity}")
    if args.json:
        print(json.dumps({"search": search, "parity": parity}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
