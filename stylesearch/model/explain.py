"""Why two photos match: how much each style block contributes, and where in each photo the
match comes from.

- **Block shares.** A photo's raw statistics are its blocks' statistics, each L2-normalised
  and concatenated, so their cosine is exactly the mean of the per-block cosines. A block's
  share is its cosine over the sum (the raw statistics before the catalog's projection;
  ``score`` is the index's cosine after it). Early blocks see colour and fine texture, late
  ones shapes and parts (:func:`block_kind`).
- **Heat maps** (occlusion sensitivity): the photo is cut into a ``GRID`` × ``GRID`` grid; each
  cell in turn is filled with the photo's median colour (the background of a product photo)
  and the score recomputed; a cell's heat is how much the score falls without it (negative
  falls count as 0), scaled to 0–1. One batch of ``GRID²`` forward passes per photo. (The
  score's gradient times the feature maps — the per-position terms of the Gram similarity's
  linear part — was tried first and failed the faithfulness check below on every set we
  ran it on: the projection's centring and normalisation make the first-order picture
  misleading.)

Faithfulness (``tests/test_explain.py``, ``benchmarks/bench_explain.py``): hiding the
top-ranked regions of the query photo lowers the score more than hiding random regions of
the same area.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .embed import Embedder, StyleModel

EPS = 1e-12
GRID = 8  # occlusion cells per side


@dataclass
class Explanation:
    """``score``: cosine of the two style vectors (stored form); ``blocks``: per style block,
    its name, kind and share of the raw statistics' similarity (shares sum to 1; a block
    that disagrees has a negative share); ``heat``: per photo, float32 [S, S] in 0–1 at the
    model's input size (query first)."""

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


def _per_block(model: StyleModel, images: torch.Tensor) -> list[torch.Tensor]:
    """Each style block's L2-normalised statistics [B, d] (the first statistic that reads the
    style blocks, e.g. the Gram matrices)."""
    maps = model.backbone.features(images, model.style_layers)
    for statistic, reads in zip(model.stats.statistics, model.stats.reads):
        if reads == "style":
            return list(statistic([m.float() for m in maps]))
    return []


def occlusions(image: torch.Tensor, grid: int = GRID) -> torch.Tensor:
    """uint8 [3, S, S] → [grid², 3, S, S]: the photo with each cell in turn filled with its
    median colour."""
    fill = image.flatten(1).median(1).values[:, None, None]
    size = image.shape[-1]
    out = image[None].repeat(grid * grid, 1, 1, 1)
    for c in range(grid * grid):
        r, q = divmod(c, grid)
        out[c, :, r * size // grid : (r + 1) * size // grid, q * size // grid : (q + 1) * size // grid] = fill
    return out


@torch.inference_mode()
def explain_pair(embedder: Embedder, images: torch.Tensor, grid: int = GRID) -> Explanation:
    """Why the two photos of ``images`` (uint8 [2, 3, S, S]: query, item) match."""
    assert embedder.projection is not None
    batch = torch.cat([images, occlusions(images[0], grid), occlusions(images[1], grid)])
    vectors = torch.from_numpy(embedder.projection.apply(embedder.raw(batch)))
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
    x = images.to(embedder.device).contiguous(memory_format=torch.channels_last)
    cosines = [float((b[0] * b[1]).sum()) for b in _per_block(embedder.model, x)]
    total = sum(cosines)
    names = embedder.model.style_layers
    shares = [
        {"block": name, "kind": block_kind(i, len(names)), "cosine": round(c, 4), "share": round(c / total, 4) if total else 0.0}
        for i, (name, c) in enumerate(zip(names, cosines))
    ]
    return Explanation(score, total / len(cosines) if cosines else 0.0, shares, (heat[0], heat[1]))


def masked(
    image: torch.Tensor, heat: np.ndarray, share: float, grid: int = 8, rng: np.random.Generator | None = None
) -> torch.Tensor:
    """``image`` (uint8 [3, S, S]) with ``share`` of its ``grid`` × ``grid`` cells filled with
    its median colour: the cells of highest mean ``heat``, or random ones when ``rng`` is given."""
    cells = pooled(heat, grid).ravel()
    n = max(1, int(round(share * grid * grid)))
    order = rng.permutation(grid * grid)[:n] if rng is not None else np.argsort(-cells, kind="stable")[:n]
    out = image.clone()
    fill = image.flatten(1).median(1).values[:, None, None]
    size = image.shape[-1]
    for c in order.tolist():
        r, q = divmod(c, grid)
        out[:, r * size // grid : (r + 1) * size // grid, q * size // grid : (q + 1) * size // grid] = fill
    return out


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
