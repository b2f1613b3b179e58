"""Few-label domains: kNN macro-F1 against labelled photos per style used for training
(10, 30, 100, …), on both shared domains, beside the untrained figure of the same run.

For each domain (FU4 on fashion-usage, ARCH10 on architecture-styles, INT5 on interior-styles) and each n, n `train`
photos per style keep their label (seeded) and the domain's other `train` photos are given
unlabelled, as a shop with few labels has them; ``stylesearch.train`` learns with the default
settings (its PCA start sees the unlabelled photos too), and the protocol is run with that
model (its gallery indexed with ``--model``, its `test` queries classified by kNN). The check
of issue 13: with 10 photos per style, training must not fall below the untrained figure.

    .venv/bin/python benchmarks/bench_few_labels.py [--per-class 10 30 100] [--protocols FU4 ARCH10] [--json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from protocols import (  # noqa: E402
    FU4_CLASSES,
    arch_root,
    dataset_root,
    interior_root,
    read_arch_rows,
    read_interior_rows,
    read_rows,
    run_protocol,
    write_manifest,
)

from stylesearch import train  # noqa: E402
from stylesearch.config import RunConfig, TrainConfig  # noqa: E402


def validation_split(protocol: str) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """FU4-val / ARCH10-val of ``sweep_untrained.py`` (carved from ``train``), in protocol rows."""
    from sweep_untrained import validation_sets

    gallery, queries, _ = validation_sets()[f"{protocol}-val"]

    def row(r: dict[str, str]) -> dict[str, str]:
        return {"id": r["id"], "path": r["path"], "usage": r["label"], "articleType": r.get("articleType", "building")}

    return [row(r) for r in gallery], [row(r) for r in queries]


def draw(rows: list[dict[str, str]], labels: list[str], n: int, seed: int) -> list[dict[str, str]]:
    """Every `train` photo of ``labels``, with the label kept on ``n`` per style (seeded) and
    cleared on the rest: a shop with few labels still has its whole catalog of photos."""
    rng = np.random.default_rng(seed)
    out = []
    for label in labels:
        pool = [r for r in rows if r["usage"] == label and r["split"] == "train"]
        keep = set(rng.choice(len(pool), size=min(n, len(pool)), replace=False).tolist())
        out += [r if i in keep else {**r, "usage": ""} for i, r in enumerate(pool)]
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-class", type=int, nargs="+", default=[10, 30, 100])
    parser.add_argument("--protocols", nargs="+", default=["FU4", "ARCH10", "INT5"], choices=["FU4", "ARCH10", "INT5"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--split",
        choices=["test", "val"],
        default="test",
        help="val: score on the validation split carved from train (its queries kept out of training), to choose settings",
    )
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="TrainConfig fields to override")
    args = parser.parse_args()
    run = RunConfig(device="cpu", progress=False)
    fields = {f.name: f.type for f in dataclasses.fields(TrainConfig)}
    overrides = {}
    for item in args.set:
        key, _, value = item.partition("=")
        overrides[key] = {"int": int, "float": float, "bool": lambda v: v.lower() in ("1", "true")}.get(str(fields[key]), str)(
            value
        )
    results = []
    for protocol in args.protocols:
        if protocol == "FU4":
            root, rows, labels = dataset_root(), read_rows(dataset_root()), list(FU4_CLASSES)
        else:
            root = arch_root() if protocol == "ARCH10" else interior_root()
            rows = read_arch_rows(root) if protocol == "ARCH10" else read_interior_rows(root)
            labels = sorted({r["usage"] for r in rows})
        split = validation_split(protocol) if args.split == "val" else None
        if split is not None:  # the validation queries never train
            held = {r["id"] for r in split[1]}
            rows = [r for r in rows if r["id"] not in held]
        untrained = run_protocol(protocol, run=run, split=split)
        results.append({"protocol": protocol, "per_class": 0, "knn_macro_f1": untrained.macro_f1, "train_s": 0.0})
        print(json.dumps(results[-1]), flush=True)
        for n in args.per_class:
            with tempfile.TemporaryDirectory() as tmp:
                manifest = write_manifest(draw(rows, labels, n, args.seed), root, Path(tmp) / "train.csv")
                t0 = time.perf_counter()
                train(manifest, Path(tmp) / "model", train=TrainConfig(seed=args.seed, **overrides), run=run)
                seconds = time.perf_counter() - t0
                trained = run_protocol(protocol, run=run, model=Path(tmp) / "model", split=split)
            results.append(
                {
                    "protocol": protocol,
                    "per_class": n,
                    "knn_macro_f1": trained.macro_f1,
                    "linear_macro_f1": trained.linear_macro_f1,
                    "train_s": round(seconds, 1),
                }
            )
            print(json.dumps(results[-1]), flush=True)
    print("| protocol | labelled photos per style | kNN macro-F1 | linear macro-F1 | training s |")
    print("|---|---|---|---|---|")
    for r in results:
        n = "untrained" if not r["per_class"] else r["per_class"]
        print(f"| {r['protocol']} | {n} | {r['knn_macro_f1']:.4f} | {r.get('linear_macro_f1') or '—'} | {r['train_s']} |")
    if args.json:
        print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
