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
BEGIN, END = "<!-- flagship-recipe:begin -->", "<!-- flagship-recipe:end -->"


def main():
    with open(os.path.join(HERE, "results.csv")) as f:
        rows = list(csv.DictReader(f))
    frameworks = ["bnorm", "pytorch"]
    last_epoch = max(int(r["epoch"]) for r in rows)
    final = {fw: {int(r["seed"]): float(r["test_accuracy"]) for r in rows
                  if r["framework"] == fw and int(r["epoch"]) == last_epoch}
             for fw in frameworks}
    seconds = {fw: statistics.mean(float(r["train_seconds"]) for r in rows
                                   if r["framework"] == fw) for fw in frameworks}
    seeds = sorted(final["bnorm"])
    mean = {fw: statistics.mean(final[fw].values()) for fw in frameworks}

    lines = ["# The flagship recipe: bnorm and PyTorch, per seed", "",
             "Written by `docs/recipe/summarize.py` from `docs/recipe/results.csv` "
             "(made by `docs/recipe/run_recipe.py`); do not edit.", "",
             f"Test accuracy after epoch {last_epoch} (20 epochs, batch 128, SGD momentum 0.9, "
             "OneCycleLR peaking at 0.2, weight decay 5e-4 on the weight matrices only).", "",
             "| seed | bnorm | PyTorch |", "|---|---|---|"]
    for seed in seeds:
        lines.append(f"| {seed} | {100 * final['bnorm'][seed]:.2f}% | "
                     f"{100 * final['pytorch'][seed]:.2f}% |")
    lines.append(f"| mean | {100 * mean['bnorm']:.2f}% | {100 * mean['pytorch']:.2f}% |")
    lines += ["", f"Mean training time per epoch on the shared test machine (2 cores, other jobs "
              f"running): bnorm {seconds['bnorm']:.1f} s, PyTorch {seconds['pytorch']:.1f} s.", ""]
    with open(os.path.join(HERE, "README.md"), "w") as f:
        f.write("\n".join(lines))

    summary = (f"{BEGIN}\nTest accuracy after {last_epoch} epochs, mean of seeds "
               f"{', '.join(map(str, seeds))}: **bnorm {100 * mean['bnorm']:.2f}%** "
               f"(" + ", ".join(f"{100 * final['bnorm'][s]:.2f}%" for s in seeds) + "), "
               f"PyTorch 1.13 {100 * mean['pytorch']:.2f}% ("
               + ", ".join(f"{100 * final['pytorch'][s]:.2f}%" for s in seeds) +
               "); per-seed table in [docs/recipe/README.md](docs/recipe/README.md).\n" + END)
    readme_path = os.path.join(ROOT, "README.md")
    with open(readme_path) as f:
        readme = f.read()
    start, stop = readme.index(BEGIN), readme.index(END) + len(END)
    with open(readme_path, "w") as f:
        f.write(readme[:start] + summary + readme[stop:])


if __name__ == "__main__":
    main()
