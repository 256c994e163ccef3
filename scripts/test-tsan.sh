#!/usr/bin/env bash
# Builds tests/test_inference_workspace.cpp alone under ThreadSanitizer and runs it: four
# threads infer on one const network at once (model/inference_workspace.hpp), and the first
# GEMM products, which choose the instruction set (core/isa.hpp), run on those threads.
# Any report fails the run (halt_on_error). Without OpenMP: libgomp is not instrumented, and
# TSan would report its barriers; bnorm's OpenMP paths are tested by test_threads.
set -euo pipefail
cd "$(dirname "$0")/.."
compiler=${BNORM_TSAN_CXX:-g++}
build=${BNORM_TSAN_BUILD_DIR:-build/tsan}
mkdir -p "$build"
# Line tables (-g1) are all a report's stacks need: the test compiles in 32 CPU-s instead of
# 42 with -g (g++ 12, scripts/timings/tsan-compile.txt).
flags=(-std=c++20 -O1 -g1 -fsanitize=thread -fno-omit-frame-pointer -Iinclude -Itests -I/usr/include/eigen3)
# The test and doctest's main compile side by side, one per core.
"$compiler" "${flags[@]}" -c tests/support/test_main.cpp -o "$build/test_main.o" & main_pid=$!
"$compiler" "${flags[@]}" -c tests/test_inference_workspace.cpp -o "$build/test_inference_workspace.o"
wait "$main_pid"
"$compiler" "${flags[@]}" "$build/test_inference_workspace.o" "$build/test_main.o" \
  -o "$build/test_inference_workspace"
TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1} \
  "$build/test_inference_workspace"
