"""Answers a user can trust (issue 23): every figure of its checks, on the test splits, with
the previous rule (the balanced vote) measured from the same neighbours in the same run.

1. natural: the whole fashion-usage test split against an index of all train photos with the
   real ``usage`` labels (7 styles), and ARCH10 with two styles cut to 10 train photos (its
   test split stays balanced, so both priors are shown):
   accuracy, precision of every label answered ≥ 10 times, ECE, answers of confidence ≥ 0.5
   backed by ≤ 1 neighbour;
2. cold start (untrained): FU4 with Ethnic cut to 10 indexed photos: Ethnic recall, macro-F1,
   with both priors (the queries are balanced: 150 per style);
3. forced choice: FU4 and ARCH10 macro-F1;
4. out-of-catalog: every pair among fashion, architecture and the demo catalog, both
   directions, indexes of 400 photos and of all train photos: share caught / refused;
5. shares: sets of 600 test photos with known shares of the four main styles (seeded
   Dirichlet draws): mean absolute error, coverage of the 95 % interval, and classify-and-count.

    .venv/bin/python benchmarks/bench_trust.py [--draws 6] [--work DIR] [--json]
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import f1_score

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from protocols import FU4_CLASSES, arch_root, dataset_root  # noqa: E402

from stylesearch import StyleSearch, demo, index_catalog, shares  # noqa: E402
from stylesearch.config import RunConfig  # noqa: E402
from stylesearch.evaluate import calibration_bins  # noqa: E402

RUN = RunConfig(device="cpu", progress=False)
FORCED: dict[str, Any] = {"min_confidence": 0.0, "min_familiarity": 0.0}


def rows_of(root: Path, label: str) -> list[dict[str, str]]:
    with (root / "metadata.csv").open(newline="", encoding="utf-8") as fh:
        rows = sorted(csv.DictReader(fh), key=lambda r: r["id"])
    for r in rows:
        r["file"], r["label"] = str(root / r["path"]), r[label]
    return rows


def build(rows: list[dict[str, str]], folder: Path) -> Path:
    if not (folder / "CURRENT").exists() and not any(folder.glob("gen-*")):
        folder.mkdir(parents=True, exist_ok=True)
        manifest = folder.parent / f"{folder.name}.csv"
        with manifest.open("w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(["id", "path", "label"])
            w.writerows([[r["id"], r["file"], r["label"]] for r in rows])
        index_catalog(manifest, folder, run=RUN)
    return folder


def old_rule(c: Any, counts: dict[str, int]) -> str | None:
    """The balanced vote of the release before: each similarity divided by its label's count."""
    totals: dict[str, float] = {}
    for h in c.neighbors:
        totals[h.label] = totals.get(h.label, 0.0) + (max(h.score, 0.0) + 1e-6) / max(counts.get(h.label, 1), 1)
    return max(sorted(totals), key=lambda k: totals[k]) if totals else None


def classify(index: Path, queries: list[dict[str, str]], prior: str = "catalog") -> dict[str, Any]:
    truth = [q["label"] for q in queries]
    with StyleSearch.open(index, run=RUN) as engine:
        found = engine.classify_vectors(engine.embed([q["file"] for q in queries]), 10, method="knn", prior=prior, **FORCED)
        counts = engine.labels()
    pred = [c.answer for c in found]
    old = [old_rule(c, counts) for c in found]
    right = [t == p for t, p in zip(truth, pred)]
    out: dict[str, Any] = {"queries": len(truth), "prior": prior}
    for name, p in (("new", pred), ("old", old)):
        answered = {}
        for label in sorted(set(p) - {None}):
            mask = [x == label for x in p]
            if sum(mask) >= 10:
                answered[label] = {
                    "answers": sum(mask),
                    "precision": round(float(np.mean([t == label for t, m in zip(truth, mask) if m])), 3),
                }
        out[name] = {
            "accuracy": round(float(np.mean([t == x for t, x in zip(truth, p)])), 4),
            "macro_f1": round(float(f1_score(truth, [x or "" for x in p], average="macro", labels=sorted(set(truth)))), 4),
            "answered": answered,
            "recall": {
                lab: round(float(np.mean([x == lab for t, x in zip(truth, p) if t == lab])), 3) for lab in sorted(set(truth))
            },
        }
    out["new"]["ece"] = calibration_bins([c.confidence for c in found], right, 15)["ece"]
    out["new"]["lone_at_0_5"] = sum(c.support is not None and c.support <= 1 and c.confidence >= 0.5 for c in found)
    return out


