#!/usr/bin/python3
"""Writes the safetensors fixtures that tests/test_safetensors.cpp loads, and checks in
PyTorch the files that bnorm's save_safetensors wrote.

Run with Debian's Python and its PyTorch (torch 1.13):

    /usr/bin/python3 tests/reference/make_safetensors.py
        rewrites tests/reference/safetensors/*.safetensors and safetensors.txt

    /usr/bin/python3 tests/reference/make_safetensors.py --check FOLDER
        loads every FOLDER/<model>_<dtype>.safetensors (written by the C++ test with
        BNORM_SAFETENSORS_EXPORT=FOLDER) into the same nn.Sequential with
        load_state_dict(strict=True), compares its eval outputs with bnorm's
        (FOLDER/<model>_<dtype>.txt) and writes the result to safetensors_pytorch_check.txt.

Debian has no safetensors package, so the files are written with struct and json, as the
format's authors specify it: an 8-byte little-endian header length, a JSON header (padded
with spaces to a multiple of 8 bytes), then each tensor's bytes, little-endian, row-major.

Each model is a small nn.Sequential, trained a few SGD steps in train mode so that its running
statistics and num_batches_tracked are not the initial ones; then its eval outputs on a fixed
input are written to safetensors.txt (format of tests/support/reference.hpp: blocks
"<model>.<dtype>.x" and ".y", features x batch in column-major order, repr() of each value,
so float32 values are exact). Seeds are fixed and torch runs on one thread: a rerun with the
same torch reproduces every file byte for byte.
"""

import json
import os
import struct
import sys

import numpy as np
import torch
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "safetensors")
DTYPE_NAMES = {torch.float32: "F32", torch.float64: "F64", torch.float16: "F16",
               torch.bfloat16: "BF16", torch.int64: "I64"}
# Inputs per model: bnorm builds the same architectures (tests/support/safetensors_models.hpp).
IN_FEATURES = {"bn_after_linear": 4, "bn_before_linear": 4, "one_input": 1}


def build(name):
    if name == "bn_after_linear":
        return nn.Sequential(nn.Linear(4, 5), nn.BatchNorm1d(5), nn.ReLU(),
                             nn.Linear(5, 3, bias=False), nn.BatchNorm1d(3), nn.Tanh())
    if name == "bn_before_linear":
        return nn.Sequential(nn.BatchNorm1d(4), nn.Linear(4, 3), nn.LeakyReLU(0.2), nn.Dropout(0.3),
                             nn.Sequential(nn.Linear(3, 3, bias=False), nn.Sigmoid()),
                             nn.Linear(3, 2))
    if name == "one_input":  # Linear(1, n).weight is [n, 1], BatchNorm's weight [n]
        return nn.Sequential(nn.Linear(1, 3), nn.BatchNorm1d(3), nn.ReLU(), nn.Linear(3, 2))
    raise ValueError(name)


def safetensors_bytes(state, dtype_override=None):
    """The safetensors file of a state_dict; floating tensors cast to dtype_override if given."""
    header, chunks, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for key, tensor in state.items():
        tensor = tensor.detach().contiguous()
        if dtype_override is not None and tensor.is_floating_point():
            tensor = tensor.to(dtype_override)
        if tensor.dtype == torch.bfloat16:  # numpy has no bfloat16: its bits as int16
            data = tensor.view(torch.int16).numpy().astype("<i2").tobytes()
        else:
            data = tensor.numpy().astype(tensor.numpy().dtype.newbyteorder("<")).tobytes()
        header[key] = {"dtype": DTYPE_NAMES[tensor.dtype], "shape": list(tensor.shape),
                       "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(chunks)


def read_safetensors(path):
    """A state_dict from a safetensors file (F32, F64, I64 only: what bnorm writes)."""
    with open(path, "rb") as f:
        raw = f.read()
    (size,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + size].decode("utf-8"))
    data = raw[8 + size:]
    numpy_types = {"F32": "<f4", "F64": "<f8", "I64": "<i8"}
    state = {}
    for key, entry in header.items():
        if key == "__metadata__":
            continue
        begin, end = entry["data_offsets"]
        values = np.frombuffer(data[begin:end], dtype=numpy_types[entry["dtype"]])
        state[key] = torch.from_numpy(values.copy().reshape(entry["shape"]))
    return state


def block(name, matrix):
    """A reference block: matrix (features x batch) in column-major order."""
    values = np.asarray(matrix, dtype=np.float64).flatten(order="F")
    lines = [f"{name} {matrix.shape[0]} {matrix.shape[1]}"]
    for i in range(0, len(values), 6):
        lines.append(" ".join(repr(float(v)) for v in values[i:i + 6]))
    return lines


