"""The arithmetic a GPU runs at by default keeps the CPU's answers: the same photos embedded in
fp32 and in the GPU's ``auto`` arithmetic (fp16 convolutions, float32 statistics and
projection; emulated here by ``torch.autocast`` on the CPU) give nearly the same vectors and
the same top-10 lists (``benchmarks/bench_precision.py`` measures bf16 beside it)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from benchmarks.bench_precision import compare, fashion_photos
from benchmarks.protocols import dataset_root
from stylesearch.config import RunConfig
from stylesearch.errors import ConfigError
from stylesearch.images import load_tensor
from stylesearch.model.embed import Embedder
from stylesearch.model.runtimes.base import runtime_class
from stylesearch.model.runtimes.torch import CUDA_AUTO, TorchRuntime, autocast, resolved, training_precision

from ..conftest import SMALL, noise


def test_auto_is_fp16_on_cuda_and_fp32_on_cpu() -> None:
    assert not Embedder(SMALL, RunConfig(device="cpu", engine="torch", precision="bf16")).runtime.may_overflow
    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    assert CUDA_AUTO == "fp16" and resolved(cuda, "auto") == "fp16" and resolved(cpu, "auto") == "fp32"
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
    name = CUDA_AUTO
    result = compare(fashion_photos(500), [name])["against_fp32"][name]
    print(f"fp32 vs {name} on 500 photos: {result}")
    assert result["cos_min"] >= 0.99  # measured 0.99997 (2026-12-07)
    assert result["same_top10"] >= 0.90  # measured 0.964 (bf16: 0.744)


def test_a_batch_that_overflows_is_computed_again_in_fp32(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """fp16 can overflow where fp32 does not: a fetched batch is checked on the CPU (the
    device never waits for a check) and computed again in fp32, with a warning."""
    paths = [noise(tmp_path / f"{i}.png", i) for i in range(5)]
    embedder = Embedder(SMALL, RunConfig(device="cpu", engine="torch", batch_size=2, progress=False))
    expected = np.concatenate([b.values for b in embedder.iter_raw(paths)])
    real = TorchRuntime.__call__

    def overflowing(self: TorchRuntime, images: torch.Tensor) -> torch.Tensor:
        out = real(self, images)
        return out if self.exact else out * float("inf")

    monkeypatch.setattr(TorchRuntime, "__call__", overflowing)
    monkeypatch.setattr(TorchRuntime, "may_overflow", property(lambda self: True))  # as fp16 on a GPU
    with caplog.at_level("WARNING"):
        again = np.concatenate([b.values for b in embedder.iter_raw(paths)])
        single = embedder.raw(torch.stack([load_tensor(p, SMALL.image_size) for p in paths[:2]]))
    assert np.isfinite(again).all() and np.allclose(again, expected, atol=1e-5)
    assert np.isfinite(single).all() and np.allclose(single, expected[:2], atol=1e-5)
    assert "overflowed" in caplog.text and not embedder.runtime.exact
