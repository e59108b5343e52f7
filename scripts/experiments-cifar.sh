#!/usr/bin/env bash
# Does RLA help on CIFAR-10? The runs behind docs/results_cifar.md, under the protocol committed
# there before the first run. Resumable at every level: a finished run (its result.json exists)
# is skipped, an unfinished one continues from its last.ckpt (--resume), and a run another copy
# of this script is working on (its lock is held) is left alone. To stop for the day so that a
# fresh checkout resumes: bash scripts/experiments-pause.sh scripts/experiments-cifar.sh
#
#   bash scripts/experiments-cifar.sh               # every phase in order (~10 hours on 2 cores)
#   PHASES=table bash scripts/experiments-cifar.sh
#   setsid nohup bash scripts/experiments-cifar.sh > cifar.log 2>&1 &   # in the background, at low priority
#
# Data: the CIFAR-10 class-folder PNG tree (or the official binary files) in $CIFAR10_ROOT,
# default data/cifar10 (git-ignored, never committed). One way to get it here, from the public
# repository cyizhuo/CIFAR-10-dataset (60,000 lossless PNGs):
#   git clone --depth 1 https://github.com/cyizhuo/CIFAR-10-dataset data/cifar10
# or with internet, the official archive: https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz
# unpacked into data/cifar10 (the reader finds cifar-10-batches-bin/ below it).
#
# Phases:
#   table   resnet32 and rla_resnet29 with seeds 0-4, resnet20, rla_resnet20 and rla_resnet29_s
#           with seeds 0-2 (the comparison family); 15 epochs, the one recipe. Every run trains
#           with the frozen tool of experiments/cifar/TOOL_COMMIT.
#   control the optional resnet29 seeds 0-2, "after everything else" (docs/results_cifar.md): the
#           same recipe and frozen tool, into the table's folder; not part of easy / hard.
#   heads   post-hoc exit heads on the frozen final weights of seeds 0 and 1 of rla_resnet20 and
#           rla_resnet29 (heads reading h, x or both) and resnet32 (x), every head projected to 64
#           channels first (capacity matched), 3 epochs. Needs only those six table runs, so it may
#           run beside the table (PHASES=heads JOBS=1 ... as a second invocation).
#   exits   (after the family's table runs) the heads above if any is unfinished, then one `rla
#           exits` report per backbone and seed, easy/hard from the family runs that are not
#           backbones (their test_predictions.txt), timed with nothing else running;
#           docs/results_cifar_exits.md.
#   figures the feature-map grid of the seed-0 resnet32 and rla_resnet29 runs on CIFAR-10 test
#           images (docs/figures/feature_maps_cifar10_resnet32_vs_rla_resnet29.png).
#   status  where every run stands and the CPU time left (read-only; PHASES=status)
#   report  docs/results_cifar_table.md from the finished runs (with the current build): while
#           any run of the comparison family is missing, validation error only; then the test
#           error, the Holm-corrected family and the seed-paired view with McNemar.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib/runs.sh
source scripts/lib/runs.sh

PHASES=${PHASES:-"table report heads exits figures control report"}
RUNS=${RUNS:-experiments/cifar}  # committed: configs, metrics, results, predictions, logs
JOBS=${JOBS:-2}                  # runs side by side
THREADS=${THREADS:-1}            # intra-op threads per run
NICE=${NICE:-"nice -n 19"}
# Where the kernel groups tasks by session (autogroup), nice only ranks a run within its own
# session: when this script leads its own session (setsid), lower the whole group too, so that
# builds and benchmarks started elsewhere come first.
if [ -n "$NICE" ] && [ "$(ps -o sid= -p $$ | tr -d ' ')" = "$$" ] && [ -w /proc/$$/autogroup ]; then
  echo 19 > /proc/$$/autogroup 2> /dev/null || true
fi
CIFAR10_ROOT=${CIFAR10_ROOT:-data/cifar10}

if [ ! -d "$CIFAR10_ROOT" ]; then
  echo "no CIFAR-10 in $CIFAR10_ROOT (set CIFAR10_ROOT; how to get it: the head of this script)" >&2
  exit 2
fi

