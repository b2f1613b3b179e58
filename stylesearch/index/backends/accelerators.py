"""Accelerators: a backend's searches answered on a GPU (:func:`accelerate`).

- :class:`FaissGpu`: faiss-gpu installed and a GPU visible: unfiltered searches of a flat or
  IVF FAISS index run on a copy of it on GPU 0 (FAISS has no GPU HNSW, which stays on the CPU,
  as do filtered searches).
- :class:`TorchExact`: otherwise, on a CUDA device, an exact torch scan (:class:`TorchExactSearch`;
  measured at 1M × 256 on an H200: 116k queries/s, against 1.9k for HNSW on 2 CPU cores,
  benchmarks/RESULTS.md). faiss-gpu's wheels need CUDA libraries many machines lack.

A backend whose searches run elsewhere (Milvus) is left alone. Each accelerator copies the
vectors (or index) to the device on its first search after a change.

Exact inner-product search with torch:

The raw vectors are copied to the device once. Queries are scored against them in chunks
(matmul) and the top candidates are merged across chunks. Two ways to score:

- ``fp32``: float32 matmul; the top k are the answer (the CPU's exact search, to float noise).
- ``bf16`` (the default on CUDA): a bfloat16 matmul on the tensor cores picks a shortlist of
  ``shortlist(k)`` candidates per query, which are re-scored in float32 on the raw vectors; the
  scores returned are float32 and the top k match exact search unless the true k-th
  neighbour falls below the shortlist's end on a bf16 score error (about 4e-3 for unit
  vectors) — ``benchmarks/bench_gpu.py`` measures how often.

Torch is imported only when this backend is used: the rest of ``index/`` works on numpy
arrays alone.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import SearchBackend
from .faiss import FaissBackend, faiss_backend


def shortlist(k: int) -> int:
    """Candidates per query that the bf16 pass keeps for re-scoring."""
    return 8 * k + 32


class TorchExactSearch:
    """float32 [N, D] ``vectors`` under int64 ``ids`` on ``device``; :meth:`search` like
    :meth:`SearchBackend.search`. ``precision``: ``fp32`` | ``bf16`` | ``auto`` (bf16 on
    CUDA, fp32 elsewhere: CPUs have no fast bf16 matmul)."""

    def __init__(
        self,
        ids: np.ndarray,
        vectors: np.ndarray,
        device: str = "cuda",
        chunk: int = 262_144,
        precision: str = "auto",
        query_block: int = 4096,
    ) -> None:
        import torch

        if precision not in ("auto", "fp32", "bf16"):
            raise ValueError(f"precision must be auto, fp32 or bf16, got {precision!r}")
        self.torch = torch
        self.device = torch.device(device)
        self.ids = np.asarray(ids, np.int64)
        self.vectors = torch.as_tensor(np.ascontiguousarray(vectors, dtype=np.float32), device=self.device)
        self.precision = ("bf16" if self.device.type == "cuda" else "fp32") if precision == "auto" else precision
        self.scoring = self.vectors.to(torch.bfloat16) if self.precision == "bf16" else self.vectors
        self.chunk = chunk
        self.query_block = query_block

    def search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(scores float32 [Q, k], ids int64 [Q, k]); -inf / -1 where fewer than k candidates.
        ``allowed``: only these ids (a sorted or unsorted int64 array)."""
        torch = self.torch
        mask: Any = None
        if allowed is not None:
            keep = np.isin(self.ids, np.asarray(allowed, np.int64))
            mask = torch.as_tensor(keep, device=self.device)
        q_all = torch.as_tensor(np.ascontiguousarray(queries, dtype=np.float32), device=self.device)
        fetch = k if self.precision == "fp32" else shortlist(k)
        parts_s, parts_r = [], []
        with torch.inference_mode():
            for start in range(0, max(1, len(q_all)), self.query_block):
                q = q_all[start : start + self.query_block]
                scores, rows = self._top(q.to(self.scoring.dtype), fetch, mask)
                if self.precision != "fp32":
                    scores, rows = self._rescore(q, scores, rows, k)
                parts_s.append(scores)
                parts_r.append(rows)
        scores_np = torch.cat(parts_s).float().cpu().numpy()
        rows_np = torch.cat(parts_r).cpu().numpy()
        ids = np.where(np.isfinite(scores_np), self.ids[rows_np] if len(self.ids) else -1, -1).astype(np.int64)
        out_scores = np.full((len(queries), k), -np.inf, np.float32)
        out_ids = np.full((len(queries), k), -1, np.int64)
        out_scores[:, : scores_np.shape[1]] = np.where(ids >= 0, scores_np, -np.inf)
        out_ids[:, : ids.shape[1]] = ids
        return out_scores, out_ids

    def _top(self, q: Any, fetch: int, mask: Any) -> tuple[Any, Any]:
        """The ``fetch`` best (scores, rows) per query in the scoring precision, chunk by chunk."""
        torch = self.torch
        best_scores = torch.full((len(q), 0), float("-inf"), device=self.device, dtype=q.dtype)
        best_rows = torch.zeros((len(q), 0), dtype=torch.long, device=self.device)
        for start in range(0, self.scoring.shape[0], self.chunk):
            scores = q @ self.scoring[start : start + self.chunk].T
            if mask is not None:
                scores = scores.masked_fill(~mask[start : start + self.chunk][None, :], float("-inf"))
            s, r = torch.topk(scores, min(fetch, scores.shape[1]), dim=1)
            merged_s = torch.cat([best_scores, s], 1)
            merged_r = torch.cat([best_rows, r + start], 1)
            best_scores, order = torch.topk(merged_s, min(fetch, merged_s.shape[1]), dim=1)
            best_rows = torch.gather(merged_r, 1, order)
        return best_scores, best_rows

    def _rescore(self, q: Any, scores: Any, rows: Any, k: int) -> tuple[Any, Any]:
        """Exact float32 scores of the shortlisted rows; the best ``k``. Masked-out
        candidates (-inf in the shortlist) stay -inf."""
        torch = self.torch
        exact = torch.einsum("qd,qcd->qc", q, self.vectors[rows])
        exact = exact.masked_fill(~torch.isfinite(scores), float("-inf"))
        best, order = torch.topk(exact, min(k, exact.shape[1]), dim=1)
        return best, torch.gather(rows, 1, order)


