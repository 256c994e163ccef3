// The AVX2+FMA micro-kernels, compiled under target("avx2,fma") whatever the build's flags,
// and called only when the processor has both (core/isa.hpp). The contract of a
// micro-kernel is in core/gemm/packed_gemm.hpp.
#pragma once

#include "../isa.hpp"

#if defined(BNORM_HAS_AVX2)
#include <immintrin.h>

#define BNORM_TARGET_AVX2 __attribute__((target("avx2,fma")))

namespace bnorm::detail::gemm {

template <class T>
struct Avx2Kernel;

// Two 8-float vectors by six columns: 12 accumulators, 2 lhs vectors and a broadcast of the
// 16 ymm registers; enough independent FMAs (12) to cover their latency on two ports.
template <>
struct Avx2Kernel<float> {
  static constexpr Index tile_rows = 16, tile_cols = 6;
  static constexpr Index depth_block = 256, row_block = 144, col_block = 3072;

  BNORM_TARGET_AVX2 static void multiply(Index depth, const float* lhs, const float* rhs,
                                         float* dst, Index dst_stride, bool add_to_dst) {
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
struct Avx2Kernel<double> {
  static constexpr Index tile_rows = 8, tile_cols = 6;
  static constexpr Index depth_block = 256, row_block = 72, col_block = 3072;

  BNORM_TARGET_AVX2 static void multiply(Index depth, const double* lhs, const double* rhs,
                                         double* dst, Index dst_stride, bool add_to_dst) {
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

}  // namespace bnorm::detail::gemm

#undef BNORM_TARGET_AVX2
#endif  // BNORM_HAS_AVX2
