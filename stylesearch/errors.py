"""Typed errors. Every message says what went wrong *and* what to do about it.

The CLI prints ``str(error)`` as one line on stderr and exits 1; the HTTP API maps each class
to a JSON error with a stable ``code`` and a 4xx status.
"""

from __future__ import annotations


class StyleSearchError(Exception):
    """Base class of every error stylesearch raises on purpose."""

    code = "stylesearch_error"


class CatalogError(StyleSearchError):
    """The catalog folder or manifest cannot be used as it is."""

    code = "bad_catalog"


class ImageError(StyleSearchError):
    """An image could not be decoded or breaks a safety limit."""

    code = "bad_image"


class IndexNotFoundError(StyleSearchError):
    """No index exists at the given location."""

    code = "index_not_found"


class IndexMismatchError(StyleSearchError):
    """The index was built with another model or recipe than the one asked for."""

    code = "index_mismatch"


class IndexCorruptError(StyleSearchError):
    """Files of an index are missing or disagree with each other."""

    code = "index_corrupt"


class ItemNotFoundError(StyleSearchError):
    """An item id is not in the index."""

    code = "item_not_found"


class DuplicateItemError(StyleSearchError):
    """An item id is already taken."""

    code = "duplicate_item"


class ConfigError(StyleSearchError):
    """An option or setting has a value that cannot work."""

    code = "bad_config"


class BackboneError(StyleSearchError):
    """A backbone is unknown or its weights cannot be loaded."""

    code = "bad_backbone"


class MissingDependencyError(StyleSearchError):
    """An optional package that this feature needs is not installed."""

    code = "missing_dependency"


class IndexLockedError(StyleSearchError):
    """Another process is writing to the same index."""

    code = "index_locked"
