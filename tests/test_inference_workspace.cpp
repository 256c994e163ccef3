// Concurrent eval-mode inference: Sequential::infer with a caller-owned InferenceWorkspace
// (model/inference_workspace.hpp, core/layer.hpp's infer). scripts/test-tsan.sh runs this
// file under ThreadSanitizer.
#include "support/allocation_counter.hpp"  // first: it configures Eigen

#include <bnorm/bnorm.hpp>

#include <doctest/doctest.h>

#include <string>
#include <thread>
#include <vector>

using bnorm_test::allocations_during;
using namespace bnorm;

namespace {

template <class T>
Sequential<T> every_layer_network() {
  BatchNormOptions<T> untracked;
  untracked.track_running_stats = false;
  Sequential<T> inner{Dense<T>(40, 40, Bias::none), BatchNorm<T>(40, untracked), Tanh<T>(),
                      Sequential<T>{Dense<T>(40, 36), Identity<T>()}};
  return Sequential<T>{Dense<T>(24, 40), BatchNorm<T>(40), ReLU<T>(), inner,
                       LeakyReLU<T>(T(0.1)), Dropout<T>(0.3), Dense<T>(36, 36),
                       Sigmoid<T>(),        Dense<T>(36, 10)};
}

// Trained for a few steps, so that running statistics and weights are not their defaults.
template <class T>
Sequential<T> trained_network() {
  auto net = every_layer_network<T>();
  SGD<T> sgd(net.parameters(), SGDOptions<T>{.lr = T(0.05)});
  SoftmaxCrossEntropy<T> loss;
  const Matrix<T> x = Matrix<T>::Random(24, 48);
  const Labels labels = Labels::LinSpaced(48, 0, 9);
  for (int step = 0; step < 3; ++step) {
    loss.forward(net.forward(x, Mode::train), labels);
    net.backward(loss.backward());
    sgd.step();
  }
  return net;
}

struct NoInfer {
  bnorm::Matrix<float> y;
  const bnorm::Matrix<float>& forward(const Eigen::Ref<const bnorm::Matrix<float>>& x, Mode) {
    return y = x;
  }
  const bnorm::Matrix<float>& backward(const Eigen::Ref<const bnorm::Matrix<float>>& dy) {
    return y = dy;
  }
  std::string name() const { return "NoInfer"; }
};

}  // namespace

// First in the file, so that the GEMM variant (core/isa.hpp) is chosen by these threads.
TEST_CASE_TEMPLATE("Four threads infer at once, each result the serial one", T, float, double) {
  const auto net = trained_network<T>();
  constexpr int thread_count = 4, repeats = 25;
  std::vector<Matrix<T>> inputs, results(thread_count);
  for (int t = 0; t < thread_count; ++t) inputs.push_back(Matrix<T>::Random(24, 20 + 7 * t));
  std::vector<int> mismatches(thread_count, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < thread_count; ++t)
    threads.emplace_back([&, t] {
      InferenceWorkspace<T> workspace;
      for (int r = 0; r < repeats; ++r) {
        const Matrix<T>& y = net.infer(inputs[std::size_t(t)], workspace);
        if (r == 0) results[std::size_t(t)] = y;
        else if (y != results[std::size_t(t)]) ++mismatches[std::size_t(t)];
      }
    });
  for (auto& thread : threads) thread.join();
  auto serial = net;  // forward needs a non-const network
  for (int t = 0; t < thread_count; ++t) {
    CAPTURE(t);
    CHECK(mismatches[std::size_t(t)] == 0);
    CHECK(results[std::size_t(t)] == serial.forward(inputs[std::size_t(t)], Mode::eval));
  }
}

TEST_CASE_TEMPLATE("infer equals forward in eval mode, bit for bit, for every layer", T, float,
                   double) {
  auto net = trained_network<T>();
  const Matrix<T> x = Matrix<T>::Random(24, 33);
  InferenceWorkspace<T> workspace;
  const Matrix<T> expected = net.forward(x, Mode::eval);
  CHECK(net.infer(x, workspace) == expected);
  CHECK(workspace.output() == expected);
  // Each layer type alone (nested Sequentials included), on its own input.
  Matrix<T> input = x;
  for (std::size_t i = 0; i < net.size(); ++i) {
    CAPTURE(net.layer_name(i));
    Sequential<T> single;
    single.add_copy(net, i);
    InferenceWorkspace<T> own;
    const Matrix<T> layer_output = single.forward(input, Mode::eval);
    CHECK(single.infer(input, own) == layer_output);
    input = layer_output;
  }
  // Another batch size in the same workspace.
  const Matrix<T> small = Matrix<T>::Random(24, 5);
  CHECK(net.infer(small, workspace) == net.forward(small, Mode::eval));
}

TEST_CASE("infer changes nothing: a pending backward is unchanged") {
  auto net = trained_network<double>();
  const Matrix<double> x = Matrix<double>::Random(24, 16), dy = Matrix<double>::Random(10, 16);
  auto reference = net;
  net.forward(x, Mode::train);
  reference.forward(x, Mode::train);
  InferenceWorkspace<double> workspace;
  net.infer(Matrix<double>::Random(24, 9), workspace);
  CHECK(net.backward(dy) == reference.backward(dy));
  const auto buffers = net.buffers(), reference_buffers = reference.buffers();
  for (std::size_t i = 0; i < buffers.size(); ++i)
    if (buffers[i].kind() == BufferKind::values)
      CHECK(buffers[i].values() == reference_buffers[i].values());
}

TEST_CASE("A layer without infer makes infer throw, naming it") {
  Sequential<float> net{Dense<float>(4, 4), NoInfer{}};
  InferenceWorkspace<float> workspace;
  const Matrix<float> x = Matrix<float>::Random(4, 3);
  CHECK_THROWS_WITH_AS(net.infer(x, workspace),
                       doctest::Contains("layer 1 of 2: NoInfer: this layer type has no const infer"),
                       Error);
  CHECK_NOTHROW(net.forward(x, Mode::eval));  // forward still serves a layer without infer
}

TEST_CASE("infer refuses a wrong shape and its own workspace's buffer as input") {
  const auto net = trained_network<float>();
  InferenceWorkspace<float> workspace;
  CHECK_THROWS_WITH_AS(net.infer(Matrix<float>::Random(23, 4), workspace),
                       doctest::Contains("layer 0 of 9"), Error);
  const Matrix<float>& y = net.infer(Matrix<float>::Random(24, 4), workspace);
  CHECK_THROWS_WITH_AS(net.infer(y, workspace), doctest::Contains("buffer of the workspace"),
                       Error);
}

TEST_CASE_TEMPLATE("infer allocates nothing after the first call at a batch size", T, float,
                   double) {
  const auto net = trained_network<T>();
  const Matrix<T> x = Matrix<T>::Random(24, 64);
  InferenceWorkspace<T> workspace;
  net.infer(x, workspace);
  CHECK(allocations_during([&] {
          for (int i = 0; i < 3; ++i) net.infer(x, workspace);
        }) == 0);
}
