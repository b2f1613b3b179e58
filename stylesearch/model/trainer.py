"""The metric-learning loop, in pytorch-metric-learning's trainer shape: one object holds the
learnt map, the feature source, the loss and miner, the optimiser and its schedule; it runs
epochs of ``MPerClassSampler`` batches, validates (MAP@R, leave-one-out on the validation
split) after each, stops early, keeps the best state, and checkpoints every epoch so that
``resume`` continues an interrupted run exactly (each epoch is seeded on its own)."""

from __future__ import annotations

import json
import logging
import os
import random
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..catalog import Item
from ..config import EmbedConfig, TrainConfig
from ..errors import ConfigError, StyleSearchError
from .maps import LearntMap
from .sampling import WithinGroupSampler, mix_within
from .train_sources import CachedStages, FrozenFeatures, TunedBackbone

log = logging.getLogger(__name__)

CHECKPOINT_FILE = "checkpoint.pt"
LOG_FILE = "training_log.json"
MAP_AT_R = "mean_average_precision_at_r"
Source = FrozenFeatures | CachedStages | TunedBackbone


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def build_loss(cfg: TrainConfig, n_labels: int, dim: int) -> tuple[nn.Module, Any]:
    """(loss, miner or None) from pytorch-metric-learning."""
    from pytorch_metric_learning import losses, miners

    if cfg.loss == "multisimilarity":
        return losses.MultiSimilarityLoss(alpha=2, beta=50, base=0.5), miners.MultiSimilarityMiner(epsilon=0.1)
    if cfg.loss == "proxyanchor":
        return losses.ProxyAnchorLoss(num_classes=n_labels, embedding_size=dim, margin=0.1, alpha=32), None
    if cfg.loss == "triplet":
        return losses.TripletMarginLoss(margin=0.1), miners.TripletMarginMiner(margin=0.1, type_of_triplets="semihard")
    return losses.ContrastiveLoss(pos_margin=1.0, neg_margin=0.5), miners.PairMarginMiner(pos_margin=1.0, neg_margin=0.5)


