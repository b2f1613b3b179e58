"""Exact inner-product search with torch on a GPU: the search backend where faiss-gpu is
missing (its wheels need CUDA libraries many machines lack) but torch sees a CUDA device.

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


def shortlist(k: int) -> int:
    """Candidates per query that the bf16 pass keeps for re-scoring."""
    return 8 * k + 32


class TorchExactSearch:
    """float32 [N, D] ``vectors`` under int64 ``ids`` on ``device``; :meth:`search` like
    :meth:`VectorStore.search`. ``precision``: ``fp32`` | ``bf16`` | ``auto`` (bf16 on
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
