"""The one ingestion pipeline: reader → embed → fit projection on a sample → project → writer.

Shaped like clip-retrieval's runner: :func:`~stylesearch.model.embed.stream` is the reader +
mapper (images in a given order → batches of raw statistics or style vectors, failures with
their reasons; it lives with the embedder so that training, in ``model/``, can use it without
importing ``ingest/``), and every pass over many images runs it:

- :func:`run` — the local path of ``stylesearch index``: the seeded fit sample
  (:func:`fit_sample`) is embedded first, the PCA projection is fitted on exactly it
  (:func:`fit_projection`), everything after is projected as it comes; a writer
  (:class:`~stylesearch.ingest.checkpoint.IngestCheckpoint`) saves progress so that a killed
  run resumes;
- :mod:`stylesearch.ingest.ray` — the same sample, fit and projection, with the passes spread
  over Ray actors that each run :func:`embed_all`;
- evaluation and style summaries (:func:`~stylesearch.model.embed.embed_all` of query photos)
  and training's feature pass (:func:`~stylesearch.model.embed.stream` of raw statistics,
  plain and mirrored).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from ..config import IndexConfig
from ..copies import SIGNATURE_BYTES
from ..errors import CatalogError
from ..images import ImageInput
from ..model.embed import Embedder, stream
from ..model.projection import Projection
from ..results import Embedded
from ..stamps import Stamp
from .checkpoint import IngestCheckpoint

log = logging.getLogger(__name__)


@contextlib.contextmanager
def stage(stages: dict[str, float], name: str) -> Iterator[None]:
    """Add the wall time of the block to ``stages[name]`` (seconds)."""
    start = time.perf_counter()
    try:
        yield
    finally:
        stages[name] = stages.get(name, 0.0) + time.perf_counter() - start


def fit_sample(n: int, embedder: Embedder, options: IndexConfig) -> tuple[np.ndarray, np.ndarray]:
    """(the positions the PCA is fitted on — ``options.pca_sample`` of them, seeded, spread
    over the catalog, sorted — and every other position, sorted). Every image fits for
    ``dim 0``."""
    fit_n = n if embedder.config.dim == 0 else min(n, options.pca_sample)
    sample = np.sort(np.random.default_rng(options.seed).choice(n, size=fit_n, replace=False))
    return sample, np.setdiff1d(np.arange(n), sample, assume_unique=True)


def fit_projection(embedder: Embedder, raw_batches: list[np.ndarray]) -> None:
    """Give ``embedder`` the PCA projection of these raw statistics (identity for ``dim 0``)."""
    raw = np.concatenate(raw_batches)
    dim = embedder.config.dim
    if dim == 0:
        embedder.projection = Projection.identity(raw.shape[1])
        return
    t0 = time.perf_counter()
    config = embedder.config
    embedder.projection = Projection.fit_pca(
        raw, dim, whiten=config.whiten, shrink=config.whiten_shrink, pad=True, novelty=True, device=embedder.device
    )  # on a GPU, the fit (six randomised PCAs with the novelty reference's folds) runs there
    if raw.shape[0] <= dim:
        log.warning(
            "only %d images to fit the style projection, which needs more than %d (--dim) to fit every dimension: "
            "%d are fitted and the rest are fixed random directions, so that photos added later keep their "
            "differences. Index the catalog again once it has more than %d images to fit them all",
            raw.shape[0],
            dim,
            max(1, raw.shape[0] - 1),
            dim,
        )
    log.info(
        "fitted PCA %d -> %d on %d images in %.1f s",
        raw.shape[1],
        embedder.projection.dim,
        raw.shape[0],
        time.perf_counter() - t0,
    )


def nothing_read(sources: Sequence[Any], failures: Sequence[tuple[int, str]]) -> CatalogError:
    """The error of a run in which no image could be read, with the reasons (the first ten)."""
    return CatalogError(
        f"none of the {len(sources)} catalog images could be read:\n" + reasons([(str(sources[p]), r) for p, r in failures])
    )


def reasons(skipped: Sequence[tuple[str, str]], shown: int = 10) -> str:
    """``  path: reason`` lines, the first ``shown`` of them, and how many more."""
    lines = [f"  {path}: {reason}" for path, reason in sorted(skipped)[:shown]]
    if len(skipped) > shown:
        lines.append(f"  … and {len(skipped) - shown} more")
    return "\n".join(lines) or "  (no reason recorded)"


class _Collector:
    """The run's results so far: style vectors by catalog position, failures, and what the
    writer has not been given yet."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.vectors: np.ndarray | None = None
        self.ok = np.zeros(n, bool)
        self.failures: list[tuple[int, str]] = []
        self.pending: tuple[list[int], list[np.ndarray]] = ([], [])
        self.signatures = np.zeros((n, SIGNATURE_BYTES), np.uint8)  # copy signatures (stylesearch.copies)
        self.signed = np.zeros(n, bool)
        self.stamps: list[Stamp | None] = [None] * n  # file stamps (stylesearch.stamps), from the decoders

    def sign(self, batch: Embedded) -> None:
        if batch.signatures is not None and len(batch.positions):
            self.signatures[batch.positions] = batch.signatures
            self.signed[batch.positions] = True
        for position, stamp in zip(batch.positions.tolist(), batch.stamps or ()):
            self.stamps[position] = stamp

    def store(self, positions: Sequence[int], projected: np.ndarray, *, record: bool = True) -> None:
        if self.vectors is None:
            self.vectors = np.zeros((self.n, projected.shape[1]), np.float32)
        self.vectors[list(positions)] = projected
        self.ok[list(positions)] = True
        if record:
            self.pending[0].extend(positions)
            self.pending[1].append(projected)

    def take_pending(self, dim: int) -> tuple[np.ndarray, np.ndarray]:
        chunk = np.concatenate(self.pending[1]) if self.pending[1] else np.zeros((0, dim), np.float32)
        positions = np.array(self.pending[0], np.int64)
        self.pending[0].clear()
        self.pending[1].clear()
        return positions, chunk


