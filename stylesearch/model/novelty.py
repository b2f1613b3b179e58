"""Novelty: how unlike the catalog a photo's raw style statistics are, at any index size.

A PCA projection keeps the catalog's main directions and L2-normalises what it keeps, so
what a foreign photo has that the catalog's photos lack is lost in its style vector. It is
measured on the raw statistics ``x`` instead:

- **per style block** ``b`` (a Gram matrix of one backbone block), the residual of ``x_b``
  outside the catalog's main :data:`BLOCK_COMPONENTS` directions of that block — an early
  block's texture statistics tell a generated product from a photographed one where the
  whole vector does not;
- **the distance** of ``x`` from the catalog's mean — a studio product photo against a
  catalog of buildings lies far from it along directions the catalog does span;
- **the residual outside the projection's whole span** (from the projection's own output
  before normalisation, :func:`span_residual`) — telling at a catalog of a thousand photos or
  more, where the PCA is fitted on many.

Their reference is the catalog itself: when the projection is fitted, these are fitted
:data:`FOLDS` times without a fifth of (at most :data:`CV_ROWS` of) the sample and the
left-out fifth measured, so the reference holds what photos like the catalog's, not the
ones fitted, score. A query's p-value per test is the share of the reference at or above its
value (:meth:`Novelty.p_values`); :mod:`stylesearch.familiarity` joins them with the
nearest-neighbour percentile. (Chosen on validation photos: ``train`` photos outside a
400-photo index; the per-block residuals caught 82 % of generated demo products against a
fashion index where the whole vector's residual caught 58 %; benchmarks/RESULTS.md.)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

FOLDS = 5
CV_ROWS = 1000  # the most sample rows the folds are fitted on (a seeded subset beyond)
BLOCK_COMPONENTS = 64  # main directions kept per block (at most half the block's width)
MIN_ROWS = 50  # fewer sample rows: no reference


@dataclass
class Novelty:
    """``mean`` float32 [R]; ``blocks`` the width of each style block (summing to R);
    ``bases`` per block float32 [K_b, width_b], orthonormal rows; ``residuals`` float64
    [B, M] and ``distances`` float64 [M], sorted: the reference, held-out catalog photos'."""

    mean: np.ndarray
    blocks: tuple[int, ...]
    bases: list[np.ndarray]
    residuals: np.ndarray
    distances: np.ndarray
    spans: np.ndarray | None = None  # float64 [M] sorted: residuals outside the projection's whole span
    span_mean: np.ndarray | None = None  # float32 [R]: the mean the projection's PCA was fitted around

    def measure(self, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(per-block residual float64 [N, B], distance float64 [N]) of raw statistics [N, R]."""
        return _measure(np.asarray(raw, np.float32), self.mean, self.blocks, self.bases)

    def p_values(self, raw: np.ndarray, outside: np.ndarray | None = None) -> np.ndarray:
        """float64 [N, T]: per test, the share of the reference at or above the value.
        ``outside``: each row's residual outside the projection's span (:func:`span_residual`)."""
        residual, distance = self.measure(raw)
        out = [_upper_share(self.residuals[b], residual[:, b]) for b in range(len(self.blocks))]
        out.append(_upper_share(self.distances, distance))
        if self.spans is not None and outside is not None:
            out.append(_upper_share(self.spans, outside))
        return np.stack(out, axis=1)

    def arrays(self) -> dict[str, np.ndarray]:
        """What :meth:`from_arrays` reads back (saved with the projection)."""
        out = {
            "novelty_mean": self.mean,
            "novelty_blocks": np.array(self.blocks, np.int64),
            "novelty_residuals": self.residuals,
            "novelty_distances": self.distances,
        }
        out.update({f"novelty_basis_{i}": basis for i, basis in enumerate(self.bases)})
        if self.spans is not None and self.span_mean is not None:
            out["novelty_spans"] = self.spans
            out["novelty_span_mean"] = self.span_mean
        return out

    @classmethod
    def from_arrays(cls, data: object) -> Novelty | None:
        files = getattr(data, "files", [])
        if "novelty_blocks" not in files:
            return None  # none, or an earlier form of the reference: the nearest-item test alone
        get = data.__getitem__  # type: ignore[attr-defined]
        blocks = tuple(int(b) for b in get("novelty_blocks"))
        bases = [get(f"novelty_basis_{i}") for i in range(len(blocks))]
        spans, span_mean = (get("novelty_spans"), get("novelty_span_mean")) if "novelty_spans" in files else (None, None)
        return cls(get("novelty_mean"), blocks, bases, get("novelty_residuals"), get("novelty_distances"), spans, span_mean)


def _upper_share(reference: np.ndarray, values: np.ndarray) -> np.ndarray:
    return 1.0 - np.searchsorted(reference, values, side="left") / len(reference)


def _measure(
    raw: np.ndarray, mean: np.ndarray, blocks: Sequence[int], bases: Sequence[np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    centred = raw.astype(np.float64) - mean
    distance = np.sqrt(np.einsum("ij,ij->i", centred, centred))
    residuals = []
    start = 0
    for width, basis in zip(blocks, bases):
        part = centred[:, start : start + width]
        inside = part @ basis.T.astype(np.float64)
        total = np.einsum("ij,ij->i", part, part)
        residuals.append(np.sqrt(np.maximum(total - np.einsum("ij,ij->i", inside, inside), 0.0)))
        start += width
    return np.stack(residuals, axis=1), distance


def _bases(rows: np.ndarray, blocks: Sequence[int], seed: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """(mean float32 [R], per block its main directions float32 [K_b, width_b]) of ``rows``."""
    mean = rows.mean(axis=0, dtype=np.float64).astype(np.float32)
    bases = []
    start = 0
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for width in blocks:
            part = torch.from_numpy(np.ascontiguousarray(rows[:, start : start + width] - mean[start : start + width]))
            k = max(1, min(BLOCK_COMPONENTS, width // 2, len(rows) - 1))
            if k + 10 < min(part.shape):
                _, _, v = torch.pca_lowrank(part, q=k + 10, center=False, niter=2)
            else:
                v = torch.linalg.svd(part, full_matrices=False)[2].T
            bases.append(np.ascontiguousarray(v[:, :k].T.numpy(), dtype=np.float32))
            start += width
    return mean, bases


def span_residual(raw: np.ndarray, projected: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """float64 [N]: the residual of raw statistics [N, R] outside a PCA projection's span,
    from its output before normalisation ``projected = (raw − mean) W`` [N, D], whose columns
    are unit PCA directions scaled by ``scale`` [D] (whitening)."""
    centred = np.asarray(raw, np.float64) - mean
    inside = ((np.asarray(projected, np.float64) / scale) ** 2).sum(axis=1)
    return np.sqrt(np.maximum(np.einsum("ij,ij->i", centred, centred) - inside, 0.0))


SpanFit = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]  # rows → (PCA mean [R], unit directions [R, D])


def fit_reference(
    raw: np.ndarray, blocks: Sequence[int] | None = None, seed: int = 0, span: SpanFit | None = None
) -> Novelty | None:
    """The novelty reference of a catalog's raw statistics float32 [N, R] whose style blocks
    have widths ``blocks`` (one block of R when ``None`` or when they do not add up to R);
    with ``span`` (the projection's PCA refitted on other rows), also the residual outside
    the whole projection's span. ``None`` for a sample too small to leave a fifth out (fewer
    than :data:`MIN_ROWS`)."""
    n, width = raw.shape
    blocks = tuple(blocks) if blocks and sum(blocks) == width else (width,)
    if n < MIN_ROWS:
        return None
    rows = raw[np.sort(np.random.default_rng(seed).choice(n, size=min(n, CV_ROWS), replace=False))]
    rows = np.asarray(rows, np.float32)
    folds = np.arange(len(rows)) % FOLDS
    residuals, distances, spans = [], [], []
    for f in range(FOLDS):
        mean, bases = _bases(rows[folds != f], blocks, seed)
        held = rows[folds == f]
        r, d = _measure(held, mean, blocks, bases)
        residuals.append(r)
        distances.append(d)
        if span is not None:
            span_mean, directions = span(rows[folds != f])
            spans.append(span_residual(held, (held - span_mean) @ directions, span_mean, np.ones(directions.shape[1])))
    mean, bases = _bases(rows, blocks, seed)
    return Novelty(
        mean,
        blocks,
        bases,
        np.sort(np.concatenate(residuals), axis=0).T.copy(),
        np.sort(np.concatenate(distances)),
        np.sort(np.concatenate(spans)) if spans else None,
    )
