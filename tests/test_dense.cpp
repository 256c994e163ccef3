#include <bnorm/layers/dense.hpp>

#include <doctest/doctest.h>

#include "support/errors.hpp"
#include "support/gradient_check.hpp"

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
  dense.forward(Matrix<float>::Zero(784, 8), Mode::eval);
  CHECK_ERROR_MENTIONS(dense.backward(Matrix<float>::Zero(256, 8)), "Mode::train");
  CHECK_ERROR_MENTIONS(Dense<float>(0, 3), "in_features", "positive");
  CHECK_ERROR_MENTIONS(Init::gaussian(-1.0), "sigma");
}
