"""Do two arithmetics give the same answers? (issue 28)

The same ``--photos`` fashion-usage photos (seeded from ``train``) are embedded by the default
style model in fp32 and under each other arithmetic, on this CPU with ``torch.autocast``
(fp16 is what ``--precision auto`` runs on a CUDA GPU; the CPU emulates it, slowly, with the
same fp16 rounding of weights and activations and float32 accumulation). Every run is
projected by one projection — fitted on the fp32 statistics, as an index built on one machine
and queried on another — and compared with fp32: the vectors' cosine (minimum, mean), and,
with each photo as a query against the others, how often the top-10 is the same set, and
their mean overlap.

``bf16-early-fp32`` runs the stem and blocks 0–3 in fp32 and the rest in bf16 (where bf16's
rounding hurts most, measured).

    .venv/bin/python benchmarks/bench_precision.py [--photos 500] [--arith bf16 fp16] [--json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stylesearch.config import EmbedConfig, RunConfig  # noqa: E402
from stylesearch.images import load_tensor  # noqa: E402
from stylesearch.model.embed import Embedder  # noqa: E402
from stylesearch.model.projection import Projection  # noqa: E402


def fashion_photos(n: int, seed: int = 0) -> list[Path]:
    """``n`` seeded photos of fashion-usage's ``train`` split."""
    from benchmarks.protocols import dataset_root, read_rows  # the benchmarks' own module (the repository is on sys.path)

    root = dataset_root()
    rows = [r for r in read_rows(root) if r.get("split", "train") == "train"]
    pick = np.random.default_rng(seed).choice(len(rows), n, replace=False)
    return [root / rows[i]["path"] for i in pick]


@contextlib.contextmanager
def early_fp32(model: torch.nn.Module, stages: int = 5) -> Iterator[None]:
    """bf16 autocast, with the backbone's first ``stages`` stages in fp32."""
    backbone = model.backbone  # type: ignore[attr-defined]
    originals = [stage.forward for stage in backbone.stages]

    def fp32(forward: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[torch.Tensor], torch.Tensor]:
        def run(x: torch.Tensor) -> torch.Tensor:
            with torch.autocast("cpu", enabled=False):
                return forward(x.float())

        return run

    for stage in backbone.stages[:stages]:
        stage.forward = fp32(stage.forward)
    try:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            yield
    finally:
        for stage, forward in zip(backbone.stages, originals):
            stage.forward = forward


def arithmetic(name: str, model: torch.nn.Module) -> contextlib.AbstractContextManager[Any]:
    if name == "fp32":
        return contextlib.nullcontext()
    if name == "bf16-early-fp32":
        return early_fp32(model)
    return torch.autocast("cpu", dtype={"bf16": torch.bfloat16, "fp16": torch.float16}[name])


def raw_statistics(embedder: Embedder, images: torch.Tensor, name: str) -> np.ndarray:
    """Raw style statistics float32 [N, R] of uint8 ``images`` under arithmetic ``name``."""
    model = embedder.model
    out = []
    with torch.inference_mode(), arithmetic(name, model):
        for chunk in images.split(16):
            out.append(model(chunk.contiguous(memory_format=torch.channels_last)).float())
    return torch.cat(out).numpy()


def agreement(a: np.ndarray, b: np.ndarray, k: int = 10) -> dict[str, float]:
    """Two embeddings of the same photos (rows L2-normalised): cosine min / mean of each
    photo's two vectors, and, each photo a query against the others, the share of queries
    whose top-``k`` is the same set, and the mean overlap."""
    cos = (a * b).sum(1)

    def top(v: np.ndarray) -> np.ndarray:
        s = v @ v.T
        np.fill_diagonal(s, -np.inf)
        return np.argsort(-s, axis=1, kind="stable")[:, :k]

    ta, tb = top(a), top(b)
    same = [set(x) == set(y) for x, y in zip(ta.tolist(), tb.tolist())]
    overlap = [len(set(x) & set(y)) / k for x, y in zip(ta.tolist(), tb.tolist())]
    return {
        "cos_min": float(cos.min()),
        "cos_mean": float(cos.mean()),
        "same_top10": float(np.mean(same)),
        "overlap_top10": float(np.mean(overlap)),
    }


def compare(paths: list[Path], names: list[str], image_size: int = 128) -> dict[str, Any]:
    """fp32 against each arithmetic of ``names`` on ``paths`` (see the module's text)."""
    embedder = Embedder(EmbedConfig(image_size=image_size), RunConfig(device="cpu", engine="torch", precision="fp32"))
    images = torch.stack([load_tensor(p, image_size) for p in paths])
    t = time.perf_counter()
    reference = raw_statistics(embedder, images, "fp32")
    seconds = {"fp32": time.perf_counter() - t}
    config = embedder.config
    projection = Projection.fit_pca(reference, config.dim, whiten=config.whiten, shrink=config.whiten_shrink, pad=True)
    base = projection.apply(reference)
    out: dict[str, Any] = {}
    for name in names:
        t = time.perf_counter()
        raw = raw_statistics(embedder, images, name)
        seconds[name] = time.perf_counter() - t
        out[name] = {**agreement(base, projection.apply(raw)), "seconds": round(seconds[name], 2)}
    return {"photos": len(paths), "fp32_seconds": round(seconds["fp32"], 2), "against_fp32": out}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=500)
    parser.add_argument("--arith", nargs="+", default=["bf16", "bf16-early-fp32", "fp16"])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = compare(fashion_photos(args.photos), args.arith)
    result["machine"] = f"{platform.machine()}, {torch.get_num_threads()} threads"
    result["date"] = time.strftime("%Y-%m-%d")
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{result['photos']} photos, against fp32 ({result['fp32_seconds']} s), one projection")
    for name, r in result["against_fp32"].items():
        print(
            f"  {name:<16} cos min {r['cos_min']:.5f} mean {r['cos_mean']:.5f}  "
            f"same top-10 {r['same_top10']:.3f}  overlap {r['overlap_top10']:.3f}  ({r['seconds']} s)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
