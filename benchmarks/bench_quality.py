"""Style quality on real photos of both shared domains: the FU4 and FUW protocols of
../shared/datasets/fashion-usage and ARCH10 of ../shared/datasets/architecture-styles (see
their READMEs), for several style recipes side by side. ``gram`` takes the style options
given (the package defaults otherwise); ``gap`` / ``meanstd`` are the raw baselines.

    .venv/bin/python benchmarks/bench_quality.py [--recipes gram gap meanstd] [--protocols FU4 FUW ARCH10]
        [--backbone B] [--image-size 128] [--tta none|flip] [--whiten P] [--whiten-shrink S]
        [--precisions fp32 bf16] [--trained] [--json]

``--precisions`` runs each recipe once per backbone precision (quality and indexing speed
side by side in one run). ``--trained`` also trains a model per domain on its ``train`` split
(``stylesearch train`` defaults) for ``gram`` and ``gap`` and reports the trained figures
(kNN and linear head) beside the untrained ones; it takes about half an hour on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from protocols import arch_root, dataset_root, read_arch_rows, read_rows, run_protocol, train_on  # noqa: E402

from stylesearch.config import EmbedConfig, RunConfig, TrainConfig  # noqa: E402

DOMAIN = {"FU4": "fashion", "FUW": "fashion", "ARCH10": "architecture"}


def trained_row(recipe: str, embed: EmbedConfig, protocols: list[str], run: RunConfig, workdir: Path) -> dict[str, object]:
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
            root = dataset_root() if domain == "fashion" else arch_root()
            rows = read_rows(root) if domain == "fashion" else read_arch_rows(root)
            models[domain] = workdir / f"{recipe}-{domain}"
            row[f"train_{domain}"] = train_on(
                [r for r in rows if r["split"] == "train"], root, models[domain], TrainConfig(), run, embed
            )
        result = run_protocol(protocol, run=run, model=models[domain])
        row[f"{protocol.lower()}_macro_f1"] = result.macro_f1
        row[f"{protocol.lower()}_linear_macro_f1"] = result.linear_macro_f1
        if protocol == "FU4":
            row["fu4_map_at_r"] = result.map_at_r
    return row


def main() -> int:
    default = EmbedConfig()
    parser = argparse.ArgumentParser(description="FU4 / FUW / ARCH10 kNN macro-F1 per style recipe")
    parser.add_argument("--recipes", nargs="+", default=["gram", "gap", "meanstd"])
    parser.add_argument("--protocols", nargs="+", default=["FU4", "FUW", "ARCH10"], choices=["FU4", "FUW", "ARCH10"])
    parser.add_argument("--image-size", type=int, default=default.image_size)
    parser.add_argument("--backbone", default=default.backbone)
    parser.add_argument("--dim", type=int, default=default.dim)
    parser.add_argument("--tta", default=default.tta, choices=["none", "flip"])
    parser.add_argument("--whiten", type=float, default=default.whiten)
    parser.add_argument("--whiten-shrink", type=float, default=default.whiten_shrink)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precisions", nargs="+", default=["fp32"], choices=["fp32", "bf16"])
    parser.add_argument("--trained", action="store_true", help="also train per domain (gram and gap) and score")
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
        for protocol in args.protocols:
            result = run_protocol(protocol, config, run)
            row[f"{protocol.lower()}_macro_f1"] = result.macro_f1
            if protocol == "FU4":
                row["fu4_map_at_r"] = result.map_at_r
                row["fu4_index_img_s"] = result.images_per_second
        rows.append(row)
        print(f"done {recipe}", file=sys.stderr, flush=True)
        if args.trained and recipe in ("gram", "gap") and precision == args.precisions[0]:
            embed = EmbedConfig(backbone=args.backbone, recipe=recipe, dim=args.dim, image_size=args.image_size,
                                tta=args.tta, whiten=args.whiten, whiten_shrink=args.whiten_shrink)  # fmt: skip
            rows.append(trained_row(recipe, embed, args.protocols, run, Path(args.workdir)))
            print(f"done {recipe} trained", file=sys.stderr, flush=True)
    names = ("fu4_macro_f1", "fu4_linear_macro_f1", "fu4_map_at_r", "fuw_macro_f1", "fuw_linear_macro_f1",
             "arch10_macro_f1", "arch10_linear_macro_f1", "fu4_index_img_s")  # fmt: skip
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
