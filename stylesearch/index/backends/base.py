"""The search backend protocol, and the registry of backends keyed by ``--store`` URI scheme.

A backend answers k-nearest-neighbour searches over one generation's vectors. It holds those
vectors by composition (:class:`~stylesearch.index.vectors.Vectors`: ids, raw vectors,
tombstones, saved in the generation whatever the backend) and adds its own search structure:
a FAISS index in the generation folder (``faiss``), a Milvus collection (``milvus://``,
``milvus-lite://``), or anything registered with :func:`register_backend`. A new store is one
module that subclasses :class:`SearchBackend` and registers its scheme; nothing else changes.

An accelerator (:mod:`.accelerators`: exact torch search or faiss-gpu on a CUDA device) may
answer a backend's searches in its place; the backend keeps its files and its changes.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Protocol, TypeVar

import numpy as np

from ...config import IndexConfig
from ...errors import ConfigError, IndexCorruptError
from ..filters import Where, WhereLike
from ..metadata import MetadataStore
from ..vectors import Vectors

# Built-in backends are imported when first asked for: pymilvus and faiss only where used.
_BUILTIN = {"faiss": "faiss", "milvus": "milvus", "milvus-lite": "milvus"}
_BACKENDS: dict[str, type[SearchBackend]] = {}


class Accelerator(Protocol):
    """Answers a backend's searches on other hardware (see :mod:`.accelerators`)."""

    name: str

    def handles(self, backend: SearchBackend, allowed: np.ndarray | None) -> bool: ...

    def search(
        self, backend: SearchBackend, queries: np.ndarray, k: int, allowed: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]: ...


FEW_EXCLUDED = 64  # up to this many excluded ids are dropped from a longer result list


class SearchBackend(ABC):
    """k-NN by inner product over L2-normalised vectors (cosine), keyed by int64 ids.

    Subclasses implement the hooks below the line; the public methods check inputs, keep
    :attr:`data` and call them."""

    scheme: ClassVar[str] = ""  # the --store URI scheme (``faiss``, ``milvus`` …)
    local_search: ClassVar[bool] = True  # searches run in this process (an accelerator may take them)

    def __init__(self, data: Vectors) -> None:
        self.data = data
        self.accelerator: Accelerator | None = None

    # ------------------------------------------------------------------ the vectors

    @property
    def dim(self) -> int:
        return self.data.dim

    @property
    def vector_dtype(self) -> np.dtype[Any]:
        return self.data.vector_dtype

    @property
    def ids(self) -> np.ndarray:
        """int64 [N], ascending."""
        return self.data.ids

    @property
    def vectors(self) -> np.ndarray:
        """[N, D] raw vectors (float32 or float16), in ``ids`` order."""
        return self.data.vectors

    @property
    def tombstones(self) -> np.ndarray:
        return self.data.tombstones

    def __len__(self) -> int:
        return len(self.data)

    def get(self, ids: np.ndarray) -> np.ndarray:
        """Stored vectors of ``ids`` as float32 [N, D]; KeyError for an absent id."""
        return self.data.get(ids)

    # ------------------------------------------------------------------ changes

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add float32 [N, D] vectors under new int64 ``ids`` (each larger than any present)."""
        vectors = self.data.check(vectors)
        ids = self.data.check_new_ids(ids, len(vectors))
        if len(ids) == 0:
            return
        self._index_add(ids, vectors)
        self.data.append(ids, vectors)

    def remove(self, ids: np.ndarray) -> int:
        """Remove ``ids``; returns how many were present."""
        gone = self.data.drop(ids)
        if len(gone):
            self._index_remove(gone)
        return len(gone)

    def save(self, folder: Path) -> None:
        """Write the vectors and the backend's own files into a new generation ``folder``."""
        self.data.save(folder)
        self._save_index(folder)

    # ------------------------------------------------------------------ searching

    def search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """k nearest: (scores float32 [Q, k], ids int64 [Q, k]); missing results (fewer than
        k candidates) are id -1 with score -inf. ``allowed`` restricts to those ids."""
        return self._search_allowed(self.data.check(queries), _checked_k(k), allowed)

    def search_where(
        self,
        queries: np.ndarray,
        k: int,
        meta: MetadataStore,
        where: WhereLike = None,
        *,
        labelled: bool = False,
        exclude: Sequence[int] = (),
    ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`search` among the items matching ``where`` (labelled ones only with
        ``labelled``, without the ids in ``exclude``)."""
        return self._search_where(self.data.check(queries), _checked_k(k), meta, Where.of(where), labelled, exclude)

    def _search_where(
        self, queries: np.ndarray, k: int, meta: MetadataStore, where: Where, labelled: bool, exclude: Sequence[int]
    ) -> tuple[np.ndarray, np.ndarray]:
        """The filter resolved to ids through ``meta`` (an engine that filters by itself
        overrides this)."""
        allowed = meta.vids_where(where, labelled=labelled)
        if len(exclude) and allowed is None and len(exclude) <= FEW_EXCLUDED:
            # a few more results with the excluded dropped: an id selector over every item costs
            # more than the search itself (5 ms at 100k items; benchmarks/bench_service.py --items)
            scores, ids = self._search_allowed(queries, k + len(exclude), None)
            return without(scores, ids, exclude, k)
        if len(exclude):
            base = self.ids if allowed is None else allowed
            allowed = base[~np.isin(base, np.asarray(exclude, np.int64))]
        return self._search_allowed(queries, k, allowed)

    def _search_allowed(self, queries: np.ndarray, k: int, allowed: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        if allowed is not None:
            allowed = np.ascontiguousarray(allowed, dtype=np.int64)
            if len(allowed) == 0 or len(self.data) == 0:
                return empty_result(len(queries), k)
        if self.accelerator is not None and self.accelerator.handles(self, allowed):
            return self.accelerator.search(self, queries, k, allowed)
        return self._search(queries, k, allowed)

    @property
    def name(self) -> str:
        """What this backend is (``faiss-cpu``, ``milvus-lite`` …)."""
        return self.scheme

    @property
    def backend(self) -> str:
        """What answers searches: the accelerator, if one is set, else this backend."""
        return self.accelerator.name if self.accelerator is not None else self.name

    # ------------------------------------------------------------------ hooks

    @classmethod
    def check_uri(cls, store: str) -> None:
        """Raise :class:`ConfigError` for a ``--store`` value this backend cannot use (called
        before any embedding starts)."""
        return None

    @classmethod
    @abstractmethod
    def build(
        cls, store: str, ids: np.ndarray, vectors: np.ndarray, options: IndexConfig
    ) -> tuple[SearchBackend, dict[str, Any]]:
        """A new backend for a full build: float32 [N, D] ``vectors`` under ``ids``; also what
        was built (logged and shown by ``stylesearch index``)."""

    @classmethod
    @abstractmethod
    def load(cls, folder: Path, manifest: Mapping[str, Any], meta: MetadataStore) -> SearchBackend:
        """The backend of the generation in ``folder`` (its manifest and metadata given)."""

    @abstractmethod
    def copy(self) -> SearchBackend:
        """A private copy to change, so that readers of this one are never disturbed."""

    @abstractmethod
    def manifest_entries(self) -> dict[str, Any]:
        """What the generation's manifest records about this backend; ``store`` (``None`` or
        an object whose ``kind`` is a registered scheme) says which backend reads it back."""

    @abstractmethod
    def _index_add(self, ids: np.ndarray, vectors: np.ndarray) -> None: ...

    @abstractmethod
    def _index_remove(self, ids: np.ndarray) -> None: ...

    @abstractmethod
    def _search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]: ...

    def _save_index(self, folder: Path) -> None:
        """Write the backend's own files into the generation (nothing by default)."""
        return None

    def sync(self, meta: MetadataStore) -> None:
        """Bring an external engine up to date with this generation, before it is published
        (nothing to do for a backend whose files live in the generation)."""
        return None

    def after_publish(self, previous: Mapping[str, Any] | None) -> None:
        """Called once a full build is live; ``previous``: the manifest it replaced (an
        external engine drops what only that generation used)."""
        return None


