#!/usr/bin/python3
"""Writes the PyTorch reference data that tests/test_pytorch_parity.cpp compares bnorm to.

Run from anywhere with Debian's Python and its PyTorch (the data was made with torch 1.13):

    /usr/bin/python3 tests/reference/make_reference.py

It rewrites layers.txt and trajectories.txt next to this script. Seeds are fixed and torch
runs on one thread, so a rerun with the same torch reproduces the files byte for byte.

File format (read by tests/support/reference.hpp, no dependencies):

    # comment                 ignored
    @key value...             metadata, e.g. "@torch_version 1.13.0"
    name rows cols            a block header, followed by rows * cols numbers
    v v v ...                 (any whitespace; repr() of a double, so exactly round-trippable)

Every block is a matrix M as bnorm sees it, with shape rows x cols, and its numbers are listed
in COLUMN-MAJOR order: M(0,0), M(1,0), ..., M(rows-1,0), M(0,1), ...  This is bnorm's storage
order. What M is, for each kind of tensor:

  * activations, inputs, gradients of activations: a torch tensor t of shape (batch, features)
    is M = t.T, of shape features x batch; M in column-major order is exactly t in C order.
  * a Linear weight W of torch shape (out, in): M = W itself, out x in (bnorm's Dense weight
    is out x in too), so the numbers are W.T in C order.
  * vectors (biases, BatchNorm gamma/beta, running statistics, per-step losses, labels):
    M is n x 1.
  * scalars (a loss value): 1 x 1.
  * class labels: n x 1, holding integers.

Names are dotted paths. Parameters and buffers of a network keep PyTorch's state_dict keys
("0.weight", "1.bias", "1.running_mean"), which are also the names bnorm's
Sequential::parameters() gives, so the reader can load a network by name.

Everything is float64, except the blocks under "f32." in trajectories.txt: a float32 run whose
numbers are float32 values written exactly as doubles.
"""

import os
import sys

import numpy as np
import torch
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
VALUES_PER_LINE = 6


class Writer:
    """Collects named blocks and writes them in the format above."""

    def __init__(self, title):
        self.lines = [
            f"# {title}",
            "# Written by tests/reference/make_reference.py; do not edit, rerun the script.",
            "# Blocks: 'name rows cols' then rows*cols numbers of the bnorm matrix, column-major.",
            f"@torch_version {torch.__version__}",
        ]
        self.names = set()

    def meta(self, key, value):
        self.lines.append(f"@{key} {value}")

    def comment(self, text):
        self.lines.append(f"# {text}")

    def matrix(self, name, m):
        """m: array-like already in bnorm's index layout (rows x cols)."""
        assert name not in self.names, f"duplicate block {name}"
        assert " " not in name
        self.names.add(name)
        m = np.asarray(m, dtype=np.float64)
        if m.ndim == 0:
            m = m.reshape(1, 1)
        elif m.ndim == 1:
            m = m.reshape(-1, 1)
        assert m.ndim == 2
        rows, cols = m.shape
        self.lines.append(f"{name} {rows} {cols}")
        values = [repr(float(v)) for v in m.flatten(order="F")]
        for start in range(0, len(values), VALUES_PER_LINE):
            self.lines.append(" ".join(values[start:start + VALUES_PER_LINE]))

    # Convenience wrappers that encode the layout conventions in one place.
    def activation(self, name, t):
        """t: torch tensor (batch, features) -> features x batch."""
        assert t.dim() == 2
        self.matrix(name, t.detach().double().numpy().T)

    def vector(self, name, t):
        self.matrix(name, torch.as_tensor(t).detach().double().reshape(-1).numpy())

    def scalar(self, name, value):
        self.matrix(name, np.array([[float(value)]]))

    def labels(self, name, t):
        self.matrix(name, t.detach().double().numpy())

    def state(self, prefix, module):
        """Every parameter and buffer (but num_batches_tracked) under its state_dict key."""
        for key, t in module.state_dict().items():
            if key.endswith("num_batches_tracked"):
                continue
            if t.dim() == 2:  # Linear weight (out, in): bnorm's layout is the same matrix
                self.matrix(f"{prefix}.{key}", t.detach().double().numpy())
            else:
                self.vector(f"{prefix}.{key}", t)

    def gradients(self, prefix, module):
        for key, p in module.named_parameters():
            if p.dim() == 2:
                self.matrix(f"{prefix}.{key}", p.grad.double().numpy())
            else:
                self.vector(f"{prefix}.{key}", p.grad)

    def save(self, filename):
        path = os.path.join(HERE, filename)
        with open(path, "w") as out:
            out.write("\n".join(self.lines) + "\n")
        print(f"wrote {path} ({os.path.getsize(path)} bytes, {len(self.names)} blocks)")


