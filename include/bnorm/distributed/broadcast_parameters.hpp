// Makes every process start from the same network: copies process root's parameters and
// BatchNorm running statistics (and their batch counts) to all the others.
//
//   bnorm::distributed::broadcast_parameters(net, world);   // before the first step
//
// Collective: every process calls it with a network of the same architecture. Only values
// are sent; shapes are checked first, so a mismatch throws bnorm::Error on every process
// instead of corrupting memory. Optimizer state is not sent: optimizers start from zero.
#pragma once

#include "../core/error.hpp"
#include "../core/parameter.hpp"
#include "../core/types.hpp"
#include "../layers/batch_norm.hpp"
#include "../model/sequential.hpp"
#include "communicator.hpp"
#include "for_each_batch_norm.hpp"

#include <cstddef>
#include <span>
#include <vector>

namespace bnorm::distributed {

namespace detail {

// The shapes of a network's state, in the order they are sent.
template <class T>
std::vector<long long> state_shapes(Sequential<T>& net) {
  std::vector<long long> shapes;
  for (auto& parameter : net.parameters()) {
    shapes.push_back(parameter.rows());
    shapes.push_back(parameter.cols());
  }
  for_each_batch_norm(net, [&](BatchNorm<T>& norm) {
    shapes.push_back(norm.running_mean().size());
    shapes.push_back(norm.running_var().size());
  });
  return shapes;
}

template <class T>
void check_same_architecture(Sequential<T>& net, const Communicator& communicator, int root) {
  std::vector<long long> shapes = state_shapes(net);
  long long length = static_cast<long long>(shapes.size());
  communicator.broadcast(std::span<long long>(&length, 1), root);
  std::vector<long long> root_shapes = shapes;
  root_shapes.resize(static_cast<std::size_t>(length));
  communicator.broadcast(std::span<long long>(root_shapes), root);
  int mismatch = root_shapes == shapes ? 0 : 1;
  communicator.all_reduce_sum(std::span<int>(&mismatch, 1));
  bnorm::detail::require(mismatch == 0, "broadcast_parameters: ", mismatch,
                         " process(es) hold a network whose parameters or running statistics "
                         "differ in number or shape from those of process ", root,
                         "; every process must build the same architecture");
}

}  // namespace detail

template <class T>
void broadcast_parameters(Sequential<T>& net, const Communicator& communicator, int root = 0) {
  communicator.check_root(root);
  detail::check_same_architecture(net, communicator, root);
  for (auto& parameter : net.parameters())
    communicator.broadcast(
        std::span<T>(parameter.value().data(), static_cast<std::size_t>(parameter.size())),
        root);
  for_each_batch_norm(net, [&](BatchNorm<T>& norm) {
    for (Vector<T>* statistic : {&norm.running_mean(), &norm.running_var()})
      communicator.broadcast(
          std::span<T>(statistic->data(), static_cast<std::size_t>(statistic->size())), root);
    long long batches = norm.num_batches_tracked();
    communicator.broadcast(std::span<long long>(&batches, 1), root);
    norm.set_num_batches_tracked(batches);
  });
}

}  // namespace bnorm::distributed
