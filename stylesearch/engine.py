"""StyleSearch: the one place that joins catalog, model and index.

``index_catalog`` builds an index from a catalog; :class:`StyleSearch` opens one and answers
same-style queries, kNN style classification, and adds / removes items with crash-safe writes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, overload

import numpy as np
from PIL import Image

from . import __version__
from .catalog import NOT_UTF8, Catalog, Item, Skipped, is_utf8, load_catalog, printable
from .checkpoint import IngestCheckpoint, fingerprint
from .config import EmbedConfig, IndexConfig, RunConfig
from .errors import (
    CatalogError,
    ConfigError,
    DuplicateItemError,
    ImageError,
    IndexCorruptError,
    IndexMismatchError,
    StyleSearchError,
)
from .images import ImageInput
from .index import IndexDir, MetadataStore, Record, VectorStore, knn_vote
from .index.builder import build_store
from .index.layout import MANIFEST_FILE, write_json
from .index.metadata import METADATA_FILE, WhereValue
from .index.milvus_store import MilvusStore, MilvusTarget
from .index.store import DEFAULT_INDEX_KEY
from .model.backbones import TUNED_FILE, TunedBlocks
from .model.embed import Embedder
from .model.heads import StyleHead
from .model.style import Projection

log = logging.getLogger(__name__)

FORMAT = "stylesearch-index"
FORMAT_VERSION = 1
MODEL_DIR = "model"
PROJECTION_FILE = f"{MODEL_DIR}/projection.npz"
CLASSIFY_METHODS = ("knn", "linear", "both")
DEFAULT_INDEX_DIR = Path("indexes/default")
DEFAULT_MIN_CONFIDENCE = 0.35
Where = Mapping[str, WhereValue] | None


# --------------------------------------------------------------------------- results


@dataclass
class Hit:
    """One indexed item returned by a search; ``score`` is cosine similarity."""

    id: str
    score: float
    label: str | None
    path: str
    attributes: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class QueryResult:
    image: str
    results: list[Hit]

    def to_dict(self) -> dict[str, Any]:
        return {"image": self.image, "results": [h.to_dict() for h in self.results]}


@dataclass
class Classification:
    """The answer for one image. ``label`` is ``None`` ("unknown") when ``confidence`` is
    below the threshold. ``method`` says what decided: ``knn``, ``linear`` or ``both``
    (their scores averaged); with ``both``, a label that only kNN knows (added after the head
    was trained: a cold-start label) is decided by kNN. ``knn`` / ``linear`` hold each
    method's own answer when it ran."""

    image: str
    label: str | None
    confidence: float
    scores: dict[str, float]
    neighbors: list[Hit]
    method: str = "knn"
    knn: dict[str, Any] | None = None
    linear: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
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


@contextlib.contextmanager
def _stage(stages: dict[str, float], name: str) -> Iterator[None]:
    """Add the wall time of the block to ``stages[name]`` (seconds)."""
    start = time.perf_counter()
    try:
        yield
    finally:
        stages[name] = stages.get(name, 0.0) + time.perf_counter() - start


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _generation_number(gen: Path) -> int:
    """``gen-000042`` → 42: generations are numbered in the order they were published."""
    return int(gen.name.rpartition("-")[2])


def _describe(image: ImageInput, position: int) -> str:
    if isinstance(image, (str, os.PathLike)):
        return str(image)
    return f"<image {position + 1}>"


# --------------------------------------------------------------------------- building


