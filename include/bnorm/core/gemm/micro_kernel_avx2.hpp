// The AVX2+FMA micro-kernels, compiled for the avx2 row of core/isa.hpp whatever the build's
// flags, and called only when the processor has both. The contract of a micro-kernel is in
// core/gemm/packed_gemm.hpp.
#pragma once

#include "../isa.hpp"
#include "../types.hpp"

#if BNORM_ISA_COMPILED(avx2)
#include <immintrin.h>

BNORM_ISA_BEGIN(avx2)
namespace bnorm::detail::variants::avx2 {

template <class T>
struct MicroKernel;

// Two 8-float vectors by six columns: 12 accumulators, 2 lhs vectors and a broadcast of the
// 16 ymm registers; enough independent FMAs (12) to cover their latency on two ports.
template <>
struct MicroKernel<float> {
  static constexpr Index tile_rows = 16, tile_cols = 6;
  static constexpr Index depth_block = 256, row_block = 144, col_block = 3072;

  static void multiply(Index depth, const float* lhs, const float* rhs, float* dst,
                       Index dst_stride, bool add_to_dst) {
    __m256 acc[tile_cols][2];
#pragma GCC unroll 6
    for (Index j = 0; j < tile_cols; ++j) acc[j][0] = acc[j][1] = _mm256_setzero_ps();
    for (Index p = 0; p < depth; ++p, lhs += tile_rows, rhs += tile_cols) {
      const __m256 a0 = _mm256_loadu_ps(lhs), a1 = _mm256_loadu_ps(lhs + 8);
#pragma GCC unroll 6
      for (Index j = 0; j < tile_cols; ++j) {
        const __m256 b = _mm256_broadcast_ss(rhs + j);
        acc[j][0] = _mm256_fmadd_ps(a0, b, acc[j][0]);
        acc[j][1] = _mm256_fmadd_ps(a1, b, acc[j][1]);
      }
    }
#pragma GCC unroll 6
    for (Index j = 0; j < tile_cols; ++j) {
      float* column = dst + j * dst_stride;
      if (add_to_dst) {
        acc[j][0] = _mm256_add_ps(acc[j][0], _mm256_loadu_ps(column));
        acc[j][1] = _mm256_add_ps(acc[j][1], _mm256_loadu_ps(column + 8));
      }
      _mm256_storeu_ps(column, acc[j][0]);
      _mm256_storeu_ps(column + 8, acc[j][1]);
    }
  }
};

// The same tile in doubles: two 4-double vectors by six columns.
template <>
struct MicroKernel<double> {
  static constexpr Index tile_rows = 8, tile_cols = 6;
  static constexpr Index depth_block = 256, row_block = 72, col_block = 3072;

  static void multiply(Index depth, const double* lhs, const double* rhs, double* dst,
                       Index dst_stride, bool add_to_dst) {
    __m256d acc[tile_cols][2];
#pragma GCC unroll 6
    for (Index j = 0; j < tile_cols; ++j) acc[j][0] = acc[j][1] = _mm256_setzero_pd();
    for (Index p = 0; p < depth; ++p, lhs += tile_rows, rhs += tile_cols) {
      const __m256d a0 = _mm256_loadu_pd(lhs), a1 = _mm256_loadu_pd(lhs + 4);
#pragma GCC unroll 6
      for (Index j = 0; j < tile_cols; ++j) {
        const __m256d b = _mm256_broadcast_sd(rhs + j);
        acc[j][0] = _mm256_fmadd_pd(a0, b, acc[j][0]);
        acc[j][1] = _mm256_fmadd_pd(a1, b, acc[j][1]);
      }
    }
#pragma GCC unroll 6
    for (Index j = 0; j < tile_cols; ++j) {
      double* column = dst + j * dst_stride;
      if (add_to_dst) {
        acc[j][0] = _mm256_add_pd(acc[j][0], _mm256_loadu_pd(column));
        acc[j][1] = _mm256_add_pd(acc[j][1], _mm256_loadu_pd(column + 4));
      }
      _mm256_storeu_pd(column, acc[j][0]);
      _mm256_storeu_pd(column + 4, acc[j][1]);
    }
  }
};

// This row's micro-kernel for T (packed_gemm.hpp's dispatch finds it by the Variant).
template <class T>
MicroKernel<T> micro_kernel_for(Variant, const T*);

}  // namespace bnorm::detail::variants::avx2
BNORM_ISA_END(avx2)
#endif
