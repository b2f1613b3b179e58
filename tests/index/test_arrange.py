"""Grouped and diverse results: the pure rules, then through an opened demo index."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from stylesearch import StyleSearch
from stylesearch.errors import ConfigError, UnknownAttributeError
from stylesearch.index.arrange import Arrange, mmr

from ..conftest import RUN


def test_mmr_without_diversity_is_the_ranking() -> None:
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(20, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    scores = np.sort(rng.random(20))[::-1]
    assert mmr(scores, vectors, 10, 0.0) == list(range(10))


def test_mmr_skips_a_near_copy_of_what_it_already_picked() -> None:
    a = np.array([1.0, 0.0, 0.0], np.float32)
    copy = np.array([0.999, 0.0447, 0.0], np.float32)
    other = np.array([0.0, 0.0, 1.0], np.float32)
    vectors = np.stack([a, copy / np.linalg.norm(copy), other])
    scores = np.array([0.9, 0.89, 0.7])
    assert mmr(scores, vectors, 2, 0.0) == [0, 1]
    assert mmr(scores, vectors, 2, 0.5) == [0, 2]


@pytest.mark.parametrize(
    "options",
    [
        {"group_size": 0, "group_by": "x"},
        {"group_size": 101, "group_by": "x"},
        {"diversity": 1.5},
        {"diversity": -0.1},
        {"diversity": "a lot"},
        {"group_size": 2},
        {"group_by": " "},
        {"grouping": "x"},
    ],  # fmt: skip
)
def test_bad_arrangements_are_refused(options: dict) -> None:
    with pytest.raises(ConfigError):
        Arrange.of(options)


def test_group_by_gives_distinct_values_in_score_order(built_index: Path, demo_data) -> None:  # type: ignore[no-untyped-def]
    query = demo_data[1][0][0]
    with StyleSearch.open(built_index, run=RUN) as engine:
        hits = engine.query(query, k=4, group_by="product").results
        values = [h.attributes["product"] for h in hits]
        assert len(values) == 4 and len(set(values)) == 4
        assert [h.group for h in hits] == values
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
        plain = engine.query(query, k=len(engine)).results  # each group's leader is the best item of its value
        best = {}
        for h in plain:
            best.setdefault(h.attributes["product"], h.id)
        assert [h.id for h in hits] == [best[v] for v in values]

        grouped = engine.query(query, k=3, group_by="product", group_size=2).results
        assert len(grouped) == 6
        assert [h.group for h in grouped][::2] == [h.group for h in grouped][1::2]  # members stay together

        style = hits[0].label
        filtered = engine.similar(hits[0].id, k=10, where={"label": style}, group_by="product")
        assert filtered and all(h.label == style for h in filtered)
        assert len({h.group for h in filtered}) == len(filtered)
        by_label = engine.query(query, k=3, group_by="label").results
        assert len({h.label for h in by_label}) == 3


def test_group_by_an_unknown_key_is_an_error(built_index: Path, demo_data) -> None:  # type: ignore[no-untyped-def]
    with StyleSearch.open(built_index, run=RUN) as engine, pytest.raises(UnknownAttributeError, match="did you mean product"):
        engine.query(demo_data[1][0][0], k=3, group_by="Product")


def test_diversity_spreads_the_top_results(built_index: Path, demo_data) -> None:  # type: ignore[no-untyped-def]
    with StyleSearch.open(built_index, run=RUN) as engine:
        query = demo_data[1][0][0]

        def spread(hits) -> tuple[float, float]:  # type: ignore[no-untyped-def]
            _, v = engine.snapshot.vectors_of([h.id for h in hits])
            sims = v @ v.T
            return float(sims[~np.eye(len(v), dtype=bool)].mean()), float(np.mean([h.score for h in hits]))

        plain_sim, plain_score = spread(engine.query(query, k=10).results)
        diverse = engine.query(query, k=10, diversity=0.5).results
        diverse_sim, diverse_score = spread(diverse)
        assert len(diverse) == 10 and len({h.id for h in diverse}) == 10
        assert diverse_sim < plain_sim
        assert diverse_score <= plain_score
        assert [h.id for h in engine.query(query, k=10, diversity=0.0).results] == [
            h.id for h in engine.query(query, k=10).results
        ]


def test_group_by_label_on_an_unlabelled_index_is_an_error(tmp_path: Path) -> None:
    from stylesearch import index_catalog

    from ..conftest import SMALL, noise

    for n in range(6):
        noise(tmp_path / "photos" / f"p{n}.png", seed=n)
    index_catalog(tmp_path / "photos", tmp_path / "index", embed=SMALL, run=RUN)
    with (
        StyleSearch.open(tmp_path / "index", run=RUN) as engine,
        pytest.raises(UnknownAttributeError, match="no item has a label"),
    ):
        engine.query(tmp_path / "photos" / "p0.png", k=3, group_by="label")
