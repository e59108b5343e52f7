#!/usr/bin/env bash
# Deployment speed in one command (docs/deploy.md, docs/performance.md): our fp32 fast path and
# int8 model (build/benchmarks/bench_deploy), then ONNX Runtime on the same models exported to
# ONNX, at the same thread count, on the native ISA and with oneDNN and ATen capped to AVX2
# (ONNX Runtime runs uncapped both times: it has no such switch); then one table with the ratios.
# Run it on a quiet machine (pause experiment runs first).
#   bash benchmarks/bench_deploy.sh [THREADS] [MODELS]
#   QUICK=1 bash benchmarks/bench_deploy.sh   # CI-sized: 2 rounds, the two CIFAR models, native only
#   ISAS=native PAIRS=3 bash benchmarks/bench_deploy.sh 2 rla_resnet50
# The machine's speed drifts over minutes (docs/performance.md, round seven), so ours and ONNX
# Runtime are alternated: for each model, PAIRS times one process of ours then one of ONNX
# Runtime; the table gives the median of the per-pair ratios with their range.
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS=${1:-$(nproc)}
if [ "${QUICK:-0}" = 1 ]; then
  MODELS=${2:-rla_resnet20,resnet20}
  ROUNDS=${ROUNDS:-2}
  ISAS=${ISAS:-native}
  PAIRS=${PAIRS:-1}
else
  MODELS=${2:-rla_resnet20,resnet20,rla_resnet50,resnet50}
  ROUNDS=${ROUNDS:-5}
  ISAS=${ISAS:-"native avx2"}
  PAIRS=${PAIRS:-2}
fi
bash scripts/build.sh bench_deploy >/dev/null
bash scripts/install-onnxruntime.sh >/dev/null || true
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
modules=${RLA_ONNXRUNTIME_MODULES:-$HOME/.cache/rla/onnxruntime/node_modules}
echo "# $(date -u +%FT%TZ) $(lscpu | sed -n 's/^Model name: *//p'), $(grep -qw avx512f /proc/cpuinfo && echo AVX-512 || echo AVX2), load $(cut -d' ' -f1-3 /proc/loadavg)"
have_ort=0
[ -d "$modules/onnxruntime-node" ] && have_ort=1
[ "$have_ort" = 1 ] || echo "ONNX Runtime not installed (scripts/install-onnxruntime.sh): its columns are left out"
for isa in $ISAS; do
  echo "## $isa"
  cap=()
  [ "$isa" = avx2 ] && cap=(env DNNL_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2)
  for pair in $(seq "$PAIRS"); do
    for model in $(echo "$MODELS" | tr ',' ' '); do
      echo "### pair $pair, $model"
      "${cap[@]}" ./build/benchmarks/bench_deploy --models "$model" --threads "$THREADS" --rounds "$ROUNDS" \
        --onnx-dir "$dir/onnx" --jsonl "$dir/rla-$isa.jsonl"
      if [ "$have_ort" = 1 ]; then
        RLA_ORT_JSONL="$dir/ort-$isa.jsonl" node benchmarks/onnxruntime_bench.js "$modules" "$THREADS" "$ROUNDS" \
          "$dir/onnx/$model.onnx"
      fi
    done
  done
done
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$dir" "$PAIRS" $ISAS <<'PY'
import json, os, statistics, sys
d, pairs, isas = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
def rows(path):
    out = {}
    for line in open(path) if os.path.exists(path) else []:
        r = json.loads(line)
        out.setdefault((r["model"], r["batch"]), []).append(r)
    return out
def span(values, fmt):
    lo, hi = min(values), max(values)
    return fmt.format(lo) if len(values) == 1 or fmt.format(lo) == fmt.format(hi) else (fmt + "–" + fmt).format(lo, hi)
print(f"\nMedians over {pairs} process pair(s) per model (ours, then ONNX Runtime); ranges in brackets.")
print("\n| ISA | model | batch | fast path (ms) | ONNX Runtime (ms) | fast vs ORT (> 1: we are faster) | int8 (ms) | int8 vs fp32 |")
print("|---|---|---:|---:|---:|---:|---:|---:|")
for isa in isas:
    ours, ort = rows(f"{d}/rla-{isa}.jsonl"), rows(f"{d}/ort-{isa}.jsonl")
    for key, rs in ours.items():
        fp32 = [r["fp32_ms"] for r in rs]
        int8 = [r["int8_ms"] for r in rs]
        speedup = [r["fp32_ms"] / r["int8_ms"] for r in rs]
        o = [r["ort_ms"] for r in ort.get(key, [])]
        ratio = [a / b for a, b in zip(o, fp32)]
        med = statistics.median
        cells = [isa, key[0], str(key[1]), f"{med(fp32):.2f} ({span(fp32, '{:.2f}')})",
                 f"{med(o):.2f} ({span(o, '{:.2f}')})" if o else "—",
                 f"**{med(ratio):.2f}x** ({span(ratio, '{:.2f}')})" if ratio else "—",
                 f"{med(int8):.2f}", f"{med(speedup):.2f}x ({span(speedup, '{:.2f}')})"]
        print("| " + " | ".join(cells) + " |")
PY
