"""kNN classification on real photos with the FAISS store and the Milvus store (Milvus Lite).

    .venv/bin/python benchmarks/bench_milvus.py [--protocols FU4 FUW] [--json]

Runs each fashion-usage protocol twice — the same index built with ``--store faiss`` and
``--store milvus-lite:///…`` — and prints the macro-F1 of both (the check: within 0.5 points),
FU4's MAP@R, and the time each run took (indexing + queries). FUW's per-query filter
(``articleType``) runs inside Milvus.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from protocols import run_protocol  # noqa: E402

from stylesearch.config import RunConfig  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--protocols", nargs="+", default=["FU4", "FUW"])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    run = RunConfig(device="cpu", progress=False)
    rows = []
    for protocol in args.protocols:
        for store in ("faiss", "milvus-lite"):
            t0 = time.perf_counter()
            result = run_protocol(protocol, run=run, store=store)
            rows.append(
                {
                    "protocol": protocol,
                    "store": store,
                    "macro_f1": result.macro_f1,
                    "map_at_r": result.map_at_r,
                    "indexed": result.indexed,
                    "queries": result.queries,
                    "seconds": round(time.perf_counter() - t0, 1),
                }
            )
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    print(f"# bench_milvus ({platform.machine()}, {os.cpu_count()} cores)\n")
    print("| protocol | store | macro-F1 | MAP@R | indexed | queries | seconds |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        cells = [r["protocol"], r["store"], r["macro_f1"], r["map_at_r"], r["indexed"], r["queries"], r["seconds"]]
        print("| " + " | ".join(str(c) for c in cells) + " |")
    for protocol in args.protocols:
        a, b = (r["macro_f1"] for r in rows if r["protocol"] == protocol)
        print(f"\n{protocol}: macro-F1 difference {100 * abs(a - b):.2f} points (check: <= 0.5)")
    if args.json:
        print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
