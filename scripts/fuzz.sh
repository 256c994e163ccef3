#!/usr/bin/env bash
# Fuzzes bnorm's four file readers with clang-14's libFuzzer, AddressSanitizer and
# UndefinedBehaviorSanitizer, each for BNORM_FUZZ_SECONDS seconds (default 60), side by side:
#   load         bnorm's model files (fuzz/load_target.hpp)
#   checkpoint   checkpoints of a training run (fuzz/checkpoint_target.hpp)
#   safetensors  fuzz/safetensors_target.hpp
#   onnx         fuzz/onnx_target.hpp, mutated as models by fuzz/onnx_mutator.hpp (only with
#                Debian's libonnx-dev installed)
# The four are one program (fuzz/fuzz_readers.cpp), compiled once and run under each name.
# Each starts from its committed corpus (fuzz/corpus/NAME/, grown by long runs and minimized),
# every input a fuzzer has crashed on (fuzz/regressions/NAME/, also replayed by the unit
# tests: tests/test_fuzz_regressions*.cpp) and generated seeds (valid files: fuzz/make_seeds.cpp,
# tests/reference/safetensors/, tests/reference/onnx/), with the dictionary
# fuzz/dictionaries/NAME.dict where there is one.
# Fails on any finding: the crashing input is copied to fuzz/regressions/NAME/ (commit it with
# the fix) and left in the build folder (crash-*, leak-*, timeout-*).
#
# Campaigns: BNORM_FUZZ_SECONDS=3600 for an hour per reader; BNORM_FUZZ_READERS="onnx load"
# picks readers (default: all); BNORM_FUZZ_UPDATE_CORPUS=1 then merges what the run found into
# fuzz/corpus/NAME/, minimized (libFuzzer's -merge=1: the smallest set of inputs with the same
# coverage), for committing. BNORM_FUZZ_COVERAGE=1 then replays each reader's corpus through a
# coverage build and prints the line coverage of include/bnorm/io/ (llvm-14).
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

fuzzers=(load checkpoint safetensors)
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

[ -n "${BNORM_FUZZ_READERS:-}" ] && read -r -a fuzzers <<< "$BNORM_FUZZ_READERS"
echo "Building the fuzz program for ${fuzzers[*]} and the seed writer with clang++-14"
# The seed writer only saves valid networks and is not what is fuzzed, so it is compiled
# unoptimized and unsanitized, beside the fuzz program (scripts/timings/stages-*.tsv).
clang++-14 "${common[@]}" -O0 fuzz/make_seeds.cpp -o "$build/make_seeds" & seeds_pid=$!
compile_readers fuzz_readers -O1 "${sanitizers[@]}" -fsanitize=fuzzer
wait "$seeds_pid"
for name in load checkpoint safetensors onnx; do ln -sf fuzz_readers "$build/fuzz_$name"; done

# Seeds: seeds_NAME/ is only read; new inputs go to corpus_NAME/ (kept between local runs).
rm -rf "$build"/seeds_*
"$build/make_seeds" "$build/seeds_load" "$build/seeds_checkpoint"
mkdir -p "$build/seeds_safetensors" "$build/seeds_onnx"
cp tests/reference/safetensors/*.safetensors "$build/seeds_safetensors/"
cp tests/reference/onnx/*.onnx "$build/seeds_onnx/"
for name in load checkpoint safetensors onnx; do
  for committed in fuzz/corpus/$name fuzz/regressions/$name; do
    [ -d "$committed" ] && find "$committed" -type f ! -name '*.md' -exec cp {} "$build/seeds_$name/" \;
  done
done

# The fuzzers run side by side (each is one process on one core), so the stage takes about
# BNORM_FUZZ_SECONDS, not three times that; on fewer cores than fuzzers they share them.
fuzz_one() {
  local name=$1
  mkdir -p "$build/corpus_$name"
  local options=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
                 -artifact_prefix="$name-")
  # Inputs up to 16 KiB, or the largest seed's size.
  local largest
  largest=$(find "$build/seeds_$name" -type f -printf '%s\n' | sort -n | tail -n 1)
  options+=(-max_len=$(( ${largest:-0} > 16384 ? largest : 16384 )))
  [ -f "fuzz/dictionaries/$name.dict" ] && options+=(-dict="$PWD/fuzz/dictionaries/$name.dict")
  (cd "$build" && ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} "./fuzz_$name" "${options[@]}" \
     "corpus_$name" "seeds_$name" > "fuzz_$name.log" 2>&1)
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
    mkdir -p "fuzz/regressions/$name"
    find "$build" -maxdepth 1 -type f \( -name "$name-crash-*" -o -name "$name-leak-*" -o \
      -name "$name-timeout-*" -o -name "$name-oom-*" \) -exec cp {} "fuzz/regressions/$name/" \;
    echo "The $name fuzzer found a problem (exit status $fuzz_status); see $build/fuzz_$name.log;" \
         "the input is now in fuzz/regressions/$name/"
    status=$fuzz_status
  fi
  echo "Fuzzing summary, $name (cov: code edges covered, ft: coverage features, corp: corpus size):"
  grep -E "^#[0-9]+[[:space:]]+(INITED|DONE)|^stat::" "$build/fuzz_$name.log" || true
done

if [ "${BNORM_FUZZ_UPDATE_CORPUS:-0}" = 1 ] && [ "$status" -eq 0 ]; then
  for name in "${fuzzers[@]}"; do
    merged="$build/merged_$name"
    rm -rf "$merged" && mkdir -p "$merged"
    (cd "$build" && "./fuzz_$name" -merge=1 "merged_$name" "corpus_$name" "seeds_$name" \
       > "merge_$name.log" 2>&1)
    rm -rf "fuzz/corpus/$name" && mkdir -p "fuzz/corpus/$name"
    cp "$merged"/* "fuzz/corpus/$name/"
    echo "fuzz/corpus/$name: $(ls "fuzz/corpus/$name" | wc -l) inputs," \
         "$(du -sk "fuzz/corpus/$name" | cut -f1) KiB after -merge=1"
  done
fi

if [ "$coverage" = 1 ] && [ "$status" -eq 0 ]; then
  compile_readers fuzz_coverage -O0 -fsanitize=fuzzer -fprofile-instr-generate -fcoverage-mapping
  profiles=()
  for name in "${fuzzers[@]}"; do
    ln -sf fuzz_coverage "$build/fuzz_${name}_coverage"
    LLVM_PROFILE_FILE="$build/coverage_$name.profraw" "$build/fuzz_${name}_coverage" -runs=0 \
      "$build/corpus_$name" "$build/seeds_$name" > "$build/coverage_$name.log" 2>&1
    profiles+=("$build/coverage_$name.profraw")
  done
  llvm-profdata-14 merge -sparse "${profiles[@]}" -o "$build/coverage.profdata"
  echo "Line coverage of the readers by the corpora of ${fuzzers[*]}:"
  llvm-cov-14 report "$build/fuzz_coverage" -instr-profile="$build/coverage.profdata" \
    include/bnorm/io/*.hpp include/bnorm/*.hpp
fi
exit "$status"
