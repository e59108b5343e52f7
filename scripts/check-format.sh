#!/usr/bin/env bash
# Fails if any C++ source differs from .clang-format (run with --fix to rewrite in place).
set -euo pipefail
cd "$(dirname "$0")/.."
files=$(git ls-files --cached --others --exclude-standard '*.cpp' '*.h' 2>/dev/null || find include src apps tests benchmarks -name '*.cpp' -o -name '*.h')
if [ "${1:-}" = "--fix" ]; then
  clang-format -i $files
  exit 0
fi
if ! clang-format --dry-run --Werror $files; then
  echo "check-format: run scripts/check-format.sh --fix" >&2
  exit 1
fi
echo "check-format: $(echo "$files" | wc -w) files clean"
