"""Frozen configuration dataclasses, saved in an index's manifest and read back from it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from .errors import ConfigError

POOLINGS = ("gram", "meanstd", "gap", "gmp")


def parse_recipe(recipe: str) -> tuple[str, ...]:
    """``"gram+gap"`` → ``("gram", "gap")``; raises :class:`ConfigError` on unknown parts."""
    parts = tuple(p.strip() for p in recipe.split("+") if p.strip())
    unknown = [p for p in parts if p not in POOLINGS]
    if not parts or unknown:
        raise ConfigError(
            f"unknown style recipe {recipe!r}: use one of {', '.join(POOLINGS)} or a combination joined with '+', e.g. 'gram+gap'"
        )
    if len(set(parts)) != len(parts):
        raise ConfigError(f"style recipe {recipe!r} names a pooling twice")
    return parts


@dataclass(frozen=True)
class EmbedConfig:
    """Everything that decides what a style vector is. Two indexes whose EmbedConfig differ
    hold vectors that must not be compared.

    - ``backbone``: registry name (see ``list_backbones()``).
    - ``weights``: ``"imagenet"`` (the backbone's pretrained weights), ``"none"`` (random
      init, for tests) or a path to a local state-dict file.
    - ``layers``: backbone blocks whose feature maps feed the style statistics; ``None`` means
      the backbone's default.
    - ``pool_layer``: the block that ``gap``/``gmp`` pool; ``None`` means the backbone's last
      feature block (what most image-search tools index).
    - ``recipe``: ``gram`` | ``meanstd`` | ``gap`` | ``gmp`` or a ``+``-joined combination.
      ``gram``/``meanstd`` use ``layers``; ``gap``/``gmp`` use ``pool_layer``.
    - ``dim``: size of the projected style vector (``0`` keeps the raw statistics).
    - ``image_size``: square input size in pixels.
    """

    backbone: str = "efficientnet_lite0"
    weights: str = "imagenet"
    layers: tuple[str, ...] | None = None
    pool_layer: str | None = None
    recipe: str = "gram"
    dim: int = 256
    image_size: int = 128

    def __post_init__(self) -> None:
        parse_recipe(self.recipe)
        if self.dim < 0:
            raise ConfigError(f"dim must be >= 0 (0 keeps the raw statistics), got {self.dim}")
        if not 32 <= self.image_size <= 1024:
            raise ConfigError(f"image size must be between 32 and 1024 px, got {self.image_size}")
        if self.layers is not None:
            object.__setattr__(self, "layers", tuple(str(x) for x in self.layers))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["layers"] = list(self.layers) if self.layers is not None else None
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EmbedConfig:
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in known}
        if kwargs.get("layers") is not None:
            kwargs["layers"] = tuple(kwargs["layers"])
        return cls(**kwargs)


@dataclass(frozen=True)
class RunConfig:
    """How to compute (not what): these never change the vectors beyond float noise."""

    device: str = "auto"
    batch_size: int = 64
    workers: int = -1  # -1: auto (decoding threads on CPU, DataLoader processes on CUDA)
    progress: bool | None = None  # None: show a bar when stderr is a terminal
    # backbone arithmetic: auto = bf16 on CUDA (fp16 without bf16), fp32 on CPU; bf16 changes
    # vectors slightly more than float noise (benchmarks/RESULTS.md has the quality figures)
    precision: str = "auto"
    # where JPEGs are decoded: auto = on the GPU (batched nvJPEG) when the device is CUDA,
    # else on the CPU; other formats, rotated or unusual JPEGs are always decoded on the CPU
    decode: str = "auto"

    def __post_init__(self) -> None:
        if self.precision not in ("auto", "fp32", "bf16"):
            raise ConfigError(f"precision must be auto, fp32 or bf16, got {self.precision!r}")
        if self.decode not in ("auto", "cpu", "device"):
            raise ConfigError(f"decode must be auto, cpu or device, got {self.decode!r}")
        if self.device not in ("auto", "cpu", "cuda") and not self.device.startswith("cuda:"):
            raise ConfigError(f"device must be auto, cpu or cuda, got {self.device!r}")
        if self.batch_size < 1:
            raise ConfigError(f"batch size must be >= 1, got {self.batch_size}")
        if self.workers < -1:
            raise ConfigError(f"workers must be >= 0, or -1 for auto, got {self.workers}")


@dataclass(frozen=True)
class IndexConfig:
    """Index-side settings. ``pca_sample``: how many catalog images (a seeded random sample,
    embedded first) fit the PCA projection; 4096 is 16× the default dimension, and the fit
    costs about 1.4 ms per image on 2 CPU cores (28,916 raw Gram statistics)."""

    vector_dtype: str = "float32"
    pca_sample: int = 4096
    seed: int = 0
    index_type: str = "auto"  # auto | flat | hnsw | ivf | ivfpq (see stylesearch.index.factory)
    max_memory: int | None = None  # bytes the FAISS index may take in RAM (auto only)
    recall_target: float = 0.95  # recall@10 the search parameter is tuned to at build time
    checkpoint_every: int = 10_000  # images between saved progress (catalogs larger than this)
    # where vectors are searched: faiss (in the index folder), milvus://HOST:PORT/COLLECTION
    # or milvus-lite:///path/file.db (see stylesearch.index.milvus_store)
    store: str = "faiss"

    def __post_init__(self) -> None:
        if self.store != "faiss" and not self.store.startswith(("milvus://", "milvus-lite://")):
            raise ConfigError(
                f"store must be faiss, milvus://HOST:PORT/COLLECTION or milvus-lite:///path/file.db, got {self.store!r}"
            )
        if self.vector_dtype not in ("float16", "float32"):
            raise ConfigError(f"vector dtype must be float16 or float32, got {self.vector_dtype!r}")
        if self.index_type not in ("auto", "flat", "hnsw", "ivf", "ivfpq"):
            raise ConfigError(f"index type must be auto, flat, hnsw, ivf or ivfpq, got {self.index_type!r}")
        if self.checkpoint_every < 1:
            raise ConfigError(f"checkpoint interval must be >= 1 image, got {self.checkpoint_every}")
        if not 0 < self.recall_target <= 1:
            raise ConfigError(f"recall target must be in (0, 1], got {self.recall_target}")


LOSSES = ("multisimilarity", "proxyanchor", "triplet", "contrastive")
HEADS = ("linear", "mlp", "none")


@dataclass(frozen=True)
class TrainConfig:
    """Metric-learning settings (``stylesearch train``).

    The default tunes the style projection (raw Gram statistics → ``dim``) on frozen backbone
    features with a multi-similarity loss, then fits a linear head on the tuned vectors.
    ``train_blocks > 0`` also tunes that many top backbone stages (at ``backbone_lr``), on
    augmented images decoded every epoch — far slower on a CPU.
    """

    loss: str = "multisimilarity"
    epochs: int = 30
    batch_size: int = 112
    m_per_class: int = 16
    lr: float = 2e-3
    weight_decay: float = 0.0  # the anchor (L2-SP) regularises instead; every anchor run was measured without decay
    optimizer: str = "adamw"
    warmup: float = 0.05
    val_fraction: float = 0.1
    patience: int = 8
    head: str = "linear"
    head_epochs: int = 200
    flip: bool = True
    anchor: float = 5e-5  # L2-SP: weight of ||W - W_pca||², keeps what the labels do not cover
    pca_dims: int = 256  # untrained PCA components kept beside the tuned ones (for styles added later)
    search_pca_weight: float = 0.0  # weight of that block in same-style retrieval queries
    classify_pca_weight: float = 1.0  # ... and in a kNN vote that includes labels added after training
    train_blocks: int = 0  # top backbone stages that learn too (0: frozen backbone, cached features)
    backbone_lr: float = 1e-4
    seed: int = 0

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise ConfigError(f"unknown loss {self.loss!r}: choose one of {', '.join(LOSSES)}")
        if self.head not in HEADS:
            raise ConfigError(f"unknown head {self.head!r}: choose one of {', '.join(HEADS)}")
        if self.optimizer not in ("adamw", "sgd"):
            raise ConfigError(f"optimizer must be adamw or sgd, got {self.optimizer!r}")
        if self.epochs < 1 or self.batch_size < 2 or self.m_per_class < 1:
            raise ConfigError("epochs must be >= 1, batch size >= 2 and m per class >= 1")
        if self.pca_dims < 0 or self.search_pca_weight < 0 or self.classify_pca_weight < 0:
            raise ConfigError("pca dims and pca weights must be >= 0")
        if self.train_blocks < 0 or self.backbone_lr <= 0:
            raise ConfigError("train blocks must be >= 0 and the backbone learning rate > 0")
        if self.anchor < 0:
            raise ConfigError(f"anchor must be >= 0, got {self.anchor}")
        if not 0.0 <= self.val_fraction < 0.9:
            raise ConfigError(f"validation fraction must be in [0, 0.9), got {self.val_fraction}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
