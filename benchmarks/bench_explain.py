"""Are the explanations faithful? (issue 15) On both shared domains: index ``--gallery`` train
photos, query ``--pairs`` test photos, explain each against its ``--rank``-th result, then hide
the top-ranked quarter of the query photo (by its heat map) and, separately, random quarters
of the same area (8 draws): an explanation is faithful when hiding its top regions lowers the
similarity more. Reports the faithful share, the mean falls, and seconds per explanation; and
(issue 26) which block has the largest share in each pair: no block should be strongest for
more than 60 % of pairs, or the bars tell one match from another no better than a constant.

    .venv/bin/python benchmarks/bench_explain.py [--pairs 100] [--gallery 1000] [--rank 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from protocols import arch_root, dataset_root, read_arch_rows, read_rows, write_manifest  # noqa: E402

from stylesearch import StyleSearch, index_catalog  # noqa: E402
from stylesearch.config import RunConfig  # noqa: E402
from stylesearch.images import load_tensor  # noqa: E402
from stylesearch.model.explain import masking_drops  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=100)
    parser.add_argument("--gallery", type=int, default=1000)
    parser.add_argument("--rank", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    run = RunConfig(progress=False)
    out: dict = {"machine": f"{platform.machine()}, {torch.get_num_threads()} threads", "rows": []}
    for domain, root, rows in (
        ("fashion-usage", dataset_root(), read_rows(dataset_root())),
        ("architecture-styles", arch_root(), read_arch_rows(arch_root())),
    ):
        rng = np.random.default_rng(0)
        train = [r for r in rows if r["split"] == "train"]
        test = [r for r in rows if r["split"] == "test"]
        gallery = [train[i] for i in rng.choice(len(train), min(args.gallery, len(train)), replace=False)]
        queries = [str(root / test[i]["path"]) for i in rng.choice(len(test), min(args.pairs, len(test)), replace=False)]
        with tempfile.TemporaryDirectory() as tmp:
            index_catalog(write_manifest(gallery, root, Path(tmp) / "g.csv"), Path(tmp) / "index", run=run)
            with StyleSearch.open(Path(tmp) / "index", run=run) as engine:
                size = engine.embedder.config.image_size
                falls, seconds, strongest = [], 0.0, []
                for q in queries:
                    item = engine.query(q, k=args.rank).results[args.rank - 1].id
                    t0 = time.perf_counter()
                    why = engine.explain(q, item)
                    seconds += time.perf_counter() - t0
                    strongest.append(max(why.blocks, key=lambda b: b["share"])["block"])
                    images = torch.stack([load_tensor(q, size), load_tensor(engine.get(item).path, size)])
                    falls.append(masking_drops(engine.embedder, images, why))
        top, random = np.array(falls).T
        names, counts = np.unique(strongest, return_counts=True)
        row = {"domain": domain, "pairs": len(falls), "faithful": round(float(np.mean(top > random)), 3),
               "strongest": {str(n): int(c) for n, c in zip(names, counts)},
               "most_often_strongest": round(float(counts.max() / len(strongest)), 3),
               "mean_fall_top": round(float(top.mean()), 4), "mean_fall_random": round(float(random.mean()), 4),
               "seconds_per_explanation": round(seconds / len(falls), 3)}  # fmt: skip
        out["rows"].append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    print(f"# bench_explain ({out['machine']}): hide the top quarter vs random quarters of the query photo\n")
    print("| domain | pairs | faithful | mean fall, top regions | mean fall, random regions | s per explanation "
          "| strongest block (pairs) | most often strongest |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for r in out["rows"]:
        blocks = ", ".join(f"{b} {c}" for b, c in r["strongest"].items())
        print(f"| {r['domain']} | {r['pairs']} | {r['faithful']:.0%} | {r['mean_fall_top']} | {r['mean_fall_random']} | "
              f"{r['seconds_per_explanation']} | {blocks} | {r['most_often_strongest']:.0%} |")  # fmt: skip
    if args.json:
        print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