def randn(generator, *shape, dtype=torch.float64):
    return torch.randn(*shape, generator=generator, dtype=dtype)


# ----------------------------------------------------------------------------------------
# a. Single layers, float64, forward and backward.
# ----------------------------------------------------------------------------------------

def forward_backward(module, x, dy):
    """y = module(x) in training mode, then dx for upstream gradient dy."""
    x = x.clone().requires_grad_(True)
    y = module(x)
    y.backward(dy)
    return y.detach(), x.grad.detach()


def write_dense_cases(w, g):
    batch, n_in, n_out = 6, 7, 5
    for case, bias in (("dense.bias", True), ("dense.nobias", False)):
        layer = nn.Linear(n_in, n_out, bias=bias).double()
        with torch.no_grad():
            layer.weight.copy_(randn(g, n_out, n_in))
            if bias:
                layer.bias.copy_(randn(g, n_out))
        x = randn(g, batch, n_in)
        dy = randn(g, batch, n_out)
        y, dx = forward_backward(layer, x, dy)
        w.matrix(f"{case}.weight", layer.weight.detach().numpy())
        if bias:
            w.vector(f"{case}.bias", layer.bias)
        w.activation(f"{case}.x", x)
        w.activation(f"{case}.dy", dy)
        w.activation(f"{case}.y", y)
        w.activation(f"{case}.dx", dx)
        w.matrix(f"{case}.dweight", layer.weight.grad.numpy())
        if bias:
            w.vector(f"{case}.dbias", layer.bias.grad)


def write_batchnorm_cases(w, g):
    # Three training batches of different sizes (the unbiased factor m / (m - 1) changes,
    # and 2 is the smallest legal batch), then an eval batch. Features have different
    # offsets and scales, so the running statistics are far from their initial 0 and 1.
    configs = (
        ("batchnorm.m01", 6, 0.1, 1e-5, (10, 5, 2)),
        ("batchnorm.m03", 4, 0.3, 1e-3, (8, 3, 12)),
    )
    for case, features, momentum, eps, batches in configs:
        layer = nn.BatchNorm1d(features, eps=eps, momentum=momentum).double()
        with torch.no_grad():
            layer.weight.copy_(1.0 + 0.5 * randn(g, features))
            layer.bias.copy_(0.3 * randn(g, features))
        offset = 3.0 * randn(g, features)
        scale = torch.exp(randn(g, features))
        w.scalar(f"{case}.momentum", momentum)
        w.scalar(f"{case}.eps", eps)
        w.vector(f"{case}.gamma", layer.weight)
        w.vector(f"{case}.beta", layer.bias)
        w.scalar(f"{case}.batches", len(batches))
        layer.train()
        for k, batch in enumerate(batches):
            x = offset + scale * randn(g, batch, features)
            dy = randn(g, batch, features)
            layer.zero_grad()
            y, dx = forward_backward(layer, x, dy)
            w.activation(f"{case}.{k}.x", x)
            w.activation(f"{case}.{k}.dy", dy)
            w.activation(f"{case}.{k}.y", y)
            w.activation(f"{case}.{k}.dx", dx)
            w.vector(f"{case}.{k}.dgamma", layer.weight.grad)
            w.vector(f"{case}.{k}.dbeta", layer.bias.grad)
            w.vector(f"{case}.{k}.running_mean", layer.running_mean)
            w.vector(f"{case}.{k}.running_var", layer.running_var)
        layer.eval()
        x = offset + scale * randn(g, 7, features)
        with torch.no_grad():
            y = layer(x)
        w.activation(f"{case}.eval.x", x)
        w.activation(f"{case}.eval.y", y)

    # A large common offset: the spread (about 1) is tiny next to the mean (1e4), where a
    # naive E[x^2] - E[x]^2 variance would lose most of its digits.
    case = "batchnorm.offset"
    layer = nn.BatchNorm1d(3).double()
    x = 1e4 + randn(g, 9, 3)
    dy = randn(g, 9, 3)
    y, dx = forward_backward(layer, x, dy)
    for name, t in (("x", x), ("dy", dy), ("y", y), ("dx", dx)):
        w.activation(f"{case}.{name}", t)
    w.vector(f"{case}.dgamma", layer.weight.grad)
    w.vector(f"{case}.dbeta", layer.bias.grad)
    w.vector(f"{case}.running_mean", layer.running_mean)
    w.vector(f"{case}.running_var", layer.running_var)


