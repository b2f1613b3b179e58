"""Exact inner-product search with torch on a GPU: the search backend where faiss-gpu is
missing (its wheels need CUDA libraries many machines lack) but torch sees a CUDA device.

The raw vectors are copied to the device once (float32, so results match the CPU's exact
search); queries are scored against them in chunks (matmul) and the top k are merged across
chunks. Torch is imported only when this backend is used: the rest of ``index/`` works on
numpy arrays alone.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class TorchExactSearch:
    """float32 [N, D] ``vectors`` under int64 ``ids`` on ``device``; :meth:`search` like
    :meth:`VectorStore.search`."""

    def __init__(self, ids: np.ndarray, vectors: np.ndarray, device: str = "cuda", chunk: int = 262_144) -> None:
        import torch

        self.torch = torch
        self.device = torch.device(device)
        self.ids = np.asarray(ids, np.int64)
        self.vectors = torch.as_tensor(np.ascontiguousarray(vectors, dtype=np.float32), device=self.device)
        self.chunk = chunk

    def search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(scores float32 [Q, k], ids int64 [Q, k]); -inf / -1 where fewer than k candidates.
        ``allowed``: only these ids (a sorted or unsorted int64 array)."""
        torch = self.torch
        q = torch.as_tensor(np.ascontiguousarray(queries, dtype=np.float32), device=self.device)
        mask: Any = None
        if allowed is not None:
            keep = np.isin(self.ids, np.asarray(allowed, np.int64))
            mask = torch.as_tensor(keep, device=self.device)
        best_scores = torch.full((len(q), 0), float("-inf"), device=self.device)
        best_rows = torch.zeros((len(q), 0), dtype=torch.long, device=self.device)
        for start in range(0, self.vectors.shape[0], self.chunk):
            block = self.vectors[start : start + self.chunk]
            scores = q @ block.T
            if mask is not None:
                scores = scores.masked_fill(~mask[start : start + self.chunk][None, :], float("-inf"))
            top = min(k, scores.shape[1])
            s, r = torch.topk(scores, top, dim=1)
            merged_s = torch.cat([best_scores, s], 1)
            merged_r = torch.cat([best_rows, r + start], 1)
            keep_k = min(k, merged_s.shape[1])
            best_scores, order = torch.topk(merged_s, keep_k, dim=1)
            best_rows = torch.gather(merged_r, 1, order)
        scores_np = best_scores.float().cpu().numpy()
        rows_np = best_rows.cpu().numpy()
        ids = np.where(np.isfinite(scores_np), self.ids[rows_np] if len(self.ids) else -1, -1).astype(np.int64)
        out_scores = np.full((len(queries), k), -np.inf, np.float32)
        out_ids = np.full((len(queries), k), -1, np.int64)
        out_scores[:, : scores_np.shape[1]] = np.where(ids >= 0, scores_np, -np.inf)
        out_ids[:, : ids.shape[1]] = ids
        return out_scores, out_ids
