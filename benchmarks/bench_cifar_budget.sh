#!/usr/bin/env bash
# The science budget (docs/performance.md): CIFAR-10 training img/s at 1 thread, the setting of the
# experiment runs (scripts/experiments-cifar.sh), for one or more builds of the tool side by side.
# Each row is one short `rla train` (recipe of the table, batch 128, LIMIT training images, one
# epoch) per binary, alternated ROUNDS times; the median of the epoch's img/s is printed.
# Run it on a quiet machine (pause experiment runs first).
#   bash benchmarks/bench_cifar_budget.sh DATA_ROOT BINARY [BINARY...]
#   MODELS=resnet20,rla_resnet20 ROUNDS=3 LIMIT=3840 bash benchmarks/bench_cifar_budget.sh ...
# DATA_ROOT: CIFAR-10 as the official binary files or the PNG class-folder tree (docs/data.md).
set -euo pipefail
if [ $# -lt 2 ]; then
  sed -n '2,9p' "$0" >&2
  exit 2
fi
root=$1
shift
MODELS=${MODELS:-resnet20,resnet32,rla_resnet20,rla_resnet29}
ROUNDS=${ROUNDS:-3}
LIMIT=${LIMIT:-3840}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
echo "# $(date -u +%FT%TZ) $(lscpu | sed -n 's/^Model name: *//p'), $(grep -qw avx512f /proc/cpuinfo && echo AVX-512 || echo AVX2)${DNNL_MAX_CPU_ISA:+, DNNL_MAX_CPU_ISA=$DNNL_MAX_CPU_ISA}, 1 thread, batch 128, $LIMIT images, median of $ROUNDS"
printf '| model |'
for bin in "$@"; do printf ' %s |' "$bin"; done
printf '\n|---|'
for _ in "$@"; do printf -- '---:|'; done
printf '\n'
for model in ${MODELS//,/ }; do
  printf '| %s |' "$model"
  declare -A speeds=()
  for round in $(seq "$ROUNDS"); do
    i=0
    for bin in "$@"; do
      out="$dir/$model-$i-$round"
      "$bin" --threads 1 train --out "$out" --model "$model" --dataset cifar10 --data-root "$root" \
        --limit-train "$LIMIT" --limit-test 128 --epochs 1 --batch-size 128 --lr 0.1 --wd 5e-4 \
        --seed 0 >"$out.log" 2>&1 || { echo "failed: $bin on $model (log $out.log)" >&2; cat "$out.log" >&2; exit 1; }
      speeds[$i]="${speeds[$i]:-} $(sed -n 's/.*"train_img_per_s":\([0-9.]*\).*/\1/p' "$out/metrics.jsonl" | head -1)"
      i=$((i + 1))
    done
  done
  for i in $(seq 0 $(($# - 1))); do
    printf ' %s |' "$(echo ${speeds[$i]} | tr ' ' '\n' | sort -g | awk '{v[NR]=$1} END {printf "%.1f", (NR % 2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}')"
  done
  printf '\n'
  unset speeds
done
