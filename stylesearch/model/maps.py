"""The learnt maps training tunes (raw statistics → style vector) and the rule that picks one.

- :class:`RawProjection`: every raw direction free, from the plain PCA (many labels);
- :class:`BasisProjection`: a map from a fixed whitened PCA basis (few labels).

:func:`start_map` applies the rule (``TrainConfig.map``, ``auto``: :data:`FEW_LABELS`) and
says what it chose; :func:`final_projection` turns the tuned map into the stored projection.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import nn

from ..config import TRAINED_DEFAULT_LAYERS, EmbedConfig, TrainConfig
from .projection import Projection, QueryPurpose

log = logging.getLogger(__name__)

# Below this many labelled photos per style (median), ``map auto`` learns from the PCA basis;
# chosen on the validation splits of FU4 and ARCH10 (benchmarks/bench_few_labels.py --split val)
FEW_LABELS = 100


class RawProjection(nn.Module):
    """raw statistics → learnt linear map → ``dim``, starting as the untrained projection.

    Every raw direction is free (28,916 of them for the default recipe): with thousands of
    labelled photos it learns far more than a map from a PCA basis can, but a few dozen
    photos rewrite it from noise (an optimiser step is large beside the start's weights)."""

    def __init__(self, start: Projection) -> None:
        super().__init__()
        assert start.matrix is not None
        self.linear = nn.Linear(start.in_dim, start.dim)
        with torch.no_grad():
            self.linear.weight.copy_(torch.from_numpy(start.matrix.T))
            self.linear.bias.copy_(torch.from_numpy(start.bias))

    def forward(self, raw: torch.Tensor) -> torch.Tensor:
        return self.linear(raw)

    def raw_affine(self) -> tuple[np.ndarray, np.ndarray]:
        """(weight [dim, R], bias [dim])."""
        with torch.no_grad():
            return self.linear.weight.cpu().numpy().copy(), self.linear.bias.cpu().numpy().copy()


class BasisProjection(nn.Module):
    """raw statistics → fixed whitened PCA basis [K] → learnt linear map → ``dim``.

    Starts as the untrained projection (the map is [I 0]: the basis's first ``dim``
    components), so that a step of the optimiser is a step relative to a well-scaled start and
    the L2-SP anchor pulls toward the untrained vectors: with few labels, training moves little
    from them; with many, the map reaches into the rest of the basis."""

    basis: torch.Tensor
    basis_bias: torch.Tensor

    def __init__(self, basis: Projection, dim: int) -> None:
        super().__init__()
        assert basis.matrix is not None
        self.register_buffer("basis", torch.from_numpy(basis.matrix.copy()))
        self.register_buffer("basis_bias", torch.from_numpy(basis.bias.copy()))
        self.linear = nn.Linear(basis.dim, dim)
        with torch.no_grad():
            self.linear.weight.copy_(torch.eye(dim, basis.dim))
            self.linear.bias.zero_()

    def forward(self, raw: torch.Tensor) -> torch.Tensor:
        return self.linear(raw @ self.basis + self.basis_bias)

    def raw_affine(self) -> tuple[np.ndarray, np.ndarray]:
        """The same map on raw statistics: (weight [dim, R], bias [dim])."""
        with torch.no_grad():
            weight = self.linear.weight @ self.basis.T
            bias = self.linear.weight @ self.basis_bias + self.linear.bias
        return weight.cpu().numpy(), bias.cpu().numpy()


LearntMap = RawProjection | BasisProjection


@dataclass
class Start:
    """The chosen map at its start, the untrained projection it starts from (``pca``), and the
    recipe the trained model records (``embed``: a raw map starts from plain PCA, so its
    recipe says whiten 0)."""

    kind: str
    map: LearntMap
    pca: Projection
    embed: EmbedConfig


def map_kind(cfg: TrainConfig, per_label: float) -> str:
    """``cfg.map``, or for ``auto``: ``basis`` below :data:`FEW_LABELS` labelled photos per
    style (median), else ``raw``."""
    return cfg.map if cfg.map != "auto" else ("basis" if per_label < FEW_LABELS else "raw")


def training_layers(embed: EmbedConfig, kind: str) -> EmbedConfig:
    """``embed`` with the blocks a ``raw`` map reads by default (``TRAINED_DEFAULT_LAYERS``)
    where ``--layers`` is not given; a ``basis`` map keeps the untrained default, the blocks its
    few-label settings were chosen with."""
    if kind != "raw" or embed.layers is not None or embed.backbone not in TRAINED_DEFAULT_LAYERS:
        return embed
    log.info("the raw map reads blocks %s (give --layers to choose)", ", ".join(TRAINED_DEFAULT_LAYERS[embed.backbone]))
    return replace(embed, layers=TRAINED_DEFAULT_LAYERS[embed.backbone])


def start_map(cfg: TrainConfig, embed: EmbedConfig, sample: np.ndarray, per_label: float) -> Start:
    """The map ``cfg.map`` names (``auto``: ``basis`` below :data:`FEW_LABELS` labelled photos
    per style, else ``raw``), fitted on the raw statistics ``sample``."""
    kind = map_kind(cfg, per_label)
    if kind == "basis":
        # the first ``dim`` components are the untrained projection of ``embed`` (whitened as it
        # says): the start; the next ones are room to move
        basis = Projection.fit_pca(
            sample, max(cfg.basis, embed.dim), whiten=embed.whiten, shrink=embed.whiten_shrink, reference=embed.dim
        )
        pca = basis.head(embed.dim)
        return Start(kind, BasisProjection(basis, pca.dim), pca, embed)
    # every raw direction free, from the plain PCA: the recipe the raw map's settings were
    # measured with (a whitened start cost 4 points of FU4 with all labels)
    if embed.whiten:
        log.info("the raw map starts from plain PCA: the trained model's recipe has whiten 0 (was %s)", embed.whiten)
    embed = replace(embed, whiten=0.0, whiten_shrink=0.0)
    pca = Projection.fit_pca(sample, embed.dim)
    return Start(kind, RawProjection(pca), pca, embed)


def final_projection(
    weight: np.ndarray, bias: np.ndarray, pca: Projection, cfg: TrainConfig, labels: Sequence[str]
) -> Projection:
    """The tuned projection (``weight`` [D, R], ``bias`` [D]), followed by the first
    ``cfg.pca_dims`` PCA components of the untrained statistics.

    The tuned block knows the trained labels; the PCA block keeps the generic structure that
    metric learning squeezes out, which a style added later (cold start) needs. Both blocks are
    stored at equal weight; queries weigh the PCA block by ``cfg.search_pca_weight`` for
    same-style retrieval, not at all for a kNN vote among the trained labels (the tuned block is
    best there), and by ``cfg.classify_pca_weight`` for a vote that includes labels added after
    training (see :meth:`Projection.for_query` and ``StyleSearch.classify_vectors``)."""
    if not cfg.pca_dims:
        return Projection(np.ascontiguousarray(weight.T), bias.astype(np.float32), "trained", labels=tuple(labels))
    assert pca.matrix is not None
    keep = min(cfg.pca_dims, pca.dim)
    matrix = np.concatenate([weight.T, pca.matrix[:, :keep]], axis=1)
    return Projection(
        np.ascontiguousarray(matrix, dtype=np.float32),
        np.concatenate([bias, pca.bias[:keep]]).astype(np.float32),
        "trained",
        ((weight.shape[0], 1.0), (keep, 1.0)),
        {
            QueryPurpose.SEARCH.value: (1.0, cfg.search_pca_weight),
            QueryPurpose.CLASSIFY.value: (1.0, 0.0),
            QueryPurpose.CLASSIFY_NEW_LABELS.value: (1.0, cfg.classify_pca_weight),
        },
        tuple(labels),
    )
