from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

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


def test_eval_needs_both_splits(demo_data, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from stylesearch.catalog import load_catalog
    from stylesearch.report import run_evaluation

    with pytest.raises(CatalogError, match="'split' column"):
        run_evaluation(load_catalog(demo_data[0]), tmp_path / "r")


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
