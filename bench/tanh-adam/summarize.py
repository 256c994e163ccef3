#!/usr/bin/env python3
"""Prints results.md from the JSON files measure.sh wrote (the folder given, default '.').

Per file and benchmark: the minimum and the median real time of its repetitions. Per round:
the ratios of two builds measured in that round (the machine is shared, so only ratios
within a round are compared); then the median of those ratios over the rounds."""
import json
import pathlib
import statistics
import sys

folder = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ".")
benchmarks = ["tanh_adam/64", "tanh_adam/256"]
builds = ["before-default", "after-default", "before-native", "after-native"]
statistic = {"minimum": min, "median": statistics.median}


def load(label):
    data = json.loads((folder / f"{label}.json").read_text())
    times = {}
    for b in data["benchmarks"]:
        if b.get("run_type") == "iteration":
            times.setdefault(b["run_name"].removesuffix("/real_time"), []).append(b["real_time"])
    return times, data["context"]


rounds = sorted({int(p.stem.rsplit("-", 1)[1]) for p in folder.glob("before-default-*.json")})
print("# One training step of a Tanh + Adam MLP: before and after the kernels, default and native\n")
print("Made by `summarize.py` from the JSON files beside it (`measure.sh` ran them; README.md says how).")
print("Microseconds per step over 5 repetitions; every ratio is of two builds in the same round.\n")
print("| round | benchmark | load | before default | after default | before native | after native "
      "| after / before (default) | default / native (before) | default / native (after) |")
print("|---|---|---|---|---|---|---|---|---|---|")
ratios = {(s, b): {"speed-up": [], "before": [], "after": []} for s in statistic for b in benchmarks}
isas = {}
for r in rounds:
    runs = {}
    for label in builds:
        runs[label], context = load(f"{label}-{r}")
        isas[label] = context.get("isa", "(not recorded)")
        load_average = context.get("load_avg", [0])[0]
    for b in benchmarks:
        for name, f in statistic.items():
            bd, ad, bn, an = (f(runs[l][b]) for l in builds)
            ratios[(name, b)]["speed-up"].append(ad / bd)
            ratios[(name, b)]["before"].append(bd / bn)
            ratios[(name, b)]["after"].append(ad / an)
            print(f"| {r} | {b} ({name}) | {load_average:.1f} | {bd:.0f} | {ad:.0f} | {bn:.0f} | {an:.0f} "
                  f"| {ad / bd:.2f} | {bd / bn:.2f} | {ad / an:.2f} |")
print(f"\nThe median over the {len(rounds)} rounds of each ratio:\n")
print("| benchmark | statistic | after / before (default) | default / native (before) | default / native (after) |")
print("|---|---|---|---|---|")
for (name, b), values in ratios.items():
    m = {k: statistics.median(v) for k, v in values.items()}
    print(f"| {b} | {name} | {m['speed-up']:.2f} | {m['before']:.2f} | {m['after']:.2f} |")
print("\nThe variant each build chose (`isa` in its JSON context):\n")
for label, isa in isas.items():
    print(f"- {label}: {isa}")
print("\nThe default build of `after` with each variant forced (BNORM_ISA; the GEMM follows it "
      "too), one run each, minimum microseconds per step:\n")
print("| variant | " + " | ".join(benchmarks) + " |")
print("|---|" + "---|" * len(benchmarks))
for isa in ["baseline", "avx2", "avx512"]:
    runs, context = load(f"after-default-isa-{isa}")
    print(f"| {context.get('isa')} | " + " | ".join(f"{min(runs[b]):.0f}" for b in benchmarks) + " |")
