// The six workloads of bench_workloads.cpp done with dlib 19.24 (Debian's libdlib-dev),
// named "dlib/<workload>" so that bench/report.py sets them beside bnorm's. Adapted from
// shared/reference/dlib/bench_dlib.cpp, whose figures the targets refer to.
//
// dlib's CPU tensor code is single-threaded; its fc layers call the BLAS that libblas.so.3
// resolves to, so run it with OPENBLAS_NUM_THREADS=1. Tensors are (batch, features): the
// same bytes as bnorm's features x batch column-major matrices.
#include <benchmark/benchmark.h>
#include <dlib/dnn.h>
#include <dlib/revision.h>

#include <random>
#include <string>
#include <vector>

#include "../workloads.hpp"

namespace {

using namespace bnorm_bench;

template <typename Subnet>
using block = dlib::relu<dlib::bn_fc<dlib::fc_no_bias<mlp_hidden, Subnet>>>;
// dlib runs a trained network's BatchNorm as an affine layer built from the running
// statistics: the inference network of the same MLP.
template <typename Subnet>
using inference_block = dlib::relu<dlib::affine<dlib::fc_no_bias<mlp_hidden, Subnet>>>;
using Input = dlib::input<dlib::matrix<float>>;
using TrainingNet = dlib::loss_multiclass_log<dlib::fc<mlp_classes, block<block<block<Input>>>>>;
using InferenceNet = dlib::loss_multiclass_log<
    dlib::fc<mlp_classes, inference_block<inference_block<inference_block<Input>>>>>;
static_assert(mlp_blocks == 3, "the network types above spell out three blocks");

// The least a layer's forward and backward need from the layer below: its output, and a
// buffer for the gradient with respect to it.
struct InputStub {
  dlib::resizable_tensor output, gradient;
  const dlib::tensor& get_output() const { return output; }
  dlib::tensor& get_gradient_input() { return gradient; }
};

std::vector<dlib::matrix<float>> random_samples(long count, std::mt19937& random) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<dlib::matrix<float>> samples(count, dlib::matrix<float>(mlp_inputs, 1));
  for (auto& sample : samples)
    for (auto& value : sample) value = normal(random);
  return samples;
}

std::vector<unsigned long> random_labels(long count, std::mt19937& random) {
  std::uniform_int_distribution<unsigned long> label(0, mlp_classes - 1);
  std::vector<unsigned long> labels(count);
  for (auto& value : labels) value = label(random);
  return labels;
}

// dx is accumulated (+=) into the stub's gradient, as libtorch's x.grad.
void batch_norm_train(benchmark::State& state, BatchNormShape shape) {
  InputStub input;
  input.output.set_size(shape.batch, shape.features);
  dlib::tt::tensor_rand random(0);
  random.fill_gaussian(input.output, 0, 1);
  input.gradient.copy_size(input.output);
  input.gradient = 0;
  dlib::resizable_tensor output_grad;
  output_grad.copy_size(input.output);
  random.fill_gaussian(output_grad, 0, 1);
  dlib::bn_<dlib::FC_MODE> layer;
  layer.setup(input);
  dlib::resizable_tensor output, params_grad;
  params_grad.copy_size(layer.get_layer_params());
  layer.forward(input, output);  // sizes the output outside the timed loop
  layer.backward(output_grad, input, params_grad);
  for (auto _ : state) {
    layer.forward(input, output);  // batch statistics and the running-statistics update
    layer.backward(output_grad, input, params_grad);
    benchmark::DoNotOptimize(input.gradient.host());
  }
  set_bytes_processed(state, batch_norm_train_bytes(shape.batch, shape.features));
}

void batch_norm_eval(benchmark::State& state, BatchNormShape shape) {
  InputStub input;
  input.output.set_size(shape.batch, shape.features);
  dlib::tt::tensor_rand random(0);
  random.fill_gaussian(input.output, 0, 1);
  dlib::bn_<dlib::FC_MODE> layer;
  layer.setup(input);
  dlib::affine_ inference_layer(layer);
  dlib::resizable_tensor output;
  output.copy_size(input.output);
  inference_layer.forward_inplace(input.output, output);  // touches the output's pages
  for (auto _ : state) {
    inference_layer.forward_inplace(input.output, output);
    benchmark::DoNotOptimize(output.host());
  }
  set_bytes_processed(state, batch_norm_eval_bytes(shape.batch, shape.features));
}

void mlp_train_step(benchmark::State& state, long batch) {
  std::mt19937 random(0);
  TrainingNet net;
  const auto samples = random_samples(batch, random);
  const auto labels = random_labels(batch, random);
  dlib::resizable_tensor x;
  net.to_tensor(samples.begin(), samples.end(), x);  // converted once, as libtorch's x
  std::vector<dlib::sgd> solvers(TrainingNet::num_computational_layers,
                                 dlib::sgd(/*weight_decay=*/0, mlp_momentum));
  auto step = [&] {
    const double loss = net.compute_parameter_gradients(x, labels.begin());
    net.update_parameters(solvers, mlp_learning_rate);
    return loss;
  };
  for (int warm_up = 0; warm_up < 3; ++warm_up) step();
  double last_loss = 0.0;
  for (auto _ : state) {
    last_loss = step();
    benchmark::DoNotOptimize(last_loss);
  }
  if (!std::isfinite(last_loss)) state.SkipWithError("the loss is not finite");
  set_flops_counter(state, mlp_train_step_flops(batch));
}

void mlp_inference(benchmark::State& state) {
  std::mt19937 random(0);
  TrainingNet net;
  {  // one forward sizes the layers; then the BatchNorms become affine layers
    const auto samples = random_samples(2, random);
    dlib::resizable_tensor x;
    net.to_tensor(samples.begin(), samples.end(), x);
    net.subnet().forward(x);
  }
  InferenceNet inference_net = net;
  const auto samples = random_samples(mlp_inference_batch, random);
  dlib::resizable_tensor x;
  inference_net.to_tensor(samples.begin(), samples.end(), x);
  for (auto _ : state) benchmark::DoNotOptimize(inference_net.subnet().forward(x).host());
  set_flops_counter(state, mlp_forward_flops(mlp_inference_batch));
}

void register_benchmarks() {
  configure(benchmark::RegisterBenchmark("dlib/bn_small", batch_norm_train, bn_small));
  configure(benchmark::RegisterBenchmark("dlib/bn_large", batch_norm_train, bn_large));
  configure(benchmark::RegisterBenchmark("dlib/bn_eval", batch_norm_eval, bn_eval));
  configure(benchmark::RegisterBenchmark("dlib/mlp64", mlp_train_step, mlp64_batch));
  configure(benchmark::RegisterBenchmark("dlib/mlp256", mlp_train_step, mlp256_batch));
  configure(benchmark::RegisterBenchmark("dlib/infer1", mlp_inference));
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::AddCustomContext("library", "dlib " + std::to_string(DLIB_MAJOR_VERSION) + "." +
                                             std::to_string(DLIB_MINOR_VERSION));
  benchmark::AddCustomContext("build", BNORM_BENCH_BUILD);
  benchmark::AddCustomContext("blas", loaded_library("libblas.so"));
  register_benchmarks();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
}
