"""Style classification as a pure function: neighbours + head probabilities → Classification.

numpy only, no index and no model. One rule, decided here and nowhere else:

- **kNN posterior** (:func:`knn_posterior`). Of the ``k`` nearest labelled items, a label
  ``c`` holds a similarity-weighted count ``e_c`` (the weights sum to ``k``). Were the photo
  unrelated to style, ``e_c`` would be about ``k π_c`` (``π_c``: the label's share of the
  items that may vote). The likelihood ratio ``r_c`` of the photo's neighbourhood is
  estimated as a Gamma–Poisson posterior mean, ``(e_c + a) / (a + k π_c)``: with smoothing
  ``a`` a single neighbour of a tiny style is weak evidence, five of ten are strong. The
  posterior is ``q_c r_c`` normalised, ``q`` the prior: ``catalog`` (default) — the labels'
  shares in the index, mixed with uniform by :data:`PRIOR_MIX` so that a style labelled with
  ten examples is not taken to be that rare among the photos people ask about — or
  ``uniform``. Finally the log-posterior is divided by a **temperature** fitted at index time
  on the index's own labelled items, left out one at a time (:mod:`stylesearch.calibration`),
  so that a confidence of 0.8 is right about 80 % of the time on photos like the catalog's.
  ``a`` and the prior mix were chosen on validation splits carved from ``train`` of the
  fashion and architecture data sets (``benchmarks/bench_trust.py``).
- **head**: its probabilities (trained class-balanced, i.e. under a uniform prior) times the
  same prior, over the labels that may vote (:func:`head_scores`).
- **both**: the two posteriors averaged; when kNN's top label is one the head never saw
  (added after training: a cold-start label), kNN decides alone.
- **evidence**: ``support`` — how many of the ``k`` neighbours carry the answered label. An
  answer backed by at most one neighbour is never given with confidence 0.5 or more.
- **unknown** (:func:`verdict`): ``out_of_catalog`` when the photo looks like nothing in the
  catalog, ``low_confidence`` below the threshold, ``no_labelled_items`` when nothing may vote.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .config import CLASSIFY_METHODS, DEFAULT_MIN_CONFIDENCE, PRIORS
from .errors import ConfigError
from .results import Classification, Hit

METHODS = CLASSIFY_METHODS
SMOOTHING = 0.5  # a: pseudo-count of the Gamma–Poisson estimate (validation: bench_trust.py --choose)
PRIOR_MIX = 0.5  # the catalog prior's weight on uniform (validation: bench_trust.py --choose)
ONE_NEIGHBOUR_CAP = 0.49  # the most confidence an answer backed by at most one neighbour gets


@dataclass(frozen=True)
class Rule:
    """How neighbours become probabilities: ``prior`` (``catalog`` or ``uniform``),
    ``temperature`` (fitted per index: :mod:`stylesearch.calibration`), ``smoothing`` and
    ``prior_mix`` (chosen on validation)."""

    prior: str = "catalog"
    temperature: float = 1.0
    smoothing: float = SMOOTHING
    prior_mix: float = PRIOR_MIX

    def __post_init__(self) -> None:
        if self.prior not in PRIORS:
            raise ConfigError(f"prior must be one of {', '.join(PRIORS)}, got {self.prior!r}")

    def prior_over(self, counts: np.ndarray) -> np.ndarray:
        """The prior float64 [L] for labels with item ``counts`` [L]."""
        uniform = np.full(len(counts), 1.0 / max(len(counts), 1))
        if self.prior == "uniform":
            return uniform
        share = counts / max(float(counts.sum()), 1.0)
        return (1 - self.prior_mix) * share + self.prior_mix * uniform


def evidence(labels: Sequence[str], similarities: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """Similarity-weighted neighbour counts float64 [L] over ``names`` (summing to the number
    of neighbours; a negative similarity counts a little, never less than nothing)."""
    weights = np.maximum(np.asarray(similarities, np.float64), 0.0) + 1e-6
    index = {n: i for i, n in enumerate(names)}
    out = np.zeros(len(names))
    for label, w in zip(labels, weights):
        if label in index:
            out[index[label]] += w
    total = out.sum()
    return out / total * len(labels) if total > 0 else out


def log_posterior(e: np.ndarray, counts: np.ndarray, rule: Rule) -> np.ndarray:
    """The uncalibrated log-posterior float64 [..., L] from evidence ``e`` [..., L] (see the
    module's docstring); ``counts`` [L] the items per label that may vote."""
    k = e.sum(axis=-1, keepdims=True)
    share = counts / max(float(counts.sum()), 1.0)
    ratio = (e + rule.smoothing) / (rule.smoothing + k * share)
    return np.log(rule.prior_over(counts)) + np.log(ratio)


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = logits / temperature
    z = np.exp(z - z.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def knn_posterior(neighbours: Sequence[Hit], voters: Mapping[str, int], rule: Rule) -> dict[str, float]:
    """Calibrated probabilities over the labels that may vote, highest first."""
    names = sorted(voters)
    if not names:
        return {}
    counts = np.array([voters[n] for n in names], np.float64)
    e = evidence([h.label or "" for h in neighbours], np.array([h.score for h in neighbours]), names)
    return _ranked(names, softmax(log_posterior(e, counts, rule), rule.temperature))


def head_scores(
    labels: Sequence[str], probs: np.ndarray, present: Mapping[str, int], rule: Rule | None = None
) -> dict[str, float]:
    """The head's probabilities (float [L] over ``labels``; highest first) over the labels
    that ``present`` has items of — the styles this index (within the filter) holds — times
    the rule's prior (the head was trained class-balanced), renormalised; over all of the
    head's labels when it has items of none of them."""
    keep = np.array([label in present for label in labels])
    p = np.where(keep, probs, 0.0) if keep.any() else np.asarray(probs, np.float64)
    if rule is not None and keep.any():
        counts = np.array([present.get(label, 0) for label in labels], np.float64)
        prior = np.zeros(len(labels))
        prior[keep] = rule.prior_over(counts[keep]) * keep.sum()
        p = p * prior
    p = p / max(float(p.sum()), 1e-12)
    return {labels[int(i)]: float(p[i]) for i in np.argsort(-p, kind="stable") if keep[i] or not keep.any()}


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


def verdict(
    label: str | None, confidence: float, threshold: float, familiarity: float | None, floor: float
) -> tuple[str | None, str | None]:
    """(the label answered or ``None``, why ``None``): the one place "unknown" is decided."""
    if label is None:
        return None, "no_labelled_items"
    if familiarity is not None and familiarity < floor:
        return None, "out_of_catalog"
    if confidence < threshold:
        return None, "low_confidence"
    return label, None


def decide(
    neighbors: Sequence[Hit] | None,
    probs: np.ndarray | None,
    head_labels: Sequence[str],
    voters: Mapping[str, int],
    *,
    rule: Rule | None = None,
    threshold: float = DEFAULT_MIN_CONFIDENCE,
    familiarity: float | None = None,
    min_familiarity: float = 0.0,
    image: str = "",
    hint: str | None = None,
) -> Classification:
    """The classification of one image. ``neighbors``: the nearest labelled items (``None``
    when kNN does not run); ``probs``: the head's probabilities float [L] over ``head_labels``
    (``None`` when the head does not run); ``voters``: item count per label among the items
    that may vote (all labelled items, or those within the filter); ``familiarity``: how
    much the photo looks like the catalog (:mod:`stylesearch.familiarity`), below
    ``min_familiarity`` it is out of the catalog."""
    rule = rule or Rule()
    knn = knn_posterior(neighbors, voters, rule) if neighbors is not None else None
    linear = head_scores(head_labels, probs, voters, rule) if probs is not None else None
    decided, scores = fuse(knn, linear)
    best, confidence = next(iter(scores.items()), (None, 0.0))
    support = None
    if neighbors is not None and best is not None:
        support = sum(h.label == best for h in neighbors)
        if support <= 1:
            confidence = min(confidence, ONE_NEIGHBOUR_CAP)
    label, reason = verdict(best, confidence, threshold, familiarity, min_familiarity)
    return Classification(
        image,
        label,
        round(confidence, 6),
        _rounded(scores),
        list(neighbors or []),
        decided,
        _answer(knn),
        _answer(linear),
        reason,
        hint,
        familiarity,
        answer=best,
        support=support,
        prior=rule.prior,
    )


def _ranked(names: Sequence[str], p: np.ndarray) -> dict[str, float]:
    return {names[int(i)]: float(p[i]) for i in np.argsort(-p, kind="stable")}


def _answer(scores: Mapping[str, float] | None) -> dict[str, Any] | None:
    """One method's answer: its top label, confidence and scores (highest first)."""
    if scores is None:
        return None
    label, confidence = next(iter(scores.items()), (None, 0.0))
    return {"label": label, "confidence": round(confidence, 6), "scores": _rounded(scores)}


def _rounded(scores: Mapping[str, float]) -> dict[str, float]:
    return {k: round(float(v), 6) for k, v in scores.items()}
