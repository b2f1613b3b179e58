"""Changes to an index's items. Each is a function of the live snapshot that returns the new
search backend and the change to the metadata; :meth:`StyleSearch._write` runs it under the
write locks and publishes the result as one crash-safe generation
(:func:`stylesearch.generation.publish`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .catalog import is_utf8, path_text, printable
from .errors import ConfigError, DuplicateItemError
from .generation import keep_media
from .images import ImageInput
from .index import MetadataStore, Record, SearchBackend, Snapshot
from .index.backends.faiss import build_faiss
from .inputs import default_id, per_item
from .results import Embedded

if TYPE_CHECKING:
    from .ingest.sync import SyncPlan

Change = Callable[[Snapshot], tuple[SearchBackend, Callable[[MetadataStore], object]]]


def new_items(
    batch: Sequence[ImageInput],
    labels: str | None | Sequence[str | None],
    ids: Sequence[str] | None,
    attributes: Mapping[str, str] | Sequence[Mapping[str, str]] | None,
) -> tuple[list[str], list[str | None], list[dict[str, str]]]:
    """``add``'s arguments as one id, label and attribute set per image. A file name that is
    not UTF-8 gives a printable id (its bytes escaped); given ids must be text."""
    n = len(batch)
    label_list = per_item(labels, n, "labels")
    attr_list = [dict(a) for a in per_item(attributes or {}, n, "attributes")]
    id_list = list(ids) if ids is not None else [printable(default_id(img)) for img in batch]
    if len(id_list) != n:
        raise ConfigError(f"{len(id_list)} ids for {n} images")
    if not all(is_utf8(i) for i in id_list):
        raise ConfigError("ids must be valid UTF-8 text")
    return id_list, label_list, attr_list


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
    signatures: np.ndarray | None = None,
) -> Change:
    """Add items (stored vectors float32 [N, D], and their copy signatures when given); bytes
    given as ``paths`` are kept under ``root/media/``."""
    n = len(ids)
    if not (len(vectors) == len(paths) == len(labels) == len(attributes) == n) or n == 0:
        raise ConfigError("add_vectors needs one vector, path, label and attribute set per id")

    def change(snapshot: Snapshot) -> tuple[SearchBackend, Callable[[MetadataStore], object]]:
        check_new_ids(snapshot.meta, ids)  # again under the lock: another writer may have taken one
        start = snapshot.next_vid()
        media = [keep_media(root, path, item_id) for path, item_id in zip(paths, ids)]
        records = [Record(start + j, ids[j], media[j], labels[j], dict(attributes[j])) for j in range(n)]
        backend = snapshot.backend.copy()
        backend.add(np.arange(start, start + n, dtype=np.int64), np.asarray(vectors, np.float32))

        def change_metadata(meta: MetadataStore) -> None:
            meta.add(records)
            if signatures is not None:
                meta.set_signatures([r.vid for r in records], signatures)

        return backend, change_metadata

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


def syncing(todo: SyncPlan, done: Embedded) -> Change:
    """A sync's change (:mod:`stylesearch.ingest.sync`): ``done`` holds the style vectors (copy
    signatures, file stamps) of ``todo.embed[p]`` for each of its positions ``p`` (the others
    could not be read: an added one is left out, an updated one keeps its previous vector)."""
    good = done.positions.tolist()
    n_added = len(todo.added)

    def change(snapshot: Snapshot) -> tuple[SearchBackend, Callable[[MetadataStore], object]]:
        replaced = [todo.replaced[p - n_added] for p in good if p >= n_added]
        planned = replaced + todo.removed + todo.relabel
        now = snapshot.meta.by_vids([r.vid for r in planned])
        if any(r.vid not in now or now[r.vid].id != r.id for r in planned):
            raise ConfigError("the index changed while it was being synced (another writer): run sync again")
        check_new_ids(snapshot.meta, [todo.embed[p].id for p in good if p < n_added])
        start = snapshot.next_vid()
        records = [
            Record(start + j, item.id, path_text(item.path), item.label, dict(item.attributes))
            for j, item in enumerate(todo.embed[p] for p in good)
        ]
        drop = np.array([r.vid for r in replaced + todo.removed], np.int64)
        # no vector changes (relabels, new stamps): the generation shares the vectors' files
        backend = snapshot.backend.copy() if len(drop) or records else snapshot.backend
        if len(drop):
            backend.remove(drop)
        if records:
            backend.add(np.arange(start, start + len(records), dtype=np.int64), np.asarray(done.values, np.float32))
        made = done.stamps or [None] * len(records)
        stamps = [(r.vid, *s) for r, s in zip(records, made) if s is not None] + [(vid, *s) for vid, s in todo.restamp.items()]
        signatures = done.signatures

        def change_metadata(meta: MetadataStore) -> None:
            if len(drop):
                meta.remove([r.id for r in replaced + todo.removed])
            meta.add(records)
            meta.update(todo.relabel)
            meta.set_stamps(stamps)
            if signatures is not None and records:
                meta.set_signatures([r.vid for r in records], signatures)

        return backend, change_metadata

    return change
