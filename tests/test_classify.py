"""The classification rules, as a pure function: no index, no model."""

from __future__ import annotations

import numpy as np
import pytest

from stylesearch.classify import Rule, decide, fuse, head_scores, verdict
from stylesearch.errors import ConfigError
from stylesearch.results import Hit


def hits(*pairs: tuple[str, float]) -> list[Hit]:
    return [Hit(f"item-{i}", score, label, f"/{i}.jpg") for i, (label, score) in enumerate(pairs)]


FASHION = {"Casual": 4598, "Sports": 2396, "Ethnic": 1913, "Formal": 1432, "Smart_Casual": 38, "Party": 23, "Travel": 15}


def test_one_neighbour_of_a_tiny_style_does_not_outvote_nine_of_a_large_one() -> None:
    """The perfume of the issue: 9 × Casual + 1 × Smart_Casual was answered "Smart_Casual, 0.92"."""
    out = decide(hits(*[("Casual", 0.8)] * 9, ("Smart_Casual", 0.8)), None, (), FASHION)
    assert out.label == "Casual" and out.support == 9 and out.confidence > 0.5
    # whichever way the prior leans, one neighbour never backs an answer of confidence >= 0.5
    for prior in ("catalog", "uniform"):
        lone = decide(
            hits(("Travel", 0.9), *[(s, 0.5) for s in ("Casual", "Sports", "Ethnic", "Formal")] * 2),
            None,
            (),
            FASHION,
            rule=Rule(prior),
            threshold=0.0,
        )
        assert lone.support is not None and (lone.support > 1 or lone.confidence < 0.5)


def test_a_new_label_with_one_photo_does_not_take_every_answer() -> None:
    """One photo under "Modern" added to a 2,000-photo index made every photo "Modern 0.95"."""
    voters = {f"style{i}": 200 for i in range(10)} | {"Modern": 1}
    neighbours = hits(("Modern", 0.4), *[(f"style{i}", 0.35) for i in range(9)])
    out = decide(neighbours, None, (), voters, threshold=0.0)
    assert out.answer != "Modern" or out.confidence < 0.5


def test_a_cold_start_style_wins_when_its_neighbourhood_is_that_style() -> None:
    voters = {"boho": 300, "goth": 300, "cottagecore": 10}
    strong = decide(hits(*[("cottagecore", 0.8)] * 5, *[("boho", 0.8)] * 3, *[("goth", 0.8)] * 2), None, (), voters)
    assert strong.label == "cottagecore" and strong.support == 5
    weak = decide(hits(("cottagecore", 0.8), *[("boho", 0.8)] * 6, *[("goth", 0.8)] * 3), None, (), voters, threshold=0.0)
    assert weak.answer == "boho"


def test_the_prior_and_the_temperature() -> None:
    neighbours = hits(*[("a", 0.8)] * 8, *[("b", 0.8)] * 2)
    voters = {"a": 900, "b": 100}
    catalog = decide(neighbours, None, (), voters, threshold=0.0)
    uniform = decide(neighbours, None, (), voters, rule=Rule("uniform"), threshold=0.0)
    assert catalog.answer == "a" and uniform.answer == "b" and uniform.prior == "uniform"
    sharp = decide(neighbours, None, (), voters, rule=Rule(temperature=0.2), threshold=0.0)
    assert sharp.confidence > catalog.confidence  # a lower temperature is more confident
    with pytest.raises(ConfigError, match="prior"):
        Rule("popular")


def test_unknown_is_decided_in_one_place() -> None:
    neighbours = hits(*[("a", 0.8)] * 8, ("b", 0.8), ("b", 0.8))
    voters = {"a": 50, "b": 50}
    assert decide(neighbours, None, (), voters, familiarity=0.5, min_familiarity=0.02).label == "a"
    odd = decide(neighbours, None, (), voters, familiarity=0.01, min_familiarity=0.02)
    assert odd.label is None and odd.reason == "out_of_catalog" and odd.answer == "a" and odd.out_of_catalog
    assert verdict("a", 0.2, 0.35, None, 0.02) == (None, "low_confidence")
    assert verdict(None, 0.0, 0.35, None, 0.02) == (None, "no_labelled_items")


def test_the_head_only_answers_labels_present_among_the_voters() -> None:
    probs = np.array([0.6, 0.3, 0.1])
    scores = head_scores(["boho", "goth", "punk"], probs, {"goth": 4, "punk": 2})
    assert list(scores) == ["goth", "punk"] and scores["goth"] == pytest.approx(0.75)
    # none present (e.g. a filter matching only new labels): all of the head's labels
    assert list(head_scores(["boho", "goth"], np.array([0.2, 0.8]), {"new": 3})) == ["goth", "boho"]
    linear = decide(None, probs, ["boho", "goth", "punk"], {"goth": 4, "punk": 2})
    assert linear.method == "linear" and linear.label == "goth" and linear.neighbors == [] and linear.knn is None


def test_both_methods_are_averaged() -> None:
    neighbours = hits(("boho", 0.9), ("goth", 0.9))
    out = decide(neighbours, np.array([0.9, 0.1]), ["boho", "goth"], {"boho": 1, "goth": 1})
    assert out.method == "both" and out.label == "boho"
    assert out.knn is not None and out.scores["boho"] == pytest.approx((out.knn["scores"]["boho"] + 0.9) / 2, abs=1e-4)
    assert out.knn is not None and out.linear is not None and out.linear["label"] == "boho"


def test_a_cold_start_label_is_decided_by_knn() -> None:
    """kNN's top label was added after the head was trained: the head cannot outvote it."""
    neighbours = hits(("cottagecore", 0.9), ("cottagecore", 0.8), ("cottagecore", 0.8), ("boho", 0.2))
    out = decide(neighbours, np.array([0.99, 0.01]), ["boho", "goth"], {"boho": 50, "goth": 50, "cottagecore": 10})
    assert out.method == "knn" and out.label == "cottagecore"
    assert out.linear is not None and out.linear["label"] == "boho"  # still reported


def test_fuse_needs_a_method() -> None:
    with pytest.raises(ValueError):
        fuse(None, None)
