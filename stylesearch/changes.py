"""Changes to an index's items. Each is a function of the live snapshot that returns the new
search backend and the change to the metadata; :meth:`StyleSearch._write` runs it under the
write locks and publishes the result as one crash-safe generation
(:func:`stylesearch.generation.publish`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ConfigError, DuplicateItemError
from .generation import keep_media
from .images import ImageInput
from .index import MetadataStore, Record, SearchBackend, Snapshot
from .index.backends.faiss import build_faiss

Change = Callable[[Snapshot], tuple[SearchBackend, Callable[[MetadataStore], object]]]


def check_new_ids(meta: MetadataStore, ids: Sequence[str]) -> None:
    """Refuse ids given twice or already in the index."""
    if len(set(ids)) != len(ids):
        raise ConfigError("item ids of one add must be different; pass ids explicitly")
    taken = meta.existing_ids(list(ids))
    if taken:
        raise DuplicateItemError(f"item id {taken[0]!r} is already in the index: pass another id or remove it first")


def adding(
    root: Path,
    vectors: np.ndarray,
    ids: Sequence[str],
    paths: Sequence[ImageInput],
    labels: Sequence[str | None],
    attributes: Sequence[Mapping[str, str]],
) -> Change:
    """Add items (stored vectors float32 [N, D]); bytes given as ``paths`` are kept under
    ``root/media/``."""
    n = len(ids)

    def change(snapshot: Snapshot) -> tuple[SearchBackend, Callable[[MetadataStore], object]]:
        check_new_ids(snapshot.meta, ids)  # again under the lock: another writer may have taken one
        start = snapshot.next_vid()
        media = [keep_media(root, path, item_id) for path, item_id in zip(paths, ids)]
        records = [Record(start + j, ids[j], media[j], labels[j], dict(attributes[j])) for j in range(n)]
        backend = snapshot.backend.copy()
        backend.add(np.arange(start, start + n, dtype=np.int64), np.asarray(vectors, np.float32))
        return backend, lambda meta: meta.add(records)

    return change


def removing(ids: Sequence[str]) -> Change:
    """Remove items by id (an unknown id raises :class:`ItemNotFoundError`)."""

    def change(snapshot: Snapshot) -> tuple[SearchBackend, Callable[[MetadataStore], object]]:
        records = snapshot.meta.by_ids(list(ids))
        backend = snapshot.backend.copy()
        backend.remove(np.array([r.vid for r in records], np.int64))
        return backend, lambda meta: meta.remove(list(ids))

    return change


def rebuilding(index_type: str, max_memory: int | None, recall_target: float, built: dict[str, Any]) -> Change:
    """Rebuild the FAISS index as ``index_type`` from the stored vectors; what was built goes
    into ``built``."""

    def change(snapshot: Snapshot) -> tuple[SearchBackend, Callable[[MetadataStore], object]]:
        old = snapshot.backend
        backend, info = build_faiss(
            old.ids,
            old.vectors.astype(np.float32),
            index_type=index_type,
            max_memory=max_memory,
            recall_target=recall_target,
            vector_dtype=str(old.vector_dtype),
        )
        built.update(info.to_dict())
        return backend, lambda meta: None

    return change
