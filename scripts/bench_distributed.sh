#!/usr/bin/env bash
# Data-parallel speed on this machine: rla_resnet20, Fashion-MNIST 28x28, batch 128 in total.
#   1 process  x 2 threads, batch 128
#   2 processes x 1 thread, batch 64 each (rla launch), all-reduce overlapped with backward
#   2 processes x 1 thread, batch 64 each, all-reduce after backward (--no-overlap)
# Prints img/s of the second epoch (the first warms up) and the all-reduce time per step that
# training waited for (from each rank's closing line). Usage: scripts/bench_distributed.sh [rla binary]
set -euo pipefail
RLA=${1:-build/rla}
N=${BENCH_IMAGES:-2560}  # training images per epoch (20 steps of 128)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
common=(train --model rla_resnet20 --dataset fashion-mnist --limit-train "$N" --limit-test 128 --epochs 2
        --workers 1 -q --lr 0.05)
img_per_s() { python3 -c 'import json,sys; print(round(json.loads(open(sys.argv[1]).read().splitlines()[-1])["train_img_per_s"]))' "$1/metrics.jsonl"; }
port=$(( 29500 + RANDOM % 1000 ))

echo "load before: $(uptime)"
"$RLA" --threads 2 "${common[@]}" --batch-size 128 --out "$tmp/one" 2>/dev/null
echo "1 process  x 2 threads, batch 128:       $(img_per_s "$tmp/one") img/s"
"$RLA" launch --nproc 2 --master-port "$port" -- --threads 1 "${common[@]}" --batch-size 64 --out "$tmp/two" \
  2>"$tmp/two.log"
echo "2 processes x 1 thread, batch 2x64:      $(img_per_s "$tmp/two") img/s (overlapped all-reduce)"
grep -o 'rank ./2: .*all-reduce [0-9.]* ms/step' "$tmp/two.log" | sed 's/^/    /'
"$RLA" launch --nproc 2 --master-port $((port + 1)) -- --threads 1 "${common[@]}" --batch-size 64 --no-overlap \
  --out "$tmp/sync" 2>"$tmp/sync.log"
echo "2 processes x 1 thread, batch 2x64:      $(img_per_s "$tmp/sync") img/s (all-reduce after backward)"
grep -o 'rank ./2: .*all-reduce [0-9.]* ms/step' "$tmp/sync.log" | sed 's/^/    /'
echo "load after:  $(uptime)"
