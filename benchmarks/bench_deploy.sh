#!/usr/bin/env bash
# Deployment speed in one run (docs/deploy.md): our fp32 fast path and int8 model
# (build/benchmarks/bench_deploy), then ONNX Runtime on the same models exported to ONNX, at the
# same thread count. Run it on a quiet machine.
#   bash benchmarks/bench_deploy.sh [THREADS] [MODELS]
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS=${1:-$(nproc)}
MODELS=${2:-rla_resnet20,resnet20,rla_resnet50}
ROUNDS=${ROUNDS:-5}
bash scripts/build.sh bench_deploy >/dev/null
bash scripts/install-onnxruntime.sh >/dev/null
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
echo "# $(date -u +%FT%TZ) $(lscpu | sed -n 's/^Model name: *//p'), load $(cut -d' ' -f1-3 /proc/loadavg)"
./build/benchmarks/bench_deploy --models "$MODELS" --threads "$THREADS" --rounds "$ROUNDS" --onnx-dir "$dir"
modules=${RLA_ONNXRUNTIME_MODULES:-$HOME/.cache/rla/onnxruntime/node_modules}
if [ -d "$modules/onnxruntime-node" ]; then
  node benchmarks/onnxruntime_bench.js "$modules" "$THREADS" "$ROUNDS" $(echo "$MODELS" | tr ',' '\n' | sed "s|^|$dir/|; s|$|.onnx|")
else
  echo "ONNX Runtime not installed (scripts/install-onnxruntime.sh): its column is left out"
fi
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)"
