"""Evaluation of an index against labelled queries, and the report people look at:
``report.json``, confusion-matrix PNGs, a 2-D map of the style space, and an HTML page with
query → neighbour strips. (matplotlib, Agg backend; no display needed.)"""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .engine import StyleSearch
from .evaluate import accuracy, calibration_bins, confusion_matrix, macro_f1, map_at_r, per_class
from .model.embed import embed_all


def evaluate_engine(
    engine: StyleSearch,
    vectors: np.ndarray,
    truth: Sequence[str],
    *,
    k: int = 10,
    groups: Sequence[str] | None = None,
    group_key: str | None = None,
) -> dict[str, Any]:
    """Score kNN (and the linear head, when the index has one) on query ``vectors``
    (float32 [Q, D]) with true labels ``truth``; with ``groups``, neighbours are restricted to
    items whose attribute ``group_key`` equals the query's group."""
    labels = sorted(set(truth) | set(engine.labels()))
    wheres: list[dict[str, str] | None] = [None] * len(truth)
    if groups is not None and group_key:
        wheres = [{group_key: g} for g in groups]
    counts_all = engine.labels()
    report: dict[str, Any] = {"queries": len(truth), "k": k, "labels": labels, "group_by": group_key}
    methods = ["knn"] + (["linear"] if engine.head is not None else [])
    for method in methods:
        preds, confidence, lone = [], [], 0
        for vec, where in zip(vectors, wheres):
            c = engine.classify_vectors(vec[None], k, where, min_confidence=0.0, method=method, min_familiarity=0.0)[0]
            preds.append(c.label)
            confidence.append(c.confidence)
            lone += c.support is not None and c.support <= 1 and c.confidence >= 0.5
        report[method] = {
            "accuracy": round(accuracy(truth, preds), 4),
            "calibration": calibration_bins(confidence, [t == p for t, p in zip(truth, preds)]),
            "one_neighbour_answers_at_0_5": int(lone),
            "macro_f1": round(macro_f1(truth, preds, sorted(set(truth))), 4),
            "per_class": per_class(truth, preds, sorted(set(truth))),
            "confusion": {"labels": labels, "matrix": confusion_matrix(truth, preds, labels).tolist()},
            "predictions": preds,
        }
    # retrieval
    r_max = max(counts_all.values()) if counts_all else k
    relevant, r_counts, first = [], [], []
    for vec, t, where in zip(vectors, truth, wheres):
        r = counts_all.get(t, 0) if where is None else engine.count({**where, "label": t})
        hits = engine.search_vectors(vec[None], max(r, k, 1), where)[0]
        rel = [h.label == t for h in hits]
        relevant.append(rel + [False] * (r_max - len(rel)) if len(rel) < r_max else rel[:r_max])
        r_counts.append(min(r, r_max))
        first.append(rel[:k])
    width = max(len(r) for r in relevant) if relevant else 0
    rel_arr = np.array([r + [False] * (width - len(r)) for r in relevant], bool)
    top = [np.array(f + [False] * (k - len(f)), bool) for f in first]
    report["retrieval"] = {
        "precision_at_1": round(float(np.mean([t[0] for t in top])), 4) if top else 0.0,
        "recall_at_k": {str(kk): round(float(np.mean([t[:kk].any() for t in top])), 4) for kk in (1, 5, k)},
        "map_at_r": round(map_at_r(rel_arr, r_counts), 4),
    }
    return report


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return buf.getvalue()


