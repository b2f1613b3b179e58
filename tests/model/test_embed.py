from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from stylesearch.config import EmbedConfig, RunConfig
from stylesearch.errors import ConfigError, ImageError
from stylesearch.model.embed import Embedder, cpu_micro_batch
from stylesearch.model.projection import Projection

from ..conftest import RUN, SMALL, noise, solid


def test_iter_raw_reports_failures_and_keeps_positions(tmp_path: Path) -> None:
    paths = [noise(tmp_path / f"{i}.png", i) for i in range(5)]
    (tmp_path / "bad.jpg").write_text("not an image")
    paths.insert(2, tmp_path / "bad.jpg")
    emb = Embedder(SMALL, RunConfig(device="cpu", batch_size=4, workers=1, progress=False))
    batches = list(emb.iter_raw(paths))
    positions = [p for b in batches for p in b.positions]
    assert positions == [0, 1, 3, 4, 5]
    assert [f[0] for b in batches for f in b.failures] == [2]
    raw = np.concatenate([b.values for b in batches])
    assert raw.shape == (5, emb.raw_dim) and np.isfinite(raw).all()


def test_embed_is_deterministic_and_normalised(tmp_path: Path) -> None:
    paths = [solid(tmp_path / "a.png", (200, 30, 30)), noise(tmp_path / "b.png", 3)]
    emb = Embedder(SMALL, RUN)
    raw = np.concatenate([b.values for b in emb.iter_raw(paths)])
    emb.projection = Projection.identity(raw.shape[1])
    v1, v2 = emb.embed(paths), emb.embed(paths)
    assert np.allclose(v1, v2) and np.allclose(np.linalg.norm(v1, axis=1), 1, atol=1e-5)
    assert float(v1[0] @ v1[1]) < 0.99
    with pytest.raises(ImageError, match="image 2 of 2"):
        emb.embed([paths[0], b"junk"])


def test_cpu_micro_batches_and_device_checks() -> None:
    assert cpu_micro_batch(128) == 16 and cpu_micro_batch(224) == 5 and cpu_micro_batch(1024) == 1
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA"):
            Embedder(EmbedConfig(image_size=64), RunConfig(device="cuda"))


def test_bf16_backbone_keeps_the_style_vectors(tmp_path: Path) -> None:
    """``precision=bf16`` (autocast) changes the raw statistics only slightly: the statistics
    themselves stay float32, and the vectors point the same way."""
    paths = [noise(tmp_path / f"{i}.png", i, size=96) for i in range(6)]
    fp32 = Embedder(SMALL, RunConfig(device="cpu", workers=0, progress=False, precision="fp32"))
    bf16 = Embedder(SMALL, RunConfig(device="cpu", workers=0, progress=False, precision="bf16"))
    raw32 = np.concatenate([b.values for b in fp32.iter_raw(paths)])
    raw16 = np.concatenate([b.values for b in bf16.iter_raw(paths)])
    assert raw16.dtype == np.float32
    cos = np.sum(raw32 * raw16, 1) / (np.linalg.norm(raw32, axis=1) * np.linalg.norm(raw16, axis=1))
    assert cos.min() > 0.99
    with pytest.raises(ConfigError, match="precision"):
        RunConfig(precision="fp8")


def test_device_decoding_gives_the_same_statistics(tmp_path: Path) -> None:
    """``--decode device`` (batched JPEG decoding on the model's device; here the CPU) keeps
    every image's statistics next to the CPU path's, and its failures."""
    paths = [noise(tmp_path / f"{i}.jpg", i) for i in range(6)] + [noise(tmp_path / "p.png", 9)]
    (tmp_path / "bad.jpg").write_text("not an image")
    paths.insert(3, tmp_path / "bad.jpg")
    results = []
    for decode in ("cpu", "device"):
        emb = Embedder(SMALL, RunConfig(device="cpu", batch_size=4, workers=0, progress=False, decode=decode))
        assert emb.reader.decodes_on_device == (decode == "device")
        batches = list(emb.iter_raw(paths))
        raw = {int(p): r for b in batches for p, r in zip(b.positions, b.values)}
        results.append((raw, [f[0] for b in batches for f in b.failures]))
    (cpu, cpu_failed), (dev, dev_failed) = results
    assert cpu_failed == dev_failed == [3] and sorted(cpu) == sorted(dev) == [0, 1, 2, 4, 5, 6, 7]
    for p in cpu:
        assert np.abs(cpu[p] - dev[p]).max() <= 0.02 * (np.abs(cpu[p]).max() + 1e-6)


def test_flip_averaging_gives_a_photo_and_its_mirror_one_vector() -> None:
    import torch

    run = RunConfig(device="cpu", workers=0, progress=False)
    images = torch.randint(0, 256, (2, 3, 64, 64), dtype=torch.uint8)
    mirrored = images.flip(-1)
    tta = Embedder(EmbedConfig(weights="none", image_size=64, tta="flip"), run)
    plain = Embedder(EmbedConfig(weights="none", image_size=64), run)
    a, b = tta.raw(images), tta.raw(mirrored)
    assert np.allclose(a, b, atol=1e-4)
    p, q = plain.raw(images), plain.raw(mirrored)
    assert not np.allclose(p, q, atol=1e-3) and np.allclose(a, (p + q) / 2, atol=1e-4)


def test_indexes_from_before_the_options_read_as_made_without_them() -> None:
    old = {"backbone": "efficientnet_lite0", "weights": "imagenet", "layers": None, "pool_layer": None,
           "recipe": "gram", "dim": 256, "image_size": 128}  # fmt: skip
    config = EmbedConfig.from_dict(old)
    assert (config.tta, config.whiten, config.whiten_shrink) == ("none", 0.0, 0.0)
    # ... and with the default layers of their time, which the manifests of today record as a revision
    assert config.layers == ("block3", "block5", "block8", "block11")
    assert EmbedConfig.from_dict(EmbedConfig().to_record()) == EmbedConfig()
    assert EmbedConfig.from_dict(EmbedConfig(backbone="efficientnet_lite1").to_record()).layers is None
