"""Near-duplicates on planted copies of real photos, beside imagededup, and grouping at scale
(issues 15, 26).

``--originals`` fashion-usage photos of ``--split`` (``train``: the threshold is chosen there;
``test``: reported) are indexed through ``index_catalog`` (copy signatures are made in the same
decode pass) with, for ``--planted`` of them, one copy per kind: JPEG quality 50, half size,
mirror image, a crop keeping 90 % of each side, a "SALE -20%" text overlay, twice the size.
For each threshold, every pair inside a ``StyleSearch.duplicates`` group is a predicted pair;
true pairs are (original, copy) and (copy, copy) of one original, plus pairs of originals that
are the same photo already in the dataset (decoded pixels within 1 grey level on average).
Reports pair precision, recall per kind, and colourway pairs grouped (same product name once
its colour word is removed, same articleType, different baseColour: not duplicates).

imagededup on the same files: PHash (Hamming distance ≤ 10, its default, and lower) and its
CNN descriptor with EfficientNet-Lite0 (its own MobileNetV3 weights download at run time, so
the offline Lite0 weights stand in), each as pairs (not joined into groups); seconds per 1,000.

``--scale N``: time grouping N synthetic signatures (fashion thumbnails under random colour
gains, 1 % planted exact copies): candidate search + scoring.

    .venv/bin/pip install -e '.[bench]'   # imagededup, once
    .venv/bin/python benchmarks/bench_dedup.py [--split train|test] [--originals 2000] [--planted 60] [--scale 100000] [--json]
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import platform
import re
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from protocols import dataset_root, read_rows  # noqa: E402

from stylesearch import StyleSearch, index_catalog  # noqa: E402
from stylesearch.config import RunConfig  # noqa: E402

KINDS = ("jpeg50", "resize50", "flip", "crop90", "overlay", "resize200")
THRESHOLDS = (0.975, 0.98, 0.985, 0.99, 0.9925, 0.995)


def transform(image: Image.Image, kind: str, rng: np.random.Generator) -> tuple[Image.Image, int]:
    """The copy and the JPEG quality it is saved at."""
    if kind.startswith("jpeg"):
        return image, int(kind[4:])
    if kind.startswith("resize"):
        scale = int(kind[6:]) / 100
        return image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))), Image.BICUBIC), 95
    if kind == "flip":
        return image.transpose(Image.FLIP_LEFT_RIGHT), 95
    if kind.startswith("crop"):
        keep = int(kind[4:]) / 100
        w, h = int(image.width * keep), int(image.height * keep)
        x, y = int(rng.integers(0, image.width - w + 1)), int(rng.integers(0, image.height - h + 1))
        return image.crop((x, y, x + w, y + h)), 95
    out = image.copy()
    size = max(10, image.height // 12)
    ImageDraw.Draw(out).text((image.width // 20, image.height - 2 * size), "SALE -20%", fill=(220, 0, 0), font_size=size)
    return out, 95


def plant(root: Path, rows: list[dict[str, str]], planted: int, folder: Path) -> tuple[Path, dict[str, tuple[str, str]]]:
    """A manifest of the originals and their copies; copy id → (original id, kind)."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    entries = [(r["id"], str(root / r["path"])) for r in rows]
    copies: dict[str, tuple[str, str]] = {}
    for r in rows[:planted]:
        image = Image.open(root / r["path"]).convert("RGB")
        for kind in KINDS:
            copy, quality = transform(image, kind, rng)
            path = folder / f"{r['id']}-{kind}.jpg"
            copy.save(path, format="JPEG", quality=quality)
            entries.append((f"{r['id']}-{kind}", str(path)))
            copies[f"{r['id']}-{kind}"] = (r["id"], kind)
    manifest = folder / "manifest.csv"
    with manifest.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([("id", "path"), *entries])
    return manifest, copies


def native_duplicates(root: Path, rows: list[dict[str, str]]) -> set[frozenset[str]]:
    """Pairs of originals that are already the same photo: decoded at 128 px, within 1 grey level on average."""
    from stylesearch.images import load_tensor

    pixels = torch.stack([load_tensor(root / r["path"], 128) for r in rows]).float().flatten(1)
    small = torch.nn.functional.normalize(pixels - pixels.mean(1, keepdim=True), dim=1)
    near = torch.nonzero(torch.triu(small @ small.T, 1) > 0.999).tolist()
    return {frozenset((rows[a]["id"], rows[b]["id"])) for a, b in near if (pixels[a] - pixels[b]).abs().mean() < 1.0}


