"""The OpenVINO engine: the same vectors as torch (fp32), a cached conversion, int8 indexes
that keep and reuse their quantised model. Skipped where ``openvino`` is not installed."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from stylesearch import StyleSearch, index_catalog
from stylesearch.config import RunConfig
from stylesearch.errors import ConfigError
from stylesearch.images import load_tensor
from stylesearch.model.embed import Embedder
from stylesearch.model.runtimes import openvino as engines
from stylesearch.model.runtimes import runtime_class
from tests.conftest import RUN, SMALL

pytest.importorskip("openvino")
OPENVINO = replace(RUN, engine="openvino")


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def test_openvino_fp32_gives_torch_statistics_and_converts_once(demo_data, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("STYLESEARCH_CACHE", str(tmp_path / "cache"))
    images = torch.stack([load_tensor(p, SMALL.image_size) for p, _, _ in demo_data[1][:12]])
    torch_raw = Embedder(SMALL, RUN).raw(images)
    ov = Embedder(SMALL, OPENVINO)
    assert ov.runtime.name == "openvino" and ov.describe_runtime() == "openvino fp32"
    assert cosines(torch_raw, ov.raw(images)).min() > 0.9999
    cached = sorted((tmp_path / "cache" / "openvino").glob("*.xml"))
    assert len(cached) == 1
    stamp = cached[0].stat().st_mtime_ns
    calls: list[int] = []
    monkeypatch.setattr(engines, "convert", lambda *a: calls.append(1))  # a second embedder must not convert
    Embedder(SMALL, OPENVINO).raw(images[:2])
    assert not calls and cached[0].stat().st_mtime_ns == stamp
    # another image size is another model
    monkeypatch.undo()
    monkeypatch.setenv("STYLESEARCH_CACHE", str(tmp_path / "cache"))
    Embedder(replace(SMALL, image_size=96), OPENVINO)
    assert len(list((tmp_path / "cache" / "openvino").glob("*.xml"))) == 2


def test_an_index_built_by_torch_answers_queries_embedded_by_openvino(built_index: Path, demo_data) -> None:  # type: ignore[no-untyped-def]
    queries = [str(p) for p, _, _ in demo_data[1][:10]]
    with StyleSearch.open(built_index, run=RUN) as by_torch, StyleSearch.open(built_index, run=OPENVINO) as by_ov:
        assert by_ov.info()["engine"] == "openvino fp32" and by_torch.info()["engine"].startswith("torch")
        for query in queries:
            a, b = by_torch.query(query, k=5).results, by_ov.query(query, k=5).results
            assert [h.id for h in a] == [h.id for h in b]
            assert np.allclose([h.score for h in a], [h.score for h in b], atol=1e-4)


def test_an_int8_index_keeps_its_quantised_model_and_queries_with_it(demo_data, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("STYLESEARCH_CACHE", str(tmp_path / "cache"))
    run = replace(OPENVINO, precision="int8")
    index_catalog(demo_data[0], tmp_path / "idx", embed=SMALL, run=run)
    cached = [p.name for p in (tmp_path / "cache" / "openvino").glob("*.xml")]
    assert len(cached) == 1 and "-int8-" in cached[0]  # calibrating converts no fp32 model besides
    gen = StyleSearch.open(tmp_path / "idx", run=RUN)  # whatever the caller asks, int8 queries run int8
    with gen as engine:
        assert engine.info()["engine"] == "openvino int8"
        live = engine.snapshot.gen
        manifest = engine.snapshot.manifest
        assert manifest["precision"] == "int8"
        assert (live / "model" / engines.INT8_FILE).is_file() and (live / "model" / "style_model_int8.bin").is_file()
        # its convolutions are int8, its statistics float32 (no quantiser among their nodes)
        quantisers = [
            op.get_friendly_name()
            for op in engines.core().read_model(live / "model" / engines.INT8_FILE).get_ops()
            if op.get_type_name() == "FakeQuantize"
        ]
        assert quantisers and not [n for n in quantisers if re.fullmatch(engines.STATISTICS_NODES, n)]
        # its projection is on the int8 grid, and a query's product (OpenVINO, int8 weights)
        # gives what a batch's (torch, float32) gives
        embedder = engine.embedder
        assert embedder.projection is not None and embedder.projection.on_int8_grid() is embedder.projection
        raw = embedder.raw(torch.stack([load_tensor(p, SMALL.image_size) for p, _, _ in demo_data[1][:20]]))
        one_by_one = np.concatenate([embedder.project(raw[i : i + 1]) for i in range(len(raw))])
        assert embedder.runtime.projection_product(embedder.projection.matrix, embedder.projection.bias) is not None
        assert np.abs(one_by_one - embedder.project(raw)).max() < 1e-5
        # an indexed photo, queried, finds itself: the query ran the very model that indexed it
        first = engine.snapshot.meta.records()[0]
        path = Path(first.path) if Path(first.path).is_absolute() else demo_data[0] / first.path
        hits = engine.query(str(path), k=1)
        assert hits.results[0].id == first.id and hits.results[0].score > 0.9999
        # new generations (add) carry the quantised model over, also once the generation it
        # was loaded from is gone (only the latest two are kept)
        for i in range(3):
            engine.add([str(demo_data[1][i][0])], ids=[f"extra{i}"])
        assert not live.exists()
    with StyleSearch.open(tmp_path / "idx", run=RUN) as engine:
        assert engine.info()["engine"] == "openvino int8" and engine.info()["items"] == manifest["items"] + 3


def test_runtime_choices_and_their_errors(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    monkeypatch.delenv("STYLESEARCH_ENGINE", raising=False)
    assert runtime_class("auto", cpu, "auto").name == "openvino"  # installed: the faster one on a CPU
    assert runtime_class("auto", cuda, "auto").name == "torch"
    assert runtime_class("auto", cpu, "int8").name == "openvino"
    monkeypatch.setenv("STYLESEARCH_ENGINE", "torch")
    assert runtime_class("auto", cpu, "auto").name == "torch"
    assert runtime_class("auto", cpu, "int8").name == "openvino"  # an int8 index runs its own model
    monkeypatch.setenv("STYLESEARCH_ENGINE", "tensorrt")  # a mistake in the environment is said, not skipped
    with pytest.raises(ConfigError, match="engine must be auto or one of openvino, torch, got 'tensorrt'"):
        runtime_class("auto", cpu, "fp32")
    monkeypatch.setenv("STYLESEARCH_ENGINE", "openvino")
    with pytest.raises(ConfigError, match="runs on the CPU"):
        runtime_class("auto", cuda, "auto")
    monkeypatch.delenv("STYLESEARCH_ENGINE")
    with pytest.raises(ConfigError, match="int8 runs on the OpenVINO runtime"):
        runtime_class("torch", cpu, "int8")
    with pytest.raises(ConfigError, match="runs on the CPU"):
        runtime_class("openvino", cuda, "fp32")
    with pytest.raises(ConfigError, match="engine must be auto or one of openvino, torch"):
        runtime_class("tensorrt", cpu, "fp32")
    with pytest.raises(ConfigError, match="engine must be auto or a runtime name"):
        RunConfig(engine="tensor rt!")


@pytest.mark.parametrize("recipe", ["gramsqrt", "gramsoft"])
def test_the_normalised_gram_statistics_convert_to_openvino(demo_data, tmp_path, monkeypatch, recipe: str) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("STYLESEARCH_CACHE", str(tmp_path / "cache"))
    config = replace(SMALL, recipe=recipe)
    images = torch.stack([load_tensor(p, config.image_size) for p, _, _ in demo_data[1][:8]])
    ov = Embedder(config, OPENVINO)
    assert ov.runtime.name == "openvino"
    assert cosines(Embedder(config, RUN).raw(images), ov.raw(images)).min() > 0.9999
