// bnorm-test-variant: isa_baseline BNORM_ISA=baseline  (also run on the baseline kernels)
#include <bnorm/layers/batch_norm.hpp>

#include <doctest/doctest.h>

#include "support/errors.hpp"
#include "support/gradient_check.hpp"
#include "support/isa_variants.hpp"
#include "support/layer_checks.hpp"

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
  // The first example, which the accumulation is shifted by, is a 6-sigma outlier: the
  // worst case for a shifted one-pass variance.
  x.col(0).setConstant(T(mean + 6 * spread));
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

// ---- Options beyond PyTorch's BatchNorm1d ------------------------------------------------

namespace {
// Runs `steps` training forwards (with backward) of two layers on the same batches and
// returns the largest difference of outputs, input gradients and running statistics.
double max_difference(BatchNorm<double>& a, BatchNorm<double>& b, Index batch, int steps = 3) {
  double worst = 0.0;
  for (int step = 0; step < steps; ++step) {
    const Matrix<double> x = random_input(a.features(), batch, 100 + step) * 2.0 + Matrix<double>::Constant(a.features(), batch, 0.5);
    const Matrix<double> dy = random_input(a.features(), batch, 200 + step);
    worst = std::max(worst, (a.forward(x, Mode::train) - b.forward(x, Mode::train)).cwiseAbs().maxCoeff());
    worst = std::max(worst, (a.backward(dy) - b.backward(dy)).cwiseAbs().maxCoeff());
    worst = std::max(worst, (a.gamma_grad() - b.gamma_grad()).cwiseAbs().maxCoeff());
    worst = std::max(worst, (a.beta_grad() - b.beta_grad()).cwiseAbs().maxCoeff());
    worst = std::max(worst, (a.running_mean() - b.running_mean()).cwiseAbs().maxCoeff());
    worst = std::max(worst, (a.running_var() - b.running_var()).cwiseAbs().maxCoeff());
  }
  return worst;
}
}  // namespace

TEST_CASE("Renormalization with rmax = 1 and dmax = 0 equals plain BatchNorm") {
  BatchNorm<double> plain(6);
  BatchNorm<double> renorm(6, {.momentum = 0.1, .eps = 1e-5, .renormalize = true, .rmax = 1.0, .dmax = 0.0});
  plain.gamma().setConstant(1.5);
  renorm.gamma().setConstant(1.5);
  CHECK(max_difference(plain, renorm, 10) < 1e-14);
}

TEST_CASE("Renormalization corrects towards the running statistics, clipped to rmax and dmax") {
  BatchNorm<double> norm(1, {.renormalize = true, .rmax = 3.0, .dmax = 5.0});
  norm.running_mean()(0) = 1.0;
  norm.running_var()(0) = 4.0 - 1e-5;  // running std 2 (eps included)
  Matrix<double> x(1, 4);
  x << 2, 4, 6, 8;  // batch mean 5, variance 5
  const Matrix<double> y = norm.forward(x, Mode::train);
  const double batch_std = std::sqrt(5.0 + 1e-5), r = batch_std / 2.0, d = (5.0 - 1.0) / 2.0;
  CHECK(y(0, 0) == doctest::Approx((2 - 5) / batch_std * r + d));
  // Clipped: r at 1/rmax, d at dmax, so both are locally constant and the gradient check
  // (which cannot see "constant in backprop") applies.
  norm.set_renormalization(1.5, 0.5);
  norm.running_var()(0) = 400.0;
  norm.running_mean()(0) = -50.0;
  BatchNorm<double> copy = norm;
  const auto check = bnorm_test::check_gradients(copy, x + Matrix<double>::Constant(1, 4, 0.0));
  INFO(check.worst);
  CHECK(check.max_error < 1e-7);
  CHECK_ERROR_MENTIONS(norm.set_renormalization(0.5, 0.0), "rmax");
  CHECK_ERROR_MENTIONS(norm.set_renormalization(2.0, -1.0), "dmax");
}

