"""Frozen configuration dataclasses, saved in an index's manifest and read back from it.

Choices and parsing (memory sizes, devices, index types, losses …) are defined here once.
Each field's metadata (:func:`option`) carries its command-line help, choices and parser:
the CLI's options are generated from these classes (:mod:`stylesearch.cli.options`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from .errors import ConfigError

DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "fp32", "fp16", "bf16", "int8")
RUNTIMES = ("torch", "openvino")  # the built-in inference runtimes (--engine; stylesearch.model.runtimes registers more)
DECODERS = ("auto", "cpu", "device")
VECTOR_DTYPES = ("float32", "float16")
INDEX_KINDS = ("flat", "hnsw", "ivf", "ivfpq")
INDEX_TYPES = ("auto", *INDEX_KINDS)
MAPS = ("auto", "basis", "raw")
STAGE_CACHES = ("auto", "on", "off")
LOSSES = ("multisimilarity", "proxyanchor", "triplet", "contrastive")
HEADS = ("linear", "mlp", "none")
OPTIMIZERS = ("adamw", "sgd")
TTAS = ("none", "flip")
EMBED_LEGACY = {"tta": "none", "whiten": 0.0, "whiten_shrink": 0.0}  # before these options existed
# Default style layers that changed: an index or model written before (without "layer_defaults": 2
# in its embed config) and with layers None was made with these.
LEGACY_DEFAULT_LAYERS = {"efficientnet_lite0": ("block3", "block5", "block8", "block11")}
LAYER_DEFAULTS_REVISION = 2
# The blocks a trained map reads where --layers is not given: without the last stage's block15.
# On a validation split of fashion's train photos (600 per style), the trained map over these
# scored validation MAP@R 0.656 vs 0.632 with block15, the same kNN macro-F1 on a gallery it had
# not seen, and an epoch took 1.8 s instead of 13.8 s (RESULTS 2026-12-04, third session): the
# raw map over block15's 32,896 extra statistics has more room to fit the training photos.
TRAINED_DEFAULT_LAYERS = {"efficientnet_lite0": ("block3", "block5", "block8", "block11")}
DEFAULT_IMAGE_SIZE = 128  # the input size where a catalog does not choose one (model/sizing.py)
CLASSIFY_METHODS = ("knn", "linear", "both")
PRIORS = ("catalog", "uniform")  # the classification prior (stylesearch.classify)
DEFAULT_MIN_CONFIDENCE = 0.35  # below it, a classification answers "unknown"
DEFAULT_MIN_FAMILIARITY = 0.02  # out_of_catalog below this (stylesearch.familiarity; bench_familiarity.py)
DUPLICATE_THRESHOLD = 0.9925  # copy score at or above which two items are copies (stylesearch.copies; benchmarks/bench_dedup.py)
_UNITS = {"": 1, "B": 1, "K": 1024, "KB": 1024, "M": 1024**2, "MB": 1024**2, "G": 1024**3, "GB": 1024**3, "T": 1024**4}


@dataclass(frozen=True)
class Environment:
    """What the environment says, read in this one place (the service's settings read their
    own ``STYLESEARCH_*`` names through pydantic-settings).

    - ``engine``: ``$STYLESEARCH_ENGINE``, what ``--engine auto`` means when set;
    - ``cache``: ``$STYLESEARCH_CACHE`` or ``~/.cache/stylesearch`` (converted models);
    - ``offline``: ``$STYLESEARCH_OFFLINE`` set: never download backbone weights;
    - ``index``: ``$STYLESEARCH_INDEX`` or ``indexes/default``, the default index folder;
    - ``card_fields``: ``$STYLESEARCH_CARD_FIELDS`` (comma-separated attribute names), the
      attributes a result shows on the page and in the CLI (default: up to two short ones).
    """

    engine: str | None
    cache: str
    offline: bool
    index: str
    card_fields: tuple[str, ...] = ()


DEFAULT_INDEX_DIR = "indexes/default"


def environment() -> Environment:
    """The environment now (read at each call, so that a test or a server's settings can set it)."""
    env = os.environ
    return Environment(
        engine=env.get("STYLESEARCH_ENGINE") or None,
        cache=env.get("STYLESEARCH_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "stylesearch"),
        offline=bool(env.get("STYLESEARCH_OFFLINE")),
        index=env.get("STYLESEARCH_INDEX") or DEFAULT_INDEX_DIR,
        card_fields=tuple(f.strip() for f in env.get("STYLESEARCH_CARD_FIELDS", "").split(",") if f.strip()),
    )


def parse_memory(text: str) -> int:
    """``"512M"``, ``"2G"``, ``"1.5GB"``, ``"1048576"`` → bytes."""
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([KMGT]?B?)\s*", text.upper())
    if not match or match.group(2) not in _UNITS:
        raise ConfigError(f"cannot read memory size {text!r}: write e.g. 512M or 2G")
    return int(float(match.group(1)) * _UNITS[match.group(2)])


def parse_layers(text: str) -> tuple[str, ...]:
    """``"block3,block5"`` → ``("block3", "block5")``."""
    return tuple(x.strip() for x in text.split(",") if x.strip())


def option(
    default: Any,
    help: str,
    *,
    choices: tuple[str, ...] | None = None,
    flag: str | None = None,
    dest: str | None = None,
    parse: Callable[[str], Any] | None = None,
    metavar: str | None = None,
    cli: bool = True,
) -> Any:
    """A dataclass field whose metadata says how the CLI offers it: ``help``, ``choices``,
    ``flag`` (default ``--field-name``), ``dest`` (the argparse name, when two configs of
    one command share a field name), ``parse`` (text → value), ``cli=False`` to leave it out."""
    meta = {"help": help, "choices": choices, "flag": flag, "dest": dest, "parse": parse, "metavar": metavar, "cli": cli}
    return field(default=default, metadata=meta)


def check_choices(config: Any) -> None:
    """The one check of every field whose metadata names its choices (:func:`option`): its
    value is one of them. Called first by each config's ``__post_init__``."""
    for f in fields(config):
        choices = f.metadata.get("choices")
        value = getattr(config, f.name)
        if choices and value not in choices:
            raise ConfigError(f"unknown {f.name.replace('_', ' ')} {value!r}: choose one of {', '.join(map(str, choices))}")


def parse_recipe(recipe: str) -> tuple[str, ...]:
    """``"gram+gap"`` → ``("gram", "gap")``. Only the form is checked here; the names are
    the statistics registry's (:mod:`stylesearch.model.statistics`), checked when a model is
    built from the recipe."""
    parts = tuple(p.strip() for p in recipe.split("+") if p.strip())
    if not parts or not all(p.replace("_", "").isalnum() for p in parts):
        raise ConfigError(
            f"unknown style recipe {recipe!r}: name statistics (gram, meanstd, gap, gmp …) joined with '+', e.g. 'gram+gap'"
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
    - ``tta``: ``flip`` averages each photo's raw statistics with its mirror image's (index
      and query alike; twice the forward passes), ``none`` does not.
    - ``whiten``: PCA whitening power — each kept component is divided by (its variance +
      ``whiten_shrink`` × the mean kept variance) ** (``whiten`` / 2); 0 is plain PCA. Fitted
      with the PCA on the catalog's own sample.
    """

    backbone: str = option("efficientnet_lite0", "see 'stylesearch backbones'")
    weights: str = option("imagenet", "imagenet | none | PATH to a state-dict file")
    layers: tuple[str, ...] | None = option(
        None, "comma-separated backbone layers for gram/meanstd (default: the backbone's)", parse=parse_layers
    )
    pool_layer: str | None = option(None, "layer pooled by gap/gmp (default: the backbone's last)")
    recipe: str = option("gram", "style statistics: gram | meanstd | gap | gmp, or combined with '+'")
    dim: int = option(256, "style vector size; 0 keeps raw statistics")
    image_size: int = option(
        0, "input size in px (0: from the catalog's photos: 160 px where their median short side is >= 200 px, else 128)"
    )
    tta: str = option("none", "flip: average each photo with its mirror image (index and query alike)", choices=TTAS)
    whiten: float = option(0.5, "PCA whitening power (0: plain PCA, 1: full whitening)")
    whiten_shrink: float = option(1.0, "whitening shrinkage, in units of the mean kept variance")

    def __post_init__(self) -> None:
        check_choices(self)
        parse_recipe(self.recipe)
        if self.dim < 0:
            raise ConfigError(f"dim must be >= 0 (0 keeps the raw statistics), got {self.dim}")
        if self.image_size and not 32 <= self.image_size <= 1024:
            raise ConfigError(f"image size must be 0 (auto) or between 32 and 1024 px, got {self.image_size}")
        if not 0 <= self.whiten <= 2 or self.whiten_shrink < 0:
            raise ConfigError(f"whiten must be in [0, 2] and its shrinkage >= 0, got {self.whiten} and {self.whiten_shrink}")
        if self.layers is not None:
            object.__setattr__(self, "layers", tuple(str(x) for x in self.layers))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["layers"] = list(self.layers) if self.layers is not None else None
        return d

    def to_record(self) -> dict[str, Any]:
        """:meth:`to_dict` plus the revision of the backbones' default layers, for manifests."""
        return {**self.to_dict(), "layer_defaults": LAYER_DEFAULTS_REVISION}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EmbedConfig:
        known = {f.name for f in fields(cls)}
        # an index or model written before an option existed was made without it
        kwargs = {**EMBED_LEGACY, **{k: v for k, v in data.items() if k in known}}
        if kwargs.get("layers") is None and data.get("layer_defaults", 1) < LAYER_DEFAULTS_REVISION:
            kwargs["layers"] = LEGACY_DEFAULT_LAYERS.get(kwargs.get("backbone", "efficientnet_lite0"))
        if kwargs.get("layers") is not None:
            kwargs["layers"] = tuple(kwargs["layers"])
        return cls(**kwargs)


@dataclass(frozen=True)
class RunConfig:
    """How to compute (not what): these never change the vectors beyond float noise."""

    device: str = option("auto", "auto | cpu | cuda[:N]")
    batch_size: int = option(64, "images per batch")
    # -1: auto (decoding threads on CPU, DataLoader processes on CUDA)
    workers: int = option(-1, "decoding processes; 0 decodes with threads between forward passes (-1: auto, 0 on CPU)")
    progress: bool | None = option(None, "", cli=False)  # None: show a bar when stderr is a terminal
    # backbone arithmetic: fp16 (auto on CUDA) keeps rankings; bf16 changes them (measured with
    # benchmarks/bench_precision.py, figures in benchmarks/RESULTS.md)
    # int8 (OpenVINO only) is the exception: calibrated at index time and kept with the index
    precision: str = option(
        "auto",
        "backbone arithmetic (auto: fp16 on CUDA, fp32 on CPU; bf16: faster, reorders close neighbours; int8: OpenVINO)",
        choices=PRECISIONS,
    )
    engine: str = option(
        "auto", "the inference runtime: auto (openvino on CPU when installed, $STYLESEARCH_ENGINE when set) | torch | openvino"
    )
    # other formats, rotated or unusual JPEGs are always decoded on the CPU
    decode: str = option(
        "auto", "where JPEGs are decoded: device = batched on the GPU (nvJPEG); auto: device on CUDA", choices=DECODERS
    )

    def __post_init__(self) -> None:
        check_choices(self)
        if not self.engine.replace("_", "").isalnum():
            raise ConfigError(f"engine must be auto or a runtime name ({', '.join(RUNTIMES)}), got {self.engine!r}")
        if self.device not in DEVICES and not self.device.startswith("cuda:"):
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

    vector_dtype: str = option("float32", "raw vectors on disk", choices=VECTOR_DTYPES)
    pca_sample: int = option(4096, "images (a seeded random sample) that fit the PCA projection")
    seed: int = option(0, "seed of the PCA sample and the index build")
    index_type: str = option("auto", "FAISS index type (auto: chosen by size and --max-memory)", choices=INDEX_TYPES)
    max_memory: int | None = option(
        None, "RAM the FAISS index may take, e.g. 512M or 2G (with --index-type auto)", parse=parse_memory
    )
    recall_target: float = option(0.95, "recall@10 the search parameter is tuned to")
    checkpoint_every: int = option(10_000, "images between saved progress (catalogs larger than this)")
    # a registered --store scheme (stylesearch.index.backends), checked before any work
    store: str = option(
        "faiss",
        "where vectors are searched: faiss, milvus://HOST:PORT/COLLECTION or milvus-lite:///path/file.db "
        "(needs the 'milvus' extra)",
        metavar="STORE",
    )

    def __post_init__(self) -> None:
        check_choices(self)
        if not self.store.strip():
            raise ConfigError("store must be faiss or a URI such as milvus://HOST:PORT/COLLECTION, got an empty value")
        if self.checkpoint_every < 1:
            raise ConfigError(f"checkpoint interval must be >= 1 image, got {self.checkpoint_every}")
        if not 0 < self.recall_target <= 1:
            raise ConfigError(f"recall target must be in (0, 1], got {self.recall_target}")


@dataclass(frozen=True)
class TrainConfig:
    """Metric-learning settings (``stylesearch train``).

    The default tunes the style projection (raw Gram statistics → ``dim``) on frozen backbone
    features with a multi-similarity loss, then fits a linear head on the tuned vectors.
    ``train_blocks > 0`` also tunes that many top backbone stages (at ``backbone_lr``), on
    augmented images decoded every epoch — far slower on a CPU.
    """

    loss: str = option("multisimilarity", "metric-learning loss", choices=LOSSES)
    epochs: int = option(30, "epochs at most")
    batch_size: int = option(112, "pairs are mined within these batches", flag="--train-batch-size", dest="train_batch_size")
    m_per_class: int = option(16, "images per label in each batch (MPerClassSampler)")
    lr: float = option(2e-3, "learning rate")
    # the anchor (L2-SP) regularises instead; every anchor run was measured without decay
    weight_decay: float = option(0.0, "weight decay")
    optimizer: str = option("adamw", "optimizer", choices=OPTIMIZERS)
    warmup: float = option(0.05, "share of the steps spent warming up the learning rate", cli=False)
    val_fraction: float = option(0.1, "labelled images held out for early stopping")
    patience: int = option(8, "epochs without a better validation MAP@R before stopping")
    head: str = option("linear", "classification head trained on the tuned vectors", choices=HEADS)
    head_epochs: int = option(200, "epochs of the head", cli=False)
    flip: bool = option(True, "mirrored views as augmentation", flag="--no-flip")
    # L2-SP: weight of ||W - W_pca||², keeps what the labels do not cover
    anchor: float = option(5e-5, "L2-SP pull toward the PCA start (helps styles added later)")
    map: str = option(
        "auto",
        "what the projection learns: basis (a map from whitened PCA components: few labels move it little), "
        "raw (every raw direction: more to gain from many labels); auto: basis below 100 labelled photos per style",
        choices=MAPS,
    )
    basis: int = option(512, "whitened PCA components a basis map starts from (its first --dim are the start)")
    pca_dims: int = option(
        256, "untrained PCA components kept beside the tuned ones, so styles added later stay recognisable (0: none)"
    )
    search_pca_weight: float = option(0.0, "their weight in same-style search")
    classify_pca_weight: float = option(1.0, "their weight in a kNN vote that includes labels added after training")
    within: str | None = option(
        None,
        "an attribute (e.g. articleType): a share of the batches is drawn inside one of its values, "
        "so the loss must separate styles within a product type",
    )
    within_share: float = option(0.5, "share of the batches drawn within one value of --within")
    train_blocks: int = option(0, "also tune this many top backbone stages (the last ones the style blocks use)")
    stage_cache: str = option(
        "auto",
        "with --train-blocks: on = run the frozen stages once per photo and its mirror image and train on their cached "
        "output (fast on a CPU); off = every batch decodes augmented photos (random crops too); auto: on on a CPU",
        choices=STAGE_CACHES,
    )
    backbone_lr: float = option(1e-4, "learning rate of the tuned blocks")
    seed: int = option(0, "seed of the split, the sampler and the initialisation")

    def __post_init__(self) -> None:
        check_choices(self)
        if self.epochs < 1 or self.batch_size < 2 or self.m_per_class < 1:
            raise ConfigError("epochs must be >= 1, batch size >= 2 and m per class >= 1")
        if self.pca_dims < 0 or self.search_pca_weight < 0 or self.classify_pca_weight < 0:
            raise ConfigError("pca dims and pca weights must be >= 0")
        if self.train_blocks < 0 or self.backbone_lr <= 0:
            raise ConfigError("train blocks must be >= 0 and the backbone learning rate > 0")
        if self.anchor < 0:
            raise ConfigError(f"anchor must be >= 0, got {self.anchor}")
        if self.basis < 1:
            raise ConfigError(f"basis must be >= 1 component, got {self.basis}")
        if not 0.0 <= self.within_share <= 1.0:
            raise ConfigError(f"within share must be in [0, 1], got {self.within_share}")
        if not 0.0 <= self.val_fraction < 0.9:
            raise ConfigError(f"validation fraction must be in [0, 0.9), got {self.val_fraction}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


MAX_GROUP_SIZE = 100


def help_of(cls: type, name: str) -> str:
    """The help text a config field's metadata carries (the CLI's, and the API's description)."""
    return next(f.metadata["help"] for f in fields(cls) if f.name == name)


@dataclass(frozen=True)
class ArrangeOptions:
    """How one search's results are arranged (:mod:`stylesearch.index.arrange` does it): the
    one definition of these options, their help and their checks; the CLI's flags and the
    API's fields (``service.schemas.Arranged``) are generated from it."""

    group_by: str | None = option(
        None, "an attribute key (or label): the best item per value of it, up to k groups, best group first", metavar="KEY"
    )
    group_size: int = option(1, "items per group (with group_by)", metavar="N")
    diversity: float = option(
        0.0, "0 (plain ranking) to 1: re-rank the top candidates by maximal marginal relevance, trading score for variety",
        metavar="LAMBDA",
    )  # fmt: skip
    collapse: bool = option(
        False, "one item per group of near-duplicates (the groups of dedup: the same photo re-encoded, resized, mirrored …)"
    )

    def __post_init__(self) -> None:
        if self.group_by is not None and not str(self.group_by).strip():
            raise ConfigError("group_by needs an attribute key, e.g. articleType")
        if not isinstance(self.group_size, int) or not 1 <= self.group_size <= MAX_GROUP_SIZE:
            raise ConfigError(f"group_size must be a whole number from 1 to {MAX_GROUP_SIZE}, got {self.group_size!r}")
        if not isinstance(self.diversity, (int, float)) or not 0.0 <= float(self.diversity) <= 1.0:
            raise ConfigError(f"diversity must be a number from 0 (plain ranking) to 1, got {self.diversity!r}")
        if not isinstance(self.collapse, bool):
            raise ConfigError(f"collapse is true or false, got {self.collapse!r}")
        if self.group_size > 1 and self.group_by is None:
            raise ConfigError("group_size needs group_by: say which attribute the groups share")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
