// The public API as the core issue fixes it, compiled through the umbrella header
// (bnorm.hpp): names, signatures and the designated-initializer forms users will write.
#include <bnorm/bnorm.hpp>

#include <doctest/doctest.h>

#include <functional>
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
  // Options reach the layer (a constructor that dropped them would fail here).
  BatchNorm<T> norm(4, {.momentum = 0.2, .eps = 1e-3});  // double literals, float layers too
  CHECK(norm.options().momentum == 0.2);
  CHECK(norm.options().eps == 1e-3);

  Sequential<T> net{Dense<T>(3, 4, Bias::none), BatchNorm<T>(4), ReLU<T>(), Dense<T>(4, 2)};
  SGD<T> sgd(net.parameters(), {.lr = 0.05, .momentum = 0.9, .weight_decay = 1e-4, .nesterov = true});
  Adam<T> adam(net.parameters(), {.lr = 1e-3, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0});
  AdamW<T> adamw(net.parameters(), {.lr = 1e-3});
  RMSprop<T> rmsprop(net.parameters(), {.lr = 1e-2});
  CHECK(sgd.options().momentum == doctest::Approx(0.9));
  CHECK(adamw.options().weight_decay == doctest::Approx(1e-2));  // PyTorch's default

  // A layer's forward/backward and the losses, with the fixed signatures.
  const Matrix<T> x = Matrix<T>::Random(3, 5);
  const Matrix<T>& y = net.forward(x, Mode::train);
  CHECK(y.rows() == 2);
  CHECK(y.cols() == 5);
  SoftmaxCrossEntropy<T> cross_entropy;
  const T loss = cross_entropy.forward(y, Labels::Zero(5));
  const Matrix<T>& dx = net.backward(cross_entropy.backward());
  CHECK(dx.rows() == 3);
  CHECK(dx.cols() == 5);
  CHECK(std::isfinite(loss));
  CHECK(loss > T(0));  // softmax never puts all its mass on one class
  MeanSquaredError<T> mse;
  CHECK(mse.forward(y, y) == T(0));
  CHECK(mse.forward(y, Matrix<T>::Zero(2, 5)) == doctest::Approx(y.squaredNorm() / 10));

  // parameters() are writable views of the layers' own matrices, in layer order.
  auto parameters = net.parameters();
  REQUIRE(parameters.size() == 5);  // Dense weight, BatchNorm weight and bias, Dense weight and bias
  parameters[0].value()(0, 0) = T(0.75);
  CHECK(net.template layer<Dense<T>>(0).weight()(0, 0) == T(0.75));
  for (auto& p : parameters) {
    CHECK(p.grad().rows() == p.value().rows());
    CHECK(p.grad().cols() == p.value().cols());
  }
  // Every optimizer moves the parameters it was given.
  for (auto step : {std::function<void()>([&] { sgd.step(); }), std::function<void()>([&] { adam.step(); }),
                    std::function<void()>([&] { adamw.step(); }),
                    std::function<void()>([&] { rmsprop.step(); })}) {
    const Matrix<T> before = parameters[0].value();
    step();
    CHECK(parameters[0].value() != before);
  }
}
