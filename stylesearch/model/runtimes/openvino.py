"""The ``openvino`` runtime: Intel's OpenVINO CPU runtime (``pip install 'stylesearch[openvino]'``).

- The OpenVINO model is the torch :class:`~stylesearch.model.embed.StyleModel` converted as it
  stands (BatchNorm already folded, tuned blocks laid over), so its fp32 vectors are the
  torch ones to float noise: an index built by one runtime is queried by the other. Converted
  models are cached per weights id, style recipe, image size and OpenVINO version (in
  ``$STYLESEARCH_CACHE`` or ``~/.cache/stylesearch``) and rebuilt when any of those changes.
- ``int8``: NNCF post-training quantisation of that model's convolutions, calibrated on a
  sample of the catalog's own photos at index time; the statistics stay float32. The
  quantised model is saved with the index (:data:`INT8_FILE`) so that every query runs the
  very model that embedded the catalog. An int8 index's projection is on an int8 grid, and a
  query's product with it runs here with int8 weights (:class:`OpenVINOLinear`).

``auto`` picks OpenVINO on a CPU when it is installed (its preference is above torch's).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import json
import logging
import os
import sys
import tempfile
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ...config import environment
from ...errors import ConfigError
from .base import IR, Runtime, Target, register_runtime

log = logging.getLogger(__name__)

INT8_FILE = "style_model_int8.xml"  # with its .bin, in a model bundle's folder
CACHE_REVISION = 2  # bump when the exported graph changes for the same inputs
CALIBRATION_IMAGES = 512  # photos NNCF calibrates int8 on (a seeded sample of the catalog)

STATISTICS_NODES = r".*__module\.stats\..*"  # the converted StyleModel.stats' nodes: kept float32 by int8


@functools.cache
def core() -> Any:
    """The process's one OpenVINO Core, with the CPU plugin loaded, kept for the process's
    life. A Core that is destroyed unloads the plugin's library, whose fork handlers stay
    registered: the next ``fork`` (any subprocess) then crashed the process (seen in the test
    suite: a segmentation fault at the first subprocess after an engine was garbage-collected)."""
    import openvino as ov

    pinned = ov.Core()
    pinned.get_property("CPU", "OPTIMIZATION_CAPABILITIES")  # loads the plugin now
    return pinned


def openvino_available() -> bool:
    return importlib.util.find_spec("openvino") is not None


def cache_dir() -> Path:
    return Path(environment().cache) / "openvino"


def model_key(weights_id: str, embed: dict[str, Any], image_size: int) -> str:
    """What names a converted model in the cache (the OpenVINO version included)."""
    import openvino as ov

    text = json.dumps(
        {"weights": weights_id, "embed": embed, "size": image_size, "ov": ov.__version__, "rev": CACHE_REVISION}, sort_keys=True
    )
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def convert(model: torch.nn.Module, image_size: int) -> Any:
    """The torch style model as an OpenVINO model with a dynamic batch of uint8 images."""
    import openvino as ov

    example = torch.zeros((2, 3, image_size, image_size), dtype=torch.uint8)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes on shapes it records as constants
        return ov.convert_model(model.eval(), example_input=example, input=[ov.PartialShape([-1, 3, image_size, image_size])])


def cached_model(model: torch.nn.Module, weights_id: str, embed: dict[str, Any], image_size: int) -> Path:
    """The fp32 OpenVINO model of ``model``, converted once and kept in :func:`cache_dir`."""
    import openvino as ov

    folder = cache_dir()
    path = folder / f"style-{model_key(weights_id, embed, image_size)}.xml"
    if path.is_file() and path.with_suffix(".bin").is_file():
        return path
    log.info("converting the style model to OpenVINO (once per model and image size): %s", path)
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder) as tmp:  # written whole, then moved in place
        staged = Path(tmp) / path.name
        ov.save_model(convert(model, image_size), staged, compress_to_fp16=False)
        os.replace(staged.with_suffix(".bin"), path.with_suffix(".bin"))
        os.replace(staged, path)
    return path


def quantize(model: torch.nn.Module, image_size: int, images: Sequence[torch.Tensor], out: Path) -> IR:
    """NNCF int8 quantisation of the style model's convolutions, calibrated on ``images``
    (uint8 [3, S, S] each); every node of the statistics (:data:`STATISTICS_NODES`: channel
    reducers, Gram products, signed square roots) stays float32. Kept at ``out`` (a
    cache: the same model and sample are not quantised twice) and returned."""
    import nncf
    import openvino as ov

    if not (out.is_file() and out.with_suffix(".bin").is_file()):
        core()  # the CPU plugin stays loaded after NNCF's own Core is gone (see core())
        if not images:
            raise ConfigError("int8 calibration needs at least one readable photo")
        nncf.set_log_level(logging.ERROR)
        batches = [torch.stack(list(images[i : i + 16])).numpy() for i in range(0, len(images), 16)]
        with contextlib.redirect_stdout(sys.stderr):  # NNCF's progress bars: stdout is for --json
            quantized = nncf.quantize(
                convert(model, image_size),
                nncf.Dataset(batches),
                subset_size=len(batches),
                ignored_scope=nncf.IgnoredScope(patterns=[STATISTICS_NODES]),
            )
        out.parent.mkdir(parents=True, exist_ok=True)
        ov.save_model(quantized, out, compress_to_fp16=False)
    return read_ir(out)


def read_ir(xml: Path) -> IR:
    return xml.read_bytes(), xml.with_suffix(".bin").read_bytes()


def write_ir(ir: IR, xml: Path) -> None:
    xml.parent.mkdir(parents=True, exist_ok=True)
    xml.write_bytes(ir[0])
    xml.with_suffix(".bin").write_bytes(ir[1])


class OpenVINORunner:
    """A compiled OpenVINO model as a :data:`Runner`. ``precision``: ``fp32`` | ``bf16`` (the
    CPU plugin's inference precision; bf16 only where the CPU has it) for a float model; an
    int8 model runs its int8 layers whatever the hint.

    Two compilations of the same model: one for latency (all threads on one request: a single
    photo) and one for throughput (one stream per pair of cores or so, the batch split between
    them and run at once; measured on 2 cores, ~1.4x the images/s of one request). Infer
    requests are per thread: the service embeds from several."""

    def __init__(self, model: Path | IR, precision: str = "fp32", threads: int | None = None) -> None:
        import openvino as ov

        self._core = core()
        config: dict[str, Any] = {"INFERENCE_PRECISION_HINT": "bf16" if precision == "bf16" else "f32"}
        if threads:
            config["INFERENCE_NUM_THREADS"] = threads
        if precision == "bf16" and "BF16" not in self._core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
            log.warning("this CPU has no bf16 arithmetic: the OpenVINO engine runs fp32")
            config["INFERENCE_PRECISION_HINT"] = "f32"
        if isinstance(model, Path):
            self._model = self._core.read_model(model)
        else:
            self._model = self._core.read_model(model[0], ov.Tensor(np.frombuffer(model[1], np.uint8)))
        self._config = config
        self.compiled = self._core.compile_model(self._model, "CPU", {**config, "PERFORMANCE_HINT": "LATENCY"})
        self.precision = str(self.compiled.get_property("INFERENCE_PRECISION_HINT"))
        self._batched: Any = None
        self._lock = threading.Lock()
        self._local = threading.local()

    @property
    def streams(self) -> int:
        """Parallel streams of the throughput compilation (compiled on first use)."""
        with self._lock:
            if self._batched is None:
                self._batched = self._core.compile_model(self._model, "CPU", {**self._config, "PERFORMANCE_HINT": "THROUGHPUT"})
            return int(self._batched.get_property("NUM_STREAMS"))

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        array = np.ascontiguousarray(images.contiguous().numpy())
        streams = self.streams if len(array) >= 4 else 1
        if streams <= 1:
            request = getattr(self._local, "request", None)
            if request is None:
                request = self._local.request = self.compiled.create_infer_request()
            out = request.infer({0: array})[0]
            return torch.from_numpy(np.array(out, dtype=np.float32, copy=True))
        requests = getattr(self._local, "requests", None)
        if requests is None or len(requests) != streams:
            requests = self._local.requests = [self._batched.create_infer_request() for _ in range(streams)]
        parts = np.array_split(array, streams)
        for request, part in zip(requests, parts):
            request.start_async({0: part})
        outs = []
        for request in requests:
            request.wait()
            outs.append(np.array(request.get_output_tensor(0).data, dtype=np.float32, copy=True))
        return torch.from_numpy(np.concatenate(outs))


class OpenVINOLinear:
    """``x @ weight.T + bias`` (a projection's affine part) with ``weight`` on an int8 grid
    (:meth:`Projection.on_int8_grid <stylesearch.model.projection.Projection.on_int8_grid>`),
    compiled by OpenVINO for the few rows of a query. It keeps the weight as int8 levels and
    a float32 scale per row, which the CPU plugin multiplies out as it reads them: the same
    numbers as torch's float32 product, from a quarter of the memory. One query's product
    reads the whole weight (61,812 × 256 here) and is memory-bound: measured on 2 cores
    with a cold cache, 2.7 ms against torch's 6.0 ms (OpenVINO in float32: 5.3 ms, and no
    faster than torch with the model's runs in between). torch's GEMM wins from about 64
    rows: a catalog's batches are projected by torch."""

    def __init__(self, weight: np.ndarray, bias: np.ndarray, threads: int | None = None) -> None:
        import openvino as ov
        from openvino import opset13 as ops

        from ..projection import int8_rows

        levels, scale = int8_rows(weight)
        matrix = ops.multiply(ops.convert(ops.constant(levels), np.float32), ops.constant(scale))
        raw = ops.parameter([-1, weight.shape[1]], np.float32, name="raw")
        product = ops.add(ops.matmul(raw, matrix, False, True), ops.constant(np.asarray(bias, np.float32)))
        # DYNAMIC_QUANTIZATION_GROUP_SIZE 0: where the CPU has VNNI, the plugin would otherwise
        # quantise the activations of an int8-weight product to int8 as well (3e-4 away from
        # torch's float32 product): a query must give the numbers its index was built with.
        config: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32"}
        config["DYNAMIC_QUANTIZATION_GROUP_SIZE"] = 0
        if threads:
            config["INFERENCE_NUM_THREADS"] = threads
        self.compiled = core().compile_model(ov.Model([product], [raw], "projection"), "CPU", config)
        self._local = threading.local()

    def __call__(self, x: np.ndarray) -> np.ndarray:
        request = getattr(self._local, "request", None)
        if request is None:
            request = self._local.request = self.compiled.create_infer_request()
        return np.array(request.infer({0: np.ascontiguousarray(x, np.float32)})[0], dtype=np.float32, copy=True)


@register_runtime("openvino")
class OpenVINORuntime(Runtime):
    """The style model converted (cached) and compiled for the CPU; at ``--precision int8`` it
    waits for :meth:`calibrate` on a new catalog, or runs the index's own int8 model."""

    batch_scale = 2  # split between OpenVINO's streams (OpenVINORunner)
    preference = 2

    @classmethod
    def problem(cls, device: torch.device, precision: str) -> str | None:
        if device.type != "cpu":
            return f"the OpenVINO runtime runs on the CPU; use --device cpu or --engine torch (device {device})"
        if precision == "fp16":
            return "--precision fp16 is for CUDA GPUs: use fp32 or bf16 with the OpenVINO runtime"
        if not openvino_available():
            return "the OpenVINO runtime is not installed: pip install 'stylesearch[openvino]' or use --engine torch"
        return None

    def __init__(self, target: Target) -> None:
        super().__init__(target)
        self.int8 = target.artefact
        self._runner: OpenVINORunner | None = None
        self._linear: tuple[np.ndarray, OpenVINOLinear] | None = None
        if target.run.precision != "int8" or self.int8 is not None:
            self._runner = self._compile(self.int8)

    def _compile(self, int8: IR | None) -> OpenVINORunner:
        t = self.target
        model = int8 or cached_model(t.model, t.weights_id, t.embed.to_dict(), t.embed.image_size)
        return OpenVINORunner(model, "bf16" if t.run.precision == "bf16" else "fp32", threads=torch.get_num_threads())

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        if self._runner is None:
            raise ConfigError("int8 needs calibrating on the catalog's photos first (Embedder.calibrate)")
        return self._runner(images)

    def describe(self) -> str:
        if self.target.run.precision == "int8":
            return "openvino int8"
        return "openvino " + ("bf16" if self._runner is not None and "bf16" in self._runner.precision else "fp32")

    @property
    def ready(self) -> bool:
        return self._runner is not None

    def calibrate(self, images: Sequence[torch.Tensor]) -> None:
        """NNCF int8 quantisation on ``images`` (cached by model and sample)."""
        t = self.target
        sample = hashlib.sha256(b"".join(x.numpy().tobytes()[:4096] for x in images)).hexdigest()[:12]
        key = model_key(t.weights_id, t.embed.to_dict(), t.embed.image_size)
        cached = cache_dir() / f"style-{key}-int8-{len(images)}-{sample}.xml"
        self.int8 = quantize(t.model, t.embed.image_size, images, cached)
        self._runner = self._compile(self.int8)

    @property
    def artefact(self) -> IR | None:
        return self.int8

    def projection_product(self, matrix: np.ndarray, bias: np.ndarray) -> OpenVINOLinear | None:
        """For an int8 index, the projection's product compiled with int8 weights, built once
        per matrix; ``None`` otherwise (in float32 OpenVINO's product is no faster than
        torch's, measured with the model's runs in between)."""
        if self.target.run.precision != "int8":
            return None
        if self._linear is None or self._linear[0] is not matrix:
            self._linear = (matrix, OpenVINOLinear(matrix.T, bias, threads=torch.get_num_threads()))
        return self._linear[1]
