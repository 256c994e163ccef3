#!/usr/bin/python3
"""Train in PyTorch, run in bnorm: the PyTorch half of examples/from_pytorch/.

    /usr/bin/python3 examples/from_pytorch/train_in_pytorch.py
        trains bnorm's flagship network (examples/fashion_mnist.cpp:
        784 -> [Linear 256 without bias -> BatchNorm1d -> ReLU] x 3 -> Linear 10) for one epoch
        on Fashion-MNIST and writes, next to this script:
          flagship.safetensors    its state_dict (load_safetensors reads it)
          flagship.onnx           torch.onnx.export of the eval-mode model
          pytorch_results.txt     the count of correct test predictions, every test
                                  prediction (one digit per example), and the logits of the
                                  test examples whose two largest logits are so close that
                                  float rounding could swap them

    /usr/bin/python3 examples/from_pytorch/train_in_pytorch.py --check FILE
        loads FILE (written by `from_pytorch --export FILE`, a network trained further in
        bnorm) into the same model with load_state_dict(strict=True) and prints its count of
        correct test predictions, to compare with what bnorm printed.

Seeds are fixed and torch runs on one thread. The data are Debian's dataset-fashion-mnist
IDX files, scaled as bnorm scales them: float32(byte) / float32(255).
"""

import gzip
import json
import os
import struct
import sys

import numpy as np
import torch
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = "/usr/share/datasets/fashion-mnist"
# Examples whose top two logits differ by less than this are listed in pytorch_results.txt.
CLOSE_MARGIN = 1e-4


def read_idx(name):
    with gzip.open(os.path.join(DATA, name + ".gz"), "rb") as f:
        raw = f.read()
    (magic,) = struct.unpack(">I", raw[:4])
    dims = [struct.unpack(">I", raw[4 + 4 * i:8 + 4 * i])[0] for i in range(magic & 0xFF)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * len(dims)).reshape(dims)


def images(name):
    pixels = read_idx(name).reshape(-1, 28 * 28)
    return torch.from_numpy(pixels.astype(np.float32) / np.float32(255))


def labels(name):
    return torch.from_numpy(read_idx(name).astype(np.int64))


def flagship():
    layers, inputs = [], 784
    for _ in range(3):
        layers += [nn.Linear(inputs, 256, bias=False), nn.BatchNorm1d(256), nn.ReLU()]
        inputs = 256
    return nn.Sequential(*layers, nn.Linear(256, 10))


def safetensors_bytes(state):
    header, chunks, offset = {"__metadata__": {"format": "pt"}}, [], 0
    names = {torch.float32: "F32", torch.int64: "I64"}
    for key, tensor in state.items():
        data = tensor.detach().contiguous().numpy().tobytes()  # little-endian on this machine
        header[key] = {"dtype": names[tensor.dtype], "shape": list(tensor.shape),
                       "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(chunks)


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (size,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + size].decode("utf-8"))
    types = {"F32": "<f4", "F64": "<f8", "I64": "<i8"}
    state = {}
    for key, entry in header.items():
        if key == "__metadata__":
            continue
        begin, end = entry["data_offsets"]
        values = np.frombuffer(raw[8 + size + begin:8 + size + end], dtype=types[entry["dtype"]])
        state[key] = torch.from_numpy(values.copy().reshape(entry["shape"]))
    return state


def test_logits(model):
    model.eval()
    with torch.no_grad():
        return model(images("t10k-images-idx3-ubyte"))


def train():
    torch.manual_seed(0)
    model = flagship()
    x, y = images("train-images-idx3-ubyte"), labels("train-labels-idx1-ubyte")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    loss_function = nn.CrossEntropyLoss()
    model.train()
    order = torch.randperm(len(x))
    for start in range(0, len(x), 64):
        batch = order[start:start + 64]
        optimizer.zero_grad()
        loss_function(model(x[batch]), y[batch]).backward()
        optimizer.step()

    with open(os.path.join(HERE, "flagship.safetensors"), "wb") as f:
        f.write(safetensors_bytes(model.state_dict()))
    model.eval()
    opset = 17
    torch.onnx.export(model, torch.zeros(1, 784), os.path.join(HERE, "flagship.onnx"),
                      input_names=["images"], output_names=["logits"],
                      dynamic_axes={"images": {0: "batch"}, "logits": {0: "batch"}},
                      opset_version=opset)

    logits = test_logits(model)
    truth = labels("t10k-labels-idx1-ubyte")
    correct = int((logits.argmax(1) == truth).sum())
    top2 = logits.topk(2, dim=1).values
    close = ((top2[:, 0] - top2[:, 1]) < CLOSE_MARGIN).nonzero().flatten().tolist()
    lines = ["# Written by examples/from_pytorch/train_in_pytorch.py; do not edit, rerun it.",
             f"torch_version={torch.__version__}", f"onnx_opset={opset}",
             f"test_examples={len(truth)}", f"pytorch_correct={correct}",
             "pytorch_predictions=" + "".join(str(int(c)) for c in logits.argmax(1)),
             f"close_margin={CLOSE_MARGIN}", f"close_examples={len(close)}"]
    for index in close:
        values = " ".join(repr(float(v)) for v in logits[index])
        lines.append(f"close_example={index} label={int(truth[index])} logits={values}")
    with open(os.path.join(HERE, "pytorch_results.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(line for line in lines[1:] if not line.startswith("pytorch_predictions")))


def check(path):
    model = flagship()
    model.load_state_dict(read_safetensors(path), strict=True)
    logits = test_logits(model)
    correct = int((logits.argmax(1) == labels("t10k-labels-idx1-ubyte")).sum())
    print(f"strict_load=ok\npytorch_correct={correct}\npytorch_accuracy={correct / len(logits):.4f}")


if __name__ == "__main__":
    torch.set_num_threads(1)
    if len(sys.argv) == 3 and sys.argv[1] == "--check":
        check(sys.argv[2])
    else:
        train()
