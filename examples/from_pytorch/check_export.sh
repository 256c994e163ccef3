#!/usr/bin/env bash
# The way back, end to end: the from_pytorch example trains the PyTorch-trained network further
# in bnorm and exports it with save_safetensors; PyTorch then loads the file strictly and counts
# its correct test predictions. Writes both counts to examples/from_pytorch/export_check.txt.
# Usage: examples/from_pytorch/check_export.sh BUILD_DIR   (a build with the examples on)
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:?usage: $0 BUILD_DIR}
exported=$(mktemp --suffix=.safetensors)
trap 'rm -f "$exported"' EXIT
{
  echo "# Written by examples/from_pytorch/check_export.sh; do not edit, rerun it."
  "$build/examples/from_pytorch" --export "$exported" | grep -E '^(bnorm_export_correct|same_count)='
  /usr/bin/python3 examples/from_pytorch/train_in_pytorch.py --check "$exported"
} > examples/from_pytorch/export_check.txt
cat examples/from_pytorch/export_check.txt
