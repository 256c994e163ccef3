#include <bnorm/bnorm.hpp>

#include <doctest/doctest.h>

#include <string>
#include <vector>

using namespace bnorm;

namespace {
std::vector<std::string> names_of(std::vector<Buffer<double>> buffers) {
  std::vector<std::string> names;
  for (const auto& buffer : buffers) names.push_back(buffer.name());
  return names;
}
}  // namespace

TEST_CASE("buffers are PyTorch's state_dict buffers, named and ordered as nn.Sequential's") {
  Sequential<double> inner{BatchNorm<double>(2), Dropout<double>(0.5, 7)};
  Sequential<double> net{Dense<double>(3, 2, Bias::none), BatchNorm<double>(2), ReLU<double>(),
                         inner, BatchNorm<double>(2, {.track_running_stats = false})};
  CHECK(names_of(net.buffers()) ==
        std::vector<std::string>{"1.running_mean", "1.running_var", "1.num_batches_tracked",
                                 "3.0.running_mean", "3.0.running_var",
                                 "3.0.num_batches_tracked", "3.1.generator"});
  auto buffers = net.buffers();
  CHECK(buffers[0].kind() == BufferKind::values);
  CHECK(buffers[0].dimensions() == 1);  // a vector: PyTorch's shape [2], not [2, 1]
  CHECK(buffers[2].kind() == BufferKind::counter);
  CHECK(buffers[6].kind() == BufferKind::generator);
  CHECK(buffers[2].in_state_dict());
  CHECK_FALSE(buffers[6].in_state_dict());
}

TEST_CASE("a buffer writes through to the layer's state") {
  Sequential<double> net{BatchNorm<double>(2), Dropout<double>(0.5, 7)};
  auto buffers = net.buffers();
  buffers[0].values()(1) = 4.0;
  buffers[1].values()(0) = 9.0;
  buffers[2].counter() = 12;
  buffers[3].generator().seed_with(99);
  const auto& norm = net.layer<BatchNorm<double>>(0);
  CHECK(norm.running_mean()(1) == 4.0);
  CHECK(norm.running_var()(0) == 9.0);
  CHECK(norm.num_batches_tracked() == 12);
  CHECK(net.layer<Dropout<double>>(1).generator() == Generator(99));
  CHECK(buffers[0].values().rows() == 2);
}
