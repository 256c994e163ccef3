#!/usr/bin/python3
"""Markdown report of bnorm's benchmark JSON files (Google Benchmark's --benchmark_out).

    bench/report.py RESULTS_DIR/*.json [--clock cpu|real]

Reads the aggregates of bench_workloads, bench_sweep and the peers (bench_libtorch,
bench_dlib), and prints: the workload table (medians, ratio to the best peer of the same run
and to the best peer the issue recorded, target, met?), the machine limits, the bottleneck
figures of each workload, where a training step's time goes, and the size sweeps.
Standard library only.
"""

import argparse
import json
import math
import re
import sys
from collections import defaultdict

WORKLOADS = ["bn_small", "bn_large", "bn_eval", "mlp64", "mlp256", "infer1", "infer1_folded"]
PEERS = ["libtorch", "dlib"]

# From the performance issue: the best peer measured when the targets were set (seconds per
# iteration), and the target ratio bnorm / best peer. infer1_folded shares infer1's.
RECORDED_PEERS = {
    "bn_small": ("libtorch", 4.2e-4),
    "bn_large": ("libtorch", 4.2e-2),
    "bn_eval": ("dlib", 4.0e-3),
    "mlp64": ("libtorch", 1.19e-3),
    "mlp256": ("libtorch", 4.1e-3),
    "infer1": ("dlib", 6.4e-5),
}
TARGETS = {"bn_small": 0.25, "bn_large": 0.20, "bn_eval": 0.50, "mlp64": 0.55,
           "mlp256": 0.60, "infer1": 0.20}

# Work per iteration, as bench/workloads.hpp counts it.
BN_SHAPES = {"bn_small": (256, 1024), "bn_large": (2048, 4096), "bn_eval": (2048, 4096)}
MLP_BATCH = {"mlp64": 64, "mlp256": 256}
MLP_MULTIPLY_ADDS = 784 * 256 + 2 * 256 * 256 + 256 * 10  # per example, one pass
MLP_WEIGHTS = MLP_MULTIPLY_ADDS  # one weight per multiply-add (BatchNorm's are negligible)


def mlp_train_step_flops(batch):
    """GEMM FLOPs of a step: forward, weight gradients, and dx of all but the first layer."""
    return 2.0 * batch * (3 * MLP_MULTIPLY_ADDS - 784 * 256)


# The limits (bench_workloads' limits/...) that bound each workload; the highest measured
# one is used. bn_small's 5 MiB working set stays in cache; infer1 reads its weights from
# cache on every call.
BOUNDING_LIMITS = {
    "bn_small": ["copy_2MiB"],
    "bn_large": ["copy_256MiB", "streaming_copy_256MiB"],
    "bn_eval": ["copy_256MiB", "streaming_copy_256MiB"],
    "mlp64": ["sgemm_256x64x784"],
    "mlp256": ["sgemm_256x256x256"],
    "infer1": ["read_mlp_weights"],
}

TIME_UNITS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}


def base_workload(name):
    return "infer1" if name == "infer1_folded" else name


class Results:
    """Aggregates by benchmark name ("bnorm/bn_small"), and each file's context."""

    def __init__(self, paths, clock):
        self.clock = clock + "_time"
        self.aggregates = defaultdict(dict)  # name -> aggregate name -> entry
        self.contexts = []
        for path in paths:
            with open(path, encoding="utf-8") as stream:
                data = json.load(stream)
            self.contexts.append((path, data.get("context", {})))
            for entry in data.get("benchmarks", []):
                if entry.get("run_type") != "aggregate" or "error_occurred" in entry:
                    continue
                name = re.sub(r"/(process|real)_time$", "", entry["run_name"])
                self.aggregates[name][entry["aggregate_name"]] = entry

    def has(self, name):
        return "median" in self.aggregates.get(name, {})

    def seconds(self, name):
        """Median seconds per iteration, or None."""
        entry = self.aggregates.get(name, {}).get("median")
        if entry is None:
            return None
        return entry[self.clock] * TIME_UNITS[entry["time_unit"]]

    def noise(self, name):
        """Coefficient of variation over the repetitions, as a fraction, or None."""
        entry = self.aggregates.get(name, {}).get("cv")
        return None if entry is None else entry[self.clock]

    def counter(self, name, key):
        entry = self.aggregates.get(name, {}).get("median")
        return None if entry is None else entry.get(key)

    def rate(self, name, key):
        """A rate counter (bytes_per_second, FLOP/s) on the chosen clock: Google Benchmark
        divides by CPU time."""
        entry = self.aggregates.get(name, {}).get("median")
        if entry is None or key not in entry:
            return None
        return entry[key] * entry["cpu_time"] / entry[self.clock]

    def names(self, prefix):
        return [name for name in self.aggregates if name.startswith(prefix)]


def seconds_text(seconds, noise=None):
    if seconds is None:
        return "-"
    text = f"{seconds:.2e}"
    if noise is not None and not math.isnan(noise):
        text += f" ±{100 * noise:.0f}%"
    return text