TEST_CASE("A virtual batch size equal to the batch equals plain BatchNorm") {
  BatchNorm<double> plain(5), ghost(5, {.virtual_batch_size = 12});
  CHECK(max_difference(plain, ghost, 12) < 1e-15);
  BatchNorm<double> larger(5, {.virtual_batch_size = 100});
  BatchNorm<double> plain2(5);
  CHECK(max_difference(plain2, larger, 12) < 1e-15);
}

TEST_CASE("Ghost batches normalize each sub-batch on its own; the last takes the remainder") {
  BatchNorm<double> ghost(3, {.virtual_batch_size = 4});
  BatchNorm<double> first(3), second(3);
  const Matrix<double> x = random_input(3, 10, 5);  // sub-batches of 4 and 6
  const Matrix<double> y = ghost.forward(x, Mode::train);
  CHECK((y.leftCols(4) - first.forward(x.leftCols(4), Mode::train)).cwiseAbs().maxCoeff() < 1e-14);
  CHECK((y.rightCols(6) - second.forward(x.rightCols(6), Mode::train)).cwiseAbs().maxCoeff() < 1e-14);
  // Running statistics take the size-weighted average of the sub-batch statistics.
  const Vector<double> expected = 0.4 * first.running_mean() + 0.6 * second.running_mean();
  CHECK((ghost.running_mean() - expected).cwiseAbs().maxCoeff() < 1e-15);
  const auto check = bnorm_test::check_gradients(ghost, x);
  INFO(check.worst);
  CHECK(check.max_error < 1e-7);
}

TEST_CASE("The cumulative running average is the plain mean of the batch statistics") {
  BatchNorm<double> norm(2, {.running_average = RunningAverage::cumulative});
  Vector<double> mean_sum = Vector<double>::Zero(2), var_sum = Vector<double>::Zero(2);
  for (int step = 0; step < 4; ++step) {
    const Matrix<double> x = random_input(2, 8, 30 + step) * (step + 1.0);
    norm.forward(x, Mode::train);
    const Vector<double> mean = x.rowwise().mean();
    mean_sum += mean;
    var_sum += (x.colwise() - mean).array().square().rowwise().sum().matrix() / 7.0;
  }
  CHECK((norm.running_mean() - mean_sum / 4).cwiseAbs().maxCoeff() < 1e-14);
  CHECK((norm.running_var() - var_sum / 4).cwiseAbs().maxCoeff() < 1e-14);
}

TEST_CASE("Without affine there are no parameters and gamma, beta stay 1 and 0") {
  BatchNorm<double> norm(3, {.affine = false});
  CHECK(norm.parameters().empty());
  const Matrix<double> x = random_input(3, 6, 1);
  BatchNorm<double> plain(3);
  CHECK((norm.forward(x, Mode::train) - plain.forward(x, Mode::train)).cwiseAbs().maxCoeff() == 0.0);
  norm.backward(Matrix<double>::Ones(3, 6));
  CHECK(norm.gamma_grad().isZero());
  const auto check = bnorm_test::check_gradients(norm, x);
  CHECK(check.max_error < 1e-7);
}

TEST_CASE("Without running statistics eval mode normalizes with the batch statistics") {
  BatchNorm<double> norm(3, {.track_running_stats = false});
  CHECK(norm.running_mean().size() == 0);
  const Matrix<double> x = random_input(3, 6, 1);
  const Matrix<double> train = norm.forward(x, Mode::train);
  CHECK(norm.forward(x, Mode::eval) == train);
  CHECK(norm.num_batches_tracked() == 0);
  CHECK_ERROR_MENTIONS(norm.forward(x.leftCols(1), Mode::eval), "batch of one");
}

