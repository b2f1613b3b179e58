"""Sharing unchanged files between index generations.

A generation is a folder of its own (crash safety: :mod:`stylesearch.index.layout`), but most
of a new generation is often the previous one's files unchanged — the 63 MB projection after
a one-photo ``add``, or everything after a ``sync`` that only records new file stamps. Those
are hard-linked (no bytes written, and the old generation can still be deleted), falling back
to a copy where the file system cannot link (another device, no link support).
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path


def link_or_copy(source: Path, target: Path) -> None:
    """Put ``source``'s content at ``target``, a new name in a new generation's folder:
    a hard link, or a copy where the file system cannot link."""
    try:
        os.link(source, target)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            raise
        shutil.copyfile(source, target)


def reuse(origin: Path | None, target: Path, names: list[str]) -> bool:
    """Link (or copy) ``names`` from the folder ``origin`` into the new folder ``target`` when
    every one of them is there; ``False`` (nothing done) otherwise: the caller writes them."""
    if origin is None or not all((origin / n).is_file() for n in names):
        return False
    target.mkdir(parents=True, exist_ok=True)
    for name in names:
        link_or_copy(origin / name, target / name)
    return True
