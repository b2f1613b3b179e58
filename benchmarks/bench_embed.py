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

``--engines torch:fp32 torch:bf16 openvino:fp32 openvino:int8`` compares the CPU inference
engines instead, in one run on the same photos (:func:`compare_engines`; ``--rounds R``: each
timing is the median of R turns of all engines): the style model's
images/s on decoded tensors, the embedding stage of ``index_catalog`` (decode + model +
projection), single-photo query latency p50/p95 (JPEG bytes → style vector, decode included),
and with ``--quality FU4 FUW`` each engine's macro-F1 under the shared protocols; plus the
share of ``--agreement N`` test photos whose top-10 on a torch-built index is the same when
the query is embedded by OpenVINO fp32.

``--large-px 1200`` measures scaled JPEG decoding on large photos instead
(:func:`large_photos`): ``--n`` fashion-usage photos re-encoded at 1,200 px on their long side
(quality 90), decoded as indexing decodes them (``Image.draft``: libjpeg scales by 1/2, 1/4 or
1/8 while decoding) and in full before the resize, with the pipeline's decoding threads;
images/s of each and the cosine of the style vectors of the two (the index's projection,
fitted on the drafted photos).
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

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402
from protocols import dataset_root, read_rows, run_protocol, write_manifest  # noqa: E402

from stylesearch import StyleSearch, index_catalog  # noqa: E402
from stylesearch.config import EmbedConfig, RunConfig  # noqa: E402
from stylesearch.images import ImageDataset, collate, decode_encoded, load_image, load_tensor, to_tensor  # noqa: E402
from stylesearch.model.embed import Embedder  # noqa: E402
from stylesearch.model.runtimes.torch import autocast  # noqa: E402


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bare_forward(embedder: Embedder, tensors: torch.Tensor, full: bool, repeat: int = 1) -> float:
    """Images/s of the backbone alone on decoded tensors already on its device."""
    model = embedder.model
    layers = model.style_layers if model.uses_style else (model.pool_layer,)
    net = model.backbone
    wanted = (net.stage_names[-1],) if full else layers
    with torch.inference_mode(), autocast(embedder.device, embedder.run.precision):
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
    warm = ImageDataset(paths[:64], size, encoded=embedder.reader.decodes_on_device)
    decode_encoded(collate([warm[i] for i in range(len(warm))]), size, embedder.device)  # the decoder's one-off start
    _sync(embedder.device)
    start = time.perf_counter()
    done = 0
    for batch in embedder.reader.read(paths):
        done += len(batch.positions)
    _sync(embedder.device)
    return done / (time.perf_counter() - start)


def percentile_ms(times: list[float], q: float) -> float:
    return round(float(np.percentile(np.asarray(times) * 1000, q)), 2)


def compare_engines(args: argparse.Namespace) -> list[dict[str, object]]:
    """One row per ``ENGINE:PRECISION`` and image size (see the module's docstring). With
    ``--rounds R`` the engines are timed R times in turn (torch, OpenVINO, …, torch, …) and
    each timing is the median of its rounds, so that the VM's slow spells fall on every
    engine alike; quality is measured once."""
    root = dataset_root()
    all_rows = read_rows(root)
    rows = [r for r in all_rows if r["split"] == "train"][: args.n]
    paths = [str(root / r["path"]) for r in rows]
    queries = [(root / r["path"]).read_bytes() for r in all_rows if r["split"] == "test"][: args.queries]
    table: list[dict[str, object]] = []
    timed = ("style_model_img_s", "embed_stage_img_s", "query_p50_ms", "query_p95_ms")
    for size in args.sizes:
        config = EmbedConfig(recipe=args.recipe, image_size=size)
        tensors = torch.stack([load_tensor(p, size) for p in paths[: args.model_n]])
        rounds: dict[str, list[dict[str, object]]] = {spec: [] for spec in args.engines}
        for _ in range(args.rounds):
            for spec in args.engines:
                rounds[spec].append(time_engine(spec, config, rows, root, tensors, queries, args))
                print(json.dumps(rounds[spec][-1]), file=sys.stderr, flush=True)
        for spec in args.engines:
            row = dict(rounds[spec][0])
            row.update({key: round(float(np.median([r[key] for r in rounds[spec]])), 2) for key in timed})  # type: ignore[misc]
            row["rounds"] = len(rounds[spec])
            run = RunConfig(device="cpu", progress=False, precision=str(row["precision"]), engine=str(row["engine"]))
            for protocol in args.quality if size == args.sizes[0] else ():  # quality at the first size only
                row[f"{protocol.lower()}_macro_f1"] = run_protocol(protocol, config, run).macro_f1
            table.append(row)
    if args.agreement:
        table.append(top10_agreement(args, root, all_rows))
    return table