def colourways(rows: list[dict[str, str]]) -> list[frozenset[str]]:
    """Pairs of originals that are one product in two colours (not duplicates)."""
    by: dict[tuple[str, str], list[dict[str, str]]] = defaultdict(list)
    for r in rows:
        by[(re.sub(re.escape(r["baseColour"]), "", r["productDisplayName"], flags=re.I).strip(), r["articleType"])].append(r)
    pairs = (pair for v in by.values() for pair in itertools.combinations(v, 2))
    return [frozenset((a["id"], b["id"])) for a, b in pairs if a["baseColour"] != b["baseColour"]]


def score(predicted: set[frozenset[str]], copies: dict[str, tuple[str, str]], native: set, colour: list) -> dict[str, float]:
    """Pair precision, recall per kind, the share of colourway pairs predicted."""
    origin = {c: o for c, (o, _) in copies.items()}
    true = sum(1 for p in predicted if len({origin.get(i, i) for i in p}) == 1 or p in native)
    out: dict[str, float] = {"pairs": len(predicted), "precision": round(true / len(predicted), 4) if predicted else 1.0}
    for kind in KINDS:
        out[kind] = round(float(np.mean([frozenset((c, o)) in predicted for c, (o, k) in copies.items() if k == kind])), 4)
    out["colourways"] = round(float(np.mean([p in predicted for p in colour])), 4) if colour else 0.0
    return out


def group_pairs(groups: list) -> set[frozenset[str]]:
    return {frozenset(p) for g in groups for p in itertools.combinations([i for i, _ in g.members], 2)}


