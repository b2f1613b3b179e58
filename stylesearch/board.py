"""Mood-board queries: one query made of several weighted examples.

An example is a photo (a path, bytes or a PIL image), an indexed item (by id) or a style
vector, with a weight; a negative weight pushes results away from it. Two ways to combine
them (:meth:`StyleSearch.board`):

- ``average`` (default): one query vector, the weighted sum ``Σ wᵢ·vᵢ`` of the examples'
  style vectors, L2-normalised; the index is searched once. ``recommend(positive, negative)``
  is this with weights ``1/P`` for each positive and ``−0.5/N`` for each negative (Rocchio).
- ``best_score`` (as Qdrant's recommendation strategy): candidates are the nearest items of
  each positive example; each is scored by its highest cosine to a positive example when that
  is at least its highest cosine to a negative one, and by minus that negative cosine
  otherwise — an item closer to something pushed away ranks below every item that is not.
  Only the weights' signs count.

The CLI writes an example as ``[-]PATH[:W]`` or ``[-]item:ID[:W]`` (:meth:`Example.parse`): a
leading ``-`` makes it negative, and a negative example without a weight weighs
:data:`NEGATIVE_WEIGHT`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ConfigError
from .index import Record, SearchBackend, Snapshot
from .index.arrange import Arrange, Arrangement
from .index.filters import WhereLike
from .model.projection import Projection, QueryPurpose
from .results import Hit

STRATEGIES = ("average", "best_score")
KINDS = ("image", "item", "vector")
NEGATIVE_WEIGHT = 0.5  # Rocchio's customary ratio: a negative pushes half as hard as a positive pulls
POOL = 50  # candidates per positive example for best_score, at least
MAX_EXAMPLES = 64


@dataclass(frozen=True)
class Example:
    """One example of a mood board: ``kind`` ``image`` (``value`` a path, bytes or a PIL
    image), ``item`` (``value`` an indexed item's id) or ``vector`` (``value`` a style vector
    float32 [D], in the index's stored form); ``weight`` non-zero, negative to push away."""

    kind: str
    value: Any
    weight: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"a mood-board example is an image, an item or a vector, not {self.kind!r}")
        if isinstance(self.weight, bool) or not isinstance(self.weight, (int, float)):
            raise ConfigError(f"an example's weight must be a number, got {self.weight!r}")
        if not math.isfinite(self.weight) or self.weight == 0:
            raise ConfigError(f"an example's weight must be a finite number other than 0, got {self.weight!r}")

    @classmethod
    def parse(cls, text: str) -> Example:
        """``[-]PATH[:W]`` or ``[-]item:ID[:W]`` (see the module's docstring). An existing
        file is read as that file, whatever its name."""
        negative = text.startswith("-") and not Path(text).exists()
        body = text[1:] if negative else text
        weight: float | None = None
        kind = "item" if body.startswith("item:") else "image"
        value = body[len("item:") :] if kind == "item" else body
        head, sep, tail = value.rpartition(":")
        if sep and head and not (kind == "image" and Path(value).exists()):
            weight = _number(tail)
            if weight is not None:
                value = head
            elif kind == "image" and Path(head).exists():
                raise ConfigError(f"weight {tail!r} of {text!r} is not a number: write PATH:2 or PATH:0.5")
        if not value:
            raise ConfigError(f"mood-board example {text!r} names nothing: give PATH, item:ID, -item:ID or PATH:WEIGHT")
        if weight is not None and weight <= 0:
            raise ConfigError(f"weight {tail!r} of {text!r}: weights are positive; a leading '-' makes an example negative")
        magnitude = weight if weight is not None else (NEGATIVE_WEIGHT if negative else 1.0)
        return cls(kind, value, -magnitude if negative else magnitude)


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def rocchio(positive: Sequence[str], negative: Sequence[str]) -> list[Example]:
    """``recommend``'s examples: the mean of the positives minus half the mean of the negatives."""
    return [Example("item", i, 1.0 / len(positive)) for i in positive] + [
        Example("item", i, -NEGATIVE_WEIGHT / len(negative)) for i in negative
    ]