class TorchExact:
    """Every search of a local backend as an exact torch scan on ``device``."""

    name = "torch-exact"

    def __init__(self, device: str, **options: Any) -> None:
        self.device = device
        self.options = options  # for TorchExactSearch: chunk, precision, query_block
        self._search: tuple[np.ndarray, TorchExactSearch] | None = None  # (the ids it was built for, it)

    def handles(self, backend: SearchBackend, allowed: np.ndarray | None) -> bool:
        return True

    def prepare(self, backend: SearchBackend) -> TorchExactSearch:
        """The search over ``backend``'s current vectors, copied to the device if not yet."""
        if self._search is None or self._search[0] is not backend.ids:
            self._search = (backend.ids, TorchExactSearch(backend.ids, backend.vectors, self.device, **self.options))
        return self._search[1]

    def search(
        self, backend: SearchBackend, queries: np.ndarray, k: int, allowed: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        return self.prepare(backend).search(queries, k, allowed)


class FaissGpu:
    """Unfiltered searches of a flat or IVF FAISS index on a copy of it on GPU 0."""

    name = "faiss-gpu"

    def __init__(self) -> None:
        self._copy: tuple[Any, Any, Any] | None = None  # (the CPU index it copies, resources, GPU index)

    def handles(self, backend: SearchBackend, allowed: np.ndarray | None) -> bool:
        assert isinstance(backend, FaissBackend)
        return allowed is None and not len(backend.tombstones) and backend.refine == 1

    def search(
        self, backend: SearchBackend, queries: np.ndarray, k: int, allowed: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        assert isinstance(backend, FaissBackend)
        faiss = backend.faiss
        if self._copy is None or self._copy[0] is not backend.index or self._copy[1] != backend.index.ntotal:
            resources = faiss.StandardGpuResources()
            gpu_index = faiss.index_cpu_to_gpu(resources, 0, backend.index)
            if "nprobe" in backend.search_params:
                faiss.GpuParameterSpace().set_index_parameter(gpu_index, "nprobe", int(backend.search_params["nprobe"]))
            self._copy = (backend.index, backend.index.ntotal, (resources, gpu_index))
        scores, ids = self._copy[2][1].search(queries, k)
        return np.where(ids >= 0, scores, -np.inf).astype(np.float32), ids.astype(np.int64)


def accelerate(backend: SearchBackend, device: str) -> None:
    """On a CUDA ``device``, let faiss-gpu (where installed, for flat and IVF FAISS indexes)
    or an exact torch scan answer ``backend``'s searches; nothing elsewhere, or for a backend
    that searches in an external engine."""
    if not device.startswith("cuda") or not backend.local_search:
        return
    if isinstance(backend, FaissBackend) and "HNSW" not in backend.index_key and faiss_backend() == "faiss-gpu":
        backend.accelerator = FaissGpu()
    else:
        backend.accelerator = TorchExact(device)
