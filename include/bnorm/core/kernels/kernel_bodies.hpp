// The bodies of bnorm's element-wise and reduction kernels, written once and compiled once
// per instruction set: core/kernels.hpp includes this file three times, each time inside
// its own namespace (BNORM_KERNEL_NAMESPACE) and target pragma, with the width of a vector
// register in bytes (BNORM_KERNEL_VECTOR_BYTES: 16, 32, 64). No include guard on purpose.
//
// The loops use GCC's vector extensions (a `Lanes<T>::Vector` is one register of T) rather
// than relying on the auto-vectorizer, so they are vectorized at -O2 (whose very-cheap cost
// model skips loops of unknown trip count) as at -O3, and under every compiler that has the
// extensions (GCC, clang). No Eigen inside: an Eigen template compiled under two sets of
// target flags would break the one-definition rule.
//
// Shapes: a matrix is (data, stride): column j starts at data + j * stride; `rows` rows per
// column. Per-row vectors (mean, scale, ...) have `rows` elements. The reductions sum the
// columns in order (column 0 first), the order of the Eigen loops they replace.
//
// Only core/kernels.hpp includes this file.

#ifndef BNORM_KERNEL_NAMESPACE
#error "core/kernels/kernel_bodies.hpp is included by core/kernels.hpp only"
#endif