def check_strategy(strategy: str) -> str:
    if strategy not in STRATEGIES:
        raise ConfigError(f"strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
    return strategy


def vectors(
    examples: Sequence[Example], embed: Callable[[Sequence[Any]], np.ndarray], snapshot: Snapshot
) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """The examples' stored-form vectors float32 [N, D], their weights float [N], and the
    index ids of the indexed examples (left out of the answer)."""
    examples = list(examples)
    if not examples:
        raise ConfigError("a mood board needs at least one example")
    if len(examples) > MAX_EXAMPLES:
        raise ConfigError(f"a mood board takes at most {MAX_EXAMPLES} examples, got {len(examples)}")
    if not any(e.weight > 0 for e in examples):
        raise ConfigError("a mood board needs at least one positive example (negative ones only push away)")
    dim = snapshot.backend.dim
    out = np.zeros((len(examples), dim), np.float32)
    exclude: list[int] = []
    items = [i for i, e in enumerate(examples) if e.kind == "item"]
    if items:
        records, stored = snapshot.vectors_of([str(examples[i].value) for i in items])
        out[items] = stored
        exclude = [r.vid for r in records]
    images = [i for i, e in enumerate(examples) if e.kind == "image"]
    if images:
        out[images] = embed([examples[i].value for i in images])
    for i, e in enumerate(examples):
        if e.kind == "vector":
            v = np.asarray(e.value, np.float32).reshape(-1)
            if v.shape != (dim,) or not np.all(np.isfinite(v)) or not np.linalg.norm(v) > 0:
                raise ConfigError(f"a vector example must hold {dim} finite numbers, not all 0 (this index's dim)")
            out[i] = v / np.linalg.norm(v)
    return out, np.array([e.weight for e in examples], np.float64), exclude


def combine(vectors: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The ``average`` strategy's query: ``Σ wᵢ·vᵢ`` L2-normalised, float32 [D]."""
    query = (np.asarray(weights, np.float64)[:, None] * np.asarray(vectors, np.float64)).sum(0)
    norm = float(np.linalg.norm(query))
    if norm < 1e-6:
        raise ConfigError("the positive and negative examples cancel out: give fewer or lighter negatives")
    return (query / norm).astype(np.float32)


def best_score(candidates: np.ndarray, queries: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The ``best_score`` strategy: candidates' stored vectors [C, D] against the examples'
    query vectors [N, D] → scores float [C] (see the module's docstring)."""
    sims = candidates @ queries.T
    positive = sims[:, weights > 0].max(1)
    if not np.any(weights < 0):
        return positive
    negative = sims[:, weights < 0].max(1)
    return np.where(positive >= negative, positive, -negative)


def rank_best_score(backend: SearchBackend, candidates: Sequence[Record], queries: np.ndarray, weights: np.ndarray) -> list[Any]:
    """The candidate records (repeats allowed) as (score, record), best first, by
    :func:`best_score` against the examples' query vectors [N, D]."""
    records = list({r.vid: r for r in candidates}.values())
    scores = best_score(backend.get(np.array([r.vid for r in records], np.int64)), queries, weights)
    return sorted(zip(scores.tolist(), records), key=lambda x: -x[0])


Search = Callable[..., list[list[Hit]]]  # StyleSearch._search: vectors, k, where, exclude=, arrange=


def answer(
    examples: Sequence[Example],
    k: int,
    where: WhereLike,
    strategy: str,
    arrange: Arrangement,
    *,
    embed: Callable[[list[Any]], np.ndarray],
    snapshot: Snapshot,
    projection: Projection,
    search: Search,
) -> list[Hit]:
    """The ``k`` items a board's ``strategy`` ranks first: ``average`` searches once with
    :func:`combine`; ``best_score`` pools the nearest items of each positive example
    (queried as same-style searches are, ``projection``) and ranks them by :func:`best_score`."""
    vectors_, weights, exclude = vectors(examples, embed, snapshot)
    if check_strategy(strategy) == "average":
        return search(combine(vectors_, weights)[None], k, where, exclude=exclude, arrange=arrange)[0]
    queries = projection.for_query(vectors_, QueryPurpose.SEARCH)
    pool = snapshot.search(queries[weights > 0], max(POOL, 5 * k), where, exclude=exclude)
    ranked = rank_best_score(snapshot.backend, [r for row in pool for _, r in row], queries, weights)
    picked, groups = Arrange.of(arrange).apply(ranked, k, lambda vids: snapshot.backend.get(np.array(vids)))
    return [Hit.of(r, s, g) for (s, r), g in zip(picked, groups)]
