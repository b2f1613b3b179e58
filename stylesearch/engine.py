"""StyleSearch: the facade over one index — open, query, similar, recommend, board, classify,
add, remove, sync, reindex, refresh, info.

It joins a model (an ``Embedder`` from the index's ``ModelBundle``) with the live generation
(a ``Snapshot``); the work is done by those and the modules it imports (docs/architecture.md).
Building an index from a catalog is :func:`stylesearch.ingest.index_catalog`.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, overload

import numpy as np
import torch
from typing_extensions import Unpack

from . import calibration, changes
from ._version import __version__
from .board import Example, answer, rocchio
from .catalog import Catalog, Columns, Skipped, path_of, printable
from .classify import METHODS, decide
from .config import DEFAULT_INDEX_DIR, DEFAULT_MIN_CONFIDENCE, EmbedConfig, IndexConfig, RunConfig
from .errors import ConfigError, ImageError
from .familiarity import DEFAULT_MIN_FAMILIARITY, rounded
from .familiarity import of as familiarity_of
from .generation import check_format, load_bundle, publish
from .images import ImageInput, load_tensor
from .index import IndexDir, Snapshot, Where
from .index.arrange import Arrange, Arrangement
from .index.backends.accelerators import accelerate
from .index.duplicates import DEFAULT_THRESHOLD, NEIGHBOURS, DuplicateGroup, find_groups
from .index.filters import WhereLike
from .ingest import sync as catalog_sync
from .inputs import as_batch, describe_input
from .model.bundle import ModelBundle
from .model.embed import Embedder
from .model.explain import Explanation, explain_pair
from .model.projection import QueryPurpose
from .results import Classification, Embedded, Hit, IndexReport, QueryResult, SyncReport, as_vectors
from .typical import catalog_reference

PathLike = str | os.PathLike[str] | None
CatalogLike = Catalog | str | os.PathLike[str]


class StyleSearch:
    """An opened index. Use :meth:`open`."""

    def __init__(self, index_dir: Path, bundle: ModelBundle, embedder: Embedder, snapshot: Snapshot) -> None:
        self.index_dir = IndexDir(index_dir)
        self.bundle = bundle
        self.embedder = embedder
        self._snapshot = snapshot
        self._write_lock = threading.Lock()
        self._snapshot_lock = threading.Lock()  # one thread loads a new generation; swaps only go forward
        self.min_confidence = DEFAULT_MIN_CONFIDENCE
        self.min_familiarity = DEFAULT_MIN_FAMILIARITY

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
        check_format(manifest, repr(str(index_dir)))
        bundle = load_bundle(gen, manifest)
        bundle.expect(expect, f"index {str(index_dir)!r}")
        embedder = Embedder.from_bundle(bundle, run)
        bundle.check(embedder.weights_id, embedder.raw_dim, f"index {str(index_dir)!r}", manifest.get("dim"))
        snapshot = Snapshot.open(gen, manifest)
        accelerate(snapshot.backend, str(embedder.device))
        return cls(Path(index_dir), bundle, embedder, snapshot)

    @property
    def snapshot(self) -> Snapshot:
        """The live generation (picks up nothing new by itself: see :meth:`refresh`)."""
        return self._snapshot

    @property
    def head(self) -> Any:
        """The trained classification head, or ``None``."""
        return self.bundle.head

    def close(self) -> None:
        self._snapshot.close()

    def __enter__(self) -> StyleSearch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __len__(self) -> int:
        return len(self._snapshot)

    def embed(self, images: Sequence[ImageInput]) -> np.ndarray:
        """Style vectors of ``images``: float32 [N, D], L2-normalised (all-or-nothing)."""
        return self.embedder.embed(images)

    def embed_lenient(self, images: Sequence[ImageInput]) -> Embedded:
        """The images that decode embedded (``values`` float32 [M, D], ``novelty``), and why the others did not."""
        return self.embedder.embed_lenient(images)

    def _search(
        self,
        vectors: np.ndarray,
        k: int,
        where: WhereLike,
        *,
        labelled: bool = False,
        exclude: Sequence[int] = (),
        purpose: QueryPurpose = QueryPurpose.SEARCH,
        arrange: Arrangement | None = None,
    ) -> list[list[Hit]]:
        """Nearest items to stored-form ``vectors``, queried as the projection says for
        ``purpose`` (see :meth:`Projection.for_query`), arranged as ``arrange`` says
        (:mod:`stylesearch.index.arrange`)."""
        if k < 1:
            raise ConfigError(f"k must be at least 1, got {k}")
        vectors = self.bundle.projection.for_query(np.asarray(vectors, np.float32), purpose)
        found, groups = self._snapshot.arranged(vectors, k, where, Arrange.of(arrange), labelled=labelled, exclude=exclude)
        return [[Hit.of(r, s, g) for (s, r), g in zip(row, named)] for row, named in zip(found, groups)]

    def search_vectors(
        self, vectors: np.ndarray, k: int = 10, where: WhereLike = None, **arrange: Unpack[Arrangement]
    ) -> list[list[Hit]]:
        """Nearest items to style vectors already computed (float32 [N, D])."""
        return self._search(vectors, k, where, arrange=arrange)

    def count(self, where: WhereLike = None) -> int:
        """How many items match ``where`` (all items for ``None``)."""
        return self._snapshot.count(where)

    @overload
    def query(  # type: ignore[overload-overlap]
        self, images: ImageInput, k: int = ..., where: WhereLike = ..., **arrange: Unpack[Arrangement]
    ) -> QueryResult: ...
    @overload
    def query(
        self, images: Sequence[ImageInput], k: int = ..., where: WhereLike = ..., **arrange: Unpack[Arrangement]
    ) -> list[QueryResult]: ...

    def query(self, images: Any, k: int = 10, where: WhereLike = None, **arrange: Unpack[Arrangement]) -> Any:
        """Same-style items for one image or a list (paths, bytes or PIL images); ``where``
        keeps items whose attributes (or ``label`` / ``id``) match; ``group_by`` /
        ``group_size`` / ``diversity`` arrange them (:mod:`stylesearch.index.arrange`)."""
        single, batch = as_batch(images)
        names = [describe_input(x, i) for i, x in enumerate(batch)]
        results = self.query_vectors(self.embedder.embedded(batch), k, where, names, **arrange)
        return results[0] if single else results

    def query_vectors(
        self, vectors: np.ndarray | Embedded, k: int, where: WhereLike, names: Sequence[str], **arrange: Unpack[Arrangement]
    ) -> list[QueryResult]:
        """:meth:`query` for style vectors already computed (float32 [N, D], or the
        :class:`Embedded` of :meth:`embed_lenient`, whose novelty the familiarity uses), one name each."""
        hits = self._search(as_vectors(vectors)[0], k, where, arrange=arrange)
        hint = self._snapshot.hint(where) if where and not all(hits) else None
        nearest = None if where or arrange else np.array([h[0].score if h else -1.0 for h in hits])  # the search found them
        known = rounded(self.familiarity(vectors, nearest), len(hits))
        odd = [f is not None and f < self.min_familiarity for f in known]
        return [QueryResult(name, h, None if h else hint, f, o) for name, h, f, o in zip(names, hits, known, odd)]

    def familiarity(self, vectors: np.ndarray | Embedded, nearest: np.ndarray | None = None) -> np.ndarray | None:
        """How much each photo looks like this catalog, 0–1 (:mod:`stylesearch.familiarity`): of
        the :class:`Embedded` photos of :meth:`embed_lenient` (novelty included), or of vectors [N, D]."""
        return familiarity_of(self._snapshot, self.bundle.projection, *as_vectors(vectors), nearest=nearest)

    def similar(self, item_id: str, k: int = 10, where: WhereLike = None, **arrange: Unpack[Arrangement]) -> list[Hit]:
        """Items in the style of an indexed item (the item itself left out)."""
        records, vector = self._snapshot.vectors_of([item_id])
        return self._search(vector, k, where, exclude=[records[0].vid], arrange=arrange)[0]

    def recommend(
        self,
        positive: Sequence[str],
        negative: Sequence[str] = (),
        k: int = 10,
        where: WhereLike = None,
        **arrange: Unpack[Arrangement],
    ) -> list[Hit]:
        """ "More like these, less like those": items nearest to the mean style of the
        ``positive`` items minus half the mean of the ``negative`` ones (Rocchio), the given
        items left out — a :meth:`board` of indexed items."""
        if not positive:
            raise ConfigError("recommend needs at least one positive item id")
        return self.board(rocchio(positive, negative), k, where, **arrange)

    def board(
        self,
        examples: Sequence[Example],
        k: int = 10,
        where: WhereLike = None,
        strategy: str = "average",
        **arrange: Unpack[Arrangement],
    ) -> list[Hit]:
        """Items in the style of a mood board: weighted photos, item ids or vectors (negative ones push
        away), combined by ``strategy`` ``average`` or ``best_score`` (:mod:`stylesearch.board`)."""
        return answer(examples, k, where, strategy, arrange, embed=self.embed, snapshot=self._snapshot,
                      projection=self.bundle.projection, search=self._search)  # fmt: skip

    def duplicates(self, threshold: float = DEFAULT_THRESHOLD, k: int = NEIGHBOURS) -> list[DuplicateGroup]:
        """Groups of copies (copy score ≥ ``threshold``), largest first: :mod:`stylesearch.index.duplicates`."""
        return find_groups(self._snapshot, threshold, k)

    def explain(self, query: ImageInput, item_id: str) -> Explanation:
        """Why ``item_id`` matches ``query`` (a photo, or ``item:ID``): per style block, how much more
        alike than a typical catalog pair, and a heat map per photo (:mod:`stylesearch.model.explain`)."""
        from_item = query[len("item:") :] if isinstance(query, str) and query.startswith("item:") else None
        records = self._snapshot.meta.by_ids([from_item, item_id] if from_item is not None else [item_id])
        sources = [path_of(r.path) for r in records] if from_item is not None else [query, path_of(records[0].path)]
        images = torch.stack([load_tensor(s, self.embedder.config.image_size) for s in sources])
        return explain_pair(self.embedder, images, catalog_reference(self.embedder, self._snapshot))

    def browse(self, where: WhereLike = None, limit: int = 50, offset: int = 0) -> list[Hit]:
        """Items matching ``where`` in index order, ``limit`` from ``offset`` (score 1.0)."""
        snapshot = self._snapshot
        return [Hit.of(r) for r in snapshot.meta.page(snapshot.check(where), limit, offset)]

    def get(self, item_id: str) -> Hit:
        return Hit.of(self._snapshot.meta.by_ids([item_id])[0])

    @overload
    def classify(  # type: ignore[overload-overlap]
        self,
        images: ImageInput,
        k: int = ...,
        where: WhereLike = ...,
        min_confidence: float | None = ...,
        method: str = ...,
        prior: str = ...,
        min_familiarity: float | None = ...,
    ) -> Classification: ...
    @overload
    def classify(
        self,
        images: Sequence[ImageInput],
        k: int = ...,
        where: WhereLike = ...,
        min_confidence: float | None = ...,
        method: str = ...,
        prior: str = ...,
        min_familiarity: float | None = ...,
    ) -> list[Classification]: ...

    def classify(
        self,
        images: Any,
        k: int = 10,
        where: WhereLike = None,
        min_confidence: float | None = None,
        method: str = "both",
        prior: str = "catalog",
        min_familiarity: float | None = None,
    ) -> Classification | list[Classification]:
        """Style of one image or a list: ``knn`` (the ``k`` nearest labelled items within
        ``where``), ``linear`` (the head) or ``both``; rules: :mod:`stylesearch.classify`."""
        single, batch = as_batch(images)
        out = self.classify_vectors(self.embedder.embedded(batch), k, where, min_confidence, method, prior, min_familiarity)
        for i, (img, c) in enumerate(zip(batch, out)):
            c.image = describe_input(img, i)
        return out[0] if single else out

    def classify_vectors(
        self,
        embedded: np.ndarray | Embedded,
        k: int = 10,
        where: WhereLike = None,
        min_confidence: float | None = None,
        method: str = "both",
        prior: str = "catalog",
        min_familiarity: float | None = None,
    ) -> list[Classification]:
        """:meth:`classify` for style vectors already computed (float32 [N, D], or an :class:`Embedded`).
        ``prior``: ``catalog`` (default) or ``uniform``; the confidence is a calibrated
        probability (:mod:`stylesearch.classify`). Below ``min_familiarity``
        (default :attr:`min_familiarity`; 0 turns it off) the photo looks like nothing in the
        catalog (:meth:`familiarity`) and the label is ``None`` (reason ``out_of_catalog``)."""
        if method not in METHODS:
            raise ConfigError(f"classification method must be one of {', '.join(METHODS)}, got {method!r}")
        vectors = as_vectors(embedded)[0]
        rule = calibration.rule(self._snapshot, self.bundle.projection, prior)
        head = self.bundle.head
        if method == "linear" and head is None:
            raise ConfigError(
                "this index has no trained head: train one ('stylesearch train') and index with --model, or use --method knn"
            )
        where = Where.of(where)
        threshold = self.min_confidence if min_confidence is None else min_confidence
        probs = head.predict(vectors) if head is not None and method != "knn" else None
        voters = self._snapshot.labels(where)  # the labels (and their counts) that may vote
        if not voters and probs is None and not where:
            raise ConfigError(
                "the index has no labelled items, so nothing can vote on a style: index a labelled catalog "
                "(a folder per style, or a manifest whose style column --label-column names), or add labelled items"
            )
        trained = self.bundle.projection.labels
        # A trained model's tuned block knows only its trained labels: a vote that includes
        # labels added later (cold start) also weighs the untrained PCA block.
        purpose = QueryPurpose.CLASSIFY_NEW_LABELS if trained and not set(voters) <= set(trained) else QueryPurpose.CLASSIFY
        neighbours = self._search(vectors, k, where, labelled=True, purpose=purpose) if method != "linear" else None
        hint = (self._snapshot.hint(where) or f"no labelled item matches the filter {where.to_dict()}") if not voters else None
        known = rounded(self.familiarity(embedded), len(vectors))
        floor = self.min_familiarity if min_familiarity is None else min_familiarity
        return [
            decide(
                None if neighbours is None else neighbours[row],
                None if probs is None else probs[row],
                head.labels if head is not None else (),
                voters,
                rule=rule,
                threshold=threshold,
                familiarity=known[row],
                min_familiarity=floor,
                hint=hint,
            )
            for row in range(len(vectors))
        ]

    # ---------------------------------------------------------------- writing

    def add(
        self,
        images: ImageInput | Sequence[ImageInput],
        *,
        labels: str | None | Sequence[str | None] = None,
        ids: Sequence[str] | None = None,
        attributes: Mapping[str, str] | Sequence[Mapping[str, str]] | None = None,
    ) -> IndexReport:
        """Embed and add images (a label, ids and attributes for all or one per image); undecodable
        ones are skipped and reported. A new label is classifiable at once (kNN, no retraining)."""
        t0 = time.perf_counter()
        _, batch = as_batch(images)
        id_list, label_list, attr_list = changes.new_items(batch, labels, ids, attributes)
        changes.check_new_ids(self._snapshot.meta, id_list)  # before the slow part
        done = self.embedder.embed_lenient(batch, sign=True)
        good, vectors = done.positions.tolist(), done.values
        skipped = [Skipped(printable(describe_input(batch[i], i)), reason) for i, reason in sorted(done.failures)]
        if not good:
            raise ImageError("no image could be added: " + "; ".join(f"{s.path}: {s.reason}" for s in skipped))
        self.add_vectors(
            vectors,
            [id_list[i] for i in good],
            [batch[i] for i in good],
            [label_list[i] for i in good],
            [attr_list[i] for i in good],
            done.signatures,
        )
        snapshot = self._snapshot
        return IndexReport(
            str(self.index_dir.root), len(good), skipped, len(snapshot), snapshot.labels(), time.perf_counter() - t0
        )

    def add_vectors(
        self,
        vectors: np.ndarray,
        ids: Sequence[str],
        paths: Sequence[ImageInput],
        labels: Sequence[str | None],
        attributes: Sequence[Mapping[str, str]],
        signatures: np.ndarray | None = None,
    ) -> None:
        """Add items whose style vectors (float32 [N, D]) and copy signatures are already computed
        (:meth:`embed_lenient`); ``paths`` are the images (bytes are kept under ``media/``)."""
        change = changes.adding(self.index_dir.root, vectors, ids, paths, labels, attributes, signatures)
        self._write(change, self.embedder.describe_runtime())

    def remove(self, ids: Sequence[str]) -> int:
        """Remove items by id (all or none: an unknown id raises). Returns how many."""
        ids = list(ids)
        if not ids:
            return 0

        self._write(changes.removing(ids))
        return len(ids)

    def reindex(self, index_type: str = "auto", *, max_memory: int | None = None, recall_target: float = 0.95) -> dict[str, Any]:
        """Rebuild the FAISS index as ``index_type`` from the stored raw vectors (no
        re-embedding), tune its search parameter, drop tombstones; publish it as a new
        generation. Returns what was built."""
        IndexConfig(index_type=index_type, recall_target=recall_target)  # validates both
        built: dict[str, Any] = {}
        self._write(changes.rebuilding(index_type, max_memory, recall_target, built))
        return built

    def sync(self, catalog: CatalogLike, manifest: PathLike = None, *, columns: Columns | None = None) -> SyncReport:
        """Bring the index up to date with ``catalog`` (folder or manifest): embed new and changed
        photos, drop gone ones, apply new labels; one generation (:mod:`stylesearch.ingest.sync`)."""
        t0 = time.perf_counter()
        todo = catalog_sync.plan(catalog_sync.load(catalog, manifest, columns), self._snapshot, self.index_dir.root / "media")
        done = self.embedder.embed_lenient([str(i.path) for i in todo.embed], sign=True)
        change = changes.syncing(todo, done)
        generation = self._write(change, self.embedder.describe_runtime() if todo.embed else None) if todo.changes() else None
        return todo.report(done.failures, len(self._snapshot), time.perf_counter() - t0, generation)

    def _write(self, change: changes.Change, computed_by: str | None = None) -> int:
        """Under the write locks, on the latest generation: ``change``'s backend and metadata, published (see publish)."""
        with self._write_lock, self.index_dir.lock():
            self.refresh()
            base = self._snapshot
            backend, change_metadata = change(base)
            snapshot = publish(self.index_dir, self.bundle, backend, change_metadata, base, computed_by)
            accelerate(snapshot.backend, str(self.embedder.device))
            # Swap in one assignment; readers holding the old snapshot finish on it undisturbed.
            with self._snapshot_lock:
                if snapshot.number > self._snapshot.number:
                    self._snapshot = snapshot
        return snapshot.number

    def refresh(self) -> bool:
        """Pick up a generation that another process (or engine) published since this one
        was opened; returns whether it changed. Costs one small file read when nothing did."""
        if self.index_dir.current() == self._snapshot.gen:
            return False
        with self._snapshot_lock:  # concurrent requests wait for one load instead of each doing it
            snapshot = Snapshot.open_newer(self.index_dir, self._snapshot.number)
            if snapshot is not None:  # else loaded (or written) by another thread meanwhile
                accelerate(snapshot.backend, str(self.embedder.device))
                # The old snapshot is left to the garbage collector: a reader may still be using it.
                self._snapshot = snapshot
        return True

    # ---------------------------------------------------------------- describing

    def labels(self) -> dict[str, int]:
        return self._snapshot.meta.label_counts()

    def attribute_values(self, limit: int = 100) -> dict[str, dict[str, int]]:
        """Per attribute key, its most common values with their item counts (for filters)."""
        return self._snapshot.meta.attribute_values(limit)

    def info(self) -> dict[str, Any]:
        """What is served: the generation's description, the index folder, the device."""
        about = {"index": str(self.index_dir.root), **self._snapshot.describe(), "device": str(self.embedder.device)}
        about["engine"] = self.embedder.describe_runtime()
        return {**about, "stylesearch_version": __version__}
