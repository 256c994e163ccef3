#!/usr/bin/env python3
"""The BatchNorm workloads before and after the streamed stores, from measure.sh's JSON files
(LABEL-BUILD-ROUND.json): per label, build and workload the median and minimum process CPU
time per iteration over every repetition, the memory traffic per iteration that the pass
count implies, and that traffic's rate against the copy benchmarks of the same files.
Usage: summarize.py DIR > results.md"""
import glob, json, os, statistics, sys
from collections import defaultdict

SHAPES = {"bn_small": (1024, 256), "bn_large": (4096, 2048), "bn_eval": (4096, 2048)}
MIB = 1 << 20
STREAMED = 16 * MIB  # layers/batch_norm_kernels.hpp, streaming_store_bytes


def traffic(label, workload):
    """Bytes an iteration moves between core and memory if nothing stays in cache. A plain
    store reads its line first (write-allocate), so it moves the matrix twice; a streamed
    store once. Training: reads x, x, dy, xhat, dy, xhat and writes y, xhat, dx. Eval: reads
    x, writes y."""
    features, batch = SHAPES[workload]
    matrix = 4 * features * batch
    write = 1 if label == "after" and matrix >= STREAMED else 2
    if workload == "bn_eval":
        return matrix * (1 + write)
    return matrix * (6 + 3 * write)


def main(folder):
    cpu = defaultdict(list)   # (label, build, benchmark) -> seconds
    real = defaultdict(list)
    loads = []
    for path in sorted(glob.glob(os.path.join(folder, "*-*-*.json"))):
        label, build, _ = os.path.basename(path)[:-5].split("-")
        data = json.load(open(path))
        loads.append(data["context"].get("load_avg", [0])[0])
        for run in data["benchmarks"]:
            if run.get("run_type") != "iteration":
                continue
            name = run["run_name"].split("/")[1]
            scale = {"us": 1e-6, "ms": 1e-3, "ns": 1e-9, "s": 1.0}[run["time_unit"]]
            cpu[(label, build, name)].append(run["cpu_time"] * scale)
            real[(label, build, name)].append(run["real_time"] * scale)
    labels = ["before", "after"]
    # The copy benchmarks' own count: a read and a write of 256 MiB per iteration.
    def copy_rate(benchmark, build):
        times = cpu[("before", build, benchmark)] + cpu[("after", build, benchmark)]
        return 2 * 256 * MIB / statistics.median(times)
    streaming = copy_rate("streaming_copy_256MiB", "native")
    print("| workload | build | before median | before min | after median | after min "
          "| after / before | counted GB/s before -> after | share of the streaming copy "
          "| traffic MiB before -> after | traffic GB/s before -> after |")
    print("|---" * 11 + "|")
    for workload in SHAPES:
        features, batch = SHAPES[workload]
        counted = 4 * features * batch * (2 if workload == "bn_eval" else 4)
        for build in ("default", "native"):
            b = cpu[("before", build, workload)]
            a = cpu[("after", build, workload)]
            mb, ma = statistics.median(b), statistics.median(a)
            tb, ta = traffic("before", workload), traffic("after", workload)
            print(f"| {workload} | {build} | {mb:.3g} | {min(b):.3g} | {ma:.3g} | {min(a):.3g} "
                  f"| {ma / mb:.2f} | {counted / mb / 1e9:.1f} -> {counted / ma / 1e9:.1f} "
                  f"| {counted / mb / streaming:.2f} -> {counted / ma / streaming:.2f} "
                  f"| {tb / MIB:.0f} -> {ta / MIB:.0f} "
                  f"| {tb / mb / 1e9:.1f} -> {ta / ma / 1e9:.1f} |")
    print()
    print(f"Seconds of process CPU time per iteration, {len(b)} repetitions per build and label. "
          f"Counted: the bytes the benchmark counts (training reads x, dy and writes y, dx once; "
          f"eval reads x, writes y), as a share of limits/streaming_copy_256MiB's counted rate "
          f"in the same files ({streaming / 1e9:.1f} GB/s, native builds; limits/copy_256MiB: "
          f"{copy_rate('copy_256MiB', 'default') / 1e9:.1f} GB/s default build, "
          f"{copy_rate('copy_256MiB', 'native') / 1e9:.1f} GB/s native). Traffic: what the "
          f"pass count implies if nothing stays in cache (bn_small's 1 MiB matrices partly "
          f"do). Load average at the start of each file: {min(loads):.1f} to {max(loads):.1f} "
          f"on 2 cores.")
    print()
    print("Median wall-clock seconds (inflated by the load: other processes held the core):")
    print()
    print("| workload | build | before | after |")
    print("|---|---|---|---|")
    for workload in SHAPES:
        for build in ("default", "native"):
            print(f"| {workload} | {build} | {statistics.median(real[('before', build, workload)]):.3g} "
                  f"| {statistics.median(real[('after', build, workload)]):.3g} |")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__)))
