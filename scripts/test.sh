#!/usr/bin/env bash
# The test command: installs dependencies, builds, checks formatting, runs the whole ctest suite.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
bash scripts/build.sh
echo "build finished in $(( $(date +%s) - start )) s"
bash scripts/check-format.sh
cd build
ctest --output-on-failure -j "${RLA_TEST_JOBS:-2}" "$@"
echo "build + tests finished in $(( $(date +%s) - start )) s"
