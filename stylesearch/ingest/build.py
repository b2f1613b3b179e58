"""``index_catalog``: a catalog in, a published index generation out.

catalog → (local pipeline with a resumable checkpoint | Ray distributor) → search backend of
the ``--store`` scheme → generation (model bundle + backend + metadata), published atomically.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

import numpy as np

from ..catalog import Catalog, Columns, Item, Skipped, load_catalog, path_text
from ..config import DEFAULT_INDEX_DIR, EmbedConfig, IndexConfig, RunConfig
from ..errors import CatalogError, ConfigError, StyleSearchError
from ..generation import publish
from ..index import IndexDir, MetadataStore, Record, SearchBackend, backend_class
from ..listing import paused_gc
from ..model.bundle import ModelBundle
from ..model.embed import Embedder
from ..model.sizing import resolve_image_size
from ..results import Embedded, IndexReport
from ..stamps import stamps_of
from . import pipeline
from .checkpoint import IngestCheckpoint, fingerprint

log = logging.getLogger(__name__)


def index_catalog(
    catalog: Catalog | str | os.PathLike[str],
    index_dir: str | os.PathLike[str] = DEFAULT_INDEX_DIR,
    *,
    manifest: str | os.PathLike[str] | None = None,
    embed: EmbedConfig | None = None,
    run: RunConfig | None = None,
    options: IndexConfig | None = None,
    model: str | os.PathLike[str] | None = None,
    resume: bool = False,
    confine_paths: bool = False,
    columns: Columns | None = None,
    ray: str | None = None,
    ray_workers: int | None = None,
) -> IndexReport:
    """Embed every image of ``catalog`` and publish a new index generation at ``index_dir``.

    Catalogs larger than ``options.checkpoint_every`` images save their progress as they go;
    after a crash, ``resume=True`` continues where the saved progress ends and gives exactly
    the items of an uninterrupted run.

    ``model``: a folder written by ``stylesearch train``; its style recipe, trained
    projection and head are used (``embed`` must then be left out or match it).

    Unreadable images are skipped and reported. A failure before publishing leaves any
    index already at ``index_dir`` exactly as it was. ``confine_paths``: see
    :func:`~stylesearch.catalog.load_catalog` (``confine``); ``columns``: which manifest
    columns hold the path, id and label (:class:`~stylesearch.catalog.Columns`).

    ``ray``: embed on Ray (``"local"`` starts an instance on 127.0.0.1, else a cluster
    address) with ``ray_workers`` actors; see :mod:`stylesearch.ingest.ray`. The vectors are
    the local path's; a Ray run is not checkpointed (``resume`` does not apply).
    """
    t0 = time.perf_counter()
    stages: dict[str, float] = {}
    options = options or IndexConfig()
    backend_type = backend_class(options.store)  # an unknown or malformed store fails before any work
    with pipeline.stage(stages, "catalog"):
        if not isinstance(catalog, Catalog):
            catalog = load_catalog(catalog, manifest, confine=confine_paths, columns=columns)
    items = catalog.items
    with pipeline.stage(stages, "load_model"):
        if model is None:  # a trained model brings its own size
            embed = resolve_image_size(embed or EmbedConfig(), [item.path for item in items])
        trained, embedder = _load_model(model, embed, run)
    if not items:
        raise CatalogError(
            f"the catalog has no image to index; {len(catalog.skipped)} file(s) were left out:\n"
            + pipeline.reasons([(s.path, s.reason) for s in catalog.skipped])
        )
    sources = [item.path for item in items]
    if embedder.needs_calibration:  # --precision int8: quantised on the catalog's own photos
        if ray is not None:
            raise ConfigError("--precision int8 is not available with --ray yet: index without --ray")
        with pipeline.stage(stages, "calibrate"):
            embedder.calibrate(sources)
    with pipeline.stage(stages, "embed"):
        if ray is not None:
            from . import ray as ray_distributor

            done = ray_distributor.embed_catalog(embedder, items, options, stages, ray, ray_workers)
            checkpoint = None
        else:
            checkpoint = _checkpoint(embedder, catalog, options, index_dir, model, resume)
            done = pipeline.run(embedder, sources, options, stages, checkpoint, resume)
    stages["embed"] -= stages.get("fit_projection", 0.0)
    skipped = list(catalog.skipped) + [Skipped(_relative(items[p].path, catalog.root), reason) for p, reason in done.failures]
    with pipeline.stage(stages, "build_index"):
        backend, built = backend_type.build(options.store, np.arange(len(done.positions), dtype=np.int64), done.values, options)
        log.info("index: %s", built)
    embedded = [items[p] for p in done.positions.tolist()]
    records, labels = _write(index_dir, embedder, trained, backend, embedded, stages, done)
    if checkpoint is not None:
        checkpoint.clear()  # published: nothing left to resume
    return IndexReport(str(index_dir), len(records), skipped, len(records), labels, time.perf_counter() - t0, stages)


def _load_model(
    model: str | os.PathLike[str] | None, embed: EmbedConfig | None, run: RunConfig | None
) -> tuple[ModelBundle | None, Embedder]:
    """The trained model of ``model`` (checked against its embedder) and its embedder, or an
    untrained embedder of ``embed``."""
    if model is None:
        return None, Embedder(embed or EmbedConfig(), run)
    trained = ModelBundle.load_trained(Path(model), embed)
    embedder = Embedder.from_bundle(trained, run)
    trained.check(embedder.weights_id, embedder.raw_dim, str(model))
    return trained, embedder


def _write(
    index_dir: str | os.PathLike[str],
    embedder: Embedder,
    trained: ModelBundle | None,
    backend: SearchBackend,
    embedded: list[Item],
    stages: dict[str, float],
    done: Embedded,
) -> tuple[list[Record], dict[str, int]]:
    """Publish the built ``backend`` (vid ``i`` is ``embedded[i]``) with the embedder's model
    bundle and the items' records, file stamps (made by the decoders; read afresh where a
    pass kept none: Ray, a resumed build) and copy signatures (when the pass kept them);
    (the records, the label counts)."""
    records = records_of(embedded)
    signatures = done.signatures
    with pipeline.stage(stages, "stamp"):  # what each file was, for a later sync
        made = done.stamps or [None] * len(embedded)
        stamps = [(vid, *s) for vid, s in enumerate(made) if s is not None]
        stamps += stamps_of([(vid, embedded[vid].path) for vid, s in enumerate(made) if s is None])
    assert embedder.projection is not None
    head = None if trained is None else trained.head
    bundle = ModelBundle(
        embedder.config, embedder.weights_id, embedder.projection, head, embedder.tuned, embedder.runtime.artefact
    )
    folder = IndexDir(index_dir)
    previous = _live_manifest(folder)
    with pipeline.stage(stages, "write"), folder.lock():

        def write_metadata(meta: MetadataStore) -> None:
            meta.add(records)
            meta.set_stamps(stamps)
            if signatures is not None:
                meta.set_signatures([r.vid for r in records], signatures)

        snapshot = publish(folder, bundle, backend, write_metadata, computed_by=embedder.describe_runtime())
        labels = snapshot.labels()
        snapshot.close()
    backend.after_publish(previous)
    return records, labels


def records_of(items: list[Item]) -> list[Record]:
    """The metadata records of ``items`` (vid ``i`` is ``items[i]``), made in bulk."""
    with paused_gc():
        return [Record(vid, item.id, path_text(item.path), item.label, item.attributes) for vid, item in enumerate(items)]


def _checkpoint(
    embedder: Embedder,
    catalog: Catalog,
    options: IndexConfig,
    index_dir: str | os.PathLike[str],
    model: str | os.PathLike[str] | None,
    resume: bool,
) -> IngestCheckpoint | None:
    """A checkpoint for catalogs larger than ``options.checkpoint_every`` (or to resume),
    keyed by everything that decides the vectors."""
    if len(catalog.items) <= options.checkpoint_every and not resume:
        return None
    key = fingerprint(
        [
            json.dumps(embedder.config.to_dict(), sort_keys=True),
            embedder.weights_id,
            str(options.seed),
            str(options.pca_sample),
        ]
        + [str(model or "")]
        + [f"{item.id}\t{item.path}" for item in catalog.items]
    )
    return IngestCheckpoint(Path(index_dir), key)


def _live_manifest(folder: IndexDir) -> dict | None:
    """The live generation's manifest, if there is a readable one."""
    try:
        return folder.manifest()
    except (StyleSearchError, OSError, ValueError):
        return None


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)
