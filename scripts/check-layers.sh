#!/usr/bin/env bash
# Fails when an include points up the layer order (README, "Layout"):
#   util < models < data < io < deploy | plot < engine < inference | distributed < tasks < apps
# A layer may include its own folder and any lower one; siblings (deploy and plot, inference and
# distributed) may not include each other.
set -euo pipefail
cd "$(dirname "$0")/.."
rank() {
  case $1 in
    util) echo 0 ;; models) echo 1 ;; data) echo 2 ;; io) echo 3 ;; deploy | plot) echo 4 ;; engine) echo 5 ;;
    inference | distributed) echo 6 ;; tasks) echo 7 ;; apps) echo 8 ;; *) echo -1 ;;
  esac
}
bad=0
checked=0
while IFS= read -r file; do
  case $file in
    include/rla/*) layer=$(echo "$file" | cut -d/ -f3) ;;
    src/*) layer=$(echo "$file" | cut -d/ -f2) ;;
    apps/*) layer=apps ;;
    *) continue ;;
  esac
  [ "$(rank "$layer")" -ge 0 ] || { echo "check-layers: $file is in no layer ($layer)"; bad=1; continue; }
  checked=$((checked + 1))
  while IFS= read -r target; do
    [ "$target" = "$layer" ] && continue
    if [ "$(rank "$target")" -lt 0 ] || [ "$(rank "$target")" -ge "$(rank "$layer")" ]; then
      echo "check-layers: $file ($layer) includes rla/$target/"
      bad=1
    fi
  done < <(sed -n 's|^#include "rla/\([a-z_]*\)/.*|\1|p' "$file" | sort -u)
done < <(git ls-files 'include/rla/*' 'src/*' 'apps/*' | grep -E '\.(h|cpp)$')
[ "$bad" -eq 0 ] || { echo "check-layers: includes must point down: util < models < data < io < deploy | plot < engine < inference | distributed < tasks < apps"; exit 1; }
echo "check-layers: $checked files, every include points down"
