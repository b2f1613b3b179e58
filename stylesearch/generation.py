"""Writing and publishing an index generation: a model bundle joined with a search backend
and its metadata, under one manifest (the on-disk format: ``indexes/README.md``).

A generation is written beside the live one and published by an atomic rename
(:meth:`~stylesearch.index.layout.IndexDir.new_generation`); the caller holds the index's
write lock.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from . import calibration
from ._version import __version__
from .catalog import path_text
from .config import EmbedConfig
from .errors import IndexCorruptError, IndexMismatchError
from .images import ImageInput
from .index import IndexDir, MetadataStore, SearchBackend, Snapshot
from .index.layout import MANIFEST_FILE, write_json
from .index.metadata import METADATA_FILE
from .model.bundle import ModelBundle

FORMAT = "stylesearch-index"
FORMAT_VERSION = 2  # v2: added rows in further vector chunks; an exact float32 FAISS index rebuilt on load
READS = (1, 2)  # v1 (one vector file, every FAISS index written) is read as it is
MODEL_DIR = "model"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def check_format(manifest: dict[str, Any], where: str) -> None:
    """Raise :class:`IndexMismatchError` for a manifest of another format or version."""
    if manifest.get("format") != FORMAT or manifest.get("format_version") not in READS:
        raise IndexMismatchError(
            f"{where} holds index format {manifest.get('format')!r} v{manifest.get('format_version')}, "
            f"this stylesearch reads {FORMAT} v{' and v'.join(map(str, READS))}: rebuild it with 'stylesearch index'"
        )


def load_bundle(gen: Path, manifest: dict[str, Any]) -> ModelBundle:
    """The model bundle of a generation (its recipe and weights id from the manifest)."""
    try:
        config = EmbedConfig.from_dict(manifest["embed"])
    except (KeyError, TypeError, ValueError) as exc:
        raise IndexCorruptError(f"manifest of {str(gen.parent)!r} has no valid 'embed' section; rebuild the index") from exc
    return ModelBundle.load(gen / MODEL_DIR, config, str(manifest.get("weights_id")))


def manifest_for(bundle: ModelBundle, backend: SearchBackend, meta: MetadataStore, created: str | None = None) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "stylesearch_version": __version__,
        "embed": bundle.embed.to_record(),
        "weights_id": bundle.weights_id,
        "raw_dim": bundle.projection.in_dim,
        "dim": bundle.projection.dim,
        "metric": "inner_product",
        "normalized": True,
        **bundle.manifest_entries(f"{MODEL_DIR}/"),
        **backend.manifest_entries(),
        "items": len(backend),
        "labels": meta.label_counts(),
        "created": created or _now(),
        "updated": _now(),
    }


def write_generation(
    gen: Path,
    bundle: ModelBundle,
    backend: SearchBackend,
    meta: MetadataStore,
    created: str | None = None,
    computed_by: list[str] | None = None,
) -> dict[str, Any]:
    """Write everything but the metadata (already at ``gen/metadata.sqlite``) into ``gen``;
    returns its manifest. ``computed_by``: the runtimes and arithmetics that computed its
    vectors (``torch fp16 on cuda:0``, ``openvino fp32``…), said in the manifest."""
    bundle.save(gen / MODEL_DIR)
    backend.save(gen)
    if meta.count() != len(backend):
        raise IndexCorruptError(f"internal error: {meta.count()} metadata rows for {len(backend)} vectors; nothing was written")
    backend.sync(meta)  # an external engine (Milvus) learns the generation's changes
    manifest = manifest_for(bundle, backend, meta, created)
    manifest["computed_by"] = list(computed_by or [])
    manifest[calibration.MANIFEST_KEY] = calibration.fit(backend, meta, calibration.for_classify(bundle.projection))
    write_json(gen / MANIFEST_FILE, manifest)
    return manifest


def publish(
    folder: IndexDir,
    bundle: ModelBundle,
    backend: SearchBackend,
    change_metadata: Callable[[MetadataStore], object],
    base: Snapshot | None = None,
    computed_by: str | None = None,
) -> Snapshot:
    """Write a generation holding ``backend`` and publish it: its metadata is ``base``'s (none
    for a full build) changed by ``change_metadata``; ``computed_by``: what computed the
    vectors it adds (:meth:`~stylesearch.model.embed.Embedder.describe_runtime`; ``None``
    when it adds none), listed after ``base``'s in the manifest. Returns the new generation
    opened (sharing ``backend``). The caller holds ``folder.lock()``."""
    runtimes = [str(r) for r in base.manifest.get("computed_by", [])] if base is not None else []
    if computed_by is not None and computed_by not in runtimes:
        runtimes.append(computed_by)
    with folder.new_generation() as gen:
        if base is not None:
            base.meta.backup_to(gen / METADATA_FILE)
        meta = MetadataStore(gen / METADATA_FILE)
        try:
            change_metadata(meta)
            created = None if base is None else base.manifest.get("created")
            manifest = write_generation(gen, bundle, backend, meta, created, runtimes)
        finally:
            meta.close()
    final = folder.current()
    # their files are there now: a later generation links them from there
    backend.data.saved_in(final)
    bundle.saved_in(final / MODEL_DIR)
    return Snapshot(final, manifest, backend, MetadataStore(final / METADATA_FILE))


def keep_media(index_root: Path, image: ImageInput, item_id: str) -> str:
    """Path recorded for an added image: the file itself, or a copy under the index's
    ``media/`` for in-memory images (bytes or PIL)."""
    if isinstance(image, (str, os.PathLike)):
        return path_text(Path(image).resolve())
    media = index_root / "media"
    media.mkdir(parents=True, exist_ok=True)
    name = hashlib.sha1(item_id.encode()).hexdigest()[:16]
    if isinstance(image, bytes):
        path = media / f"{name}.img"
        path.write_bytes(image)
    else:
        path = media / f"{name}.png"
        image.save(path, format="PNG")
    return str(path.resolve())
