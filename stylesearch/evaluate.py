"""Classification and retrieval metrics (numpy only)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def macro_f1(truth: Sequence[str], predicted: Sequence[str | None], labels: Sequence[str] | None = None) -> float:
    """Mean F1 over ``labels`` (default: the labels present in ``truth``). A ``None``
    prediction ("unknown") counts as wrong for its true label."""
    labels = sorted(set(truth)) if labels is None else list(labels)
    scores = []
    for label in labels:
        tp = sum(t == label and p == label for t, p in zip(truth, predicted))
        fp = sum(t != label and p == label for t, p in zip(truth, predicted))
        fn = sum(t == label and p != label for t, p in zip(truth, predicted))
        scores.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return float(np.mean(scores)) if scores else 0.0


def accuracy(truth: Sequence[str], predicted: Sequence[str | None]) -> float:
    return float(np.mean([t == p for t, p in zip(truth, predicted)])) if truth else 0.0


def map_at_r(relevant: np.ndarray, r: Sequence[int]) -> float:
    """Mean average precision at R (Musgrave et al., 2020).

    ``relevant`` bool [Q, K] marks which ranked results share the query's label (K ≥ max R);
    ``r[q]`` is how many relevant items the index holds for query q.
    """
    values = []
    for row, rq in zip(relevant, r):
        if rq <= 0:
            continue
        hits = row[:rq].astype(np.float64)
        precision_at_i = np.cumsum(hits) / np.arange(1, rq + 1)
        values.append(float((precision_at_i * hits).sum() / rq))
    return float(np.mean(values)) if values else 0.0


def confusion_matrix(truth: Sequence[str], predicted: Sequence[str | None], labels: Sequence[str]) -> np.ndarray:
    """int64 [L, L]: rows true label, columns predicted (a ``None`` prediction counts nowhere)."""
    index = {label: i for i, label in enumerate(labels)}
    m = np.zeros((len(labels), len(labels)), np.int64)
    for t, p in zip(truth, predicted):
        if t in index and p in index:
            m[index[t], index[p]] += 1
    return m


def per_class(truth: Sequence[str], predicted: Sequence[str | None], labels: Sequence[str]) -> dict[str, dict[str, float]]:
    """Precision, recall, F1 and support per label."""
    out = {}
    for label in labels:
        tp = sum(t == label and p == label for t, p in zip(truth, predicted))
        fp = sum(t != label and p == label for t, p in zip(truth, predicted))
        fn = sum(t == label and p != label for t, p in zip(truth, predicted))
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        out[label] = {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4), "support": tp + fn}
    return out


def calibration_bins(confidence: Sequence[float], correct: Sequence[bool], bins: int = 10) -> dict[str, object]:
    """Expected calibration error (ECE: the answers' mean |confidence − accuracy| over equal-
    width confidence bins, weighted by their counts) and the bins of a reliability diagram."""
    conf = np.asarray(confidence, np.float64)
    ok = np.asarray(correct, np.float64)
    which = np.minimum((conf * bins).astype(int), bins - 1)
    rows, ece = [], 0.0
    for b in range(bins):
        mask = which == b
        if not mask.any():
            continue
        gap = abs(float(conf[mask].mean()) - float(ok[mask].mean()))
        ece += mask.mean() * gap
        rows.append(
            {
                "low": b / bins,
                "high": (b + 1) / bins,
                "count": int(mask.sum()),
                "confidence": round(float(conf[mask].mean()), 4),
                "accuracy": round(float(ok[mask].mean()), 4),
            }
        )
    return {"ece": round(float(ece), 4), "bins": rows}
