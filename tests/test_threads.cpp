// core/threads.hpp: the opt-in to several cores, and determinism with any thread count.
// Built with bnorm::openmp when OpenMP is available. Without it bnorm runs one thread, so the
// two-thread comparisons could only compare one thread with itself: they are skipped (doctest
// counts them as skipped, the first test case says why, and CTest reports the test skipped).
// bnorm-test-own-program: it links OpenMP, which the other tests must not run on
#include <bnorm/bnorm.hpp>

#include <doctest/doctest.h>

#include "support/errors.hpp"
#include "support/networks.hpp"

#include <iostream>

using namespace bnorm;

namespace {
#if defined(_OPENMP)
constexpr bool two_threads = true;
#else
constexpr bool two_threads = false;
#endif

// Trains the flagship network for a few steps from a fixed seed; returns the last loss
// and the first BatchNorm's input gradient, to compare bit for bit.
std::pair<float, Matrix<float>> train_flagship(int steps) {
  manual_seed(5);
  Sequential<float> net = bnorm_test::flagship_network<float>();
  SGD<float> sgd(net.parameters(), {.lr = 0.05, .momentum = 0.9});
  SoftmaxCrossEntropy<float> loss;
  Generator generator(1);
  Matrix<float> x(784, 128);
  for (Index i = 0; i < x.size(); ++i) x(i) = static_cast<float>(generator.uniform());
  const Labels labels = Labels::LinSpaced(128, 0, 9);
  float value = 0;
  for (int step = 0; step < steps; ++step) {
    value = loss.forward(net.forward(x, Mode::train), labels);
    net.backward(loss.backward());
    sgd.step();
  }
  return {value, net.layer<BatchNorm<float>>(1).backward(Matrix<float>::Ones(256, 128))};
}
}  // namespace

TEST_CASE("Two threads can run, or the thread tests say they are skipped") {
  // CTest's SKIP_REGULAR_EXPRESSION for test_threads (tests/CMakeLists.txt) matches this line.
  if (!two_threads) std::cout << "test_threads: SKIPPED: built without OpenMP, one thread only\n";
  set_threads(2);
  CHECK(threads() == (two_threads ? 2 : 1));
  set_threads(1);
}

TEST_CASE("The same seed gives bit-identical training, with one thread and with several" *
          doctest::skip(!two_threads)) {
  set_threads(1);
  const auto single_a = train_flagship(5), single_b = train_flagship(5);
  CHECK(single_a.first == single_b.first);
  CHECK(single_a.second == single_b.second);
  set_threads(2);
  REQUIRE(threads() == 2);
  const auto multi_a = train_flagship(5), multi_b = train_flagship(5);
  CHECK(multi_a.first == multi_b.first);
  CHECK(multi_a.second == multi_b.second);
  // Several threads change the GEMM blocking, so not every bit matches one thread, but
  // the training does.
  CHECK(multi_a.first == doctest::Approx(single_a.first).epsilon(1e-4));
  set_threads(1);
}

TEST_CASE("BatchNorm's parallel loops give exactly the single-threaded result" *
          doctest::skip(!two_threads)) {
  // 1000 x 1100: above the 2^20 elements from which the loops are split (core/threads.hpp).
  BatchNorm<double> one(1000), two(1000);
  const Matrix<double> x = Matrix<double>::Random(1000, 1100), dy = Matrix<double>::Random(1000, 1100);
  set_threads(1);
  const Matrix<double> y1 = one.forward(x, Mode::train), dx1 = one.backward(dy);
  set_threads(2);
  REQUIRE(threads() == 2);
  const Matrix<double> y2 = two.forward(x, Mode::train), dx2 = two.backward(dy);
  CHECK(y1 == y2);
  CHECK(dx1 == dx2);
  CHECK(one.running_var() == two.running_var());
  CHECK(one.forward(x, Mode::eval) == two.forward(x, Mode::eval));
  set_threads(1);
}

TEST_CASE("set_threads rejects a count below 1") {
  CHECK_ERROR_MENTIONS(set_threads(0), "at least 1");
}
