#!/usr/bin/env bash
# Builds the Isthmus CUDA kernels into resources of backend-cuda (called by backend-cuda/pom.xml in the
# generate-resources phase; usable by hand: native/cuda/build.sh OUTPUT_DIR).
#
#   OUTPUT_DIR/dev/isthmus/backend/cuda/isthmus_kernels.fatbin
#       nvcc output for sm_80 and sm_90 (SASS) plus compute_90 PTX (JIT-compiled by newer GPUs' drivers);
#       uncompressed, so that tests can read the ELF symbol tables and the PTX of the entries.
#   OUTPUT_DIR/dev/isthmus/backend/cuda/emulator/libisthmus_cuda_emu-<os>-<arch>.so
#       the same kernels compiled with the host C++ compiler plus emu/emu_runtime.cpp: the kernel emulator that
#       the tests (and -Disthmus.cuda.emulator=true) run the backend on when there is no GPU.
#   OUTPUT_DIR/dev/isthmus/backend/cuda/kernels.properties
#       what was built, with which tools, or why not (the backend reports "built without CUDA kernels").
#   FAKE_DRIVER_DIR/libcuda.so.1, FAKE_DRIVER_DIR/libcublas.so.13 (only with a second argument)
#       TEST DOUBLES of the CUDA driver and cuBLAS over the emulator (emu/fake_libcuda.cpp, emu/fake_libcublas.cpp),
#       for the tests of the backend's real driver path; never packaged.
#
# nvcc is looked up in $CUDA_HOME/bin, on PATH, then the newest /usr/local/cuda*/bin. Without nvcc the build
# succeeds without the fatbin. If nvcc is present, a compile error fails the build. Outputs are rebuilt only
# when a source is newer (nvcc takes ~40 s on two cores).
set -euo pipefail
src=$(cd "$(dirname "$0")" && pwd)
out=${1:?usage: build.sh OUTPUT_DIR [FAKE_DRIVER_DIR]}
fake=${2:-}
res="$out/dev/isthmus/backend/cuda"
mkdir -p "$res/emulator"

find_nvcc() {
  if [ -n "${CUDA_HOME:-}" ] && [ -x "$CUDA_HOME/bin/nvcc" ]; then echo "$CUDA_HOME/bin/nvcc"; return; fi
  if command -v nvcc >/dev/null 2>&1; then command -v nvcc; return; fi
  local d
  for d in $(ls -d /usr/local/cuda*/bin 2>/dev/null | sort -V -r); do
    if [ -x "$d/nvcc" ]; then echo "$d/nvcc"; return; fi
  done
}

kernel_sources=("$src"/*.cu "$src"/include/*.cuh "$0")
emulator_sources=("${kernel_sources[@]}" "$src"/emu/*)
newer_than() { # newer_than OUTPUT SOURCES...: true if a source is newer than OUTPUT (or OUTPUT is missing)
  local out=$1 s
  shift
  [ -f "$out" ] || return 0
  for s in "$@"; do [ "$s" -nt "$out" ] && return 0; done
  return 1
}

props="$res/kernels.properties.tmp"
: > "$props"
echo "# Written by native/cuda/build.sh" >> "$props"

fatbin="$res/isthmus_kernels.fatbin"
nvcc=$(find_nvcc || true)
if [ -n "$nvcc" ]; then
  version=$("$nvcc" --version | sed -n 's/.*release \([0-9]*\.[0-9]*\).*/\1/p' | head -n 1)
  if newer_than "$fatbin" "${kernel_sources[@]}"; then
    echo "build.sh: compiling CUDA kernels with $nvcc (CUDA $version): sm_80, sm_90, compute_90 PTX" >&2
    start=$(date +%s)
    # --no-compress: keep ELF and PTX readable for the fatbin tests (and the loader does not need it).
    "$nvcc" -fatbin --no-compress -O3 -std=c++17 --threads 2 \
      -gencode arch=compute_80,code=sm_80 \
      -gencode arch=compute_90,code='[sm_90,compute_90]' \
      -o "$fatbin.tmp" "$src/kernels.cu"
    mv "$fatbin.tmp" "$fatbin"
    echo "build.sh: fatbin built in $(( $(date +%s) - start )) s ($(wc -c < "$fatbin") bytes)" >&2
  fi
  {
    echo "fatbin=present"
    echo "nvcc=$nvcc"
    echo "cuda.version=$version"
    echo "targets=sm_80,sm_90,compute_90"
  } >> "$props"
else
  rm -f "$fatbin"
  {
    echo "fatbin=absent"
    echo "fatbin.reason=built without CUDA kernels: no nvcc found (CUDA_HOME, PATH, /usr/local/cuda*/bin) when backend-cuda was built"
  } >> "$props"
fi

os=$(uname -s | tr '[:upper:]' '[:lower:]')
arch=$(uname -m)
emu="$res/emulator/libisthmus_cuda_emu-$os-$arch.so"
cxx=${CXX:-$(command -v g++ || command -v c++ || true)}
if [ -n "$cxx" ]; then
  if newer_than "$emu" "${emulator_sources[@]}"; then
    echo "build.sh: compiling the kernel emulator with $cxx" >&2
    "$cxx" -std=c++17 -O2 -fPIC -shared -fvisibility=hidden -Wall -Wextra -Werror -Wno-unknown-pragmas \
      -Wno-unused-parameter -x c++ "$src/kernels.cu" -x c++ "$src/emu/emu_runtime.cpp" -o "$emu.tmp"
    mv "$emu.tmp" "$emu"
  fi
  echo "emulator=dev/isthmus/backend/cuda/emulator/$(basename "$emu")" >> "$props"
  if [ -n "$fake" ]; then
    mkdir -p "$fake"
    flags=(-std=c++17 -O2 -fPIC -shared -fvisibility=hidden -Wall -Wextra -Werror -Wno-unknown-pragmas
      -Wno-unused-parameter)
    if newer_than "$fake/libcuda.so.1" "${emulator_sources[@]}"; then
      echo "build.sh: compiling the fake libcuda.so.1 and libcublas.so.13 (test doubles) into $fake" >&2
      "$cxx" "${flags[@]}" -Wl,-soname,libcuda.so.1 -x c++ "$src/kernels.cu" -x c++ "$src/emu/emu_runtime.cpp" \
        "$src/emu/fake_libcuda.cpp" -o "$fake/libcuda.so.1.tmp"
      mv "$fake/libcuda.so.1.tmp" "$fake/libcuda.so.1"
    fi
    if newer_than "$fake/libcublas.so.13" "${emulator_sources[@]}"; then
      "$cxx" "${flags[@]}" -Wl,-soname,libcublas.so.13 -x c++ "$src/emu/emu_runtime.cpp" \
        "$src/emu/fake_libcublas.cpp" -ldl -o "$fake/libcublas.so.13.tmp"
      mv "$fake/libcublas.so.13.tmp" "$fake/libcublas.so.13"
    fi
  fi
else
  rm -f "$emu"
  echo "emulator=absent" >> "$props"
fi
mv "$props" "$res/kernels.properties"
