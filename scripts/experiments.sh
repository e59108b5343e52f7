#!/usr/bin/env bash
# Does RLA help? The controlled experiments behind docs/results.md, under the protocol fixed
# there before any result was seen. Resumable at every level: a finished run (its result.json
# exists) is skipped, an unfinished one continues with --resume, and a run another copy of this
# script is working on (its lock is held) is left alone. Weights are not committed: in a checkout
# without them, a finished run's report or figure stays as committed, and an unfinished run
# starts again from its first epoch unless its last.ckpt was committed (git add -f) to resume.
#
#   bash scripts/experiments.sh              # every phase in order (many CPU hours on 2 cores)
#   PHASES="ablation" bash scripts/experiments.sh
#   JOBS=1 THREADS=2 bash scripts/experiments.sh   # one run at a time on both cores
#
# Phases:
#   ablation  rla_resnet20 x {state input branch, output} x {zero-init on, off} and
#             resnet20 x {zero-init on, off}; 2 seeds, 3 epochs. Picks, on validation, the CIFAR
#             state input and the one init policy of the next phase (rule: docs/results.md).
#   table     resnet20 resnet29 resnet32 rla_resnet20 rla_resnet29 rla_resnet29_s (3 seeds)
#             and resnet56 rla_resnet56_s (2 seeds), 10 epochs, the picked init for all.
#   exits     post-hoc exit heads on the frozen seed-0 backbones (rla_resnet29, rla_resnet20: heads
#             reading h, x or both; resnet29, resnet32: x), then `rla exits` reports with easy/hard
#             defined by agreement of every finished table run (time the reports on idle cores);
#             writes docs/results_exits.md and docs/figures/exits_*.png.
#   figures   the feature-map grid resnet32 vs rla_resnet29 (docs/figures/).
#   report    docs/results_ablation.md and docs/results_table.md from the finished runs.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib/runs.sh
source scripts/lib/runs.sh

PHASES=${PHASES:-"ablation table exits figures report"}
RUNS=${RUNS:-experiments}  # committed: configs, metrics, results and logs (weights are ignored)
JOBS=${JOBS:-2}        # runs side by side
THREADS=${THREADS:-1}  # intra-op threads per run
freeze_tool "$RUNS"

# The one recipe (docs/results.md, "Protocol"): Fashion-MNIST, a fixed class-stratified
# 5,000-image validation split of the 60,000 training images (split seed 0), training on the
# other 55,000 with random crop (pad 2) + horizontal flip, SGD + Nesterov 0.9, lr 0.1 cosine to 0,
# weight decay 5e-4, batch 128; the test set is evaluated once, after the last epoch.
COMMON=(--dataset fashion-mnist --val-size 5000 --val-seed 0 --batch-size 128 --lr 0.1 --schedule cosine
        --wd 5e-4 --momentum 0.9 --quiet)

ablation_jobs() {
  for seed in 0 1; do
    for zi in on off; do
      for si in branch output; do
        echo "$RUNS/ablation/rla_resnet20-$si-zi_$zi-seed$seed --model rla_resnet20 --state-input $si --zero-init-residual $zi --epochs 3 --seed $seed"
      done
      echo "$RUNS/ablation/resnet20-zi_$zi-seed$seed --model resnet20 --zero-init-residual $zi --epochs 3 --seed $seed"
    done
  done
}

# The pre-registered choice (docs/results.md): prints "STATE_INPUT INIT" from the ablation's
# validation errors, or fails when a run is missing.
ablation_choice() {
  python3 - "$RUNS/ablation" <<'EOF'
import json, os, statistics, sys
root = sys.argv[1]
def val_error(name):
    errs = []
    for seed in (0, 1):
        path = os.path.join(root, f"{name}-seed{seed}", "result.json")
        if not os.path.exists(path):
            sys.exit(f"ablation incomplete: {path} missing")
        errs.append(100.0 - json.load(open(path))["val_top1"])
    return errs
rla = {(si, zi): val_error(f"rla_resnet20-{si}-zi_{zi}") for si in ("branch", "output") for zi in ("on", "off")}
plain = {zi: val_error(f"resnet20-zi_{zi}") for zi in ("on", "off")}
# State input: mean validation error of rla_resnet20 over both init settings and both seeds.
state = {si: statistics.mean(rla[(si, "on")] + rla[(si, "off")]) for si in ("branch", "output")}
# Init: the mean of the two family means (RLA family: both state inputs; plain: resnet20).
init = {zi: (statistics.mean(rla[("branch", zi)] + rla[("output", zi)]) + statistics.mean(plain[zi])) / 2
        for zi in ("on", "off")}
pick_state = min(state, key=state.get)
pick_init = min(init, key=init.get)
print(pick_state, pick_init)
for si, v in state.items(): print(f"state input {si}: mean validation error {v:.3f}", file=sys.stderr)
for zi, v in init.items(): print(f"zero-init {zi}: mean of family means {v:.3f}", file=sys.stderr)
EOF
}