namespace bnorm::detail::kernels::BNORM_KERNEL_NAMESPACE {

template <class T>
struct Lanes {
  typedef T Vector __attribute__((vector_size(BNORM_KERNEL_VECTOR_BYTES)));
  // The integers of T's width (comparison masks, exponent bits).
  using Integer = std::conditional_t<sizeof(T) == 4, std::int32_t, std::int64_t>;
  typedef Integer IntegerVector __attribute__((vector_size(BNORM_KERNEL_VECTOR_BYTES)));
  static constexpr Index count = BNORM_KERNEL_VECTOR_BYTES / sizeof(T);
};

// Unaligned loads and stores (memcpy of a register's worth compiles to one instruction).
template <class T>
inline typename Lanes<T>::Vector load(const T* from) {
  typename Lanes<T>::Vector value;
  __builtin_memcpy(&value, from, sizeof(value));
  return value;
}
template <class T>
inline void store(T* to, typename Lanes<T>::Vector value) {
  __builtin_memcpy(to, &value, sizeof(value));
}

// A store of one register to `to`, which must be aligned to the register's width, that
// bypasses the caches (x86's non-temporal store): it saves the read of each line before it
// is written (write-allocate), a third of a copy's traffic, for output too large to be
// still in cache when it is read back. A plain store elsewhere. end_streaming() orders the stores
// before the caller's next ones (another thread may read them after the kernel returns).
template <class T>
inline void store_streaming(T* to, typename Lanes<T>::Vector value) {
#if defined(__x86_64__)
  if constexpr (BNORM_KERNEL_VECTOR_BYTES == 64) {
    if constexpr (sizeof(T) == 4) _mm512_stream_ps(to, (__m512)value);
    else _mm512_stream_pd(to, (__m512d)value);
  } else if constexpr (BNORM_KERNEL_VECTOR_BYTES == 32) {
    if constexpr (sizeof(T) == 4) _mm256_stream_ps(to, (__m256)value);
    else _mm256_stream_pd(to, (__m256d)value);
  } else {
    if constexpr (sizeof(T) == 4) _mm_stream_ps(to, (__m128)value);
    else _mm_stream_pd(to, (__m128d)value);
  }
#else
  store(to, value);
#endif
}
inline void end_streaming() {
#if defined(__x86_64__)
  _mm_sfence();
#endif
}
// store or store_streaming, chosen at compile time (a kernel instantiates its loop once for
// each, so the inner loop carries no branch).
template <bool Stream, class T>
inline void store_as(T* to, typename Lanes<T>::Vector value) {
  if constexpr (Stream) store_streaming(to, value);
  else store(to, value);
}

// Whether `to` has the alignment of `aligned` within a register, so that the registers
// for_rows aligns for `aligned` are aligned for `to` too.
template <class T>
inline bool same_alignment(const T* to, const T* aligned) {
  return (reinterpret_cast<unsigned long long>(to) - reinterpret_cast<unsigned long long>(aligned)) %
             BNORM_KERNEL_VECTOR_BYTES == 0;
}

// Runs one_row(i) on the rows before `aligned` (a pointer to row 0 of the main stream)
// reaches a register boundary and on those after the last full register, one_register(i)
// on the full registers between. A default build's Eigen aligns its buffers to 16 bytes
// only (glibc puts large ones at 16 mod 64), and a 32- or 64-byte access that straddles two
// cache lines costs two: aligning the main stream made the AVX-512 kernels up to 2x
// faster. The split depends only on the address, and one_row and one_register do the same
// arithmetic per element, so results do not depend on the alignment.
template <class T, class OneRow, class OneRegister>
inline void for_rows(const T* aligned, Index rows, OneRow&& one_row,
                     OneRegister&& one_register) {
  constexpr Index lanes = Lanes<T>::count;
  const auto address = reinterpret_cast<unsigned long long>(aligned);
  Index head = Index((BNORM_KERNEL_VECTOR_BYTES - address % BNORM_KERNEL_VECTOR_BYTES) %
                     BNORM_KERNEL_VECTOR_BYTES / sizeof(T));
  if (head > rows) head = rows;
  Index i = 0;
  for (; i < head; ++i) one_row(i);
  const Index end = head + (rows - head) / lanes * lanes;
  for (; i < end; i += lanes) one_register(i);
  for (; i < rows; ++i) one_row(i);
}

// BatchNorm's moments about the first column: for i < rows,
//   sum_d[i] = sum_{j=1}^{cols-1} d,  sum_d2[i] = sum d^2,  d = x[i, j] - x[i, 0].
template <class T>
void shifted_sums(const T* x, Index stride, Index rows, Index cols, T* sum_d, T* sum_d2) {
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
void normalize(const T* x, Index x_stride, Index rows, Index cols, const T* mean,
               const T* inv_std, const T* scale, const T* shift, T* xhat, Index xhat_stride,
               T* y, Index y_stride, bool stream) {
  (stream ? normalize_columns<true, T> : normalize_columns<false, T>)(
      x, x_stride, rows, cols, mean, inv_std, scale, shift, xhat, xhat_stride, y, y_stride);
}

// y = x * scale + shift per row (BatchNorm's eval map); y bypasses the caches with stream.
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
void affine(const T* x, Index x_stride, Index rows, Index cols, const T* scale,
            const T* shift, T* y, Index y_stride, bool stream) {
  (stream ? affine_columns<true, T> : affine_columns<false, T>)(x, x_stride, rows, cols, scale,
                                                                 shift, y, y_stride);
}

// BatchNorm's backward sums: sum_dy[i] = sum_j dy[i, j], sum_dy_xhat[i] = sum_j dy * xhat.
// With dx not null, also dx = scale * dy in the same pass (frozen statistics).
template <class T>
void gradient_sums(const T* dy, Index dy_stride, const T* xhat, Index xhat_stride, Index rows,
                   Index cols, T* sum_dy, T* sum_dy_xhat, const T* scale, T* dx,
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

// BatchNorm's input gradient: dx = scale * (dy - mean_dy - xhat * mean_dy_xhat); dx bypasses
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
void normalized_input_gradient(const T* dy, Index dy_stride, const T* xhat, Index xhat_stride,
                               Index rows, Index cols, const T* scale, const T* mean_dy,
                               const T* mean_dy_xhat, T* dx, Index dx_stride, bool stream) {
  (stream ? input_gradient_columns<true, T> : input_gradient_columns<false, T>)(
      dy, dy_stride, xhat, xhat_stride, rows, cols, scale, mean_dy, mean_dy_xhat, dx,
      dx_stride);
}

// y[:, j] += bias (Dense's bias).
template <class T>
void add_to_columns(T* y, Index stride, Index rows, Index cols, const T* bias) {
  for (Index j = 0; j < cols; ++j) {
    T* column = y + j * stride;
    for_rows(
        column, rows, [&](Index i) { column[i] += bias[i]; },
        [&](Index i) { store(column + i, load(column + i) + load(bias + i)); });
  }
}

// sums[i] = (accumulate ? sums[i] : 0) + x[i, 0] + x[i, 1] + ... (Dense's bias gradient).
template <class T>
void row_sums(const T* x, Index stride, Index rows, Index cols, T* sums, bool accumulate) {
  if (!accumulate)
    for (Index i = 0; i < rows; ++i) sums[i] = T(0);
  for (Index j = 0; j < cols; ++j) {
    const T* column = x + j * stride;
    for_rows(
        column, rows, [&](Index i) { sums[i] += column[i]; },
        [&](Index i) { store(sums + i, load(sums + i) + load(column + i)); });
  }
}

// y = a * x (+ bias when not null): a rows x depth matrix (column stride a_stride) times a
// vector, Dense's product for a batch of one. Blocks of four registers of rows stay in
// registers over the whole depth, so a is read once; each y is summed over k in order.
template <class T>
void matrix_vector(const T* a, Index a_stride, Index rows, Index depth, const T* x,
                   const T* bias, T* y) {
  using V = typename Lanes<T>::Vector;
  constexpr Index lanes = Lanes<T>::count, block = 4 * lanes;
  // Four registers of rows at `first`, kept in registers over the whole depth.
  const auto one_block = [&](Index first) {
    V acc[4];
#pragma GCC unroll 4
    for (int r = 0; r < 4; ++r) acc[r] = bias ? load(bias + first + r * lanes) : V{} * T(0);
    for (Index k = 0; k < depth; ++k) {
      const T* column = a + k * a_stride + first;
      const T xk = x[k];
#pragma GCC unroll 4
      for (int r = 0; r < 4; ++r) acc[r] = acc[r] + load(column + r * lanes) * xk;
    }
#pragma GCC unroll 4
    for (int r = 0; r < 4; ++r) store(y + first + r * lanes, acc[r]);
  };
  Index i = 0;
  if (rows >= block) {
    // Whole blocks only: an unaligned one from row 0 when a's first column is not on a
    // register boundary, aligned ones from the boundary, and an unaligned one ending at the
    // last row. Overlapping rows are computed twice, the same way both times (y aliases
    // neither a nor x); single registers would each be one FMA latency chain, half as fast.
    const auto address = reinterpret_cast<unsigned long long>(a);
    const Index head = Index((BNORM_KERNEL_VECTOR_BYTES - address % BNORM_KERNEL_VECTOR_BYTES) %
                             BNORM_KERNEL_VECTOR_BYTES / sizeof(T));
    if (head > 0) {
      one_block(0);
      i = head;
    }
    for (; i + block <= rows; i += block) one_block(i);
    if (i < rows) one_block(rows - block);
    return;
  }
  for (; i + lanes <= rows; i += lanes) {
    V acc = bias ? load(bias + i) : V{} * T(0);
    for (Index k = 0; k < depth; ++k) acc = acc + load(a + k * a_stride + i) * x[k];
    store(y + i, acc);
  }
  // The last rows (fewer than a register): k outside, so a is still read column by column
  // (a row at a time would touch a new cache line per element); the same sums, in order.
  const Index first_left = i;
  for (; i < rows; ++i) y[i] = bias ? bias[i] : T(0);
  for (Index k = 0; k < depth; ++k)
    for (i = first_left; i < rows; ++i) y[i] = y[i] + a[k * a_stride + i] * x[k];
}

// ReLU on n contiguous elements: y = x < 0 ? 0 : x (NaN stays NaN, as in PyTorch). y may
// be x.
template <class T>
void relu(const T* x, Index n, T* y) {
  using V = typename Lanes<T>::Vector;
  const V zero = V{} * T(0);
  for_rows(
      y, n, [&](Index i) { y[i] = x[i] < T(0) ? T(0) : x[i]; },
      [&](Index i) {
        const V value = load(x + i);
        store(y + i, value < zero ? zero : value);
      });
}

// ReLU's backward on n contiguous elements: dx = y > 0 ? dy : 0.
template <class T>
void relu_backward(const T* y, const T* dy, Index n, T* dx) {
  using V = typename Lanes<T>::Vector;
  const V zero = V{} * T(0);
  for_rows(
      dx, n, [&](Index i) { dx[i] = y[i] > T(0) ? dy[i] : T(0); },
      [&](Index i) { store(dx + i, load(y + i) > zero ? load(dy + i) : zero); });
}

// exp(x) for x <= 0 (or NaN), one register at a time: x = n ln2 + r with |r| <= ln2 / 2,
// exp(r) from Cephes' approximations (a degree-6 polynomial for float, a Pade form for
// double; both within about 1 ulp), times 2^n built in the exponent bits. n is rounded with
// the 1.5 * 2^(mantissa bits) trick, so no float-to-integer conversion is needed (the
// baseline has none for 64-bit lanes). Below the smallest normal result it returns 0.
template <class T>
inline typename Lanes<T>::Vector exp_nonpositive(typename Lanes<T>::Vector x) {
  using V = typename Lanes<T>::Vector;
  using I = typename Lanes<T>::IntegerVector;
  constexpr bool single = sizeof(T) == 4;
  const T lowest = single ? T(-87.33654) : T(-708.3964185322641);
  const T magic = single ? T(12582912.0) : T(6755399441055744.0);  // 1.5 * 2^23, 1.5 * 2^52
  const T log2e = T(1.44269504088896341);
  const V zero = V{} * T(0);
  const I underflow = x < lowest;
  x = underflow ? zero + lowest : x;
  const V shifted = x * log2e + magic;  // n in the low bits of the mantissa
  const V n = shifted - magic;
  V r, result;
  if constexpr (single) {
    r = x - n * T(0.693359375) - n * T(-2.12194440e-4);
    const V z = r * r;
    V p = T(1.9875691500E-4) * r + T(1.3981999507E-3);
    p = p * r + T(8.3334519073E-3);
    p = p * r + T(4.1665795894E-2);
    p = p * r + T(1.6666665459E-1);
    p = p * r + T(5.0000001201E-1);
    result = p * z + r + T(1);
  } else {
    r = x - n * T(6.93145751953125E-1) - n * T(1.42860682030941723212E-6);
    const V z = r * r;
    const V p = ((T(1.26177193074810590878E-4) * z + T(3.02994407707441961300E-2)) * z +
                 T(9.99999999999999999910E-1)) * r;
    const V q = ((T(3.00198505138664455042E-6) * z + T(2.52448340349684104192E-3)) * z +
                 T(2.27265548208155028766E-1)) * z + T(2.00000000000000000009E0);
    result = T(1) + T(2) * (p / (q - p));
  }
  I bits;
  __builtin_memcpy(&bits, &shifted, sizeof(bits));
  constexpr int mantissa = single ? 23 : 52;
  I magic_bits;
  const V magic_vector = zero + magic;
  __builtin_memcpy(&magic_bits, &magic_vector, sizeof(magic_bits));
  const I exponent = (bits - magic_bits + (single ? 127 : 1023)) << mantissa;
  V scale;
  __builtin_memcpy(&scale, &exponent, sizeof(scale));
  result = result * scale;
  return underflow ? zero : result;
}

// The logistic function on one register: 1 / (1 + e) for x >= 0 and e / (1 + e) below,
// with e = exp(-|x|) <= 1, so neither tail overflows and the negative tail keeps its
// relative accuracy down to the smallest normal number. NaN stays NaN.
template <class T>
inline typename Lanes<T>::Vector logistic(typename Lanes<T>::Vector x) {
  using V = typename Lanes<T>::Vector;
  const V zero = V{} * T(0);
  const V negative_abs = x < zero ? x : -x;
  const V e = exp_nonpositive<T>(negative_abs);
  const V inverse = T(1) / (T(1) + e);
  return x < zero ? e * inverse : inverse;
}

// Sigmoid on n contiguous elements: y = 1 / (1 + exp(-x)); y may be x. The last partial
// register goes through the same code as the rest (copied into a full one), so every
// element gets the same arithmetic.
template <class T>
void sigmoid(const T* x, Index n, T* y) {
  // One element of the head or tail: through a full register, so it gets the same
  // arithmetic as the rest.
  const auto one_row = [&](Index i) {
    T part[Lanes<T>::count] = {};
    part[0] = x[i];
    store(part, logistic<T>(load(part)));
    y[i] = part[0];
  };
  for_rows(y, n, one_row, [&](Index i) { store(y + i, logistic<T>(load(x + i))); });
}

// Sigmoid's backward on n contiguous elements: dx = dy * y * (1 - y).
template <class T>
void sigmoid_backward(const T* y, const T* dy, Index n, T* dx) {
  for_rows(
      dx, n, [&](Index i) { dx[i] = dy[i] * y[i] * (T(1) - y[i]); },
      [&](Index i) {
        const auto value = load(y + i);
        store(dx + i, load(dy + i) * value * (T(1) - value));
      });
}

// SGD with momentum on n contiguous elements, as torch.optim.SGD (weight_decay folded into
// the gradient first): g = grad + weight_decay * value; buffer = started ? momentum *
// buffer + undamped * g : g; value -= lr * (nesterov ? g + momentum * buffer : buffer).
template <class T>
void sgd_momentum(T* value, const T* grad, T* buffer, Index n, T lr, T momentum, T undamped,
                  T weight_decay, bool started, bool nesterov) {
  using V = typename Lanes<T>::Vector;
  for_rows(
      value, n,
      [&](Index i) {
        T g = grad[i];
        if (weight_decay != T(0)) g = g + weight_decay * value[i];
        const T b = started ? momentum * buffer[i] + undamped * g : g;
        buffer[i] = b;
        value[i] = value[i] - lr * (nesterov ? g + momentum * b : b);
      },
      [&](Index i) {
        V g = load(grad + i);
        if (weight_decay != T(0)) g = g + weight_decay * load(value + i);
        const V b = started ? momentum * load(buffer + i) + undamped * g : g;
        store(buffer + i, b);
        store(value + i, load(value + i) - lr * (nesterov ? g + momentum * b : b));
      });
}

}  // namespace bnorm::detail::kernels::BNORM_KERNEL_NAMESPACE
