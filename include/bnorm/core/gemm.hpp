// Matrix products that allocate nothing once sized, on the best instruction set of the
// running processor.
//
// Eigen's `dst.noalias() = a * b` is compiled for the build's flags: SSE2 only in a default
// build (no -march), which made the MLP 3.5x slower than under -march=native (issue 10). It
// also allocates its packing workspace on every product above 128 KiB. Gemm instead runs
// bnorm's packed GEMM (core/gemm/packed_gemm.hpp), whose micro-kernels exist for baseline
// x86-64, AVX2+FMA and AVX-512F side by side; the variant is chosen once at run time, and
// BNORM_ISA or force_gemm_isa() force one (core/gemm/isa.hpp). The packing buffers are kept
// between calls: after the first product at a shape, no allocation.
//
// Results agree with Eigen's product to rounding, not bit for bit: the order of the sums
// and the use of FMA differ between variants.
//
// Eigen's own path stays for the products where packing does not pay: tiny ones, products
// with a vector (GEMV), and, with Eigen's OpenMP threads on (Eigen::nbThreads() > 1), those
// of at least 2^24 multiply-adds, which Eigen splits among threads. So do operands without
// direct memory access (a scaled or computed expression), which Eigen evaluates and which may
// allocate.
#pragma once

#include "gemm/packed_gemm.hpp"
#include "types.hpp"

#include <Eigen/Core>
#include <type_traits>

namespace bnorm::detail {

template <class T>
class Gemm {
 public:
  Gemm() = default;
  // A copy starts with empty buffers (they are a cache, not state).
  Gemm(const Gemm&) {}
  Gemm& operator=(const Gemm&) { return *this; }
  Gemm(Gemm&&) noexcept = default;
  Gemm& operator=(Gemm&&) noexcept = default;

  // dst = lhs * rhs, or dst += lhs * rhs when accumulate; dst must already have the
  // product's shape and alias neither operand. lhs and rhs: matrices, their .transpose(), or
  // Eigen::Ref blocks of them.
  template <class Dst, class Lhs, class Rhs>
  void assign(Dst& dst, const Lhs& lhs, const Rhs& rhs, bool accumulate = false) {
    const Index rows = dst.rows(), cols = dst.cols(), depth = lhs.cols();
    // Below min_parallel_work multiply-adds, waking the other threads cost more than they
    // saved (bench/RESULTS.md: the batch-64 MLP step ran 0.8x as fast on two threads).
    constexpr double min_parallel_work = double(1 << 24);
    const bool parallel =
        Eigen::nbThreads() > 1 && double(rows) * double(cols) * double(depth) >= min_parallel_work;
    const bool small = rows + cols + depth < EIGEN_GEMM_TO_COEFFBASED_THRESHOLD || rows == 1 ||
                       cols == 1 || depth == 0;
    if constexpr (packable<Lhs>() && packable<Rhs>() && packable<Dst>() &&
                  !(Dst::Flags & Eigen::RowMajorBit) && Dst::InnerStrideAtCompileTime == 1) {
      if (!small && !parallel) {
        gemm::packed_product(active_gemm_isa(), strided(lhs), strided(rhs), dst.data(),
                             dst.outerStride(), rows, cols, depth, accumulate, buffers_);
        return;
      }
    }
    if (accumulate)
      dst.noalias() += lhs * rhs;
    else
      dst.noalias() = lhs * rhs;
  }

 private:
  template <class Operand>
  static constexpr bool packable() {
    return (Operand::Flags & Eigen::DirectAccessBit) &&
           std::is_same_v<typename Operand::Scalar, T>;
  }
  template <class Operand>
  static gemm::StridedMatrix<T> strided(const Operand& operand) {
    if constexpr (bool(Operand::Flags & Eigen::RowMajorBit))
      return {operand.data(), operand.outerStride(), operand.innerStride()};
    else
      return {operand.data(), operand.innerStride(), operand.outerStride()};
  }

  gemm::PackingBuffers<T> buffers_;
};

}  // namespace bnorm::detail
