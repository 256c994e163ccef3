// After any bad input the network is as it was and trains on: every error of a training
// step (layer contract in core/layer.hpp: strong guarantee for state) is thrown into one
// network, and its next steps must equal, bit for bit, those of a twin that saw no error.
#include <bnorm/bnorm.hpp>

#include <doctest/doctest.h>

#include <cmath>
#include <limits>

#include "support/errors.hpp"
#include "support/gradient_check.hpp"

using namespace bnorm;

namespace {

template <class T>
Sequential<T> small_network() {
  manual_seed(3);
  return Sequential<T>{Dense<T>(6, 5, Bias::none), BatchNorm<T>(5), ReLU<T>(), Dense<T>(5, 5),
                       Dropout<T>(0.2, 7), Tanh<T>(), Dense<T>(5, 3)};
}

// One training step; returns the loss.
template <class T>
T train_step(Sequential<T>& net, SGD<T>& sgd, SoftmaxCrossEntropy<T>& loss, const Matrix<T>& x,
             const Labels& labels) {
  const T value = loss.forward(net.forward(x, Mode::train), labels);
  net.backward(loss.backward());
  sgd.step();
  return value;
}

template <class T>
void check_identical(Sequential<T>& a, Sequential<T>& b) {
  auto pa = a.parameters(), pb = b.parameters();
  REQUIRE(pa.size() == pb.size());
  for (std::size_t i = 0; i < pa.size(); ++i) CHECK(pa[i].value() == pb[i].value());
  const auto& norm_a = a.template layer<BatchNorm<T>>(1);
  const auto& norm_b = b.template layer<BatchNorm<T>>(1);
  CHECK(norm_a.running_mean() == norm_b.running_mean());
  CHECK(norm_a.running_var() == norm_b.running_var());
  CHECK(norm_a.num_batches_tracked() == norm_b.num_batches_tracked());
}

}  // namespace

TEST_CASE_TEMPLATE("After every kind of bad input the network is unchanged and trains on", T,
                   float, double) {
  Sequential<T> net = small_network<T>(), twin = small_network<T>();
  net.set_check_finite(true);
  twin.set_check_finite(true);
  SGD<T> sgd(net.parameters(), {.lr = 0.1, .momentum = 0.9});
  SGD<T> twin_sgd(twin.parameters(), {.lr = 0.1, .momentum = 0.9});
  SoftmaxCrossEntropy<T> loss, twin_loss;
  const Matrix<T> x = bnorm_test::random_input(6, 8, 1).cast<T>();
  Labels labels(8);
  labels << 0, 1, 2, 0, 1, 2, 0, 1;

  CHECK(train_step(net, sgd, loss, x, labels) == train_step(twin, twin_sgd, twin_loss, x, labels));

  // Forward: wrong feature count, empty batch, a batch of one in training, NaN and infinity.
  CHECK_ERROR_MENTIONS(net.forward(Matrix<T>::Zero(7, 8), Mode::train), "layer 0", "7 x 8");
  CHECK_ERROR_MENTIONS(net.forward(Matrix<T>::Zero(6, 0), Mode::train), "empty");
  CHECK_ERROR_MENTIONS(net.forward(x.leftCols(1), Mode::train), "layer 1", "batch of one");
  Matrix<T> bad = x;
  bad(2, 5) = std::numeric_limits<T>::quiet_NaN();
  CHECK_ERROR_MENTIONS(net.forward(bad, Mode::train), "non-finite", "row 2, column 5");
  bad(2, 5) = std::numeric_limits<T>::infinity();
  CHECK_ERROR_MENTIONS(net.forward(bad, Mode::eval), "non-finite");

  // Loss: labels out of range, of the wrong length; logits of the wrong shape.
  const Matrix<T>& logits = net.forward(x, Mode::train);
  Labels out_of_range = labels;
  out_of_range(3) = 3;
  CHECK_ERROR_MENTIONS(loss.forward(logits, out_of_range), "label", "3");
  out_of_range(3) = -1;
  CHECK_ERROR_MENTIONS(loss.forward(logits, out_of_range), "label", "-1");
  CHECK_ERROR_MENTIONS(loss.forward(logits, labels.head(7)), "7");

  // Backward: an output gradient of the wrong shape, a non-finite one.
  CHECK_ERROR_MENTIONS(net.backward(Matrix<T>::Zero(3, 7)), "3 x 7");
  Matrix<T> bad_gradient = Matrix<T>::Zero(3, 8);
  bad_gradient(0, 0) = std::numeric_limits<T>::quiet_NaN();
  CHECK_ERROR_MENTIONS(net.backward(bad_gradient), "non-finite");

  // The errors changed nothing: the next steps are the twin's, bit for bit. (The forward
  // just above ran in training mode, so BatchNorm's running statistics and Dropout's stream
  // moved once more: the twin takes the same forward.)
  twin.forward(x, Mode::train);
  check_identical(net, twin);
  for (int step = 0; step < 3; ++step)
    CHECK(train_step(net, sgd, loss, x, labels) == train_step(twin, twin_sgd, twin_loss, x, labels));
  check_identical(net, twin);
  CHECK(net.forward(x, Mode::eval) == twin.forward(x, Mode::eval));
}
