"""From images to style vectors: backbone → style statistics → projection.

:class:`Embedder` is what the engine talks to. Its runtime (:mod:`.runtimes`) computes raw
statistics in batches (``raw``); its reader (:mod:`.reader`) decodes a whole list of images
batch by batch (``iter_raw``); ``project`` makes style vectors. Every "some images embedded,
some failed" answer is a :class:`~stylesearch.results.Embedded`.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from typing import TypeVar

import numpy as np
import torch
from torch import nn

from ..config import DEFAULT_IMAGE_SIZE, EmbedConfig, RunConfig
from ..copies import SIGNATURE_BYTES, THUMB, thumbnails
from ..errors import ConfigError, ImageError
from ..images import Batch, ImageInput, describe, load_tensor, read_source
from ..results import Embedded
from ..stamps import Stamp
from .backbones import Backbone, TunedBlocks, create_backbone
from .bundle import ModelBundle
from .fetch import Fetch
from .projection import Projection
from .reader import Reader
from .runtimes import IR, Product, Runtime, Target, create_runtime
from .runtimes.openvino import CALIBRATION_IMAGES
from .statistics import StyleStatistics

log = logging.getLogger(__name__)
T = TypeVar("T")


NOVELTY_ROWS = 256  # batches up to this many rows get their novelty measured (queries; catalog batches are smaller too)
FEW_ROWS = 16  # up to this many rows, the runtime's own projection product (int8: OpenVINO); torch's GEMM above


def resolve_device(device: str) -> torch.device:
    """``auto`` → CUDA when available, else CPU; ``cuda`` without a GPU is an error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("--device cuda was asked for but no CUDA GPU is visible: use --device cpu or auto")
    return torch.device(device)


