"""Style quality on real photos of the shared domains: the FU4 and FUW protocols of
../shared/datasets/fashion-usage, ARCH10 of ../shared/datasets/architecture-styles and INT5 /
INT5W of ../shared/datasets/interior-styles (see their READMEs), for several style recipes
side by side. FU4G is FU4 for a trained model that has not seen the gallery (see
protocols.py): the user's path of ``train`` on some labelled photos, then ``index --model``
of a catalog. ``gram`` takes the style options
given (the package defaults otherwise); ``gap`` / ``meanstd`` are the raw baselines.

    .venv/bin/python benchmarks/bench_quality.py [--recipes gram gap meanstd] [--protocols FU4 FUW ARCH10]
        [--backbone B] [--image-size 128] [--tta none|flip] [--whiten P] [--whiten-shrink S]
        [--precisions fp32 bf16] [--trained] [--json]

``--precisions`` runs each recipe once per backbone precision (quality and indexing speed
side by side in one run). ``--trained`` also trains a model per domain on its ``train`` split
(``stylesearch train`` defaults; FU4G's without FU4's gallery) for ``--trained-recipes``
(gram) and reports the trained figures (kNN and linear head) beside the untrained ones.
``--image-size`` 0 (the default) lets each catalog choose (model/sizing.py).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from protocols import (  # noqa: E402
    arch_root,
    dataset_root,
    fu4_training_rows,
    interior_root,
    read_arch_rows,
    read_interior_rows,
    read_rows,
    run_protocol,
    train_on,
)

from stylesearch.config import EmbedConfig, RunConfig, TrainConfig  # noqa: E402

DOMAIN = {"FU4": "fashion", "FU4G": "fashion-without-gallery", "FUW": "fashion", "ARCH10": "architecture",
          "INT5": "interior", "INT5W": "interior"}  # fmt: skip
PROTOCOLS = list(DOMAIN)


def training_rows(domain: str) -> tuple[list[dict[str, str]], Path]:
    """The photos a domain's model is trained on (its train split), and their root."""
    if domain == "architecture":
        root = arch_root()
        return [r for r in read_arch_rows(root) if r["split"] == "train"], root
    if domain == "interior":
        root = interior_root()
        return [r for r in read_interior_rows(root) if r["split"] == "train"], root
    root = dataset_root()
    rows = read_rows(root)
    return (fu4_training_rows(rows) if domain == "fashion-without-gallery" else [r for r in rows if r["split"] == "train"]), root


def trained_row(
    recipe: str, embed: EmbedConfig, protocols: list[str], run: RunConfig, workdir: Path, train: TrainConfig
) -> dict[str, object]:
    """Train one model per domain the protocols need (train split, default TrainConfig) and
    score each protocol with it."""
    row: dict[str, object] = {"recipe": recipe, "trained": True, "backbone": embed.backbone, "precision": run.precision,
                              "dim": embed.dim, "image_size": embed.image_size, "tta": embed.tta, "whiten": embed.whiten,
                              "whiten_shrink": embed.whiten_shrink}  # fmt: skip
    models: dict[str, Path] = {}
    workdir.mkdir(parents=True, exist_ok=True)
    for protocol in protocols:
        domain = DOMAIN[protocol]
        if domain not in models:
            rows, root = training_rows(domain)
            models[domain] = workdir / f"{recipe}-{domain}"
            row[f"train_{domain}"] = train_on(rows, root, models[domain], train, run, embed)
        result = run_protocol(protocol, run=run, model=models[domain])
        row[f"{protocol.lower()}_macro_f1"] = result.macro_f1
        row[f"{protocol.lower()}_linear_macro_f1"] = result.linear_macro_f1
        if result.map_at_r is not None:
            row[f"{protocol.lower()}_map_at_r"] = result.map_at_r
    return row


