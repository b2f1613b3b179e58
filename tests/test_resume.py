"""``stylesearch index`` killed (SIGKILL) part-way, then ``--resume``: the previous generation
stays live meanwhile, and the resumed index holds exactly the items of an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from stylesearch import StyleSearch, index_catalog
from stylesearch.config import IndexConfig
from stylesearch.ingest.checkpoint import INGEST_DIR, PROGRESS_FILE

from .conftest import RUN, SMALL


def _items(index: Path) -> dict[str, np.ndarray]:
    with StyleSearch.open(index, run=RUN) as engine:
        store = engine.snapshot.backend
        records = engine.snapshot.meta.by_vids(store.ids.tolist())
        return {records[int(v)].id: store.vectors[i] for i, v in enumerate(store.ids)}


def test_kill_then_resume_gives_the_uninterrupted_items(demo_data, built_index: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    manifest = demo_data[0]
    options = IndexConfig(checkpoint_every=16, pca_sample=32)
    index_catalog(manifest, tmp_path / "reference", embed=SMALL, run=RUN, options=options)
    reference = _items(tmp_path / "reference")

    target = tmp_path / "killed"
    index_catalog(manifest, target, embed=SMALL, run=RUN, options=IndexConfig(pca_sample=32))  # a previous generation
    before = set(_items(target))
    cmd = [
        sys.executable, "-m", "stylesearch.cli", "index", str(manifest), "--index", str(target), "--image-size", "64",
        "--device", "cpu", "--workers", "0", "--batch-size", "8", "--checkpoint-every", "16", "--pca-sample", "32",
    ]  # fmt: skip
    killed_at: list[int] = []
    for trial in range(3):
        proc = subprocess.Popen(cmd + (["--resume"] if trial else []), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        progress = target / INGEST_DIR / PROGRESS_FILE
        deadline = time.monotonic() + 120
        start_seen = json.loads(progress.read_text())["seen"] if progress.exists() else 0
        while time.monotonic() < deadline and proc.poll() is None:
            if progress.exists() and json.loads(progress.read_text())["seen"] > start_seen:
                break
            time.sleep(0.02)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        killed_at.append(json.loads(progress.read_text())["seen"] if progress.exists() else 0)
        assert set(_items(target)) in (before, set(reference))  # the live generation is always whole
    assert killed_at[0] > 0 and killed_at == sorted(killed_at), killed_at  # each trial went on from the last
    done = subprocess.run(cmd + ["--resume"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    resumed = _items(target)
    assert set(resumed) == set(reference)
    assert max(float(np.abs(resumed[k] - reference[k]).max()) for k in reference) < 1e-4
    assert not (target / INGEST_DIR).exists()
