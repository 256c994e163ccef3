// The dispatched element-wise and reduction kernels (core/kernels.hpp): every
// instruction-set variant this machine runs, against a plain double-precision reference and
// against the baseline variant, in float and double, at sizes that are not multiples of any
// vector width (1 row, 1 column, odd counts), on strided matrices whose padding must stay
// untouched, from misaligned starts. The tanh kernel's error bound, measured. Then the
// layers built on them (BatchNorm, Dense's bias, ReLU, SGD; Tanh, softmax cross-entropy and
// Adam) in every variant against the baseline.
#include "support/allocation_counter.hpp"  // first: it configures Eigen

#include <bnorm/core/kernels.hpp>
#include <bnorm/layers/batch_norm.hpp>
#include <bnorm/layers/dense.hpp>
#include <bnorm/layers/relu.hpp>
#include <bnorm/layers/sigmoid.hpp>
#include <bnorm/layers/tanh.hpp>
#include <bnorm/losses/mean_squared_error.hpp>
#include <bnorm/losses/softmax_cross_entropy.hpp>
#include <bnorm/optim/adamw.hpp>
#include <bnorm/optim/sgd.hpp>

#include "support/isa_variants.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <vector>

using namespace bnorm;
using detail::Isa;
using bnorm_test::ForcedIsa;
using bnorm_test::supported_variants;
namespace kernels = bnorm::detail::kernels;

