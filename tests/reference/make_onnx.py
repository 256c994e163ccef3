#!/usr/bin/python3
"""Writes the ONNX fixtures that tests/test_onnx.cpp imports, with PyTorch's eval outputs.

Run with Debian's Python, PyTorch 1.13 and onnx 1.12:

    /usr/bin/python3 tests/reference/make_onnx.py

It rewrites tests/reference/onnx/: one <model>.<dtype>.opset<N>.onnx per model, dtype and
opset 9..17, the training-mode exports the importer must refuse or read, and outputs.txt
(the format of tests/support/reference.hpp: '<file stem>.input' and '<file stem>.output',
features x batch, column-major) with PyTorch's eval outputs for each file, and each
BatchNorm's running statistics as '<model>.<dtype>.<index>.running_mean' (n x 1). It also writes
exports.txt: what each opset's export contains, node by node, so a reader sees what torch
writes without running this script. Seeds are fixed and torch runs on one thread.

The models (nn.Sequential, as a user would train them):
  chain       Linear -> BatchNorm1d -> ReLU -> Linear(no bias) -> BatchNorm1d -> LeakyReLU
              -> Dropout -> Linear -> Sigmoid -> Identity -> Linear -> Tanh, its BatchNorms
              trained a few steps so the running statistics are not the defaults, with
              momentum 0.2 / eps 1e-3 for the first and the defaults for the second.
  bn_first    Flatten -> BatchNorm1d -> Linear -> Tanh with an untouched BatchNorm: torch
              then shares equal initializers (weight and running_var are all ones, bias and
              running_mean all zeros) through Identity nodes.
  matmul_add  a linear layer written as x @ W.T + b: torch writes Linear this way (MatMul then
              Add) whenever the input's rank is not known to be 2.
Training-mode exports (torch.onnx.TrainingMode.TRAINING and PRESERVE of train() models):
  bn_training      BatchNorm1d -> Linear; BatchNormalization in training mode (refused).
  dropout_training Linear -> Dropout; Dropout with its ratio (a Constant from opset 12).
"""
import io
import os
import warnings

import numpy as np
import onnx
import torch
from torch import nn

warnings.filterwarnings("ignore")  # torch's notes on training-mode exports and constant folding
torch.set_num_threads(1)
HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "onnx")
OPSETS = range(9, 18)
DTYPES = {"float": torch.float32, "double": torch.float64}


class MatMulAdd(nn.Module):
    """nn.Linear's arithmetic, written so that torch exports it as MatMul + Add."""

    def __init__(self, linear):
        super().__init__()
        self.weight = linear.weight
        self.bias = linear.bias

    def forward(self, x):
        return torch.matmul(x, self.weight.t()) + self.bias


def chain():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(4, 5), nn.BatchNorm1d(5, eps=1e-3, momentum=0.2), nn.ReLU(),
                          nn.Linear(5, 3, bias=False), nn.BatchNorm1d(3), nn.LeakyReLU(0.2),
                          nn.Dropout(0.3), nn.Linear(3, 3), nn.Sigmoid(), nn.Identity(),
                          nn.Linear(3, 2), nn.Tanh())
    model.train()
    with torch.no_grad():
        for _ in range(3):  # running statistics away from their defaults
            model(torch.randn(8, 4) * 2 + 1)
        model[1].weight.uniform_(0.5, 1.5)
        model[1].bias.uniform_(-0.5, 0.5)
    return model


def bn_first():
    torch.manual_seed(2)
    return nn.Sequential(nn.Flatten(), nn.BatchNorm1d(4), nn.Linear(4, 3), nn.Tanh())


def matmul_add():
    torch.manual_seed(3)
    return nn.Sequential(MatMulAdd(nn.Linear(4, 3)), nn.ReLU(), MatMulAdd(nn.Linear(3, 2)))


def bn_training():
    torch.manual_seed(4)
    return nn.Sequential(nn.BatchNorm1d(4), nn.Linear(4, 3))


