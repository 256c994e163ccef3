#!/usr/bin/env bash
# Every test of bnorm, as CI runs them (installs what is missing with apt first):
#   1. unit    the test suite (g++, -O0 with assertions on), with the MPI tests on 1, 2 and 3
#              processes and the distributed example on 1 vs 2
#   2. smoke   the quick mode of every example on real Fashion-MNIST (scripts/smoke-examples.sh)
#   3. asan    the test suite again under Address- and UndefinedBehaviorSanitizer, -O0 -g1
#              (scripts/test-sanitizers.sh)
#   4. fuzz    the model loader under libFuzzer for BNORM_FUZZ_SECONDS (60) s (scripts/fuzz.sh)
# and, only when asked for, `faults`: deliberate faults the unit tests must catch
# (scripts/fault-check.sh; it builds the suite once per fault).
# Arguments choose stages (default: unit smoke asan fuzz), e.g. `bash scripts/test.sh unit`.
#
# unit and smoke share one build folder (BNORM_TEST_BUILD_DIR, build/tests): a Release build
# in which the examples are optimized and the tests alone are compiled at -O0 with assertions
# (BNORM_TEST_COMPILE_OPTIONS), since compiling, not running, dominates the tests' time. Each
# stage builds only its own targets. The benchmarks are built by bench/run.sh, not here.
#
# Each stage's wall and CPU time (user + sys of everything it ran) is appended to
# BNORM_TEST_TIMINGS (build/test-timings.tsv): stage, wall_seconds, cpu_seconds, status, date.
set -euo pipefail
cd "$(dirname "$0")/.."

build=${BNORM_TEST_BUILD_DIR:-build/tests}

configure_shared() {
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DBNORM_TEST_COMPILE_OPTIONS="-O0 -UNDEBUG" \
        -DBNORM_BUILD_TESTS=ON -DBNORM_BUILD_EXAMPLES=ON -DBNORM_BUILD_BENCHMARKS=OFF -DBNORM_MPI=ON
}

unit() {
  configure_shared
  local targets=(bnorm_tests)
  grep -q '^BNORM_MPI:BOOL=ON' "$build/CMakeCache.txt" && targets+=(distributed_fashion_mnist)
  cmake --build "$build" -j "$(nproc)" --target "${targets[@]}"
  ctest --test-dir "$build" --output-on-failure -j "$(nproc)"
}

smoke() {
  configure_shared > /dev/null
  BNORM_SMOKE_BUILD_DIR=$build bash scripts/smoke-examples.sh
}

# One stage, in this process: `test.sh --stage NAME` (the loop below times each this way).
if [ "${1:-}" = --stage ]; then
  case ${2:-} in
    unit) unit ;;
    smoke) smoke ;;
    asan) bash scripts/test-sanitizers.sh ;;
    fuzz) bash scripts/fuzz.sh ;;
    faults) bash scripts/fault-check.sh ;;
    *) echo "unknown stage '${2:-}' (unit, smoke, asan, fuzz, faults)" >&2; exit 2 ;;
  esac
  exit 0
fi

stages=("$@")
[ ${#stages[@]} -gt 0 ] || stages=(unit smoke asan fuzz)
for stage in "${stages[@]}"; do
  case $stage in
    unit | smoke | asan | fuzz | faults) ;;
    *) echo "unknown stage '$stage' (unit, smoke, asan, fuzz, faults)" >&2; exit 2 ;;
  esac
done
bash scripts/install-deps.sh libopenmpi-dev openmpi-bin clang-14 libclang-rt-14-dev time

timings=${BNORM_TEST_TIMINGS:-build/test-timings.tsv}
mkdir -p "$(dirname "$timings")"
[ -s "$timings" ] || printf 'stage\twall_seconds\tcpu_seconds\tstatus\tdate\n' > "$timings"
report=()
for stage in "${stages[@]}"; do
  echo "=== test.sh: stage $stage"
  status=0
  /usr/bin/time -f '%e %U %S' -o "$timings.last" bash scripts/test.sh --stage "$stage" || status=$?
  read -r wall user sys < <(tail -n 1 "$timings.last")
  cpu=$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.1f", u + s }')
  printf '%s\t%s\t%s\t%s\t%s\n' "$stage" "$wall" "$cpu" "$status" "$(date -u +%FT%TZ)" >> "$timings"
  if [ "$status" -ne 0 ]; then
    echo "=== test.sh: stage $stage FAILED (exit status $status) after $wall s" >&2
    exit "$status"
  fi
  report+=("$stage passed in $wall s (CPU $cpu s)")
done
echo "=== test.sh: all stages passed (timings appended to $timings)"
printf '  %s\n' "${report[@]}"
