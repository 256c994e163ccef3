#!/usr/bin/python3
"""The flagship recipe of the README, in PyTorch 1.13, for comparison with bnorm's
examples/fashion_mnist.cpp run with the same options:

    784 -> [Linear 256 without bias -> BatchNorm1d -> ReLU] x 3 -> Linear 10
    CrossEntropyLoss, SGD(momentum 0.9), weight decay on the weight matrices only,
    OneCycleLR(max_lr = --lr) stepped every batch, shuffled batches (drop_last as bnorm:
    only a lone last example is dropped)

    /usr/bin/python3 docs/recipe/fashion_mnist_torch.py --epochs 20 --batch 128 --lr 0.2 \\
        --weight-decay 5e-4 --seed 0

Prints one line per epoch, as the bnorm example does, and test_accuracy=0.xxxx last.
Runs on one thread, as bnorm's example does by default.
"""

import argparse
import gzip
import os
import time

import numpy as np
import torch
from torch import nn

DATA = "/usr/share/datasets/fashion-mnist"


def read_idx(name):
    with gzip.open(os.path.join(DATA, name), "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def load(split):
    images = read_idx(f"{split}-images-idx3-ubyte.gz").reshape(-1, 784)
    labels = read_idx(f"{split}-labels-idx1-ubyte.gz")
    # bnorm's load_fashion_mnist scales pixels to [0, 1]
    return (torch.tensor(images, dtype=torch.float32) / 255.0,
            torch.tensor(labels, dtype=torch.int64))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--lr", type=float, default=0.2)
    parser.add_argument("--weight-decay", type=float, default=5e-4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)

    train_x, train_y = load("train")
    test_x, test_y = load("t10k")
    layers, inputs = [], 784
    for _ in range(3):
        layers += [nn.Linear(inputs, 256, bias=False), nn.BatchNorm1d(256), nn.ReLU()]
        inputs = 256
    net = nn.Sequential(*layers, nn.Linear(inputs, 10))
    decay = [p for p in net.parameters() if p.ndim > 1]
    no_decay = [p for p in net.parameters() if p.ndim <= 1]
    optimizer = torch.optim.SGD([{"params": decay}, {"params": no_decay, "weight_decay": 0.0}],
                                lr=args.lr, momentum=0.9, weight_decay=args.weight_decay)
    n = train_x.shape[0]
    drop_lone = n % args.batch == 1
    steps_per_epoch = n // args.batch + (0 if n % args.batch == 0 or drop_lone else 1)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=args.lr,
                                                   total_steps=args.epochs * steps_per_epoch)
    loss_fn = nn.CrossEntropyLoss()
    accuracy = 0.0
    for epoch in range(1, args.epochs + 1):
        net.train()
        start = time.perf_counter()
        order = torch.randperm(n)
        loss_sum = 0.0
        for k in range(steps_per_epoch):
            index = order[k * args.batch:(k + 1) * args.batch]
            optimizer.zero_grad()
            loss = loss_fn(net(train_x[index]), train_y[index])
            loss.backward()
            optimizer.step()
            schedule.step()
            loss_sum += loss.item() * len(index)
        seconds = time.perf_counter() - start
        net.eval()
        with torch.no_grad():
            accuracy = (net(test_x).argmax(1) == test_y).double().mean().item()
        print(f"epoch {epoch:2d}  train_loss {loss_sum / n:.4f}  test_accuracy {accuracy:.4f}  "
              f"train_seconds {seconds:.2f}", flush=True)
    print(f"test_accuracy={accuracy:.4f}")


if __name__ == "__main__":
    main()
