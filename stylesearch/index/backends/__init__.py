"""Search backends keyed by the ``--store`` URI scheme (see :mod:`.base`)."""

from .base import SearchBackend, backend_class, list_backends, load_backend, register_backend

__all__ = ["SearchBackend", "backend_class", "list_backends", "load_backend", "register_backend"]
