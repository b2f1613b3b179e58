"""Training batches: m images per label, and — with ``train --within COLUMN`` — batches drawn
inside one value of an attribute (one product type), so that every negative pair shares the
type and the loss can only separate styles *within* it (the multi-similarity miner then mines
its hard negatives there too).

A run mixes the two (:func:`mix_within`): a share ``within_share`` of the steps are
within-type batches, the rest pytorch-metric-learning's ``MPerClassSampler`` batches (so style
across types, FU4, is still learnt).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np


class WithinGroupSampler:
    """Batches whose images share one value of a grouping attribute (a product type).

    ``positions`` int [N] (what a batch holds: the images' positions), ``labels`` int [N]
    (their style labels), ``groups`` [N] (the attribute's value, ``None`` where an image has
    none). A group takes part when at least two of its labels have ``min_per_label`` images;
    groups are drawn in proportion to their images."""

    def __init__(
        self,
        positions: Sequence[int] | np.ndarray,
        labels: Sequence[int],
        groups: Sequence[str | None],
        m: int,
        batch_size: int,
        min_per_label: int = 2,
    ) -> None:
        self.m = m
        self.batch_size = batch_size
        cells: dict[str, dict[int, list[int]]] = defaultdict(lambda: defaultdict(list))
        for position, label, group in zip(np.asarray(positions, np.int64).tolist(), labels, groups):
            if group is not None:
                cells[group][label].append(position)
        self.groups: list[dict[int, np.ndarray]] = []
        for cell in cells.values():
            usable = {label: np.array(p, np.int64) for label, p in cell.items() if len(p) >= min_per_label}
            if len(usable) >= 2:
                self.groups.append(usable)
        sizes = np.array([sum(len(p) for p in g.values()) for g in self.groups], np.float64)
        self.weights = sizes / sizes.sum() if len(sizes) else sizes

    def __bool__(self) -> bool:
        return bool(self.groups)

    def batch(self, rng: np.random.Generator) -> np.ndarray:
        group = self.groups[int(rng.choice(len(self.groups), p=self.weights))]
        names = np.array(sorted(group))
        chosen = rng.choice(names, size=min(len(names), max(2, self.batch_size // self.m)), replace=False)
        return np.concatenate([rng.choice(group[int(y)], size=self.m, replace=len(group[int(y)]) < self.m) for y in chosen])


def mix_within(batches: list[np.ndarray], within: WithinGroupSampler, share: float, seed: int) -> list[np.ndarray]:
    """One epoch's batches (training positions) with a share ``share`` of them replaced by
    within-group batches; the rest stay the plain sampler's."""
    rng = np.random.default_rng(seed)
    out = list(batches)
    if within and share > 0:
        for step in np.flatnonzero(rng.random(len(out)) < share):
            out[int(step)] = within.batch(rng)
    return out
