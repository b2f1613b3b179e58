"""The ``/v1`` endpoints, one router per resource (search, items, classify, explain, catalog),
helpers in :mod:`.common`. Model and index work runs on worker threads, never on the event
loop; uploaded images go through the micro-batcher."""

from . import catalog, classify, explain, items, search

routers = [search.router, explain.router, classify.router, items.router, catalog.router]

__all__ = ["routers"]
