// A process whose local batch is empty must not leave the others waiting in a collective
// call: every process reaches the synchronized BatchNorm's merge, learns of the empty batch
// there, and throws the same bnorm::Error; the networks are then as they were and train on.
#include <bnorm/bnorm.hpp>
#include <bnorm/distributed.hpp>

#include <doctest/doctest.h>

#include <string>

using namespace bnorm;
namespace dist = bnorm::distributed;

TEST_CASE("An empty local batch on one process makes every process throw, none hang") {
  const dist::Communicator world;
  manual_seed(1);
  Sequential<double> net{Dense<double>(5, 4, Bias::none), BatchNorm<double>(4), ReLU<double>(),
                         Dense<double>(4, 3, Bias::none), BatchNorm<double>(3)};
  dist::synchronize_batch_norm(net, world);
  dist::broadcast_parameters(net, world);
  const Matrix<double> x = Matrix<double>::Random(5, 4);
  const int empty_rank = world.size() - 1;
  const Matrix<double> local = world.rank() == empty_rank ? Matrix<double>(5, 0) : x;
  const Vector<double> running_mean = net.layer<BatchNorm<double>>(1).running_mean();

  std::string message = "<no exception>";
  try {
    net.forward(local, Mode::train);
  } catch (const Error& error) {
    message = error.what();
  }
  INFO("rank ", world.rank(), ": ", message);
  if (world.size() == 1) {
    CHECK(message.find("empty") != std::string::npos);  // one process: the layer's own error
  } else {
    CHECK(message.find("process " + std::to_string(empty_rank) + " of " +
                       std::to_string(world.size()) + " has an empty local batch") != std::string::npos);
  }
  // Nothing changed, and every process trains on together.
  CHECK(net.layer<BatchNorm<double>>(1).running_mean() == running_mean);
  CHECK(net.layer<BatchNorm<double>>(1).num_batches_tracked() == 0);
  net.forward(x, Mode::train);
  net.backward(Matrix<double>::Ones(3, 4));
  CHECK(net.layer<BatchNorm<double>>(1).num_batches_tracked() == 1);
}
