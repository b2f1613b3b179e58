"""``stylesearch train`` and ``eval``: learning from labels, and measuring."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..config import TrainConfig
from .common import Commands, columns, embed_config, emit, manifest_parser, run_config, style_parser
from .options import add_options, config_from


def cmd_train(args: argparse.Namespace) -> int:
    from .. import train

    report = train(
        args.catalog,
        args.out,
        manifest=args.manifest,
        embed=embed_config(args),
        train=config_from(TrainConfig, args),
        run=run_config(args),
        resume=args.resume,
        columns=columns(args),
    )
    text = (
        f"trained {report.epochs_run} epochs in {report.seconds:.0f} s ({report.seconds_per_epoch:.1f} s/epoch); "
        f"best epoch {report.best_epoch}, validation MAP@R {report.best_val_map_at_r}, "
        f"head validation accuracy {report.head_val_accuracy}\nmodel written to {report.out_dir}; "
        f"index with: stylesearch index CATALOG --model {report.out_dir}"
    )
    emit(args, {k: v for k, v in report.to_dict().items() if k != "log"}, text)
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from ..catalog import load_catalog
    from ..report import run_evaluation

    catalog = load_catalog(args.catalog, args.manifest, columns=columns(args))
    index_kwargs = {"embed": embed_config(args), "run": run_config(args), "model": args.model}
    report = run_evaluation(
        catalog,
        Path(args.out),
        split_column=args.split_column,
        gallery_split=args.gallery_split,
        query_split=args.query_split,
        k=args.k,
        group_by=args.group_by,
        index_kwargs=index_kwargs,
        keep_index=args.keep_index,
    )
    slim = {k: v for k, v in report.items() if k not in ("knn", "linear")}
    for method in ("knn", "linear"):
        if method in report:
            slim[method] = {k: v for k, v in report[method].items() if k != "predictions"}
    lines = [f"{report['queries']} queries against {report['gallery']} indexed items (k={report['k']})"]
    for method in ("knn", "linear"):
        if method in report:
            m = report[method]
            lines.append(
                f"  {method:<6} accuracy {m['accuracy']:.3f}  macro-F1 {m['macro_f1']:.3f}  "
                f"calibration error (ECE) {m['calibration']['ece']:.3f}"
            )
            lines += [f"    {'style':<20} precision  recall      F1  queries"] + [
                f"    {label:<20} {v['precision']:9.3f} {v['recall']:7.3f} {v['f1']:7.3f} {int(v['support']):8d}"
                for label, v in m["per_class"].items()
            ]
    ret = report["retrieval"]
    recall = ", ".join(f"@{kk} {v:.3f}" for kk, v in ret["recall_at_k"].items())
    lines.append(f"  retrieval: precision@1 {ret['precision_at_1']:.3f}  MAP@R {ret['map_at_r']:.3f}  recall{recall}")
    lines.append(f"report: {Path(args.out) / 'report.html'}")
    emit(args, slim, "\n".join(lines))
    return 0


def register(commands: Commands) -> None:
    p = commands.add(
        "train",
        "tune style vectors on the catalog's labels (metric learning) and train a head",
        cmd_train,
        [style_parser(), manifest_parser()],
    )
    p.add_argument("catalog", help="labelled folder or manifest")
    p.add_argument("--manifest", help="CSV/JSONL manifest")
    p.add_argument("--out", required=True, help="folder for the trained model")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    add_options(p.add_argument_group("training"), TrainConfig)

    p = commands.add(
        "eval", "measure classification and retrieval on a labelled split", cmd_eval, [style_parser(), manifest_parser()]
    )
    p.add_argument("catalog", help="folder or manifest whose items carry a split column")
    p.add_argument("--manifest", help="CSV/JSONL manifest")
    p.add_argument("--split-column", default="split", help="attribute that says train/test (default: split)")
    p.add_argument("--gallery-split", default="train", help="value of the split column for indexed items")
    p.add_argument("--query-split", default="test", help="value of the split column for query items")
    p.add_argument("--model", help="a folder from 'stylesearch train'")
    p.add_argument("--group-by", help="restrict neighbours to the query's value of this attribute (e.g. articleType)")
    p.add_argument("-k", type=int, default=10, help="neighbours that vote (default: 10)")
    p.add_argument("--out", default="eval-report", help="folder for report.json, PNGs and report.html")
    p.add_argument("--keep-index", action="store_true", help="keep the evaluation's index in OUT/index (else it is removed)")