namespace {

// Row counts around every vector width (4, 8, 16 floats; 2, 4, 8 doubles) and column counts
// down to 1.
const std::vector<Index> row_counts = {1, 2, 3, 5, 7, 8, 9, 15, 16, 17, 31, 33, 64, 65, 100};
const std::vector<Index> column_counts = {1, 2, 3, 6};

constexpr double sentinel = 12345.0;  // the padding below each column

// A rows x cols matrix stored with stride rows + 3; the 3 padding rows hold the sentinel.
template <class T>
struct Strided {
  Index rows, cols, stride;
  std::vector<T> data;
  Strided(Index rows_, Index cols_)
      : rows(rows_), cols(cols_), stride(rows_ + 3), data(std::size_t(stride * cols), T(sentinel)) {}
  T& operator()(Index i, Index j) { return data[std::size_t(i + j * stride)]; }
  T operator()(Index i, Index j) const { return data[std::size_t(i + j * stride)]; }
  bool padding_intact() const {
    for (Index j = 0; j < cols; ++j)
      for (Index i = rows; i < stride; ++i)
        if ((*this)(i, j) != T(sentinel)) return false;
    return true;
  }
};

template <class T>
Strided<T> random_strided(Index rows, Index cols) {
  Strided<T> m(rows, cols);
  const Matrix<T> values = Matrix<T>::Random(rows, cols);
  for (Index j = 0; j < cols; ++j)
    for (Index i = 0; i < rows; ++i) m(i, j) = values(i, j);
  return m;
}

template <class T>
std::vector<T> random_vector(Index n, double offset = 0.0) {
  const Vector<T> values = Vector<T>::Random(n);
  std::vector<T> v(static_cast<std::size_t>(n));
  for (Index i = 0; i < n; ++i) v[std::size_t(i)] = values(i) + T(offset);
  return v;
}

// Within a few rounding errors of a sum of `terms` terms of magnitude up to `magnitude`.
template <class T>
bool close(double actual, double exact, double magnitude, Index terms) {
  const double eps = double(std::numeric_limits<T>::epsilon());
  return std::abs(actual - exact) <= 4.0 * double(terms + 2) * eps * (magnitude + 1.0);
}

template <class T>
void check_kernels_in_every_variant() {
  for (Index rows : row_counts) {
    for (Index cols : column_counts) {
      CAPTURE(rows);
      CAPTURE(cols);
      const Strided<T> x = random_strided<T>(rows, cols), dy = random_strided<T>(rows, cols);
      const std::vector<T> mean = random_vector<T>(rows), inv_std = random_vector<T>(rows, 2.0);
      const std::vector<T> scale = random_vector<T>(rows), shift = random_vector<T>(rows);
      std::optional<Strided<T>> baseline_y;
      for (Isa isa : supported_variants()) {
        CAPTURE(detail::isa_name(isa));
        ForcedIsa forced(isa);

        // shifted_sums against sums in double.
        std::vector<T> sum_d(static_cast<std::size_t>(rows)), sum_d2(static_cast<std::size_t>(rows));
        kernels::shifted_sums(x.data.data(), x.stride, rows, cols, sum_d.data(), sum_d2.data());
        for (Index i = 0; i < rows; ++i) {
          double s = 0, s2 = 0;
          for (Index j = 1; j < cols; ++j) {
            const double d = double(x(i, j)) - double(x(i, 0));
            s += d;
            s2 += d * d;
          }
          CHECK(close<T>(sum_d[std::size_t(i)], s, 2.0 * double(cols), cols));
          CHECK(close<T>(sum_d2[std::size_t(i)], s2, 4.0 * double(cols), 2 * cols));
        }

        // normalize, saving xhat and not: the same y bit for bit.
        Strided<T> xhat(rows, cols), y(rows, cols), y_unsaved(rows, cols);
        kernels::normalize(x.data.data(), x.stride, rows, cols, mean.data(), inv_std.data(),
                           scale.data(), shift.data(), xhat.data.data(), xhat.stride,
                           y.data.data(), y.stride);
        kernels::normalize<T>(x.data.data(), x.stride, rows, cols, mean.data(), inv_std.data(),
                              scale.data(), shift.data(), nullptr, 0, y_unsaved.data.data(),
                              y_unsaved.stride);
        CHECK(xhat.padding_intact());
        CHECK(y.padding_intact());
        CHECK(y.data == y_unsaved.data);
        // Streamed past the caches (large output): the same values, bit for bit.
        Strided<T> xhat_streamed(rows, cols), y_streamed(rows, cols);
        kernels::normalize(x.data.data(), x.stride, rows, cols, mean.data(), inv_std.data(),
                           scale.data(), shift.data(), xhat_streamed.data.data(),
                           xhat_streamed.stride, y_streamed.data.data(), y_streamed.stride, true);
        CHECK(xhat_streamed.data == xhat.data);
        CHECK(y_streamed.data == y.data);
        for (Index j = 0; j < cols; ++j)
          for (Index i = 0; i < rows; ++i) {
            const std::size_t r = std::size_t(i);
            const double h = (double(x(i, j)) - double(mean[r])) * double(inv_std[r]);
            CHECK(close<T>(xhat(i, j), h, 10.0, 2));
            CHECK(close<T>(y(i, j), h * double(scale[r]) + double(shift[r]), 10.0, 4));
          }
        if (!baseline_y) baseline_y = y;  // the baseline runs first
        for (std::size_t k = 0; k < y.data.size(); ++k)
          CHECK(close<T>(y.data[k], baseline_y->data[k], 10.0, 4));

        // affine.
        Strided<T> mapped(rows, cols);
        kernels::affine(x.data.data(), x.stride, rows, cols, scale.data(), shift.data(),
                        mapped.data.data(), mapped.stride);
        CHECK(mapped.padding_intact());
        Strided<T> mapped_streamed(rows, cols);
        kernels::affine(x.data.data(), x.stride, rows, cols, scale.data(), shift.data(),
                        mapped_streamed.data.data(), mapped_streamed.stride, true);
        CHECK(mapped_streamed.data == mapped.data);
        for (Index j = 0; j < cols; ++j)
          for (Index i = 0; i < rows; ++i) {
            const std::size_t r = std::size_t(i);
            CHECK(close<T>(mapped(i, j), double(x(i, j)) * scale[r] + shift[r], 2.0, 2));
          }

        // gradient_sums, with and without dx = scale * dy; then the input gradient.
        std::vector<T> sum_dy(static_cast<std::size_t>(rows)), sum_dy_xhat(static_cast<std::size_t>(rows));
        std::vector<T> again_dy(static_cast<std::size_t>(rows)), again_dy_xhat(static_cast<std::size_t>(rows));
        Strided<T> scaled(rows, cols), dx(rows, cols);
        kernels::gradient_sums(dy.data.data(), dy.stride, xhat.data.data(), xhat.stride, rows,
                               cols, sum_dy.data(), sum_dy_xhat.data());
        kernels::gradient_sums(dy.data.data(), dy.stride, xhat.data.data(), xhat.stride, rows,
                               cols, again_dy.data(), again_dy_xhat.data(), scale.data(),
                               scaled.data.data(), scaled.stride);
        CHECK(sum_dy == again_dy);
        CHECK(sum_dy_xhat == again_dy_xhat);
        CHECK(scaled.padding_intact());
        kernels::normalized_input_gradient(dy.data.data(), dy.stride, xhat.data.data(),
                                           xhat.stride, rows, cols, scale.data(),
                                           mean.data(), inv_std.data(), dx.data.data(),
                                           dx.stride);
        CHECK(dx.padding_intact());
        Strided<T> dx_streamed(rows, cols);
        kernels::normalized_input_gradient(dy.data.data(), dy.stride, xhat.data.data(),
                                           xhat.stride, rows, cols, scale.data(),
                                           mean.data(), inv_std.data(),
                                           dx_streamed.data.data(), dx_streamed.stride, true);
        CHECK(dx_streamed.data == dx.data);
        for (Index i = 0; i < rows; ++i) {
          const std::size_t r = std::size_t(i);
          double s = 0, sh = 0;
          for (Index j = 0; j < cols; ++j) {
            s += double(dy(i, j));
            sh += double(dy(i, j)) * double(xhat(i, j));
            CHECK(close<T>(scaled(i, j), double(scale[r]) * dy(i, j), 1.0, 1));
            const double expected =
                double(scale[r]) * (double(dy(i, j)) - double(mean[r]) -
                                    double(xhat(i, j)) * double(inv_std[r]));
            CHECK(close<T>(dx(i, j), expected, 30.0, 4));
          }
          CHECK(close<T>(sum_dy[r], s, double(cols), cols));
          CHECK(close<T>(sum_dy_xhat[r], sh, 10.0 * double(cols), cols));
        }

        // add_to_columns and row_sums (fresh and accumulated).
        Strided<T> biased = x;
        kernels::add_to_columns(biased.data.data(), biased.stride, rows, cols, shift.data());
        CHECK(biased.padding_intact());
        std::vector<T> sums(std::size_t(rows), T(0)), accumulated = shift;
        kernels::row_sums(x.data.data(), x.stride, rows, cols, sums.data(), false);
        kernels::row_sums(x.data.data(), x.stride, rows, cols, accumulated.data(), true);
        for (Index i = 0; i < rows; ++i) {
          const std::size_t r = std::size_t(i);
          double s = 0;
          for (Index j = 0; j < cols; ++j) {
            s += double(x(i, j));
            CHECK(biased(i, j) == x(i, j) + shift[r]);
          }
          CHECK(close<T>(sums[r], s, double(cols), cols));
          CHECK(close<T>(accumulated[r], s + double(shift[r]), double(cols) + 1.0, cols + 1));
        }

        // matrix_vector: x as a rows x cols matrix times a vector, with and without bias.
        const std::vector<T> vector = random_vector<T>(cols);
        std::vector<T> product(static_cast<std::size_t>(rows) + 3, T(sentinel));
        std::vector<T> biased_product = product;
        kernels::matrix_vector<T>(x.data.data(), x.stride, rows, cols, vector.data(), nullptr,
                                  product.data());
        kernels::matrix_vector(x.data.data(), x.stride, rows, cols, vector.data(), shift.data(),
                               biased_product.data());
        for (Index i = 0; i < rows + 3; ++i) {
          const std::size_t r = std::size_t(i);
          if (i >= rows) {  // nothing written past the end
            CHECK(product[r] == T(sentinel));
            CHECK(biased_product[r] == T(sentinel));
            continue;
          }
          double s = 0;
          for (Index j = 0; j < cols; ++j) s += double(x(i, j)) * double(vector[std::size_t(j)]);
          CHECK(close<T>(product[r], s, double(cols), 2 * cols));
          CHECK(close<T>(biased_product[r], s + double(shift[r]), double(cols) + 1.0, 2 * cols + 1));
        }

        // relu and its backward on rows * cols contiguous elements, in place too.
        const Index n = rows * cols;
        std::vector<T> values = random_vector<T>(n), relu_out(static_cast<std::size_t>(n));
        values[0] = std::numeric_limits<T>::quiet_NaN();
        kernels::relu(values.data(), n, relu_out.data());
        std::vector<T> in_place = values;
        kernels::relu(in_place.data(), n, in_place.data());
        const std::vector<T> grad = random_vector<T>(n);
        std::vector<T> relu_dx(static_cast<std::size_t>(n));
        kernels::relu_backward(relu_out.data(), grad.data(), n, relu_dx.data());
        CHECK(std::isnan(relu_out[0]));
        CHECK(std::isnan(in_place[0]));
        for (std::size_t k = 1; k < std::size_t(n); ++k) {
          CHECK(relu_out[k] == (values[k] < T(0) ? T(0) : values[k]));
          CHECK(in_place[k] == relu_out[k]);
          CHECK(relu_dx[k] == (relu_out[k] > T(0) ? grad[k] : T(0)));
        }
        CHECK(relu_dx[0] == T(0));  // NaN > 0 is false

        // sigmoid within 3 ulp of the long double formula (both tails, NaN, in place), and
        // its backward.
        std::vector<T> logits = random_vector<T>(n);
        for (std::size_t k = 0; k < logits.size(); ++k) logits[k] *= T(30);
        if (n > 3) {
          logits[1] = std::numeric_limits<T>::infinity();
          logits[2] = -std::numeric_limits<T>::infinity();
          logits[3] = T(-1e-5);
        }
        std::vector<T> probabilities(static_cast<std::size_t>(n) + 2, T(sentinel));
        kernels::sigmoid(logits.data(), n, probabilities.data());
        std::vector<T> sigmoid_in_place = logits;
        kernels::sigmoid(sigmoid_in_place.data(), n, sigmoid_in_place.data());
        CHECK(probabilities[std::size_t(n)] == T(sentinel));
        CHECK(probabilities[std::size_t(n) + 1] == T(sentinel));
        std::vector<T> sigmoid_dx(static_cast<std::size_t>(n));
        kernels::sigmoid_backward(probabilities.data(), grad.data(), n, sigmoid_dx.data());
        for (std::size_t k = 0; k < std::size_t(n); ++k) {
          const long double exact = 1.0L / (1.0L + std::exp(-static_cast<long double>(logits[k])));
          const T rounded = T(exact);
          const long double ulp = std::nextafter(rounded, std::numeric_limits<T>::infinity()) - rounded;
          CHECK(std::abs(static_cast<long double>(probabilities[k]) - exact) <= 3.0L * ulp);
          CHECK(sigmoid_in_place[k] == probabilities[k]);
          const T y = probabilities[k];
          CHECK(sigmoid_dx[k] == grad[k] * y * (T(1) - y));
        }
        std::vector<T> nan_in = {std::numeric_limits<T>::quiet_NaN()}, nan_out = {T(0)};
        kernels::sigmoid(nan_in.data(), 1, nan_out.data());
        CHECK(std::isnan(nan_out[0]));

        // sgd_momentum in every combination of its switches, against double.
        for (int flags = 0; flags < 8; ++flags) {
          const bool started = flags & 1, nesterov = flags & 2, decay = flags & 4;
          CAPTURE(flags);
          std::vector<T> value = random_vector<T>(n), buffer = random_vector<T>(n);
          const std::vector<T> value0 = value, buffer0 = buffer;
          const double lr = 0.1, momentum = 0.9, undamped = 0.75, wd = decay ? 0.01 : 0.0;
          kernels::sgd_momentum(value.data(), grad.data(), buffer.data(), n,
                                kernels::SGDCoefficients<T>{T(lr), T(wd), T(momentum),
                                                            T(undamped), started, nesterov});
          for (std::size_t k = 0; k < std::size_t(n); ++k) {
            const double g = double(grad[k]) + wd * double(value0[k]);
            const double b = started ? momentum * double(buffer0[k]) + undamped * g : g;
            const double step = nesterov ? g + momentum * b : b;
            CHECK(close<T>(buffer[k], b, 2.0, 3));
            CHECK(close<T>(value[k], double(value0[k]) - lr * step, 2.0, 4));
          }
        }
      }
    }
  }
}

// The distance of `actual` from `exact` in units in the last place of T at `exact`.
template <class T>
long double ulp_distance(T actual, long double exact) {
  if (std::isnan(actual) || std::isnan(exact)) return std::isnan(actual) == std::isnan(exact) ? 0 : 1e30L;
  const T rounded = T(exact);
  const T magnitude = std::abs(rounded);
  const long double ulp = static_cast<long double>(
      std::nextafter(magnitude, std::numeric_limits<T>::infinity()) - magnitude);
  return std::abs(static_cast<long double>(actual) - exact) / ulp;
}

// The kernels moved from Eigen (activations, Dropout's product, losses, optimizer updates),
// against double (long double for tanh) and against the baseline variant, at every size of
// row_counts times column_counts. Each array starts one element past the start of its
// std::vector, so no start is on a register boundary of any width.
template <class T>
void check_moved_kernels_in_every_variant() {
  const T nan = std::numeric_limits<T>::quiet_NaN(), inf = std::numeric_limits<T>::infinity();
  for (Index rows : row_counts) {
    for (Index cols : column_counts) {
      CAPTURE(rows);
      CAPTURE(cols);
      const Index n = rows * cols;
      const auto shifted = [](std::vector<T> v) {
        v.insert(v.begin(), T(sentinel));
        return v;
      };
      std::vector<T> x = shifted(random_vector<T>(n)), dy = shifted(random_vector<T>(n));
      for (Index k = 1; k <= n; ++k) x[std::size_t(k)] *= T(8);  // both branches of tanh
      const std::vector<T> special = {nan, inf, -inf, T(-0.0), T(0), T(1e-30), T(-1e-30),
                                      T(-20), T(400), T(0.625), T(-0.6249)};
      for (std::size_t k = 0; k < special.size() && k < std::size_t(n); ++k) x[k + 1] = special[k];
      // The logits of the softmax (large enough that exp without the max shift would
      // overflow), the losses' and the optimizers' inputs: the same in every variant.
      Strided<T> logits = random_strided<T>(rows, cols);
      for (Index j = 0; j < cols; ++j)
        for (Index i = 0; i < rows; ++i) logits(i, j) = logits(i, j) * T(20) + T(200);
      std::vector<int> labels(static_cast<std::size_t>(cols));
      for (Index j = 0; j < cols; ++j) labels[std::size_t(j)] = int((j * 7 + 3) % rows);
      const Strided<T> prediction = random_strided<T>(rows, cols), target = random_strided<T>(rows, cols);
      const std::vector<T> value0 = shifted(random_vector<T>(n)), grad = shifted(random_vector<T>(n));
      const std::vector<T> m0 = shifted(random_vector<T>(n)), v0 = [&] {
        std::vector<T> v = shifted(random_vector<T>(n, 2.0));
        for (T& e : v) e = e * e;  // second moments, in [1, 9]: well away from 0
        return v;
      }();
      std::optional<std::vector<std::vector<T>>> baseline;
      for (Isa isa : supported_variants()) {
        CAPTURE(detail::isa_name(isa));
        ForcedIsa forced(isa);
        std::vector<std::vector<T>> results;
        const auto out = [&] { return std::vector<T>(std::size_t(n) + 2, T(sentinel)); };
        const auto untouched_after = [&](const std::vector<T>& v) {
          return v[0] == T(sentinel) && v[std::size_t(n) + 1] == T(sentinel);
        };

        // tanh within 2 ulp (NaN, -0, infinities, large |x| included), in place too; its
        // backward.
        std::vector<T> y = out(), y_in_place = x, tanh_dx = out();
        kernels::tanh(x.data() + 1, n, y.data() + 1);
        kernels::tanh(y_in_place.data() + 1, n, y_in_place.data() + 1);
        kernels::tanh_backward(y.data() + 1, dy.data() + 1, n, tanh_dx.data() + 1);
        CHECK(untouched_after(y));
        CHECK(untouched_after(tanh_dx));
        for (std::size_t k = 1; k <= std::size_t(n); ++k) {
          CAPTURE(x[k]);
          CHECK(ulp_distance(y[k], std::tanh(static_cast<long double>(x[k]))) <= 2.0L);
          if (!std::isnan(x[k])) CHECK(std::signbit(y[k]) == std::signbit(x[k]));  // -0 kept
          CHECK(std::isnan(y_in_place[k]) == std::isnan(y[k]));
          if (!std::isnan(y[k])) CHECK(y_in_place[k] == y[k]);
          const double exact = double(dy[k]) * (1.0 - double(y[k]) * double(y[k]));
          if (!std::isnan(y[k])) CHECK(close<T>(tanh_dx[k], exact, 1.0, 3));
        }
        results.push_back(y);
        results.push_back(tanh_dx);

        // LeakyReLU with a positive and a negative slope, and Dropout's product: one rounding
        // each, so exact.
        for (const T slope : {T(0.01), T(-0.5)}) {
          std::vector<T> leaky = out(), leaky_dx = out();
          kernels::leaky_relu(x.data() + 1, n, slope, leaky.data() + 1);
          kernels::leaky_relu_backward(x.data() + 1, dy.data() + 1, n, slope, leaky_dx.data() + 1);
          CHECK(untouched_after(leaky));
          CHECK(untouched_after(leaky_dx));
          for (std::size_t k = 1; k <= std::size_t(n); ++k) {
            const T expected = x[k] > T(0) ? x[k] : slope * x[k];
            CHECK((leaky[k] == expected || (std::isnan(leaky[k]) && std::isnan(expected))));
            CHECK(leaky_dx[k] == (x[k] > T(0) ? dy[k] : slope * dy[k]));
          }
        }
        std::vector<T> product = out();
        kernels::multiply(dy.data() + 1, x.data() + 1, n, product.data() + 1);
        CHECK(untouched_after(product));
        for (std::size_t k = 1; k <= std::size_t(n); ++k)
          CHECK((product[k] == dy[k] * x[k] || std::isnan(x[k])));

        // Softmax cross-entropy of a rows x cols matrix of logits (strided); the gradient in
        // double.
        std::vector<T> gradient(std::size_t(n) + 1, T(sentinel));
        const T total = kernels::softmax_cross_entropy(logits.data.data(), logits.stride, rows,
                                                       cols, labels.data(), gradient.data());
        CHECK(gradient[std::size_t(n)] == T(sentinel));
        double expected_total = 0;
        for (Index j = 0; j < cols; ++j) {
          double largest = -1e300, sum = 0;
          for (Index i = 0; i < rows; ++i) largest = std::max(largest, double(logits(i, j)));
          for (Index i = 0; i < rows; ++i) sum += std::exp(double(logits(i, j)) - largest);
          const int label = labels[std::size_t(j)];
          expected_total += std::log(sum) + largest - double(logits(label, j));
          for (Index i = 0; i < rows; ++i) {
            const double softmax = std::exp(double(logits(i, j)) - largest) / sum;
            const double expected = (softmax - (i == label ? 1.0 : 0.0)) / double(cols);
            CHECK(close<T>(gradient[std::size_t(i + j * rows)], expected, 1.0, 8));
          }
        }
        CHECK(std::isfinite(total));
        CHECK(close<T>(total, expected_total, 50.0 * double(cols), 4 * cols));
        gradient.push_back(total);
        results.push_back(gradient);

        // Squared error, strided and contiguous.
        std::vector<T> error_gradient(std::size_t(n) + 1, T(sentinel));
        const T squares = kernels::squared_error(prediction.data.data(), prediction.stride,
                                                 target.data.data(), target.stride, rows, cols,
                                                 T(0.5), error_gradient.data());
        CHECK(error_gradient[std::size_t(n)] == T(sentinel));
        std::vector<T> contiguous_gradient(static_cast<std::size_t>(n));
        // n - 11 columns of one row each, past the special values: adjacent, so summed as one
        // column of n - 11 rows.
        const T contiguous_squares =
            n > 11 ? kernels::squared_error(x.data() + 12, 1, dy.data() + 1, 1, 1, n - 11, T(0.5),
                                            contiguous_gradient.data())
                   : T(0);
        double expected_squares = 0;
        for (Index j = 0; j < cols; ++j)
          for (Index i = 0; i < rows; ++i) {
            const double d = double(prediction(i, j)) - double(target(i, j));
            expected_squares += d * d;
            CHECK(close<T>(error_gradient[std::size_t(i + j * rows)], 0.5 * d, 1.0, 2));
          }
        CHECK(close<T>(squares, expected_squares, 4.0 * double(n), n));
        if (n > 11) {
          double s = 0;
          for (Index k = 12; k <= n; ++k) {
            const double d = double(x[std::size_t(k)]) - double(dy[std::size_t(k - 11)]);
            s += d * d;
          }
          CHECK(close<T>(contiguous_squares, s, 100.0 * double(n), n));
        }
        error_gradient.push_back(squares);
        results.push_back(error_gradient);

        // The optimizer updates in every combination of their switches, against double.
        for (int flags = 0; flags < 8; ++flags) {
          CAPTURE(flags);
          const bool amsgrad = flags & 1, l2 = flags & 2, decoupled = flags & 4;
          const kernels::AdamCoefficients<T> c{.step_size = T(0.01), .bias_correction2_sqrt = T(0.3),
                                               .beta1 = T(0.9), .one_minus_beta1 = T(0.1),
                                               .beta2 = T(0.999), .one_minus_beta2 = T(0.001),
                                               .eps = T(1e-8), .l2 = l2 ? T(0.01) : T(0),
                                               .decay = decoupled ? T(0.999) : T(1)};
          std::vector<T> value = value0, m = m0, v = v0, v_max = v0;
          for (std::size_t k = 1; k <= std::size_t(n); ++k) v_max[k] = v0[k] * T(k % 2 ? 2 : 0.5);
          const std::vector<T> v_max0 = v_max;
          kernels::adam(value.data() + 1, grad.data() + 1, m.data() + 1, v.data() + 1,
                        amsgrad ? v_max.data() + 1 : nullptr, n, c);
          for (std::size_t k = 1; k <= std::size_t(n); ++k) {
            const double p = double(value0[k]) * double(c.decay);
            const double g = double(grad[k]) + double(c.l2) * p;
            const double em = 0.9 * double(m0[k]) + 0.1 * g;
            const double ev = 0.999 * double(v0[k]) + 0.001 * g * g;
            const double evm = std::max(double(v_max0[k]), ev);
            const double step = 0.01 * em / (std::sqrt(amsgrad ? evm : ev) / 0.3 + 1e-8);
            CHECK(close<T>(m[k], em, 2.0, 3));
            CHECK(close<T>(v[k], ev, 4.0, 3));
            if (amsgrad) CHECK(close<T>(v_max[k], evm, 8.0, 3));
            CHECK(close<T>(value[k], p - step, 2.0, 8));
          }
          CHECK(value[0] == T(sentinel));
          results.push_back(value);
        }
        for (int flags = 0; flags < 8; ++flags) {
          CAPTURE(flags);
          const bool centered = flags & 1, momentum = flags & 2, decay = flags & 4;
          const double lr = 0.01, alpha = 0.9, eps = 1e-8, wd = decay ? 0.01 : 0.0, mu = 0.8;
          std::vector<T> value = value0, square = v0, average = m0, buffer = m0;
          for (std::size_t k = 1; k <= std::size_t(n); ++k) average[k] *= T(0.1);  // a^2 < s
          const std::vector<T> average0 = average;
          kernels::rmsprop(value.data() + 1, grad.data() + 1, square.data() + 1,
                           centered ? average.data() + 1 : nullptr,
                           momentum ? buffer.data() + 1 : nullptr, n,
                           kernels::RMSpropCoefficients<T>{T(lr), T(alpha), T(1.0 - alpha),
                                                           T(eps), T(wd), T(mu)});
          for (std::size_t k = 1; k <= std::size_t(n); ++k) {
            const double g = double(grad[k]) + wd * double(value0[k]);
            const double s = alpha * double(v0[k]) + (1 - alpha) * g * g;
            const double a = alpha * double(average0[k]) + (1 - alpha) * g;
            const double denominator = std::sqrt(centered ? s - a * a : s) + eps;
            const double b = mu * double(m0[k]) + g / denominator;
            const double p = double(value0[k]) - lr * (momentum ? b : g / denominator);
            CHECK(close<T>(square[k], s, 4.0, 3));
            if (centered) CHECK(close<T>(average[k], a, 1.0, 3));
            else CHECK(average[k] == average0[k]);
            if (momentum) CHECK(close<T>(buffer[k], b, 50.0, 8));
            else CHECK(buffer[k] == m0[k]);
            CHECK(close<T>(value[k], p, 2.0, 8));
          }
          results.push_back(value);
        }
        for (const double wd : {0.0, 0.01}) {
          std::vector<T> value = value0;
          kernels::sgd(value.data() + 1, grad.data() + 1, n,
                       kernels::SGDCoefficients<T>{T(0.1), T(wd), T(0), T(1), false, false});
          for (std::size_t k = 1; k <= std::size_t(n); ++k)
            CHECK(close<T>(value[k], double(value0[k]) - 0.1 * (double(grad[k]) + wd * double(value0[k])), 2.0, 3));
          results.push_back(value);
        }

        // Against the baseline: element by element within the rounding the checks above allow.
        if (!baseline) {
          baseline = results;  // the baseline runs first
          continue;
        }
        REQUIRE(results.size() == baseline->size());
        for (std::size_t r = 0; r < results.size(); ++r)
          for (std::size_t k = 0; k < results[r].size(); ++k) {
            CAPTURE(r);
            CAPTURE(k);
            const T a = results[r][k], b = (*baseline)[r][k];
            if (std::isnan(a) || std::isnan(b)) CHECK(std::isnan(a) == std::isnan(b));
            else CHECK(close<T>(a, double(b), 100.0 * double(n), 8 * n));
          }
      }
    }
  }
}

// The kernels align their main stream to a register boundary by doing the rows before it
// one at a time (core/kernels/vector.hpp, for_rows): the same data at every offset
// from a 64-byte boundary must give the same results, bit for bit.
template <class T>
void check_alignment_does_not_matter() {
  const Index rows = 37, cols = 3, lanes = 64 / Index(sizeof(T));
  const Matrix<T> x = Matrix<T>::Random(rows, cols), dy = Matrix<T>::Random(rows, cols);
  const Vector<T> mean = Vector<T>::Random(rows), inv_std = Vector<T>::Random(rows).array() + 2;
  const Vector<T> vector = Vector<T>::Random(cols);
  std::optional<std::vector<T>> first;
  for (Index offset = 0; offset < lanes; ++offset) {
    CAPTURE(offset);
    // The matrices back to back in one 64-byte aligned buffer, `offset` elements in.
    alignas(64) static T storage[6 * 37 * 3 + 65];
    T* x_copy = storage + offset;
    T* dy_copy = x_copy + rows * cols;
    T* out = dy_copy + rows * cols;
    T* xhat = out + rows * cols;
    std::copy(x.data(), x.data() + x.size(), x_copy);
    std::copy(dy.data(), dy.data() + dy.size(), dy_copy);
    std::vector<T> results;
    kernels::normalize(x_copy, rows, rows, cols, mean.data(), inv_std.data(), mean.data(),
                       inv_std.data(), xhat, rows, out, rows);
    results.insert(results.end(), out, out + rows * cols);
    results.insert(results.end(), xhat, xhat + rows * cols);
    // Streamed, with xhat one element off y's alignment (stored the ordinary way then).
    kernels::normalize(x_copy, rows, rows, cols, mean.data(), inv_std.data(), mean.data(),
                       inv_std.data(), xhat + 1, rows, out, rows, true);
    results.insert(results.end(), out, out + rows * cols);
    results.insert(results.end(), xhat + 1, xhat + 1 + rows * cols);
    kernels::affine(x_copy, rows, rows, cols, mean.data(), inv_std.data(), out, rows, true);
    results.insert(results.end(), out, out + rows * cols);
    kernels::normalized_input_gradient(dy_copy, rows, x_copy, rows, rows, cols, mean.data(),
                                       inv_std.data(), mean.data(), out, rows, true);
    results.insert(results.end(), out, out + rows * cols);
    std::vector<T> sums(2 * std::size_t(rows));
    kernels::gradient_sums(dy_copy, rows, xhat, rows, rows, cols, sums.data(),
                           sums.data() + rows, mean.data(), out, rows);
    results.insert(results.end(), sums.begin(), sums.end());
    results.insert(results.end(), out, out + rows * cols);
    kernels::shifted_sums(x_copy, rows, rows, cols, sums.data(), sums.data() + rows);
    results.insert(results.end(), sums.begin(), sums.end());
    kernels::matrix_vector(x_copy, rows, rows, cols, vector.data(), mean.data(), out);
    results.insert(results.end(), out, out + rows);
    kernels::sigmoid(x_copy, rows * cols, out);
    results.insert(results.end(), out, out + rows * cols);
    kernels::tanh(x_copy, rows * cols, out);
    results.insert(results.end(), out, out + rows * cols);
    kernels::tanh_backward(x_copy, dy_copy, rows * cols, out);
    results.insert(results.end(), out, out + rows * cols);
    kernels::leaky_relu(x_copy, rows * cols, T(0.1), out);
    results.insert(results.end(), out, out + rows * cols);
    kernels::leaky_relu_backward(x_copy, dy_copy, rows * cols, T(0.1), out);
    results.insert(results.end(), out, out + rows * cols);
    kernels::multiply(x_copy, dy_copy, rows * cols, out);
    results.insert(results.end(), out, out + rows * cols);
    const int labels[cols] = {0, 36, 17};
    results.push_back(kernels::softmax_cross_entropy(x_copy, rows, rows, cols, labels, out));
    results.insert(results.end(), out, out + rows * cols);
    results.push_back(kernels::squared_error(x_copy, rows, dy_copy, rows, rows, cols, T(2), out));
    results.insert(results.end(), out, out + rows * cols);
    // The updates, on copies of x (the value), dy (the gradient) and xhat (a moment), with
    // the second moments in `out` and in `square` (>= 0, the largest twice the other).
    const kernels::AdamCoefficients<T> c{T(0.01), T(0.3), T(0.9), T(0.1), T(0.999), T(0.001),
                                         T(1e-8), T(0.01), T(0.999)};
    T* square = xhat + rows * cols;
    for (Index k = 0; k < rows * cols; ++k) {
      xhat[k] = x.data()[k];
      out[k] = dy.data()[k] * dy.data()[k] + T(1);
      square[k] = T(2) * out[k];
    }
    kernels::adam(x_copy, dy_copy, xhat, out, square, rows * cols, c);
    for (Index k = 0; k < rows * cols; ++k) xhat[k] *= T(0.1);  // a^2 < s when centered
    kernels::rmsprop(x_copy, dy_copy, out, xhat, square, rows * cols,
                     kernels::RMSpropCoefficients<T>{T(0.01), T(0.9), T(0.1), T(1e-8), T(0.01),
                                                     T(0.5)});
    kernels::sgd(x_copy, dy_copy, rows * cols,
                 kernels::SGDCoefficients<T>{T(0.1), T(0.01), T(0), T(1), false, false});
    for (const T* slot : {x_copy, xhat, out, square})
      results.insert(results.end(), slot, slot + rows * cols);
    if (!first) first = results;
    // Bit for bit (a NaN compares unequal to itself).
    CHECK(std::memcmp(results.data(), first->data(), results.size() * sizeof(T)) == 0);
    CHECK(std::none_of(results.begin(), results.end(), [](T v) { return std::isnan(v); }));
  }
}

// matrix_vector covers the rows with whole registers (core/gemm/matrix_vector.hpp): aligned ones from
// the first register boundary and, at each end, a masked register on the boundaries
// (AVX-512) or an unaligned one at row 0 and one ending at the last row, in passes of 4 to 7
// registers. At every offset from a 64-byte boundary, for row counts that
// make one register, a head and a tail only, and several passes (in every variant), with
// columns that keep the first one's alignment (stride = rows) and columns that do not
// (stride = rows + 3): the same result bit for bit, within rounding of a double reference,
// and nothing written past the last row.
template <class T>
void check_matrix_vector_at_every_alignment() {
  const Index lanes = 64 / Index(sizeof(T)), depth = 5;
  for (const Index rows : {Index{16}, Index{63}, Index{64}, Index{65}, Index{256}, Index{300}}) {
    for (const Index stride : {rows, rows + 3}) {
      for (const bool with_bias : {false, true}) {
        CAPTURE(rows);
        CAPTURE(stride);
        CAPTURE(with_bias);
        const Matrix<T> a = Matrix<T>::Random(stride, depth);
        const Vector<T> x = Vector<T>::Random(depth), bias = Vector<T>::Random(rows);
        std::vector<T> storage(std::size_t(stride * depth + 2 * lanes));
        const auto address = reinterpret_cast<std::uintptr_t>(storage.data());
        T* const boundary = storage.data() + (64 - address % 64) % 64 / sizeof(T);
        std::optional<std::vector<T>> first;
        for (Index offset = 0; offset < lanes; ++offset) {
          CAPTURE(offset);
          T* const a_copy = boundary + offset;
          std::copy(a.data(), a.data() + a.size(), a_copy);
          std::vector<T> y(std::size_t(rows) + 3, T(sentinel));
          kernels::matrix_vector(a_copy, stride, rows, depth, x.data(),
                                 with_bias ? bias.data() : nullptr, y.data());
          for (Index i = rows; i < rows + 3; ++i) CHECK(y[std::size_t(i)] == T(sentinel));
          y.resize(std::size_t(rows));
          if (!first) {
            first = y;
            for (Index i = 0; i < rows; ++i) {
              double exact = with_bias ? double(bias(i)) : 0.0;
              for (Index k = 0; k < depth; ++k) exact += double(a(i, k)) * double(x(k));
              CHECK(close<T>(y[std::size_t(i)], exact, double(depth) + 1.0, 2 * depth + 1));
            }
          }
          CHECK(y == *first);
        }
      }
    }
  }
}

}  // namespace