def _embed_catalog(
    embedder: Embedder,
    items: Sequence[Item],
    options: IndexConfig,
    stages: dict[str, float],
    checkpoint: IngestCheckpoint | None = None,
    resume: bool = False,
) -> tuple[np.ndarray, np.ndarray, list[tuple[int, str]]]:
    """Embed ``items`` streaming; the projection is fitted on a seeded random sample that is
    embedded first. With a ``checkpoint``, progress is saved every
    ``options.checkpoint_every`` images and ``resume`` continues from the saved progress.
    Returns (ok positions int64 [M] in catalog order, vectors float32 [M, D], failures)."""
    n = len(items)
    sample, rest = fit_sample(n, embedder, options)
    fit_n = len(sample)
    order = np.concatenate([sample, rest])  # the fit sample first, then the rest in catalog order
    vectors: np.ndarray | None = None
    ok = np.zeros(n, bool)
    failures: list[tuple[int, str]] = []
    fit_positions: list[int] = []
    fit_raw: list[np.ndarray] = []
    late_positions: list[int] = []
    late_raw: list[np.ndarray] = []
    pending: tuple[list[int], list[np.ndarray]] = ([], [])
    seen = saved = 0

    def store(positions: Sequence[int], projected: np.ndarray, *, record: bool = True) -> None:
        nonlocal vectors
        if vectors is None:
            vectors = np.zeros((n, projected.shape[1]), np.float32)
        vectors[list(positions)] = projected
        ok[list(positions)] = True
        if record:
            pending[0].extend(positions)
            pending[1].append(projected)

    def save(force: bool = False) -> None:
        nonlocal saved
        if checkpoint is None or embedder.projection is None or (not force and seen - saved < options.checkpoint_every):
            return
        dim = embedder.projection.dim
        chunk = np.concatenate(pending[1]) if pending[1] else np.zeros((0, dim), np.float32)
        checkpoint.save(seen, np.array(pending[0], np.int64), chunk, failures, embedder.projection)
        pending[0].clear()
        pending[1].clear()
        saved = seen

    if checkpoint is not None:
        progress = checkpoint.start(resume)
        if progress.seen:
            embedder.projection = progress.projection
            seen = saved = progress.seen
            failures = list(progress.failures)
            for chunk_positions, chunk_vectors in zip(progress.positions, progress.vectors):
                if len(chunk_positions):
                    store(chunk_positions.tolist(), chunk_vectors, record=False)
            log.info("resuming: %d of %d images already done", seen, n)
    start = seen
    for batch in embedder.iter_raw([items[i].path for i in order[start:]], project=True):
        catalog_positions = [int(order[start + p]) for p in batch.positions]
        failures += [(int(order[start + p]), reason) for p, reason in batch.failures]
        seen += len(batch.positions) + len(batch.failures)
        if batch.projected:
            if catalog_positions:
                store(catalog_positions, batch.raw)
        elif embedder.projection is None:
            # exactly the sample fits the projection; other images in the same batch wait for it
            in_sample = np.array([start + p < fit_n for p in batch.positions], bool)
            fit_positions += [c for c, s in zip(catalog_positions, in_sample) if s]
            fit_raw.append(batch.raw[in_sample])
            late_positions += [c for c, s in zip(catalog_positions, in_sample) if not s]
            late_raw.append(batch.raw[~in_sample])
            if seen >= fit_n and fit_positions:
                with _stage(stages, "fit_projection"):
                    fit_projection(embedder, fit_raw)
                store(fit_positions, embedder.project(np.concatenate(fit_raw)))
                if late_positions:
                    store(late_positions, embedder.project(np.concatenate(late_raw)))
                fit_raw.clear()
                late_raw.clear()
        elif catalog_positions:
            store(catalog_positions, embedder.project(batch.raw))
        save()
    if embedder.projection is None and (fit_positions or late_positions):
        fit = fit_raw if fit_positions else late_raw  # every sampled image failed: fit on the others
        with _stage(stages, "fit_projection"):
            fit_projection(embedder, fit)
        for positions_, raw_ in ((fit_positions, fit_raw), (late_positions, late_raw)):
            if positions_:
                store(positions_, embedder.project(np.concatenate(raw_)))
    if vectors is None or not ok.any():
        raise CatalogError(f"none of the {n} catalog images could be read; see the skipped list for the reasons")
    save(force=True)
    positions = np.flatnonzero(ok)
    return positions, vectors[positions], sorted(failures)


def fit_sample(n: int, embedder: Embedder, options: IndexConfig) -> tuple[np.ndarray, np.ndarray]:
    """(the catalog positions the PCA is fitted on — ``options.pca_sample`` of them, seeded,
    spread over the catalog, sorted — and every other position, sorted). Every image fits
    for ``dim 0``."""
    fit_n = n if embedder.config.dim == 0 else min(n, options.pca_sample)
    sample = np.sort(np.random.default_rng(options.seed).choice(n, size=fit_n, replace=False))
    return sample, np.setdiff1d(np.arange(n), sample, assume_unique=True)


def fit_projection(embedder: Embedder, raw_batches: list[np.ndarray]) -> None:
    """Give ``embedder`` the PCA projection of these raw statistics (identity for ``dim 0``);
    the local path and :mod:`stylesearch.ray_ingest` fit the same way."""
    raw = np.concatenate(raw_batches)
    dim = embedder.config.dim
    if dim == 0:
        embedder.projection = Projection.identity(raw.shape[1])
        return
    t0 = time.perf_counter()
    embedder.projection = Projection.fit_pca(raw, dim)
    if embedder.projection.dim < dim:
        log.info(
            "only %d images to fit the projection: style vectors have %d dims, not %d", raw.shape[0], embedder.projection.dim, dim
        )
    log.info(
        "fitted PCA %d -> %d on %d images in %.1f s",
        raw.shape[1],
        embedder.projection.dim,
        raw.shape[0],
        time.perf_counter() - t0,
    )


def _manifest(embedder: Embedder, store: VectorStore, meta: MetadataStore, created: str | None = None) -> dict[str, Any]:
    assert embedder.projection is not None
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "stylesearch_version": __version__,
        "embed": embedder.config.to_dict(),
        "weights_id": embedder.weights_id,
        "raw_dim": embedder.raw_dim,
        "dim": embedder.projection.dim,
        "projection": {"kind": embedder.projection.kind, "file": PROJECTION_FILE},
        "metric": "inner_product",
        "normalized": True,
        **store.manifest_entries(),
        "items": len(store),
        "labels": meta.label_counts(),
        "created": created or _now(),
        "updated": _now(),
    }


