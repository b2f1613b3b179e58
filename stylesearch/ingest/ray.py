"""Embedding a catalog on Ray (``stylesearch index CATALOG --ray [ADDRESS]``).

Ray Data spreads the images over an actor pool; each actor loads the style model once
(``num_gpus=1`` per actor on GPU nodes) and turns batches of paths into statistics. The flow
and the results are the local path's (:func:`stylesearch.ingest.pipeline.run`):

1. the same seeded sample of ``pca_sample`` images is embedded first, its raw statistics
   come back to the driver, and the PCA projection is fitted there (skipped for a trained
   model, whose projection is given);
2. the actors get the projection and embed every other image straight to style vectors;
3. rows keep their order (``DataContext.execution_options.preserve_order``) and carry their
   catalog position anyway; failures come back with their reasons.

Ray is imported only here (the ``ray`` extra). A local instance is started bound to
127.0.0.1; ``ADDRESS`` (``ray://HOST:10001`` or ``HOST:6379``, or ``auto``) joins a cluster.
Checkpoint/resume is the local path's: a Ray job that fails is run again.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..catalog import Item
from ..config import EmbedConfig, IndexConfig, RunConfig
from ..errors import ConfigError, MissingDependencyError
from ..model.backbones import TunedBlocks
from ..model.embed import Embedder, embed_all
from ..model.projection import Projection
from ..results import Embedded
from .pipeline import fit_projection, fit_sample, nothing_read

log = logging.getLogger(__name__)

LOCAL = "local"


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise MissingDependencyError("Ray is not installed: pip install 'stylesearch[ray]'") from exc
    return ray


class _EmbedActor:
    """One model per actor; ``__call__`` maps a batch {position, path} → {position, values, error}."""

    def __init__(
        self,
        config: EmbedConfig,
        run: RunConfig,
        projection: Projection | None,
        tuned: TunedBlocks | None,
        threads: int,
    ) -> None:
        import torch

        torch.set_num_threads(max(1, threads))
        self.embedder = Embedder(config, run, projection, tuned)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        paths = [str(p) for p in batch["path"]]
        done = embed_all(self.embedder, paths, desc="ray")
        values = np.zeros((len(paths), done.values.shape[1]), np.float32)
        values[done.positions] = done.values
        errors = [""] * len(paths)
        for row, reason in done.failures:
            errors[row] = reason
        return {"position": np.asarray(batch["position"], np.int64), "values": values, "error": np.asarray(errors, dtype=object)}


def start(address: str | None, workers: int) -> Any:
    """Ray, initialised: a local instance on 127.0.0.1 with ``workers`` CPUs, or a cluster."""
    ray = _import_ray()
    for name in ("ray", "ray.data"):  # Ray's own INFO/WARNING chatter; errors still show
        logging.getLogger(name).setLevel(logging.ERROR)
    if ray.is_initialized():
        return ray
    quiet = {"log_to_driver": False, "logging_level": logging.ERROR}
    if address in (None, "", LOCAL):
        ray.init(num_cpus=workers, include_dashboard=False, _node_ip_address="127.0.0.1", **quiet)
    else:
        ray.init(address=address, **quiet)
    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True
    context.enable_progress_bars = sys.stderr.isatty()
    if hasattr(context, "print_on_execution_start"):
        context.print_on_execution_start = False
    return ray


def _run_pass(
    ray: Any,
    embedder: Embedder,
    items: Sequence[Item],
    positions: np.ndarray,
    projection: Projection | None,
    workers: int,
) -> tuple[np.ndarray, np.ndarray, list[tuple[int, str]]]:
    """Embed ``items[positions]`` on the actor pool: (ok positions, values, failures)."""
    if len(positions) == 0:
        width = embedder.raw_dim if projection is None else projection.dim
        return np.zeros(0, np.int64), np.zeros((0, width), np.float32), []
    gpus = 1 if embedder.device.type == "cuda" else 0
    cpus = float(ray.available_resources().get("CPU", workers))
    # Leave a little CPU to Ray Data's own tasks: a pool that takes every CPU starves them.
    per_actor = max(0.1, min(1.0, (cpus - 0.25) / workers))
    rows = [{"position": int(p), "path": str(items[int(p)].path)} for p in positions]
    dataset = ray.data.from_items(rows, override_num_blocks=max(workers, min(len(rows) // 64, 4 * workers)))
    out = dataset.map_batches(
        _EmbedActor,
        fn_constructor_kwargs={
            "config": embedder.config,
            "run": RunConfig(
                device=embedder.run.device,
                batch_size=embedder.run.batch_size,
                workers=0,
                progress=False,
                precision=embedder.run.precision,
            ),
            "projection": projection,
            "tuned": embedder.tuned,
            "threads": max(1, int(round(per_actor))),
        },
        batch_size=embedder.run.batch_size,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=workers),
        num_cpus=per_actor,
        num_gpus=gpus,
    )
    got_positions, got_values, failures = [], [], []
    for batch in out.iter_batches(batch_size=None, batch_format="numpy"):
        errors = batch["error"]
        ok = np.array([not e for e in errors], bool)
        got_positions.append(batch["position"][ok])
        got_values.append(batch["values"][ok])
        failures += [(int(p), str(e)) for p, e in zip(batch["position"][~ok], errors[~ok])]
    pos = np.concatenate(got_positions) if got_positions else np.zeros(0, np.int64)
    values = np.concatenate(got_values) if got_values else np.zeros((0, 1), np.float32)
    return pos, values, failures


def embed_catalog(
    embedder: Embedder,
    items: Sequence[Item],
    options: IndexConfig,
    stages: dict[str, float],
    address: str | None = None,
    workers: int | None = None,
) -> Embedded:
    """Like :func:`stylesearch.ingest.pipeline.run`: the style vectors float32 [M, D] of the
    catalog positions that worked, in catalog order, and the failures; fits
    ``embedder.projection`` when it has none."""
    workers = workers or max(1, (os.cpu_count() or 1))
    if workers < 1:
        raise ConfigError(f"--ray-workers must be >= 1, got {workers}")
    ray = start(address, workers)
    n = len(items)
    sample, rest = fit_sample(n, embedder, options)  # the local path's sample and fit, unchanged
    failures: list[tuple[int, str]] = []
    parts: list[tuple[np.ndarray, np.ndarray]] = []
    todo = np.arange(n)
    if embedder.projection is None:
        raw_pos, raw, failed = _run_pass(ray, embedder, items, sample, None, workers)
        failures += failed
        t0 = time.perf_counter()
        if len(raw_pos):
            fit_projection(embedder, [raw])
            parts.append((raw_pos, embedder.project(raw)))
        stages["fit_projection"] = stages.get("fit_projection", 0.0) + time.perf_counter() - t0
        todo = rest
    if embedder.projection is not None:
        pos, vectors, failed = _run_pass(ray, embedder, items, todo, embedder.projection, workers)
        failures += failed
        parts.append((pos, vectors))
    if not parts or not sum(len(p) for p, _ in parts):
        raise nothing_read([item.path for item in items], failures)
    positions = np.concatenate([p for p, _ in parts])
    vectors = np.concatenate([v for _, v in parts])
    order = np.argsort(positions, kind="stable")
    return Embedded(positions[order], vectors[order].astype(np.float32), sorted(failures))


def shutdown() -> None:
    """Stop the Ray instance this process started (no-op without Ray)."""
    try:
        import ray
    except ImportError:
        return
    if ray.is_initialized():
        ray.shutdown()
