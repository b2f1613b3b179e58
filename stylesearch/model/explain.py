"""Why two photos match: how much each style block contributes, and where in each photo the
match comes from.

- **Blocks: how much more alike than a typical pair.** A photo's raw statistics are its
  blocks' statistics, each L2-normalised and concatenated, so their cosine is exactly the
  mean of the per-block cosines — and every block's cosine is high for any two photos of one
  catalog, so "cosine over the sum" reads 19–21 % for every pair. Instead each block's cosine
  is set against the catalog's own: the per-block cosines of all pairs of a seeded sample of
  :data:`REFERENCE_PHOTOS` catalog photos (:func:`block_reference`). A block's **lift** is how
  many standard deviations this pair is above the catalog's mean, its **percentile** the
  share of catalog pairs below it, and its **share** its positive lift over the sum of
  positive lifts — so the strongest block is the one where this pair stands out, and it
  differs from pair to pair. Early blocks see colour and fine texture, late ones shapes and
  parts (:func:`block_kind`).
- **Heat maps** (occlusion sensitivity): the photo is cut into a ``GRID`` × ``GRID`` grid; each
  cell in turn is filled with the photo's median colour (the background of a product photo)
  and the score recomputed; a cell's heat is how much the score falls without it (negative
  falls count as 0), scaled to 0–1. One batch of ``GRID²`` forward passes per photo. (The
  score's gradient times the feature maps — the per-position terms of the Gram similarity's
  linear part — was tried first and failed the faithfulness check below on generated photos:
  25 % of pairs at 128 px, 46–67 % at 64 px, worse than random regions.)

Faithfulness (``tests/test_explain.py``, ``benchmarks/bench_explain.py``): hiding the
top-ranked regions of the query photo lowers the score more than hiding random regions of
the same area.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate

import numpy as np
import torch
import torch.nn.functional as F

from .embed import Embedder, StyleModel
from .statistics import Statistic

EPS = 1e-12
GRID = 8  # occlusion cells per side
REFERENCE_PHOTOS = 64  # catalog photos whose pairs make each block's typical cosine


@dataclass
class Explanation:
    """``score``: cosine of the two style vectors (stored form); ``blocks``: per style block,
    its name, kind, cosine, the catalog's typical cosine, this pair's percentile and lift
    among catalog pairs, and its share (positive lifts, summing to 1; all 0 when no block is
    above typical); ``heat``: per photo, float32 [S, S] in 0–1 at the model's input size
    (query first)."""

    score: float
    raw_similarity: float
    blocks: list[dict[str, object]]
    heat: tuple[np.ndarray, np.ndarray]

    def to_dict(self, grid: int = 32) -> dict[str, object]:
        """JSON-ready: heat maps pooled to ``grid`` × ``grid`` cells, 3 decimals."""
        return {
            "score": round(self.score, 6),
            "raw_similarity": round(self.raw_similarity, 6),
            "blocks": self.blocks,
            "heat": {name: pooled(h, grid).round(3).tolist() for name, h in zip(("query", "item"), self.heat)},
        }


def pooled(heat: np.ndarray, grid: int) -> np.ndarray:
    """float [S, S] → mean over ``grid`` × ``grid`` cells, rescaled to 0–1."""
    t = torch.from_numpy(np.ascontiguousarray(heat, np.float32))[None, None]
    out = F.adaptive_avg_pool2d(t, grid)[0, 0].numpy()
    top = float(out.max())
    return out / top if top > 0 else out


def block_kind(position: int, count: int) -> str:
    """A block's place in the backbone in words: the first half colour and texture, the rest shapes."""
    return "colour / texture" if position < max(1, count // 2) else "shapes / parts"


def _style_blocks(model: StyleModel) -> list[slice]:
    """Where each style block's statistics lie in the raw statistics (the first statistic that
    reads the style blocks, e.g. the Gram matrices)."""
    offset = 0
    statistics: list[Statistic] = list(model.stats.statistics)  # type: ignore[arg-type]
    for statistic, reads in zip(statistics, model.stats.reads):
        if reads == "style":
            bounds = list(accumulate([statistic.block_dims(c) for c in statistic.channels], initial=offset))
            return [slice(lo, hi) for lo, hi in zip(bounds[:-1], bounds[1:])]
        offset += statistic.dims
    return []


def hidden(image: torch.Tensor, cells: Sequence[int], grid: int = GRID) -> torch.Tensor:
    """``image`` (uint8 [3, S, S]) with the ``cells`` of its ``grid`` × ``grid`` grid (row-major
    numbers) filled with its median colour — the background of a product photo."""
    out = image.clone()
    fill = image.flatten(1).median(1).values[:, None, None]
    size = image.shape[-1]
    for c in cells:
        r, q = divmod(int(c), grid)
        out[:, r * size // grid : (r + 1) * size // grid, q * size // grid : (q + 1) * size // grid] = fill
    return out


def occlusions(image: torch.Tensor, grid: int = GRID) -> torch.Tensor:
    """uint8 [3, S, S] → [grid², 3, S, S]: the photo with each cell hidden in turn."""
    return torch.stack([hidden(image, [c], grid) for c in range(grid * grid)])


def block_cosines(model: StyleModel, raw: np.ndarray) -> np.ndarray:
    """float64 [N, N, blocks]: the per-block cosines of every pair of rows of ``raw``."""
    parts = []
    for part in _style_blocks(model):
        x = raw[:, part].astype(np.float64)
        x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), EPS)
        parts.append(x @ x.T)
    return np.stack(parts, -1)


