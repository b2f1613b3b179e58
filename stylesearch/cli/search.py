"""``stylesearch query`` and ``classify``: answers for photos."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..config import CLASSIFY_METHODS, DEFAULT_MIN_CONFIDENCE, DEFAULT_MIN_FAMILIARITY, PRIORS, ArrangeOptions
from ..errors import ImageError, UsageError, did_you_mean
from ..results import QueryResult
from .common import Commands, emit, fmt_hits, open_index, where_from
from .options import add_options, config_from, must


def fmt_classification(c: Any) -> str:
    scores = ", ".join(f"{k} {v:.2f}" for k, v in list(c.scores.items())[:5])
    label = c.label if c.label is not None else "unknown"
    methods = "; ".join(
        f"{name} says {ans['label']} ({ans['confidence']:.2f})" for name, ans in (("kNN", c.knn), ("head", c.linear)) if ans
    )
    scores = f"{scores} — {methods}" if c.method == "both" else scores
    why = f" [{c.reason}]" if c.label is None and c.reason else ""
    if c.label is None and c.answer is not None and c.reason != "no_labelled_items":
        why += f" (best guess {c.answer})"
    support = f"; {c.support} of {len(c.neighbors)} neighbours {c.answer}" if c.support is not None else ""
    evidence = fmt_hits(c.neighbors[:5], "    ")
    hint = f"\n  hint: {c.hint}" if c.hint else ""
    return (
        f"{c.image}\n  style: {label}{why} (confidence {c.confidence:.2f}{support}; {scores}){hint}\n"
        f"{fmt_familiarity(c.familiarity)}  evidence:\n{evidence}"
    )


def fmt_familiarity(value: float | None) -> str:
    """A line that says how much a photo looks like the catalog (or nothing when unknown)."""
    if value is None:
        return ""
    if value < DEFAULT_MIN_FAMILIARITY:
        return f"  looks like: nothing in this catalog (familiarity {value:.3f})\n"
    return f"  looks like this catalog: familiarity {value:.2f} (percentile of the catalog's own items)\n"


def embed_given(engine: Any, images: list[str]) -> tuple[list[int], Any, dict[int, str]]:
    """The style vectors of the images that can be read: (their positions, vectors, reason per
    position that failed). One unreadable image does not sink the others; none readable is
    an error."""
    done = engine.embed_lenient(images)
    positions, vectors, failed = done.positions.tolist(), done, dict(done.failures)
    if not positions:
        shown = "; ".join(f"{images[i]}: {r}" for i, r in list(failed.items())[:3])
        raise ImageError(f"none of the {len(images)} image(s) could be read ({shown})")
    return positions, vectors, failed


def emit_in_place(
    args: argparse.Namespace, images: list[str], answers: dict[int, Any], failed: dict[int, str], show: list[str] | None = None
) -> None:
    """One entry per image in the order given: its answer (a query result or a
    classification), or ``{"image", "error"}`` for one that could not be read; then a count
    of those on stderr."""
    data: list[dict[str, Any]] = []
    text: list[str] = []
    for i, image in enumerate(images):
        if i in failed:
            data.append({"image": image, "error": failed[i]})
            text.append(f"{image}\n  error: {failed[i]}")
        else:
            data.append(answers[i].to_dict())
            text.append(fmt_answer(answers[i], show))
    emit(args, data, "\n".join(text))
    if failed:
        print(f"stylesearch: {len(failed)} of {len(images)} image(s) could not be read (see above)", file=sys.stderr)


def fmt_answer(answer: Any, show: list[str] | None = None) -> str:
    if isinstance(answer, QueryResult):
        hint = f"\n  hint: {answer.hint}" if answer.hint else ""
        warning = "  OUT OF CATALOG: these are only the least unlike items, not the same style\n" if answer.out_of_catalog else ""
        return f"{answer.image}\n{fmt_familiarity(answer.familiarity)}{warning}{fmt_hits(answer.results, show=show)}{hint}"
    return fmt_classification(answer)


def show_of(args: argparse.Namespace, engine: Any) -> list[str] | None:
    """``--show a,b`` → ``["a", "b"]`` (each an attribute some item has, else a usage error
    with the closest names); ``--show all`` → ``["all"]``; not given → ``None``."""
    given = getattr(args, "show", None)
    fields = [f.strip() for f in given.split(",") if f.strip()] if given else None
    if fields and fields != ["all"]:
        keys = engine.snapshot.meta.attribute_keys()
        for field in fields:
            if field not in keys:
                raise UsageError(
                    f"--show {field}: no item has the attribute {field!r}{did_you_mean(field, keys)}; "
                    f"show {', '.join(keys) or 'nothing: the items have no attributes'}, or all"
                )
    return fields


def board_title(examples: list[Any]) -> str:
    """What a mood-board query asked, in words: ``similar to item 25051`` for one item,
    else the pinned and pushed-away examples."""

    def name(e: Any) -> str:
        return f"item {e.value}" if e.kind == "item" else str(e.value)

    pinned = [name(e) for e in examples if e.weight > 0]
    pushed = [name(e) for e in examples if e.weight < 0]
    if len(pinned) == 1 and not pushed:
        return f"similar to {pinned[0]}"
    return "mood board: " + "; ".join(
        part for part in (f"like {', '.join(pinned)}" if pinned else "", f"unlike {', '.join(pushed)}" if pushed else "") if part
    )


def arrangement(args: argparse.Namespace) -> dict[str, Any]:
    """The arrange options given (:class:`~stylesearch.config.ArrangeOptions`), checked."""
    return must(config_from(ArrangeOptions, args)).to_dict()


def cmd_query(args: argparse.Namespace) -> int:
    where = where_from(args)
    images = list(args.images)
    if not images and not args.against:
        raise UsageError("give at least one IMAGE (a photo, or mood-board examples such as item:ID)")
    if args.board or args.against or any(is_board_syntax(x) for x in images):
        return _query_board(args, where)
    with open_index(args) as engine:
        show = show_of(args, engine)
        positions, vectors, failed = embed_given(engine, images)
        results = engine.query_vectors(vectors, args.k, where, [images[i] for i in positions], **arrangement(args))
    emit_in_place(args, images, dict(zip(positions, results)), failed, show)
    return 0


def is_board_syntax(text: str) -> bool:
    """Whether a query argument is written as a mood-board example (``item:ID``, ``PATH:W``)."""
    return not Path(text).exists() and (text.startswith("item:") or (":" in text and Path(text.rpartition(":")[0]).is_file()))


def board_argv(argv: list[str]) -> list[str]:
    """``stylesearch query a.jpg -item:42`` works as written: a query argument that starts
    with ``-`` and names an item (``-item:ID``) or an existing file becomes ``--against=…``
    before argparse, which would take it for an option."""
    if not argv or argv[0] != "query":
        return argv
    out = []
    for arg in argv:
        rest = arg[1:]
        named = Path(rest).is_file() or (":" in rest and Path(rest.rpartition(":")[0]).is_file())
        negative = arg.startswith("-item:") or (arg.startswith("-") and not arg.startswith("--") and named)
        out.append(f"--against={rest}" if negative else arg)
    return out


def _query_board(args: argparse.Namespace, where: Any) -> int:
    from ..board import Example

    examples = [Example.parse(x) for x in args.images]
    examples += [Example.parse("-" + text) for text in args.against or []]
    with open_index(args) as engine:
        show = show_of(args, engine)
        hits = engine.board(examples, args.k, where, args.strategy, **arrangement(args))
    result = QueryResult(board_title(examples), hits)
    emit(args, [result.to_dict()], fmt_answer(result, show))
    return 0


def cmd_classify(args: argparse.Namespace) -> int:
    where = where_from(args)
    if args.summary:
        if where:
            raise UsageError("--summary classifies whole folders; drop --where")
        return _classify_summary(args)
    images = list(args.images)
    with open_index(args) as engine:
        positions, vectors, failed = embed_given(engine, images)
        results = engine.classify_vectors(
            vectors,
            k=args.k,
            where=where,
            min_confidence=args.min_confidence,
            method=args.method,
            prior=args.prior,
            min_familiarity=args.min_familiarity,
        )
    for i, c in zip(positions, results):
        c.image = images[i]
    emit_in_place(args, images, dict(zip(positions, results)), failed)
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
    p = commands.add("query", "find items in the same style as images (or as one mood board of several)", cmd_query)
    p.add_argument(
        "images",
        nargs="*",
        metavar="IMAGE",
        help="a photo per query; or, as one mood board, examples PATH[:WEIGHT], item:ID[:WEIGHT] and -item:ID / -PATH "
        "(pushed away; weight 0.5 unless given)",
    )
    p.add_argument("-k", type=int, default=10, help="results per image, or groups with --group-by (default: 10)")
    p.add_argument("--where", action="append", metavar="KEY=VALUE", help="keep items whose attribute matches (repeatable)")
    add_options(p, ArrangeOptions)
    p.add_argument(
        "--show",
        metavar="COLUMNS|all",
        help="attributes on each result's line, comma-separated, or all (default: $STYLESEARCH_CARD_FIELDS, "
        "else up to two short ones; lines are cut at 120 characters)",
    )
    p.add_argument("--board", action="store_true", help="combine every IMAGE into one mood-board query")
    p.add_argument("--against", action="append", metavar="EXAMPLE", help="a mood-board example to push away (repeatable)")
    p.add_argument(
        "--strategy", default="average", choices=["average", "best_score"], help="how a mood board combines (default: average)"
    )

    p = commands.add("classify", "predict the style of images by kNN vote and the trained head", cmd_classify)
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("-k", type=int, default=10, help="neighbours that vote (default: 10)")
    p.add_argument("--where", action="append", metavar="KEY=VALUE", help="vote only among matching items (repeatable)")
    p.add_argument(
        "--min-confidence", type=float, default=None, help=f"below it the label is unknown (default: {DEFAULT_MIN_CONFIDENCE})"
    )
    p.add_argument("--method", default="both", choices=list(CLASSIFY_METHODS), help="kNN vote, trained head, or both (default)")
    p.add_argument(
        "--prior",
        default="catalog",
        choices=list(PRIORS),
        help="how likely each style is before the photo is seen: catalog (default; the index's label shares, "
        "mixed with uniform) or uniform (every style alike, e.g. for a hand-picked balanced set)",
    )
    p.add_argument(
        "--min-familiarity",
        type=float,
        default=None,
        help="below this familiarity (how much the photo looks like the catalog, 0-1) the answer is unknown, "
        f"reason out_of_catalog (default: {DEFAULT_MIN_FAMILIARITY}; 0: off)",
    )
    p.add_argument("--summary", action="store_true", help="count the images (or folders of images) per style")
    p.add_argument("--out", default="style-summary", help="with --summary: folder for summary.json and summary.png")
