"""The evaluation protocols of the shared data sets, as defined in their READMEs.

``FU4``: style across products — 400 train photos per class (Casual, Sports, Ethnic, Formal)
indexed, 150 test photos per class queried, kNN k=10 similarity-weighted, macro-F1 and MAP@R.
``FUW``: style within one product type — per articleType, balanced usages, neighbours
restricted to the query's articleType.
``ARCH10`` (architecture-styles): every train photo indexed, every test photo queried.
``INT5`` / ``INT5W`` (interior-styles): the same; INT5W restricts neighbours to the query's room.
``FU4G``: FU4's gallery and queries, for a model trained on the train split WITHOUT the
gallery's photos (:func:`fu4_training_rows`): a user's path, where the catalog indexed with
``--model`` is not the photos the model learnt from.
Sampling is seeded and draws from rows sorted by id.
"""

from __future__ import annotations

import csv
import os
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from stylesearch import StyleSearch, index_catalog
from stylesearch.config import EmbedConfig, IndexConfig, RunConfig, TrainConfig
from stylesearch.evaluate import macro_f1, map_at_r
from stylesearch.model.train import train_model
from stylesearch.report import embed_items

FU4_CLASSES = ("Casual", "Sports", "Ethnic", "Formal")
FUW_TYPES = (
    "Tshirts",
    "Shirts",
    "Tops",
    "Belts",
    "Socks",
    "Shorts",
    "Trousers",
    "Earrings",
    "Track Pants",
    "Sweatshirts",
    "Caps",
    "Ties",
    "Jackets",
    "Watches",
    "Backpacks",
    "Leggings",
    "Capris",
)
DEFAULT_ROOT = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "fashion-usage"


def dataset_root() -> Path:
    """``$STYLESEARCH_FASHION_USAGE`` or ``../shared/datasets/fashion-usage`` beside the repo."""
    return Path(os.environ.get("STYLESEARCH_FASHION_USAGE", DEFAULT_ROOT)).resolve()


def arch_root() -> Path:
    """``$STYLESEARCH_ARCHITECTURE_STYLES`` or ``architecture-styles`` beside fashion-usage."""
    return Path(os.environ.get("STYLESEARCH_ARCHITECTURE_STYLES", dataset_root().parent / "architecture-styles")).resolve()


def interior_root() -> Path:
    """``$STYLESEARCH_INTERIOR_STYLES`` or ``interior-styles`` beside fashion-usage."""
    return Path(os.environ.get("STYLESEARCH_INTERIOR_STYLES", dataset_root().parent / "interior-styles")).resolve()


def read_interior_rows(root: Path) -> list[Row]:
    """interior-styles rows in the fashion rows' shape (style as ``usage``, room as ``articleType``)."""
    with (root / "metadata.csv").open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    for r in rows:
        r["usage"], r["articleType"] = r["style"], r["room"]
    return sorted(rows, key=lambda r: r["id"])


def fu4_training_rows(rows: list[Row], seed: int = 0) -> list[Row]:
    """FU4G's training photos: the train split of FU4's four styles without FU4's gallery."""
    gallery = {r["id"] for r in fu4_split(rows, seed=seed)[0]}
    return [r for r in rows if r["split"] == "train" and r["usage"] in FU4_CLASSES and r["id"] not in gallery]


def read_arch_rows(root: Path) -> list[Row]:
    """architecture-styles rows in the fashion rows' shape (style as ``usage``; one product type)."""
    with (root / "metadata.csv").open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    for r in rows:
        r["usage"], r["articleType"] = r["style"], "building"
    return sorted(rows, key=lambda r: r["id"])


def arch10_split(rows: list[Row]) -> tuple[list[Row], list[Row]]:
    """ARCH10: every ``train`` photo indexed, every ``test`` photo queried."""
    return [r for r in rows if r["split"] == "train"], [r for r in rows if r["split"] == "test"]


Row = dict[str, str]
# forced choice, as the protocols measure it: no "unknown" for low confidence or an odd photo
FORCED: dict[str, Any] = {"min_confidence": 0.0, "min_familiarity": 0.0}


