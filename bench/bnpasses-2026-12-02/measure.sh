#!/bin/sh
# Usage: measure.sh BEFORE_ROOT AFTER_ROOT OUT_DIR
# Each ROOT holds two build folders of bench_workloads, ROOT/default (no flag) and
# ROOT/native (-DBNORM_NATIVE=ON). Runs the BatchNorm workloads and the copy benchmarks of
# the four builds alternately, two rounds of 5 repetitions each, pinned to core 0, so every
# file holds the machine's copy rate measured in the same run as the workloads.
set -e
before=$1; after=$2; out=$3
filter='bnorm/bn_|limits/(streaming_)?copy_256MiB'
mkdir -p "$out"
for round in 1 2; do
  for label in before after; do
    root=$before; [ $label = after ] && root=$after
    for build in default native; do
      taskset -c 0 "$root/$build/bench/bench_workloads" --benchmark_filter="$filter" \
        --benchmark_repetitions=5 --benchmark_report_aggregates_only=false \
        --benchmark_out="$out/$label-$build-$round.json" --benchmark_out_format=json > /dev/null
    done
  done
done
