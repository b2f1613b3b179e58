"""Which FAISS index for a catalog: a pure function of its size, the vector dimension, a memory
budget and a latency target (no FAISS needed to decide), plus search-parameter tuning.

:func:`choose_index` ranks the candidates:

- ``flat`` — exact inner-product scan (``IDMap2,Flat``); best up to ~50k vectors and always
  the reference for recall.
- ``hnsw`` — graph search (``IDMap2,HNSW32,Flat``): the fastest at high recall, but it keeps
  the float32 vectors plus ~300 bytes of links per vector, and cannot remove (deleted ids
  are tombstoned until the next rebuild).
- ``ivf`` — inverted lists of float32 vectors (``IVF{nlist},Flat``): little overhead, removal
  supported; slower than HNSW at the same recall.
- ``ivfpq`` — inverted lists of product-quantised codes (``IVF{nlist},PQ{m}x8``): ``m``
  bytes of code + 8 of id per vector; recall comes back with a refine step that re-scores
  8·k candidates on the raw vectors (which stay on disk, memory-mapped). An OPQ rotation
  (``OPQ{m},…``) was measured: on 20k × 256 vectors its training took 205 s on 2 cores for no
  recall gain after refining, so it is left out.

Memory figures are estimates of the index in RAM (raw vectors on disk excluded).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..config import INDEX_KINDS as KINDS
from ..errors import ConfigError

HNSW_M = 32
FLAT_MAX = 50_000  # below this an exact scan is fast enough (measured: 1.2 ms a query at 20k × 256, 83 ms at 1M)
SCAN_BYTES_PER_MS = 1.2e7  # float32 bytes scanned per ms: bench_index flat, 1M x 256 in 83 ms on 2 cores


@dataclass(frozen=True)
class IndexPlan:
    """One candidate index for ``n`` vectors of ``dim`` dimensions."""

    kind: str
    key: str  # FAISS index_factory string (metric: inner product)
    bytes_per_vector: float  # in RAM: codes or vectors, ids, links
    memory_bytes: int  # for all n vectors, with fixed parts (centroids, codebooks, rotation)
    train_size: int  # vectors to train on (0: no training)
    search_param: str | None  # "nprobe" | "efSearch" | None
    refine: int  # re-score refine·k candidates on the raw vectors (1: none)
    est_latency_ms: float  # rough single-query latency, for ranking only

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def kind_of_key(key: str) -> str:
    """The index kind of a FAISS factory string (``IDMap2,HNSW32,Flat`` → ``hnsw``)."""
    if "HNSW" in key:
        return "hnsw"
    if "PQ" in key:
        return "ivfpq"
    return "ivf" if "IVF" in key else "flat"


def nlist_for(n: int) -> int:
    """Inverted lists for ``n`` vectors: about 4·√n, a power of two, 16 … 65536."""
    target = 4 * math.sqrt(max(n, 1))
    return int(min(65536, max(16, 2 ** round(math.log2(target)))))


def pq_m_for(dim: int, max_code_bytes: int = 64) -> int:
    """Sub-quantisers for PQ: the largest divisor of ``dim`` up to ``max_code_bytes`` (≤ 72
    bytes a vector with the id), at least 4 dimensions each when possible."""
    best = 1
    for m in range(1, min(dim, max_code_bytes) + 1):
        if dim % m == 0 and (dim // m >= 4 or m <= 8):
            best = m
    return best


def plan(kind: str, n: int, dim: int) -> IndexPlan:
    """The plan of one index ``kind`` for ``n`` vectors of ``dim`` dimensions."""
    if n < 0 or dim < 1:
        raise ConfigError(f"cannot plan an index for {n} vectors of {dim} dimensions")
    vector = 4.0 * dim
    if kind == "flat":
        per = vector + 24  # id + IDMap2's reverse map
        return IndexPlan(kind, "IDMap2,Flat", per, int(per * n), 0, None, 1, n * vector / SCAN_BYTES_PER_MS)
    if kind == "hnsw":
        links = 2 * HNSW_M * 4 * 1.07  # level-0 links (2M), upper levels ~7 % more
        per = vector + links + 24
        return IndexPlan(
            kind, f"IDMap2,HNSW{HNSW_M},Flat", per, int(per * n), 0, "efSearch", 1, 0.2 + 0.02 * dim / 64 * math.log2(max(n, 2))
        )
    nlist = nlist_for(n)
    centroids = nlist * vector
    probe_scan = n / nlist * 16  # lists a query scans at recall ~0.95, typically
    if kind == "ivf":
        per = vector + 8
        train = min(n, max(40 * nlist, 10_000), 163_840)
        return IndexPlan(
            kind, f"IVF{nlist},Flat", per, int(per * n + centroids), train, "nprobe", 1, probe_scan * vector / SCAN_BYTES_PER_MS
        )
    if kind == "ivfpq":
        m = pq_m_for(dim)
        per = m + 8.0
        fixed = centroids + 256 * dim * 4  # IVF centroids, PQ codebooks
        train = min(n, max(40 * nlist, 256 * 39, 10_000), 163_840)  # 40 per centroid; k-means time grows with it
        return IndexPlan(
            kind,
            f"IVF{nlist},PQ{m}x8",
            per,
            int(per * n + fixed),
            train,
            "nprobe",
            8,
            probe_scan * m / SCAN_BYTES_PER_MS * 4,
        )
    raise ConfigError(f"unknown index type {kind!r}: choose auto or one of {', '.join(KINDS)}")


def choose_index(n: int, dim: int, max_memory: int | None = None, latency_ms: float | None = None) -> list[IndexPlan]:
    """Candidate indexes for ``n`` vectors of ``dim`` dims, best first: those that fit
    ``max_memory`` (bytes) and, where one is given, meet ``latency_ms`` for a single query.

    Small catalogs get the exact scan first; larger ones HNSW (fastest at high recall), then
    IVF-Flat, then IVF-PQ (the smallest). Raises :class:`ConfigError` when nothing fits."""
    order = ("flat", "hnsw", "ivf", "ivfpq") if n <= FLAT_MAX else ("hnsw", "ivf", "ivfpq", "flat")
    plans = [plan(kind, n, dim) for kind in order]
    fits = [p for p in plans if max_memory is None or p.memory_bytes <= max_memory]
    if latency_ms is not None:
        fast = [p for p in fits if p.est_latency_ms <= latency_ms]
        fits = fast or sorted(fits, key=lambda p: p.est_latency_ms)[:1]
    if not fits:
        smallest = min(plans, key=lambda p: p.memory_bytes)
        raise ConfigError(
            f"no index type holds {n} vectors of {dim} dims in {format_bytes(max_memory or 0)}: the smallest "
            f"({smallest.kind}) needs about {format_bytes(smallest.memory_bytes)}; raise --max-memory or lower --dim"
        )
    return fits


def format_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


# --------------------------------------------------------------------------- tuning


def recall_at_k(found: np.ndarray, truth: np.ndarray, k: int = 10) -> float:
    """Mean fraction of the true top-``k`` ids (int [Q, ≥k]) among the found top-``k``."""
    hits = [len(set(f[:k].tolist()) & set(t[:k].tolist())) for f, t in zip(found, truth)]
    return float(np.mean(hits)) / k if len(hits) else 0.0


def search_values(kind: str, nlist: int | None = None) -> Sequence[int]:
    """Values of the search parameter to try, cheapest first."""
    if kind == "hnsw":
        return (16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512)
    if kind in ("ivf", "ivfpq"):
        top = nlist or 65536
        return tuple(v for v in (1, 2, 4, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 512, 1024) if v <= top)
    return ()


def tune(
    kind: str,
    search: Callable[[int], np.ndarray],
    truth: np.ndarray,
    target: float = 0.95,
    k: int = 10,
    nlist: int | None = None,
) -> tuple[int | None, float]:
    """The cheapest search-parameter value whose recall@``k`` against ``truth`` (exact ids,
    int [Q, ≥k]) reaches ``target``; ``search(value)`` returns the found ids [Q, ≥k]. Returns
    (value, recall); the largest value tried when none reaches it; (None, 1.0) for ``flat``."""
    values = search_values(kind, nlist)
    if not values:
        return None, 1.0
    recall = 0.0
    for value in values:
        recall = recall_at_k(search(value), truth, k)
        if recall >= target:
            return value, recall
    return values[-1], recall
