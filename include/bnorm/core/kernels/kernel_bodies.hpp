// The bodies of bnorm's element-wise and reduction kernels, written once and compiled once
// per instruction set: core/kernels.hpp includes this file three times, each time inside
// its own namespace (BNORM_KERNEL_NAMESPACE) and target pragma, with the width of a vector
// register in bytes (BNORM_KERNEL_VECTOR_BYTES: 16, 32, 64). No include guard on purpose.
//
// The loops use GCC's vector extensions (a `Lanes<T>::Vector` is one register of T) rather
// than relying on the auto-vectorizer, so they are vectorized at -O2 (whose very-cheap cost
// model skips loops of unknown trip count) as at -O3, and under every compiler that has the
// extensions (GCC, clang). One exception: the AVX-512 copy's masked loads and stores
// (masked_load, masked_store; matrix_vector's end registers) are intrinsics, which the
// extensions cannot express. No Eigen inside: an Eigen template compiled under two sets of
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

// Runs step(V&...) on n elements of the arrays (T* or const T*; nullptr for an array the
// step does not use, which then sees zeros): each register is loaded from every array and
// stored back to the non-const ones. The elements before arrays[0] reaches a register
// boundary and those after the last full register go one at a time, each in lane 0 of a
// register of its own (the other lanes zero, discarded), so every element gets the same
// arithmetic wherever it lies and results do not depend on the alignment.
template <class T, class Step, class... Pointers>
inline void for_each_lane(Index n, Step&& step, Pointers... arrays) {
  using V = typename Lanes<T>::Vector;
  const auto run = [&](Index i, bool whole) {
    const auto get = [&](const T* array) {
      V value = V{} * T(0);
      if (array && whole) value = load(array + i);
      else if (array) value[0] = array[i];
      return value;
    };
    V values[] = {get(arrays)...};
    std::size_t at = 0;
    // Stores values[at] back to `array` when it is writable; at counts the arrays.
    const auto put = [&](auto array) {
      if constexpr (!std::is_const_v<std::remove_pointer_t<decltype(array)>>) {
        if (array && whole) store(array + i, values[at]);
        else if (array) array[i] = values[at][0];
      }
      ++at;
    };
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      step(values[I]...);
    }(std::index_sequence_for<Pointers...>{});
    (put(arrays), ...);
  };
  const T* const first[] = {arrays...};
  for_rows(first[0], n, [&](Index i) { run(i, false); }, [&](Index i) { run(i, true); });
}

// The lanes of a register summed in order (lane 0 first).
template <class T>
inline T sum_lanes(typename Lanes<T>::Vector v) {
  T sum = v[0];
  for (Index k = 1; k < Lanes<T>::count; ++k) sum += v[k];
  return sum;
}

// A register of the count < lanes elements at `from`, the other lanes `fill`.
template <class T>
inline typename Lanes<T>::Vector load_part(const T* from, Index count, T fill) {
  T part[Lanes<T>::count];
  for (Index k = 0; k < Lanes<T>::count; ++k) part[k] = k < count ? from[k] : fill;
  return load(part);
}
template <class T>
inline void store_part(T* to, typename Lanes<T>::Vector value, Index count) {
  for (Index k = 0; k < count; ++k) to[k] = value[k];
}

