// Opt-in parallelism. Compiled with OpenMP (link the CMake target bnorm::openmp), bnorm
// splits BatchNorm's loops over features across threads, and its matrix products
// (core/gemm.hpp) split their columns among them; without OpenMP everything runs on the
// calling thread and these are no-ops.
//
// Results do not depend on the thread count: every feature is reduced by one thread in a
// fixed order, and each thread of a product computes its own columns with the same kernel.
#pragma once

#include "error.hpp"
#include "types.hpp"

#include <Eigen/Core>
#include <algorithm>

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace bnorm {

namespace detail {
// 0 until set: then the OpenMP default (OMP_NUM_THREADS, else the cores).
inline int& thread_setting() {
  static int threads = 0;
  return threads;
}
}  // namespace detail

// The number of threads bnorm uses: 1 without OpenMP.
inline int threads() {
#if defined(_OPENMP)
  const int setting = detail::thread_setting();
  return setting > 0 ? setting : omp_get_max_threads();
#else
  return 1;
#endif
}

// Sets the threads for bnorm's loops and for Eigen's products (Eigen::setNbThreads).
inline void set_threads(int count) {
  detail::require(count >= 1, "set_threads: the thread count must be at least 1, got ", count);
#if defined(_OPENMP)
  detail::thread_setting() = count;
  Eigen::setNbThreads(count);
#endif
}

namespace detail {

// The one place that knows the threading back end. Runs kernel(first, count, part) on
// consecutive ranges of [0, size) that together cover it, one per part, parts 0, 1, ... each
// on a thread of its own: the whole range as part 0 when `thread_count` is 1 (or without
// OpenMP). Each range but the last is a multiple of 16 elements (whole cache lines, whole
// tiles of a product); a part may get an empty range, and is then not called.
template <class Kernel>
void split_among_threads(Index size, int thread_count, Kernel&& kernel) {
#if defined(_OPENMP)
  if (thread_count > 1) {
    constexpr Index unit = 16;
    const Index units = (size + unit - 1) / unit;
#pragma omp parallel num_threads(thread_count)
    {
      const Index parts = omp_get_num_threads(), part = omp_get_thread_num();
      const Index first = units * part / parts * unit;
      const Index last = std::min(size, units * (part + 1) / parts * unit);
      if (first < last) kernel(first, last - first, static_cast<int>(part));
    }
    return;
  }
#endif
  (void)thread_count;
  kernel(Index{0}, size, 0);
}

// Runs kernel(first, count) on consecutive ranges of [0, size) that together cover it:
// the whole range at once, or, with several threads and at least `min_work` elements of
// work, one range per thread (split_among_threads). Below 2^20 elements splitting cost more
// than it saved (bench/RESULTS.md: BatchNorm training on 2^18 elements ran at half speed on
// two threads).
template <class Kernel>
void parallel_ranges(Index size, Index work, Kernel&& kernel) {
  constexpr Index min_work = Index{1} << 20, unit = 16;
  const int count = work >= min_work && size >= 2 * unit ? threads() : 1;
  split_among_threads(size, count, [&](Index first, Index length, int) { kernel(first, length); });
}

}  // namespace detail
}  // namespace bnorm
