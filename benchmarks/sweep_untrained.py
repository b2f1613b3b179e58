"""Choosing the untrained defaults on VALIDATION splits carved from the training photos of
both shared domains (never their test photos): backbone × input size × flip averaging ×
PCA whitening (power, shrinkage).

Validation protocols (seeded, from ``split == train`` only; the shapes of FU4 / FUW / ARCH10):

- ``FU4-val``: per class of Casual, Sports, Ethnic, Formal, 300 train photos indexed and 100
  other train photos queried; kNN (k = 10) over the whole gallery.
- ``FUW-val``: per product type of FUW, the usages with >= 30 train photos of that type;
  n = min(100, smallest count - 10) indexed and 10 (or up to 30) others queried per usage;
  neighbours restricted to the query's product type.
- ``ARCH10-val``: per style, 30 % of the train photos queried, the rest indexed.
- ``INT5-val`` / ``INT5W-val`` (interior-styles): the same cut per style; INT5W-val restricts
  neighbours to the query's room type.

``--sets`` picks some of them.

Raw statistics are computed once per (backbone, size) for the plain and the mirrored image;
every projection variant is then fitted on the validation gallery (as an index build fits on
its catalog) and scored with the engine's own kNN vote (macro-F1), and, for same-style search
over the whole gallery, precision@10 and MAP@R (FU4-val and ARCH10-val).

The rule the defaults were chosen by (2026-11-29): the best mean kNN macro-F1 over the three
sets among the variants whose P@10 stays within 1 point and MAP@R within 2 points of plain PCA
on both FU4-val and ARCH10-val — whitening helps the vote but, pushed to full whitening,
costs search ranking (MAP@R 0.27 → 0.15 on FU4-val).

    .venv/bin/python benchmarks/sweep_untrained.py [--configs efficientnet_lite0:128 ...] [--json]

A config is ``BACKBONE:SIZE[+SIZE...][/layers=A,B,...][/recipe=R]``: several sizes average
the raw statistics of each scale (multi-scale statistics); ``layers`` / ``recipe`` choose the
blocks and the statistics (the backbone's style blocks and ``--recipe`` otherwise).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from protocols import FU4_CLASSES, FUW_TYPES, dataset_root  # noqa: E402

from stylesearch.classify import decide  # noqa: E402
from stylesearch.config import EmbedConfig, RunConfig  # noqa: E402
from stylesearch.evaluate import macro_f1, map_at_r  # noqa: E402
from stylesearch.model.embed import Embedder, stream  # noqa: E402
from stylesearch.model.projection import Projection, whitening  # noqa: E402
from stylesearch.results import Hit  # noqa: E402

ARCH_ROOT = dataset_root().parent / "architecture-styles"
INTERIOR_ROOT = dataset_root().parent / "interior-styles"
Row = dict[str, str]


def _rows(root: Path, label: str) -> list[Row]:
    with (root / "metadata.csv").open(newline="", encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if r["split"] == "train"]
    for r in rows:
        r["label"], r["file"] = r[label], str(root / r["path"])
    return sorted(rows, key=lambda r: r["id"])


def validation_sets(seed: int = 0) -> dict[str, tuple[list[Row], list[Row], str | None]]:
    """name → (gallery rows, query rows, the attribute neighbours must share or None)."""
    rng = np.random.default_rng(seed)
    fashion = _rows(dataset_root(), "usage")
    out: dict[str, tuple[list[Row], list[Row], str | None]] = {}
    gallery, queries = [], []
    for usage in FU4_CLASSES:
        pool = [fashion[i] for i in rng.permutation(len(fashion)) if fashion[i]["usage"] == usage][:400]
        gallery += pool[:300]
        queries += pool[300:400]
    out["FU4-val"] = (gallery, queries, None)
    gallery, queries = [], []
    for article in FUW_TYPES:
        by_usage: dict[str, list[Row]] = defaultdict(list)
        for r in fashion:
            if r["articleType"] == article and r["usage"] in FU4_CLASSES:
                by_usage[r["usage"]].append(r)
        usages = [u for u in FU4_CLASSES if len(by_usage[u]) >= 30]
        if len(usages) < 2:
            continue
        m = min(30, max(10, min(len(by_usage[u]) for u in usages) // 5))
        n = min(100, min(len(by_usage[u]) for u in usages) - m)
        for u in usages:
            picked = [by_usage[u][i] for i in rng.permutation(len(by_usage[u]))]
            gallery += picked[:n]
            queries += picked[n : n + m]
    out["FUW-val"] = (gallery, queries, "articleType")
    arch = _rows(ARCH_ROOT, "style")
    gallery, queries = [], []
    for style in sorted({r["style"] for r in arch}):
        picked = [r for r in (arch[i] for i in rng.permutation(len(arch))) if r["style"] == style]
        cut = int(round(0.3 * len(picked)))
        queries += picked[:cut]
        gallery += picked[cut:]
    out["ARCH10-val"] = (gallery, queries, None)
    interior = _rows(INTERIOR_ROOT, "style")
    gallery, queries = [], []
    for style in sorted({r["style"] for r in interior}):
        picked = [r for r in (interior[i] for i in rng.permutation(len(interior))) if r["style"] == style]
        cut = int(round(0.3 * len(picked)))
        queries += picked[:cut]
        gallery += picked[cut:]
    out["INT5-val"] = (gallery, queries, None)
    out["INT5W-val"] = (gallery, queries, "room")
    return out


def raw_statistics(config: EmbedConfig, files: list[str], run: RunConfig) -> tuple[np.ndarray, np.ndarray, float]:
    """(plain, mirrored) raw statistics float32 [N, R] and the plain pass's images/s."""
    embedder = Embedder(config, run)
    views = []
    rate = 0.0
    for flip in (False, True):
        out = np.zeros((len(files), embedder.raw_dim), np.float32)
        t0 = time.perf_counter()
        for batch in stream(embedder, files, project=False, flip=flip):
            if batch.failures:
                raise RuntimeError(f"failed to decode: {batch.failures[:2]}")
            out[batch.positions] = batch.values
        if not flip:
            rate = len(files) / (time.perf_counter() - t0)
        views.append(out)
    return views[0], views[1], rate


