"""Style statistics of feature maps, as a registry: one small class per statistic.

A recipe (``EmbedConfig.recipe``) names statistics joined with ``+``; each reads either every
style block (``reads = "style"``) or the pool block (``reads = "pool"``) and gives one
L2-normalised part per block it reads. Parts are concatenated, in recipe order, into the raw
statistics ``float32 [B, R]`` that a projection makes compact. Built in:

- ``gram``: ``G = F Fᵀ / (H·W)`` of each block's map ``F`` [B, C, H, W] (channels reduced to at
  most ``MAX_GRAM_CHANNELS`` by a fixed, seeded random projection first), upper triangle,
  signed square root;
- ``meanstd``: per-channel mean and standard deviation, signed square root;
- ``gramsqrt``: the same Gram matrix, normalised by its matrix square root (iterative
  Newton–Schulz, as in iSQRT-COV) instead of the element-wise signed square root;
- ``gramsoft``: the Gram matrix of softmax-smoothed activations (channels softmax per
  position), the smoothing that makes residual backbones' Gram statistics carry style;
- ``gap`` / ``gmp``: global average / max pooling of the pool block.

A new statistic is one class registered with :func:`register_statistic`; tests are
parametrised over :func:`list_statistics`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from ..config import parse_recipe
from ..errors import ConfigError
from ..registry import Registry

MAX_GRAM_CHANNELS = 256
EPS = 1e-12


def signed_sqrt(x: torch.Tensor) -> torch.Tensor:
    return torch.sign(x) * torch.sqrt(torch.abs(x) + EPS)


_TRIU: dict[tuple[int, str], torch.Tensor] = {}


def _triu_flat(c: int, device: torch.device) -> torch.Tensor:
    """Flat indices of the upper triangle (diagonal included) of a c×c matrix, cached."""
    key = (c, str(device))
    if key not in _TRIU:
        with torch.inference_mode(False):  # a normal tensor: training (autograd) uses it too
            rows, cols = torch.triu_indices(c, c, device=device)
            _TRIU[key] = rows * c + cols
    return _TRIU[key]


def gram_upper(fmap: torch.Tensor, triu: torch.Tensor | None = None) -> torch.Tensor:
    """float [B, C, H, W] → upper triangle of the Gram matrix, float [B, C(C+1)/2].

    Computed as ``Xᵀ X`` with ``X`` the [B, H·W, C] view of the map, which is free (no copy)
    for the channels-last maps the embedder runs on. ``triu``: the upper triangle's flat
    indices (:func:`_triu_flat`), when the caller holds them (a module's buffer, which an
    exported graph keeps as a constant)."""
    b, c, h, w = fmap.shape
    if fmap.is_contiguous(memory_format=torch.channels_last) or not fmap.is_contiguous():
        positions = fmap.permute(0, 2, 3, 1).reshape(b, h * w, c)
        gram = torch.bmm(positions.transpose(1, 2), positions) / float(h * w)
    else:  # planar maps (an exported graph's): F Fᵀ without a transpose of the map
        flat = fmap.reshape(b, c, h * w)
        gram = torch.bmm(flat, flat.transpose(1, 2)) / float(h * w)
    # index_select, not gram[:, triu]: an exported graph gets one Gather instead of two transposes around it
    return torch.index_select(gram.reshape(b, c * c), 1, _triu_flat(c, fmap.device) if triu is None else triu)


def mean_std(fmap: torch.Tensor) -> torch.Tensor:
    """float [B, C, H, W] → per-channel mean and std, float [B, 2C]."""
    flat = fmap.flatten(2)
    return torch.cat([flat.mean(-1), flat.std(-1, unbiased=False)], dim=1)


class Statistic(nn.Module):
    """One statistic over the blocks it reads. Subclasses set ``reads`` and implement
    :meth:`block_dims` and :meth:`block` (float32 [B, C, H, W] → float32 [B, d], before the
    L2 normalisation that :meth:`forward` applies)."""

    name: ClassVar[str] = ""
    reads: ClassVar[str] = "style"  # "style": every style block; "pool": the pool block

    def __init__(self, channels: Sequence[int], seed: int = 0) -> None:
        super().__init__()
        self.channels = tuple(channels)

    def block_dims(self, channels: int) -> int:
        raise NotImplementedError

    def block(self, fmap: torch.Tensor, position: int) -> torch.Tensor:
        raise NotImplementedError

    @property
    def dims(self) -> int:
        return sum(self.block_dims(c) for c in self.channels)

    def forward(self, maps: Sequence[torch.Tensor | None]) -> list[torch.Tensor | None]:
        """One L2-normalised part per map (``None`` for a map that is ``None``: a frozen block
        whose part the caller holds)."""
        return [None if fmap is None else F.normalize(self.block(fmap.float(), i), dim=1) for i, fmap in enumerate(maps)]


STATISTICS: Registry[type[Statistic]] = Registry()
# class decorator: ``@register_statistic("gem")`` makes ``--recipe gem`` use the class
register_statistic = STATISTICS.register


def list_statistics() -> list[str]:
    return list(STATISTICS)


def statistic_class(name: str, recipe: str = "") -> type[Statistic]:
    cls = STATISTICS.get(name)
    if cls is None:
        raise ConfigError(
            f"unknown style recipe {recipe or name!r}: use one of {', '.join(STATISTICS)} or a combination joined "
            "with '+', e.g. 'gram+gap'"
        )
    return cls


NEWTON_SCHULZ_STEPS = 5  # iterations of the matrix square root (iSQRT-COV's choice)


def matrix_sqrt_gram(fmap: torch.Tensor, steps: int = NEWTON_SCHULZ_STEPS) -> torch.Tensor:
    """float [B, C, H, W] → ``(G / tr G)^½`` of its Gram matrix ``G``, float [B, C, C], by
    coupled Newton–Schulz iterations (matrix products only: it exports to OpenVINO and has
    stable gradients).

    Iterated on the smaller of the C×C Gram matrix and the N×N position kernel ``K = X Xᵀ``
    (N = H·W: 16 positions for the last blocks at 128 px), where ``Xᵀ Z X`` with ``Z ≈
    (K / tr K)^-½`` is the same matrix, since both sides' iterations are one polynomial of the
    shared spectrum."""
    b, c, h, w = fmap.shape
    x = fmap.permute(0, 2, 3, 1).reshape(b, h * w, c)  # positions × channels
    small_kernel = h * w < c
    m = torch.bmm(x, x.transpose(1, 2)) if small_kernel else torch.bmm(x.transpose(1, 2), x)
    trace = x.square().sum((1, 2)).clamp_min(EPS)[:, None, None]  # tr(XᵀX) = tr(XXᵀ), no diagonal op (OpenVINO)
    eye = torch.eye(m.shape[-1], dtype=m.dtype, device=m.device).expand_as(m)
    y, z = m / trace, eye
    for _ in range(steps):
        t = 0.5 * (3.0 * eye - torch.bmm(z, y))
        y, z = torch.bmm(y, t), torch.bmm(t, z)
    if small_kernel:
        return torch.bmm(torch.bmm(x.transpose(1, 2), z), x) / trace
    return y


class _ReducedGram(Statistic):
    """A statistic of a C×C matrix per block (channels first reduced to at most
    ``MAX_GRAM_CHANNELS`` by a fixed, seeded random projection), upper triangle."""

    def __init__(self, channels: Sequence[int], seed: int = 0) -> None:
        super().__init__(channels, seed)
        gen = torch.Generator().manual_seed(seed)
        reducers = []
        for c in self.channels:
            if c > MAX_GRAM_CHANNELS:
                q, _ = torch.linalg.qr(torch.randn(c, MAX_GRAM_CHANNELS, generator=gen))
                reducers.append(q.T.contiguous())
            else:
                reducers.append(torch.empty(0))
        self.reducers = nn.ParameterList([nn.Parameter(r, requires_grad=False) for r in reducers])
        for i, c in enumerate(self.channels):  # buffers move with the module and export as constants
            self.register_buffer(f"triu{i}", _triu_flat(min(c, MAX_GRAM_CHANNELS), torch.device("cpu")).clone(), persistent=False)

    def block_dims(self, channels: int) -> int:
        c = min(channels, MAX_GRAM_CHANNELS)
        return c * (c + 1) // 2

    def reduce(self, fmap: torch.Tensor, position: int) -> torch.Tensor:
        reducer = self.reducers[position]
        return torch.einsum("rc,bchw->brhw", reducer, fmap) if reducer.numel() else fmap

    def upper(self, matrix: torch.Tensor, position: int) -> torch.Tensor:
        b, c, _ = matrix.shape
        return torch.index_select(matrix.reshape(b, c * c), 1, getattr(self, f"triu{position}"))


@register_statistic("gram")
class Gram(_ReducedGram):
    """Upper triangle of each block's Gram matrix, signed square root."""

    def block(self, fmap: torch.Tensor, position: int) -> torch.Tensor:
        return signed_sqrt(gram_upper(self.reduce(fmap, position), getattr(self, f"triu{position}")))