def validation_metrics(vectors: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """MAP@R and precision@1 of ``vectors`` retrieving each other (leave-one-out)."""
    from pytorch_metric_learning.utils.accuracy_calculator import AccuracyCalculator

    calc = AccuracyCalculator(
        include=("mean_average_precision_at_r", "precision_at_1"), k="max_bin_count", device=torch.device("cpu")
    )
    out = calc.get_accuracy(vectors.float().cpu(), labels.cpu(), ref_includes_query=True)
    return {k: float(v) for k, v in out.items()}


def within_sampler(
    items: Sequence[Item], train_pos: np.ndarray, y_all: torch.Tensor, cfg: TrainConfig, m: int, batch_size: int
) -> WithinGroupSampler | None:
    """The within-group sampler of ``cfg.within`` over the training positions, or ``None``."""
    if not cfg.within:
        return None
    keys = sorted({key for item in items for key in item.attributes})
    if cfg.within not in keys:
        raise ConfigError(f"--within {cfg.within!r}: the catalog has no such attribute; it has {', '.join(keys) or 'none'}")
    groups = [items[int(p)].attributes.get(cfg.within) for p in train_pos]
    sampler = WithinGroupSampler(train_pos, y_all[train_pos].tolist(), groups, m, batch_size)
    if not sampler:
        raise ConfigError(f"--within {cfg.within!r}: no value of it has two labels with two images each; drop --within")
    return sampler


class Trainer:
    """Trains ``proj`` on ``source``'s features of the labelled ``items`` (label index
    ``y_all``), split into ``train_pos`` / ``val_pos``; files go into ``out``."""

    def __init__(
        self,
        proj: LearntMap,
        source: Source,
        items: Sequence[Item],
        y_all: torch.Tensor,
        split: tuple[np.ndarray, np.ndarray],
        cfg: TrainConfig,
        identity: tuple[list[str], EmbedConfig],
        out: Path,
    ) -> None:
        self.proj, self.source, self.y_all, self.cfg, self.out = proj, source, y_all, cfg, out
        self.train_pos, self.val_pos = split
        self.names, self.embed = identity
        self.device = next(proj.parameters()).device
        self.start_weight = proj.linear.weight.detach().clone()  # the start, anchor of the L2-SP penalty
        self.loss_fn, self.miner = build_loss(cfg, len(self.names), proj.linear.out_features)
        self.loss_fn = self.loss_fn.to(self.device)
        params: list[dict[str, Any]] = [{"params": list(proj.linear.parameters()), "lr": cfg.lr}]
        if source.parameters():
            params.append({"params": source.parameters(), "lr": cfg.backbone_lr})
        if any(True for _ in self.loss_fn.parameters()):
            params.append({"params": list(self.loss_fn.parameters()), "lr": cfg.lr * 100})  # proxies learn faster
        if cfg.optimizer == "adamw":
            self.opt: torch.optim.Optimizer = torch.optim.AdamW(params, weight_decay=cfg.weight_decay)
        else:
            self.opt = torch.optim.SGD(params, momentum=0.9, weight_decay=cfg.weight_decay)
        n_labels_train = len(set(y_all[self.train_pos].tolist()))
        self.m = min(cfg.m_per_class, max(1, cfg.batch_size // 2))
        self.batch_size = max(self.m, min(cfg.batch_size, self.m * n_labels_train) // self.m * self.m)
        self.steps_per_epoch = max(1, len(self.train_pos) // self.batch_size)
        self.within = within_sampler(items, self.train_pos, y_all, cfg, self.m, self.batch_size)
        self.sched = torch.optim.lr_scheduler.OneCycleLR(
            self.opt,
            max_lr=[g["lr"] for g in params],
            total_steps=cfg.epochs * self.steps_per_epoch + 1,
            pct_start=max(cfg.warmup, 1e-3),
            anneal_strategy="cos",
        )
        self.history: list[dict[str, Any]] = []
        self.start_epoch, self.best_metric, self.best_epoch, self.stale = 0, -1.0, 0, 0
        self.best_state: dict[str, Any] | None = None
        self.scored = True  # whether validation MAP@R could be measured (else the last epoch is kept)
        self.epoch_seconds: list[float] = []

    # ------------------------------------------------------------------ state

    def state(self) -> dict[str, Any]:
        """A copy of what training changes: the map's weights and the tuned blocks'."""
        state: dict[str, Any] = {k: v.detach().cpu().clone() for k, v in self.proj.state_dict().items()}
        state["backbone"] = self.source.state()
        return state

    def restore_best(self) -> None:
        if self.best_state is None:
            raise StyleSearchError("training ran no epoch; check --epochs")
        self.proj.load_state_dict({k: v for k, v in self.best_state.items() if k != "backbone"})
        self.source.load_state(self.best_state["backbone"])

    def checkpoint(self, epoch: int) -> None:
        """Everything :meth:`resume` needs, written whole (temp file, then rename)."""
        path = self.out / CHECKPOINT_FILE
        progress = {"best_metric": self.best_metric, "best_epoch": self.best_epoch, "best_state": self.best_state}
        identity = {"labels": self.names, "embed": self.embed.to_dict(), "train": self.cfg.to_dict()}
        modules = {"proj": self.proj.state_dict(), "backbone": self.source.state(), "loss": self.loss_fn.state_dict(),
                   "opt": self.opt.state_dict(), "sched": self.sched.state_dict()}  # fmt: skip
        state = {"epoch": epoch, **modules, **progress, "stale": self.stale, "history": self.history}
        torch.save({**state, "rng": torch.get_rng_state(), **identity}, str(path) + ".tmp")
        os.replace(str(path) + ".tmp", path)
        (self.out / LOG_FILE).write_text(json.dumps(self.history, indent=2))

    def resume(self) -> None:
        """Continue from :meth:`checkpoint`'s file, which must be of this very run."""
        path = self.out / CHECKPOINT_FILE
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
        identity = (ckpt.get("labels"), ckpt.get("embed"), ckpt.get("train"))
        if identity != (self.names, self.embed.to_dict(), self.cfg.to_dict()):
            raise ConfigError(f"{path} belongs to another training run (labels or settings differ); use a new --out")
        self.proj.load_state_dict(ckpt["proj"])
        self.source.load_state(ckpt.get("backbone", {}))
        self.loss_fn.load_state_dict(ckpt["loss"])
        self.opt.load_state_dict(ckpt["opt"])
        self.sched.load_state_dict(ckpt["sched"])
        self.start_epoch, self.best_metric, self.best_epoch = ckpt["epoch"], ckpt["best_metric"], ckpt["best_epoch"]
        self.best_state, self.stale, self.history = ckpt["best_state"], ckpt["stale"], ckpt["history"]
        torch.set_rng_state(ckpt["rng"])
        log.info("resuming after epoch %d", self.start_epoch)

    # ------------------------------------------------------------------ the loop

    def validate(self) -> dict[str, float]:
        self.proj.eval()
        with torch.no_grad():
            vectors = F.normalize(self.proj(self.source.features(self.val_pos)), dim=1)
        return validation_metrics(vectors, self.y_all[self.val_pos])

    def score_start(self) -> None:
        """Epoch 0 is the untrained start: training is kept only where validation says it helps."""
        if not len(self.val_pos):
            return
        metrics = self.validate()
        if np.isfinite(metrics[MAP_AT_R]):
            self.best_metric, self.best_state = metrics[MAP_AT_R], self.state()
            self.history.append({"epoch": 0, **{f"val_{k}": round(v, 5) for k, v in metrics.items()}})

    def _batches(self, epoch: int) -> list[np.ndarray]:
        from pytorch_metric_learning import samplers

        cfg = self.cfg
        sampler = samplers.MPerClassSampler(
            self.y_all[self.train_pos].tolist(),
            m=self.m,
            batch_size=self.batch_size,
            length_before_new_iter=max(len(self.train_pos), self.batch_size),
        )  # a catalog smaller than one batch trains on one batch (drawn with replacement) an epoch
        order = self.train_pos[np.array(list(sampler), dtype=np.int64)]
        size = self.batch_size
        batches = [order[step * size : (step + 1) * size] for step in range(self.steps_per_epoch)]
        if self.within is not None:
            batches = mix_within(batches, self.within, cfg.within_share, cfg.seed * 1000 + epoch)
        return batches

    def run_epoch(self, epoch: int, bar: Any) -> float:
        """One epoch (0-based); its mean loss."""
        seed = self.cfg.seed * 1000 + epoch
        seed_everything(seed)  # each epoch reproducible on its own: resume = uninterrupted run
        generator = torch.Generator().manual_seed(seed)
        self.proj.train()
        total, steps = 0.0, 0
        for batch in self._batches(epoch):
            x = self.source.train_batch(batch, seed, generator)
            yb = self.y_all[torch.from_numpy(batch)].to(self.device)
            emb = F.normalize(self.proj(x), dim=1)
            loss = self.loss_fn(emb, yb, self.miner(emb, yb)) if self.miner is not None else self.loss_fn(emb, yb)
            if self.cfg.anchor > 0:
                loss = loss + self.cfg.anchor * (self.proj.linear.weight - self.start_weight).pow(2).sum()
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            self.sched.step()
            total += loss.item()
            steps += 1
            bar.update(1)
            bar.set_postfix(loss=f"{total / steps:.3f}")
        return total / max(steps, 1)

    def _keep(self, epoch: int, entry: dict[str, Any]) -> None:
        """Validate after ``epoch`` (0-based) and keep its state if it is the best so far."""
        metric = float(epoch)  # without a score, the last epoch is kept
        if len(self.val_pos):
            metrics = self.validate()
            entry.update({f"val_{k}": round(v, 5) for k, v in metrics.items()})
            if np.isfinite(metrics[MAP_AT_R]):
                metric = metrics[MAP_AT_R]
            else:  # too few validation images per label to score
                self.scored = False
        else:
            self.scored = False
        if metric > self.best_metric:
            self.best_metric, self.best_epoch, self.stale, self.best_state = metric, epoch + 1, 0, self.state()
        else:
            self.stale += 1

    def fit(self, show: bool) -> None:
        """Train until ``cfg.epochs`` or ``cfg.patience`` epochs without a better score."""
        from tqdm.auto import tqdm

        for epoch in range(self.start_epoch, self.cfg.epochs):
            if self.stale >= self.cfg.patience and len(self.val_pos):
                break
            te = time.perf_counter()
            with tqdm(
                total=self.steps_per_epoch, desc=f"epoch {epoch + 1}/{self.cfg.epochs}", disable=not show, leave=False
            ) as bar:
                loss = self.run_epoch(epoch, bar)
            entry: dict[str, Any] = {"epoch": epoch + 1, "loss": round(loss, 5), "lr": self.sched.get_last_lr()[0]}
            self._keep(epoch, entry)
            entry["seconds"] = round(time.perf_counter() - te, 2)
            self.epoch_seconds.append(entry["seconds"])
            self.history.append(entry)
            log.info("epoch %s", entry)
            self.checkpoint(epoch + 1)
