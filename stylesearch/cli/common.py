"""What every command shares: common options, the style options, output, opening the index.

Only the standard library and the torch-free config are imported at module level, so that
``stylesearch --help`` starts at once; commands import the engine when they run.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from typing import Any

from ..config import DEVICES, PRECISIONS, RUNTIMES, EmbedConfig, RunConfig, environment
from .options import add_options, config_from, must

Command = Callable[[argparse.Namespace], int]


def common_parser() -> argparse.ArgumentParser:
    """Options every command takes."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="machine-readable JSON on stdout")
    common.add_argument("--device", default="auto", help=f"{' | '.join(DEVICES)} (default: auto)")
    common.add_argument(
        "--precision",
        default="auto",
        choices=list(PRECISIONS),
        help="backbone arithmetic (auto: fp16 on CUDA, which keeps the CPU's rankings, fp32 on CPU; bf16: faster, "
        "but reorders close neighbours; int8: an OpenVINO model quantised at index time)",
    )
    common.add_argument(
        "--engine",
        default="auto",
        help=f"the inference runtime: auto | {' | '.join(RUNTIMES)} (auto: openvino on a CPU when installed, else torch)",
    )
    common.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    return common


def style_parser() -> argparse.ArgumentParser:
    """The style recipe (given only: an index's or a model's own recipe otherwise) and how
    images are decoded and batched."""
    style = argparse.ArgumentParser(add_help=False)
    add_options(style.add_argument_group("style model"), EmbedConfig, given_only=True)
    add_options(style.add_argument_group("computation"), RunConfig, skip=("device", "precision", "engine"))
    return style


def manifest_parser() -> argparse.ArgumentParser:
    """How a manifest's columns are read (commands that read a catalog)."""
    parser = argparse.ArgumentParser(add_help=False)
    group = parser.add_argument_group("manifest columns")
    group.add_argument("--path-column", default="path", help="column of the image paths (default: path)")
    group.add_argument("--id-column", default="id", help="column of the item ids (default: id; else the file name)")
    group.add_argument("--label-column", default="label", help="column of the style labels (default: label), e.g. usage")
    group.add_argument(
        "--unlabelled",
        action="store_true",
        help="the manifest has no labels on purpose (no warning about a missing label column)",
    )
    return parser


def columns(args: argparse.Namespace) -> Any:
    from ..catalog import Columns

    return Columns(args.path_column, args.id_column, args.label_column, args.unlabelled)


class Commands:
    """Registers subcommands: each gets the common options and its own ``--index``."""

    def __init__(self, sub: Any, common: argparse.ArgumentParser) -> None:
        self.sub = sub
        self.common = common

    def add(
        self, name: str, help_: str, func: Command, parents: Sequence[argparse.ArgumentParser] = (), index: bool = True
    ) -> argparse.ArgumentParser:
        p = self.sub.add_parser(name, parents=[self.common, *parents], help=help_, description=help_)
        # Each command gets its own --index action: argparse shares a parent's actions, so a
        # default changed for one command would change for all.
        if index:
            p.add_argument("--index", default=environment().index, help="index folder (default: %(default)s)")
        p.set_defaults(func=func)
        return p


def run_config(args: argparse.Namespace) -> RunConfig:
    return must(config_from(RunConfig, args, progress=None if not args.json else False))


def embed_config(args: argparse.Namespace) -> EmbedConfig | None:
    """The style recipe the options ask for, or ``None`` when none was given."""
    return config_from(EmbedConfig, args, given_only=True)


def where_from(args: argparse.Namespace) -> Any:
    from .. import Where

    return Where.parse_pairs(getattr(args, "where", None))


def open_index(args: argparse.Namespace) -> Any:
    from ..engine import StyleSearch

    return StyleSearch.open(args.index, run=run_config(args))


def emit(args: argparse.Namespace, data: Any, text: str) -> None:
    print(json.dumps(data, indent=2) if args.json else text)


LINE = 120  # a hit's line by default: at most this many characters
SHORT = 24  # an attribute value shown by default is at most this long


def fmt_attrs(attrs: dict[str, str]) -> str:
    return " ".join(f"{k}={v}" for k, v in attrs.items())


def shown(attrs: dict[str, str], show: Sequence[str] | None) -> dict[str, str]:
    """The attributes a hit's line shows: ``show`` names them (``all``: every one); by default
    ``$STYLESEARCH_CARD_FIELDS``, else the first two with short values."""
    from ..config import environment

    fields = list(show or environment().card_fields)
    if fields == ["all"]:
        return dict(attrs)
    if fields:
        return {k: attrs[k] for k in fields if k in attrs}
    return dict([(k, v) for k, v in attrs.items() if len(v) <= SHORT][:2])


def fmt_hits(hits: Sequence[Any], indent: str = "  ", show: Sequence[str] | None = None) -> str:
    """One line per hit: rank, score, id, label and a few attributes (:func:`shown`); a line is
    cut at :data:`LINE` characters unless ``show`` asks for more."""
    lines = []
    group = None
    for rank, h in enumerate(hits, 1):
        if getattr(h, "group", None) is not None and h.group != group:
            group = h.group
            lines.append(f"{indent}[{group}]")
        attrs = shown(h.attributes, show)
        line = f"{indent}{rank:>2}. {h.score:6.3f}  {h.id:<20} {h.label or '-':<14}" + (f"  {fmt_attrs(attrs)}" if attrs else "")
        lines.append(line if show or len(line) <= LINE else line[: LINE - 1] + "…")
    return "\n".join(lines) if lines else f"{indent}(no matching items)"


def fmt_report(report: Any, verb: str) -> str:
    lines = [
        f"{verb} {report.added} images into {report.index_dir} in {report.seconds:.1f} s "
        f"({report.images_per_second:.1f} images/s); the index holds {report.items} items"
    ]
    if report.labels:
        lines.append("labels: " + ", ".join(f"{k} ({v})" for k, v in report.labels.items()))
    if report.skipped:
        lines.append(f"skipped {len(report.skipped)} file(s):")
        lines += [f"  {s.path}: {s.reason}" for s in report.skipped]
    return "\n".join(lines)
