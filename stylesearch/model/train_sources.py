"""Where training batches of raw style statistics come from.

- :class:`FrozenFeatures` (the default): the backbone stays frozen, so each image's raw
  statistics are computed once (plus a mirrored view) and training batches are table lookups.
  An epoch over the 10k fashion-usage training photos takes seconds on a CPU.
- :class:`TunedBackbone` (``train --train-blocks N``): the top ``N`` stages of the backbone
  learn too, so every batch decodes its images with style-keeping augmentations (random
  resized crop, flip) and runs the backbone with gradients. BatchNorm statistics stay frozen
  (batches are a few classes × ``m`` images, a poor estimate of the catalog's statistics).
- :class:`CachedStages` (``--train-blocks N`` on a CPU): the same tuning, made cheap. The
  frozen stages below the tuned ones run once per image and its mirror image; their output is
  kept (float16), so each batch runs only the tuned stages and the statistics of the blocks
  they feed, and the frozen blocks' statistics are table lookups.

Both give float32 [B, R] raw statistics on the training device.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..config import EmbedConfig, RunConfig
from ..errors import ImageError
from ..images import load_augmented, load_tensor
from .backbones import TunedBlocks, create_backbone
from .embed import Embedder, StyleModel, stream
from .runtimes.torch import autocast, training_precision


def initial_features(
    embedder: Embedder, paths: Sequence[Path], views: int
) -> tuple[np.ndarray, list[int], list[tuple[int, str]]]:
    """float16 [V, N, R] raw statistics of the untrained model (V = 2 adds the mirrored
    view), the positions that decoded, and (position, reason) for those that did not."""
    raw = np.zeros((views, len(paths), embedder.raw_dim), np.float16)
    ok = np.zeros(len(paths), bool)
    failures: list[tuple[int, str]] = []
    for view in range(views):
        for batch in stream(embedder, paths, project=False, flip=view == 1, desc="features" if view == 0 else "mirrored"):
            raw[view, batch.positions] = batch.values
            if view == 0:
                ok[batch.positions] = True
                failures += batch.failures
    return raw, np.flatnonzero(ok).tolist(), failures


class FrozenFeatures:
    """Precomputed raw statistics: float16 [V, N, R] (V views), converted per batch."""

    def __init__(self, raw: np.ndarray, device: torch.device) -> None:
        self.views = torch.from_numpy(raw)
        self.device = device

    def parameters(self) -> list[nn.Parameter]:
        return []

    def train_batch(self, positions: np.ndarray, epoch_seed: int, generator: torch.Generator) -> torch.Tensor:
        view = torch.randint(0, self.views.shape[0], (len(positions),), generator=generator)
        return self.views[view, torch.from_numpy(positions)].float().to(self.device)

    @torch.no_grad()
    def features(self, positions: np.ndarray) -> torch.Tensor:
        return self.views[0, torch.from_numpy(positions)].float().to(self.device)

    def state(self) -> dict[str, torch.Tensor]:
        return {}

    def load_state(self, state: dict[str, torch.Tensor]) -> None:
        pass

    def tuned(self) -> TunedBlocks | None:
        return None

    def close(self) -> None:
        pass


class CachedStages:
    """Cached input of the tuned stages [V, N, C, H, W] (V = 2: plain and mirrored) → tuned
    stages → raw statistics, with the frozen blocks' parts taken from ``raw`` [V, N, R]."""

    def __init__(
        self, embed: EmbedConfig, run: RunConfig | None, paths: Sequence[Path], blocks: int, device: torch.device,
        raw: np.ndarray,
    ) -> None:  # fmt: skip
        backbone = create_backbone(embed.backbone, embed.weights)  # unfused: BatchNorm stays a layer
        self.model = StyleModel(backbone, embed).to(device).eval()  # eval: BatchNorm statistics frozen
        self.layers = (self.model.style_layers if self.model.uses_style else ()) + (
            (self.model.pool_layer,) if self.model.uses_pool else ()
        )
        self.stages = backbone.top_stages(self.layers, blocks)
        self.first = backbone.stage_names.index(self.stages[0])
        for p in self.model.parameters():
            p.requires_grad_(False)
        self._trainable = [p for name in self.stages for p in backbone.stages[backbone.stage_names.index(name)].parameters()]
        for p in self._trainable:
            p.requires_grad_(True)
        self.raw = torch.from_numpy(raw)
        self.device = device
        self.eval_batch = (run or RunConfig()).batch_size
        self.cache = self._cache(list(paths), embed.image_size, raw.shape[0])

    def _cache(self, paths: list[Path], size: int, views: int) -> torch.Tensor:
        """float16 [V, N, C, H, W]: the input of the first tuned stage for every photo and view."""
        cache: torch.Tensor | None = None
        with ThreadPoolExecutor(max_workers=max(1, torch.get_num_threads())) as pool, torch.inference_mode():
            for start in range(0, len(paths), self.eval_batch):
                images = torch.stack(list(pool.map(lambda p: load_tensor(p, size), paths[start : start + self.eval_batch])))
                for view in range(views):
                    batch = images.flip(-1) if view else images
                    x = self.model.backbone.activations_before(batch.to(self.device), self.first).half().cpu()
                    if cache is None:
                        cache = torch.empty((views, len(paths), *x.shape[1:]), dtype=torch.float16)
                    cache[view, start : start + len(x)] = x
        assert cache is not None
        return cache

    def parameters(self) -> list[nn.Parameter]:
        return self._trainable

    def _raw(self, view: torch.Tensor, positions: np.ndarray) -> torch.Tensor:
        index = torch.from_numpy(positions)
        x = self.cache[view, index].to(self.device).float()
        maps = self.model.backbone.features_from(x, self.first, self.layers)
        n_style = len(self.model.style_layers) if self.model.uses_style else 0
        frozen = self.raw[view, index].to(self.device)
        return self.model.stats(maps[:n_style], maps[-1] if self.model.uses_pool else None, frozen)

    def train_batch(self, positions: np.ndarray, epoch_seed: int, generator: torch.Generator) -> torch.Tensor:
        view = torch.randint(0, self.cache.shape[0], (len(positions),), generator=generator)
        return self._raw(view, positions)

    @torch.no_grad()
    def features(self, positions: np.ndarray) -> torch.Tensor:
        chunks = [positions[s : s + self.eval_batch] for s in range(0, len(positions), self.eval_batch)]
        out = [self._raw(torch.zeros(len(chunk), dtype=torch.long), chunk) for chunk in chunks]
        return torch.cat(out) if out else torch.zeros((0, self.raw.shape[-1]), device=self.device)

    def state(self) -> dict[str, torch.Tensor]:
        return self.model.backbone.stage_state(self.stages)

    def load_state(self, state: dict[str, torch.Tensor]) -> None:
        self.model.backbone.load_state_dict(state, strict=False)

    def tuned(self) -> TunedBlocks | None:
        return TunedBlocks(self.stages, self.state())

    def close(self) -> None:
        pass


