#!/usr/bin/env bash
# The covariate_shift target of the portable-speed issue, timed by the wall clock:
# examples/covariate_shift at its defaults (both variants, 50,000 steps each), built as a user
# builds it (CMake Release, no -march flag), against PyTorch's run of one variant,
# shared/reference/torch_experiments/e1_sigmoid_mlp.py bn gauss 50000 0 (Debian's
# /usr/bin/python3, OpenBLAS on one thread). Both pinned to the same core.
#
#   bench/covariate_shift_timing.sh RUN_FOLDER   writes RUN_FOLDER/covariate_shift.csv
#
# Environment: as bench/run.sh (BNORM_BENCH_BUILD_DIR, BNORM_BENCH_JOBS, BNORM_BENCH_CPU,
# BNORM_BENCH_REFERENCE_DIR, BNORM_PEER_OPENBLAS_CORETYPE). bench/report.py makes the covariate-shift table from the CSV.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
[[ $# -eq 1 ]] || { sed -n '2,12p' "$0" >&2; exit 2; }
out=$(mkdir -p "$1" && cd "$1" && pwd)
build_root=${BNORM_BENCH_BUILD_DIR:-$root/build/bench}
reference=${BNORM_BENCH_REFERENCE_DIR:-/work/shared/reference}/torch_experiments
build=$build_root/examples-default

echo "== building covariate_shift (default build) in $build" >&2
mkdir -p "$build"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DBNORM_NATIVE=OFF -DCMAKE_CXX_FLAGS= \
  -DBNORM_BUILD_TESTS=OFF -DBNORM_BUILD_EXAMPLES=ON -DBNORM_BUILD_BENCHMARKS=OFF -DBNORM_MPI=OFF \
  -DBNORM_INSTALL=OFF >"$build/configure.log" 2>&1 || { cat "$build/configure.log" >&2; exit 1; }
cmake --build "$build" -j "${BNORM_BENCH_JOBS:-$(nproc)}" --target covariate_shift \
  >"$build/build.log" 2>&1 || { tail -n 30 "$build/build.log" >&2; exit 1; }

pin=()
if command -v taskset >/dev/null && taskset -c "${BNORM_BENCH_CPU:-0}" true 2>/dev/null; then
  pin=(taskset -c "${BNORM_BENCH_CPU:-0}")
fi
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1
source "$here/openblas_coretype.sh"  # PyTorch's OpenBLAS gets the kernels the peers get
[[ -n $BNORM_PEER_OPENBLAS_CORETYPE ]] && export OPENBLAS_CORETYPE=$BNORM_PEER_OPENBLAS_CORETYPE
unset BNORM_ISA

# wall PROGRAM DESCRIPTION LOG COMMAND...: appends PROGRAM,"DESCRIPTION",seconds to the CSV.
wall() {
  local program=$1 description=$2 log=$3 start end
  shift 3
  echo "== timing $program: $*" >&2
  start=$(date +%s.%N)
  "$@" >"$log" 2>&1 || { tail -n 20 "$log" >&2; exit 1; }
  end=$(date +%s.%N)
  echo "$program,\"$description\",$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f", b - a }')" \
    >>"$out/covariate_shift.csv"
}
echo "program,command,wall_seconds" >"$out/covariate_shift.csv"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
wall bnorm "examples/covariate_shift (defaults: plain and bn, 50000 steps each)" \
  "$out/covariate_shift-bnorm.log" "${pin[@]}" "$build/examples/covariate_shift" \
  --output "$scratch/covariate_shift"
if [[ -f $reference/e1_sigmoid_mlp.py && -x /usr/bin/python3 ]]; then
  cp -r "$reference" "$scratch/torch_experiments"  # the script writes beside itself
  (cd "$scratch/torch_experiments" &&
     LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-pthread \
     wall pytorch "e1_sigmoid_mlp.py bn gauss 50000 0${OPENBLAS_CORETYPE:+ (OPENBLAS_CORETYPE=$OPENBLAS_CORETYPE)}" "$out/covariate_shift-pytorch.log" "${pin[@]}" /usr/bin/python3 \
       e1_sigmoid_mlp.py bn gauss 50000 0)
else
  echo "note: $reference/e1_sigmoid_mlp.py or /usr/bin/python3 is absent: PyTorch is not timed" >&2
fi
cat "$out/covariate_shift.csv"
