from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from stylesearch.cli import main

from .conftest import solid


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_query_and_classify_json_in_input_order(capsys, built_index: Path, demo_data) -> None:  # type: ignore[no-untyped-def]
    _, held_out = demo_data
    images = [str(held_out[3][0]), str(held_out[20][0])]
    code, out, _ = run(capsys, "query", *images, "-k", "3", "--index", str(built_index), "--json", "--device", "cpu")
    data = json.loads(out)
    assert code == 0 and [d["image"] for d in data] == images
    assert len(data[0]["results"]) == 3 and set(data[0]["results"][0]) >= {"id", "score", "label", "attributes"}
    code, out, _ = run(
        capsys, "classify", *images, "--index", str(built_index), "--json", "--where", "product=mug", "--where", "product=bag"
    )
    data = json.loads(out)
    assert code == 0 and [d["image"] for d in data] == images
    assert set(data[1]) >= {"image", "label", "confidence", "scores", "neighbors", "method"}
    assert data[1]["method"] == "knn" and data[1]["linear"] is None  # no trained head in this index
    assert all(n["attributes"]["product"] in ("mug", "bag") for n in data[1]["neighbors"])
    code, out, _ = run(capsys, "query", images[0], "--index", str(built_index))
    assert code == 0 and "1." in out


def test_info_add_remove_and_errors(capsys, index_copy: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    idx = str(index_copy)
    code, out, _ = run(capsys, "info", "--index", idx, "--json")
    assert code == 0 and json.loads(out)["items"] == 96
    img = solid(tmp_path / "teal.png", (0, 128, 128))
    code, out, _ = run(capsys, "add", str(img), "--label", "teal", "--attr", "product=swatch", "--index", idx, "--json")
    assert code == 0 and json.loads(out)["added"] == 1
    code, out, _ = run(capsys, "info", "--index", idx)
    assert "items:      97" in out and "teal (1)" in out
    code, out, _ = run(capsys, "remove", "teal", "--index", idx, "--json")
    assert code == 0 and json.loads(out) == {"removed": 1, "items": 96}
    code, _, err = run(capsys, "remove", "teal", "--index", idx)
    assert code == 1 and err.count("\n") == 1 and "no item with id 'teal'" in err
    code, _, err = run(capsys, "query", str(tmp_path / "missing.jpg"), "--index", idx)
    assert code == 1 and err.startswith("stylesearch: error:") and err.count("\n") == 1
    code, _, err = run(capsys, "info", "--index", str(tmp_path / "nowhere"))
    assert code == 1 and "no index at" in err
    code, _, err = run(capsys, "query", str(img), "--index", idx, "--where", "nonsense")
    assert code == 2 and "KEY=VALUE" in err  # a usage mistake


def test_reindex_changes_the_type_without_re_embedding(capsys, index_copy: Path, demo_data) -> None:  # type: ignore[no-untyped-def]
    idx = str(index_copy)
    query = str(demo_data[1][0][0])
    code, before, _ = run(capsys, "query", query, "-k", "5", "--index", idx, "--json")
    code, out, _ = run(capsys, "reindex", "--index-type", "ivf", "--index", idx, "--json")
    built = json.loads(out)
    assert code == 0 and built["index_type"] == "ivf" and built["tuned_recall_at_10"] >= 0.95
    code, out, _ = run(capsys, "info", "--index", idx)
    assert "search:     ivf (IVF" in out and "nprobe=" in out
    code, after, _ = run(capsys, "query", query, "-k", "5", "--index", idx, "--json")
    assert [h["id"] for h in json.loads(after)[0]["results"]][:3] == [h["id"] for h in json.loads(before)[0]["results"]][:3]
    code, _, err = run(capsys, "reindex", "--max-memory", "1K", "--index", idx)
    assert code == 2 and "raise --max-memory" in err


def test_index_command_reports_and_usage_errors(capsys, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    for i, c in enumerate([(200, 0, 0), (0, 200, 0), (0, 0, 200)]):
        solid(tmp_path / "cat" / "plain" / f"{i}.png", c)
    (tmp_path / "cat" / "plain" / "junk.jpg").write_text("<html>")
    code, out, _ = run(
        capsys,
        "index",
        str(tmp_path / "cat"),
        "--index",
        str(tmp_path / "idx"),
        "--image-size",
        "64",
        "--dim",
        "4",
        "--workers",
        "0",
        "--json",
    )
    report = json.loads(out)
    assert code == 0 and report["added"] == 3 and report["skipped"][0]["path"] == "plain/junk.jpg"
    code, _, err = run(capsys, "index", str(tmp_path / "cat"), "--index", str(tmp_path / "idx2"), "--recipe", "fancy")
    assert code == 2 and "unknown style recipe" in err
    code, _, err = run(capsys, "query")  # no image: a usage error, exit 2 as argparse's own
    assert code == 2 and "give at least one IMAGE" in err


def test_console_script_is_installed(tmp_path: Path) -> None:
    exe = shutil.which("stylesearch") or str(Path(sys.executable).parent / "stylesearch")
    proc = subprocess.run([exe, "info", "--index", str(tmp_path / "x")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and proc.stderr.startswith("stylesearch: error: no index at")
    proc = subprocess.run([exe, "backbones"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.splitlines()[0].startswith("efficientnet_lite0")


def test_index_defaults_are_per_command() -> None:
    from stylesearch.cli import DEFAULT_INDEX, build_parser

    parser = build_parser()
    assert parser.parse_args(["query", "x.jpg"]).index == DEFAULT_INDEX
    assert parser.parse_args(["index", "catalog"]).index == DEFAULT_INDEX
    assert parser.parse_args(["demo"]).index is None
    assert parser.parse_args(["demo", "d", "--index", "elsewhere"]).index == "elsewhere"
