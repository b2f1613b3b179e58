"""Per-file costs of indexing besides the model (issue 28): listing the catalog, stamping its
files for ``sync``, writing the metadata rows — today's code against a baseline revision, on
the same files in one run.

``--files`` small JPEG files (4 KB each, distinct bytes; 20 label folders × 50 sub-folders)
and a CSV manifest of the same files (id, label and two attributes) are written to a
temporary folder. Each revision is measured in its own process (the baseline's ``stylesearch``
is extracted with ``git archive``), ``--rounds`` times, alternating, best round kept:

- ``catalog folder`` / ``catalog manifest``: ``load_catalog`` of the folder / the manifest;
- ``stamps``: the stamping an index build waits for. Before issue 28 every file was read
  and hashed again after embedding (``stamps_of``); now the decoders stamp the bytes they
  read, and what is left on the critical path is gathering those stamps. The digest the
  decoders add per file is measured on its own (``stamp in decoders``: BLAKE2b of bytes
  in hand and an ``fstat``), and reported beside the critical path, not hidden;
- ``metadata``: the records and stamps written into a generation's SQLite, as
  ``ingest/build.py`` writes them;
- ``sync check``: the per-file ``stat`` of an unchanged catalog (``sync``'s fast path).

    .venv/bin/python benchmarks/bench_catalog.py [--files 100000] [--baseline 61685cc] [--rounds 2] [--json]
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STEPS = ("catalog folder", "catalog manifest", "stamps", "metadata", "sync check")


def make_catalog(folder: Path, n: int) -> Path:
    """``n`` distinct 4 KB JPEG files under ``folder/cat`` and ``folder/cat.csv``."""
    import numpy as np
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (80, 60, 3), np.uint8)).save(buf, "JPEG", quality=80)
    base = buf.getvalue()
    rows = []
    for i in range(n):
        rel = f"cat/style{i % 20:02d}/shelf{(i // 20) % 50:02d}/{i:07d}.jpg"
        path = folder / rel
        if i < 1000:
            path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base + i.to_bytes(4, "big"))  # after EOI: still the same picture, other bytes
        rows.append((rel, f"p{i}", f"style{i % 20:02d}", f"c{i % 7}", f"s{i % 4}"))
    manifest = folder / "cat.csv"
    with manifest.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "id", "label", "colour", "season"])
        writer.writerows(rows)
    return manifest


def measure(folder: Path) -> dict[str, float]:
    """Seconds of each step with the ``stylesearch`` on ``sys.path`` (either revision)."""
    from stylesearch.catalog import load_catalog, path_text
    from stylesearch.index.metadata import MetadataStore, Record

    try:  # since issue 28: stamps made by the decoders
        from stylesearch import stamps as stamping

        decoders = True
    except ImportError:
        from stylesearch.ingest import sync as stamping  # type: ignore[no-redef]

        decoders = False
    out: dict[str, float] = {}
    t = time.perf_counter()
    catalog = load_catalog(folder / "cat")
    out["catalog folder"] = time.perf_counter() - t
    t = time.perf_counter()
    catalog = load_catalog(folder / "cat.csv")
    out["catalog manifest"] = time.perf_counter() - t
    items = catalog.items
    if decoders:
        # what the decoders hand over: each file's bytes read once, stamped from them
        made = [stamping.read_stamped(item.path, 1 << 26)[1] for item in items]
        t = time.perf_counter()
        stamps = [(vid, *s) for vid, s in enumerate(made) if s is not None]
        out["stamps"] = time.perf_counter() - t
        blobs = [(item.path.read_bytes()) for item in items[:20000]]
        t = time.perf_counter()
        for data in blobs:
            stamping.digest_bytes(data)
        for item in items[:20000]:
            with open(item.path, "rb") as fh:
                os.fstat(fh.fileno())
        open_cost = time.perf_counter() - t
        t = time.perf_counter()
        for item in items[:20000]:
            with open(item.path, "rb"):
                pass
        out["stamp in decoders"] = (open_cost - (time.perf_counter() - t)) * len(items) / len(blobs)
    else:
        t = time.perf_counter()
        stamps = stamping.stamps_of([(vid, item.path) for vid, item in enumerate(items)])
        out["stamps"] = time.perf_counter() - t
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        records = [Record(vid, item.id, path_text(item.path), item.label, item.attributes) for vid, item in enumerate(items)]
        try:
            meta = MetadataStore(Path(tmp) / "metadata.sqlite", building=True)  # type: ignore[call-arg]
        except TypeError:  # before issue 28
            meta = MetadataStore(Path(tmp) / "metadata.sqlite")
        meta.add(records)
        meta.set_stamps(stamps)
        meta.close()
        out["metadata"] = time.perf_counter() - t
    known = {s[0]: s[1:] for s in stamps}
    t = time.perf_counter()
    for vid, item in enumerate(items):
        stamping.stamp(item.path, known.get(vid))
    out["sync check"] = time.perf_counter() - t
    return out


def run_revision(source: Path, folder: Path) -> dict[str, float]:
    code = (
        f"import sys, json; sys.path.insert(0, {str(source)!r}); sys.path.insert(1, {str(ROOT / 'benchmarks')!r}); "
        f"import bench_catalog; print(json.dumps(bench_catalog.measure(__import__('pathlib').Path({str(folder)!r}))))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=str(folder))
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--baseline", default="61685cc", help="git revision to compare with (before issue 28)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        base = tmp / "baseline"
        base.mkdir()
        archive = subprocess.run(["git", "archive", args.baseline, "stylesearch"], cwd=ROOT, capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", str(base)], input=archive.stdout, check=True)
        data = tmp / "data"
        data.mkdir()
        t = time.perf_counter()
        make_catalog(data, args.files)
        print(f"wrote {args.files} files in {time.perf_counter() - t:.1f} s", file=sys.stderr)
        best: dict[str, dict[str, float]] = {"before": {}, "after": {}}
        for _ in range(args.rounds):
            for name, source in (("before", base), ("after", ROOT)):
                for step, seconds in run_revision(source, data).items():
                    best[name][step] = min(seconds, best[name].get(step, float("inf")))
    per_file = {name: {s: v / args.files * 1e6 for s, v in steps.items()} for name, steps in best.items()}
    critical = ("catalog folder", "stamps", "metadata")
    totals = {name: sum(per[s] for s in critical) for name, per in per_file.items()}
    result = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cpus",
        "files": args.files,
        "baseline": args.baseline,
        "us_per_file": per_file,
        "catalog_stamps_metadata_us": totals,
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{args.files} files; µs per file, best of {args.rounds} rounds; before = {args.baseline}")
    print(f"{'step':<20}{'before':>10}{'after':>10}")
    for step in (*STEPS, "stamp in decoders"):
        before, after = per_file["before"].get(step), per_file["after"].get(step)
        cell = lambda v: f"{v:>10.2f}" if v is not None else f"{'—':>10}"  # noqa: E731
        print(f"{step:<20}{cell(before)}{cell(after)}")
    print(f"{'folder+stamps+meta':<20}{totals['before']:>10.2f}{totals['after']:>10.2f}   (the check: <= 10 µs a file)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
