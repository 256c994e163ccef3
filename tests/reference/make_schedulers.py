#!/usr/bin/python3
"""Writes the PyTorch reference sequences that tests/test_schedulers.cpp compares bnorm to.

    /usr/bin/python3 tests/reference/make_schedulers.py

It rewrites schedulers.txt next to this script, in the format of make_reference.py (read by
tests/support/reference.hpp). For each case NAME (the options are listed in a comment and
repeated in the test):

    NAME.lr         (steps + 1) x groups: every group's lr after the constructor (row 0) and
                    after each step() (PyTorch's get_last_lr())
    NAME.momentum   the same for SGD's momentum or Adam's beta1 (OneCycleLR only)
    NAME.metrics    steps x 1: the metrics passed to ReduceLROnPlateau.step()
"""

import os
import sys

import torch
from torch.optim import lr_scheduler

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from make_reference import Writer  # noqa: E402


def optimizer(kind, lrs, **options):
    """An optimizer over one scalar parameter per group, group i with lr lrs[i]."""
    groups = [{"params": [torch.zeros(1, dtype=torch.float64, requires_grad=True)], "lr": lr}
              for lr in lrs]
    return {"sgd": torch.optim.SGD, "adam": torch.optim.Adam}[kind](groups, **options)


def momentum_of(group):
    return group["betas"][0] if "betas" in group else group["momentum"]


def record(writer, name, description, opt, make, steps, metrics=None, momentum=False):
    writer.comment(f"{name}: {description}")
    scheduler = make(opt)
    lrs = [list(scheduler.get_last_lr()) if hasattr(scheduler, "_last_lr")
           else [g["lr"] for g in opt.param_groups]]
    momenta = [[momentum_of(g) for g in opt.param_groups]]
    for k in range(steps):
        opt.step()  # no gradients: changes nothing, but keeps the call order PyTorch expects
        if metrics is None:
            scheduler.step()
        else:
            scheduler.step(metrics[k])
        lrs.append([g["lr"] for g in opt.param_groups])
        momenta.append([momentum_of(g) for g in opt.param_groups])
    writer.matrix(f"{name}.lr", lrs)
    if momentum:
        writer.matrix(f"{name}.momentum", momenta)
    if metrics is not None:
        writer.matrix(f"{name}.metrics", [[m] for m in metrics])


def main():
    torch.set_default_dtype(torch.float64)
    w = Writer("bnorm PyTorch reference data: learning-rate schedulers")
    w.lines[1] = "# Written by tests/reference/make_schedulers.py; do not edit, rerun the script."
    two = [0.1, 0.02]

    record(w, "step", "SGD lr (0.1, 0.02); StepLR(step_size=3, gamma=0.5); 12 steps",
           optimizer("sgd", two), lambda o: lr_scheduler.StepLR(o, step_size=3, gamma=0.5), 12)
    record(w, "multistep", "SGD lr (0.1, 0.02); MultiStepLR(milestones=[2, 5, 5, 9], gamma=0.3);"
           " 12 steps", optimizer("sgd", two),
           lambda o: lr_scheduler.MultiStepLR(o, milestones=[2, 5, 5, 9], gamma=0.3), 12)
    record(w, "exponential", "SGD lr (0.1, 0.02); ExponentialLR(gamma=0.9); 10 steps",
           optimizer("sgd", two), lambda o: lr_scheduler.ExponentialLR(o, gamma=0.9), 10)
    record(w, "cosine", "SGD lr (0.1, 0.02); CosineAnnealingLR(T_max=10, eta_min=0.001);"
           " 45 steps", optimizer("sgd", two),
           lambda o: lr_scheduler.CosineAnnealingLR(o, T_max=10, eta_min=0.001), 45)
    record(w, "cosine7", "SGD lr 0.3; CosineAnnealingLR(T_max=7); 30 steps",
           optimizer("sgd", [0.3]), lambda o: lr_scheduler.CosineAnnealingLR(o, T_max=7), 30)
    record(w, "linear", "SGD lr (0.1, 0.02); LinearLR(); 8 steps", optimizer("sgd", two),
           lambda o: lr_scheduler.LinearLR(o), 8)
    record(w, "linear_decay", "SGD lr 0.2; LinearLR(start_factor=1.0, end_factor=0.1,"
           " total_iters=6); 9 steps", optimizer("sgd", [0.2]),
           lambda o: lr_scheduler.LinearLR(o, start_factor=1.0, end_factor=0.1, total_iters=6), 9)
    record(w, "onecycle", "SGD lr (0.1, 0.02), momentum 0.9; OneCycleLR(max_lr=0.5,"
           " total_steps=20); 20 steps", optimizer("sgd", two, momentum=0.9),
           lambda o: lr_scheduler.OneCycleLR(o, max_lr=0.5, total_steps=20), 20, momentum=True)
    record(w, "onecycle_adam", "Adam lr 0.001; OneCycleLR(max_lr=0.01, epochs=3,"
           " steps_per_epoch=7, pct_start=0.25, anneal_strategy='linear', three_phase=True,"
           " div_factor=10, final_div_factor=100, base_momentum=0.8, max_momentum=0.9);"
           " 21 steps", optimizer("adam", [0.001]),
           lambda o: lr_scheduler.OneCycleLR(
               o, max_lr=0.01, epochs=3, steps_per_epoch=7, pct_start=0.25,
               anneal_strategy="linear", three_phase=True, div_factor=10, final_div_factor=100,
               base_momentum=0.8, max_momentum=0.9), 21, momentum=True)
    record(w, "onecycle_fixed", "SGD lr 0.1, momentum 0.5; OneCycleLR(max_lr=1.0, total_steps=9,"
           " pct_start=0.0, cycle_momentum=False); 9 steps", optimizer("sgd", [0.1], momentum=0.5),
           lambda o: lr_scheduler.OneCycleLR(o, max_lr=1.0, total_steps=9, pct_start=0.0,
                                             cycle_momentum=False), 9, momentum=True)
    falling = [1.0, 0.9, 0.95, 0.95, 0.94, 0.96, 0.8, 0.81, 0.82, 0.83, 0.84, 0.85, 0.7, 0.7,
               0.7, 0.7, 0.7, 0.7, 0.7, 0.7]
    record(w, "plateau", "SGD lr (0.1, 0.02); ReduceLROnPlateau(patience=2, cooldown=1,"
           " factor=0.5, min_lr=0.01)", optimizer("sgd", two),
           lambda o: lr_scheduler.ReduceLROnPlateau(o, patience=2, cooldown=1, factor=0.5,
                                                    min_lr=0.01),
           len(falling), metrics=falling)
    rising = [0.5, 0.6, 0.6, 0.61, 0.605, 0.7, 0.7, 0.7, 0.75, 0.7, 0.7, 0.7, 0.7]
    record(w, "plateau_max_abs", "SGD lr 0.1; ReduceLROnPlateau(mode='max', threshold=0.02,"
           " threshold_mode='abs', patience=1)", optimizer("sgd", [0.1]),
           lambda o: lr_scheduler.ReduceLROnPlateau(o, mode="max", threshold=0.02,
                                                    threshold_mode="abs", patience=1),
           len(rising), metrics=rising)
    with open(os.path.join(HERE, "schedulers.txt"), "w") as f:
        f.write("\n".join(w.lines) + "\n")


if __name__ == "__main__":
    main()