def time_engine(
    spec: str,
    config: EmbedConfig,
    rows: list[dict[str, str]],
    root: Path,
    tensors: torch.Tensor,
    queries: list[bytes],
    args: argparse.Namespace,
) -> dict[str, object]:
    """One engine's timings: the style model on decoded tensors, the embedding stage of
    ``index_catalog`` on ``rows``' photos, one-photo queries."""
    engine, precision = spec.split(":")
    run = RunConfig(device="cpu", workers=-1, progress=False, precision=precision, engine=engine)
    row: dict[str, object] = {"image_size": config.image_size, "engine": engine, "precision": precision}
    with tempfile.TemporaryDirectory() as tmp:
        manifest = write_manifest(rows, root, Path(tmp) / "m.csv")
        report = index_catalog(manifest, Path(tmp) / "idx", embed=config, run=run)
        with StyleSearch.open(Path(tmp) / "idx", run=run) as search:
            embedder = search.embedder
            row["runs"] = embedder.describe_runtime()
            embedder.raw(tensors[: embedder.micro_batch])  # warm-up
            start = time.perf_counter()
            embedder.raw(tensors)
            row["style_model_img_s"] = round(len(tensors) / (time.perf_counter() - start), 1)
            times = []
            for i, query in enumerate(queries[: args.latency_n]):
                start = time.perf_counter()
                embedder.embed([query])
                if i >= 3:  # the first calls warm caches up
                    times.append(time.perf_counter() - start)
            row["query_p50_ms"], row["query_p95_ms"] = percentile_ms(times, 50), percentile_ms(times, 95)
    row["embed_stage_img_s"] = round(len(rows) / (report.stages["embed"]), 1)
    row["calibrate_s"] = round(report.stages.get("calibrate", 0.0), 1)
    return row


def top10_agreement(args: argparse.Namespace, root: Path, all_rows: list[dict[str, str]]) -> dict[str, object]:
    """Share of test photos whose top-10 on a torch-built index is the same whether the query
    is embedded by torch or by OpenVINO fp32."""
    train = [r for r in all_rows if r["split"] == "train"][: args.n]
    tests = [str(root / r["path"]) for r in all_rows if r["split"] == "test"][: args.agreement]
    config = EmbedConfig(recipe=args.recipe, image_size=args.sizes[0])
    by_torch = RunConfig(device="cpu", progress=False, engine="torch", precision="fp32")
    by_ov = RunConfig(device="cpu", progress=False, engine="openvino", precision="fp32")
    with tempfile.TemporaryDirectory() as tmp:
        index_catalog(write_manifest(train, root, Path(tmp) / "m.csv"), Path(tmp) / "idx", embed=config, run=by_torch)
        answers = []
        for run in (by_torch, by_ov):
            with StyleSearch.open(Path(tmp) / "idx", run=run) as search:
                vectors = search.embedder.embed(tests)
                answers.append([[h.id for h in hits] for hits in search.search_vectors(vectors, 10)])
    same = [a == b for a, b in zip(*answers)]
    same_sets = [set(a) == set(b) for a, b in zip(*answers)]
    return {
        "agreement_photos": len(tests),
        "index_items": len(train),
        "same_top10_in_order": round(float(np.mean(same)), 4),
        "same_top10_set": round(float(np.mean(same_sets)), 4),
    }


