"""Grouped and diverse results on fashion-usage (issue 15): what ``diversity`` costs in score
and buys in variety, and what ``group_by`` returns.

Indexes ``--gallery`` train photos (seeded; attribute ``articleType``), queries ``--queries``
test photos, and for each diversity λ reports over the top 10: the mean pairwise cosine of
the results (lower = more varied), their mean score (cosine to the query), the distinct
product types and styles among them, and the search time. ``group_by=articleType`` is
checked on every query: distinct values, in score order, each group led by the best item of
its type in the plain ranking.

    .venv/bin/python benchmarks/bench_arrange.py [--gallery 4000] [--queries 300] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from protocols import dataset_root, read_rows, write_manifest  # noqa: E402

from stylesearch import StyleSearch, index_catalog  # noqa: E402
from stylesearch.config import RunConfig  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gallery", type=int, default=4000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--lambdas", type=float, nargs="+", default=[0.0, 0.1, 0.2, 0.3, 0.5, 0.7])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    root = dataset_root()
    rows = read_rows(root)
    train = [r for r in rows if r["split"] == "train"]
    test = [r for r in rows if r["split"] == "test"]
    gallery = [train[i] for i in sorted(rng.choice(len(train), args.gallery, replace=False))]
    queries = [test[i] for i in sorted(rng.choice(len(test), args.queries, replace=False))]
    run = RunConfig(device="cpu", progress=False)
    out: dict = {"gallery": len(gallery), "queries": len(queries), "rows": []}
    with tempfile.TemporaryDirectory() as tmp:
        manifest = write_manifest(gallery, root, Path(tmp) / "gallery.csv")
        index_catalog(manifest, Path(tmp) / "index", run=run)
        with StyleSearch.open(Path(tmp) / "index", run=run) as engine:
            vectors = engine.embed([str(root / r["path"]) for r in queries])
            for lam in args.lambdas:
                t0 = time.perf_counter()
                hits = [engine.search_vectors(v[None], 10, diversity=lam)[0] for v in vectors]
                seconds = time.perf_counter() - t0
                spread, score, types, styles = [], [], [], []
                for row in hits:
                    _, v = engine.snapshot.vectors_of([h.id for h in row])
                    sims = v @ v.T
                    spread.append(float(sims[~np.eye(len(v), dtype=bool)].mean()))
                    score.append(float(np.mean([h.score for h in row])))
                    types.append(len({h.attributes["articleType"] for h in row}))
                    styles.append(len({h.label for h in row}))
                out["rows"].append({
                    "diversity": lam, "mean_pairwise_cosine": round(float(np.mean(spread)), 4),
                    "mean_score": round(float(np.mean(score)), 4), "distinct_types": round(float(np.mean(types)), 2),
                    "distinct_styles": round(float(np.mean(styles)), 2), "ms_per_query": round(1000 * seconds / len(vectors), 2),
                })  # fmt: skip
                print(json.dumps(out["rows"][-1]), file=sys.stderr, flush=True)
            ok = 0
            t0 = time.perf_counter()
            all_grouped = [engine.search_vectors(v[None], 10, group_by="articleType")[0] for v in vectors]
            grouped_seconds = time.perf_counter() - t0
            for v, grouped in zip(vectors, all_grouped):
                plain = engine.search_vectors(v[None], len(engine))[0]
                leader: dict[str, str] = {}
                for h in plain:
                    leader.setdefault(h.attributes["articleType"], h.id)
                values = [h.group for h in grouped]
                scores = [h.score for h in grouped]
                ok += (
                    len(set(values)) == len(values) == min(10, len(leader))
                    and scores == sorted(scores, reverse=True)
                    and all(leader[str(h.group)] == h.id for h in grouped)
                )
            out["group_by"] = {
                "queries_correct": ok,
                "queries": len(vectors),
                "ms_per_query": round(1000 * grouped_seconds / len(vectors), 2),
            }
    base = out["rows"][0]
    print(f"# bench_arrange: {out['gallery']} fashion-usage train photos indexed, {out['queries']} test photos queried, top 10\n")
    print("| diversity λ | mean pairwise cosine | mean score | Δ score vs λ=0 | product types | styles | ms/query |")
    print("|---|---|---|---|---|---|---|")
    for r in out["rows"]:
        delta = r["mean_score"] - base["mean_score"]
        print(f"| {r['diversity']} | {r['mean_pairwise_cosine']} | {r['mean_score']} | {delta:+.4f} | "
              f"{r['distinct_types']} | {r['distinct_styles']} | {r['ms_per_query']} |")  # fmt: skip
    g = out["group_by"]
    print(f"\ngroup_by=articleType: {g['queries_correct']} / {g['queries']} queries correct, {g['ms_per_query']} ms/query")
    if args.json:
        print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
