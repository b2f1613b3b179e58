"""stylesearch: find and classify products by visual style."""

__version__ = "0.1.0"

from .catalog import Catalog, Item, load_catalog  # noqa: E402
from .config import EmbedConfig, IndexConfig, RunConfig  # noqa: E402
from .engine import Classification, Hit, IndexReport, QueryResult, StyleSearch, index_catalog  # noqa: E402
from .errors import StyleSearchError  # noqa: E402
from .model.backbones import create_backbone, list_backbones, register_backbone  # noqa: E402

__all__ = [
    "Catalog",
    "Classification",
    "EmbedConfig",
    "Hit",
    "IndexConfig",
    "IndexReport",
    "Item",
    "QueryResult",
    "RunConfig",
    "StyleSearch",
    "StyleSearchError",
    "__version__",
    "create_backbone",
    "index_catalog",
    "list_backbones",
    "load_catalog",
    "register_backbone",
]
