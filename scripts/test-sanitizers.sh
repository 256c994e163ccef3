#!/usr/bin/env bash
# Builds bnorm's whole test suite a second time, under AddressSanitizer and
# UndefinedBehaviorSanitizer (g++), in its own build folder, and runs it. Any report fails
# the run: -fno-sanitize-recover=all makes every UBSan finding fatal. Installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
build=${BNORM_SANITIZER_BUILD_DIR:-build/asan}
flags="-O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
cmake -S . -B "$build" -DCMAKE_CXX_FLAGS="$flags" -DBNORM_BUILD_TESTS=ON -DBNORM_BUILD_EXAMPLES=OFF \
      -DBNORM_BUILD_BENCHMARKS=OFF
cmake --build "$build" -j "$(nproc)"
asan=detect_stack_use_after_return=1:check_initialization_order=1:strict_init_order=1
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}
ASAN_OPTIONS=${ASAN_OPTIONS:-$asan:detect_leaks=1} \
  ctest --test-dir "$build" --output-on-failure -j "$(nproc)" -LE mpi
# Open MPI keeps what MPI_Init allocates until the process ends, in plugins it has unloaded by
# then, so LeakSanitizer can neither attribute nor suppress it: the MPI tests run with every
# check but the leak check. (No tests labelled mpi when bnorm::distributed is not built.)
ASAN_OPTIONS=${ASAN_OPTIONS:-$asan:detect_leaks=0} \
  ctest --test-dir "$build" --output-on-failure -j "$(nproc)" -L mpi --no-tests=ignore
