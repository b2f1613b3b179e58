"""The ``torch`` runtime: eager PyTorch on any device, channels-last, and the one autocast
policy (indexing, queries and training alike)."""

from __future__ import annotations

import contextlib
from typing import Any

import torch

from .base import Runtime, register_runtime

# The GPU's arithmetic under ``auto``. Measured (benchmarks/bench_precision.py, 500 fashion
# photos, the same projection): fp16 convolutions keep 96 % of the fp32 top-10 lists exactly
# (vector cosine ≥ 0.9999), bf16 ones 74 % (≥ 0.996) — bf16's 8-bit mantissa rounds the early
# blocks' weights and activations enough to swap close neighbours. Tensor cores run both at
# the same speed; EfficientNet-Lite's ReLU6 keeps activations far inside fp16's range.
CUDA_AUTO = "fp16"
DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}


def resolved(device: torch.device, precision: str) -> str:
    """``precision`` with ``auto`` resolved: :data:`CUDA_AUTO` on CUDA, ``fp32`` elsewhere."""
    if precision == "auto":
        return CUDA_AUTO if device.type == "cuda" else "fp32"
    return precision


def training_precision(device: torch.device) -> str:
    """Training's arithmetic: bf16 on CUDA (its range needs no loss scaling for the tuned
    blocks' gradients; the index is embedded afterwards at :data:`CUDA_AUTO`), fp32 elsewhere."""
    return "bf16" if device.type == "cuda" else "fp32"


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager[Any]:
    """The backbone's arithmetic for ``precision`` (:func:`resolved`); style statistics and
    the projection stay float32 whatever it is."""
    dtype = DTYPES.get(resolved(device, precision))
    if dtype is None or device.type not in ("cuda", "cpu"):
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


@register_runtime("torch")
class TorchRuntime(Runtime):
    preference = 1

    @classmethod
    def problem(cls, device: torch.device, precision: str) -> str | None:
        if precision == "int8":
            return "--precision int8 runs on the OpenVINO runtime: drop --engine torch"
        if precision == "fp16" and device.type != "cuda":
            return "--precision fp16 is for CUDA GPUs (a CPU emulates it, 50-100x slower): use fp32 or bf16 on the CPU"
        return None

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        precision = "fp32" if self.exact else self.target.run.precision
        with autocast(self.target.device, precision):
            return self.target.model(images.contiguous(memory_format=torch.channels_last)).float()

    @property
    def may_overflow(self) -> bool:
        return resolved(self.target.device, self.target.run.precision) == "fp16"

    def describe(self) -> str:
        device = self.target.device
        return f"torch {resolved(device, self.target.run.precision)} on {device}"
