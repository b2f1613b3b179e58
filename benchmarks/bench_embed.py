"""End-to-end indexing throughput vs the bare backbone forward, measured in the same run.

    .venv/bin/python benchmarks/bench_embed.py [--n 1024] [--sizes 128 224] [--workers 1]
        [--precisions fp32 bf16] [--decodes cpu device] [--device cuda --batch-size 256 --repeat 8] [--json]

- ``bare forward``: the backbone run on already-decoded uint8 tensors (already on the device)
  up to the deepest block the style recipe reads, in the same micro-batches the indexer uses
  (the compute that indexing cannot avoid); ``full forward`` runs the whole classifier
  network for reference.
- ``decode only``: the decoding pipeline alone (workers, and on ``--decode device`` the
  batched JPEG decoder and resize on the device), no forward pass: what decoding can feed.
- ``end-to-end``: ``index_catalog`` on real photos from fashion-usage: JPEG decoding
  (threads, DataLoader worker processes, or batched on the GPU), forward, Gram statistics,
  the one-off PCA fit on a 4096-image sample, projection, FAISS add, SQLite metadata and the
  crash-safe write.
- ``embedding stage``: the same run without its fixed costs (model load, PCA fit, write),
  i.e. the steady-state rate of a long catalog.

``--repeat R`` lists every photo R times under new ids (a GPU indexes the 13k photos too fast
to time). On CUDA every timing ends with a device synchronisation.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from protocols import dataset_root, read_rows, write_manifest  # noqa: E402

from stylesearch import index_catalog  # noqa: E402
from stylesearch.config import EmbedConfig, RunConfig  # noqa: E402
from stylesearch.images import ImageDataset, collate, decode_encoded, load_tensor  # noqa: E402
from stylesearch.model.embed import Embedder  # noqa: E402


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bare_forward(embedder: Embedder, tensors: torch.Tensor, full: bool, repeat: int = 1) -> float:
    """Images/s of the backbone alone on decoded tensors already on its device."""
    model = embedder.model
    layers = model.style_layers if model.uses_style else (model.pool_layer,)
    net = model.backbone
    wanted = (net.stage_names[-1],) if full else layers
    with torch.inference_mode(), embedder._autocast():
        for chunk in tensors[: embedder.micro_batch * 2].split(embedder.micro_batch):  # warm-up
            net.features(chunk.contiguous(memory_format=torch.channels_last), wanted)
        _sync(embedder.device)
        start = time.perf_counter()
        for _ in range(repeat):
            for chunk in tensors.split(embedder.micro_batch):
                net.features(chunk.contiguous(memory_format=torch.channels_last), wanted)
        _sync(embedder.device)
        return repeat * len(tensors) / (time.perf_counter() - start)


def decode_only(embedder: Embedder, paths: list[str], size: int) -> float:
    """Images/s of decoding alone, as indexing runs it (workers, then the device decoder)."""
    dataset = ImageDataset(paths, size, encoded=embedder.decodes_on_device)
    warm = ImageDataset(paths[:64], size, encoded=embedder.decodes_on_device)
    decode_encoded(collate([warm[i] for i in range(len(warm))]), size, embedder.device)  # the decoder's one-off start
    _sync(embedder.device)
    start = time.perf_counter()
    done = 0
    for batch in embedder._decoded(dataset, flip=False):
        done += len(batch.positions)
    _sync(embedder.device)
    return done / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2048, help="distinct photos per measurement")
    parser.add_argument("--repeat", type=int, default=1, help="list each photo this many times (under new ids)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 224])
    parser.add_argument("--recipe", default="gram")
    parser.add_argument("--workers", type=int, nargs="+", default=[-1, 1], help="-1: auto (decoding threads on CPU)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=64, help="images per batch (and per forward pass on CUDA)")
    parser.add_argument("--precisions", nargs="+", default=["fp32"], choices=["fp32", "bf16"], help="backbone arithmetic")
    parser.add_argument("--decodes", nargs="+", default=["cpu"], choices=["cpu", "device"], help="where JPEGs are decoded")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    root = dataset_root()
    rows = [r for r in read_rows(root) if r["split"] == "train"][: args.n]
    unique_paths = [str(root / r["path"]) for r in rows]
    rows = [dict(r, id=str(copy * 10_000_000 + int(r["id"]))) for copy in range(args.repeat) for r in rows]
    paths = [str(root / r["path"]) for r in rows]
    table = []
    for size in args.sizes:
        config = EmbedConfig(recipe=args.recipe, image_size=size)
        cpu_tensors = torch.stack([load_tensor(p, size) for p in unique_paths])
        settings = [(w, p, d) for w in args.workers for p in args.precisions for d in args.decodes]
        for workers, precision, decode in settings:
            run = RunConfig(
                device=args.device,
                batch_size=args.batch_size,
                workers=workers,
                progress=False,
                precision=precision,
                decode=decode,
            )
            embedder = Embedder(config, run)
            tensors = cpu_tensors.to(embedder.device)
            with tempfile.TemporaryDirectory() as tmp:
                manifest = write_manifest(rows, root, Path(tmp) / "m.csv")
                bare = bare_forward(embedder, tensors, full=False, repeat=args.repeat)
                full = bare_forward(embedder, tensors, full=True, repeat=args.repeat)
                decoding = decode_only(embedder, paths, size)
                report = index_catalog(manifest, Path(tmp) / "idx", embed=config, run=run)
                bare_after = bare_forward(embedder, tensors, full=False, repeat=args.repeat)
            bare_mean = (bare + bare_after) / 2
            steady = len(paths) / report.stages["embed"]
            auto = "auto (threads)" if args.device == "cpu" else "auto"
            table.append(
                {
                    "image_size": size,
                    "recipe": args.recipe,
                    "workers": auto if workers < 0 else f"{workers} process(es)",
                    "decode": decode,
                    "precision": precision,
                    "batch_size": args.batch_size,
                    "images": len(paths),
                    "bare_forward_img_s": round(bare_mean, 1),
                    "full_forward_img_s": round(full, 1),
                    "decode_only_img_s": round(decoding, 1),
                    "end_to_end_img_s": round(report.images_per_second, 1),
                    "end_to_end_vs_bare": round(report.images_per_second / bare_mean, 3),
                    "embed_stage_img_s": round(steady, 1),
                    "embed_stage_vs_bare": round(steady / bare_mean, 3),
                    "stages_s": {k: round(v, 2) for k, v in report.stages.items()},
                }
            )
            print(json.dumps(table[-1]), file=sys.stderr, flush=True)
            del tensors, embedder
    gpu = f" ({torch.cuda.get_device_name()})" if args.device.startswith("cuda") else ""
    machine = f"{platform.machine()} {torch.get_num_threads()} threads, torch {torch.__version__}, device {args.device}{gpu}"
    print(f"# bench_embed ({machine})\n")
    print(
        "| px | workers | decode | precision | batch | bare forward img/s | full forward img/s | decode only img/s "
        "| end-to-end img/s | end-to-end / bare | embedding stage img/s | stage / bare | PCA fit s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in table:
        print(
            f"| {r['image_size']} | {r['workers']} | {r['decode']} | {r['precision']} | {r['batch_size']} | "
            f"{r['bare_forward_img_s']} | {r['full_forward_img_s']} | {r['decode_only_img_s']} | "
            f"{r['end_to_end_img_s']} | {r['end_to_end_vs_bare']:.0%} | {r['embed_stage_img_s']} | "
            f"{r['embed_stage_vs_bare']:.0%} | {r['stages_s'].get('fit_projection', 0)} |"
        )
    if args.json:
        print(json.dumps(table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
