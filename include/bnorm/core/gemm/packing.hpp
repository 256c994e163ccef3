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

namespace bnorm::detail::gemm {

// A read-only matrix as a pointer and two strides: element (i, j) is data[i*row_stride +
// j*col_stride]. Column-major has row_stride 1, its transpose has col_stride 1.
template <class T>
struct StridedMatrix {
  const T* data;
  Index row_stride;
  Index col_stride;
  const T& operator()(Index row, Index col) const { return data[row * row_stride + col * col_stride]; }
  // The same matrix without its first `rows` rows and `cols` columns.
  StridedMatrix offset(Index rows, Index cols) const {
    return {data + rows * row_stride + cols * col_stride, row_stride, col_stride};
  }
};

// Packs `count` x `depth` of `source` (count along the panel's direction, depth along the
// product's inner dimension) into panels of Panel. `source(i, p)` takes the panel index i and
// the depth index p; `along_panel_stride` and `along_depth_stride` are its strides, used to
// pick the loop order that reads memory in sequence.
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
    } else {  // contiguous along the depth: read each line in sequence, write with a stride
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