def read_rows(root: Path) -> list[Row]:
    with (root / "metadata.csv").open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    return sorted(rows, key=lambda r: int(r["id"]))


def _sample(rows: list[Row], n: int, rng: np.random.Generator) -> list[Row]:
    if n >= len(rows):
        return list(rows)
    picks = sorted(rng.choice(len(rows), size=n, replace=False).tolist())
    return [rows[i] for i in picks]


def fu4_split(rows: list[Row], n_index: int = 400, n_query: int = 150, seed: int = 0) -> tuple[list[Row], list[Row]]:
    rng = np.random.default_rng(seed)
    index, query = [], []
    for usage in FU4_CLASSES:
        index += _sample([r for r in rows if r["usage"] == usage and r["split"] == "train"], n_index, rng)
        query += _sample([r for r in rows if r["usage"] == usage and r["split"] == "test"], n_query, rng)
    return index, query


def fuw_split(rows: list[Row], seed: int = 0) -> tuple[list[Row], list[Row]]:
    rng = np.random.default_rng(seed)
    index, query = [], []
    for article in FUW_TYPES:
        by_usage: dict[str, dict[str, list[Row]]] = defaultdict(lambda: {"train": [], "test": []})
        for r in rows:
            if r["articleType"] == article and r["usage"] in FU4_CLASSES:
                by_usage[r["usage"]][r["split"]].append(r)
        usages = [u for u in FU4_CLASSES if len(by_usage[u]["train"]) >= 20 and len(by_usage[u]["test"]) >= 5]
        if len(usages) < 2:
            continue
        n = min(150, min(len(by_usage[u]["train"]) for u in usages))
        m = min(40, min(len(by_usage[u]["test"]) for u in usages))
        for u in usages:
            index += _sample(by_usage[u]["train"], n, rng)
            query += _sample(by_usage[u]["test"], m, rng)
    return index, query


def write_manifest(rows: Sequence[Row], root: Path, path: Path) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "path", "label", "articleType"])
        for r in rows:
            writer.writerow([r["id"], str(root / r["path"]), r["usage"], r["articleType"]])
    return path


