"""A short run of the soak benchmark (benchmarks/bench_soak.py: a real `stylesearch serve`
on 127.0.0.1 under a mix of uploads, searches, reads and add+delete writes): zero errors and
resident memory growth under 5 % after warm-up. The 10-minute run is the benchmark's default."""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import bench_soak  # noqa: E402

SECONDS = os.environ.get("SOAK_SECONDS", "25")


def test_sustained_load_has_no_errors_and_no_memory_growth() -> None:
    result = bench_soak.main(["--seconds", SECONDS, "--warmup", "8", "--clients", "6"])
    assert result["errors"] == 0, result["first_errors"]
    assert result["requests"] > 100
    assert result["rss_growth_after_warmup"] < 0.05, result
    assert result["items_before_after"][0] == result["items_before_after"][1]
