"""``Where``: an attribute filter, parsed once and compiled for each place that runs it.

A filter maps keys to accepted values: an item matches when, for every key, its value is one
of the key's accepted values. ``label`` and ``id`` are the item's own fields; any other key is
an attribute. It comes from the CLI (``--where KEY=VALUE``, repeatable), from JSON (the API)
or from a mapping (the library), and compiles to SQL (:meth:`Where.sql`, the metadata store)
and to a Milvus boolean expression (:meth:`Where.milvus`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError, UsageError

WhereValue = str | Sequence[str]
FIELDS = ("label", "id")  # an item's own fields; every other key is an attribute


@dataclass(frozen=True)
class Where:
    """An immutable filter: ``terms`` is ((key, (value, ...)), ...) in the order given."""

    terms: tuple[tuple[str, tuple[str, ...]], ...] = ()

    # ------------------------------------------------------------------ parsing

    @classmethod
    def of(cls, where: Where | Mapping[str, WhereValue] | None) -> Where:
        """A filter from a mapping (key → value or list of values), a ``Where`` or ``None``."""
        if isinstance(where, Where):
            return where
        if where is None:
            return cls()
        if not isinstance(where, Mapping):
            raise ConfigError('a filter is an object of attribute -> value or list of values, e.g. {"category": "dress"}')
        terms = []
        for key, value in where.items():
            values = [value] if isinstance(value, str) else list(value) if isinstance(value, (list, tuple)) else None
            if not isinstance(key, str) or not key or not values or not all(isinstance(v, str) for v in values):
                raise ConfigError(f"filter {key!r} needs a string or a list of strings")
            terms.append((key, tuple(dict.fromkeys(values))))
        return cls(tuple(terms))

    @classmethod
    def parse_pairs(cls, pairs: Iterable[str] | None, option: str = "--where") -> Where:
        """``["a=1", "a=2", "b=3"]`` (the CLI's repeated ``KEY=VALUE``): a key given twice
        accepts either value."""
        merged: dict[str, list[str]] = {}
        for pair in pairs or []:
            key, sep, value = pair.partition("=")
            if not sep or not key:
                raise UsageError(f"{option} {pair!r} must look like KEY=VALUE")
            merged.setdefault(key, []).append(value)
        return cls.of(merged)

    @classmethod
    def parse_json(cls, text: str | None) -> Where:
        """A filter sent as JSON text (API form fields and query parameters)."""
        if text is None or not text.strip():
            return cls()
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(
                'where must be a JSON object of attribute -> value or list of values, e.g. {"articleType": "Shirts"}'
            ) from exc
        return cls.of(data)

    # ------------------------------------------------------------------ using

    def __bool__(self) -> bool:
        return bool(self.terms)

    def to_dict(self) -> dict[str, str | list[str]]:
        """Key → value (one accepted value) or list of values."""
        return {key: values[0] if len(values) == 1 else list(values) for key, values in self.terms}

    def single(self) -> dict[str, str] | None:
        """Key → value when every key accepts exactly one value (else ``None``)."""
        if any(len(values) != 1 for _, values in self.terms):
            return None
        return {key: values[0] for key, values in self.terms}

    def sql(self, labelled: bool = False) -> tuple[list[str], list[str]]:
        """SQL conditions on the metadata's ``items`` table and their parameters."""
        clauses: list[str] = []
        params: list[str] = []
        for key, values in self.terms:
            marks = ",".join("?" * len(values))
            if key in FIELDS:
                clauses.append(f"{key} IN ({marks})")
            else:
                # json_each matches any key exactly (no JSON-path quoting rules to get wrong)
                clauses.append(
                    f"EXISTS (SELECT 1 FROM json_each(items.attributes) AS j WHERE j.key = ? AND j.value IN ({marks}))"
                )
                params.append(key)
            params += list(values)
        if labelled:
            clauses.append("label IS NOT NULL")
        return clauses, params

    def milvus(self, *, labelled: bool = False, exclude: Sequence[int] = ()) -> str:
        """A Milvus boolean expression (``label`` and ``item_id`` fields, ``attributes`` JSON),
        with items that have a label only and the vids in ``exclude`` left out."""
        clauses = []
        for key, values in self.terms:
            if key in FIELDS:
                field = "label" if key == "label" else "item_id"
                clauses.append(f"{field} in [{', '.join(json.dumps(v) for v in values)}]")
            else:  # JSON fields take no `in` list: one equality per accepted value
                clauses.append(" or ".join(f"attributes[{json.dumps(key)}] == {json.dumps(v)}" for v in values))
        if labelled:
            clauses.append('label != ""')
        if len(exclude):
            clauses.append(f"vid not in [{', '.join(str(int(v)) for v in exclude)}]")
        return " and ".join(f"({c})" for c in clauses)

    def __repr__(self) -> str:
        return f"Where({self.to_dict()!r})"


WhereLike = Where | Mapping[str, Any] | None
