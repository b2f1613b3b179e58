"""stylesearch: find and classify products by visual style.

The public API. Names are imported when first used, so that ``import stylesearch`` (and the
CLI's ``--help``) does not load torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__

_EXPORTS = {
    "Example": "board",
    "Catalog": "catalog",
    "Item": "catalog",
    "load_catalog": "catalog",
    "EmbedConfig": "config",
    "IndexConfig": "config",
    "RunConfig": "config",
    "TrainConfig": "config",
    "StyleSearch": "engine",
    "StyleSearchError": "errors",
    "index_catalog": "ingest",
    "train": "model.train",
    "TrainReport": "model.train",
    "create_backbone": "model.backbones",
    "describe_backbones": "model.backbones",
    "list_backbones": "model.backbones",
    "register_backbone": "model.backbones",
    "register_statistic": "model.statistics",
    "list_statistics": "model.statistics",
    "register_backend": "index.backends",
    "Where": "index.filters",
    "Classification": "results",
    "Hit": "results",
    "IndexReport": "results",
    "QueryResult": "results",
}

__all__ = [
    "Catalog",
    "Classification",
    "EmbedConfig",
    "Example",
    "Hit",
    "IndexConfig",
    "IndexReport",
    "Item",
    "QueryResult",
    "RunConfig",
    "StyleSearch",
    "StyleSearchError",
    "TrainConfig",
    "TrainReport",
    "Where",
    "__version__",
    "create_backbone",
    "describe_backbones",
    "index_catalog",
    "list_backbones",
    "list_statistics",
    "load_catalog",
    "register_backbone",
    "register_backend",
    "register_statistic",
    "train",
]

if TYPE_CHECKING:
    from .board import Example
    from .catalog import Catalog, Item, load_catalog
    from .config import EmbedConfig, IndexConfig, RunConfig, TrainConfig
    from .engine import StyleSearch
    from .errors import StyleSearchError
    from .index.backends import register_backend
    from .index.filters import Where
    from .ingest import index_catalog
    from .model.backbones import create_backbone, describe_backbones, list_backbones, register_backbone
    from .model.statistics import list_statistics, register_statistic
    from .model.train import TrainReport, train
    from .results import Classification, Hit, IndexReport, QueryResult


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'stylesearch' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value
