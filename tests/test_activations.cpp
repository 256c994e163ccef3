// ReLU, LeakyReLU, Sigmoid, Tanh and Identity (layers/relu.hpp ... layers/identity.hpp).
// bnorm-test-variant: isa_baseline BNORM_ISA=baseline  (also run on the baseline kernels)
#include <bnorm/layers/identity.hpp>
#include <bnorm/layers/leaky_relu.hpp>
#include <bnorm/layers/relu.hpp>
#include <bnorm/layers/sigmoid.hpp>
#include <bnorm/layers/tanh.hpp>

#include <doctest/doctest.h>

#include "support/errors.hpp"
#include "support/gradient_check.hpp"
#include "support/layer_checks.hpp"

#include <cmath>

using namespace bnorm;
using bnorm_test::random_input;

namespace {
Matrix<double> sample_points() {
  Matrix<double> x(2, 4);
  x << -3.0, -0.5, 0.25, 2.0,
       -40.0, 0.0, 1.0, 40.0;
  return x;
}

template <class L>
void check_elementwise(L& layer, double (*f)(double)) {
  const Matrix<double> x = sample_points();
  const Matrix<double> y = layer.forward(x, Mode::train);
  for (Index i = 0; i < x.size(); ++i) CHECK(y(i) == doctest::Approx(f(x(i))).epsilon(1e-15));
  // Kinks at 0 are avoided by the margin.
  const Matrix<double> points = random_input(3, 5, 8, 1e-3) * 2.0;
  const auto check = bnorm_test::check_gradients(layer, points);
  INFO(check.worst);
  CHECK(check.max_error < 1e-8);
  // A validation batch between a training forward and its backward changes nothing.
  bnorm_test::check_eval_between_forward_and_backward(layer, points, random_input(3, 2, 9),
                                                      random_input(3, 5, 10));
  // With keep_for_backward, backward differentiates an eval forward.
  L kept = layer;
  kept.set_keep_for_backward(true);
  const auto eval_check = bnorm_test::check_gradients(kept, points, {.mode = Mode::eval});
  INFO(eval_check.worst);
  CHECK(eval_check.max_error < 1e-8);
  // Applied to its own output buffer, in both modes, and backward through the saved input.
  for (const Mode mode : {Mode::train, Mode::eval}) {
    L reference = layer, self = layer;
    const Matrix<double> once = reference.forward(points, mode);
    const Matrix<double> expected = reference.forward(once, mode);
    CHECK(self.forward(self.forward(points, mode), mode) == expected);
    if (mode == Mode::train) {
      const Matrix<double> dy = random_input(3, 5, 11);
      CHECK(self.backward(dy) == reference.backward(dy));
    }
  }
}
}  // namespace

TEST_CASE("ReLU") {
  ReLU<double> layer;
  check_elementwise(layer, [](double v) { return v > 0 ? v : 0.0; });
  layer.forward(sample_points(), Mode::train);
  const Matrix<double> dx = layer.backward(Matrix<double>::Ones(2, 4));
  CHECK(dx(1, 1) == 0.0);  // at x = 0 the gradient is 0, as PyTorch
}

TEST_CASE("LeakyReLU with positive and negative slopes") {
  LeakyReLU<double> positive(0.1);
  check_elementwise(positive, [](double v) { return v > 0 ? v : 0.1 * v; });
  LeakyReLU<double> negative(-0.2);
  check_elementwise(negative, [](double v) { return v > 0 ? v : -0.2 * v; });
  CHECK(LeakyReLU<float>().slope() == doctest::Approx(0.01));
}

TEST_CASE("Sigmoid saturates without overflow") {
  Sigmoid<double> layer;
  check_elementwise(layer, [](double v) { return 1.0 / (1.0 + std::exp(-v)); });
  Sigmoid<float> single;
  Matrix<float> extreme(1, 3);
  extreme << -1e4f, 0.0f, 1e4f;
  const Matrix<float> y = single.forward(extreme, Mode::train);
  CHECK(y.allFinite());
  CHECK(y(0) == doctest::Approx(0.0));
  CHECK(y(2) == doctest::Approx(1.0));
  CHECK(single.backward(Matrix<float>::Ones(1, 3)).allFinite());
}

TEST_CASE("Tanh") {
  Tanh<double> layer;
  check_elementwise(layer, [](double v) { return std::tanh(v); });
}

TEST_CASE("Identity") {
  Identity<double> layer;
  check_elementwise(layer, [](double v) { return v; });
}

TEST_CASE("Float activations agree with double ones") {
  const Matrix<double> x = random_input(16, 16, 3) * 3.0;
  const Matrix<float> xf = x.cast<float>();
  Sigmoid<float> sf;
  Sigmoid<double> sd;
  CHECK((sf.forward(xf, Mode::eval).cast<double>() - sd.forward(x, Mode::eval)).cwiseAbs().maxCoeff() < 1e-6);
  Tanh<float> tf;
  Tanh<double> td;
  CHECK((tf.forward(xf, Mode::eval).cast<double>() - td.forward(x, Mode::eval)).cwiseAbs().maxCoeff() < 1e-6);
}

TEST_CASE("Activations report misuse") {
  ReLU<float> relu;
  CHECK_ERROR_MENTIONS(relu.backward(Matrix<float>::Zero(2, 2)), "ReLU", "Mode::train");
  relu.forward(Matrix<float>::Zero(3, 4), Mode::train);
  CHECK_ERROR_MENTIONS(relu.backward(Matrix<float>::Zero(3, 5)), "ReLU", "3 x 5", "3 x 4");
  CHECK_ERROR_MENTIONS(relu.forward(Matrix<float>::Zero(3, 0), Mode::eval), "empty batch");
  CHECK_ERROR_MENTIONS(LeakyReLU<float>(std::nanf("")), "slope");
}

// A block of a larger matrix (columns not adjacent) goes to the kernels column by column
// (layers/elementwise.hpp, for_each_contiguous_run): the same results as its copy, forward
// and backward, in float at a size with partial registers.
template <class L>
void check_block_equals_copy(L&& on_block, L&& on_copy) {
  const Matrix<float> whole = Matrix<float>::Random(21, 9) * 4.0f;
  const Matrix<float> copy = whole.middleRows(2, 17);
  const Matrix<float> dy_whole = Matrix<float>::Random(21, 9);
  const Matrix<float> dy_copy = dy_whole.middleRows(3, 17);
  const Matrix<float> y = on_block.forward(whole.middleRows(2, 17), Mode::train);
  CHECK(y == on_copy.forward(copy, Mode::train));
  CHECK(on_block.backward(dy_whole.middleRows(3, 17)) == on_copy.backward(dy_copy));
}

TEST_CASE("Every activation gives a block of a matrix the results of its copy") {
  check_block_equals_copy(ReLU<float>(), ReLU<float>());
  check_block_equals_copy(LeakyReLU<float>(-0.3f), LeakyReLU<float>(-0.3f));
  check_block_equals_copy(Sigmoid<float>(), Sigmoid<float>());
  check_block_equals_copy(Tanh<float>(), Tanh<float>());
}
