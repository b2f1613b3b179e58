"""Issue 14: a mistake gets an error or a hint, never an empty or "unknown" answer that looks
like success (CLI exit 0 / HTTP 200)."""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from stylesearch import StyleSearch, index_catalog, load_catalog
from stylesearch.catalog import Columns
from stylesearch.cli import main
from stylesearch.config import EmbedConfig
from stylesearch.errors import CatalogError, UnknownAttributeError
from stylesearch.service import Settings, create_app

from .conftest import RUN, noise, solid


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture
def usage_manifest(tmp_path: Path) -> Path:
    """A manifest shaped like fashion-usage's metadata.csv: the style column is ``usage``."""
    rows = []
    for i, (colour, usage) in enumerate([((200, 0, 0), "Casual"), ((0, 200, 0), "Formal"), ((0, 0, 200), "Casual")]):
        solid(tmp_path / "img" / f"{i}.png", colour)
        rows.append([f"p{i}", f"img/{i}.png", usage, "Tshirts"])
    return write_csv(tmp_path / "metadata.csv", ["id", "path", "usage", "articleType"], rows)


# --------------------------------------------------------------------------- manifest columns


def test_label_column_is_chosen_and_a_missing_one_is_named(usage_manifest: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    with caplog.at_level(logging.WARNING, logger="stylesearch.catalog"):
        plain = load_catalog(usage_manifest)
    assert plain.labels == [] and "no 'label' column" in caplog.text and "usage" in caplog.text
    assert "--label-column" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="stylesearch.catalog"):
        load_catalog(usage_manifest, columns=Columns(unlabelled=True))
    assert caplog.text == ""  # said on purpose: no warning
    catalog = load_catalog(usage_manifest, columns=Columns(label="usage"))
    assert catalog.labels == ["Casual", "Formal"]
    assert "usage" not in catalog.items[0].attributes and catalog.items[0].attributes == {"articleType": "Tshirts"}
    with pytest.raises(CatalogError, match=r"no label column 'style' \(it has id, path, usage, articleType\)"):
        load_catalog(usage_manifest, columns=Columns(label="style"))


def test_path_and_id_columns(tmp_path: Path) -> None:
    solid(tmp_path / "a.png", (10, 20, 30))
    manifest = write_csv(tmp_path / "m.csv", ["sku", "file", "label"], [["S-1", "a.png", "red"]])
    with pytest.raises(CatalogError, match="--path-column"):
        load_catalog(manifest)
    item = load_catalog(manifest, columns=Columns(path="file", id="sku")).items[0]
    assert (item.id, item.label, item.attributes) == ("S-1", "red", {})
    jsonl = tmp_path / "m.jsonl"
    jsonl.write_text(json.dumps({"file": "a.png", "style": "red"}) + "\n")
    assert load_catalog(jsonl, columns=Columns(path="file", label="style")).labels == ["red"]


