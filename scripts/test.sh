#!/usr/bin/env bash
# Every test of bnorm, as CI runs them (installs what is missing with apt first):
#   1. unit    the test suite, built once with clang++-14 (BNORM_TEST_CXX) at -O0 -g1,
#              assertions on, under AddressSanitizer and UndefinedBehaviorSanitizer (any
#              report fails it), the layer and optimizer tests once more on the baseline
#              kernels (BNORM_ISA=baseline, the CTest tests *_isa_baseline), with the MPI
#              tests on 1, 2 and 3 processes and the consumer projects (built with the
#              default compiler, g++, and not sanitized)
#   2. smoke   the quick mode of every example on real Fashion-MNIST, and the benchmark
#              harness's quick mode beside them, on the core they leave idle
#              (scripts/smoke-examples.sh); then the distributed example on 1 vs 2 processes
#              (the examples are built with g++, optimized, not sanitized)
#   3. tsan    concurrent inference under ThreadSanitizer (scripts/test-tsan.sh)
#   4. fuzz    the four file readers under libFuzzer, BNORM_FUZZ_SECONDS (60) s each, the
#              fuzzers side by side, from the committed corpora (scripts/fuzz.sh, fuzz/README.md)
# and, only when asked for:
#   asan       the suite built and run again under the sanitizers in a build folder of its own
#              (scripts/test-sanitizers.sh; with g++ unless BNORM_SANITIZER_CXX says otherwise):
#              the unit stage already runs every test under them, compiled by clang
#   faults     deliberate faults the unit tests must catch (scripts/fault-check.sh; it builds
#              the suite, unsanitized, once per fault)
#   arm        the GEMM, kernel and layer tests cross-compiled for 64-bit ARM and run under
#              qemu-user: the baseline path on another architecture (scripts/test-arm.sh)
# Arguments choose stages (default: unit smoke tsan fuzz), e.g. `bash scripts/test.sh unit`.
#
# The tests have a build folder of their own (BNORM_TEST_BUILD_DIR, build/tests), compiled by
# BNORM_TEST_CXX (clang++-14; g++ works too) at -O0 -g1 with assertions and the sanitizers
# (BNORM_TEST_COMPILE_OPTIONS, BNORM_TEST_LINK_OPTIONS): compiling, not running, dominates
# the tests' time, so they are compiled once, sanitized, rather than once plain and once
# again sanitized; by clang, which compiles a sanitized test in about half g++'s CPU time;
# and in a few batches (tests/TestBatches.cmake: several test files in one translation unit
# and one executable, each file still a CTest test of its own), so that the headers and
# templates every test uses are compiled once per batch, not once per file
# (scripts/timings/). The examples, the consumer projects and the benchmarks stay on the
# default compiler (g++), so g++ still compiles every header a user includes, in a Release
# build folder of their own (BNORM_EXAMPLES_BUILD_DIR, build/examples). Each stage builds
# only its own targets. The benchmarks are built by bench/run.sh, not here. Both folders use
# Ninja where it is installed: unlike make, it compiles a target's sources before the
# libraries it links are built (the tests' doctest main, the examples' float network).
#
# Each stage's wall and CPU time (user + sys of everything it ran) is appended to
# BNORM_TEST_TIMINGS (build/test-timings.tsv): stage, wall_seconds, cpu_seconds, status, date.
set -euo pipefail
cd "$(dirname "$0")/.."

build=${BNORM_TEST_BUILD_DIR:-build/tests}
examples_build=${BNORM_EXAMPLES_BUILD_DIR:-build/examples}
test_cxx=${BNORM_TEST_CXX:-clang++-14}

# -fno-sanitize-recover=all makes every UBSan finding fatal.
sanitizers="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"

# -G Ninja for a new build folder (an existing one keeps the generator it was made with).
generator() {
  [ ! -f "$1/CMakeCache.txt" ] && command -v ninja > /dev/null && echo -G Ninja
  true
}

configure_tests() {
  # shellcheck disable=SC2046
  cmake -S . -B "$build" $(generator "$build") -DCMAKE_CXX_COMPILER="$test_cxx" \
        -DCMAKE_BUILD_TYPE=Release -DBNORM_TEST_COMPILE_OPTIONS="-O0 -g1 -UNDEBUG $sanitizers" \
        -DBNORM_TEST_LINK_OPTIONS="$sanitizers" \
        -DBNORM_BUILD_TESTS=ON -DBNORM_BUILD_EXAMPLES=OFF -DBNORM_BUILD_BENCHMARKS=OFF -DBNORM_MPI=ON
}

# The examples with the default compiler; BNORM_BUILD_TESTS=ON only for the distributed
# example's CTest test (distributed_example_1_vs_2_processes): the unit tests are not built.
configure_examples() {
  # shellcheck disable=SC2046
  cmake -S . -B "$examples_build" $(generator "$examples_build") -DCMAKE_BUILD_TYPE=Release \
        -DBNORM_BUILD_TESTS=ON -DBNORM_BUILD_EXAMPLES=ON -DBNORM_BUILD_BENCHMARKS=OFF -DBNORM_MPI=ON
}

unit() {
  configure_tests
  cmake --build "$build" -j "$(nproc)" --target bnorm_tests
  local asan=detect_stack_use_after_return=1:check_initialization_order=1:strict_init_order=1
  export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}
  ASAN_OPTIONS=${ASAN_OPTIONS:-$asan:detect_leaks=1} \
    ctest --test-dir "$build" --output-on-failure -j "$(nproc)" -LE mpi
  # The MPI tests with every check but the leak check, as in scripts/test-sanitizers.sh (Open
  # MPI keeps what MPI_Init allocates in plugins it has unloaded by the end).
  ASAN_OPTIONS=${ASAN_OPTIONS:-$asan:detect_leaks=0} \
    ctest --test-dir "$build" --output-on-failure -j "$(nproc)" -L mpi --no-tests=ignore
}

smoke() {
  configure_examples > /dev/null
  BNORM_SMOKE_BUILD_DIR=$examples_build bash scripts/smoke-examples.sh
  # The distributed example, built with the others (bnorm_examples), on 1 vs 2 processes.
  ctest --test-dir "$examples_build" --output-on-failure -L example --no-tests=ignore
}

# One stage, in this process: `test.sh --stage NAME` (the loop below times each this way).
if [ "${1:-}" = --stage ]; then
  case ${2:-} in
    unit) unit ;;
    smoke) smoke ;;
    tsan) bash scripts/test-tsan.sh ;;
    asan) bash scripts/test-sanitizers.sh ;;
    fuzz) bash scripts/fuzz.sh ;;
    faults) bash scripts/fault-check.sh ;;
    arm) bash scripts/test-arm.sh ;;
    *) echo "unknown stage '${2:-}' (unit, smoke, tsan, fuzz, asan, faults, arm)" >&2; exit 2 ;;
  esac
  exit 0
fi

stages=("$@")
[ ${#stages[@]} -gt 0 ] || stages=(unit smoke tsan fuzz)
for stage in "${stages[@]}"; do
  case $stage in
    unit | smoke | tsan | asan | fuzz | faults | arm) ;;
    *) echo "unknown stage '$stage' (unit, smoke, tsan, fuzz, asan, faults, arm)" >&2; exit 2 ;;
  esac
done
bash scripts/install-deps.sh libopenmpi-dev openmpi-bin clang-14 libclang-rt-14-dev libomp-14-dev time \
  ninja-build

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
