"""Catalog input: a folder per label, an unlabeled folder, or a CSV / JSONL manifest.

A :class:`Catalog` only *lists* items; decoding (and rejecting undecodable files) happens in
:mod:`stylesearch.images` while embedding, and both kinds of problem end up in one report.
"""

from __future__ import annotations

import csv
import json
import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import CatalogError

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"})
MANIFEST_SUFFIXES = frozenset({".csv", ".jsonl", ".ndjson"})
RESERVED_COLUMNS = ("id", "path", "label")


@dataclass(frozen=True)
class Item:
    """One catalog entry. ``path`` is absolute; ``attributes`` values are strings."""

    id: str
    path: Path
    label: str | None = None
    attributes: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Skipped:
    """A file left out, and why (shown in the end-of-run report)."""

    path: str
    reason: str


@dataclass
class Catalog:
    root: Path
    items: list[Item]
    skipped: list[Skipped] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[Item]:
        return iter(self.items)

    @property
    def labels(self) -> list[str]:
        return sorted({i.label for i in self.items if i.label is not None})


def load_catalog(
    source: str | os.PathLike[str], manifest: str | os.PathLike[str] | None = None, *, confine: bool = False
) -> Catalog:
    """Read a catalog.

    - ``source`` a folder, no manifest: ``source/<label>/**/<image>`` are labelled items,
      images directly in ``source`` are unlabeled.
    - ``source`` a ``.csv``/``.jsonl`` file, or a folder plus ``manifest``: the manifest lists
      items; its ``path`` column is relative to the folder (the manifest's own folder when
      ``source`` is the manifest) unless absolute.

    A relative path may never leave the catalog folder (``../../etc/passwd``). ``confine``
    (for catalogs from people you do not trust): no absolute paths in manifests, and no file,
    through a symbolic link either, outside the catalog folder.
    """
    src = Path(source)
    if manifest is None and src.is_file() and src.suffix.lower() in MANIFEST_SUFFIXES:
        manifest, src = src, src.parent
    if not src.exists():
        raise CatalogError(f"catalog folder {str(src)!r} does not exist: pass a folder of images or a manifest")
    if not src.is_dir():
        raise CatalogError(f"{str(src)!r} is not a folder: pass a folder of images, or a .csv/.jsonl manifest")
    if manifest is not None:
        return _from_manifest(src.resolve(), Path(manifest), confine)
    return _from_folder(src.resolve(), confine)


def _visible_files(folder: Path) -> Iterator[Path]:
    """Regular files under ``folder`` (recursively), skipping hidden names and symlink loops."""
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if not name.startswith("."):
                yield Path(dirpath) / name


NOT_UTF8 = "file name is not valid UTF-8 (ids and paths are stored as UTF-8 text): rename the file"


