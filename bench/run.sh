#!/usr/bin/env bash
# Builds bnorm's six workloads twice, as a user builds them (CMake Release, no -march flag,
# BNORM_NATIVE=OFF) and with -march=native, builds the libtorch and dlib peers and the
# direct-loop programs of shared/reference where installed, and runs them all by the wall
# clock, one thread, pinned to one core. Each round runs every program once (one repetition of
# every benchmark), alternating bnorm's two builds with the peers; the peers run twice, as a
# user runs them and with allocation amortized. Every raw output lands in a run folder, from
# which bench/report.py makes every table of bench/RESULTS.md and the README.
#
#   bench/run.sh            7 rounds, into bench/runs/<date>-<commit>/ (the folder to commit)
#   bench/run.sh --quick    1 short round, no direct loops, into <build>/quick-run (scratch)
#   options: --no-peers, --sweep (also bnorm's size sweeps, native build), --rounds N,
#            --out DIR (the run folder), --no-covariate-shift (skip the examples' timing,
#            bench/covariate_shift_timing.sh, which a full run makes after the benchmarks)
#   bench/run.sh --publish  the same, then bench/report.py <run folder> --write: rewrites the
#                           tables of bench/RESULTS.md and the README from the new run, and
#                           docs/report.py --write (docs/results.md quotes the run's timings)
#
# Environment: BNORM_BENCH_BUILD_DIR (build folders, default build/bench of the checkout);
# BNORM_BENCH_JOBS (parallel compile jobs, default nproc); BNORM_BENCH_CPU (the core to pin
# to, default 0); BNORM_BENCH_REFERENCE_DIR (the direct-loop programs and the PyTorch
# experiments, default /work/shared/reference: skipped with a note when absent);
# BNORM_PEER_BLAS_DIR (the folder of the libblas.so.3 the peers load; default Debian's
# OpenBLAS folder when present); BNORM_PEER_OPENBLAS_CORETYPE (bench/openblas_coretype.sh).
# bnorm itself uses no BLAS.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
rounds=7
min_time=0.5
quick=0
peers=ON
sweep=0
covariate_shift=1
publish=0
out=
expect=
for argument in "$@"; do
  case $expect in
    rounds) rounds=$argument expect=; continue ;;
    out) out=$argument expect=; continue ;;
  esac
  case $argument in
    --quick) quick=1 rounds=1 min_time=0.05 covariate_shift=0 ;;
    --no-covariate-shift) covariate_shift=0 ;;
    --publish) publish=1 ;;
    --no-peers) peers=OFF ;;
    --sweep) sweep=1 ;;
    --rounds) expect=rounds ;;
    --out) expect=out ;;
    *) sed -n '2,25p' "$0" >&2; exit 2 ;;
  esac
done

build_root=${BNORM_BENCH_BUILD_DIR:-$root/build/bench}
reference=${BNORM_BENCH_REFERENCE_DIR:-/work/shared/reference}
commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
# "-dirty": uncommitted changes to anything but documentation and run folders.
dirty=$(git -C "$root" status --porcelain --untracked-files=no -- . ':!*.md' ':!bench/runs' 2>/dev/null |
  grep -q . && echo -dirty || true)
if [[ -z $out ]]; then
  if ((quick)); then out=$build_root/quick-run; else out=$here/runs/$(date -u +%Y-%m-%d)-$commit$dirty; fi
fi
rm -rf "$out"
mkdir -p "$out" "$build_root"
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)

