#!/usr/bin/python3
"""Runs the README's flagship recipe in bnorm and in PyTorch for seeds 0, 1, 2 and writes
every epoch's test accuracy to docs/recipe/results.csv (the raw data of the README numbers;
summarize.py turns it into docs/recipe/README.md).

    /usr/bin/python3 docs/recipe/run_recipe.py BUILD_DIR/examples/fashion_mnist

The recipe: 20 epochs, batch 128, SGD momentum 0.9, OneCycleLR peaking at lr 0.2,
weight decay 5e-4 on the weight matrices only.
"""

import csv
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
RECIPE = ["--epochs", "20", "--batch", "128", "--lr", "0.2", "--weight-decay", "5e-4"]
SEEDS = [0, 1, 2]
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
    example = sys.argv[1]
    jobs = []
    for seed in SEEDS:
        jobs.append((seed, "bnorm", [example, *RECIPE, "--schedule", "onecycle",
                                     "--seed", str(seed)]))
        jobs.append((seed, "pytorch", ["/usr/bin/python3", os.path.join(HERE,
                                       "fashion_mnist_torch.py"), *RECIPE, "--seed", str(seed)]))
    with ThreadPoolExecutor(max_workers=2) as pool:  # one bnorm and one torch run at a time
        results = list(pool.map(lambda job: (job[0], run(job[1], job[2])), jobs))
    with open(os.path.join(HERE, "results.csv"), "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["framework", "seed", "epoch", "train_loss", "test_accuracy",
                      "train_seconds"])
        for seed, rows in results:
            for framework, epoch, loss, accuracy, seconds in rows:
                out.writerow([framework, seed, epoch, loss, accuracy, seconds])


if __name__ == "__main__":
    main()
