"""How fast the command line answers ``--help`` and ``--version`` (it must not import torch).

Runs each command ``--repeat`` times in a fresh process and reports the median and the worst
wall time, against ``python -c pass`` measured in the same run (the interpreter's own start).
Target: under 0.5 s on the 2-core CI machine.

    .venv/bin/python benchmarks/bench_cli_startup.py
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "stylesearch --help": [sys.executable, "-m", "stylesearch.cli", "--help"],
    "stylesearch --version": [sys.executable, "-m", "stylesearch.cli", "--version"],
    "stylesearch index --help": [sys.executable, "-m", "stylesearch.cli", "index", "--help"],
    "stylesearch train --help": [sys.executable, "-m", "stylesearch.cli", "train", "--help"],
}


def timed(command: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=11)
    args = parser.parse_args()
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, stylesearch.cli.main; print('torch' in sys.modules)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    rows = {}
    for name, command in COMMANDS.items():
        times = [timed(command) for _ in range(args.repeat)]
        rows[name] = {"median_s": round(statistics.median(times), 3), "max_s": round(max(times), 3)}
        print(f"{name:<28} median {rows[name]['median_s']:.3f} s   worst {rows[name]['max_s']:.3f} s")
    print(f"torch imported by the CLI's parser: {loaded}")
    print(json.dumps({"repeat": args.repeat, "torch_imported": loaded == "True", "results": rows}))


if __name__ == "__main__":
    main()
