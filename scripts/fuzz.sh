#!/usr/bin/env bash
# Fuzzes bnorm's three file readers with clang-14's libFuzzer, AddressSanitizer and
# UndefinedBehaviorSanitizer, each for BNORM_FUZZ_SECONDS seconds (default 60), side by side:
#   load         bnorm's model files (fuzz/load_target.hpp), seeded with valid model files
#                written by fuzz/make_seeds.cpp
#   safetensors  fuzz/safetensors_target.hpp, seeded with tests/reference/safetensors/
#   onnx         fuzz/onnx_target.hpp, seeded with the PyTorch and bnorm exports in
#                tests/reference/onnx/ (only with Debian's libonnx-dev installed)
# The three are one program (fuzz/fuzz_readers.cpp), compiled once and run under each name.
# Fails on any finding; the crashing input is left in the build folder (crash-*). With
# BNORM_FUZZ_COVERAGE=1 it then replays the model-file corpus through a coverage build and
# prints the line coverage of include/bnorm/io/ (llvm-14).
# Installs what is missing (clang-14, libclang-rt-14-dev, and llvm-14 for the coverage).
set -euo pipefail
cd "$(dirname "$0")/.."
coverage=${BNORM_FUZZ_COVERAGE:-0}
extra=()
[ "$coverage" = 1 ] && extra=(llvm-14)
bash scripts/install-deps.sh clang-14 libclang-rt-14-dev "${extra[@]}"
build=${BNORM_FUZZ_BUILD_DIR:-build/fuzz}
seconds=${BNORM_FUZZ_SECONDS:-60}
mkdir -p "$build"

# Line tables (-g1) are all a report's stack needs. The readers do not depend on the
# instruction set, so only the baseline kernels are compiled (BNORM_NO_DISPATCH): the other
# two variants cost a third of the compile (scripts/timings/fuzz-compile.txt).
common=(-std=c++20 -g1 -Iinclude -Itests -isystem /usr/include/eigen3 -DBNORM_NO_DISPATCH)
sanitizers=(-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)

fuzzers=(load safetensors)
onnx=()
onnx_libraries=()
# The ONNX reader links Debian's protobuf and onnx_proto (built by g++; clang++ uses the
# same libstdc++, so they link into the sanitized fuzzer as they are).
if [ -f /usr/include/onnx/onnx_pb.h ]; then
  fuzzers+=(onnx)
  onnx=(-DBNORM_FUZZ_ONNX=1 -DONNX_ML=1 -DONNX_NAMESPACE=onnx)
  onnx_libraries=(-lonnx_proto -lprotobuf)
fi
# Compiles fuzz/fuzz_readers.cpp with the options FLAGS... into the program $build/NAME.
compile_readers() {
  local name=$1
  shift
  clang++-14 "${common[@]}" "${onnx[@]}" "$@" fuzz/fuzz_readers.cpp -o "$build/$name" \
    "${onnx_libraries[@]}"
}

echo "Building the fuzz program for ${fuzzers[*]} and the seed writer with clang++-14"
# The seed writer only saves valid networks and is not what is fuzzed, so it is compiled
# unoptimized and unsanitized, beside the fuzz program (scripts/timings/stages-*.tsv).
clang++-14 "${common[@]}" -O0 fuzz/make_seeds.cpp -o "$build/make_seeds" & seeds_pid=$!
compile_readers fuzz_readers -O1 "${sanitizers[@]}" -fsanitize=fuzzer
wait "$seeds_pid"
for name in "${fuzzers[@]}"; do ln -sf fuzz_readers "$build/fuzz_$name"; done

# Seeds: seeds_NAME/ is only read; new inputs go to corpus_NAME/ (kept between local runs).
rm -rf "$build"/seeds_*
"$build/make_seeds" "$build/seeds_load"
mkdir -p "$build/seeds_safetensors" "$build/seeds_onnx"
cp tests/reference/safetensors/*.safetensors "$build/seeds_safetensors/"
cp tests/reference/onnx/*.onnx "$build/seeds_onnx/"

# The fuzzers run side by side (each is one process on one core), so the stage takes about
# BNORM_FUZZ_SECONDS, not three times that; on fewer cores than fuzzers they share them.
fuzz_one() {
  local name=$1
  mkdir -p "$build/corpus_$name"
  (cd "$build" && ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} "./fuzz_$name" \
     -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=16384 \
     -print_final_stats=1 "corpus_$name" "seeds_$name" > "fuzz_$name.log" 2>&1)
}
pids=()
for name in "${fuzzers[@]}"; do
  echo "Fuzzing $name for $seconds s from $(ls "$build/seeds_$name" | wc -l) seed files"
  fuzz_one "$name" & pids+=($!)
done
status=0
for index in "${!fuzzers[@]}"; do
  name=${fuzzers[$index]}
  fuzz_status=0
  wait "${pids[$index]}" || fuzz_status=$?
  if [ "$fuzz_status" -ne 0 ]; then
    tail -n 80 "$build/fuzz_$name.log"
    echo "The $name fuzzer found a problem (exit status $fuzz_status); see $build/fuzz_$name.log and $build/crash-*"
    status=$fuzz_status
  fi
  echo "Fuzzing summary, $name (cov: code edges covered, ft: coverage features, corp: corpus size):"
  grep -E "^#[0-9]+[[:space:]]+(INITED|DONE)|^stat::" "$build/fuzz_$name.log" || true
done

if [ "$coverage" = 1 ] && [ "$status" -eq 0 ]; then
  compile_readers fuzz_load_coverage -O0 -fsanitize=fuzzer -fprofile-instr-generate -fcoverage-mapping
  LLVM_PROFILE_FILE="$build/coverage.profraw" "$build/fuzz_load_coverage" -runs=0 \
    "$build/corpus_load" "$build/seeds_load" > "$build/coverage.log" 2>&1
  llvm-profdata-14 merge -sparse "$build/coverage.profraw" -o "$build/coverage.profdata"
  echo "Line coverage of the loader by the corpus:"
  llvm-cov-14 report "$build/fuzz_load_coverage" -instr-profile="$build/coverage.profdata" \
    include/bnorm/io/*.hpp
fi
exit "$status"