# build NAME CMAKE_OPTIONS... -- TARGETS...: a Release build of the benchmarks in $build_root/NAME.
build() {
  local name=$1 dir=$build_root/$1 options=() targets=()
  shift
  while (($#)) && [[ $1 != -- ]]; do options+=("$1"); shift; done
  shift
  targets=("$@")
  echo "== building $name in $dir" >&2
  mkdir -p "$dir"
  cmake -S "$root" -B "$dir" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release "${options[@]}" \
    -DBNORM_BUILD_TESTS=OFF -DBNORM_BUILD_EXAMPLES=OFF -DBNORM_BUILD_BENCHMARKS=ON \
    -DBNORM_MPI=OFF -DBNORM_INSTALL=OFF >"$dir/configure.log" 2>&1 ||
    { cat "$dir/configure.log" >&2; exit 1; }
  grep -A2 'CMake Warning' "$dir/configure.log" >&2 || true
  cmake --build "$dir" -j "${BNORM_BENCH_JOBS:-$(nproc)}" --target "${targets[@]}" >"$dir/build.log" 2>&1 ||
    { grep -B2 -A8 'error' "$dir/build.log" >&2; exit 1; }
}
# The user's build: no flag at all (CMAKE_CXX_FLAGS emptied in case the cache holds one).
build default -DBNORM_NATIVE=OFF -DCMAKE_CXX_FLAGS= -DBNORM_BENCH_LIBTORCH=OFF -DBNORM_BENCH_DLIB=OFF \
  -- bench_workloads
native_targets=(bench_workloads)
((sweep)) && native_targets+=(bench_sweep)
build native -DBNORM_NATIVE=ON -DCMAKE_CXX_FLAGS= -DBNORM_BENCH_LIBTORCH=$peers -DBNORM_BENCH_DLIB=$peers \
  -- "${native_targets[@]}"
native=$build_root/native/bench
peer_programs=()
if [[ $peers == ON ]]; then
  for peer in libtorch dlib; do
    # bench/peers/CMakeLists.txt warns "... bench_<peer> is not built" (CMake may wrap it).
    configure_log=$(tr -d ' \n' <"$build_root/native/configure.log")
    if [[ $configure_log != *"bench_${peer}isnotbuilt"* ]]; then
      cmake --build "$build_root/native" -j "${BNORM_BENCH_JOBS:-$(nproc)}" --target "bench_$peer" >>"$build_root/native/build.log" 2>&1 ||
        { grep -B2 -A8 'error' "$build_root/native/build.log" >&2; exit 1; }
      peer_programs+=("$peer")
    else
      echo "note: $peer is not installed (Debian: libtorch-dev, libdlib-dev): its benchmarks are skipped" >&2
    fi
  done
else
  echo "note: --no-peers: the peers are skipped" >&2
fi

# The direct-loop programs (each prints "<workload> <median seconds of 7 timed repeats>"):
# not part of bnorm, built from where they are, in the build folder.
direct_programs=()
if ((quick)) || [[ $peers == OFF ]]; then
  :
elif [[ ! -d $reference ]]; then
  echo "note: $reference is absent (BNORM_BENCH_REFERENCE_DIR): the direct-loop cross-check is skipped" >&2
else
  if [[ " ${peer_programs[*]} " == *" libtorch "* && -f $reference/libtorch/CMakeLists.txt ]]; then
    cmake -S "$reference/libtorch" -B "$build_root/reference-libtorch" -DCMAKE_BUILD_TYPE=Release \
      >"$build_root/reference-libtorch.log" 2>&1 &&
      cmake --build "$build_root/reference-libtorch" >>"$build_root/reference-libtorch.log" 2>&1 &&
      direct_programs+=("libtorch $build_root/reference-libtorch/bench_torch")
  fi
  if [[ " ${peer_programs[*]} " == *" dlib "* && -f $reference/dlib/build.sh ]]; then
    mkdir -p "$build_root/reference-dlib"
    (cd "$build_root/reference-dlib" && sh "$reference/dlib/build.sh") >"$build_root/reference-dlib.log" 2>&1 &&
      direct_programs+=("dlib $build_root/reference-dlib/bench_dlib")
  fi
fi

# One thread everywhere, on one core.
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1
unset BNORM_ISA
pin=()
if command -v taskset >/dev/null && taskset -c "${BNORM_BENCH_CPU:-0}" true 2>/dev/null; then
  pin=(taskset -c "${BNORM_BENCH_CPU:-0}")
else
  echo "note: taskset is unavailable: the benchmarks are not pinned" >&2
fi
peer_blas=${BNORM_PEER_BLAS_DIR:-/usr/lib/x86_64-linux-gnu/openblas-pthread}
blas_env=()
if [[ -e $peer_blas/libblas.so.3 ]]; then
  blas_env=("LD_LIBRARY_PATH=$peer_blas${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}")
else
  echo "note: the peers use the system's libblas.so.3; for OpenBLAS install libopenblas0-pthread" \
       "or set BNORM_PEER_BLAS_DIR" >&2
fi
# The OpenBLAS kernels the peers get (BNORM_PEER_OPENBLAS_CORETYPE); the direct loop also
# measures the MLP steps with OpenBLAS's own choice.
source "$here/openblas_coretype.sh"
openblas_choice=$({ env "${blas_env[@]}" OPENBLAS_VERBOSE=2 OPENBLAS_NUM_THREADS=1 \
  "$native/peers/bench_${peer_programs[0]:-none}" --benchmark_filter=none 2>&1 || true; } |
  grep '^Core' | head -n 1 || true)
openblas_choice=${openblas_choice:-not known (no peer built)}
[[ -n $BNORM_PEER_OPENBLAS_CORETYPE ]] && blas_env+=("OPENBLAS_CORETYPE=$BNORM_PEER_OPENBLAS_CORETYPE")
# Allocation amortized: glibc never returns freed memory to the kernel (no mmap for large
# blocks, no trimming), so a freed 32 MiB tensor is reused without new page faults.
amortized_env=(MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=1099511627776 MALLOC_TOP_PAD_=268435456)

{
  echo "bnorm: $commit$dirty"
  echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  echo "mode: rounds=$rounds min_time=${min_time}s quick=$quick pin=${pin[*]:-none}"
  echo "peer environment: ${blas_env[*]:-system BLAS}"
  echo "amortized environment: ${amortized_env[*]}"
  echo "OpenBLAS's own core choice: $openblas_choice"
  echo "uptime at start: $(uptime)"
  lscpu | grep -E '^(Model name|CPU\(s\)|Thread|Core|Socket|Flags)' | cut -c1-200
  getconf -a | grep -E '^LEVEL[123]_[DU]?CACHE_SIZE|^LEVEL2_CACHE_SIZE|^LEVEL3_CACHE_SIZE' || true
  grep MemTotal /proc/meminfo
  uname -sr
  "${CXX:-c++}" --version | head -1
  dpkg-query -W -f='${Package} ${Version}\n' libeigen3-dev libbenchmark-dev libtorch-dev \
    libdlib-dev libopenblas0-pthread 2>/dev/null || true
} >"$out/machine.txt"

# run SERIES ROUND EXECUTABLE [ENV...] [-- BENCHMARK ARGS...]: one repetition of each benchmark.
run() {
  local series=$1 round=$2 executable=$3 environment=() arguments=()
  shift 3
  while (($#)) && [[ $1 != -- ]]; do environment+=("$1"); shift; done
  (($#)) && shift
  arguments=("$@")
  echo "== round $round: $series" >&2
  env "${environment[@]}" "${pin[@]}" "$executable" --benchmark_min_time="$min_time" \
    "${arguments[@]}" --benchmark_out="$out/$series-r$round.json" --benchmark_out_format=json \
    >>"$out/console.log" 2>&1 || { echo "$series failed: see $out/console.log" >&2; exit 1; }
}
# direct WORKLOAD: the direct loops of every peer on one workload, as a user runs them and
# with allocation amortized: "<workload> <seconds>" lines in direct-<peer>-<mode>.txt. One
# workload per round, so that the direct loops meet the load the rounds around them meet.
# With GNU time, each direct-loop process's minor page faults, user and system CPU seconds and
# wall seconds go to faults-<peer>-<mode>.txt: what amortizing the allocation changes, and
# the share of the core the process got.
direct_workloads=(bn_small bn_large bn_eval mlp64 mlp256 infer1)
timer=()
[[ -x /usr/bin/time ]] && timer=(/usr/bin/time -o "$out/time.tmp" -f '%R %U %S %e')
next_direct=0
direct() {
  local workload=$1 entry peer program mode environment
  for entry in "${direct_programs[@]}"; do
    peer=${entry%% *} program=${entry#* }
    for mode in user amortized; do
      environment=("${blas_env[@]}")
      [[ $mode == amortized ]] && environment+=("${amortized_env[@]}")
      echo "== direct loop: $peer $workload ($mode)" >&2
      env "${environment[@]}" "${timer[@]}" "${pin[@]}" "$program" "$workload" |
        grep "^$workload " >>"$out/direct-$peer-$mode.txt"
      if ((${#timer[@]})); then
        echo "$workload $(tail -n 1 "$out/time.tmp")" >>"$out/faults-$peer-$mode.txt"
      fi
    done
  done
}
for ((round = 1; round <= rounds; ++round)); do
  run bnorm-default "$round" "$build_root/default/bench/bench_workloads" -- --benchmark_filter='^bnorm/'
  for peer in "${peer_programs[@]}"; do
    run "$peer-user" "$round" "$native/peers/bench_$peer" "${blas_env[@]}"
  done
  run bnorm-native "$round" "$native/bench_workloads"
  for peer in "${peer_programs[@]}"; do
    run "$peer-amortized" "$round" "$native/peers/bench_$peer" "${blas_env[@]}" "${amortized_env[@]}"
  done
  if ((${#direct_programs[@]} && next_direct < ${#direct_workloads[@]})); then
    direct "${direct_workloads[next_direct]}"
    next_direct=$((next_direct + 1))
  fi
done
if ((sweep)); then run bnorm-sweep 1 "$native/bench_sweep"; fi

# The MLP steps once more with OpenBLAS's own choice of kernels (direct-<peer>-openblas_own.txt).
if [[ -n $BNORM_PEER_OPENBLAS_CORETYPE ]]; then
  for entry in "${direct_programs[@]}"; do
    peer=${entry%% *} program=${entry#* }
    for workload in mlp64 mlp256; do
      echo "== direct loop: $peer $workload (OpenBLAS's own kernel choice)" >&2
      env "${blas_env[@]/OPENBLAS_CORETYPE=*/OPENBLAS_VERBOSE=0}" "${pin[@]}" "$program" "$workload" |
        grep "^$workload " >>"$out/direct-$peer-openblas_own.txt"
    done
  done
fi
for ((; ${#direct_programs[@]} && next_direct < ${#direct_workloads[@]}; ++next_direct)); do direct "${direct_workloads[next_direct]}"; done
rm -f "$out/time.tmp"
if ((covariate_shift)); then "$here/covariate_shift_timing.sh" "$out"; fi
echo "uptime at end: $(uptime)" >>"$out/machine.txt"

python=/usr/bin/python3
[[ -x $python ]] || python=python3
"$python" "$here/report.py" "$out" | tee "$out/report.md"
echo "run folder: $out" >&2
if ((publish)); then "$python" "$here/report.py" "$out" --write && "$python" "$root/docs/report.py" --write; fi
