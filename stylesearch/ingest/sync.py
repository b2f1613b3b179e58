"""Incremental sync: what changed between an index and its catalog (:func:`plan`), so that
:meth:`StyleSearch.sync` embeds only new and changed photos and publishes one generation.

An indexed item and a catalog item are the same item when they have the same id. Then:

- its file's size and modification time are what was recorded when it was embedded → its
  content is taken as unchanged (the fast path: one ``stat`` per file);
- otherwise its content is hashed (BLAKE2b); a different hash → **updated** (re-embedded),
  the same hash → unchanged (the new size / time are recorded);
- its label, attributes or path differ → **relabelled** (metadata only, no embedding).

Catalog items with a new id are **added**; indexed items whose id the catalog no longer has
are **removed** — except items added as uploaded bytes (their file is under the index's own
``media/`` folder), which belong to no catalog. A new or changed photo that cannot be read is
skipped and reported; an updated item then keeps its previous vector (bad input never costs
what is indexed). An index written before file stamps were recorded has none: its first sync
re-embeds every item once, as a full ``index`` would, and records them.

The projection is not refitted: vectors of new photos use the one fitted when the index was
built (as ``add`` does). After the catalog has changed a lot, ``index`` it again.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ..catalog import Catalog, Columns, Item, Skipped, load_catalog, path_text
from ..errors import CatalogError
from ..index import Record, Snapshot
from ..results import SyncReport
from ..stamps import Stamp, stamp


@dataclass
class SyncPlan:
    """What a sync does. ``embed``: catalog items to embed (added, then updated);
    ``replaced``: the indexed records the updated ones replace; ``relabel``: records with new
    path / label / attributes (same vid); ``removed``: records to drop; ``restamp``: vid → the
    new stamp of a file whose size or time changed with the same content (the embedded ones get
    theirs from the decode pass that read them)."""

    added: list[Item] = field(default_factory=list)
    updated: list[Item] = field(default_factory=list)
    replaced: list[Record] = field(default_factory=list)
    relabel: list[Record] = field(default_factory=list)
    removed: list[Record] = field(default_factory=list)
    restamp: dict[int, Stamp] = field(default_factory=dict)
    unchanged: int = 0
    skipped: list[Skipped] = field(default_factory=list)  # catalog files left out as it was read

    @property
    def embed(self) -> list[Item]:
        return self.added + self.updated

    def changes(self) -> bool:
        return bool(self.added or self.updated or self.relabel or self.removed or self.restamp)

    def report(self, failures: list[tuple[int, str]], items: int, seconds: float, generation: int | None = None) -> SyncReport:
        """The summary, once the embedded items at the positions of ``failures`` (in
        :attr:`embed`) were left out."""
        failed = {p for p, _ in failures}
        skipped = [Skipped(path_text(self.embed[p].path), reason) for p, reason in sorted(failures)]
        n_added = len(self.added)
        return SyncReport(
            added=sum(p not in failed for p in range(n_added)),
            updated=sum(p not in failed for p in range(n_added, len(self.embed))),
            relabelled=len(self.relabel),
            removed=len(self.removed),
            unchanged=self.unchanged + sum(p in failed for p in range(n_added, len(self.embed))),
            skipped=self.skipped + skipped,
            items=items,
            seconds=seconds,
            restamped=len(self.restamp),
            generation=generation,
        )


def load(catalog: Catalog | str | os.PathLike[str], manifest: str | os.PathLike[str] | None, columns: Columns | None) -> Catalog:
    """The catalog to sync with (a folder or a manifest, as ``index`` reads it). One with no
    usable image is refused: syncing it would empty the index (an unmounted drive, a wrong
    folder), which ``remove`` says better."""
    catalog = catalog if isinstance(catalog, Catalog) else load_catalog(catalog, manifest, columns=columns)
    if not catalog.items:
        raise CatalogError(
            f"the catalog has no usable image, so a sync would remove every item; check the folder "
            f"({len(catalog.skipped)} file(s) left out), or use 'stylesearch remove' to empty the index"
        )
    return catalog


def plan(catalog: Catalog, snapshot: Snapshot, media: Path) -> SyncPlan:
    """Compare ``catalog`` with the indexed items of ``snapshot`` (``media``: the index's
    folder of uploaded bytes, whose items are kept). Reads a file only when its size or
    modification time is not the recorded one (a new file is read only to be embedded)."""
    out = SyncPlan(skipped=list(catalog.skipped))
    indexed = {r.id: r for r in snapshot.meta.records()}
    known = snapshot.meta.stamps()
    for item in catalog.items:
        record = indexed.pop(item.id, None)
        if record is None:
            out.added.append(item)  # not read here: the decode pass stamps what it embeds
            continue
        before = known.get(record.vid)
        now = stamp(item.path, before)
        path = path_text(item.path)
        if before is None or now[2] != before[2]:
            # no record of the file (an index from before stamps) or new content: embed again
            out.updated.append(item)
            out.replaced.append(record)
            continue
        if now != before:
            out.restamp[record.vid] = now
        if (record.path, record.label, record.attributes) != (path, item.label, item.attributes):
            out.relabel.append(Record(record.vid, record.id, path, item.label, dict(item.attributes)))
        else:
            out.unchanged += 1
    media_root = str(media.resolve())
    out.removed = [r for r in indexed.values() if not r.path.startswith(media_root + os.sep)]
    return out