def dropout_training():
    torch.manual_seed(5)
    return nn.Sequential(nn.Linear(4, 3), nn.Dropout(0.25))


def export(model, x, opset, training):
    buffer = io.BytesIO()
    torch.onnx.export(model, x, buffer, opset_version=opset, training=training,
                      input_names=["input"], output_names=["output"],
                      dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})
    return buffer.getvalue()


def describe(stem, data):
    model = onnx.load_from_string(data)
    lines = [f"{stem}: initializers " +
             ", ".join(f"{i.name}{list(i.dims)}" for i in model.graph.initializer)]
    for node in model.graph.node:
        attributes = []
        for a in node.attribute:
            if a.type == onnx.AttributeProto.TENSOR:
                attributes.append(f"{a.name}=tensor{list(a.t.dims)}")
            else:
                attributes.append(f"{a.name}={onnx.helper.get_attribute_value(a)}")
        lines.append(f"  {node.op_type}({', '.join(node.input)}) -> {', '.join(node.output)}"
                     + (f"  [{', '.join(attributes)}]" if attributes else ""))
    return lines


def block(name, tensor):
    """A (batch, features) tensor as the features x batch matrix, column-major = C order."""
    t = tensor.detach().to(torch.float64).numpy()
    values = " ".join(repr(float(v)) for v in t.reshape(-1))
    return f"{name} {t.shape[1]} {t.shape[0]}\n{values}\n"


def main():
    os.makedirs(OUT, exist_ok=True)
    for name in os.listdir(OUT):  # its own files; bnorm_export.* are save_onnx's
        if name.endswith(".onnx") and not name.startswith("bnorm_export."):
            os.remove(os.path.join(OUT, name))
    blocks = ["# PyTorch eval outputs of the ONNX fixtures; written by make_onnx.py, do not edit.\n",
              f"@torch_version {torch.__version__}\n@onnx_version {onnx.__version__}\n"]
    notes = ["# What torch.onnx.export writes, per file; written by make_onnx.py, do not edit.\n"]
    for builder in (chain, bn_first, matmul_add):
        for dtype_name, dtype in DTYPES.items():
            model = builder().to(dtype).eval()
            generator = torch.Generator().manual_seed(10)
            x = (torch.randn(6, 4, generator=generator) * 1.5 + 0.5).to(dtype)
            with torch.no_grad():
                y = model(x)
            for i, layer in enumerate(model):
                if isinstance(layer, nn.BatchNorm1d):  # the statistics the import must keep
                    for buffer in ("running_mean", "running_var"):
                        blocks.append(block(f"{builder.__name__}.{dtype_name}.{i}.{buffer}",
                                            getattr(layer, buffer).reshape(1, -1)))
            for opset in OPSETS:
                stem = f"{builder.__name__}.{dtype_name}.opset{opset}"
                data = export(model, x, opset, torch.onnx.TrainingMode.EVAL)
                with open(os.path.join(OUT, stem + ".onnx"), "wb") as f:
                    f.write(data)
                blocks.append(block(stem + ".input", x))
                blocks.append(block(stem + ".output", y))
                notes.extend(line + "\n" for line in describe(stem, data))
    for builder in (bn_training, dropout_training):
        for opset in (9, 12, 14, 15, 17):
            for mode in (torch.onnx.TrainingMode.TRAINING, torch.onnx.TrainingMode.PRESERVE):
                model = builder().train()
                x = torch.randn(6, 4, generator=torch.Generator().manual_seed(11))
                stem = f"{builder.__name__}.{mode.name.lower()}.opset{opset}"
                data = export(model, x, opset, mode)
                with open(os.path.join(OUT, stem + ".onnx"), "wb") as f:
                    f.write(data)
                notes.extend(line + "\n" for line in describe(stem, data))
    with open(os.path.join(OUT, "outputs.txt"), "w") as f:
        f.writelines(blocks)
    with open(os.path.join(OUT, "exports.txt"), "w") as f:
        f.writelines(notes)


if __name__ == "__main__":
    main()
