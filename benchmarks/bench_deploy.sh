#!/usr/bin/env bash
# Deployment speed in one command (docs/deploy.md, docs/performance.md): our fp32 fast path and
# int8 model (build/benchmarks/bench_deploy), then ONNX Runtime on the same models exported to
# ONNX, at the same thread count, on the native ISA and with oneDNN and ATen capped to AVX2
# (ONNX Runtime runs uncapped both times: it has no such switch); then one table with the ratios.
# Run it on a quiet machine (pause experiment runs first).
#   bash benchmarks/bench_deploy.sh [THREADS] [MODELS]
#   QUICK=1 bash benchmarks/bench_deploy.sh   # CI-sized: 2 rounds, the two CIFAR models, native only
#   ISAS=native bash benchmarks/bench_deploy.sh 2 rla_resnet50
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS=${1:-$(nproc)}
if [ "${QUICK:-0}" = 1 ]; then
  MODELS=${2:-rla_resnet20,resnet20}
  ROUNDS=${ROUNDS:-2}
  ISAS=${ISAS:-native}
else
  MODELS=${2:-rla_resnet20,resnet20,rla_resnet50,resnet50}
  ROUNDS=${ROUNDS:-5}
  ISAS=${ISAS:-"native avx2"}
fi
bash scripts/build.sh bench_deploy >/dev/null
bash scripts/install-onnxruntime.sh >/dev/null || true
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
modules=${RLA_ONNXRUNTIME_MODULES:-$HOME/.cache/rla/onnxruntime/node_modules}
echo "# $(date -u +%FT%TZ) $(lscpu | sed -n 's/^Model name: *//p'), $(grep -qw avx512f /proc/cpuinfo && echo AVX-512 || echo AVX2), load $(cut -d' ' -f1-3 /proc/loadavg)"
for isa in $ISAS; do
  echo "## $isa"
  if [ "$isa" = avx2 ]; then
    env DNNL_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 ./build/benchmarks/bench_deploy --models "$MODELS" \
      --threads "$THREADS" --rounds "$ROUNDS" --onnx-dir "$dir/onnx" --jsonl "$dir/rla-$isa.jsonl"
  else
    ./build/benchmarks/bench_deploy --models "$MODELS" --threads "$THREADS" --rounds "$ROUNDS" \
      --onnx-dir "$dir/onnx" --jsonl "$dir/rla-$isa.jsonl"
  fi
  if [ -d "$modules/onnxruntime-node" ]; then
    RLA_ORT_JSONL="$dir/ort-$isa.jsonl" node benchmarks/onnxruntime_bench.js "$modules" "$THREADS" "$ROUNDS" \
      $(echo "$MODELS" | tr ',' '\n' | sed "s|^|$dir/onnx/|; s|$|.onnx|")
  else
    echo "ONNX Runtime not installed (scripts/install-onnxruntime.sh): its columns are left out"
  fi
done
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$dir" $ISAS <<'PY'
import json, os, sys
d, isas = sys.argv[1], sys.argv[2:]
def rows(path):
    return [json.loads(l) for l in open(path)] if os.path.exists(path) else []
print("\n| ISA | model | batch | fast path (ms) | ONNX Runtime (ms) | fast vs ORT (> 1: we are faster) | int8 (ms) | int8 vs fp32 |")
print("|---|---|---:|---:|---:|---:|---:|---:|")
for isa in isas:
    ort = {(r["model"], r["batch"]): r["ort_ms"] for r in rows(f"{d}/ort-{isa}.jsonl")}
    for r in rows(f"{d}/rla-{isa}.jsonl"):
        o = ort.get((r["model"], r["batch"]))
        cells = [isa, r["model"], str(r["batch"]), f'{r["fp32_ms"]:.2f}', f"{o:.2f}" if o else "—",
                 f'{o / r["fp32_ms"]:.2f}x' if o else "—", f'{r["int8_ms"]:.2f}', f'{r["fp32_ms"] / r["int8_ms"]:.2f}x']
        print("| " + " | ".join(cells) + " |")
PY
