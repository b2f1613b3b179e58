from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from stylesearch import StyleSearch, index_catalog
from stylesearch.catalog import load_catalog
from stylesearch.config import EmbedConfig, TrainConfig
from stylesearch.demo import render
from stylesearch.errors import BackboneError, CatalogError, ConfigError
from stylesearch.model import trainer as train_mod
from stylesearch.model.backbones import TUNED_FILE, TunedBlocks, create_backbone
from stylesearch.model.projection import Projection
from stylesearch.model.train import train_model

from ..conftest import RUN, noise, solid

FAST = TrainConfig(epochs=4, batch_size=32, m_per_class=4, val_fraction=0.25, patience=10, head_epochs=30)
EMBED = EmbedConfig(image_size=64, dim=32)


@pytest.fixture(scope="module")
def trained(demo_data, tmp_path_factory: pytest.TempPathFactory) -> Path:  # type: ignore[no-untyped-def]
    out = tmp_path_factory.mktemp("model")
    train_model(demo_data[0], out, embed=EMBED, train=FAST, run=RUN)
    return out


def test_training_writes_a_model(trained: Path) -> None:
    info = json.loads((trained / "model.json").read_text())
    assert info["format"] == "stylesearch-model" and info["projection"]["kind"] == "trained"
    assert info["head"]["kind"] == "linear" and len(info["head"]["labels"]) == 8
    assert info["validation_items"] > 0 and 0 <= info["best_val_map_at_r"] <= 1
    assert info["map"] == "basis"  # 12 photos per style: a map from the whitened PCA basis (map auto)
    log = json.loads((trained / "training_log.json").read_text())
    assert [e["epoch"] for e in log] == [0, 1, 2, 3, 4]  # epoch 0: the untrained start, scored
    assert all("val_mean_average_precision_at_r" in e for e in log) and all(e["loss"] >= 0 for e in log[1:])
    proj = Projection.load(trained / "projection.npz")
    # the tuned block (32) and the PCA block kept for styles added later (32 of them here)
    assert proj.kind == "trained" and proj.dim == 64 and proj.parts == ((32, 1.0), (32, 1.0))
    assert set(proj.query_weights) == {"search", "classify", "classify_new_labels"}
    assert proj.query_weights["classify"][1] == 0.0 and len(proj.labels) == 8  # the labels it was tuned on


