#!/usr/bin/env bash
# Proves that the unit tests bite: applies each deliberate fault below, one at a time, to a
# scratch copy of the tree, builds the unit tests there, runs them, and prints a table of
# fault and the tests that failed. It fails when a fault is caught by no test, when the
# unfaulted copy does not pass, and, loudly, when a fault's patch no longer applies (the
# library changed under it: adapt the one substitution of that fault).
#
# Each fault is one literal substitution (`old` -> `new`) that must match exactly once in
# its file. Settings:
#   BNORM_FAULT_BUILD_DIR  scratch folder (build/faults): source copy and build folder
#   BNORM_FAULT_TESTS      an extended regex of test names to build and run (default: every
#                          unit test; the MPI and consumer tests are not built)
#   BNORM_FAULT_OUTPUT     the table's raw output file (build/faults/fault-check.txt)
# `bash scripts/test.sh faults` runs it as an optional stage. It builds the suite once per
# fault (the library is header-only: a changed header recompiles every test including it).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
work=${BNORM_FAULT_BUILD_DIR:-build/faults}
selection=${BNORM_FAULT_TESTS:-}
mkdir -p "$work"
work=$(cd "$work" && pwd)
output=${BNORM_FAULT_OUTPUT:-$work/fault-check.txt}

# name | file | old | new: each line one fault.
faults=(
  "biased running variance (n instead of n - 1)|include/bnorm/layers/batch_norm.hpp|var_ * (total / (total - T(1)) * |var_ * (T(1) * "
  "momentum the wrong way round in the running statistics|include/bnorm/layers/batch_norm.hpp|keep = static_cast<T>(1.0 - factor), take = static_cast<T>(factor);|keep = static_cast<T>(factor), take = static_cast<T>(1.0 - factor);"
  "Adam's bias correction one step ahead|include/bnorm/optim/adam.hpp|const long long t = ++this->step_count_;|const long long t = ++this->step_count_ + 1;"
  "Dropout without its 1 / (1 - p) scale|include/bnorm/layers/dropout.hpp|p_ < 1.0 ? static_cast<T>(1.0 / (1.0 - p_)) : T(0)|p_ < 1.0 ? T(1) : T(0)"
  "softmax without the max shift|include/bnorm/core/kernels/losses.hpp|for (Index i = whole; i < classes; ++i) max_logit = z[i] > max_logit ? z[i] : max_logit;|max_logit = T(0);"
  "Tanh's gradient with the wrong sign|include/bnorm/core/kernels/activations.hpp|out = gradient * (T(1) - value * value);|out = gradient * (value * value - T(1));"
)

source=$work/source
build=$work/build
echo "fault-check: copying the working tree to $source"
rm -rf "$source"
mkdir -p "$source"
git ls-files -z --cached --others --exclude-standard |
  while IFS= read -r -d '' file; do [ -f "$file" ] && printf '%s\0' "$file"; done |
  tar --null -T - -cf - | tar -xf - -C "$source"

cmake -S "$source" -B "$build" -DCMAKE_BUILD_TYPE=Release -DBNORM_TEST_COMPILE_OPTIONS="-O0 -UNDEBUG" \
      -DBNORM_BUILD_TESTS=ON -DBNORM_BUILD_EXAMPLES=OFF -DBNORM_BUILD_BENCHMARKS=OFF -DBNORM_MPI=OFF \
      -DBNORM_INSTALL=OFF > "$work/configure.log" || { cat "$work/configure.log"; exit 1; }
targets=(bnorm_tests)
ctest_filter=(-E '^consumer_')
if [ -n "$selection" ]; then
  mapfile -t targets < <(ctest --test-dir "$build" -N | awk '/Test +#/ { print $3 }' | grep -E "$selection")
  [ ${#targets[@]} -gt 0 ] || { echo "fault-check: no test matches '$selection'" >&2; exit 2; }
  ctest_filter=(-R "^($(IFS='|'; echo "${targets[*]}"))\$")
fi

# Builds the selected tests and runs them; prints the names of the failed tests.
run_tests() {
  cmake --build "$build" -j "$(nproc)" --target "${targets[@]}" > "$work/build.log" 2>&1 ||
    { echo "BUILD-FAILED"; return; }
  ctest --test-dir "$build" -j "$(nproc)" "${ctest_filter[@]}" > "$work/ctest.log" 2>&1 || true
  sed -n 's/^[[:space:]]*[0-9]* - \([^ ]*\) (.*/\1/p' "$work/ctest.log" | sort -u | paste -sd' ' -
}

echo "fault-check: building and running the unfaulted copy"
baseline=$(run_tests)
if [ -n "$baseline" ]; then
  echo "fault-check: the unfaulted copy fails already ($baseline); see $work/ctest.log" >&2
  exit 1
fi

{
  echo "# scripts/fault-check.sh on $(git rev-parse --short HEAD)$(git diff --quiet HEAD || echo ' (with uncommitted changes)'), $(date -u +%FT%TZ)"
  if [ -n "$selection" ]; then
    echo "# tests built and run: $selection (${#targets[@]} executables)"
  else
    echo "# tests built and run: every unit test (the target bnorm_tests)"
  fi
  printf '%s\t%s\n' fault failed_tests
} > "$output"
uncaught=0
for entry in "${faults[@]}"; do
  IFS='|' read -r name file old new <<< "$entry"
  cp "$root/$file" "$source/$file"
  count=$(OLD=$old NEW=$new perl -0777 -i -pe '$n = s/\Q$ENV{OLD}\E/$ENV{NEW}/g; END { print STDERR $n + 0 }' \
            "$source/$file" 2>&1)
  if [ "$count" != 1 ]; then
    echo "fault-check: FAULT PATCH DOES NOT APPLY: '$name': '$old' occurs $count times in $file" >&2
    exit 3
  fi
  echo "fault-check: $name"
  failed=$(run_tests)
  cp "$root/$file" "$source/$file"  # a new timestamp: the next build recompiles without it
  if [ "$failed" = BUILD-FAILED ]; then
    tail -n 30 "$work/build.log" >&2
    echo "fault-check: FAULT DOES NOT COMPILE: '$name' (adapt its substitution)" >&2
    exit 4
  fi
  [ -n "$failed" ] || { failed="NONE (not caught)"; uncaught=$((uncaught + 1)); }
  printf '%s\t%s\n' "$name" "$failed" | tee -a "$output"
done
echo "fault-check: table in $output"
cat "$output"
if [ "$uncaught" -gt 0 ]; then
  echo "fault-check: $uncaught fault(s) caught by no test" >&2
  exit 1
fi
