// detail::Gemm (core/gemm.hpp): Eigen's product without per-call workspace allocation.
#include <bnorm/core/gemm.hpp>

#include <doctest/doctest.h>

using namespace bnorm;

TEST_CASE_TEMPLATE("Gemm gives Eigen's product bit for bit, for every transpose the layers use", T,
                   float, double) {
  detail::Gemm<T> gemm;
  for (auto [m, n, k] : {std::tuple<Index, Index, Index>{256, 64, 784}, {3, 4, 5}, {300, 1, 40},
                         {1, 50, 60}, {70, 90, 1}, {129, 257, 65}}) {
    const Matrix<T> a = Matrix<T>::Random(m, k), b = Matrix<T>::Random(k, n);
    const Matrix<T> at = a.transpose(), bt = b.transpose();
    const Eigen::Ref<const Matrix<T>> b_ref(b);
    Matrix<T> expected(m, n), actual(m, n);
    // Each operand form against Eigen's product of the same expressions (a transposed
    // operand takes another kernel, so forms may differ from each other in the last bit).
    auto check_same = [&](const auto& lhs, const auto& rhs) {
      expected.noalias() = lhs * rhs;
      gemm.assign(actual, lhs, rhs);
      CHECK(actual == expected);
      CHECK(actual.isApprox(a * b));
    };
    check_same(a, b);
    check_same(at.transpose(), b);  // as the input gradient W^T dy
    check_same(a, bt.transpose());  // as the weight gradient dy x^T
    check_same(a, b_ref);
  }
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
