"""``stylesearch index`` and ``reindex``: building indexes."""

from __future__ import annotations

import argparse

from ..config import IndexConfig
from .common import Commands, columns, embed_config, emit, fmt_report, manifest_parser, run_config, style_parser
from .options import add_options, config_from, must


def cmd_index(args: argparse.Namespace) -> int:
    from ..ingest import index_catalog

    report = index_catalog(
        args.catalog,
        args.index,
        manifest=args.manifest,
        embed=embed_config(args),
        run=run_config(args),
        options=config_from(IndexConfig, args),
        model=args.model,
        resume=args.resume,
        confine_paths=args.confine_paths,
        columns=columns(args),
        ray=args.ray,
        ray_workers=args.ray_workers,
    )
    emit(args, report.to_dict(), fmt_report(report, "indexed"))
    return 0


def cmd_reindex(args: argparse.Namespace) -> int:
    from .common import open_index

    options = must(config_from(IndexConfig, args))
    with open_index(args) as engine:
        built = engine.reindex(options.index_type, max_memory=options.max_memory, recall_target=options.recall_target)
        items = len(engine)
    params = "".join(f", {k}={v}" for k, v in built["search_params"].items())
    text = (
        f"rebuilt {items} items as {built['index_type']} ({built['index_key']}{params}); "
        f"tuned recall@10 {built['tuned_recall_at_10']}"
    )
    emit(args, built, text)
    return 0


def cmd_sync(args: argparse.Namespace) -> int:
    from .common import columns, open_index

    with open_index(args) as engine:
        report = engine.sync(args.catalog, args.manifest, columns=columns(args))
    text = (
        f"synced in {report.seconds:.1f} s: {report.added} added, {report.updated} updated, {report.relabelled} relabelled, "
        f"{report.removed} removed, {report.unchanged} unchanged; the index holds {report.items} items"
    )
    if report.generation is None:
        text += "; nothing changed, nothing written"
    elif report.restamped and not (report.added or report.updated or report.relabelled or report.removed):
        text += f"; recorded new file stamps of {report.restamped} unchanged file(s) in generation {report.generation}"
    if report.skipped:
        text += f"; skipped {len(report.skipped)} file(s):\n" + "\n".join(f"  {s.path}: {s.reason}" for s in report.skipped[:10])
    emit(args, report.to_dict(), text)
    return 0


def register(commands: Commands) -> None:
    p = commands.add("index", "build an index from a catalog folder or manifest", cmd_index, [style_parser(), manifest_parser()])
    p.add_argument("catalog", help="folder (one sub-folder per label, or unlabeled images) or a .csv/.jsonl manifest")
    p.add_argument("--manifest", help="CSV/JSONL manifest (columns path, optional id, label, attributes)")
    p.add_argument("--model", help="a folder from 'stylesearch train': its recipe, trained projection and head")
    p.add_argument(
        "--ray",
        nargs="?",
        const="local",
        metavar="ADDRESS",
        help="embed on Ray: a local instance on 127.0.0.1, or the cluster at ADDRESS (needs the 'ray' extra)",
    )
    p.add_argument("--ray-workers", type=int, help="embedding actors on Ray (default: the CPUs of a local instance)")
    p.add_argument(
        "--confine-paths",
        action="store_true",
        help="refuse manifest paths that are absolute, and links to files outside the catalog folder",
    )
    p.add_argument(
        "--resume", action="store_true", help="continue an interrupted run of the same command from its saved progress"
    )
    add_options(p.add_argument_group("index"), IndexConfig)

    p = commands.add(
        "sync",
        "bring an index up to date with its catalog: embed new and changed photos, drop gone ones, apply new labels",
        cmd_sync,
        [manifest_parser()],
    )
    p.add_argument("catalog", help="the catalog folder or .csv/.jsonl manifest the index was built from (as it is now)")
    p.add_argument("--manifest", help="CSV/JSONL manifest (columns path, optional id, label, attributes)")

    p = commands.add("reindex", "rebuild the FAISS index as another type from the stored vectors (no re-embedding)", cmd_reindex)
    add_options(p, IndexConfig, skip=("vector_dtype", "pca_sample", "seed", "checkpoint_every", "store"))
