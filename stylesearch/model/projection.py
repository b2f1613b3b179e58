"""The projection that makes raw style statistics compact: raw ``float32 [B, R]`` (see
:mod:`stylesearch.model.statistics`) → style vectors ``float32 [B, D]``, L2-normalised so that
inner product is cosine similarity. PCA fitted on the catalog, or trained
(:mod:`stylesearch.model.train`); :class:`QueryPurpose` says how a query vector is weighed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import IndexCorruptError
from .novelty import Novelty, fit_reference

EPS = 1e-12


class QueryPurpose(str, Enum):
    """What a query vector is for (:meth:`Projection.for_query`): a trained projection
    weighs its blocks differently for each."""

    SEARCH = "search"  # same-style retrieval
    CLASSIFY = "classify"  # a kNN vote among the labels the model was trained on
    CLASSIFY_NEW_LABELS = "classify_new_labels"  # a kNN vote that includes labels added later


def whitening(variance: np.ndarray, power: float, shrink: float, reference: int | None = None) -> np.ndarray:
    """Per-component scale float32 [D] of PCA whitening: (variance + ``shrink`` × the mean
    variance of the first ``reference`` components (all by default)) ** (-``power`` / 2);
    ones for ``power`` 0."""
    variance = np.asarray(variance, np.float64)
    if power == 0:
        return np.ones(len(variance), np.float32)
    mean = variance[:reference].mean()
    return (np.maximum(variance + shrink * mean, EPS) ** (-power / 2)).astype(np.float32)


def int8_rows(weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 quantisation of each row of ``weight`` float32 [D, R]: (levels int8
    [D, R], scale float32 [D, 1]) with ``weight ≈ levels * scale``. On values already of that
    form it gives them back (the largest level is ±127)."""
    scale = (np.abs(weight).max(axis=1, keepdims=True) / 127).astype(np.float32)
    scale[scale == 0] = 1
    return np.clip(np.rint(weight / scale), -127, 127).astype(np.int8), scale


def randomized_basis(centered: torch.Tensor, q: int, seed: int, niter: int = 2) -> torch.Tensor:
    """The top ``q`` right singular vectors float32 [R, q] of ``centered`` [N, R] (N < R), by a
    randomised range finder (Halko et al., 2011) with ``niter`` power iterations.

    Unlike ``torch.pca_lowrank``, every QR is of an [N, q] matrix (never of [R, q]) and the
    last SVD is an eigendecomposition of the q × q Gram matrix in float64, so the cost is a
    few matrix products (on 1,200 × 58,212 fashion statistics, 2 CPU cores: 2.2 s against
    2.5 s, and closer to the exact SVD's span: mean principal-angle cosine 0.920 vs 0.902).
    The Gaussian test matrix comes from a seeded CPU generator whatever the device, so a GPU
    and a CPU fit the same basis (to float rounding)."""
    r = centered.shape[1]
    test = torch.randn(r, q, generator=torch.Generator().manual_seed(seed)).to(centered.device)
    basis = torch.linalg.qr(centered @ test).Q  # [N, q]: the range of the data
    for _ in range(niter):
        basis = torch.linalg.qr(centered @ (centered.T @ basis)).Q
    small = (basis.T @ centered).double()  # [q, R]
    values, vectors = torch.linalg.eigh(small @ small.T)  # ascending
    order = torch.argsort(values, descending=True)
    values, vectors = values[order].clamp_min(1e-30), vectors[:, order]
    return ((small.T @ vectors) / values.sqrt()).float()


