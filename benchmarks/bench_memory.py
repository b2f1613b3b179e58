"""Peak memory of `stylesearch index` as the catalog grows: does ingestion stream?

    .venv/bin/python benchmarks/bench_memory.py [--sizes 6000 24000] [--image-size 64] [--json]

Each size indexes fashion-usage photos (listed several times under new ids when the size is
larger than the data set) with the CLI in a fresh process; its peak resident memory
(``ru_maxrss``) is read when it exits. What may grow with the catalog is the index itself
(the vectors, the FAISS index, the metadata); decoded images, raw statistics and batches
must not. The report gives the growth per extra item next to the index's own bytes per item
(its files on disk). ``--image-size 64`` keeps the run short; the PCA sample (4,096 images,
the largest fixed cost) is the same at any size.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from protocols import dataset_root, read_rows, write_manifest  # noqa: E402

RUN = (
    "import resource, subprocess, sys\n"
    "rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode\n"
    "print(rc, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
)


def folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[6000, 24000])
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    root = dataset_root()
    rows = read_rows(root)
    cli = str(Path(sys.executable).with_name("stylesearch"))
    table = []
    for size in args.sizes:
        listed = [dict(r, id=str(copy * 10_000_000 + int(r["id"]))) for copy in range(size // len(rows) + 1) for r in rows][:size]
        with tempfile.TemporaryDirectory() as tmp:
            manifest = write_manifest(listed, root, Path(tmp) / "m.csv")
            index = Path(tmp) / "idx"
            command = [
                cli,
                "index",
                str(manifest),
                "--index",
                str(index),
                "--image-size",
                str(args.image_size),
                "--device",
                "cpu",
            ]
            out = subprocess.run([sys.executable, "-c", RUN, *command], capture_output=True, text=True, check=True)
            rc, maxrss_kib = (int(x) for x in out.stdout.split())
            if rc != 0:
                raise SystemExit(f"index failed for {size} items (exit {rc})")
            table.append(
                {"items": size, "peak_rss_mib": round(maxrss_kib / 1024, 1), "index_mib": round(folder_bytes(index) / 2**20, 2)}
            )
        print(json.dumps(table[-1]), file=sys.stderr, flush=True)
    first, last = table[0], table[-1]
    extra = last["items"] - first["items"]
    growth = (last["peak_rss_mib"] - first["peak_rss_mib"]) * 2**20 / max(1, extra)
    index_per_item = (last["index_mib"] - first["index_mib"]) * 2**20 / max(1, extra)
    print(f"# bench_memory ({platform.machine()}, {args.image_size} px)\n")
    print("| items | peak RSS MiB | index on disk MiB |")
    print("|---|---|---|")
    for r in table:
        print(f"| {r['items']:,} | {r['peak_rss_mib']} | {r['index_mib']} |")
    print(f"\npeak memory grows {growth:,.0f} bytes per extra item; the index takes {index_per_item:,.0f} bytes per item on disk")
    if args.json:
        print(json.dumps({"runs": table, "growth_bytes_per_item": round(growth), "index_bytes_per_item": round(index_per_item)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
