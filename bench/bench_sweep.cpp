// How bnorm's cost grows with size, and where a training step's time goes:
//
//   bnorm/sweep/bn_train/features:F/batch:B   BatchNorm train forward+backward
//   bnorm/sweep/bn_eval/features:F/batch:B    BatchNorm eval forward
//       F in {64, 256, 1024, 4096}, B in {16, 64, 256, 1024, 4096}; sizes whose buffers
//       would pass 256 MiB are left out.
//   bnorm/sweep/dense_forward_train|dense_forward_eval|dense_backward/in:I/out:O/batch:B
//   bnorm/mlp_breakdown/batch:B
//       the MLP training step of bnorm/mlp64 and bnorm/mlp256 with each layer call timed:
//       counters give seconds per step in each kind of layer, the loss and the optimizer.
#include <benchmark/benchmark.h>

#include <array>
#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

#include "bnorm_benchmarks.hpp"

namespace {

using namespace bnorm_bench;

constexpr double sweep_memory_limit = 256.0 * 1024 * 1024;

// The BatchNorm sweep benchmarks read their sizes from the benchmark's arguments.
void sweep_batch_norm_train(benchmark::State& state) {
  batch_norm_train(state, {state.range(1), state.range(0)});
}
void sweep_batch_norm_eval(benchmark::State& state) {
  batch_norm_eval(state, {state.range(1), state.range(0)});
}

// Matrices alive in a BatchNorm benchmark: train keeps x, dy, y, xhat and dx; eval x and y.
void add_batch_norm_sizes(benchmark::internal::Benchmark* benchmark, int matrices) {
  benchmark->ArgNames({"features", "batch"});
  for (long features : {64, 256, 1024, 4096})
    for (long batch : {16, 64, 256, 1024, 4096})
      if (matrices * sizeof(float) * static_cast<double>(features * batch) <= sweep_memory_limit)
        benchmark->Args({features, batch});
}

struct DenseShape {
  long inputs, outputs, batch;
};
// The MLP's layers at its batch sizes (and one example), and a wider layer.
constexpr DenseShape dense_shapes[] = {{784, 256, 1},    {784, 256, 64},  {784, 256, 256},
                                       {256, 256, 64},   {256, 256, 256}, {256, 10, 256},
                                       {1024, 1024, 256}};

void add_dense_sizes(benchmark::internal::Benchmark* benchmark) {
  benchmark->ArgNames({"in", "out", "batch"});
  for (const DenseShape& shape : dense_shapes)
    benchmark->Args({shape.inputs, shape.outputs, shape.batch});
}

// y = W x. In Mode::train the layer also keeps x for backward, which the eval row omits.
void dense_forward(benchmark::State& state, Mode mode) {
  const Index inputs = state.range(0), outputs = state.range(1), batch = state.range(2);
  bnorm::Generator generator(4);
  const Matrix<float> x = random_matrix(inputs, batch, generator);
  bnorm::Dense<float> layer(inputs, outputs, bnorm::Bias::none);
  layer.forward(x, mode);
  for (auto _ : state) {
    benchmark::DoNotOptimize(layer.forward(x, mode).data());
    benchmark::ClobberMemory();
  }
  set_flops_counter(state, 2.0 * static_cast<double>(inputs * outputs * batch));
}

// dW = dy x^T and dx = W^T dy: twice the forward's FLOPs.
void dense_backward(benchmark::State& state) {
  const Index inputs = state.range(0), outputs = state.range(1), batch = state.range(2);
  bnorm::Generator generator(5);
  const Matrix<float> x = random_matrix(inputs, batch, generator);
  const Matrix<float> output_grad = random_matrix(outputs, batch, generator);
  bnorm::Dense<float> layer(inputs, outputs, bnorm::Bias::none);
  layer.forward(x, Mode::train);
  layer.backward(output_grad);
  for (auto _ : state) {
    benchmark::DoNotOptimize(layer.backward(output_grad).data());
    benchmark::ClobberMemory();
  }
  set_flops_counter(state, 4.0 * static_cast<double>(inputs * outputs * batch));
}

// The training step of bnorm/mlp64 and bnorm/mlp256 with the layers driven one by one, as
// Sequential drives them, and every call timed (steady_clock: some 25 ns a reading, where a
// CPU-time clock costs microseconds). Each counter holds wall seconds per step; their sum is
// the step less the Sequential's virtual calls.
enum class Part {
  dense_forward,
  batch_norm_forward,
  relu_forward,
  loss,
  dense_backward,
  batch_norm_backward,
  relu_backward,
  optimizer,
  count
};
constexpr const char* part_names[] = {"dense_fwd", "bn_fwd", "relu_fwd", "loss",
                                      "dense_bwd", "bn_bwd", "relu_bwd", "sgd"};
constexpr auto part_count = static_cast<std::size_t>(Part::count);

void mlp_breakdown(benchmark::State& state, long batch) {
  bnorm::Generator generator(2);
  const Matrix<float> x = random_matrix(mlp_inputs, batch, generator);
  const bnorm::Labels labels = random_labels(batch, generator);
  std::vector<bnorm::Dense<float>> dense;
  std::vector<bnorm::BatchNorm<float>> batch_norm;
  std::vector<bnorm::ReLU<float>> relu;
  dense.reserve(mlp_blocks + 1);  // parameter views point into the layers: no reallocation
  batch_norm.reserve(mlp_blocks);
  for (int block = 0; block < mlp_blocks; ++block) {
    dense.emplace_back(block == 0 ? mlp_inputs : mlp_hidden, mlp_hidden, bnorm::Bias::none);
    batch_norm.emplace_back(mlp_hidden);
    relu.emplace_back();
  }
  dense.emplace_back(mlp_hidden, mlp_classes);
  dense.front().set_input_gradient(false);
  std::vector<bnorm::Parameter<float>> parameters;
  for (auto& layer : dense)
    for (auto& parameter : layer.parameters()) parameters.push_back(parameter);
  for (auto& layer : batch_norm)
    for (auto& parameter : layer.parameters()) parameters.push_back(parameter);
  bnorm::SoftmaxCrossEntropy<float> loss;
  bnorm::SGD<float> optimizer(parameters, {.lr = mlp_learning_rate, .momentum = mlp_momentum});

  std::array<double, part_count> seconds{};
  auto timed = [&](Part part, auto&& call) -> decltype(auto) {
    const auto start = std::chrono::steady_clock::now();
    decltype(auto) result = call();
    seconds[static_cast<std::size_t>(part)] +=
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return result;
  };
  using Result = const Matrix<float>&;
  auto step = [&] {
    const Matrix<float>* h = &x;
    for (int block = 0; block < mlp_blocks; ++block) {
      h = &timed(Part::dense_forward,
                 [&]() -> Result { return dense[block].forward(*h, Mode::train); });
      h = &timed(Part::batch_norm_forward,
                 [&]() -> Result { return batch_norm[block].forward(*h, Mode::train); });
      h = &timed(Part::relu_forward,
                 [&]() -> Result { return relu[block].forward(*h, Mode::train); });
    }
    h = &timed(Part::dense_forward,
               [&]() -> Result { return dense.back().forward(*h, Mode::train); });
    const float value = timed(Part::loss, [&] { return loss.forward(*h, labels); });
    const Matrix<float>* g = &loss.backward();
    g = &timed(Part::dense_backward, [&]() -> Result { return dense.back().backward(*g); });
    for (int block = mlp_blocks - 1; block >= 0; --block) {
      g = &timed(Part::relu_backward, [&]() -> Result { return relu[block].backward(*g); });
      g = &timed(Part::batch_norm_backward,
                 [&]() -> Result { return batch_norm[block].backward(*g); });
      g = &timed(Part::dense_backward, [&]() -> Result { return dense[block].backward(*g); });
    }
    timed(Part::optimizer, [&] {
      optimizer.step();
      return 0;
    });
    return value;
  };
  for (int warm_up = 0; warm_up < 3; ++warm_up) step();
  seconds.fill(0.0);
  for (auto _ : state) benchmark::DoNotOptimize(step());
  for (std::size_t part = 0; part < part_count; ++part)
    state.counters[part_names[part]] =
        benchmark::Counter(seconds[part], benchmark::Counter::kAvgIterations);
}

void register_benchmarks() {
  add_batch_norm_sizes(
      configure(benchmark::RegisterBenchmark("bnorm/sweep/bn_train", sweep_batch_norm_train)), 5);
  add_batch_norm_sizes(
      configure(benchmark::RegisterBenchmark("bnorm/sweep/bn_eval", sweep_batch_norm_eval)), 2);
  add_dense_sizes(configure(
      benchmark::RegisterBenchmark("bnorm/sweep/dense_forward_train", dense_forward, Mode::train)));
  add_dense_sizes(configure(
      benchmark::RegisterBenchmark("bnorm/sweep/dense_forward_eval", dense_forward, Mode::eval)));
  add_dense_sizes(
      configure(benchmark::RegisterBenchmark("bnorm/sweep/dense_backward", dense_backward)));
  for (long batch : {mlp64_batch, mlp256_batch})
    configure(benchmark::RegisterBenchmark(
        ("bnorm/mlp_breakdown/batch:" + std::to_string(batch)).c_str(), mlp_breakdown, batch));
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  add_build_context();
  register_benchmarks();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
}
