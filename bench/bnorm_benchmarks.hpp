// bnorm's side of the benchmarks, shared by bench_workloads.cpp (the six workloads) and
// bench_sweep.cpp (the same work over a range of sizes, and a step taken apart).
#pragma once

#include <benchmark/benchmark.h>

#include <bnorm/bnorm.hpp>
#include <cmath>

#include "workloads.hpp"

namespace bnorm_bench {

using bnorm::Index;
using bnorm::Matrix;
using bnorm::Mode;

// Uniform on [-sqrt(3), sqrt(3)]: mean 0 and variance 1, as randn's, and some ten times
// faster to draw than normals, which matters for bn_large's 2 x 8M values per set-up.
inline Matrix<float> random_matrix(Index rows, Index cols, bnorm::Generator& generator) {
  const double bound = std::sqrt(3.0);
  Matrix<float> matrix(rows, cols);
  for (Index i = 0; i < matrix.size(); ++i)
    matrix.data()[i] = static_cast<float>(generator.uniform(-bound, bound));
  return matrix;
}

inline bnorm::Labels random_labels(Index count, bnorm::Generator& generator) {
  bnorm::Labels labels(count);
  for (Index i = 0; i < count; ++i) labels(i) = static_cast<int>(generator.below(mlp_classes));
  return labels;
}

inline bnorm::Sequential<float> make_mlp() {
  bnorm::Sequential<float> net;
  Index inputs = mlp_inputs;
  for (int block = 0; block < mlp_blocks; ++block) {
    net.add(bnorm::Dense<float>(inputs, mlp_hidden, bnorm::Bias::none))
        .add(bnorm::BatchNorm<float>(mlp_hidden))
        .add(bnorm::ReLU<float>());
    inputs = mlp_hidden;
  }
  net.add(bnorm::Dense<float>(mlp_hidden, mlp_classes));
  return net;
}

// Train forward+backward of one BatchNorm layer on a batch x features input.
inline void batch_norm_train(benchmark::State& state, BatchNormShape shape) {
  bnorm::Generator generator(1);
  const Matrix<float> x = random_matrix(shape.features, shape.batch, generator);
  const Matrix<float> output_grad = random_matrix(shape.features, shape.batch, generator);
  bnorm::BatchNorm<float> layer(shape.features);
  layer.forward(x, Mode::train);  // sizes the layer's buffers outside the timed loop
  layer.backward(output_grad);
  for (auto _ : state) {
    benchmark::DoNotOptimize(layer.forward(x, Mode::train).data());
    benchmark::DoNotOptimize(layer.backward(output_grad).data());
    benchmark::ClobberMemory();
  }
  set_bytes_processed(state, batch_norm_train_bytes(shape.batch, shape.features));
  state.SetItemsProcessed(state.iterations() * shape.batch * shape.features);
}

inline void batch_norm_eval(benchmark::State& state, BatchNormShape shape) {
  bnorm::Generator generator(1);
  const Matrix<float> x = random_matrix(shape.features, shape.batch, generator);
  bnorm::BatchNorm<float> layer(shape.features);
  layer.forward(x, Mode::eval);
  for (auto _ : state) {
    benchmark::DoNotOptimize(layer.forward(x, Mode::eval).data());
    benchmark::ClobberMemory();
  }
  set_bytes_processed(state, batch_norm_eval_bytes(shape.batch, shape.features));
  state.SetItemsProcessed(state.iterations() * shape.batch * shape.features);
}

// One step as a training loop takes it: forward, loss, backward, optimizer step. The first
// layer's dx is switched off, as a training loop does (nobody reads it).
inline void mlp_train_step(benchmark::State& state, long batch) {
  bnorm::Generator generator(2);
  const Matrix<float> x = random_matrix(mlp_inputs, batch, generator);
  const bnorm::Labels labels = random_labels(batch, generator);
  bnorm::Sequential<float> net = make_mlp();
  net.set_input_gradient(false);
  bnorm::SoftmaxCrossEntropy<float> loss;
  bnorm::SGD<float> optimizer(net.parameters(),
                              {.lr = mlp_learning_rate, .momentum = mlp_momentum});
  auto step = [&] {
    const float value = loss.forward(net.forward(x, Mode::train), labels);
    net.backward(loss.backward());
    optimizer.step();
    return value;
  };
  for (int warm_up = 0; warm_up < 3; ++warm_up) step();  // sizes buffers, starts momentum
  float last_loss = 0.0f;
  for (auto _ : state) {
    last_loss = step();
    benchmark::DoNotOptimize(last_loss);
  }
  if (!std::isfinite(last_loss)) state.SkipWithError("the loss is not finite");
  set_flops_counter(state, mlp_train_step_flops(batch));
}

inline void mlp_inference(benchmark::State& state) {
  bnorm::Generator generator(3);
  const Matrix<float> x = random_matrix(mlp_inputs, mlp_inference_batch, generator);
  bnorm::Sequential<float> net = make_mlp();
  net.forward(x, Mode::eval);
  for (auto _ : state) {
    benchmark::DoNotOptimize(net.forward(x, Mode::eval).data());
    benchmark::ClobberMemory();
  }
  set_flops_counter(state, mlp_forward_flops(mlp_inference_batch));
}

// bnorm::fold_batchnorm(net) merges each BatchNorm into the Dense before it for inference.
// The folded benchmark builds wherever the fold header exists (or with -DBNORM_HAS_FOLD),
// and report.py compares it with the peers' infer1.
#if !defined(BNORM_HAS_FOLD) && __has_include(<bnorm/model/fold_batchnorm.hpp>)
#define BNORM_HAS_FOLD 1
#endif
#if defined(BNORM_HAS_FOLD)
inline void mlp_inference_folded(benchmark::State& state) {
  bnorm::Generator generator(3);
  const Matrix<float> x = random_matrix(mlp_inputs, mlp_inference_batch, generator);
  const bnorm::Sequential<float> trained = make_mlp();
  auto net = bnorm::fold_batchnorm(trained);
  net.forward(x, Mode::eval);
  for (auto _ : state) {
    benchmark::DoNotOptimize(net.forward(x, Mode::eval).data());
    benchmark::ClobberMemory();
  }
  set_flops_counter(state, mlp_forward_flops(mlp_inference_batch));
}
#endif

// The instruction-set variant bnorm's kernels run on in this process (the best the processor
// supports, or the one BNORM_ISA forces): the one place the benchmarks ask the library.
inline std::string active_isa_name() {
  return std::string(bnorm::detail::isa_name(bnorm::detail::active_isa()));
}

// Context every bnorm benchmark program writes into its JSON: the build, Eigen's SIMD and
// the variant bnorm's kernels ran on.
inline void add_build_context() {
  benchmark::AddCustomContext("isa", active_isa_name());
  benchmark::AddCustomContext("library", "bnorm");
  benchmark::AddCustomContext("build", BNORM_BENCH_BUILD);
  benchmark::AddCustomContext("eigen", std::to_string(EIGEN_WORLD_VERSION) + "." +
                                           std::to_string(EIGEN_MAJOR_VERSION) + "." +
                                           std::to_string(EIGEN_MINOR_VERSION) + ", SIMD " +
                                           Eigen::SimdInstructionSetsInUse());
}

}  // namespace bnorm_bench
