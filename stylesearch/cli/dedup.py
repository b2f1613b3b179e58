"""``stylesearch dedup``: groups of near-duplicate items, as text, CSV, JSON and a page of
thumbnails."""

from __future__ import annotations

import argparse
import base64
import csv
import html
import io
import json
from pathlib import Path
from typing import Any

from ..config import DUPLICATE_THRESHOLD
from ..errors import UsageError
from .common import Commands, emit, open_index

THUMB = 128
PAGE_GROUPS = 500  # groups drawn on the HTML page (all of them go to --out)


def cmd_dedup(args: argparse.Namespace) -> int:
    with open_index(args) as engine:
        groups = engine.duplicates(args.threshold, args.k)
        shown = [i for g in groups[:PAGE_GROUPS] for i, _ in g.members] if args.html else []
        paths = {r.id: r.path for r in engine.snapshot.meta.by_ids(shown)}  # one query for the page's photos
        items = len(engine)
    data = [g.to_dict() for g in groups]
    if args.out:
        write_groups(Path(args.out), data)
    if args.html:
        write_page(Path(args.html), data, paths, args.threshold)
    copies = sum(len(g.members) - 1 for g in groups)
    lines = [f"{len(groups)} group(s) of near-duplicates among {items} items (copy score >= {args.threshold}): {copies} copies"]
    for g in groups[: args.show]:
        n = len(g.members) - 1
        members = ", ".join(f"{i} ({s:.3f})" for i, s in g.members[1:])
        lines.append(f"  {g.representative} and {n} cop{'y' if n == 1 else 'ies'}: {members}")
    if len(groups) > args.show:
        lines.append(f"  … and {len(groups) - args.show} more" + ("" if args.out else " (--out FILE lists them all)"))
    lines += [f"written: {p}" for p in (args.out, args.html) if p]
    emit(args, {"threshold": args.threshold, "items": items, "groups": data}, "\n".join(lines))
    return 0


def write_groups(path: Path, groups: list[dict[str, Any]]) -> None:
    """``.json``: the groups as a list; ``.csv``: a row per member (group, representative, id, score)."""
    if path.suffix.lower() == ".json":
        path.write_text(json.dumps(groups, indent=1), encoding="utf-8")
        return
    if path.suffix.lower() != ".csv":
        raise UsageError(f"--out {str(path)!r}: give a .csv or .json file name")
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["group", "representative", "id", "score"])
        for n, g in enumerate(groups):
            for m in g["members"]:
                writer.writerow([n, g["representative"], m["id"], m["score"]])


def _thumbnail(path: str) -> str:
    from ..catalog import path_of
    from ..images import load_image

    try:
        image = load_image(path_of(path))
    except Exception as exc:  # noqa: BLE001 - a page of thumbnails shows what it can
        return f'<span class="missing">{html.escape(str(exc))}</span>'
    image.thumbnail((THUMB, THUMB))
    buf = io.BytesIO()
    image.convert("RGB").save(buf, format="JPEG", quality=80)
    return f'<img src="data:image/jpeg;base64,{base64.b64encode(buf.getvalue()).decode()}" alt="">'


def write_page(path: Path, groups: list[dict[str, Any]], paths: dict[str, str], threshold: float) -> None:
    """A standalone HTML page: one row of thumbnails per group (the representative first)."""
    rows = []
    for g in groups[:PAGE_GROUPS]:
        cells = "".join(
            f'<figure class="{"rep" if m["id"] == g["representative"] else ""}">{_thumbnail(paths[m["id"]])}'
            f"<figcaption>{html.escape(m['id'])}<br>{m['score']:.3f}</figcaption></figure>"
            for m in g["members"]
        )
        rows.append(
            f"<section><h2>{html.escape(g['representative'])} and {g['copies']} cop{'y' if g['copies'] == 1 else 'ies'}</h2>"
            f'<div class="row">{cells}</div></section>'
        )
    more = f"<p>… and {len(groups) - PAGE_GROUPS} more groups (see --out).</p>" if len(groups) > PAGE_GROUPS else ""
    path.write_text(
        "<!doctype html><html lang=en><meta charset=utf-8><title>stylesearch: near-duplicates</title><style>"
        "body{font-family:system-ui,sans-serif;margin:1.5rem}.row{display:flex;gap:.5rem;flex-wrap:wrap}"
        "figure{margin:0;width:140px;font-size:.75rem;overflow-wrap:anywhere}figure.rep img{outline:3px solid #2f5fd0}"
        "img{max-width:128px;max-height:128px}h2{font-size:1rem}</style>"
        f"<h1>{len(groups)} groups of near-duplicates</h1><p>Copy score at or above {threshold} (the same pixels, "
        "up to re-encoding, resizing, mirroring and small crops); the outlined photo represents its group.</p>"
        f"{''.join(rows)}{more}</html>",
        encoding="utf-8",
    )


def register(commands: Commands) -> None:
    p = commands.add("dedup", "list groups of near-duplicate items (re-shot, re-encoded, resized, cropped …)", cmd_dedup)
    p.add_argument(
        "--threshold",
        type=float,
        default=DUPLICATE_THRESHOLD,
        help=f"copy score (stylesearch.copies) at or above which two items are copies (default: {DUPLICATE_THRESHOLD})",
    )
    p.add_argument("--k", type=int, default=16, help="candidates of each item that are scored (default: 16)")
    p.add_argument("--out", help="write every group: FILE.csv (a row per member) or FILE.json")
    p.add_argument("--html", help="write a page of thumbnails, a row per group")
    p.add_argument("--show", type=int, default=20, help="groups printed (default: 20)")