def imagededup_runs(manifest: Path) -> list[dict]:
    """imagededup's PHash and CNN (EfficientNet-Lite0 features) on the same files: predicted pairs and seconds."""
    from imagededup.methods import CNN, PHash
    from imagededup.utils.models import CustomModel

    from stylesearch.images import load_image, to_tensor
    from stylesearch.model.backbones import create_backbone

    with manifest.open(encoding="utf-8") as fh:
        entries = list(csv.DictReader(fh))
    runs = []
    phash = PHash(verbose=False)
    t0 = time.perf_counter()
    hashes = {e["id"]: phash.encode_image(image_file=e["path"]) for e in entries}
    encode = time.perf_counter() - t0
    for distance in (10, 6, 2):
        name = f"imagededup PHash, distance <= {distance}"
        runs.append(_found(name, encode, lambda d=distance: phash.find_duplicates(encoding_map=hashes, max_distance_threshold=d)))
    backbone = create_backbone("efficientnet_lite0", "imagenet").eval()

    class Lite0(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return backbone.features(x, ["head"])[0].mean((2, 3))

    config = CustomModel(name="efficientnet_lite0", model=Lite0(), transform=lambda im: to_tensor(im, 128))
    cnn = CNN(verbose=False, model_config=config)
    t0 = time.perf_counter()
    with torch.inference_mode():
        features = {e["id"]: cnn.encode_image(image_array=np.array(load_image(e["path"])))[0] for e in entries}
    encode = time.perf_counter() - t0
    for similarity in (0.9, 0.95, 0.98):
        name = f"imagededup CNN (Lite0), cosine >= {similarity}"
        runs.append(
            _found(name, encode, lambda s=similarity: cnn.find_duplicates(encoding_map=features, min_similarity_threshold=s))
        )
    return runs


def _found(method: str, encode_s: float, find) -> dict:  # type: ignore[no-untyped-def]
    """imagededup's answer (file → its duplicates) as pairs, with the seconds it took including encoding."""
    t0 = time.perf_counter()
    found = find()
    pairs = {frozenset((a, b)) for a, bs in found.items() for b in bs}
    return {"method": method, "pairs": pairs, "seconds": encode_s + time.perf_counter() - t0}


def scale_run(n: int, base: np.ndarray) -> dict:
    """Grouping ``n`` synthetic signatures: fashion thumbnails under random colour gains, 1 % exact copies."""
    from stylesearch.config import DUPLICATE_THRESHOLD
    from stylesearch.copies import copy_scores
    from stylesearch.index.duplicates import candidates

    rng = np.random.default_rng(n)
    gains = rng.uniform(0.5, 1.5, (n, 3, 1)).astype(np.float32)
    signatures = np.clip(base[rng.integers(0, len(base), n)].reshape(n, 3, -1) * gains, 0, 255).astype(np.uint8).reshape(n, -1)
    copies = rng.choice(n, size=n // 50, replace=False)
    signatures[copies[: len(copies) // 2]] = signatures[copies[len(copies) // 2 :]]
    t0 = time.perf_counter()
    pairs = candidates(signatures, np.ones(n, bool))
    t1 = time.perf_counter()
    found = int((copy_scores(signatures, pairs) >= DUPLICATE_THRESHOLD).sum())
    t2 = time.perf_counter()
    return {"items": n, "candidate_pairs": len(pairs), "copy_pairs": found, "search_s": round(t1 - t0, 1),
            "score_s": round(t2 - t1, 1), "seconds": round(t2 - t0, 1)}  # fmt: skip


def table(rows: list[dict], first: str) -> list[str]:
    lines = [f"| {first} | pairs | precision | " + " | ".join(KINDS) + " | colourways grouped | s per 1,000 |"]
    lines.append("|---" * (5 + len(KINDS)) + "|")
    for r in rows:
        cells = " | ".join(str(r[k]) for k in KINDS)
        lines.append(f"| {r['name']} | {r['pairs']} | {r['precision']} | {cells} | {r['colourways']} | {r['per_1000_s']} |")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--originals", type=int, default=2000)
    parser.add_argument("--planted", type=int, default=60)
    parser.add_argument("--thresholds", type=float, nargs="*", default=list(THRESHOLDS))
    parser.add_argument("--scale", type=int, nargs="*", default=[100_000])
    parser.add_argument("--split", default="train", choices=["train", "test"], help="photos planted among (train: choose)")
    parser.add_argument("--no-imagededup", action="store_true", help="leave imagededup out")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    root = dataset_root()
    pool = sorted((r for r in read_rows(root) if r["split"] == args.split), key=lambda r: int(r["id"]))
    rows = [pool[i] for i in sorted(np.random.default_rng(1).choice(len(pool), args.originals, replace=False))]
    run = RunConfig(progress=False)
    out: dict = {"machine": f"{platform.machine()}, {torch.get_num_threads()} threads", "split": args.split, "rows": []}
    native, colour = native_duplicates(root, rows), colourways(rows)
    out.update(native_pairs=len(native), colourway_pairs=len(colour))
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        manifest, copies = plant(root, rows, args.planted, tmp / "catalog")
        t0 = time.perf_counter()
        report = index_catalog(manifest, tmp / "index", run=run)
        out["index_s"] = round(time.perf_counter() - t0, 1)
        out["items"] = report.items
        with StyleSearch.open(tmp / "index", run=run) as engine:
            for threshold in args.thresholds:
                engine.snapshot.cache.clear()  # each threshold timed as a whole grouping pass, not a cached one
                t0 = time.perf_counter()
                groups = engine.duplicates(threshold)
                seconds = time.perf_counter() - t0
                row = {"name": f"stylesearch, copy score >= {threshold}", "threshold": threshold, "groups": len(groups)}
                row.update(score(group_pairs(groups), copies, native, colour), per_1000_s=round(1000 * seconds / len(engine), 2))
                out["rows"].append(row)
                print(json.dumps(row), file=sys.stderr, flush=True)
        if not args.no_imagededup:
            for r in imagededup_runs(manifest):
                row = {"name": r["method"], **score(r["pairs"], copies, native, colour)}
                row["per_1000_s"] = round(1000 * r["seconds"] / out["items"], 2)
                out["rows"].append(row)
                print(json.dumps(row), file=sys.stderr, flush=True)
    ours = [r for r in out["rows"] if "threshold" in r]
    out["chosen"] = min((r["threshold"] for r in ours if r["precision"] >= 0.97), default=None)  # precision first
    if args.scale:
        from stylesearch.copies import thumbnails
        from stylesearch.images import load_tensor

        base = thumbnails(torch.stack([load_tensor(root / r["path"], 128) for r in pool[:4000]]).numpy())
        out["scale"] = [scale_run(n, base) for n in args.scale]
    print(f"# bench_dedup ({out['machine']}): {args.split} split, {out['items']} items ({args.planted} originals with "
          f"{len(KINDS)} copies each), {out['native_pairs']} same-photo pairs already in the data, "
          f"{out['colourway_pairs']} colourway pairs; indexing {out['index_s']} s\n")  # fmt: skip
    print("\n".join(table(out["rows"], "method")))
    print(f"\nlowest threshold with precision >= 0.97 (the default's rule): {out['chosen']}")
    for s in out.get("scale", []):
        print(f"scale: {s['items']} items, {s['candidate_pairs']} candidate pairs scored → {s['copy_pairs']} copy pairs in "
              f"{s['seconds']} s (search {s['search_s']} s, scoring {s['score_s']} s)")  # fmt: skip
    if args.json:
        print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
