"""The classification rules, as a pure function: no index, no model."""

from __future__ import annotations

import numpy as np
import pytest

from stylesearch.classify import decide, fuse, head_scores
from stylesearch.results import Hit


def hits(*pairs: tuple[str, float]) -> list[Hit]:
    return [Hit(f"item-{i}", score, label, f"/{i}.jpg") for i, (label, score) in enumerate(pairs)]


def test_knn_vote_is_balanced_by_label_counts() -> None:
    neighbours = hits(("boho", 0.9), ("boho", 0.9), ("boho", 0.9), ("goth", 0.9))
    voters = {"boho": 300, "goth": 10}
    balanced = decide(neighbours, None, (), voters, balanced=True)
    plain = decide(neighbours, None, (), voters, balanced=False)
    assert balanced.label == "goth" and balanced.method == "knn"  # 1/10 beats 3/300
    assert plain.label == "boho" and plain.confidence == pytest.approx(0.75, abs=1e-4)


def test_below_the_threshold_the_answer_is_unknown() -> None:
    neighbours = hits(("a", 0.5), ("b", 0.5), ("c", 0.5))
    voters = {"a": 1, "b": 1, "c": 1}
    assert decide(neighbours, None, (), voters, threshold=0.35).label is None
    low = decide(neighbours, None, (), voters, threshold=0.3)
    assert low.label == "a" and low.confidence == pytest.approx(1 / 3, abs=1e-4)  # ties broken by name
    assert decide([], None, (), {}).label is None


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
    assert out.scores["boho"] == pytest.approx((0.5 + 0.9) / 2, abs=1e-4)
    assert out.knn is not None and out.linear is not None and out.linear["label"] == "boho"


def test_a_cold_start_label_is_decided_by_knn() -> None:
    """kNN's top label was added after the head was trained: the head cannot outvote it."""
    neighbours = hits(("cottagecore", 0.9), ("cottagecore", 0.8), ("boho", 0.2))
    out = decide(neighbours, np.array([0.99, 0.01]), ["boho", "goth"], {"boho": 50, "goth": 50, "cottagecore": 10})
    assert out.method == "knn" and out.label == "cottagecore"
    assert out.linear is not None and out.linear["label"] == "boho"  # still reported


def test_fuse_needs_a_method() -> None:
    with pytest.raises(ValueError):
        fuse(None, None)
