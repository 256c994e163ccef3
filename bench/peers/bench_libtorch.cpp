// The six workloads of bench_workloads.cpp done with libtorch (Debian's libtorch-dev 1.13),
// named "libtorch/<workload>" so that bench/report.py sets them beside bnorm's. Adapted from
// shared/reference/libtorch/bench_torch.cpp, whose figures the targets refer to.
//
// Tensors are (batch, features) row-major: the same bytes as bnorm's features x batch
// column-major matrices. libtorch runs on one thread (torch::set_num_threads(1)); its GEMMs
// go to the BLAS that libblas.so.3 resolves to, so run it with OPENBLAS_NUM_THREADS=1.
#include <benchmark/benchmark.h>
#include <torch/torch.h>
#include <torch/version.h>

#include "../workloads.hpp"

namespace {

using namespace bnorm_bench;

torch::nn::Sequential make_mlp() {
  torch::nn::Sequential net;
  long inputs = mlp_inputs;
  for (int block = 0; block < mlp_blocks; ++block) {
    net->push_back(torch::nn::Linear(torch::nn::LinearOptions(inputs, mlp_hidden).bias(false)));
    net->push_back(torch::nn::BatchNorm1d(mlp_hidden));
    net->push_back(torch::nn::ReLU());
    inputs = mlp_hidden;
  }
  net->push_back(torch::nn::Linear(mlp_hidden, mlp_classes));
  return net;
}

// As the reference: x requires a gradient, so backward writes dx into x.grad, accumulating
// (one more read of dx per step than bnorm's overwrite; dlib's bn_ accumulates too).
void batch_norm_train(benchmark::State& state, BatchNormShape shape) {
  torch::manual_seed(0);
  torch::nn::BatchNorm1d layer(shape.features);
  const auto x = torch::randn({shape.batch, shape.features}).requires_grad_(true);
  const auto output_grad = torch::randn({shape.batch, shape.features});
  layer->forward(x).backward(output_grad);
  for (auto _ : state) {
    auto y = layer->forward(x);
    y.backward(output_grad);
    benchmark::DoNotOptimize(x.grad().data_ptr());
  }
  set_bytes_processed(state, batch_norm_train_bytes(shape.batch, shape.features));
}

void batch_norm_eval(benchmark::State& state, BatchNormShape shape) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(0);
  torch::nn::BatchNorm1d layer(shape.features);
  layer->eval();
  const auto x = torch::randn({shape.batch, shape.features});
  for (auto _ : state) {
    auto y = layer->forward(x);
    benchmark::DoNotOptimize(y.data_ptr());
  }
  set_bytes_processed(state, batch_norm_eval_bytes(shape.batch, shape.features));
}

// zero_grad, forward, loss, backward, step: the first Linear's input needs no gradient, so
// autograd skips its dx as bnorm's set_input_gradient(false) does.
void mlp_train_step(benchmark::State& state, long batch) {
  torch::manual_seed(0);
  auto net = make_mlp();
  torch::optim::SGD optimizer(net->parameters(),
                              torch::optim::SGDOptions(mlp_learning_rate).momentum(mlp_momentum));
  const auto x = torch::randn({batch, mlp_inputs});
  const auto labels = torch::randint(0, mlp_classes, {batch}, torch::kLong);
  auto step = [&] {
    optimizer.zero_grad();
    auto loss = torch::nn::functional::cross_entropy(net->forward(x), labels);
    loss.backward();
    optimizer.step();
    return loss;
  };
  for (int warm_up = 0; warm_up < 3; ++warm_up) step();
  torch::Tensor last_loss;
  for (auto _ : state) {
    last_loss = step();
    benchmark::DoNotOptimize(last_loss.data_ptr());
  }
  if (!std::isfinite(last_loss.item<float>())) state.SkipWithError("the loss is not finite");
  set_flops_counter(state, mlp_train_step_flops(batch));
}

void mlp_inference(benchmark::State& state) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(0);
  auto net = make_mlp();
  net->eval();
  const auto x = torch::randn({mlp_inference_batch, mlp_inputs});
  for (auto _ : state) {
    auto y = net->forward(x);
    benchmark::DoNotOptimize(y.data_ptr());
  }
  set_flops_counter(state, mlp_forward_flops(mlp_inference_batch));
}

void register_benchmarks() {
  configure(benchmark::RegisterBenchmark("libtorch/bn_small", batch_norm_train, bn_small));
  configure(benchmark::RegisterBenchmark("libtorch/bn_large", batch_norm_train, bn_large));
  configure(benchmark::RegisterBenchmark("libtorch/bn_eval", batch_norm_eval, bn_eval));
  configure(benchmark::RegisterBenchmark("libtorch/mlp64", mlp_train_step, mlp64_batch));
  configure(benchmark::RegisterBenchmark("libtorch/mlp256", mlp_train_step, mlp256_batch));
  configure(benchmark::RegisterBenchmark("libtorch/infer1", mlp_inference));
}

}  // namespace

int main(int argc, char** argv) {
  torch::set_num_threads(1);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::AddCustomContext("library", "libtorch " TORCH_VERSION);
  benchmark::AddCustomContext("build", BNORM_BENCH_BUILD);
  benchmark::AddCustomContext("blas", loaded_library("libblas.so"));
  register_benchmarks();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
}
