# Sourced by the experiment scripts (scripts/experiments.sh, scripts/recipe-experiment.sh): training
# runs that are resumable and locked. The caller sets RLA (the tool), THREADS, JOBS and the array
# COMMON (arguments every run gets), and calls freeze_tool DIR first.

# Every run of one invocation uses one frozen copy of the tool (RLA, unless set by the caller), so
# that rebuilding build/ meanwhile cannot change a run halfway.
freeze_tool() {
  [ -n "${RLA:-}" ] && return 0
  bash scripts/build.sh rla > /dev/null  # up to date with the working tree
  mkdir -p "$1/.bin"
  cp build/rla "$1/.bin/rla.$$"
  RLA="$1/.bin/rla.$$"
  trap 'rm -f "$RLA"' EXIT
}

# One line per session that trains a run, appended to DIR/sessions.txt: when, which build of the
# tool (TOOL_COMMIT, when the caller sets it), on which CPU, with how many threads.
record_session() {
  local cpu isa="avx2"
  cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
  grep -qw avx512f /proc/cpuinfo && isa="avx512"
  [ -z "${DNNL_MAX_CPU_ISA:-}" ] || isa="$isa (DNNL_MAX_CPU_ISA=$DNNL_MAX_CPU_ISA)"
  echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) tool=${TOOL_COMMIT:-unrecorded} cpu=\"$cpu\" isa=$isa cores=$(nproc) threads=$THREADS" \
    >> "$1/sessions.txt"
}

# run DIR ARGS...: one training run, skipped when finished or locked by another process.
run() {
  local dir=$1
  shift
  mkdir -p "$dir"
  if [ -f "$dir/result.json" ]; then return 0; fi
  (
    flock -n 9 || { echo "busy elsewhere: $dir"; exit 0; }
    local start
    start=$(date +%s)
    echo "$(date +%H:%M) start  $dir"
    record_session "$dir"
    if ${NICE:-} "$RLA" --threads "$THREADS" train --out "$dir" --resume "${COMMON[@]}" "$@" >> "$dir/train.log" 2>&1; then
      echo "$(date +%H:%M) done   $dir ($(( $(date +%s) - start )) s)"
    else
      echo "$(date +%H:%M) FAILED $dir (see $dir/train.log)"
    fi
  ) 9> "$dir.lock"
}

# Runs the lines of a job file (each: DIR ARGS...) JOBS at a time.
run_all() {
  local jobfile=$1
  while read -r -a job; do
    [ ${#job[@]} -gt 0 ] || continue
    # Counts the jobs really running: `wait -n` also returns for runs that were skipped at once.
    while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n || true; done
    run "${job[@]}" &
  done < "$jobfile"
  wait
}
