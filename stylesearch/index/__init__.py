"""Vectors in, neighbours out: search backends, SQLite metadata, filters, on-disk
generations and the snapshot that joins them.

This package works on numpy arrays and never imports torch (the lazily imported GPU
accelerator is the one exception).
"""

from .backends import SearchBackend, backend_class, list_backends, load_backend, register_backend
from .filters import Where
from .layout import IndexDir
from .metadata import MetadataStore, Record
from .snapshot import Snapshot

__all__ = [
    "IndexDir",
    "MetadataStore",
    "Record",
    "SearchBackend",
    "Snapshot",
    "Where",
    "backend_class",
    "list_backends",
    "load_backend",
    "register_backend",
]
