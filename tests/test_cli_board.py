"""``stylesearch query`` with --group-by / --diversity, and mood boards as written on a command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stylesearch import Example, StyleSearch

from .conftest import RUN
from .test_cli import run


def test_query_groups_and_diversifies(capsys, built_index: Path, demo_data) -> None:  # type: ignore[no-untyped-def]
    image = str(demo_data[1][0][0])
    code, out, _ = run(
        capsys, "query", image, "-k", "3", "--group-by", "product", "--group-size", "2", "--index", str(built_index), "--json"
    )
    results = json.loads(out)[0]["results"]
    assert code == 0 and len(results) == 6 and len({r["group"] for r in results}) == 3
    code, out, _ = run(capsys, "query", image, "-k", "5", "--diversity", "0.5", "--index", str(built_index), "--json")
    assert code == 0 and len(json.loads(out)[0]["results"]) == 5
    code, _, err = run(capsys, "query", image, "--diversity", "3", "--index", str(built_index))
    assert code == 2 and "diversity must be" in err
    code, _, err = run(capsys, "query", image, "--group-by", "colour", "--index", str(built_index))
    assert code == 2 and "no item has the attribute 'colour'" in err


def test_mood_board_as_written(capsys, built_index: Path, demo_data) -> None:  # type: ignore[no-untyped-def]
    image = str(demo_data[1][0][0])
    with StyleSearch.open(built_index, run=RUN) as engine:
        ids = [h.id for h in engine.browse(limit=2)]
        expected = [
            h.id
            for h in engine.board([Example("image", image, 2.0), Example("item", ids[0]), Example("item", ids[1], -0.5)], k=4)
        ]
    code, out, err = run(
        capsys, "query", f"{image}:2", f"item:{ids[0]}", f"-item:{ids[1]}", "-k", "4", "--index", str(built_index), "--json"
    )
    assert code == 0, err
    data = json.loads(out)
    assert len(data) == 1 and data[0]["image"].startswith("mood board")
    assert [r["id"] for r in data[0]["results"]] == expected
    code, out, _ = run(
        capsys,
        "query",
        "--board",
        image,
        f"--against=item:{ids[1]}",
        "--strategy",
        "best_score",
        "-k",
        "3",
        "--index",
        str(built_index),
    )
    assert code == 0 and "mood board" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["item:no-such-item"], "no-such-item"),
        (["-item:x"], "positive"),
        (["item:x:0"], "weights are positive"),
    ],
)
def test_bad_mood_boards(capsys, built_index: Path, argv: list[str], message: str) -> None:  # type: ignore[no-untyped-def]
    code, _, err = run(capsys, "query", *argv, "--index", str(built_index))
    assert code != 0 and message in err and err.count("\n") == 1


def test_query_lines_are_short_by_default_and_say_what_was_asked(capsys, built_index: Path) -> None:  # type: ignore[no-untyped-def]
    with StyleSearch.open(built_index, run=RUN) as engine:
        first = engine.browse(limit=1)[0].id
    code, out, _ = run(capsys, "query", f"item:{first}", "-k", "5", "--index", str(built_index))
    assert code == 0 and out.splitlines()[0] == f"similar to item {first}"
    assert all(len(line) <= 120 for line in out.splitlines())
    code, out, _ = run(capsys, "query", f"item:{first}", "-k", "2", "--show", "all", "--index", str(built_index))
    assert code == 0 and "product=" in out
    code, out, _ = run(capsys, "query", f"item:{first}", "-k", "2", "--show", "product", "--index", str(built_index))
    assert code == 0 and "product=" in out
    code, _, err = run(capsys, "query", f"item:{first}", "-k", "2", "--show", "Product", "--index", str(built_index))
    assert code == 2 and "did you mean product?" in err  # a misspelt column is a mistake, not an empty answer


def test_hit_lines_of_fashion_usage_items_fit_120_characters() -> None:
    import csv

    from stylesearch.cli.common import fmt_hits
    from stylesearch.results import Hit

    metadata = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "fashion-usage" / "metadata.csv"
    if not metadata.is_file():
        pytest.skip("../shared/datasets/fashion-usage is not here")
    with metadata.open(encoding="utf-8") as fh:
        rows = [r for _, r in zip(range(300), csv.DictReader(fh))]
    stored = [dict(sorted((k, v) for k, v in r.items() if k not in ("id", "usage", "path"))) for r in rows]  # as indexed
    hits = [Hit(r["id"], 0.9, r["usage"], r["path"], attributes) for r, attributes in zip(rows, stored)]
    lines = fmt_hits(hits).splitlines()
    assert len(lines) == len(rows) and max(len(line) for line in lines) <= 120
    assert "productDisplayName" not in "".join(lines) and "articleType=" in lines[0]
    assert "productDisplayName=" in fmt_hits(hits[:1], show=["all"])


def test_wrong_case_column_names_get_a_did_you_mean(capsys, tmp_path: Path, demo_data) -> None:  # type: ignore[no-untyped-def]
    manifest = tmp_path / "m.csv"
    image = demo_data[1][0][0]
    manifest.write_text(f"id,path,Usage\na,{image},Casual\n", encoding="utf-8")
    code, _, err = run(capsys, "index", str(manifest), "--label-column", "usage", "--index", str(tmp_path / "i"))
    assert code != 0 and "did you mean Usage?" in err