# The frozen tool: exactly the commit named in TOOL_COMMIT, built once into .cache/ (outside the
# working tree's build/, so that rebuilding the project meanwhile changes nothing here).
# (Re-read on every call: the exits and figures phases set TOOL_COMMIT to the current build's.)
frozen_tool() {
  TOOL_COMMIT=$(cat "$RUNS/TOOL_COMMIT")
  local dir=.cache/cifar-tool/$TOOL_COMMIT
  if [ ! -x "$dir/rla" ]; then
    echo "building the frozen tool at $TOOL_COMMIT into $dir"
    bash scripts/install-deps.sh
    rm -rf "$dir/src" && mkdir -p "$dir/src"
    git archive "$TOOL_COMMIT" | tar -x -C "$dir/src"
    cmake -S "$dir/src" -B "$dir/build" -G Ninja -DCMAKE_BUILD_TYPE=Release > /dev/null
    cmake --build "$dir/build" -j "${RLA_BUILD_JOBS:-2}" --target rla
    cp "$dir/build/rla" "$dir/rla.tmp" && mv "$dir/rla.tmp" "$dir/rla"
  fi
  # A private copy per invocation (the pause script finds the runs by this path).
  mkdir -p "$RUNS/.bin"
  cp "$dir/rla" "$RUNS/.bin/rla.$$"
  RLA="$RUNS/.bin/rla.$$"
  trap 'rm -f "$RLA"' EXIT
}

# The one recipe (docs/results_cifar.md, "Recipe"); --state-input is added for RLA models.
RECIPE=(--dataset cifar10 --data-root "$CIFAR10_ROOT" --val-size 5000 --val-seed 0 --batch-size 128
        --lr 0.1 --schedule cosine --warmup-epochs 1 --wd 5e-4 --momentum 0.9 --zero-init-residual off --quiet)
COMMON=("${RECIPE[@]}" --epochs 15)

# Later phases (exit heads, reports, figures) run with the current build, frozen per invocation
# like the table's tool; its commit is recorded in every run's sessions.txt.
current_tool() {
  bash scripts/build.sh rla > /dev/null  # up to date with the tree, whose commit is recorded below
  TOOL_COMMIT="$(git rev-parse HEAD)$(git diff --quiet HEAD -- src include apps || echo +uncommitted)"
  mkdir -p "$RUNS/.bin"
  cp build/rla "$RUNS/.bin/rla.$$"
  RLA="$RUNS/.bin/rla.$$"
  trap 'rm -f "$RLA"' EXIT
}

# The exit backbones (docs/results_cifar.md, "Fig. 4"): their final weights are committed
# (keep_weights.txt), so a fresh checkout can train the heads without retraining them.
EXIT_BACKBONES="rla_resnet20 rla_resnet29 resnet32"
exit_jobs() {
  local backbone seed input inputs extra
  for seed in 0 1; do
    for backbone in $EXIT_BACKBONES; do
      inputs="state main both" extra="--state-input output"
      [ "$backbone" = resnet32 ] && inputs="main" extra=""
      for input in $inputs; do
        echo "$RUNS/exits/$backbone-seed$seed-$input --model $backbone $extra --seed $seed --epochs 3" \
          "--exits block --exit-input $input --exit-projection 64 --freeze-backbone" \
          "--init-from $RUNS/table/$backbone-seed$seed/last.ckpt"
      done
    done
  done
}

