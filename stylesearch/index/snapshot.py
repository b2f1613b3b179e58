"""A snapshot: one opened generation — its search backend, metadata and manifest.

Readers hold a snapshot for as long as a request takes; a write publishes a new generation
and the engine swaps in a new snapshot, so a reader never sees half a change.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import IndexCorruptError, UnknownAttributeError, did_you_mean
from .arrange import MAX_POOL, Arrange
from .backends import SearchBackend, load_backend
from .duplicates import group_keys
from .filters import FIELDS, Where, WhereLike
from .layout import IndexDir
from .metadata import METADATA_FILE, MetadataStore, Record

Neighbours = list[list[tuple[float, Record]]]


def generation_number(gen: Path) -> int:
    """``gen-000042`` → 42: generations are numbered in the order they were published."""
    return int(gen.name.rpartition("-")[2])


@dataclass
class Snapshot:
    """``gen``: the generation's folder; ``manifest``: its manifest; ``backend`` answers
    searches over its vectors; ``meta`` holds one record per vector (same int64 ids)."""

    gen: Path
    manifest: dict[str, Any]
    backend: SearchBackend
    meta: MetadataStore
    cache: dict[str, Any] = field(default_factory=dict, init=False, repr=False)  # values derived from this generation

    @classmethod
    def open(cls, gen: Path, manifest: dict[str, Any]) -> Snapshot:
        """Open the generation ``gen`` whose manifest is ``manifest``."""
        meta = MetadataStore(gen / METADATA_FILE)
        try:
            backend = load_backend(gen, manifest, meta)
            if meta.count() != len(backend):
                raise IndexCorruptError(f"{gen} has {meta.count()} metadata rows but {len(backend)} vectors; rebuild the index")
        except BaseException:
            meta.close()
            raise
        return cls(gen, manifest, backend, meta)

    @classmethod
    def open_newer(cls, folder: IndexDir, than: int) -> Snapshot | None:
        """The live generation of ``folder`` opened, if it is newer than generation ``than``
        (``None`` otherwise). A generation collected while being read (newer ones were
        published meanwhile) is retried with the then live one."""
        for attempt in range(5):
            gen = folder.current()
            if generation_number(gen) <= than:
                return None
            try:
                return cls.open(gen, folder.manifest(gen))
            except (OSError, IndexCorruptError):
                if attempt == 4:
                    raise
        return None

    @property
    def number(self) -> int:
        return generation_number(self.gen)

    def __len__(self) -> int:
        return len(self.backend)

    def close(self) -> None:
        self.meta.close()

    def search(
        self,
        queries: np.ndarray,
        k: int,
        where: WhereLike = None,
        *,
        labelled: bool = False,
        exclude: Sequence[int] = (),
    ) -> Neighbours:
        """The ``k`` nearest items to each query (float32 [Q, D], L2-normalised) among those
        matching ``where`` (labelled ones only with ``labelled``, without the ids in
        ``exclude``): per query, (cosine similarity, record) best first."""
        scores, vids = self.backend.search_where(queries, k, self.meta, self.check(where), labelled=labelled, exclude=exclude)
        records = self.meta.by_vids(vids.ravel().tolist())
        return [
            [(float(s), records[v]) for s, v in zip(row_scores.tolist(), row_vids.tolist()) if v in records]
            for row_scores, row_vids in zip(scores, vids)
        ]

    def arranged(
        self,
        queries: np.ndarray,
        k: int,
        where: WhereLike,
        arrange: Arrange,
        *,
        labelled: bool = False,
        exclude: Sequence[int] = (),
    ) -> tuple[Neighbours, list[list[str | None]]]:
        """:meth:`search` arranged as ``arrange`` says (groups, diversity:
        :mod:`stylesearch.index.arrange`), with each hit's group."""
        if not arrange:
            plain = self.search(queries, k, where, labelled=labelled, exclude=exclude)
            return plain, [[None] * len(row) for row in plain]
        keys = self.filter_keys()
        if arrange.group_by is not None and arrange.group_by not in keys:
            raise UnknownAttributeError(
                f"no item has the attribute {arrange.group_by!r}{did_you_mean(arrange.group_by, keys)}; "
                f"group by one of: {', '.join(keys)}"
            )
        if arrange.group_by == "label" and not self.meta.label_counts():
            raise UnknownAttributeError("no item has a label, so there is nothing to group by label: label the catalog first")
        rows, groups = [], []
        for query in queries:
            pool = arrange.pool(k)
            while True:
                found = self.search(query[None], pool, where, labelled=labelled, exclude=exclude)[0]
                picked, named = arrange.apply(
                    found, k, lambda vids: self.backend.get(np.array(vids, np.int64)), lambda vids: group_keys(self, vids)
                )
                if arrange.enough(picked, named, k) or len(found) < pool or pool >= min(len(self), MAX_POOL):
                    break
                pool = min(pool * 4, len(self), MAX_POOL)
            rows.append(picked)
            groups.append(named)
        return rows, groups

    def describe(self) -> dict[str, Any]:
        """The generation: items, labels, attributes, recipe, projection, head, search index."""
        m = self.manifest
        return {
            "generation": self.gen.name,
            "items": len(self),
            "labels": self.meta.label_counts(),
            "attributes": self.meta.attribute_keys(),
            "dim": m["dim"],
            "raw_dim": m.get("raw_dim"),
            "embed": m["embed"],
            "weights_id": m.get("weights_id"),
            "projection": m.get("projection"),
            "head": m.get("head"),
            "index_key": m.get("index_key"),
            "index_type": m.get("index_type", "flat"),
            "search_params": m.get("search_params") or {},
            "vector_dtype": m.get("vector_dtype"),
            "computed_by": m.get("computed_by", []),
            "search_backend": self.backend.backend,
            "created": m.get("created"),
            "updated": m.get("updated"),
        }

    def filter_keys(self) -> list[str]:
        """The keys a filter may name: ``label``, ``id`` and every attribute key of an item
        (read once: a generation never changes)."""
        if "filter_keys" not in self.cache:
            self.cache["filter_keys"] = [*FIELDS, *self.meta.attribute_keys()]
        return list(self.cache["filter_keys"])

    def check(self, where: WhereLike) -> Where:
        """``where`` as a :class:`Where`, refused (:class:`UnknownAttributeError`) when it
        names a key that no item has: a filter that can match nothing is a mistake."""
        where = Where.of(where)
        keys = self.filter_keys() if where else []
        for key, _ in where.terms:
            if key not in keys:
                raise UnknownAttributeError(
                    f"no item has the attribute {key!r}{did_you_mean(key, keys)}; filter on one of: {', '.join(keys)}"
                )
        return where

    def hint(self, where: WhereLike) -> str | None:
        """Why ``where`` matches nothing, when a value no item has is the reason: the value
        and the closest values that exist (``None`` when every value exists)."""
        notes = []
        for key, values in self.check(where).terms:
            if key == "id":
                continue
            present = self.meta.values_of(key)
            for value in values:
                if value not in present:
                    notes.append(f"no item has {key}={value}{did_you_mean(value, present)}")
        return "; ".join(notes) or None

    def labels(self, where: WhereLike = None) -> dict[str, int]:
        """Items per label (among those matching ``where``)."""
        where = self.check(where)
        return self.meta.label_counts(where) if where else dict(self.manifest["labels"])

    def count(self, where: WhereLike = None) -> int:
        """How many items match ``where`` (all items for none)."""
        vids = self.meta.vids_where(self.check(where))
        return len(self) if vids is None else len(vids)

    def vectors_of(self, item_ids: Sequence[str]) -> tuple[list[Record], np.ndarray]:
        """The records of ``item_ids`` and their stored vectors float32 [N, D]
        (:class:`~stylesearch.errors.ItemNotFoundError` for an unknown id)."""
        records = self.meta.by_ids(list(item_ids))
        return records, self.backend.get(np.array([r.vid for r in records], np.int64))

    def next_vid(self) -> int:
        """An id above every id this generation holds or held."""
        last = int(self.backend.ids[-1]) if len(self.backend) else -1
        return max(self.meta.max_vid(), last, int(self.backend.tombstones.max()) if len(self.backend.tombstones) else -1) + 1
