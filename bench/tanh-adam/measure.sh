#!/bin/sh
# Usage: measure.sh BEFORE_DEFAULT BEFORE_NATIVE AFTER_DEFAULT AFTER_NATIVE OUT_DIR
# Runs bench_tanh_adam (one training step of a Tanh + Adam MLP, batches 64 and 256) of four
# builds (the commit before and after, each default and -march=native), alternated within
# each of five rounds, 5 repetitions each, pinned to core 1; then the default build of
# "after" once per forced variant (BNORM_ISA=baseline, avx2, avx512).
set -e
before_default=$1; before_native=$2; after_default=$3; after_native=$4; out=$5
mkdir -p "$out"
run() {  # LABEL DIR [ENV...]
  label=$1; dir=$2; shift 2
  env "$@" taskset -c 1 "$dir/bench/bench_tanh_adam" --benchmark_repetitions=5 \
    --benchmark_out="$out/$label.json" --benchmark_out_format=json > /dev/null
}
for round in 1 2 3 4 5; do
  run before-default-$round "$before_default"
  run after-default-$round "$after_default"
  run before-native-$round "$before_native"
  run after-native-$round "$after_native"
done
for isa in baseline avx2 avx512; do run after-default-isa-$isa "$after_default" BNORM_ISA=$isa; done
