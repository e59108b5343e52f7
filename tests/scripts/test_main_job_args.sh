#!/usr/bin/env bash
# scripts/main-job.sh with extra arguments (ctest: Scripts.*): a flag the user gives replaces the
# job's own, long or short, "--flag value" or "--flag=value", and every other default stays, once
# each (rla train refuses a flag given twice); --threads, rla's own option, goes before `train`.
# RLA_MAIN_JOB_DRY_RUN=1 prints the command only.
set -euo pipefail
script=$1
fail=0
check() {  # check "ARGS" "EXPECTED COMMAND" (after ./build/rla train, or after ./build/rla when it starts with --threads)
  local got
  # shellcheck disable=SC2086  # the test's argument strings are split on purpose
  local want="./build/rla train $2"
  case $2 in --threads*) want="./build/rla $2" ;; esac
  got=$(RLA_MAIN_JOB_DRY_RUN=1 bash "$script" $1)
  if [ "$got" != "$want" ]; then
    echo "main-job.sh $1"
    echo "  got      $got"
    echo "  expected $want"
    fail=1
  fi
}
common="--lr 0.1 --schedule cosine --wd 5e-4 --no-augment --channels-last"
check "" "--model rla_resnet20 --dataset fashion-mnist --epochs 3 --batch-size 128 $common --time-budget 9 --out runs/main"
check "--epochs 10 --time-budget 0" \
  "--model rla_resnet20 --dataset fashion-mnist --batch-size 128 $common --out runs/main --epochs 10 --time-budget 0"
check "--time-budget=3 --resume" \
  "--model rla_resnet20 --dataset fashion-mnist --epochs 3 --batch-size 128 $common --out runs/main --time-budget=3 --resume"
check "-m resnet20 -b 64 -o runs/y" \
  "--dataset fashion-mnist --epochs 3 $common --time-budget 9 -m resnet20 -b 64 -o runs/y"
check "--threads 1 --epochs 2" \
  "--threads 1 train --model rla_resnet20 --dataset fashion-mnist --batch-size 128 $common --time-budget 9 --out runs/main --epochs 2"
check "--epochs 2 --threads=2" \
  "--threads=2 train --model rla_resnet20 --dataset fashion-mnist --batch-size 128 $common --time-budget 9 --out runs/main --epochs 2"
[ $fail = 0 ] && echo "main-job.sh arguments: all checks passed"
exit $fail
