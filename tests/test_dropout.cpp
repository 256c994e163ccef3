// bnorm-test-variant: isa_baseline BNORM_ISA=baseline  (also run on the baseline kernels)
#include <bnorm/layers/dropout.hpp>

#include <doctest/doctest.h>

#include "support/errors.hpp"
#include "support/gradient_check.hpp"
#include "support/layer_checks.hpp"

using namespace bnorm;

TEST_CASE("Dropout drops a fraction p and scales the rest by 1 / (1 - p)") {
  Dropout<double> dropout(0.3, 1);
  const Matrix<double> x = Matrix<double>::Ones(100, 200);
  const Matrix<double> y = dropout.forward(x, Mode::train);
  const double kept = double((y.array() != 0.0).count()) / double(y.size());
  CHECK(kept == doctest::Approx(0.7).epsilon(0.02));
  CHECK((y.array() == 0.0 || (y.array() - 1.0 / 0.7).abs() < 1e-15).all());
  CHECK(y.mean() == doctest::Approx(1.0).epsilon(0.03));  // inverted: expectation kept
}

TEST_CASE("Dropout is the identity in eval mode and for p = 0; p = 1 gives zeros") {
  const Matrix<float> x = Matrix<float>::Random(10, 10);
  Dropout<float> dropout(0.5, 1);
  CHECK(dropout.forward(x, Mode::eval) == x);
  Dropout<float> none(0.0, 1);
  CHECK(none.forward(x, Mode::train) == x);
  CHECK(none.backward(x) == x);
  Dropout<float> all(1.0, 1);
  CHECK(all.forward(x, Mode::train).isZero());
  CHECK(all.backward(x).isZero());
}

TEST_CASE("Dropout masks are repeatable from the seed and differ between calls") {
  const Matrix<double> x = Matrix<double>::Ones(20, 20);
  Dropout<double> a(0.5, 42), b(0.5, 42);
  const Matrix<double> first = a.forward(x, Mode::train);
  CHECK(first == b.forward(x, Mode::train));
  CHECK(first != a.forward(x, Mode::train));
  manual_seed(3);
  Dropout<double> c(0.5);
  manual_seed(3);
  Dropout<double> d(0.5);
  CHECK(c.forward(x, Mode::train) == d.forward(x, Mode::train));
}

TEST_CASE("Dropout gradient matches finite differences with the mask replayed") {
  Dropout<double> dropout(0.4, 5);
  const Generator start = dropout.generator();
  bnorm_test::GradientCheckOptions options;
  options.before_forward = [&] { dropout.generator() = start; };
  const auto check = bnorm_test::check_gradients(dropout, bnorm_test::random_input(6, 7, 1), options);
  INFO(check.worst);
  CHECK(check.max_error < 1e-9);
}

TEST_CASE("Dropout rejects p outside [0, 1]") {
  CHECK_ERROR_MENTIONS(Dropout<float>(1.5, 0), "Dropout", "[0, 1]");
  CHECK_ERROR_MENTIONS(Dropout<float>(-0.1, 0), "Dropout", "[0, 1]");
  Dropout<float> dropout(0.25, 0);
  CHECK_ERROR_MENTIONS(dropout.set_p(1.5), "Dropout", "[0, 1]");
  CHECK(dropout.p() == 0.25);  // a refused p changes nothing
}

TEST_CASE("Dropout::set_p takes effect at the next training forward; the stream goes on") {
  const Matrix<double> x = Matrix<double>::Ones(30, 30);
  Dropout<double> changed(0.5, 9), reference(0.5, 9);
  changed.set_p(0.0);
  CHECK(changed.p() == 0.0);
  CHECK(changed.forward(x, Mode::train) == x);
  reference.forward(x, Mode::train);  // the same draws as the p = 0 forward
  changed.set_p(0.5);
  CHECK(changed.forward(x, Mode::train) == reference.forward(x, Mode::train));
}

TEST_CASE("Dropout: an eval forward between a training forward and its backward changes nothing") {
  const Dropout<double> dropout(0.4, 6);
  bnorm_test::check_eval_between_forward_and_backward(
      dropout, bnorm_test::random_input(6, 7, 1), bnorm_test::random_input(6, 3, 2),
      bnorm_test::random_input(6, 7, 3));
}

TEST_CASE("Dropout with keep_for_backward differentiates an eval forward as the identity") {
  Dropout<double> dropout(0.4, 7);
  dropout.set_keep_for_backward(true);
  const Matrix<double> x = bnorm_test::random_input(6, 7, 4);
  const Generator before = dropout.generator();
  CHECK(dropout.forward(x, Mode::eval) == x);
  const Matrix<double> dy = bnorm_test::random_input(6, 7, 5);
  CHECK(dropout.backward(dy) == dy);
  Generator untouched = before;
  CHECK(dropout.generator().next() == untouched.next());  // no mask drawn
  // A training forward afterwards masks its backward again.
  dropout.forward(x, Mode::train);
  CHECK_FALSE(dropout.backward(dy) == dy);
}

// A block of a larger matrix goes to the product kernel column by column
// (layers/elementwise.hpp): the same mask and results as its copy, forward and backward.
TEST_CASE("Dropout gives a block of a matrix the results of its copy") {
  const Matrix<float> whole = Matrix<float>::Random(21, 9);
  const Matrix<float> copy = whole.middleRows(2, 17), dy = Matrix<float>::Random(17, 9);
  Dropout<float> on_block(0.4, 5), on_copy(0.4, 5);
  const Matrix<float> y = on_block.forward(whole.middleRows(2, 17), Mode::train);
  CHECK(y == on_copy.forward(copy, Mode::train));
  CHECK((y.array() == 0.0f).count() > 0);
  CHECK(on_block.backward(dy) == on_copy.backward(dy));
}
