#!/usr/bin/python3
"""Checks the ONNX files bnorm::save_onnx writes, and evaluates them by the operator specs.

Run with Debian's Python and onnx 1.12 (which has no onnx.reference evaluator):

    /usr/bin/python3 tests/reference/check_onnx_export.py

Reads tests/reference/onnx/bnorm_export.<dtype>.onnx and bnorm_export.<dtype>.txt (the
input and bnorm's eval output, written by test_onnx with BNORM_WRITE_ONNX_FIXTURES=1), runs
onnx.checker.check_model(model, full_check=True) on each file, evaluates its graph with
numpy exactly as the ONNX operator definitions (opset 17) define the operators save_onnx
emits, in the tensors' own type, and writes bnorm_export_check.txt ('<dtype>.output',
features x batch, column-major; the format of tests/support/reference.hpp) for test_onnx to
compare with bnorm's eval outputs. It fails on any operator or attribute it does not know.
"""
import os

import numpy as np
import onnx
from onnx import numpy_helper

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "onnx")


def attributes(node):
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def evaluate(model, x):
    """The graph's output for x ([batch, features]), node by node, as the specs define it."""
    values = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    values[model.graph.input[0].name] = x
    for node in model.graph.node:
        a = attributes(node)
        inputs = [values[name] for name in node.input if name]
        op = node.op_type
        if op == "Gemm":  # Y = alpha * A' * B' + beta * C
            known = {"alpha", "beta", "transA", "transB"}
            assert set(a) <= known, a
            A = inputs[0].T if a.get("transA", 0) else inputs[0]
            B = inputs[1].T if a.get("transB", 0) else inputs[1]
            dtype = A.dtype
            y = dtype.type(a.get("alpha", 1.0)) * (A @ B)
            if len(inputs) > 2:
                y = y + dtype.type(a.get("beta", 1.0)) * inputs[2]
        elif op == "BatchNormalization":
            # Inference (training_mode = 0): Y = (X - mean) / sqrt(var + epsilon) * scale + B,
            # the statistics broadcast over the batch (axis 0) of an [N, C] input.
            assert set(a) <= {"epsilon", "momentum", "training_mode"}, a
            assert a.get("training_mode", 0) == 0
            X, scale, bias, mean, var = inputs
            epsilon = X.dtype.type(a.get("epsilon", 1e-5))
            y = (X - mean) / np.sqrt(var + epsilon) * scale + bias
        elif op == "Relu":  # y = max(0, x)
            y = np.maximum(inputs[0], inputs[0].dtype.type(0))
        elif op == "LeakyRelu":  # f(x) = alpha * x for x < 0, f(x) = x for x >= 0
            X = inputs[0]
            y = np.where(X < 0, X.dtype.type(a.get("alpha", 0.01)) * X, X)
        elif op == "Sigmoid":  # y = 1 / (1 + exp(-x))
            X = inputs[0]
            y = X.dtype.type(1) / (X.dtype.type(1) + np.exp(-X))
        elif op == "Tanh":
            y = np.tanh(inputs[0])
        elif op == "Identity":
            y = inputs[0]
        elif op == "Dropout":
            # training_mode defaults to false: then the output is the input (the ratio unused).
            assert len(node.input) < 3
            y = inputs[0]
        else:
            raise ValueError(f"check_onnx_export.py does not know operator {op}")
        assert y.dtype == x.dtype, (op, y.dtype)
        values[node.output[0]] = y
    return values[model.graph.output[0].name]


def read_blocks(path):
    blocks, name = {}, None
    for line in open(path):
        if line.startswith("#") or not line.strip():
            continue
        words = line.split()
        if name is None:
            name, rows, cols = words[0], int(words[1]), int(words[2])
        else:
            # features x batch, column-major: the [batch, features] array in C order.
            blocks[name] = np.array([float(w) for w in words]).reshape(cols, rows)
            name = None
    return blocks


def main():
    out = ["# ONNX's checker and the operator definitions on save_onnx's files; written by "
           "check_onnx_export.py, do not edit.\n", f"@onnx_version {onnx.__version__}\n"]
    for dtype_name, dtype in (("float", np.float32), ("double", np.float64)):
        path = os.path.join(HERE, f"bnorm_export.{dtype_name}.onnx")
        model = onnx.load(path)
        onnx.checker.check_model(model, full_check=True)
        blocks = read_blocks(os.path.join(HERE, f"bnorm_export.{dtype_name}.txt"))
        x = blocks["input"].astype(dtype)
        y = evaluate(model, x)
        difference = np.max(np.abs(y - blocks["output"]) / np.maximum(np.abs(blocks["output"]), 1))
        ops = ", ".join(sorted({n.op_type for n in model.graph.node}))
        print(f"{dtype_name}: checker passed; operators {ops}; largest difference to bnorm "
              f"{difference:.3g}")
        out.append(f"# {dtype_name}: operators {ops}; largest relative difference to bnorm's "
                   f"output {difference:.3g}\n")
        out.append(f"{dtype_name}.output {y.shape[1]} {y.shape[0]}\n")
        out.append(" ".join(repr(float(v)) for v in y.reshape(-1)) + "\n")
    out.insert(2, "@checker full_check passed\n")
    with open(os.path.join(HERE, "bnorm_export_check.txt"), "w") as f:
        f.writelines(out)


if __name__ == "__main__":
    main()
