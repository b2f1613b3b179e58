"""Command-line options generated from the config dataclasses (:mod:`stylesearch.config`).

Each field's metadata (``config.option``) gives its help, choices, flag and parser, so an
option is defined once, beside the setting it sets, and a config is read back from the parsed
arguments in one call. Nothing here imports torch.
"""

from __future__ import annotations

import argparse
from collections.abc import Container
from dataclasses import MISSING, Field, fields
from typing import Any, TypeVar

T = TypeVar("T")


def _dest(f: Field[Any]) -> str:
    return f.metadata.get("dest") or f.name


def _offered(cls: type, skip: Container[str]) -> list[Field[Any]]:
    return [f for f in fields(cls) if f.metadata.get("cli", False) and f.name not in skip]


def add_options(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    cls: type,
    *,
    skip: Container[str] = (),
    given_only: bool = False,
) -> None:
    """Add an option per field of ``cls`` (those whose metadata offers one). ``given_only``:
    the options default to ``None`` so that :func:`config_from` can tell whether any was given
    (the help still shows the config's default)."""
    for f in _offered(cls, skip):
        meta = f.metadata
        default = f.default if f.default is not MISSING else None
        flag = meta.get("flag") or "--" + f.name.replace("_", "-")
        kwargs: dict[str, Any] = {"dest": _dest(f), "help": meta["help"]}
        if isinstance(default, bool):
            kwargs["action"] = "store_false" if flag.startswith("--no-") else "store_true"
            kwargs["default"] = None if given_only else default
            parser.add_argument(flag, **kwargs)
            continue
        kwargs["default"] = None if given_only else default
        if meta.get("choices"):
            kwargs["choices"] = list(meta["choices"])
        if meta.get("metavar"):
            kwargs["metavar"] = meta["metavar"]
        if meta.get("parse") is None and default is not None and not isinstance(default, str):
            kwargs["type"] = type(default)
        if default is not None:
            kwargs["help"] += f" (default: {default})"
        parser.add_argument(flag, **kwargs)


def config_from(cls: type[T], args: argparse.Namespace, *, given_only: bool = False, **overrides: Any) -> T | None:
    """The ``cls`` the parsed ``args`` ask for (fields not offered keep their defaults, or take
    ``overrides``). ``given_only``: ``None`` when no option of ``cls`` was given."""
    values: dict[str, Any] = {}
    for f in _offered(cls, ()):
        value = getattr(args, _dest(f), None)
        if value is None:
            continue
        parse = f.metadata.get("parse")
        values[f.name] = parse(value) if parse is not None and isinstance(value, str) else value
    if given_only and not values:
        return None
    return cls(**{**values, **overrides})


def must(value: T | None) -> T:
    assert value is not None
    return value