def parse_config(spec: str, recipe: str) -> tuple[list[EmbedConfig], str]:
    """One EmbedConfig per scale of ``spec`` (see the module's docstring), and a short name."""
    head, *options = spec.split("/")
    backbone, sizes = head.split(":")
    settings: dict[str, object] = {"recipe": recipe}
    for option in options:
        key, value = option.split("=", 1)
        settings[key] = tuple(value.split(",")) if key == "layers" else value
    return [EmbedConfig(backbone=backbone, image_size=int(size), **settings) for size in sizes.split("+")], spec  # type: ignore[arg-type]


def multiscale_statistics(configs: list[EmbedConfig], files: list[str], run: RunConfig) -> tuple[np.ndarray, np.ndarray, float]:
    """``raw_statistics`` averaged over the scales (images/s of all scales' passes together)."""
    plain, flip, seconds = None, None, 0.0
    for config in configs:
        p, f, rate = raw_statistics(config, files, run)
        plain = p if plain is None else plain + p
        flip = f if flip is None else flip + f
        seconds += len(files) / rate
    assert plain is not None and flip is not None
    return plain / len(configs), flip / len(configs), len(files) / seconds


def whitened(pca: Projection, variance: np.ndarray, power: float, shrink: float) -> Projection:
    """``pca`` with each component divided by (its variance + shrink × the mean kept variance)
    ** (power / 2) — what ``Projection.fit_pca(..., whiten=power, shrink=shrink)`` fits, from
    one PCA for every variant."""
    assert pca.matrix is not None
    scale = whitening(variance, power, shrink)
    return Projection(pca.matrix * scale, pca.bias * scale, "pca")


