// One training step of an MLP on Tanh and Adam (issue 10: the layers, the loss and the
// optimizer that moved from Eigen onto the dispatched kernels of core/kernels.hpp). Compare
// a default build with a -march=native one, and BNORM_ISA=baseline|avx2|avx512 within one
// build; each result names the variant that ran ("isa" in the context).
//
//   784 -> [Dense 256 -> Tanh] x 3 -> Dense 10, softmax cross-entropy, Adam (lr 1e-3), float.
#include <benchmark/benchmark.h>

#include <cmath>
#include <string>

#include "bnorm_benchmarks.hpp"

namespace {

using bnorm::Index;
using bnorm::Matrix;
using bnorm::Mode;

void tanh_adam_step(benchmark::State& state, long batch) {
  bnorm::Generator generator(2);
  Matrix<float> x(bnorm_bench::mlp_inputs, batch);
  for (Index i = 0; i < x.size(); ++i) x.data()[i] = float(generator.uniform(-1.0, 1.0));
  bnorm::Labels labels(batch);
  for (Index i = 0; i < batch; ++i)
    labels(i) = int(generator.below(bnorm_bench::mlp_classes));
  bnorm::Sequential<float> net;
  Index inputs = bnorm_bench::mlp_inputs;
  for (int block = 0; block < bnorm_bench::mlp_blocks; ++block) {
    net.add(bnorm::Dense<float>(inputs, bnorm_bench::mlp_hidden)).add(bnorm::Tanh<float>());
    inputs = bnorm_bench::mlp_hidden;
  }
  net.add(bnorm::Dense<float>(bnorm_bench::mlp_hidden, bnorm_bench::mlp_classes));
  net.set_input_gradient(false);
  bnorm::SoftmaxCrossEntropy<float> loss;
  bnorm::Adam<float> optimizer(net.parameters(), {.lr = 1e-3});
  auto step = [&] {
    const float value = loss.forward(net.forward(x, Mode::train), labels);
    net.backward(loss.backward());
    optimizer.step();
    return value;
  };
  for (int warm_up = 0; warm_up < 3; ++warm_up) step();
  float last_loss = 0.0f;
  for (auto _ : state) {
    last_loss = step();
    benchmark::DoNotOptimize(last_loss);
  }
  if (!std::isfinite(last_loss)) state.SkipWithError("the loss is not finite");
}

}  // namespace

int main(int argc, char** argv) {
  bnorm_bench::add_build_context();  // the build, and the variant that ran ("isa")
  for (const long batch : {64L, 256L})
    bnorm_bench::configure(benchmark::RegisterBenchmark(
        ("tanh_adam/" + std::to_string(batch)).c_str(), tanh_adam_step, batch));
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
}
