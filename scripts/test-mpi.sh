#!/usr/bin/env bash
# Builds and runs only bnorm's MPI tests: tests/distributed on 1, 2 and 3 processes, and the
# distributed example, which must reach the same accuracy on 1 and 2 processes. (scripts/test.sh
# runs them too, with everything else.) Installs Open MPI when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh libopenmpi-dev openmpi-bin
build=${BNORM_MPI_TEST_BUILD_DIR:-build/mpi-tests}
cmake -S . -B "$build" -DCMAKE_CXX_FLAGS="-O2 -g" -DBNORM_MPI=ON -DBNORM_BUILD_TESTS=ON \
      -DBNORM_BUILD_EXAMPLES=ON -DBNORM_BUILD_BENCHMARKS=OFF
cmake --build "$build" -j "$(nproc)" --target test_sync_batch_norm test_distributed_allocation distributed_fashion_mnist
ctest --test-dir "$build" --output-on-failure -L mpi
