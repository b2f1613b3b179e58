"""Near-duplicate items: groups of items whose style vectors are nearly the same photo (the
same product re-shot, re-encoded, resized, mirrored, cropped a little or watermarked).

It runs on the index, never on all pairs: every item's ``k`` nearest neighbours are searched
in batches, the pairs at or above ``threshold`` cosine are joined (union-find), and each
connected group gets a representative — the member with the highest summed similarity to
the other members it was paired with (the most central copy; ties: the smaller id). Memory
grows with N·k, time with N searches.

``collapse`` in a search (:mod:`stylesearch.index.arrange`) applies the same pair rule to
the results: a result at or above the threshold to a better one already shown is left out.

The default threshold was chosen on planted duplicates among real photos
(``benchmarks/bench_dedup.py``; README, Results).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from ..errors import ConfigError
from .arrange import DUPLICATE_THRESHOLD as DEFAULT_THRESHOLD
from .snapshot import Snapshot

NEIGHBOURS = 16
BATCH = 1024


@dataclass
class DuplicateGroup:
    """One group: ``representative`` (an item id) and every member (the representative
    first) with its highest cosine to another member."""

    representative: str
    members: list[tuple[str, float]]

    def to_dict(self) -> dict[str, object]:
        return {
            "representative": self.representative,
            "size": len(self.members),
            "members": [{"id": i, "score": round(s, 6)} for i, s in self.members],
        }


def check_threshold(threshold: float) -> float:
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0.0 < float(threshold) <= 1.0:
        raise ConfigError(f"the duplicate threshold is a cosine similarity above 0 and at most 1, got {threshold!r}")
    return float(threshold)


def pairs(snapshot: Snapshot, threshold: float, k: int = NEIGHBOURS) -> dict[tuple[int, int], float]:
    """(smaller vid, larger vid) → cosine of the item pairs at or above ``threshold`` among
    each item's ``k`` nearest neighbours (a pair found from both sides counts once)."""
    found: dict[tuple[int, int], float] = {}
    vids = snapshot.backend.ids
    for start in range(0, len(vids), BATCH):
        chunk = vids[start : start + BATCH]
        scores, neighbours = snapshot.backend.search(snapshot.backend.get(chunk), min(k + 1, len(vids)))
        for vid, row_scores, row_found in zip(chunk.tolist(), scores, neighbours):
            for score, other in zip(row_scores.tolist(), row_found.tolist()):
                if other >= 0 and other != vid and score >= threshold:
                    found[min(vid, other), max(vid, other)] = float(score)
    return found


def find_groups(snapshot: Snapshot, threshold: float = DEFAULT_THRESHOLD, k: int = NEIGHBOURS) -> list[DuplicateGroup]:
    """Groups of near-duplicate items (two or more members), largest first. Computed once per
    generation and setting (a generation never changes; the pass is N searches)."""
    threshold = check_threshold(threshold)
    if k < 1:
        raise ConfigError(f"k must be at least 1, got {k}")
    key = f"duplicates:{threshold}:{k}"
    if key not in snapshot.cache:
        snapshot.cache[key] = _groups(snapshot, pairs(snapshot, threshold, k))
    return list(snapshot.cache[key])


def _groups(snapshot: Snapshot, found: dict[tuple[int, int], float]) -> list[DuplicateGroup]:
    """Connected groups of the ``found`` pairs (union-find), each led by its most central member."""
    parent: dict[int, int] = {}

    def root(v: int) -> int:
        parent.setdefault(v, v)
        while parent[v] != v:
            parent[v] = parent[parent[v]]
            v = parent[v]
        return v

    centrality: dict[int, float] = defaultdict(float)
    best: dict[int, float] = defaultdict(float)
    for (a, b), score in found.items():
        centrality[a] += score
        centrality[b] += score
        best[a] = max(best[a], score)
        best[b] = max(best[b], score)
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    members: dict[int, list[int]] = defaultdict(list)
    for v in parent:
        members[root(v)].append(v)
    records = snapshot.meta.by_vids(list(parent))
    groups = []
    for vids in members.values():
        if len(vids) < 2:
            continue
        ordered = sorted(vids, key=lambda v: (-centrality[v], records[v].id))
        groups.append(DuplicateGroup(records[ordered[0]].id, [(records[v].id, best[v]) for v in ordered]))
    return sorted(groups, key=lambda g: (-len(g.members), g.representative))
