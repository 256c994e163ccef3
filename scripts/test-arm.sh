#!/usr/bin/env bash
# The baseline path on another architecture: cross-compiles a chosen set of unit tests for
# 64-bit ARM (aarch64-linux-gnu-g++) and runs them under qemu-user, through CTest's
# cross-compiling emulator. x86's dispatched variants are not compiled there; the tests run the
# baseline kernels. Optional stage: `bash scripts/test.sh arm` (installs the cross compiler and
# qemu from Debian). BNORM_ARM_TESTS overrides the list (a CTest -R regular expression).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh g++-aarch64-linux-gnu qemu-user
build=${BNORM_ARM_BUILD_DIR:-build/arm}
tests=${BNORM_ARM_TESTS:-test_isa|test_gemm|test_kernels|test_batch_norm|test_dense|test_activations|test_losses|test_optimizers|test_pytorch_parity}
# Only header-only dependencies are found (for the target's own libraries, none is installed):
# packages and headers from the host, libraries from the aarch64 tree only.
cmake -S . -B "$build" -DCMAKE_SYSTEM_NAME=Linux -DCMAKE_SYSTEM_PROCESSOR=aarch64 \
      -DCMAKE_CXX_COMPILER=aarch64-linux-gnu-g++ -DCMAKE_FIND_ROOT_PATH=/usr/aarch64-linux-gnu \
      -DCMAKE_FIND_ROOT_PATH_MODE_PROGRAM=NEVER -DCMAKE_FIND_ROOT_PATH_MODE_LIBRARY=ONLY \
      -DCMAKE_FIND_ROOT_PATH_MODE_INCLUDE=BOTH -DCMAKE_FIND_ROOT_PATH_MODE_PACKAGE=BOTH \
      -DCMAKE_CROSSCOMPILING_EMULATOR="qemu-aarch64;-L;/usr/aarch64-linux-gnu" \
      -DCMAKE_BUILD_TYPE=Release -DBNORM_TEST_COMPILE_OPTIONS="-O1 -UNDEBUG" -DBNORM_MPI=OFF \
      -DBNORM_BUILD_TESTS=ON -DBNORM_BUILD_EXAMPLES=OFF -DBNORM_BUILD_BENCHMARKS=OFF
targets=$(ctest --test-dir "$build" -N -R "^($tests)\$" | sed -n 's/^ *Test *#[0-9]*: //p')
[ -n "$targets" ] || { echo "test-arm: no test matches '$tests'" >&2; exit 1; }
# shellcheck disable=SC2086  # one target per word
cmake --build "$build" -j "$(nproc)" --target $targets
ctest --test-dir "$build" --output-on-failure -j "$(nproc)" -R "^($tests)\$"
