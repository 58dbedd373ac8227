#!/usr/bin/env bash
# The first (and every) run of the CUDA backend on a GPU machine, in one command:
#
#   scripts/gpu-check.sh [--no-build] [--emulator] [--skip STEP[,STEP...]] [--model FILE] [--report FILE]
#
# Steps (each is recorded in the report with its status, duration and output; a failing step does not stop
# the others; the exit code is non-zero if any step failed):
#   environment      nvidia-smi, nvcc, java: what machine this is
#   build            ./mvnw -B install -DskipTests (the whole project, so ./isthmus and the suites use this tree)
#   unit tests       ./mvnw -B verify -pl backend-cuda (fatbin contents, host logic, emulator, fake-driver path)
#   backends         ./isthmus backends: cuda must be available and selected
#   conformance      ./isthmus conformance --backend cuda, with the defaults and with CUDA graphs, without
#                    cuBLAS, and with cuBLAS for every batch (-Disthmus.cuda.*)
#   goldens          ModelGoldenTest and BackendConformanceTest of conformance-tests with -Disthmus.backend=cuda
#                    (and once more with CUDA graphs)
#   generation       ./isthmus run --backend cuda on stories260K: greedy text = llama2.c's golden, tokens/s
#   bench            ./isthmus bench --backend cuda (when the CLI has it), on --model or stories260K
#
# --emulator runs everything on the CUDA kernel emulator instead of a GPU (-Disthmus.cuda.emulator=true): a
# dry run of this script on a machine without one (slow). --no-build skips the build and unit-test steps;
# --skip skips the steps whose names start with the given words (e.g. --skip goldens,bench).
# ISTHMUS_CMD overrides how the CLI is started (default: ./isthmus).
set -uo pipefail
root=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
cd "$root"
. scripts/find-jdk.sh

build=1
emulator=0
skip=
model=""
report=""
while [ $# -gt 0 ]; do
  case "$1" in
    --no-build) build=0 ;;
    --emulator) emulator=1 ;;
    --skip) skip=$2; shift ;;
    --model) model=$2; shift ;;
    --report) report=$2; shift ;;
    -h|--help) sed -n '2,29p' "$0"; exit 0 ;;
    *) echo "gpu-check: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done

shared=${ISTHMUS_SHARED:-$root/../shared}
stories="$shared/models/stories260K.gguf"
bench_model=${model:-$stories}
stamp=$(date -u +%Y%m%dT%H%M%SZ)
report=${report:-$root/gpu-check-$(hostname -s 2>/dev/null || echo host)-$stamp.md}
log_dir=$(mktemp -d "${TMPDIR:-/tmp}/gpu-check.XXXXXX")
cli=${ISTHMUS_CMD:-./isthmus}
jvm_flags=()
mvn_flags=(-B)
if [ "$emulator" = 1 ]; then
  jvm_flags+=(-Disthmus.cuda.emulator=true)
  mvn_flags+=(-Disthmus.cuda.emulator=true)
fi

failures=0
summary=()

