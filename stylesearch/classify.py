"""Style classification as a pure function: kNN votes + head probabilities → Classification.

numpy only, no index and no model: :func:`decide` takes the neighbours a search found and
the head's probabilities, and applies the rules:

- **kNN vote**: similarity-weighted; *balanced* (each vote divided by its label's item count
  among the items that may vote, :func:`~stylesearch.index.knn.knn_vote`) when ``counts``
  are given, so a style with ten examples can win against one with hundreds.
- **head**: its probabilities renormalised over the labels present among the voters
  (:func:`head_scores`): a style the index (or the filter) holds no item of is never answered.
- **both**: the two averaged; but when kNN's top label is one the head never saw (added
  after training: a cold-start label), kNN decides alone.
- **unknown**: below ``threshold`` confidence the label is ``None`` (``reason``
  ``low_confidence``; ``no_labelled_items`` when nothing may vote).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .config import CLASSIFY_METHODS, DEFAULT_MIN_CONFIDENCE
from .index.knn import knn_vote
from .results import Classification, Hit

METHODS = CLASSIFY_METHODS


def head_scores(labels: Sequence[str], probs: np.ndarray, present: Mapping[str, int]) -> dict[str, float]:
    """The head's probabilities (float [L] over ``labels``; highest first) over the labels
    that ``present`` has items of — the styles this index (within the filter) holds —
    renormalised; over all of the head's labels when it has items of none of them."""
    keep = np.array([label in present for label in labels])
    p = np.where(keep, probs, 0.0) if keep.any() else probs
    p = p / max(float(p.sum()), 1e-12)
    return {labels[int(i)]: float(p[i]) for i in np.argsort(-p) if keep[i] or not keep.any()}


def fuse(knn: Mapping[str, float] | None, linear: Mapping[str, float] | None) -> tuple[str, dict[str, float]]:
    """(the method that decided, its scores highest first) from each method's scores."""
    if knn is not None and linear is not None:
        knn_top = next(iter(knn), None)
        if knn_top is not None and knn_top not in linear:
            decided, chosen = "knn", dict(knn)  # a cold-start label the head never saw
        else:
            decided = "both"
            chosen = {n: (knn.get(n, 0.0) + linear.get(n, 0.0)) / 2 for n in set(knn) | set(linear)}
    elif knn is not None:
        decided, chosen = "knn", dict(knn)
    elif linear is not None:
        decided, chosen = "linear", dict(linear)
    else:
        raise ValueError("fuse needs the scores of at least one method")
    return decided, dict(sorted(chosen.items(), key=lambda kv: (-kv[1], kv[0])))


def decide(
    neighbors: Sequence[Hit] | None,
    probs: np.ndarray | None,
    head_labels: Sequence[str],
    voters: Mapping[str, int],
    *,
    balanced: bool = True,
    threshold: float = DEFAULT_MIN_CONFIDENCE,
    image: str = "",
) -> Classification:
    """The classification of one image. ``neighbors``: the nearest labelled items (``None``
    when kNN does not run); ``probs``: the head's probabilities float [L] over ``head_labels``
    (``None`` when the head does not run); ``voters``: item count per label among the items
    that may vote (all labelled items, or those within the filter)."""
    knn = None
    if neighbors is not None:
        counts = voters if balanced else None
        knn = knn_vote([h.label or "" for h in neighbors], np.array([h.score for h in neighbors]), 0.0, counts).scores
    linear = head_scores(head_labels, probs, voters) if probs is not None else None
    decided, scores = fuse(knn, linear)
    label, confidence = next(iter(scores.items()), (None, 0.0))
    reason = None if label is not None and confidence >= threshold else "low_confidence" if scores else "no_labelled_items"
    return Classification(
        image,
        label if confidence >= threshold else None,
        round(confidence, 6),
        _rounded(scores),
        list(neighbors or []),
        decided,
        _answer(knn),
        _answer(linear),
        reason,
    )


def _answer(scores: Mapping[str, float] | None) -> dict[str, Any] | None:
    """One method's answer: its top label, confidence and scores (highest first)."""
    if scores is None:
        return None
    label, confidence = next(iter(scores.items()), (None, 0.0))
    return {"label": label, "confidence": round(confidence, 6), "scores": _rounded(scores)}


def _rounded(scores: Mapping[str, float]) -> dict[str, float]:
    return {k: round(float(v), 6) for k, v in scores.items()}
