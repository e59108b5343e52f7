#!/usr/bin/env bash
# The main job: installs what is missing, builds rla, then trains the default RLA model
# (rla_resnet20, k = 12) on Fashion-MNIST from Debian's dataset-fashion-mnist and prints its
# test accuracy. Extra arguments are passed to `rla train` (e.g. --epochs 10).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
exec ./build/rla train --model rla_resnet20 --dataset fashion-mnist --out runs/main "$@"
