"""From images to style vectors: backbone → style statistics → projection.

:class:`Embedder` is what the engine talks to. It computes raw statistics in batches
(``raw``), streams them for a whole list of images with decoding in DataLoader workers
(``iter_raw``), and projects them (``project``).
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import logging
import os
import sys
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from torch import nn

from ..config import EmbedConfig, RunConfig
from ..errors import ConfigError, ImageError
from ..images import Batch, ImageDataset, ImageInput, collate, decode_encoded, describe, load_tensor
from . import engines
from .backbones import Backbone, TunedBlocks, create_backbone
from .bundle import ModelBundle
from .projection import Projection
from .statistics import StyleStatistics

log = logging.getLogger(__name__)


NOVELTY_ROWS = 256  # batches up to this many rows get their novelty measured (queries; catalog batches are smaller too)
NOVELTY_KEPT = 16384  # the most vectors whose novelty is kept for Embedder.novelty
FEW_ROWS = 16  # up to this many rows, int8's compiled projection (engines.OpenVINOLinear); torch's GEMM above


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


def _lower_priority(_worker_id: int) -> None:
    """Decoding workers yield the CPU to the forward pass. On a machine whose cores the
    backbone keeps busy, a worker at equal priority preempts one of the backbone's OpenMP
    threads and stalls the others at the next barrier; at low priority it decodes in the gaps."""
    with contextlib.suppress(OSError):
        os.nice(19)


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


@dataclass
class RawBatch:
    positions: list[int]
    raw: np.ndarray  # float32 [B, R]; style vectors [B, D] when ``projected``
    failures: list[tuple[int, str]]
    projected: bool = False


class Embedder:
    """Holds the style model on its device and an optional projection."""

    def __init__(
        self,
        config: EmbedConfig,
        run: RunConfig | None = None,
        projection: Projection | None = None,
        tuned: TunedBlocks | None = None,
        int8: engines.IR | None = None,
    ) -> None:
        self.config = config
        self.run = run or RunConfig()
        if int8 is not None:  # an index embedded in int8 is queried with the same model
            self.run = replace(self.run, precision="int8")
        self.device = resolve_device(self.run.device)
        self.engine = engines.resolve_engine(self.run.engine, self.device, self.run.precision)
        self.tuned = tuned  # backbone blocks tuned by training, laid over config.weights
        backbone = create_backbone(config.backbone, config.weights)
        if tuned is not None:
            backbone.load_tuned(tuned)
        backbone.fuse_for_inference()
        # channels_last is faster on CUDA and, measured, ~20% faster on CPU too.
        self.model = StyleModel(backbone, config).to(self.device).eval().to(memory_format=torch.channels_last)
        self._projection: Projection | None = None
        self.projection = projection
        self.micro_batch = self.run.batch_size if self.device.type == "cuda" else cpu_micro_batch(config.image_size)
        self.int8 = int8  # the quantised OpenVINO model (int8 only; set by calibrate for a new index)
        self._runner: engines.Runner | None = None
        self._linear: tuple[Projection, engines.OpenVINOLinear] | None = None  # the projection's product, compiled
        self._novel: collections.OrderedDict[bytes, np.ndarray] = collections.OrderedDict()  # vector → novelty p-values
        self._novel_lock = threading.Lock()
        if self.engine == "torch":
            self._runner = self._torch_forward
        else:
            self.micro_batch *= 2  # split between OpenVINO's streams (engines.OpenVINORunner)
            if self.run.precision != "int8" or int8 is not None:
                self._runner = self._openvino(int8)

    @classmethod
    def from_bundle(cls, bundle: ModelBundle, run: RunConfig | None = None) -> Embedder:
        """The embedder of a model bundle: its recipe, tuned blocks, projection and, for an
        int8 index, its quantised model."""
        return cls(bundle.embed, run, bundle.projection, bundle.tuned, bundle.int8)

    # ---------------------------------------------------------------- engines

    def _torch_forward(self, images: torch.Tensor) -> torch.Tensor:
        with self._autocast():
            return self.model(images.contiguous(memory_format=torch.channels_last)).float()

    def _openvino(self, int8: engines.IR | None) -> engines.OpenVINORunner:
        model = int8 or engines.cached_model(self.model, self.weights_id, self.config.to_dict(), self.config.image_size)
        precision = "bf16" if self.run.precision == "bf16" else "fp32"
        return engines.OpenVINORunner(model, precision, threads=torch.get_num_threads())

    @property
    def needs_calibration(self) -> bool:
        """Whether int8 still waits for :meth:`calibrate` (on the catalog's own photos)."""
        return self._runner is None

    def calibrate(self, sources: Sequence[ImageInput], seed: int = 0) -> None:
        """Quantise the style model to int8 on a seeded sample of ``sources`` (up to
        :data:`~stylesearch.model.engines.CALIBRATION_IMAGES` readable photos); the result is
        cached by model and sample, and becomes this embedder's engine."""
        rng = np.random.default_rng(seed)
        order = rng.permutation(len(sources))[: engines.CALIBRATION_IMAGES * 2]
        images: list[torch.Tensor] = []
        for i in order.tolist():
            with contextlib.suppress(ImageError):
                images.append(load_tensor(sources[i], self.config.image_size))
            if len(images) == engines.CALIBRATION_IMAGES:
                break
        sample = hashlib.sha256(b"".join(t.numpy().tobytes()[:4096] for t in images)).hexdigest()[:12]
        key = engines.model_key(self.weights_id, self.config.to_dict(), self.config.image_size)
        cached = engines.cache_dir() / f"style-{key}-int8-{len(images)}-{sample}.xml"
        self.int8 = engines.quantize(self.model, self.config.image_size, images, cached)
        self._runner = self._openvino(self.int8)

    def describe_engine(self) -> str:
        """What computes the statistics, e.g. ``openvino int8`` or ``torch fp32 on cpu``."""
        if self.engine == "openvino":
            if self.run.precision == "int8":
                return "openvino int8"
            return "openvino " + ("bf16" if "bf16" in getattr(self._runner, "precision", "") else "fp32")
        precision = self.run.precision if self.run.precision != "auto" else ("bf16" if self.device.type == "cuda" else "fp32")
        return f"torch {precision} on {self.device}"

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

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        """The backbone's precision (``run.precision``); style statistics stay float32."""
        precision = self.run.precision
        if self.device.type == "cuda" and precision != "fp32":
            dtype = torch.bfloat16 if precision == "bf16" or torch.cuda.is_bf16_supported() else torch.float16
            return torch.autocast("cuda", dtype=dtype)
        if self.device.type == "cpu" and precision == "bf16":
            return torch.autocast("cpu", dtype=torch.bfloat16)
        return nullcontext()

    @torch.inference_mode()
    def raw(self, images: torch.Tensor) -> np.ndarray:
        """uint8 [B, 3, S, S] → raw statistics float32 [B, R]."""
        if images.shape[0] == 0:
            return np.zeros((0, self.raw_dim), np.float32)
        return self._statistics(images).cpu().numpy()

    def _statistics(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 [B >= 1, 3, S, S] → raw statistics float32 [B, R], left on the device."""
        if self._runner is None:
            raise ConfigError("int8 needs calibrating on the catalog's photos first (Embedder.calibrate)")
        outs = []
        for chunk in images.split(self.micro_batch):
            x = chunk.to(self.device, non_blocking=True)
            stats = self._runner(x)
            if self.config.tta == "flip":  # the mirror image's statistics, averaged in
                stats = (stats + self._runner(x.flip(-1))) / 2
            outs.append(stats)
        return torch.cat(outs)

    def project(self, raw: np.ndarray) -> np.ndarray:
        """float32 [N, R] → style vectors float32 [N, D], L2-normalised. A few rows (queries)
        also get their novelty measured, kept for :meth:`novelty`."""
        if self.projection is None:
            raise ConfigError("this embedder has no projection yet: fit one on the catalog first")
        if len(raw) > NOVELTY_ROWS:
            return self.projection.apply(raw)
        vectors, p_values = self.projection.apply_measured(raw, self._projection_product() if len(raw) <= FEW_ROWS else None)
        if p_values is not None:
            with self._novel_lock:
                for row, p in zip(vectors, p_values):
                    self._novel[row.tobytes()] = p
                    if len(self._novel) > NOVELTY_KEPT:
                        self._novel.popitem(last=False)
        return vectors

    def novelty(self, vectors: np.ndarray) -> np.ndarray | None:
        """The novelty p-values float64 [N, 2] (:mod:`stylesearch.model.novelty`) of style
        vectors this embedder made recently from photos (NaN rows for others, e.g. stored
        items'); ``None`` when it has none of them (a projection without a reference)."""
        with self._novel_lock:
            found = [self._novel.get(np.asarray(v, np.float32).tobytes()) for v in vectors]
        if all(f is None for f in found):
            return None
        return np.array([f if f is not None else (np.nan, np.nan) for f in found], np.float64)

    def _projection_product(self) -> engines.OpenVINOLinear | None:
        """For an int8 index (OpenVINO), the projection's matrix product compiled with int8
        weights, built once per projection; ``None`` otherwise (in float32 OpenVINO's product
        is no faster than torch's, measured with the model's runs in between)."""
        projection = self.projection
        if self.run.precision != "int8" or projection is None or projection.matrix is None:
            return None
        if self._linear is None or self._linear[0] is not projection:
            product = engines.OpenVINOLinear(projection.matrix.T, projection.bias, threads=torch.get_num_threads())
            self._linear = (projection, product)
        return self._linear[1]

    def iter_raw(
        self, sources: Sequence[ImageInput], *, desc: str = "embedding", flip: bool = False, project: bool = False
    ) -> Iterator[RawBatch]:
        """Decode and compute raw statistics batch by batch; images that fail to decode come
        back in ``failures`` with the reason. How decoding runs is :meth:`_batches`.

        ``project``: once the embedder has a projection (it may get one between batches),
        batches come as style vectors (``projected``), computed on the device — on a GPU
        the statistics (113 KB per image at 128 px) then never cross to the CPU."""
        show = self.run.progress if self.run.progress is not None else sys.stderr.isatty()
        from tqdm.auto import tqdm

        size = self.config.image_size
        dataset = ImageDataset(sources, size, flip=flip, encoded=self.decodes_on_device)
        with tqdm(total=len(sources), desc=desc, unit="img", disable=not show, leave=False) as bar:
            for batch in self._decoded(dataset, flip):
                yield self._raw_batch(batch, project)
                bar.update(len(batch.positions) + len(batch.failures))

    def _decoded(self, dataset: ImageDataset, flip: bool) -> Iterator[Batch]:
        """:meth:`_batches` with their plain JPEGs decoded on the device. That decoding runs in
        a thread two batches ahead of the forward pass: nvJPEG decodes small images' entropy
        coding on the calling CPU thread, which would otherwise stall the GPU."""
        if not dataset.encoded:
            yield from self._batches(dataset)
            return
        size = self.config.image_size
        # On a GPU the decoder gets its own CUDA stream, so that its kernels need not wait for
        # the forward pass's (one stream would serialise them); an event orders the two.
        stream = torch.cuda.Stream(self.device) if self.device.type == "cuda" else None

        def decode(batch: Batch) -> tuple[Batch, Any]:
            if stream is None:
                return decode_encoded(batch, size, self.device, flip=flip), None
            with torch.cuda.stream(stream):
                decoded = decode_encoded(batch, size, self.device, flip=flip)
                done = torch.cuda.Event()
                done.record(stream)
            return decoded, done

        def ready(batch: Batch, done: Any) -> Batch:
            if done is not None:
                current = torch.cuda.current_stream(self.device)
                current.wait_event(done)
                if batch.images.is_cuda:
                    batch.images.record_stream(current)  # freed memory is reused only after this stream's use
            return batch

        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="device-decode") as pool:
            ahead: collections.deque[Future[tuple[Batch, Any]]] = collections.deque()
            for batch in self._batches(dataset):
                ahead.append(pool.submit(decode, batch))
                if len(ahead) > 2:
                    yield ready(*ahead.popleft().result())
            while ahead:
                yield ready(*ahead.popleft().result())

    @torch.inference_mode()
    def _raw_batch(self, batch: Batch, project: bool) -> RawBatch:
        projection = self.projection if project else None
        if not batch.positions:
            width = self.raw_dim if projection is None else projection.dim
            return RawBatch([], np.zeros((0, width), np.float32), batch.failures, projection is not None)
        stats = self._statistics(batch.images)
        values = stats.cpu().numpy() if projection is None else self.project(stats)
        return RawBatch(batch.positions, values, batch.failures, projection is not None)

    @property
    def decodes_on_device(self) -> bool:
        """Whether plain JPEGs are decoded by the model's device in batches (``run.decode``:
        ``auto`` means on a CUDA device, where nvJPEG outruns CPU decoding; see
        :func:`~stylesearch.images.decode_jpegs`)."""
        if self.run.decode == "auto":
            return self.device.type == "cuda"
        return self.run.decode == "device"

    def decode_workers(self) -> int:
        """Resolved ``run.workers``: ``-1`` (auto) means DataLoader worker processes on CUDA
        (decoding overlaps the GPU) and in-process decoding threads on CPU."""
        if self.run.workers >= 0:
            return self.run.workers
        return min(8, os.cpu_count() or 1) if self.device.type == "cuda" else 0

    def _batches(self, dataset: ImageDataset) -> Iterator[Batch]:
        """Decoded batches, in order.

        - ``workers > 0``: DataLoader worker processes decode ahead, overlapping compute (at
          low priority, see :func:`_lower_priority`).
        - ``workers == 0``: each batch is decoded by a pool of ``torch.get_num_threads()``
          threads (PIL and torch release the GIL), between forward passes. When the CPU also
          runs the model this is measurably faster than worker processes: every core decodes,
          then every core computes, and no decoder preempts the backbone's threads.
        """
        n, size = len(dataset), self.run.batch_size
        workers = min(self.decode_workers(), max(1, n // size))
        if workers > 0:
            yield from torch.utils.data.DataLoader(
                dataset,
                batch_size=size,
                shuffle=False,
                num_workers=workers,
                collate_fn=collate,
                pin_memory=self.device.type == "cuda",
                prefetch_factor=4,
                persistent_workers=False,
                worker_init_fn=_lower_priority,
            )
            return
        with ThreadPoolExecutor(max_workers=max(1, torch.get_num_threads()), thread_name_prefix="decode") as pool:
            # Decoding the next batch during the forward pass was measured too, with OpenVINO
            # (which computes outside the GIL): 15 % fewer images/s, its threads preempted.
            for start in range(0, n, size):
                yield collate(list(pool.map(dataset.__getitem__, range(start, min(n, start + size)))))

    def embed_lenient(self, images: Sequence[ImageInput]) -> tuple[list[int], np.ndarray, list[tuple[int, str]]]:
        """Decode and embed in-memory inputs (paths, bytes or PIL images) in the calling
        process. Returns (positions that worked, their vectors float32 [M, D], failures as
        (position, reason))."""
        size = self.config.image_size
        positions: list[int] = []
        tensors: list[torch.Tensor] = []
        failures: list[tuple[int, str]] = []
        for i, image in enumerate(images):
            try:
                tensors.append(load_tensor(image, size))
                positions.append(i)
            except ImageError as exc:
                failures.append((i, str(exc)))
        chunks = [
            self.project(self.raw(torch.stack(tensors[start : start + self.run.batch_size])))
            for start in range(0, len(tensors), self.run.batch_size)
        ]
        vectors = np.concatenate(chunks) if chunks else np.zeros((0, self.dim), np.float32)
        return positions, vectors, failures

    def embed(self, images: Sequence[ImageInput]) -> np.ndarray:
        """Like :meth:`embed_lenient`, but all-or-nothing: float32 [N, D], or
        :class:`ImageError` naming the first bad input."""
        _, vectors, failures = self.embed_lenient(images)
        if failures:
            position, reason = failures[0]
            raise ImageError(f"image {position + 1} of {len(images)} ({describe(images[position])}): {reason}")
        return vectors


@dataclass
class EmbeddedBatch:
    """One batch out of :func:`stream`: ``positions`` index the sources given (in the order
    asked for); ``values`` float32 [B, W] are style vectors when ``projected``, else raw
    statistics; ``failures`` (position, reason)."""

    positions: list[int]
    values: np.ndarray
    failures: list[tuple[int, str]]
    projected: bool


@dataclass
class Embedded:
    """A whole pass: the positions that worked (ascending), their values float32 [M, W] in
    that order, and the failures (sorted)."""

    positions: np.ndarray
    values: np.ndarray
    failures: list[tuple[int, str]]


def stream(
    embedder: Embedder,
    sources: Sequence[ImageInput],
    order: Sequence[int] | np.ndarray | None = None,
    *,
    project: bool = True,
    flip: bool = False,
    desc: str = "embedding",
) -> Iterator[EmbeddedBatch]:
    """Decode and embed ``sources[order]`` (all, in order, by default), batch by batch.
    ``project``: batches come as style vectors once the embedder has a projection (it may get
    one between batches); ``flip``: the mirrored images."""
    order = np.arange(len(sources)) if order is None else np.asarray(order, np.int64)
    for batch in embedder.iter_raw([sources[int(i)] for i in order], desc=desc, flip=flip, project=project):
        yield EmbeddedBatch(
            [int(order[p]) for p in batch.positions],
            batch.raw,
            [(int(order[p]), reason) for p, reason in batch.failures],
            batch.projected,
        )


def embed_all(embedder: Embedder, sources: Sequence[ImageInput], *, project: bool = True, desc: str = "embedding") -> Embedded:
    """:func:`stream` collected: every source's style vector (raw statistics without a
    projection, or with ``project=False``)."""
    width = embedder.projection.dim if project and embedder.projection is not None else embedder.raw_dim
    values = np.zeros((len(sources), width), np.float32)
    ok = np.zeros(len(sources), bool)
    failures: list[tuple[int, str]] = []
    for batch in stream(embedder, sources, project=project, desc=desc):
        values[batch.positions] = batch.values
        ok[batch.positions] = True
        failures += batch.failures
    positions = np.flatnonzero(ok)
    return Embedded(positions, values[positions], sorted(failures))
