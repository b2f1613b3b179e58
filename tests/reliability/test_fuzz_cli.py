"""schemathesis's own command-line client against a live ``stylesearch serve`` on 127.0.0.1:
its coverage, fuzzing and stateful phases (which chain responses into new requests) for a
bounded time (``FUZZ_CLI_SECONDS``, 45 by default), with the write key given. Every check
but "schema-valid data must be accepted" (uploads that fit the schema are rightly refused
when their bytes are not an image) must pass: no 5xx, documented statuses and bodies,
schema-violating requests rejected."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ..service.test_serve_cli import serving

SECONDS = int(os.environ.get("FUZZ_CLI_SECONDS", "45"))
KEY = "fuzz-cli-key"


def test_schemathesis_cli_against_a_live_server(built_index: Path, tmp_path: Path) -> None:
    exe = shutil.which("schemathesis") or str(Path(sys.executable).parent / "schemathesis")
    if not Path(exe).exists():
        pytest.skip("schemathesis is not installed (pip install -e '.[dev]')")
    index = tmp_path / "index"
    shutil.copytree(built_index, index)
    with serving(index, {**os.environ, "STYLESEARCH_API_KEYS": KEY}) as (port, _):
        fuzz = [
            exe,
            "--config-file",
            str(Path(__file__).with_name("schemathesis.toml")),
            "run",
            f"http://127.0.0.1:{port}/openapi.json",
            "--header",
            f"Authorization: Bearer {KEY}",
            "--phases",
            "coverage,fuzzing,stateful",
            "--max-time",
            str(SECONDS),
            "--exclude-checks",
            "positive_data_acceptance",
            "--workers",
            "1",
            "--seed",
            "0",
            "--request-timeout",
            "30",
        ]
        done = subprocess.run(fuzz, capture_output=True, text=True, timeout=SECONDS + 240, env={**os.environ, "NO_COLOR": "1"})
    report = done.stdout + done.stderr
    assert done.returncode == 0, report[-6000:]
    generated = re.search(r"(\d+) generated", report)
    assert generated and int(generated.group(1)) >= 200, report[-3000:]
    print(f"\nschemathesis CLI: {generated.group(0)} requests in {SECONDS} s")
