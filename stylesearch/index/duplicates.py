"""Near-duplicate items: groups of items that are copies of one photo (re-encoded, resized,
mirrored, cropped a little, written on), by their copy signatures (:mod:`stylesearch.copies`),
not their style vectors — different products of one style, and colourways of one product,
are meant to be close in style and are not copies.

One pass over the index: every item's :data:`NEIGHBOURS` nearest by the coarse copy
descriptor (searched with the photo and its mirror image; FAISS, HNSW above
:data:`EXACT_UP_TO` items) are candidates, those whose coarse cosine is at least
:data:`PREFILTER` are scored (:func:`stylesearch.copies.copy_scores`), the pairs at or above
the threshold make star groups: the most central item (highest summed score; ties: the smaller
id) leads a group of its copies, then the next, so every member is a copy of its
representative (look-alike chains are not joined).

The same groups serve ``dedup`` (CLI, API, page) and ``collapse`` in a search
(:func:`group_keys`: one item per group), so they always agree. Items whose signature was not
stored (an index written before signatures, by Ray or by a resumed build) get one made from
their file for this session, with a warning; an item whose file cannot be read is in no group.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from ..config import DEFAULT_IMAGE_SIZE, DUPLICATE_THRESHOLD
from ..copies import SIGNATURE_BYTES, coarse, copy_scores
from ..errors import ConfigError
from .metadata import MetadataStore, Record


class Snapshot(Protocol):
    """What the duplicate pass reads of an opened generation (:class:`~.snapshot.Snapshot`)."""

    manifest: dict[str, Any]
    meta: MetadataStore
    cache: dict[str, Any]


log = logging.getLogger(__name__)

DEFAULT_THRESHOLD = DUPLICATE_THRESHOLD
NEIGHBOURS = 16
PREFILTER = 0.8  # coarse cosine below which a candidate pair is not scored
EXACT_UP_TO = 20_000  # items up to which candidates are searched exactly


@dataclass
class DuplicateGroup:
    """One group: ``representative`` (an item id) and every member (the representative
    first) with its copy score to the representative (the representative: its best one)."""

    representative: str
    members: list[tuple[str, float]]

    def to_dict(self) -> dict[str, object]:
        return {
            "representative": self.representative,
            "size": len(self.members),
            "copies": len(self.members) - 1,
            "members": [{"id": i, "score": round(s, 6)} for i, s in self.members],
        }


def check_threshold(threshold: float) -> float:
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0.0 < float(threshold) <= 1.0:
        raise ConfigError(f"the duplicate threshold is a copy score above 0 and at most 1, got {threshold!r}")
    return float(threshold)


def signatures(snapshot: Snapshot) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(every item's vid int64 [N], its copy signature uint8 [N, B], whether it is usable);
    missing ones are made from the items' files, once per generation."""
    if "signatures" not in snapshot.cache:
        vids = snapshot.meta.vids()
        found, ok = snapshot.meta.signatures(vids.tolist(), SIGNATURE_BYTES)
        if not ok.all():
            missing = np.flatnonzero(~ok)
            log.warning(
                "%d of %d items have no stored copy signature (an index written before signatures, by Ray, or by a "
                "resumed build): making them from their files for this session; 'stylesearch index' stores them",
                len(missing),
                len(vids),
            )
            records = snapshot.meta.by_vids(vids[missing].tolist())
            size = int(snapshot.manifest.get("embed", {}).get("image_size") or DEFAULT_IMAGE_SIZE)
            made, made_ok = _from_files([records[int(v)] for v in vids[missing]], size)
            found[missing], ok[missing] = made, made_ok
        snapshot.cache["signatures"] = (vids, found, ok)
    return snapshot.cache["signatures"]


def _from_files(records: Sequence[Record], size: int) -> tuple[np.ndarray, np.ndarray]:
    """Copy signatures of items decoded from their files (at the index's input size)."""
    from ..catalog import path_of
    from ..copies import thumbnails
    from ..errors import StyleSearchError
    from ..images import load_tensor

    out = np.zeros((len(records), SIGNATURE_BYTES), np.uint8)
    ok = np.zeros(len(records), bool)
    for n, record in enumerate(records):
        try:
            out[n] = thumbnails(load_tensor(path_of(record.path), size).numpy()[None])[0]
            ok[n] = True
        except (StyleSearchError, OSError) as exc:
            log.warning("no copy signature for item %r: %s", record.id, exc)
    return out, ok


