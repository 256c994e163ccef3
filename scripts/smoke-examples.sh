#!/usr/bin/env bash
# Smoke test of the examples, for CI: builds them optimized, runs the quick mode of each (a
# few hundred training steps on real Fashion-MNIST) and checks what it printed and wrote:
# every expected key=value summary line is there, no value is NaN or infinite, the networks
# with BatchNorm learned (accuracy well above the 10% of chance), and the CSV and SVG exist;
# then the quick mode of the benchmark harness and the check of its published tables.
# Installs what is missing first, as scripts/test.sh does.
#
# The benchmark harness runs in the background from the start: it builds its programs one
# translation unit at a time and then runs them on one core, so beside the examples' parallel
# build and their single-threaded runs it takes the core they leave idle. Its timings are
# scratch in --quick mode (nothing is published from them), so sharing the machine costs
# nothing; a failure of it still fails the stage.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
# An already configured Release build folder (scripts/test.sh passes the one its unit stage
# uses) is reused as it is; otherwise a build folder of its own is configured.
build=${BNORM_SMOKE_BUILD_DIR:-build/smoke-examples}
out="$build/smoke-output"
mkdir -p "$build"
if [ ! -f "$build/CMakeCache.txt" ]; then
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DBNORM_BUILD_TESTS=OFF \
        -DBNORM_BUILD_BENCHMARKS=OFF -DBNORM_BUILD_EXAMPLES=ON -DBNORM_MPI=OFF > "$build/configure.log" ||
    { cat "$build/configure.log"; exit 1; }
fi
rm -rf "$out"
mkdir -p "$out"

# The benchmark harness, so that it cannot rot: bench/run.sh --quick builds bnorm's two
# builds (and the peers where libtorch-dev and libdlib-dev are installed; without them it
# says they were skipped) and makes the tables from one short round in a scratch folder.
# Started now, checked at the end.
bench_started=$(date +%s)
# In a process group of its own, so that if this script stops early (a failed build of the
# examples) the harness and its compilers are stopped with it rather than left running.
BNORM_BENCH_BUILD_DIR="$build/bench" setsid bench/run.sh --quick > "$out/bench-quick.log" 2>&1 &
bench_pid=$!
trap 'kill -- -"$bench_pid" 2> /dev/null || true' EXIT

cmake --build "$build" -j "$(nproc)" --target bnorm_examples

failures=0
fail() {
  echo "smoke-examples: FAIL: $*" >&2
  failures=$((failures + 1))
}

# The value of summary line KEY in FILE, or nothing.
value() { awk -v key="$1" 'index($0, key "=") == 1 { print substr($0, length(key) + 2); exit }' "$2"; }

# Every KEY has a summary line in FILE.
require_keys() {
  local file=$1 key
  shift
  for key in "$@"; do
    [ -n "$(value "$key" "$file")" ] || fail "$(basename "$file"): no summary line $key=..."
  done
}

# Every number in every key=value line of FILE is finite.
require_finite() {
  local bad
  bad=$(grep -E '^[a-z0-9_.]+=' "$1" | awk -F= '{
          n = split(substr($0, length($1) + 2), parts, ",")
          for (i = 1; i <= n; ++i) if (tolower(parts[i]) ~ /^[+-]?(nan|inf)/) { print $1; break }
        }')
  [ -z "$bad" ] || fail "$(basename "$1"): non-finite values in: $(echo "$bad" | tr '\n' ' ')"
}

# The value of KEY in FILE is a number above LIMIT.
require_above() {
  local file=$1 key=$2 limit=$3 actual
  actual=$(value "$key" "$file")
  awk -v a="$actual" -v l="$limit" 'BEGIN { exit !(a ~ /^[0-9.eE+-]+$/ && a + 0 > l + 0) }' ||
    fail "$(basename "$file"): $key=$actual, expected above $limit"
}

# The value of KEY in FILE is exactly EXPECTED.
require_equal() {
  local actual
  actual=$(value "$2" "$1")
  [ "$actual" = "$3" ] || fail "$(basename "$1"): $2=$actual, expected $3"
}

# Runs example NAME with ARGS, output to $out/NAME.log; checks its CSV and SVG.
run_example() {
  local name=$1
  shift
  local start=$SECONDS
  if ! "$build/examples/$name" "$@" > "$out/$name.log" 2> "$out/$name.err"; then
    fail "$name $* exited with an error"
    tail -n 20 "$out/$name.log" "$out/$name.err" >&2
    return
  fi
  echo "smoke-examples: $name $* ($((SECONDS - start)) s)"
  case $name in fashion_mnist | from_pytorch) return ;; esac
  [ "$(wc -l < "$out/$name.csv")" -gt 1 ] || fail "$name: $out/$name.csv has no rows"
  grep -q '</svg>' "$out/$name.svg" || fail "$name: $out/$name.svg is missing or incomplete"
}

run_example fashion_mnist --epochs 1
log="$out/fashion_mnist.log"
[ "$(tail -n 1 "$log" | cut -d= -f1)" = test_accuracy ] || fail "fashion_mnist: last line is not test_accuracy=..."
require_above "$log" test_accuracy 0.5

