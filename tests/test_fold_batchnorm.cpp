#include <bnorm/bnorm.hpp>

#include <doctest/doctest.h>

#include "support/errors.hpp"
#include "support/gradient_check.hpp"
#include "support/networks.hpp"

using namespace bnorm;

namespace {
// Gives every BatchNorm non-trivial gamma, beta and running statistics.
template <class T>
void randomize_batch_norms(Sequential<T>& net, Generator& generator) {
  for (std::size_t i = 0; i < net.size(); ++i) {
    if (auto* inner = net.template layer_if<Sequential<T>>(i)) randomize_batch_norms(*inner, generator);
    if (auto* norm = net.template layer_if<BatchNorm<T>>(i)) {
      for (Index f = 0; f < norm->features(); ++f) {
        norm->gamma()(f) = T(generator.normal(1.0, 0.5));
        norm->beta()(f) = T(generator.normal());
        norm->running_mean()(f) = T(generator.normal(0.0, 2.0));
        norm->running_var()(f) = T(generator.uniform(0.1, 5.0));
      }
    }
  }
}

template <class T>
double relative_difference(const Matrix<T>& a, const Matrix<T>& b) {
  return double((a - b).cwiseAbs().maxCoeff() / b.cwiseAbs().maxCoeff());
}
}  // namespace

TEST_CASE_TEMPLATE("Folded networks match the original in eval mode", T, float, double) {
  const double tolerance = std::is_same_v<T, float> ? 1e-5 : 1e-12;
  Generator generator(3);
  manual_seed(1);
  // Dense -> BatchNorm (folded forward), BatchNorm -> Dense (folded backward), a BatchNorm
  // between activations (kept), nesting and Dropout (flattened, dropped).
  Sequential<T> net{Dense<T>(20, 16, Bias::none), BatchNorm<T>(16), ReLU<T>(),
                    Sequential<T>{Dense<T>(16, 12), BatchNorm<T>(12), Tanh<T>()},
                    Dropout<T>(0.5), BatchNorm<T>(12), Dense<T>(12, 8),
                    Sigmoid<T>(), BatchNorm<T>(8), Sigmoid<T>(), Dense<T>(8, 4)};
  randomize_batch_norms(net, generator);
  const Generator before = default_generator();
  Sequential<T> folded = fold_batchnorm(net);
  CHECK(default_generator() == before);  // folding draws no random numbers
  CHECK(folded.name() ==
        "Sequential(Dense(20 -> 16), ReLU, Dense(16 -> 12), Tanh, Dense(12 -> 8), Sigmoid, "
        "BatchNorm(8), Sigmoid, Dense(8 -> 4))");
  const Matrix<T> x = (bnorm_test::random_input(20, 50, 4) * 2.0).cast<T>();
  const Matrix<T> expected = net.forward(x, Mode::eval);
  const Matrix<T> actual = folded.forward(x, Mode::eval);
  MESSAGE("largest relative difference: ", relative_difference(actual, expected));
  CHECK(relative_difference(actual, expected) < tolerance);
  // The original is untouched and still trains.
  CHECK(net.size() == 11);
  net.forward(x, Mode::train);
}

TEST_CASE("The flagship network folds to four Dense layers") {
  Sequential<float> net = bnorm_test::flagship_network<float>();
  Generator generator(8);
  randomize_batch_norms(net, generator);
  const Sequential<float> folded = fold_batchnorm(net);
  CHECK(folded.size() == 7);
  const Matrix<float> x = Matrix<float>::Random(784, 1).cwiseAbs();
  CHECK(relative_difference<float>(const_cast<Sequential<float>&>(folded).forward(x, Mode::eval),
                                   net.forward(x, Mode::eval)) < 1e-5);
}

TEST_CASE("A BatchNorm without running statistics is not folded") {
  Sequential<double> net{Dense<double>(3, 4), BatchNorm<double>(4, {.track_running_stats = false})};
  const Sequential<double> folded = fold_batchnorm(net);
  CHECK(folded.size() == 2);
}

TEST_CASE("fold_batchnorm refuses a pair whose sizes do not fit") {
  // Sequential itself does not check sizes when layers are added; fold_batchnorm must.
  Sequential<double> after{Dense<double>(3, 4), BatchNorm<double>(5)};
  CHECK_ERROR_MENTIONS(fold_batchnorm(after), "fold_batchnorm", "BatchNorm(5)",
                       "Dense(3 -> 4)", "4 outputs");
  Sequential<double> before{ReLU<double>(), BatchNorm<double>(5), Dense<double>(4, 2)};
  CHECK_ERROR_MENTIONS(fold_batchnorm(before), "BatchNorm(5)", "4 inputs");
}
