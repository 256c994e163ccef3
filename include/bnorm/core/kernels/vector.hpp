// The vector registers of one variant, for the kernels written once for every variant
// (core/kernels/variant.hpp compiles them once per row of core/isa.hpp): a `Lanes<T>::Vector`
// is one register of T in GCC's vector extensions, BNORM_KERNEL_VECTOR_BYTES wide (16, 32, 64);
// loads and stores, streaming stores, the loops that align the main stream, square roots and
// AVX-512's masked loads.
//
// The loops use the vector extensions rather than relying on the auto-vectorizer, so they are
// vectorized at -O2 (whose very-cheap cost model skips loops of unknown trip count) as at -O3,
// and under every compiler that has the extensions (GCC, clang). Where the extensions cannot
// say it (square roots, non-temporal stores, masked loads), intrinsics of each width. No
// Eigen inside: an Eigen template compiled under two sets of target flags would break the
// one-definition rule.
//
// Shapes: a matrix is (data, stride): column j starts at data + j * stride; `rows` rows per
// column. Per-row vectors (mean, scale, ...) have `rows` elements. The reductions sum the
// columns in order (column 0 first). No include guard on purpose.

#ifndef BNORM_KERNEL_VARIANT
#error "included once per variant by core/kernels/variant.hpp only"
#endif

namespace bnorm::detail::variants::BNORM_KERNEL_VARIANT {

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
  using V [[maybe_unused]] = typename Lanes<T>::Vector;  // unused off x86-64
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

#if defined(__x86_64__) && BNORM_KERNEL_VECTOR_BYTES == 64
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

}  // namespace bnorm::detail::variants::BNORM_KERNEL_VARIANT
