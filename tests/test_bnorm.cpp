// The public API as the core issue fixes it, compiled through the umbrella header
// (bnorm.hpp): names, signatures and the designated-initializer forms users will write.
#include <bnorm/bnorm.hpp>

#include <doctest/doctest.h>

#include <type_traits>

using namespace bnorm;

static_assert(std::is_same_v<Matrix<float>, Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic>>);
static_assert(std::is_same_v<Vector<double>, Eigen::Matrix<double, Eigen::Dynamic, 1>>);
static_assert(std::is_base_of_v<std::runtime_error, Error>);
static_assert(Layer<Dense<float>, float> && Layer<BatchNorm<float>, float> &&
              Layer<ReLU<float>, float> && Layer<LeakyReLU<float>, float> &&
              Layer<Sigmoid<float>, float> && Layer<Tanh<float>, float> &&
              Layer<Identity<float>, float> && Layer<Dropout<float>, float> &&
              Layer<Sequential<float>, float>);

TEST_CASE_TEMPLATE("Option aggregates take the designated initializers of the issue", T, float,
                   double) {
  BatchNorm<T> norm(4, {.momentum = 0.1, .eps = 1e-5});  // double literals, float layers too
  CHECK(norm.options().momentum == 0.1);
  BatchNormOptions<T> options{.momentum = 0.2f, .eps = 1e-3f};
  CHECK(options.eps == doctest::Approx(1e-3));

  Sequential<T> net{Dense<T>(3, 4, Bias::none), BatchNorm<T>(4), ReLU<T>(), Dense<T>(4, 2)};
  SGD<T> sgd(net.parameters(), {.lr = 0.05, .momentum = 0.9, .weight_decay = 1e-4, .nesterov = true});
  Adam<T> adam(net.parameters(), {.lr = 1e-3, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0});
  AdamW<T> adamw(net.parameters(), {.lr = 1e-3});
  RMSprop<T> rmsprop(net.parameters(), {.lr = 1e-2});
  CHECK(sgd.options().nesterov);
  CHECK(adamw.options().weight_decay == 1e-2);

  // A layer's forward/backward and the losses, with the fixed signatures.
  const Matrix<T> x = Matrix<T>::Random(3, 5);
  const Matrix<T>& y = net.forward(x, Mode::train);
  SoftmaxCrossEntropy<T> cross_entropy;
  const T loss = cross_entropy.forward(y, Labels::Zero(5));
  const Matrix<T>& dx = net.backward(cross_entropy.backward());
  CHECK(dx.rows() == 3);
  CHECK(std::isfinite(loss));
  MeanSquaredError<T> mse;
  CHECK(mse.forward(y, Matrix<T>::Zero(2, 5)) >= T(0));
  for (auto& p : net.parameters()) {
    p.value()(0, 0) = p.value()(0, 0);  // writable views of the parameter's shape
    CHECK(p.grad().rows() == p.value().rows());
  }
  sgd.step();
  adam.step();
  adamw.step();
  rmsprop.step();
}
