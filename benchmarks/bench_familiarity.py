"""Choosing the out-of-catalog threshold (``DEFAULT_MIN_FAMILIARITY``) on held-out photos
from another domain, on validation splits carved from ``train`` only.

Pairs (index ← in-domain queries / other-domain queries):

- fashion: the FU4-val gallery (1,200 fashion-usage ``train`` photos) ← its 400 validation
  queries / the demo's generated products and architecture-styles ``train`` photos;
- demo: the demo catalog (generated products) ← its held-out queries / fashion-usage photos;
- architecture: the ARCH10-val gallery ← its validation queries / fashion-usage photos.

For each threshold: the share of in-domain photos wrongly called out-of-catalog, and the share
of other-domain photos caught. The default is the largest threshold whose in-domain false
rate stays at or under 0.5 % on every pair (a photo like the catalog's is almost never
refused: each refusal is a wrong answer where the vote was likely right).

    .venv/bin/python benchmarks/bench_familiarity.py [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sweep_untrained import validation_sets  # noqa: E402

from stylesearch import StyleSearch, demo, index_catalog  # noqa: E402
from stylesearch.config import RunConfig  # noqa: E402

THRESHOLDS = (0.0, 0.005, 0.01, 0.02, 0.05, 0.1)


def familiarity(index: Path, paths: list[str], run: RunConfig) -> np.ndarray:
    with StyleSearch.open(index, run=run) as engine:
        known = engine.familiarity(engine.embed_lenient(paths))
    assert known is not None
    return known


def write_manifest(rows: list[dict[str, str]], path: Path) -> Path:
    path.write_text("path,label\n" + "".join(f"{r['file']},{r['label']}\n" for r in rows), encoding="utf-8")
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--other", type=int, default=300, help="other-domain photos per pair")
    args = parser.parse_args()
    run = RunConfig(device="cpu", progress=False)
    sets = validation_sets()
    rng = np.random.default_rng(0)
    fashion_pool = [r["file"] for r in sets["FUW-val"][0]]  # fashion train photos outside FU4-val's use here
    arch_pool = [r["file"] for r in sets["ARCH10-val"][0]]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        manifest, held_out = demo.generate(work / "demo", per_cell=4, seed=3)
        demo_catalog = [str(p) for p in sorted((work / "demo" / "catalog").rglob("*.png"))]
        pairs = {
            "fashion": (
                write_manifest(sets["FU4-val"][0], work / "fu4.csv"),
                [r["file"] for r in sets["FU4-val"][1]],
                [str(p) for p in rng.choice(demo_catalog, size=min(args.other // 2, len(demo_catalog)), replace=False)]
                + list(rng.choice(arch_pool, size=args.other // 2, replace=False)),
            ),
            "demo": (manifest, [str(q) for q, _, _ in held_out], list(rng.choice(fashion_pool, size=args.other, replace=False))),
            "architecture": (
                write_manifest(sets["ARCH10-val"][0], work / "arch.csv"),
                [r["file"] for r in sets["ARCH10-val"][1]],
                list(rng.choice(fashion_pool, size=args.other, replace=False)),
            ),
        }
        for name, (catalog, same, other) in pairs.items():
            index = work / f"index-{name}"
            index_catalog(catalog, index, run=run)
            inside, outside = familiarity(index, same, run), familiarity(index, other, run)
            row = {
                "pair": name,
                "in_domain": len(inside),
                "other_domain": len(outside),
                "median_in": round(float(np.median(inside)), 3),
                "median_other": round(float(np.median(outside)), 3),
                "false_unknown": {t: round(float(np.mean(inside < t)), 4) for t in THRESHOLDS},
                "caught": {t: round(float(np.mean(outside < t)), 4) for t in THRESHOLDS},
            }
            results.append(row)
            print(json.dumps(row), flush=True)
    ok = [t for t in THRESHOLDS if all(r["false_unknown"][t] <= 0.005 for r in results)]
    chosen = max(ok) if ok else 0.0
    columns = " | ".join(f"t={t}: false / caught" for t in THRESHOLDS[1:])
    print(f"\n| pair | in-domain / other photos | median familiarity in / other | {columns} |")
    print("|---|---|---|" + "---|" * (len(THRESHOLDS) - 1))
    for r in results:
        cells = " | ".join(f"{r['false_unknown'][t]:.3f} / {r['caught'][t]:.3f}" for t in THRESHOLDS[1:])
        print(f"| {r['pair']} | {r['in_domain']} / {r['other_domain']} | {r['median_in']} / {r['median_other']} | {cells} |")
    print(f"\nlargest threshold with in-domain false out-of-catalog <= 0.5 % on every pair: {chosen}")
    if args.json:
        print(json.dumps({"results": results, "chosen": chosen}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
