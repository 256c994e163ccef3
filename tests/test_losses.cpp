// SoftmaxCrossEntropy and MeanSquaredError (losses/*.hpp).
// bnorm-test-variant: isa_baseline BNORM_ISA=baseline  (also run on the baseline kernels)
#include <bnorm/losses/mean_squared_error.hpp>
#include <bnorm/losses/softmax_cross_entropy.hpp>

#include <doctest/doctest.h>

#include "support/errors.hpp"
#include "support/gradient_check.hpp"

#include <cmath>

using namespace bnorm;

namespace {
// Central differences of a scalar function of a matrix, compared entry by entry.
template <class Loss>
double max_gradient_error(Loss&& loss_at, Matrix<double> at, const Matrix<double>& analytic) {
  double worst = 0.0;
  const double step = 1e-6;
  for (Index i = 0; i < at.size(); ++i) {
    const double original = at(i);
    at(i) = original + step;
    const double plus = loss_at(at);
    at(i) = original - step;
    const double minus = loss_at(at);
    at(i) = original;
    worst = std::max(worst, std::abs((plus - minus) / (2 * step) - analytic(i)));
  }
  return worst;
}
}  // namespace

TEST_CASE("Cross-entropy is the mean of logsumexp minus the true logit") {
  Matrix<double> logits(3, 2);
  logits << 1.0, 0.0,
            2.0, 0.0,
            3.0, 0.0;
  Labels labels(2);
  labels << 2, 0;
  SoftmaxCrossEntropy<double> loss;
  const double value = loss.forward(logits, labels);
  const double first = std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0)) - 3.0;
  const double second = std::log(3.0);
  CHECK(value == doctest::Approx((first + second) / 2).epsilon(1e-15));
  // Each column of the gradient is (softmax - onehot) / batch: it sums to zero.
  CHECK(loss.backward().colwise().sum().cwiseAbs().maxCoeff() < 1e-16);
}

TEST_CASE("Cross-entropy gradient matches finite differences") {
  const Matrix<double> logits = bnorm_test::random_input(5, 7, 3) * 2.0;
  Labels labels(7);
  labels << 0, 1, 2, 3, 4, 0, 4;
  SoftmaxCrossEntropy<double> loss;
  loss.forward(logits, labels);
  const Matrix<double> analytic = loss.backward();
  SoftmaxCrossEntropy<double> probe;
  CHECK(max_gradient_error([&](const Matrix<double>& z) { return probe.forward(z, labels); },
                           logits, analytic) < 1e-9);
}

TEST_CASE_TEMPLATE("Cross-entropy is stable for huge logits", T, float, double) {
  Matrix<T> logits(3, 2);
  logits << T(1000), T(-1000),
            T(0), T(-1000),
            T(-1000), T(-999);
  Labels labels(2);
  labels << 0, 2;
  SoftmaxCrossEntropy<T> loss;
  const T value = loss.forward(logits, labels);
  CHECK(std::isfinite(value));
  // Column 0 is certain and right: loss 0. Column 1: log(2 e^-1000 + e^-999) + 999.
  const double second = std::log(2.0 * std::exp(-1.0) + 1.0);
  CHECK(double(value) == doctest::Approx(second / 2).epsilon(1e-5));
  CHECK(loss.backward().allFinite());
}

TEST_CASE("Cross-entropy reports wrong label counts and out-of-range labels") {
  SoftmaxCrossEntropy<float> loss;
  const Matrix<float> logits = Matrix<float>::Zero(10, 4);
  CHECK_ERROR_MENTIONS(loss.forward(logits, Labels::Zero(3)), "3 labels", "batch of 4");
  Labels labels(4);
  labels << 0, 1, 10, 2;
  CHECK_ERROR_MENTIONS(loss.forward(logits, labels), "label 10", "example 2", "0 to 9");
  labels(2) = -1;
  CHECK_ERROR_MENTIONS(loss.forward(logits, labels), "label -1", "out of range");
  CHECK_ERROR_MENTIONS(loss.forward(Matrix<float>::Zero(10, 0), Labels::Zero(0)), "empty batch");
  CHECK_ERROR_MENTIONS(SoftmaxCrossEntropy<float>().backward(), "forward");
}

TEST_CASE("Mean squared error averages over every element, as PyTorch's MSELoss") {
  Matrix<double> prediction(2, 2), target(2, 2);
  prediction << 1, 2,
                3, 4;
  target << 0, 2,
            5, 4;
  MeanSquaredError<double> loss;
  CHECK(loss.forward(prediction, target) == doctest::Approx((1.0 + 4.0) / 4));
  const Matrix<double> analytic = loss.backward();
  MeanSquaredError<double> probe;
  CHECK(max_gradient_error([&](const Matrix<double>& p) { return probe.forward(p, target); },
                           prediction, analytic) < 1e-9);
  CHECK_ERROR_MENTIONS(loss.forward(prediction, Matrix<double>::Zero(2, 3)), "target", "2 x 3",
                       "2 x 2");
}

// Logits, predictions and targets that are blocks of larger matrices (column stride > rows)
// give the loss and gradient of their copies.
TEST_CASE("Both losses give a block of a matrix the results of its copy") {
  const Matrix<float> whole = Matrix<float>::Random(13, 7) * 10.0f;
  const Matrix<float> logits = whole.middleRows(1, 10), target = whole.bottomRows(10);
  Labels labels(7);
  labels << 0, 9, 3, 3, 5, 1, 8;
  SoftmaxCrossEntropy<float> on_block, on_copy;
  CHECK(on_block.forward(whole.middleRows(1, 10), labels) == on_copy.forward(logits, labels));
  CHECK(on_block.backward() == on_copy.backward());
  MeanSquaredError<float> error_on_block, error_on_copy;
  // The sum runs per column on the block and as one column on the copy: equal to rounding.
  CHECK(error_on_block.forward(whole.middleRows(1, 10), whole.bottomRows(10)) ==
        doctest::Approx(error_on_copy.forward(logits, target)).epsilon(1e-6));
  CHECK(error_on_block.backward() == error_on_copy.backward());
}
