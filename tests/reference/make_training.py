#!/usr/bin/python3
"""Writes the PyTorch reference data for gradient clipping and parameter groups, compared by
tests/test_clip_grad.cpp and tests/test_parameter_group.cpp.

    /usr/bin/python3 tests/reference/make_training.py

It rewrites training.txt next to this script, in the format of make_reference.py (read by
tests/support/reference.hpp; the network, its layout and its helpers are that script's).

    clip.grad.<i>                 three gradients (4 x 3, 5 x 1, 2 x 6)
    clip.<case>.total_norm        clip_grad_norm_'s return value   (case: see CLIP_CASES)
    clip.<case>.grad.<i>          the gradients after clipping
    clip.value.grad.<i>           after clip_grad_value_(0.3)
    groups.init.*, groups.batch.<k>.{x,labels}, groups.eval_x
                                  the MLP of make_reference.py, its start and its batches
    groups.<run>.{losses,final.*,eval_output}
                                  six steps with two parameter groups: the weight matrices
                                  (lr 0.1, weight decay 1e-2) and the vectors, i.e. BatchNorm's
                                  gamma and beta and the biases (lr 0.05, no weight decay)
"""

import os
import sys

import torch
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from make_reference import (MLP_BATCH, MLP_SIZES, STEPS, Writer, draw_batches, make_mlp,  # noqa: E402
                            randn, randomize_batchnorm, train, write_batches, write_trajectory_results)

# name, max_norm, norm_type
CLIP_CASES = [("l2", 1.0, 2.0), ("l2_loose", 100.0, 2.0), ("l1", 2.0, 1.0),
              ("linf", 0.5, float("inf")), ("l3", 0.7, 3.0)]


def write_clipping(w, g):
    grads = [randn(g, 4, 3), randn(g, 5, 1), randn(g, 2, 6)]
    w.comment("clip: three gradients (matrices as bnorm sees them), clipped by clip_grad_norm_"
              " for " + ", ".join(f"{n} (max_norm {m}, norm_type {p})" for n, m, p in CLIP_CASES)
              + ", and by clip_grad_value_(0.3)")
    for i, grad in enumerate(grads):
        w.matrix(f"clip.grad.{i}", grad.numpy())

    def parameters():
        result = []
        for grad in grads:
            p = torch.zeros_like(grad, requires_grad=True)
            p.grad = grad.clone()
            result.append(p)
        return result

    for name, max_norm, norm_type in CLIP_CASES:
        ps = parameters()
        total = torch.nn.utils.clip_grad_norm_(ps, max_norm, norm_type)
        w.scalar(f"clip.{name}.total_norm", total.item())
        for i, p in enumerate(ps):
            w.matrix(f"clip.{name}.grad.{i}", p.grad.numpy())
    ps = parameters()
    torch.nn.utils.clip_grad_value_(ps, 0.3)
    for i, p in enumerate(ps):
        w.matrix(f"clip.value.grad.{i}", p.grad.numpy())


def write_groups(w, g):
    torch.manual_seed(4321)
    initial = make_mlp(torch.float64)
    randomize_batchnorm(initial, g)
    batches, eval_x = draw_batches(g)
    w.comment("groups: MLP " + " -> ".join(map(str, MLP_SIZES)) + f", batch {MLP_BATCH}, "
              f"{STEPS} steps; group 0 the weight matrices (lr 0.1, weight_decay 1e-2), group 1"
              " the vectors, p.ndim <= 1 (lr 0.05, weight_decay 0)")
    w.state("groups.init", initial)
    write_batches(w, "groups", batches, eval_x)

    def split(net):
        decay = [p for p in net.parameters() if p.ndim > 1]
        no_decay = [p for p in net.parameters() if p.ndim <= 1]
        return [{"params": decay}, {"params": no_decay, "lr": 0.05, "weight_decay": 0.0}]

    runs = [("sgd", lambda groups: torch.optim.SGD(groups, lr=0.1, momentum=0.9,
                                                   weight_decay=1e-2)),
            ("adamw", lambda groups: torch.optim.AdamW(groups, lr=0.1, weight_decay=1e-2))]
    for name, make_optimizer in runs:
        net = make_mlp(torch.float64)
        net.load_state_dict(initial.state_dict())
        optimizer = make_optimizer(split(net))
        w.comment(f"groups.{name}: {optimizer.__class__.__name__} {optimizer.defaults}")
        losses = train(net, optimizer, nn.CrossEntropyLoss(), batches)
        write_trajectory_results(w, f"groups.{name}", net, losses, eval_x)


def main():
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    w = Writer("bnorm PyTorch reference data: gradient clipping and parameter groups, float64")
    w.lines[1] = "# Written by tests/reference/make_training.py; do not edit, rerun the script."
    g = torch.Generator().manual_seed(31337)
    write_clipping(w, g)
    write_groups(w, g)
    w.save("training.txt")


if __name__ == "__main__":
    main()
