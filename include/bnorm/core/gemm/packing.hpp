// Packing for the blocked GEMM (core/gemm/packed_gemm.hpp): a block of an operand copied
// into the order the micro-kernel reads it, so that the kernel streams through contiguous
// memory whatever the operand's layout (column-major, a transpose, a block with a stride).
//
// Left operand (rows x depth block): panels of `panel` rows; inside a panel, for each depth
// index p, the panel's `panel` values of column p, consecutive. Right operand (depth x cols
// block): panels of `panel` columns; inside a panel, for each p, the panel's values of row p.
// The last panel is padded with zeros, so the kernel always computes whole tiles.
#pragma once

#include "../types.hpp"

#include <type_traits>
#if defined(__SSE2__)
#include <emmintrin.h>
#include <xmmintrin.h>
#endif

namespace bnorm::detail::gemm {

// A read-only matrix as a pointer and two strides: element (i, j) is data[i*row_stride +
// j*col_stride]. Column-major has row_stride 1, its transpose has col_stride 1.
template <class T>
struct StridedMatrix {
  const T* data;
  Index row_stride;
  Index col_stride;
  // The same matrix without its first `rows` rows and `cols` columns.
  StridedMatrix offset(Index rows, Index cols) const {
    return {data + rows * row_stride + cols * col_stride, row_stride, col_stride};
  }
};

// One whole panel from Panel lines that are contiguous along the depth (line i starts at
// source + i*line_stride): a transposition. Element by element it would cost a load and a
// store per value, as much as the arithmetic that uses the value when the other dimension is
// a batch of 64; on x86-64, SSE2 (part of the baseline) transposes 4 x 4 floats or 2 x 2
// doubles in registers, writing whole vectors. Only float and double come here (Gemm<T>).
template <Index Panel, class T>
void pack_transposing(const T* source, Index line_stride, Index depth, T* packed) {
  Index p = 0;
#if defined(__SSE2__)
  constexpr Index lanes = 16 / Index(sizeof(T));
  constexpr Index whole = Panel / lanes * lanes;  // lines transposed in registers
  for (; p + lanes <= depth; p += lanes) {
    for (Index i = 0; i < whole; i += lanes) {
      const T* line = source + i * line_stride + p;
      if constexpr (std::is_same_v<T, float>) {
        __m128 row0 = _mm_loadu_ps(line), row1 = _mm_loadu_ps(line + line_stride);
        __m128 row2 = _mm_loadu_ps(line + 2 * line_stride);
        __m128 row3 = _mm_loadu_ps(line + 3 * line_stride);
        _MM_TRANSPOSE4_PS(row0, row1, row2, row3);
        _mm_storeu_ps(packed + p * Panel + i, row0);
        _mm_storeu_ps(packed + (p + 1) * Panel + i, row1);
        _mm_storeu_ps(packed + (p + 2) * Panel + i, row2);
        _mm_storeu_ps(packed + (p + 3) * Panel + i, row3);
      } else {
        const __m128d row0 = _mm_loadu_pd(line), row1 = _mm_loadu_pd(line + line_stride);
        _mm_storeu_pd(packed + p * Panel + i, _mm_unpacklo_pd(row0, row1));
        _mm_storeu_pd(packed + (p + 1) * Panel + i, _mm_unpackhi_pd(row0, row1));
      }
    }
    for (Index q = p; q < p + lanes; ++q)
      for (Index i = whole; i < Panel; ++i) packed[q * Panel + i] = source[i * line_stride + q];
  }
#endif
  for (; p < depth; ++p)
    for (Index i = 0; i < Panel; ++i) packed[p * Panel + i] = source[i * line_stride + p];
}

// Packs `count` x `depth` values into panels of Panel: value (i, p), i along the panels
// (rows of lhs, columns of rhs) and p along the product's depth, is
// source[i*along_panel_stride + p*along_depth_stride]. The strides pick the loop order that
// reads memory in sequence.
template <Index Panel, class T>
void pack_panels(const T* source, Index along_panel_stride, Index along_depth_stride, Index count,
                 Index depth, T* packed) {
  for (Index start = 0; start < count; start += Panel, packed += Panel * depth) {
    const Index width = count - start < Panel ? count - start : Panel;
    const T* block = source + start * along_panel_stride;
    if (along_panel_stride == 1 || width < Panel) {
      for (Index p = 0; p < depth; ++p) {
        const T* column = block + p * along_depth_stride;
        T* out = packed + p * Panel;
        for (Index i = 0; i < width; ++i) out[i] = column[i * along_panel_stride];
        for (Index i = width; i < Panel; ++i) out[i] = T(0);
      }
    } else if (along_depth_stride == 1) {
      pack_transposing<Panel>(block, along_panel_stride, depth, packed);
    } else {
      for (Index i = 0; i < Panel; ++i) {
        const T* line = block + i * along_panel_stride;
        for (Index p = 0; p < depth; ++p) packed[p * Panel + i] = line[p * along_depth_stride];
      }
    }
  }
}

// Rows [0, rows) x depth [0, depth) of lhs, in panels of Panel rows.
template <Index Panel, class T>
void pack_lhs(StridedMatrix<T> lhs, Index rows, Index depth, T* packed) {
  pack_panels<Panel>(lhs.data, lhs.row_stride, lhs.col_stride, rows, depth, packed);
}

// Depth [0, depth) x columns [0, cols) of rhs, in panels of Panel columns.
template <Index Panel, class T>
void pack_rhs(StridedMatrix<T> rhs, Index depth, Index cols, T* packed) {
  pack_panels<Panel>(rhs.data, rhs.col_stride, rhs.row_stride, cols, depth, packed);
}

}  // namespace bnorm::detail::gemm
