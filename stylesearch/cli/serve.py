"""``stylesearch serve`` and ``demo``."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from ..errors import MissingDependencyError
from .common import Commands, open_index, run_config


def cmd_serve(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from ..service.app import create_app
        from ..service.settings import Settings
    except ImportError as exc:
        raise MissingDependencyError(f"the service needs its dependencies ({exc.name}): pip install 'stylesearch[cpu]'") from exc
    # Settings travel through the environment so that every uvicorn worker process reads them.
    os.environ["STYLESEARCH_INDEX"] = str(args.index)
    if args.device != "auto" or "STYLESEARCH_DEVICE" not in os.environ:
        os.environ["STYLESEARCH_DEVICE"] = args.device
    if getattr(args, "engine", "auto") != "auto":
        os.environ["STYLESEARCH_ENGINE"] = args.engine
    engine = open_index(args)  # fail here, with the CLI's message, if the index cannot be opened
    items = len(engine)
    if args.workers > 1:
        engine.close()  # each worker process opens its own
    print(f"serving {args.index} ({items} items) on http://{args.host}:{args.port}/ — API docs at /docs", file=sys.stderr)
    if not os.environ.get("STYLESEARCH_API_KEYS", "").strip():
        print("writes (POST/DELETE /v1/items) are refused: set STYLESEARCH_API_KEYS=key1,key2 to allow them", file=sys.stderr)
    uvicorn.run(
        "stylesearch.service.app:app_from_env" if args.workers > 1 else create_app(Settings(), engine),
        factory=args.workers > 1,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level="info" if args.verbose else "warning",
    )
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from ..demo import run_demo

    summary = run_demo(
        Path(args.dir),
        Path(args.index) if args.index else None,
        per_cell=args.per_cell,
        run=run_config(args),
        out=None if args.json else print,
    )
    if args.json:
        print(json.dumps(summary, indent=2))
    return 0


def register(commands: Commands) -> None:
    p = commands.add("serve", "serve the HTTP API and the web page (uvicorn)", cmd_serve)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    p.add_argument("--port", type=int, default=8000, help="port (default: %(default)s)")
    p.add_argument("--workers", type=int, default=1, help="uvicorn worker processes, each with its own model (default: 1)")

    p = commands.add("demo", "generate the demo catalog, index it and show results", cmd_demo, index=False)
    p.add_argument("dir", nargs="?", default="demo-catalog", help="where to write the catalog (default: %(default)s)")
    p.add_argument("--index", default=None, help="index folder (default: DIR/index)")
    p.add_argument("--per-cell", type=int, default=4, help="images per (product, style) pair (default: 4)")