def ratio_text(value):
    return "-" if value is None else f"{value:.3f}"


def met_text(ratio, target):
    if ratio is None or target is None:
        return "-"
    return "yes" if ratio <= target else "no"


def workload_table(results):
    peers = [peer for peer in PEERS if any(results.has(f"{peer}/{w}") for w in WORKLOADS)]
    header = (["workload", "bnorm"] + peers +
              ["best peer (this run)", "ratio", "target", "met?",
               "recorded best peer", "ratio to recorded", "met?"])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for workload in WORKLOADS:
        own = results.seconds(f"bnorm/{workload}")
        if own is None:
            continue
        base = base_workload(workload)
        peer_times = {peer: results.seconds(f"{peer}/{base}") for peer in peers}
        measured = {peer: time for peer, time in peer_times.items() if time is not None}
        best_peer = min(measured, key=measured.get) if measured else None
        ratio = own / measured[best_peer] if best_peer else None
        recorded_peer, recorded_time = RECORDED_PEERS[base]
        recorded_ratio = own / recorded_time
        target = TARGETS[base]
        row = [workload, seconds_text(own, results.noise(f"bnorm/{workload}"))]
        row += [seconds_text(peer_times[peer], results.noise(f"{peer}/{base}")) for peer in peers]
        row += [best_peer or "-", ratio_text(ratio), f"{target:.2f}", met_text(ratio, target),
                f"{recorded_peer} {recorded_time:.2e}", ratio_text(recorded_ratio),
                met_text(recorded_ratio, target)]
        lines.append("| " + " | ".join(row) + " |")
    return lines


def limits_table(results):
    lines = ["| limit | rate | median time |", "|---|---|---|"]
    for name in sorted(results.names("limits/")):
        bytes_rate = results.rate(name, "bytes_per_second")
        flop_rate = results.rate(name, "FLOP/s")
        rate = (f"{bytes_rate / 1e9:.1f} GB/s" if bytes_rate else
                f"{flop_rate / 1e9:.1f} GFLOP/s" if flop_rate else "-")
        lines.append(f"| {name[len('limits/'):]} | {rate} | "
                     f"{seconds_text(results.seconds(name), results.noise(name))} |")
    return lines


def workload_rate(results, library, workload):
    """(achieved rate, unit, work per iteration) of a workload, in the unit of its limit."""
    base = base_workload(workload)
    seconds = results.seconds(f"{library}/{workload}")
    if base in BN_SHAPES:
        batch, features = BN_SHAPES[base]
        work = (8 if base == "bn_eval" else 16) * batch * features  # API bytes
        unit = "GB/s"
    elif base == "infer1":
        work = 4 * MLP_WEIGHTS  # the weights, read once per call
        unit = "GB/s"
    else:
        work = mlp_train_step_flops(MLP_BATCH[base])
        unit = "GFLOP/s"
    return (None if seconds is None else work / seconds / 1e9), unit, work


def limit_rate(results, name):
    rate = (results.rate(f"limits/{name}", "bytes_per_second") or
            results.rate(f"limits/{name}", "FLOP/s"))
    return None if rate is None else rate / 1e9


def bottleneck_table(results):
    """Each workload's rate against the machine limit that bounds it, and the rate the
    target asks for (target x the recorded best peer's time)."""
    lines = ["| workload | library | achieved | bounding limit (this run) | share of limit | "
             "rate the target needs | needed / limit |", "|---|---|---|---|---|---|---|"]
    for workload in WORKLOADS:
        base = base_workload(workload)
        limits = [name for name in BOUNDING_LIMITS[base] if limit_rate(results, name)]
        limit_name = max(limits, key=lambda name: limit_rate(results, name)) if limits else None
        limit = limit_rate(results, limit_name) if limit_name else None
        for library in ["bnorm"] + ([] if workload != base else PEERS):
            achieved, unit, work = workload_rate(results, library, workload)
            if achieved is None:
                continue
            needed = work / (TARGETS[base] * RECORDED_PEERS[base][1]) / 1e9
            extra = f" ({results.seconds(f'{library}/{workload}') * 1e9:.0f} ns/call)" \
                if base == "infer1" else ""
            lines.append("| " + " | ".join([
                workload, library, f"{achieved:.1f} {unit}{extra}",
                f"{limit_name} {limit:.1f} {unit}" if limit else "-",
                f"{100 * achieved / limit:.0f}%" if limit else "-",
                f"{needed:.1f} {unit}" if library == "bnorm" else "",
                f"{needed / limit:.2f}" if limit and library == "bnorm" else ""]) + " |")
    return lines


PARTS = [("dense_fwd", "Dense forward (GEMM + keeping x)"), ("bn_fwd", "BatchNorm forward"),
         ("relu_fwd", "ReLU forward"), ("loss", "softmax cross-entropy"),
         ("dense_bwd", "Dense backward (dW, dx GEMMs)"), ("bn_bwd", "BatchNorm backward"),
         ("relu_bwd", "ReLU backward"), ("sgd", "SGD momentum step")]