def _checked_k(k: int) -> int:
    if k < 1:
        raise ValueError("k must be >= 1")
    return k


def empty_result(queries: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    return np.full((queries, k), -np.inf, np.float32), np.full((queries, k), -1, np.int64)


def without(scores: np.ndarray, ids: np.ndarray, exclude: Sequence[int], k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the first ``k`` results whose id is not in ``exclude`` (padded as missing)."""
    keep = ~np.isin(ids, np.asarray(exclude, np.int64))
    out_scores, out_ids = empty_result(len(ids), k)
    for row in range(len(ids)):
        kept = np.flatnonzero(keep[row])[:k]
        out_scores[row, : len(kept)] = scores[row, kept]
        out_ids[row, : len(kept)] = ids[row, kept]
    return out_scores, out_ids


# ---------------------------------------------------------------------- registry

B = TypeVar("B", bound=type[SearchBackend])


def register_backend(*schemes: str) -> Callable[[B], B]:
    """Class decorator: ``@register_backend("memory")`` makes ``--store memory://…`` use it."""

    def decorate(cls: B) -> B:
        for scheme in schemes:
            _BACKENDS[scheme] = cls
        cls.scheme = cls.scheme or schemes[0]
        return cls

    return decorate


def scheme_of(store: str) -> str:
    """``milvus://host/c`` → ``milvus``; ``faiss`` → ``faiss``."""
    return store.split("://", 1)[0] if "://" in store else store


def list_backends() -> list[str]:
    return sorted(set(_BUILTIN) | set(_BACKENDS))


def _registered(scheme: str, store: str) -> type[SearchBackend]:
    if scheme not in _BACKENDS and scheme in _BUILTIN:
        importlib.import_module(f"{__package__}.{_BUILTIN[scheme]}")
    cls = _BACKENDS.get(scheme)
    if cls is None:
        raise ConfigError(
            f"store {store!r}: unknown store; use faiss, milvus://HOST:PORT/COLLECTION or milvus-lite:///path/file.db "
            f"(registered: {', '.join(list_backends())})"
        )
    return cls


def backend_class(store: str) -> type[SearchBackend]:
    """The backend registered for ``store``'s scheme, with the URI checked; :class:`ConfigError`
    naming the known schemes otherwise."""
    cls = _registered(scheme_of(store), store)
    cls.check_uri(store)
    return cls


def load_backend(folder: Path, manifest: Mapping[str, Any], meta: MetadataStore) -> SearchBackend:
    """The backend a generation's manifest names (``store``: ``None`` for FAISS)."""
    info = manifest.get("store") or {}
    if not isinstance(info, Mapping):
        raise IndexCorruptError(f"the manifest in {str(folder)!r} has a bad 'store' section; rebuild the index")
    scheme = str(info.get("kind", "faiss"))
    try:
        cls = _registered(scheme, scheme)
    except ConfigError as exc:
        raise IndexCorruptError(f"{folder} was written by store {scheme!r}, which is not available here: {exc}") from exc
    return cls.load(folder, manifest, meta)