def familiar(index: Path, inside: list[str], outside: list[str]) -> dict[str, Any]:
    with StyleSearch.open(index, run=RUN) as engine:
        a = engine.familiarity(engine.embed_lenient(inside))
        b = engine.familiarity(engine.embed_lenient(outside))
        floor = engine.min_familiarity
    assert a is not None and b is not None
    return {"refused_in_domain": round(float(np.mean(a < floor)), 4), "caught_foreign": round(float(np.mean(b < floor)), 4)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=6, help="shares: random photo sets")
    parser.add_argument("--work", help="folder for the indexes (kept, reused); default: a temporary one")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    tmp = tempfile.TemporaryDirectory()
    work = Path(args.work or tmp.name)
    work.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    fu = rows_of(dataset_root(), "usage")
    ar = rows_of(arch_root(), "style")
    fu_train, fu_test = [r for r in fu if r["split"] == "train"], [r for r in fu if r["split"] == "test"]
    ar_train, ar_test = [r for r in ar if r["split"] == "train"], [r for r in ar if r["split"] == "test"]
    report: dict[str, Any] = {}

    def show(name: str, value: Any) -> None:
        report[name] = value
        print(f"{name}: {json.dumps(value)}", flush=True)

    # 1. natural mixes
    fu_full = build(fu_train, work / "fu-all")
    show("fashion_natural", classify(fu_full, fu_test))
    cut_styles = sorted({r["label"] for r in ar_train})[:2]
    ar_cut_rows = [r for r in ar_train if r["label"] not in cut_styles]
    for style in cut_styles:
        ar_cut_rows += [r for r in ar_train if r["label"] == style][:10]
    ar_cut = build(ar_cut_rows, work / "ar-cut")
    show("arch_cut", {"cut": cut_styles, "catalog": classify(ar_cut, ar_test), "uniform": classify(ar_cut, ar_test, "uniform")})

    # 2. cold start and 3. forced choice
    def per_class(
        rows: list[dict[str, str]], n: int, classes: tuple[str, ...], seed: int, cut: dict[str, int] | None = None
    ) -> list[dict[str, str]]:
        pick = np.random.default_rng(seed)
        out = []
        for c in classes:
            pool = [r for r in rows if r["label"] == c]
            m = (cut or {}).get(c, n)
            out += [pool[i] for i in sorted(pick.choice(len(pool), size=min(m, len(pool)), replace=False))]
        return out

    fu4_queries = per_class(fu_test, 150, FU4_CLASSES, 1)
    cold = build(per_class(fu_train, 400, FU4_CLASSES, 0, {"Ethnic": 10}), work / "fu4-cold")
    show("cold_start", {"catalog": classify(cold, fu4_queries), "uniform": classify(cold, fu4_queries, "uniform")})
    show("fu4_forced", classify(build(per_class(fu_train, 400, FU4_CLASSES, 0), work / "fu4"), fu4_queries))
    ar_full = build(ar_train, work / "ar-all")
    show("arch10_forced", classify(ar_full, ar_test))

    # 4. out-of-catalog
    demo_index = work / "demo-index"
    if not (work / "demo-held-out.json").exists():
        _, held_out = demo.generate(work / "demo", per_cell=4, seed=3)
        (work / "demo-held-out.json").write_text(json.dumps([str(q) for q, _, _ in held_out]))
    if not demo_index.exists():
        index_catalog(work / "demo" / "catalog" / "manifest.csv", demo_index, run=RUN)
    demo_queries = json.loads((work / "demo-held-out.json").read_text())
    demo_photos = [str(p) for p in sorted((work / "demo" / "catalog").rglob("*.png"))]
    sample = {
        "fashion": [fu_test[i]["file"] for i in rng.choice(len(fu_test), 200, replace=False)],
        "architecture": [ar_test[i]["file"] for i in rng.choice(len(ar_test), 200, replace=False)],
        "demo": list(rng.choice(demo_photos, 100, replace=False)),
    }
    indexes = {
        ("fashion", 400): build([fu_train[i] for i in rng.choice(len(fu_train), 400, replace=False)], work / "fu-400"),
        ("fashion", "all"): fu_full,
        ("architecture", 400): build([ar_train[i] for i in rng.choice(len(ar_train), 400, replace=False)], work / "ar-400"),
        ("architecture", "all"): ar_full,
        ("demo", "all"): demo_index,
    }
    ooc = []
    for (domain, size), index in indexes.items():
        inside = sample[domain] if domain != "demo" else demo_queries
        for other in sample:
            if other != domain:
                row = {"index": domain, "size": size, "foreign": other, **familiar(index, inside, sample[other])}
                ooc.append(row)
                print(json.dumps(row), flush=True)
    report["out_of_catalog"] = ooc

    # 5. shares
    draws = []
    for d in range(args.draws):
        want = np.random.default_rng(100 + d).dirichlet(np.ones(len(FU4_CLASSES)))
        counts = np.floor(want * 600).astype(int)
        counts[0] += 600 - counts.sum()
        photos = per_class(fu_test, 0, FU4_CLASSES, 200 + d, dict(zip(FU4_CLASSES, counts.tolist())))
        truth = {c: sum(r["label"] == c for r in photos) / len(photos) for c in FU4_CLASSES}
        with StyleSearch.open(fu_full, run=RUN) as engine:
            est = shares.of(engine, engine.embed([r["file"] for r in photos]))
        labels = list(est["shares"])
        t = {lab: truth.get(lab, 0.0) for lab in labels}
        main4 = list(FU4_CLASSES)
        row = {
            "truth": {k: round(v, 3) for k, v in truth.items()},
            "mae_main4": round(float(np.mean([abs(est["shares"][lab]["share"] - t[lab]) for lab in main4])), 4),
            "mae_main4_classify_and_count": round(
                float(np.mean([abs(est["classify_and_count"][lab] - t[lab]) for lab in main4])), 4
            ),
            "mae": round(float(np.mean([abs(est["shares"][lab]["share"] - t[lab]) for lab in labels])), 4),
            "mae_classify_and_count": round(float(np.mean([abs(est["classify_and_count"][lab] - t[lab]) for lab in labels])), 4),
            "inside": sum(est["shares"][lab]["low"] <= t[lab] <= est["shares"][lab]["high"] for lab in labels),
            "labels": len(labels),
        }
        draws.append(row)
        print(json.dumps(row), flush=True)
    report["shares"] = {
        "draws": draws,
        "mae": round(float(np.mean([r["mae"] for r in draws])), 4),
        "mae_classify_and_count": round(float(np.mean([r["mae_classify_and_count"] for r in draws])), 4),
        "mae_main4": round(float(np.mean([r["mae_main4"] for r in draws])), 4),
        "mae_main4_classify_and_count": round(float(np.mean([r["mae_main4_classify_and_count"] for r in draws])), 4),
        "coverage": round(sum(r["inside"] for r in draws) / sum(r["labels"] for r in draws), 3),
    }
    print(f"shares: {json.dumps(report['shares'] | {'draws': len(draws)})}")
    if args.json:
        print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
