"""Arranging search results: near-duplicates collapsed (``collapse``), the best items per
attribute value (``group_by``) and diverse results by maximal marginal relevance
(``diversity``).

All three re-arrange a pool of candidates that the store found (with the filter already
applied, so they work the same on every store):

- ``group_by=KEY``: candidates in score order are put in groups by their value of ``KEY``;
  the answer is up to ``k`` groups, best group first (a group's rank is its best item's
  score), with up to ``group_size`` items each, group after group. Items without ``KEY`` are
  left out (as Qdrant's grouping does). Each hit says its group.
- ``diversity=λ`` (0 … 1; 0 is the plain ranking): maximal marginal relevance (Carbonell &
  Goldstein, 1998) — each next item maximises ``(1 − λ)·score − λ·(its highest cosine to an
  item already picked)``, over the top candidates.
- ``collapse``: one item per group of near-duplicates — a candidate in the same group as a
  better one already kept is left out; the groups are those of ``dedup``
  (:func:`stylesearch.index.duplicates.group_keys`), so the two always agree.

Collapsing comes first, then the diverse order, then grouping. The pool starts at
:data:`POOL_FACTOR` × what is asked (at least :data:`MIN_POOL`) and grows while there are not
yet ``k`` groups and the store has more matching items, up to :data:`MAX_POOL` candidates
(a group whose best item is not among them is not found: grouping is approximate beyond).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any, TypedDict

import numpy as np

from ..config import ArrangeOptions
from ..errors import ConfigError
from .metadata import Record

MIN_POOL = 50
POOL_FACTOR = 5
MAX_POOL = 16_384  # Milvus's top-k limit too

Found = list[tuple[float, Record]]  # (cosine similarity, record), best first


class Arrangement(TypedDict, total=False):
    """Keyword options of the search methods: ``group_by`` (an attribute key),
    ``group_size`` (items per group, default 1), ``diversity`` (λ, 0 … 1) and ``collapse``
    (one item per group of near-duplicates)."""

    group_by: str | None
    group_size: int
    diversity: float
    collapse: bool


@dataclass(frozen=True)
class Arrange(ArrangeOptions):
    """How to arrange one search's results (see the module's docstring); the options, their
    help and checks are :class:`~stylesearch.config.ArrangeOptions`."""

    @classmethod
    def of(cls, options: Mapping[str, Any] | None) -> Arrange:
        """From the keyword options (:class:`Arrangement`); unknown keys are refused."""
        options = dict(options or {})
        unknown = set(options) - {f.name for f in fields(ArrangeOptions)}
        if unknown:
            raise ConfigError(
                f"unknown search option(s) {', '.join(sorted(unknown))}: use group_by, group_size, diversity or collapse"
            )
        return cls(**options)

    def __bool__(self) -> bool:
        return self.group_by is not None or self.diversity > 0 or self.collapse

    def pool(self, k: int) -> int:
        """Candidates to start from for ``k`` answers."""
        return max(MIN_POOL, POOL_FACTOR * k * self.group_size)

    def apply(
        self,
        found: Found,
        k: int,
        vectors: Callable[[list[int]], np.ndarray],
        copies: Callable[[list[int]], list[int]] | None = None,
    ) -> tuple[Found, list[str | None]]:
        """The arranged answer (at most ``k`` items, or ``k`` groups) and each one's group
        (``None`` without ``group_by``). ``vectors(vids)`` gives stored vectors [N, D];
        ``copies(vids)`` each one's duplicate group (for ``collapse``)."""
        if self.group_by is not None:
            found = [(s, r) for s, r in found if has_group(r, self.group_by)]
        if self.collapse and found:
            if copies is None:
                raise ConfigError("collapse needs the index's duplicate groups")
            found = [found[i] for i in first_of_each(copies([r.vid for _, r in found]))]
        if self.diversity > 0 and found:
            limit = len(found) if self.group_by is not None else k
            order = mmr(np.array([s for s, _ in found]), vectors([r.vid for _, r in found]), limit, self.diversity)
            found = [found[i] for i in order]
        if self.group_by is None:
            return found[:k], [None] * min(k, len(found))
        groups: dict[str, Found] = {}
        for score, record in found:
            value = group_value(record, self.group_by)
            if value in groups:
                if len(groups[value]) < self.group_size:
                    groups[value].append((score, record))
            elif len(groups) < k:
                groups[value] = [(score, record)]
        out = [hit for members in groups.values() for hit in members]
        return out, [group_value(r, self.group_by) for _, r in out]

    def enough(self, arranged: Found, groups: list[str | None], k: int) -> bool:
        """Whether a bigger pool could not improve ``arranged``."""
        return len(set(groups)) >= k if self.group_by is not None else len(arranged) >= k


def has_group(record: Record, key: str) -> bool:
    """Whether ``record`` has a value of ``key`` (an unlabelled item has no ``label`` group)."""
    return key == "id" or (record.label is not None if key == "label" else key in record.attributes)


def group_value(record: Record, key: str) -> str:
    if key == "label":
        return record.label or ""
    if key == "id":
        return record.id
    return record.attributes[key]


def first_of_each(groups: list[int]) -> list[int]:
    """Positions of the first candidate (best first) of each duplicate group."""
    seen: set[int] = set()
    return [i for i, g in enumerate(groups) if not (g in seen or seen.add(g))]  # type: ignore[func-returns-value]


def mmr(scores: np.ndarray, vectors: np.ndarray, k: int, diversity: float) -> list[int]:
    """Maximal marginal relevance: positions of ``k`` of the candidates (``scores`` float [C],
    their stored ``vectors`` float32 [C, D], L2-normalised), each next one maximising
    ``(1 − diversity)·score − diversity·(highest cosine to one already picked)``."""
    n = min(k, len(scores))
    if n == 0:
        return []
    sims = vectors @ vectors.T
    closest = np.full(len(scores), -np.inf, np.float64)
    taken = np.zeros(len(scores), bool)
    order: list[int] = []
    for _ in range(n):
        value = (1.0 - diversity) * scores - diversity * np.where(np.isfinite(closest), closest, 0.0)
        value[taken] = -np.inf
        pick = int(np.argmax(value))
        order.append(pick)
        taken[pick] = True
        closest = np.maximum(closest, sims[pick])
    return order
