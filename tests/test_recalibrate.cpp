#include <bnorm/bnorm.hpp>

#include <doctest/doctest.h>

#include "support/errors.hpp"
#include "support/gradient_check.hpp"

using namespace bnorm;
using bnorm_test::random_input;

namespace {
// Mean and unbiased variance per row, computed independently of the library.
std::pair<Vector<double>, Vector<double>> row_statistics(const Matrix<double>& x) {
  const Vector<double> mean = x.rowwise().mean();
  const Vector<double> var =
      (x.colwise() - mean).array().square().rowwise().sum().matrix() / double(x.cols() - 1);
  return {mean, var};
}

Sequential<double> trained_network() {
  Generator generator(4);
  Sequential<double> net{Dense<double>(6, 8, Bias::none, Init::pytorch_default(), generator),
                         BatchNorm<double>(8), Tanh<double>(),
                         Sequential<double>{Dense<double>(8, 5, Bias::none, Init::pytorch_default(), generator),
                                            BatchNorm<double>(5), ReLU<double>()},
                         Dense<double>(5, 3)};
  SGD<double> sgd(net.parameters(), {.lr = 0.1, .momentum = 0.9});
  SoftmaxCrossEntropy<double> loss;
  Labels labels = Labels::LinSpaced(16, 0, 2);
  for (int step = 0; step < 20; ++step) {
    loss.forward(net.forward(random_input(6, 16, step) * 3.0, Mode::train), labels);
    net.backward(loss.backward());
    sgd.step();
  }
  return net;
}
}  // namespace

TEST_CASE("recalibrate sets the exact data-set mean and unbiased variance of each BatchNorm input") {
  Sequential<double> net = trained_network();
  const Matrix<double> data = random_input(6, 1000, 77) * 3.0 + Matrix<double>::Constant(6, 1000, 1.0);
  recalibrate(net, data, 128);  // chunks of 128 do not divide 1000: the tail chunk is smaller

  // First BatchNorm: its input is the first Dense layer's output over the data.
  const Matrix<double> first_input = net.layer<Dense<double>>(0).weight() * data;
  auto [mean1, var1] = row_statistics(first_input);
  auto& norm1 = net.layer<BatchNorm<double>>(1);
  CHECK((norm1.running_mean() - mean1).cwiseAbs().maxCoeff() < 1e-12);
  CHECK(((norm1.running_var() - var1).array() / var1.array()).abs().maxCoeff() < 1e-12);

  // Nested BatchNorm: its input is computed in eval mode through the recalibrated first one.
  net.forward(data, Mode::eval);
  const Matrix<double> second_input =
      net.layer<Sequential<double>>(3).layer_output(0);  // nested Dense output
  auto [mean2, var2] = row_statistics(second_input);
  auto& norm2 = net.layer<Sequential<double>>(3).layer<BatchNorm<double>>(1);
  CHECK((norm2.running_mean() - mean2).cwiseAbs().maxCoeff() < 1e-12);
  CHECK(((norm2.running_var() - var2).array() / var2.array()).abs().maxCoeff() < 1e-12);
}

TEST_CASE("recalibrate replaces lagging running averages: eval normalization becomes exact") {
  Sequential<double> net = trained_network();
  const Matrix<double> data = random_input(6, 500, 9) * 3.0;
  auto centred_error = [&] {
    net.forward(data, Mode::eval);
    // Output of the first BatchNorm (before tanh): per-feature mean should be beta.
    const Matrix<double>& normalized = net.layer_output(1);
    const Vector<double> mean = normalized.rowwise().mean();
    return (mean - net.layer<BatchNorm<double>>(1).beta()).cwiseAbs().maxCoeff();
  };
  const double before = centred_error();
  recalibrate(net, data);
  CHECK(centred_error() < 1e-12);
  CHECK(before > 1e-3);  // the running averages really were off
  CHECK_ERROR_MENTIONS(recalibrate(net, data.leftCols(1)), "at least 2");
}
