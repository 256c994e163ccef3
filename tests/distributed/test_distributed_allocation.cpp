// After the first step, a data-parallel training step (synchronized BatchNorms, gradient
// average) makes no heap allocation in bnorm, like a single-process step
// (tests/test_allocation.cpp; the counters are in support/allocation_counter.hpp). MPI's own
// C allocations, if any, are not bnorm's and are not counted.
#include "support/allocation_counter.hpp"  // first: it configures Eigen

#include <bnorm/bnorm.hpp>
#include <bnorm/distributed.hpp>

#include <doctest/doctest.h>

using bnorm_test::allocations_during;
using namespace bnorm;
namespace dist = bnorm::distributed;

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