run_example covariate_shift --quick --output "$out/covariate_shift"
log="$out/covariate_shift.log"
require_keys "$log" plain_accuracy_final bn_accuracy_final plain_drift_p50 bn_drift_p50 bn_drift_p50_seeds \
  bn_unit0_p50_final drift_ratio_plain_to_bn bn_train_seconds total_seconds
require_finite "$log"
require_above "$log" bn_accuracy_final 0.5
require_equal "$log" bn_diverged_runs 0

run_example lr_sweep --quick --output "$out/lr_sweep"
log="$out/lr_sweep.log"
require_keys "$log" plain_accuracy_lr_0.01 bn_accuracy_lr_0.01 bn_accuracy_lr_1 \
  plain_lr_range_seeds bn_lr_width_seeds plain_diverged_lrs total_seconds
require_finite "$log"
require_above "$log" bn_accuracy_lr_0.01 0.5
require_above "$log" bn_best_accuracy 0.5
require_equal "$log" bn_diverged_runs 0

run_example deep_mlp --quick --output "$out/deep_mlp"
log="$out/deep_mlp.log"
for act in tanh sigmoid; do
  require_keys "$log" ${act}_d10_plain_accuracy ${act}_d10_bn_train_accuracy
  for key in bn_accuracy bn_batch_statistics_accuracy bn_recalibrated_accuracy; do
    require_above "$log" ${act}_d10_$key 0.5
  done
done
require_finite "$log"

run_example regularization --quick --output "$out/regularization"
log="$out/regularization.log"
for batch in 32 256; do
  require_keys "$log" batch${batch}_plain_gap batch${batch}_dropout_gap batch${batch}_bn_gap \
    batch${batch}_bn_gap_reduction
  require_above "$log" batch${batch}_bn_test_accuracy 0.5
done
require_finite "$log"
require_equal "$log" diverged_runs 0

# Train in PyTorch, run in bnorm, on the committed examples/from_pytorch/ files (built when
# nlohmann_json is there; flagship.onnx too with bnorm::onnx); the exported files reload to
# the same test logits.
if [ -x "$build/examples/from_pytorch" ]; then
  run_example from_pytorch --export "$out/from_pytorch_export.safetensors" --export-steps 100
  log="$out/from_pytorch.log"
  require_keys "$log" bnorm_correct pytorch_correct bnorm_export_correct
  require_equal "$log" same_count yes
  require_equal "$log" differing_examples 0
  require_equal "$log" export_reloads_identical yes
  require_above "$log" test_accuracy 0.8
  if [ -f /usr/include/onnx/onnx_pb.h ]; then  # built with bnorm::onnx: the ONNX file too
    require_keys "$log" onnx_correct
    require_equal "$log" onnx_logits_identical_to_safetensors yes
    require_equal "$log" onnx_export_reloads_identical yes
  fi
else
  fail "from_pytorch was not built (is nlohmann-json3-dev installed?)"
fi

# The harness started above; bench/report.py --check fails if bench/RESULTS.md or the README's
# performance table differ from what the committed run folder generates.
python=/usr/bin/python3
[ -x "$python" ] || python=python3
bench_status=0
wait "$bench_pid" || bench_status=$?
trap - EXIT
if [ "$bench_status" -eq 0 ]; then
  # Its log's last write is when it finished (the wait above returns only after the examples).
  echo "smoke-examples: bench/run.sh --quick ($(($(stat -c %Y "$out/bench-quick.log") - bench_started)) s, beside the examples)"
  grep -q '^| mlp64 | ' "$out/bench-quick.log" || fail "bench/run.sh --quick printed no mlp64 row"
  grep -q 'note: .* skipped' "$out/bench-quick.log" && grep 'note: .* skipped' "$out/bench-quick.log"
else
  fail "bench/run.sh --quick failed (exit status $bench_status)"
  tail -n 20 "$out/bench-quick.log" >&2
fi
if "$python" bench/report.py --check > "$out/bench-check.log" 2>&1; then
  echo "smoke-examples: $(tail -n 1 "$out/bench-check.log")"
else
  fail "bench/report.py --check: bench/RESULTS.md or README.md differ from the committed run"
  tail -n 30 "$out/bench-check.log" >&2
fi
# docs/report.py --check: the same for docs/results.md and the README's claims table, made
# from docs/figures/ and the published run's timings.
if "$python" docs/report.py --check > "$out/docs-check.log" 2>&1; then
  echo "smoke-examples: $(tail -n 1 "$out/docs-check.log")"
else
  fail "docs/report.py --check: docs/results.md or README.md differ from what their data generates"
  tail -n 30 "$out/docs-check.log" >&2
fi

if [ "$failures" -gt 0 ]; then
  echo "smoke-examples: $failures check(s) failed; logs in $out" >&2
  exit 1
fi
echo "smoke-examples: all examples passed (logs, CSVs and SVGs in $out)"
