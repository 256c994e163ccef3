#!/usr/bin/env bash
# Fuzzes the model loader: builds fuzz/fuzz_load.cpp with clang-14's libFuzzer, AddressSanitizer
# and UndefinedBehaviorSanitizer, writes a seed corpus of valid model files, and fuzzes for
# BNORM_FUZZ_SECONDS seconds (default 60). Then the same for the safetensors reader
# (fuzz/fuzz_safetensors.cpp, seeded with tests/reference/safetensors/*.safetensors). Fails on any finding; the crashing input is left
# in the build folder (crash-*). With BNORM_FUZZ_COVERAGE=1 it then replays the corpus through
# a coverage build and prints the line coverage of include/bnorm/io/ (llvm-14). With Debian's
# libonnx-dev installed it also fuzzes the ONNX reader (fuzz/fuzz_onnx.cpp) as long, seeded
# with the PyTorch and bnorm exports in tests/reference/onnx/.
# Installs what is missing (clang-14, libclang-rt-14-dev, and llvm-14 for the coverage).
set -euo pipefail
cd "$(dirname "$0")/.."
coverage=${BNORM_FUZZ_COVERAGE:-0}
extra=()
[ "$coverage" = 1 ] && extra=(llvm-14)
bash scripts/install-deps.sh clang-14 libclang-rt-14-dev "${extra[@]}"
build=${BNORM_FUZZ_BUILD_DIR:-build/fuzz}
seconds=${BNORM_FUZZ_SECONDS:-60}
mkdir -p "$build/corpus"

eigen=/usr/include/eigen3
common=(-std=c++20 -g -Iinclude -Itests -isystem "$eigen")
sanitizers=(-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
echo "Building the fuzz target and the seed writer with clang++-14"
clang++-14 "${common[@]}" -O1 "${sanitizers[@]}" -fsanitize=fuzzer fuzz/fuzz_load.cpp -o "$build/fuzz_load" &
target=$!
clang++-14 "${common[@]}" -O1 "${sanitizers[@]}" fuzz/make_seeds.cpp -o "$build/make_seeds"
wait "$target"
clang++-14 "${common[@]}" -O1 "${sanitizers[@]}" -fsanitize=fuzzer fuzz/fuzz_safetensors.cpp \
  -o "$build/fuzz_safetensors"

rm -rf "$build/seeds"
"$build/make_seeds" "$build/seeds"
echo "Seed corpus: $(ls "$build/seeds" | wc -l) valid model files"

# New inputs go to corpus/ (kept between local runs); seeds/ is only read.
cd "$build"
status=0
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} ./fuzz_load -max_total_time="$seconds" -timeout=10 \
  -rss_limit_mb=2048 -max_len=16384 -print_final_stats=1 corpus seeds > fuzz.log 2>&1 || status=$?
if [ "$status" -ne 0 ]; then
  tail -n 80 fuzz.log
  echo "The fuzzer found a problem (exit status $status); see $build/fuzz.log and $build/crash-*"
fi
echo "Fuzzing summary (cov: code edges covered, ft: coverage features, corp: corpus size):"
grep -E "^#[0-9]+[[:space:]]+(INITED|DONE)|^stat::" fuzz.log || true

rm -rf safetensors_seeds
mkdir -p safetensors_seeds safetensors_corpus
cp "$OLDPWD"/tests/reference/safetensors/*.safetensors safetensors_seeds/
safetensors_status=0
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} ./fuzz_safetensors -max_total_time="$seconds" \
  -timeout=10 -rss_limit_mb=2048 -max_len=16384 -print_final_stats=1 safetensors_corpus \
  safetensors_seeds > fuzz_safetensors.log 2>&1 || safetensors_status=$?
if [ "$safetensors_status" -ne 0 ]; then
  tail -n 80 fuzz_safetensors.log
  echo "The safetensors fuzzer found a problem (exit status $safetensors_status); see $build/fuzz_safetensors.log"
  status=$safetensors_status
fi
echo "Safetensors fuzzing summary:"
grep -E "^#[0-9]+[[:space:]]+(INITED|DONE)|^stat::" fuzz_safetensors.log || true

# The ONNX reader links Debian's protobuf and onnx_proto (built by g++; clang++ uses the
# same libstdc++, so they link into the sanitized fuzzer as they are).
if [ "$status" -eq 0 ] && [ -f /usr/include/onnx/onnx_pb.h ]; then
  cd - > /dev/null
  echo "Building the ONNX fuzz target with clang++-14"
  clang++-14 "${common[@]}" -DONNX_ML=1 -DONNX_NAMESPACE=onnx -O1 "${sanitizers[@]}" \
    -fsanitize=fuzzer fuzz/fuzz_onnx.cpp -o "$build/fuzz_onnx" -lonnx_proto -lprotobuf
  rm -rf "$build/onnx_seeds"
  mkdir -p "$build/onnx_seeds" "$build/onnx_corpus"
  cp tests/reference/onnx/*.onnx "$build/onnx_seeds/"
  echo "ONNX seed corpus: $(ls "$build/onnx_seeds" | wc -l) files from torch.onnx.export and save_onnx"
  cd "$build"
  ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} ./fuzz_onnx -max_total_time="$seconds" -timeout=10 \
    -rss_limit_mb=2048 -max_len=16384 -print_final_stats=1 onnx_corpus onnx_seeds > fuzz_onnx.log 2>&1 || status=$?
  if [ "$status" -ne 0 ]; then
    tail -n 80 fuzz_onnx.log
    echo "The ONNX fuzzer found a problem (exit status $status); see $build/fuzz_onnx.log and $build/crash-*"
  fi
  echo "ONNX fuzzing summary:"
  grep -E "^#[0-9]+[[:space:]]+(INITED|DONE)|^stat::" fuzz_onnx.log || true
fi

if [ "$coverage" = 1 ] && [ "$status" -eq 0 ]; then
  cd - > /dev/null
  clang++-14 "${common[@]}" -O0 -fsanitize=fuzzer -fprofile-instr-generate -fcoverage-mapping \
    fuzz/fuzz_load.cpp -o "$build/fuzz_load_coverage"
  LLVM_PROFILE_FILE="$build/coverage.profraw" "$build/fuzz_load_coverage" -runs=0 \
    "$build/corpus" "$build/seeds" > "$build/coverage.log" 2>&1
  llvm-profdata-14 merge -sparse "$build/coverage.profraw" -o "$build/coverage.profdata"
  echo "Line coverage of the loader by the corpus:"
  llvm-cov-14 report "$build/fuzz_load_coverage" -instr-profile="$build/coverage.profdata" \
    include/bnorm/io/*.hpp
fi
exit "$status"
