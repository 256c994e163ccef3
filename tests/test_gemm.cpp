// detail::Gemm (core/gemm.hpp) and the packed GEMM under it (core/gemm/): every
// instruction-set variant this machine runs, against a double-precision reference and
// against the baseline variant.
#include "support/allocation_counter.hpp"  // first: it configures Eigen

#include <bnorm/core/gemm.hpp>

#include "support/isa_variants.hpp"

#include <doctest/doctest.h>

#include <cstdlib>
#include <string>
#include <tuple>
#include <vector>

using namespace bnorm;
using detail::Isa;
using bnorm_test::ForcedIsa;
using bnorm_test::supported_variants;

namespace {

// Shapes (rows, cols, depth): the flagship Dense products, sizes that are not multiples of
// any tile or block (edges in all three dimensions), 1-wide, depth 1 and large depth.
const std::vector<std::tuple<Index, Index, Index>> shapes = {
    {256, 64, 784}, {784, 64, 256}, {256, 784, 64}, {3, 4, 5},    {300, 1, 40}, {1, 50, 60},
    {70, 90, 1},    {129, 257, 65}, {15, 7, 9},     {17, 5, 3},   {31, 13, 257}, {33, 9, 513},
    {2, 3, 300},    {200, 2, 7},    {47, 25, 2000}, {97, 130, 300}, {8, 6, 16}};

template <class T>
Matrix<T> random_matrix(Index rows, Index cols) {
  return Matrix<T>::Random(rows, cols);
}

// |actual - exact| within the rounding bound of a depth-long sum, (depth + 2) eps sum|a||b|,
// element by element; a wrong index or a lost panel is off by O(1).
template <class T>
bool within_rounding(const Matrix<T>& actual, const Matrix<double>& exact,
                     const Matrix<double>& magnitude, Index depth) {
  const double eps = double(Eigen::NumTraits<T>::epsilon());
  const Matrix<double> error = (actual.template cast<double>() - exact).cwiseAbs();
  const Matrix<double> bound = (double(depth + 2) * eps) * magnitude.array() + 1e-300;
  return (error.array() <= bound.array()).all();
}

}  // namespace

TEST_CASE("Which variants run on this machine") {
  for (Isa isa : detail::every_isa)
    MESSAGE("Gemm variant ", detail::isa_name(isa),
            detail::isa_supported(isa) ? ": runs" : ": skipped, not supported here");
  MESSAGE("Gemm variant chosen: ", detail::isa_name(detail::active_isa()));
  CHECK(detail::isa_supported(detail::Isa::baseline));
}

