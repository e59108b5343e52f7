#!/usr/bin/env bash
# The CUDA check, for a session that is lent a GPU machine (the `device` tool; nothing of this runs
# in CI). It builds rla against the LibTorch inside that machine's PyTorch 2.x + CUDA, with the
# Debian packages the image lacks carried as .debs (fetch them here first), then runs: the CPU
# parity tests, a short training run on CUDA (stopped, then resumed), `rla eval` of that run (on
# the GPU, and on the CPU plain and through the fast path), and bench_compare --device cuda against
# eager PyTorch on the same GPU.
#
#   here:            bash scripts/gpu-check.sh --fetch        # apt-get download into .debs/ (ignored)
#   device machine:  run(command="bash scripts/gpu-check.sh", carry=[".debs"], timeout_s=600)
#
# Everything it prints also goes to $OUT/gpu-check.log (the tool brings $OUT back).
set -uo pipefail
cd "$(dirname "$0")/.."
DEBS=(libfmt-dev libfmt9 nlohmann-json3-dev libcli11-dev libgtest-dev libgmock-dev googletest
      libbenchmark-dev libbenchmark1debian libturbojpeg0-dev libturbojpeg0 libpng-dev libpng16-16
      zlib1g-dev libgloo-dev)
if [ "${1:-}" = "--fetch" ]; then
  mkdir -p .debs && cd .debs && apt-get download "${DEBS[@]}" && ls -la
  exit $?
fi

OUT=${OUT:-/tmp/gpu-check-out}
mkdir -p "$OUT"
exec > >(tee "$OUT/gpu-check.log") 2>&1
set -x
nvidia-smi -L || true
SYSROOT=/tmp/rla-sysroot
mkdir -p "$SYSROOT"
for f in .debs/*.deb; do dpkg -x "$f" "$SYSROOT"; done
TORCH_CMAKE=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')
python3 -c 'import torch; print(torch.__version__, torch.version.cuda, torch.cuda.get_device_name(0), torch._C._GLIBCXX_USE_CXX11_ABI)'
LIBDIR=$SYSROOT/usr/lib/x86_64-linux-gnu
export CPATH=$SYSROOT/usr/include${CPATH:+:$CPATH}
export LIBRARY_PATH=$LIBDIR${LIBRARY_PATH:+:$LIBRARY_PATH}
export LD_LIBRARY_PATH=$LIBDIR:$(python3 -c 'import torch, os; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export PKG_CONFIG_PATH=$LIBDIR/pkgconfig:$SYSROOT/usr/share/pkgconfig
export PKG_CONFIG_SYSROOT_DIR=$SYSROOT
start=$(date +%s)
cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$TORCH_CMAKE;$SYSROOT/usr" \
  -DRLA_BUILD_BENCHMARKS=ON -DRLA_BUILD_TESTS=ON || exit 1
cmake --build build-gpu -j "$(nproc)" || exit 1
echo "build: $(( $(date +%s) - start )) s"

status=0
R=./build-gpu/rla
(cd build-gpu && ctest -L parity --output-on-failure) || status=1
RUN=/tmp/gpu-check-run
$R train --device cuda --dataset synthetic --epochs 2 --batch-size 64 --out $RUN --overwrite --max-steps 12 || true
$R train --device cuda --dataset synthetic --epochs 2 --batch-size 64 --out $RUN --resume || status=1
cp $RUN/metrics.jsonl "$OUT/cuda_metrics.jsonl"
$R eval $RUN --json > "$OUT/eval.json" || status=1
$R eval $RUN --json --device cuda > "$OUT/eval_cuda.json" || status=1
$R eval $RUN --json --fast | tee "$OUT/eval_fast.json" || status=1
./build-gpu/benchmarks/bench_compare --device cuda --quick --models resnet20,rla_resnet20,resnet50,rla_resnet50 \
  --python python3 --jsonl "$OUT/bench_cuda.jsonl" > "$OUT/bench_cuda.md" || status=1
cat "$OUT/bench_cuda.md"
echo "gpu-check: exit $status"
exit $status
