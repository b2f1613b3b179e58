"""Where a backbone's weights come from: ``none`` (a seeded random init, for tests), a local
state-dict file (named by its digest), or ImageNet (torchvision's, from the torch hub cache;
refused offline, :func:`~stylesearch.config.environment`, instead of a download)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from ..config import environment
from ..errors import BackboneError


def _file_id(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return f"file:{path.name}:sha256:{digest.hexdigest()[:16]}"


def load_state_dict(module: nn.Module, path: Path, *, name: str) -> None:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure to read a weights file means the same
        raise BackboneError(f"cannot read weights file {str(path)!r} for {name}: {exc}") from exc
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise BackboneError(f"weights file {str(path)!r} does not fit backbone {name}: {first}") from exc


def init_weights(module_factory: Callable[[], nn.Module], weights: str, name: str) -> tuple[nn.Module, str | None]:
    """Common handling of ``none`` and file weights; returns (module, weights_id or None if
    the caller must load ImageNet weights itself)."""
    if weights == "none":
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            return module_factory(), "random-init-seed0"
    if weights == "imagenet":
        return module_factory(), None
    path = Path(weights).expanduser()
    if not path.is_file():
        raise BackboneError(f"weights {weights!r} for {name}: use 'imagenet', 'none' or the path of a weights file")
    module = module_factory()
    load_state_dict(module, path, name=name)
    return module, _file_id(path)


def torchvision_weights(builder_name: str, module: nn.Module) -> str:
    """Load torchvision's default ImageNet weights into ``module``; returns their id."""
    from torchvision import models

    enum = models.get_model_weights(builder_name).DEFAULT
    url = enum.url
    cached = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)
    if not cached.is_file() and environment().offline:
        raise BackboneError(
            f"ImageNet weights for {builder_name} are not in the torch hub cache ({cached}) and "
            "STYLESEARCH_OFFLINE is set: pass --weights FILE, or unset it on a machine with internet"
        )
    try:
        state = enum.get_state_dict(progress=False, check_hash=True)
    except Exception as exc:  # noqa: BLE001 - network and hash errors alike
        raise BackboneError(
            f"cannot get ImageNet weights for {builder_name} ({exc}); download {url} and pass --weights FILE"
        ) from exc
    module.load_state_dict(state, strict=True)
    return f"torchvision:{enum}"
