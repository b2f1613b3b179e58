import numpy as np
import pytest

from stylesearch.evaluate import accuracy, macro_f1, map_at_r


def test_macro_f1_counts_unknown_as_wrong() -> None:
    truth = ["a", "a", "b", "b"]
    assert macro_f1(truth, truth) == 1.0
    assert macro_f1(truth, ["a", None, "b", "b"]) == pytest.approx((2 / 3 + 1.0) / 2)
    assert accuracy(truth, ["a", "b", "b", "b"]) == 0.75


def test_map_at_r() -> None:
    relevant = np.array([[True, False, True, False], [False, False, False, False]])
    assert map_at_r(relevant, [2, 3]) == pytest.approx(((1 + 0) / 2 + 0) / 2)
    assert map_at_r(np.array([[True, True]]), [2]) == 1.0
