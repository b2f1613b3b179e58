"""Ingestion: catalogs in, index generations out (see :mod:`.pipeline`)."""

from .build import index_catalog

__all__ = ["index_catalog"]
