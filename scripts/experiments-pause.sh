#!/usr/bin/env bash
# Pauses scripts/experiments.sh so that a later session, on a fresh checkout, resumes where this
# one stopped. Weights are ignored by git (experiments/.gitignore), so without this step every
# unfinished run would start again from its first epoch:
#   1. stops the experiment scripts (they start no new run);
#   2. sends SIGINT to their training runs, which write last.ckpt and exit;
#   3. stages the last.ckpt of every unfinished run with `git add -f`, and unstages those of runs
#      that have finished since (their result.json is what counts);
#   4. regenerates the report pages.
# Commit afterwards. Resume with `bash scripts/experiments.sh`.
#
#   bash scripts/experiments-pause.sh
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-experiments}

pkill -KILL -f "bash scripts/experiments.sh" || true
if pkill -INT -f "$RUNS/.bin/rla" ; then
  echo "waiting for the runs to write their checkpoints"
  for _ in $(seq 600); do
    pgrep -f "$RUNS/.bin/rla" > /dev/null || break
    sleep 1
  done
  if pgrep -f "$RUNS/.bin/rla" > /dev/null; then
    echo "runs still alive after 10 minutes: $(pgrep -f "$RUNS/.bin/rla" | tr '\n' ' ')" >&2
    exit 1
  fi
fi
rm -f "$RUNS"/.bin/rla.* "$RUNS"/*/*.lock

for ckpt in "$RUNS"/*/*/last.ckpt; do
  [ -f "$ckpt" ] || continue
  dir=$(dirname "$ckpt")
  if [ -f "$dir/result.json" ]; then
    git rm -q --cached --ignore-unmatch "$ckpt"
  else
    git add -f "$ckpt"
    echo "kept for resuming: $ckpt (after $(wc -l < "$dir/metrics.jsonl") epochs)"
  fi
done

PHASES=report bash scripts/experiments.sh
echo "paused; commit $RUNS/ and docs/, then resume later with: bash scripts/experiments.sh"