def is_utf8(text: str) -> bool:
    """Whether ``text`` is valid Unicode that UTF-8 can store: not a file name that the OS
    decoded with surrogate escapes (a Latin-1 name on a UTF-8 system, say)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def printable(text: str) -> str:
    """``text`` with the undecodable bytes of a file name shown as escapes (safe to print and
    to store)."""
    return text if is_utf8(text) else text.encode("utf-8", "backslashreplace").decode("utf-8")


def _item_id(rel: Path) -> str:
    return rel.with_suffix("").as_posix()


def _from_folder(root: Path, confine: bool = False) -> Catalog:
    items: list[Item] = []
    skipped: list[Skipped] = []

    def consider(path: Path, label: str | None) -> None:
        rel = path.relative_to(root)
        if not is_utf8(str(rel)):
            skipped.append(Skipped(printable(str(rel)), NOT_UTF8))
        elif not path.is_file():
            skipped.append(Skipped(rel.as_posix(), "not a regular file (broken link or loop)"))
        elif confine and not path.resolve().is_relative_to(root):
            skipped.append(Skipped(rel.as_posix(), "a link to a file outside the catalog folder (not allowed here)"))
        elif path.suffix.lower() not in IMAGE_SUFFIXES:
            skipped.append(Skipped(rel.as_posix(), f"not an image file name ({path.suffix or 'no suffix'})"))
        else:
            items.append(Item(_item_id(rel), path, label))

    for entry in sorted(root.iterdir(), key=lambda p: p.name):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            for path in _visible_files(entry):
                consider(path, entry.name)
        else:
            consider(entry, None)
    if not items and not skipped:
        raise CatalogError(f"catalog folder {str(root)!r} has no images: put images in it or in one folder per label")
    return Catalog(root, items, skipped)


def _read_rows(manifest: Path) -> Iterable[tuple[int, dict[str, Any]]]:
    suffix = manifest.suffix.lower()
    try:
        if suffix == ".csv":
            with manifest.open(newline="", encoding="utf-8") as fh:
                reader = csv.DictReader(fh, strict=True)
                if reader.fieldnames is None or "path" not in reader.fieldnames:
                    raise CatalogError(
                        f"manifest {manifest.name} has no 'path' column: its header must name "
                        "'path' (and optionally 'id', 'label' and attribute columns)"
                    )
                rows = []
                for row in reader:
                    if None in row:
                        raise CatalogError(
                            f"manifest {manifest.name} line {reader.line_num}: more fields than "
                            "header columns; quote values that contain commas"
                        )
                    rows.append((reader.line_num, row))
                return rows
        if suffix in (".jsonl", ".ndjson"):
            rows = []
            with manifest.open(encoding="utf-8") as fh:
                for n, line in enumerate(fh, 1):
                    if not line.strip():
                        continue
                    obj = json.loads(line)
                    if not isinstance(obj, dict):
                        raise CatalogError(f"manifest {manifest.name} line {n}: expected a JSON object per line")
                    rows.append((n, obj))
            return rows
    except csv.Error as exc:
        raise CatalogError(f"manifest {manifest.name} is not valid CSV ({exc}): check its quoting") from exc
    except json.JSONDecodeError as exc:
        raise CatalogError(f"manifest {manifest.name} line {exc.lineno}: invalid JSON ({exc.msg})") from exc
    except UnicodeDecodeError as exc:
        raise CatalogError(f"manifest {manifest.name} is not UTF-8 text: save it as UTF-8") from exc
    raise CatalogError(f"manifest {manifest.name}: use a .csv or .jsonl file")


def _from_manifest(root: Path, manifest: Path, confine: bool = False) -> Catalog:
    if not manifest.is_file():
        raise CatalogError(f"manifest {str(manifest)!r} does not exist")
    items: list[Item] = []
    skipped: list[Skipped] = []
    missing: list[str] = []
    seen: dict[str, int] = {}
    for line, row in _read_rows(manifest):
        raw_path = str(row.get("path") or "").strip()
        if not raw_path:
            raise CatalogError(f"manifest {manifest.name} line {line}: empty 'path'")
        path = Path(raw_path)
        if path.is_absolute() and confine:
            raise CatalogError(
                f"manifest {manifest.name} line {line}: absolute path {raw_path!r} is not allowed here; "
                f"use a path relative to the catalog folder {str(root)!r}"
            )
        if not path.is_absolute():
            # textual containment (no per-component lstat as resolve() does: 3x faster on big
            # manifests); links are followed only when confined
            path = Path(os.path.normpath(root / path))
            if not path.is_relative_to(root):
                raise CatalogError(
                    f"manifest {manifest.name} line {line}: path {raw_path!r} leaves the catalog "
                    f"folder {str(root)!r}; use a path inside it" + ("" if confine else " or an absolute path")
                )
        if confine and not path.resolve().is_relative_to(root):
            raise CatalogError(
                f"manifest {manifest.name} line {line}: path {raw_path!r} is a link that leads outside the "
                f"catalog folder {str(root)!r}, which is not allowed here"
            )
        try:
            is_dir = stat.S_ISDIR(path.stat().st_mode)
        except OSError:
            missing.append(raw_path)
            continue
        item_id = str(row.get("id") or "").strip() or _item_id(Path(raw_path))
        if item_id in seen:
            raise CatalogError(
                f"manifest {manifest.name}: id {item_id!r} appears on lines {seen[item_id]} and {line}; ids must be unique"
            )
        seen[item_id] = line
        label = str(row.get("label") or "").strip() or None
        attributes = {str(k): str(v) for k, v in row.items() if k not in RESERVED_COLUMNS and v not in (None, "")}
        if is_dir:
            skipped.append(Skipped(raw_path, "is a folder, not an image file"))
            continue
        items.append(Item(item_id, path, label, attributes))
    if missing:
        shown = ", ".join(repr(m) for m in missing[:5])
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise CatalogError(
            f"manifest {manifest.name} names {len(missing)} missing file(s): {shown}{more}; paths are relative to {str(root)!r}"
        )
    if not items:
        raise CatalogError(f"manifest {manifest.name} lists no usable images")
    return Catalog(root, items, skipped)
