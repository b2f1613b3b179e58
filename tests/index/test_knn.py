import numpy as np
import pytest

from stylesearch.index import knn_vote


def test_weighted_vote() -> None:
    vote = knn_vote(["a", "b", "b"], np.array([0.9, 0.5, 0.5]))
    assert vote.label == "b" and vote.confidence == pytest.approx(1.0 / 1.9, abs=1e-4)
    assert list(vote.scores) == ["b", "a"] and sum(vote.scores.values()) == pytest.approx(1.0)
    assert knn_vote(["a", "b", "b"], np.array([0.99, 0.1, 0.1])).label == "a"


def test_threshold_and_empty() -> None:
    assert knn_vote(["a", "b"], np.array([0.5, 0.5]), min_confidence=0.6).label is None
    assert knn_vote([], np.array([])).label is None
    assert knn_vote(["a"], np.array([-0.3])).label == "a"  # negative similarity still counts a little
    with pytest.raises(ValueError):
        knn_vote(["a"], np.array([0.1, 0.2]))


def test_balanced_vote_lets_a_rare_label_win() -> None:
    labels = ["common"] * 7 + ["rare"] * 3
    sims = np.full(10, 0.8)
    assert knn_vote(labels, sims).label == "common"
    balanced = knn_vote(labels, sims, label_counts={"common": 400, "rare": 10})
    assert balanced.label == "rare" and sum(balanced.scores.values()) == pytest.approx(1.0)
    same = knn_vote(labels, sims, label_counts={"common": 50, "rare": 50})
    assert same.scores == pytest.approx(knn_vote(labels, sims).scores)  # a balanced index: nothing changes
