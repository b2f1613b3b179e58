"""The ``stylesearch`` command. The only module that configures logging or prints."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import __version__
from .config import HEADS, LOSSES, EmbedConfig, IndexConfig, RunConfig, TrainConfig
from .errors import ConfigError, StyleSearchError

_TRAIN = TrainConfig()  # defaults of "stylesearch train"

log = logging.getLogger("stylesearch")
DEFAULT_INDEX = os.environ.get("STYLESEARCH_INDEX", "indexes/default")


def _key_values(pairs: Sequence[str] | None, what: str) -> dict[str, Any]:
    """``["a=1", "a=2", "b=3"]`` → ``{"a": ["1", "2"], "b": "3"}``."""
    out: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"{what} {pair!r} must look like KEY=VALUE")
        if key in out:
            out[key] = (out[key] if isinstance(out[key], list) else [out[key]]) + [value]
        else:
            out[key] = value
    return out


def _run_config(args: argparse.Namespace) -> RunConfig:
    return RunConfig(
        device=args.device,
        batch_size=getattr(args, "batch_size", 64),
        workers=getattr(args, "workers", -1),
        progress=None if not args.json else False,
        precision=getattr(args, "precision", "auto"),
        decode=getattr(args, "decode", "auto"),
    )


def _emit(args: argparse.Namespace, data: Any, text: str) -> None:
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        print(text)


def _fmt_attrs(attrs: dict[str, str]) -> str:
    return " ".join(f"{k}={v}" for k, v in attrs.items())


def _fmt_hits(hits: Sequence[Any], indent: str = "  ") -> str:
    lines = []
    for rank, h in enumerate(hits, 1):
        extra = f"  {_fmt_attrs(h.attributes)}" if h.attributes else ""
        lines.append(f"{indent}{rank:>2}. {h.score:6.3f}  {h.id:<32} {h.label or '-':<16}{extra}")
    return "\n".join(lines) if lines else f"{indent}(no matching items)"


def _fmt_classification(c: Any) -> str:
    scores = ", ".join(f"{k} {v:.2f}" for k, v in list(c.scores.items())[:5])
    label = c.label if c.label is not None else "unknown"
    methods = "; ".join(
        f"{name} says {ans['label']} ({ans['confidence']:.2f})" for name, ans in (("kNN", c.knn), ("head", c.linear)) if ans
    )
    scores = f"{scores} — {methods}" if c.method == "both" else scores
    evidence = _fmt_hits(c.neighbors[:5], "    ")
    return f"{c.image}\n  style: {label} (confidence {c.confidence:.2f}; {scores})\n  evidence:\n{evidence}"


def _fmt_report(report: Any, verb: str) -> str:
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


# --------------------------------------------------------------------------- commands


STYLE_OPTIONS = ("backbone", "weights", "layers", "pool_layer", "recipe", "dim", "image_size")


def _embed_from_args(args: argparse.Namespace) -> EmbedConfig | None:
    """The style recipe the options ask for, or ``None`` when none was given."""
    given = {n: getattr(args, n) for n in STYLE_OPTIONS if getattr(args, n, None) is not None}
    if not given:
        return None
    if "layers" in given:
        given["layers"] = tuple(x for x in given["layers"].split(",") if x)
    return EmbedConfig(**given)


def cmd_index(args: argparse.Namespace) -> int:
    from .engine import index_catalog
    from .index.factory import parse_memory

    options = IndexConfig(
        vector_dtype=args.vector_dtype,
        pca_sample=args.pca_sample,
        seed=args.seed,
        index_type=args.index_type,
        max_memory=parse_memory(args.max_memory) if args.max_memory else None,
        recall_target=args.recall_target,
        checkpoint_every=args.checkpoint_every,
        store=args.store,
    )
    report = index_catalog(
        args.catalog,
        args.index,
        manifest=args.manifest,
        embed=_embed_from_args(args),
        run=_run_config(args),
        options=options,
        model=args.model,
        resume=args.resume,
        confine_paths=args.confine_paths,
        ray=args.ray,
        ray_workers=args.ray_workers,
    )
    _emit(args, report.to_dict(), _fmt_report(report, "indexed"))
    return 0


def _open(args: argparse.Namespace) -> Any:
    from .engine import StyleSearch

    return StyleSearch.open(args.index, run=_run_config(args))


def cmd_query(args: argparse.Namespace) -> int:
    where = _key_values(args.where, "--where")
    with _open(args) as engine:
        results = engine.query(list(args.images), k=args.k, where=where or None)
    text = "\n".join(f"{r.image}\n{_fmt_hits(r.results)}" for r in results)
    _emit(args, [r.to_dict() for r in results], text)
    return 0


def cmd_classify(args: argparse.Namespace) -> int:
    where = _key_values(args.where, "--where")
    if args.summary:
        return _classify_summary(args, where)
    with _open(args) as engine:
        results = engine.classify(
            list(args.images),
            k=args.k,
            where=where or None,
            min_confidence=args.min_confidence,
            method=args.method,
            balanced=args.balanced,
        )
    _emit(args, [c.to_dict() for c in results], "\n".join(_fmt_classification(c) for c in results))
    return 0


def _classify_summary(args: argparse.Namespace, where: dict[str, Any]) -> int:
    from .catalog import load_catalog
    from .report import summarize_styles

    if where:
        raise ConfigError("--summary classifies whole folders; drop --where")
    paths: list[str] = []
    for given in args.images:
        if Path(given).is_dir():
            paths += [str(item.path) for item in load_catalog(given).items]
        else:
            paths.append(given)
    with _open(args) as engine:
        summary = summarize_styles(
            engine, paths, Path(args.out), k=args.k, method=args.method, min_confidence=args.min_confidence
        )
    lines = [f"{summary['images']} images by style:"]
    lines += [f"  {key:<20} {n:>6}  {summary['shares'][key]:6.1%}" for key, n in summary["styles"].items()]
    if summary["skipped"]:
        lines.append(f"skipped {len(summary['skipped'])} file(s) that could not be read")
    lines.append(f"written: {', '.join(summary['files'])}")
    _emit(args, summary, "\n".join(lines))
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from .model.train import train_model

    cfg = TrainConfig(
        loss=args.loss,
        epochs=args.epochs,
        batch_size=args.train_batch_size,
        m_per_class=args.m_per_class,
        lr=args.lr,
        weight_decay=args.weight_decay,
        optimizer=args.optimizer,
        val_fraction=args.val_fraction,
        patience=args.patience,
        head=args.head,
        flip=not args.no_flip,
        anchor=args.anchor,
        pca_dims=args.pca_dims,
        search_pca_weight=args.search_pca_weight,
        classify_pca_weight=args.classify_pca_weight,
        train_blocks=args.train_blocks,
        backbone_lr=args.backbone_lr,
        seed=args.seed,
    )
    report = train_model(
        args.catalog,
        args.out,
        manifest=args.manifest,
        embed=_embed_from_args(args),
        train=cfg,
        run=_run_config(args),
        resume=args.resume,
    )
    text = (
        f"trained {report.epochs_run} epochs in {report.seconds:.0f} s ({report.seconds_per_epoch:.1f} s/epoch); "
        f"best epoch {report.best_epoch}, validation MAP@R {report.best_val_map_at_r}, "
        f"head validation accuracy {report.head_val_accuracy}\nmodel written to {report.out_dir}; "
        f"index with: stylesearch index CATALOG --model {report.out_dir}"
    )
    _emit(args, {k: v for k, v in report.to_dict().items() if k != "log"}, text)
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from .catalog import load_catalog
    from .report import run_evaluation

    catalog = load_catalog(args.catalog, args.manifest)
    index_kwargs = {"embed": _embed_from_args(args), "run": _run_config(args), "model": args.model}
    report = run_evaluation(
        catalog,
        Path(args.out),
        split_column=args.split_column,
        gallery_split=args.gallery_split,
        query_split=args.query_split,
        k=args.k,
        group_by=args.group_by,
        index_kwargs=index_kwargs,
    )
    slim = {k: v for k, v in report.items() if k not in ("knn", "linear")}
    for method in ("knn", "linear"):
        if method in report:
            slim[method] = {k: v for k, v in report[method].items() if k != "predictions"}
    lines = [f"{report['queries']} queries against {report['gallery']} indexed items (k={report['k']})"]
    for method in ("knn", "linear"):
        if method in report:
            lines.append(f"  {method:<6} accuracy {report[method]['accuracy']:.3f}  macro-F1 {report[method]['macro_f1']:.3f}")
    ret = report["retrieval"]
    lines.append(
        f"  retrieval: precision@1 {ret['precision_at_1']:.3f}  MAP@R {ret['map_at_r']:.3f}  recall@k {ret['recall_at_k']}"
    )
    lines.append(f"report: {Path(args.out) / 'report.html'}")
    _emit(args, slim, "\n".join(lines))
    return 0


def cmd_add(args: argparse.Namespace) -> int:
    attrs = _key_values(args.attr, "--attr")
    if any(isinstance(v, list) for v in attrs.values()):
        raise ConfigError("--attr names the same key twice")
    ids = args.id if args.id else None
    with _open(args) as engine:
        report = engine.add(list(args.images), labels=args.label, ids=ids, attributes=attrs)
    _emit(args, report.to_dict(), _fmt_report(report, "added"))
    return 0 if report.added else 1


def cmd_remove(args: argparse.Namespace) -> int:
    with _open(args) as engine:
        removed = engine.remove(list(args.ids))
        items = len(engine)
    _emit(args, {"removed": removed, "items": items}, f"removed {removed} item(s); the index holds {items} items")
    return 0


def cmd_reindex(args: argparse.Namespace) -> int:
    from .index.factory import parse_memory

    with _open(args) as engine:
        built = engine.reindex(
            args.index_type,
            max_memory=parse_memory(args.max_memory) if args.max_memory else None,
            recall_target=args.recall_target,
        )
        items = len(engine)
    params = "".join(f", {k}={v}" for k, v in built["search_params"].items())
    text = (
        f"rebuilt {items} items as {built['index_type']} ({built['index_key']}{params}); "
        f"tuned recall@10 {built['tuned_recall_at_10']}"
    )
    _emit(args, built, text)
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    with _open(args) as engine:
        info = engine.info()
    embed = info["embed"]
    text = "\n".join(
        [
            f"index:      {info['index']} ({info['generation']})",
            f"items:      {info['items']}",
            "labels:     " + (", ".join(f"{k} ({v})" for k, v in info["labels"].items()) or "none"),
            "attributes: " + (", ".join(info["attributes"]) or "none"),
            f"model:      {embed['backbone']} [{info['weights_id']}], recipe {embed['recipe']}, "
            f"{embed['image_size']} px, {info['raw_dim']} -> {info['dim']} dims ({info['projection']['kind']})",
            f"search:     {info['index_type']} ({info['index_key']}"
            + "".join(f", {k}={v}" for k, v in info["search_params"].items())
            + f") on {info['search_backend']}; vectors {info['vector_dtype']}",
            f"device:     {info['device']}",
            f"updated:    {info['updated']} (created {info['created']})",
        ]
    )
    _emit(args, info, text)
    return 0


def cmd_backbones(args: argparse.Namespace) -> int:
    from .model.backbones import describe_backbones

    found = describe_backbones()
    _emit(args, found, "\n".join(f"{k:<20} {v}" for k, v in found.items()))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from .service.app import create_app
        from .service.settings import Settings
    except ImportError as exc:
        raise ConfigError(f"the service needs its dependencies ({exc.name}): pip install 'stylesearch[cpu]'") from exc
    # Settings travel through the environment so that every uvicorn worker process reads them.
    os.environ["STYLESEARCH_INDEX"] = str(args.index)
    if args.device != "auto" or "STYLESEARCH_DEVICE" not in os.environ:
        os.environ["STYLESEARCH_DEVICE"] = args.device
    engine = _open(args)  # fail here, with the CLI's message, if the index cannot be opened
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
    from .demo import run_demo

    summary = run_demo(
        Path(args.dir),
        Path(args.index) if args.index else None,
        per_cell=args.per_cell,
        run=_run_config(args),
        out=None if args.json else print,
    )
    if args.json:
        print(json.dumps(summary, indent=2))
    return 0


# --------------------------------------------------------------------------- parser


def _index_type_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--index-type",
        default="auto",
        choices=["auto", "flat", "hnsw", "ivf", "ivfpq"],
        help="FAISS index type (auto: chosen by size and --max-memory)",
    )
    p.add_argument("--max-memory", help="RAM the FAISS index may take, e.g. 512M or 2G (with --index-type auto)")
    p.add_argument("--recall-target", type=float, default=0.95, help="recall@10 the search parameter is tuned to")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stylesearch", description="Find and classify products by visual style.")
    parser.add_argument("--version", action="version", version=f"stylesearch {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="machine-readable JSON on stdout")
    common.add_argument("--device", default="auto", help="auto | cpu | cuda (default: auto)")
    common.add_argument(
        "--precision",
        default="auto",
        choices=["auto", "fp32", "bf16"],
        help="backbone arithmetic (auto: bf16 on CUDA, fp32 on CPU)",
    )
    common.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")

    def add(name: str, help_: str, func: Any, parents: Sequence[argparse.ArgumentParser] = ()) -> argparse.ArgumentParser:
        p = sub.add_parser(name, parents=[common, *parents], help=help_, description=help_)
        # Each command gets its own --index action: argparse shares a parent's actions, so a
        # default changed for one command would change for all.
        if name == "demo":
            p.add_argument("--index", default=None, help="index folder (default: DIR/index)")
        else:
            p.add_argument("--index", default=DEFAULT_INDEX, help="index folder (default: %(default)s)")
        p.set_defaults(func=func)
        return p

    style = argparse.ArgumentParser(add_help=False)
    style.add_argument("--backbone", help="see 'stylesearch backbones' (default: efficientnet_lite0)")
    style.add_argument("--weights", help="imagenet | none | PATH to a state-dict file (default: imagenet)")
    style.add_argument("--recipe", help="gram | meanstd | gap | gmp, or combined with '+' (default: gram)")
    style.add_argument("--layers", help="comma-separated backbone layers for gram/meanstd (default: the backbone's)")
    style.add_argument("--pool-layer", help="layer pooled by gap/gmp (default: the backbone's last)")
    style.add_argument("--dim", type=int, help="style vector size; 0 keeps raw statistics (default: 256)")
    style.add_argument("--image-size", type=int, help="input size in px (default: 128)")
    style.add_argument("--batch-size", type=int, default=64, help="images per batch (default: 64)")
    style.add_argument(
        "--workers",
        type=int,
        default=-1,
        help="decoding processes; 0 decodes with threads between forward passes (default: -1, auto: 0 on CPU)",
    )
    style.add_argument(
        "--decode",
        default="auto",
        choices=["auto", "cpu", "device"],
        help="where JPEGs are decoded: device = batched on the GPU (nvJPEG) (default: auto, device on CUDA)",
    )

    p = add("index", "build an index from a catalog folder or manifest", cmd_index, [style])
    p.add_argument("catalog", help="folder (one sub-folder per label, or unlabeled images) or a .csv/.jsonl manifest")
    p.add_argument("--manifest", help="CSV/JSONL manifest (columns path, optional id, label, attributes)")
    p.add_argument("--model", help="a folder from 'stylesearch train': its recipe, trained projection and head")
    p.add_argument(
        "--store",
        default="faiss",
        metavar="STORE",
        help="where vectors are searched: faiss (default), milvus://HOST:PORT/COLLECTION or "
        "milvus-lite:///path/file.db (needs the 'milvus' extra)",
    )
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
    p.add_argument("--checkpoint-every", type=int, default=10_000, help="images between saved progress (default: %(default)s)")
    p.add_argument("--vector-dtype", default="float32", choices=["float32", "float16"], help="raw vectors on disk")
    _index_type_options(p)
    p.add_argument("--pca-sample", type=int, default=4096, help="images (a seeded random sample) that fit the PCA projection")
    p.add_argument("--seed", type=int, default=0)

    p = add("train", "tune style vectors on the catalog's labels (metric learning) and train a head", cmd_train, [style])
    p.add_argument("catalog", help="labelled folder or manifest")
    p.add_argument("--manifest", help="CSV/JSONL manifest")
    p.add_argument("--out", required=True, help="folder for the trained model")
    p.add_argument("--loss", default=_TRAIN.loss, choices=list(LOSSES))
    p.add_argument("--epochs", type=int, default=_TRAIN.epochs)
    p.add_argument("--train-batch-size", type=int, default=_TRAIN.batch_size, help="pairs are mined within these batches")
    p.add_argument(
        "--m-per-class", type=int, default=_TRAIN.m_per_class, help="images per label in each batch (MPerClassSampler)"
    )
    p.add_argument("--lr", type=float, default=_TRAIN.lr)
    p.add_argument("--weight-decay", type=float, default=_TRAIN.weight_decay)
    p.add_argument("--optimizer", default=_TRAIN.optimizer, choices=["adamw", "sgd"])
    p.add_argument("--val-fraction", type=float, default=_TRAIN.val_fraction, help="labelled images held out for early stopping")
    p.add_argument(
        "--patience", type=int, default=_TRAIN.patience, help="epochs without a better validation MAP@R before stopping"
    )
    p.add_argument("--head", default=_TRAIN.head, choices=list(HEADS))
    p.add_argument("--no-flip", action="store_true", help="no mirrored views as augmentation")
    p.add_argument(
        "--anchor", type=float, default=_TRAIN.anchor, help="L2-SP pull toward the PCA start (helps styles added later)"
    )
    p.add_argument(
        "--pca-dims",
        type=int,
        default=_TRAIN.pca_dims,
        help="untrained PCA components kept beside the tuned ones, so styles added later stay recognisable (0: none)",
    )
    p.add_argument("--search-pca-weight", type=float, default=_TRAIN.search_pca_weight, help="their weight in same-style search")
    p.add_argument(
        "--classify-pca-weight",
        type=float,
        default=_TRAIN.classify_pca_weight,
        help="their weight in a kNN vote that includes labels added after training",
    )
    p.add_argument(
        "--train-blocks",
        type=int,
        default=_TRAIN.train_blocks,
        help="also tune this many top backbone blocks, on augmented images (slow on a CPU; try --epochs 8)",
    )
    p.add_argument("--backbone-lr", type=float, default=_TRAIN.backbone_lr, help="learning rate of the tuned blocks")
    p.add_argument("--seed", type=int, default=_TRAIN.seed)
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")

    p = add("eval", "measure classification and retrieval on a labelled split", cmd_eval, [style])
    p.add_argument("catalog", help="folder or manifest whose items carry a split column")
    p.add_argument("--manifest", help="CSV/JSONL manifest")
    p.add_argument("--split-column", default="split", help="attribute that says train/test (default: split)")
    p.add_argument("--gallery-split", default="train", help="value of the split column for indexed items")
    p.add_argument("--query-split", default="test", help="value of the split column for query items")
    p.add_argument("--model", help="a folder from 'stylesearch train'")
    p.add_argument("--group-by", help="restrict neighbours to the query's value of this attribute (e.g. articleType)")
    p.add_argument("-k", type=int, default=10, help="neighbours that vote (default: 10)")
    p.add_argument("--out", default="eval-report", help="folder for report.json, PNGs and report.html")

    p = add("query", "find items in the same style as images", cmd_query)
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("-k", type=int, default=10, help="results per image (default: 10)")
    p.add_argument("--where", action="append", metavar="KEY=VALUE", help="keep items whose attribute matches (repeatable)")

    p = add("classify", "predict the style of images by kNN vote", cmd_classify)
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("-k", type=int, default=10, help="neighbours that vote (default: 10)")
    p.add_argument("--where", action="append", metavar="KEY=VALUE", help="vote only among matching items (repeatable)")
    p.add_argument("--min-confidence", type=float, default=None, help="below it the label is unknown (default: 0.35)")
    p.add_argument(
        "--method", default="both", choices=["knn", "linear", "both"], help="kNN vote, trained head, or both (default)"
    )
    p.add_argument(
        "--balanced",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="divide each kNN vote by its label's item count, so new / rare styles can win (default; --no-balanced: plain vote)",
    )
    p.add_argument("--summary", action="store_true", help="count the images (or folders of images) per style")
    p.add_argument("--out", default="style-summary", help="with --summary: folder for summary.json and summary.png")

    p = add("add", "add images to an index", cmd_add)
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--label", help="style label of all the images")
    p.add_argument("--attr", action="append", metavar="KEY=VALUE", help="attribute of all the images (repeatable)")
    p.add_argument("--id", action="append", help="item id, once per image in order (default: file name stem)")

    p = add("remove", "remove items by id", cmd_remove)
    p.add_argument("ids", nargs="+", metavar="ID")

    p = add("reindex", "rebuild the FAISS index as another type from the stored vectors (no re-embedding)", cmd_reindex)
    _index_type_options(p)

    add("info", "describe an index", cmd_info)
    add("backbones", "list the available backbones", cmd_backbones)

    p = add("serve", "serve the HTTP API and the web page (uvicorn)", cmd_serve)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    p.add_argument("--port", type=int, default=8000, help="port (default: %(default)s)")
    p.add_argument("--workers", type=int, default=1, help="uvicorn worker processes, each with its own model (default: 1)")

    p = add("demo", "generate the demo catalog, index it and show results", cmd_demo)
    p.add_argument("dir", nargs="?", default="demo-catalog", help="where to write the catalog (default: %(default)s)")
    p.add_argument("--per-cell", type=int, default=4, help="images per (product, style) pair (default: 4)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    for stream in (sys.stdout, sys.stderr):  # file names need not be valid UTF-8
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args))
    except StyleSearchError as exc:
        print(f"stylesearch: error: {exc}", file=sys.stderr)
        return 1
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