def ranking(gallery: np.ndarray, g_rows: list[Row], queries: np.ndarray, q_rows: list[Row]) -> tuple[float, float]:
    """(precision@10, MAP@R) of same-label retrieval over the whole gallery."""
    labels = np.array([r["label"] for r in g_rows])
    truth = np.array([r["label"] for r in q_rows])
    relevant = labels[np.argsort(-(queries @ gallery.T), axis=1)] == truth[:, None]
    counts = {label: int((labels == label).sum()) for label in set(truth)}
    return float(relevant[:, :10].mean()), map_at_r(relevant, [counts[t] for t in truth])


def knn_f1(gallery: np.ndarray, g_rows: list[Row], queries: np.ndarray, q_rows: list[Row], within: str | None) -> float:
    sims = queries @ gallery.T
    labels = [r["label"] for r in g_rows]
    counts_all: dict[str, int] = defaultdict(int)
    for label in labels:
        counts_all[label] += 1
    group_counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    if within:
        for r in g_rows:
            group_counts[r[within]][r["label"]] += 1
    preds = []
    for i, q in enumerate(q_rows):
        row = sims[i].copy()
        voters = counts_all
        if within:
            row[[r[within] != q[within] for r in g_rows]] = -np.inf
            voters = group_counts[q[within]]
        top = np.argsort(-row)[:10]
        top = top[np.isfinite(row[top])]
        hits = [Hit(str(j), float(row[j]), labels[j], "") for j in top]
        preds.append(decide(hits, None, (), dict(voters), threshold=0.0).label)
    return macro_f1([r["label"] for r in q_rows], preds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--configs", nargs="+", default=["efficientnet_lite0:128", "efficientnet_lite1:128", "efficientnet_lite2:128"]
    )
    parser.add_argument("--powers", type=float, nargs="+", default=[0.0, 0.25, 0.5, 0.75, 1.0])
    parser.add_argument("--shrinks", type=float, nargs="+", default=[0.0, 0.1, 1.0])
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--recipe", default="gram")
    parser.add_argument("--sets", nargs="+", help="some of the validation sets (default: all)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    run = RunConfig(device="cpu", workers=0, progress=False)
    sets = {k: v for k, v in validation_sets().items() if not args.sets or k in args.sets}
    print({name: (len(g), len(q)) for name, (g, q, _) in sets.items()}, file=sys.stderr)
    results = []
    for spec in args.configs:
        configs, name_of_config = parse_config(spec, args.recipe)
        backbone, size = name_of_config, configs[0].image_size
        done: dict[tuple[str, ...], tuple[np.ndarray, np.ndarray, float]] = {}  # INT5W-val reuses INT5-val's photos
        for name, (g_rows, q_rows, within) in sets.items():
            for files in (tuple(r["file"] for r in g_rows), tuple(r["file"] for r in q_rows)):
                if files not in done:
                    done[files] = multiscale_statistics(configs, list(files), run)
            plain_g, flip_g, rate = done[tuple(r["file"] for r in g_rows)]
            plain_q, flip_q, _ = done[tuple(r["file"] for r in q_rows)]
            for tta in ("none", "flip"):
                g = plain_g if tta == "none" else (plain_g + flip_g) / 2
                q = plain_q if tta == "none" else (plain_q + flip_q) / 2
                pca = Projection.fit_pca(g, args.dim)
                assert pca.matrix is not None
                variance = (((g - g.mean(0)) @ pca.matrix) ** 2).mean(0)
                for power in args.powers:
                    for shrink in args.shrinks if power else [0.0]:
                        projection = whitened(pca, variance, power, shrink)
                        pg, pq = projection.apply(g), projection.apply(q)
                        f1 = knn_f1(pg, g_rows, pq, q_rows, within)
                        p10, mapr = ranking(pg, g_rows, pq, q_rows) if within is None else (None, None)
                        row = {"backbone": backbone, "size": size, "set": name, "tta": tta, "power": power,
                               "shrink": shrink, "macro_f1": round(f1, 4), "img_s": round(rate, 1),
                               "p_at_10": None if p10 is None else round(p10, 4),
                               "map_at_r": None if mapr is None else round(mapr, 4)}  # fmt: skip
                        results.append(row)
                        print(json.dumps(row), flush=True)
    if args.json:
        print(json.dumps(results))


if __name__ == "__main__":
    main()
