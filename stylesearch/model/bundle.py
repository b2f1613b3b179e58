"""A model bundle: the one owner of the files that make a style model beyond its backbone.

The same layout serves two places: a folder written by ``stylesearch train`` (plus its
``model.json``), and the ``model/`` folder of every index generation:

- ``projection.npz``: raw statistics → style vectors (:class:`~stylesearch.model.projection.Projection`);
- ``head.pt`` + ``head.json``: the trained classification head, if any;
- ``backbone_blocks.pt``: backbone stages tuned by training, if any;
- ``style_model_int8.xml`` + ``.bin``: the int8 OpenVINO style model an index was embedded
  with (``--precision int8``), if any: queries must run the same quantised model.

:meth:`ModelBundle.check` says whether an embedder (backbone + statistics) fits the bundle.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .._version import __version__
from ..config import EmbedConfig
from ..errors import ConfigError, IndexMismatchError
from ..files import reuse
from .backbones import TUNED_FILE, TunedBlocks
from .heads import HEAD_FILE, HEAD_LABELS_FILE, StyleHead
from .projection import Projection
from .runtimes.openvino import INT8_FILE, IR, read_ir, write_ir

PROJECTION_FILE = "projection.npz"
MODEL_FILE = "model.json"  # only in a trained model's folder: what it is and how it was trained
MODEL_FORMAT = "stylesearch-model"


@dataclass
class ModelBundle:
    """What a style model adds to its backbone. ``weights_id`` names the backbone weights the
    bundle was made with (tuned blocks included)."""

    embed: EmbedConfig
    weights_id: str
    projection: Projection
    head: StyleHead | None = None
    tuned: TunedBlocks | None = None
    # the quantised OpenVINO model (index bundles only), in memory: the generation it was read
    # from may be deleted (only the latest few are kept) before the next one is written
    int8: IR | None = None
    # the folder each part was read from, with the part itself: saved again unchanged, the
    # part's files are linked from there instead of written (files.reuse)
    origin: dict[str, tuple[Path, object]] = field(default_factory=dict, repr=False, compare=False)

    # ------------------------------------------------------------------ files

    def _unchanged(self, part: str, value: object, folder: Path, names: list[str]) -> bool:
        """Whether ``part`` is still the object read from its folder, and its files were
        linked from there into ``folder``."""
        source, loaded = self.origin.get(part, (None, None))
        return loaded is value and source != folder and reuse(source, folder, names)

    def saved_in(self, folder: Path) -> None:
        """Record that ``folder`` now holds every part's files (:meth:`save` links from it)."""
        parts = {"projection": self.projection, "head": self.head, "tuned": self.tuned, "int8": self.int8}
        self.origin = {name: (folder, value) for name, value in parts.items() if value is not None}

    def save(self, folder: Path) -> None:
        """Write the bundle's files into ``folder`` (created if needed); parts unchanged since
        :meth:`load` are linked from the folder they were read from."""
        folder.mkdir(parents=True, exist_ok=True)
        if not self._unchanged("projection", self.projection, folder, [PROJECTION_FILE]):
            self.projection.save(folder / PROJECTION_FILE)
        if self.head is not None and not self._unchanged("head", self.head, folder, [HEAD_FILE, HEAD_LABELS_FILE]):
            self.head.save(folder)
        if self.tuned is not None:
            if not self._unchanged("tuned", self.tuned, folder, [TUNED_FILE]):
                self.tuned.save(folder / TUNED_FILE)
        elif (folder / TUNED_FILE).exists():
            (folder / TUNED_FILE).unlink()  # left by an earlier run into the same folder
        if self.int8 is not None:
            xml = Path(INT8_FILE)
            if not self._unchanged("int8", self.int8, folder, [xml.name, xml.with_suffix(".bin").name]):
                write_ir(self.int8, folder / INT8_FILE)

    @classmethod
    def load(cls, folder: Path, embed: EmbedConfig, weights_id: str) -> ModelBundle:
        """The bundle in ``folder`` (an index generation's ``model/``; its manifest gives
        ``embed`` and ``weights_id``)."""
        bundle = cls(
            embed,
            weights_id,
            Projection.load(folder / PROJECTION_FILE),
            StyleHead.load(folder),
            TunedBlocks.load(folder / TUNED_FILE),
            read_ir(folder / INT8_FILE) if (folder / INT8_FILE).is_file() else None,
        )
        bundle.saved_in(folder)
        return bundle

    def manifest_entries(self, prefix: str) -> dict[str, Any]:
        """What a manifest records about the bundle, its files under ``prefix`` (``model/``)."""
        return {
            "projection": {"kind": self.projection.kind, "file": f"{prefix}{PROJECTION_FILE}"},
            "head": None if self.head is None else {"kind": self.head.kind, "labels": self.head.labels},
            "tuned_backbone": None
            if self.tuned is None
            else {"file": f"{prefix}{TUNED_FILE}", "stages": list(self.tuned.stages)},
            "precision": "int8" if self.int8 is not None else "float",
        }

    # ------------------------------------------------------------------ a trained model's folder

    def save_trained(self, folder: Path, info: dict[str, Any]) -> None:
        """Write the bundle and ``model.json`` (format, recipe, weights, and ``info``: how it
        was trained) into ``folder``."""
        self.save(folder)
        model = {
            "format": MODEL_FORMAT,
            "format_version": 1,
            "stylesearch_version": __version__,
            "embed": self.embed.to_record(),
            "weights_id": self.weights_id,
            "raw_dim": self.projection.in_dim,
            **self.manifest_entries(""),
            **info,
        }
        model["projection"]["dim"] = self.projection.dim
        (folder / MODEL_FILE).write_text(json.dumps(model, indent=2))

    @staticmethod
    def read_info(folder: Path) -> dict[str, Any]:
        """``model.json`` of a trained model's folder."""
        try:
            info = json.loads((folder / MODEL_FILE).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(
                f"{str(folder)!r} is not a trained model folder ({exc}): run 'stylesearch train ... --out DIR'"
            ) from exc
        if not isinstance(info, dict) or info.get("format") != MODEL_FORMAT:
            raise ConfigError(f"{str(folder)!r} is not a stylesearch model (format {info.get('format')!r})")
        return info

    @classmethod
    def load_trained(cls, folder: Path, expect: EmbedConfig | None = None) -> ModelBundle:
        """The bundle of a ``stylesearch train`` folder; ``expect`` (the style options given
        beside ``--model``) must match the recipe it was trained with."""
        info = cls.read_info(folder)
        trained = EmbedConfig.from_dict(info["embed"])
        if expect is not None and expect != trained:
            raise IndexMismatchError(
                f"the model in {str(folder)!r} was trained with {trained.to_dict()}; drop the style options "
                "or train a model with them"
            )
        return cls.load(folder, trained, str(info.get("weights_id")))

    # ------------------------------------------------------------------ checks

    def expect(self, expect: EmbedConfig | None, where: str) -> None:
        """Raise :class:`IndexMismatchError` unless ``expect`` (the embedding config a caller
        means to use; ``None``: any; image size 0: any size) is the bundle's."""
        if expect is not None and not expect.image_size:
            expect = replace(expect, image_size=self.embed.image_size)
        if expect is not None and expect != self.embed:
            have = self.embed.to_dict()
            detail = ", ".join(f"{k}: asked {v!r}, index has {have[k]!r}" for k, v in expect.to_dict().items() if have[k] != v)
            raise IndexMismatchError(
                f"{where} was built with another style model ({detail}); use the index's own settings or rebuild it"
            )

    def check(self, weights_id: str, raw_dim: int, where: str, dim: int | None = None) -> None:
        """Raise :class:`IndexMismatchError` unless an embedder with these backbone weights
        and ``raw_dim`` statistics fits the bundle (and its projection gives ``dim``)."""
        if weights_id != self.weights_id:
            raise IndexMismatchError(
                f"{where} was built with weights {self.weights_id!r} but {self.embed.backbone} now "
                f"loads {weights_id!r}; rebuild it"
            )
        if self.projection.in_dim != raw_dim or (dim is not None and self.projection.dim != dim):
            said = "" if dim is None else f" and the manifest says dim {dim}"
            raise IndexMismatchError(
                f"projection of {where} maps {self.projection.in_dim} -> {self.projection.dim} but the model "
                f"gives {raw_dim} statistics{said}; rebuild it"
            )