def candidates(found: np.ndarray, usable: np.ndarray, k: int = NEIGHBOURS) -> np.ndarray:
    """int64 [P, 2] row pairs (smaller first) worth scoring: each usable row's ``k`` nearest by
    the coarse descriptor, of the photo and of its mirror image, at or above :data:`PREFILTER`."""
    import faiss

    rows = np.flatnonzero(usable)
    if len(rows) < 2:
        return np.zeros((0, 2), np.int64)
    plain = np.ascontiguousarray(coarse(found[rows]))
    dim = plain.shape[1]
    index = faiss.IndexFlatIP(dim) if len(rows) <= EXACT_UP_TO else faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
    index.add(plain)
    pairs = []
    for queries in (plain, np.ascontiguousarray(coarse(found[rows], mirrored=True))):
        scores, near = index.search(queries, min(k + 1, len(rows)))
        a = np.repeat(np.arange(len(rows)), near.shape[1])
        b, s = near.ravel(), scores.ravel()
        keep = (b >= 0) & (b != a) & (s >= PREFILTER)
        pairs.append(np.stack([rows[a[keep]], rows[b[keep]]], 1))
    both = np.concatenate(pairs)
    return np.unique(np.sort(both, 1), axis=0)


def scored_pairs(snapshot: Snapshot, k: int = NEIGHBOURS) -> tuple[np.ndarray, np.ndarray]:
    """(vid pairs int64 [P, 2], their copy scores float32 [P]) of every candidate pair: what
    every threshold filters, so computed once per generation and ``k``."""
    key = f"copy_pairs:{k}"
    if key not in snapshot.cache:
        vids, found, usable = signatures(snapshot)
        pairs = candidates(found, usable, k)
        snapshot.cache[key] = (vids[pairs].reshape(-1, 2), copy_scores(found, pairs))
    return snapshot.cache[key]


def find_groups(snapshot: Snapshot, threshold: float = DEFAULT_THRESHOLD, k: int = NEIGHBOURS) -> list[DuplicateGroup]:
    """Groups of copies (two or more members), largest first. Computed once per generation and
    setting (a generation never changes)."""
    return list(_grouped(snapshot, threshold, k)[0])


def group_keys(snapshot: Snapshot, vids: Sequence[int]) -> list[int]:
    """Each vid's duplicate group at the default setting, as the vid of its representative
    (its own vid when it is in no group): what ``collapse`` keeps one item of."""
    representative = _grouped(snapshot, DEFAULT_THRESHOLD, NEIGHBOURS)[1]
    return [representative.get(int(v), int(v)) for v in vids]


def _grouped(snapshot: Snapshot, threshold: float, k: int) -> tuple[list[DuplicateGroup], dict[int, int]]:
    """(the groups, each member's representative by vid) at ``threshold`` and ``k``, cached."""
    threshold = check_threshold(threshold)
    if k < 1:
        raise ConfigError(f"k must be at least 1, got {k}")
    key = f"duplicates:{threshold}:{k}"
    if key not in snapshot.cache:
        pairs, scores = scored_pairs(snapshot, k)
        keep = scores >= threshold
        snapshot.cache[key] = _groups(snapshot, {(int(a), int(b)): float(s) for (a, b), s in zip(pairs[keep], scores[keep])})
    return snapshot.cache[key]


def _groups(snapshot: Snapshot, found: dict[tuple[int, int], float]) -> tuple[list[DuplicateGroup], dict[int, int]]:
    """Star groups of the ``found`` pairs: the most central item (highest summed score, then the
    smaller id) not yet placed leads a group of itself and its copies not yet placed, and so on.
    Every member is a copy of its representative: chains of look-alikes (A like B, B like C)
    are not joined into one group. Also each member's representative, by vid."""
    near: dict[int, dict[int, float]] = defaultdict(dict)
    for (a, b), score in found.items():
        near[a][b] = score
        near[b][a] = score
    records = snapshot.meta.by_vids(list(near))
    order = sorted(near, key=lambda v: (-sum(near[v].values()), records[v].id))
    representative: dict[int, int] = {}
    groups = []
    for v in order:
        if v in representative:
            continue
        copies = sorted((u for u in near[v] if u not in representative), key=lambda u: (-near[v][u], records[u].id))
        if not copies:
            continue
        representative.update((u, v) for u in [v, *copies])
        members = [(records[v].id, max(near[v][u] for u in copies))] + [(records[u].id, near[v][u]) for u in copies]
        groups.append(DuplicateGroup(records[v].id, members))
    return sorted(groups, key=lambda g: (-len(g.members), g.representative)), representative
