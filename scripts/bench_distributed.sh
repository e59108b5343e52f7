#!/usr/bin/env bash
# Data-parallel speed on this machine: rla_resnet20, Fashion-MNIST 28x28, batch 128 in total.
#   1 process  x 2 threads, batch 128 (OpenMP default wait policy, and OMP_WAIT_POLICY=PASSIVE)
#   2 processes x 1 thread, batch 64 each (rla launch): all-reduce overlapped with backward, after
#   backward (--no-overlap), and overlapped with 0.25 MB buckets (rla_resnet20's 1.26 MB of
#   gradients fit one 25 MB bucket, which can only start when backward ends)
# Prints training img/s of the second epoch (the first warms up), the time each rank blocked per
# step in gradient synchronisation (includes waiting for the slower rank), and the pure cost of one
# all-reduce of rla_resnet20's gradients (bench_allreduce: both ranks start together).
# Usage: scripts/bench_distributed.sh [build dir, default build]
set -euo pipefail
BUILD=${1:-build}
RLA=$BUILD/rla
N=${BENCH_IMAGES:-2560}  # training images per epoch (20 steps of 128)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
common=(train --model rla_resnet20 --dataset fashion-mnist --limit-train "$N" --limit-test 128 --epochs 2
        --workers 1 -q --lr 0.05)
img_per_s() {
  python3 -c 'import json,sys; print(round(json.loads(open(sys.argv[1]).read().splitlines()[-1])["train_img_per_s"]))' \
    "$1/metrics.jsonl"
}
port=$((29500 + RANDOM % 1000))

echo "load before: $(uptime)"
"$RLA" --threads 2 "${common[@]}" --batch-size 128 --out "$tmp/one" >/dev/null 2>&1
echo "1 process  x 2 threads, batch 128: $(img_per_s "$tmp/one") img/s"
OMP_WAIT_POLICY=PASSIVE "$RLA" --threads 2 "${common[@]}" --batch-size 128 --out "$tmp/passive" >/dev/null 2>&1
echo "1 process  x 2 threads, batch 128, OMP_WAIT_POLICY=PASSIVE: $(img_per_s "$tmp/passive") img/s"
for mode in overlap no-overlap overlap-0.25MB-buckets; do
  extra=()
  [ "$mode" = no-overlap ] && extra=(--no-overlap)
  [ "$mode" = overlap-0.25MB-buckets ] && extra=(--bucket-mb 0.25)
  port=$((port + 1))
  "$RLA" launch --nproc 2 --master-port "$port" -- --threads 1 "${common[@]}" --batch-size 64 "${extra[@]}" \
    --out "$tmp/$mode" >/dev/null 2>"$tmp/$mode.log"
  echo "2 processes x 1 thread, batch 2x64, $mode: $(img_per_s "$tmp/$mode") img/s"
  grep -o 'rank ./2: .*all-reduce [0-9.]* ms/step' "$tmp/$mode.log" | sed 's/^/    /'
done
if [ -x "$BUILD/benchmarks/bench_allreduce" ]; then
  "$BUILD/benchmarks/bench_allreduce" 1.26 200
fi
echo "load after:  $(uptime)"
