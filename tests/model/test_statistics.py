"""The style statistics registry: every registered statistic is tested the moment it exists,
and a new one is one registered class (the ``gem`` toy below)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch

from stylesearch.config import EmbedConfig, RunConfig
from stylesearch.errors import ConfigError
from stylesearch.model import statistics
from stylesearch.model.embed import Embedder
from stylesearch.model.statistics import (
    MAX_GRAM_CHANNELS,
    Statistic,
    StyleStatistics,
    gram_upper,
    list_statistics,
    mean_std,
    register_statistic,
)

CHANNELS = [8, 300]
POOL = 16


def test_gram_upper_matches_definition() -> None:
    f = torch.randn(2, 3, 4, 5)
    flat = f.reshape(2, 3, 20)
    g = flat @ flat.transpose(1, 2) / 20
    up = gram_upper(f)
    assert up.shape == (2, 6)
    assert torch.allclose(up[:, 0], g[:, 0, 0]) and torch.allclose(up[:, 1], g[:, 0, 1]) and torch.allclose(up[:, 5], g[:, 2, 2])
    ms = mean_std(f)
    assert torch.allclose(ms[:, :3], flat.mean(-1)) and torch.allclose(ms[:, 3:], flat.std(-1, unbiased=False))
    # channels-last maps (torch's) and planar ones (an exported graph's) take different paths
    assert torch.allclose(gram_upper(f.contiguous(memory_format=torch.channels_last)), up, atol=1e-6)


@pytest.mark.parametrize("name", list_statistics())
def test_every_statistic_gives_unit_parts_of_its_dims(name: str) -> None:
    stats = StyleStatistics(name, CHANNELS, POOL)
    maps = [torch.randn(3, c, 6, 6) for c in CHANNELS]
    out = stats(maps, torch.randn(3, POOL, 2, 2))
    assert out.shape == (3, stats.dims) and out.dtype == torch.float32
    n_parts = len(CHANNELS) if stats.uses_style else 1
    assert torch.allclose(out.norm(dim=1), torch.full((3,), float(n_parts)).sqrt(), atol=1e-4)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("recipe", ["gram+gap", "meanstd+gmp"])
def test_combined_recipes_concatenate_in_order(recipe: str) -> None:
    maps = [torch.randn(2, c, 6, 6) for c in CHANNELS]
    pool = torch.randn(2, POOL, 2, 2)
    combined = StyleStatistics(recipe, CHANNELS, POOL)(maps, pool)
    parts = [StyleStatistics(name, CHANNELS, POOL)(maps, pool) for name in recipe.split("+")]
    assert torch.allclose(combined, torch.cat(parts, dim=1))


def test_wide_blocks_are_reduced_not_dropped() -> None:
    stats = StyleStatistics("gram", CHANNELS, POOL)
    assert stats.dims == 8 * 9 // 2 + MAX_GRAM_CHANNELS * (MAX_GRAM_CHANNELS + 1) // 2


def test_unknown_recipe_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown style recipe"):
        EmbedConfig(recipe="gram+not a name")
    with pytest.raises(ConfigError, match="twice"):
        EmbedConfig(recipe="gap+gap")
    with pytest.raises(ConfigError, match="unknown style recipe 'gram\\+fancy'"):
        StyleStatistics("gram+fancy", CHANNELS, POOL)
    with pytest.raises(ConfigError, match="unknown style recipe"):
        Embedder(EmbedConfig(weights="none", recipe="gram+fancy", image_size=64), RunConfig(device="cpu"))


@pytest.fixture
def gem() -> Iterator[type[Statistic]]:
    """A toy statistic added the way a contributor would: one class, one registration."""

    @register_statistic("gem")
    class GeneralisedMean(Statistic):
        """Generalised-mean (GeM, p = 3) pooling of the pool block."""

        reads = "pool"

        def block_dims(self, channels: int) -> int:
            return channels

        def block(self, fmap: torch.Tensor, position: int) -> torch.Tensor:
            return fmap.clamp(min=1e-6).pow(3).flatten(2).mean(-1).pow(1 / 3)

    yield GeneralisedMean
    statistics.STATISTICS.remove("gem")


def test_a_new_statistic_is_one_registered_class(gem: type[Statistic]) -> None:
    assert "gem" in list_statistics()
    embedder = Embedder(EmbedConfig(weights="none", recipe="gram+gem", image_size=64), RunConfig(device="cpu"))
    images = torch.randint(0, 256, (2, 3, 64, 64), dtype=torch.uint8)
    raw = embedder.raw(images)
    pool_channels = embedder.model.backbone.channels(embedder.model.pool_layer)
    assert raw.shape == (2, embedder.raw_dim) and embedder.raw_dim > pool_channels
    assert np.allclose(np.linalg.norm(raw[:, -pool_channels:], axis=1), 1.0, atol=1e-5)  # the gem part, normalised


@pytest.mark.parametrize("shape", [(2, 40, 16, 16), (2, 192, 4, 4)])  # more positions than channels, and fewer
def test_the_matrix_square_root_is_that_of_the_gram_matrix(shape: tuple[int, int, int, int]) -> None:
    from stylesearch.model.statistics import matrix_sqrt_gram

    fmap = torch.relu(torch.randn(*shape, dtype=torch.float64))
    x = fmap.flatten(2)
    gram = x @ x.transpose(1, 2)
    gram = gram / gram.diagonal(dim1=1, dim2=2).sum(-1)[:, None, None]
    values, vectors = torch.linalg.eigh(gram)
    exact = vectors @ torch.diag_embed(values.clamp_min(0).sqrt()) @ vectors.transpose(1, 2)
    assert torch.allclose(matrix_sqrt_gram(fmap, steps=40), exact, atol=1e-6)
    few = matrix_sqrt_gram(fmap)  # the default few steps: close, not exact
    assert torch.nn.functional.cosine_similarity(few.flatten(1), exact.flatten(1)).min() > 0.95
