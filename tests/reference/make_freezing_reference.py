#!/usr/bin/python3
"""Writes freezing.txt, the PyTorch reference data for freezing (tests/test_pytorch_parity.cpp).

Run from anywhere with Debian's Python and its PyTorch (the data was made with torch 1.13):

    /usr/bin/python3 tests/reference/make_freezing_reference.py

The format and the MLP are make_reference.py's (this script imports them). Three runs from
one stored initial state, each with SGD(lr 0.1, momentum 0.9, weight_decay 1e-3):

  * freeze.params: "0.weight" (a Dense weight) and "4.bias" (a BatchNorm beta) have
    requires_grad = False, so they get no gradient, no weight decay and no update;
  * freeze.stats: the BatchNorm at index 1 is in eval mode inside the training model
    (fine-tuning with frozen statistics): it normalizes with its running statistics, leaves
    them unchanged, and its gamma and beta still learn;
  * saliency: the gradient of the loss with respect to the input of the network in eval mode.
"""

import torch
from torch import nn

from make_reference import MLP_BATCH, MLP_SIZES, STEPS, Writer, draw_batches, make_mlp, randn, \
    randomize_batchnorm, write_batches, write_trajectory_results

FROZEN_PARAMETERS = ("0.weight", "4.bias")
FROZEN_STATISTICS_LAYER = 1


def sgd(parameters):
    return torch.optim.SGD(parameters, lr=0.1, momentum=0.9, weight_decay=1e-3)


def train(net, optimizer, batches, before_step=lambda net: None):
    losses = []
    for x, labels in batches:
        net.train()
        before_step(net)
        optimizer.zero_grad()
        loss = nn.CrossEntropyLoss()(net(x), labels)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def main():
    torch.set_num_threads(1)  # reductions in one fixed order
    torch.use_deterministic_algorithms(True)
    w = Writer("bnorm PyTorch reference data: freezing, float64")
    g = torch.Generator().manual_seed(4242)
    torch.manual_seed(4321)
    initial = make_mlp(torch.float64)
    randomize_batchnorm(initial, g)
    # Running statistics away from their defaults, so that frozen ones are visibly used.
    with torch.no_grad():
        for module in initial:
            if isinstance(module, nn.BatchNorm1d):
                n = module.num_features
                module.running_mean.copy_(0.3 * randn(g, n))
                module.running_var.copy_(0.5 + torch.rand(n, generator=g, dtype=torch.float64))
    batches, eval_x = draw_batches(g)
    w.comment("make_reference.py's MLP, batch " + str(MLP_BATCH) + ", " + str(STEPS) +
              " steps of SGD(lr 0.1, momentum 0.9, weight_decay 1e-3), CrossEntropyLoss")
    w.state("freeze.init", initial)
    write_batches(w, "freeze", batches, eval_x)

    net = make_mlp(torch.float64)
    net.load_state_dict(initial.state_dict())
    for name, parameter in net.named_parameters():
        parameter.requires_grad_(name not in FROZEN_PARAMETERS)
    w.comment("freeze.params: requires_grad False for " + ", ".join(FROZEN_PARAMETERS))
    losses = train(net, sgd([p for p in net.parameters() if p.requires_grad]), batches)
    write_trajectory_results(w, "freeze.params", net, losses, eval_x)

    net = make_mlp(torch.float64)
    net.load_state_dict(initial.state_dict())
    w.comment(f"freeze.stats: layer {FROZEN_STATISTICS_LAYER} (BatchNorm1d) in eval mode")
    losses = train(net, sgd(net.parameters()), batches,
                   lambda net: net[FROZEN_STATISTICS_LAYER].eval())
    write_trajectory_results(w, "freeze.stats", net, losses, eval_x)

    net = make_mlp(torch.float64)
    net.load_state_dict(initial.state_dict())
    net.eval()
    x = batches[0][0].clone().requires_grad_(True)
    nn.CrossEntropyLoss()(net(x), batches[0][1]).backward()
    w.comment("saliency: d loss / d x of batch 0 through the network in eval mode")
    w.activation("saliency.dx", x.grad)
    w.gradients("saliency.grad", net)
    w.save("freezing.txt")


if __name__ == "__main__":
    main()
