"""The inference-runtime seam: what runs the style model (backbone blocks + statistics).

A runtime turns a uint8 batch ``[B, 3, S, S]`` into raw statistics float32 ``[B, R]`` and can
say what it is. It may need calibrating on the catalog's photos first (int8), may leave an
artefact the index keeps (its quantised model), and may multiply a query by the projection
itself. Runtimes register under their ``--engine`` name (:func:`register_runtime`);
``auto`` means ``$STYLESEARCH_ENGINE`` (:func:`stylesearch.config.environment`) when that is set
(except for an int8 index, which runs its own model), else the most preferred runtime that
can run here. A new runtime is one module in this
package, registered in ``__init__`` (or from anywhere, before it is named).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from ...config import EmbedConfig, RunConfig, environment
from ...errors import ConfigError
from ...registry import Registry

IR = tuple[bytes, bytes]  # an OpenVINO model in memory: its .xml and .bin files' bytes
Product = Callable[[np.ndarray], np.ndarray]  # a query's projection (x @ W.T + b), float32


@dataclass(frozen=True)
class Target:
    """What a runtime runs: the torch style model (``StyleModel``: BatchNorm folded, tuned
    blocks laid over) on ``device``, with the recipe and weights that name it, and the
    artefact an index kept (an int8 model), if any."""

    model: torch.nn.Module
    device: torch.device
    run: RunConfig
    embed: EmbedConfig
    weights_id: str
    artefact: IR | None = None


class Runtime:
    """The protocol, with the defaults of a runtime that needs nothing beyond its model."""

    name: ClassVar[str] = ""
    batch_scale: ClassVar[int] = 1  # images per pass, times the device's micro-batch
    preference: ClassVar[int] = 0  # ``auto`` takes the highest that can run here

    def __init__(self, target: Target) -> None:
        self.target = target
        # compute in fp32 whatever the precision: set while a batch whose reduced-precision
        # statistics overflowed is recomputed (see may_overflow)
        self.exact = False

    @property
    def may_overflow(self) -> bool:
        """Whether this runtime's arithmetic can overflow where fp32 does not (fp16's range),
        so that its results are worth checking; bf16 and int8 keep fp32's range."""
        return False

    @classmethod
    def problem(cls, device: torch.device, precision: str) -> str | None:
        """Why this runtime cannot run on ``device`` at ``precision`` (``None``: it can)."""
        return None

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 [B, 3, S, S] on the target device → raw statistics float32 [B, R]."""
        raise NotImplementedError

    def describe(self) -> str:
        """What computes the statistics, e.g. ``torch fp32 on cpu`` or ``openvino int8``."""
        return self.name

    @property
    def ready(self) -> bool:
        """``False`` while the runtime waits for :meth:`calibrate`."""
        return True

    def calibrate(self, images: Sequence[torch.Tensor]) -> None:
        """Fit the runtime to the catalog (uint8 [3, S, S] photos), e.g. int8 quantisation."""
        raise ConfigError(f"the {self.name} runtime needs no calibration")

    @property
    def artefact(self) -> IR | None:
        """What an index built by this runtime must keep to be queried by the same model."""
        return None

    def projection_product(self, matrix: np.ndarray, bias: np.ndarray) -> Product | None:
        """A faster product for a few query rows with ``matrix`` [D, R], or ``None`` (torch's)."""
        return None


RUNTIMES: Registry[type[Runtime]] = Registry()
register_runtime = RUNTIMES.register  # class decorator: the runtime named ``name`` (``--engine name``)


def runtime_names() -> list[str]:
    return sorted(RUNTIMES)


def runtime_class(name: str, device: torch.device, precision: str) -> type[Runtime]:
    """The runtime ``name`` (``auto`` resolved) that runs on ``device`` at ``precision``;
    :class:`ConfigError` saying why not otherwise."""
    if name == "auto" and precision != "int8":  # an int8 index is queried by its own model, whatever auto means
        name = environment().engine or "auto"  # what auto means here: checked as a name given is
    if name == "auto":
        fits = [cls for cls in RUNTIMES.classes() if cls.problem(device, precision) is None]
        if not fits:
            reasons = "; ".join(str(cls.problem(device, precision)) for cls in RUNTIMES.classes())
            raise ConfigError(f"no inference runtime runs here: {reasons}")
        return max(fits, key=lambda cls: cls.preference)
    if name not in RUNTIMES:
        raise ConfigError(f"engine must be auto or one of {', '.join(runtime_names())}, got {name!r}")
    cls = RUNTIMES[name]
    problem = cls.problem(device, precision)
    if problem:
        raise ConfigError(problem)
    return cls


def create_runtime(name: str, target: Target) -> Runtime:
    """The runtime ``name`` (``auto`` resolved) for ``target``."""
    return runtime_class(name, target.device, target.run.precision)(target)
