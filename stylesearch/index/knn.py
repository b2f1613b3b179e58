"""Similarity-weighted kNN vote (numpy only)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Vote:
    """``label`` is ``None`` ("unknown") when ``confidence`` is below the threshold or there
    were no labelled neighbours. ``scores`` sum to 1 over labels, highest first."""

    label: str | None
    confidence: float
    scores: dict[str, float]


def knn_vote(
    labels: Sequence[str],
    similarities: np.ndarray,
    min_confidence: float = 0.0,
    label_counts: Mapping[str, int] | None = None,
) -> Vote:
    """Vote over neighbours' ``labels`` weighted by their cosine ``similarities`` (float [k]).

    Each neighbour adds ``max(similarity, 0)`` (plus a tiny floor so that ties of zero still
    count) to its label; scores are normalised to sum to 1 and the top one is the confidence.
    With ``label_counts`` (items per label in the index) each vote is divided by its label's
    count — a balanced vote, so that a label with 10 examples can win against one with 400
    (what a cold-start label needs); on a balanced index it changes nothing.
    """
    if len(labels) != len(similarities):
        raise ValueError(f"{len(labels)} labels but {len(similarities)} similarities")
    if not labels:
        return Vote(None, 0.0, {})
    weights = np.maximum(np.asarray(similarities, dtype=np.float64), 0.0) + 1e-6
    totals: dict[str, float] = {}
    for label, w in zip(labels, weights):
        share = float(w) / max(label_counts.get(label, 1), 1) if label_counts is not None else float(w)
        totals[label] = totals.get(label, 0.0) + share
    norm = sum(totals.values())
    scores = dict(sorted(((k, v / norm) for k, v in totals.items()), key=lambda kv: (-kv[1], kv[0])))
    best, confidence = next(iter(scores.items()))
    return Vote(best if confidence >= min_confidence else None, confidence, scores)