def test_index_with_a_model_classifies_with_head_and_knn(trained: Path, demo_data, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    manifest, held_out = demo_data
    index_catalog(manifest, tmp_path / "idx", run=RUN, model=trained)
    with StyleSearch.open(tmp_path / "idx", run=RUN) as engine:
        assert engine.head is not None and engine.info()["projection"]["kind"] == "trained"
        paths = [p for p, _, _ in held_out]
        truth = [s for _, s, _ in held_out]
        for method in ("knn", "linear", "both"):
            verdicts = engine.classify(paths, k=10, method=method, min_confidence=0.0)
            accuracy = np.mean([v.label == t for v, t in zip(verdicts, truth)])
            assert accuracy > 0.6, method
        both = engine.classify(paths[0], method="both")
        assert both.method == "both" and both.knn and both.linear
        assert abs(sum(both.scores.values()) - 1) < 1e-3
        # cold start: a label the head never saw is decided by kNN at once
        rng = np.random.default_rng(9)
        new = []
        for i in range(6):
            path = tmp_path / f"inv-{i}.png"
            render("mug", "stripes", rng).convert("L").point(lambda v: 255 - v).convert("RGB").save(path)
            new.append(path)
        engine.add(new[:5], labels="inverted")
        verdict = engine.classify(new[5], k=5, min_confidence=0.0)
        assert verdict.label == "inverted" and verdict.method == "knn"
        assert engine.classify(new[5], k=5, min_confidence=0.0).label == "inverted"
        with pytest.raises(ConfigError, match="method"):
            engine.classify(paths[0], method="vote")
    with StyleSearch.open(tmp_path / "idx", run=RUN) as reopened:  # the head survives writes
        assert reopened.head is not None and reopened.classify(paths[0], method="linear").linear is not None


def test_linear_needs_a_head(built_index: Path, demo_data) -> None:  # type: ignore[no-untyped-def]
    with StyleSearch.open(built_index, run=RUN) as engine, pytest.raises(ConfigError, match="no trained head"):
        engine.classify(demo_data[1][0][0], method="linear")


@pytest.mark.parametrize("blocks", [0, 1])
def test_resume_after_an_interruption_matches_an_uninterrupted_run(demo_data, tmp_path: Path, monkeypatch, blocks: int) -> None:  # type: ignore[no-untyped-def]
    cfg = TrainConfig(epochs=3, batch_size=32, m_per_class=4, val_fraction=0.25, head="none", train_blocks=blocks)
    train_model(demo_data[0], tmp_path / "a", embed=EMBED, train=cfg, run=RUN)
    calls = {"n": 0}
    real = train_mod.validation_metrics

    def crash_on_second_epoch(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 3:  # the scores of the start (epoch 0) and of epoch 1 are in; epoch 2 dies
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(train_mod, "validation_metrics", crash_on_second_epoch)
    with pytest.raises(KeyboardInterrupt):
        train_model(demo_data[0], tmp_path / "b", embed=EMBED, train=cfg, run=RUN)
    monkeypatch.setattr(train_mod, "validation_metrics", real)
    report = train_model(demo_data[0], tmp_path / "b", embed=EMBED, train=cfg, run=RUN, resume=True)
    assert report.epochs_run == 3
    a, b = Projection.load(tmp_path / "a" / "projection.npz"), Projection.load(tmp_path / "b" / "projection.npz")
    assert a.matrix is not None and b.matrix is not None
    assert np.allclose(a.matrix, b.matrix, atol=1e-5) and np.allclose(a.bias, b.bias, atol=1e-5)
    if blocks:
        ta, tb = TunedBlocks.load(tmp_path / "a" / TUNED_FILE), TunedBlocks.load(tmp_path / "b" / TUNED_FILE)
        assert ta is not None and tb is not None and ta.stages == tb.stages
        assert all(torch.allclose(ta.state[k], tb.state[k], atol=1e-5) for k in ta.state)


def test_tuned_backbone_blocks_travel_with_the_model_and_the_index(demo_data, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg = TrainConfig(epochs=4, batch_size=32, m_per_class=4, val_fraction=0.25, head_epochs=30, train_blocks=2, backbone_lr=3e-3)
    train_model(demo_data[0], tmp_path / "m", embed=EMBED, train=cfg, run=RUN)
    info = json.loads((tmp_path / "m" / "model.json").read_text())
    assert info["tuned_backbone"]["stages"] == ["block14", "block15"] and "+tuned:" in info["weights_id"]
    tuned = TunedBlocks.load(tmp_path / "m" / TUNED_FILE)
    assert tuned is not None and tuned.stages == ("block14", "block15")
    base = create_backbone(EMBED.backbone, EMBED.weights)
    before = base.stage_state(tuned.stages)
    assert set(before) == set(tuned.state)
    assert any(not torch.equal(before[k], tuned.state[k]) for k in before if k.endswith("weight"))  # they learned
    assert all(not k.startswith("stages.9.") for k in tuned.state)  # lower blocks stay frozen

    manifest, held_out = demo_data
    index_catalog(manifest, tmp_path / "idx", run=RUN, model=tmp_path / "m")
    catalog = load_catalog(manifest)
    with StyleSearch.open(tmp_path / "idx", run=RUN) as engine:
        assert engine.embedder.weights_id == info["weights_id"]
        hit = engine.query(catalog.items[0].path, k=1).results[0]  # indexed and query vectors agree
        assert hit.id == catalog.items[0].id and hit.score > 0.999
        engine.add([held_out[0][0]], labels=held_out[0][1])
    with StyleSearch.open(tmp_path / "idx", run=RUN) as reopened:  # the blocks are carried into new generations
        assert reopened.embedder.weights_id == info["weights_id"]
        assert reopened.query(catalog.items[0].path, k=1).results[0].score > 0.999


def test_bad_training_input_is_a_clear_error(tmp_path: Path) -> None:
    for i in range(3):
        solid(tmp_path / "one" / "only" / f"{i}.png", (i * 50, 0, 0))
    with pytest.raises(CatalogError, match="at least 2 style labels"):
        train_model(tmp_path / "one", tmp_path / "m1", embed=EMBED, train=FAST, run=RUN)
    solid(tmp_path / "one" / "lonely" / "x.png", (0, 0, 200))
    with pytest.raises(CatalogError, match="lonely"):
        train_model(load_catalog(tmp_path / "one"), tmp_path / "m2", embed=EMBED, train=FAST, run=RUN)
    with pytest.raises(ConfigError, match="nothing to resume"):
        train_model(tmp_path / "one", tmp_path / "m3", embed=EMBED, train=FAST, run=RUN, resume=True)
    with pytest.raises(ConfigError, match="unknown loss"):
        TrainConfig(loss="magic")
    with pytest.raises(ConfigError, match="anchor"):
        TrainConfig(anchor=-1)
    for i in range(4):
        solid(tmp_path / "two" / ("red" if i % 2 else "blue") / f"{i}.png", (200 * (i % 2), 0, 200))
    with pytest.raises(BackboneError, match="at most"):
        train_model(tmp_path / "two", tmp_path / "m4", embed=EMBED, train=replace(FAST, train_blocks=40), run=RUN)


def test_anchor_keeps_the_projection_near_its_pca_start(demo_data, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Two different losses move a free projection to different places; with a strong L2-SP
    anchor both stay at the shared PCA start, so they end up nearly equal."""

    def trained(name: str, loss: str, anchor: float) -> np.ndarray:
        cfg = TrainConfig(
            epochs=3,
            batch_size=32,
            m_per_class=4,
            val_fraction=0.25,
            head="none",
            weight_decay=0.0,
            loss=loss,
            anchor=anchor,
            map="raw",  # every raw direction free: what the anchor holds back
        )
        train_model(demo_data[0], tmp_path / name, embed=EMBED, train=cfg, run=RUN)
        matrix = Projection.load(tmp_path / name / "projection.npz").matrix
        assert matrix is not None
        return matrix

    free = np.abs(trained("a", "multisimilarity", 0.0) - trained("b", "contrastive", 0.0)).max()
    held = np.abs(trained("c", "multisimilarity", 1e4) - trained("d", "contrastive", 1e4)).max()
    assert held < 0.2 * free


def test_within_group_batches_share_one_group_and_mix_with_plain_ones() -> None:
    from stylesearch.model.sampling import WithinGroupSampler, mix_within

    rng = np.random.default_rng(0)
    positions = np.arange(100, 160)
    labels = [i % 3 for i in range(60)]
    groups = ["shirt" if i < 30 else "shoe" if i < 54 else None for i in range(60)]
    sampler = WithinGroupSampler(positions, labels, groups, m=4, batch_size=12)
    group_of = dict(zip(positions.tolist(), groups))
    label_of = dict(zip(positions.tolist(), labels))
    for _ in range(20):
        batch = sampler.batch(rng)
        assert len({group_of[int(p)] for p in batch}) == 1 and None not in {group_of[int(p)] for p in batch}
        assert len({label_of[int(p)] for p in batch}) >= 2 and len(batch) == 12
    plain = [np.array([100 + i]) for i in range(40)]
    mixed = mix_within(plain, sampler, 0.5, seed=1)
    replaced = sum(len(b) > 1 for b in mixed)
    assert 10 <= replaced <= 30 and len(mixed) == 40
    assert mix_within(plain, sampler, 0.0, seed=1) == plain
    assert not WithinGroupSampler(positions, [0] * 60, groups, m=4, batch_size=12)  # one label per group: nothing to draw


def test_training_within_a_product_type(demo_data, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """--within draws a share of the batches inside one product; a column the catalog lacks is
    refused with the columns it has."""
    cfg = replace(FAST, epochs=2, within="product", within_share=0.5)
    report = train_model(demo_data[0], tmp_path / "w", embed=EMBED, train=cfg, run=RUN)
    assert report.epochs_run == 2
    assert json.loads((tmp_path / "w" / "model.json").read_text())["train"]["within"] == "product"
    with pytest.raises(ConfigError, match="no such attribute; it has product"):
        train_model(demo_data[0], tmp_path / "x", embed=EMBED, train=replace(cfg, within="colour"), run=RUN)


def test_a_catalog_smaller_than_one_batch_trains(tmp_path: Path) -> None:
    """Ten-odd labelled photos per style (a few-label domain) with the default batch of 112:
    one batch an epoch, drawn with replacement — not PML's bare AssertionError."""
    for label, seed in (("a", 0), ("b", 100), ("c", 200)):
        for i in range(6):
            noise(tmp_path / "cat" / label / f"{i}.png", seed + i)
    cfg = TrainConfig(epochs=2, head_epochs=10)
    report = train_model(tmp_path / "cat", tmp_path / "m", embed=EMBED, train=cfg, run=RUN)
    assert report.epochs_run == 2 and (tmp_path / "m" / "model.json").is_file()


@pytest.mark.parametrize("recipe", ["gram", "gramsqrt", "gram+gap"])
def test_cached_stages_reproduce_the_frozen_statistics_until_they_learn(demo_data, recipe: str) -> None:  # type: ignore[no-untyped-def]
    """The cache holds the input of the tuned stages; run from it with untouched weights, the
    statistics are those of the whole backbone (tuned blocks' parts recomputed, the rest looked up)."""
    from stylesearch.model.embed import Embedder
    from stylesearch.model.train_sources import CachedStages, initial_features

    embed = replace(EMBED, recipe=recipe)
    paths = [item.path for item in load_catalog(demo_data[0]).items[:12]]
    raw, ok, _ = initial_features(Embedder(embed, replace(RUN, engine="torch")), paths, 2)
    assert ok == list(range(len(paths)))
    source = CachedStages(embed, RUN, paths, 2, torch.device("cpu"), raw)
    assert source.stages == (("block14", "block15") if recipe != "gram+gap" else ("block15", "head"))
    assert source.cache.shape[:2] == (2, len(paths)) and source.cache.dtype == torch.float16
    recomputed = source.features(np.arange(len(paths))).numpy()
    frozen = raw[0].astype(np.float32)
    cos = (recomputed * frozen).sum(1) / np.linalg.norm(recomputed, axis=1) / np.linalg.norm(frozen, axis=1)
    assert cos.min() > 0.999
    mirrored = source.train_batch(np.arange(len(paths)), 0, torch.Generator().manual_seed(0))
    assert mirrored.requires_grad and mirrored.shape == recomputed.shape  # gradients reach the tuned stages


def test_a_raw_map_reads_the_trained_default_blocks_and_a_basis_map_the_untrained_ones() -> None:
    from stylesearch.config import TRAINED_DEFAULT_LAYERS
    from stylesearch.model.maps import map_kind, training_layers

    cfg = TrainConfig()
    assert map_kind(cfg, 600) == "raw" and map_kind(cfg, 10) == "basis" and map_kind(replace(cfg, map="raw"), 10) == "raw"
    embed = EmbedConfig()
    assert training_layers(embed, "raw").layers == TRAINED_DEFAULT_LAYERS["efficientnet_lite0"]
    assert training_layers(embed, "basis").layers is None  # the backbone's default blocks
    chosen = replace(embed, layers=("block5", "block15"))
    assert training_layers(chosen, "raw").layers == ("block5", "block15")  # --layers wins
