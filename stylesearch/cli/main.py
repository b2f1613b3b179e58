"""The ``stylesearch`` command: parsing, logging, and errors → exit codes.

The only place that configures logging or prints (with the command modules). An error is
one line on stderr and its ``exit_code`` (1: the job failed, 2: a usage mistake, as
argparse's own). ``--help`` and ``--version`` import no torch.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from .._version import __version__
from ..errors import StyleSearchError
from . import build, dedup, explain, items, learn, search, serve, shares
from .common import Commands, common_parser

COMMAND_GROUPS = (build, search, items, learn, dedup, explain, serve, shares)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stylesearch", description="Find and classify products by visual style.")
    parser.add_argument("--version", action="version", version=f"stylesearch {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands = Commands(sub, common_parser())
    for group in COMMAND_GROUPS:
        group.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    for stream in (sys.stdout, sys.stderr):  # file names need not be valid UTF-8
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    args = build_parser().parse_args(search.board_argv(list(sys.argv[1:] if argv is None else argv)))
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args))
    except StyleSearchError as exc:
        print(f"stylesearch: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("stylesearch: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `stylesearch query … | head`: the reader left, nothing to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:  # a full disk, a read-only folder, a file that vanished: say it in one line
        print(f"stylesearch: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