def main() -> int:
    default = EmbedConfig()
    parser = argparse.ArgumentParser(description="FU4 / FUW / ARCH10 kNN macro-F1 per style recipe")
    parser.add_argument("--recipes", nargs="+", default=["gram", "gap", "meanstd"])
    parser.add_argument("--protocols", nargs="+", default=PROTOCOLS, choices=PROTOCOLS)
    parser.add_argument("--image-size", type=int, default=default.image_size)
    parser.add_argument("--backbone", default=default.backbone)
    parser.add_argument("--layers", default=None, help="comma-separated style blocks (default: the package's)")
    parser.add_argument("--dim", type=int, default=default.dim)
    parser.add_argument("--tta", default=default.tta, choices=["none", "flip"])
    parser.add_argument("--whiten", type=float, default=default.whiten)
    parser.add_argument("--whiten-shrink", type=float, default=default.whiten_shrink)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precisions", nargs="+", default=["fp32"], choices=["fp32", "bf16"])
    parser.add_argument("--trained", action="store_true", help="also train per domain and score")
    parser.add_argument("--trained-recipes", nargs="+", default=["gram"], help="the recipes --trained trains")
    parser.add_argument("--train-blocks", type=int, default=TrainConfig().train_blocks, help="train --train-blocks")
    parser.add_argument("--workdir", default="/tmp/stylesearch-bench-quality")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = []
    for recipe, precision in [(r, p) for r in args.recipes for p in args.precisions]:
        run = RunConfig(device=args.device, workers=1, progress=False, precision=precision)
        baseline = recipe in ("gap", "gmp", "meanstd")  # the README's references: raw, as peers index them
        config = EmbedConfig(
            backbone=args.backbone,
            recipe=recipe,
            dim=0 if baseline else args.dim,
            image_size=args.image_size,
            tta="none" if baseline else args.tta,
            whiten=0.0 if baseline else args.whiten,
            whiten_shrink=0.0 if baseline else args.whiten_shrink,
        )
        row: dict[str, object] = {
            "recipe": recipe,
            "trained": False,
            "backbone": args.backbone,
            "precision": precision,
            "dim": config.dim or "raw",
            "image_size": args.image_size,
            "tta": config.tta,
            "whiten": config.whiten,
            "whiten_shrink": config.whiten_shrink,
        }
        for protocol in [p for p in args.protocols if p != "FU4G"]:  # untrained, FU4G is FU4
            result = run_protocol(protocol, config, run)
            row[f"{protocol.lower()}_macro_f1"] = result.macro_f1
            if result.map_at_r is not None:
                row[f"{protocol.lower()}_map_at_r"] = result.map_at_r
            if protocol in ("FU4", "INT5"):
                row[f"{protocol.lower()}_index_img_s"] = result.images_per_second
        rows.append(row)
        print(f"done {recipe}", file=sys.stderr, flush=True)
        if args.trained and recipe in args.trained_recipes and precision == args.precisions[0]:
            embed = EmbedConfig(backbone=args.backbone, recipe=recipe, dim=args.dim, image_size=args.image_size,
                                tta=args.tta, whiten=args.whiten, whiten_shrink=args.whiten_shrink,
                                layers=tuple(args.layers.split(",")) if args.layers else None)  # fmt: skip
            train = TrainConfig(train_blocks=args.train_blocks)
            rows.append(trained_row(recipe, embed, args.protocols, run, Path(args.workdir), train))
            print(f"done {recipe} trained", file=sys.stderr, flush=True)
    names = [f"{p.lower()}_{m}" for p in PROTOCOLS for m in ("macro_f1", "linear_macro_f1", "map_at_r")]
    names += ["fu4_index_img_s", "int5_index_img_s"]
    columns = [c for c in names if any(c in r for r in rows)]
    print("| recipe | trained | backbone | px | dim | tta | whiten (shrink) | " + " | ".join(columns) + " |")
    print("|---" * (7 + len(columns)) + "|")
    for r in rows:
        values = " | ".join(str(r.get(c, "")) for c in columns)
        print(
            f"| {r['recipe']} | {'yes' if r['trained'] else 'no'} | {r['backbone']} | {r['image_size']} | "
            f"{r['dim']} | {r['tta']} | "
            f"{r['whiten']} ({r['whiten_shrink']}) | {values} |"
        )
    if args.json:
        print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
