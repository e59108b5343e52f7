#!/usr/bin/env bash
# Optional test and benchmark reference: ONNX Runtime's CPU build from the npm registry (the
# onnxruntime-node package), installed into a cache folder outside the repository. The rla tool
# never needs it; the ONNX export test and benchmarks/bench_deploy.sh use it when it is there.
# Idempotent: an installed copy is kept. Without node/npm or a network it says so and exits 0.
set -uo pipefail

VERSION=${RLA_ONNXRUNTIME_VERSION:-1.30.0}
DIR=${RLA_ONNXRUNTIME_DIR:-$HOME/.cache/rla/onnxruntime}

if [ -f "$DIR/node_modules/onnxruntime-node/package.json" ] &&
  grep -q "\"version\": \"$VERSION\"" "$DIR/node_modules/onnxruntime-node/package.json"; then
  echo "install-onnxruntime: onnxruntime-node $VERSION present in $DIR"
  exit 0
fi
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "install-onnxruntime: node/npm not found; the ONNX Runtime checks will be skipped"
  exit 0
fi
mkdir -p "$DIR"
if (cd "$DIR" && timeout 600 npm install --ignore-scripts --no-audit --no-fund --silent \
  "onnxruntime-node@$VERSION" >/dev/null 2>&1); then
  echo "install-onnxruntime: installed onnxruntime-node $VERSION in $DIR"
else
  echo "install-onnxruntime: npm install failed (no network?); the ONNX Runtime checks will be skipped"
fi
exit 0
