"""Mood-board queries: parsing the CLI's examples, the two strategies, and bad boards."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from stylesearch import StyleSearch
from stylesearch.board import NEGATIVE_WEIGHT, Example, best_score, combine
from stylesearch.errors import ConfigError, ItemNotFoundError

from .conftest import RUN


def test_examples_parse(tmp_path: Path) -> None:
    assert Example.parse("board.jpg") == Example("image", "board.jpg", 1.0)
    assert Example.parse("board.jpg:2") == Example("image", "board.jpg", 2.0)
    assert Example.parse("item:33016") == Example("item", "33016", 1.0)
    assert Example.parse("item:33016:0.5") == Example("item", "33016", 0.5)
    assert Example.parse("-item:19096") == Example("item", "19096", -NEGATIVE_WEIGHT)
    assert Example.parse("-item:19096:2") == Example("item", "19096", -2.0)
    assert Example.parse("-photo.png") == Example("image", "photo.png", -NEGATIVE_WEIGHT)
    odd = tmp_path / "-odd:3"  # an existing file is that file, whatever its name
    odd.write_bytes(b"")
    assert Example.parse(str(odd)) == Example("image", str(odd), 1.0)


@pytest.mark.parametrize("text", ["item:", "-", "item:x:0", "item:x:-1", "x.jpg:nan", "x.jpg:inf"])
def test_bad_examples_are_refused(text: str) -> None:
    with pytest.raises(ConfigError):
        Example.parse(text)


def test_a_weight_that_is_not_a_number_is_named(tmp_path: Path) -> None:
    photo = tmp_path / "board.jpg"
    photo.write_bytes(b"")
    with pytest.raises(ConfigError, match="not a number"):
        Example.parse(f"{photo}:lots")


def test_combine_and_best_score_rules() -> None:
    v = np.eye(3, dtype=np.float32)
    assert np.allclose(combine(v[:2], np.array([1.0, 1.0])), np.array([1, 1, 0]) / np.sqrt(2))
    with pytest.raises(ConfigError, match="cancel out"):
        combine(v[:2] * 0 + v[0], np.array([1.0, -1.0]))
    candidates = np.array([[0.9, 0.1, 0.0], [0.2, 0.0, 0.9]], np.float32)
    scores = best_score(candidates, v[[0, 2]], np.array([1.0, -1.0]))
    assert scores[0] == pytest.approx(0.9) and scores[1] == pytest.approx(-0.9)


def test_boards_through_the_engine(built_index: Path, demo_data) -> None:  # type: ignore[no-untyped-def]
    query = demo_data[1][0][0]
    with StyleSearch.open(built_index, run=RUN) as engine:
        ids = [h.id for h in engine.browse(limit=3)]
        one = engine.board([Example("item", ids[0])], k=5)
        assert [h.id for h in one] == [h.id for h in engine.similar(ids[0], k=5)]
        mixed = engine.board([Example("item", ids[0]), Example("item", ids[1]), Example("item", ids[2], -NEGATIVE_WEIGHT)], k=5)
        rocchio = engine.recommend(ids[:2], [ids[2]], k=5)
        assert [h.id for h in mixed] != [] and {h.id for h in mixed}.isdisjoint(ids)
        assert [
            h.id for h in engine.board([Example("item", i, 0.5) for i in ids[:2]] + [Example("item", ids[2], -0.5)], k=5)
        ] == [h.id for h in rocchio]
        photo = engine.board([Example("image", str(query))], k=5)
        assert [h.id for h in photo] == [h.id for h in engine.query(query, k=5).results]
        vector = engine.board([Example("vector", engine.embed([query])[0])], k=5)
        assert [h.id for h in vector] == [h.id for h in photo]

        best = engine.board(
            [Example("item", ids[0]), Example("item", ids[1]), Example("item", ids[2], -1)], k=8, strategy="best_score"
        )
        assert len(best) == 8 and {h.id for h in best}.isdisjoint(ids)
        assert [h.score for h in best] == sorted((h.score for h in best), reverse=True)
        grouped = engine.board([Example("image", str(query))], k=3, group_by="product", strategy="best_score")
        assert len({h.group for h in grouped}) == 3


def test_bad_boards_change_nothing(built_index: Path) -> None:
    with StyleSearch.open(built_index, run=RUN) as engine:
        some = engine.browse(limit=1)[0].id
        with pytest.raises(ConfigError, match="at least one example"):
            engine.board([])
        with pytest.raises(ConfigError, match="positive"):
            engine.board([Example("item", some, -1)])
        with pytest.raises(ItemNotFoundError):
            engine.board([Example("item", "no-such-item")])
        with pytest.raises(ConfigError, match="strategy"):
            engine.board([Example("item", some)], strategy="median")
        with pytest.raises(ConfigError, match="finite numbers"):
            engine.board([Example("vector", np.ones(3))])
        with pytest.raises(ConfigError, match="weight"):
            Example("item", some, 0)
        with pytest.raises(ConfigError, match="weight"):
            Example("item", some, "2")  # type: ignore[arg-type]
        with pytest.raises(ConfigError, match="recommend needs"):
            engine.recommend([])
