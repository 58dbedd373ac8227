#!/usr/bin/env bash
# Builds the Isthmus C kernels for the CPU backend (called by backend-cpu/pom.xml in the generate-resources
# phase; usable by hand: native/cpu/build.sh OUTPUT_DIR).
#
#   OUTPUT_DIR/dev/isthmus/backend/cpu/native/linux-x86_64/libisthmus_cpu.so
#       cpu_features.c (no -m flags: safe on any x86-64) + kernels_avx512.c (AVX-512 BW/VL/DQ + VNNI + F16C),
#       selected at run time by NativeCpu.java from isthmus_cpu_features().
#   OUTPUT_DIR/dev/isthmus/backend/cpu/native/kernels.properties
#       what was built (sha256: the run-time cache directory name) or why not.
#
# Without a C compiler, or on another OS/architecture, the build succeeds without the library and the backend
# uses its Java kernels. With a compiler present, a compile error fails the build. CC overrides the compiler.
set -euo pipefail
src=$(cd "$(dirname "$0")" && pwd)
out=${1:?usage: build.sh OUTPUT_DIR}
res="$out/dev/isthmus/backend/cpu/native"
mkdir -p "$res/linux-x86_64"
props="$res/kernels.properties"
lib="$res/linux-x86_64/libisthmus_cpu.so"

cc=${CC:-}
if [ -z "$cc" ]; then
  for c in gcc cc clang; do
    if command -v "$c" >/dev/null 2>&1; then cc=$(command -v "$c"); break; fi
  done
fi
if [ "$(uname -s)" != Linux ] || [ "$(uname -m)" != x86_64 ]; then
  printf 'built=false\nreason=native kernels are built for linux-x86_64 only, not %s-%s\n' "$(uname -s)" "$(uname -m)" > "$props"
  rm -f "$lib"; echo "isthmus native/cpu: skipped ($(uname -s)-$(uname -m))"; exit 0
fi
if [ -z "$cc" ]; then
  printf 'built=false\nreason=no C compiler (gcc, cc or clang) on PATH at build time\n' > "$props"
  rm -f "$lib"; echo "isthmus native/cpu: no C compiler, Java kernels only"; exit 0
fi

newer=0
[ -f "$lib" ] || newer=1
for s in "$src"/*.c "$0"; do [ "$s" -nt "$lib" ] && newer=1; done
if [ $newer = 1 ]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  "$cc" -O2 -fPIC -std=gnu11 -Wall -c "$src/cpu_features.c" -o "$tmp/cpu_features.o"
  "$cc" -O3 -fPIC -std=gnu11 -Wall -fvisibility=hidden \
      -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512vnni -mfma -mf16c \
      -c "$src/kernels_avx512.c" -o "$tmp/kernels_avx512.o"
  "$cc" -shared -o "$lib.tmp" "$tmp/cpu_features.o" "$tmp/kernels_avx512.o"
  mv "$lib.tmp" "$lib"
  echo "isthmus native/cpu: built $lib with $cc"
fi
sha=$(sha256sum "$lib" | cut -c1-16)
printf 'built=true\nlibrary=linux-x86_64/libisthmus_cpu.so\nsha256=%s\ncompiler=%s\n' "$sha" "$("$cc" --version | head -1)" > "$props"