def write_activation_cases(w, g):
    batch, features = 7, 6
    special = torch.tensor([0.0, -0.0, 40.0, -40.0, 100.0, -100.0, 20.0, -20.0, 1e-8, -1e-8],
                           dtype=torch.float64)
    cases = (
        ("relu", nn.ReLU()),
        ("leaky_relu_0.1", nn.LeakyReLU(0.1)),
        ("leaky_relu_-0.2", nn.LeakyReLU(-0.2)),
        ("sigmoid", nn.Sigmoid()),
        ("tanh", nn.Tanh()),
        ("identity", nn.Identity()),
    )
    for case, module in cases:
        x = 3.0 * randn(g, batch, features)
        x.view(-1)[: special.numel()] = special  # exact zeros (the kink) and saturation
        dy = randn(g, batch, features)
        y, dx = forward_backward(module, x, dy)
        w.activation(f"{case}.x", x)
        w.activation(f"{case}.dy", dy)
        w.activation(f"{case}.y", y)
        w.activation(f"{case}.dx", dx)


def write_loss_cases(w, g):
    # Cross-entropy: ordinary logits plus columns with huge values, where exp() would
    # overflow without the max subtraction. The huge ones are integers, exact in float too.
    classes, batch = 5, 7
    logits = 2.0 * randn(g, batch, classes)
    logits[2] = torch.tensor([1000.0, 0.0, -1000.0, 999.0, 5.0])
    logits[4] = torch.tensor([-1000.0, -1001.0, -1000.5, -2000.0, -999.0])
    logits[5] = torch.tensor([1000.0, 1000.0, 1000.0, 1000.0, 1000.0])
    labels = torch.randint(0, classes, (batch,), generator=g)
    labels[2] = 3  # not the largest logit: a non-trivial loss
    logits.requires_grad_(True)
    loss = nn.CrossEntropyLoss()(logits, labels)
    loss.backward()
    w.activation("cross_entropy.logits", logits)
    w.labels("cross_entropy.labels", labels)
    w.scalar("cross_entropy.loss", loss.item())
    w.activation("cross_entropy.dlogits", logits.grad)

    features, batch = 3, 6
    prediction = randn(g, batch, features).requires_grad_(True)
    target = randn(g, batch, features)
    loss = nn.MSELoss()(prediction, target)
    loss.backward()
    w.activation("mse.prediction", prediction)
    w.activation("mse.target", target)
    w.scalar("mse.loss", loss.item())
    w.activation("mse.dprediction", prediction.grad)


# ----------------------------------------------------------------------------------------
# b, c. Training trajectories.
# ----------------------------------------------------------------------------------------

STEPS = 6
MLP_SIZES = (20, 16, 16, 5)
MLP_BATCH = 8

# name, optimizer factory. Every one starts from the same parameters and sees the same
# batches, so those are stored once under "mlp.".
OPTIMIZERS = (
    ("sgd_momentum", lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=1e-3)),
    ("sgd_nesterov", lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True,
                                               weight_decay=1e-4)),
    ("sgd_plain", lambda p: torch.optim.SGD(p, lr=0.1)),
    ("sgd_dampening", lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, dampening=0.5)),
    ("adam", lambda p: torch.optim.Adam(p, lr=1e-2, weight_decay=1e-3)),
    # beta2 0.9 lets the second moment fall within six steps, so the amsgrad maximum matters
    # (with 0.999 it changes the weights by only 3e-5 relative).
    ("adam_amsgrad", lambda p: torch.optim.Adam(p, lr=1e-2, betas=(0.8, 0.9), amsgrad=True)),
    ("adamw", lambda p: torch.optim.AdamW(p, lr=1e-2, weight_decay=1e-2)),
    ("rmsprop", lambda p: torch.optim.RMSprop(p, lr=1e-2)),
    ("rmsprop_centered", lambda p: torch.optim.RMSprop(p, lr=1e-2, centered=True, momentum=0.9,
                                                       weight_decay=1e-3)),
)


