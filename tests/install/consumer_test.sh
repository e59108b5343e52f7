#!/usr/bin/env bash
# The installed tree works for a user's project: `cmake --install` into a fresh prefix, build
# examples/ against it with find_package(rla CONFIG), train a tiny run with the installed tool,
# and check that the example classifies a PNG exactly as `rla predict` does. Also validates rla.pc.
#   tests/install/consumer_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
prefix=$(mktemp -d "${TMPDIR:-/tmp}/rla-install.XXXXXX")
trap 'rm -rf "$prefix"' EXIT

cmake --install "$build" --prefix "$prefix" > "$prefix/install.log"
test -f "$prefix/lib/cmake/rla/rlaConfig.cmake"
test -f "$prefix/include/rla/engine/run.h"
test -f "$prefix/include/rla/config.h"

cmake -S "$src/examples" -B "$prefix/example" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$prefix" > "$prefix/configure.log"
cmake --build "$prefix/example" > "$prefix/build.log" || { cat "$prefix/build.log"; exit 1; }

"$prefix/bin/rla" --threads 1 train --dataset synthetic --limit-train 128 --limit-test 64 --epochs 1 \
  --batch-size 32 --workers 0 -q --out "$prefix/run" > /dev/null
python3 - "$prefix/picture.png" <<'PY'
import struct, sys, zlib
w = h = 28
rows = b"".join(b"\x00" + bytes((3 * x + 5 * y) % 256 for x in range(w)) for y in range(h))
def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
png += chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
open(sys.argv[1], "wb").write(png)
PY

# "probability index" pairs from both programs must agree line by line.
got=$("$prefix/example/classify" "$prefix/run" "$prefix/picture.png" | awk '{print $1, $2}')
want=$("$prefix/bin/rla" --threads 1 predict --weights "$prefix/run" "$prefix/picture.png" --top 5 | awk 'NR > 1 {print $1, $2}')
[ "$(echo "$got" | wc -l)" -eq 5 ] || { echo "expected 5 classes, got: $got"; exit 1; }
[ "$got" = "$want" ] || { printf 'example:\n%s\nrla predict:\n%s\n' "$got" "$want"; exit 1; }

# A bad input is a one-line error from the example too.
if "$prefix/example/classify" "$prefix/nonexistent" "$prefix/picture.png" 2> "$prefix/err.txt"; then
  echo "classify accepted a missing run"; exit 1
fi
[ "$(wc -l < "$prefix/err.txt")" -eq 1 ] || { cat "$prefix/err.txt"; exit 1; }

export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
pkg-config --validate rla
pkg-config --libs rla | grep -q -- "-lrla"
# The .pc file is relocatable: its include folder is the installed one.
incdir=$(pkg-config --variable=includedir rla)
test -f "$incdir/rla/engine/run.h"
echo "installed tree OK: example built against $prefix and agrees with rla predict"