TEST_CASE("matrix_vector gives the same result at every alignment of the matrix") {
  for (Isa isa : supported_variants()) {
    CAPTURE(detail::isa_name(isa));
    ForcedIsa forced(isa);
    check_matrix_vector_at_every_alignment<float>();
    check_matrix_vector_at_every_alignment<double>();
  }
}

TEST_CASE("Kernel results do not depend on the alignment of the data") {
  for (Isa isa : supported_variants()) {
    CAPTURE(detail::isa_name(isa));
    ForcedIsa forced(isa);
    check_alignment_does_not_matter<float>();
    check_alignment_does_not_matter<double>();
  }
}

TEST_CASE("Every moved kernel (activations, Dropout, losses, optimizers) matches double and the baseline") {
  SUBCASE("float") { check_moved_kernels_in_every_variant<float>(); }
  SUBCASE("double") { check_moved_kernels_in_every_variant<double>(); }
}

// The bound Tanh's header states, measured against long double's tanh: every 61st float of
// [1e-6, 12] (both signs; the branch point 0.625 and the saturation inside) and a million
// random doubles on [-12, 12] and [-1, 1]. The measured maximum is printed.
template <class T>
void check_tanh_ulp_bound() {
  std::vector<T> x;
  if constexpr (std::is_same_v<T, float>) {
    for (float v = 1e-6f; v < 12.0f; v = std::nextafter(v, 100.0f)) {
      x.push_back(v);
      x.push_back(-v);
      for (int skip = 0; skip < 60; ++skip) v = std::nextafter(v, 100.0f);
    }
  } else {
    std::mt19937_64 engine(10);
    std::uniform_real_distribution<double> wide(-12.0, 12.0), narrow(-1.0, 1.0);
    for (int k = 0; k < 500000; ++k) {
      x.push_back(wide(engine));
      x.push_back(narrow(engine));
    }
  }
  std::vector<T> y(x.size());
  for (Isa isa : supported_variants()) {
    ForcedIsa forced(isa);
    kernels::tanh(x.data(), Index(x.size()), y.data());
    long double worst = 0;
    T worst_at = 0;
    for (std::size_t k = 0; k < x.size(); ++k) {
      const long double error = ulp_distance(y[k], std::tanh(static_cast<long double>(x[k])));
      if (error > worst) {
        worst = error;
        worst_at = x[k];
      }
    }
    MESSAGE((std::string(detail::isa_name(isa)) + (std::is_same_v<T, float> ? " float" : " double") +
             " tanh: at most " + std::to_string(double(worst)) + " ulp (at " +
             std::to_string(double(worst_at)) + ") over " + std::to_string(x.size()) + " points"));
    CHECK(worst <= 2.0L);
  }
}

