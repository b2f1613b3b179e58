"""Ray embedding throughput with 1 and 2 workers next to the local path, on real photos.

    .venv/bin/python benchmarks/bench_ray.py [--n 2048] [--image-size 128] [--workers 1 2] [--json]

Indexes the first ``--n`` fashion-usage `train` photos three ways in one run: the local path
(decoding threads + the backbone on every core), then ``index --ray`` on a local Ray instance
(127.0.0.1, as many CPUs as workers) with each ``--workers`` count. Reports images/s end to
end and for the embedding stage, and the largest difference between the Ray and local vectors.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from protocols import dataset_root, read_rows, write_manifest  # noqa: E402

from stylesearch import StyleSearch, index_catalog
from stylesearch.config import EmbedConfig, RunConfig  # noqa: E402
from stylesearch.ingest import ray as ray_ingest  # noqa: E402

RUN = RunConfig(device="cpu", progress=False)


def vectors(index: Path) -> dict[str, np.ndarray]:
    with StyleSearch.open(index, run=RUN) as engine:
        store = engine.snapshot.backend
        records = engine.snapshot.meta.by_vids(store.ids.tolist())
        return {records[int(v)].id: store.vectors[i].astype(np.float32) for i, v in enumerate(store.ids)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2048)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    root = dataset_root()
    rows = [r for r in read_rows(root) if r["split"] == "train"][: args.n]
    config = EmbedConfig(image_size=args.image_size)
    table = []
    with tempfile.TemporaryDirectory() as tmp:
        manifest = write_manifest(rows, root, Path(tmp) / "m.csv")
        t0 = time.perf_counter()
        report = index_catalog(manifest, Path(tmp) / "local", embed=config, run=RUN)
        wall = time.perf_counter() - t0
        reference = vectors(Path(tmp) / "local")
        table.append(
            {
                "path": "local",
                "workers": "-",
                "images_per_s": round(len(rows) / wall, 1),
                "embed_stage_img_s": round(len(rows) / report.stages["embed"], 1),
                "max_abs_diff": 0.0,
            }
        )
        for workers in args.workers:
            ray_ingest.start(None, workers)
            t0 = time.perf_counter()
            report = index_catalog(manifest, Path(tmp) / f"ray{workers}", embed=config, run=RUN, ray="local", ray_workers=workers)
            wall = time.perf_counter() - t0
            ray_ingest.shutdown()
            got = vectors(Path(tmp) / f"ray{workers}")
            assert set(got) == set(reference)
            diff = max(float(np.abs(got[k] - reference[k]).max()) for k in reference)
            table.append(
                {
                    "path": "ray (local instance)",
                    "workers": workers,
                    "images_per_s": round(len(rows) / wall, 1),
                    "embed_stage_img_s": round(len(rows) / report.stages["embed"], 1),
                    "max_abs_diff": diff,
                }
            )
            print(json.dumps(table[-1]), file=sys.stderr, flush=True)
    print(f"# bench_ray ({platform.machine()}, {os.cpu_count()} cores; {len(rows)} photos, {args.image_size} px)\n")
    print("| path | workers | end to end img/s | embedding stage img/s | max abs diff vs local |")
    print("|---|---|---|---|---|")
    for r in table:
        print(f"| {r['path']} | {r['workers']} | {r['images_per_s']} | {r['embed_stage_img_s']} | {r['max_abs_diff']:.2e} |")
    if args.json:
        print(json.dumps(table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
