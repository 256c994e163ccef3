#!/usr/bin/env bash
# Installs what is missing, builds the flagship example optimized, and trains it on
# Fashion-MNIST. Extra arguments go to the example (try --help).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
build=${BNORM_EXAMPLE_BUILD_DIR:-build/release}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DBNORM_NATIVE=ON -DBNORM_BUILD_TESTS=OFF \
      -DBNORM_BUILD_BENCHMARKS=OFF -DBNORM_MPI=OFF
cmake --build "$build" -j "$(nproc)" --target fashion_mnist
"$build/examples/fashion_mnist" "$@"
