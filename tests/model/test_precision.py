"""The arithmetic a GPU runs at by default keeps the CPU's answers: the same photos embedded in
fp32 and in the GPU's ``auto`` arithmetic (fp16 convolutions, float32 statistics and
projection; emulated here by ``torch.autocast`` on the CPU) give nearly the same vectors and
the same top-10 lists (``benchmarks/bench_precision.py`` measures bf16 beside it)."""

from __future__ import annotations

import pytest
import torch

from benchmarks.bench_precision import compare, fashion_photos
from benchmarks.protocols import dataset_root
from stylesearch.config import RunConfig
from stylesearch.errors import ConfigError
from stylesearch.model.runtimes.base import runtime_class
from stylesearch.model.runtimes.torch import CUDA_AUTO, autocast, resolved, training_precision


def test_auto_is_fp16_on_cuda_and_fp32_on_cpu() -> None:
    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    assert torch.float16 == CUDA_AUTO and resolved(cuda, "auto") == "fp16" and resolved(cpu, "auto") == "fp32"
    assert resolved(cuda, "bf16") == "bf16" and training_precision(cuda) == "bf16" and training_precision(cpu) == "fp32"
    with autocast(cpu, "auto"):
        assert not torch.is_autocast_enabled("cpu")
    with autocast(cpu, "bf16"):
        assert torch.get_autocast_dtype("cpu") == torch.bfloat16
    with pytest.raises(ConfigError, match="fp16 is for CUDA GPUs"):
        runtime_class("torch", cpu, "fp16")
    assert RunConfig(precision="fp16").precision == "fp16"


@pytest.mark.realdata
@pytest.mark.slow
@pytest.mark.skipif(not (dataset_root() / "metadata.csv").is_file(), reason="fashion-usage data set not found")
def test_the_gpus_arithmetic_keeps_the_cpus_rankings() -> None:
    name = {torch.float16: "fp16", torch.bfloat16: "bf16"}[CUDA_AUTO]
    result = compare(fashion_photos(500), [name])["against_fp32"][name]
    print(f"fp32 vs {name} on 500 photos: {result}")
    assert result["cos_min"] >= 0.99  # measured 0.99996
    assert result["same_top10"] >= 0.90  # measured 0.960 (bf16: 0.702)