def breakdown_table(results):
    """bnorm/mlp_breakdown: time per step in each kind of layer. The parts are timed on the
    wall clock; they are scaled by the step's CPU/wall ratio so that, on a loaded machine,
    they add up to the step's CPU time."""
    names = sorted(results.names("bnorm/mlp_breakdown/"),
                   key=lambda name: int(re.search(r"(\d+)$", name).group(1)))
    if not names:
        return []
    lines = ["| part | " + " | ".join(name.split("/")[-1] for name in names) + " |",
             "|" + "---|" * (len(names) + 1)]
    totals, scales = {}, {}
    for name in names:
        totals[name] = sum(results.counter(name, key) or 0.0 for key, _ in PARTS)
        entry = results.aggregates[name]["median"]
        scales[name] = entry["cpu_time"] / entry["real_time"]
    for key, label in PARTS:
        cells = []
        for name in names:
            seconds = results.counter(name, key)
            cells.append("-" if seconds is None else
                         f"{seconds * scales[name] * 1e6:.1f} us "
                         f"({100 * seconds / totals[name]:.0f}%)")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines.append("| sum of the parts | " + " | ".join(
        f"{totals[name] * scales[name] * 1e6:.1f} us" for name in names) + " |")
    return lines


def sweep_grid(results, kind):
    """ns per element of a BatchNorm sweep, features down, batch across."""
    cells = {}
    for name in results.names(f"bnorm/sweep/{kind}/"):
        match = re.search(r"features:(\d+)/batch:(\d+)", name)
        if match:
            features, batch = int(match.group(1)), int(match.group(2))
            cells[features, batch] = results.seconds(name) / (features * batch) * 1e9
    if not cells:
        return []
    batches = sorted({batch for _, batch in cells})
    lines = ["| features \\ batch | " + " | ".join(map(str, batches)) + " |",
             "|" + "---|" * (len(batches) + 1)]
    for features in sorted({features for features, _ in cells}):
        row = [f"{cells[features, batch]:.2f}" if (features, batch) in cells else "-"
               for batch in batches]
        lines.append(f"| {features} | " + " | ".join(row) + " |")
    return lines


def dense_table(results):
    kinds = ["dense_forward_train", "dense_forward_eval", "dense_backward"]
    shapes = {}
    for kind in kinds:
        for name in results.names(f"bnorm/sweep/{kind}/"):
            shape = name[len(f"bnorm/sweep/{kind}/"):]
            shapes.setdefault(shape, {})[kind] = name
    if not shapes:
        return []
    lines = ["| shape | " + " | ".join(f"{kind} (time, GFLOP/s)" for kind in kinds) + " |",
             "|" + "---|" * (len(kinds) + 1)]

    def sort_key(shape):
        return [int(number) for number in re.findall(r"\d+", shape)]

    for shape in sorted(shapes, key=sort_key):
        row = []
        for kind in kinds:
            name = shapes[shape].get(kind)
            flops = results.rate(name, "FLOP/s") if name else None
            row.append("-" if name is None else
                       f"{seconds_text(results.seconds(name))}, {flops / 1e9:.1f}")
        lines.append(f"| {shape} | " + " | ".join(row) + " |")
    return lines


def context_lines(results):
    lines = []
    for path, context in results.contexts:
        load = ", ".join(f"{value:.2f}" for value in context.get("load_avg", []))
        details = [context.get("library", "?"), f"run {context.get('date', '?')}",
                   f"load average at start {load}", f"build: {context.get('build', '?')}"]
        for key in ("eigen", "blas"):
            if key in context:
                details.append(f"{key}: {context[key]}")
        lines.append(f"- `{path.split('/')[-1]}`: " + "; ".join(details))
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", help="Google Benchmark JSON outputs")
    parser.add_argument("--clock", choices=["cpu", "real"], default="cpu",
                        help="median of CPU time (default: robust to a shared machine) "
                             "or of wall-clock time")
    arguments = parser.parse_args()
    results = Results(arguments.files, arguments.clock)

    sections = [
        (f"Workloads: median seconds per iteration ({arguments.clock} time, "
         "± coefficient of variation over the repetitions)", workload_table(results)),
        ("Machine limits (same run)", limits_table(results)),
        ("Bottlenecks", bottleneck_table(results)),
        ("Where a training step's time goes (bnorm/mlp_breakdown: each layer call timed; "
         "shares of the step, times scaled to CPU time)", breakdown_table(results)),
        ("BatchNorm train forward+backward, ns per element", sweep_grid(results, "bn_train")),
        ("BatchNorm eval forward, ns per element", sweep_grid(results, "bn_eval")),
        ("Dense layers (no bias)", dense_table(results)),
        ("Runs", context_lines(results)),
    ]
    for title, lines in sections:
        if len(lines) > 2 or (lines and not lines[0].startswith("|")):  # rows beyond a header
            print(f"### {title}\n")
            print("\n".join(lines))
            print()


if __name__ == "__main__":
    sys.exit(main())
