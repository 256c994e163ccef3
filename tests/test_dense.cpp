// bnorm-test-variant: isa_baseline BNORM_ISA=baseline  (also run on the baseline kernels)
#include <bnorm/layers/dense.hpp>

#include <doctest/doctest.h>

#include "support/errors.hpp"
#include "support/gradient_check.hpp"
#include "support/layer_checks.hpp"

#include <cmath>

using namespace bnorm;

TEST_CASE_TEMPLATE("Dense computes W x + b, one column per example", T, float, double) {
  Dense<T> dense(3, 2);
  dense.weight() << 1, 2, 3,
                    4, 5, 6;
  dense.bias() << T(0.5), T(-1);
  Matrix<T> x(3, 2);
  x << 1, 0,
       1, 1,
       1, 2;
  const Matrix<T>& y = dense.forward(x, Mode::eval);
  Matrix<T> expected(2, 2);
  expected << 6.5, 8.5,
              14, 16;
  CHECK(y.isApprox(expected));
}

TEST_CASE("Dense with Bias::none has no bias parameter and adds nothing") {
  Dense<double> dense(4, 3, Bias::none);
  CHECK_FALSE(dense.has_bias());
  CHECK(dense.bias().size() == 0);
  const auto parameters = dense.parameters();
  REQUIRE(parameters.size() == 1);
  CHECK(parameters[0].name() == "weight");
  const Matrix<double> x = Matrix<double>::Random(4, 5);
  CHECK(dense.forward(x, Mode::eval).isApprox(dense.weight() * x));
}

TEST_CASE("Dense gradients match finite differences, with and without bias") {
  for (Bias bias : {Bias::learned, Bias::none}) {
    Generator generator(3);
    Dense<double> dense(5, 4, bias, Init::pytorch_default(), generator);
    const auto check = bnorm_test::check_gradients(dense, bnorm_test::random_input(5, 6, 11));
    INFO(check.worst);
    CHECK(check.max_error < 1e-8);
    CHECK(check.entries_checked == 5 * 6 + 4 * 5 + (bias == Bias::learned ? 4 : 0));
  }
}

TEST_CASE("Dense gradients are overwritten by each backward, not accumulated") {
  Dense<double> dense(3, 2);
  const Matrix<double> x = Matrix<double>::Random(3, 4), dy = Matrix<double>::Random(2, 4);
  dense.forward(x, Mode::train);
  dense.backward(dy);
  const Matrix<double> first = dense.weight_grad();
  dense.forward(x, Mode::train);
  dense.backward(dy);
  CHECK(dense.weight_grad() == first);
  CHECK(dense.bias_grad().isApprox(dy.rowwise().sum()));
}

TEST_CASE("Dense keeps its own copy of the training input") {
  Dense<double> dense(2, 2);
  Matrix<double> x = Matrix<double>::Random(2, 3);
  const Matrix<double> dy = Matrix<double>::Random(2, 3);
  dense.forward(x, Mode::train);
  const Matrix<double> expected = dy * x.transpose();
  x.setZero();  // the caller reuses its buffer before backward
  dense.backward(dy);
  CHECK(dense.weight_grad().isApprox(expected));
}

TEST_CASE("Dense skips the input gradient when told it is not needed") {
  Dense<float> dense(3, 2);
  dense.set_input_gradient(false);
  dense.forward(Matrix<float>::Random(3, 4), Mode::train);
  CHECK(dense.backward(Matrix<float>::Random(2, 4)).size() == 0);
  CHECK(dense.weight_grad().norm() > 0);
}

