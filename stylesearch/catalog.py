"""Catalog input: a folder per label, an unlabeled folder, or a CSV / JSONL manifest.

A :class:`Catalog` only *lists* items; decoding (and rejecting undecodable files) happens in
:mod:`stylesearch.images` while embedding, and both kinds of problem end up in one report.
"""

from __future__ import annotations

import base64
import csv
import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import CatalogError, did_you_mean
from .listing import child, is_dir, is_file, kinds, listing, parent_and_name, paused_gc, visible_files

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"})
MANIFEST_SUFFIXES = frozenset({".csv", ".jsonl", ".ndjson"})


@dataclass(frozen=True)
class Columns:
    """Which manifest columns hold an item's path, id and style label (the rest are
    attributes). ``unlabelled``: the manifest has no labels, on purpose (no warning)."""

    path: str = "path"
    id: str = "id"
    label: str = "label"
    unlabelled: bool = False

    @property
    def reserved(self) -> tuple[str, str, str]:
        return (self.path, self.id, self.label)


@dataclass(frozen=True, slots=True)
class Item:
    """One catalog entry. ``path`` is absolute; ``attributes`` values are strings."""

    id: str
    path: Path
    label: str | None = None
    attributes: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
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
    source: str | os.PathLike[str],
    manifest: str | os.PathLike[str] | None = None,
    *,
    confine: bool = False,
    columns: Columns | None = None,
) -> Catalog:
    """Read a catalog.

    - ``source`` a folder, no manifest: ``source/<label>/**/<image>`` are labelled items,
      images directly in ``source`` are unlabeled.
    - ``source`` a ``.csv``/``.jsonl`` file, or a folder plus ``manifest``: the manifest lists
      items; its ``path`` column is relative to the folder (the manifest's own folder when
      ``source`` is the manifest) unless absolute. ``columns`` names its path, id and label
      columns (``path``, ``id``, ``label`` by default); a manifest without the label column
      is read as unlabelled, with a warning that names its columns unless
      ``columns.unlabelled`` says that is meant.

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
    with paused_gc():
        if manifest is not None:
            return _from_manifest(src.resolve(), Path(manifest), confine, columns or Columns())
        return _from_folder(src.resolve(), confine)


FS_BYTES = "fs64:"  # a stored path that is not UTF-8: its bytes, base64 (no real path starts so)


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
    to store): ``caf\\udce9`` for a Latin-1 ``café``. An item id made from such a name."""
    return text if is_utf8(text) else text.encode("utf-8", "backslashreplace").decode("utf-8")


def path_text(path: str | os.PathLike[str]) -> str:
    """A file path as stored text (UTF-8): itself, or, for a name that is not UTF-8 (a Latin-1
    name from an old archive), ``fs64:`` and the base64 of its bytes — :func:`path_of` gives
    the same file back."""
    text = os.fspath(path)
    if is_utf8(text):
        return text
    return FS_BYTES + base64.urlsafe_b64encode(os.fsencode(text)).decode("ascii")


def path_of(text: str) -> Path:
    """The file a stored path names (:func:`path_text` undone)."""
    if text.startswith(FS_BYTES):
        return Path(os.fsdecode(base64.urlsafe_b64decode(text[len(FS_BYTES) :])))
    return Path(text)


def _item_id(rel: Path) -> str:
    return printable(rel.with_suffix("").as_posix())


def _from_folder(root: Path, confine: bool = False) -> Catalog:
    """A folder catalog, listed with one ``scandir`` per folder (measured by
    ``benchmarks/bench_catalog.py``: a few microseconds a file)."""
    items: list[Item] = []
    skipped: list[Skipped] = []
    top = str(root)

    def consider(entry: os.DirEntry[str], rel: str, label: str | None, parent: Path) -> None:
        name = entry.name
        dot = name.rfind(".")
        suffix = name[dot:] if 0 < dot < len(name) - 1 else ""  # Path.suffix, without making a Path
        if not is_file(entry):
            skipped.append(Skipped(printable(rel), "not a regular file (broken link or loop)"))
        elif confine and not Path(entry.path).resolve().is_relative_to(root):
            skipped.append(Skipped(printable(rel), "a link to a file outside the catalog folder (not allowed here)"))
        elif suffix.lower() not in IMAGE_SUFFIXES:
            skipped.append(Skipped(printable(rel), f"not an image file name ({suffix or 'no suffix'})"))
        else:
            items.append(Item(printable(rel[: -len(suffix)]), child(parent, name), label))

    try:
        files, folders = listing(top, strict=True)
    except OSError as exc:
        raise CatalogError(f"cannot read catalog folder {top!r} ({exc.strerror or exc}): check its permissions") from exc
    for entry in sorted(files + folders, key=lambda e: e.name):
        if is_dir(entry):  # a label folder (a link to one is followed, as it was named at the top)
            for inner, rel, parent in visible_files(root / entry.name, entry.name):
                consider(inner, rel, entry.name, parent)
        else:
            consider(entry, entry.name, None, root)
    if not items and not skipped:
        raise CatalogError(f"catalog folder {str(root)!r} has no images: put images in it or in one folder per label")
    return Catalog(root, items, skipped)


def _read_rows(manifest: Path) -> list[tuple[int, dict[str, Any]]]:
    """(line number, row) of every item line; the columns are checked by :func:`_check_columns`."""
    suffix = manifest.suffix.lower()
    try:
        if suffix == ".csv":
            with manifest.open(newline="", encoding="utf-8") as fh:
                reader = csv.DictReader(fh, strict=True)
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


