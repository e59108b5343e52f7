#!/usr/bin/env bash
# The side-by-side benchmark of docs/performance.md in one command: builds bench_compare, records the load
# average before and after, and runs C++ (eager + fast path) and eager PyTorch alternately.
#   scripts/bench_compare.sh [BUILD_DIR] [bench_compare options, e.g. --quick --models rla_resnet20]
# The table goes to stdout and to $BUILD_DIR/bench_compare.md; rows also to bench_compare.jsonl.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-$root/build}"
shift || true
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
ninja -C "$build" bench_compare >/dev/null
echo "load before: $(uptime)"
"$build/benchmarks/bench_compare" --jsonl "$build/bench_compare.jsonl" "$@" | tee "$build/bench_compare.md"
echo "load after:  $(uptime)"
