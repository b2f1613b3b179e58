from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from stylesearch import demo
from stylesearch.cli import main
from stylesearch.errors import CatalogError


def _split_manifest(demo_data, path: Path) -> Path:  # type: ignore[no-untyped-def]
    manifest, held_out = demo_data
    with manifest.open() as fh:
        rows = list(csv.DictReader(fh))
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "path", "label", "product", "split"])
        for r in rows:
            w.writerow([r["id"], str(manifest.parent / r["path"]), r["label"], r["product"], "train"])
        for p, style, product in held_out:
            w.writerow([f"q-{p.stem}", str(p), style, product, "test"])
    return path


def test_eval_writes_report_pictures_and_page(capsys, demo_data, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    manifest = _split_manifest(demo_data, tmp_path / "split.csv")
    out = tmp_path / "report"
    code = main(["eval", str(manifest), "--out", str(out), "--image-size", "64", "--group-by", "product", "--json"])
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    report = json.loads((out / "report.json").read_text())
    assert report["queries"] == 48 and report["gallery"] == 96 and report["group_by"] == "product"
    assert 0.5 < report["knn"]["macro_f1"] <= 1 and printed["knn"]["macro_f1"] == report["knn"]["macro_f1"]
    assert set(report["retrieval"]) == {"precision_at_1", "recall_at_k", "map_at_r"}
    assert sum(map(sum, report["knn"]["confusion"]["matrix"])) == 48
    for name in ("confusion_knn.png", "style_map.png", "report.html"):
        assert (out / name).stat().st_size > 1000
    assert (out / "confusion_knn.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = (out / "report.html").read_text()
    assert page.count('class="strip"') == 8 and "data:image/jpeg;base64," in page
    # the per-class table, the reliability diagram with its ECE, recall@k as a table
    assert "<th>precision</th><th>recall</th><th>F1</th>" in page and page.count("<tr><td>") >= 8
    cal = report["knn"]["calibration"]
    assert 0 <= cal["ece"] <= 1 and sum(b["count"] for b in cal["bins"]) == 48 and "expected calibration error" in page
    assert (out / "reliability_knn.png").read_bytes()[:4] == b"\x89PNG" and "reliability_knn.png" in page
    assert "<th>k</th><th>recall@k</th>" in page and "{'1'" not in page
    assert report["knn"]["one_neighbour_answers_at_0_5"] == 0
    # the evaluation's index is kept only when asked
    assert not (out / "index").exists()
    text_out = tmp_path / "report2"
    assert main(["eval", str(manifest), "--out", str(text_out), "--image-size", "64", "--keep-index"]) == 0
    printed_text = capsys.readouterr().out
    assert (text_out / "index").is_dir() and "calibration error (ECE)" in printed_text and "recall@1 " in printed_text
    assert "precision  recall      F1  queries" in printed_text


def test_eval_needs_both_splits(demo_data, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from stylesearch.catalog import load_catalog
    from stylesearch.report import run_evaluation

    with pytest.raises(CatalogError, match="'split' column"):
        run_evaluation(load_catalog(demo_data[0]), tmp_path / "r")


def test_shares_json_shape_and_page(capsys, built_index: Path, demo_data, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    manifest = _split_manifest(demo_data, tmp_path / "split.csv")
    page = tmp_path / "shares.html"
    code = main(["shares", str(manifest), "--index", str(built_index), "--by", "split", "--json", "--out", str(page)])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["photos"] == 144 and out["method"].startswith("adjusted classify-and-count")
    assert set(out["shares"]) == set(demo.STYLES) and set(out["classify_and_count"]) == set(demo.STYLES)
    for part in [out, *out["groups"].values()]:
        assert sum(s["share"] for s in part["shares"].values()) == pytest.approx(1.0, abs=1e-3)
        assert all(set(s) == {"share", "low", "high"} and s["low"] <= s["share"] <= s["high"] for s in part["shares"].values())
    assert set(out["groups"]) == {"train", "test"} and out["groups"]["test"]["photos"] == 48
    assert "Style shares" in page.read_text() and "95 % interval" in page.read_text()
    # a single photo cannot be grouped; a column the manifest lacks is named
    assert main(["shares", str(demo_data[1][0][0]), "--index", str(built_index), "--by", "split"]) == 2
    assert main(["shares", str(manifest), "--index", str(built_index), "--by", "colour"]) == 2
    assert "its columns: product, split" in capsys.readouterr().err


def test_classify_summary_counts_styles(capsys, built_index: Path, demo_data, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    queries = demo_data[1][0][0].parent
    (queries / "broken.png").write_bytes(b"nope")
    try:
        code = main(["classify", str(queries), "--summary", "--index", str(built_index), "--out", str(tmp_path / "s"), "--json"])
    finally:
        (queries / "broken.png").unlink()
    summary = json.loads(capsys.readouterr().out)
    assert code == 0 and summary["images"] == 48 and sum(summary["styles"].values()) == 48
    assert len(summary["skipped"]) == 1 and abs(sum(summary["shares"].values()) - 1) < 1e-3
    assert (tmp_path / "s" / "summary.png").read_bytes()[:4] == b"\x89PNG"
    assert json.loads((tmp_path / "s" / "summary.json").read_text())["styles"] == summary["styles"]