# Easy / hard reference: every finished family run that is not an exit backbone (resnet29, the
# control, runs after the exits phase and is never a reference, whether or not it has run).
easy_reference() {
  local dir name
  for dir in "$RUNS"/table/*/; do
    dir=${dir%/}
    name=$(basename "$dir")
    [ -f "$dir/result.json" ] && [ -f "$dir/test_predictions.txt" ] || continue
    case $name in rla_resnet20-seed[01] | rla_resnet29-seed[01] | resnet32-seed[01] | resnet29-seed*) continue ;; esac
    echo "$dir"
  done
}

# The heads' training runs (skipped where finished, left alone where another invocation holds them).
train_heads() {
  local backbone seed
  for seed in 0 1; do
    for backbone in $EXIT_BACKBONES; do
      [ -f "$RUNS/table/$backbone-seed$seed/result.json" ] ||
        { echo "heads: $RUNS/table/$backbone-seed$seed is not finished; run the table first"; exit 1; }
    done
  done
  current_tool
  exit_jobs > "$RUNS/exits.jobs"
  # shellcheck disable=SC2034  # read by run() in lib/runs.sh
  COMMON=("${RECIPE[@]}")
  run_all "$RUNS/exits.jobs"
}

exit_reports() {
  local seed backbone runs refs
  mapfile -t refs < <(easy_reference)
  [ ${#refs[@]} -gt 0 ] || { echo "exits: no finished reference runs for easy/hard"; return 1; }
  for seed in 0 1; do
    for backbone in rla_resnet20 rla_resnet29; do
      runs=()
      for name in "$backbone-seed$seed-state" "$backbone-seed$seed-main" "$backbone-seed$seed-both" \
                  "resnet32-seed$seed-main"; do
        [ -f "$RUNS/exits/$name/result.json" ] && [ -f "$RUNS/exits/$name/last.ckpt" ] && runs+=("$RUNS/exits/$name")
      done
      [ ${#runs[@]} -eq 4 ] || { echo "exits report $backbone seed $seed: ${#runs[@]} of 4 head runs here"; continue; }
      local out="$RUNS/exits/report-$backbone-seed$seed"
      # A finished report (its .txt is moved into place at the end) is kept: resumable per report.
      if [ -s "$out.txt" ]; then
        echo "exits report $backbone seed $seed: done before ($out.txt)"
        continue
      fi
      mkdir -p "$out" && record_session "$out"  # which build, on which CPU (sessions.txt)
      "$RLA" --threads 1 exits "${runs[@]}" --easy-from "${refs[@]}" -o "$out" --repeats 3 > "$out.txt.tmp"
      mv "$out.txt.tmp" "$out.txt"
      mkdir -p docs/figures
      cp "$out/depth_sweep.png" "docs/figures/cifar10_exits_${backbone}_seed${seed}_depth.png"
      cp "$out/dynamic.png" "docs/figures/cifar10_exits_${backbone}_seed${seed}_dynamic.png"
    done
  done
  {
    echo "<!-- generated by scripts/experiments-cifar.sh (exits phase) from $RUNS/exits; do not edit -->"
    echo "# CIFAR-10 exits: post-hoc heads on frozen backbones, seeds 0 and 1"
    echo
    echo "Every head projects its input to 64 channels first (capacity matched). Easy = the test images"
    echo "that every reference run (the report's config line: table runs that are not backbones)"
    echo "classifies correctly; the report's second line gives their number."
    for backbone in rla_resnet29 rla_resnet20; do
      for seed in 0 1; do
        local txt="$RUNS/exits/report-$backbone-seed$seed.txt"
        [ -s "$txt" ] || continue
        printf '\n## %s, seed %s\n\n' "$backbone" "$seed"
        printf '![depth](figures/cifar10_exits_%s_seed%s_depth.png)\n\n' "$backbone" "$seed"
        echo '```'
        cat "$txt"
        echo '```'
      done
    done
    # The protocol's "mean of the two seeds", from the reports' CSV files.
    if compgen -G "$RUNS/exits/report-*-seed*/config.json" > /dev/null; then
      printf '\n## Both seeds: means, every seed in parentheses\n'
      python3 scripts/exits_mean.py "$RUNS"/exits/report-*-seed*/
    fi
  } > docs/results_cifar_exits.md.tmp && mv docs/results_cifar_exits.md.tmp docs/results_cifar_exits.md
}

figures() {
  local a="$RUNS/table/resnet32-seed0" b="$RUNS/table/rla_resnet29-seed0"
  if [ ! -f "$a/last.ckpt" ] || [ ! -f "$b/last.ckpt" ] || [ ! -f "$a/result.json" ] || [ ! -f "$b/result.json" ]; then
    echo "figures: the seed-0 resnet32 and rla_resnet29 runs are not finished here"
    return 0
  fi
  mkdir -p docs/figures
  "$RLA" --threads 1 visualize "$a" "$b" --dataset-indices 0,1,2,3 \
    -o docs/figures/feature_maps_cifar10_resnet32_vs_rla_resnet29.png
}

# Seed-major, so that every seed's pairs finish together and the exit backbones (seeds 0, 1)
# come first; a long and a short run alternate so that the two slots stay busy.
table_jobs() {
  local seed model args
  for seed in 0 1 2 3 4; do
    for model in rla_resnet29 resnet32 rla_resnet29_s rla_resnet20 resnet20; do
      case $model in resnet32 | rla_resnet29) ;; *) [ "$seed" -le 2 ] || continue ;; esac
      args="--model $model --seed $seed"
      case $model in rla_*) args="$args --state-input output" ;; esac
      echo "$RUNS/table/$model-seed$seed $args"
    done
  done
}

# The optional control, after everything else: resnet29 is rla_resnet29's own backbone.
control_jobs() {
  local seed
  for seed in 0 1 2; do echo "$RUNS/table/resnet29-seed$seed --model resnet29 --seed $seed"; done
}

# The runs of the pre-registered family (docs/results_cifar.md): every table job.
FAMILY_MODELS=resnet20,resnet32,rla_resnet20,rla_resnet29,rla_resnet29_s
FAMILY=rla_resnet29:resnet32,rla_resnet20~resnet32,rla_resnet29_s~resnet32,rla_resnet20:resnet20

