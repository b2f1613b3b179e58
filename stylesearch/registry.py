"""Named registries of classes (style statistics, inference runtimes): a decorator registers a
class under its name and sets its ``name``; the registry lists, finds and drops entries."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

C = TypeVar("C", bound=type[Any])


class Registry(Generic[C]):
    """Classes by name, in the order they were registered."""

    def __init__(self) -> None:
        self._entries: dict[str, C] = {}

    def register(self, name: str) -> Callable[[C], C]:
        """Class decorator: the class registered as ``name`` (its ``name`` attribute set)."""

        def decorate(cls: C) -> C:
            cls.name = name
            self._entries[name] = cls
            return cls

        return decorate

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __getitem__(self, name: str) -> C:
        return self._entries[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def get(self, name: str) -> C | None:
        return self._entries.get(name)

    def classes(self) -> list[C]:
        return list(self._entries.values())

    def remove(self, name: str) -> None:
        """Drop ``name`` (a test's toy entry, say)."""
        del self._entries[name]
