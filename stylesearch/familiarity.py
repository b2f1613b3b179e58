""" "Does this photo look like this catalog?": a calibrated signal for every answer.

A query's similarity to its nearest indexed item means little on its own (it depends on the
recipe, the catalog and the projection). Its *percentile* among the same statistic for the
catalog's own items does not: :func:`reference` takes a seeded sample of indexed items and
the similarity of each to its nearest *other* item; :func:`percentile` places a query's
nearest similarity in that distribution. A photo like the catalog's lands anywhere from 0 to
1 (about uniformly); a photo from another domain (a cartoon chair against a fashion index)
lands at or near 0. In a small index the nearest item is far for every photo, so two more
tests look at the raw statistics the style vector leaves out: how far from the catalog's
mean they lie and how much of them lies outside its PCA span, each against held-out
catalog photos (:mod:`stylesearch.model.novelty`); :func:`combine` joins the three.
Below a threshold, classification answers ``unknown`` with reason ``out_of_catalog``
(:func:`stylesearch.classify.verdict`) and search results say ``out_of_catalog: true`` (the
threshold was chosen on held-out photos from another domain:
``benchmarks/bench_familiarity.py``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .config import DEFAULT_MIN_FAMILIARITY
from .index.snapshot import Snapshot
from .model.projection import Projection, QueryPurpose

SAMPLE = 1000  # indexed items in the reference
MIN_ITEMS = 20  # below this, no reference: the signal is None
NEAR = 0.9  # from this nearest-neighbour percentile a photo is familiar, whatever the novelty tests say
__all__ = ["DEFAULT_MIN_FAMILIARITY", "MIN_ITEMS", "SAMPLE", "of", "percentile", "reference", "rounded"]


def reference(snapshot: Snapshot, prepare: Callable[[np.ndarray], np.ndarray]) -> np.ndarray | None:
    """Sorted float64 similarities of up to :data:`SAMPLE` indexed items (seeded) to their
    nearest other item, queried as ``prepare`` makes a query of stored vectors; ``None``
    for an index of fewer than :data:`MIN_ITEMS` items. Cached on the snapshot."""
    if "familiarity" in snapshot.cache:
        return snapshot.cache["familiarity"]
    vids = snapshot.meta.vids()
    out = None
    if len(vids) >= MIN_ITEMS:
        pick = np.sort(np.random.default_rng(0).choice(len(vids), size=min(SAMPLE, len(vids)), replace=False))
        chosen = vids[pick]
        found = snapshot.search(prepare(snapshot.backend.get(chosen)), 2)
        nearest = [next((s for s, r in row if r.vid != vid), None) for vid, row in zip(chosen.tolist(), found)]
        out = np.sort(np.array([s for s in nearest if s is not None], np.float64))
    snapshot.cache["familiarity"] = out
    return out


def percentile(ref: np.ndarray | None, nearest: np.ndarray) -> np.ndarray | None:
    """Per query, the share of the reference at or below its nearest similarity (0–1)."""
    if ref is None or not len(ref):
        return None
    return np.searchsorted(ref, np.asarray(nearest, np.float64), side="right") / len(ref)


def of(
    snapshot: Snapshot,
    projection: Projection,
    vectors: np.ndarray,
    novelty: np.ndarray | None = None,
    *,
    nearest: np.ndarray | None = None,
) -> np.ndarray | None:
    """The familiarity of each stored-form style vector (float32 [N, D]) with the catalog of
    ``snapshot``, queried as same-style search queries are; ``None`` for a tiny index.
    ``nearest``: each vector's similarity to its nearest item, when an unfiltered search
    has just found it (saves a search). ``novelty``: the photos' novelty p-values float64
    [N, S] (``Embedded.novelty`` of the photos' embedding; NaN where unknown), joined with the percentile by :func:`combine`."""

    def prepare(stored: np.ndarray) -> np.ndarray:
        return projection.for_query(np.asarray(stored, np.float32), QueryPurpose.SEARCH)

    ref = reference(snapshot, prepare)
    if ref is None:
        return None
    if nearest is None:
        nearest = np.array([row[0][0] if row else -1.0 for row in snapshot.search(prepare(vectors), 1)])
    found = percentile(ref, nearest)
    return found if found is None or novelty is None else combine(found, novelty)


def combine(nearest: np.ndarray, novelty: np.ndarray) -> np.ndarray:
    """One familiarity from several tests of "like the catalog's own photos": the nearest-
    neighbour percentile and each novelty p-value. Bonferroni: the smallest times the number
    of tests, so that a threshold refuses about that share of photos like the catalog's,
    whichever test speaks. A photo nearer to an indexed item than :data:`NEAR` of the
    catalog's items are to theirs is familiar whatever its raw statistics say: the index
    holds items very like it (a style added after the projection was fitted, say)."""
    tests = np.column_stack([nearest, novelty])
    known = ~np.isnan(tests)
    smallest = np.where(known, tests, np.inf).min(axis=1)
    joined = np.minimum(1.0, smallest * known.sum(axis=1))
    return np.where(np.asarray(nearest) >= NEAR, nearest, joined)


def rounded(values: np.ndarray | None, n: int) -> list[float | None]:
    """``values`` as n rounded floats (n ``None`` when there are none)."""
    return [None] * n if values is None else [round(float(v), 4) for v in values]