@torch.inference_mode()
def block_reference(embedder: Embedder, images: torch.Tensor) -> np.ndarray:
    """float64 [pairs, blocks], sorted per block: the per-block cosines of every pair of
    ``images`` (uint8 [N, 3, S, S], a sample of the catalog) — what a typical pair scores."""
    cosines = block_cosines(embedder.model, embedder.raw(images))
    upper = np.triu_indices(len(images), 1)
    return np.sort(cosines[upper], axis=0)


def block_rows(names: Sequence[str], cosines: Sequence[float], reference: np.ndarray | None) -> list[dict[str, object]]:
    """Per block: name, kind, cosine, and against ``reference`` (:func:`block_reference`) the
    catalog's mean, this cosine's percentile and lift, and its share of the positive lifts."""
    rows: list[dict[str, object]] = []
    for i, (name, c) in enumerate(zip(names, cosines)):
        row: dict[str, object] = {"block": name, "kind": block_kind(i, len(names)), "cosine": round(c, 4)}
        if reference is not None and len(reference):
            column = reference[:, i]
            spread = max(float(column.std()), 1e-6)
            row.update(
                catalog_mean=round(float(column.mean()), 4),
                percentile=round(float(np.searchsorted(column, c, side="right") / len(column)), 4),
                lift=round((c - float(column.mean())) / spread, 3),
            )
        rows.append(row)
    lifts = [max(0.0, float(r.get("lift", c))) for r, c in zip(rows, cosines)]  # type: ignore[arg-type]
    total = sum(lifts)
    for row, lift in zip(rows, lifts):
        row["share"] = round(lift / total, 4) if total > 0 else 0.0
    return rows


@torch.inference_mode()
def explain_pair(embedder: Embedder, images: torch.Tensor, reference: np.ndarray | None = None, grid: int = GRID) -> Explanation:
    """Why the two photos of ``images`` (uint8 [2, 3, S, S]: query, item) match; ``reference``:
    the catalog's typical per-block cosines (:func:`block_reference`; without it, a block's
    share is its cosine over the sum)."""
    assert embedder.projection is not None
    batch = torch.cat([images, occlusions(images[0], grid), occlusions(images[1], grid)])
    raw = embedder.raw(batch)
    vectors = torch.from_numpy(embedder.projection.apply(raw))
    query, item = vectors[0], vectors[1]
    score = float(query @ item)
    cells = grid * grid
    falls = [score - vectors[2 : 2 + cells] @ item, score - vectors[2 + cells :] @ query]
    size = images.shape[-1]
    heat = []
    for fall in falls:
        cell_map = fall.clamp(min=0).reshape(1, 1, grid, grid)
        up = F.interpolate(cell_map, size=(size, size), mode="nearest")[0, 0]
        heat.append((up / up.max().clamp(min=EPS)).numpy().astype(np.float32))
    cosines = block_cosines(embedder.model, raw[:2])[0, 1].tolist()
    shares = block_rows(embedder.model.style_layers, cosines, reference)
    return Explanation(score, sum(cosines) / len(cosines) if cosines else 0.0, shares, (heat[0], heat[1]))


def masked(
    image: torch.Tensor, heat: np.ndarray, share: float, grid: int = GRID, rng: np.random.Generator | None = None
) -> torch.Tensor:
    """``image`` with ``share`` of its cells hidden (:func:`hidden`): the cells of highest mean
    ``heat``, or random ones when ``rng`` is given."""
    n = max(1, int(round(share * grid * grid)))
    order = rng.permutation(grid * grid)[:n] if rng is not None else np.argsort(-pooled(heat, grid).ravel(), kind="stable")[:n]
    return hidden(image, order.tolist(), grid)


def masking_drops(
    embedder: Embedder, images: torch.Tensor, explanation: Explanation, share: float = 0.25, draws: int = 8, seed: int = 0
) -> tuple[float, float]:
    """The faithfulness check: how much the score falls when ``share`` of the query photo's
    cells are hidden — its top-ranked cells, and random cells (mean over ``draws``)."""
    assert embedder.projection is not None
    rng = np.random.default_rng(seed)
    query, heat = images[0], explanation.heat[0]
    variants = [masked(query, heat, share)] + [masked(query, heat, share, rng=rng) for _ in range(draws)]
    vectors = embedder.projection.apply(embedder.raw(torch.stack([*variants, images[1]])))
    scores = vectors[:-1] @ vectors[-1]
    return explanation.score - float(scores[0]), explanation.score - float(scores[1:].mean())
