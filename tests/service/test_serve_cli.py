"""``stylesearch serve`` starts a real uvicorn server on loopback."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def serving(index: Path, env: dict[str, str]) -> Iterator[tuple[int, list[str]]]:
    """``stylesearch serve`` of ``index`` on a free loopback port, ready: (port, a list that
    holds the server's output once it has stopped)."""
    port = _free_port()
    cmd = [sys.executable, "-m", "stylesearch.cli", "serve", "--index", str(index), "--port", str(port), "--device", "cpu"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output: list[str] = []
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
                    assert json.load(r) == {"status": "ready"}
                    break
            except OSError:
                assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
                assert time.monotonic() < deadline, "serve did not become ready"
                time.sleep(0.2)
        yield port, output
    finally:
        proc.terminate()
        output.append(proc.communicate(timeout=30)[0])


def test_serve_answers_on_loopback_then_stops(built_index: Path, tmp_path: Path) -> None:
    index = tmp_path / "index"
    shutil.copytree(built_index, index)
    with serving(index, {**os.environ, "STYLESEARCH_API_KEYS": ""}) as (port, output):
        labels = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/labels", timeout=5).read())
        assert sum(labels["labels"].values()) == 96
    assert "writes (POST/DELETE /v1/items) are refused" in output[0]


def test_serve_refuses_a_missing_index(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "stylesearch.cli", "serve", "--index", str(tmp_path / "none"), "--device", "cpu"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "stylesearch: error:" in done.stderr and "Traceback" not in done.stderr
