"""Typed errors. Every message says what went wrong *and* what to do about it.

Each class carries how it reaches people: ``code`` (a stable name, the API's JSON ``code``),
``http_status`` (the API's status) and ``exit_code`` (the CLI's: 1 for a job that failed,
2 for a usage mistake). Nothing chooses a status by reading a message.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence


def did_you_mean(given: str, choices: Sequence[str]) -> str:
    """`` (did you mean X?)`` for the closest of ``choices`` (same spelling in another case
    first), or ``""``."""
    same_case = [c for c in choices if c.lower() == given.lower()]
    close = same_case or difflib.get_close_matches(given, choices, n=3, cutoff=0.6)
    if not close:
        lowered = {c.lower(): c for c in choices}
        close = [lowered[c] for c in difflib.get_close_matches(given.lower(), list(lowered), n=3, cutoff=0.6)]
    return f" (did you mean {' or '.join(close)}?)" if close else ""


class StyleSearchError(Exception):
    """Base class of every error stylesearch raises on purpose (500: a fault of ours or of
    the index on disk, not of the request)."""

    code = "stylesearch_error"
    http_status = 500
    exit_code = 1


class UsageError(StyleSearchError):
    """The command line or the request asks for something that cannot work as given
    (a missing or contradictory option): CLI exit 2, like argparse's own usage errors."""

    code = "usage_error"
    http_status = 422
    exit_code = 2


class UnknownAttributeError(UsageError):
    """A filter names a key that no indexed item has (a misspelt or wrongly cased key)."""

    code = "unknown_attribute"


class ConfigError(StyleSearchError):
    """An option or setting has a value that cannot work."""

    code = "bad_config"
    http_status = 422
    exit_code = 2


class CatalogError(StyleSearchError):
    """The catalog folder or manifest cannot be used as it is."""

    code = "bad_catalog"
    http_status = 422


class ImageError(StyleSearchError):
    """An image could not be decoded or breaks a safety limit."""

    code = "bad_image"
    http_status = 422


class UnsupportedImageTypeError(ImageError):
    """The bytes are not an image type stylesearch reads (judged from the bytes, not the name)."""

    code = "unsupported_media_type"
    http_status = 415


class IndexNotFoundError(StyleSearchError):
    """No index exists at the given location."""

    code = "index_not_found"
    http_status = 503


class IndexMismatchError(StyleSearchError):
    """The index was built with another model or recipe than the one asked for."""

    code = "index_mismatch"
    http_status = 409


class IndexCorruptError(StyleSearchError):
    """Files of an index are missing or disagree with each other."""

    code = "index_corrupt"
    http_status = 500


class ItemNotFoundError(StyleSearchError):
    """An item id is not in the index."""

    code = "item_not_found"
    http_status = 404


class DuplicateItemError(StyleSearchError):
    """An item id is already taken."""

    code = "duplicate_item"
    http_status = 409


class BackboneError(StyleSearchError):
    """A backbone is unknown or its weights cannot be loaded."""

    code = "bad_backbone"
    http_status = 422
    exit_code = 2


class MissingDependencyError(StyleSearchError):
    """An optional package that this feature needs is not installed."""

    code = "missing_dependency"
    http_status = 501


class IndexLockedError(StyleSearchError):
    """Another process is writing to the same index."""

    code = "index_locked"
    http_status = 503


def all_errors() -> list[type[StyleSearchError]]:
    """Every error class, the base first (for documentation and tests)."""
    found: list[type[StyleSearchError]] = [StyleSearchError]
    for cls in found:
        found += [sub for sub in cls.__subclasses__() if sub not in found]
    return found
