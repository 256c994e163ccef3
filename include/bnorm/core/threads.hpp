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

// Runs kernel(first, count) on consecutive ranges of [0, size) that together cover it:
// the whole range at once, or, with several threads and at least `min_work` elements of
// work, one range per thread, each a multiple of 16 elements (whole cache lines). Below
// 2^20 elements splitting cost more than it saved (bench/RESULTS.md: BatchNorm training on
// 2^18 elements ran at half speed on two threads).
template <class Kernel>
void parallel_ranges(Index size, Index work, Kernel&& kernel) {
#if defined(_OPENMP)
  constexpr Index min_work = Index{1} << 20, unit = 16;
  const int count = threads();
  if (count > 1 && work >= min_work && size >= 2 * unit) {
    const Index units = (size + unit - 1) / unit;
#pragma omp parallel num_threads(count)
    {
      const Index parts = omp_get_num_threads(), part = omp_get_thread_num();
      const Index first = units * part / parts * unit;
      const Index last = std::min(size, units * (part + 1) / parts * unit);
      if (first < last) kernel(first, last - first);
    }
    return;
  }
#endif
  (void)work;
  kernel(Index{0}, size);
}

}  // namespace detail
}  // namespace bnorm
