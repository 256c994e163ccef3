// Visits every BatchNorm of a network, in layer order, through the one walker of
// core/layer_ref.hpp: inside nested Sequentials and inside layer types of your own that
// expose children(), and subclasses of BatchNorm too. The distributed helpers use it to
// reach the layers whose state is not a Parameter: the statistics sync and the running
// statistics.
#pragma once

#include "../core/error.hpp"
#include "../core/layer_ref.hpp"
#include "../core/types.hpp"
#include "../layers/batch_norm.hpp"
#include "../model/sequential.hpp"

#include <memory>
#include <string>

namespace bnorm::distributed {

// Calls visit(BatchNorm<T>&) for each BatchNorm; returns how many it visited.
template <class T, class Visit>
Index for_each_batch_norm(Sequential<T>& net, Visit&& visit) {
  Index visited = 0;
  for_each_layer(LayerRef<T>(net), [&](const std::string&, const LayerRef<T>& layer) {
    if (auto* norm = layer.template as<BatchNorm<T>>()) {
      visit(*norm);
      ++visited;
    }
  });
  return visited;
}

// Gives every BatchNorm of `net` the statistics hook `sync` (nullptr: none), as
// synchronize_batch_norm does with MPI; a StatisticsSync of your own (or a test's fake)
// works the same. Returns how many BatchNorms now use it. A BatchNorm with ghost batches
// (virtual_batch_size) cannot be synchronized and makes this throw bnorm::Error before any
// layer is changed.
template <class T>
Index set_statistics_sync(Sequential<T>& net, const std::shared_ptr<StatisticsSync<T>>& sync) {
  if (sync)
    for_each_batch_norm(net, [](BatchNorm<T>& norm) {
      bnorm::detail::require(norm.options().virtual_batch_size == 0, "synchronize_batch_norm: ",
                             norm.name(), " uses ghost batches (virtual_batch_size ",
                             norm.options().virtual_batch_size,
                             "), which are normalized locally and cannot be synchronized");
    });
  return for_each_batch_norm(net, [&](BatchNorm<T>& norm) { norm.set_statistics_sync(sync); });
}

}  // namespace bnorm::distributed
