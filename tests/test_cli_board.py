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
