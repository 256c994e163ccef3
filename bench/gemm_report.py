#!/usr/bin/python3
"""Tables of bench/gemm.sh's JSON: the Dense products' GFLOP/s and the MLP step times.

    bench/gemm_report.py RESULTS_DIR

Per benchmark, the median over every round's median (process CPU time; the FLOP/s counter
is per CPU second). Standard library only.
"""

import json
import pathlib
import re
import statistics
import sys
from collections import defaultdict


def medians(files):
    """{benchmark name: [median of each file]}, over the aggregate rows named median."""
    values = defaultdict(list)
    for path in files:
        for row in json.loads(path.read_text())["benchmarks"]:
            if row.get("aggregate_name") == "median":
                values[row["run_name"]].append(row)
    return values


def main():
    folder = pathlib.Path(sys.argv[1])
    columns = [("eigen", "default", "Eigen, default build"), ("eigen", "v3", "Eigen, x86-64-v3"),
               ("eigen", "native", "Eigen, -march=native")]
    columns += [(isa, "default", f"bnorm {isa}, default build") for isa in ("baseline", "avx2", "avx512")]
    rates = {}
    for build in ("default", "native", "v3"):
        for name, rows in medians(sorted(folder.glob(f"gemm-{build}-*.json"))).items():
            rates[(name, build)] = statistics.median(row["FLOP/s"] for row in rows) / 1e9
    shapes = sorted({re.sub(r"^gemm/[^/]+/", "", name.removesuffix("/process_time"))
                     for name, _ in rates}, key=lambda s: (s.split("/")[1], int(s.split("/")[2]), s))
    print("GFLOP/s (median of the rounds' medians, process CPU time)\n")
    print("| product | " + " | ".join(title for *_, title in columns) + " | avx512 / native Eigen | avx2 / x86-64-v3 Eigen |")
    print("|---" * (len(columns) + 3) + "|")
    for shape in shapes:
        cells = []
        for isa, build, _ in columns:
            rate = rates.get((f"gemm/{isa}/{shape}/process_time", build))
            cells.append(f"{rate:.1f}" if rate else "-")
        ratios = []
        for isa, build in (("avx512", "native"), ("avx2", "v3")):
            ours = rates.get((f"gemm/{isa}/{shape}/process_time", "default"))
            eigen = rates.get((f"gemm/eigen/{shape}/process_time", build))
            ratios.append(f"{ours / eigen:.2f}" if ours and eigen else "-")
        print(f"| {shape} | " + " | ".join(cells + ratios) + " |")

    print("\nMLP training step (ms, median of the rounds' medians)\n")
    sides = [("before", "default build, before"), ("after", "default build, after"),
             ("native", "-march=native, after")]
    times = {}
    for side, _ in sides:
        for name, rows in medians(sorted(folder.glob(f"mlp-{side}-*.json"))).items():
            scale = {"us": 1e-3, "ms": 1.0, "ns": 1e-6, "s": 1e3}[rows[0]["time_unit"]]
            times[(name, side)] = statistics.median(row["cpu_time"] for row in rows) * scale
    present = [(side, title) for side, title in sides if any(s == side for _, s in times)]
    print("| workload | " + " | ".join(title for _, title in present) +
          " | before / after | after / native |")
    print("|---" * (len(present) + 3) + "|")
    for name in sorted({name for name, _ in times}):
        cells = [f"{times[(name, side)]:.2f}" if (name, side) in times else "-" for side, _ in present]
        ratios = []
        for numerator, denominator in (("before", "after"), ("after", "native")):
            a, b = times.get((name, numerator)), times.get((name, denominator))
            ratios.append(f"{a / b:.2f}" if a and b else "-")
        print(f"| {name.removesuffix('/process_time')} | " + " | ".join(cells + ratios) + " |")

if __name__ == "__main__":
    main()
