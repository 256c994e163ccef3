// A packed, register-blocked GEMM in the style of BLIS: dst (+)= lhs * rhs, with the
// blocking and packing written once (here and in packing.hpp) and one small micro-kernel per
// instruction set (micro_kernel_*.hpp, each in its row's namespace of core/isa.hpp), picked
// at run time.
//
// The micro-kernel contract. A row's kernel type K (variants::<row>::MicroKernel<T>, named to
// the dispatch by a declaration `K micro_kernel_for(Variant, const T*)`) has
//   K::tile_rows, K::tile_cols      the register tile (MR x NR);
//   K::depth_block, row_block, col_block  the cache blocks (KC, MC, NC; MC a multiple of MR,
//                                   NC of NR), sized so a packed lhs block stays in L2 and a
//                                   packed rhs panel in L1;
//   K::multiply(depth, lhs, rhs, dst, dst_stride, add_to_dst)
//     dst[i + j*dst_stride] = (add_to_dst ? dst[i + j*dst_stride] : 0)
//                             + sum over p < depth of lhs[p*MR + i] * rhs[p*NR + j]
//     for every i < MR, j < NR: a packed lhs panel times a packed rhs panel (packing.hpp),
//     into a whole column-major tile.
//
// The loops around the kernel, from the outside: columns of dst by NC (a packed rhs block),
// depth by KC, rows by MC (a packed lhs block), then tiles. Each block dimension is split
// into equal parts no larger than its limit, so that a depth of 784 runs as 4 x 196 instead
// of 3 x 256 and a sliver of 16.
#pragma once

#include "../isa.hpp"
#include "micro_kernel_avx2.hpp"
#include "micro_kernel_avx512.hpp"
#include "micro_kernel_baseline.hpp"
#include "packing.hpp"

#include <cstddef>
#include <memory>

namespace bnorm::detail::gemm {

// Grow-only storage aligned to a cache line: after the first product at the largest shape,
// packing allocates nothing. Plain operator new[] (not the aligned overload), so that the
// allocation counters of the tests see it.
template <class T>
class PackingBuffer {
 public:
  T* reserve(Index count) {
    if (count > capacity_) {
      const std::size_t bytes = std::size_t(count) * sizeof(T) + alignment;
      storage_.reset(new unsigned char[bytes]);  // uninitialized: packing writes it all
      void* start = storage_.get();
      std::size_t space = bytes;
      aligned_ = static_cast<T*>(std::align(alignment, std::size_t(count) * sizeof(T), start, space));
      capacity_ = count;
    }
    return aligned_;
  }

 private:
  static constexpr std::size_t alignment = 64;
  std::unique_ptr<unsigned char[]> storage_;
  T* aligned_ = nullptr;
  Index capacity_ = 0;
};

template <class T>
struct PackingBuffers {
  PackingBuffer<T> lhs, rhs;
};

constexpr Index divide_rounding_up(Index numerator, Index denominator) {
  return (numerator + denominator - 1) / denominator;
}

// `extent` split into equal parts of at most `limit`, each rounded up to a multiple of
// `granule`: the block size used for that dimension.
constexpr Index balanced_block(Index extent, Index limit, Index granule) {
  const Index parts = divide_rounding_up(extent, limit);
  return divide_rounding_up(divide_rounding_up(extent, parts), granule) * granule;
}

// dst (rows x cols, column-major, column stride dst_stride) = (accumulate ? dst : 0)
// + lhs (rows x depth) * rhs (depth x cols). depth > 0.
template <class Kernel, class T>
void packed_product(StridedMatrix<T> lhs, StridedMatrix<T> rhs, T* dst, Index dst_stride,
                    Index rows, Index cols, Index depth, bool accumulate,
                    PackingBuffers<T>& buffers) {
  constexpr Index mr = Kernel::tile_rows, nr = Kernel::tile_cols;
  const Index kc = balanced_block(depth, Kernel::depth_block, 1);
  const Index mc = balanced_block(rows, Kernel::row_block, mr);
  const Index nc = balanced_block(cols, Kernel::col_block, nr);
  T* packed_lhs = buffers.lhs.reserve(mc * kc);
  T* packed_rhs = buffers.rhs.reserve(kc * nc);

  for (Index j0 = 0; j0 < cols; j0 += nc) {
    const Index block_cols = cols - j0 < nc ? cols - j0 : nc;
    for (Index p0 = 0; p0 < depth; p0 += kc) {
      const Index block_depth = depth - p0 < kc ? depth - p0 : kc;
      const bool add_to_dst = accumulate || p0 > 0;
      pack_rhs<nr>(rhs.offset(p0, j0), block_depth, block_cols, packed_rhs);
      for (Index i0 = 0; i0 < rows; i0 += mc) {
        const Index block_rows = rows - i0 < mc ? rows - i0 : mc;
        pack_lhs<mr>(lhs.offset(i0, p0), block_rows, block_depth, packed_lhs);
        for (Index j = 0; j < block_cols; j += nr) {
          const T* rhs_panel = packed_rhs + j * block_depth;
          const Index tile_cols = block_cols - j < nr ? block_cols - j : nr;
          for (Index i = 0; i < block_rows; i += mr) {
            const T* lhs_panel = packed_lhs + i * block_depth;
            const Index tile_rows = block_rows - i < mr ? block_rows - i : mr;
            T* tile = dst + (i0 + i) + (j0 + j) * dst_stride;
            if (tile_rows == mr && tile_cols == nr) {
              Kernel::multiply(block_depth, lhs_panel, rhs_panel, tile, dst_stride, add_to_dst);
              continue;
            }
            // A partial tile at the edge: computed whole on the side, its valid part kept.
            alignas(64) T whole[mr * nr];
            Kernel::multiply(block_depth, lhs_panel, rhs_panel, whole, mr, false);
            for (Index c = 0; c < tile_cols; ++c)
              for (Index r = 0; r < tile_rows; ++r)
                tile[r + c * dst_stride] =
                    (add_to_dst ? tile[r + c * dst_stride] : T(0)) + whole[r + c * mr];
          }
        }
      }
    }
  }
}

// The row whose micro-kernel runs when `active` is the active row (core/isa.hpp's
// variant_for): the best one at or below it that has a micro-kernel for T.
template <class T>
constexpr Isa micro_kernel_variant(Isa active) {
  return variant_for(active, BNORM_VERSIONS(micro_kernel_for), static_cast<const T*>(nullptr));
}

// The same product on that micro-kernel; `active` must be supported (isa.hpp).
template <class T>
void packed_product(Isa active, StridedMatrix<T> lhs, StridedMatrix<T> rhs, T* dst,
                    Index dst_stride, Index rows, Index cols, Index depth, bool accumulate,
                    PackingBuffers<T>& buffers) {
  run_variant(
      active,
      [&](auto variant, const T* element) -> decltype(void(micro_kernel_for(variant, element))) {
        packed_product<decltype(micro_kernel_for(variant, element))>(
            lhs, rhs, dst, dst_stride, rows, cols, depth, accumulate, buffers);
      },
      static_cast<const T*>(nullptr));
}

}  // namespace bnorm::detail::gemm