TEST_CASE("SmallBatch::use_running_statistics trains a batch of one with the running statistics") {
  BatchNorm<double> norm(3, {.small_batch = SmallBatch::use_running_statistics});
  norm.running_mean() << 1, 2, 3;
  norm.running_var() << 4, 5, 6;
  norm.gamma() << 2, 2, 2;
  const Matrix<double> x = random_input(3, 1, 9);
  const Matrix<double> y = norm.forward(x, Mode::train);
  CHECK(y.isApprox(norm.forward(x, Mode::eval)));
  CHECK(norm.running_mean() == Vector<double>((Vector<double>(3) << 1, 2, 3).finished()));
  CHECK(norm.num_batches_tracked() == 0);
  const auto check = bnorm_test::check_gradients(norm, x);
  INFO(check.worst);
  CHECK(check.max_error < 1e-8);
  // Larger batches still use their own statistics.
  norm.forward(random_input(3, 4, 2), Mode::train);
  CHECK(norm.num_batches_tracked() == 1);
}

TEST_CASE("Invalid option combinations are refused") {
  CHECK_ERROR_MENTIONS(BatchNorm<float>(4, {.virtual_batch_size = 1}), "virtual_batch_size");
  CHECK_ERROR_MENTIONS(BatchNorm<float>(4, {.track_running_stats = false, .renormalize = true}),
                       "renormalization", "track_running_stats");
  CHECK_ERROR_MENTIONS(BatchNorm<float>(4, {.renormalize = true, .rmax = 0.5f}), "rmax");
}

namespace {
// Stands in for another process holding `other` examples: merges their moments (Chan et
// al.) and adds their backward sums, and counts its calls.
struct TwoProcessSync : StatisticsSync<double> {
  Matrix<double> other, other_dy, other_xhat;
  int calls = 0;
  double merge_moments(double count, Vector<double>& mean, Vector<double>& m2) override {
    ++calls;
    // No other examples: nothing to merge. (Eigen's row-wise reductions of an empty matrix
    // offset its null data pointer, which UBSan's pointer-overflow check reports.)
    if (other.cols() == 0) return count;
    const double n = double(other.cols());
    const Vector<double> other_mean = other.rowwise().mean();
    const Vector<double> other_m2 = (other.colwise() - other_mean).array().square().rowwise().sum();
    const double total = count + n;
    const Vector<double> delta = other_mean - mean;
    m2 = m2 + other_m2 + delta.cwiseProduct(delta) * (count * n / total);
    mean = mean + delta * (n / total);
    return total;
  }
  void sum(Vector<double>& sum_dy, Vector<double>& sum_dy_xhat) override {
    ++calls;
    if (other_dy.cols() == 0) return;
    sum_dy += other_dy.rowwise().sum();
    sum_dy_xhat += other_dy.cwiseProduct(other_xhat).rowwise().sum();
  }
};
}  // namespace

TEST_CASE("A synchronized BatchNorm normalizes with the global batch, even a local batch of one") {
  const Matrix<double> all = random_input(3, 4, 12), all_dy = random_input(3, 4, 13);
  BatchNorm<double> whole(3);
  const Matrix<double> expected = whole.forward(all, Mode::train);
  const Matrix<double> expected_dx = whole.backward(all_dy);

  auto sync = std::make_shared<TwoProcessSync>();
  sync->other = all.rightCols(3);
  sync->other_dy = all_dy.rightCols(3);
  sync->other_xhat = (expected.rightCols(3));  // gamma 1, beta 0: y is xhat
  BatchNorm<double> local(3);
  local.set_statistics_sync(sync);
  const Matrix<double> y = local.forward(all.leftCols(1), Mode::train);
  CHECK((y - expected.leftCols(1)).cwiseAbs().maxCoeff() < 1e-14);
  CHECK((local.running_var() - whole.running_var()).cwiseAbs().maxCoeff() < 1e-14);
  const Matrix<double> dx = local.backward(all_dy.leftCols(1));
  CHECK((dx - expected_dx.leftCols(1)).cwiseAbs().maxCoeff() < 1e-14);
  CHECK(sync->calls == 2);

  local.forward(all.leftCols(2), Mode::eval);  // eval batches are never synchronized
  CHECK(sync->calls == 2);
  sync->other = all.leftCols(0);  // no other examples: a global batch of one
  CHECK_ERROR_MENTIONS(local.forward(all.leftCols(1), Mode::train), "synchronized", "at least 2");
}

