// Batch normalization's passes over a features x batch matrix, one row per feature: the
// moments, the normalization and its eval-mode affine map, and the backward sums and input
// gradient. Written once, compiled once per variant (core/kernels/variant.hpp); no include
// guard on purpose.

#ifndef BNORM_KERNEL_VARIANT
#error "included once per variant by core/kernels/variant.hpp only"
#endif

namespace bnorm::detail::variants::BNORM_KERNEL_VARIANT {

// The moments about the first column: for i < rows,
//   sum_d[i] = sum_{j=1}^{cols-1} d,  sum_d2[i] = sum d^2,  d = x[i, j] - x[i, 0].
template <class T>
void shifted_sums(Variant, const T* x, Index stride, Index rows, Index cols, T* sum_d,
                  T* sum_d2) {
  using V = typename Lanes<T>::Vector;
  for (Index i = 0; i < rows; ++i) sum_d[i] = sum_d2[i] = T(0);
  for (Index j = 1; j < cols; ++j) {
    const T* column = x + j * stride;
    for_rows(
        column, rows,
        [&](Index i) {
          const T d = column[i] - x[i];
          sum_d[i] += d;
          sum_d2[i] += d * d;
        },
        [&](Index i) {
          const V d = load(column + i) - load(x + i);
          store(sum_d + i, load(sum_d + i) + d);
          store(sum_d2 + i, load(sum_d2 + i) + d * d);
        });
  }
}

// The normalization of a training forward: xhat = (x - mean) * inv_std, saved when xhat is
// not null, and y = xhat * scale + shift. The same arithmetic with or without saving, so
// both give the same y bit for bit. With Stream, y and xhat bypass the caches
// (store_streaming; xhat only where aligned as y); the values are the same either way.
template <bool Stream, class T>
void normalize_columns(const T* x, Index x_stride, Index rows, Index cols, const T* mean,
                       const T* inv_std, const T* scale, const T* shift, T* xhat,
                       Index xhat_stride, T* y, Index y_stride) {
  using V = typename Lanes<T>::Vector;
  for (Index j = 0; j < cols; ++j) {
    const T* in = x + j * x_stride;
    T* out = y + j * y_stride;
    T* saved = xhat ? xhat + j * xhat_stride : nullptr;
    const bool stream_saved = Stream && saved && same_alignment(saved, out);
    for_rows(
        out, rows,
        [&](Index i) {
          const T normalized = (in[i] - mean[i]) * inv_std[i];
          if (saved) saved[i] = normalized;
          out[i] = normalized * scale[i] + shift[i];
        },
        [&](Index i) {
          const V normalized = (load(in + i) - load(mean + i)) * load(inv_std + i);
          if (stream_saved) store_streaming(saved + i, normalized);
          else if (saved) store(saved + i, normalized);
          store_as<Stream>(out + i, normalized * load(scale + i) + load(shift + i));
        });
  }
  if constexpr (Stream) end_streaming();
}
template <class T>
void normalize(Variant, const T* x, Index x_stride, Index rows, Index cols, const T* mean,
               const T* inv_std, const T* scale, const T* shift, T* xhat, Index xhat_stride,
               T* y, Index y_stride, bool stream) {
  (stream ? normalize_columns<true, T> : normalize_columns<false, T>)(
      x, x_stride, rows, cols, mean, inv_std, scale, shift, xhat, xhat_stride, y, y_stride);
}

// y = x * scale + shift per row (the eval-mode map); y bypasses the caches with stream.
template <bool Stream, class T>
void affine_columns(const T* x, Index x_stride, Index rows, Index cols, const T* scale,
                    const T* shift, T* y, Index y_stride) {
  for (Index j = 0; j < cols; ++j) {
    const T* in = x + j * x_stride;
    T* out = y + j * y_stride;
    for_rows(
        out, rows, [&](Index i) { out[i] = in[i] * scale[i] + shift[i]; },
        [&](Index i) {
          store_as<Stream>(out + i, load(in + i) * load(scale + i) + load(shift + i));
        });
  }
  if constexpr (Stream) end_streaming();
}
template <class T>
void affine(Variant, const T* x, Index x_stride, Index rows, Index cols, const T* scale,
            const T* shift, T* y, Index y_stride, bool stream) {
  (stream ? affine_columns<true, T> : affine_columns<false, T>)(x, x_stride, rows, cols, scale,
                                                                 shift, y, y_stride);
}

// The backward sums: sum_dy[i] = sum_j dy[i, j], sum_dy_xhat[i] = sum_j dy * xhat.
// With dx not null, also dx = scale * dy in the same pass (frozen statistics).
template <class T>
void gradient_sums(Variant, const T* dy, Index dy_stride, const T* xhat, Index xhat_stride,
                   Index rows, Index cols, T* sum_dy, T* sum_dy_xhat, const T* scale, T* dx,
                   Index dx_stride) {
  using V = typename Lanes<T>::Vector;
  for (Index i = 0; i < rows; ++i) sum_dy[i] = sum_dy_xhat[i] = T(0);
  for (Index j = 0; j < cols; ++j) {
    const T* g = dy + j * dy_stride;
    const T* h = xhat + j * xhat_stride;
    T* out = dx ? dx + j * dx_stride : nullptr;
    for_rows(
        g, rows,
        [&](Index i) {
          sum_dy[i] += g[i];
          sum_dy_xhat[i] += g[i] * h[i];
          if (out) out[i] = scale[i] * g[i];
        },
        [&](Index i) {
          const V gradient = load(g + i);
          store(sum_dy + i, load(sum_dy + i) + gradient);
          store(sum_dy_xhat + i, load(sum_dy_xhat + i) + gradient * load(h + i));
          if (out) store(out + i, load(scale + i) * gradient);
        });
  }
}

// The input gradient: dx = scale * (dy - mean_dy - xhat * mean_dy_xhat); dx bypasses
// the caches with stream.
template <bool Stream, class T>
void input_gradient_columns(const T* dy, Index dy_stride, const T* xhat, Index xhat_stride,
                            Index rows, Index cols, const T* scale, const T* mean_dy,
                            const T* mean_dy_xhat, T* dx, Index dx_stride) {
  for (Index j = 0; j < cols; ++j) {
    const T* g = dy + j * dy_stride;
    const T* h = xhat + j * xhat_stride;
    T* out = dx + j * dx_stride;
    for_rows(
        out, rows,
        [&](Index i) { out[i] = scale[i] * (g[i] - mean_dy[i] - h[i] * mean_dy_xhat[i]); },
        [&](Index i) {
          store_as<Stream>(out + i, load(scale + i) * (load(g + i) - load(mean_dy + i) -
                                                       load(h + i) * load(mean_dy_xhat + i)));
        });
  }
  if constexpr (Stream) end_streaming();
}
template <class T>
void normalized_input_gradient(Variant, const T* dy, Index dy_stride, const T* xhat,
                               Index xhat_stride, Index rows, Index cols, const T* scale,
                               const T* mean_dy, const T* mean_dy_xhat, T* dx, Index dx_stride,
                               bool stream) {
  (stream ? input_gradient_columns<true, T> : input_gradient_columns<false, T>)(
      dy, dy_stride, xhat, xhat_stride, rows, cols, scale, mean_dy, mean_dy_xhat, dx,
      dx_stride);
}

}  // namespace bnorm::detail::variants::BNORM_KERNEL_VARIANT