def confusion_png(labels: Sequence[str], matrix: Sequence[Sequence[int]], title: str) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    m = np.asarray(matrix, float)
    rows = m / np.maximum(m.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(1.2 + 0.7 * len(labels), 1.0 + 0.6 * len(labels)))
    ax.imshow(rows, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    for i in range(len(labels)):
        for j in range(len(labels)):
            if m[i, j]:
                ax.text(
                    j, i, str(int(m[i, j])), ha="center", va="center", color="white" if rows[i, j] > 0.5 else "black", fontsize=8
                )
    data = _png(fig)
    plt.close(fig)
    return data


def reliability_png(bins: Sequence[dict[str, Any]], ece: float, title: str) -> bytes:
    """Reliability diagram: each confidence bin's accuracy against its mean confidence."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.2, 4))
    ax.plot([0, 1], [0, 1], color="#999", linestyle="--", linewidth=1, label="perfectly calibrated")
    ax.bar(
        [b["low"] for b in bins],
        [b["accuracy"] for b in bins],
        width=[b["high"] - b["low"] for b in bins],
        align="edge",
        color="#4a7bd0",
        edgecolor="white",
        alpha=0.85,
        label="accuracy of the answers",
    )
    ax.plot([b["confidence"] for b in bins], [b["accuracy"] for b in bins], "o", color="#111", markersize=3)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("confidence")
    ax.set_ylabel("share right")
    ax.set_title(f"{title} (ECE {ece:.3f})")
    ax.legend(fontsize=7, loc="upper left")
    data = _png(fig)
    plt.close(fig)
    return data


def _class_table(per: dict[str, dict[str, float]]) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(label)}</td><td>{v['precision']:.3f}</td><td>{v['recall']:.3f}</td><td>{v['f1']:.3f}</td>"
        f"<td>{int(v['support'])}</td></tr>"
        for label, v in per.items()
    )
    return f"<table><tr><th>style</th><th>precision</th><th>recall</th><th>F1</th><th>queries</th></tr>{rows}</table>"


def style_map_png(vectors: np.ndarray, labels: Sequence[str], title: str = "style space (PCA)") -> bytes:
    """2-D PCA of style vectors, coloured by label."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = vectors - vectors.mean(0)
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    xy = x @ vt[:2].T
    fig, ax = plt.subplots(figsize=(7, 6))
    for name in sorted(set(labels)):
        sel = np.array([label == name for label in labels])
        ax.scatter(xy[sel, 0], xy[sel, 1], s=6, alpha=0.6, label=name)
    ax.legend(markerscale=3, fontsize=8)
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
    data = _png(fig)
    plt.close(fig)
    return data


def _thumb(path: str, size: int = 96) -> str:
    from .catalog import path_of
    from .errors import ImageError
    from .images import load_image

    try:
        im = load_image(path_of(path))
    except ImageError:
        return ""
    im.thumbnail((size, size))
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()


def write_report(
    out: Path,
    report: dict[str, Any],
    vectors: np.ndarray,
    truth: Sequence[str],
    strips: Sequence[tuple[str, str, Sequence[Any]]],
) -> list[Path]:
    """Write ``report.json``, PNGs and ``report.html`` into ``out``; returns the files.
    ``strips``: (query path, true label, neighbour hits) for the page."""
    out.mkdir(parents=True, exist_ok=True)
    files = [out / "report.json"]
    slim = json.loads(json.dumps(report))
    for method in ("knn", "linear"):
        if method in slim:
            slim[method].pop("predictions", None)
            (out / f"confusion_{method}.png").write_bytes(
                confusion_png(report[method]["confusion"]["labels"], report[method]["confusion"]["matrix"], f"{method} confusion")
            )
            files.append(out / f"confusion_{method}.png")
            cal = report[method]["calibration"]
            (out / f"reliability_{method}.png").write_bytes(reliability_png(cal["bins"], cal["ece"], f"{method} confidence"))
            files.append(out / f"reliability_{method}.png")
    (out / "report.json").write_text(json.dumps(slim, indent=2))
    (out / "style_map.png").write_bytes(style_map_png(vectors, truth))
    files.append(out / "style_map.png")
    rows = []
    for path, label, hits in strips:
        cells = "".join(
            f'<figure class="{"ok" if h.label == label else "bad"}"><img src="{_thumb(h.path)}">'
            f"<figcaption>{html.escape(str(h.label))}<br>{h.score:.2f}</figcaption></figure>"
            for h in hits
        )
        rows.append(
            f'<div class="strip"><figure class="query"><img src="{_thumb(path)}"><figcaption>query<br>'
            f"{html.escape(label)}</figcaption></figure>{cells}</div>"
        )
    methods = [m for m in ("knn", "linear") if m in report]
    metrics = [
        f"<li>{m}: accuracy {report[m]['accuracy']}, macro-F1 {report[m]['macro_f1']}, "
        f"expected calibration error {report[m]['calibration']['ece']}</li>"
        for m in methods
    ]
    tables = "".join(f"<h3>{m}</h3>{_class_table(report[m]['per_class'])}" for m in methods)
    reliability = "".join(f'<img style="width:auto;height:auto;border:0" src="reliability_{m}.png">' for m in methods)
    recall_rows = "".join(f"<tr><td>{kk}</td><td>{v:.3f}</td></tr>" for kk, v in report["retrieval"]["recall_at_k"].items())
    ret = report["retrieval"]
    scope = f", neighbours within {html.escape(str(report['group_by']))}" if report["group_by"] else ""
    confusions = "".join(
        f'<img style="width:auto;height:auto;border:0" src="confusion_{m}.png">' for m in ("knn", "linear") if m in report
    )
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>stylesearch evaluation</title>
<style>body{{font-family:sans-serif;margin:2em}} td,th{{padding:2px 10px;text-align:left}}
.strip{{display:flex;gap:6px;margin:8px 0}}
figure{{margin:0;text-align:center;font-size:11px}} img{{width:96px;height:96px;object-fit:contain;border:3px solid #ddd}}
.ok img{{border-color:#3a3}} .bad img{{border-color:#d33}} .query img{{border-color:#333}}</style></head><body>
<h1>stylesearch evaluation</h1><p>{report["queries"]} queries, k={report["k"]}{scope}</p>
<ul>{"".join(metrics)}<li>retrieval: precision@1 {ret["precision_at_1"]}, MAP@R {ret["map_at_r"]}</li></ul>
<h2>Per style</h2>{tables}
<h2>Confidence: how often an answer of each confidence is right</h2>{reliability}
<h2>Retrieval: recall@k</h2><p>the share of queries with at least one item of their style among the first k</p>
<table><tr><th>k</th><th>recall@k</th></tr>{recall_rows}</table>
<h2>Confusion</h2>{confusions}
<h2>Style space</h2><img style="width:auto;height:auto;border:0" src="style_map.png">
<h2>Queries and their nearest neighbours</h2><p>green: same label, red: other label</p>{"".join(rows)}
</body></html>"""
    (out / "report.html").write_text(page, encoding="utf-8")
    files.append(out / "report.html")
    return files


def embed_items(engine: StyleSearch, paths: Sequence[str]) -> tuple[np.ndarray, list[int], list[tuple[int, str]]]:
    """Style vectors of files (decoded in the engine's pipeline): (vectors [M, D] of the
    positions that worked, those positions, failures)."""
    done = embed_all(engine.embedder, list(paths), desc="queries")
    return done.values, done.positions.tolist(), done.failures


def run_evaluation(
    catalog: Any,
    out: Path,
    *,
    split_column: str = "split",
    gallery_split: str = "train",
    query_split: str = "test",
    k: int = 10,
    group_by: str | None = None,
    index_kwargs: dict[str, Any] | None = None,
    strips: int = 8,
    keep_index: bool = False,
) -> dict[str, Any]:
    """Index the catalog's ``gallery_split`` items (in ``out/index`` with ``keep_index``, else
    in a temporary folder removed afterwards), classify and search with its labelled
    ``query_split`` items, and write the report into ``out``."""
    import tempfile

    from .catalog import Catalog
    from .errors import CatalogError
    from .ingest import index_catalog

    assert isinstance(catalog, Catalog)
    gallery = [i for i in catalog.items if i.attributes.get(split_column) == gallery_split]
    queries = [i for i in catalog.items if i.attributes.get(split_column) == query_split and i.label is not None]
    if not gallery or not queries:
        raise CatalogError(
            f"evaluation needs items whose {split_column!r} column is {gallery_split!r} (indexed) and labelled items "
            f"where it is {query_split!r} (queries); found {len(gallery)} and {len(queries)}"
        )
    kwargs = dict(index_kwargs or {})
    with tempfile.TemporaryDirectory(prefix="stylesearch-eval-") as scratch:
        folder = out / "index" if keep_index else Path(scratch) / "index"
        index_catalog(Catalog(catalog.root, gallery), folder, **kwargs)
        return _evaluate_index(folder, kwargs.get("run"), queries, out, k, group_by, strips, len(gallery))


def _evaluate_index(
    index: Path, run: Any, queries: Sequence[Any], out: Path, k: int, group_by: str | None, strips: int, gallery: int
) -> dict[str, Any]:
    with StyleSearch.open(index, run=run) as engine:
        vectors, ok, _ = embed_items(engine, [str(q.path) for q in queries])
        kept = [queries[i] for i in ok]
        truth = [str(q.label) for q in kept]
        groups = [q.attributes.get(group_by, "") for q in kept] if group_by else None
        report = evaluate_engine(engine, vectors, truth, k=k, groups=groups, group_key=group_by)
        report["gallery"] = gallery
        picks = np.linspace(0, len(kept) - 1, num=min(strips, len(kept))).astype(int).tolist()
        strip_rows = []
        for i in picks:
            where = {group_by: groups[i]} if groups is not None and group_by else None
            strip_rows.append((str(kept[i].path), truth[i], engine.search_vectors(vectors[i : i + 1], 6, where)[0]))
        report["files"] = [str(p) for p in write_report(out, report, vectors, truth, strip_rows)]
    return report


def summarize_styles(
    engine: StyleSearch,
    paths: Sequence[str],
    out: Path | None = None,
    *,
    k: int = 10,
    method: str = "both",
    min_confidence: float | None = None,
) -> dict[str, Any]:
    """Classify every image and count them per style (``unknown`` below the threshold): the
    market-analysis view of a catalog. With ``out``, writes ``summary.json`` and a bar chart
    ``summary.png`` there."""
    vectors, ok, failures = embed_items(engine, paths)
    verdicts = engine.classify_vectors(vectors, k, None, min_confidence, method) if len(ok) else []
    counts: dict[str, int] = {}
    for v in verdicts:
        key = v.label if v.label is not None else "unknown"
        counts[key] = counts.get(key, 0) + 1
    counts = dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
    summary: dict[str, Any] = {
        "images": len(ok),
        "styles": counts,
        "shares": {key: round(n / len(ok), 4) for key, n in counts.items()} if ok else {},
        "skipped": [{"path": str(paths[i]), "reason": reason} for i, reason in failures],
        "method": method,
    }
    if out is not None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        out.mkdir(parents=True, exist_ok=True)
        fig, ax = plt.subplots(figsize=(1.5 + 0.6 * max(len(counts), 1), 4))
        ax.bar(list(counts), list(counts.values()), color="#4a7ab7")
        ax.set_ylabel("images")
        ax.set_title(f"style distribution of {len(ok)} images")
        ax.tick_params(axis="x", rotation=45)
        (out / "summary.png").write_bytes(_png(fig))
        plt.close(fig)
        (out / "summary.json").write_text(json.dumps(summary, indent=2))
        summary["files"] = [str(out / "summary.json"), str(out / "summary.png")]
    return summary
