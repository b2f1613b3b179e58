"""Why this match: block shares, heat maps, and the faithfulness check (hiding the top-ranked
regions lowers the score more than hiding random regions of the same area)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from stylesearch import StyleSearch
from stylesearch.images import load_tensor
from stylesearch.model.explain import masking_drops

from .conftest import RUN


def test_an_explanation_adds_up(built_index: Path, demo_data) -> None:  # type: ignore[no-untyped-def]
    query = str(demo_data[1][0][0])
    with StyleSearch.open(built_index, run=RUN) as engine:
        top = engine.query(query, k=1).results[0]
        why = engine.explain(query, top.id)
        assert why.score == pytest.approx(top.score, abs=1e-3)  # the index's own similarity
        assert sum(b["share"] for b in why.blocks) == pytest.approx(1.0, abs=1e-3)
        assert [b["block"] for b in why.blocks] == list(engine.embedder.model.style_layers)
        size = engine.embedder.config.image_size
        for heat in why.heat:
            assert heat.shape == (size, size) and heat.min() >= 0 and heat.max() == pytest.approx(1.0)
        same = engine.explain(f"item:{top.id}", top.id)
        assert same.score == pytest.approx(1.0, abs=1e-4)
        data = why.to_dict(grid=8)
        assert len(data["heat"]["query"]) == 8 and len(data["heat"]["item"][0]) == 8


def test_blocks_are_measured_against_a_typical_catalog_pair(built_index: Path, demo_data) -> None:  # type: ignore[no-untyped-def]
    strongest = []
    with StyleSearch.open(built_index, run=RUN) as engine:
        for query, _, _ in demo_data[1][:16]:
            item = engine.query(str(query), k=3).results[2].id
            why = engine.explain(str(query), item)
            for b in why.blocks:
                assert 0.0 <= b["percentile"] <= 1.0 and b["share"] >= 0.0
                assert (b["lift"] > 0) == (b["cosine"] > b["catalog_mean"])
            strongest.append(max(why.blocks, key=lambda b: b["share"])["block"])
    assert len(set(strongest)) >= 2, strongest  # the bars tell one match from another


def _faithful_share(engine: StyleSearch, pairs: list[tuple[str, str]]) -> float:
    size = engine.embedder.config.image_size
    wins = 0
    for query, item in pairs:
        why = engine.explain(query, item)
        images = torch.stack([load_tensor(query, size), load_tensor(engine.get(item).path, size)])
        top, random = masking_drops(engine.embedder, images, why)
        wins += top > random
    return wins / len(pairs)


def test_explanations_are_faithful_on_generated_photos(built_index: Path, demo_data) -> None:  # type: ignore[no-untyped-def]
    with StyleSearch.open(built_index, run=RUN) as engine:
        pairs = [(str(q), engine.query(str(q), k=3).results[2].id) for q, _, _ in demo_data[1][::4]]
        assert _faithful_share(engine, pairs) >= 0.8


@pytest.mark.realdata
def test_explanations_are_faithful_on_real_photos(tmp_path: Path) -> None:
    """30 fashion-usage test photos, each against its 3rd nearest of 1,000 indexed train photos."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from protocols import dataset_root, read_rows, write_manifest

    root = dataset_root()
    if not (root / "metadata.csv").exists():
        pytest.skip(f"no data set at {root}")
    from stylesearch import index_catalog

    rows = read_rows(root)
    rng = np.random.default_rng(0)
    train = [r for r in rows if r["split"] == "train"]
    test = [r for r in rows if r["split"] == "test"]
    gallery = [train[i] for i in rng.choice(len(train), 1000, replace=False)]
    queries = [
        str(root / test[i]["path"]) for i in rng.choice(len(test), int(os.environ.get("EXPLAIN_PAIRS", 30)), replace=False)
    ]
    index_catalog(write_manifest(gallery, root, tmp_path / "g.csv"), tmp_path / "index", run=RUN)
    with StyleSearch.open(tmp_path / "index", run=RUN) as engine:
        pairs = [(q, engine.query(q, k=3).results[2].id) for q in queries]
        assert _faithful_share(engine, pairs) >= 0.8


def test_explain_over_http_and_on_the_command_line(built_index: Path, demo_data, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    import json

    from stylesearch.cli import main

    from .service.test_api import client_for

    query = Path(demo_data[1][0][0])
    with client_for(built_index) as api:
        ids = [i["id"] for i in api.get("/v1/items", params={"limit": 2}).json()["items"]]
        r = api.get("/v1/explain", params={"query": ids[0], "item": ids[1], "grid": 8})
        assert r.status_code == 200, r.text
        body = r.json()
        assert len(body["heat"]["query"]) == 8 and len(body["blocks"]) == 5 and body["item"]["id"] == ids[1]
        up = api.post("/v1/explain", files={"file": (query.name, query.read_bytes(), "image/png")}, data={"item": ids[1]})
        assert up.status_code == 200 and up.json()["query"] == query.name
        assert api.get("/v1/explain", params={"query": ids[0], "item": "nope"}).status_code == 404
        assert api.get("/v1/explain", params={"query": ids[0], "item": ids[1], "grid": 1}).status_code == 422
        bad = api.post("/v1/explain", files={"file": ("x.png", b"not an image", "image/png")}, data={"item": ids[1]})
        assert bad.status_code in (415, 422)
    out = tmp_path / "why.png"
    assert main(["explain", str(query), ids[1], "--index", str(built_index), "--out", str(out)]) == 0
    assert "share" in capsys.readouterr().out and out.read_bytes()[:4] == b"\x89PNG"
    assert main(["explain", f"item:{ids[0]}", ids[1], "--index", str(built_index), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["blocks"][0]["block"] == "block3"
    assert main(["explain", str(query), "no-such-item", "--index", str(built_index)]) != 0
    assert "no-such-item" in capsys.readouterr().err
