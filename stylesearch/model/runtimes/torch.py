"""The ``torch`` runtime: eager PyTorch on any device, channels-last, and the one autocast
policy (indexing, queries and training alike)."""

from __future__ import annotations

import contextlib
from typing import Any

import torch

from .base import Runtime, register_runtime


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager[Any]:
    """The backbone's arithmetic for ``precision`` (``auto``: bf16 — fp16 where bf16 is
    missing — on CUDA, fp32 on CPU); style statistics stay float32 whatever it is."""
    if device.type == "cuda" and precision != "fp32":
        dtype = torch.bfloat16 if precision == "bf16" or torch.cuda.is_bf16_supported() else torch.float16
        return torch.autocast("cuda", dtype=dtype)
    if device.type == "cpu" and precision == "bf16":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


@register_runtime("torch")
class TorchRuntime(Runtime):
    preference = 1

    @classmethod
    def problem(cls, device: torch.device, precision: str) -> str | None:
        if precision == "int8":
            return "--precision int8 runs on the OpenVINO runtime: drop --engine torch"
        return None

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        with autocast(self.target.device, self.target.run.precision):
            return self.target.model(images.contiguous(memory_format=torch.channels_last)).float()

    def describe(self) -> str:
        run, device = self.target.run, self.target.device
        precision = run.precision if run.precision != "auto" else ("bf16" if device.type == "cuda" else "fp32")
        return f"torch {precision} on {device}"