def make_fixtures():
    os.makedirs(FIXTURES, exist_ok=True)
    out = ["# PyTorch eval outputs of the models in tests/reference/safetensors/",
           "# Written by tests/reference/make_safetensors.py; do not edit, rerun the script.",
           "# Blocks: 'name rows cols' then the bnorm matrix (features x batch), column-major.",
           f"@torch_version {torch.__version__}"]
    for seed, name in enumerate(IN_FEATURES):
        for dtype, dtype_name in ((torch.float32, "float"), (torch.float64, "double")):
            torch.manual_seed(100 + seed)
            model = build(name).to(dtype)
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
            model.train()
            for _ in range(3):
                x = torch.randn(8, IN_FEATURES[name], dtype=dtype) * 2 + 0.5
                loss = model(x).square().mean()
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            model.eval()
            x = torch.randn(6, IN_FEATURES[name], dtype=dtype)
            with torch.no_grad():
                y = model(x)
            stem = f"{name}_{dtype_name}"
            with open(os.path.join(FIXTURES, stem + ".safetensors"), "wb") as f:
                f.write(safetensors_bytes(model.state_dict()))
            out += block(f"{stem}.x", x.numpy().T) + block(f"{stem}.y", y.numpy().T)
            if name == "one_input" and dtype == torch.float32:
                # Half precisions, and the same values widened to F32, for the conversion test.
                for half in (torch.float16, torch.bfloat16):
                    tag = DTYPE_NAMES[half].lower()
                    rounded = {k: (v.to(half) if v.is_floating_point() else v)
                               for k, v in model.state_dict().items()}
                    with open(os.path.join(FIXTURES, f"{stem}_{tag}.safetensors"), "wb") as f:
                        f.write(safetensors_bytes(rounded))
                    with open(os.path.join(FIXTURES, f"{stem}_{tag}_as_f32.safetensors"), "wb") as f:
                        f.write(safetensors_bytes(rounded, torch.float32))
    with open(os.path.join(HERE, "safetensors.txt"), "w") as f:
        f.write("\n".join(out) + "\n")


def read_blocks(path):
    """Blocks of a reference file, as numpy matrices."""
    blocks, words, header = {}, [], None
    with open(path) as f:
        for line in f:
            if not line.strip() or line[0] in "#@":
                continue
            if header is None:
                name, rows, cols = line.split()
                header, words = (name, int(rows), int(cols)), []
            else:
                words += line.split()
            if header and len(words) == header[1] * header[2]:
                blocks[header[0]] = np.array(words, dtype=np.float64).reshape(
                    (header[1], header[2]), order="F")
                header = None
    return blocks


def check(folder):
    lines = ["# PyTorch load_state_dict(strict=True) of the files bnorm's save_safetensors wrote",
             "# (tests/test_safetensors.cpp, BNORM_SAFETENSORS_EXPORT), and the largest relative",
             "# difference between PyTorch's eval outputs and bnorm's on the same input.",
             "# Written by tests/reference/make_safetensors.py --check; do not edit.",
             f"@torch_version {torch.__version__}"]
    worst = {"float": 0.0, "double": 0.0}
    for name in IN_FEATURES:
        for dtype, dtype_name in ((torch.float32, "float"), (torch.float64, "double")):
            stem = f"{name}_{dtype_name}"
            model = build(name).to(dtype)
            model.load_state_dict(read_safetensors(os.path.join(folder, stem + ".safetensors")),
                                  strict=True)
            model.eval()
            blocks = read_blocks(os.path.join(folder, stem + ".txt"))
            x = torch.from_numpy(blocks["x"].T.copy()).to(dtype)
            with torch.no_grad():
                y = model(x).double().numpy().T
            expected = blocks["y"]
            difference = float(np.max(np.abs(y - expected) / np.maximum(np.abs(expected), 1e-30)))
            worst[dtype_name] = max(worst[dtype_name], difference)
            lines.append(f"{stem} strict_load=ok max_relative_difference={difference:.3e}")
    limits = {"float": 2e-5, "double": 1e-12}
    verdict = all(worst[k] <= limits[k] for k in worst)
    lines.append(f"all_within_tolerance={'yes' if verdict else 'no'}")
    with open(os.path.join(HERE, "safetensors_pytorch_check.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0 if verdict else 1


if __name__ == "__main__":
    torch.set_num_threads(1)
    if len(sys.argv) == 3 and sys.argv[1] == "--check":
        sys.exit(check(sys.argv[2]))
    make_fixtures()
