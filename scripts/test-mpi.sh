#!/usr/bin/env bash
# Builds and runs bnorm's MPI tests (tests/distributed, on 1, 2 and 3 processes), then a short
# run of the distributed example on 1 and 2 processes, which must reach the same accuracy.
# Needs Open MPI (Debian: libopenmpi-dev openmpi-bin), installed here when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh libopenmpi-dev openmpi-bin
build=${BNORM_MPI_TEST_BUILD_DIR:-build/mpi-tests}
cmake -S . -B "$build" -DCMAKE_CXX_FLAGS="-O2 -g" -DBNORM_MPI=ON -DBNORM_BUILD_TESTS=ON \
      -DBNORM_BUILD_EXAMPLES=ON -DBNORM_BUILD_BENCHMARKS=OFF
cmake --build "$build" -j "$(nproc)" --target test_sync_batch_norm test_distributed_allocation distributed_fashion_mnist
ctest --test-dir "$build" --output-on-failure -L mpi

# Open MPI refuses root without --allow-run-as-root, and more processes than cores without
# --oversubscribe.
mpirun=(mpirun --oversubscribe)
[ "$(id -u)" -ne 0 ] || mpirun+=(--allow-run-as-root)
example=("$build/examples/distributed_fashion_mnist" --epochs 1 --train-examples 3200 --double)
accuracy() {
  local output
  output=$("${mpirun[@]}" -np "$1" "${example[@]}")
  echo "$output" >&2
  sed -n 's/^test_accuracy=//p' <<<"$output"
}
one=$(accuracy 1)
two=$(accuracy 2)
echo "distributed example, 50 steps in double: test_accuracy $one on 1 process, $two on 2"
if [ -z "$one" ] || [ "$one" != "$two" ]; then
  echo "FAIL: 1 and 2 processes should train the same network" >&2
  exit 1
fi