table_jobs() {
  local state=$1 init=$2
  for seed in 0 1 2; do
    for model in resnet20 resnet29 resnet32 rla_resnet20 rla_resnet29 rla_resnet29_s resnet56 rla_resnet56_s; do
      case $model in resnet56 | rla_resnet56_s) [ "$seed" -le 1 ] || continue ;; esac
      local args="--model $model --zero-init-residual $init --epochs 10 --seed $seed"
      case $model in rla_*) args="$args --state-input $state" ;; esac
      echo "$RUNS/table/$model-seed$seed $args"
    done
  done
}

# Step 3: post-hoc exit heads after every block on frozen seed-0 backbones, reading h alone (state),
# x alone (main) or cat(x, h) (both); 3 epochs, the same recipe.
exit_jobs() {
  local state=$1 init=$2
  for backbone in rla_resnet29 rla_resnet20 resnet29 resnet32; do
    local inputs="state main both" extra=""
    case $backbone in
      rla_*) extra="--state-input $state" ;;
      *) inputs="main" ;;
    esac
    for input in $inputs; do
      echo "$RUNS/exits/$backbone-$input --model $backbone --zero-init-residual $init $extra --epochs 3 --seed 0" \
        "--exits block --exit-input $input --freeze-backbone --init-from $RUNS/table/$backbone-seed0/last.ckpt"
    done
  done
}

# Prints the run folders among the arguments that hold no last.ckpt (weights are not committed).
without_weights() {
  local dir
  for dir; do [ -f "$dir/last.ckpt" ] || echo "$dir"; done
  return 0
}

