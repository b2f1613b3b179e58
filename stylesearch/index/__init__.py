"""Vectors in, neighbours out: search backends, SQLite metadata, filters, kNN votes, on-disk
generations and the snapshot that joins them.

This package works on numpy arrays and never imports torch (the lazily imported GPU
accelerator is the one exception).
"""

from .backends import SearchBackend, backend_class, list_backends, load_backend, register_backend
from .filters import Where
from .knn import Vote, knn_vote
from .layout import IndexDir
from .metadata import MetadataStore, Record
from .snapshot import Snapshot

__all__ = [
    "IndexDir",
    "MetadataStore",
    "Record",
    "SearchBackend",
    "Snapshot",
    "Vote",
    "Where",
    "backend_class",
    "knn_vote",
    "list_backends",
    "load_backend",
    "register_backend",
]