@dataclass
class Projection:
    """Affine map of raw statistics to style vectors: ``normalize(x @ matrix + bias)``.

    ``matrix`` float32 [R, D] (``None``: identity, D = R), ``bias`` float32 [D]. ``kind``
    records where it came from: ``pca`` (fitted on the catalog; ``bias = -mean @ matrix``),
    ``trained`` (metric learning, :mod:`stylesearch.model.train`) or ``identity``.
    ``parts`` splits the output into consecutive blocks of (size, weight): each block is
    L2-normalised and scaled by its weight before the whole vector is normalised, so that the
    inner product is a weighted sum of per-block cosines (a trained model keeps PCA components
    beside its tuned ones this way). ``None``: one block.

    ``query_weights`` (purpose → one weight per block) reweights the blocks of a *query*
    vector only (:meth:`for_query`): against stored vectors with blocks ``(t, p)``, the query
    ``(t, w·p)`` ranks by ``t·t' + w·p·p'``, so one index serves retrieval and classification
    with different mixes. ``labels``: the style labels a trained projection was tuned on.
    """

    matrix: np.ndarray | None
    bias: np.ndarray
    kind: str
    parts: tuple[tuple[int, float], ...] | None = None
    query_weights: dict[str, tuple[float, ...]] = field(default_factory=dict)
    labels: tuple[str, ...] = ()
    novelty: Novelty | None = field(default=None, repr=False, compare=False)  # PCA only: model/novelty.py
    _torch: tuple[torch.Tensor, torch.Tensor] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.matrix is not None:  # column-major: matrix.T [D, R] is contiguous (see apply)
            self.matrix = np.asfortranarray(self.matrix, dtype=np.float32)

    @property
    def dim(self) -> int:
        return int(self.bias.shape[0])

    @property
    def in_dim(self) -> int:
        return int(self.matrix.shape[0]) if self.matrix is not None else int(self.bias.shape[0])

    def on_int8_grid(self) -> Projection:
        """This projection with its matrix rounded to int8 levels (:func:`int8_rows`): what
        an int8 index projects with. An inference engine then reads the weight as int8 (a
        quarter of the memory: one query's product is memory-bound) and torch as float32,
        and both compute the same vectors. Itself when already on the grid (or no matrix)."""
        if self.matrix is None:
            return self
        levels, scale = int8_rows(self.matrix.T)
        snapped = (levels * scale).T
        if np.array_equal(snapped, self.matrix):
            return self
        return replace(self, matrix=snapped)

    def head(self, n: int) -> Projection:
        """The first ``n`` output components (of a one-block projection with a matrix)."""
        assert self.matrix is not None and not self.parts
        return Projection(self.matrix[:, :n].copy(order="F"), self.bias[:n].copy(), self.kind)

    def torch_params(self, device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
        """(weight [D, R] — the matrix transposed, contiguous —, bias [D]) as float32 tensors
        on ``device`` (cached per device; on the CPU they share the arrays' memory)."""
        device = torch.device(device)
        if self._torch is None or self._torch[1].device != device:
            bias = torch.from_numpy(np.ascontiguousarray(self.bias, dtype=np.float32))
            weight = torch.from_numpy(self.matrix.T) if self.matrix is not None else torch.empty(0)
            self._torch = (weight.to(device), bias.to(device))
        return self._torch

    def apply_measured(
        self, raw: np.ndarray | torch.Tensor, linear: Callable[[np.ndarray], np.ndarray] | None = None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """:meth:`apply`, and each row's novelty p-values float64 [N, 2]
        (:meth:`Novelty.p_values`; ``None`` without a novelty reference)."""
        if self.novelty is None or self.matrix is None or self.parts:
            return self.apply(raw, linear), None
        x = torch.as_tensor(raw, dtype=torch.float32)
        y = self._affine(x, linear)
        scale = np.linalg.norm(self.matrix, axis=0).astype(np.float64)
        found = self.novelty.measure(x.cpu().numpy(), y.cpu().numpy(), np.maximum(scale, EPS))
        return self._normalised(y).cpu().numpy(), self.novelty.p_values(*found)

    def apply(self, raw: np.ndarray | torch.Tensor, linear: Callable[[np.ndarray], np.ndarray] | None = None) -> np.ndarray:
        """float32 [N, R] → float32 [N, D], L2-normalised. Computed with torch, on the device
        ``raw`` is on (a GPU's statistics need not cross to the CPU: 247 KB per image at 128
        px), or by ``linear`` (CPU arrays: ``raw @ matrix + bias``, e.g. an inference engine's
        compiled product, :class:`~stylesearch.model.runtimes.openvino.OpenVINOLinear`). The weight is
        read as [D, R] rows: for one query, 2x faster here than the [R, D] layout."""
        x = torch.as_tensor(raw, dtype=torch.float32)
        return self._normalised(self._affine(x, linear)).cpu().numpy()

    def apply_tensor(self, raw: torch.Tensor) -> torch.Tensor:
        """:meth:`apply` of a tensor, left where it is (on a GPU: no wait for the result)."""
        return self._normalised(self._affine(raw.float(), None))

    def _affine(self, x: torch.Tensor, linear: Callable[[np.ndarray], np.ndarray] | None) -> torch.Tensor:
        """``x @ matrix + bias``, before any normalisation."""
        if self.matrix is None:
            return x + self.torch_params(x.device)[1]
        if linear is not None and x.device.type == "cpu":
            return torch.from_numpy(linear(x.numpy()))
        weight, bias = self.torch_params(x.device)
        return F.linear(x, weight, bias)

    def _normalised(self, y: torch.Tensor) -> torch.Tensor:
        if self.parts:
            blocks = y.split([size for size, _ in self.parts], dim=1)
            y = torch.cat([F.normalize(b, dim=1, eps=EPS) * w for b, (_, w) in zip(blocks, self.parts)], dim=1)
        return F.normalize(y, dim=1, eps=EPS)

    def for_query(self, vectors: np.ndarray, purpose: QueryPurpose | str) -> np.ndarray:
        """Stored-form vectors float32 [N, D] → query vectors for ``purpose`` (a
        :class:`QueryPurpose`), unchanged where the projection has no weights for it. Scaled so that a
        query's score against its own stored vector is 1: scores stay weighted means of the
        blocks' cosines, in [-1, 1]."""
        weights = self.query_weights.get(QueryPurpose(purpose).value)
        if not weights or not self.parts:
            return vectors
        scale = np.concatenate(
            [np.full(size, w / stored if stored > 0 else 0.0, np.float32) for (size, stored), w in zip(self.parts, weights)]
        )
        out = vectors * scale
        self_score = np.sum(out * vectors, axis=1, keepdims=True)
        return (out / np.maximum(self_score, EPS)).astype(np.float32)

    @classmethod
    def identity(cls, in_dim: int) -> Projection:
        return cls(None, np.zeros(in_dim, np.float32), "identity")

    @classmethod
    def fit_pca(
        cls,
        raw: np.ndarray,
        dim: int,
        seed: int = 0,
        whiten: float = 0.0,
        shrink: float = 0.0,
        reference: int | None = None,
        pad: bool = False,
        novelty: bool = False,
        device: torch.device | str = "cpu",
    ) -> Projection:
        """PCA of float32 [N, R] to ``min(dim, N-1, R)`` components (randomised SVD).
        ``whiten`` > 0 divides each component by (its variance + ``shrink`` × the mean kept
        variance) ** (``whiten`` / 2) — still one affine map, stored like any projection.
        ``reference``: the mean is over the first ``reference`` components only (a wider basis
        whose first components whiten exactly as a ``reference``-dimension fit would).

        ``pad``: when fewer than ``dim`` components can be fitted (a sample of N <= ``dim``
        photos spans N-1 directions), fill up to ``min(dim, R)`` with fixed-seed random
        directions orthogonal to the fitted ones (at the scale of the last fitted one). The
        fitted photos project exactly as without them (they lie in the fitted span), and
        photos added later keep what differs outside it instead of being flattened into it.

        ``novelty``: also fit the reference that tells photos unlike the catalog
        (:mod:`stylesearch.model.novelty`), with the same PCA refitted on folds of ``raw``.

        ``device``: where the arithmetic runs (a GPU indexing a catalog fits there); the
        random test matrix is drawn on the CPU, so every device fits the same basis (to float
        rounding)."""
        n, r = raw.shape
        k = max(1, min(dim, n - 1, r))
        x = torch.from_numpy(np.ascontiguousarray(raw, dtype=np.float32)).to(device)
        mean = x.mean(0)
        centered = x - mean
        if k + 10 < min(n, r):
            v = randomized_basis(centered, k + 10, seed)
        else:
            _, _, vh = torch.linalg.svd(centered.cpu(), full_matrices=False)
            v = vh.T.to(device)
        matrix = v[:, :k].contiguous()
        if whiten > 0:
            variance = (centered @ matrix).pow(2).mean(0).cpu().numpy()
            matrix = matrix * torch.from_numpy(whitening(variance, whiten, shrink, reference)).to(device)
        if pad and k < min(dim, r):
            fitted = v[:, :k].cpu()
            extra = torch.randn(r, min(dim, r) - k, generator=torch.Generator().manual_seed(seed))
            extra, _ = torch.linalg.qr(extra - fitted @ (fitted.T @ extra))
            matrix = torch.cat([matrix, extra.to(device) * matrix[:, -1].norm()], 1).contiguous()
        out = cls(matrix.cpu().numpy().astype(np.float32), (-(mean @ matrix)).cpu().numpy().astype(np.float32), "pca")
        if novelty:

            def refit(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
                part = cls.fit_pca(rows, dim, seed, pad=pad, device=device)  # the same span; whitening changes no distance
                assert part.matrix is not None
                return rows.mean(axis=0, dtype=np.float64), part.matrix, np.linalg.norm(part.matrix, axis=0)

            out.novelty = fit_reference(raw, refit, seed)
        return out

    def save(self, path: Path) -> None:
        arrays: dict[str, Any] = {"bias": self.bias, "kind": np.array(self.kind)}
        if self.matrix is not None:
            arrays["matrix"] = self.matrix
        if self.parts:
            arrays["parts"] = np.array(self.parts, np.float64)
        if self.query_weights:
            arrays["query_weights"] = np.array(json.dumps(self.query_weights))
        if self.labels:
            arrays["labels"] = np.array(json.dumps(list(self.labels)))
        if self.novelty is not None:
            arrays["novelty_mean"] = self.novelty.mean
            arrays["novelty_residuals"] = self.novelty.residuals
            arrays["novelty_distances"] = self.novelty.distances
        with path.open("wb") as fh:
            np.savez(fh, **arrays)

    @classmethod
    def load(cls, path: Path) -> Projection:
        try:
            with np.load(path, allow_pickle=False) as data:
                matrix = data["matrix"] if "matrix" in data.files else None
                parts = tuple((int(n), float(w)) for n, w in data["parts"]) if "parts" in data.files else None
                weights = json.loads(str(data["query_weights"])) if "query_weights" in data.files else {}
                query_weights = {str(k): tuple(float(x) for x in v) for k, v in weights.items()}
                labels = tuple(json.loads(str(data["labels"]))) if "labels" in data.files else ()
                novelty = None
                if "novelty_mean" in data.files:
                    novelty = Novelty(data["novelty_mean"], data["novelty_residuals"], data["novelty_distances"])
                projection = cls(matrix, data["bias"], str(data["kind"]), parts, query_weights, labels, novelty)
        except (OSError, KeyError, ValueError, TypeError, AttributeError) as exc:
            raise IndexCorruptError(f"cannot read projection {str(path)!r} ({exc}); rebuild the index") from exc
        n_parts = len(projection.parts or ())
        if any(len(w) != n_parts for w in projection.query_weights.values()):
            raise IndexCorruptError(f"projection {str(path)!r} has query weights that do not match its blocks; rebuild")
        if projection.parts and sum(n for n, _ in projection.parts) != projection.dim:
            raise IndexCorruptError(
                f"projection {str(path)!r} has blocks that do not add up to its {projection.dim} dims; rebuild"
            )
        return projection
