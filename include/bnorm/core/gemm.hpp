// Matrix products that allocate nothing once sized, on the best instruction set of the
// running processor.
//
// Eigen's `dst.noalias() = a * b` is compiled for the build's flags: SSE2 only in a default
// build (no -march), which made the MLP 3.5x slower than under -march=native (issue 10). It
// also allocates its packing workspace on every product above 128 KiB. Gemm instead runs
// bnorm's packed GEMM (core/gemm/packed_gemm.hpp), whose micro-kernels exist for baseline
// x86-64, AVX2+FMA and AVX-512F side by side; the variant is chosen once at run time, and
// BNORM_ISA or force_isa() force one (core/isa.hpp). The packing buffers are kept
// between calls: after the first product at a shape, no allocation.
//
// Results agree with Eigen's product to rounding, not bit for bit: the order of the sums
// and the use of FMA differ between variants.
//
// With several threads (core/threads.hpp) and at least 2^24 multiply-adds, the columns of
// the result are split among the threads, each packing into its own buffers. Every element
// is summed in the same order whatever its thread, so results do not depend on the thread
// count, bit for bit.
//
// Eigen's own path stays for the products where packing does not pay: tiny ones and products
// with a vector (GEMV). So do operands without direct memory access (a scaled or computed
// expression), which Eigen evaluates and which may allocate.
#pragma once

#include "gemm/packed_gemm.hpp"
#include "threads.hpp"
#include "types.hpp"

#include <Eigen/Core>
#include <algorithm>
#include <type_traits>
#include <vector>

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
    const bool small = rows + cols + depth < EIGEN_GEMM_TO_COEFFBASED_THRESHOLD || rows == 1 ||
                       cols == 1 || depth == 0;
    if constexpr (packable<Lhs>() && packable<Rhs>() && packable<Dst>() &&
                  !(Dst::Flags & Eigen::RowMajorBit) && Dst::InnerStrideAtCompileTime == 1) {
      if (!small) {
        packed_assign(dst.data(), dst.outerStride(), strided(lhs), strided(rhs), rows, cols,
                      depth, accumulate);
        return;
      }
    }
    if (accumulate)
      dst.noalias() += lhs * rhs;
    else
      dst.noalias() = lhs * rhs;
  }

 private:
  void packed_assign(T* dst, Index dst_stride, gemm::StridedMatrix<T> lhs,
                     gemm::StridedMatrix<T> rhs, Index rows, Index cols, Index depth,
                     bool accumulate) {
    const Isa isa = active_isa();
    // Below min_parallel_work multiply-adds, waking the other threads cost more than they
    // saved (bench/RESULTS.md: the batch-64 MLP step ran 0.8x as fast on two threads).
    constexpr double min_parallel_work = double(1 << 24);
    const int thread_count =
        double(rows) * double(cols) * double(depth) >= min_parallel_work ? threads() : 1;
    if (buffers_.size() < std::size_t(thread_count)) buffers_.resize(std::size_t(thread_count));
    split_among_threads(cols, thread_count, [&](Index first, Index count, int part) {
      gemm::packed_product(isa, lhs, rhs.offset(0, first), dst + first * dst_stride, dst_stride,
                           rows, count, depth, accumulate, buffers_[std::size_t(part)]);
    });
  }

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

  std::vector<gemm::PackingBuffers<T>> buffers_;  // one per thread
};

}  // namespace bnorm::detail
