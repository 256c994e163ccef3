// After the first step at a batch size, a whole training step (forward, loss, backward,
// optimizer step) makes no heap allocation. Two counters watch: every operator new in this
// program, and every Eigen heap allocation (EIGEN_RUNTIME_NO_MALLOC turns them into failed
// eigen_asserts, which this file counts instead of aborting).
#include "support/allocation_counter.hpp"  // first: it configures Eigen

#include <bnorm/bnorm.hpp>

#include <doctest/doctest.h>

#include "support/networks.hpp"

using bnorm_test::allocations_during;
using namespace bnorm;

namespace {
template <class T>
Sequential<T> every_layer_network() {
  return Sequential<T>{Dense<T>(20, 16, Bias::none), BatchNorm<T>(16), ReLU<T>(),
                       Dense<T>(16, 16, Bias::none), BatchNorm<T>(16), LeakyReLU<T>(T(0.1)),
                       Dense<T>(16, 12),  Sigmoid<T>(),  Dropout<T>(0.2),
                       Dense<T>(12, 12),  Tanh<T>(),     Identity<T>(),
                       Dense<T>(12, 5)};
}

template <class T, class Optimizer>
void check_steady_state(auto options) {
  auto net = every_layer_network<T>();
  net.set_input_gradient(false);
  Optimizer optimizer(net.parameters(), options);
  SoftmaxCrossEntropy<T> loss;
  const Matrix<T> x = Matrix<T>::Random(20, 32);
  Labels labels = Labels::LinSpaced(32, 0, 4);
  auto step = [&] {
    loss.forward(net.forward(x, Mode::train), labels);
    net.backward(loss.backward());
    optimizer.step();
  };
  step();  // sizes every buffer
  CHECK(allocations_during([&] {
          for (int i = 0; i < 3; ++i) step();
        }) == 0);
  // Inference at a fixed batch size is allocation-free too.
  net.forward(x, Mode::eval);
  CHECK(allocations_during([&] { net.forward(x, Mode::eval); }) == 0);
}
}  // namespace

TEST_CASE_TEMPLATE("A steady-state training step allocates nothing", T, float, double) {
  check_steady_state<T, SGD<T>>(SGDOptions<T>{.lr = T(0.01), .momentum = T(0.9), .weight_decay = T(1e-4)});
  check_steady_state<T, SGD<T>>(SGDOptions<T>{.lr = T(0.01), .momentum = T(0.9), .nesterov = true});
  check_steady_state<T, Adam<T>>(AdamOptions<T>{.lr = T(1e-3), .weight_decay = T(1e-4)});
  check_steady_state<T, AdamW<T>>(AdamWOptions<T>{.lr = T(1e-3)});
  check_steady_state<T, RMSprop<T>>(RMSpropOptions<T>{.lr = T(1e-3), .momentum = T(0.9), .centered = true});
}

TEST_CASE("A step with parameter groups, clipping and a schedule allocates nothing") {
  auto net = every_layer_network<float>();
  auto parameters = net.parameters();  // kept: net.parameters() builds a new vector
  SGD<float> sgd(split_weight_decay(parameters), {.lr = 0.1, .momentum = 0.9, .weight_decay = 1e-4});
  OneCycleLR one_cycle(sgd, {.max_lr = 0.1, .total_steps = 10});
  ReduceLROnPlateau plateau(sgd, {.patience = 0});
  SoftmaxCrossEntropy<float> loss;
  const Matrix<float> x = Matrix<float>::Random(20, 32);
  const Labels labels = Labels::LinSpaced(32, 0, 4);
  auto step = [&] {
    const float value = loss.forward(net.forward(x, Mode::train), labels);
    net.backward(loss.backward());
    clip_grad_norm(parameters, 1.0);
    clip_grad_value(parameters, 0.5);
    sgd.step();
    one_cycle.step();
    plateau.step(value);
  };
  step();
  CHECK(allocations_during([&] { for (int i = 0; i < 3; ++i) step(); }) == 0);
}

TEST_CASE("The flagship step (784 -> [256 -> BatchNorm -> ReLU] x 3 -> 10) allocates nothing") {
  // Large enough that Eigen's own product would put its packing workspace on the heap.
  Sequential<float> net = bnorm_test::flagship_network<float>();
  net.set_input_gradient(false);
  SGD<float> sgd(net.parameters(), {.lr = 0.05f, .momentum = 0.9f});
  SoftmaxCrossEntropy<float> loss;
  const Matrix<float> x = Matrix<float>::Random(784, 64);
  const Labels labels = Labels::LinSpaced(64, 0, 9);
  auto step = [&] {
    loss.forward(net.forward(x, Mode::train), labels);
    net.backward(loss.backward());
    sgd.step();
  };
  step();
  CHECK(allocations_during([&] { step(); step(); }) == 0);
  // Eigen's plain product of the same shape does allocate: the test would notice.
  Matrix<float> product(256, 64);
  const Matrix<float>& weight = net.layer<Dense<float>>(0).weight();
  CHECK(allocations_during([&] { product.noalias() = weight * x; }) > 0);
}

TEST_CASE("The counters see Eigen and operator new allocations (the test can fail)") {
  CHECK(allocations_during([] { Matrix<float> m(10, 10); m.setZero(); }) >= 1);
  CHECK(allocations_during([] { std::vector<int> v(10); v[0] = 1; }) == 1);
  Dense<float> dense(4, 3);
  dense.forward(Matrix<float>::Random(4, 8), Mode::train);
  CHECK(allocations_during([&] { dense.forward(Matrix<float>::Random(4, 9), Mode::train); }) > 0);
}

TEST_CASE("Accumulation, validation batches between forward and backward, and a Dense applied to "
          "its own output allocate nothing once sized") {
  Sequential<float> net = bnorm_test::flagship_network<float>();
  net.set_input_gradient(false);
  net.set_accumulate_gradients(true);
  SGD<float> sgd(net.parameters(), {.lr = 0.05f, .momentum = 0.9f});
  SoftmaxCrossEntropy<float> loss;
  // A validation batch of the training batch's size (another size resizes the buffers).
  const Matrix<float> x = Matrix<float>::Random(784, 64);
  const Matrix<float> validation = Matrix<float>::Random(784, 64);
  const Labels labels = Labels::LinSpaced(64, 0, 9);
  Dense<float> square(256, 256);
  const Matrix<float> h = Matrix<float>::Random(256, 64);
  auto step = [&] {
    net.zero_grad();
    for (int micro = 0; micro < 2; ++micro) {
      loss.forward(net.forward(x, Mode::train), labels);
      net.forward(validation, Mode::eval);
      net.backward(loss.backward());
    }
    sgd.step();
    square.forward(square.forward(h, Mode::train), Mode::train);
    square.backward(square.backward(h));
  };
  step();
  step();  // the swapped buffers of the square Dense are both sized now
  CHECK(allocations_during([&] { step(); step(); }) == 0);
}
