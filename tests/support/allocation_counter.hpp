// Counts heap allocations, for the tests that prove a training step makes none. Two
// counters feed one total: every operator new in the program (replaced below), and every
// Eigen heap allocation (EIGEN_RUNTIME_NO_MALLOC turns them into failed eigen_asserts, which
// are counted here instead of aborting). Only that one assertion is counted: every other
// eigen_assert in the file still stops the program, as Eigen's own does.
//
// Include this first, before any Eigen or bnorm header, and in one file per executable
// (it defines the program's operator new).
#pragma once

#if defined(EIGEN_CORE_H) || defined(EIGEN_CORE_MODULE_H)
#error "support/allocation_counter.hpp must come before any Eigen header"
#endif

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>

namespace bnorm_test {
inline std::atomic<long> allocations{0};

// A failed eigen_assert: Eigen's "heap allocation is forbidden" check (its text names
// EIGEN_RUNTIME_NO_MALLOC) counts an allocation; any other is a bug and aborts.
inline void eigen_assertion_failed(const char* condition, const char* file, int line) {
  if (std::strstr(condition, "EIGEN_RUNTIME_NO_MALLOC") != nullptr) {
    allocations.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  std::fprintf(stderr, "%s:%d: Eigen assertion failed: %s\n", file, line, condition);
  std::abort();
}
}  // namespace bnorm_test

#define EIGEN_RUNTIME_NO_MALLOC
#define eigen_assert(condition) \
  ((condition) ? void(0) : bnorm_test::eigen_assertion_failed(#condition, __FILE__, __LINE__))

#include <Eigen/Core>

// GCC warns that free() meets memory from operator new; here operator new is malloc.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

void* operator new(std::size_t size) {
  bnorm_test::allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* pointer = std::malloc(size == 0 ? 1 : size)) return pointer;
  throw std::bad_alloc();
}
void* operator new[](std::size_t size) { return operator new(size); }
void operator delete(void* pointer) noexcept { std::free(pointer); }
void operator delete[](void* pointer) noexcept { std::free(pointer); }
void operator delete(void* pointer, std::size_t) noexcept { std::free(pointer); }
void operator delete[](void* pointer, std::size_t) noexcept { std::free(pointer); }

namespace bnorm_test {

// How many heap allocations `work` makes, Eigen's and operator new's together.
template <class Work>
long allocations_during(Work&& work) {
  const long before = allocations.load();
  Eigen::internal::set_is_malloc_allowed(false);
  work();
  Eigen::internal::set_is_malloc_allowed(true);
  return allocations.load() - before;
}

}  // namespace bnorm_test
