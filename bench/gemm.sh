#!/usr/bin/env bash
# The Dense products of issue 10 (bench/bench_gemm.cpp), measured in three builds and printed
# by bench/gemm_report.py:
#   default   Release, no -march flag (what a user builds): Eigen's SSE2 product and every
#             variant of bnorm's packed GEMM, forced in turn
#   native    Release, -march=native (BNORM_NATIVE): Eigen's product as the native build has it
#   v3        Release, -march=x86-64-v3: Eigen on AVX2+FMA, the native build of an AVX2 machine
# and the flagship training step (bench_workloads, bnorm/mlp64 and bnorm/mlp256) in the
# default build, before (the commit given, default HEAD~) and after (this checkout), and in
# the native build of this checkout.
#
#   bench/gemm.sh [--before COMMIT] [--rounds N] [--repetitions N]
#
# The machine may be shared: the builds' programs run alternately, N rounds, and each run
# interleaves its benchmarks at random; report medians. Raw JSON goes to
# bench/gemm-<date>-<commit>/ (committed with the program that made it).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
before=HEAD~
rounds=2
repetitions=7
while (($#)); do
  case $1 in
    --before) before=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --repetitions) repetitions=$2; shift 2 ;;
    *) sed -n '2,16p' "$0" >&2; exit 2 ;;
  esac
done

commit=$(git -C "$root" rev-parse --short HEAD)
out=$here/gemm-$(date -u +%Y-%m-%d)-$commit
work=${BNORM_GEMM_BUILD:-/tmp/bnorm-gemm-bench}
mkdir -p "$out" "$work"

configure_and_build() {  # NAME SOURCE TARGET CMAKE_ARGS...
  local name=$1 source=$2 target=$3
  shift 3
  cmake -S "$source" -B "$work/$name" -DCMAKE_BUILD_TYPE=Release -DBNORM_BUILD_TESTS=OFF \
    -DBNORM_BUILD_EXAMPLES=OFF -DBNORM_MPI=OFF -DBNORM_INSTALL=OFF -DBNORM_BUILD_BENCHMARKS=ON \
    "$@" >"$work/$name.configure.log" 2>&1 || { cat "$work/$name.configure.log" >&2; exit 1; }
  cmake --build "$work/$name" --target "$target" -j2 >"$work/$name.build.log" 2>&1 ||
    { grep -B2 -A8 error "$work/$name.build.log" >&2; exit 1; }
}
echo "== building" >&2
configure_and_build default "$root" bench_gemm -DBNORM_NATIVE=OFF -DCMAKE_CXX_FLAGS=
configure_and_build native "$root" bench_gemm -DBNORM_NATIVE=ON -DCMAKE_CXX_FLAGS=
configure_and_build v3 "$root" bench_gemm -DBNORM_NATIVE=OFF -DCMAKE_CXX_FLAGS=-march=x86-64-v3
configure_and_build default "$root" bench_workloads -DBNORM_NATIVE=OFF -DCMAKE_CXX_FLAGS=
configure_and_build native "$root" bench_workloads -DBNORM_NATIVE=ON -DCMAKE_CXX_FLAGS=
rm -rf "$work/before-source"
mkdir -p "$work/before-source"
git -C "$root" archive "$before" | tar -x -C "$work/before-source"
configure_and_build before "$work/before-source" bench_workloads -DBNORM_NATIVE=OFF -DCMAKE_CXX_FLAGS=

{
  echo "bnorm: $commit; before: $(git -C "$root" rev-parse --short "$before")"
  echo "uptime at start: $(uptime)"
  lscpu | grep -E '^(Model name|CPU\(s\)|Flags)' | cut -c1-200
  "${CXX:-c++}" --version | head -1
} >"$out/machine.txt"

run() {  # FILE EXECUTABLE ARGS...
  local file=$1 executable=$2
  shift 2
  echo "== $file" >&2
  "$executable" --benchmark_repetitions="$repetitions" --benchmark_report_aggregates_only=true \
    --benchmark_enable_random_interleaving=true --benchmark_min_time=0.05 "$@" \
    --benchmark_out="$out/$file.json" --benchmark_out_format=json >/dev/null
}
for ((round = 1; round <= rounds; ++round)); do
  run "gemm-default-$round" "$work/default/bench/bench_gemm"
  run "gemm-native-$round" "$work/native/bench/bench_gemm"
  run "gemm-v3-$round" "$work/v3/bench/bench_gemm" --benchmark_filter=gemm/eigen
  run "mlp-before-$round" "$work/before/bench/bench_workloads" '--benchmark_filter=bnorm/mlp(64|256)'
  run "mlp-after-$round" "$work/default/bench/bench_workloads" '--benchmark_filter=bnorm/mlp(64|256)'
  run "mlp-native-$round" "$work/native/bench/bench_workloads" '--benchmark_filter=bnorm/mlp(64|256)'
done
echo "uptime at end: $(uptime)" >>"$out/machine.txt"

/usr/bin/python3 "$here/gemm_report.py" "$out" | tee "$out/report.md"
