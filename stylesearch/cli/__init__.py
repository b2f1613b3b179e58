"""The ``stylesearch`` command line: ``main.py`` parses and maps errors to exit codes; one
module per command group (``build``, ``search``, ``items``, ``learn``, ``serve``)."""

from ..config import DEFAULT_INDEX_DIR as DEFAULT_INDEX
from .main import build_parser, main

__all__ = ["DEFAULT_INDEX", "build_parser", "main"]
