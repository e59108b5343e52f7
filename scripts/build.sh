#!/usr/bin/env bash
# Configures and builds rla (Release) into ./build. Installs the Debian packages first.
#   bash scripts/build.sh            # everything: library, tool, tests, benchmarks
#   bash scripts/build.sh rla        # only the named targets (the main job builds the tool alone)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
if [ $# -gt 0 ]; then
  cmake --build build -j "${RLA_BUILD_JOBS:-2}" --target "$@"
else
  cmake --build build -j "${RLA_BUILD_JOBS:-2}"
fi