TEST_CASE("Dense initializers draw from the documented distributions") {
  const Index in = 400, out = 300;
  Generator generator(5);
  SUBCASE("PyTorch default: weight and bias uniform within 1/sqrt(fan_in)") {
    Dense<double> dense(in, out, Bias::learned, Init::pytorch_default(), generator);
    const double bound = 1.0 / std::sqrt(double(in));
    CHECK(dense.weight().cwiseAbs().maxCoeff() <= bound);
    CHECK(dense.weight().cwiseAbs().maxCoeff() > 0.99 * bound);
    CHECK(dense.bias().cwiseAbs().maxCoeff() <= bound);
    // Uniform(-b, b) has standard deviation b / sqrt(3).
    const double stddev = std::sqrt(dense.weight().squaredNorm() / double(in * out));
    CHECK(stddev == doctest::Approx(bound / std::sqrt(3.0)).epsilon(0.01));
  }
  SUBCASE("He: normal with variance 2 / fan_in, zero bias") {
    Dense<double> dense(in, out, Bias::learned, Init::he(), generator);
    const double stddev = std::sqrt(dense.weight().squaredNorm() / double(in * out));
    CHECK(stddev == doctest::Approx(std::sqrt(2.0 / in)).epsilon(0.01));
    CHECK(std::abs(dense.weight().mean()) < 0.01 * stddev * 10);
    CHECK(dense.bias().isZero());
  }
  SUBCASE("Xavier: uniform within sqrt(6 / (fan_in + fan_out))") {
    Dense<double> dense(in, out, Bias::learned, Init::xavier(), generator);
    const double bound = std::sqrt(6.0 / (in + out));
    CHECK(dense.weight().cwiseAbs().maxCoeff() <= bound);
    CHECK(dense.weight().cwiseAbs().maxCoeff() > 0.99 * bound);
    CHECK(dense.bias().isZero());
  }
  SUBCASE("Gaussian(sigma)") {
    Dense<double> dense(in, out, Bias::learned, Init::gaussian(0.01), generator);
    const double stddev = std::sqrt(dense.weight().squaredNorm() / double(in * out));
    CHECK(stddev == doctest::Approx(0.01).epsilon(0.01));
    CHECK(dense.bias().isZero());
  }
}

TEST_CASE("The same seed gives bit-identical weights; another seed does not") {
  manual_seed(42);
  Dense<float> a(50, 20);
  manual_seed(42);
  Dense<float> b(50, 20);
  Dense<float> c(50, 20);  // the default generator has moved on
  CHECK(a.weight() == b.weight());
  CHECK(a.bias() == b.bias());
  CHECK(a.weight() != c.weight());
  Generator g1(9), g2(9);
  CHECK(Dense<double>(7, 3, Bias::none, Init::he(), g1).weight() ==
        Dense<double>(7, 3, Bias::none, Init::he(), g2).weight());
}

TEST_CASE("Dense reports bad shapes and misuse with the layer and both shapes") {
  Dense<float> dense(784, 256, Bias::none);
  CHECK_ERROR_MENTIONS(dense.forward(Matrix<float>::Zero(100, 64), Mode::train),
                       "Dense(784 -> 256, no bias)", "100 x 64", "784 x batch");
  CHECK_ERROR_MENTIONS(dense.forward(Matrix<float>::Zero(784, 0), Mode::train), "empty batch");
  CHECK_ERROR_MENTIONS(dense.backward(Matrix<float>::Zero(256, 8)), "Mode::train");
  dense.forward(Matrix<float>::Zero(784, 8), Mode::train);
  CHECK_ERROR_MENTIONS(dense.backward(Matrix<float>::Zero(256, 7)), "256 x 7", "256 x 8");
  dense.forward(Matrix<float>::Zero(784, 5), Mode::eval);  // a validation batch in between
  CHECK(dense.backward(Matrix<float>::Zero(256, 8)).cols() == 8);
  Dense<float> evaluated(784, 256);
  evaluated.forward(Matrix<float>::Zero(784, 8), Mode::eval);
  CHECK_ERROR_MENTIONS(evaluated.backward(Matrix<float>::Zero(256, 8)), "Mode::train",
                       "set_keep_for_backward");
  CHECK_ERROR_MENTIONS(Dense<float>(0, 3), "in_features", "positive");
  CHECK_ERROR_MENTIONS(Init::gaussian(-1.0), "sigma");
}

