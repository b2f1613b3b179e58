"""Novelty: how unlike the catalog a photo's raw style statistics are, at any index size.

A PCA projection keeps the catalog's main directions and L2-normalises what it keeps, so two
things a foreign photo has are lost in its style vector: how far its statistics lie from
the catalog's mean, and how much of them lies outside the fitted span. Both are measured on
the raw statistics ``x`` with the PCA mean ``μ`` (stored with the projection) and the
projection's own output before normalisation ``y = (x − μ) W``, whose columns are the unit
PCA directions scaled by ``s`` (whitening): ``distance = ‖x − μ‖``, ``residual² =
distance² − ‖y / s‖²``.

Their reference is the catalog itself: when the projection is fitted, the PCA is refitted
:data:`FOLDS` times without a fifth of the sample and the left-out fifth measured, so the
reference holds what photos like the catalog's (not the ones fitted) score. A query's
p-value per statistic is the share of the reference at or above its value
(:meth:`Novelty.p_values`); :mod:`stylesearch.familiarity` joins them with the
nearest-neighbour percentile.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

FOLDS = 5
CV_ROWS = 1000  # the most sample rows the folds are fitted on (a seeded subset beyond): 5 small PCAs, ~6 s at 61,812-d


@dataclass
class Novelty:
    """``mean`` float32 [R]: the PCA mean; ``residuals`` / ``distances`` float64 sorted: the
    reference, held-out catalog photos' values."""

    mean: np.ndarray
    residuals: np.ndarray
    distances: np.ndarray

    def measure(self, raw: np.ndarray, projected: np.ndarray, scale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(residual, distance) float64 [N] of raw statistics [N, R] whose projection before
        normalisation is ``projected`` [N, D]; ``scale`` [D] the norm of each projection column."""
        centred = np.asarray(raw, np.float64) - self.mean
        distance2 = np.einsum("ij,ij->i", centred, centred)
        inside = ((np.asarray(projected, np.float64) / scale) ** 2).sum(axis=1)
        return np.sqrt(np.maximum(distance2 - inside, 0.0)), np.sqrt(distance2)

    def p_values(self, residual: np.ndarray, distance: np.ndarray) -> np.ndarray:
        """float64 [N, 2]: per statistic, the share of the reference at or above the value."""
        return np.stack([_upper_share(self.residuals, residual), _upper_share(self.distances, distance)], axis=1)


def _upper_share(reference: np.ndarray, values: np.ndarray) -> np.ndarray:
    return 1.0 - np.searchsorted(reference, values, side="left") / len(reference)


def fit_reference(
    raw: np.ndarray, fit: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]], seed: int = 0
) -> Novelty | None:
    """The novelty reference of a PCA fitted on ``raw`` float32 [N, R]. ``fit(rows)`` fits the
    same PCA on other rows and gives (mean [R], matrix [R, D], column norms [D]). ``None``
    for a sample too small to leave a fifth out (fewer than 50 rows)."""
    n = len(raw)
    if n < 50:
        return None
    rows = np.sort(np.random.default_rng(seed).choice(n, size=min(n, CV_ROWS), replace=False))
    folds = np.arange(len(rows)) % FOLDS
    residuals, distances = [], []
    for f in range(FOLDS):
        mean, matrix, scale = fit(raw[rows[folds != f]])
        held = raw[rows[folds == f]]
        part = Novelty(mean, np.zeros(1), np.zeros(1))
        r, d = part.measure(held, (held - mean) @ matrix, scale)
        residuals.append(r)
        distances.append(d)
    mean = raw.mean(axis=0, dtype=np.float64).astype(np.float32)
    return Novelty(mean, np.sort(np.concatenate(residuals)), np.sort(np.concatenate(distances)))
