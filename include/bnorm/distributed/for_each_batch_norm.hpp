// Visits every BatchNorm of a network, including those inside nested Sequentials, in layer
// order. The distributed helpers use it to reach the layers whose state is not a Parameter:
// the statistics sync and the running statistics.
//
// A BatchNorm inside a layer type of your own (not a Sequential) is not visited.
#pragma once

#include "../core/types.hpp"
#include "../layers/batch_norm.hpp"
#include "../model/sequential.hpp"

#include <cstddef>

namespace bnorm::distributed {

// Calls visit(BatchNorm<T>&) for each BatchNorm; returns how many it visited.
template <class T, class Visit>
Index for_each_batch_norm(Sequential<T>& net, Visit&& visit) {
  Index visited = 0;
  for (std::size_t i = 0; i < net.size(); ++i) {
    if (auto* norm = net.template layer_if<BatchNorm<T>>(i)) {
      visit(*norm);
      ++visited;
    } else if (auto* nested = net.template layer_if<Sequential<T>>(i)) {
      visited += for_each_batch_norm(*nested, visit);
    }
  }
  return visited;
}

}  // namespace bnorm::distributed
