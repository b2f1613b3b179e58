"""What stylesearch answers: search hits, query results, classifications, indexing reports."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .catalog import Skipped
from .stamps import Stamp


@dataclass
class Hit:
    """One indexed item returned by a search; ``score`` is cosine similarity; ``group`` is
    its value of the attribute a search was grouped by (``group_by``)."""

    id: str
    score: float
    label: str | None
    path: str
    attributes: dict[str, str] = field(default_factory=dict)
    group: str | None = None

    @classmethod
    def of(cls, record: Any, score: float = 1.0, group: str | None = None) -> Hit:
        """The hit for a metadata record (:class:`~stylesearch.index.metadata.Record`)."""
        return cls(record.id, round(float(score), 6), record.label, record.path, record.attributes, group)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class QueryResult:
    """The items found for one query image; ``hint`` says why there are none when a filter
    value no item has is the reason."""

    image: str
    results: list[Hit]
    hint: str | None = None
    familiarity: float | None = None  # how much the photo looks like the catalog (stylesearch.familiarity)
    out_of_catalog: bool = False  # the photo looks like nothing in the catalog: the results are only the least unlike

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"image": self.image, "familiarity": self.familiarity, "out_of_catalog": self.out_of_catalog}
        out["results"] = [h.to_dict() for h in self.results]
        if self.hint:
            out["hint"] = self.hint
        return out


@dataclass
class Classification:
    """The answer for one image. ``label`` is ``None`` ("unknown") when ``confidence`` is
    below the threshold. ``method`` says what decided: ``knn``, ``linear`` or ``both``
    (their scores averaged); with ``both``, a label that only kNN knows (added after the head
    was trained: a cold-start label) is decided by kNN. ``knn`` / ``linear`` hold each
    method's own answer when it ran. ``reason`` says why the label is ``None``:
    ``low_confidence``, ``no_labelled_items`` (nothing may vote: the filter matches no
    labelled item) or ``out_of_catalog`` (the photo looks like no item of the catalog:
    ``familiarity``, its percentile among the catalog's own nearest-item similarities, is
    below the threshold); ``hint`` what to change. ``confidence`` is a calibrated probability
    (:mod:`stylesearch.classify`); ``answer`` is the best label even when ``label`` is
    ``None``; ``support`` how many of the neighbours carry it; ``prior`` the prior used."""

    image: str
    label: str | None
    confidence: float
    scores: dict[str, float]
    neighbors: list[Hit]
    method: str = "knn"
    knn: dict[str, Any] | None = None
    linear: dict[str, Any] | None = None
    reason: str | None = None  # why the label is None: low_confidence, no_labelled_items or out_of_catalog
    hint: str | None = None  # what to change (a filter value no item has, say)
    familiarity: float | None = None  # how much the photo looks like the catalog (stylesearch.familiarity)
    answer: str | None = None  # the best label, answered or not
    support: int | None = None  # how many of the k neighbours carry ``answer`` (None: kNN did not run)
    prior: str = "catalog"

    @property
    def out_of_catalog(self) -> bool:
        return self.reason == "out_of_catalog"

    def to_dict(self) -> dict[str, Any]:
        return {
            "reason": self.reason,
            "out_of_catalog": self.out_of_catalog,
            "support": self.support,
            "k": len(self.neighbors),
            "answer": self.answer,
            "prior": self.prior,
            "hint": self.hint,
            "familiarity": self.familiarity,
            "image": self.image,
            "label": self.label,
            "confidence": self.confidence,
            "scores": self.scores,
            "method": self.method,
            "knn": self.knn,
            "linear": self.linear,
            "neighbors": [h.to_dict() for h in self.neighbors],
        }


@dataclass
class IndexReport:
    """What ``index_catalog`` / ``StyleSearch.add`` did: item counts, skipped files, speed."""

    index_dir: str
    added: int
    skipped: list[Skipped]
    items: int
    labels: dict[str, int]
    seconds: float
    stages: dict[str, float] = field(default_factory=dict)

    @property
    def images_per_second(self) -> float:
        return (self.added + len(self.skipped)) / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index_dir,
            "added": self.added,
            "items": self.items,
            "labels": self.labels,
            "seconds": round(self.seconds, 3),
            "images_per_second": round(self.images_per_second, 2),
            "stages": {k: round(v, 3) for k, v in self.stages.items()},
            "skipped": [asdict(s) for s in self.skipped],
        }


@dataclass
class SyncReport:
    """What ``sync`` did: items added, updated (re-embedded), relabelled (label, attributes
    or path changed; not re-embedded), removed and unchanged; files skipped; items after it."""

    added: int
    updated: int
    relabelled: int
    removed: int
    unchanged: int
    skipped: list[Skipped]
    items: int
    seconds: float
    restamped: int = 0  # unchanged files whose new size / time were recorded (same content)
    generation: int | None = None  # the generation it published; None when nothing changed

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["seconds"] = round(self.seconds, 3)
        return out


@dataclass
class Embedded:
    """Images embedded, some perhaps not — the one shape of that answer, for a batch or a whole
    pass, in the library, training, reports, Ray, the service's batcher and the CLI.

    ``positions`` int64 [M] index the inputs given (ascending), ``values`` float32 [M, W] are
    theirs in that order — style vectors when ``projected``, raw statistics otherwise — and
    ``failures`` are (position, reason) for the inputs that could not be read. ``novelty``:
    the photos' novelty p-values float64 [M, S] (:mod:`stylesearch.model.novelty`), measured
    for queries (``Embedder.embed_lenient``), ``None`` otherwise; the answers that say whether
    a photo is unlike the catalog read them from here. ``signatures``: their copy signatures
    uint8 [M, B] (:mod:`stylesearch.copies`), made from the same decoded pixels, and
    ``stamps`` their files' stamps (:mod:`stylesearch.stamps`, ``None`` for an input that was
    not a file), made from the same bytes; each ``None`` where a pass did not keep them."""

    positions: np.ndarray
    values: np.ndarray
    failures: list[tuple[int, str]]
    projected: bool = True
    novelty: np.ndarray | None = None
    signatures: np.ndarray | None = None
    stamps: list[Stamp | None] | None = None

    def __post_init__(self) -> None:
        self.positions = np.asarray(self.positions, np.int64).reshape(-1)

    def __len__(self) -> int:
        return len(self.positions)

    def part(self, start: int, stop: int) -> Embedded:
        """The inputs ``start:stop`` alone (positions counted from ``start``)."""
        keep = (self.positions >= start) & (self.positions < stop)
        failures = [(p - start, reason) for p, reason in self.failures if start <= p < stop]
        novelty = None if self.novelty is None else self.novelty[keep]
        signatures = None if self.signatures is None else self.signatures[keep]
        stamps = None if self.stamps is None else [s for s, k in zip(self.stamps, keep) if k]
        return Embedded(self.positions[keep] - start, self.values[keep], failures, self.projected, novelty, signatures, stamps)

    def first_failure(self) -> tuple[int, str] | None:
        return min(self.failures) if self.failures else None


def as_vectors(vectors: np.ndarray | Embedded) -> tuple[np.ndarray, np.ndarray | None]:
    """(style vectors float32 [N, D], their novelty p-values or ``None``) of either form."""
    if isinstance(vectors, Embedded):
        return vectors.values, vectors.novelty
    return vectors, None