def test_cli_index_reads_the_label_column(capsys, caplog, usage_manifest: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    idx = str(tmp_path / "idx")
    common = ["--index", idx, "--image-size", "64", "--dim", "2", "--workers", "0", "--device", "cpu"]
    code, out, err = run(capsys, "index", str(usage_manifest), *common, "--json")
    assert code == 0 and json.loads(out)["labels"] == {} and "--label-column" in caplog.text  # warned before the run
    code, _, err = run(capsys, "classify", str(tmp_path / "img" / "0.png"), "--index", idx)
    assert code == 2 and "no labelled items" in err  # not "unknown (confidence 0.00)", exit 0
    caplog.clear()
    code, out, err = run(capsys, "index", str(usage_manifest), *common, "--label-column", "usage", "--json")
    assert code == 0 and json.loads(out)["labels"] == {"Casual": 2, "Formal": 1} and "label" not in caplog.text


# --------------------------------------------------------------------------- filters


def test_unknown_filter_key_is_an_error_and_a_missing_value_gets_a_hint(index_copy: Path, demo_data) -> None:  # type: ignore[no-untyped-def]
    query = demo_data[1][0][0]
    with StyleSearch.open(index_copy) as engine:
        with pytest.raises(UnknownAttributeError, match=r"'Product' \(did you mean product\?\).*label, id, .*product"):
            engine.query(query, where={"Product": "mug"})
        for call in (lambda: engine.browse({"colour": "Blue"}), lambda: engine.count({"colour": "Blue"})):
            with pytest.raises(UnknownAttributeError, match="no item has the attribute 'colour'"):
                call()
        result = engine.query(query, where={"product": "mugs"})
        assert result.results == [] and result.hint == "no item has product=mugs (did you mean mug?)"
        assert engine.query(query, where={"product": "mug"}).hint is None
        verdict = engine.classify(query, where={"label": "Stripes"})
        assert verdict.label is None and verdict.reason == "no_labelled_items" and "did you mean stripes?" in (verdict.hint or "")


def test_cli_filter_errors_and_hints(capsys, built_index: Path, demo_data) -> None:  # type: ignore[no-untyped-def]
    query = str(demo_data[1][0][0])
    code, _, err = run(capsys, "query", query, "--index", str(built_index), "--where", "colour=Blue")
    assert code == 2 and "no item has the attribute 'colour'" in err and "product" in err
    code, out, _ = run(capsys, "query", query, "--index", str(built_index), "--where", "product=Mug", "--json")
    assert code == 0 and json.loads(out)[0]["hint"] == "no item has product=Mug (did you mean mug?)"


# --------------------------------------------------------------------------- bad input in a batch


def test_one_bad_photo_does_not_sink_the_batch(capsys, built_index: Path, demo_data, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    good = str(demo_data[1][0][0])
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a jpeg")
    for command in ("query", "classify"):
        code, out, err = run(capsys, command, good, str(bad), good, "--index", str(built_index), "--json", "-k", "3")
        data = json.loads(out)
        assert code == 0 and [d["image"] for d in data] == [good, str(bad), good]
        assert "error" in data[1] and "error" not in data[0] and "error" not in data[2]
        assert "1 of 3 image(s) could not be read" in err
        code, out, err = run(capsys, command, str(bad), str(tmp_path / "missing.png"), "--index", str(built_index))
        assert code == 1 and "none of the 2 image(s) could be read" in err


def test_a_folder_without_images_lists_what_was_left_out(capsys, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    for name in ("notes.txt", "price.csv", "logo.svg"):
        (tmp_path / "cat" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "cat" / name).write_text("x")
    code, _, err = run(capsys, "index", str(tmp_path / "cat"), "--index", str(tmp_path / "idx"), "--device", "cpu")
    assert code == 1 and "3 file(s) were left out" in err
    assert "notes.txt: not an image file name (.txt)" in err and "logo.svg" in err


# --------------------------------------------------------------------------- the API


def test_api_bounds_strict_forms_and_filter_errors(built_index: Path, demo_data) -> None:  # type: ignore[no-untyped-def]
    app = create_app(Settings(index=str(built_index), device="cpu", api_keys="k"))
    photo = Path(demo_data[1][0][0]).read_bytes()
    with TestClient(app) as client:
        r = client.get("/v1/items", params={"offset": "1013870837584524476416"})
        assert r.status_code == 422  # was a 500 (OverflowError from SQLite)
        r = client.get("/v1/items", params={"offset": str(2**31)})
        assert r.status_code == 422
        r = client.get("/v1/items", params={"where": json.dumps({"colour": "Blue"})})
        assert r.status_code == 422 and r.json()["code"] == "unknown_attribute" and "product" in r.json()["message"]
        r = client.get("/v1/items", params={"where": json.dumps({"product": "mugs"})})
        assert r.status_code == 200 and r.json()["items"] == [] and "did you mean mug?" in r.json()["hint"]
        r = client.post("/v1/search", files={"file": ("q.png", photo)}, data={"k": "3", "item_id": "x"})
        assert r.status_code == 422 and "item_id" in r.json()["message"]
        r = client.post("/v1/search", files={"file": ("q.png", photo)}, data={"k": "3"})
        assert r.status_code == 200 and len(r.json()["results"]) == 3
        r = client.post("/v1/classify", files={"file": ("q.png", photo)}, data={"colour": "x"})
        assert r.status_code == 422 and "colour" in r.json()["message"]
        auth = {"Authorization": "Bearer k"}
        r = client.post("/v1/items", files={"file": ("q.png", photo)}, data={"label": "x", "stray": "1"}, headers=auth)
        assert r.status_code == 422 and "stray" in r.json()["message"]
        r = client.post("/v1/search/item", json={"item_id": "stripes-shirt-0", "where": {"Product": "mug"}})
        assert r.status_code == 422 and r.json()["code"] == "unknown_attribute"
        doc = client.get("/openapi.json").json()
        forms = [
            op["requestBody"]["content"]["multipart/form-data"]["schema"]
            for ops in doc["paths"].values()
            for op in ops.values()
            if "multipart/form-data" in op.get("requestBody", {}).get("content", {})
        ]
        resolved = [doc["components"]["schemas"][f["$ref"].rpartition("/")[2]] if "$ref" in f else f for f in forms]
        # search, classify, items, explain, shares
        assert len(resolved) == 5 and all(f["additionalProperties"] is False for f in resolved)
        offset = next(p for p in doc["paths"]["/v1/items"]["get"]["parameters"] if p["name"] == "offset")
        assert offset["schema"]["maximum"] == 2**31 - 1


# --------------------------------------------------------------------------- out of catalog


def test_familiarity_says_how_much_a_photo_looks_like_the_catalog(built_index: Path, demo_data, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    held_out = [str(q) for q, _, _ in demo_data[1]]
    odd = noise(tmp_path / "noise.png", seed=7)
    with StyleSearch.open(built_index) as engine:
        inside = engine.familiarity(engine.embed_lenient(held_out))
        (outside,) = engine.familiarity(engine.embed_lenient([odd]))
        assert inside is not None and inside.min() >= 0 and inside.max() <= 1
        assert float(np.median(inside)) >= 0.5 and outside < float(np.median(inside))
        plain = engine.classify(odd, min_familiarity=0.0)
        assert plain.familiarity == round(float(outside), 4) and plain.reason != "out_of_catalog"
        refused = engine.classify(odd, min_familiarity=float(outside) + 1e-3)
        assert refused.label is None and refused.reason == "out_of_catalog"
        assert engine.query(held_out[0]).familiarity == round(float(inside[0]), 4)


def test_an_index_too_small_to_calibrate_says_so(tmp_path: Path) -> None:
    for i in range(6):
        noise(tmp_path / "cat" / "dots" / f"{i}.png", i)
    index_catalog(tmp_path / "cat", tmp_path / "idx", embed=EmbedConfig(image_size=64, dim=8), run=RUN)
    with StyleSearch.open(tmp_path / "idx", run=RUN) as engine:
        verdict = engine.classify(tmp_path / "cat" / "dots" / "0.png")
        assert verdict.familiarity is None and verdict.label == "dots"


def test_familiarity_joins_its_tests_and_trusts_a_near_item() -> None:
    from stylesearch.familiarity import NEAR, combine

    nearest = np.array([0.5, 0.5, 0.3, NEAR, 0.4])
    novelty = np.array([[0.6, 0.9], [0.001, 0.8], [np.nan, np.nan], [0.0, 0.0], [0.2, np.nan]])
    joined = combine(nearest, novelty)
    # Bonferroni over the tests each photo has: the smallest p-value times how many
    assert joined.tolist() == pytest.approx([1.0, 0.003, 0.3, NEAR, 0.4])