def _check_columns(manifest: Path, rows: list[tuple[int, dict[str, Any]]], columns: Columns) -> None:
    """Errors for a named column that is not there; a warning for a missing label column."""
    present: list[str] = []
    for keys in dict.fromkeys(tuple(row) for _, row in rows):  # each distinct set of keys, once
        present += [str(k) for k in keys if k not in present]
    has = ", ".join(present) or "none"
    if columns.path not in present:
        raise CatalogError(
            f"manifest {manifest.name} has no {columns.path!r} column{did_you_mean(columns.path, present)} (it has {has}): "
            "say which column holds the image paths with --path-column"
        )
    if columns.id != "id" and columns.id not in present:
        raise CatalogError(
            f"manifest {manifest.name} has no id column {columns.id!r}{did_you_mean(columns.id, present)} (it has {has}): "
            "check --id-column"
        )
    if columns.label not in present:
        if columns.label != "label":
            raise CatalogError(
                f"manifest {manifest.name} has no label column {columns.label!r}{did_you_mean(columns.label, present)} "
                f"(it has {has}): check --label-column"
            )
        if not columns.unlabelled:
            log.warning(
                "manifest %s has no 'label' column, so its items are indexed WITHOUT style labels "
                "(classify has nothing to vote with); its columns are %s. Name the style column with "
                "--label-column, or say --unlabelled if that is meant",
                manifest.name,
                has,
            )


def _from_manifest(root: Path, manifest: Path, confine: bool = False, columns: Columns | None = None) -> Catalog:
    """A manifest catalog: every row's path checked as text (no per-row ``resolve``), then
    whether the files exist, a folder at a time (:func:`~stylesearch.listing.kinds`)."""
    if not manifest.is_file():
        raise CatalogError(f"manifest {str(manifest)!r} does not exist")
    columns = columns or Columns()
    rows = _read_rows(manifest)
    if not rows:
        raise CatalogError(f"manifest {manifest.name} lists no usable images")
    _check_columns(manifest, rows, columns)
    paths = [_row_path(manifest, root, line, row, columns.path, confine) for line, row in rows]
    places = [parent_and_name(full) for _, full in paths]
    found = kinds(places)
    folders: dict[str, Path] = {}  # each file's Path made as a child of its folder's (no parsing of the whole path)
    items: list[Item] = []
    skipped: list[Skipped] = []
    missing: list[str] = []
    seen: dict[str, int] = {}
    reserved = set(columns.reserved)
    for (line, row), (raw_path, _), (parent, name), kind in zip(rows, paths, places, found):
        if kind is None:
            missing.append(raw_path)
            continue
        item_id = str(row.get(columns.id) or "").strip() or _item_id(Path(raw_path))
        if item_id in seen:
            raise CatalogError(
                f"manifest {manifest.name}: id {item_id!r} appears on lines {seen[item_id]} and {line}; ids must be unique"
            )
        seen[item_id] = line
        if kind == "folder":
            skipped.append(Skipped(raw_path, "is a folder, not an image file"))
            continue
        label = str(row.get(columns.label) or "").strip() or None
        attributes = {str(k): str(v) for k, v in row.items() if k not in reserved and v not in (None, "")}
        folder = folders.get(parent) or folders.setdefault(parent, Path(parent))
        items.append(Item(item_id, child(folder, name), label, attributes))
    if missing:
        shown = ", ".join(repr(m) for m in missing[:5])
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise CatalogError(
            f"manifest {manifest.name} names {len(missing)} missing file(s): {shown}{more}; paths are relative to {str(root)!r}"
        )
    if not items:
        raise CatalogError(f"manifest {manifest.name} lists no usable images")
    return Catalog(root, items, skipped)


def _row_path(manifest: Path, root: Path, line: int, row: dict[str, Any], column: str, confine: bool) -> tuple[str, str]:
    """(the path as written, the file it names) of a manifest row; a path that is empty, or
    leaves the catalog folder (textually, or through a link when ``confine``) is an error."""
    raw_path = str(row.get(column) or "").strip()
    if not raw_path:
        raise CatalogError(f"manifest {manifest.name} line {line}: empty {column!r}")
    top = str(root)
    if os.path.isabs(raw_path):
        if confine:
            raise CatalogError(
                f"manifest {manifest.name} line {line}: absolute path {raw_path!r} is not allowed here; "
                f"use a path relative to the catalog folder {top!r}"
            )
        path = str(Path(raw_path))
    elif not raw_path.startswith(".") and "/." not in raw_path and "//" not in raw_path and os.sep == "/":
        path = f"{top.rstrip('/')}/{raw_path.rstrip('/')}"  # nothing to normalise: inside the folder as written
    else:
        # textual containment (no per-component lstat as resolve() does); links are followed
        # only when confined
        path = os.path.normpath(os.path.join(top, raw_path))
        if path != top and not path.startswith(top.rstrip(os.sep) + os.sep):
            raise CatalogError(
                f"manifest {manifest.name} line {line}: path {raw_path!r} leaves the catalog "
                f"folder {top!r}; use a path inside it" + ("" if confine else " or an absolute path")
            )
    if confine and not Path(path).resolve().is_relative_to(root):
        raise CatalogError(
            f"manifest {manifest.name} line {line}: path {raw_path!r} is a link that leads outside the "
            f"catalog folder {top!r}, which is not allowed here"
        )
    return raw_path, path
