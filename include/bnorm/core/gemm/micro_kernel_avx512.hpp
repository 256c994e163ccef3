// The AVX-512F micro-kernels, compiled for the avx512 row of core/isa.hpp whatever the build's
// flags, and called only when the processor has it. The contract of a micro-kernel is in
// core/gemm/packed_gemm.hpp.
#pragma once

#include "../isa.hpp"
#include "../types.hpp"

#if BNORM_ISA_COMPILED(avx512)
#include <immintrin.h>

BNORM_ISA_BEGIN(avx512)
namespace bnorm::detail::variants::avx512 {

template <class T>
struct MicroKernel;

// Two 16-float vectors by eight columns: 16 accumulators of the 32 zmm registers. Eight
// columns divide the layers' batch sizes (64, 256) and widths, so few tiles are partial.
template <>
struct MicroKernel<float> {
  static constexpr Index tile_rows = 32, tile_cols = 8;
  static constexpr Index depth_block = 256, row_block = 192, col_block = 3072;

  static void multiply(Index depth, const float* lhs, const float* rhs, float* dst,
                       Index dst_stride, bool add_to_dst) {
    __m512 acc[tile_cols][2];
#pragma GCC unroll 8
    for (Index j = 0; j < tile_cols; ++j) acc[j][0] = acc[j][1] = _mm512_setzero_ps();
    for (Index p = 0; p < depth; ++p, lhs += tile_rows, rhs += tile_cols) {
      const __m512 a0 = _mm512_loadu_ps(lhs), a1 = _mm512_loadu_ps(lhs + 16);
#pragma GCC unroll 8
      for (Index j = 0; j < tile_cols; ++j) {
        const __m512 b = _mm512_set1_ps(rhs[j]);
        acc[j][0] = _mm512_fmadd_ps(a0, b, acc[j][0]);
        acc[j][1] = _mm512_fmadd_ps(a1, b, acc[j][1]);
      }
    }
#pragma GCC unroll 8
    for (Index j = 0; j < tile_cols; ++j) {
      float* column = dst + j * dst_stride;
      if (add_to_dst) {
        acc[j][0] = _mm512_add_ps(acc[j][0], _mm512_loadu_ps(column));
        acc[j][1] = _mm512_add_ps(acc[j][1], _mm512_loadu_ps(column + 16));
      }
      _mm512_storeu_ps(column, acc[j][0]);
      _mm512_storeu_ps(column + 16, acc[j][1]);
    }
  }
};

// The same tile in doubles: two 8-double vectors by eight columns.
template <>
struct MicroKernel<double> {
  static constexpr Index tile_rows = 16, tile_cols = 8;
  static constexpr Index depth_block = 256, row_block = 96, col_block = 3072;

  static void multiply(Index depth, const double* lhs, const double* rhs, double* dst,
                       Index dst_stride, bool add_to_dst) {
    __m512d acc[tile_cols][2];
#pragma GCC unroll 8
    for (Index j = 0; j < tile_cols; ++j) acc[j][0] = acc[j][1] = _mm512_setzero_pd();
    for (Index p = 0; p < depth; ++p, lhs += tile_rows, rhs += tile_cols) {
      const __m512d a0 = _mm512_loadu_pd(lhs), a1 = _mm512_loadu_pd(lhs + 8);
#pragma GCC unroll 8
      for (Index j = 0; j < tile_cols; ++j) {
        const __m512d b = _mm512_set1_pd(rhs[j]);
        acc[j][0] = _mm512_fmadd_pd(a0, b, acc[j][0]);
        acc[j][1] = _mm512_fmadd_pd(a1, b, acc[j][1]);
      }
    }
#pragma GCC unroll 8
    for (Index j = 0; j < tile_cols; ++j) {
      double* column = dst + j * dst_stride;
      if (add_to_dst) {
        acc[j][0] = _mm512_add_pd(acc[j][0], _mm512_loadu_pd(column));
        acc[j][1] = _mm512_add_pd(acc[j][1], _mm512_loadu_pd(column + 8));
      }
      _mm512_storeu_pd(column, acc[j][0]);
      _mm512_storeu_pd(column + 8, acc[j][1]);
    }
  }
};

// This row's micro-kernel for T (packed_gemm.hpp's dispatch finds it by the Variant).
template <class T>
MicroKernel<T> micro_kernel_for(Variant, const T*);

}  // namespace bnorm::detail::variants::avx512
BNORM_ISA_END(avx512)
#endif