class TunedBackbone:
    """Images → backbone (top ``blocks`` stages trainable) → raw statistics, with augmentation."""

    def __init__(
        self, embed: EmbedConfig, run: RunConfig | None, paths: Sequence[Path], blocks: int, device: torch.device
    ) -> None:
        backbone = create_backbone(embed.backbone, embed.weights)  # unfused: BatchNorm stays a layer
        self.model = StyleModel(backbone, embed).to(device).to(memory_format=torch.channels_last).eval()
        used = self.model.style_layers if self.model.uses_style else ()
        used += (self.model.pool_layer,) if self.model.uses_pool else ()
        self.stages = backbone.top_stages(used, blocks)
        for p in self.model.parameters():
            p.requires_grad_(False)
        self._trainable = [p for name in self.stages for p in backbone.stages[backbone.stage_names.index(name)].parameters()]
        for p in self._trainable:
            p.requires_grad_(True)
        self.paths = list(paths)
        self.size = embed.image_size
        self.device = device
        run = run or RunConfig()
        self.eval_batch = run.batch_size
        self._pool = ThreadPoolExecutor(max_workers=max(1, torch.get_num_threads()), thread_name_prefix="decode")

    def parameters(self) -> list[nn.Parameter]:
        return self._trainable

    def _decode(self, positions: np.ndarray, seed: int | None) -> torch.Tensor:
        def one(position: int) -> torch.Tensor:
            if seed is None:
                return load_tensor(self.paths[position], self.size)
            try:
                return load_augmented(self.paths[position], self.size, np.random.default_rng((seed, position)))
            except ImageError:  # decoded once already; a file changed under us: use it plain
                return load_tensor(self.paths[position], self.size)

        images = list(self._pool.map(one, positions.tolist()))
        return torch.stack(images).to(self.device, non_blocking=True).contiguous(memory_format=torch.channels_last)

    def train_batch(self, positions: np.ndarray, epoch_seed: int, generator: torch.Generator) -> torch.Tensor:
        with autocast(self.device, training_precision(self.device)):
            return self.model(self._decode(positions, epoch_seed)).float()

    @torch.no_grad()
    def features(self, positions: np.ndarray) -> torch.Tensor:
        out = []
        for start in range(0, len(positions), self.eval_batch):
            with autocast(self.device, training_precision(self.device)):
                out.append(self.model(self._decode(positions[start : start + self.eval_batch], None)).float())
        return torch.cat(out)

    def state(self) -> dict[str, torch.Tensor]:
        return self.model.backbone.stage_state(self.stages)

    def load_state(self, state: dict[str, torch.Tensor]) -> None:
        self.model.backbone.load_state_dict(state, strict=False)

    def tuned(self) -> TunedBlocks | None:
        return TunedBlocks(self.stages, self.state())

    def close(self) -> None:
        self._pool.shutdown(wait=True)
