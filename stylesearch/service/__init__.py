"""The HTTP API and web page: ``create_app(Settings(...))``, served by ``stylesearch serve``."""

from .app import create_app
from .settings import Settings

__all__ = ["Settings", "create_app"]