report() {
  bash scripts/build.sh rla > /dev/null
  local missing=0 dir
  while read -r dir _; do
    [ -f "$dir/result.json" ] || missing=$((missing + 1))
  done < <(table_jobs)
  {
    echo "<!-- generated by scripts/experiments-cifar.sh (report phase) from $RUNS/table; do not edit -->"
    if [ "$missing" -gt 0 ]; then
      echo "Interim: $missing runs of the comparison family are not finished, so this table shows"
      echo "validation error only (docs/results_cifar.md: no test number before the family is complete)."
      echo
      ./build/rla report "$RUNS/table" --models "$FAMILY_MODELS,resnet29" --validation-only
    else
      ./build/rla report "$RUNS/table" --models "$FAMILY_MODELS,resnet29" --compare "$FAMILY" --paired
      echo
      echo "The same family on validation error (secondary):"
      echo
      ./build/rla report "$RUNS/table" --models "$FAMILY_MODELS" --compare "$FAMILY" --validation-only | \
        sed -n '/^| comparison/,$p'
      if compgen -G "$RUNS/table/resnet29-seed*/result.json" > /dev/null; then
        echo
        echo "Outside the family (the optional resnet29 runs):"
        echo
        ./build/rla report "$RUNS/table" --models rla_resnet29,resnet29 --compare rla_resnet29:resnet29 | \
          sed -n '/^| comparison/,$p'
      fi
    fi
  } > docs/results_cifar_table.md.tmp && mv docs/results_cifar_table.md.tmp docs/results_cifar_table.md
}

# Where the runs stand (read-only): every run of the table, the control and the heads, finished,
# partial (epochs done of its total; "running" while another invocation holds its lock) or not
# started, and what is left in CPU time at the seconds per epoch each model has taken so far.
status() {
  local dir args total
  {
    table_jobs | sed 's/$/ --epochs 15/'
    control_jobs | sed 's/$/ --epochs 15/'
    exit_jobs
  } | while read -r dir args; do
    total=$(echo "$args" | sed -n 's/.*--epochs \([0-9]*\).*/\1/p')
    if pgrep -f -- "train --out $dir --resume" > /dev/null; then  # (taking its lock could make a starting run skip)
      echo "$dir $total running"
    else
      echo "$dir $total idle"
    fi
  done | python3 -c '
import json, os, statistics, sys
jobs = int(sys.argv[1])
rows, per_epoch = [], {}
for line in sys.stdin:
    path, total, state = line.split()
    name = os.path.basename(path)
    kind = "heads" if "/exits/" in path else name.rsplit("-seed", 1)[0]
    metrics = os.path.join(path, "metrics.jsonl")
    epochs = [json.loads(l) for l in open(metrics) if l.strip()] if os.path.exists(metrics) else []
    done = os.path.exists(os.path.join(path, "result.json"))
    if done:
        per_epoch.setdefault(kind, []).extend(e["seconds"] for e in epochs)
    rows.append((path, kind, int(total), len(epochs), done, state))
left = 0.0
for path, kind, total, n, done, state in rows:
    if done:
        continue
    seconds = statistics.median(per_epoch[kind]) if kind in per_epoch else None
    rest = (total - n) * seconds if seconds else None
    left += rest or 0.0
    eta = f"~{rest / 3600:.1f} CPU-h left" if rest else "no finished run of this kind to time it by"
    flag = ", running" if state == "running" else ""
    print(f"{path}: {n}/{total} epochs{flag}; {eta}")
finished = sum(r[4] for r in rows)
print(f"{finished} of {len(rows)} runs finished; ~{left / 3600:.1f} CPU-hours of training left "
      f"(~{left / 3600 / jobs:.1f} h at {jobs} side by side), at the seconds per epoch the finished runs took")
' "$JOBS"
}

for phase in $PHASES; do
  case $phase in
    status) status ;;
    table)
      frozen_tool
      mkdir -p "$RUNS/table"
      table_jobs > "$RUNS/table.jobs"
      run_all "$RUNS/table.jobs"
      ;;
    control)
      frozen_tool
      mkdir -p "$RUNS/table"
      control_jobs > "$RUNS/control.jobs"
      run_all "$RUNS/control.jobs"
      ;;
    report) report ;;
    heads) train_heads ;;
    exits)
      # Easy / hard is defined once, after the table is complete (docs/results_cifar.md).
      unfinished=$(table_jobs | while read -r dir _; do [ -f "$dir/result.json" ] || echo "$dir"; done | wc -l)
      [ "$unfinished" -eq 0 ] || { echo "exits: $unfinished table runs are not finished; run the table first"; exit 1; }
      train_heads
      exit_reports
      ;;
    figures)
      current_tool
      figures
      ;;
    *) echo "unknown phase '$phase' (table, report, heads, exits, figures, control, status)"; exit 2 ;;
  esac
done
