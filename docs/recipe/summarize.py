#!/usr/bin/python3
"""Turns docs/recipe/results.csv (written by run_recipe.py) into docs/recipe/README.md and
the flagship-recipe lines of the top-level README (between its flagship-recipe markers).

    /usr/bin/python3 docs/recipe/summarize.py
"""

import csv
import os
import statistics

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
RECIPE_EPOCHS = 20
BEGIN, END = "<!-- flagship-recipe:begin -->", "<!-- flagship-recipe:end -->"


def percent(values):
    return ", ".join(f"{100 * v:.2f}%" for v in values)


def main():
    with open(os.path.join(HERE, "results.csv")) as f:
        rows = list(csv.DictReader(f))
    epochs = int(RECIPE_EPOCHS)
    # Only runs that completed every epoch count.
    final, seconds = {}, {}
    for framework in ("bnorm", "pytorch"):
        runs = {int(r["seed"]) for r in rows if r["framework"] == framework}
        done = {seed: [r for r in rows if r["framework"] == framework and int(r["seed"]) == seed]
                for seed in runs}
        done = {seed: rs for seed, rs in done.items() if len(rs) == epochs}
        if done:
            final[framework] = {seed: float(rs[-1]["test_accuracy"])
                                for seed, rs in sorted(done.items())}
            seconds[framework] = statistics.mean(float(r["train_seconds"])
                                                 for rs in done.values() for r in rs)
    names = {"bnorm": "bnorm", "pytorch": "PyTorch 1.13"}

    lines = ["# The flagship recipe: bnorm and PyTorch, per seed", "",
             "Written by `docs/recipe/summarize.py` from `docs/recipe/results.csv` "
             "(made by `docs/recipe/run_recipe.py`); do not edit.", "",
             f"Test accuracy after epoch {epochs} (batch 128, SGD momentum 0.9, OneCycleLR "
             "peaking at 0.2, weight decay 5e-4 on the weight matrices only).", "",
             "| framework | " + " | ".join(f"seed {s}" for s in sorted(final["bnorm"])) +
             " | mean | seconds per epoch |",
             "|---" * (len(final["bnorm"]) + 3) + "|"]
    summary = []
    for framework in ("bnorm", "pytorch"):
        if framework not in final:
            lines.append(f"| {names[framework]} | not run |")
            summary.append(f"{names[framework]}: not run yet")
            continue
        values = list(final[framework].values())
        mean = statistics.mean(values)
        lines.append(f"| {names[framework]} | " + " | ".join(f"{100 * v:.2f}%" for v in values) +
                     f" | {100 * mean:.2f}% | {seconds[framework]:.1f} |")
        summary.append(f"{names[framework]} {100 * mean:.2f}% (mean of {len(values)} seeds: "
                       f"{percent(values)})")
    lines += ["", "Seconds per epoch are wall time on a shared 2-core machine with other jobs "
              "running: not a speed comparison. PyTorch ran on one thread with Debian's OpenBLAS "
              "(`libopenblas0-pthread`, `OPENBLAS_NUM_THREADS=1`); Debian's default BLAS for "
              "`python3-torch` is the reference implementation, which is much slower.", ""]
    with open(os.path.join(HERE, "README.md"), "w") as f:
        f.write("\n".join(lines))

    text = (f"{BEGIN}\ntest accuracy after {epochs} epochs: " + "; ".join(summary) +
            " ([per seed](docs/recipe/README.md)).\n" + END)
    readme_path = os.path.join(ROOT, "README.md")
    with open(readme_path) as f:
        readme = f.read()
    start, stop = readme.index(BEGIN), readme.index(END) + len(END)
    with open(readme_path, "w") as f:
        f.write(readme[:start] + text + readme[stop:])


if __name__ == "__main__":
    main()