TEST_CASE("The tanh kernel is within 2 ulp in float and double, in every variant") {
  SUBCASE("float") { check_tanh_ulp_bound<float>(); }
  SUBCASE("double") { check_tanh_ulp_bound<double>(); }
}

TEST_CASE("Which kernel variants run on this machine") {
  for (Isa isa : detail::every_isa)
    MESSAGE((std::string("kernel variant ") + std::string(detail::isa_name(isa)) +
             (detail::isa_supported(isa) ? ": runs" : ": skipped, not supported here")));
  MESSAGE((std::string("kernel variant chosen: ") +
           std::string(detail::isa_name(detail::active_isa()))));
  CHECK(detail::isa_supported(Isa::baseline));
}

TEST_CASE("Every kernel in every variant matches a double reference and the baseline") {
  SUBCASE("float") { check_kernels_in_every_variant<float>(); }
  SUBCASE("double") { check_kernels_in_every_variant<double>(); }
}

// The first variant's results (the baseline runs first) are kept in `baseline`; each later
// variant's must agree with them element by element, absolutely, on the scale of the values:
// Dense's bias gradient sums BatchNorm's dx, whose columns sum to about 0, so a relative test
// would measure noise.
template <class T>
void check_against_baseline(std::vector<Matrix<T>>& baseline,
                            const std::vector<Matrix<T>>& results, double tolerance) {
  if (baseline.empty()) {
    baseline = results;
    return;
  }
  for (std::size_t k = 0; k < results.size(); ++k) {
    CAPTURE(k);
    const double scale = 1.0 + double(baseline[k].cwiseAbs().maxCoeff());
    CHECK(double((results[k] - baseline[k]).cwiseAbs().maxCoeff()) <= tolerance * scale);
  }
}

