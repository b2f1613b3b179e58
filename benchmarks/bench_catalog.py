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
- ``metadata`` / ``metadata manifest``: the records and stamps of the folder's / the
  manifest's items (those have two attributes) written into a generation's SQLite, as
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
STEPS = ("catalog folder", "catalog manifest", "stamps", "metadata", "metadata manifest", "sync check")


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
    import stylesearch
    from stylesearch.ingest import build

    records_of = getattr(build, "records_of", None)

    assert Path(stylesearch.__file__).parents[1] == Path(sys.path[0]), "measured the wrong revision"
    out: dict[str, float] = {}
    t = time.perf_counter()
    catalogs = {"folder": load_catalog(folder / "cat")}
    out["catalog folder"] = time.perf_counter() - t
    t = time.perf_counter()
    catalogs["manifest"] = load_catalog(folder / "cat.csv")
    out["catalog manifest"] = time.perf_counter() - t
    items = catalogs["folder"].items
    if decoders:
        # what the decoders hand over: each file's bytes read once, stamped from them
        made = [stamping.read_stamped(item.path, 1 << 26)[1] for item in items]
        t = time.perf_counter()
        stamps = [(vid, *s) for vid, s in enumerate(made) if s is not None]
        out["stamps"] = time.perf_counter() - t
        blobs = [item.path.read_bytes() for item in items[:20000]]
        t = time.perf_counter()
        for data in blobs:
            stamping.digest_bytes(data)
        with open(items[0].path, "rb") as fh:
            for _ in blobs:
                os.fstat(fh.fileno())
        out["stamp in decoders"] = (time.perf_counter() - t) * len(items) / len(blobs)
    else:
        t = time.perf_counter()
        stamps = stamping.stamps_of([(vid, item.path) for vid, item in enumerate(items)])
        out["stamps"] = time.perf_counter() - t
    for kind, catalog in catalogs.items():
        with tempfile.TemporaryDirectory() as tmp:
            t = time.perf_counter()
            if records_of is not None:
                records = records_of(catalog.items)
            else:  # before issue 28, as ingest/build.py made them
                records = [Record(v, i.id, path_text(i.path), i.label, i.attributes) for v, i in enumerate(catalog.items)]
            meta = MetadataStore(Path(tmp) / "metadata.sqlite")
            meta.add(records)
            meta.set_stamps(stamps)
            meta.close()
            out["metadata" if kind == "folder" else "metadata manifest"] = time.perf_counter() - t
    known = {s[0]: s[1:] for s in stamps}
    t = time.perf_counter()
    for vid, item in enumerate(items):
        stamping.stamp(item.path, known.get(vid))
    out["sync check"] = time.perf_counter() - t
    return out


def run_revision(source: Path, folder: Path) -> dict[str, float]:
    code = (
        # the revision's package, not the editable install's finder (which would serve new modules)
        "import sys, json; sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in repr(f).lower()]; "
        f"sys.path.insert(0, {str(source)!r}); sys.path.insert(1, {str(ROOT / 'benchmarks')!r}); "
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
    paths = {"folder": ("catalog folder", "stamps", "metadata"), "manifest": ("catalog manifest", "stamps", "metadata manifest")}
    totals = {name: {k: sum(per[s] for s in steps) for k, steps in paths.items()} for name, per in per_file.items()}
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
    for kind in paths:
        before, after = totals["before"][kind], totals["after"][kind]
        print(f"{'total, ' + kind:<20}{before:>10.2f}{after:>10.2f}   (catalog + stamps + metadata; the check: <= 10)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