def run(
    embedder: Embedder,
    sources: Sequence[ImageInput],
    options: IndexConfig,
    stages: dict[str, float],
    writer: IngestCheckpoint | None = None,
    resume: bool = False,
) -> Embedded:
    """Embed every source, streaming: the seeded fit sample first, the projection fitted on
    exactly it (unless the embedder has one), everything projected. With a ``writer``,
    progress is saved every ``options.checkpoint_every`` images and ``resume`` continues from
    the saved progress. Returns the style vectors float32 [M, D] of the positions that worked."""
    n = len(sources)
    sample, rest = fit_sample(n, embedder, options)
    fit_n = len(sample)
    order = np.concatenate([sample, rest])  # the fit sample first, then the rest in catalog order
    out = _Collector(n)
    fit: tuple[list[int], list[np.ndarray]] = ([], [])  # sampled images, waiting for the fit
    late: tuple[list[int], list[np.ndarray]] = ([], [])  # other images of the same batches
    seen = saved = 0

    def save(force: bool = False) -> None:
        nonlocal saved
        if writer is None or embedder.projection is None or (not force and seen - saved < options.checkpoint_every):
            return
        positions, chunk = out.take_pending(embedder.projection.dim)
        writer.save(seen, positions, chunk, out.failures, embedder.projection)
        saved = seen

    def fit_and_project(on: tuple[list[int], list[np.ndarray]]) -> None:
        with stage(stages, "fit_projection"):
            fit_projection(embedder, on[1])
        for positions, raw in (fit, late):
            if positions:
                out.store(positions, embedder.project(np.concatenate(raw)))
            positions.clear()
            raw.clear()

    if writer is not None:
        progress = writer.start(resume)
        if progress.seen:
            embedder.projection = progress.projection
            seen = saved = progress.seen
            out.failures = list(progress.failures)
            for chunk_positions, chunk_vectors in zip(progress.positions, progress.vectors):
                if len(chunk_positions):
                    out.store(chunk_positions.tolist(), chunk_vectors, record=False)
            log.info("resuming: %d of %d images already done", seen, n)
    start = seen
    for batch in stream(embedder, sources, order[start:], sign=True):
        out.sign(batch)
        out.failures += batch.failures
        seen += len(batch.positions) + len(batch.failures)
        positions = batch.positions.tolist()
        if batch.projected:
            if positions:
                out.store(positions, batch.values)
        elif embedder.projection is None:
            # exactly the sample fits the projection; other images in the same batch wait for it
            sampled = np.isin(batch.positions, sample)
            fit[0].extend(p for p, s in zip(positions, sampled) if s)
            fit[1].append(batch.values[sampled])
            late[0].extend(p for p, s in zip(positions, sampled) if not s)
            late[1].append(batch.values[~sampled])
            if seen >= fit_n and fit[0]:
                fit_and_project(fit)
        elif positions:
            out.store(positions, embedder.project(batch.values))
        save()
    if embedder.projection is None and (fit[0] or late[0]):
        fit_and_project(fit if fit[0] else late)  # every sampled image failed: fit on the others
    if out.vectors is None or not out.ok.any():
        raise nothing_read(sources, out.failures)
    save(force=True)
    positions = np.flatnonzero(out.ok)
    # a resumed run has no signatures of the images embedded before it stopped: none are kept
    # (the duplicate pass makes them from the files)
    signatures = out.signatures[positions] if out.signed[positions].all() else None
    stamps = [out.stamps[p] for p in positions.tolist()]  # None where a resumed run embedded it before
    return Embedded(positions, out.vectors[positions], sorted(out.failures), signatures=signatures, stamps=stamps)
