// The dispatched element-wise and reduction kernels (core/kernels.hpp): every
// instruction-set variant this machine runs, against a plain double-precision reference and
// against the baseline variant, in float and double, at sizes that are not multiples of any
// vector width (1 row, 1 column, odd counts), on strided matrices whose padding must stay
// untouched. Then the layers built on them (BatchNorm, Dense's bias, ReLU, SGD) in every
// variant against the baseline.
#include "support/allocation_counter.hpp"  // first: it configures Eigen

#include <bnorm/core/kernels.hpp>
#include <bnorm/layers/batch_norm.hpp>
#include <bnorm/layers/dense.hpp>
#include <bnorm/layers/relu.hpp>
#include <bnorm/layers/sigmoid.hpp>
#include <bnorm/optim/sgd.hpp>

#include "support/isa_variants.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
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
          kernels::sgd_momentum(value.data(), grad.data(), buffer.data(), n, T(lr), T(momentum),
                                T(undamped), T(wd), started, nesterov);
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

// The kernels align their main stream to a register boundary by doing the rows before it
// one at a time (core/kernels/kernel_bodies.hpp, for_rows): the same data at every offset
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
    // Three matrices back to back in one 64-byte aligned buffer, `offset` elements in.
    alignas(64) static T storage[5 * 37 * 3 + 65];
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
    if (!first) first = results;
    CHECK(results == *first);
  }
}

}  // namespace

TEST_CASE("Kernel results do not depend on the alignment of the data") {
  for (Isa isa : supported_variants()) {
    CAPTURE(detail::isa_name(isa));
    ForcedIsa forced(isa);
    check_alignment_does_not_matter<float>();
    check_alignment_does_not_matter<double>();
  }
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
          if (outputs.empty()) {
            outputs = results;  // the baseline runs first
            continue;
          }
          for (std::size_t k = 0; k < results.size(); ++k) {
            CAPTURE(k);
            // Absolute, on the scale of the values: Dense's bias gradient sums BatchNorm's
            // dx, whose columns sum to about 0, so a relative test would measure noise.
            const double scale = 1.0 + double(outputs[k].cwiseAbs().maxCoeff());
            CHECK(double((results[k] - outputs[k]).cwiseAbs().maxCoeff()) <= tolerance * scale);
          }
        }
      }
    }
  }
}
