"""The hostile corpus (tests/reliability/corpus.py) through `stylesearch index`, `stylesearch
add` (real subprocesses) and the HTTP API: every file is handled or rejected with a reason,
nothing crashes, no 5xx, and the index holds exactly the good files afterwards."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from stylesearch import StyleSearch
from stylesearch.catalog import path_of
from stylesearch.config import RunConfig
from stylesearch.service import Settings, create_app

from .corpus import BAD, GOOD, NON_UTF8_NAME, upload_cases, write_corpus

CLI = [sys.executable, "-m", "stylesearch.cli"]
KEY = "hostile-test-key"
CPU = RunConfig(device="cpu", progress=False)


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    return subprocess.run([*CLI, *args, "--device", "cpu"], capture_output=True, text=True, cwd=cwd, env=env, timeout=300)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    root = tmp_path_factory.mktemp("hostile") / "catalog"
    return root, write_corpus(root / "mixed")


def item_files(index: Path) -> set[str]:
    with StyleSearch.open(index, run=CPU) as engine:
        assert len(engine.snapshot.backend) == engine.snapshot.meta.count()  # vectors and metadata agree
        return {path_of(hit.path).name for hit in engine.browse(limit=100_000)}


def test_index_command_keeps_exactly_the_good_files(corpus: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    root, expected = corpus
    done = run_cli("index", str(root), "--index", str(tmp_path / "idx"), "--image-size", "64", "--json")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    report = json.loads(done.stdout)
    good = {name for name, outcome in expected.items() if outcome == GOOD}
    assert item_files(tmp_path / "idx") == good
    reasons = {Path(s["path"]).name: s["reason"] for s in report["skipped"]}
    for name, outcome in expected.items():
        if outcome == BAD:
            printable = name.encode("utf-8", "backslashreplace").decode("utf-8")
            assert reasons.get(printable), f"{name}: no reason given"
    assert "decompression bomb" in reasons["bomb_30000x30000.png"]
    assert "truncated" in reasons["truncated.jpg"] and "empty" in reasons["zero_bytes.jpg"]
    assert "loop" in reasons["loop_a.jpg"] and "caf\\udce9_latin1.jpg" not in reasons
    with StyleSearch.open(tmp_path / "idx", run=CPU) as engine:  # the Latin-1 name round-trips
        hit = engine.get("mixed/caf\\udce9_latin1")
        assert path_of(hit.path) == root / "mixed" / os.fsdecode(NON_UTF8_NAME) and path_of(hit.path).is_file()
    settings = Settings(index=str(tmp_path / "idx"), device="cpu")  # type: ignore[call-arg]
    with TestClient(create_app(settings)) as client:
        r = client.get("/v1/items/" + quote("mixed/caf\\udce9_latin1", safe="") + "/image")
        assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"


def test_add_command_adds_exactly_the_good_files(corpus: tuple[Path, dict[str, str]], built_index: Path, tmp_path: Path) -> None:
    root, expected = corpus
    index = tmp_path / "idx"
    shutil.copytree(built_index, index)
    with StyleSearch.open(index, run=CPU) as engine:
        before = len(engine)
    names = sorted(os.listdir(os.fsencode(root / "mixed")))  # bytes: the non-UTF-8 name too
    done = subprocess.run(
        [*CLI, "add", *[os.fsdecode(n) for n in names], "--index", str(index), "--device", "cpu", "--json"],
        capture_output=True,
        text=True,
        cwd=root / "mixed",
        env=dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2])),
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    good = {name for name, outcome in expected.items() if outcome == GOOD}
    assert report["added"] == len(good) and report["items"] == before + len(good)
    rejected = {s["path"] for s in report["skipped"]}
    assert len(rejected) == len(names) - len(good)  # every other name, folder.jpg included, with a reason
    assert all(s["reason"] for s in report["skipped"])
    assert good <= item_files(index)


@pytest.fixture
def api(built_index: Path, tmp_path: Path) -> Iterator[TestClient]:
    index = tmp_path / "idx"
    shutil.copytree(built_index, index)
    settings = Settings(index=str(index), device="cpu", api_keys=KEY)  # type: ignore[call-arg]
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client


def test_api_handles_every_hostile_upload(api: TestClient) -> None:
    before = api.get("/v1/index").json()["items"]
    added = []
    for name, (outcome, data) in upload_cases().items():
        for weird_name in (name, "../../etc/passwd", "caf\u00e9\u202e.jpg"):
            r = api.post("/v1/search", files={"file": (weird_name, data, "image/jpeg")}, data={"k": "3"})
            assert r.status_code < 500, (name, r.status_code, r.text)
            if outcome == GOOD:
                assert r.status_code == 200 and len(r.json()["results"]) == 3, (name, r.text)
            else:
                assert 400 <= r.status_code < 500 and r.json()["code"] and r.json()["message"], (name, r.text)
        r = api.post("/v1/classify", files=[("files", (name, data, "image/jpeg"))])
        assert r.status_code < 500, (name, r.text)
        r = api.post(
            "/v1/items",
            files={"file": (name, data, "application/octet-stream")},
            data={"id": f"hostile/{name}", "label": "hostile"},
            headers={"Authorization": f"Bearer {KEY}"},
        )
        assert r.status_code < 500, (name, r.status_code, r.text)
        assert (r.status_code == 201) == (outcome == GOOD), (name, r.status_code, r.text)
        if r.status_code == 201:
            added.append(f"hostile/{name}")
    assert api.get("/v1/index").json()["items"] == before + len(added)
    listed = api.get("/v1/items", params={"where": json.dumps({"label": "hostile"}), "limit": 100}).json()
    assert sorted(i["id"] for i in listed["items"]) == sorted(added)
    assert len(added) == sum(outcome == GOOD for outcome, _ in upload_cases().values())
