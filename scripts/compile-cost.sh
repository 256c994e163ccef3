#!/usr/bin/env bash
# The CPU time of compiling one test file under each configuration the test stages used and
# use, to choose them by measurement: compiling dominates the suite's time. CPU time
# (user + sys) is what to compare on a loaded machine; wall time is recorded too.
# Usage: bash scripts/compile-cost.sh [tests/test_x.cpp] > scripts/timings/compile-cost.tsv
set -euo pipefail
cd "$(dirname "$0")/.."
source_file=${1:-tests/test_batch_norm.cpp}
object=$(mktemp --suffix=.o)
trap 'rm -f "$object"' EXIT
common=(-std=gnu++20 -Wall -Wextra -Wpedantic -Itests -Iinclude -isystem /usr/include/eigen3
        -DBNORM_TEST_DATA_DIR=\"tests/reference\" -DBNORM_WITH_ZLIB=1 -c "$source_file")
sanitizers="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
configurations=(
  "unit before|g++|-O2 -g"
  "unit now|g++|-O0"
  "asan before|g++|-O1 -g $sanitizers"
  "asan now|g++|-O0 -g1 $sanitizers"
  "asan, clang|clang++-14|-O0 -g1 $sanitizers"
)
printf 'configuration\tcompiler\tflags\tfile\tuser_seconds\tsys_seconds\twall_seconds\n'
for entry in "${configurations[@]}"; do
  IFS='|' read -r name compiler flags <<< "$entry"
  read -r -a flag_list <<< "$flags"
  times=$( { /usr/bin/time -f '%U %S %e' "$compiler" "${flag_list[@]}" "${common[@]}" -o "$object" 2>&1 >/dev/null; } | tail -n 1)
  read -r user sys wall <<< "$times"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$compiler" "$flags" "$source_file" "$user" "$sys" "$wall"
done
