#!/usr/bin/env bash
# Builds bnorm's whole test suite under AddressSanitizer and UndefinedBehaviorSanitizer, in
# its own build folder, and runs it; then concurrent inference under ThreadSanitizer
# (scripts/test-tsan.sh). Any report fails the run: -fno-sanitize-recover=all makes every
# UBSan finding fatal. Installs what is missing. The unit stage of scripts/test.sh already
# builds and runs every test under the same two sanitizers (g++, -O0 -g1), in the build folder
# the examples share; this script is the optional `asan` stage: the same on its own, e.g. to
# try another compiler.
#
# Built at -O0 with line tables only (-g1), which compiles a test in about half the CPU time of
# -O1 -g with the same sanitizers (measure with scripts/compile-cost.sh). BNORM_SANITIZER_CXX
# picks the compiler: g++ (default), or clang++-14, which compiles faster still but whose
# UBSan also checks pointer arithmetic, and reports Eigen 3.4 offsetting the null data
# pointer of an empty matrix's block (Block.h:347; seen in test_batch_norm's TwoProcessSync
# helper on zero columns).
set -euo pipefail
cd "$(dirname "$0")/.."
compiler=${BNORM_SANITIZER_CXX:-g++}
extra=()
[ "$compiler" = clang++-14 ] && extra=(clang-14 libclang-rt-14-dev)
bash scripts/install-deps.sh "${extra[@]}"
build=${BNORM_SANITIZER_BUILD_DIR:-build/asan}
flags="-O0 -g1 -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
cmake -S . -B "$build" -DCMAKE_CXX_COMPILER="$compiler" -DCMAKE_CXX_FLAGS="$flags" \
      -DBNORM_BUILD_TESTS=ON -DBNORM_BUILD_EXAMPLES=OFF -DBNORM_BUILD_BENCHMARKS=OFF
cmake --build "$build" -j "$(nproc)" --target bnorm_tests
asan=detect_stack_use_after_return=1:check_initialization_order=1:strict_init_order=1
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}
ASAN_OPTIONS=${ASAN_OPTIONS:-$asan:detect_leaks=1} \
  ctest --test-dir "$build" --output-on-failure -j "$(nproc)" -LE mpi
# Open MPI keeps what MPI_Init allocates until the process ends, in plugins it has unloaded by
# then, so LeakSanitizer can neither attribute nor suppress it: the MPI tests run with every
# check but the leak check. (No tests labelled mpi when bnorm::distributed is not built.)
ASAN_OPTIONS=${ASAN_OPTIONS:-$asan:detect_leaks=0} \
  ctest --test-dir "$build" --output-on-failure -j "$(nproc)" -L mpi --no-tests=ignore
# Concurrent inference under ThreadSanitizer: one test, built on its own.
BNORM_TSAN_BUILD_DIR="${BNORM_TSAN_BUILD_DIR:-$build/../tsan}" bash scripts/test-tsan.sh