TEST_CASE_TEMPLATE("Every variant computes the three Dense products, with and without accumulate",
                   T, float, double) {
  const std::vector<Isa> variants = supported_variants();
  for (const auto& shape : shapes) {
    // Plain variables, not a structured binding: CAPTURE and the lambda below capture them,
    // which clang 14 cannot do with bindings.
    const Index m = std::get<0>(shape), n = std::get<1>(shape), k = std::get<2>(shape);
    CAPTURE(m);
    CAPTURE(n);
    CAPTURE(k);
    const Matrix<T> a = random_matrix<T>(m, k), b = random_matrix<T>(k, n);
    const Matrix<T> at = a.transpose(), bt = b.transpose();
    // b as a block of a wider matrix: a Ref with an outer stride larger than its rows.
    Matrix<T> b_wide = random_matrix<T>(k + 3, n + 2);
    b_wide.block(2, 1, k, n) = b;
    const Eigen::Ref<const Matrix<T>> b_ref(b_wide.block(2, 1, k, n));
    const Matrix<T> start = random_matrix<T>(m, n);

    const Matrix<double> exact = a.template cast<double>() * b.template cast<double>();
    const Matrix<double> magnitude =
        a.template cast<double>().cwiseAbs() * b.template cast<double>().cwiseAbs();

    for (bool accumulate : {false, true}) {
      CAPTURE(accumulate);
      const Matrix<double> expected =
          accumulate ? Matrix<double>(exact + start.template cast<double>()) : exact;
      const Matrix<double> expected_magnitude =
          accumulate ? Matrix<double>(magnitude + start.template cast<double>().cwiseAbs())
                     : magnitude;
      std::vector<Matrix<T>> baseline_results;
      for (Isa isa : variants) {
        CAPTURE(detail::isa_name(isa));
        ForcedIsa forced(isa);
        detail::Gemm<T> gemm;
        std::vector<Matrix<T>> results;
        auto run = [&](const auto& lhs, const auto& rhs) {
          Matrix<T> actual = start;
          gemm.assign(actual, lhs, rhs, accumulate);
          CHECK(within_rounding<T>(actual, expected, expected_magnitude, k));
          results.push_back(actual);
        };
        run(a, b);
        run(at.transpose(), b);  // as the input gradient W^T dy
        run(a, bt.transpose());  // as the weight gradient dy x^T
        run(a, b_ref);
        if (isa == Isa::baseline) {
          baseline_results = results;
          continue;
        }
        // Against the baseline: both within rounding of each other (twice the bound).
        for (std::size_t form = 0; form < results.size(); ++form) {
          CAPTURE(form);
          const Matrix<double> difference =
              (results[form].template cast<double>() - baseline_results[form].template cast<double>())
                  .cwiseAbs();
          const double eps = double(Eigen::NumTraits<T>::epsilon());
          CHECK((difference.array() <= 2.0 * double(k + 2) * eps * expected_magnitude.array()).all());
        }
      }
    }
  }
}

// What makes threaded products independent of the thread count: the threads take shares
// of the columns (core/gemm.hpp), and a share computed on its own is bit for bit the same
// as the same columns of the whole product. Checked here without threads, share by share.
TEST_CASE_TEMPLATE("A product computed by shares of columns equals the whole, bit for bit", T,
                   float, double) {
  for (Isa isa : supported_variants()) {
    CAPTURE(detail::isa_name(isa));
    ForcedIsa forced(isa);
    const Matrix<T> w = random_matrix<T>(130, 300), x = random_matrix<T>(300, 75);
    const Matrix<T> xt = x.transpose();
    for (bool transposed : {false, true}) {
      CAPTURE(transposed);
      Matrix<T> whole(130, 75), shares(130, 75);
      detail::Gemm<T> gemm;
      if (transposed)
        gemm.assign(whole, w, xt.transpose());
      else
        gemm.assign(whole, w, x);
      for (auto [first, count] : {std::pair<Index, Index>{0, 16}, {16, 32}, {48, 7}, {55, 20}}) {
        auto share = shares.middleCols(first, count);
        if (transposed)
          gemm.assign(share, w, xt.transpose().middleCols(first, count));
        else
          gemm.assign(share, w, x.middleCols(first, count));
      }
      CHECK(shares == whole);
    }
  }
}

TEST_CASE("A product of the same shape again allocates nothing, on every variant") {
  const Matrix<float> w = random_matrix<float>(256, 784), x = random_matrix<float>(784, 64);
  const Matrix<float> dy = random_matrix<float>(256, 64);
  Matrix<float> y(256, 64), dw(256, 784), dx(784, 64);
  for (Isa isa : supported_variants()) {
    CAPTURE(detail::isa_name(isa));
    ForcedIsa forced(isa);
    detail::Gemm<float> forward, weight, input;
    auto step = [&] {
      forward.assign(y, w, x);
      weight.assign(dw, dy, x.transpose());
      input.assign(dx, w.transpose(), dy, true);
    };
    step();
    CHECK(bnorm_test::allocations_during(step) == 0);
  }
}

