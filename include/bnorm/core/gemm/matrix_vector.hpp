// The product of a matrix and one vector, beside the GEMM (core/gemm/packed_gemm.hpp), which
// does not pay for a single column. Written once, compiled once per variant with the
// element-wise kernels (core/kernels/variant.hpp); no include guard on purpose.

#ifndef BNORM_KERNEL_VARIANT
#error "included once per variant by core/kernels/variant.hpp only"
#endif

namespace bnorm::detail::variants::BNORM_KERNEL_VARIANT {

// One pass of matrix_vector: `full` registers of rows, register r holding rows first[r] ..
// first[r] + lanes - 1, then `masked` registers (AVX-512 only) holding the lanes of
// masks[r] from row first[full + r] (which may be negative), each kept in a register over
// the whole depth, so that a is read once and each y is summed over k in order, the same
// arithmetic in every lane of every register.
template <int full, int masked, class T>
inline void matrix_vector_pass(const T* a, Index a_stride, Index depth, const T* x,
                               const T* bias, T* y, const Index* first,
                               [[maybe_unused]] const unsigned* masks) {
  using V = typename Lanes<T>::Vector;
  V acc[full + masked];
#pragma GCC unroll 8
  for (int r = 0; r < full; ++r) acc[r] = bias ? load(bias + first[r]) : V{} * T(0);
  if constexpr (masked > 0) {
#pragma GCC unroll 2
    for (int r = 0; r < masked; ++r)
      acc[full + r] = bias ? masked_load(bias, first[full + r], masks[r]) : V{} * T(0);
  }
  for (Index k = 0; k < depth; ++k) {
    const T* column = a + k * a_stride;
    const T xk = x[k];
#pragma GCC unroll 8
    for (int r = 0; r < full; ++r) acc[r] = acc[r] + load(column + first[r]) * xk;
    if constexpr (masked > 0) {
#pragma GCC unroll 2
      for (int r = 0; r < masked; ++r)
        acc[full + r] = acc[full + r] + masked_load(column, first[full + r], masks[r]) * xk;
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < full; ++r) store(y + first[r], acc[r]);
  if constexpr (masked > 0) {
#pragma GCC unroll 2
    for (int r = 0; r < masked; ++r) masked_store(y, first[full + r], masks[r], acc[full + r]);
  }
}

// matrix_vector_pass<full, masked> for a `full` known at run time (at most 7 registers).
template <int masked, int full = 0, class T>
inline void matrix_vector_pass_of(Index count, const T* a, Index a_stride, Index depth,
                                  const T* x, const T* bias, T* y, const Index* first,
                                  const unsigned* masks) {
  if constexpr (full + masked <= 7) {
    if (count != full) {
      matrix_vector_pass_of<masked, full + 1>(count, a, a_stride, depth, x, bias, y, first,
                                              masks);
    } else if constexpr (full + masked > 0) {
      matrix_vector_pass<full, masked>(a, a_stride, depth, x, bias, y, first, masks);
    }
  }
}

// y = a * x (+ bias when not null): a rows x depth matrix (column stride a_stride) times a
// vector.
//
// The rows are covered by whole registers, aligned ones from the first register boundary of
// a's first column, and at each end, where rows are left before the first boundary or after
// the last aligned register: under AVX-512, a masked register on the boundaries (rows before
// row 0 and after the last row masked off); elsewhere an unaligned register at row 0 and one
// ending at the last row. A default build's Eigen aligns the weights to 16 bytes only (glibc
// puts large blocks at 16 mod 64), and a load that straddles two cache lines costs two: under
// AVX-512 a 256-row matrix at 16 mod 64 takes 17 registers, none straddling (16, aligned,
// under -march=native; blocks of four unaligned registers at the ends, the scheme before,
// took 20 with eight straddling: bench/infer1-2026-12-02 measures both). Rows covered twice
// are computed the same way both times (y aliases neither a nor x), and every lane does the
// same arithmetic, so the result does not depend on the alignment. The registers go in
// passes over the depth of 4 to 7 registers: fewer would leave each pass one FMA latency
// chain per register, more would run out of registers on the baseline's 16.
template <class T>
void matrix_vector(Variant, const T* a, Index a_stride, Index rows, Index depth, const T* x,
                   const T* bias, T* y) {
  constexpr Index lanes = Lanes<T>::count, widest_pass = 7;
  if (rows >= lanes) {
    const auto address = reinterpret_cast<unsigned long long>(a);
    const Index head = Index((BNORM_KERNEL_VECTOR_BYTES - address % BNORM_KERNEL_VECTOR_BYTES) %
                             BNORM_KERNEL_VECTOR_BYTES / sizeof(T));
    const Index aligned = (rows - head) / lanes, tail = rows - head - aligned * lanes;
    // The end registers: first rows and lane masks (all lanes without masked loads).
    Index end_first[2];
    unsigned end_mask[2];
    int ends = 0;
    const unsigned all_lanes = (1u << lanes) - 1u;
    if (head > 0) {
      end_first[ends] = has_masked_loads ? head - lanes : 0;
      end_mask[ends++] = all_lanes & ~((1u << (lanes - head)) - 1u);
    }
    if (tail > 0) {
      end_first[ends] = has_masked_loads ? head + aligned * lanes : rows - lanes;
      end_mask[ends++] = (1u << tail) - 1u;
    }
    Index done = 0, first[widest_pass];
    for (; aligned - done + ends > widest_pass; done += 4) {
      for (Index r = 0; r < 4; ++r) first[r] = head + (done + r) * lanes;
      matrix_vector_pass<4, 0>(a, a_stride, depth, x, bias, y, first, end_mask);
    }
    // The last pass: the aligned registers left, then the end registers.
    const Index full = aligned - done;
    for (Index r = 0; r < full; ++r) first[r] = head + (done + r) * lanes;
    for (int r = 0; r < ends; ++r) first[full + r] = end_first[r];
    if constexpr (has_masked_loads) {
      if (ends == 2)
        matrix_vector_pass_of<2>(full, a, a_stride, depth, x, bias, y, first, end_mask);
      else if (ends == 1)
        matrix_vector_pass_of<1>(full, a, a_stride, depth, x, bias, y, first, end_mask);
      else
        matrix_vector_pass_of<0>(full, a, a_stride, depth, x, bias, y, first, end_mask);
    } else {
      matrix_vector_pass_of<0>(full + ends, a, a_stride, depth, x, bias, y, first, end_mask);
    }
    return;
  }
  // Fewer rows than a register: k outside, so a is still read column by column (a row at a
  // time would touch a new cache line per element); the same sums, in order.
  for (Index i = 0; i < rows; ++i) y[i] = bias ? bias[i] : T(0);
  for (Index k = 0; k < depth; ++k)
    for (Index i = 0; i < rows; ++i) y[i] = y[i] + a[k * a_stride + i] * x[k];
}

}  // namespace bnorm::detail::variants::BNORM_KERNEL_VARIANT