// The layers on the kernels: each variant's training step agrees with the baseline's to
// rounding (the layer tests check the baseline against PyTorch and finite differences).
// Batches of at least 5 examples: BatchNorm's dx for 2 examples is 0 up to rounding noise
// (xhat is +-1), which then differs between variants by more than a rounding error.
TEST_CASE_TEMPLATE("BatchNorm, Dense, ReLU and SGD agree in every variant", T, float, double) {
  const double tolerance = std::is_same_v<T, float> ? 1e-4 : 1e-12;
  for (const Index features : {Index{1}, Index{13}, Index{64}}) {
    for (const Index batch : {Index{5}, Index{9}, Index{33}}) {
      for (const Index ghost : {Index{0}, Index{4}}) {
        CAPTURE(features);
        CAPTURE(batch);
        CAPTURE(ghost);
        const Matrix<T> x = Matrix<T>::Random(features, batch) * T(3) + Matrix<T>::Constant(features, batch, T(1));
        const Matrix<T> dy = Matrix<T>::Random(features, batch);
        std::vector<Matrix<T>> outputs;
        for (Isa isa : supported_variants()) {
          CAPTURE(detail::isa_name(isa));
          ForcedIsa forced(isa);
          Generator generator(7);
          Dense<T> dense(features, features, Bias::learned, Init::pytorch_default(), generator);
          BatchNorm<T> norm(features, {.virtual_batch_size = ghost});
          ReLU<T> relu;
          SGD<T> sgd(norm.parameters(), {.lr = 0.1, .momentum = 0.9});
          std::vector<Matrix<T>> results;
          for (int step = 0; step < 2; ++step) {
            const Matrix<T> h = dense.forward(x, Mode::train);
            const Matrix<T> y = relu.forward(norm.forward(h, Mode::train), Mode::train);
            const Matrix<T> dh = norm.backward(relu.backward(dy));
            const Matrix<T> dx = dense.backward(dh);
            sgd.step();
            results.push_back(y);
            results.push_back(dx);
            results.push_back(dense.bias_grad());
            results.push_back(norm.running_mean());
            results.push_back(norm.running_var());
            results.push_back(norm.gamma());
          }
          results.push_back(norm.forward(x, Mode::eval));
          norm.set_frozen_statistics(true);
          results.push_back(norm.forward(x, Mode::train));
          results.push_back(norm.backward(dy));
          check_against_baseline(outputs, results, tolerance);
        }
      }
    }
  }
}

