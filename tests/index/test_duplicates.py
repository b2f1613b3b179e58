"""Near-duplicate groups and collapsed results, on the demo index with planted copies: the
groups come from copy signatures (the photos' pixels), and dedup and collapse agree."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from PIL import Image

from stylesearch import StyleSearch
from stylesearch.errors import ConfigError
from stylesearch.index.duplicates import group_keys

from ..conftest import RUN

KINDS = {
    "mirror": lambda im: (im.transpose(Image.FLIP_LEFT_RIGHT), 95),
    "jpeg": lambda im: (im, 50),
    "double": lambda im: (im.resize((im.width * 2, im.height * 2)), 95),
}


def encoded(im: Image.Image, quality: int) -> bytes:
    buf = io.BytesIO()
    im.convert("RGB").save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def plant_copies(index: Path, n: int = 2) -> list[tuple[str, str]]:
    """Add a copy of each kind of ``n`` items through ``add`` (as a user would): (original, copy) ids."""
    pairs = []
    with StyleSearch.open(index, run=RUN) as engine:
        for hit in engine.browse(limit=n):
            original = Image.open(engine.get(hit.id).path)
            for kind, make in KINDS.items():
                image, quality = make(original)
                engine.add([encoded(image, quality)], ids=[f"{hit.id}-{kind}"], labels=hit.label)
                pairs.append((hit.id, f"{hit.id}-{kind}"))
    return pairs


def test_planted_copies_are_grouped_and_colourways_are_not(index_copy: Path) -> None:
    pairs = plant_copies(index_copy)
    with StyleSearch.open(index_copy, run=RUN) as engine:
        original = Image.open(engine.get(pairs[0][0]).path).convert("RGB")
        recoloured = Image.merge("RGB", original.split()[::-1])  # the same shapes in other colours
        engine.add([encoded(recoloured, 95)], ids=["colourway"])
        groups = engine.duplicates()
        group_of = {i: n for n, g in enumerate(groups) for i, _ in g.members}
        # (crops of these fine textures shift every stripe: tests/test_copies.py checks crops on product-like photos)
        found = {copy: copy in group_of and group_of[copy] == group_of.get(original) for original, copy in pairs}
        assert all(found.values()), found
        assert "colourway" not in group_of
        for g in groups:
            assert g.representative == g.members[0][0] and all(0 < s <= 1.0001 for _, s in g.members)
        assert len(engine.duplicates(threshold=1.0)) <= len(groups)
        with pytest.raises(ConfigError):
            engine.duplicates(threshold=0)
        with pytest.raises(ConfigError):
            engine.duplicates(threshold=1.5)


def test_collapse_never_shows_two_members_of_a_dedup_group(index_copy: Path) -> None:
    pairs = plant_copies(index_copy, 1)
    with StyleSearch.open(index_copy, run=RUN) as engine:
        groups = engine.duplicates()
        group_of = {i: n for n, g in enumerate(groups) for i, _ in g.members}
        plain = [h.id for h in engine.similar(pairs[0][0], 10)]
        assert len(set(plain) & {c for _, c in pairs}) >= 2  # the copies are among its neighbours
        for hit in engine.browse(limit=200):
            shown = [h.id for h in engine.similar(hit.id, 10, collapse=True)]
            in_groups = [group_of[i] for i in shown if i in group_of]
            assert len(in_groups) == len(set(in_groups)), (hit.id, shown)
        keys = group_keys(engine.snapshot, [r.vid for r in engine.snapshot.meta.by_ids([o for o, _ in pairs[:1]])])
        assert len(keys) == 1


def test_signatures_missing_from_the_index_are_made_from_the_files(index_copy: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    with StyleSearch.open(index_copy, run=RUN) as engine:
        first = engine.browse(limit=1)[0]
        records, vectors = engine.snapshot.vectors_of([first.id])
        engine.add_vectors(vectors, ["again"], [records[0].path], [records[0].label], [records[0].attributes])  # no signature
        groups = engine.duplicates()
    assert any({first.id, "again"} <= {i for i, _ in g.members} for g in groups)
    assert "no stored copy signature" in caplog.text


def test_dedup_command_and_endpoint_report_the_same_groups(index_copy: Path, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    from stylesearch.cli import main

    from ..service.test_api import client_for

    pairs = plant_copies(index_copy)
    out, page = tmp_path / "dups.csv", tmp_path / "dups.html"
    assert main(["dedup", "--index", str(index_copy), "--out", str(out), "--html", str(page)]) == 0
    text = capsys.readouterr().out
    assert "group(s) of near-duplicates" in text
    rows = out.read_text().splitlines()
    assert rows[0] == "group,representative,id,score" and all(any(c in r for r in rows) for _, c in pairs)
    assert page.read_text().count("<img") >= len(pairs) + 2  # every copy and both originals
    assert main(["dedup", "--index", str(index_copy), "--json"]) == 0
    cli = json.loads(capsys.readouterr().out)["groups"]
    assert main(["dedup", "--index", str(index_copy), "--threshold", "7"]) == 2
    with client_for(index_copy) as api:
        body = api.get("/v1/duplicates", params={"limit": 1000}).json()
        assert body["total_groups"] == len(cli)
        assert [g["members"] for g in body["groups"]] == [g["members"] for g in cli]
        assert api.get("/v1/duplicates", params={"threshold": 2}).status_code == 422
        item = pairs[0][0]
        collapsed = api.get(f"/v1/items/{item}/similar", params={"k": 5, "collapse": True}).json()["results"]
        ids = [r["id"] for r in collapsed]
        assert len(collapsed) == 5 and len({c for o, c in pairs if o == item} & set(ids)) == 1  # one copy, not three


def test_groups_follow_the_live_generation(index_copy: Path) -> None:
    plant_copies(index_copy, 1)
    with StyleSearch.open(index_copy, run=RUN) as engine:
        before = engine.duplicates()
        assert engine.duplicates() == before  # the same generation: computed once
        engine.remove([before[0].members[1][0]])
        after = engine.duplicates()
        assert sum(len(g.members) for g in after) == sum(len(g.members) for g in before) - 1
