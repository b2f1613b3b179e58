"""Calibrating the classification rule on the index's own labelled items, left out one at a
time: no extra labels needed.

Up to :data:`SAMPLE` labelled items (seeded) are each classified by their ``k`` nearest
*other* labelled items, queried as classification queries are; the temperature that
minimises the negative log-likelihood of their true labels under
:func:`stylesearch.classify.log_posterior` is kept in the generation's manifest
(``classify_calibration``), fitted anew whenever a generation is written: one per prior, so
that with the catalog prior a confidence of 0.8 is right about 80 % of the time on photos in
the catalog's own mix, and with the uniform prior on photos of every style alike (the
held-out items weighted by one over their label's count).
An index written before this has none: it is fitted when the index is opened and kept in
memory (:func:`of`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

from .classify import Rule, evidence, log_posterior, softmax
from .config import PRIORS
from .index.backends.base import SearchBackend
from .index.filters import Where
from .index.metadata import MetadataStore
from .index.snapshot import Snapshot
from .model.projection import Projection, QueryPurpose

SAMPLE = 2000
K = 10
MIN_ITEMS = 20  # fewer labelled items: no calibration (temperature 1)
TEMPERATURES = np.exp(np.linspace(np.log(0.05), np.log(5.0), 121))
MANIFEST_KEY = "classify_calibration"


def leave_one_out(
    backend: SearchBackend, meta: MetadataStore, prepare: Callable[[np.ndarray], np.ndarray], k: int = K
) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray] | None:
    """Up to :data:`SAMPLE` labelled items (seeded), each with its ``k`` nearest *other*
    labelled items: (label names, item count per label float64 [L], evidence float64 [M, L]
    (:func:`~stylesearch.classify.evidence`), true label index int [M]); ``None`` when the
    index has too few labelled items or labels."""
    counts = meta.label_counts()
    names = sorted(counts)
    labelled = meta.vids_where(labelled=True)
    if labelled is None or len(labelled) < MIN_ITEMS or len(names) < 2:
        return None
    pick = np.sort(np.random.default_rng(0).choice(len(labelled), size=min(SAMPLE, len(labelled)), replace=False))
    chosen = labelled[pick]
    scores, vids = backend.search_where(prepare(backend.get(chosen)), k + 1, meta, Where.of(None), labelled=True)
    records = meta.by_vids(set(vids.ravel().tolist()) | set(chosen.tolist()))
    index = {n: i for i, n in enumerate(names)}
    rows, truth = [], []
    for vid, row_scores, row_vids in zip(chosen.tolist(), scores, vids):
        kept = [(s, records[v].label or "") for s, v in zip(row_scores.tolist(), row_vids.tolist()) if v != vid and v in records]
        kept = kept[:k]
        if not kept or records[vid].label not in index:
            continue
        rows.append(evidence([lab for _, lab in kept], np.array([s for s, _ in kept]), names))
        truth.append(index[records[vid].label])
    if len(rows) < MIN_ITEMS:
        return None
    return names, np.array([counts[n] for n in names], np.float64), np.array(rows), np.array(truth)


def fit(backend: SearchBackend, meta: MetadataStore, prepare: Callable[[np.ndarray], np.ndarray], k: int = K) -> dict[str, Any]:
    """The calibration record of one generation: ``temperature``, the items it was fitted on,
    and their negative log-likelihood before and after."""
    held_out = leave_one_out(backend, meta, prepare, k)
    if held_out is None:
        return {"temperature": 1.0, "temperature_uniform": 1.0, "items": 0, "k": k}
    _, counts, rows, y = held_out
    out: dict[str, Any] = {"items": len(y), "k": k}
    for prior in PRIORS:
        # each prior is calibrated for queries in its own mix: the catalog's, or every style alike
        # (the held-out items weighted by one over their label's count)
        weights = np.ones(len(y)) if prior == "catalog" else 1.0 / counts[y]
        weights = weights / weights.sum()
        logits = log_posterior(rows, counts, Rule(prior))
        nll = [float(-(weights * np.log(softmax(logits, t)[np.arange(len(y)), y] + 1e-12)).sum()) for t in TEMPERATURES]
        best = int(np.argmin(nll))
        name = "temperature" if prior == "catalog" else f"temperature_{prior}"
        out[name] = round(float(TEMPERATURES[best]), 4)
        out[f"nll_{prior}"] = round(nll[best], 4)
        out[f"nll_{prior}_uncalibrated"] = round(float(nll[int(np.argmin(np.abs(TEMPERATURES - 1.0)))]), 4)
    return out


def temperature(snapshot: Snapshot, projection: Projection, prior: str = "catalog") -> float:
    """The classification temperature of a generation for ``prior``: from its manifest, else
    fitted once and kept in the snapshot's cache (an index written before calibration existed)."""
    record = snapshot.manifest.get(MANIFEST_KEY)
    if record is None:
        if MANIFEST_KEY not in snapshot.cache:
            snapshot.cache[MANIFEST_KEY] = fit(snapshot.backend, snapshot.meta, for_classify(projection))
        record = snapshot.cache[MANIFEST_KEY]
    return float(record.get("temperature" if prior == "catalog" else f"temperature_{prior}", 1.0))


def rule(snapshot: Snapshot, projection: Projection, prior: str = "catalog") -> Rule:
    """The classification rule of a generation for ``prior`` (checked first: a wrong one is
    refused before any calibration work), with its fitted temperature."""
    return replace(Rule(prior), temperature=temperature(snapshot, projection, prior))


def held_out(
    snapshot: Snapshot, projection: Projection, k: int = K
) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray] | None:
    """:func:`leave_one_out` of a generation, computed once per ``k`` and kept in the
    snapshot's cache (style shares ask for it on every request)."""
    key = f"leave_one_out_{k}"
    if key not in snapshot.cache:
        snapshot.cache[key] = leave_one_out(snapshot.backend, snapshot.meta, for_classify(projection), k)
    return snapshot.cache[key]


def for_classify(projection: Projection) -> Callable[[np.ndarray], np.ndarray]:
    """Stored vectors → classification queries, as :meth:`StyleSearch.classify_vectors` asks."""
    return lambda stored: projection.for_query(np.asarray(stored, np.float32), QueryPurpose.CLASSIFY)