def _write_generation(
    gen: Path,
    embedder: Embedder,
    store: VectorStore,
    meta: MetadataStore,
    head: StyleHead | None,
    created: str | None = None,
) -> dict[str, Any]:
    """Write everything but the metadata (already at ``gen/metadata.sqlite``) into ``gen``."""
    assert embedder.projection is not None
    (gen / PROJECTION_FILE).parent.mkdir(parents=True, exist_ok=True)
    embedder.projection.save(gen / PROJECTION_FILE)
    if head is not None:
        head.save(gen / MODEL_DIR)
    if embedder.tuned is not None:
        embedder.tuned.save(gen / MODEL_DIR / TUNED_FILE)
    store.save(gen)
    if meta.count() != len(store):
        raise IndexCorruptError(f"internal error: {meta.count()} metadata rows for {len(store)} vectors; nothing was written")
    store.sync(meta)  # an external engine (Milvus) learns the generation's changes
    manifest = _manifest(embedder, store, meta, created)
    manifest["head"] = None if head is None else {"kind": head.kind, "labels": head.labels}
    manifest["tuned_backbone"] = (
        None if embedder.tuned is None else {"file": f"{MODEL_DIR}/{TUNED_FILE}", "stages": list(embedder.tuned.stages)}
    )
    write_json(gen / MANIFEST_FILE, manifest)
    return manifest


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
    :func:`~stylesearch.catalog.load_catalog` (``confine``).

    ``ray``: embed on Ray (``"local"`` starts an instance on 127.0.0.1, else a cluster
    address) with ``ray_workers`` actors; see :mod:`stylesearch.ray_ingest`. The vectors are
    the local path's; a Ray run is not checkpointed (``resume`` does not apply).
    """
    t0 = time.perf_counter()
    stages: dict[str, float] = {}
    options = options or IndexConfig()
    with _stage(stages, "catalog"):
        if not isinstance(catalog, Catalog):
            catalog = load_catalog(catalog, manifest, confine=confine_paths)
    head: StyleHead | None = None
    with _stage(stages, "load_model"):
        if model is not None:
            embed, projection, head, tuned = _load_trained(Path(model), embed)
            embedder = Embedder(embed, run, projection, tuned)
            _check_weights(embedder, _read_model_json(Path(model)), str(model))
        else:
            embedder = Embedder(embed or EmbedConfig(), run)
    checkpoint = None
    if ray is None and (len(catalog.items) > options.checkpoint_every or resume):
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
        checkpoint = IngestCheckpoint(Path(index_dir), key)
    with _stage(stages, "embed"):
        if ray is not None:
            from . import ray_ingest

            positions, vectors, failures = ray_ingest.embed_catalog(embedder, catalog.items, options, stages, ray, ray_workers)
        else:
            positions, vectors, failures = _embed_catalog(embedder, catalog.items, options, stages, checkpoint, resume)
    stages["embed"] -= stages.get("fit_projection", 0.0)
    skipped = list(catalog.skipped) + [Skipped(_relative(catalog.items[p].path, catalog.root), reason) for p, reason in failures]
    with _stage(stages, "build_index"):
        store: VectorStore
        if options.store == "faiss":
            store, build = build_store(
                np.arange(len(positions), dtype=np.int64),
                vectors,
                index_type=options.index_type,
                max_memory=options.max_memory,
                recall_target=options.recall_target,
                vector_dtype=options.vector_dtype,
                seed=options.seed,
            )
            log.info("index: %s", build.to_dict())
        else:  # a new collection per full build; the old one is dropped once this is live
            target = MilvusTarget.parse(options.store)
            store = MilvusStore(vectors.shape[1], target, f"{target.base_name}_{time.time_ns() // 1_000_000}")
            store.add(np.arange(len(positions), dtype=np.int64), vectors)
    records = [
        Record(vid, catalog.items[p].id, str(catalog.items[p].path), catalog.items[p].label, catalog.items[p].attributes)
        for vid, p in enumerate(positions.tolist())
    ]
    folder = IndexDir(index_dir)
    replaced = _milvus_collection(folder)
    with _stage(stages, "write"), folder.lock(), folder.new_generation() as gen:
        meta = MetadataStore(gen / METADATA_FILE)
        try:
            meta.add(records)
            _write_generation(gen, embedder, store, meta, head)
            labels = meta.label_counts()
        finally:
            meta.close()
    if checkpoint is not None:
        checkpoint.clear()  # published: nothing left to resume
    if replaced is not None and isinstance(store, MilvusStore) and replaced[0] == store.target.uri:
        store.drop(replaced[1])
    return IndexReport(str(index_dir), len(records), skipped, len(records), labels, time.perf_counter() - t0, stages)


def _milvus_collection(folder: IndexDir) -> tuple[str, str] | None:
    """(uri, collection) of the live generation's Milvus store, if it has one."""
    try:
        info = folder.manifest().get("store") or {}
    except (StyleSearchError, OSError, ValueError):
        return None
    return (info["uri"], info["collection"]) if "uri" in info and "collection" in info else None


