// A per-row vector added to every column of a matrix, and the columns of a matrix summed into
// one. Written once, compiled once per variant (core/kernels/variant.hpp); no include guard
// on purpose.

#ifndef BNORM_KERNEL_VARIANT
#error "included once per variant by core/kernels/variant.hpp only"
#endif

namespace bnorm::detail::variants::BNORM_KERNEL_VARIANT {

// y[:, j] += bias.
template <class T>
void add_to_columns(Variant, T* y, Index stride, Index rows, Index cols, const T* bias) {
  for (Index j = 0; j < cols; ++j) {
    T* column = y + j * stride;
    for_rows(
        column, rows, [&](Index i) { column[i] += bias[i]; },
        [&](Index i) { store(column + i, load(column + i) + load(bias + i)); });
  }
}

// sums[i] = (accumulate ? sums[i] : 0) + x[i, 0] + x[i, 1] + ...
template <class T>
void row_sums(Variant, const T* x, Index stride, Index rows, Index cols, T* sums, bool accumulate) {
  if (!accumulate)
    for (Index i = 0; i < rows; ++i) sums[i] = T(0);
  for (Index j = 0; j < cols; ++j) {
    const T* column = x + j * stride;
    for_rows(
        column, rows, [&](Index i) { sums[i] += column[i]; },
        [&](Index i) { store(sums + i, load(sums + i) + load(column + i)); });
  }
}

}  // namespace bnorm::detail::variants::BNORM_KERNEL_VARIANT