// The correctly rounded square root of every lane (IEEE's sqrt, as Eigen and PyTorch use):
// the vector extensions have no square root, so the instruction of each width.
template <class T>
inline typename Lanes<T>::Vector square_root(typename Lanes<T>::Vector x) {
  using V = typename Lanes<T>::Vector;
#if defined(__x86_64__) && BNORM_KERNEL_VECTOR_BYTES == 64
  // The zero-masking forms with every lane selected: GCC 12's plain _mm512_sqrt_pd starts
  // from _mm512_undefined_pd(), which -Wmaybe-uninitialized reports in the user's build.
  if constexpr (sizeof(T) == 4) return V(_mm512_maskz_sqrt_ps(__mmask16(0xFFFF), __m512(x)));
  else return V(_mm512_maskz_sqrt_pd(__mmask8(0xFF), __m512d(x)));
#elif defined(__x86_64__) && BNORM_KERNEL_VECTOR_BYTES == 32
  if constexpr (sizeof(T) == 4) return V(_mm256_sqrt_ps(__m256(x)));
  else return V(_mm256_sqrt_pd(__m256d(x)));
#elif defined(__x86_64__) && BNORM_KERNEL_VECTOR_BYTES == 16
  if constexpr (sizeof(T) == 4) return V(_mm_sqrt_ps(__m128(x)));
  else return V(_mm_sqrt_pd(__m128d(x)));
#else
  for (Index k = 0; k < Lanes<T>::count; ++k) x[k] = __builtin_sqrt(x[k]);
  return x;
#endif
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

#if BNORM_KERNEL_VECTOR_BYTES == 64 && defined(BNORM_KERNEL_MASKED_LOADS)
// AVX-512's masked loads and stores: lanes outside the mask (bit l for lane l) are neither
// read nor written and cannot fault, so a register may start before row 0 or end after the
// last row of an array. The address is formed as an integer for the same reason: it may lie
// outside the array.
constexpr bool has_masked_loads = true;
template <class T>
inline typename Lanes<T>::Vector masked_load(const T* base, Index offset, unsigned mask) {
  const auto address = reinterpret_cast<std::uintptr_t>(base) + std::uintptr_t(offset) * sizeof(T);
  if constexpr (sizeof(T) == 4)
    return _mm512_maskz_loadu_ps(__mmask16(mask), reinterpret_cast<const void*>(address));
  else
    return _mm512_maskz_loadu_pd(__mmask8(mask), reinterpret_cast<const void*>(address));
}
template <class T>
inline void masked_store(T* base, Index offset, unsigned mask, typename Lanes<T>::Vector value) {
  const auto address = reinterpret_cast<std::uintptr_t>(base) + std::uintptr_t(offset) * sizeof(T);
  if constexpr (sizeof(T) == 4)
    _mm512_mask_storeu_ps(reinterpret_cast<void*>(address), __mmask16(mask), value);
  else
    _mm512_mask_storeu_pd(reinterpret_cast<void*>(address), __mmask8(mask), value);
}
#else
constexpr bool has_masked_loads = false;
#endif

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
// vector, Dense's product for a batch of one.
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
void matrix_vector(const T* a, Index a_stride, Index rows, Index depth, const T* x,
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

// Sigmoid on n contiguous elements: y = 1 / (1 + exp(-x)); y may be x.
template <class T>
void sigmoid(const T* x, Index n, T* y) {
  using V = typename Lanes<T>::Vector;
  for_each_lane<T>(n, [](V& in, V& out) { out = logistic<T>(in); }, x, y);
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

// tanh on one register, on a = |x| with x's sign bit put back at the end (so -0 stays -0
// and tanh stays odd). a < 0.625: Cephes' odd approximation a + a^3 P(a^2) (a polynomial
// for float, a rational function for double). Above: (1 - e) / (1 + e) with
// e = exp(-2a) <= exp(-1.25), so 1 - e has no cancellation and nothing overflows; e
// underflows to 0 for large a, giving 1. NaN takes the second branch and stays NaN.
// tests/test_kernels.cpp measures the error against long double: within 2 ulp.
template <class T>
inline typename Lanes<T>::Vector hyperbolic_tangent(typename Lanes<T>::Vector x) {
  using V = typename Lanes<T>::Vector;
  using I = typename Lanes<T>::IntegerVector;
  I bits, sign;
  __builtin_memcpy(&bits, &x, sizeof(bits));
  sign = bits & std::numeric_limits<typename Lanes<T>::Integer>::min();
  bits ^= sign;
  V a;
  __builtin_memcpy(&a, &bits, sizeof(a));
  const V z = a * a;
  V small;
  if constexpr (sizeof(T) == 4) {
    const V p = ((((T(-5.70498872745E-3) * z + T(2.06390887954E-2)) * z - T(5.37397155531E-2)) *
                      z + T(1.33314422036E-1)) * z - T(3.33332819422E-1));
    small = p * z * a + a;
  } else {
    const V p = (T(-9.64399179425052238628E-1) * z - T(9.92877231001918586564E1)) * z -
                T(1.61468768441708447952E3);
    const V q = ((z + T(1.12811678491632931402E2)) * z + T(2.23548839060100448583E3)) * z +
                T(4.84406305325125486048E3);
    small = a + a * z * (p / q);
  }
  const V e = exp_nonpositive<T>(T(-2) * a);
  const V magnitude = a < T(0.625) ? small : (T(1) - e) / (T(1) + e);
  __builtin_memcpy(&bits, &magnitude, sizeof(bits));
  bits |= sign;
  V result;
  __builtin_memcpy(&result, &bits, sizeof(result));
  return result;
}

// tanh on n contiguous elements; y may be x.
template <class T>
void tanh(const T* x, Index n, T* y) {
  using V = typename Lanes<T>::Vector;
  for_each_lane<T>(n, [](V& in, V& out) { out = hyperbolic_tangent<T>(in); }, x, y);
}

// tanh's backward: dx = dy * (1 - y^2).
template <class T>
void tanh_backward(const T* y, const T* dy, Index n, T* dx) {
  using V = typename Lanes<T>::Vector;
  for_each_lane<T>(
      n, [](V& value, V& gradient, V& out) { out = gradient * (T(1) - value * value); }, y, dy,
      dx);
}

// LeakyReLU: y = x > 0 ? x : slope * x (NaN takes slope * x, still NaN); y may be x.
template <class T>
void leaky_relu(const T* x, Index n, T slope, T* y) {
  using V = typename Lanes<T>::Vector;
  for_each_lane<T>(
      n, [slope](V& in, V& out) { out = in > T(0) ? in : slope * in; }, x, y);
}

// LeakyReLU's backward, from the input: dx = x > 0 ? dy : slope * dy.
template <class T>
void leaky_relu_backward(const T* x, const T* dy, Index n, T slope, T* dx) {
  using V = typename Lanes<T>::Vector;
  for_each_lane<T>(
      n, [slope](V& in, V& gradient, V& out) { out = in > T(0) ? gradient : slope * gradient; },
      x, dy, dx);
}

// y = a * b element by element (Dropout's mask); y may be a or b.
template <class T>
void multiply(const T* a, const T* b, Index n, T* y) {
  using V = typename Lanes<T>::Vector;
  for_each_lane<T>(n, [](V& left, V& right, V& out) { out = left * right; }, a, b, y);
}

// Softmax cross-entropy of a classes x batch matrix of logits (column stride `stride`) and
// one label per column: returns sum_j (log sum_i exp(z_ij - m_j) + m_j - z_label,j), m_j the
// column's largest logit (so nothing overflows), and writes the gradient of the mean,
// (softmax - onehot) / batch, to `gradient` (classes x batch, contiguous). The labels are in
// range (the caller checks). Each column is read from row 0 a register at a time, the last
// partial register padded with -inf (exp gives 0), so the sums do not depend on alignment.
template <class T>
T softmax_cross_entropy(const T* logits, Index stride, Index classes, Index batch,
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
T squared_error(const T* p, Index p_stride, const T* t, Index t_stride, Index rows, Index cols,
                T scale, T* gradient) {
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

// Adam's and AdamW's update of n contiguous elements (optim/adam.hpp has the formulas):
// value *= decay (AdamW; 1 for Adam), g = grad + l2 * value (Adam; l2 = 0 for AdamW), the
// moments, and the step; max_second (amsgrad) is nullptr when unused. The arithmetic, and
// its order, is the Eigen expression's it replaces.
template <class T>
void adam(T* value, const T* grad, T* first, T* second, T* max_second, Index n,
          const AdamCoefficients<T>& c) {
  using V = typename Lanes<T>::Vector;
  const bool amsgrad = max_second != nullptr;
  for_each_lane<T>(
      n,
      [&](V& p, V& gradient, V& m, V& v, V& v_max) {
        if (c.decay != T(1)) p = p * c.decay;
        const V g = c.l2 != T(0) ? gradient + c.l2 * p : gradient;
        m = c.beta1 * m + c.one_minus_beta1 * g;
        v = c.beta2 * v + c.one_minus_beta2 * (g * g);
        if (amsgrad) v_max = v_max < v ? v : v_max;
        const V denominator = square_root<T>(amsgrad ? v_max : v) / c.bias_correction2_sqrt + c.eps;
        p = p - c.step_size * m / denominator;
      },
      value, grad, first, second, max_second);
}

// RMSprop's update of n contiguous elements (optim/rmsprop.hpp has the formulas):
// gradient_average is nullptr unless centered, buffer nullptr unless momentum > 0.
template <class T>
void rmsprop(T* value, const T* grad, T* square_average, T* gradient_average, T* buffer,
             Index n, T lr, T alpha, T one_minus_alpha, T eps, T weight_decay, T momentum) {
  using V = typename Lanes<T>::Vector;
  const bool centered = gradient_average != nullptr, with_momentum = buffer != nullptr;
  for_each_lane<T>(
      n,
      [&](V& p, V& gradient, V& s, V& a, V& b) {
        const V g = weight_decay != T(0) ? gradient + weight_decay * p : gradient;
        s = alpha * s + one_minus_alpha * (g * g);
        V denominator;
        if (centered) {
          a = alpha * a + one_minus_alpha * g;
          denominator = square_root<T>(s - a * a) + eps;
        } else {
          denominator = square_root<T>(s) + eps;
        }
        if (with_momentum) {
          b = momentum * b + g / denominator;
          p = p - lr * b;
        } else {
          p = p - lr * g / denominator;
        }
      },
      value, grad, square_average, gradient_average, buffer);
}

// Plain SGD on n contiguous elements: value -= lr * (grad + weight_decay * value).
template <class T>
void sgd(T* value, const T* grad, Index n, T lr, T weight_decay) {
  using V = typename Lanes<T>::Vector;
  for_each_lane<T>(
      n,
      [&](V& p, V& gradient) {
        p = p - lr * (weight_decay != T(0) ? gradient + weight_decay * p : gradient);
      },
      value, grad);
}

}  // namespace bnorm::detail::kernels::BNORM_KERNEL_NAMESPACE