def _read_model_json(folder: Path) -> dict[str, Any]:
    from .model.train import MODEL_FILE, MODEL_FORMAT

    try:
        info = json.loads((folder / MODEL_FILE).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(
            f"{str(folder)!r} is not a trained model folder ({exc}): run 'stylesearch train ... --out DIR'"
        ) from exc
    if info.get("format") != MODEL_FORMAT:
        raise ConfigError(f"{str(folder)!r} is not a stylesearch model (format {info.get('format')!r})")
    return info


def _load_trained(
    folder: Path, embed: EmbedConfig | None
) -> tuple[EmbedConfig, Projection, StyleHead | None, TunedBlocks | None]:
    """The recipe, trained projection, head and tuned backbone blocks of a ``stylesearch train`` folder."""
    from .model.train import PROJECTION_FILE as MODEL_PROJECTION

    info = _read_model_json(folder)
    trained = EmbedConfig.from_dict(info["embed"])
    if embed is not None and embed != trained:
        raise IndexMismatchError(
            f"the model in {str(folder)!r} was trained with {trained.to_dict()}; drop the style options "
            "or train a model with them"
        )
    return trained, Projection.load(folder / MODEL_PROJECTION), StyleHead.load(folder), TunedBlocks.load(folder / TUNED_FILE)


def _check_weights(embedder: Embedder, info: dict[str, Any], where: str) -> None:
    if embedder.weights_id != info.get("weights_id"):
        raise IndexMismatchError(
            f"{where} was built with weights {info.get('weights_id')!r} but {embedder.config.backbone} now "
            f"loads {embedder.weights_id!r}; rebuild it"
        )


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


# --------------------------------------------------------------------------- the engine


@dataclass
class _State:
    """Everything read from one generation; swapped as a whole after a write."""

    gen: Path
    manifest: dict[str, Any]
    store: VectorStore
    meta: MetadataStore


class StyleSearch:
    """An opened index. Use :meth:`open`."""

    def __init__(self, index_dir: Path, embedder: Embedder, state: _State, head: StyleHead | None = None) -> None:
        self.index_dir = IndexDir(index_dir)
        self.embedder = embedder
        self.head = head
        self._state = state
        self._write_lock = threading.Lock()
        self._state_lock = threading.Lock()  # one thread loads a new generation; swaps only go forward
        self.min_confidence = DEFAULT_MIN_CONFIDENCE

    # ---------------------------------------------------------------- opening

    @classmethod
    def open(
        cls,
        index_dir: str | os.PathLike[str] = DEFAULT_INDEX_DIR,
        *,
        run: RunConfig | None = None,
        expect: EmbedConfig | None = None,
    ) -> StyleSearch:
        """Open the live generation of ``index_dir``. ``expect``: the embedding config the
        caller means to use; a different one in the index raises :class:`IndexMismatchError`."""
        folder = IndexDir(index_dir)
        gen = folder.current()
        manifest = folder.manifest(gen)
        if manifest.get("format") != FORMAT or manifest.get("format_version") != FORMAT_VERSION:
            raise IndexMismatchError(
                f"{str(index_dir)!r} holds index format {manifest.get('format')!r} v{manifest.get('format_version')}, "
                f"this stylesearch reads {FORMAT} v{FORMAT_VERSION}: rebuild it with 'stylesearch index'"
            )
        try:
            config = EmbedConfig.from_dict(manifest["embed"])
        except (KeyError, TypeError, ValueError) as exc:
            raise IndexCorruptError(f"manifest of {str(index_dir)!r} has no valid 'embed' section; rebuild the index") from exc
        if expect is not None and expect != config:
            diff = {k: (v, getattr(config, k)) for k, v in expect.to_dict().items() if config.to_dict()[k] != v}
            detail = ", ".join(f"{k}: asked {a!r}, index has {b!r}" for k, (a, b) in diff.items())
            raise IndexMismatchError(
                f"index {str(index_dir)!r} was built with another style model ({detail}); "
                "use the index's own settings or rebuild it"
            )
        projection = Projection.load(gen / PROJECTION_FILE)
        embedder = Embedder(config, run, projection, TunedBlocks.load(gen / MODEL_DIR / TUNED_FILE))
        _check_weights(embedder, manifest, f"index {str(index_dir)!r}")
        if projection.in_dim != embedder.raw_dim or projection.dim != manifest.get("dim"):
            raise IndexMismatchError(
                f"projection of {str(index_dir)!r} maps {projection.in_dim} -> {projection.dim} but the model "
                f"gives {embedder.raw_dim} statistics and the manifest says dim {manifest.get('dim')}; rebuild the index"
            )
        state = cls._read_state(gen, manifest)
        _accelerate(state.store, embedder)
        return cls(Path(index_dir), embedder, state, StyleHead.load(gen / MODEL_DIR))

    @staticmethod
    def _read_state(gen: Path, manifest: dict[str, Any]) -> _State:
        meta = MetadataStore(gen / METADATA_FILE)
        store: VectorStore
        if manifest.get("store"):
            store = MilvusStore.load_milvus(gen, manifest, meta)
        else:
            store = VectorStore.load(
                gen,
                dim=int(manifest["dim"]),
                vector_dtype=manifest.get("vector_dtype", "float32"),
                index_key=manifest.get("index_key", DEFAULT_INDEX_KEY),
                search_params=manifest.get("search_params") or {},
                refine=int(manifest.get("refine", 1)),
            )
        if meta.count() != len(store):
            raise IndexCorruptError(f"{gen} has {meta.count()} metadata rows but {len(store)} vectors; rebuild the index")
        return _State(gen, manifest, store, meta)

    def close(self) -> None:
        self._state.meta.close()

    def __enter__(self) -> StyleSearch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __len__(self) -> int:
        return len(self._state.store)

    # ---------------------------------------------------------------- searching

    def embed(self, images: Sequence[ImageInput]) -> np.ndarray:
        """Style vectors of ``images``: float32 [N, D], L2-normalised."""
        return self.embedder.embed(images)

    def _search(
        self,
        vectors: np.ndarray,
        k: int,
        where: Where,
        *,
        labelled: bool = False,
        exclude: Sequence[int] = (),
        purpose: str = "search",
    ) -> list[list[Hit]]:
        """Nearest items to stored-form ``vectors``, queried as the model says for ``purpose``
        (``search`` or ``classify``; see :meth:`Projection.for_query`)."""
        if k < 1:
            raise ConfigError(f"k must be at least 1, got {k}")
        if self.embedder.projection is not None:
            vectors = self.embedder.projection.for_query(np.asarray(vectors, np.float32), purpose)
        state = self._state
        scores, vids = state.store.search_where(vectors, k, state.meta, where, labelled=labelled, exclude=exclude)
        records = state.meta.by_vids(vids.ravel().tolist())
        out: list[list[Hit]] = []
        for row_scores, row_vids in zip(scores, vids):
            hits = []
            for score, vid in zip(row_scores.tolist(), row_vids.tolist()):
                rec = records.get(vid)
                if rec is not None:
                    hits.append(Hit(rec.id, round(float(score), 6), rec.label, rec.path, rec.attributes))
            out.append(hits)
        return out

    def search_vectors(self, vectors: np.ndarray, k: int = 10, where: Where = None) -> list[list[Hit]]:
        """Nearest items to style vectors already computed (float32 [N, D])."""
        return self._search(vectors, k, where)

    def count(self, where: Where = None) -> int:
        """How many items match ``where`` (all items for ``None``)."""
        vids = self._state.meta.vids_where(where)
        return len(self) if vids is None else len(vids)

    @overload
    def query(self, images: ImageInput, k: int = ..., where: Where = ...) -> QueryResult: ...  # type: ignore[overload-overlap]
    @overload
    def query(self, images: Sequence[ImageInput], k: int = ..., where: Where = ...) -> list[QueryResult]: ...

    def query(self, images: Any, k: int = 10, where: Where = None) -> QueryResult | list[QueryResult]:
        """Same-style items for one image or a list (paths, bytes or PIL images); ``where``
        keeps items whose attributes (or ``label`` / ``id``) match."""
        single, batch = _as_batch(images)
        hits = self._search(self.embed(batch), k, where)
        results = [QueryResult(_describe(img, i), h) for i, (img, h) in enumerate(zip(batch, hits))]
        return results[0] if single else results

    def similar(self, item_id: str, k: int = 10, where: Where = None) -> list[Hit]:
        """Items in the style of an indexed item (the item itself left out)."""
        state = self._state
        rec = state.meta.by_ids([item_id])[0]
        vector = state.store.get(np.array([rec.vid]))
        return self._search(vector, k, where, exclude=[rec.vid])[0]

    def recommend(self, positive: Sequence[str], negative: Sequence[str] = (), k: int = 10, where: Where = None) -> list[Hit]:
        """ "More like these, less like those": items nearest to the mean style of the
        ``positive`` items minus half the mean of the ``negative`` ones (Rocchio), the given
        items left out."""
        if not positive:
            raise ConfigError("recommend needs at least one positive item id")
        state = self._state
        pos = state.meta.by_ids(list(positive))
        neg = state.meta.by_ids(list(negative)) if negative else []
        query = state.store.get(np.array([r.vid for r in pos])).mean(0)
        if neg:
            query = query - 0.5 * state.store.get(np.array([r.vid for r in neg])).mean(0)
        norm = float(np.linalg.norm(query))
        if norm < 1e-6:
            raise ConfigError("the positive and negative items cancel out: give fewer negatives")
        vector = (query / norm).astype(np.float32)[None, :]
        return self._search(vector, k, where, exclude=[r.vid for r in pos + neg])[0]

    def browse(self, where: Where = None, limit: int = 50, offset: int = 0) -> list[Hit]:
        """Items matching ``where`` in index order, ``limit`` from ``offset`` (score 1.0)."""
        return [Hit(r.id, 1.0, r.label, r.path, r.attributes) for r in self._state.meta.page(where, limit, offset)]

    def get(self, item_id: str) -> Hit:
        rec = self._state.meta.by_ids([item_id])[0]
        return Hit(rec.id, 1.0, rec.label, rec.path, rec.attributes)

    @overload
    def classify(  # type: ignore[overload-overlap]
        self,
        images: ImageInput,
        k: int = ...,
        where: Where = ...,
        min_confidence: float | None = ...,
        method: str = ...,
        balanced: bool = ...,
    ) -> Classification: ...
    @overload
    def classify(
        self,
        images: Sequence[ImageInput],
        k: int = ...,
        where: Where = ...,
        min_confidence: float | None = ...,
        method: str = ...,
        balanced: bool = ...,
    ) -> list[Classification]: ...

    def classify(
        self,
        images: Any,
        k: int = 10,
        where: Where = None,
        min_confidence: float | None = None,
        method: str = "both",
        balanced: bool = True,
    ) -> Classification | list[Classification]:
        """Style of one image or a list. ``method``: ``knn`` (vote over the ``k`` nearest
        labelled items within ``where``), ``linear`` (the trained head) or ``both`` (the
        default; kNN alone when the index has no head). Below ``min_confidence`` (default
        :attr:`min_confidence`) the label is ``None``."""
        single, batch = _as_batch(images)
        out = self.classify_vectors(self.embed(batch), k, where, min_confidence, method, balanced)
        for i, (img, c) in enumerate(zip(batch, out)):
            c.image = _describe(img, i)
        return out[0] if single else out

    def classify_vectors(
        self,
        vectors: np.ndarray,
        k: int = 10,
        where: Where = None,
        min_confidence: float | None = None,
        method: str = "both",
        balanced: bool = True,
    ) -> list[Classification]:
        """:meth:`classify` for style vectors already computed (float32 [N, D]).
        ``balanced`` (default): divide each kNN vote by its label's item count among the
        items that may vote (see :func:`knn_vote`), so that a style with ten examples can win
        against one with hundreds; ``False`` for the plain similarity-weighted vote."""
        if method not in CLASSIFY_METHODS:
            raise ConfigError(f"classification method must be one of {', '.join(CLASSIFY_METHODS)}, got {method!r}")
        if method == "linear" and self.head is None:
            raise ConfigError(
                "this index has no trained head: train one ('stylesearch train') and index with --model, or use --method knn"
            )
        threshold = self.min_confidence if min_confidence is None else min_confidence
        probs = self.head.predict(vectors) if self.head is not None and method != "knn" else None
        state = self._state
        # the labels (and their counts) that may vote; unfiltered, the generation's manifest has them
        voters = state.meta.label_counts(where) if where else state.manifest["labels"]
        trained = self.embedder.projection.labels if self.embedder.projection is not None else ()
        # A trained model's tuned block knows only its trained labels: a vote that includes
        # labels added later (cold start) also weighs the untrained PCA block.
        purpose = "classify_new_labels" if trained and not set(voters) <= set(trained) else "classify"
        neighbours = (
            self._search(vectors, k, where, labelled=True, purpose=purpose) if method != "linear" else [[] for _ in vectors]
        )
        counts = voters if balanced else None
        out = []
        for row, hits in enumerate(neighbours):
            knn_scores: dict[str, float] | None = None
            linear_scores: dict[str, float] | None = None
            if method != "linear":
                knn_scores = knn_vote([h.label or "" for h in hits], np.array([h.score for h in hits]), 0.0, counts).scores
            if probs is not None and self.head is not None:
                linear_scores = _head_scores(self.head.labels, probs[row], voters)
            if knn_scores is not None and linear_scores is not None:
                knn_top = next(iter(knn_scores), None)
                if knn_top is not None and knn_top not in linear_scores:
                    decided, chosen = "knn", knn_scores  # a cold-start label the head never saw
                else:
                    decided = "both"
                    names = set(knn_scores) | set(linear_scores)
                    chosen = {n: (knn_scores.get(n, 0.0) + linear_scores.get(n, 0.0)) / 2 for n in names}
            elif knn_scores is not None:
                decided, chosen = "knn", knn_scores
            else:
                assert linear_scores is not None
                decided, chosen = "linear", linear_scores
            scores = dict(sorted(chosen.items(), key=lambda kv: (-kv[1], kv[0])))
            label, confidence = next(iter(scores.items()), (None, 0.0))
            out.append(
                Classification(
                    "",
                    label if confidence >= threshold else None,
                    round(confidence, 6),
                    _rounded(scores),
                    hits,
                    decided,
                    _answer(knn_scores),
                    _answer(linear_scores),
                )
            )
        return out

    # ---------------------------------------------------------------- writing

    def add(
        self,
        images: ImageInput | Sequence[ImageInput],
        *,
        labels: str | None | Sequence[str | None] = None,
        ids: Sequence[str] | None = None,
        attributes: Mapping[str, str] | Sequence[Mapping[str, str]] | None = None,
    ) -> IndexReport:
        """Embed and add images (a label, ids and attributes for all or one per image).

        Undecodable images are skipped and reported; the rest is published as a new
        generation. Items with a new label are classifiable at once (kNN, no retraining).
        """
        t0 = time.perf_counter()
        _, batch = _as_batch(images)
        n = len(batch)
        label_list = _per_item(labels, n, "labels")
        attr_list = [dict(a) for a in _per_item(attributes or {}, n, "attributes")]
        id_list = list(ids) if ids is not None else [_default_id(img) for img in batch]
        if len(id_list) != n:
            raise ConfigError(f"{len(id_list)} ids for {n} images")
        # a file whose name is not UTF-8 is rejected (with its default id); given ids must be
        named = [i for i, img in enumerate(batch) if not isinstance(img, (str, os.PathLike)) or is_utf8(str(img))]
        if not all(is_utf8(id_list[i]) for i in (named if ids is None else range(n))):
            raise ConfigError("ids must be valid UTF-8 text")
        self._check_new_ids([id_list[i] for i in named])  # before the slow part

        good, vectors, failures = self.embedder.embed_lenient([batch[i] for i in named])
        good = [named[i] for i in good]
        failures = [(named[i], reason) for i, reason in failures]
        failures += [(i, NOT_UTF8) for i in sorted(set(range(n)) - set(named))]
        skipped = [Skipped(printable(_describe(batch[i], i)), reason) for i, reason in sorted(failures)]
        if not good:
            raise ImageError("no image could be added: " + "; ".join(f"{s.path}: {s.reason}" for s in skipped))
        self.add_vectors(
            vectors,
            [id_list[i] for i in good],
            [batch[i] for i in good],
            [label_list[i] for i in good],
            [attr_list[i] for i in good],
        )
        return IndexReport(
            str(self.index_dir.root), len(good), skipped, len(self), self._state.manifest["labels"], time.perf_counter() - t0
        )

    def reindex(self, index_type: str = "auto", *, max_memory: int | None = None, recall_target: float = 0.95) -> dict[str, Any]:
        """Rebuild the FAISS index as ``index_type`` from the stored raw vectors (no
        re-embedding), tune its search parameter, drop tombstones; publish it as a new
        generation. Returns what was built."""
        IndexConfig(index_type=index_type, recall_target=recall_target)  # validates both
        with self._write_lock, self.index_dir.lock():
            self.refresh()
            old = self._state.store
            store, info = build_store(
                old.ids,
                old.vectors.astype(np.float32),
                index_type=index_type,
                max_memory=max_memory,
                recall_target=recall_target,
                vector_dtype=str(old.vector_dtype),
            )
            self._publish(store, lambda meta: None)
        return info.to_dict()

    def _check_new_ids(self, ids: Sequence[str]) -> None:
        if len(set(ids)) != len(ids):
            raise ConfigError("item ids of one add must be different; pass ids explicitly")
        taken = self._state.meta.existing_ids(list(ids))
        if taken:
            raise DuplicateItemError(f"item id {taken[0]!r} is already in the index: pass another id or remove it first")

    def remove(self, ids: Sequence[str]) -> int:
        """Remove items by id (all or none: an unknown id raises). Returns how many."""
        ids = list(ids)
        if not ids:
            return 0
        with self._write_lock, self.index_dir.lock():
            self.refresh()
            records = self._state.meta.by_ids(ids)
            store = self._state.store.copy()
            store.remove(np.array([r.vid for r in records], np.int64))
            self._publish(store, lambda meta: meta.remove(ids))
        return len(records)

    def refresh(self) -> bool:
        """Pick up a generation that another process (or engine) published since this one
        was opened; returns whether it changed. Costs one small file read when nothing did."""
        if self.index_dir.current() == self._state.gen:
            return False
        with self._state_lock:  # concurrent requests wait for one load instead of each doing it
            for attempt in range(5):
                gen = self.index_dir.current()
                if _generation_number(gen) <= _generation_number(self._state.gen):
                    return True  # loaded (or written) by another thread meanwhile
                try:
                    state = self._read_state(gen, self.index_dir.manifest(gen))
                except (OSError, IndexCorruptError):
                    if attempt == 4:
                        raise
                    continue  # collected while being read: newer generations were published
                _accelerate(state.store, self.embedder)
                # The old state is left to the garbage collector: a reader may still be using it.
                self._state = state
                return True
        return True

    def _publish(self, store: VectorStore, change_metadata: Any) -> None:
        old = self._state
        with self.index_dir.new_generation() as gen:
            old.meta.backup_to(gen / METADATA_FILE)
            meta = MetadataStore(gen / METADATA_FILE)
            try:
                change_metadata(meta)
                manifest = _write_generation(gen, self.embedder, store, meta, self.head, old.manifest.get("created"))
            except BaseException:
                meta.close()
                raise
        final = self.index_dir.current()
        meta.close()
        # Swap in one assignment; readers holding the old state finish on it undisturbed.
        state = _State(final, manifest, store, MetadataStore(final / METADATA_FILE))
        with self._state_lock:
            if _generation_number(final) > _generation_number(self._state.gen):
                self._state = state

    def _keep_media(self, image: ImageInput, item_id: str) -> str:
        """Path recorded for an added image: the file itself, or a copy under ``media/`` for
        in-memory images (bytes or PIL)."""
        if isinstance(image, (str, os.PathLike)):
            return str(Path(image).resolve())
        media = self.index_dir.root / "media"
        media.mkdir(parents=True, exist_ok=True)
        name = hashlib.sha1(item_id.encode()).hexdigest()[:16]
        if isinstance(image, bytes):
            path = media / f"{name}.img"
            path.write_bytes(image)
        else:
            path = media / f"{name}.png"
            image.save(path, format="PNG")
        return str(path.resolve())

    # ---------------------------------------------------------------- describing

    def labels(self) -> dict[str, int]:
        return self._state.meta.label_counts()

    def attribute_values(self, limit: int = 100) -> dict[str, dict[str, int]]:
        """Per attribute key, its most common values with their item counts (for filters)."""
        return self._state.meta.attribute_values(limit)

    def embed_lenient(self, images: Sequence[ImageInput]) -> tuple[list[int], np.ndarray, list[tuple[int, str]]]:
        """Style vectors of the images that decode: (their positions, float32 [M, D],
        (position, reason) for the others)."""
        return self.embedder.embed_lenient(images)

    def add_vectors(
        self,
        vectors: np.ndarray,
        ids: Sequence[str],
        paths: Sequence[ImageInput],
        labels: Sequence[str | None],
        attributes: Sequence[Mapping[str, str]],
    ) -> None:
        """Add items whose style vectors are already computed (float32 [N, D], from
        :meth:`embed_lenient`); ``paths`` are the images (bytes are kept under ``media/``)."""
        n = len(ids)
        if not (len(vectors) == len(paths) == len(labels) == len(attributes) == n) or n == 0:
            raise ConfigError("add_vectors needs one vector, path, label and attribute set per id")
        with self._write_lock, self.index_dir.lock():
            self.refresh()
            self._check_new_ids(ids)  # again under the lock: another writer may have taken one
            state = self._state
            start = max(state.meta.max_vid(), int(state.store.ids[-1]) if len(state.store) else -1) + 1
            records = [
                Record(start + j, ids[j], self._keep_media(paths[j], ids[j]), labels[j], dict(attributes[j])) for j in range(n)
            ]
            store = state.store.copy()
            store.add(np.arange(start, start + n, dtype=np.int64), np.asarray(vectors, np.float32))
            self._publish(store, lambda meta: meta.add(records))

    def info(self) -> dict[str, Any]:
        state = self._state
        m = state.manifest
        return {
            "index": str(self.index_dir.root),
            "generation": state.gen.name,
            "items": len(state.store),
            "labels": state.meta.label_counts(),
            "attributes": state.meta.attribute_keys(),
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
            "search_backend": state.store.backend,
            "device": str(self.embedder.device),
            "created": m.get("created"),
            "updated": m.get("updated"),
            "stylesearch_version": __version__,
        }


def _head_scores(labels: Sequence[str], probs: np.ndarray, present: Mapping[str, int]) -> dict[str, float]:
    """The head's probabilities (highest first) over the labels that ``present`` has items of
    — the styles this index (within the filter) holds — renormalised; over all of the head's
    labels when it has items of none of them."""
    keep = np.array([label in present for label in labels])
    p = np.where(keep, probs, 0.0) if keep.any() else probs
    p = p / max(float(p.sum()), 1e-12)
    return {labels[int(i)]: float(p[i]) for i in np.argsort(-p) if keep[i] or not keep.any()}


def _answer(scores: Mapping[str, float] | None) -> dict[str, Any] | None:
    """One method's answer: its top label, confidence and scores (highest first)."""
    if scores is None:
        return None
    label, confidence = next(iter(scores.items()), (None, 0.0))
    return {"label": label, "confidence": round(confidence, 6), "scores": _rounded(scores)}


def _rounded(scores: Mapping[str, float]) -> dict[str, float]:
    return {k: round(float(v), 6) for k, v in scores.items()}


def _accelerate(store: VectorStore, embedder: Embedder) -> None:
    """On a CUDA device, searches run on faiss-gpu where it is installed (and the index type
    has a GPU version), else as an exact torch scan on the GPU (measured at 1M × 256 on an
    H200: 116k queries/s, against 1.9k for HNSW on 2 CPU cores; benchmarks/RESULTS.md)."""
    if embedder.device.type == "cuda" and not store.use_faiss_gpu():
        store.use_torch(str(embedder.device))


def _as_batch(images: Any) -> tuple[bool, list[ImageInput]]:
    if isinstance(images, (str, os.PathLike, bytes, Image.Image)):
        return True, [images]
    batch = list(images)
    if not batch:
        raise ConfigError("no images given")
    return False, batch


def _per_item(value: Any, n: int, what: str) -> list[Any]:
    if value is None or isinstance(value, (str, Mapping)):
        return [value] * n
    values = list(value)
    if len(values) != n:
        raise ConfigError(f"{len(values)} {what} for {n} images: give one for all or one per image")
    return values


def _default_id(image: ImageInput) -> str:
    if isinstance(image, (str, os.PathLike)):
        return Path(image).stem
    data = image if isinstance(image, bytes) else image.tobytes()
    return "img-" + hashlib.sha1(data).hexdigest()[:12]
