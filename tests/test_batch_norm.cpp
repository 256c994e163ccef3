#include <bnorm/layers/batch_norm.hpp>

#include <doctest/doctest.h>

#include "support/errors.hpp"
#include "support/gradient_check.hpp"

#include <cmath>

using namespace bnorm;
using bnorm_test::random_input;

TEST_CASE_TEMPLATE("BatchNorm in training normalizes each feature to mean 0, variance 1", T,
                   float, double) {
  BatchNorm<T> norm(3);
  const Matrix<T> x = (random_input(3, 50, 1) * 4.0).array().cast<T>() + T(2);
  const Matrix<T>& y = norm.forward(x, Mode::train);
  const T tolerance = std::is_same_v<T, float> ? T(1e-5) : T(1e-12);
  for (Index f = 0; f < 3; ++f) {
    const T mean = y.row(f).mean();
    const T variance = (y.row(f).array() - mean).square().mean();
    CHECK(std::abs(mean) < tolerance);
    // eps inside the square root: var(y) = var / (var + eps), a hair under 1.
    CHECK(std::abs(variance - T(1)) < T(1e-5) * 2);
  }
}

TEST_CASE("BatchNorm scales and shifts with gamma and beta after normalizing") {
  BatchNorm<double> norm(2, {.momentum = 0.1, .eps = 1e-5});
  norm.gamma() << 2.0, -0.5;
  norm.beta() << 1.0, 3.0;
  Matrix<double> x(2, 4);
  x << 1, 2, 3, 4,
       10, 10, 20, 20;
  const Matrix<double> y = norm.forward(x, Mode::train);
  const double std0 = std::sqrt(1.25 + 1e-5), std1 = std::sqrt(25.0 + 1e-5);
  CHECK(y(0, 0) == doctest::Approx(2.0 * (1 - 2.5) / std0 + 1.0).epsilon(1e-14));
  CHECK(y(1, 3) == doctest::Approx(-0.5 * (20 - 15) / std1 + 3.0).epsilon(1e-14));
}

TEST_CASE("Running statistics follow PyTorch: momentum blend, unbiased variance") {
  BatchNorm<double> norm(2, {.momentum = 0.3, .eps = 1e-3});
  Matrix<double> x(2, 4);
  x << 1, 2, 3, 4,
       10, 10, 20, 20;
  norm.forward(x, Mode::train);
  // batch mean (2.5, 15); unbiased variance (5/3, 100/3).
  CHECK(norm.running_mean()(0) == doctest::Approx(0.7 * 0 + 0.3 * 2.5));
  CHECK(norm.running_mean()(1) == doctest::Approx(0.3 * 15));
  CHECK(norm.running_var()(0) == doctest::Approx(0.7 * 1 + 0.3 * 5.0 / 3.0));
  CHECK(norm.running_var()(1) == doctest::Approx(0.7 * 1 + 0.3 * 100.0 / 3.0));
  CHECK(norm.num_batches_tracked() == 1);
}

TEST_CASE("Eval mode uses the running statistics and changes nothing") {
  BatchNorm<double> norm(2);
  norm.running_mean() << 1.0, -2.0;
  norm.running_var() << 4.0, 0.25;
  norm.gamma() << 3.0, 1.0;
  norm.beta() << 0.5, 0.0;
  Matrix<double> x(2, 1);  // a single example is fine in eval mode
  x << 3.0, -1.0;
  const Matrix<double> y = norm.forward(x, Mode::eval);
  CHECK(y(0, 0) == doctest::Approx(3.0 * (3.0 - 1.0) / std::sqrt(4.0 + 1e-5) + 0.5));
  CHECK(y(1, 0) == doctest::Approx((-1.0 + 2.0) / std::sqrt(0.25 + 1e-5)));
  CHECK(norm.running_mean() == Vector<double>((Vector<double>(2) << 1.0, -2.0).finished()));
  CHECK(norm.running_var() == Vector<double>((Vector<double>(2) << 4.0, 0.25).finished()));
  CHECK(norm.num_batches_tracked() == 0);
}