@register_statistic("gramsqrt")
class GramSqrt(_ReducedGram):
    """Upper triangle of each block's Gram matrix normalised by its matrix square root
    (:func:`matrix_sqrt_gram`)."""

    def block(self, fmap: torch.Tensor, position: int) -> torch.Tensor:
        return self.upper(matrix_sqrt_gram(self.reduce(fmap, position)), position)


SOFTMAX_TEMPERATURE = 1.0  # of the channel softmax in ``gramsoft``


@register_statistic("gramsoft")
class GramSoft(_ReducedGram):
    """Gram matrix of softmax-smoothed activations (a softmax over channels at each
    position): it damps the few peaky channels that dominate a residual backbone's Gram
    statistics. Signed square root, as ``gram``."""

    def block(self, fmap: torch.Tensor, position: int) -> torch.Tensor:
        smooth = torch.softmax(self.reduce(fmap, position) / SOFTMAX_TEMPERATURE, dim=1)
        return signed_sqrt(gram_upper(smooth, getattr(self, f"triu{position}")))


@register_statistic("meanstd")
class MeanStd(Statistic):
    """Per-channel mean and standard deviation of each block, signed square root."""

    def block_dims(self, channels: int) -> int:
        return 2 * channels

    def block(self, fmap: torch.Tensor, position: int) -> torch.Tensor:
        return signed_sqrt(mean_std(fmap))


