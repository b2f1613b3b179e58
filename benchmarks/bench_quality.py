"""Style quality on real photos of both shared domains: the FU4 and FUW protocols of
../shared/datasets/fashion-usage and ARCH10 of ../shared/datasets/architecture-styles (see
their READMEs), for several style recipes side by side. ``gram`` takes the style options
given (the package defaults otherwise); ``gap`` / ``meanstd`` are the raw baselines.

    .venv/bin/python benchmarks/bench_quality.py [--recipes gram gap meanstd] [--protocols FU4 FUW ARCH10]
        [--backbone B] [--image-size 128] [--tta none|flip] [--whiten P] [--whiten-shrink S]
        [--precisions fp32 bf16] [--json]

``--precisions`` runs each recipe once per backbone precision (quality and indexing speed
side by side in one run).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from protocols import run_protocol  # noqa: E402

from stylesearch.config import EmbedConfig, RunConfig  # noqa: E402


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
    columns = [c for c in ("fu4_macro_f1", "fu4_map_at_r", "fuw_macro_f1", "arch10_macro_f1", "fu4_index_img_s") if c in rows[0]]
    print("| recipe | backbone | px | dim | tta | whiten (shrink) | " + " | ".join(columns) + " |")
    print("|---" * (6 + len(columns)) + "|")
    for r in rows:
        values = " | ".join(str(r[c]) for c in columns)
        print(
            f"| {r['recipe']} | {r['backbone']} | {r['image_size']} | {r['dim']} | {r['tta']} | "
            f"{r['whiten']} ({r['whiten_shrink']}) | {values} |"
        )
    if args.json:
        print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
