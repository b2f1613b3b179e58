"""``stylesearch query`` and ``classify``: answers for photos."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..config import CLASSIFY_METHODS, DEFAULT_MIN_CONFIDENCE
from ..errors import UsageError
from .common import Commands, emit, fmt_hits, open_index, where_from


def fmt_classification(c: Any) -> str:
    scores = ", ".join(f"{k} {v:.2f}" for k, v in list(c.scores.items())[:5])
    label = c.label if c.label is not None else "unknown"
    methods = "; ".join(
        f"{name} says {ans['label']} ({ans['confidence']:.2f})" for name, ans in (("kNN", c.knn), ("head", c.linear)) if ans
    )
    scores = f"{scores} — {methods}" if c.method == "both" else scores
    evidence = fmt_hits(c.neighbors[:5], "    ")
    return f"{c.image}\n  style: {label} (confidence {c.confidence:.2f}; {scores})\n  evidence:\n{evidence}"


def cmd_query(args: argparse.Namespace) -> int:
    where = where_from(args)
    with open_index(args) as engine:
        results = engine.query(list(args.images), k=args.k, where=where)
    text = "\n".join(f"{r.image}\n{fmt_hits(r.results)}" for r in results)
    emit(args, [r.to_dict() for r in results], text)
    return 0


def cmd_classify(args: argparse.Namespace) -> int:
    where = where_from(args)
    if args.summary:
        if where:
            raise UsageError("--summary classifies whole folders; drop --where")
        return _classify_summary(args)
    with open_index(args) as engine:
        results = engine.classify(
            list(args.images),
            k=args.k,
            where=where,
            min_confidence=args.min_confidence,
            method=args.method,
            balanced=args.balanced,
        )
    emit(args, [c.to_dict() for c in results], "\n".join(fmt_classification(c) for c in results))
    return 0


def _classify_summary(args: argparse.Namespace) -> int:
    from ..catalog import load_catalog
    from ..report import summarize_styles

    paths: list[str] = []
    for given in args.images:
        if Path(given).is_dir():
            paths += [str(item.path) for item in load_catalog(given).items]
        else:
            paths.append(given)
    with open_index(args) as engine:
        summary = summarize_styles(
            engine, paths, Path(args.out), k=args.k, method=args.method, min_confidence=args.min_confidence
        )
    lines = [f"{summary['images']} images by style:"]
    lines += [f"  {key:<20} {n:>6}  {summary['shares'][key]:6.1%}" for key, n in summary["styles"].items()]
    if summary["skipped"]:
        lines.append(f"skipped {len(summary['skipped'])} file(s) that could not be read")
    lines.append(f"written: {', '.join(summary['files'])}")
    emit(args, summary, "\n".join(lines))
    return 0


def register(commands: Commands) -> None:
    p = commands.add("query", "find items in the same style as images", cmd_query)
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("-k", type=int, default=10, help="results per image (default: 10)")
    p.add_argument("--where", action="append", metavar="KEY=VALUE", help="keep items whose attribute matches (repeatable)")

    p = commands.add("classify", "predict the style of images by kNN vote and the trained head", cmd_classify)
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("-k", type=int, default=10, help="neighbours that vote (default: 10)")
    p.add_argument("--where", action="append", metavar="KEY=VALUE", help="vote only among matching items (repeatable)")
    p.add_argument(
        "--min-confidence", type=float, default=None, help=f"below it the label is unknown (default: {DEFAULT_MIN_CONFIDENCE})"
    )
    p.add_argument("--method", default="both", choices=list(CLASSIFY_METHODS), help="kNN vote, trained head, or both (default)")
    p.add_argument(
        "--balanced",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="divide each kNN vote by its label's item count, so new / rare styles can win (default; --no-balanced: plain vote)",
    )
    p.add_argument("--summary", action="store_true", help="count the images (or folders of images) per style")
    p.add_argument("--out", default="style-summary", help="with --summary: folder for summary.json and summary.png")
