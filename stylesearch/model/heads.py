"""Classification heads over style vectors: a linear layer (default) or a small MLP,
trained with cross-entropy and saved with their label map."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import IndexCorruptError

HEAD_FILE = "head.pt"
MIN_HEAD_STEPS = 600
HEAD_LABELS_FILE = "head.json"


def build_head(kind: str, dim: int, n_labels: int, hidden: int = 256) -> nn.Module:
    if kind == "linear":
        return nn.Linear(dim, n_labels)
    if kind == "mlp":
        return nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Dropout(0.1), nn.Linear(hidden, n_labels))
    raise ValueError(f"unknown head {kind!r}")


@dataclass
class StyleHead:
    """A trained head: ``predict`` gives per-label probabilities for style vectors."""

    kind: str
    labels: list[str]
    module: nn.Module

    @torch.inference_mode()
    def predict(self, vectors: np.ndarray) -> np.ndarray:
        """float32 [N, D] style vectors → float32 [N, C] probabilities (columns = ``labels``)."""
        self.module.eval()
        return F.softmax(self.module(torch.as_tensor(vectors, dtype=torch.float32)), dim=1).numpy()

    def save(self, folder: Path) -> None:
        torch.save(self.module.state_dict(), folder / HEAD_FILE)
        dim = next(self.module.parameters()).shape[1]
        (folder / HEAD_LABELS_FILE).write_text(json.dumps({"kind": self.kind, "labels": self.labels, "dim": int(dim)}, indent=2))

    @classmethod
    def load(cls, folder: Path) -> StyleHead | None:
        """The head saved in ``folder``, or ``None`` when there is none."""
        if not (folder / HEAD_LABELS_FILE).is_file():
            return None
        try:
            info = json.loads((folder / HEAD_LABELS_FILE).read_text())
            module = build_head(info["kind"], int(info["dim"]), len(info["labels"]))
            module.load_state_dict(torch.load(folder / HEAD_FILE, map_location="cpu", weights_only=True), strict=True)
        except (OSError, KeyError, ValueError, RuntimeError) as exc:
            raise IndexCorruptError(f"cannot read the classification head in {str(folder)!r} ({exc}); retrain it") from exc
        return cls(info["kind"], list(info["labels"]), module.eval())


def train_head(
    vectors: np.ndarray,
    labels: Sequence[str],
    kind: str = "linear",
    *,
    epochs: int = 60,
    lr: float = 3e-2,
    weight_decay: float = 1e-4,
    seed: int = 0,
) -> StyleHead:
    """Fit a head with cross-entropy (AdamW, full-batch steps; classes weighted by inverse
    frequency so that small styles are not drowned). ``vectors`` float32 [N, D]."""
    names = sorted(set(labels))
    index = {n: i for i, n in enumerate(names)}
    y = torch.tensor([index[label] for label in labels])
    x = torch.as_tensor(vectors, dtype=torch.float32)
    counts = torch.bincount(y, minlength=len(names)).float()
    batch = 1024
    # Small catalogs get more passes: at least ``MIN_HEAD_STEPS`` optimiser steps in all.
    epochs = max(epochs, -(-MIN_HEAD_STEPS // max(1, -(-len(x) // batch))))
    weights = counts.sum() / (len(names) * counts.clamp(min=1))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        module = build_head(kind, x.shape[1], len(names))
        opt = torch.optim.AdamW(module.parameters(), lr=lr, weight_decay=weight_decay)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
        module.train()
        for _ in range(epochs):
            perm = torch.randperm(len(x))
            for start in range(0, len(x), batch):
                rows = perm[start : start + batch]
                loss = F.cross_entropy(module(x[rows]), y[rows], weight=weights)
                opt.zero_grad()
                loss.backward()
                opt.step()
            sched.step()
    return StyleHead(kind, names, module.eval())
