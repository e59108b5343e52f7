#!/usr/bin/env bash
# Configures and builds rla (Release) into ./build. Installs the Debian packages first.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "${RLA_BUILD_JOBS:-2}"
