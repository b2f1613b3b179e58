"""Milvus as the vector store: ``--store milvus://HOST:PORT/COLLECTION`` (a Milvus cluster)
or ``--store milvus-lite:///path/file.db`` (embedded Milvus Lite: tests, small deployments).

:class:`MilvusBackend` is a :class:`~stylesearch.index.backends.base.SearchBackend` whose searches
run in a Milvus collection: one row per item — ``vid`` (primary key), ``vector`` (float, inner
product), ``item_id``, ``label`` and ``attributes`` (JSON) — so filters (``where``) run inside
Milvus as a boolean expression instead of an id list. The index folder keeps everything else
as for FAISS (the generation's manifest, metadata, projection, and the raw vectors, which
``get``/``similar``/``recommend`` read and ``reindex`` can move back to FAISS).

Consistency: a write changes the collection while its generation is being written, before it
is published; if the write then fails, the collection is ahead of the live generation. Every
open compares the two and mends the collection (deletes rows the generation does not have,
inserts the ones it lacks), so the generation on disk stays the truth. A full ``index`` run
writes a new collection (``<name>_<generation>``) and drops the old one once published.

pymilvus is imported only here (the ``milvus`` extra). Milvus Lite keeps its ``.db`` for one
process at a time: with it, run ``serve`` or the writing commands, not both at once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np

from ...config import IndexConfig
from ...errors import ConfigError, IndexCorruptError, MissingDependencyError
from ..factory import FLAT_MAX, kind_of_key
from ..filters import Where
from ..metadata import MetadataStore
from ..vectors import Vectors
from .base import SearchBackend, empty_result, register_backend

log = logging.getLogger(__name__)

UPLOAD_ROWS = 5_000
_CLIENTS: dict[str, Any] = {}  # one client per server or .db file per process (Lite allows one)
_CLIENTS_LOCK = threading.Lock()


@dataclass(frozen=True)
class MilvusTarget:
    """A parsed ``--store`` value."""

    uri: str  # what MilvusClient takes: a .db path for Lite, http://host:port for a server
    base_name: str  # collection name, before the generation suffix
    lite: bool
    shards: int = 1  # ?shards=N: a new collection's shards (a cluster's write parallelism)
    replicas: int = 1  # ?replicas=N: in-memory replicas loaded for search (query throughput, HA)

    @classmethod
    def parse(cls, value: str, index_dir: Path | None = None) -> MilvusTarget:
        parsed = urlparse(value)
        if parsed.scheme == "milvus-lite":
            path = Path((parsed.netloc + parsed.path) if parsed.netloc not in ("", "localhost") else parsed.path)
            if not path.name.endswith(".db"):
                raise ConfigError(f"--store {value!r}: a Milvus Lite file must end in .db (milvus-lite:///path/file.db)")
            name = dict(p.split("=", 1) for p in parsed.query.split("&") if "=" in p).get("collection", "stylesearch")
            return cls(str(path.resolve()), _safe_name(name), True)
        if parsed.scheme == "milvus":
            if not parsed.hostname or not parsed.path.strip("/"):
                raise ConfigError(f"--store {value!r}: use milvus://HOST:PORT/COLLECTION[?shards=N&replicas=N]")
            query = dict(p.split("=", 1) for p in parsed.query.split("&") if "=" in p)
            try:
                shards, replicas = int(query.get("shards", 1)), int(query.get("replicas", 1))
            except ValueError as exc:
                raise ConfigError(f"--store {value!r}: shards and replicas are whole numbers") from exc
            uri = f"http://{parsed.hostname}:{parsed.port or 19530}"
            return cls(uri, _safe_name(parsed.path.strip("/")), False, max(1, shards), max(1, replicas))
        raise ConfigError(f"--store {value!r}: use faiss, milvus://HOST:PORT/COLLECTION or milvus-lite:///path/file.db")


def _safe_name(name: str) -> str:
    cleaned = "".join(c if c.isalnum() or c == "_" else "_" for c in name)
    if not cleaned or not (cleaned[0].isalpha() or cleaned[0] == "_"):
        cleaned = "c_" + cleaned
    return cleaned[:200]


def _not_implemented(record: logging.LogRecord) -> bool:
    """Milvus Lite's embedded server (a thread of this process) logs an error, with a trace, for
    a call that newer clients make and that it answers "not implemented": harmless, dropped."""
    return "Method not implemented" not in record.getMessage() and "Method not implemented" not in str(record.exc_info)


def client_for(target: MilvusTarget) -> Any:
    try:
        from pymilvus import MilvusClient
    except ImportError as exc:
        raise MissingDependencyError("Milvus support is not installed: pip install 'stylesearch[milvus]'") from exc
    with _CLIENTS_LOCK:
        client = _CLIENTS.get(target.uri)
        if client is None:
            if target.lite:
                Path(target.uri).parent.mkdir(parents=True, exist_ok=True)
            if target.lite:
                logging.getLogger("grpc._server").addFilter(_not_implemented)
            client = MilvusClient(target.uri)
            _CLIENTS[target.uri] = client
        return client


def close_client(uri: str) -> None:
    """Close this process's client of ``uri`` (a Milvus Lite file can then be opened elsewhere)."""
    with _CLIENTS_LOCK:
        client = _CLIENTS.pop(str(Path(uri).resolve()) if not uri.startswith("http") else uri, None)
    if client is not None:
        client.close()


