"""Incremental sync against a full rebuild, in one run (issue 15).

A catalog of ``--items`` fashion-usage photos (a manifest of absolute paths; changed photos
are written into a temporary folder, the data set is never touched) is indexed in full; then,
on copies of that index, the catalog is changed by 0 %, 1 % and 10 % — a third of the change
added (photos not in the catalog), a third re-shot (another photo's bytes under the item's
file), a third removed, and twice a third relabelled — and ``StyleSearch.sync`` brings
the index up to date. Reports seconds (the library call, the index already open; and the
CLI end to end, process start and model load included) against the full build's.

    .venv/bin/python benchmarks/bench_sync.py [--items 10000] [--changes 0 0.01 0.1] [--json]
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from protocols import dataset_root, read_rows  # noqa: E402

from stylesearch import StyleSearch, index_catalog  # noqa: E402
from stylesearch.config import RunConfig  # noqa: E402


def write(path: Path, rows: list[tuple[str, str, str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "path", "label", "articleType"])
        w.writerows(rows)
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--changes", type=float, nargs="+", default=[0.0, 0.01, 0.1])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    root = dataset_root()
    rows = read_rows(root)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(rows))
    base = [rows[i] for i in order[: args.items]]
    spare = [rows[i] for i in order[args.items :]]
    run = RunConfig(progress=False)
    out: dict = {"machine": f"{platform.machine()}, {torch.get_num_threads()} threads", "items": args.items, "rows": []}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        files = tmp / "files"
        files.mkdir()
        # every catalog file is a symlink to the data set's photo, so a re-shot item can be replaced in place
        catalog = []
        for r in base:
            link = files / f"{r['id']}.jpg"
            link.symlink_to(root / r["path"])
            catalog.append((r["id"], str(link), r["usage"], r["articleType"]))
        manifest = write(tmp / "catalog.csv", catalog)
        t0 = time.perf_counter()
        index_catalog(manifest, tmp / "full", run=run)
        full = time.perf_counter() - t0
        out["full_index_seconds"] = round(full, 1)
        print(f"full index: {full:.1f} s", file=sys.stderr, flush=True)
        for share in args.changes:
            n = int(round(share * args.items / 3))
            changed = list(catalog)
            picks = rng.choice(len(changed), size=4 * n, replace=False) if n else np.array([], int)
            reshoot, remove, relabel = picks[:n], set(picks[n : 2 * n].tolist()), picks[2 * n :]
            for i in reshoot:
                target = Path(changed[i][1])
                target.unlink()
                shutil.copyfile(root / spare[-1 - int(i) % len(spare)]["path"], target)  # new bytes, same item
            for i in relabel:
                item_id, path, label, kind = changed[i]
                changed[i] = (item_id, path, "Relabelled" if label != "Relabelled" else "Casual", kind)
            changed = [row for j, row in enumerate(changed) if j not in remove]
            changed += [(f"new-{r['id']}", str(root / r["path"]), r["usage"], r["articleType"]) for r in spare[:n]]
            changed_manifest = write(tmp / f"catalog-{share}.csv", changed)
            index = tmp / f"sync-{share}"
            shutil.copytree(tmp / "full", index)
            cli_index = tmp / f"cli-{share}"
            shutil.copytree(tmp / "full", cli_index)
            with StyleSearch.open(index, run=run) as engine:
                t0 = time.perf_counter()
                report = engine.sync(changed_manifest)
                seconds = time.perf_counter() - t0
            t0 = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "stylesearch", "sync", str(changed_manifest), "--index", str(cli_index), "--json"],
                check=True, capture_output=True,
            )  # fmt: skip
            cli_seconds = time.perf_counter() - t0
            row = {
                "change": share, **{k: v for k, v in report.to_dict().items() if k not in ("skipped", "seconds")},
                "sync_seconds": round(seconds, 2), "share_of_full": round(seconds / full, 4),
                "cli_seconds": round(cli_seconds, 2), "cli_share_of_full": round(cli_seconds / full, 4),
            }  # fmt: skip
            out["rows"].append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
            # put the re-shot files back for the next share
            for i in reshoot:
                target = Path(catalog[i][1])
                target.unlink()
                target.symlink_to(root / base[i]["path"])
    print(f"# bench_sync ({out['machine']}): {args.items} fashion-usage photos; full index {out['full_index_seconds']} s\n")
    print("| change | added | updated | relabelled | removed | unchanged | sync s (open index) | share of full | CLI s | share |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in out["rows"]:
        counts = f"{r['added']} | {r['updated']} | {r['relabelled']} | {r['removed']} | {r['unchanged']}"
        print(f"| {r['change']:.0%} | {counts} | {r['sync_seconds']} | {r['share_of_full']:.1%} | "
              f"{r['cli_seconds']} | {r['cli_share_of_full']:.1%} |")  # fmt: skip
    if args.json:
        print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
