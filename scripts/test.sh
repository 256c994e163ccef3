#!/usr/bin/env bash
# Installs what is missing, builds bnorm's tests (with assertions on) and runs them all.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
build=${BNORM_TEST_BUILD_DIR:-build/tests}
cmake -S . -B "$build" -DCMAKE_CXX_FLAGS="-O2 -g" -DBNORM_BUILD_TESTS=ON -DBNORM_BUILD_EXAMPLES=ON \
      -DBNORM_BUILD_BENCHMARKS=ON
cmake --build "$build" -j "$(nproc)"
ctest --test-dir "$build" --output-on-failure -j "$(nproc)"
