"""Style quality on real product photos: the FU4 and FUW protocols of
../shared/datasets/fashion-usage (see its README), for several style recipes side by side.

    .venv/bin/python benchmarks/bench_quality.py [--recipes gram gap meanstd] [--image-size 128]
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
    parser = argparse.ArgumentParser(description="FU4 / FUW kNN macro-F1 per style recipe")
    parser.add_argument("--recipes", nargs="+", default=["gram", "gap", "meanstd"])
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--backbone", default="efficientnet_lite0")
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precisions", nargs="+", default=["fp32"], choices=["fp32", "bf16"])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = []
    for recipe, precision in [(r, p) for r in args.recipes for p in args.precisions]:
        run = RunConfig(device=args.device, workers=1, progress=False, precision=precision)
        dim = 0 if recipe in ("gap", "gmp", "meanstd") else args.dim  # the README's reference keeps these raw
        config = EmbedConfig(backbone=args.backbone, recipe=recipe, dim=dim, image_size=args.image_size)
        fu4 = run_protocol("FU4", config, run)
        fuw = run_protocol("FUW", config, run)
        rows.append(
            {
                "recipe": recipe,
                "precision": precision,
                "dim": dim or "raw",
                "image_size": args.image_size,
                "fu4_macro_f1": fu4.macro_f1,
                "fu4_map_at_r": fu4.map_at_r,
                "fuw_macro_f1": fuw.macro_f1,
                "fu4_index_img_s": fu4.images_per_second,
            }
        )
        print(f"done {recipe}", file=sys.stderr, flush=True)
    print("| recipe | precision | dim | px | FU4 macro-F1 | FU4 MAP@R | FUW macro-F1 | FU4 index img/s |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['recipe']} | {r['precision']} | {r['dim']} | {r['image_size']} | {r['fu4_macro_f1']:.4f} | "
            f"{r['fu4_map_at_r']:.4f} | {r['fuw_macro_f1']:.4f} | {r['fu4_index_img_s']} |"
        )
    if args.json:
        print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
