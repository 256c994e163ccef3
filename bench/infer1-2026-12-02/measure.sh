#!/bin/sh
# Usage: [FILTER=REGEX] measure.sh OUT_DIR ROUNDS LABEL=EXECUTABLE...
# Runs the benchmarks matching FILTER (default: infer1) of each program in turn, round after round (so that every
# program meets the same load), pinned to core 0, one thread, writing Google Benchmark's
# JSON to OUT_DIR/LABEL-rROUND.json. The peers get the environment bench/run.sh gives them
# (OpenBLAS on one thread, its SkylakeX kernels).
set -e
out=$1; rounds=$2; shift 2
mkdir -p "$out"
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_CORETYPE=SkylakeX
export LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-pthread
for round in $(seq 1 "$rounds"); do
  for entry in "$@"; do
    label=${entry%%=*}; program=${entry#*=}
    taskset -c 0 "$program" --benchmark_filter="${FILTER:-infer1}" --benchmark_min_time=0.5 \
      --benchmark_out="$out/$label-r$round.json" --benchmark_out_format=json >/dev/null 2>&1
  done
done
