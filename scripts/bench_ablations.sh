#!/usr/bin/env bash
# The A/B measurements behind docs/performance.md's "what made the difference" section, C++ only,
# each pair run back to back under the same load:
#   1. glibc heap kept (default) vs RLA_SYSTEM_MALLOC=1, ImageNet inference;
#   2. fast-path tensors: oneDNN (mkldnn) vs dense channels-last, CIFAR and ImageNet;
#   3. training memory format: channels-last (default) vs NCHW.
#   scripts/bench_ablations.sh [BUILD_DIR]      -> BUILD_DIR/bench_ablations.md (and stdout)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-$root/build}"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
ninja -C "$build" bench_compare >/dev/null
bench="$build/benchmarks/bench_compare"
common=(--no-python --rounds 3 --min-sample-s 0.3)

rows() { grep '^| [a-z]' | grep -v '^| model' || true; }

{
  echo "load before: $(uptime)"
  echo
  echo "## 1. heap: kept (default) vs glibc default (RLA_SYSTEM_MALLOC=1)"
  echo '| model | workload | batch@size | C++ eager img/s | C++ fast img/s |'
  echo '|---|---|---|---:|---:|'
  for env in "" "RLA_SYSTEM_MALLOC=1"; do
    echo "| *${env:-heap kept}* | | | | |"
    env $env "$bench" "${common[@]}" --only-inference --models resnet50,rla_resnet50 2>/dev/null | rows | cut -d'|' -f1-6 | sed 's/$/|/'
  done
  echo
  echo "## 2. fast-path tensors: mkldnn vs dense"
  echo '| model | workload | batch@size | C++ eager img/s | C++ fast img/s |'
  echo '|---|---|---|---:|---:|'
  for backend in mkldnn dense; do
    "$bench" "${common[@]}" --only-inference --fast-backend "$backend" --models rla_resnet20,resnet50,rla_resnet50 \
      2>/dev/null | rows | cut -d'|' -f1-6 | sed 's/$/|/'
  done
  echo
  echo "## 3. training memory format: channels-last vs NCHW (batch 128 at 32x32)"
  echo '| model | workload | batch@size | C++ eager img/s |'
  echo '|---|---|---|---:|'
  for format in channels_last nchw; do
    "$bench" "${common[@]}" --only-training --train-format "$format" --models resnet20,rla_resnet20 2>/dev/null | rows \
      | grep train | cut -d'|' -f1-5 | sed 's/$/|/'
  done
  echo
  echo "load after: $(uptime)"
} | tee "$build/bench_ablations.md"
