#!/usr/bin/env bash
# The first round's early-exit page (docs/appendix/short_budget_early_exit.md, superseded by step 3
# of scripts/experiments.sh): trains resnet20 and rla_resnet20 on Fashion-MNIST with the same
# recipe and joint early-exit heads after every block, then writes the depth sweep, the
# dynamic-inference sweep and the feature-map grid of both models into docs/early_exit/. The
# models' defaults changed since (zero-init off, the cell reads the block output), so a rerun
# today trains other networks than the recorded ones.
#
#   scripts/early_exit_experiment.sh            # RLA=./build-exits/rla RUNS=runs/early_exit
#
# The two trainings run one after the other (about 10 minutes each on 2 busy shared cores).
# The recipe is deliberately small: 8000 training images, 2 epochs, the first 2000 test images.
set -euo pipefail

RLA=${RLA:-./build-exits/rla}
RUNS=${RUNS:-runs/early_exit}
OUT=${OUT:-docs/early_exit}
THREADS=${THREADS:-2}
RECIPE=(--dataset fashion-mnist --limit-train 8000 --limit-test 2000 --epochs 2 --batch-size 128 --lr 0.1
        --schedule cosine --wd 5e-4 --seed 0 --exits block --exit-weight 0.5)

mkdir -p "$RUNS" "$OUT"
for model in resnet20 rla_resnet20; do
  # --resume finishes an interrupted run, re-evaluates a finished one and starts a missing one.
  "$RLA" --threads "$THREADS" train --model "$model" "${RECIPE[@]}" --out "$RUNS/$model" --quiet --resume
done

"$RLA" --threads "$THREADS" exits "$RUNS/resnet20" "$RUNS/rla_resnet20" \
  --taus 0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,1 --batch-size 256 --repeats 2 --limit-test 2000 --out "$OUT" \
  | tee "$OUT/exits.txt"

"$RLA" --threads "$THREADS" visualize "$RUNS/resnet20" "$RUNS/rla_resnet20" \
  --dataset-indices 0,1,2,3,4,5 --depths stages --out "$OUT/feature_maps.png"