def large_photos(args: argparse.Namespace) -> dict[str, object]:
    """Scaled decoding (``Image.draft``) against full decoding on large JPEGs (see the module's
    docstring): images/s of each and the cosine between their style vectors."""
    from concurrent.futures import ThreadPoolExecutor

    root = dataset_root()
    rows = [r for r in read_rows(root) if r["split"] == "train"][: args.n]
    size = args.sizes[0]
    run = RunConfig(device=args.device, progress=False, engine="torch", precision="fp32")
    with tempfile.TemporaryDirectory() as tmp:
        big_rows = []
        for r in rows:
            im = Image.open(root / r["path"]).convert("RGB")
            scale = args.large_px / max(im.size)
            name = f"{r['id']}.jpg"
            im.resize((round(im.width * scale), round(im.height * scale)), Image.Resampling.BICUBIC).save(
                Path(tmp) / name, quality=90
            )
            big_rows.append(dict(r, path=name))
        paths = [str(Path(tmp) / r["path"]) for r in big_rows]
        megapixels = float(np.mean([np.prod(Image.open(p).size) for p in paths[:50]])) / 1e6
        row: dict[str, object] = {"large_px": args.large_px, "image_size": size, "photos": len(paths), "megapixels": megapixels}
        decoded: dict[str, torch.Tensor] = {}
        with ThreadPoolExecutor(max_workers=torch.get_num_threads()) as pool:
            for name, draft in (("draft", size), ("full", None)):

                def decode(path: str, draft: int | None = draft) -> torch.Tensor:
                    return to_tensor(load_image(path, draft_size=draft), size)

                list(pool.map(decode, paths[:16]))  # warm-up
                start = time.perf_counter()
                decoded[name] = torch.stack(list(pool.map(decode, paths)))
                row[f"{name}_decode_img_s"] = round(len(paths) / (time.perf_counter() - start), 1)
        row["draft_speedup"] = round(row["draft_decode_img_s"] / row["full_decode_img_s"], 2)  # type: ignore[operator]
        manifest = write_manifest(big_rows, Path(tmp), Path(tmp) / "m.csv")
        report = index_catalog(manifest, Path(tmp) / "idx", embed=EmbedConfig(image_size=size), run=run)
        row["index_img_s_with_draft"] = round(report.images_per_second, 1)
        with StyleSearch.open(Path(tmp) / "idx", run=run) as search:
            embedder = search.embedder
            a, b = (embedder.project(embedder.raw(decoded[name])) for name in ("draft", "full"))
        cosine = np.sum(a * b, axis=1)
        row["cosine_mean"], row["cosine_min"] = round(float(cosine.mean()), 4), round(float(cosine.min()), 4)
        row["pixels_mean_abs_diff"] = round(float((decoded["draft"].float() - decoded["full"].float()).abs().mean()), 2)
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2048, help="distinct photos per measurement")
    parser.add_argument("--repeat", type=int, default=1, help="list each photo this many times (under new ids)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 224])
    parser.add_argument("--recipe", default="gram")
    parser.add_argument("--workers", type=int, nargs="+", default=[-1, 1], help="-1: auto (decoding threads on CPU)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=64, help="images per batch (and per forward pass on CUDA)")
    parser.add_argument("--precisions", nargs="+", default=["fp32"], choices=["fp32", "fp16", "bf16"], help="backbone arithmetic")
    parser.add_argument("--decodes", nargs="+", default=["cpu"], choices=["cpu", "device"], help="where JPEGs are decoded")
    parser.add_argument("--engines", nargs="+", help="ENGINE:PRECISION, e.g. torch:fp32 openvino:int8 (compare engines)")
    parser.add_argument("--model-n", type=int, default=640, help="decoded photos timed through the style model alone")
    parser.add_argument("--queries", type=int, default=200, help="test photos for single-photo query latency")
    parser.add_argument("--latency-n", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=1, help="time the engines this many times in turn (medians)")
    parser.add_argument("--quality", nargs="*", default=[], choices=["FU4", "FUW", "ARCH10"])
    parser.add_argument("--agreement", type=int, default=0, help="test photos for the torch-index / OpenVINO-query check")
    parser.add_argument("--large-px", type=int, default=0, help="measure scaled decoding on photos re-encoded this large")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.large_px:
        row = large_photos(args)
        print(f"# bench_embed --large-px {args.large_px} ({platform.machine()} {torch.get_num_threads()} threads)\n")
        print("| photos | MP | px | decode img/s, draft | decode img/s, full | draft speed-up | cosine mean / min |")
        print("|---|---|---|---|---|---|---|")
        print(
            f"| {row['photos']} | {row['megapixels']:.2f} | {row['image_size']} | {row['draft_decode_img_s']} | "
            f"{row['full_decode_img_s']} | {row['draft_speedup']}x | {row['cosine_mean']} / {row['cosine_min']} |"
        )
        if args.json:
            print(json.dumps(row))
        return 0
    if args.engines:
        table = compare_engines(args)
        machine = f"{platform.machine()} {torch.get_num_threads()} threads, torch {torch.__version__}"
        print(f"# bench_embed --engines ({machine})\n")
        print(f"{args.rounds} round(s); the ratios are to the first engine at the same size\n")
        print("| px | engine | runs | style model img/s | embedding stage img/s | query p50 / p95 ms | FU4 | FUW |")
        print("|---|---|---|---|---|---|---|---|")
        first: dict[object, dict[str, object]] = {}
        for r in table:
            if "engine" in r:
                base = first.setdefault(r["image_size"], r)

                def ratio(key: str, r: dict[str, object] = r, base: dict[str, object] = base) -> str:
                    return f"{r[key]} ({float(r[key]) / float(base[key]):.2f}x)"  # type: ignore[arg-type]

                print(
                    f"| {r['image_size']} | {r['engine']}:{r['precision']} | {r['runs']} | {ratio('style_model_img_s')} | "
                    f"{ratio('embed_stage_img_s')} | {ratio('query_p50_ms')} / {r['query_p95_ms']} | "
                    f"{r.get('fu4_macro_f1', '-')} | {r.get('fuw_macro_f1', '-')} |"
                )
            else:
                print(f"\ntop-10 agreement: {r}")
        if args.json:
            print(json.dumps(table))
        return 0

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