# step NAME COMMAND...: runs a step, records status/duration/output.
step() {
  local name=$1 start end rc out s
  shift
  for s in ${skip//,/ }; do
    if [[ "$name" == "$s"* ]]; then
      summary+=("| $name | skipped | |")
      echo "== $name (skipped)" >&2
      return 0
    fi
  done
  out="$log_dir/$(echo "$name" | tr -c 'A-Za-z0-9' '_').log"
  echo "== $name" >&2
  start=$(date +%s)
  "$@" >"$out" 2>&1
  rc=$?
  end=$(date +%s)
  local status=PASS
  [ $rc -ne 0 ] && status="FAIL (exit $rc)" && failures=$((failures + 1))
  summary+=("| $name | $status | $((end - start)) s |")
  {
    echo "## $name — $status, $((end - start)) s"
    echo
    echo '```'
    echo "\$ $*"
    tail -n 120 "$out"
    echo '```'
    echo
  } >>"$log_dir/body.md"
  echo "   $status ($((end - start)) s), log: $out" >&2
  return $rc
}

isthmus() {
  # JVM options go before the subcommand (./isthmus passes -D... arguments to the JVM).
  $cli "${jvm_flags[@]}" "$@"
}

environment() {
  echo "date (UTC): $stamp"
  echo "host: $(uname -a)"
  echo "git: $(git rev-parse --short HEAD 2>/dev/null) $(git status --porcelain 2>/dev/null | wc -l) changed file(s)"
  echo "java: $("$JAVA_HOME/bin/java" -version 2>&1 | head -n 1)"
  if command -v nvidia-smi >/dev/null 2>&1; then
    nvidia-smi --query-gpu=name,compute_cap,memory.total,driver_version --format=csv
  else
    echo "nvidia-smi: not found"
  fi
  if command -v nvcc >/dev/null 2>&1 || ls /usr/local/cuda*/bin/nvcc >/dev/null 2>&1; then
    "$(command -v nvcc || ls -d /usr/local/cuda*/bin/nvcc | sort -V | tail -n 1)" --version | tail -n 2
  else
    echo "nvcc: not found (the build packages no CUDA kernels: the backend will say 'built without CUDA kernels')"
  fi
  ls -l /usr/lib/x86_64-linux-gnu/libcuda.so* /usr/lib64/libcuda.so* 2>/dev/null || echo "libcuda.so: not in the usual places"
  ls -l /usr/local/cuda*/lib64/libcublas.so* 2>/dev/null || echo "libcublas: not under /usr/local/cuda*"
  [ "$emulator" = 1 ] && echo "MODE: kernel emulator (-Disthmus.cuda.emulator=true), not a GPU"
  return 0
}

backends() {
  local out
  out=$(isthmus backends) || { echo "$out"; return 1; }
  echo "$out"
  echo "$out" | grep -E '^\*? +cuda +100 +available' >/dev/null || { echo "cuda is not available"; return 1; }
  echo "$out" | grep -E '^\* +cuda ' >/dev/null || { echo "cuda is not the selected backend"; return 1; }
}

conformance() {
  isthmus "$@" conformance --backend cuda
}

goldens() {
  ./mvnw "${mvn_flags[@]}" verify -pl conformance-tests -Disthmus.backend=cuda "$@" \
    -Dtest='ModelGoldenTest,BackendConformanceTest' -Dsurefire.failIfNoSpecifiedTests=false
}

generation() {
  local expected text
  [ -f "$stories" ] || { echo "missing $stories (test data: ../shared)"; return 1; }
  expected=$(cat "$shared/golden/stories260K.greedy200.expected.txt")
  text=$(isthmus run -m "$stories" -p "" -n 200 --temp 0 --backend cuda) || return 1
  echo "$text"
  # The golden starts after BOS with an empty prompt; compare the generated text.
  if [ "${text%$'\n'}" = "$expected" ] || [[ "$text" == *"$expected"* ]]; then
    echo "OK: identical to llama2.c's golden text"
  else
    echo "DIFFERS from llama2.c's golden text:"
    echo "$expected"
    return 1
  fi
}

bench() {
  if ! isthmus help 2>/dev/null | grep -qE '^ +bench'; then
    echo "this CLI has no 'bench' command; generation speed is in the 'generation' step"
    return 0
  fi
  isthmus bench -m "$bench_model" --backend cuda
}

step "environment" environment
if [ "$build" = 1 ]; then
  step "build" ./mvnw -B -q install -DskipTests
  step "unit tests (backend-cuda)" ./mvnw -B verify -pl backend-cuda
fi
step "backends" backends
step "conformance" conformance
step "conformance, CUDA graphs" conformance -Disthmus.cuda.graphs=true
step "conformance, no cuBLAS" conformance -Disthmus.cuda.cublas=false
step "conformance, cuBLAS for every batch" conformance -Disthmus.cuda.gemm.minRows=1
step "goldens" goldens
step "goldens, CUDA graphs" goldens -Disthmus.cuda.graphs=true
step "generation" generation
step "bench" bench

{
  echo "# Isthmus GPU check — $stamp"
  echo
  [ "$emulator" = 1 ] && echo "**Kernel emulator run (no GPU).**" && echo
  echo "| step | status | time |"
  echo "|---|---|---|"
  printf '%s\n' "${summary[@]}"
  echo
  echo "$failures step(s) failed. Full logs: $log_dir"
  echo
  cat "$log_dir/body.md"
} >"$report"
echo "report: $report ($failures failed step(s))" >&2
[ "$failures" = 0 ]