@register_statistic("gap")
class GlobalAveragePool(Statistic):
    """Global average pooling of the pool block (what most image-search tools index)."""

    reads = "pool"

    def block_dims(self, channels: int) -> int:
        return channels

    def block(self, fmap: torch.Tensor, position: int) -> torch.Tensor:
        return fmap.flatten(2).mean(-1)


@register_statistic("gmp")
class GlobalMaxPool(Statistic):
    """Global max pooling of the pool block."""

    reads = "pool"

    def block_dims(self, channels: int) -> int:
        return channels

    def block(self, fmap: torch.Tensor, position: int) -> torch.Tensor:
        return fmap.flatten(2).amax(-1)


class StyleStatistics(nn.Module):
    """Feature maps → raw style statistics, float32 [B, R]: the recipe's statistics in order,
    each part L2-normalised."""

    def __init__(self, recipe: str, style_channels: Sequence[int], pool_channels: int, seed: int = 0) -> None:
        super().__init__()
        self.parts = parse_recipe(recipe)
        classes = [statistic_class(name, recipe) for name in self.parts]
        self.reads = [cls.reads for cls in classes]
        built = [cls(style_channels if cls.reads == "style" else (pool_channels,), seed) for cls in classes]
        self.statistics = nn.ModuleList(built)
        self.dims: int = sum(statistic.dims for statistic in built)
        self.uses_style = any(cls.reads == "style" for cls in classes)
        self.uses_pool = any(cls.reads == "pool" for cls in classes)

    def forward(
        self,
        style_maps: Sequence[torch.Tensor | None],
        pool_map: torch.Tensor | None,
        frozen: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The raw statistics of the maps. With ``frozen`` (raw statistics computed before,
        float [B, R]), a block whose map is ``None`` takes its part from ``frozen``: training
        with cached early stages recomputes only the tuned blocks' parts."""
        given = next((m for m in (*style_maps, pool_map) if m is not None), frozen)
        assert given is not None
        with torch.autocast(given.device.type, enabled=False):  # statistics in float32 even under autocast
            out: list[torch.Tensor] = []
            start = 0
            for statistic, reads in zip(self.statistics, self.reads):
                # called as a module: an exported graph names its nodes after it (int8 keeps them float)
                for position, part in enumerate(statistic(style_maps if reads == "style" else [pool_map])):
                    width = statistic.block_dims(statistic.channels[position])
                    if part is None:
                        assert frozen is not None, "a block without its map needs the frozen statistics"
                        part = frozen[:, start : start + width].float()
                    out.append(part)
                    start += width
            return torch.cat(out, dim=1)