// Tanh, softmax cross-entropy and Adam (AdamW's decay and amsgrad too), and MSE on strided
// inputs, through the layers: each variant's steps agree with the baseline's to rounding.
TEST_CASE_TEMPLATE("Tanh, the losses and Adam agree in every variant", T, float, double) {
  const double tolerance = std::is_same_v<T, float> ? 1e-4 : 1e-12;
  for (const Index features : {Index{1}, Index{13}, Index{64}}) {
    for (const Index batch : {Index{1}, Index{9}, Index{33}}) {
      CAPTURE(features);
      CAPTURE(batch);
      const Matrix<T> x = Matrix<T>::Random(features + 2, batch) * T(3);
      Labels labels(batch);
      for (Index j = 0; j < batch; ++j) labels(j) = int((j * 5) % features);
      std::vector<Matrix<T>> outputs;
      for (Isa isa : supported_variants()) {
        CAPTURE(detail::isa_name(isa));
        ForcedIsa forced(isa);
        Generator generator(9);
        Dense<T> dense(features, features, Bias::learned, Init::pytorch_default(), generator);
        Tanh<T> tanh;
        SoftmaxCrossEntropy<T> cross_entropy;
        MeanSquaredError<T> squared_error;
        auto parameters = dense.parameters();
        AdamW<T> adam({parameters[0]}, {.lr = 0.01, .amsgrad = true});
        Adam<T> adam_l2({parameters[1]}, {.lr = 0.01, .weight_decay = 0.1});
        std::vector<Matrix<T>> results;
        for (int step = 0; step < 3; ++step) {
          dense.zero_grad();
          // A block of x: the layers see a strided input.
          const Matrix<T>& y = tanh.forward(dense.forward(x.topRows(features), Mode::train), Mode::train);
          Matrix<T> loss(1, 2);
          loss(0, 0) = cross_entropy.forward(y, labels);
          loss(0, 1) = squared_error.forward(y, x.bottomRows(features));
          const Matrix<T> dy = cross_entropy.backward() + squared_error.backward();
          dense.backward(tanh.backward(dy));
          adam.step();
          adam_l2.step();
          results.push_back(y);
          results.push_back(loss);
          results.push_back(dy);
          results.push_back(dense.weight());
          results.push_back(dense.bias());
        }
        check_against_baseline(outputs, results, tolerance);
      }
    }
  }
}
