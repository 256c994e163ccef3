// The six workloads of the performance issue, sized and counted once for every benchmark
// program: bnorm's own (bench_workloads.cpp) and the peers' (peers/bench_*.cpp). A peer
// registers the same workload names under its own prefix ("libtorch/bn_small"), so that
// bench/report.py can put the libraries side by side.
//
// Written in C++17: the peers build with the standard their library's headers accept.
#pragma once

#include <benchmark/benchmark.h>

#include <cstdint>
#include <fstream>
#include <string>

namespace bnorm_bench {

struct BatchNormShape {
  long batch;
  long features;
};

// BatchNorm train forward+backward (bn_small, bn_large) and eval forward (bn_eval).
inline constexpr BatchNormShape bn_small{256, 1024};
inline constexpr BatchNormShape bn_large{2048, 4096};
inline constexpr BatchNormShape bn_eval{2048, 4096};

// The MLP: 784 -> [Dense 256 without bias -> BatchNorm -> ReLU] x 3 -> Dense 10, trained
// with softmax cross-entropy and SGD (lr 0.01, momentum 0.9).
inline constexpr long mlp_inputs = 784;
inline constexpr long mlp_hidden = 256;
inline constexpr int mlp_blocks = 3;
inline constexpr long mlp_classes = 10;
inline constexpr float mlp_learning_rate = 0.01f;
inline constexpr float mlp_momentum = 0.9f;
inline constexpr long mlp64_batch = 64;
inline constexpr long mlp256_batch = 256;
inline constexpr long mlp_inference_batch = 1;

// Bytes counted for a BatchNorm benchmark: the tensors its API must touch once, in float32.
// Training reads x and dy and writes y and dx: 16 bytes per element. Eval reads x and
// writes y: 8 bytes per element. An implementation that makes more passes moves more bytes
// than this; the ratio of the achieved rate to the machine's copy bandwidth shows how many.
constexpr double batch_norm_train_bytes(long batch, long features) {
  return 4.0 * sizeof(float) * static_cast<double>(batch) * static_cast<double>(features);
}
constexpr double batch_norm_eval_bytes(long batch, long features) {
  return 2.0 * sizeof(float) * static_cast<double>(batch) * static_cast<double>(features);
}

// Multiply-adds of one pass of the MLP's dense layers for one example.
constexpr double mlp_multiply_adds_per_example() {
  return static_cast<double>(mlp_inputs * mlp_hidden + (mlp_blocks - 1) * mlp_hidden * mlp_hidden +
                             mlp_hidden * mlp_classes);
}
// GEMM FLOPs (2 per multiply-add) of an inference forward pass.
constexpr double mlp_forward_flops(long batch) {
  return 2.0 * static_cast<double>(batch) * mlp_multiply_adds_per_example();
}
// GEMM FLOPs of a training step: the forward, the weight gradients (as many again) and the
// input gradients of every dense layer but the first (whose dx nobody needs). The
// element-wise work (BatchNorm, ReLU, softmax, SGD) is not counted: it is O(batch x width),
// a GEMM is O(batch x width^2).
constexpr double mlp_train_step_flops(long batch) {
  const double first_layer = static_cast<double>(mlp_inputs * mlp_hidden);
  return 2.0 * static_cast<double>(batch) * (3.0 * mlp_multiply_adds_per_example() - first_layer);
}

inline void set_flops_counter(benchmark::State& state, double flops_per_iteration) {
  state.counters["FLOP/s"] = benchmark::Counter(
      flops_per_iteration * static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

inline void set_bytes_processed(benchmark::State& state, double bytes_per_iteration) {
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes_per_iteration) * state.iterations());
}

// Every workload runs single-threaded, timed by the wall clock: what a user waits for,
// kernel time (page faults of a freshly allocated tensor) included, and the clock the
// direct-loop programs of shared/reference use, so the two can be compared.
inline benchmark::internal::Benchmark* configure(benchmark::internal::Benchmark* benchmark) {
  return benchmark->UseRealTime()->Unit(benchmark::kMicrosecond);
}

// The file a loaded shared library came from ("libblas.so" -> its path), read from
// /proc/self/maps, so the report can tell which BLAS a peer really used.
inline std::string loaded_library(const std::string& name) {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    const auto slash = line.find('/');
    if (slash != std::string::npos && line.find(name, slash) != std::string::npos)
      return line.substr(slash);
  }
  return "not loaded";
}

}  // namespace bnorm_bench
