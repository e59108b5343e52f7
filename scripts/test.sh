#!/usr/bin/env bash
# The test command: installs dependencies, builds, checks formatting, runs the whole ctest suite.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
bash scripts/build.sh
bash scripts/install-onnxruntime.sh  # optional: the ONNX export test also runs ONNX Runtime
echo "build finished in $(( $(date +%s) - start )) s"
bash scripts/check-format.sh
bash scripts/check-layers.sh
(cd build && ctest --output-on-failure -j "${RLA_TEST_JOBS:-2}" "$@")
echo "build + tests finished in $(( $(date +%s) - start )) s"

# Bounded fuzzing of the checkpoint reader and the image / dataset readers (libFuzzer +
# ASan/UBSan, clang only).
if [ "${RLA_SKIP_FUZZ:-0}" != 1 ] && command -v clang++ >/dev/null; then
  CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=Release -DRLA_BUILD_FUZZERS=ON \
    -DRLA_BUILD_TESTS=OFF -DRLA_BUILD_BENCHMARKS=OFF -DRLA_FUZZ_SECONDS="${RLA_FUZZ_SECONDS:-30}" >/dev/null
  cmake --build build-fuzz -j "${RLA_BUILD_JOBS:-2}" --target rla_fuzz_pytorch_archive rla_fuzz_data_readers
  ctest --test-dir build-fuzz/tests/fuzz --output-on-failure -L fuzz -j "${RLA_TEST_JOBS:-2}"  # one core each
  echo "build + tests + fuzzing finished in $(( $(date +%s) - start )) s"
fi
