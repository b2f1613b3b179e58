"""``stylesearch shares``: the style shares of a photo set, corrected for the classifier's
known errors, with 95 % intervals (:mod:`stylesearch.shares`)."""

from __future__ import annotations

import argparse
import html
from pathlib import Path
from typing import Any

from ..errors import UsageError
from .common import Commands, columns, emit, manifest_parser, open_index

MANIFEST_SUFFIXES = (".csv", ".jsonl")


def photos_of(args: argparse.Namespace) -> tuple[list[str], list[str] | None]:
    """The photo paths given (files, catalog folders, manifests) and, with ``--by``, each
    photo's value of that column (a manifest's column, or ``label`` for a folder per label)."""
    from ..catalog import load_catalog

    paths: list[str] = []
    groups: list[str] = []
    for given in args.photos:
        if Path(given).is_dir() or Path(given).suffix.lower() in MANIFEST_SUFFIXES:
            for item in load_catalog(given, columns=columns(args)).items:
                paths.append(str(item.path))
                groups.append(_group(item, args.by, given))
        elif Path(given).is_file():
            if args.by:
                raise UsageError(f"--by {args.by} needs photos from a manifest or a catalog folder; {given} is a single photo")
            paths.append(given)
        else:
            raise UsageError(f"{given}: no such photo, folder or manifest")
    if not paths:
        raise UsageError("no photos given: name photos, catalog folders or manifests")
    return paths, groups if args.by else None


def _group(item: Any, by: str | None, source: str) -> str:
    if not by:
        return ""
    if by == "label":
        return item.label or "(unlabelled)"
    if by not in item.attributes:
        known = ", ".join(sorted(item.attributes)) or "none"
        raise UsageError(f"--by {by}: {source} has no column {by!r} (its columns: {known})")
    return item.attributes[by]


def fmt_shares(result: dict[str, Any], indent: str = "  ") -> list[str]:
    lines = []
    for label, s in result["shares"].items():
        cc = result["classify_and_count"][label]
        lines.append(f"{indent}{label:<20} {s['share']:6.1%}  (95 % {s['low']:.1%}–{s['high']:.1%}; counted answers {cc:.1%})")
    return lines


def write_html(path: Path, result: dict[str, Any]) -> None:
    """A page with a bar per style (the interval drawn as a line over it), per group too."""
    sections = [("all photos", result)] + list(result.get("groups", {}).items())
    body = []
    for title, part in sections:
        rows = []
        for label, s in part["shares"].items():
            rows.append(
                f"<tr><td>{html.escape(label)}</td><td class='track'>"
                f"<span class='bar' style='width:{100 * s['share']:.1f}%'></span>"
                f"<span class='ci' style='left:{100 * s['low']:.1f}%;width:{100 * (s['high'] - s['low']):.1f}%'></span></td>"
                f"<td>{s['share']:.1%}</td><td>{s['low']:.1%}–{s['high']:.1%}</td>"
                f"<td>{part['classify_and_count'][label]:.1%}</td></tr>"
            )
        body.append(
            f"<h2>{html.escape(str(title))} ({part['photos']} photos)</h2><table><tr><th>style</th><th></th><th>share</th>"
            f"<th>95 % interval</th><th>counted answers</th></tr>{''.join(rows)}</table>"
        )
    path.write_text(
        "<!doctype html><meta charset='utf-8'><title>Style shares</title><style>"
        "body{font-family:sans-serif;margin:2em;max-width:60em}td,th{padding:.2em .6em;text-align:left}"
        ".track{position:relative;width:24em;height:1.2em;background:#eee}.bar{position:absolute;left:0;top:0;bottom:0;"
        "background:#4a7bd0}.ci{position:absolute;top:45%;height:10%;background:#111}</style>"
        f"<h1>Style shares</h1><p>{html.escape(result['method'])}.</p>{''.join(body)}",
        encoding="utf-8",
    )


def cmd_shares(args: argparse.Namespace) -> int:
    from .. import shares
    from .search import embed_given

    paths, groups = photos_of(args)
    with open_index(args) as engine:
        positions, vectors, failed = embed_given(engine, paths)
        result = shares.of(engine, vectors.values, None if groups is None else [groups[i] for i in positions], args.k)
    result["skipped"] = [{"path": paths[i], "reason": r} for i, r in sorted(failed.items())]
    lines = [f"{result['photos']} photos by style:"] + fmt_shares(result)
    for name, part in result.get("groups", {}).items():
        lines += [f"{args.by} = {name} ({part['photos']} photos):"] + fmt_shares(part, "    ")
    if failed:
        lines.append(f"skipped {len(failed)} file(s) that could not be read")
    if args.out:
        write_html(Path(args.out), result)
        lines.append(f"written: {args.out}")
    emit(args, result, "\n".join(lines))
    return 0


def register(commands: Commands) -> None:
    p = commands.add(
        "shares",
        "what share of a photo set is each style (corrected for the classifier's errors, with 95 % intervals)",
        cmd_shares,
        parents=[manifest_parser()],
    )
    p.add_argument("photos", nargs="+", metavar="PHOTO|FOLDER|MANIFEST")
    p.add_argument("--by", metavar="COLUMN", help="one estimate per value of this manifest column (or label)")
    p.add_argument("-k", type=int, default=10, help="neighbours that vote (default: 10)")
    p.add_argument("--out", metavar="FILE.html", help="also write a page with a bar chart")
