"""Training on fashion-usage and what it buys: FU4 / FUW with the trained model, the
cold-start check, and FUW with a gallery kept out of training.

    .venv/bin/python benchmarks/bench_train.py [--epochs 30] [--device cpu|cuda] [--skip-extra] [--json]

On a CUDA machine, ``--device cuda --skip-extra`` is the GPU timing run (bf16 autocast for the
backbone when ``--train-blocks`` is set); it prints seconds per epoch.

Trains on the data set's ``train`` split (queries are always ``test`` photos). Prints the
time per epoch and a table; writes models under --workdir.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from protocols import dataset_root, fuw_split, read_rows, run_protocol, train_on  # noqa: E402

from stylesearch.config import RunConfig, TrainConfig  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description="train on fashion-usage and evaluate")
    parser.add_argument("--epochs", type=int, default=TrainConfig.epochs)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--workdir", default="/tmp/stylesearch-bench-train")
    parser.add_argument("--skip-extra", action="store_true", help="only the default model (no cold-start / held-out runs)")
    parser.add_argument("--anchor", type=float, default=TrainConfig.anchor, help="L2-SP weight (train --anchor)")
    parser.add_argument("--weight-decay", type=float, default=TrainConfig.weight_decay)
    parser.add_argument("--uniform-prior", action="store_true", help="classify with the uniform prior in every check")
    parser.add_argument("--only-cold-start", action="store_true")
    parser.add_argument("--train-blocks", type=int, default=0, help="also tune this many top backbone blocks")
    parser.add_argument("--pca-dims", type=int, default=TrainConfig.pca_dims)
    parser.add_argument("--search-pca-weight", type=float, default=TrainConfig.search_pca_weight)
    parser.add_argument("--classify-pca-weight", type=float, default=TrainConfig.classify_pca_weight)
    parser.add_argument("--backbone-lr", type=float, default=TrainConfig.backbone_lr)
    parser.add_argument("--within", default=None, help="train --within COLUMN (e.g. articleType)")
    parser.add_argument("--within-share", type=float, default=TrainConfig.within_share)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    root = dataset_root()
    rows = read_rows(root)
    train_rows = [r for r in rows if r["split"] == "train"]
    run = RunConfig(device=args.device, progress=False)
    cfg = TrainConfig(
        epochs=args.epochs,
        anchor=args.anchor,
        weight_decay=args.weight_decay,
        pca_dims=args.pca_dims,
        search_pca_weight=args.search_pca_weight,
        classify_pca_weight=args.classify_pca_weight,
        train_blocks=args.train_blocks,
        backbone_lr=args.backbone_lr,
        within=args.within,
        within_share=args.within_share,
    )
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    results: dict = {
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads, device {args.device}",
        "train_settings": cfg.to_dict(),
    }

    if not args.only_cold_start:
        results["train"] = train_on(train_rows, root, work / "default", cfg, run)
        fu4 = run_protocol("FU4", run=run, model=work / "default", prior="uniform" if args.uniform_prior else "catalog")
        fuw = run_protocol("FUW", run=run, model=work / "default", prior="uniform" if args.uniform_prior else "catalog")
        results["FU4"] = {"knn_macro_f1": fu4.macro_f1, "linear_macro_f1": fu4.linear_macro_f1, "map_at_r": fu4.map_at_r}
        results["FUW"] = {"knn_macro_f1": fuw.macro_f1, "linear_macro_f1": fuw.linear_macro_f1}
        print(json.dumps(results), file=sys.stderr, flush=True)

    if not args.skip_extra:
        # Cold start: no Ethnic photo in training; 10 Ethnic photos added to the index afterwards.
        no_ethnic = [r for r in train_rows if r["usage"] != "Ethnic"]
        results["cold_start_settings"] = {
            "anchor": args.anchor,
            "weight_decay": args.weight_decay,
            "prior": "uniform" if args.uniform_prior else "catalog",
        }
        results["train_no_ethnic"] = train_on(no_ethnic, root, work / "no-ethnic", cfg, run)
        ethnic = [r for r in train_rows if r["usage"] == "Ethnic"]
        picks = sorted(np.random.default_rng(0).choice(len(ethnic), size=10, replace=False).tolist())
        cold = run_protocol(
            "FU4",
            run=run,
            model=work / "no-ethnic",
            exclude_labels=("Ethnic",),
            add_labelled=[ethnic[i] for i in picks],
            prior="uniform" if args.uniform_prior else "catalog",
        )
        results["cold_start"] = {
            "ethnic_recall": cold.per_class_recall["Ethnic"],
            "knn_macro_f1": cold.macro_f1,
            "per_class_recall": cold.per_class_recall,
        }
        print(json.dumps(results), file=sys.stderr, flush=True)
        if args.only_cold_start:
            print(json.dumps(results))
            return 0
        # FUW with a gallery the model never saw.
        gallery_ids = {r["id"] for r in fuw_split(rows)[0]}
        held_out = [r for r in train_rows if r["id"] not in gallery_ids]
        results["train_fuw_held_out"] = train_on(held_out, root, work / "fuw-held-out", cfg, run)
        fuw_out = run_protocol("FUW", run=run, model=work / "fuw-held-out", prior="uniform" if args.uniform_prior else "catalog")
        results["FUW_gallery_not_trained"] = {"knn_macro_f1": fuw_out.macro_f1, "linear_macro_f1": fuw_out.linear_macro_f1}

    print(f"# bench_train ({results['machine']})\n")
    t = results["train"]
    print(
        f"default model: {t['train_items']} photos, {t['epochs']} epochs (best {t['best_epoch']}), {t['seconds']} s, "
        f"{t['seconds_per_epoch']} s/epoch, validation MAP@R {t['val_map_at_r']}, head accuracy {t['head_val_accuracy']}\n"
    )
    print("| check | kNN macro-F1 | linear macro-F1 | MAP@R |")
    print("|---|---|---|---|")
    print(f"| FU4 | {results['FU4']['knn_macro_f1']} | {results['FU4']['linear_macro_f1']} | {results['FU4']['map_at_r']} |")
    print(f"| FUW | {results['FUW']['knn_macro_f1']} | {results['FUW']['linear_macro_f1']} | |")
    if "cold_start" in results:
        c = results["cold_start"]
        print(
            f"| cold start (no Ethnic in training, 10 added): FU4, Ethnic recall {c['ethnic_recall']} | {c['knn_macro_f1']} | | |"
        )
        g = results["FUW_gallery_not_trained"]
        print(f"| FUW, gallery kept out of training | {g['knn_macro_f1']} | {g['linear_macro_f1']} | |")
    if args.json:
        print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
