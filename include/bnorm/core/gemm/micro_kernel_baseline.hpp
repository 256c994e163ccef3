// The baseline micro-kernel: any processor, the build's own flags (the baseline row of
// core/isa.hpp). On x86-64 the 16-byte vectors are SSE2 (part of every x86-64), on ARM they
// are NEON; compilers without GCC's vector extensions get the scalar loop. The contract of a
// micro-kernel is in core/gemm/packed_gemm.hpp.
#pragma once

#include "../isa.hpp"
#include "../types.hpp"

#include <cstring>

BNORM_ISA_BEGIN(baseline)
namespace bnorm::detail::variants::baseline {

template <class T>
struct MicroKernel {
  static constexpr Index lanes = 16 / Index(sizeof(T));
  // Two vectors by six columns: 12 accumulators, 2 lhs vectors and a broadcast fit the 16
  // registers of SSE2 (and NEON's 32).
  static constexpr Index tile_rows = 2 * lanes, tile_cols = 6;
  static constexpr Index depth_block = 256, row_block = 32 * lanes, col_block = 3072;

  static void multiply(Index depth, const T* lhs, const T* rhs, T* dst, Index dst_stride,
                       bool add_to_dst) {
#if defined(__GNUC__)
    typedef T Vec __attribute__((vector_size(16)));
    Vec acc[tile_cols][2] = {};
    for (Index p = 0; p < depth; ++p, lhs += tile_rows, rhs += tile_cols) {
      Vec a0, a1;
      std::memcpy(&a0, lhs, sizeof(Vec));
      std::memcpy(&a1, lhs + lanes, sizeof(Vec));
#pragma GCC unroll 6
      for (Index j = 0; j < tile_cols; ++j) {
        acc[j][0] += a0 * rhs[j];
        acc[j][1] += a1 * rhs[j];
      }
    }
#pragma GCC unroll 6
    for (Index j = 0; j < tile_cols; ++j) {
      T* column = dst + j * dst_stride;
      for (Index half = 0; half < 2; ++half) {
        Vec value = acc[j][half];
        if (add_to_dst) {
          Vec old;
          std::memcpy(&old, column + half * lanes, sizeof(Vec));
          value += old;
        }
        std::memcpy(column + half * lanes, &value, sizeof(Vec));
      }
    }
#else
    T acc[tile_cols][tile_rows] = {};
    for (Index p = 0; p < depth; ++p, lhs += tile_rows, rhs += tile_cols)
      for (Index j = 0; j < tile_cols; ++j)
        for (Index i = 0; i < tile_rows; ++i) acc[j][i] += lhs[i] * rhs[j];
    for (Index j = 0; j < tile_cols; ++j)
      for (Index i = 0; i < tile_rows; ++i)
        dst[j * dst_stride + i] = (add_to_dst ? dst[j * dst_stride + i] : T(0)) + acc[j][i];
#endif
  }
};

// This row's micro-kernel for T (packed_gemm.hpp's dispatch finds it by the Variant).
template <class T>
MicroKernel<T> micro_kernel_for(Variant, const T*);

}  // namespace bnorm::detail::variants::baseline
BNORM_ISA_END(baseline)
