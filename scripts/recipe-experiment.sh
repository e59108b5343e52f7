#!/usr/bin/env bash
# The training-recipe comparison of docs/training.md (protocol fixed there before any result):
# rla_resnet20 on Fashion-MNIST (55,000 training images, the fixed 5,000-image validation split,
# test set once per run), 4 epochs, seeds 0 and 1, the `rla train` defaults against the `modern`
# preset scaled to this budget (batch 128, lr 0.5 x 128 / 1024, warm-up 5/600 of the epochs).
# Resumable: finished runs are skipped, unfinished ones resume from last.ckpt.
#   bash scripts/recipe-experiment.sh            # runs, then prints the tables
#   JOBS=1 THREADS=2 bash scripts/recipe-experiment.sh
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib/runs.sh
source scripts/lib/runs.sh
RUNS=${RUNS:-experiments/recipe}
JOBS=${JOBS:-2}
THREADS=${THREADS:-1}
freeze_tool "$RUNS"
COMMON=(--model rla_resnet20 --dataset fashion-mnist --val-size 5000 --val-seed 0 --epochs 4 --quiet)

for seed in 0 1; do
  echo "$RUNS/default-seed$seed --seed $seed"
  echo "$RUNS/modern-seed$seed --seed $seed --recipe modern --batch-size 128 --lr 0.0625 --warmup-epochs 0.0333"
done > "$RUNS/jobs.txt"
run_all "$RUNS/jobs.txt"

"$RLA" report "$RUNS" --by-config
# The modern preset keeps a weight average: its reported weights are the ones with the better
# final validation top-1 (raw or EMA), chosen without looking at the test set.
python3 - "$RUNS" <<'PY'
import json, os, statistics, sys
root = sys.argv[1]
rows = {}
for name in sorted(os.listdir(root)):
    path = os.path.join(root, name, "result.json")
    if not os.path.exists(path):
        continue
    r = json.load(open(path))
    variant = name.rsplit("-seed", 1)[0]
    picked = "raw"
    val, test = r["val_top1"], r["test_top1"]
    if "ema_val_top1" in r and r["ema_val_top1"] > r["val_top1"]:
        picked, val, test = "ema", r["ema_val_top1"], r["ema_test_top1"]
    rows.setdefault(variant, []).append((name, picked, 100 - val, 100 - test))
print("| variant | run | weights (picked on validation) | val error % | test error % |")
print("|---|---|---|---|---|")
for variant, runs in rows.items():
    for name, picked, ve, te in runs:
        print(f"| {variant} | {name} | {picked} | {ve:.2f} | {te:.2f} |")
    if len(runs) > 1:
        tes = [t for *_, t in runs]
        print(f"| {variant} | mean ± std | | {statistics.mean(v for _, _, v, _ in runs):.2f} | "
              f"{statistics.mean(tes):.2f} ± {statistics.stdev(tes):.2f} |")
PY
