// After the first step, a data-parallel training step (synchronized BatchNorms, gradient
// average) makes no heap allocation in bnorm, like a single-process step
// (tests/test_allocation.cpp, whose counters this repeats: every operator new, and every
// Eigen heap allocation through EIGEN_RUNTIME_NO_MALLOC). MPI's own C allocations, if any,
// are not bnorm's and are not counted.
#include <atomic>
#include <cstdlib>
#include <new>

namespace {
std::atomic<long> allocations{0};
}

#define EIGEN_RUNTIME_NO_MALLOC
#define eigen_assert(condition) \
  ((condition) ? void(0) : void(allocations.fetch_add(1, std::memory_order_relaxed)))

#include <bnorm/bnorm.hpp>
#include <bnorm/distributed.hpp>

#include <doctest/doctest.h>

// GCC warns that free() meets memory from operator new; here operator new is malloc.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

void* operator new(std::size_t size) {
  allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* pointer = std::malloc(size == 0 ? 1 : size)) return pointer;
  throw std::bad_alloc();
}
void* operator new[](std::size_t size) { return operator new(size); }
void operator delete(void* pointer) noexcept { std::free(pointer); }
void operator delete[](void* pointer) noexcept { std::free(pointer); }
void operator delete(void* pointer, std::size_t) noexcept { std::free(pointer); }
void operator delete[](void* pointer, std::size_t) noexcept { std::free(pointer); }

using namespace bnorm;
namespace dist = bnorm::distributed;

namespace {
long allocations_during(auto&& work) {
  const long before = allocations.load();
  Eigen::internal::set_is_malloc_allowed(false);
  work();
  Eigen::internal::set_is_malloc_allowed(true);
  return allocations.load() - before;
}
}  // namespace

TEST_CASE_TEMPLATE("A steady-state data-parallel step allocates nothing", T, float, double) {
  const dist::Communicator world;
  // BatchNorms of two widths share one sync: its buffers must not shrink and regrow.
  Sequential<T> net{Dense<T>(20, 16, Bias::none), BatchNorm<T>(16), ReLU<T>(),
                    Dense<T>(16, 8, Bias::none),  BatchNorm<T>(8),  ReLU<T>(),
                    Dense<T>(8, 5)};
  net.set_input_gradient(false);
  dist::synchronize_batch_norm(net, world);
  dist::broadcast_parameters(net, world);
  dist::GradientAllReduce<T> one_buffer(net.parameters(), world);
  auto parameters = net.parameters();
  SGD<T> optimizer(net.parameters(), {.lr = T(0.01), .momentum = T(0.9)});
  SoftmaxCrossEntropy<T> loss;
  const Matrix<T> x = Matrix<T>::Random(20, 16);
  const Labels labels = Labels::LinSpaced(16, 0, 4);
  bool per_parameter = false;
  auto step = [&] {
    loss.forward(net.forward(x, Mode::train), labels);
    net.backward(loss.backward());
    if (per_parameter)
      dist::all_reduce_gradients(parameters, world);
    else
      one_buffer.average();
    optimizer.step();
  };
  step();  // sizes every buffer
  CHECK(allocations_during([&] { step(); step(); }) == 0);
  per_parameter = true;
  CHECK(allocations_during([&] { step(); step(); }) == 0);
}
