"""20 SIGKILL trials: `stylesearch index` and `stylesearch add` (real processes) killed at
random points — while starting, embedding, writing or publishing. After every kill the index
opens, its vector count equals its metadata count, no id appears twice, and no committed item
is missing: an `add` is in whole or not at all, an `index` run leaves the old or the new
catalog live, never a mix. Then a run to the end works."""

from __future__ import annotations

import csv
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from stylesearch import StyleSearch
from stylesearch.index.layout import IndexDir

from ..conftest import RUN

TRIALS = int(os.environ.get("CRASH_TRIALS", "10"))  # kills per command: 20 in all by default
CLI = [sys.executable, "-m", "stylesearch.cli"]
ENV = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))


def live_items(index: Path) -> set[str]:
    """The live generation's item ids, after checking it is whole."""
    with StyleSearch.open(index, run=RUN) as engine:
        store, meta = engine.snapshot.backend, engine.snapshot.meta
        assert len(store) == meta.count(), "vectors and metadata disagree"
        assert len(set(store.ids.tolist())) == len(store), "a vector id appears twice"
        ids = [r.id for r in meta.by_vids(store.ids.tolist()).values()]
        assert len(ids) == len(set(ids)) == len(store), "an item id appears twice, or has no vector"
        return set(ids)


def run_and_kill(cmd: list[str], delay: float) -> int | None:
    """Run ``cmd``; SIGKILL it after ``delay`` s unless it ended. Returns its exit code, or
    None when it was killed."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    try:
        return proc.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        return None


def timed(cmd: list[str]) -> float:
    t0 = time.monotonic()
    done = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=300)
    assert done.returncode == 0, done.stderr
    return time.monotonic() - t0


def test_killed_adds_lose_nothing(demo_data, index_copy: Path) -> None:  # type: ignore[no-untyped-def]
    rng = random.Random(6)
    images = [str(path) for path, _, _ in demo_data[1]]
    committed = live_items(index_copy)
    base = [*CLI, "add", "--index", str(index_copy), "--device", "cpu", "--label", "added"]
    duration = timed([*base, images[0], "--id", "warm-up"])
    committed.add("warm-up")
    outcomes: list[tuple[str, float, str]] = []
    trial = 0
    while sum(o[0] == "killed" for o in outcomes) < TRIALS and trial < 3 * TRIALS:
        trial += 1
        batch = rng.sample(images, 3)
        ids = [f"t{trial}-{i}" for i in range(3)]
        delay = rng.uniform(0.2, duration)
        code = run_and_kill([*base, *batch, *[a for i in ids for a in ("--id", i)]], delay)
        items = live_items(index_copy)
        assert committed <= items, f"trial {trial}: committed items lost: {sorted(committed - items)[:5]}"
        new = items - committed
        assert new in (set(), set(ids)), f"trial {trial}: a partial add: {sorted(new)}"
        assert code in (None, 0)
        if code == 0:
            assert new == set(ids)
        committed |= new
        outcomes.append(("killed" if code is None else "finished", round(delay, 2), "added" if new else "not added"))
    print("\nadd trials:", outcomes)
    assert sum(o[0] == "killed" for o in outcomes) == TRIALS
    assert len(list(IndexDir(index_copy).root.glob("gen-*"))) <= 3  # leftovers are collected


def test_killed_index_runs_leave_one_whole_catalog(demo_data, index_copy: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    rng = random.Random(7)
    full = Path(demo_data[0])
    rows = list(csv.DictReader(full.open(newline="", encoding="utf-8")))
    half = tmp_path / "half.csv"  # a second, smaller catalog: tells which generation is live
    with half.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(dict(r, path=str(full.parent / r["path"])) for r in rows[::2])
    catalogs = [str(full), str(half)]
    base = ["--index", str(index_copy), "--device", "cpu", "--image-size", "64", "--pca-sample", "32"]
    expected: dict[str, set[str]] = {}
    duration = 0.0
    for catalog in catalogs:
        duration = max(duration, timed([*CLI, "index", catalog, *base]))
        expected[catalog] = live_items(index_copy)
    outcomes: list[tuple[str, float, str]] = []
    live = expected[catalogs[-1]]
    trial = 0
    while sum(o[0] == "killed" for o in outcomes) < TRIALS and trial < 3 * TRIALS:
        trial += 1
        catalog = catalogs[trial % 2]
        delay = rng.uniform(0.2, duration)
        code = run_and_kill([*CLI, "index", catalog, *base], delay)
        items = live_items(index_copy)
        assert items in (live, expected[catalog]), f"trial {trial}: the live catalog is a mix"
        if code == 0:
            assert items == expected[catalog]
        outcomes.append(("killed" if code is None else "finished", round(delay, 2), "new" if items != live else "old"))
        live = items
    print("\nindex trials:", outcomes)
    assert sum(o[0] == "killed" for o in outcomes) == TRIALS
