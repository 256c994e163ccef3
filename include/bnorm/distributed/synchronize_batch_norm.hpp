// SyncBatchNorm for a whole network: every BatchNorm (in nested Sequentials, in layers of
// your own that expose children(), and subclasses of BatchNorm: for_each_batch_norm.hpp) normalizes
// with the statistics of the global batch spread over the processes of a Communicator.
//
//   bnorm::distributed::synchronize_batch_norm(net, world);
//
// Afterwards every process must run each training forward and backward together with the
// others (see mpi_statistics_sync.hpp). Eval mode uses the running statistics and sends
// nothing. A BatchNorm with ghost batches (virtual_batch_size) cannot be synchronized and
// makes this throw bnorm::Error before any layer is changed.
#pragma once

#include "../core/error.hpp"
#include "../core/types.hpp"
#include "../layers/batch_norm.hpp"
#include "../model/sequential.hpp"
#include "communicator.hpp"
#include "for_each_batch_norm.hpp"
#include "mpi_statistics_sync.hpp"

#include <memory>

namespace bnorm::distributed {

// Returns how many BatchNorm layers are now synchronized. They share one MpiStatisticsSync.
template <class T>
Index synchronize_batch_norm(Sequential<T>& net, const Communicator& communicator) {
  return set_statistics_sync<T>(net, std::make_shared<MpiStatisticsSync<T>>(communicator));
}

// Undoes synchronize_batch_norm: every BatchNorm uses its own process's batch only.
template <class T>
Index desynchronize_batch_norm(Sequential<T>& net) {
  return set_statistics_sync<T>(net, nullptr);
}

}  // namespace bnorm::distributed
