"""Index types at scale: build time, memory, recall@10 and speed for flat / HNSW / IVF / IVF-PQ.

    .venv/bin/python benchmarks/bench_index.py --n 100000 --dim 256 [--types flat hnsw ivf ivfpq]
        [--vectors DB.npy --queries Q.npy] [--target 0.95] [--json]

Vectors are generated with structure (a mixture of 2,000 anisotropic clusters on the unit
sphere with a decaying spectrum, like real embeddings — uniform random vectors make every
index look bad), or read from float32 .npy files. For each type: build (train + add) time,
bytes per vector (the serialised index over n: codes or vectors, ids, links; raw vectors on
disk excluded), the search parameter tuned on separate queries to reach ``--target``
recall@10 against exact search (stylesearch.index.factory.tune), then recall@10, batched
queries/s and single-query latency on the measured queries. IVF-PQ re-scores 8·k candidates
on the raw vectors (the refine step). With ``--json`` the last line is a JSON list, one
object per type.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stylesearch.index.backends.faiss import import_faiss  # noqa: E402
from stylesearch.index.factory import KINDS, plan, recall_at_k, tune  # noqa: E402

K = 10
NOISE = 1.0  # cluster spread: neighbourhoods overlap as in real embeddings (IVF needs nprobe > 1)


def structured(n: int, dim: int, seed: int, clusters: int = 2000) -> np.ndarray:
    """float32 [n, dim], L2-normalised, clustered with a decaying spectrum."""
    rng = np.random.default_rng(seed)
    spectrum = (1.0 / np.sqrt(1.0 + np.arange(dim) / 8.0)).astype(np.float32)
    centers = np.random.default_rng(12345).standard_normal((clusters, dim)).astype(np.float32) * spectrum
    out = np.empty((n, dim), np.float32)
    for start in range(0, n, 100_000):
        m = min(100_000, n - start)
        chunk = centers[rng.integers(0, clusters, m)] + NOISE * rng.standard_normal((m, dim)).astype(np.float32) * spectrum
        out[start : start + m] = chunk / np.linalg.norm(chunk, axis=1, keepdims=True)
    return out


def exact(faiss: Any, base: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    index = faiss.IndexFlatIP(base.shape[1])
    index.add(base)
    return index.search(queries, k)[1]


def refine(base: np.ndarray, queries: np.ndarray, candidates: np.ndarray, k: int) -> np.ndarray:
    """Re-score candidate ids [Q, C] exactly on the raw vectors; best ``k`` ids [Q, k]."""
    out = np.empty((len(queries), k), np.int64)
    for i, (q, cand) in enumerate(zip(queries, candidates)):
        cand = cand[cand >= 0]
        scores = base[cand] @ q
        out[i] = cand[np.argsort(-scores)[:k]] if len(cand) >= k else np.pad(cand, (0, k - len(cand)), constant_values=-1)
    return out


def run_type(
    faiss: Any,
    kind: str,
    base: np.ndarray,
    tune_q: np.ndarray,
    tune_truth: np.ndarray,
    queries: np.ndarray,
    truth: np.ndarray,
    target: float,
) -> dict[str, Any]:  # noqa: E501
    n, dim = base.shape
    p = plan(kind, n, dim)
    t0 = time.perf_counter()
    index = faiss.index_factory(dim, p.key, faiss.METRIC_INNER_PRODUCT)
    if p.train_size:
        sample = base[np.random.default_rng(0).choice(n, size=min(n, p.train_size), replace=False)]
        index.train(sample)
    if kind == "hnsw":
        faiss.ParameterSpace().set_index_parameter(index, "efConstruction", 40)
    ids = np.arange(n, dtype=np.int64)
    for start in range(0, n, 100_000):
        index.add_with_ids(base[start : start + 100_000], ids[start : start + 100_000])
    build_s = time.perf_counter() - t0
    bytes_per_vector = len(faiss.serialize_index(index)) / n
    space = faiss.ParameterSpace()

    def search(q: np.ndarray, value: int | None) -> np.ndarray:
        if value is not None and p.search_param is not None:
            space.set_index_parameter(index, p.search_param, value)
        found = index.search(q, K * p.refine)[1]
        return refine(base, q, found, K) if p.refine > 1 else found

    value, tuned_recall = tune(
        kind,
        lambda v: search(tune_q, v),
        tune_truth,
        target,
        K,
        nlist=getattr(faiss.extract_index_ivf(index), "nlist", None) if kind.startswith("ivf") else None,
    )  # noqa: E501
    t0 = time.perf_counter()
    found = search(queries, value)
    qps = len(queries) / (time.perf_counter() - t0)
    recall = recall_at_k(found, truth, K)
    singles = []
    for q in queries[:200]:
        t1 = time.perf_counter()
        search(q[None], value)
        singles.append(time.perf_counter() - t1)
    return {
        "index_type": kind,
        "key": p.key + (f" + refine x{p.refine}" if p.refine > 1 else ""),
        "search_param": None if p.search_param is None else f"{p.search_param}={value}",
        "build_s": round(build_s, 2),
        "bytes_per_vector": round(bytes_per_vector, 1),
        "recall_at_10": round(recall, 4),
        "qps_batch": round(qps, 1),
        "latency_ms_single": round(1000 * float(np.median(singles)), 3),
        "estimated_bytes_per_vector": round(p.bytes_per_vector, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description="FAISS index types: build, memory, recall, speed")
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--queries-n", type=int, default=2000)
    parser.add_argument("--vectors", help="float32 [N, D] .npy database (instead of generated vectors)")
    parser.add_argument("--queries", help="float32 [Q, D] .npy queries")
    parser.add_argument("--types", nargs="+", default=list(KINDS), choices=list(KINDS))
    parser.add_argument("--target", type=float, default=0.95, help="recall@10 the search parameter is tuned to")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    faiss = import_faiss()
    if args.vectors:
        base = np.ascontiguousarray(np.load(args.vectors), dtype=np.float32)
        queries_all = (
            np.ascontiguousarray(np.load(args.queries), dtype=np.float32)
            if args.queries
            else structured(2 * args.queries_n, base.shape[1], 1)
        )
    else:
        base = structured(args.n, args.dim, 0)
        queries_all = structured(2 * args.queries_n, args.dim, 1)
    half = len(queries_all) // 2
    tune_q, queries = queries_all[:half], queries_all[half:]
    t0 = time.perf_counter()
    truth_all = exact(faiss, base, queries_all, K)
    exact_s = time.perf_counter() - t0
    rows = [run_type(faiss, kind, base, tune_q, truth_all[:half], queries, truth_all[half:], args.target) for kind in args.types]
    print(
        f"# bench_index ({platform.machine()}, {faiss.omp_get_max_threads()} threads; {len(base)} x {base.shape[1]} vectors, "
        f"{len(queries)} queries; exact ground truth {exact_s:.1f} s)\n"
    )
    print("| type | FAISS key | search | build s | bytes/vector | recall@10 | queries/s (batch) | single query ms |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['index_type']} | {r['key']} | {r['search_param']} | {r['build_s']} | {r['bytes_per_vector']} | "
            f"{r['recall_at_10']} | {r['qps_batch']} | {r['latency_ms_single']} |"
        )
    if args.json:
        print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
