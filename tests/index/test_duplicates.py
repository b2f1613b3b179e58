"""Near-duplicate groups and collapsed results, on the demo index with planted copies."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from stylesearch import StyleSearch
from stylesearch.errors import ConfigError

from ..conftest import RUN


def plant_copies(index: Path, n: int = 3) -> list[tuple[str, str]]:
    """Add a near-copy (the stored vector plus a little noise) of ``n`` items: (original, copy) ids."""
    with StyleSearch.open(index, run=RUN) as engine:
        originals = [h.id for h in engine.browse(limit=n)]
        records, vectors = engine.snapshot.vectors_of(originals)
        noisy = vectors + 0.002 * np.random.default_rng(0).normal(size=vectors.shape).astype(np.float32)
        noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
        copies = [f"{i}-copy" for i in originals]
        engine.add_vectors(noisy, copies, [r.path for r in records], [r.label for r in records], [r.attributes for r in records])
    return list(zip(originals, copies))


def test_planted_copies_are_grouped(index_copy: Path) -> None:
    pairs = plant_copies(index_copy)
    with StyleSearch.open(index_copy, run=RUN) as engine:
        groups = engine.duplicates(threshold=0.995)
        found = {frozenset(i for i, _ in g.members) for g in groups}
        for original, copy in pairs:
            assert frozenset((original, copy)) in found
        for g in groups:
            assert g.representative == g.members[0][0] and all(s >= 0.995 for _, s in g.members)
        assert len(engine.duplicates(threshold=1.0)) <= len(groups)
        with pytest.raises(ConfigError):
            engine.duplicates(threshold=0)
        with pytest.raises(ConfigError):
            engine.duplicates(threshold=1.5)


def test_collapse_shows_one_item_per_group(index_copy: Path) -> None:
    pairs = plant_copies(index_copy, 1)
    with StyleSearch.open(index_copy, run=RUN) as engine:
        _, vector = engine.snapshot.vectors_of([pairs[0][0]])
        plain = [h.id for h in engine.search_vectors(vector, 5)[0]]
        assert set(plain[:2]) == set(pairs[0])
        collapsed = [h.id for h in engine.search_vectors(vector, 5, collapse=True)[0]]
        assert len(collapsed) == 5 and len(set(pairs[0]) & set(collapsed)) == 1
        assert collapsed[0] == plain[0]


def test_dedup_command_and_endpoint(index_copy: Path, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    from stylesearch.cli import main

    from ..service.test_api import client_for

    pairs = plant_copies(index_copy)
    out, page = tmp_path / "dups.csv", tmp_path / "dups.html"
    argv = ["dedup", "--index", str(index_copy), "--threshold", "0.995", "--out", str(out), "--html", str(page)]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "group(s) of near-duplicates" in text
    rows = out.read_text().splitlines()
    assert rows[0] == "group,representative,id,score" and all(any(c in r for r in rows) for _, c in pairs)
    assert page.read_text().count("<img") >= 2 * len(pairs)
    assert main(["dedup", "--index", str(index_copy), "--threshold", "0.995", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["groups"]) >= len(pairs)
    assert main(["dedup", "--index", str(index_copy), "--threshold", "7"]) == 2
    with client_for(index_copy) as api:
        body = api.get("/v1/duplicates", params={"threshold": 0.995}).json()
        assert body["total_groups"] >= len(pairs) and body["groups"][0]["members"][0]["id"] == body["groups"][0]["representative"]
        assert api.get("/v1/duplicates", params={"threshold": 2}).status_code == 422
        item = pairs[0][0]
        collapsed = api.get(f"/v1/items/{item}/similar", params={"k": 5, "collapse": True}).json()["results"]
        assert len(collapsed) == 5


def test_groups_follow_the_live_generation(index_copy: Path) -> None:
    plant_copies(index_copy, 1)
    with StyleSearch.open(index_copy, run=RUN) as engine:
        before = engine.duplicates(threshold=0.995)
        assert engine.duplicates(threshold=0.995) == before  # the same generation: computed once
        engine.remove([before[0].members[1][0]])
        assert len(engine.duplicates(threshold=0.995)) == len(before) - 1