def cpu_micro_batch(image_size: int) -> int:
    """Images per forward pass on CPU. Measured on a 2-core x86 machine, per-image speed
    peaks near 16 images at 128 px and falls by half or more with 32+ images at 224 px
    (the activations no longer fit in cache), so keep about 16×128² pixels per pass."""
    return max(1, (16 * 128 * 128) // (image_size * image_size))


def _signatures(images: torch.Tensor) -> torch.Tensor:
    """Copy signatures uint8 [B, S] (:func:`stylesearch.copies.thumbnails`) of a decoded batch,
    pooled where the batch is (on a GPU only the 3 KB thumbnails cross to the CPU)."""
    if images.device.type == "cpu":
        return torch.from_numpy(thumbnails(images.numpy()))
    pooled = torch.nn.functional.adaptive_avg_pool2d(images.float(), THUMB).round().clamp(0, 255).to(torch.uint8)
    return pooled.reshape(len(images), -1)


class StyleModel(nn.Module):
    """uint8 RGB [B, 3, S, S] → raw style statistics float32 [B, R]."""

    def __init__(self, backbone: Backbone, config: EmbedConfig) -> None:
        super().__init__()
        self.backbone = backbone
        self.style_layers = tuple(config.layers or backbone.default_style_layers)
        self.pool_layer = config.pool_layer or backbone.default_pool_layer
        backbone.check_layers(self.style_layers + (self.pool_layer,))
        self.stats = StyleStatistics(
            config.recipe, [backbone.channels(n) for n in self.style_layers], backbone.channels(self.pool_layer)
        )
        self.uses_style, self.uses_pool = self.stats.uses_style, self.stats.uses_pool
        self.raw_dim = self.stats.dims

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        layers = (self.style_layers if self.uses_style else ()) + ((self.pool_layer,) if self.uses_pool else ())
        maps = self.backbone.features(images, layers)
        style_maps = maps[: len(self.style_layers)] if self.uses_style else []
        pool_map = maps[-1] if self.uses_pool else None
        return self.stats(style_maps, pool_map)


class Embedder:
    """Holds the style model on its device and an optional projection."""

    def __init__(
        self,
        config: EmbedConfig,
        run: RunConfig | None = None,
        projection: Projection | None = None,
        tuned: TunedBlocks | None = None,
        int8: IR | None = None,
    ) -> None:
        self.config = config if config.image_size else replace(config, image_size=DEFAULT_IMAGE_SIZE)
        config = self.config
        self.run = run or RunConfig()
        if int8 is not None:  # an index embedded in int8 is queried with the same model
            self.run = replace(self.run, precision="int8")
        self.device = resolve_device(self.run.device)
        self.tuned = tuned  # backbone blocks tuned by training, laid over config.weights
        backbone = create_backbone(config.backbone, config.weights)
        if tuned is not None:
            backbone.load_tuned(tuned)
        backbone.fuse_for_inference()
        # channels_last is faster on CUDA and, measured, ~20% faster on CPU too.
        self.model = StyleModel(backbone, config).to(self.device).eval().to(memory_format=torch.channels_last)
        self._projection: Projection | None = None
        self.projection = projection
        target = Target(self.model, self.device, self.run, config, self.weights_id, int8)
        self.runtime: Runtime = create_runtime(self.run.engine, target)
        self.reader = Reader(self.run, self.device, config.image_size)
        cpu = cpu_micro_batch(config.image_size) * self.runtime.batch_scale
        self.micro_batch = self.run.batch_size if self.device.type == "cuda" else cpu

    @classmethod
    def from_bundle(cls, bundle: ModelBundle, run: RunConfig | None = None) -> Embedder:
        """The embedder of a model bundle: its recipe, tuned blocks, projection and, for an
        int8 index, its quantised model."""
        return cls(bundle.embed, run, bundle.projection, bundle.tuned, bundle.int8)

    @property
    def needs_calibration(self) -> bool:
        """Whether the runtime still waits for :meth:`calibrate` (int8, on the catalog's photos)."""
        return not self.runtime.ready

    def calibrate(self, sources: Sequence[ImageInput], seed: int = 0) -> None:
        """Calibrate the runtime (int8 quantisation) on a seeded sample of ``sources`` (up to
        :data:`~stylesearch.model.runtimes.openvino.CALIBRATION_IMAGES` readable photos)."""
        rng = np.random.default_rng(seed)
        order = rng.permutation(len(sources))[: CALIBRATION_IMAGES * 2]
        images: list[torch.Tensor] = []
        for i in order.tolist():
            with contextlib.suppress(ImageError):
                images.append(load_tensor(sources[i], self.config.image_size))
            if len(images) == CALIBRATION_IMAGES:
                break
        if not images:
            raise ConfigError("int8 calibration needs at least one readable photo")
        self.runtime.calibrate(images)

    def describe_runtime(self) -> str:
        """What computes the statistics, e.g. ``openvino int8`` or ``torch fp32 on cpu``."""
        return self.runtime.describe()

    @property
    def projection(self) -> Projection | None:
        """Raw statistics → style vectors. An int8 embedder keeps it on an int8 grid
        (:meth:`Projection.on_int8_grid`), so that its index and its queries, whichever
        engine multiplies them, are projected by the same numbers."""
        return self._projection

    @projection.setter
    def projection(self, projection: Projection | None) -> None:
        if projection is not None and self.run.precision == "int8":
            projection = projection.on_int8_grid()
        self._projection = projection

    @property
    def weights_id(self) -> str:
        return self.model.backbone.weights_id

    @property
    def raw_dim(self) -> int:
        return self.model.raw_dim

    @property
    def dim(self) -> int:
        if self.projection is None:
            raise ConfigError("this embedder has no projection yet: fit one on the catalog first")
        return self.projection.dim

    @torch.inference_mode()
    def raw(self, images: torch.Tensor) -> np.ndarray:
        """uint8 [B, 3, S, S] → raw statistics float32 [B, R]."""
        if images.shape[0] == 0:
            return np.zeros((0, self.raw_dim), np.float32)
        out = self._statistics(images).cpu().numpy()
        if not self.runtime.may_overflow or np.isfinite(out).all():
            return out
        return self._exactly(lambda: self._statistics(images).cpu().numpy())

    def _exactly(self, compute: Callable[[], T]) -> T:
        """``compute()`` again with the runtime in fp32: a batch whose reduced-precision
        (fp16) activations overflowed, which a check of its fetched results found."""
        log.warning("the %s arithmetic overflowed on a batch; computed it in fp32 instead", self.describe_runtime())
        self.runtime.exact = True
        try:
            return compute()
        finally:
            self.runtime.exact = False

    def _statistics(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 [B >= 1, 3, S, S] → raw statistics float32 [B, R], left on the device."""
        if not self.runtime.ready:
            raise ConfigError("int8 needs calibrating on the catalog's photos first (Embedder.calibrate)")
        outs = []
        for chunk in images.split(self.micro_batch):
            x = chunk.to(self.device, non_blocking=True)
            stats = self.runtime(x)
            if self.config.tta == "flip":  # the mirror image's statistics, averaged in
                stats = (stats + self.runtime(x.flip(-1))) / 2
            outs.append(stats)
        return torch.cat(outs)

    def project(self, raw: np.ndarray | torch.Tensor) -> np.ndarray:
        """float32 [N, R] → style vectors float32 [N, D], L2-normalised."""
        return self.project_measured(raw, measure=False)[0]

    def project_measured(self, raw: np.ndarray | torch.Tensor, measure: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
        """:meth:`project`, and (``measure``, up to :data:`NOVELTY_ROWS` rows: queries) each
        row's novelty p-values float64 [N, 2] (:mod:`stylesearch.model.novelty`; ``None``
        without a reference)."""
        if self.projection is None:
            raise ConfigError("this embedder has no projection yet: fit one on the catalog first")
        product = self._product() if len(raw) <= FEW_ROWS else None
        if not measure or len(raw) > NOVELTY_ROWS:
            return self.projection.apply(raw, product), None
        return self.projection.apply_measured(raw, product)

    def _product(self) -> Product | None:
        """The runtime's own product for a query's few rows (int8: OpenVINO with int8 weights), if any."""
        projection = self.projection
        if projection is None or projection.matrix is None:
            return None
        return self.runtime.projection_product(projection.matrix, projection.bias)

    def iter_raw(
        self,
        sources: Sequence[ImageInput],
        *,
        desc: str = "embedding",
        flip: bool = False,
        project: bool = False,
        sign: bool = False,
    ) -> Iterator[Embedded]:
        """Decode (:class:`~stylesearch.model.reader.Reader`) and compute raw statistics batch
        by batch; images that fail to decode come back in ``failures`` with the reason.

        ``project``: once the embedder has a projection (it may get one between batches),
        batches come as style vectors (``projected``), computed on the device — on a GPU
        the statistics (113 KB per image at 128 px) then never cross to the CPU. ``sign``:
        also the copy signatures of the same decoded pixels and the stamps of the same bytes
        (what an index stores). Each batch comes once the next one is queued on the device
        (:mod:`.fetch`: a GPU computes while the caller handles a batch)."""
        show = self.run.progress if self.run.progress is not None else sys.stderr.isatty()
        from tqdm.auto import tqdm

        with tqdm(total=len(sources), desc=desc, unit="img", disable=not show, leave=False) as bar:
            pending: tuple[Batch, Fetch] | None = None
            for batch in self.reader.read(sources, flip, stamped=sign):
                current = (batch, self._embedded(batch, project, sign))
                if pending is not None:
                    yield self._settled(*pending, project, sign)
                pending = current
                bar.update(len(batch.positions) + len(batch.failures))
            if pending is not None:
                yield self._settled(*pending, project, sign)

    def _settled(self, batch: Batch, fetch: Fetch, project: bool, sign: bool) -> Embedded:
        """A fetched batch, checked: one with a non-finite value (fp16 overflow) is computed
        again in fp32 (checked here, on the CPU, so that the device never waits for a check)."""
        done = fetch.result()
        if not self.runtime.may_overflow or np.isfinite(done.values).all():
            return done
        return self._exactly(lambda: self._embedded(batch, project, sign).result())

    @torch.inference_mode()
    def _embedded(self, batch: Batch, project: bool, sign: bool) -> Fetch:
        projection = self.projection if project else None
        if not batch.positions:
            width = self.raw_dim if projection is None else projection.dim
            return Fetch([], torch.zeros((0, width)), batch.failures, projection is not None)
        stats = self._statistics(batch.images)
        if projection is None:
            values = stats
        elif stats.is_cuda:  # projected on the device, fetched without waiting
            values = projection.apply_tensor(stats)
        else:
            values = torch.from_numpy(self.project(stats))
        signatures = _signatures(batch.images) if sign else None
        stamps = [batch.stamps.get(p) for p in batch.positions] if sign else None
        return Fetch(batch.positions, values, batch.failures, projection is not None, signatures, stamps)

    def embed_lenient(self, images: Sequence[ImageInput], *, sign: bool = False) -> Embedded:
        """Decode and embed in-memory inputs (paths, bytes or PIL images) in the calling
        process: the style vectors of those that worked, and why the others failed; ``sign``:
        their copy signatures and file stamps too (what ``add`` and ``sync`` store)."""
        size = self.config.image_size
        positions: list[int] = []
        tensors: list[torch.Tensor] = []
        stamps: list[Stamp | None] = []
        failures: list[tuple[int, str]] = []
        for i, image in enumerate(images):
            try:
                source, stamp = read_source(image, sign)
                tensors.append(load_tensor(source, size))
                positions.append(i)
                stamps.append(stamp)
            except ImageError as exc:
                failures.append((i, str(exc)))
        chunks = [
            self.project_measured(self.raw(torch.stack(tensors[start : start + self.run.batch_size])))
            for start in range(0, len(tensors), self.run.batch_size)
        ]
        vectors = np.concatenate([v for v, _ in chunks]) if chunks else np.zeros((0, self.dim), np.float32)
        measured = [p for _, p in chunks]
        novelty = np.concatenate(measured) if measured and all(p is not None for p in measured) else None
        signatures = None
        if sign:
            signatures = thumbnails(torch.stack(tensors).numpy()) if tensors else np.zeros((0, SIGNATURE_BYTES), np.uint8)
        kept = stamps if sign else None
        return Embedded(np.asarray(positions, np.int64), vectors, failures, novelty=novelty, signatures=signatures, stamps=kept)

    def embedded(self, images: Sequence[ImageInput]) -> Embedded:
        """Like :meth:`embed_lenient`, but all-or-nothing: every image's vector, or
        :class:`ImageError` naming the first bad input."""
        done = self.embed_lenient(images)
        if (first := done.first_failure()) is not None:
            position, reason = first
            raise ImageError(f"image {position + 1} of {len(images)} ({describe(images[position])}): {reason}")
        return done

    def embed(self, images: Sequence[ImageInput]) -> np.ndarray:
        """:meth:`embedded`'s style vectors: float32 [N, D]."""
        return self.embedded(images).values


def stream(
    embedder: Embedder,
    sources: Sequence[ImageInput],
    order: Sequence[int] | np.ndarray | None = None,
    *,
    project: bool = True,
    flip: bool = False,
    desc: str = "embedding",
    sign: bool = False,
) -> Iterator[Embedded]:
    """Decode and embed ``sources[order]`` (all, in order, by default), batch by batch; each
    batch's positions index ``sources``. ``project``: batches come as style vectors once the
    embedder has a projection (it may get one between batches); ``flip``: the mirrored images;
    ``sign``: with their copy signatures."""
    order = np.arange(len(sources)) if order is None else np.asarray(order, np.int64)
    for batch in embedder.iter_raw([sources[int(i)] for i in order], desc=desc, flip=flip, project=project, sign=sign):
        failures = [(int(order[p]), r) for p, r in batch.failures]
        yield Embedded(
            order[batch.positions], batch.values, failures, batch.projected, signatures=batch.signatures, stamps=batch.stamps
        )


def embed_all(embedder: Embedder, sources: Sequence[ImageInput], *, project: bool = True, desc: str = "embedding") -> Embedded:
    """:func:`stream` collected: every source's style vector (raw statistics without a
    projection, or with ``project=False``)."""
    width = embedder.projection.dim if project and embedder.projection is not None else embedder.raw_dim
    values = np.zeros((len(sources), width), np.float32)
    ok = np.zeros(len(sources), bool)
    failures: list[tuple[int, str]] = []
    projected = project and embedder.projection is not None
    for batch in stream(embedder, sources, project=project, desc=desc):
        values[batch.positions] = batch.values
        ok[batch.positions] = True
        failures += batch.failures
    positions = np.flatnonzero(ok)
    return Embedded(positions, values[positions], sorted(failures), projected)
