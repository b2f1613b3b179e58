"""Bytes a small change writes to a large index (issue 24): a one-photo ``add`` to an index of
``--items`` fashion-usage photos, and a ``sync`` that finds only touched files (same content,
new time). "Written" counts the new generation's files that are not hard links of the
previous generation's (``st_nlink == 1``): the bytes the change put on disk.

    .venv/bin/python benchmarks/bench_add_bytes.py --index DIR [--items 10000] [--json]

``--index`` is built once if missing (and reused: run the same command from an older
checkout, e.g. ``git worktree add /tmp/before <commit>``, to measure before and after on
the same index). The index is changed in a copy.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from protocols import dataset_root, read_rows  # noqa: E402

from stylesearch import StyleSearch, index_catalog  # noqa: E402
from stylesearch.config import RunConfig  # noqa: E402


def written(gen: Path) -> tuple[int, int, dict[str, int]]:
    """(bytes of files new in ``gen``, bytes of all its files, the new files' sizes)."""
    new: dict[str, int] = {}
    total = 0
    for path in gen.rglob("*"):
        if path.is_file():
            stat = path.stat()
            total += stat.st_size
            if stat.st_nlink == 1:
                new[str(path.relative_to(gen))] = stat.st_size
    return sum(new.values()), total, new


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    root = dataset_root()
    rows = [r for r in read_rows(root) if r["split"] == "train"][: args.items + 1]
    run = RunConfig(progress=False)
    manifest = args.index.with_suffix(".csv")
    if not args.index.exists():
        with manifest.open("w", newline="", encoding="utf-8") as fh:
            out = csv.writer(fh)
            out.writerow(["id", "path", "label"])
            out.writerows([r["id"], str(root / r["path"]), r["usage"]] for r in rows[:-1])
        index_catalog(manifest, args.index, run=run)
    result: dict[str, object] = {"items": len(rows) - 1}
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "index"
        shutil.copytree(args.index, copy)
        with StyleSearch.open(copy, run=run) as engine:
            before = engine.snapshot.gen
            engine.embed([str(root / rows[0]["path"])])  # the runtime's one-off start is not the add's
            t0 = time.perf_counter()
            engine.add([str(root / rows[-1]["path"])], ids=["one-more"])
            seconds = time.perf_counter() - t0
            new, total, files = written(engine.snapshot.gen)
            result["add"] = {"seconds": round(seconds, 3), "written_mb": round(new / 1e6, 2),
                             "generation_mb": round(total / 1e6, 2), "files": files}  # fmt: skip
            touched = Path(tmp) / "touched.csv"  # the catalog with ten of its files touched
            with manifest.open(newline="", encoding="utf-8") as fh:
                listed = list(csv.reader(fh))
            for row in listed[1:11]:
                local = Path(tmp) / Path(row[1]).name
                shutil.copyfile(row[1], local)
                os.utime(local, ns=(1, 1))
                row[1] = str(local)
            for row in listed[1:11]:
                os.utime(row[1], ns=(2, 2))
            with touched.open("w", newline="", encoding="utf-8") as fh:
                csv.writer(fh).writerows(listed + [["one-more", str(root / rows[-1]["path"]), rows[-1]["usage"]]])
            engine.sync(touched)  # records the new paths (relabelled) with their stamps
            for row in listed[1:11]:
                os.utime(row[1], ns=(3, 3))
            last = engine.snapshot.gen
            t0 = time.perf_counter()
            report = engine.sync(touched)
            seconds = time.perf_counter() - t0
            new, total, files = written(engine.snapshot.gen) if engine.snapshot.gen != last else (0, 0, {})
            result["stamp_only_sync"] = {"seconds": round(seconds, 3), "written_mb": round(new / 1e6, 2),
                                         "generation_mb": round(total / 1e6, 2), "files": files,
                                         "report": {k: v for k, v in report.to_dict().items() if k != "skipped"}}  # fmt: skip
            result["first_generation"] = before.name
    if args.json:
        print(json.dumps(result, indent=2))
        return
    for name in ("add", "stamp_only_sync"):
        row = result[name]
        assert isinstance(row, dict)
        mb = f"{row['written_mb']} MB written of a {row['generation_mb']} MB generation"
        print(f"{name}: {row['seconds']} s, {mb}: {row['files']}")


if __name__ == "__main__":
    main()
