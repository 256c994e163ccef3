#!/usr/bin/env bash
# Builds bnorm's benchmarks (and the libtorch and dlib peers where installed) in Release,
# runs them all on one pinned core, and prints bench/report.py's markdown report.
#
#   bench/run.sh              -march=native, into build/bench-native
#   bench/run.sh --portable   -march=x86-64-v3, into build/bench-portable
#   options: --quick (3 repetitions of 0.1 s, to try things out), --no-peers, --no-sweep,
#            --threads N (also run the six workloads on N threads, bnorm::openmp, and print
#            the speed-up over one thread)
#
# Environment: BNORM_BENCH_CPU (the core to pin to, default 0); BNORM_PEER_BLAS_DIR (a
# folder holding the libblas.so.3 the peers should load; default Debian's OpenBLAS folder
# when libopenblas0-pthread is installed). bnorm itself uses no BLAS.
# Outputs: <build>/results/*.json, report.md and machine.txt.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
arch=native
repetitions=7
min_time=()
peers=ON
sweep=1
threads=1
expect_threads=0
for argument in "$@"; do
  if ((expect_threads)); then threads=$argument expect_threads=0; continue; fi
  case $argument in
    --threads) expect_threads=1 ;;
    --portable) arch=portable ;;
    --quick) repetitions=3 min_time=(--benchmark_min_time=0.1) ;;
    --no-peers) peers=OFF ;;
    --no-sweep) sweep=0 ;;
    *) sed -n '2,13p' "$0" >&2; exit 2 ;;
  esac
done

build=$root/build/bench-$arch
results=$build/results
if [[ $arch == native ]]; then
  arch_flags=(-DBNORM_NATIVE=ON -DCMAKE_CXX_FLAGS=)
else
  arch_flags=(-DBNORM_NATIVE=OFF -DCMAKE_CXX_FLAGS=-march=x86-64-v3)
fi
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)

echo "== configuring and building $build" >&2
mkdir -p "$results"
cmake -S "$root" -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release "${arch_flags[@]}" \
  -DBNORM_BUILD_TESTS=OFF -DBNORM_BUILD_EXAMPLES=OFF -DBNORM_INSTALL=OFF \
  -DBNORM_BENCH_LIBTORCH=$peers -DBNORM_BENCH_DLIB=$peers >"$build/configure.log" 2>&1 ||
  { cat "$build/configure.log" >&2; exit 1; }
grep -A2 'CMake Warning' "$build/configure.log" >&2 || true
cmake --build "$build" --target bnorm_benchmarks >"$build/build.log" 2>&1 || { grep -B2 -A8 'error' "$build/build.log" >&2; exit 1; }

# One thread everywhere, on one core.
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1
pin=()
if command -v taskset >/dev/null && taskset -c "${BNORM_BENCH_CPU:-0}" true 2>/dev/null; then
  pin=(taskset -c "${BNORM_BENCH_CPU:-0}")
fi
peer_blas=${BNORM_PEER_BLAS_DIR:-/usr/lib/x86_64-linux-gnu/openblas-pthread}
peer_env=()
if [[ -e $peer_blas/libblas.so.3 ]]; then
  peer_env=(env "LD_LIBRARY_PATH=$peer_blas${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}")
else
  echo "note: the peers use the system's libblas.so.3; for OpenBLAS install libopenblas0-pthread" \
       "or set BNORM_PEER_BLAS_DIR" >&2
fi

{
  echo "bnorm: $(git -C "$root" describe --always --dirty 2>/dev/null || echo 'not a git checkout')"
  echo "uptime at start: $(uptime)"
  lscpu | grep -E '^(Model name|CPU\(s\)|Thread|Core|Socket|Flags)' | cut -c1-200
  getconf -a | grep -E '^LEVEL[123]_[DU]?CACHE_SIZE|^LEVEL2_CACHE_SIZE|^LEVEL3_CACHE_SIZE'
  grep MemTotal /proc/meminfo
  "${CXX:-c++}" --version | head -1
} >"$results/machine.txt"

# run NAME EXECUTABLE [env ...]: the medians of $repetitions repetitions, as JSON.
run() {
  local name=$1 executable=$2
  shift 2
  [[ -x $executable ]] || return 0
  echo "== $name" >&2
  rm -f "$results/$name.json"
  "$@" "${pin[@]}" "$executable" --benchmark_repetitions="$repetitions" \
    --benchmark_report_aggregates_only=true "${min_time[@]}" \
    --benchmark_out="$results/$name.json" --benchmark_out_format=json >&2
}
rm -f "$results"/*.json
run workloads "$build/bench/bench_workloads"
run libtorch "$build/bench/peers/bench_libtorch" "${peer_env[@]}"
run dlib "$build/bench/peers/bench_dlib" "${peer_env[@]}"
if ((threads > 1)); then
  # Not pinned: the threads need their cores.
  saved_pin=("${pin[@]}")
  pin=()
  run threads "$build/bench/bench_workloads_threaded" env OMP_NUM_THREADS="$threads"
  pin=("${saved_pin[@]}")
fi
# The sweep has ~80 benchmarks: 0.2 s per repetition keeps it to minutes.
if ((sweep)); then
  if ((${#min_time[@]} == 0)); then min_time=(--benchmark_min_time=0.2); fi
  run sweep "$build/bench/bench_sweep"
fi
echo "uptime at end: $(uptime)" >>"$results/machine.txt"

python=/usr/bin/python3
[[ -x $python ]] || python=python3
reports=()
for json in "$results"/*.json; do [[ $json == */threads.json ]] || reports+=("$json"); done
"$python" "$here/report.py" "${reports[@]}" | tee "$results/report.md"
if [[ -e $results/threads.json ]]; then
  "$python" - "$results/workloads.json" "$results/threads.json" "$threads" <<'PY' | tee -a "$results/report.md"
import json, re, sys
def medians(path, clock):
    runs = json.load(open(path))["benchmarks"]
    return {re.sub(r"/(process|real)_time$", "", r["run_name"]).split("/", 1)[1]: r[clock]
            for r in runs if r.get("aggregate_name") == "median"}
one, many = medians(sys.argv[1], "cpu_time"), medians(sys.argv[2], "real_time")
print(f"\n### {sys.argv[3]} threads (bnorm::openmp) against one\n")
print("| workload | 1 thread (us) | %s threads (us) | speed-up |" % sys.argv[3])
print("|---|---|---|---|")
for name in ["bn_small", "bn_large", "bn_eval", "mlp64", "mlp256", "infer1"]:
    if name in one and name in many:
        print(f"| {name} | {one[name]:.1f} | {many[name]:.1f} | {one[name] / many[name]:.2f} |")
PY
fi
cat "$results/machine.txt"