TEST_CASE("BNORM_ISA forces a variant; an unknown or unsupported one throws") {
  const char* before = std::getenv("BNORM_ISA");
  const std::string saved = before ? before : "";
  for (Isa isa : supported_variants()) {
    const std::string name(detail::isa_name(isa));
    ::setenv("BNORM_ISA", name.c_str(), 1);
    CHECK(detail::reload_isa_from_environment() == isa);
    CHECK(detail::active_isa() == isa);
    // The forced variant is the one that runs: its result is the variant's own, bit for bit.
    const Matrix<float> a = random_matrix<float>(40, 300), b = random_matrix<float>(300, 30);
    Matrix<float> by_environment(40, 30), by_api(40, 30);
    detail::Gemm<float>().assign(by_environment, a, b);
    {
      ForcedIsa forced(isa);
      detail::Gemm<float>().assign(by_api, a, b);
    }
    CHECK(by_environment == by_api);
  }
  ::setenv("BNORM_ISA", "sse9", 1);
  CHECK_THROWS_WITH_AS(detail::reload_isa_from_environment(),
                       "BNORM_ISA: expected baseline, avx2 or avx512, got 'sse9'", Error);
  for (Isa isa : detail::every_isa) {
    if (detail::isa_supported(isa)) continue;
    ::setenv("BNORM_ISA", std::string(detail::isa_name(isa)).c_str(), 1);
    CHECK_THROWS_AS(detail::reload_isa_from_environment(), Error);
    CHECK_THROWS_AS(detail::force_isa(isa), Error);
  }
  ::unsetenv("BNORM_ISA");
  CHECK(detail::reload_isa_from_environment() == detail::best_isa());
  if (before) ::setenv("BNORM_ISA", saved.c_str(), 1);
  detail::reload_isa_from_environment();
}

TEST_CASE("Forcing a variant switches the kernel: the FMA variants round unlike the baseline") {
  // A product whose FMA and separate multiply-add roundings differ: proof that forcing a
  // variant really switches the kernel (were all three the same code, this could not fail).
  const std::vector<Isa> variants = supported_variants();
  if (variants.size() < 2) return;
  const Matrix<float> a = random_matrix<float>(64, 500), b = random_matrix<float>(500, 48);
  std::vector<Matrix<float>> results;
  for (Isa isa : variants) {
    ForcedIsa forced(isa);
    Matrix<float> out(64, 48);
    detail::Gemm<float>().assign(out, a, b);
    results.push_back(out);
  }
  for (std::size_t i = 1; i < results.size(); ++i) CHECK(results[i] != results[0]);
}

TEST_CASE("A copied Gemm starts empty and still computes") {
  detail::Gemm<float> gemm;
  Matrix<float> a = Matrix<float>::Random(100, 100), out(100, 100);
  gemm.assign(out, a, a);
  detail::Gemm<float> copy = gemm;
  Matrix<float> again(100, 100);
  copy.assign(again, a, a);
  CHECK(again == out);
}

TEST_CASE("Gemm with accumulate adds the product to what dst holds, on every path") {
  detail::Gemm<double> gemm;
  for (auto [m, n, k] : {std::tuple<Index, Index, Index>{256, 64, 784}, {3, 4, 5}, {300, 1, 40},
                         {129, 257, 65}}) {
    const Matrix<double> a = Matrix<double>::Random(m, k), b = Matrix<double>::Random(k, n);
    const Matrix<double> start = Matrix<double>::Random(m, n);
    Matrix<double> dst = start;
    gemm.assign(dst, a, b, true);
    const Matrix<double> expected = start + a * b;
    CHECK((dst - expected).cwiseAbs().maxCoeff() <= 1e-12 * double(k));
    gemm.assign(dst, a, b);  // the default still overwrites
    CHECK((dst - a * b).cwiseAbs().maxCoeff() <= 1e-12 * double(k));
  }
}

TEST_CASE("Products Gemm leaves to Eigen (vectors, tiny) still accumulate") {
  const Matrix<double> a = Matrix<double>::Random(300, 40), v = Matrix<double>::Random(40, 1);
  Matrix<double> out = Matrix<double>::Ones(300, 1);
  detail::Gemm<double>().assign(out, a, v, true);
  CHECK(out.isApprox(Matrix<double>::Ones(300, 1) + a * v));
}