# The exit reports: easy = the test images every finished step-2 run classifies correctly. Each RLA
# net's three exit inputs are shown beside the plain nets of the seed's comparisons (resnet29 and
# resnet32 for rla_resnet29; resnet32 for rla_resnet20).
exit_reports() {
  local finished=()
  for dir in "$RUNS"/table/*/; do [ -f "$dir/result.json" ] && finished+=("${dir%/}"); done
  [ ${#finished[@]} -gt 0 ] || { echo "no finished table runs"; return 1; }
  for backbone in rla_resnet29 rla_resnet20; do
    local runs=() baselines="resnet32-main"
    [ "$backbone" = rla_resnet29 ] && baselines="resnet29-main resnet32-main"
    for name in "$backbone-state" "$backbone-main" "$backbone-both" $baselines; do
      [ -f "$RUNS/exits/$name/result.json" ] && runs+=("$RUNS/exits/$name")
    done
    [ ${#runs[@]} -gt 0 ] || continue
    # Weights are not committed: a checkout without them keeps the committed report.
    local missing
    missing=$(without_weights "${runs[@]}" "${finished[@]}")
    if [ -n "$missing" ]; then
      echo "exits report $backbone kept as committed: $(wc -l <<< "$missing") runs have no weights"
      continue
    fi
    "$RLA" --threads 1 exits "${runs[@]}" --easy-from "${finished[@]}" -o "$RUNS/exits/report-$backbone" \
      --repeats 3 > "$RUNS/exits/report-$backbone.txt.tmp"
    mv "$RUNS/exits/report-$backbone.txt.tmp" "$RUNS/exits/report-$backbone.txt"
    mkdir -p docs/figures
    cp "$RUNS/exits/report-$backbone/depth_sweep.png" "docs/figures/exits_${backbone}_depth.png"
    cp "$RUNS/exits/report-$backbone/dynamic.png" "docs/figures/exits_${backbone}_dynamic.png"
  done
  # docs/results_exits.md: the reports' tables as printed, with the runs they came from.
  {
    echo "<!-- generated by scripts/experiments.sh (exits phase) from $RUNS/exits; do not edit -->"
    echo "# Step 3: post-hoc exit heads on the frozen seed-0 backbones"
    echo
    echo "Easy = the test images that every --easy-from run of the report (its config line) classifies"
    echo "correctly; the report's second line gives their number."
    for backbone in rla_resnet29 rla_resnet20; do
      [ -s "$RUNS/exits/report-$backbone.txt" ] || continue
      printf '\n## %s\n\n' "$backbone"
      for chart in depth dynamic; do
        if [ -f "docs/figures/exits_${backbone}_$chart.png" ]; then
          printf '![%s](figures/exits_%s_%s.png)\n\n' "$chart" "$backbone" "$chart"
        fi
      done
      echo '```'
      cat "$RUNS/exits/report-$backbone.txt"
      echo '```'
    done
  } > docs/results_exits.md.tmp && mv docs/results_exits.md.tmp docs/results_exits.md
}

# Step 4: the feature-map grid of resnet32 vs rla_resnet29 (seed 0), the first 4 test images.
figures() {
  local a="$RUNS/table/resnet32-seed0" b="$RUNS/table/rla_resnet29-seed0"
  if [ ! -f "$a/result.json" ] || [ ! -f "$b/result.json" ]; then echo "figures: seed-0 runs not finished"; return 0; fi
  if [ -n "$(without_weights "$a" "$b")" ]; then echo "figures: kept as committed (no weights here)"; return 0; fi
  mkdir -p docs/figures
  "$RLA" --threads 1 visualize "$a" "$b" --dataset-indices 0,1,2,3 -o docs/figures/feature_maps_resnet32_vs_rla_resnet29.png
}

report() {
  mkdir -p docs
  if [ -d "$RUNS/ablation" ]; then
    {
      echo "<!-- generated by scripts/experiments.sh from $RUNS/ablation; do not edit -->"
      "$RLA" report "$RUNS/ablation" --by-config
    } > docs/results_ablation.md.tmp && mv docs/results_ablation.md.tmp docs/results_ablation.md
  fi
  if [ -d "$RUNS/table" ]; then
    {
      echo "<!-- generated by scripts/experiments.sh from $RUNS/table; do not edit -->"
      # The family of six, restated (docs/results.md, "Restated"): Holm over all six, the two
      # "≈" claims as equivalence (±0.5 points); then the same on validation error, and paired.
      local family=rla_resnet29:resnet32,rla_resnet20~resnet32,rla_resnet29:resnet29,rla_resnet20:resnet20
      family=$family,rla_resnet29_s~resnet32,rla_resnet56_s:resnet56
      "$RLA" report "$RUNS/table" \
        --models resnet20,resnet29,resnet32,rla_resnet20,rla_resnet29,rla_resnet29_s,resnet56,rla_resnet56_s \
        --compare "$family" --paired
      echo
      echo "The same family on validation error:"
      echo
      "$RLA" report "$RUNS/table" --compare "$family" --validation-only | sed -n '/^| comparison/,$p'
    } > docs/results_table.md.tmp && mv docs/results_table.md.tmp docs/results_table.md
  fi
}

for phase in $PHASES; do
  case $phase in
    ablation)
      ablation_jobs > "$RUNS/ablation.jobs"
      run_all "$RUNS/ablation.jobs"
      ablation_choice > "$RUNS/choice.txt"
      echo "ablation picks: $(cat "$RUNS/choice.txt")"
      ;;
    table)
      [ -f "$RUNS/choice.txt" ] || { echo "run the ablation phase first"; exit 1; }
      read -r state init < "$RUNS/choice.txt"
      table_jobs "$state" "$init" > "$RUNS/table.jobs"
      run_all "$RUNS/table.jobs"
      ;;
    exits)
      read -r state init < "$RUNS/choice.txt"
      exit_jobs "$state" "$init" > "$RUNS/exits.jobs"
      run_all "$RUNS/exits.jobs"
      exit_reports
      ;;
    figures) figures ;;
    report) report ;;
    *) echo "unknown phase '$phase' (ablation, table, exits, figures, report)"; exit 2 ;;
  esac
done
