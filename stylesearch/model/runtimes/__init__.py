"""Inference runtimes for the style model, keyed by ``--engine`` (:mod:`.base` has the
protocol and the registry): ``torch`` (eager PyTorch, any device; the autocast policy) and
``openvino`` (Intel's CPU runtime, fp32 / bf16 / int8). A new runtime is one module here,
imported below so that it registers."""

from . import openvino, torch
from .base import IR, Product, Runtime, Target, create_runtime, register_runtime, runtime_class, runtime_names

__all__ = [
    "IR",
    "Product",
    "Runtime",
    "Target",
    "create_runtime",
    "openvino",
    "register_runtime",
    "runtime_class",
    "runtime_names",
    "torch",
]