TEST_CASE("BatchNorm gradients match finite differences for input, gamma and beta") {
  BatchNorm<double> norm(4);
  Generator generator(2);
  for (Index f = 0; f < 4; ++f) {
    norm.gamma()(f) = generator.normal(1.0, 0.5);
    norm.beta()(f) = generator.normal();
  }
  for (Index batch : {2, 3, 16}) {
    const auto check = bnorm_test::check_gradients(norm, random_input(4, batch, 20 + batch) * 3.0);
    INFO("batch ", batch, ": ", check.worst);
    CHECK(check.max_error < 1e-7);
  }
}

// Ill-conditioned input: a large offset against a small spread. E[x^2] - E[x]^2 would lose
// every significant digit here; the shifted two-pass form keeps them.
TEST_CASE_TEMPLATE("BatchNorm statistics stay accurate for a large mean and a small spread", T,
                   float, double) {
  const double mean = std::is_same_v<T, float> ? 1e2 : 1e3;
  const double spread = std::is_same_v<T, float> ? 1e-1 : 1e-2;
  const Index features = 8, batch = 256;
  Matrix<T> x = (random_input(features, batch, 4) * spread).array().cast<T>() + T(mean);
  // Reference statistics of the rounded x, in long double.
  BatchNorm<T> norm(features, {.momentum = T(1), .eps = T(1e-5)});
  const Matrix<T>& y = norm.forward(x, Mode::train);
  const double tolerance = std::is_same_v<T, float> ? 1e-4 : 1e-10;
  for (Index f = 0; f < features; ++f) {
    long double sum = 0;
    for (Index j = 0; j < batch; ++j) sum += x(f, j);
    const long double exact_mean = sum / batch;
    long double squares = 0;
    for (Index j = 0; j < batch; ++j) squares += (x(f, j) - exact_mean) * (x(f, j) - exact_mean);
    const long double exact_var = squares / batch;
    CHECK(double(std::abs(norm.running_mean()(f) - exact_mean) / std::sqrt(exact_var)) < tolerance);
    CHECK(double(std::abs(norm.running_var()(f) - exact_var * batch / (batch - 1)) / exact_var) <
          tolerance * 10);
    for (Index j = 0; j < batch; ++j) {
      const long double exact_y = (x(f, j) - exact_mean) / std::sqrt(exact_var + T(1e-5));
      CHECK(double(std::abs(y(f, j) - exact_y)) < tolerance * 10);
    }
  }
}

TEST_CASE("A training batch of one example is an error, never NaN or a silent eval") {
  BatchNorm<float> norm(16);
  CHECK_ERROR_MENTIONS(norm.forward(Matrix<float>::Ones(16, 1), Mode::train), "BatchNorm(16)",
                       "batch of one", "Mode::eval");
  CHECK(norm.num_batches_tracked() == 0);  // nothing changed
  CHECK(norm.running_mean().isZero());
}

TEST_CASE("BatchNorm reports bad shapes, options and misuse") {
  BatchNorm<float> norm(256);
  CHECK_ERROR_MENTIONS(norm.forward(Matrix<float>::Zero(128, 64), Mode::train), "BatchNorm(256)",
                       "128 x 64", "256 x batch");
  CHECK_ERROR_MENTIONS(norm.forward(Matrix<float>::Zero(256, 0), Mode::eval), "empty batch");
  CHECK_ERROR_MENTIONS(norm.backward(Matrix<float>::Zero(256, 4)), "Mode::train");
  norm.forward(Matrix<float>::Random(256, 4), Mode::train);
  CHECK_ERROR_MENTIONS(norm.backward(Matrix<float>::Zero(256, 5)), "256 x 5", "256 x 4");
  CHECK_ERROR_MENTIONS(BatchNorm<float>(8, {.momentum = 1.5f}), "momentum");
  CHECK_ERROR_MENTIONS(BatchNorm<float>(8, {.momentum = 0.1f, .eps = 0.0f}), "eps");
  CHECK_ERROR_MENTIONS(BatchNorm<float>(0), "features");
}

TEST_CASE("BatchNorm parameters are gamma then beta, named as PyTorch's") {
  BatchNorm<double> norm(5);
  auto parameters = norm.parameters();
  REQUIRE(parameters.size() == 2);
  CHECK(parameters[0].name() == "weight");
  CHECK(parameters[1].name() == "bias");
  CHECK(parameters[0].rows() == 5);
  CHECK(parameters[0].cols() == 1);
  parameters[0].value()(2) = 7.0;  // views write through
  CHECK(norm.gamma()(2) == 7.0);
}
