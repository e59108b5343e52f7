#!/usr/bin/env bash
# Pauses an experiment script (scripts/experiments.sh, or the one named) so that a later session,
# on a fresh checkout, resumes where this one stopped. Weights are ignored by git
# (experiments/.gitignore), so without this step every unfinished run would start again from its
# first epoch:
#   1. stops the experiment script (it starts no new run);
#   2. sends SIGINT to its training runs, which write last.ckpt and exit (STOP_SIGNAL=TERM sends
#      SIGTERM instead: `rla train` treats SIGINT, SIGTERM and SIGHUP alike since issue #27, but
#      runs started by an older frozen tool in $RUNS/.bin stop cleanly on SIGINT only, so SIGINT
#      stays the default);
#   3. stages the last.ckpt of every unfinished run with `git add -f`, and unstages those of runs
#      that have finished since (their result.json is what counts), except the runs listed in
#      $RUNS/keep_weights.txt (weights a later phase needs: they stay staged);
#   4. regenerates the report pages (when the script has a report phase).
# Commit afterwards. Resume by running the experiment script again.
#
#   bash scripts/experiments-pause.sh                              # scripts/experiments.sh
#   bash scripts/experiments-pause.sh scripts/experiments-cifar.sh # RUNS=experiments/cifar
set -euo pipefail
cd "$(dirname "$0")/.."
SCRIPT=${1:-scripts/experiments.sh}
case $SCRIPT in
  *experiments-cifar.sh) RUNS=${RUNS:-experiments/cifar} ;;
  *) RUNS=${RUNS:-experiments} ;;
esac
ROOT=$(pwd -P)

# The processes matching PATTERN that run in this checkout (another checkout's are left alone).
pids_here() {
  local pid
  for pid in $(pgrep -f "$1"); do
    [ "$(readlink "/proc/$pid/cwd" 2> /dev/null)" = "$ROOT" ] && echo "$pid"
  done
  return 0
}

mapfile -t runners < <(pids_here "bash $SCRIPT")
[ ${#runners[@]} -eq 0 ] || kill -KILL "${runners[@]}" 2> /dev/null || true
mapfile -t runs < <(pids_here "$RUNS/.bin/rla")
if [ ${#runs[@]} -gt 0 ]; then
  echo "waiting for ${#runs[@]} runs to write their checkpoints"
  kill -"${STOP_SIGNAL:-INT}" "${runs[@]}" 2> /dev/null || true
  for _ in $(seq 600); do
    [ -n "$(pids_here "$RUNS/.bin/rla")" ] || break
    sleep 1
  done
  if [ -n "$(pids_here "$RUNS/.bin/rla")" ]; then
    echo "runs still alive after 10 minutes: $(pids_here "$RUNS/.bin/rla" | tr '\n' ' ')" >&2
    exit 1
  fi
fi
rm -f "$RUNS"/.bin/rla.* "$RUNS"/*/*.lock

for ckpt in "$RUNS"/*/*/last.ckpt; do
  [ -f "$ckpt" ] || continue
  dir=$(dirname "$ckpt")
  if [ -f "$RUNS/keep_weights.txt" ] && grep -qxF "$dir" "$RUNS/keep_weights.txt"; then
    git add -f "$ckpt"
    echo "kept for a later phase: $ckpt"
  elif [ -f "$dir/result.json" ]; then
    git rm -q --cached --ignore-unmatch "$ckpt"
  else
    git add -f "$ckpt"
    echo "kept for resuming: $ckpt (after $(wc -l < "$dir/metrics.jsonl") epochs)"
  fi
done

if grep -q '^ *report)' "$SCRIPT"; then PHASES=report bash "$SCRIPT"; fi
echo "paused; commit $RUNS/ and docs/, then resume later with: bash $SCRIPT"