def make_mlp(dtype):
    """20 -> [Dense 16 no bias, BN, ReLU] -> [Dense 16 no bias, BN, Tanh] -> Dense 5."""
    n0, n1, n2, n3 = MLP_SIZES
    return nn.Sequential(
        nn.Linear(n0, n1, bias=False), nn.BatchNorm1d(n1), nn.ReLU(),
        nn.Linear(n1, n2, bias=False), nn.BatchNorm1d(n2), nn.Tanh(),
        nn.Linear(n2, n3),
    ).to(dtype)


def make_regression_net(dtype):
    """12 -> Dense 10 -> LeakyReLU(0.1) -> Dense 10 no bias -> BN(0.3, 1e-3) -> Sigmoid
    -> Dropout(0) -> Dense 3 -> Identity. Dropout with p = 0 is deterministic, so it can
    appear in a reference run."""
    return nn.Sequential(
        nn.Linear(12, 10), nn.LeakyReLU(0.1),
        nn.Linear(10, 10, bias=False), nn.BatchNorm1d(10, eps=1e-3, momentum=0.3), nn.Sigmoid(),
        nn.Dropout(0.0), nn.Linear(10, 3), nn.Identity(),
    ).to(dtype)


def randomize_batchnorm(net, g):
    """Non-default gamma and beta, so that loading them is actually tested."""
    with torch.no_grad():
        for module in net:
            if isinstance(module, nn.BatchNorm1d):
                n = module.num_features
                module.weight.copy_(1.0 + 0.2 * randn(g, n, dtype=module.weight.dtype))
                module.bias.copy_(0.1 * randn(g, n, dtype=module.bias.dtype))


def train(net, optimizer, criterion, batches):
    losses = []
    net.train()
    for x, target in batches:
        optimizer.zero_grad()
        loss = criterion(net(x), target)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def draw_batches(g):
    """STEPS training batches (inputs, labels) of the MLP and one eval input, drawn from g."""
    n0, _, _, n3 = MLP_SIZES
    batches = [(randn(g, MLP_BATCH, n0), torch.randint(0, n3, (MLP_BATCH,), generator=g))
               for _ in range(STEPS)]
    return batches, randn(g, MLP_BATCH, n0)


def write_batches(w, prefix, batches, eval_x):
    for k, (x, labels) in enumerate(batches):
        w.activation(f"{prefix}.batch.{k}.x", x)
        w.labels(f"{prefix}.batch.{k}.labels", labels)
    w.activation(f"{prefix}.eval_x", eval_x)


def write_trajectory_results(w, prefix, net, losses, eval_x):
    w.vector(f"{prefix}.losses", torch.tensor(losses, dtype=torch.float64))
    w.state(f"{prefix}.final", net)
    net.eval()
    with torch.no_grad():
        w.activation(f"{prefix}.eval_output", net(eval_x))


