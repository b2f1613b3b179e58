"""The runtime registry: every registered runtime gives the same statistics for the same photos
(a missing extra is skipped), and a new runtime is one class plus a registration — the toy
below, run by name through the whole engine, with no other change."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from stylesearch import StyleSearch, index_catalog
from stylesearch.images import load_tensor
from stylesearch.model.embed import Embedder
from stylesearch.model.runtimes import Runtime, base, register_runtime, runtime_names
from tests.conftest import RUN, SMALL


class ScriptedRuntime(Runtime):
    """The style model traced by TorchScript, fp32 on the CPU: a third runtime in 15 lines."""

    def __init__(self, target: base.Target) -> None:
        super().__init__(target)
        example = torch.zeros((2, 3, target.embed.image_size, target.embed.image_size), dtype=torch.uint8)
        with torch.no_grad():
            self.traced = torch.jit.trace(target.model.eval(), example, check_trace=False)

    @classmethod
    def problem(cls, device: torch.device, precision: str) -> str | None:
        return None if device.type == "cpu" and precision in ("auto", "fp32") else "the toy runtime runs fp32 on the CPU"

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.traced(images).float()


@pytest.fixture
def toy() -> Iterator[str]:
    register_runtime("scripted")(ScriptedRuntime)
    yield "scripted"
    base.RUNTIMES.remove("scripted")


def _skip_missing(name: str) -> None:
    problem = base.RUNTIMES[name].problem(torch.device("cpu"), "fp32")
    if problem:
        pytest.skip(problem)


@pytest.mark.parametrize("name", sorted({*runtime_names(), "scripted"}))
def test_every_runtime_gives_the_same_statistics(name: str, toy: str, demo_data) -> None:  # type: ignore[no-untyped-def]
    _skip_missing(name)
    images = torch.stack([load_tensor(p, SMALL.image_size) for p, _, _ in demo_data[1][:8]])
    reference = Embedder(SMALL, RUN).raw(images)
    embedder = Embedder(SMALL, replace(RUN, engine=name))
    assert embedder.runtime.name == name and embedder.describe_runtime()
    raw = embedder.raw(images)
    assert raw.shape == reference.shape and raw.dtype == np.float32
    cosines = (raw * reference).sum(1) / np.linalg.norm(raw, axis=1) / np.linalg.norm(reference, axis=1)
    assert cosines.min() > 0.9999


def test_a_new_runtime_is_one_module(toy: str, built_index: Path, demo_data, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Index and query by the toy runtime's name: the same answers as torch's."""
    index_catalog(demo_data[0], tmp_path / "toy", embed=SMALL, run=replace(RUN, engine=toy))
    query = str(demo_data[1][0][0])
    with StyleSearch.open(built_index, run=RUN) as a, StyleSearch.open(tmp_path / "toy", run=replace(RUN, engine=toy)) as b:
        assert b.info()["engine"] == toy
        assert [h.id for h in a.query(query, k=5).results] == [h.id for h in b.query(query, k=5).results]