TEST_CASE("A square Dense applied to its own output buffer computes W (W x + b) + b") {
  Generator generator(11);
  Dense<double> dense(6, 6, Bias::learned, Init::pytorch_default(), generator);
  const Matrix<double> x = Matrix<double>::Random(6, 5);
  Dense<double> reference = dense;
  const Matrix<double> once = reference.forward(x, Mode::train);
  const Matrix<double> expected = reference.forward(once, Mode::train);
  const Matrix<double>& twice = dense.forward(dense.forward(x, Mode::train), Mode::train);
  CHECK(twice == expected);
  // The training forward saved its own input, the first output, not the overwritten buffer.
  const Matrix<double> dy = Matrix<double>::Random(6, 5);
  const Matrix<double> expected_dx = reference.backward(dy);
  CHECK(dense.backward(dy) == expected_dx);
  CHECK(dense.weight_grad() == reference.weight_grad());
  // Backward through its own input-gradient buffer too.
  const Matrix<double> expected_twice = reference.backward(expected_dx);
  CHECK(dense.backward(dense.backward(dy)) == expected_twice);
  // And a block of the output buffer, which overlaps it without starting at its start.
  const Matrix<double> right = dense.forward(x, Mode::eval).rightCols(2);
  const Matrix<double> expected_block = reference.forward(right, Mode::eval);
  CHECK(dense.forward(dense.forward(x, Mode::eval).rightCols(2), Mode::eval) == expected_block);
}

TEST_CASE("Dense: an eval forward between a training forward and its backward changes nothing") {
  Generator generator(12);
  const Dense<double> dense(4, 3, Bias::learned, Init::pytorch_default(), generator);
  bnorm_test::check_eval_between_forward_and_backward(dense, Matrix<double>::Random(4, 6),
                                                      Matrix<double>::Random(4, 2),
                                                      Matrix<double>::Random(3, 6));
}

TEST_CASE("Dense accumulates gradients over micro-batches when asked, and zero_grad clears") {
  Generator generator(13);
  const Dense<double> dense(5, 4, Bias::learned, Init::pytorch_default(), generator);
  std::vector<Matrix<double>> xs, dys;
  for (int i = 0; i < 4; ++i) {
    xs.push_back(Matrix<double>::Random(5, 3 + i));
    dys.push_back(Matrix<double>::Random(4, 3 + i));
  }
  bnorm_test::check_gradient_accumulation(dense, xs, dys, 1e-14);
  // Large enough for the persistent GEMM kernel (not Eigen's small-product path).
  const Dense<double> large(40, 30, Bias::none, Init::pytorch_default(), generator);
  for (auto& x : xs) x = Matrix<double>::Random(40, 32);
  for (auto& dy : dys) dy = Matrix<double>::Random(30, 32);
  bnorm_test::check_gradient_accumulation(large, xs, dys, 1e-14);
}

TEST_CASE("A frozen Dense weight or bias keeps its gradient; the other is still computed") {
  Generator generator(14);
  Dense<double> dense(4, 3, Bias::learned, Init::pytorch_default(), generator);
  auto parameters = dense.parameters();
  CHECK(parameters[0].trainable());
  parameters[0].set_trainable(false);
  CHECK_FALSE(dense.parameters()[0].trainable());  // the flag lives in the layer
  dense.weight_grad().setConstant(7.0);
  dense.forward(Matrix<double>::Random(4, 5), Mode::train);
  const Matrix<double> dy = Matrix<double>::Random(3, 5);
  const Matrix<double> dx = dense.backward(dy);
  CHECK((dense.weight_grad().array() == 7.0).all());  // dW skipped
  CHECK(dense.bias_grad().isApprox(dy.rowwise().sum()));
  CHECK(dx.isApprox(dense.weight().transpose() * dy));
  parameters[0].set_trainable(true);
  parameters[1].set_trainable(false);
  dense.bias_grad().setConstant(5.0);
  dense.backward(dy);
  CHECK((dense.bias_grad().array() == 5.0).all());
  CHECK_FALSE((dense.weight_grad().array() == 7.0).all());
}

TEST_CASE("Dense with keep_for_backward differentiates an eval forward") {
  Generator generator(15);
  Dense<double> dense(4, 3, Bias::learned, Init::pytorch_default(), generator);
  dense.set_keep_for_backward(true);
  const auto check = bnorm_test::check_gradients(dense, Matrix<double>::Random(4, 5),
                                                 {.mode = Mode::eval});
  CHECK(check.max_error < 1e-8);
  CHECK(check.entries_checked > 0);
}

TEST_CASE("Dense's weight is 2-D even with one input, its bias 1-D, as Linear's tensors") {
  Dense<double> dense(1, 3);
  const auto parameters = dense.parameters();
  CHECK(parameters[0].dimensions() == 2);  // [3, 1], like Linear(1, 3).weight
  CHECK(parameters[0].cols() == 1);
  CHECK(parameters[1].dimensions() == 1);  // [3]
}