namespace {
// Trained a little, so that the running statistics differ from the batch's.
BatchNorm<double> warmed_up(BatchNormOptions<double> options, std::uint64_t seed) {
  BatchNorm<double> norm(4, options);
  for (Index i = 0; i < norm.features(); ++i) {
    norm.gamma()(i) = 0.5 + 0.25 * double(i);
    norm.beta()(i) = -0.3 + 0.2 * double(i);
  }
  if (norm.tracking()) norm.forward(random_input(4, 9, seed) * 2.0, Mode::train);
  return norm;
}
}  // namespace

TEST_CASE("BatchNorm: an eval forward between a training forward and its backward changes nothing") {
  const Matrix<double> x = random_input(4, 8, 31), validation = random_input(4, 3, 32);
  const Matrix<double> dy = random_input(4, 8, 33);
  for (const BatchNormOptions<double>& options :
       {BatchNormOptions<double>{}, BatchNormOptions<double>{.track_running_stats = false},
        BatchNormOptions<double>{.virtual_batch_size = 3},
        BatchNormOptions<double>{.renormalize = true, .rmax = 1.5, .dmax = 0.5}}) {
    const BatchNorm<double> norm = warmed_up(options, 34);
    bnorm_test::check_eval_between_forward_and_backward(norm, x, validation, dy);
    BatchNorm<double> frozen = norm;
    if (frozen.tracking()) {
      frozen.set_frozen_statistics(true);
      bnorm_test::check_eval_between_forward_and_backward(frozen, x, validation, dy);
    }
  }
}

TEST_CASE("BatchNorm accumulates gamma and beta gradients over micro-batches when asked") {
  std::vector<Matrix<double>> xs, dys;
  for (int i = 0; i < 4; ++i) {
    xs.push_back(random_input(4, 5 + i, 40 + i));
    dys.push_back(random_input(4, 5 + i, 50 + i));
  }
  for (const BatchNormOptions<double>& options :
       {BatchNormOptions<double>{}, BatchNormOptions<double>{.virtual_batch_size = 2},
        BatchNormOptions<double>{.renormalize = true, .rmax = 1.5, .dmax = 0.5}})
    bnorm_test::check_gradient_accumulation(warmed_up(options, 35), xs, dys, 1e-14);
  BatchNorm<double> frozen = warmed_up({}, 36);
  frozen.set_frozen_statistics(true);
  bnorm_test::check_gradient_accumulation(frozen, xs, dys, 1e-14);
}

TEST_CASE("BatchNorm with frozen statistics normalizes with the running ones and keeps them") {
  BatchNorm<double> norm = warmed_up({}, 37);
  norm.set_frozen_statistics(true);
  CHECK(norm.frozen_statistics());
  const Vector<double> mean = norm.running_mean(), var = norm.running_var();
  const long long batches = norm.num_batches_tracked();
  const Matrix<double> x = random_input(4, 6, 38);
  BatchNorm<double> evaluating = norm;
  const Matrix<double> expected = evaluating.forward(x, Mode::eval);
  const Matrix<double> y = norm.forward(x, Mode::train);
  CHECK((y - expected).cwiseAbs().maxCoeff() < 1e-14);
  CHECK(norm.running_mean() == mean);
  CHECK(norm.running_var() == var);
  CHECK(norm.num_batches_tracked() == batches);
  // Backward with the frozen-statistics formula; gamma and beta still learn.
  const auto check = bnorm_test::check_gradients(norm, x);
  INFO(check.worst);
  CHECK(check.max_error < 1e-8);
  CHECK_FALSE(norm.gamma_grad().isZero());
  CHECK(norm.running_mean() == mean);
  norm.set_frozen_statistics(false);
  norm.forward(x, Mode::train);
  CHECK_FALSE(norm.running_mean() == mean);
  BatchNorm<double> untracked(4, {.track_running_stats = false});
  CHECK_ERROR_MENTIONS(untracked.set_frozen_statistics(true), "BatchNorm(4)",
                       "track_running_stats");
}