@register_backend("milvus", "milvus-lite")
class MilvusBackend(SearchBackend):
    """Raw vectors kept locally (in :attr:`data`, like every backend), searched in Milvus:
    adds and removals are queued for :meth:`sync`."""

    local_search = False  # no accelerator: Milvus searches

    def __init__(
        self,
        dim: int,
        target: MilvusTarget,
        collection: str,
        *,
        vector_dtype: str = "float32",
        milvus_index: str = "FLAT",
        data: Vectors | None = None,
    ) -> None:
        super().__init__(data if data is not None else Vectors(dim, vector_dtype))
        self.target = target
        self.collection = collection
        self.milvus_index = milvus_index  # FLAT or HNSW: what the collection was created with
        self._added = np.zeros(0, np.int64)  # vids to insert at the next sync
        self._removed = np.zeros(0, np.int64)  # vids to delete at the next sync

    @property
    def index_key(self) -> str:
        return f"Milvus {self.milvus_index}"

    @property
    def name(self) -> str:
        return "milvus-lite" if self.target.lite else "milvus"

    @classmethod
    def check_uri(cls, store: str) -> None:
        MilvusTarget.parse(store)

    @classmethod
    def build(
        cls, store: str, ids: np.ndarray, vectors: np.ndarray, options: IndexConfig
    ) -> tuple[MilvusBackend, dict[str, Any]]:
        """A new collection per full build (``<name>_<milliseconds>``); the old one is dropped
        once this one is live (:meth:`after_publish`)."""
        target = MilvusTarget.parse(store)
        backend = cls(
            vectors.shape[1], target, f"{target.base_name}_{time.time_ns() // 1_000_000}", vector_dtype=options.vector_dtype
        )
        backend.add(ids, vectors)
        return backend, {"store": backend.name, "collection": backend.collection}

    def after_publish(self, previous: Mapping[str, Any] | None) -> None:
        info = (previous or {}).get("store") or {}
        if isinstance(info, Mapping) and info.get("uri") == self.target.uri and info.get("collection"):
            self.drop(str(info["collection"]))

    def _index_add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        self._added = np.concatenate([self._added, ids])

    def _index_remove(self, gone: np.ndarray) -> None:
        self._removed = np.concatenate([self._removed, gone])
        self._added = self._added[~np.isin(self._added, gone)]

    def copy(self) -> MilvusBackend:
        return MilvusBackend(self.dim, self.target, self.collection, milvus_index=self.milvus_index, data=self.data.copy())

    # ------------------------------------------------------------------ searching

    def _search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        filt = "" if allowed is None else f"vid in [{', '.join(str(int(v)) for v in allowed)}]"
        return self._search_expression(queries, k, filt)

    def _search_where(
        self, queries: np.ndarray, k: int, meta: MetadataStore, where: Where, labelled: bool, exclude: Sequence[int]
    ) -> tuple[np.ndarray, np.ndarray]:
        """The filter runs inside Milvus, as an expression (``meta`` is not needed)."""
        return self._search_expression(queries, k, where.milvus(labelled=labelled, exclude=exclude))

    def _search_expression(self, queries: np.ndarray, k: int, filt: str) -> tuple[np.ndarray, np.ndarray]:
        scores, ids = empty_result(len(queries), k)
        if len(self.ids) == 0 or len(queries) == 0:
            return scores, ids
        params: dict[str, Any] = {"metric_type": "IP"}
        if self.milvus_index == "HNSW":
            params["params"] = {"ef": max(64, 2 * k)}
        hits = client_for(self.target).search(
            self.collection,
            data=queries.tolist(),
            limit=min(k, 16_384),
            filter=filt,
            output_fields=["vid"],
            search_params=params,
            anns_field="vector",
        )
        for row, found in enumerate(hits):
            for col, hit in enumerate(found[:k]):
                ids[row, col] = int(hit["vid"] if "vid" in hit else hit["id"])
                scores[row, col] = float(hit["distance"])
        return scores, ids

    # ------------------------------------------------------------------ persistence

    def sync(self, meta: MetadataStore) -> None:
        """Apply the vids added and removed since this store was loaded (or all of them, for
        a new collection) to Milvus, with their item ids, labels and attributes from ``meta``."""
        client = client_for(self.target)
        if not client.has_collection(self.collection):
            self._create(client)
            self._added = self.ids.copy()
        if len(self._removed):
            for start in range(0, len(self._removed), UPLOAD_ROWS):
                chunk = self._removed[start : start + UPLOAD_ROWS]
                client.delete(self.collection, filter=f"vid in [{', '.join(str(int(v)) for v in chunk)}]")
        if len(self._added):
            rows_of = {int(v): i for i, v in enumerate(self.ids)}
            for start in range(0, len(self._added), UPLOAD_ROWS):
                chunk = self._added[start : start + UPLOAD_ROWS].tolist()
                records = meta.by_vids(chunk)
                rows = []
                for vid in chunk:
                    rec = records[vid]
                    rows.append(
                        {
                            "vid": vid,
                            "vector": self.vectors[rows_of[vid]].astype(np.float32).tolist(),
                            "item_id": rec.id,
                            "label": rec.label or "",
                            "attributes": dict(rec.attributes),
                        }
                    )
                client.upsert(self.collection, rows)
        client.flush(self.collection)
        self._added = np.zeros(0, np.int64)
        self._removed = np.zeros(0, np.int64)

    def _create(self, client: Any) -> None:
        from pymilvus import DataType, MilvusClient

        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("vid", DataType.INT64, is_primary=True)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=self.dim)
        schema.add_field("item_id", DataType.VARCHAR, max_length=4096)
        schema.add_field("label", DataType.VARCHAR, max_length=1024)
        schema.add_field("attributes", DataType.JSON)
        index = client.prepare_index_params()
        self.milvus_index = "HNSW" if len(self.ids) > FLAT_MAX else "FLAT"
        if self.milvus_index == "HNSW":
            index.add_index(field_name="vector", index_type="HNSW", metric_type="IP", params={"M": 32, "efConstruction": 200})
        else:
            index.add_index(field_name="vector", index_type="FLAT", metric_type="IP")
        extra = {} if self.target.lite else {"num_shards": self.target.shards}
        client.create_collection(self.collection, schema=schema, index_params=index, **extra)
        if not self.target.lite and self.target.replicas > 1:
            client.release_collection(self.collection)
            client.load_collection(self.collection, replica_number=self.target.replicas)

    def mend(self, meta: MetadataStore) -> int:
        """Make the collection hold exactly this generation's items (after a write that failed
        between changing Milvus and publishing). Returns how many rows were fixed."""
        client = client_for(self.target)
        if not client.has_collection(self.collection):
            self._added = self.ids.copy()
            self.sync(meta)
            return len(self.ids)
        if self.target.lite or self.target.replicas == 1:
            client.load_collection(self.collection)
        else:
            client.load_collection(self.collection, replica_number=self.target.replicas)
        stats = client.get_collection_stats(self.collection)
        if int(stats.get("row_count", -1)) == len(self.ids):
            return 0
        present: list[int] = []
        iterator = client.query_iterator(self.collection, batch_size=10_000, filter="vid >= 0", output_fields=["vid"])
        while True:
            batch = iterator.next()
            if not batch:
                iterator.close()
                break
            present += [int(r["vid"]) for r in batch]
        have = np.asarray(present, np.int64)
        self._removed = have[~np.isin(have, self.ids)]
        self._added = self.ids[~np.isin(self.ids, have)]
        fixed = len(self._removed) + len(self._added)
        log.warning("Milvus collection %s differed from the index by %d rows: mended", self.collection, fixed)
        self.sync(meta)
        return fixed

    def drop(self, collection: str) -> None:
        client = client_for(self.target)
        if collection != self.collection and client.has_collection(collection):
            client.drop_collection(collection)

    @classmethod
    def load(cls, folder: Path, manifest: Mapping[str, Any], meta: MetadataStore) -> MilvusBackend:
        """The store of the generation in ``folder``; the collection is mended to match it."""
        info = manifest["store"]
        try:
            target = MilvusTarget(
                info["uri"], info["base_name"], bool(info["lite"]), int(info.get("shards", 1)), int(info.get("replicas", 1))
            )
            dim, vector_dtype = int(manifest["dim"]), manifest.get("vector_dtype", "float32")
            collection, milvus_index = info["collection"], info.get("index", "FLAT")
        except (KeyError, TypeError, ValueError) as exc:
            raise IndexCorruptError(
                f"the manifest in {str(folder)!r} has a bad 'store' section ({exc}); rebuild the index"
            ) from exc
        store = cls(dim, target, collection, milvus_index=milvus_index, data=Vectors.load(folder, dim, vector_dtype))
        store.mend(meta)
        return store

    def manifest_entries(self) -> dict[str, Any]:
        entries: dict[str, Any] = {
            "index_key": self.index_key,
            "index_type": kind_of_key(self.index_key),
            "search_params": {},
            "refine": 1,
            "tombstones": 0,
            "vector_dtype": str(self.vector_dtype),
        }
        entries["store"] = {
            "kind": self.name,
            "uri": self.target.uri,
            "base_name": self.target.base_name,
            "collection": self.collection,
            "index": self.milvus_index,
            "lite": self.target.lite,
            "shards": self.target.shards,
            "replicas": self.target.replicas,
        }
        return entries
