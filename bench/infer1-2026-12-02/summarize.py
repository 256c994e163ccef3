#!/usr/bin/env python3
"""results.md from the JSON files of measure.sh: per program and benchmark the median and
minimum of the wall-clock and the CPU time over the rounds, then the ratios that issue 10
sets targets for (default / native build, bnorm / dlib), and for the matrix_vector
benchmark (mv_before, mv_after) each offset's time over the aligned one's, from the medians.
Usage: summarize.py DIR > DIR/results.md"""
import glob, json, os, statistics, sys
from collections import defaultdict

def main(folder):
    real, cpu, load = defaultdict(list), defaultdict(list), []
    for path in sorted(glob.glob(os.path.join(folder, "*-r*.json"))):
        label = os.path.basename(path).rsplit("-r", 1)[0]
        data = json.load(open(path))
        load.append(data["context"]["load_avg"][0])
        for run in data["benchmarks"]:
            name = run["name"].removeprefix("bnorm/").removeprefix("dlib/")
            key = (label, name.removesuffix("/real_time"))
            scale = {"us": 1e-6, "ms": 1e-3, "ns": 1e-9, "s": 1.0}[run["time_unit"]]
            real[key].append(run["real_time"] * scale)
            cpu[key].append(run["cpu_time"] * scale)
    print("| program | benchmark | median wall s | min wall s | median CPU s | min CPU s | rounds |")
    print("|---|---|---|---|---|---|---|")
    for key in sorted(real):
        print(f"| {key[0]} | {key[1]} | {statistics.median(real[key]):.3g} | {min(real[key]):.3g} "
              f"| {statistics.median(cpu[key]):.3g} | {min(cpu[key]):.3g} | {len(real[key])} |")
    print()
    print("| ratio (medians) | wall | CPU |")
    print("|---|---|---|")
    med = lambda series, key: statistics.median(series[key])
    for stage in ("before", "after"):
        for bench in ("infer1", "infer1_folded"):
            d, n, p = (f"default_{stage}", bench), (f"native_{stage}", bench), ("dlib", "infer1")
            if d not in real or n not in real:
                continue
            print(f"| {stage} {bench}: default / native | {med(real, d) / med(real, n):.2f} "
                  f"| {med(cpu, d) / med(cpu, n):.2f} |")
            if p in real:
                for build, k in (("default", d), ("native", n)):
                    print(f"| {stage} {bench}: {build} / dlib | {med(real, k) / med(real, p):.2f} "
                          f"| {med(cpu, k) / med(cpu, p):.2f} |")
    for stage in ("before", "after"):
        for key in sorted(k for k in real if k[0] == f"mv_{stage}"):
            aligned = (key[0], key[1].rsplit(":", 1)[0] + ":0")
            if key != aligned and aligned in real:
                print(f"| {stage} {key[1]}: / offset 0 | {med(real, key) / med(real, aligned):.2f} "
                      f"| {med(cpu, key) / med(cpu, aligned):.2f} |")
    print()
    print(f"Load average (1 min) at the programs' starts: median {statistics.median(load):.1f}, "
          f"from {min(load):.1f} to {max(load):.1f}.")

if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__)))