TEST_CASE("BatchNorm with keep_for_backward differentiates an eval forward") {
  for (const BatchNormOptions<double>& options :
       {BatchNormOptions<double>{}, BatchNormOptions<double>{.track_running_stats = false}}) {
    BatchNorm<double> norm = warmed_up(options, 39);
    const Vector<double> mean = norm.running_mean();
    const long long batches = norm.num_batches_tracked();
    norm.set_keep_for_backward(true);
    const Matrix<double> x = random_input(4, 6, 40);
    BatchNorm<double> plain = norm;
    plain.set_keep_for_backward(false);
    CHECK(norm.forward(x, Mode::eval).isApprox(plain.forward(x, Mode::eval), 1e-14));
    const auto check = bnorm_test::check_gradients(norm, x, {.mode = Mode::eval});
    INFO(check.worst);
    CHECK(check.max_error < 1e-8);
    CHECK(norm.running_mean() == mean);
    CHECK(norm.num_batches_tracked() == batches);
  }
}

TEST_CASE("A frozen gamma or beta keeps its gradient; the input gradient is unchanged") {
  BatchNorm<double> norm = warmed_up({}, 41), reference = norm;
  auto parameters = norm.parameters();
  parameters[0].set_trainable(false);
  norm.gamma_grad().setConstant(3.0);
  const Matrix<double> x = random_input(4, 6, 42), dy = random_input(4, 6, 43);
  norm.forward(x, Mode::train);
  reference.forward(x, Mode::train);
  CHECK(norm.backward(dy) == reference.backward(dy));
  CHECK((norm.gamma_grad().array() == 3.0).all());
  CHECK(norm.beta_grad() == reference.beta_grad());
}

TEST_CASE("BatchNorm applied to its own output buffer normalizes that output") {
  BatchNorm<double> norm = warmed_up({}, 44), reference = norm;
  const Matrix<double> x = random_input(4, 6, 45);
  for (const Mode mode : {Mode::train, Mode::eval}) {
    const Matrix<double> once = reference.forward(x, mode);
    const Matrix<double> expected = reference.forward(once, mode);
    CHECK(norm.forward(norm.forward(x, mode), mode) == expected);
  }
}

TEST_CASE("Output large enough to bypass the caches has the values of output that does not") {
  // Features are normalized independently, so the first rows of a batch whose matrices are
  // streamed past the caches (layers/batch_norm_kernels.hpp, stream_output) must equal,
  // bit for bit, a layer over those rows alone, whose matrices are not.
  const Index features = 32, rows = 16, batch = 131072;
  REQUIRE(detail::stream_output<float>(features * batch));
  REQUIRE(!detail::stream_output<float>(rows * batch));
  const Matrix<float> x = random_input(features, batch, 41).cast<float>();
  const Matrix<float> dy = random_input(features, batch, 42).cast<float>();
  for (detail::Isa isa : bnorm_test::supported_variants()) {
    CAPTURE(detail::isa_name(isa));
    const bnorm_test::ForcedIsa forced(isa);
    BatchNorm<float> wide(features), narrow(rows);
    wide.gamma().setLinSpaced(0.5f, 2.0f);
    wide.beta().setLinSpaced(-1.0f, 1.0f);
    narrow.gamma() = wide.gamma().head(rows);
    narrow.beta() = wide.beta().head(rows);
    CHECK(wide.forward(x, Mode::train).topRows(rows) == narrow.forward(x.topRows(rows), Mode::train));
    CHECK(wide.backward(dy).topRows(rows) == narrow.backward(dy.topRows(rows)));
    CHECK(wide.gamma_grad().head(rows) == narrow.gamma_grad());
    CHECK(wide.beta_grad().head(rows) == narrow.beta_grad());
    CHECK(wide.forward(x, Mode::eval).topRows(rows) == narrow.forward(x.topRows(rows), Mode::eval));
    wide.set_frozen_statistics(true);
    narrow.set_frozen_statistics(true);
    CHECK(wide.forward(x, Mode::train).topRows(rows) == narrow.forward(x.topRows(rows), Mode::train));
    CHECK(wide.backward(dy).topRows(rows) == narrow.backward(dy.topRows(rows)));
  }
}
