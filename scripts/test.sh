#!/usr/bin/env bash
# Every test of bnorm, as CI runs them (installs what is missing with apt first):
#   1. unit    the test suite (-O2 -g, assertions on), with the MPI tests on 1, 2 and 3
#              processes and the distributed example on 1 vs 2; builds examples and benchmarks
#   2. smoke   the quick mode of every example on real Fashion-MNIST (scripts/smoke-examples.sh)
#   3. asan    the test suite again under Address- and UndefinedBehaviorSanitizer
#              (scripts/test-sanitizers.sh)
#   4. fuzz    the model loader under libFuzzer for BNORM_FUZZ_SECONDS (60) s (scripts/fuzz.sh)
# Arguments choose stages (default: all), e.g. `bash scripts/test.sh unit`.
set -euo pipefail
cd "$(dirname "$0")/.."
stages=("$@")
[ ${#stages[@]} -gt 0 ] || stages=(unit smoke asan fuzz)
bash scripts/install-deps.sh libopenmpi-dev openmpi-bin clang-14 libclang-rt-14-dev

unit() {
  local build=${BNORM_TEST_BUILD_DIR:-build/tests}
  cmake -S . -B "$build" -DCMAKE_CXX_FLAGS="-O2 -g" -DBNORM_BUILD_TESTS=ON -DBNORM_BUILD_EXAMPLES=ON \
        -DBNORM_BUILD_BENCHMARKS=ON -DBNORM_MPI=ON
  cmake --build "$build" -j "$(nproc)"
  ctest --test-dir "$build" --output-on-failure -j "$(nproc)"
}

report=()
for stage in "${stages[@]}"; do
  start=$SECONDS
  echo "=== test.sh: stage $stage"
  case $stage in
    unit) unit ;;
    smoke) bash scripts/smoke-examples.sh ;;
    asan) bash scripts/test-sanitizers.sh ;;
    fuzz) bash scripts/fuzz.sh ;;
    *) echo "unknown stage '$stage' (unit, smoke, asan, fuzz)" >&2; exit 2 ;;
  esac
  report+=("$stage passed in $((SECONDS - start)) s")
done
echo "=== test.sh: all stages passed"
printf '  %s\n' "${report[@]}"
