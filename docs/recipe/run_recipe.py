#!/usr/bin/python3
"""Runs the README's flagship recipe in bnorm and in PyTorch for seeds 0, 1, 2 and writes
every epoch's test accuracy to docs/recipe/results.csv (the raw data of the README numbers;
summarize.py turns it into docs/recipe/README.md).

    /usr/bin/python3 docs/recipe/run_recipe.py BUILD_DIR/examples/fashion_mnist \
        [--frameworks bnorm,pytorch] [--seeds 0,1,2] [--workers 2]

PyTorch's runs were made with Debian's OpenBLAS (`apt-get install libopenblas0-pthread`) and
OPENBLAS_NUM_THREADS=1 in the environment: python3-torch otherwise gets the reference BLAS.

Each run's rows are appended to results.csv as soon as it ends (a run already in the file,
same framework and seed, is replaced), so a partial campaign keeps what it finished.

The recipe: 20 epochs, batch 128, SGD momentum 0.9, OneCycleLR peaking at lr 0.2,
weight decay 5e-4 on the weight matrices only.
"""

import argparse
import csv
import os
import re
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
RECIPE = ["--epochs", "20", "--batch", "128", "--lr", "0.2", "--weight-decay", "5e-4"]
SEEDS = [0, 1, 2]
FIELDS = ["framework", "seed", "epoch", "train_loss", "test_accuracy", "train_seconds"]
EPOCH = re.compile(r"^epoch\s+(\d+)\s+train_loss ([\d.]+)\s+test_accuracy ([\d.]+)\s+"
                   r"train_seconds ([\d.]+)")


def run(framework, command):
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    rows = []
    for line in output.splitlines():
        match = EPOCH.match(line)
        if match:
            rows.append([framework, *match.groups()])
    return rows


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("example")
    parser.add_argument("--frameworks", default="bnorm,pytorch")
    parser.add_argument("--seeds", default=",".join(map(str, SEEDS)))
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    jobs = []
    for seed in map(int, args.seeds.split(",")):
        for framework in args.frameworks.split(","):
            if framework == "bnorm":
                command = [args.example, *RECIPE, "--schedule", "onecycle", "--seed", str(seed)]
            else:
                command = ["/usr/bin/python3", os.path.join(HERE, "fashion_mnist_torch.py"),
                           *RECIPE, "--seed", str(seed)]
            jobs.append((framework, seed, command))
    path = os.path.join(HERE, "results.csv")
    lock = threading.Lock()

    def run_and_record(job):
        framework, seed, command = job
        rows = run(framework, command)
        with lock:
            kept = []
            if os.path.exists(path):
                with open(path, newline="") as f:
                    kept = [r for r in csv.DictReader(f)
                            if (r["framework"], int(r["seed"])) != (framework, seed)]
            with open(path, "w", newline="") as f:
                out = csv.DictWriter(f, FIELDS)
                out.writeheader()
                out.writerows(kept)
                for _, epoch, loss, accuracy, seconds in rows:
                    out.writerow(dict(zip(FIELDS, [framework, seed, epoch, loss, accuracy,
                                                   seconds])))

    with ThreadPoolExecutor(max_workers=args.workers) as pool:
        list(pool.map(run_and_record, jobs))


if __name__ == "__main__":
    main()
