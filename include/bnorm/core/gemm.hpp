// Matrix products that allocate nothing once sized.
//
// Eigen's `dst.noalias() = a * b` packs blocks of a and b into a workspace that it puts on
// the stack when small and on the heap otherwise (above EIGEN_STACK_ALLOCATION_LIMIT,
// 128 KiB), freeing it after every product. A Dense layer of 784 x 256 would then allocate
// on every training step. Gemm keeps that workspace between calls: it runs Eigen's own
// GEMM kernel (the code path of Eigen 3.4's generic_product_impl, with a persistent
// blocking space), so results are those of Eigen's product, bit for bit.
//
// With Eigen's OpenMP threads on (Eigen::nbThreads() > 1), products of at least 2^24
// multiply-adds go through Eigen's parallel path unchanged, which manages its own
// workspace per call; smaller ones stay here, on one thread.
#pragma once

#include "types.hpp"

#include <Eigen/Core>
#include <memory>

namespace bnorm::detail {

template <class T>
class Gemm {
 public:
  Gemm() = default;
  // A copy starts with an empty workspace (it is a cache, not state).
  Gemm(const Gemm&) {}
  Gemm& operator=(const Gemm&) { return *this; }
  Gemm(Gemm&&) noexcept = default;
  Gemm& operator=(Gemm&&) noexcept = default;

  // dst = lhs * rhs, or dst += lhs * rhs with accumulate (gradient accumulation adds in
  // the product's own pass, no second one); dst must already have the product's shape and
  // alias neither operand.
  template <class Dst, class Lhs, class Rhs>
  void assign(Dst& dst, const Lhs& a_lhs, const Rhs& a_rhs, bool accumulate = false) {
    namespace internal = Eigen::internal;
    const Index rows = dst.rows(), cols = dst.cols(), depth = a_lhs.cols();
    // Tiny products, products with a vector, and products big enough to share among threads:
    // Eigen's usual path (coefficient-based, GEMV or parallel), which needs no large
    // workspace here. Below min_parallel_work multiply-adds, waking the other threads cost
    // more than they saved (bench/RESULTS.md: the batch-64 MLP step ran 0.8x as fast on
    // two threads), so smaller products stay on the calling thread, allocation-free.
    constexpr double min_parallel_work = double(1 << 24);
    const bool parallel =
        Eigen::nbThreads() > 1 && double(rows) * double(cols) * double(depth) >= min_parallel_work;
    if (rows + cols + depth < EIGEN_GEMM_TO_COEFFBASED_THRESHOLD || rows == 1 || cols == 1 ||
        depth == 0 || parallel) {
      if (accumulate)
        dst.noalias() += a_lhs * a_rhs;
      else
        dst.noalias() = a_lhs * a_rhs;
      return;
    }
    using LhsTraits = internal::blas_traits<Lhs>;
    using RhsTraits = internal::blas_traits<Rhs>;
    using ActualLhs = typename internal::remove_all<typename LhsTraits::DirectLinearAccessType>::type;
    using ActualRhs = typename internal::remove_all<typename RhsTraits::DirectLinearAccessType>::type;
    using Kernel = internal::general_matrix_matrix_product<
        Index, T, (ActualLhs::Flags & Eigen::RowMajorBit) ? Eigen::RowMajor : Eigen::ColMajor,
        bool(LhsTraits::NeedToConjugate), T,
        (ActualRhs::Flags & Eigen::RowMajorBit) ? Eigen::RowMajor : Eigen::ColMajor,
        bool(RhsTraits::NeedToConjugate), Eigen::ColMajor, Dst::InnerStrideAtCompileTime>;
    using Functor = internal::gemm_functor<T, Index, Kernel, ActualLhs, ActualRhs, Dst, Blocking>;

    if (!blocking_ || rows != rows_ || cols != cols_ || depth != depth_) {
      blocking_ = std::make_unique<Blocking>(rows, cols, depth, 1, true);
      blocking_->allocateAll();
      rows_ = rows;
      cols_ = cols;
      depth_ = depth;
    }
    const auto& lhs = LhsTraits::extract(a_lhs);
    const auto& rhs = RhsTraits::extract(a_rhs);
    const T alpha = internal::blas_traits<Lhs>::extractScalarFactor(a_lhs) *
                    internal::blas_traits<Rhs>::extractScalarFactor(a_rhs);
    if (!accumulate) dst.setZero();  // the kernel accumulates: dst += alpha * lhs * rhs
    Functor(lhs, rhs, dst, alpha, *blocking_)(0, rows, 0, cols);
  }

 private:
  using Blocking = Eigen::internal::gemm_blocking_space<Eigen::ColMajor, T, T, Eigen::Dynamic,
                                                        Eigen::Dynamic, Eigen::Dynamic>;
  std::unique_ptr<Blocking> blocking_;
  Index rows_ = 0, cols_ = 0, depth_ = 0;
};

}  // namespace bnorm::detail
