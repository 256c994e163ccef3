// The losses with their gradients: softmax cross-entropy and the squared error. Written once,
// compiled once per variant (core/kernels/variant.hpp); no include guard on purpose.

#ifndef BNORM_KERNEL_VARIANT
#error "included once per variant by core/kernels/variant.hpp only"
#endif

namespace bnorm::detail::variants::BNORM_KERNEL_VARIANT {

// Softmax cross-entropy of a classes x batch matrix of logits (column stride `stride`) and
// one label per column: returns sum_j (log sum_i exp(z_ij - m_j) + m_j - z_label,j), m_j the
// column's largest logit (so nothing overflows), and writes the gradient of the mean,
// (softmax - onehot) / batch, to `gradient` (classes x batch, contiguous). The labels are in
// range (the caller checks). Each column is read from row 0 a register at a time, the last
// partial register padded with -inf (exp gives 0), so the sums do not depend on alignment.
template <class T>
T softmax_cross_entropy(Variant, const T* logits, Index stride, Index classes, Index batch,
                        const int* labels, T* gradient) {
  using V = typename Lanes<T>::Vector;
  constexpr Index lanes = Lanes<T>::count;
  const Index whole = classes / lanes * lanes, left = classes - whole;
  const T inv_batch = T(1) / static_cast<T>(batch);
  T total = T(0);
  for (Index j = 0; j < batch; ++j) {
    const T* z = logits + j * stride;
    T* g = gradient + j * classes;
    T max_logit = z[0];
    if (whole > 0) {
      V largest = load(z);
      for (Index i = lanes; i < whole; i += lanes) {
        const V value = load(z + i);
        largest = value > largest ? value : largest;
      }
      for (Index k = 0; k < lanes; ++k)
        max_logit = largest[k] > max_logit ? largest[k] : max_logit;
    }
    for (Index i = whole; i < classes; ++i) max_logit = z[i] > max_logit ? z[i] : max_logit;
    V sums = V{} * T(0);
    for (Index i = 0; i < whole; i += lanes) {
      const V e = exp_nonpositive<T>(load(z + i) - max_logit);
      store(g + i, e);
      sums = sums + e;
    }
    if (left > 0) {
      const V e = exp_nonpositive<T>(
          load_part(z + whole, left, -std::numeric_limits<T>::infinity()) - max_logit);
      store_part(g + whole, e, left);
      sums = sums + e;
    }
    const T sum = sum_lanes<T>(sums);
    total += std::log(sum) + max_logit - z[labels[j]];
    const T factor = inv_batch / sum;
    for (Index i = 0; i < whole; i += lanes) store(g + i, load(g + i) * factor);
    for (Index i = whole; i < classes; ++i) g[i] *= factor;
    g[labels[j]] -= inv_batch;
  }
  return total;
}

// Squared error of a rows x cols prediction p against a target t (column strides
// p_stride, t_stride): returns sum (p - t)^2 and writes gradient = scale * (p - t)
// (rows x cols, contiguous). Read a register at a time from each column's row 0 (from
// element 0 when both are contiguous), the last partial register padded with zeros.
template <class T>
T squared_error(Variant, const T* p, Index p_stride, const T* t, Index t_stride, Index rows,
                Index cols, T scale, T* gradient) {
  using V = typename Lanes<T>::Vector;
  constexpr Index lanes = Lanes<T>::count;
  if (p_stride == rows && t_stride == rows) {
    rows *= cols;
    cols = 1;
  }
  const Index whole = rows / lanes * lanes, left = rows - whole;
  V sums = V{} * T(0);
  for (Index j = 0; j < cols; ++j) {
    const T* prediction = p + j * p_stride;
    const T* target = t + j * t_stride;
    T* g = gradient + j * rows;
    for (Index i = 0; i < whole; i += lanes) {
      const V d = load(prediction + i) - load(target + i);
      sums = sums + d * d;
      store(g + i, d * scale);
    }
    if (left > 0) {
      const V d = load_part(prediction + whole, left, T(0)) - load_part(target + whole, left, T(0));
      sums = sums + d * d;
      store_part(g + whole, d * scale, left);
    }
  }
  return sum_lanes<T>(sums);
}

}  // namespace bnorm::detail::variants::BNORM_KERNEL_VARIANT
