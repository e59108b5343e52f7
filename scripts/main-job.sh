#!/usr/bin/env bash
# The main job: installs what is missing, builds rla, then trains the default RLA model
# (rla_resnet20, k = 12) on Fashion-MNIST from Debian's dataset-fashion-mnist and prints its
# test accuracy. The recipe is the short one that reaches >= 90 % inside 10 minutes on 2 cores:
# 3 epochs, batch 128, SGD + Nesterov, lr 0.1 cosine, wd 5e-4, no augmentation (it slows a
# 3-epoch run down more than it helps), channels-last, and a 9-minute time budget: on a CPU too
# slow for 3 epochs in that time the cosine schedule is fitted to fewer (docs/training.md).
# Extra arguments go to `rla train` (e.g. --epochs 10 --time-budget 0 for a longer run, --resume
# to continue after a Ctrl-C or SIGTERM, or --overwrite to train runs/main again from scratch:
# without either, a runs/main that holds a run is refused and left as it is).
# A flag given here replaces the job's own (rla refuses a flag given twice); --threads N, an
# option of rla itself, goes before the `train` command.
# RLA_MAIN_JOB_DRY_RUN=1 prints the command instead of building and running it.
set -euo pipefail
cd "$(dirname "$0")/.."
defaults=(--model rla_resnet20 --dataset fashion-mnist --epochs 3 --batch-size 128 --lr 0.1 --schedule cosine
          --wd 5e-4 --no-augment --channels-last --time-budget 9 --out runs/main)
given() {  # whether the user's arguments hold flag $1 ("--flag value", "--flag=value" or its short alias)
  local a short=""
  case $1 in --model) short=-m ;; --batch-size) short=-b ;; --out) short=-o ;; esac  # rla train's aliases
  for a in "${user[@]}"; do
    if [ "$a" = "$1" ] || [ "${a%%=*}" = "$1" ] || { [ -n "$short" ] && [ "$a" = "$short" ]; }; then return 0; fi
  done
  return 1
}
# rla's own options (before the command) and the rest (rla train's).
tool=()
user=()
while [ $# -gt 0 ]; do
  case $1 in
    --threads=*) tool+=("$1") ;;
    --threads)
      [ $# -ge 2 ] || { echo "main-job.sh: --threads needs a value" >&2; exit 2; }
      tool+=("$1" "$2")
      shift
      ;;
    *) user+=("$1") ;;
  esac
  shift
done
args=()
i=0
while [ $i -lt ${#defaults[@]} ]; do
  flag=${defaults[$i]} n=2
  case $flag in --no-augment | --channels-last) n=1 ;; esac
  given "$flag" || args+=("${defaults[@]:$i:$n}")
  i=$((i + n))
done
args+=("${user[@]}")
if [ "${RLA_MAIN_JOB_DRY_RUN:-0}" = 1 ]; then
  echo "./build/rla ${tool[*]}${tool[*]:+ }train ${args[*]}"
  exit 0
fi
bash scripts/build.sh rla  # the tool alone; the test command builds the rest
exec ./build/rla "${tool[@]}" train "${args[@]}"