def write_mlp_trajectories(w, g):
    torch.manual_seed(1234)
    initial = make_mlp(torch.float64)
    randomize_batchnorm(initial, g)
    batches, eval_x = draw_batches(g)

    w.comment("MLP " + " -> ".join(map(str, MLP_SIZES)) + f", batch {MLP_BATCH}, "
              f"{STEPS} steps, CrossEntropyLoss; layers " + repr(initial).replace("\n", " "))
    w.scalar("mlp.steps", STEPS)
    w.state("mlp.init", initial)
    write_batches(w, "mlp", batches, eval_x)

    # Gradients of the first step (identical for every optimizer): a whole-network backward.
    probe = make_mlp(torch.float64)
    probe.load_state_dict(initial.state_dict())
    probe.train()
    nn.CrossEntropyLoss()(probe(batches[0][0]), batches[0][1]).backward()
    w.gradients("mlp.grad0", probe)

    for name, make_optimizer in OPTIMIZERS:
        net = make_mlp(torch.float64)
        net.load_state_dict(initial.state_dict())
        optimizer = make_optimizer(net.parameters())
        w.comment(f"mlp.{name}: {optimizer.__class__.__name__} {optimizer.defaults}")
        losses = train(net, optimizer, nn.CrossEntropyLoss(), batches)
        write_trajectory_results(w, f"mlp.{name}", net, losses, eval_x)

    # c. The same MLP in float32 with SGD momentum: parameters and batches are the float64
    # ones rounded to float32 (stored again, exactly). A float64 run of the same float32
    # starting point measures how far float32 rounding alone moves the trajectory; it is
    # recorded as metadata so the C++ tolerance can be checked against it.
    def sgd_f32(p):
        return torch.optim.SGD(p, lr=0.1, momentum=0.9)

    runs = {}
    for dtype in (torch.float32, torch.float64):
        net = make_mlp(dtype)
        net.load_state_dict({k: v.to(torch.float32).to(dtype) if v.is_floating_point() else v
                             for k, v in initial.state_dict().items()})
        if dtype == torch.float32:
            w.state("f32.init", net)
        run_batches = [(x.to(torch.float32).to(dtype), labels) for x, labels in batches]
        losses = train(net, sgd_f32(net.parameters()), nn.CrossEntropyLoss(), run_batches)
        net.eval()
        with torch.no_grad():
            logits = net(eval_x.to(torch.float32).to(dtype))
        runs[dtype] = (net, losses, logits, run_batches)

    net32, losses32, logits32, batches32 = runs[torch.float32]
    w.comment("f32: the MLP in float32, SGD(lr 0.1, momentum 0.9), same batches rounded")
    for k, (x, labels) in enumerate(batches32):
        w.activation(f"f32.batch.{k}.x", x)
        w.labels(f"f32.batch.{k}.labels", labels)
    w.activation("f32.eval_x", eval_x.to(torch.float32))
    w.vector("f32.losses", torch.tensor(losses32, dtype=torch.float64))
    w.state("f32.final", net32)
    w.activation("f32.eval_output", logits32)

    net64, losses64, logits64, _ = runs[torch.float64]
    drift_loss = max(abs(a - b) / abs(b) for a, b in zip(losses32, losses64))
    state32, state64 = net32.state_dict(), net64.state_dict()
    drift_state = max(relative_error(state32[k], state64[k]) for k in state64
                      if not k.endswith("num_batches_tracked"))
    drift_logits = relative_error(logits32, logits64)
    w.meta("f32.drift_vs_f64.loss", f"{drift_loss:.3g}")
    w.meta("f32.drift_vs_f64.state", f"{drift_state:.3g}")
    w.meta("f32.drift_vs_f64.eval_output", f"{drift_logits:.3g}")
    print(f"float32 vs float64 drift of the SGD trajectory: losses {drift_loss:.3g}, "
          f"parameters and running stats {drift_state:.3g}, eval logits {drift_logits:.3g}")


def write_regression_trajectory(w, g):
    torch.manual_seed(99)
    net = make_regression_net(torch.float64)
    randomize_batchnorm(net, g)
    batch = 10
    batches = [(randn(g, batch, 12), randn(g, batch, 3)) for _ in range(STEPS)]
    eval_x = randn(g, batch, 12)
    w.comment("mse: regression net " + repr(net).replace("\n", " ") +
              ", SGD(lr 0.05, momentum 0.9), MSELoss")
    w.state("mse.init", net)
    for k, (x, target) in enumerate(batches):
        w.activation(f"mse.batch.{k}.x", x)
        w.activation(f"mse.batch.{k}.target", target)
    w.activation("mse.eval_x", eval_x)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    losses = train(net, optimizer, nn.MSELoss(), batches)
    write_trajectory_results(w, "mse", net, losses, eval_x)


def relative_error(actual, expected):
    """max |actual - expected| / max |expected|, the measure the C++ tests use."""
    actual, expected = actual.double(), expected.double()
    scale = expected.abs().max().item()
    return (actual - expected).abs().max().item() / (scale if scale > 0 else 1.0)


def main():
    torch.set_num_threads(1)  # reductions in one fixed order
    torch.use_deterministic_algorithms(True)

    layers = Writer("bnorm PyTorch reference data: single layers and losses, float64")
    g = torch.Generator().manual_seed(20240501)
    write_dense_cases(layers, g)
    write_batchnorm_cases(layers, g)
    write_activation_cases(layers, g)
    write_loss_cases(layers, g)
    layers.save("layers.txt")

    trajectories = Writer("bnorm PyTorch reference data: training trajectories")
    g = torch.Generator().manual_seed(777)
    write_mlp_trajectories(trajectories, g)
    write_regression_trajectory(trajectories, g)
    trajectories.save("trajectories.txt")


if __name__ == "__main__":
    sys.exit(main())