@dataclass
class ProtocolResult:
    protocol: str
    recipe: str
    macro_f1: float
    map_at_r: float | None
    indexed: int
    queries: int
    index_seconds: float
    images_per_second: float
    linear_macro_f1: float | None = None
    per_class_recall: dict[str, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def run_protocol(
    protocol: str,
    embed: EmbedConfig | None = None,
    run: RunConfig | None = None,
    *,
    root: Path | None = None,
    k: int = 10,
    seed: int = 0,
    workdir: Path | None = None,
    model: Path | None = None,
    exclude_labels: Sequence[str] = (),
    add_labelled: Sequence[Row] = (),
    prior: str = "catalog",
    store: str = "faiss",
    split: tuple[list[Row], list[Row]] | None = None,
) -> ProtocolResult:
    """Index the protocol's train sample with ``embed`` (or a trained ``model``), classify its
    queries, score them. ``exclude_labels`` leaves those labels out of the index, and
    ``add_labelled`` rows are then added with ``StyleSearch.add`` (the cold-start check).
    ``store``: ``faiss``, ``milvus-lite`` (a Milvus Lite file in the temporary folder) or a
    ``--store`` URI. ``split``: (index rows, query rows) in place of the protocol's own (a
    validation split carved from ``train``)."""
    if split is not None:
        root = root or {"ARCH10": arch_root, "INT5": interior_root, "INT5W": interior_root}.get(protocol, dataset_root)()
        index_rows, query_rows = split
    elif protocol == "ARCH10":
        root = root or arch_root()
        index_rows, query_rows = arch10_split(read_arch_rows(root))
    elif protocol in ("INT5", "INT5W"):
        root = root or interior_root()
        index_rows, query_rows = arch10_split(read_interior_rows(root))
    else:
        root = root or dataset_root()
        rows = read_rows(root)
        if protocol in ("FU4", "FU4G"):
            index_rows, query_rows = fu4_split(rows, seed=seed)
        elif protocol == "FUW":
            index_rows, query_rows = fuw_split(rows, seed=seed)
        else:
            raise ValueError(f"unknown protocol {protocol!r}: FU4, FU4G, FUW, ARCH10, INT5 or INT5W")
    index_rows = [r for r in index_rows if r["usage"] not in exclude_labels]
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        tmp_path = Path(tmp)
        manifest = write_manifest(index_rows, root, tmp_path / "index.csv")
        report = index_catalog(
            manifest,
            tmp_path / "index",
            embed=None if model else (embed or EmbedConfig()),
            run=run,
            options=IndexConfig(seed=seed, store=f"milvus-lite://{tmp_path / 'milvus.db'}" if store == "milvus-lite" else store),
            model=model,
        )
        with StyleSearch.open(tmp_path / "index", run=run) as engine:
            if add_labelled:
                engine.add(
                    [str(root / r["path"]) for r in add_labelled],
                    ids=[r["id"] for r in add_labelled],
                    labels=[r["usage"] for r in add_labelled],
                    attributes=[{"articleType": r["articleType"]} for r in add_labelled],
                )
                index_rows = index_rows + list(add_labelled)
            vectors, _, failures = embed_items(engine, [str(root / r["path"]) for r in query_rows])
            if failures:
                raise RuntimeError(f"query images failed to decode: {failures[:3]}")
            truth = [r["usage"] for r in query_rows]
            linear_f1 = None
            if engine.head is not None:
                lin = [c.label for c in engine.classify_vectors(vectors, k, method="linear", **FORCED)]
                linear_f1 = round(macro_f1(truth, lin), 4)
            if protocol in ("FU4", "FU4G", "ARCH10", "INT5"):
                preds = [c.label for c in engine.classify_vectors(vectors, k, method="knn", prior=prior, **FORCED)]
                r_counts = {u: sum(r["usage"] == u for r in index_rows) for u in set(truth)}
                kmax = max(r_counts.values())
                hits = engine.search_vectors(vectors, kmax)
                relevant = np.array([[h.label == t for h in row] + [False] * (kmax - len(row)) for row, t in zip(hits, truth)])
                mapr: float | None = map_at_r(relevant, [r_counts[t] for t in truth])
            else:
                preds = []
                for vec, r in zip(vectors, query_rows):
                    where = {"articleType": r["articleType"]}  # FUW: the product type; INT5W: the room
                    c = engine.classify_vectors(vec[None], k, where, method="knn", prior=prior, **FORCED)[0]
                    preds.append(c.label)
                mapr = None
        if store == "milvus-lite":
            from stylesearch.index.backends.milvus import close_client

            close_client(str(tmp_path / "milvus.db"))
    recall = {u: round(float(np.mean([p == u for p, t in zip(preds, truth) if t == u])), 4) for u in sorted(set(truth))}
    return ProtocolResult(
        protocol,
        engine.embedder.config.recipe,
        round(macro_f1(truth, preds), 4),
        None if mapr is None else round(mapr, 4),
        len(index_rows),
        len(query_rows),
        round(report.seconds, 1),
        round(report.images_per_second, 1),
        linear_f1,
        recall,
    )


def train_on(
    rows: Sequence[Row], root: Path, out: Path, cfg: TrainConfig, run: RunConfig, embed: EmbedConfig | None = None
) -> dict[str, Any]:
    """Train a model on ``rows`` (their ``usage`` as labels) into ``out``; its figures."""
    manifest = write_manifest(rows, root, out.parent / f"{out.name}.csv")
    t0 = time.perf_counter()
    report = train_model(manifest, out, train=cfg, run=run, embed=embed)
    return {
        "train_items": len(rows),
        "epochs": report.epochs_run,
        "best_epoch": report.best_epoch,
        "seconds": round(time.perf_counter() - t0, 1),
        "seconds_per_epoch": round(report.seconds_per_epoch, 2),
        "val_map_at_r": None if report.best_val_map_at_r is None else round(report.best_val_map_at_r, 4),
        "head_val_accuracy": report.head_val_accuracy,
    }
