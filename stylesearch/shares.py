"""Style shares of a photo set: what share of this season's arrivals (or of a photo dump) is
each style, with a 95 % interval.

Counting each photo's answered style (classify-and-count) is biased whenever the classifier
errs: a style it confuses often is over- or under-counted by the same amount on every set.
**Adjusted classify-and-count** (Forman, 2008) corrects that: with ``C[i, j]`` = P(answer j |
true style i), measured on the index's own labelled items left out one at a time
(:func:`stylesearch.calibration.leave_one_out`, no extra labels), the answer shares ``q`` of
the photos satisfy ``q = Cᵀ p``; ``p`` is the non-negative least-squares solution,
normalised, over the labels the classifier recognises (a style of a few examples that is
mostly answered as another cannot be told apart from it: it keeps its counted share).
The interval is a bootstrap: the photos and the held-out items are resampled
together, :data:`ROUNDS` times, and the 2.5 and 97.5 percentiles kept.

QuaPy implements the same estimator, but around a scikit-learn classifier that it fits
itself by cross-validation; here the classifier is a kNN vote over an index whose
leave-one-out answers are already at hand, so the dozen lines below are the whole method.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.optimize import nnls

from .calibration import held_out as leave_one_out_of
from .classify import Rule, log_posterior
from .errors import ConfigError

ROUNDS = 300
RECOGNISED = 0.5  # held-out recall from which a label's share is adjusted
METHOD = "adjusted classify-and-count (kNN answers, confusion from the index's items left out one at a time), 95 % bootstrap"


def confusion(truth: np.ndarray, answers: np.ndarray, n: int) -> np.ndarray:
    """float64 [L, L]: row i, the share of items of true label i answered each label."""
    m = np.zeros((n, n))
    np.add.at(m, (truth, answers), 1.0)
    rows = m.sum(axis=1, keepdims=True)
    return np.divide(m, rows, out=np.eye(n), where=rows > 0)


def adjusted(q: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Shares p ≥ 0 summing to 1 with ``c.T @ p`` closest to the answer shares ``q``, over
    the labels the classifier recognises (held-out recall ≥ :data:`RECOGNISED`); a label it
    does not (a style of a few examples, mostly answered as another) cannot be told apart
    from the one it is taken for, so it keeps its counted share."""
    known = np.diag(c) >= RECOGNISED
    if known.sum() < 2:
        return q
    mass = q[known].sum()
    if mass <= 0:
        return q
    sub = c[np.ix_(known, known)]
    sub = sub / np.maximum(sub.sum(axis=1, keepdims=True), 1e-12)
    p_known, _ = nnls(sub.T, q[known] / mass)
    out = q.copy()
    out[known] = p_known / p_known.sum() * mass if p_known.sum() > 0 else q[known]
    return out


def estimate(answers: np.ndarray, truth: np.ndarray, held_answers: np.ndarray, n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Shares (classify-and-count ``cc``, adjusted ``share``, ``low``, ``high``; float64 [n])
    of photos whose answered label indices are ``answers``, given held-out items' true
    labels ``truth`` and answers ``held_answers``."""
    q = np.bincount(answers, minlength=n) / len(answers)
    point = adjusted(q, confusion(truth, held_answers, n))
    rng = np.random.default_rng(seed)
    rounds = np.empty((ROUNDS, n))
    for b in range(ROUNDS):
        photos = answers[rng.integers(0, len(answers), len(answers))]
        held = rng.integers(0, len(truth), len(truth))
        c = confusion(truth[held], held_answers[held], n)
        rounds[b] = adjusted(np.bincount(photos, minlength=n) / len(photos), c)
    low, high = np.percentile(rounds, [2.5, 97.5], axis=0)
    return {"cc": q, "share": point, "low": np.minimum(low, point), "high": np.maximum(high, point)}


def of(engine: Any, vectors: np.ndarray, groups: Sequence[str] | None = None, k: int = 10) -> dict[str, Any]:
    """The style shares of photos with style vectors float32 [N, D] on the index of
    ``engine`` (a :class:`~stylesearch.StyleSearch`); with ``groups`` (one value per photo),
    one estimate per group under ``"groups"``."""
    snapshot = engine.snapshot
    held_out = leave_one_out_of(snapshot, engine.bundle.projection, k)
    if held_out is None:
        raise ConfigError(
            "style shares need an index with at least two labels and 20 labelled items, to learn how often each "
            "style is mistaken for another: index a labelled catalog"
        )
    names, counts, rows, truth = held_out
    held_answers = log_posterior(rows, counts, Rule()).argmax(axis=1)
    index = {n: i for i, n in enumerate(names)}
    found = engine.classify_vectors(vectors, k, None, min_confidence=0.0, method="knn", min_familiarity=0.0)
    answers = np.array([index[c.answer] for c in found])

    def one(rows_of: np.ndarray) -> dict[str, Any]:
        est = estimate(answers[rows_of], truth, held_answers, len(names))
        order = np.argsort(-est["share"], kind="stable")
        return {
            "photos": int(len(rows_of)),
            "shares": {
                names[i]: {
                    "share": round(float(est["share"][i]), 4),
                    "low": round(float(est["low"][i]), 4),
                    "high": round(float(est["high"][i]), 4),
                }
                for i in order
            },
            "classify_and_count": {names[i]: round(float(est["cc"][i]), 4) for i in order},
        }

    out: dict[str, Any] = {**one(np.arange(len(answers))), "method": METHOD, "held_out_items": int(len(truth))}
    if groups is not None:
        values = np.array([str(g) for g in groups])
        out["groups"] = {g: one(np.where(values == g)[0]) for g in sorted(set(values.tolist()))}
    return out
